"""Completion-style operations: every op's inline and deferred path, the
error results (EOF, reset, refused, broken pipe), cancel and forget, and
scale.  Runs on the backend chosen by PYCOS_BACKEND."""
import errno
import hashlib
import os
import socket
import struct
import threading
import time

import pytest
from hypothesis import given, settings, strategies as st

from pycos import reactor
from pycos.reactor import EV_DONE, EV_READY, PENDING, READ, WRITE, Event


@pytest.fixture
def pair(loop):
    """A connected AF_UNIX stream pair; the loop forgets both at the end."""
    a, b = socket.socketpair()
    yield a, b
    for s in (a, b):
        loop.forget(s.fileno())
        s.close()


@pytest.fixture
def tcp(loop):
    """(listener, client, server) connected over loopback TCP."""
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(16)
    cli = socket.create_connection(lst.getsockname())
    srv, _ = lst.accept()
    yield lst, cli, srv
    for s in (lst, cli, srv):
        loop.forget(s.fileno())
        s.close()


def test_recv_inline_when_data_is_there(loop, pair):
    a, b = pair
    b.sendall(b"hello")
    buf = bytearray(16)
    assert loop.recv(a.fileno(), buf, 1) == 5
    assert buf[:5] == b"hello"
    assert loop.statistics()["pending_ops"] == 0


def test_recv_deferred_then_event(loop, pair, collect):
    a, b = pair
    buf = bytearray(16)
    assert loop.recv(a.fileno(), buf, 42) == PENDING
    assert loop.statistics()["pending_ops"] == 1
    b.sendall(b"later")
    assert collect(loop, 1) == [Event(42, EV_DONE, 5, 5)]
    assert buf[:5] == b"later"


def test_recv_lazy_waits_without_the_buffer(loop, pair, collect):
    a, b = pair
    with pytest.raises(ValueError):
        loop.recv(a.fileno(), bytearray(4), 1, all=True, lazy=True)
    b.sendall(b"now")
    buf = bytearray(16)
    assert loop.recv(a.fileno(), buf, 2, lazy=True) == 3          # inline as usual
    buf = bytearray(b"x" * 16)
    assert loop.recv(a.fileno(), buf, 3, lazy=True) == PENDING
    del buf                                    # nothing of it is kept
    assert loop._held == {}
    b.sendall(b"later")
    assert collect(loop, 1) == [Event(3, EV_READY, READ, 0)]
    buf = bytearray(16)
    assert loop.recv(a.fileno(), buf, 4, lazy=True) == 5
    assert buf[:5] == b"later"
    assert loop.statistics()["pending_ops"] == 0


def test_drained_after_the_callers_own_read(loop, pair, collect):
    """After a READY event the caller reads itself; drained() then spares
    the next lazy recv its EAGAIN, and data arriving later still comes."""
    a, b = pair
    with pytest.raises(OSError) as e:
        loop.drained(-1)
    assert e.value.errno == errno.EBADF
    with pytest.raises(OSError) as e:
        loop.drained(a.fileno(), 4)
    assert e.value.errno == errno.EINVAL
    buf = bytearray(16)
    assert loop.recv(a.fileno(), buf, 1, lazy=True) == PENDING
    b.sendall(b"one")
    assert collect(loop, 1) == [Event(1, EV_READY, READ, 0)]
    assert os.read(a.fileno(), 16) == b"one"
    loop.drained(a.fileno(), READ)
    before = loop.statistics()["syscalls"]
    assert loop.recv(a.fileno(), buf, 2, lazy=True) == PENDING
    assert loop.statistics()["syscalls"] == before
    b.sendall(b"two")
    assert collect(loop, 1) == [Event(2, EV_READY, READ, 0)]
    assert loop.recv(a.fileno(), buf, 3, lazy=True) == 3
    assert buf[:3] == b"two"


def test_recv_all_across_several_writes(loop, pair, collect):
    a, b = pair
    buf = bytearray(10)
    b.sendall(b"abc")
    assert loop.recv(a.fileno(), buf, 1, all=True) == PENDING
    b.sendall(b"defg")
    assert loop.poll(0.01) == []          # 7 of 10: still waiting
    b.sendall(b"hijk")
    assert collect(loop, 1) == [Event(1, EV_DONE, 10, 10)]
    assert bytes(buf) == b"abcdefghij"
    assert a.recv(10) == b"k"


def test_eof_gives_zero_and_recv_all_gives_what_came(loop, pair, collect):
    a, b = pair
    buf = bytearray(10)
    assert loop.recv(a.fileno(), buf, 1, all=True) == PENDING
    b.sendall(b"xyz")
    b.shutdown(socket.SHUT_WR)
    assert collect(loop, 1) == [Event(1, EV_DONE, 3, 3)]
    assert loop.recv(a.fileno(), buf, 2) == 0


