"""``python -m pycos``: what a bug report needs to say about this pycos.

It prints, one ``name: value`` per line: pycos's version and where it was
imported from, the interpreter (implementation, version, executable), the
platform, the reactor backend a scheduler gets here (``$PYCOS_BACKEND``
honoured) and the ones compiled in, where the compiled extension
(``pycos._reactor``) was loaded from, cffi's and OpenSSL's versions, and how
process waits work here (a pidfd through the reactor, or a reaper thread).

Nothing is started: the reactor loop it opens to learn the backend is closed
at once.  An error in any of them is printed in its line (the report is most
wanted when something is broken) and makes the exit status 1.
"""

import argparse
import os
import platform
import ssl
import sys

import pycos


def _backend():
    from pycos import reactor
    loop = reactor.Loop()
    try:
        return loop.backend
    finally:
        loop.close()


def _compiled():
    from pycos import reactor
    return ", ".join(reactor.backends())


def _extension():
    from pycos import _reactor
    return os.path.abspath(_reactor.__file__)


def _cffi():
    import cffi
    return cffi.__version__


def _process_waits():
    from pycos.io import file
    if file._pidfd_open is None:
        return "reaper thread (no pidfd_open here)"
    name = "os.pidfd_open" if file._pidfd_open is getattr(os, "pidfd_open", None) else \
        "the pidfd_open system call (ctypes)"
    return "pidfd through the reactor (%s; a reaper thread if the kernel refuses)" % name


def report():
    """``[(name, value)]``, and whether every value could be found."""
    impl = platform.python_implementation()
    if impl == "PyPy":
        impl += " %d.%d.%d, Python" % getattr(sys, "pypy_version_info")[:3]
    rows = [
        ("pycos", "%s (%s)" % (pycos.__version__, os.path.dirname(os.path.abspath(
            pycos.__file__)))),
        ("python", "%s %s (%s)" % (impl, platform.python_version(), sys.executable)),
        ("platform", platform.platform()),
    ]
    ok = True
    env = os.environ.get("PYCOS_BACKEND")
    for name, fn in (("reactor backend", _backend), ("backends compiled", _compiled),
                     ("extension", _extension), ("cffi", _cffi),
                     ("process waits", _process_waits)):
        try:
            value = fn()
        except Exception as exc:
            value, ok = "error: %s: %s" % (type(exc).__name__, exc), False
        if name == "reactor backend" and env:
            value += " (PYCOS_BACKEND=%s)" % env
        rows.append((name, value))
    rows.append(("openssl", ssl.OPENSSL_VERSION))
    return rows, ok


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m pycos",
        description="Print pycos's version, the interpreter, the reactor backend and where "
                    "the compiled extension was loaded from: paste it into bug reports.")
    parser.add_argument("--version", action="store_true", help="print the version only")
    args = parser.parse_args(argv)
    if args.version:
        print(pycos.__version__)
        return 0
    rows, ok = report()
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print("%-*s %s" % (width + 1, name + ":", value))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
