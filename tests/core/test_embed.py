"""Embedding: a C program embeds Python, imports pycos, starts tasks and
drives the scheduler from its own poll() loop on fileno() until they finish.

The program is built here with the C compiler and the flags of
``python3-config --embed``.  Skipped only when that is impossible: no C
compiler, no python3-config for this interpreter, no libpython to link
(PyPy has no embeddable libpython, so it always skips here).
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


def _build(tmp_path):
    if platform.python_implementation() != "CPython":
        pytest.skip("%s has no embeddable libpython (python3-config --embed is CPython's)"
                    % platform.python_implementation())
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        pytest.skip("no C compiler found (cc/gcc)")
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
    cmd = ([cc, "-o", exe, os.path.join(HERE, "embed", "embed.c")] + flags("--cflags")
           + flags("--ldflags") + ["-Wl,-rpath," + libdir])
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        if "cannot find -lpython" in out.stderr:
            pytest.skip("no libpython to link against: %s" % out.stderr.strip()[-200:])
        pytest.fail("building the embedding program failed:\n%s\n%s" % (" ".join(cmd), out.stderr))
    return exe


@pytest.mark.timeout(120)
def test_c_host_drives_pycos(tmp_path):
    exe = _build(tmp_path)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([ROOT] + [p for p in sys.path if p])
    env["PYTHONHOME"] = sys.base_prefix
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
