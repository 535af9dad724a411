"""``python -m pycos``: the facts a bug report needs, one ``name: value``
per line, each checked against what this interpreter really has."""
import os
import platform
import re
import subprocess
import sys

import pytest

import pycos
from pycos import reactor

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

pytestmark = pytest.mark.timeout(60)


def _run(*args, backend=None):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([ROOT] + [p for p in [env.get("PYTHONPATH")] if p])
    env.pop("PYCOS_BACKEND", None)
    if backend is not None:
        env["PYCOS_BACKEND"] = backend
    p = subprocess.run([sys.executable, "-m", "pycos"] + list(args), env=env,
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=50)
    return p.returncode, p.stdout, p.stderr


def _fields(out):
    fields = {}
    for line in out.splitlines():
        m = re.match(r"^([a-z][a-z ]*): +(.*)$", line)
        assert m, "not a 'name: value' line: %r" % (line,)
        fields[m.group(1)] = m.group(2)
    return fields


@pytest.mark.parametrize("backend", reactor.backends())
def test_report(backend):
    rc, out, err = _run(backend=backend)
    assert rc == 0 and err == "", (rc, out, err)
    f = _fields(out)
    assert f["pycos"] == "%s (%s)" % (pycos.__version__,
                                      os.path.dirname(os.path.abspath(pycos.__file__)))
    impl = platform.python_implementation()
    assert f["python"].startswith(impl + " ") and platform.python_version() in f["python"]
    assert f["python"].endswith("(%s)" % sys.executable)
    assert f["platform"] == platform.platform()
    assert f["reactor backend"] == "%s (PYCOS_BACKEND=%s)" % (backend, backend)
    assert f["backends compiled"] == ", ".join(reactor.backends())
    from pycos import _reactor
    assert f["extension"] == os.path.abspath(_reactor.__file__)
    assert os.path.exists(f["extension"])
    import cffi
    assert f["cffi"] == cffi.__version__
    from pycos.io import file as iofile
    assert f["process waits"].startswith(
        "reaper thread" if iofile._pidfd_open is None else "pidfd through the reactor")
    import ssl
    assert f["openssl"] == ssl.OPENSSL_VERSION


def test_default_backend_without_the_variable():
    rc, out, err = _run()
    assert rc == 0, (out, err)
    assert _fields(out)["reactor backend"] == reactor.backends()[0]


def test_a_broken_setting_is_reported_in_its_line_and_the_status():
    rc, out, err = _run(backend="no-such-backend")
    assert rc == 1, (out, err)
    line = _fields(out)["reactor backend"]
    assert line.startswith("error: ValueError: unknown reactor backend 'no-such-backend'"), line
    assert _fields(out)["pycos"].startswith(pycos.__version__)   # the rest is still there


def test_version_and_usage():
    rc, out, err = _run("--version")
    assert (rc, out, err) == (0, pycos.__version__ + "\n", "")
    rc, out, err = _run("--bogus")
    assert rc == 2 and "usage: python -m pycos" in err
