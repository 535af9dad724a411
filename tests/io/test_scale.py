"""Scale and integrity: 1,000 concurrent connections, tens of MiB per
transfer checked by hash, and random chunkings of a byte stream that must
always reassemble through recvall / recv_msg (hypothesis)."""
import hashlib
import os
import socket

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import pycos
from pycos.io import AsyncSocket

from iohelp import addr_of, listener


@pytest.fixture
def nofile(request):
    """Raise the soft RLIMIT_NOFILE to at least ``need`` (restored after;
    Windows has no such limit on sockets)."""
    if os.name == "nt":
        yield lambda need: None
        return
    import resource
    old = resource.getrlimit(resource.RLIMIT_NOFILE)

    def ensure(need):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < need:
            if hard != resource.RLIM_INFINITY and hard < need:
                pytest.skip("RLIMIT_NOFILE hard limit %d < %d" % (hard, need))
            resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))

    yield ensure
    resource.setrlimit(resource.RLIMIT_NOFILE, old)


@pytest.mark.timeout(180)
def test_thousand_concurrent_connections(run, nofile):
    n_conns, n_msgs = 1000, 5
    nofile(2 * n_conns + 256)
    lsock = listener(backlog=1024)
    served = []

    def serve(conn, task=None):
        with conn:
            count = 0
            while True:
                msg = yield conn.recv_msg()
                if not msg:
                    break
                count += 1
                yield conn.send_msg(b"re:" + msg)
            served.append(count)

    def server(task=None):
        for _ in range(n_conns):
            conn, _ = yield lsock.accept()
            pycos.Task(serve, conn)

    all_connected = pycos.Event()
    connected = [0]

    def client(i, task=None):
        with AsyncSocket(socket.socket()) as sock:
            sock.settimeout(60)
            yield sock.connect(addr_of(lsock))
            connected[0] += 1
            if connected[0] == n_conns:
                all_connected.set()
            # every connection is open at the same time before any talks
            assert (yield all_connected.wait(120))
            replies = []
            for k in range(n_msgs):
                yield sock.send_msg(b"%d:%d" % (i, k))
                replies.append((yield sock.recv_msg()))
            return replies

    srv = pycos.Task(server)

    def main(task=None):
        clients = [pycos.Task(client, i) for i in range(n_conns)]
        results = []
        for c in clients:
            results.append((yield c.finish()))
        return results

    results = run(main, timeout=150)
    srv.value(10)
    lsock.close()
    for i, replies in enumerate(results):
        assert replies == [b"re:%d:%d" % (i, k) for k in range(n_msgs)], (i, replies)
    # every server task has seen its client's end (give the last ones a moment)
    def wait_served(task=None):
        while len(served) < n_conns:
            yield task.sleep(0.01)
    run(wait_served, timeout=30)
    assert served == [n_msgs] * n_conns


def _hash_reader(sock, size, task=None):
    h = hashlib.sha256()
    got = 0
    while got < size:
        chunk = yield sock.recv(1 << 18)
        if not chunk:
            break
        h.update(chunk)
        got += len(chunk)
    return got, h.hexdigest()


def _chunked_writer(sock, data, chunk, task=None):
    view = memoryview(data)
    for i in range(0, len(view), chunk):
        yield sock.sendall(view[i:i + chunk])


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", ["tcp", "unix"])
def test_large_transfer_both_ways(run, kind):
    size = 48 << 20
    up = os.urandom(1 << 20) * (size >> 20)
    down = bytes(reversed(up[:1 << 20])) * (size >> 20)
    if kind == "tcp":
        lsock = listener()

        def pair(task=None):
            c = AsyncSocket(socket.socket())
            acc = pycos.Task(lambda task=None: (yield lsock.accept()))
            yield c.connect(addr_of(lsock))
            s, _ = yield acc.finish()
            return c, s

        a, b = run(pair)
        lsock.close()
    else:
        x, y = socket.socketpair()
        a, b = AsyncSocket(x), AsyncSocket(y)

    def main(task=None):
        ra = pycos.Task(_hash_reader, a, size)
        rb = pycos.Task(_hash_reader, b, size)
        wa = pycos.Task(_chunked_writer, a, up, 4 << 20)
        wb = pycos.Task(_chunked_writer, b, down, size)     # one sendall of 48 MiB
        yield wa.finish()
        yield wb.finish()
        return (yield ra.finish()), (yield rb.finish())

    (n_down, h_down), (n_up, h_up) = run(main, timeout=100)
    a.close()
    b.close()
    assert (n_up, h_up) == (size, hashlib.sha256(up).hexdigest())
    assert (n_down, h_down) == (size, hashlib.sha256(down).hexdigest())


@pytest.mark.timeout(60)
def test_large_message_recv_msg(run):
    x, y = socket.socketpair()
    a, b = AsyncSocket(x), AsyncSocket(y)
    data = os.urandom(1 << 20) * 20

    def main(task=None):
        w = pycos.Task(lambda task=None: (yield a.send_msg(data)))
        m = yield b.recv_msg()
        yield w.finish()
        return hashlib.sha256(m).hexdigest()

    assert run(main, timeout=50) == hashlib.sha256(data).hexdigest()
    a.close()
    b.close()


def _cut(data, points):
    points = sorted(set(p % (len(data) + 1) for p in points))
    pieces, last = [], 0
    for p in points + [len(data)]:
        pieces.append(data[last:p])
        last = p
    return [p for p in pieces if p]


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.binary(min_size=0, max_size=200000),
       write_cuts=st.lists(st.integers(min_value=0), max_size=40),
       read_sizes=st.lists(st.integers(min_value=1, max_value=70000), min_size=1, max_size=20))
def test_random_chunking_reassembles_through_recvall(run, data, write_cuts, read_sizes):
    x, y = socket.socketpair()
    a, b = AsyncSocket(x), AsyncSocket(y)
    pieces = _cut(data, write_cuts)

    def writer(task=None):
        for piece in pieces:
            if len(piece) % 3 == 0:
                yield task.sleep(0)          # vary the interleaving
            yield a.sendall(piece)
        a.close()

    def reader(task=None):
        out = []
        i = 0
        while True:
            chunk = yield b.recvall(read_sizes[i % len(read_sizes)])
            i += 1
            out.append(chunk)
            if len(chunk) < read_sizes[(i - 1) % len(read_sizes)]:
                # fewer than asked: only at the end of the stream
                assert (yield b.recv(1)) == b""
                return b"".join(out)

    try:
        w = pycos.Task(writer)
        got = run(reader, timeout=20)
        w.value(10)
    finally:
        a.close()
        b.close()
    assert got == data


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(messages=st.lists(st.binary(min_size=1, max_size=90000), max_size=12),
       write_cuts=st.lists(st.integers(min_value=0), max_size=60))
def test_random_chunking_reassembles_through_recv_msg(run, messages, write_cuts):
    x, y = socket.socketpair()
    a, b = AsyncSocket(x), AsyncSocket(y)
    stream = b"".join(len(m).to_bytes(4, "big") + m for m in messages)
    pieces = _cut(stream, write_cuts)

    def writer(task=None):
        for piece in pieces:
            yield a.sendall(piece)
            if len(piece) % 2:
                yield task.sleep(0)
        a.close()

    def reader(task=None):
        out = []
        while True:
            m = yield b.recv_msg()
            if not m:
                return out
            out.append(m)

    try:
        w = pycos.Task(writer)
        got = run(reader, timeout=20)
        w.value(10)
    finally:
        a.close()
        b.close()
    assert got == messages
