"""A CPython peer and a PyPy peer talk to each other (negotiated pickle
protocol, same wire): messages, RPS, and a monitor across them."""
import os
import platform

import pytest

import pycos
from netutil import ROOT, run

pytestmark = pytest.mark.timeout(60)


def _other_python():
    mine = platform.python_implementation()
    other = "pypy" if mine == "CPython" else "cpython"
    path = os.path.join(ROOT, ".venv", other, "bin", "python")
    return path if os.path.exists(path) else None


OTHER = _other_python()


@pytest.mark.skipif(OTHER is None, reason="the other interpreter's venv (.venv/cpython or "
                    ".venv/pypy, made by `make setup`) is not there")
def test_cpython_and_pypy_peers(net, spawn):
    p = spawn("""
from peerlib import *
import platform
sched = start()
def square(x, task=None):
    yield task.sleep(0)
    return (platform.python_implementation(), x * x)
pycos.RPS(square).register()
def echo(task=None):
    task.register("echo")
    while True:
        who, m = yield task.receive()
        who.send((platform.python_implementation(), m))
pycos.Task(echo)
serve()
""", python=OTHER)
    loc = p.ready()

    def client(task=None):
        echo = yield pycos.Task.locate("echo", loc, timeout=15)
        payload = {"big": b"x" * 200000, "nested": [1.5, None, ("t", frozenset({3}))]}
        echo.send((task, payload))
        impl, back = yield task.receive(timeout=10)
        assert back == payload
        rps = yield pycos.RPS.locate("square", loc, timeout=10)
        t = yield rps(12)
        assert (yield task.monitor(t)) in (0, -1)
        r = yield t.finish(timeout=10)
        return impl, r
    impl, r = run(client)
    assert impl != platform.python_implementation()
    assert r == (impl, 144)
