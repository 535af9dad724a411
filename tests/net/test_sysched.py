"""Two schedulers per process: the network keeps working while a user task
computes for seconds without yielding."""
import time

import pytest

import pycos
from netutil import run

pytestmark = pytest.mark.timeout(60)

BUSY = """
from peerlib import *
import time
sched = start()
def busy(task=None):
    task.register("busy")
    while True:
        msg = yield task.receive()
        if msg == "compute":
            say("COMPUTING")
            end = time.monotonic() + 3.0
            while time.monotonic() < end:     # never yields
                pass
            say("COMPUTED")
pycos.Task(busy)
serve()
"""


def test_network_is_served_while_user_task_computes(net, spawn):
    from pycos import config
    config.PeerTimeout = 1.0          # this side would call the peer lost after 1 s of silence
    p = spawn(BUSY, env={"PYCOS_TEST_PEER_TIMEOUT": "1.0"})
    loc = p.ready()
    third = spawn("""
from peerlib import *
import sys
sched = start()
def go(task=None):
    loc = pycos.Location(sys.argv[1], int(sys.argv[2]))
    t0 = time.monotonic()
    r = yield sched.peer(loc)
    say("PEERED", r, round(time.monotonic() - t0, 3))
import time
ready()
sys.stdin.readline()
pycos.Task(go)
serve()
""", name="third", args=[loc.addr, str(loc.port)])
    third.ready()

    def client(task=None):
        busy = yield pycos.Task.locate("busy", loc, timeout=10)
        net.peer_status(task)
        assert (yield task.receive(timeout=5)).status == 1
        busy.send("compute")
        p.expect("COMPUTING")
        t0 = time.monotonic()
        # the peer's user scheduler is stuck; its system scheduler is not
        acks = []
        for _ in range(5):
            acks.append((yield busy.deliver("queued", timeout=5)))
        took = time.monotonic() - t0
        third.send_line("go")
        m = third.expect(r"^PEERED (\S+) (\S+)$")
        # still inside the computation, and nobody was declared offline
        left = 3.0 - (time.monotonic() - t0)
        offline = yield task.receive(timeout=0)
        p.expect("COMPUTED")
        return acks, took, m.group(1), float(m.group(2)), left, offline
    acks, took, peered, handshake, left, offline = run(client, timeout=30)
    assert acks == [1] * 5
    assert took < 1.0, took
    assert peered == "0" and handshake < 1.0, handshake
    assert left > 0, "the checks took longer than the computation"
    assert offline is None


LENT_BUSY = """
from peerlib import *
import time
sched = start()
def busy(task=None):
    task.register("busy")
    while True:
        msg = yield task.receive()
        if msg == "compute":
            # the replies below made this user thread run the system
            # scheduler whenever it idled (pycos/core/lend.py)
            say("LENT", sched._lend is not None and sched._lend.state == 1)
            end = time.monotonic() + 3.0
            while time.monotonic() < end:     # never yields
                pass
            say("COMPUTED")
        else:
            msg.send("pong")
pycos.Task(busy)
serve()
"""


def test_a_lent_system_scheduler_is_taken_back_while_user_task_computes(net, spawn):
    p = spawn(LENT_BUSY)
    loc = p.ready()

    def client(task=None):
        busy = yield pycos.Task.locate("busy", loc, timeout=10)
        for _ in range(20):
            busy.send(task)
            assert (yield task.receive(timeout=5)) == "pong"
        # this side idles through the lend too: its replies were read by
        # this (the user's) thread
        sched = pycos.Pycos.instance()
        lend = sched._lend
        here = lend is not None and lend.state == 1
        if not here:                    # only where the loop has no descriptor to watch
            with pytest.raises(OSError):
                sched.loop.fileno()
        busy.send("compute")
        lent = p.expect(r"^LENT (\S+)$").group(1)
        t0 = time.monotonic()
        acks = []
        for _ in range(5):
            acks.append((yield busy.deliver("queued", timeout=5)))
        took = time.monotonic() - t0
        p.expect("COMPUTED")
        return here, lent, acks, took
    here, lent, acks, took = run(client, timeout=30)
    assert lent == str(here)
    # the computing peer's system thread took its rounds back and answered
    assert acks == [1] * 5
    assert took < 1.0, took
