"""Embedding: a C program embeds Python, imports pycos, starts tasks and
drives the scheduler from its own poll() loop on fileno() until they finish.

On CPython the program (embed/embed.c) is built with the flags of
``python3-config --embed``.  PyPy has no ``Py_Initialize``; its embedding
entry points live in libpypy-c (``pypy_setup_home``,
``pypy_execute_source_ptr``), so embed/embed_pypy.c links that library and
reaches the scheduler through cffi callbacks.  Both run embed/script.py and
print the same report.  Skipped only when the build is impossible here: no
C compiler, no python-config / libpython / libpypy-c for this interpreter.
"""
import os
import platform
import shutil
import subprocess
import sys
import sysconfig

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def _python_config():
    ver = "%d.%d" % sys.version_info[:2]
    bindir = os.path.dirname(os.path.realpath(sys.executable))
    for cand in (os.path.join(bindir, "python%s-config" % ver),
                 os.path.join(os.path.dirname(sys.executable), "python%s-config" % ver),
                 shutil.which("python%s-config" % ver)):
        if cand and os.path.exists(cand):
            return cand
    return None


def _compiler():
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        pytest.skip("no C compiler found (cc/gcc)")
    return cc


def _libpypy():
    """Path of the libpypy-c shared library of this PyPy, or None."""
    names = ["libpypy%d.%d-c.so" % sys.version_info[:2], "libpypy3-c.so", "libpypy-c.so"]
    ldlib = sysconfig.get_config_var("LDLIBRARY")
    if ldlib:
        names.insert(0, ldlib)
    bindir = os.path.dirname(os.path.realpath(sys.executable))
    dirs = [bindir, os.path.join(os.path.dirname(bindir), "lib")]
    multiarch = sysconfig.get_config_var("MULTIARCH")
    if multiarch:
        dirs += [os.path.join("/usr/lib", multiarch), os.path.join("/usr/local/lib", multiarch)]
    dirs += ["/usr/lib", "/usr/local/lib"]
    for d in dirs:
        for name in names:
            path = os.path.join(d, name)
            if os.path.exists(path):
                return path
    return None


def _build_pypy(tmp_path):
    """(program, extra environment) for PyPy."""
    cc = _compiler()
    lib = _libpypy()
    if lib is None:
        pytest.skip("no libpypy-c shared library found for this PyPy")
    exe = str(tmp_path / "embed_pypy")
    libdir, libname = os.path.split(lib)
    link = libname[3:-3] if libname.startswith("lib") and libname.endswith(".so") else None
    cmd = [cc, "-o", exe, os.path.join(HERE, "embed", "embed_pypy.c")]
    cmd += ["-L" + libdir, "-l" + link] if link else [lib]
    cmd += ["-Wl,-rpath," + libdir]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        pytest.fail("building the embedding program failed:\n%s\n%s" % (" ".join(cmd), out.stderr))
    return exe, {"EMBED_LIBPYPY": lib}


def _build(tmp_path):
    """(program, extra environment) for this interpreter."""
    impl = platform.python_implementation()
    if impl == "PyPy":
        return _build_pypy(tmp_path)
    if impl != "CPython":
        pytest.skip("no embedding recipe for %s" % impl)
    cc = _compiler()
    config = _python_config()
    if not config:
        pytest.skip("no python%d.%d-config for this interpreter" % sys.version_info[:2])

    def flags(kind):
        out = subprocess.run([config, kind, "--embed"], capture_output=True, text=True)
        if out.returncode != 0:
            pytest.skip("%s %s --embed failed: %s" % (config, kind, out.stderr.strip()))
        return out.stdout.split()

    exe = str(tmp_path / "embed")
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    cmd = ([cc, "-o", exe, os.path.join(HERE, "embed", "embed.c")] + flags("--includes")
           + flags("--ldflags") + ["-Wl,-rpath," + libdir])
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        if "cannot find -lpython" in out.stderr:
            pytest.skip("no libpython to link against: %s" % out.stderr.strip()[-200:])
        pytest.fail("building the embedding program failed:\n%s\n%s" % (" ".join(cmd), out.stderr))
    return exe, {"PYTHONHOME": sys.base_prefix}


@pytest.mark.timeout(120)
def test_c_host_drives_pycos(tmp_path):
    exe, extra = _build(tmp_path)
    env = dict(os.environ)
    env["PYTHONPATH"] = env["EMBED_SYSPATH"] = os.pathsep.join([ROOT] + [p for p in sys.path if p])
    env.update(extra)
    run_dir = tmp_path / "cwd"          # any directory: nothing depends on it
    run_dir.mkdir()
    out = subprocess.run([exe, os.path.join(HERE, "embed", "script.py")], cwd=str(run_dir),
                         capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    from pycos import reactor
    backend = env.get("PYCOS_BACKEND") or reactor.backends()[0]
    expected_mode = "mode run_once" if backend == "poll" else "mode fd"
    assert lines[0] == expected_mode
    assert lines[1].startswith("rounds ")
    assert lines[2:] == ["slept 1", "slept 2", "slept 3", "total 6", "got from a thread"]
