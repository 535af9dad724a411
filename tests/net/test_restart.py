"""A peer restarted at the same address is a new peer: the one we knew is
offline first.

Each scheduler draws a random incarnation (``boot``) at its start and says it
in its hellos.  A reconnect that reaches another incarnation than the one a
peer first named means that process is gone: what waited on it must end
(monitors get PeerOffline, requests fail) and the status tasks see it
Offline, then the new process Online -- rather than the reconnect passing
for the old process coming back, with its tasks' monitors waiting forever.

Real processes: the peer (a sleeper task), its successor on the same port,
and an observer, stopped (SIGSTOP) while the peer is killed and replaced, so
that its reconnect reaches the successor -- not a refused port, which is
the other (older) way a dead peer is noticed.
"""
import signal
import socket

import pytest

from pycos.net import wire

pytestmark = pytest.mark.timeout(60)

SLEEPER = """
from peerlib import *
import sys
sched = start(tcp_port=int(sys.argv[1]))
def sleeper(task=None):
    task.register("sleeper")
    yield task.sleep(3600)
pycos.Task(sleeper)
serve()
"""

OBSERVER = """
from peerlib import *
import sys
sched = start()
loc = pycos.Location(sys.argv[1], int(sys.argv[2]))
def watch(task=None):
    sched.peer_status(task)
    s = yield pycos.Task.locate("sleeper", loc, timeout=10)
    yield task.monitor(s)
    got, statuses = [], []
    while len(got) < 2 or not got[-1].startswith("online"):
        m = yield task.receive(timeout=20)
        if m is None:
            say("SILENT", *got)
            return
        if isinstance(m, pycos.PeerStatus):
            statuses.append(m)
            got.append(("online" if m.status == pycos.PeerStatus.Online else "offline"))
            if m.status == pycos.PeerStatus.Online and len(got) == 1:
                say("WATCHING")
        elif isinstance(m, pycos.MonitorStatus):
            got.append("monitor-" + m.type.__name__)
    s2 = yield pycos.Task.locate("sleeper", loc, timeout=10)
    say("SEEN", *got[1:])
    say("NEW", "same" if s2 == s else "other" if s2 is not None else "none")
    # which process each status is about: the old sleeper's, or the new one's
    off, on = statuses[-2], statuses[-1]
    say("ABOUT", off.about(s), off.about(s2), on.about(s), on.about(s2),
        statuses[0].about(s))
pycos.Task(watch)
serve()
"""


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_hello_carries_the_incarnation():
    boot = b"\x01" * wire.BOOT_SIZE
    h = wire.parse_hello(wire.make_hello(wire.new_nonce(), 5, "127.0.0.1", 1, "x", boot)[
        wire.HELLO_HEAD:])
    assert h.boot == boot
    h = wire.parse_hello(wire.make_hello(wire.new_nonce(), 5, "127.0.0.1", 1, "x")[
        wire.HELLO_HEAD:])
    assert h.boot is None
    with pytest.raises(ValueError):
        wire.make_hello(wire.new_nonce(), 5, "127.0.0.1", 1, "x", b"short")
    for bad in ('"zz"', '"%s"' % ("ab" * 3), "12"):
        body = ('{"v":1,"nonce":"%s","proto":5,"addr":"127.0.0.1","port":1,"name":"x",'
                '"boot":%s}' % ("00" * wire.NONCE_SIZE, bad)).encode()
        with pytest.raises(wire.ProtocolError, match="bad boot"):
            wire.parse_hello(body)


def test_peer_restarted_at_its_address_is_offline_then_new(spawn):
    port = _free_port()
    first = spawn(SLEEPER, name="first", args=[str(port)])
    loc = first.ready()
    observer = spawn(OBSERVER, name="observer", args=[loc.addr, str(loc.port)])
    observer.expect("^WATCHING$")
    observer.proc.send_signal(signal.SIGSTOP)
    try:
        first.kill()
        second = spawn(SLEEPER, name="second", args=[str(port)])
        assert second.ready() == loc
    finally:
        observer.proc.send_signal(signal.SIGCONT)
    said = observer.expect("^(SEEN|SILENT)").string.split()
    assert said[0] == "SEEN", observer.output()
    seen = said[1:]
    # the old peer ends first (its task's monitor, then or before its
    # Offline), then the new process is online, and its sleeper is another task
    assert sorted(seen[:-1]) == ["monitor-PeerOffline", "offline"], observer.output()
    assert seen[-1] == "online", observer.output()
    assert observer.expect("^NEW ").string == "NEW other", observer.output()
    # the first Online and the Offline are about the old process, the last
    # Online about the new one
    assert observer.expect("^ABOUT ").string == "ABOUT True False False True True"


def test_peer_status_about_and_pickle():
    import pickle

    import pycos
    from pycos.netpycos import PeerStatus

    class Ref(object):          # what about() reads of a remote task or channel
        def __init__(self, loc, stamp):
            self.location, self._stamp = loc, stamp
    loc = pycos.Location("127.0.0.1", 9705)
    st = PeerStatus(loc, "p", PeerStatus.Offline)
    st._stamps = (3, 5)                 # (what the node sets: the process's stamps)
    assert st.about(Ref(loc, 3)) and st.about(Ref(loc, 5))
    assert not st.about(Ref(loc, 7))                          # a successor's
    assert not st.about(Ref(pycos.Location("127.0.0.1", 9706), 3))
    assert not st.about(object())
    assert PeerStatus(loc, "p", PeerStatus.Offline).about(Ref(loc, 7))   # (stamps unknown)
    back = pickle.loads(pickle.dumps(st))
    assert (back.location, back.name, back.status, back._stamps) == (loc, "p", 0, (3, 5))
    old = PeerStatus.__new__(PeerStatus)
    old.__setstate__((loc, "p", 1))                            # (a 3-field state)
    assert old.about(Ref(loc, 7)) and old.status == 1
