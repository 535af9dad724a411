"""Build smoke tests: the compiled extension, the cffi declarations, and the
sdist -> wheel -> fresh venv path a user's `pip install` takes.

The sdist test builds the wheel from the unpacked sdist (as pip does) and
installs it into a new virtual environment, where it runs what a new user
would: a timer and a socket round trip.  pip fetches the build requirements
and cffi from the package index, as any `pip install` does.
"""
import glob
import os
import re
import subprocess
import sys
import tarfile
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CSRC = os.path.join(ROOT, "csrc")


def _c_declarations(path):
    """{name: normalised prototype} of the rx_ functions declared in a header,
    and the set of RX_ macro names it defines."""
    with open(path) as f:
        text = f.read()
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    defines = set(re.findall(r"^\s*#\s*define\s+(RX_\w+)", text, flags=re.M))
    text = re.sub(r"^\s*#[^\n]*", " ", text, flags=re.M)
    protos = {}
    # declarations are the pieces between ';' '{' '}' at file level
    for decl in re.split(r"[;{}]", text):
        m = re.search(r"\b(rx_\w+)\s*\(", decl)
        if m and "typedef" not in decl:
            protos[m.group(1)] = " ".join(decl.replace("(", " ( ").replace(")", " ) ")
                                          .replace(",", " , ").replace("*", " * ").split())
    return protos, defines


def test_extension_imports():
    from pycos._reactor import ffi, lib
    assert lib.RX_PENDING == -1000000
    assert lib.RX_NEVER == 2**63 - 1
    assert ffi.sizeof("rx_event") == 32


def test_cdef_matches_reactor_h():
    public, public_defines = _c_declarations(os.path.join(CSRC, "reactor.h"))
    cdef, cdef_defines = _c_declarations(os.path.join(CSRC, "_cdef.h"))
    assert len(public) > 10, "no rx_ prototypes found in reactor.h: parser out of date?"
    missing = sorted(set(public) - set(cdef))
    assert not missing, "declared in reactor.h but not in _cdef.h: %s" % missing
    differ = ["%s\n  reactor.h: %s\n  _cdef.h:   %s" % (n, public[n], cdef[n])
              for n in sorted(public) if public[n] != cdef[n]]
    assert not differ, "prototypes differ:\n" + "\n".join(differ)
    extra = sorted(set(cdef) - set(public))
    assert not extra, "in _cdef.h but not in reactor.h: %s" % extra
    missing = sorted(public_defines - cdef_defines - {"PYCOS_REACTOR_H"})
    assert not missing, "constants of reactor.h missing from _cdef.h: %s" % missing


def test_version_matches_metadata():
    from importlib import metadata

    import pycos
    assert metadata.version("pycos") == pycos.__version__


def _run(cmd, **kw):
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, **kw)
    assert proc.returncode == 0, "%s failed (%d):\n%s" % (
        " ".join(map(str, cmd)), proc.returncode, proc.stdout[-6000:])
    return proc.stdout


# What a new user does after `pip install`: a timer and a socket round trip,
# first on the reactor itself, then through tasks.
_USER_CHECK = """
import socket, time, pycos, pycos.reactor as r
assert 'site-packages' in pycos.__file__, pycos.__file__
print(r.backends())
with r.Loop() as loop:
    loop.timer_after(0.01, 7)
    t0 = time.monotonic()
    evs = loop.poll(5)
    assert [e.token for e in evs] == [7] and time.monotonic() - t0 >= 0.009, evs
    a, b = socket.socketpair()
    a.setblocking(False); b.setblocking(False)
    buf = bytearray(16)
    assert loop.recv(a.fileno(), buf, 1) == r.PENDING
    assert loop.send(b.fileno(), b"ping", 2) == 4
    evs = loop.poll(5)
    assert [(e.token, e.result) for e in evs] == [(1, 4)] and bytes(buf[:4]) == b"ping", evs
    loop.forget(a.fileno()); loop.forget(b.fileno()); a.close(); b.close()

def echo(conn, task=None):
    data = yield conn.recv(64)
    yield conn.sendall(data.upper())
    conn.close()

def client(task=None):
    yield task.sleep(0.01)
    x, y = socket.socketpair()
    pycos.Task(echo, pycos.AsyncSocket(y))
    x = pycos.AsyncSocket(x)
    yield x.sendall(b"hello")
    reply = yield x.recvall(5)
    x.close()
    return reply

assert pycos.Task(client).value(timeout=10) == b"HELLO"
pycos.Pycos.instance().finish()
print("user check ok")
"""


@pytest.mark.timeout(600)
def test_sdist_wheel_install(tmp_path):
    dist = tmp_path / "dist"
    # pip must not see the source tree's pycos
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"

    _run([sys.executable, "-m", "build", "--sdist", "--outdir", str(dist), ROOT], env=env)
    (sdist,) = glob.glob(str(dist / "pycos-*.tar.gz"))
    with tarfile.open(sdist) as tf:
        names = [n.split("/", 1)[1] for n in tf.getnames() if "/" in n]
    for needed in ("csrc/reactor.h", "csrc/_cdef.h", "csrc/loop.c", "build_reactor.py",
                   "setup.py", "pyproject.toml", "pycos/__init__.py", "pycos/reactor.py"):
        assert needed in names, "%s missing from the sdist" % needed
    generated = [n for n in names if n.endswith(("_reactor.c", ".so", ".o"))]
    assert not generated, "generated files in the sdist: %s" % generated

    # the wheel is built from the unpacked sdist, not from the repository
    # (unpacked here: older `build` releases take only a directory)
    unpacked = tmp_path / "unpacked"
    with tarfile.open(sdist) as tf:
        top = tf.getnames()[0].split("/")[0]
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tf.extractall(str(unpacked), **safe)
    _run([sys.executable, "-m", "build", "--wheel", "--outdir", str(dist),
          str(unpacked / top)], env=env)
    (wheel,) = glob.glob(str(dist / "pycos-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        wnames = zf.namelist()
    assert any(re.match(r"pycos/_reactor\..*(so|pyd)$", n) for n in wnames), wnames
    assert not [n for n in wnames if n.endswith("_reactor.c")]
    assert "pycos/py.typed" in wnames, wnames       # (PEP 561: the hints are for users)

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], env=env)
    py = str(venv / "bin" / "python")
    _run([py, "-m", "pip", "install", "-q", wheel], env=env)
    out = _run([py, "-I", "-c", _USER_CHECK], cwd=str(tmp_path), env=env)
    assert "epoll" in out and "poll" in out and "user check ok" in out, out