def test_send_inline(loop, pair):
    a, b = pair
    assert loop.send(a.fileno(), b"data", 1) == 4
    assert b.recv(10) == b"data"


def test_send_all_of_a_large_buffer(loop, pair, collect):
    a, b = pair
    payload = os.urandom(8 << 20)
    got = hashlib.sha256()
    count = [0]

    def reader():
        while count[0] < len(payload):
            chunk = b.recv(1 << 16)
            if not chunk:
                break
            got.update(chunk)
            count[0] += len(chunk)

    t = threading.Thread(target=reader)
    t.start()
    rc = loop.send(a.fileno(), memoryview(payload), 9, all=True)
    if rc == PENDING:
        (ev,) = collect(loop, 1, timeout=30)
        assert ev == Event(9, EV_DONE, len(payload), len(payload))
    else:
        assert rc == len(payload)
    t.join()
    assert count[0] == len(payload)
    assert got.digest() == hashlib.sha256(payload).digest()


def test_partial_send_without_all(loop, pair):
    a, b = pair
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    big = b"x" * (4 << 20)
    n = loop.send(a.fileno(), big, 1)
    assert 0 < n < len(big), "a plain send returns what fit"
    # now the buffer is full: the next send waits
    assert loop.send(a.fileno(), big, 2) == PENDING
    assert loop.cancel(a.fileno(), WRITE) == 1
    assert loop.poll(0) == [Event(2, EV_DONE, 0, -errno.ECANCELED)]


def test_broken_pipe_is_an_error_not_a_signal(loop, pair):
    a, b = pair
    b.close()
    with pytest.raises(BrokenPipeError):
        loop.send(a.fileno(), b"x" * 100, 1)


def test_connection_reset(loop, tcp, collect):
    lst, cli, srv = tcp
    buf = bytearray(10)
    rc = loop.recv(cli.fileno(), buf, 3)
    assert rc == PENDING
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    srv.close()
    (ev,) = collect(loop, 1)
    assert ev.token == 3 and ev.kind == EV_DONE
    assert isinstance(reactor.error(ev.result), ConnectionResetError)


def test_reset_after_some_data_of_an_all_recv(loop, tcp, collect):
    """An all=True recv that meets a reset after some data returns the data
    and keeps the error: take_error() hands it over once (else the next
    recv would raise it); the kernel reports it only once itself."""
    lst, cli, srv = tcp
    buf = bytearray(10)
    assert loop.recv(cli.fileno(), buf, 1, all=True) == PENDING
    srv.sendall(b"abc")
    deadline = time.monotonic() + 5
    while loop.pending_done(cli.fileno(), READ) != 3 and time.monotonic() < deadline:
        loop.poll(0.01)
    assert loop.pending_done(cli.fileno(), READ) == 3
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    srv.close()
    (ev,) = collect(loop, 1)
    assert ev.token == 1 and ev.kind == EV_DONE and ev.aux == 3
    assert ev.result == 3 and buf[:3] == b"abc"
    assert isinstance(loop.take_error(cli.fileno()), ConnectionResetError)
    assert loop.take_error(cli.fileno()) is None
    assert loop.recv(cli.fileno(), buf, 2) == 0        # the kernel: end of stream


def test_accept_inline_and_deferred(loop, collect):
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(8)
    clients = []
    try:
        assert loop.accept(lst.fileno(), 1) == PENDING
        clients.append(socket.create_connection(lst.getsockname()))
        (ev,) = collect(loop, 1)
        assert ev.token == 1 and ev.kind == EV_DONE and ev.result > 0
        fds = [ev.result]
        clients.append(socket.create_connection(lst.getsockname()))
        # the connection is queued: accept completes inline (or, with a
        # drained hint, the next readiness report completes it)
        rc = loop.accept(lst.fileno(), 2)
        if rc == PENDING:
            (ev,) = collect(loop, 1)
            rc = ev.result
        fds.append(rc)
        for fd in fds:
            import fcntl
            assert fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK
            assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
            os.close(fd)
    finally:
        loop.forget(lst.fileno())
        lst.close()
        for c in clients:
            c.close()


def _connect(loop, sock, addr, token, collect):
    rc = loop.connect(sock.fileno(), addr, token)
    if rc == PENDING:
        (ev,) = collect(loop, 1)
        assert ev.token == token and ev.kind == EV_DONE
        return ev.result
    return rc


def test_connect_tcp(loop, collect):
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(1)
    c = socket.socket()
    try:
        assert _connect(loop, c, reactor.sockaddr(socket.AF_INET, lst.getsockname()), 5, collect) == 0
        s, peer = lst.accept()
        assert peer == c.getsockname()
        s.close()
    finally:
        for x in (lst, c):
            loop.forget(x.fileno())
            x.close()


