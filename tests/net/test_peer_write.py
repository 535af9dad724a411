"""Who writes a peer's frames (pycos/net/peer.py): the round-end write of the
thread that queued them, or the writer task -- never both at once.

A fake node and connection stand in for the real ones, so each rule of the
hand-over is checked exactly: nothing is written while the writer has bytes
in flight, a round's frames go out in one send, what does not fit stays at
the head of the queue for the writer, and TLS, an unconnected peer or a
stream of frames are left to the writer.
"""
import pytest

from pycos.net import peer as peermod

pytestmark = pytest.mark.timeout(10)


class FakeSched(object):
    _lend = None

    def __init__(self):
        self.posted = []
        self.round_end = {}

    def _post(self, fn, *args):
        self.posted.append(fn)
        return True

    def _at_round_end(self, key, fn):
        self.round_end[key] = fn


class FakeNode(object):
    _proto = 5

    def __init__(self):
        self._sys = FakeSched()

    def _sys_task(self, fn, *args):
        pass


class FakeSock(object):
    def __init__(self, room):
        self.room = room
        self.sent = []

    def send(self, data):
        n = min(len(data), self.room)
        if n == 0:
            raise BlockingIOError()
        self.room -= n
        self.sent.append(bytes(data[:n]))
        return n


class FakeConn(object):
    def __init__(self, room=1 << 20, tls=False):
        self._sock = FakeSock(room)
        self._tls_cfg = object() if tls else None


@pytest.fixture
def on_loop(monkeypatch):
    """Make the test's thread look like a scheduler's loop thread."""
    user = FakeSched()
    monkeypatch.setattr(peermod, "_sched_of_thread", lambda ident: user)
    return user


def make(room=1 << 20, tls=False, connected=True):
    node = FakeNode()
    p = peermod.Peer(node, ("127.0.0.1", 1))
    p.conn = FakeConn(room, tls) if connected else None
    p.idle = True
    return p, node._sys


def test_frames_of_a_round_go_out_in_one_send(on_loop):
    p, sys = make()
    p.enqueue(b"a")
    p.enqueue(b"bc")
    assert p.out == [b"a", b"bc"] and p.conn._sock.sent == []
    assert on_loop.round_end == {p: p._flush}
    on_loop.round_end.pop(p)()
    assert p.conn._sock.sent == [b"abc"]
    assert p.out == [] and p.idle and sys.posted == []


def test_nothing_written_while_the_writer_has_bytes_in_flight(on_loop):
    p, sys = make()
    p.idle = False                      # the writer took a batch and sends it
    p.enqueue(b"later")
    p._flush()
    assert p.conn._sock.sent == [] and p.out == [b"later"]


def test_a_partial_write_leaves_the_rest_first_for_the_writer(on_loop):
    p, sys = make(room=3)
    p.enqueue(b"abcdef")
    p.enqueue(b"gh")
    p._flush()
    assert p.conn._sock.sent == [b"abc"]
    assert b"".join(p.out) == b"defgh"
    assert not p.idle and sys.posted == [p._wake]


def test_a_full_socket_hands_everything_to_the_writer(on_loop):
    p, sys = make(room=0)
    p.enqueue(b"abc")
    p._flush()
    assert p.out == [b"abc"] and not p.idle and sys.posted == [p._wake]


@pytest.mark.parametrize("case", ["tls", "unconnected"])
def test_tls_and_connecting_are_the_writers(on_loop, case):
    p, sys = make(tls=case == "tls", connected=case == "tls")
    p.enqueue(b"abc")
    p._flush()
    assert p.out == [b"abc"] and not p.idle and sys.posted == [p._wake]
    if p.conn is not None:
        assert p.conn._sock.sent == []


def test_a_stream_of_frames_wakes_the_writer_at_once(on_loop):
    """Past a few frames in one round the writer takes over right away, so
    its sends overlap with the work of the thread that queues."""
    p, sys = make()
    for i in range(peermod._DIRECT_FRAMES + 1):
        p.enqueue(b"x")
    assert not p.idle and sys.posted == [p._wake]
    p._flush()                          # the round end finds the writer busy
    assert p.conn._sock.sent == []


def test_plain_threads_hand_frames_to_the_writer():
    """No scheduler on this thread: the writer is woken (the test itself
    runs outside any scheduler)."""
    p, sys = make()
    p.enqueue(b"abc")
    assert not p.idle and sys.posted == [p._wake]
