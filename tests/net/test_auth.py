"""Authentication of netpycos connections (RELIABILITY.md C1, C2, C4, C5):
1,000 handshakes with a wrong secret, a recorded handshake replayed 100
times, a secret on one side only or two different secrets (a clear error on
both sides), and a TLS handshake stalled after its ClientHello.  The server
is a peer program in a real process (test_limits.SERVER, which counts what
reaches the deserializer and the post-authentication handler); C3 and the
wrong-CA/expired/plain-client TLS cases are in test_hostile.py and
test_net_tls.py."""
import socket
import time

import pytest

import pycos
from pycos.net import wire
from netutil import run, self_signed_cert
from test_hostile import _recv_exact
from test_limits import SERVER, await_closes, client_hello, connect, legit_round_trip, stats

pytestmark = pytest.mark.timeout(60)


def _hello():
    return wire.make_hello(wire.new_nonce(), 5, "127.0.0.1", 1, "raw")


def _initiate(loc, key, mine=None, proof=None):
    """The initiator's side of a handshake on a new connection: our hello
    (``mine``, else a fresh one), the server's hello, then ``proof`` (bytes,
    else the proof made with ``key``).  Returns (socket, what we sent)."""
    s = connect(loc)
    mine = mine or _hello()
    s.sendall(mine)
    head = _recv_exact(s, wire.HELLO_HEAD)
    theirs = head + _recv_exact(s, wire.parse_hello_head(head))
    if proof is None:
        proof = wire.proof(key, True, mine, theirs)
    s.sendall(proof)
    return s, mine + proof


def _refused(s, t0, timeout=5):
    """Seconds from ``t0`` until the server closed ``s`` without a byte
    more (no verdict, no acceptor proof); None if it did not close."""
    s.settimeout(timeout)
    try:
        got = s.recv(wire.VERDICT_SIZE)
    except socket.timeout:
        return None
    except ConnectionResetError:
        got = b""
    finally:
        s.close()
    assert got == b"", "the server answered an unauthenticated proof: %r" % got
    return time.monotonic() - t0


def test_wrong_secret_1000_handshakes(net, spawn):
    """C1: 1,000 handshakes proving a wrong secret: each refused (closed,
    with no verdict and no proof of the server's) well within the handshake
    deadline; nothing reached the post-authentication handler or the
    deserializer."""
    p = spawn(SERVER)
    loc = p.ready()
    key = wire.derive_key("not the secret")
    took = []
    for _ in range(1000):
        t0 = time.monotonic()
        s, _ = _initiate(loc, key)
        took.append(_refused(s, t0))
    closed = [t for t in took if t is not None]
    unpickled, attached = stats(p)[:2]
    print("C1: %d/1000 refused, max %.1f ms (deadline 2 s); %d attached, %d unpickled"
          % (len(closed), 1e3 * max(closed), attached, unpickled))
    assert len(closed) == 1000
    assert max(closed) < 2.0
    assert attached == 0 and unpickled == 0
    legit_round_trip(loc)
    assert stats(p)[1] == 1


def test_replayed_handshake_refused(net, spawn, secret):
    """C2: what an initiator that knows the secret sent in a successful
    handshake (its hello and its proof), replayed on 100 new connections:
    each refused -- the server's fresh nonce makes the old proof wrong."""
    p = spawn(SERVER)
    loc = p.ready()
    key = wire.derive_key(secret)
    s, recorded = _initiate(loc, key)
    v = _recv_exact(s, wire.VERDICT_SIZE)
    assert v[:1] == bytes((wire.ACCEPT,))          # that one was accepted
    s.close()
    hello, proof = recorded[:-wire.PROOF_SIZE], recorded[-wire.PROOF_SIZE:]
    took = []
    for i in range(100):
        t0 = time.monotonic()
        if i % 2:
            s, _ = _initiate(loc, None, mine=hello, proof=proof)
        else:           # all at once, without waiting for the server's hello
            s = connect(loc)
            s.sendall(recorded)
            s.settimeout(5)
            head = _recv_exact(s, wire.HELLO_HEAD)
            _recv_exact(s, wire.parse_hello_head(head))
        took.append(_refused(s, t0))
    closed = [t for t in took if t is not None]
    unpickled, attached = stats(p)[:2]
    print("C2: %d/100 replays refused, max %.1f ms; %d attached (the original)"
          % (len(closed), 1e3 * max(closed), attached))
    assert len(closed) == 100
    assert attached == 1 and unpickled == 0