def test_connect_refused(loop, collect):
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    addr = probe.getsockname()
    probe.close()                       # nobody listens there now
    c = socket.socket()
    try:
        try:
            rc = _connect(loop, c, reactor.sockaddr(socket.AF_INET, addr), 1, collect)
        except ConnectionRefusedError:
            rc = -errno.ECONNREFUSED
        assert rc == -errno.ECONNREFUSED
    finally:
        loop.forget(c.fileno())
        c.close()


def test_connect_unix_path(loop, collect, tmp_path):
    path = str(tmp_path / "sock")
    lst = socket.socket(socket.AF_UNIX)
    lst.bind(path)
    lst.listen(1)
    c = socket.socket(socket.AF_UNIX)
    try:
        assert _connect(loop, c, reactor.sockaddr(socket.AF_UNIX, path), 1, collect) == 0
        s, _ = lst.accept()
        s.close()
    finally:
        for x in (lst, c):
            loop.forget(x.fileno())
            x.close()


@pytest.mark.parametrize("family,host", [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")])
def test_udp_recvfrom_sendto(loop, collect, family, host):
    try:
        u1 = socket.socket(family, socket.SOCK_DGRAM)
        u1.bind((host, 0))
    except OSError as exc:
        pytest.skip("no %s loopback here: %s" % (host, exc))
    u2 = socket.socket(family, socket.SOCK_DGRAM)
    u2.bind((host, 0))
    try:
        buf = bytearray(64)
        ab = reactor.AddrBuffer()
        assert loop.recvfrom(u1.fileno(), buf, ab, 1) == PENDING
        dest = reactor.sockaddr(family, u1.getsockname())
        assert loop.sendto(u2.fileno(), b"dgram", dest, 2) == 5
        assert collect(loop, 1) == [Event(1, EV_DONE, 0, 5)]
        assert buf[:5] == b"dgram"
        assert ab.address()[:2] == u2.getsockname()[:2]
        # inline path: a datagram already queued
        u2.sendto(b"two", u1.getsockname())
        n = loop.recvfrom(u1.fileno(), buf, ab, 3)
        if n == PENDING:
            (ev,) = collect(loop, 1)
            n = ev.result
        assert buf[:n] == b"two"
    finally:
        for x in (u1, u2):
            loop.forget(x.fileno())
            x.close()


def test_sockaddr_round_trip():
    for family, addr in [(socket.AF_INET, ("10.1.2.3", 80)),
                         (socket.AF_INET6, ("fe80::1", 443, 0, 2)),
                         (socket.AF_UNIX, "/tmp/x.sock")]:
        assert reactor.parse_sockaddr(reactor.sockaddr(family, addr)) == (family, addr)
    with pytest.raises(ValueError):
        reactor.sockaddr(socket.AF_UNIX, "x" * 200)
    with pytest.raises(OSError):
        reactor.sockaddr(socket.AF_INET, ("not-an-ip", 1))


def test_watch(loop, pair, collect):
    a, b = pair
    assert loop.watch(a.fileno(), WRITE, 1) == WRITE           # writable now: inline
    assert loop.watch(a.fileno(), READ, 2) == PENDING
    loop.poll(0)
    b.sendall(b"!")
    assert collect(loop, 1) == [Event(2, EV_READY, READ, 0)]
    assert loop.watch(a.fileno(), READ | WRITE, 3) == READ | WRITE
    a.recv(1)
    # a both-sides watch fires once, with the side that became ready
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    while True:
        try:
            a.send(b"z" * 65536, socket.MSG_DONTWAIT)
        except BlockingIOError:
            break
    assert loop.watch(a.fileno(), READ | WRITE, 4) == PENDING
    b.sendall(b"?")
    (ev,) = collect(loop, 1)
    assert ev.token == 4 and ev.kind == EV_READY and ev.aux & READ
    assert loop.statistics()["pending_ops"] == 0


def test_second_operation_on_a_side_is_busy(loop, pair):
    a, b = pair
    buf = bytearray(4)
    assert loop.recv(a.fileno(), buf, 1) == PENDING
    with pytest.raises(OSError) as info:
        loop.recv(a.fileno(), bytearray(4), 2)
    assert info.value.errno == errno.EBUSY
    with pytest.raises(OSError):
        loop.watch(a.fileno(), READ, 3)
    assert loop.send(a.fileno(), b"ok", 4) == 2   # the other side is free
    assert loop.cancel(a.fileno(), READ) == 1
    assert loop.poll(0) == [Event(1, EV_DONE, 0, -errno.ECANCELED)]


def test_cancel_reports_progress_of_send_all(loop, pair, collect):
    a, b = pair
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    big = b"y" * (4 << 20)
    assert loop.send(a.fileno(), big, 7, all=True) == PENDING
    sent = loop.pending_done(a.fileno(), WRITE)
    assert 0 < sent < len(big)
    assert loop.pending_done(a.fileno(), READ) is None
    assert loop.cancel(a.fileno()) == 1
    assert loop.pending_done(a.fileno(), WRITE) is None
    assert loop.cancel(a.fileno()) == 0
    (ev,) = collect(loop, 1)
    assert ev.token == 7 and ev.result == -errno.ECANCELED
    assert ev.aux == sent


def test_forget_cancels_everything_and_drops_the_fd(loop, pair, collect):
    a, b = pair
    buf = bytearray(4)
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    assert loop.recv(a.fileno(), buf, 1) == PENDING
    assert loop.send(a.fileno(), b"w" * (4 << 20), 2, all=True) == PENDING
    s = loop.statistics()
    assert s["pending_ops"] == 2 and s["known_fds"] == 1
    assert s["registered_fds"] == 1
    assert loop.forget(a.fileno()) == 2
    events = collect(loop, 2)
    assert sorted((e.token, e.result) for e in events) == [(1, -errno.ECANCELED),
                                                            (2, -errno.ECANCELED)]
    s = loop.statistics()
    assert (s["pending_ops"], s["known_fds"], s["registered_fds"]) == (0, 0, 0)


def test_pipe_through_recv_and_send(loop, collect):
    r, w = os.pipe()
    try:
        buf = bytearray(8)
        assert loop.recv(r, buf, 1) == PENDING      # falls back to read()
        assert loop.send(w, b"piped", 2) == 5       # and write()
        assert collect(loop, 1) == [Event(1, EV_DONE, 5, 5)]
        assert buf[:5] == b"piped"
        os.close(w)
        loop.forget(w)
        w = -1
        assert loop.recv(r, buf, 3) == 0            # EOF
    finally:
        loop.forget(r)
        os.close(r)
        if w >= 0:
            os.close(w)


def test_regular_file_reads_inline(loop, tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"file content")
    fd = os.open(str(p), os.O_RDONLY)
    try:
        buf = bytearray(64)
        assert loop.recv(fd, buf, 1) == 12
        assert buf[:12] == b"file content"
    finally:
        loop.forget(fd)
        os.close(fd)


def test_bad_descriptor(loop):
    with pytest.raises(OSError) as info:
        loop.recv(-1, bytearray(1), 1)
    assert info.value.errno == errno.EBADF
    r, w = os.pipe()
    os.close(w)
    os.close(r)
    with pytest.raises(OSError) as info:
        loop.recv(r, bytearray(1), 1)
    assert info.value.errno == errno.EBADF
    loop.forget(r)


@pytest.mark.timeout(120)
def test_ten_thousand_descriptors(loop, collect):
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 10_400
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            pytest.skip("RLIMIT_NOFILE hard limit %d < %d" % (hard, need))
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    pairs = []
    try:
        for _ in range(5000):
            pairs.append(socket.socketpair())
        bufs = []
        for i, (a, b) in enumerate(pairs):
            for j, s in enumerate((a, b)):
                buf = bytearray(8)
                bufs.append(buf)
                assert loop.recv(s.fileno(), buf, 2 * i + j, all=True) == PENDING
        s = loop.statistics()
        assert s["pending_ops"] == 10_000 and s["registered_fds"] == 10_000
        for i, (a, b) in enumerate(pairs):
            a.send(struct.pack("q", 2 * i + 1))
            b.send(struct.pack("q", 2 * i))
        events = collect(loop, 10_000, timeout=60)
        assert sorted(e.token for e in events) == list(range(10_000))
        assert all(e.result == 8 for e in events)
        assert all(struct.unpack("q", bufs[k])[0] == k for k in range(10_000))
    finally:
        for a, b in pairs:
            for s in (a, b):
                loop.forget(s.fileno())
                s.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=3000), min_size=1, max_size=20))
def test_random_chunkings_reassemble_through_recv_all(chunks):
    data = b"".join(chunks)
    with reactor.Loop() as lp:
        a, b = socket.socketpair()
        try:
            buf = bytearray(len(data))
            rc = lp.recv(a.fileno(), buf, 1, all=True)
            for c in chunks:
                b.sendall(c)
                if rc != PENDING:
                    break
            got = rc
            while got == PENDING:
                for ev in lp.poll(5):
                    got = ev.result
            assert got == len(data)
            assert bytes(buf) == data
        finally:
            lp.forget(a.fileno())
            a.close()
            b.close()
