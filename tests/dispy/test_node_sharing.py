"""A node another client has: it says it is busy, and tells the waiting
client's scheduler when it is free, which then gets it; a node that pulses
less often than the client asked (its --min_pulse_interval) is watched at
its own interval, not taken for dead.

Loopback, real processes: the node (``cluster`` fixture), and a second
client program."""
import os
import re
import sys

import pytest

import pycos
from pycos import config
from pycos.dispycos import Client

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "net"))
from netutil import Proc  # noqa: E402

pytestmark = pytest.mark.timeout(90)


def nap(seconds, task=None):
    yield task.sleep(seconds)
    return seconds


SECOND = r"""
import logging, sys
import pycos, pycos.netpycos as netpycos
from pycos.core.log import logger
from pycos.core.support import Location
from pycos.dispycos import Client
def square(x, task=None):
    yield task.sleep(0)
    return x * x
handler = logging.StreamHandler(sys.stdout)
logger.addHandler(handler)
logger.setLevel(logging.INFO)
sched = netpycos.Pycos(name="second-client", host="127.0.0.1", udp_port=0,
                       secret=sys.argv[1])
def main(task=None):
    yield sched.peer(Location("127.0.0.1", int(sys.argv[2])))
    client = Client([square])
    assert (yield client.schedule()) == 0
    while not (yield client.servers()):
        yield task.sleep(0.05)
    job = yield client.rtask(square, 7)
    print("RESULT", (yield job(timeout=30)), flush=True)
    yield client.close()
pycos.Task(main).value(timeout=60)
sched.terminate()
"""


def test_busy_node_is_used_once_free(cluster, tmp_path):
    sched, start_node = cluster
    node = start_node(1)
    # (its first line, "dispycosnode NAME: 1 servers, at ADDRESS:PORT")
    port = int(re.search(r"at 127\.0\.0\.1:(\d+)", node.output()).group(1))
    first = Client([nap])

    def hold(task=None):
        assert (yield first.schedule()) == 0
        while not (yield first.servers()):
            yield task.sleep(0.05)
        job = yield first.rtask(nap, 3600)
        return job
    job = pycos.Task(hold).value(timeout=30)
    script = tmp_path / "second.py"
    script.write_text(SECOND)
    second = Proc("import runpy; runpy.run_path(%r, run_name='__main__')" % str(script),
                  start_node.secret, name="second", args=[start_node.secret, str(port)])
    try:
        second.expect(r"serves another client", timeout=30)

        def done(task=None):
            yield first.close(terminate=True)
            return (yield job(timeout=10))
        st = pycos.Task(done).value(timeout=30)
        assert isinstance(st, pycos.MonitorStatus) and st.type is KeyboardInterrupt
        second.expect(r"^RESULT 49$", timeout=30)
        assert second.proc.wait(30) == 0
    finally:
        second.kill()
        second.proc.stdout.close()


def test_node_pulsing_slower_than_asked_is_not_taken_for_dead(cluster, monkeypatch):
    """The client asks for a pulse a second and a zombie period of 2 s; the
    node pulses every 4 s (its --min_pulse_interval): a 7 s job ends
    normally, the node still in use."""
    sched, start_node = cluster
    monkeypatch.setattr(config, "MinPulseInterval", 1)
    start_node(1, extra=["--msg_timeout", "1", "--min_pulse_interval", "4"])
    client = Client([nap], pulse_interval=1, zombie_period=2)

    def main(task=None):
        assert (yield client.schedule()) == 0
        while not (yield client.servers()):
            yield task.sleep(0.05)
        job = yield client.rtask(nap, 7)
        value = yield job(timeout=30)
        nodes = yield client.nodes()
        yield client.close()
        return value, nodes
    value, nodes = pycos.Task(main).value(timeout=60)
    assert value == 7 and nodes == ["127.0.0.1"]