# C4: this program's side is told where the test's scheduler listens
# ("addr port" on stdin), tries peer() and a locate there, and prints
# "PEER rc seconds found seconds"
MISMATCH = r"""
from peerlib import *
import sys, time
start()
def sink(task=None):
    task.register("sink")
    while True:
        yield task.receive()
pycos.Task(sink)
ready()
for line in sys.stdin:
    addr, port = line.split()
    def attempt(task=None):
        loc = pycos.Location(addr, int(port))
        t0 = time.monotonic()
        r = yield pycos.Pycos().peer(loc)
        t1 = time.monotonic()
        found = yield pycos.Task.locate("sink", loc, timeout=10)
        say("PEER", r, "%.3f" % (t1 - t0), found, "%.3f" % (time.monotonic() - t1))
    pycos.Task(attempt).value()
pycos.Pycos().terminate()
"""


@pytest.mark.parametrize("theirs", ["", "another secret"], ids=["no-secret", "other-secret"])
def test_secret_mismatch_is_a_clear_error(net, spawn, caplog, theirs):
    """C4: a peer with no secret, or another one: peer() gives -1 and a
    locate there None, within 5 s, in both directions; each side's log says
    why (ours: "the peer refused our proof -- do both sides use the same
    secret?"; theirs: "authentication failed (wrong secret?)")."""
    def sink(task=None):
        task.register("sink")
        while True:
            yield task.receive()
    pycos.Task(sink)
    p = spawn(MISMATCH, secret=theirs)
    loc = p.ready()

    def attempt(task=None):
        t0 = time.monotonic()
        r = yield net.peer(loc)
        t1 = time.monotonic()
        found = yield pycos.Task.locate("sink", loc, timeout=10)
        return r, t1 - t0, found, time.monotonic() - t1
    r, took, found, took_locate = run(attempt)
    theirs_log = p.expect(r"authentication failed").string
    ours_log = [r.getMessage() for r in caplog.records if "same secret" in r.getMessage()]
    # the other way round: they connect to us
    p.send_line("%s %d" % (net.location.addr, net.location.port))
    m = p.expect(r"^PEER (\S+) (\S+) (\S+) (\S+)$", timeout=15)
    assert any("same secret" in ln for ln in p.lines), p.output()
    ours_acceptor = [r.getMessage() for r in caplog.records
                     if "authentication failed" in r.getMessage()]
    print("C4 (%s): ours peer() %s in %.0f ms, locate %s in %.0f ms; theirs peer() %s in "
          "%.0f ms, locate %s in %.0f ms\n  our log: %s\n  their log: %s"
          % ("no secret" if not theirs else "other secret", r, 1e3 * took, found,
             1e3 * took_locate, m.group(1), 1e3 * float(m.group(2)), m.group(3),
             1e3 * float(m.group(4)), ours_log[0] if ours_log else None, theirs_log))
    assert r == -1 and took < 5
    assert found is None and took_locate < 5
    assert ours_log, [r.getMessage() for r in caplog.records]
    assert m.group(1) == "-1" and float(m.group(2)) < 5
    assert m.group(3) == "None" and float(m.group(4)) < 5
    assert ours_acceptor, [r.getMessage() for r in caplog.records]
    assert net.peers() == []


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 (path prefix of .pem/.key)."""
    d = tmp_path_factory.mktemp("cert")
    self_signed_cert(d, "node")
    return str(d / "node")


def test_tls_stalled_after_client_hello(net, spawn, cert):
    """C5: a real ClientHello, then nothing: the server (TLS, handshake
    deadline 2 s) answers it and closes the connection at the deadline
    +- 1 s (test_net_tls.py stalls before the ClientHello); 20 at once."""
    deadline = 2.0
    p = spawn(SERVER, env={"TLS_CERT": cert, "PYCOS_TEST_HANDSHAKE": str(deadline)})
    loc = p.ready()
    started = {}
    for _ in range(20):
        s = connect(loc)
        s.sendall(client_hello())
        started[s] = time.monotonic()
    ended = await_closes(started, deadline + 3)
    took = sorted(ended.values())
    print("C5: %d/20 stalled TLS handshakes closed after %.2f-%.2f s (deadline %.1f s)"
          % (len(took), took[0], took[-1], deadline))
    assert len(took) == 20
    assert deadline - 1 <= took[0] and took[-1] <= deadline + 1, took
    assert stats(p)[:2] == (0, 0)
