"""AsyncSocket over TCP, UDP and Unix sockets, IPv4 and IPv6: every
operation, attribute pass-through, blocking mode and the one-read /
one-write rule."""
import errno
import os
import socket
import struct
import sys
import threading
import time

import pytest

import pycos
from pycos.io import AsyncSocket

from iohelp import HAS_IPV6, LOOPBACK, addr_of, listener

#: a flag passed through to the system call (Windows' socket module has none)
DONTWAIT = getattr(socket, "MSG_DONTWAIT", 0)
#: tests of reads the reactor makes at readiness into its arena (RX_EV_DATA):
#: iocp completes each read into the caller's own buffer instead
NO_ARENA = pytest.mark.skipif(
    (os.environ.get("PYCOS_BACKEND") or pycos.reactor.backends()[0]) == "iocp",
    reason="iocp has no arena reads (RX_EV_DATA): it reads into the caller's buffer")

FAMILIES = [
    pytest.param(socket.AF_INET, id="ipv4"),
    pytest.param(socket.AF_INET6, id="ipv6",
                 marks=pytest.mark.skipif(not HAS_IPV6, reason="::1 cannot be bound here")),
]


def test_exported_names():
    import pycos.io
    assert pycos.io.AsyncSocket is AsyncSocket
    # the top-level export is part of the contract (API.md §1)
    assert getattr(pycos, "AsyncSocket", AsyncSocket) is AsyncSocket


# ---------------------------------------------------------------- TCP


def _echo_server(lsock, n_conns=1, task=None):
    """Accept ``n_conns`` connections in turn; echo framed messages until EOF."""
    peers = []
    for _ in range(n_conns):
        conn, addr = yield lsock.accept()
        assert isinstance(conn, AsyncSocket)
        peers.append(addr)
        with conn:
            while True:
                msg = yield conn.recv_msg()
                if not msg:
                    break
                yield conn.send_msg(msg)
    return peers


@pytest.mark.parametrize("family", FAMILIES)
def test_tcp_every_stream_operation(run, family):
    lsock = listener(family)

    def server(task=None):
        conn, addr = yield lsock.accept()
        with conn:
            assert conn.family == family
            assert conn.type == socket.SOCK_STREAM      # no SOCK_NONBLOCK bit shows
            assert conn.gettimeout() is None and conn._sock.gettimeout() == 0.0  # non-blocking
            hello = yield conn.recvall(5)
            n = yield conn.send(b"<" + hello + b">")
            assert n == 7
            msg = yield conn.recv_msg()
            yield conn.send_msg(msg[::-1])
            yield conn.sendall(b"x" * 100000)
            rest = yield conn.recv(10)
            return addr, rest

    def client(task=None):
        sock = AsyncSocket(socket.socket(family, socket.SOCK_STREAM))
        with sock:
            r = yield sock.connect(addr_of(lsock))
            assert r is None
            r = yield sock.sendall(b"hello")
            assert r is None
            got = yield sock.recvall(7)
            assert got == b"<hello>"
            yield sock.send_msg(b"framed message")
            back = yield sock.recv_msg()
            assert back == b"egassem demarf"
            big = yield sock.recvall(100000)
            assert big == b"x" * 100000
            yield sock.send(b"bye")
            return sock.getsockname()[:2]

    srv = pycos.Task(server)
    local = run(client)
    addr, rest = srv.value(5)
    lsock.close()
    assert addr[:2] == local
    assert rest == b"bye"


def test_tcp_recv_returns_what_is_there(run):
    lsock = listener()

    def server(task=None):
        conn, _ = yield lsock.accept()
        with conn:
            yield conn.sendall(b"abc")
            yield conn.recv(1)          # wait for the client's go-ahead
            yield conn.sendall(b"defgh")

    def client(task=None):
        with AsyncSocket(socket.socket()) as s:
            yield s.connect(addr_of(lsock))
            a = yield s.recv(1024)          # only what has arrived, not 1024
            yield s.send(b"!")
            b = yield s.recvall(5)
            c = yield s.recv(1024)          # end of stream
            return a, b, c

    srv = pycos.Task(server)
    assert run(client) == (b"abc", b"defgh", b"")
    srv.value(5)
    lsock.close()


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no AF_UNIX in this platform's "
                    "socket module (Windows)")
def test_unix_stream(run, tmp_path):
    path = str(tmp_path / "s.sock")
    lsock = AsyncSocket(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
    lsock.bind(path)
    lsock.listen(5)
    srv = pycos.Task(_echo_server, lsock)

    def client(task=None):
        with AsyncSocket(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)) as s:
            yield s.connect(path)
            out = []
            for i in range(20):
                yield s.send_msg(b"m%d" % i * (i + 1))
                out.append((yield s.recv_msg()))
            return out

    assert run(client) == [b"m%d" % i * (i + 1) for i in range(20)]
    srv.value(5)
    lsock.close()


def test_socketpair(run):
    a, b = socket.socketpair()
    a, b = AsyncSocket(a), AsyncSocket(b)

    def go(task=None):
        yield a.sendall(b"ping")
        got = yield b.recvall(4)
        yield b.send_msg(got)
        return (yield a.recv_msg())

    assert run(go) == b"ping"
    a.close()
    b.close()


# ---------------------------------------------------------------- UDP


@pytest.mark.parametrize("family", FAMILIES)
def test_udp_recvfrom_sendto(run, family):
    host = LOOPBACK[family]
    srv = AsyncSocket(socket.socket(family, socket.SOCK_DGRAM))
    srv.bind((host, 0))
    cli = AsyncSocket(socket.socket(family, socket.SOCK_DGRAM))
    cli.bind((host, 0))

    def server(task=None):
        for _ in range(3):
            data, addr = yield srv.recvfrom(1024)
            n = yield srv.sendto(data.upper(), addr)
            assert n == len(data)

    def client(task=None):
        got = []
        for word in (b"one", b"two", b"three"):
            n = yield cli.sendto(word, srv.getsockname())
            assert n == len(word)
            data, addr = yield cli.recvfrom(1024)
            assert addr[:2] == srv.getsockname()[:2]
            got.append(data)
        return got

    t = pycos.Task(server)
    assert run(client) == [b"ONE", b"TWO", b"THREE"]
    t.value(5)
    srv.close()
    cli.close()


def test_udp_sendto_with_flags_and_hostname(run):
    srv = AsyncSocket(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    srv.bind(("127.0.0.1", 0))
    cli = AsyncSocket(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))

    def go(task=None):
        port = srv.getsockname()[1]
        yield cli.sendto(b"flags", 0, ("127.0.0.1", port))
        yield cli.sendto(b"named", ("localhost", port))     # a name is resolved
        a = yield srv.recvfrom(100)
        b = yield srv.recvfrom(100)
        return a[0], b[0], a[1][1] == cli.getsockname()[1]

    assert run(go) == (b"flags", b"named", True)
    with pytest.raises(TypeError):
        cli.sendto(b"x")
    srv.close()
    cli.close()


def test_udp_datagram_truncated_to_bufsize(run):
    srv = AsyncSocket(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    srv.bind(("127.0.0.1", 0))
    cli = AsyncSocket(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))

    def go(task=None):
        yield cli.sendto(b"0123456789", srv.getsockname())
        yield cli.sendto(b"next", srv.getsockname())
        a, _ = yield srv.recvfrom(4)
        b, _ = yield srv.recvfrom(100)
        return a, b

    assert run(go) == (b"0123", b"next")
    srv.close()
    cli.close()


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no AF_UNIX in this platform's "
                    "socket module (Windows)")
def test_unix_dgram(run, tmp_path):
    spath, cpath = str(tmp_path / "srv"), str(tmp_path / "cli")
    srv = AsyncSocket(socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM))
    srv.bind(spath)
    cli = AsyncSocket(socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM))
    cli.bind(cpath)

    def go(task=None):
        yield cli.sendto(b"hi", spath)
        data, addr = yield srv.recvfrom(100)
        yield srv.sendto(data * 2, addr)
        return (yield cli.recvfrom(100)), addr

    (data, addr), peer = run(go)
    assert data == b"hihi" and addr == spath and peer == cpath
    srv.close()
    cli.close()


# ---------------------------------------------------------------- framing


def test_msg_sizes_round_trip(run):
    a, b = socket.socketpair()
    a, b = AsyncSocket(a), AsyncSocket(b)
    sizes = [1, 2, 3, 4, 5, 65535, 65536, 65537, 1 << 20, 3 * (1 << 20) + 7]

    def sender(task=None):
        for n in sizes:
            yield a.send_msg(os.urandom(16) * (n // 16) + b"z" * (n % 16))
        yield a.send_msg(bytearray(b"bytearray"))
        yield a.send_msg(memoryview(b"memoryview"))
        a.close()

    def receiver(task=None):
        got = []
        while True:
            m = yield b.recv_msg()
            if not m:
                return got
            got.append(m)

    s = pycos.Task(sender)
    got = run(receiver)
    s.value(5)
    assert [len(m) for m in got] == sizes + [9, 10]
    assert got[-2:] == [b"bytearray", b"memoryview"]
    assert all(type(m) is bytearray for m in got)      # as in 4.x (docs/sockets.md)
    b.close()


def test_msg_wire_format_is_4_byte_big_endian(run):
    a, b = socket.socketpair()
    a = AsyncSocket(a)

    def go(task=None):
        yield a.send_msg(b"abc")

    run(go)
    assert b.recv(100) == b"\x00\x00\x00\x03abc"
    b.sendall(struct.pack(">L", 5) + b"hello" + struct.pack(">L", 2) + b"ok")

    def recv2(task=None):
        return (yield a.recv_msg()), (yield a.recv_msg())

    assert run(recv2) == (b"hello", b"ok")
    a.close()
    b.close()


def test_recv_msg_eof_and_truncated_message(run):
    a, b = socket.socketpair()
    a = AsyncSocket(a)
    b.sendall(struct.pack(">L", 10) + b"only6!")
    b.close()

    def go(task=None):
        first = yield a.recv_msg()       # truncated by EOF: b''
        second = yield a.recv_msg()      # plain EOF: b''
        return first, second

    assert run(go) == (b"", b"")
    a.close()


def test_recv_msg_hostile_length_is_emsgsize(run):
    a, b = socket.socketpair()
    a = AsyncSocket(a, max_msg_size=1000)
    b.sendall(struct.pack(">L", 1001) + b"x" * 10)

    def go(task=None):
        try:
            yield a.recv_msg()
        except OSError as exc:
            return exc.errno
        return None

    assert run(go) == errno.EMSGSIZE
    a.close()
    b.close()


def test_recv_msg_at_max_msg_size_is_accepted(run):
    a, b = socket.socketpair()
    a = AsyncSocket(a, max_msg_size=1000)
    b.sendall(struct.pack(">L", 1000) + b"y" * 1000)

    def go(task=None):
        return (yield a.recv_msg())

    assert run(go) == b"y" * 1000
    a.close()
    b.close()


@pytest.mark.skipif(sys.implementation.name != "cpython", reason="tracemalloc is CPython's")
def test_recv_msg_hostile_length_allocates_nothing(run):
    import tracemalloc
    a, b = socket.socketpair()
    a = AsyncSocket(a)                       # default max_msg_size (64 MiB)
    b.sendall(b"\xff\xff\xff\xff")          # claims a 4 GiB message

    def go(task=None):
        try:
            yield a.recv_msg()
        except OSError as exc:
            return exc.errno

    tracemalloc.start()
    try:
        assert run(go) == errno.EMSGSIZE
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, "recv_msg allocated %d bytes for a hostile length" % peak
    a.close()
    b.close()


def test_send_msg_too_long_for_header(run):
    a, b = socket.socketpair()
    a = AsyncSocket(a)

    class Huge(bytes):
        def __len__(self):
            return 1 << 32

    with pytest.raises(ValueError):
        a.send_msg(Huge())
    a.close()
    b.close()


# ---------------------------------------------------------------- create_connection


@pytest.mark.parametrize("family", FAMILIES)
def test_create_connection(run, family):
    lsock = listener(family)
    srv = pycos.Task(_echo_server, lsock)
    src = socket.socket(family, socket.SOCK_STREAM)
    probe = socket.socket(family, socket.SOCK_STREAM)
    probe.bind((LOOPBACK[family], 0))       # a free source port
    source = probe.getsockname()[:2]
    probe.close()

    def client(task=None):
        sock = AsyncSocket(src)
        r = yield sock.create_connection(addr_of(lsock), timeout=5, source_address=source)
        assert r is sock
        assert sock.gettimeout() == 5.0
        assert sock.getsockname()[:2] == source
        yield sock.send_msg(b"via create_connection")
        reply = yield sock.recv_msg()
        sock.close()
        return reply

    assert run(client) == b"via create_connection"
    peers = srv.value(5)
    assert peers[0][:2] == source
    lsock.close()


def test_connect_by_name(run):
    lsock = listener()
    srv = pycos.Task(_echo_server, lsock)

    def client(task=None):
        with AsyncSocket(socket.socket()) as sock:
            yield sock.connect(("localhost", lsock.getsockname()[1]))
            yield sock.send_msg(b"named")
            return (yield sock.recv_msg())

    assert run(client) == b"named"
    srv.value(5)
    lsock.close()


# ---------------------------------------------------------------- pass-through


def test_attribute_pass_through():
    raw = socket.socket()
    sock = AsyncSocket(raw)
    try:
        assert sock.sock is raw
        assert sock.fileno() == raw.fileno()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) != 0
        sock.bind(("127.0.0.1", 0))
        sock.listen(3)
        assert sock.getsockname() == raw.getsockname()
        assert sock.family == socket.AF_INET and sock.type == socket.SOCK_STREAM
        assert raw.gettimeout() == 0.0        # wrapped: non-blocking underneath
        assert sock.gettimeout() is None       # ... but per-operation timeout None
        with pytest.raises(AttributeError):
            sock.no_such_attribute
        assert "AsyncSocket" in repr(sock)
        assert not sock.closed
    finally:
        sock.close()
    assert sock.closed and raw.fileno() == -1
    sock.close()                               # twice is harmless


def test_timeout_taken_from_wrapped_socket():
    raw = socket.socket()
    raw.settimeout(2.5)
    with AsyncSocket(raw) as sock:
        assert sock.gettimeout() == 2.5
        sock.settimeout(None)
        assert sock.gettimeout() is None
        with pytest.raises(ValueError):
            sock.settimeout(-1)
        with pytest.raises(ValueError):
            sock.settimeout(float("nan"))


def test_wrap_errors():
    raw = socket.socket()
    sock = AsyncSocket(raw)
    with pytest.raises(TypeError):
        AsyncSocket(sock)
    sock.close()
    with pytest.raises(TypeError):
        AsyncSocket(object())
    with pytest.raises(OSError):
        AsyncSocket(raw)                  # closed already
    with socket.socket() as raw2:
        with pytest.raises(ValueError):
            AsyncSocket(raw2, keyfile="k.pem")


def test_operation_outside_a_task_is_a_clear_error(sched):
    a, b = socket.socketpair()
    a = AsyncSocket(a)
    try:
        with pytest.raises(RuntimeError, match="task"):
            a.recv(10)
        with pytest.raises(RuntimeError, match="task"):
            a.sendall(b"x")
    finally:
        a.close()
        b.close()


def test_context_manager_closes_and_does_not_swallow(run):
    a, b = socket.socketpair()
    with pytest.raises(KeyError):
        with AsyncSocket(a) as s:
            raise KeyError("boom")
    assert s.closed and a.fileno() == -1
    b.close()


# ---------------------------------------------------------------- blocking mode


def test_blocking_mode_from_a_plain_thread(run):
    """A blocking AsyncSocket used by a plain thread talks to a task."""
    lsock = listener()
    srv = pycos.Task(_echo_server, lsock, 1)
    result = {}

    def thread_client():
        sock = AsyncSocket(socket.socket(), blocking=True)
        try:
            sock.settimeout(10)
            sock.connect(addr_of(lsock))
            sock.send_msg(b"from a thread")
            result["msg"] = sock.recv_msg()
            sock.sendall(struct.pack(">L", 3) + b"abc")
            result["raw"] = sock.recvall(7)
            sock.send_msg(b"x" * 60000)
            hdr = sock.recv(4)
            result["big"] = len(sock.recvall(struct.unpack(">L", hdr)[0]))
        finally:
            sock.close()

    t = threading.Thread(target=thread_client)
    t.start()
    t.join(10)
    assert not t.is_alive()
    assert result == {"msg": b"from a thread", "raw": b"\x00\x00\x00\x03abc", "big": 60000}
    srv.value(5)
    lsock.close()


def test_blocking_send_msg_over_64k():
    """send_msg of a big message in blocking mode sends it (it must not
    return an unstarted generator, as the asynchronous form does)."""
    a, b = socket.socketpair()
    a, b = AsyncSocket(a, blocking=True), AsyncSocket(b, blocking=True)
    try:
        a.settimeout(5)
        b.settimeout(5)
        payload = os.urandom(100000)        # > 64 KiB, fits the socket buffers
        r = a.send_msg(payload)
        if hasattr(r, "throw"):
            r.close()
            pytest.fail("blocking send_msg returned a generator: nothing was sent")
        assert r is None
        assert b.recv_msg() == payload
    finally:
        a.close()
        b.close()


def test_blocking_create_connection():
    """create_connection in blocking mode connects (synchronously) and
    returns the socket."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    sock = AsyncSocket(socket.socket(), blocking=True)
    try:
        r = sock.create_connection(srv.getsockname(), timeout=5)
        if hasattr(r, "close") and hasattr(r, "send") and not isinstance(r, AsyncSocket):
            r.close()
            pytest.fail("blocking create_connection returned a generator: not connected")
        assert r is sock
        conn, _ = srv.accept()
        conn.close()
    finally:
        sock.close()
        srv.close()


def test_blocking_mode_server_in_thread_and_udp(run):
    """accept/recv/sendto/recvfrom in blocking mode, no scheduler involved."""
    lsock = AsyncSocket(socket.socket(), blocking=True)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    lsock.settimeout(10)
    out = {}

    def serve():
        conn, addr = lsock.accept()
        try:
            out["type"] = type(conn)
            out["blocking"] = "blocking" in repr(conn)
            out["data"] = conn.recvall(6)
            conn.sendall(b"thanks")
        finally:
            conn.close()

    t = threading.Thread(target=serve)
    t.start()
    with socket.create_connection(addr_of(lsock), timeout=10) as c:
        c.sendall(b"abcdef")
        assert c.recv(100) == b"thanks"
    t.join(10)
    lsock.close()
    assert out == {"type": AsyncSocket, "blocking": True, "data": b"abcdef"}

    u1 = AsyncSocket(socket.socket(socket.AF_INET, socket.SOCK_DGRAM), blocking=True)
    u2 = AsyncSocket(socket.socket(socket.AF_INET, socket.SOCK_DGRAM), blocking=True)
    try:
        u1.bind(("127.0.0.1", 0))
        u2.settimeout(5)
        u1.settimeout(5)
        assert u2.sendto(b"dgram", u1.getsockname()) == 5
        data, addr = u1.recvfrom(100)
        assert data == b"dgram" and addr[1] == u2.getsockname()[1]
    finally:
        u1.close()
        u2.close()


def test_blocking_mode_timeout():
    a, b = socket.socketpair()
    a = AsyncSocket(a, blocking=True)
    try:
        a.settimeout(0.2)
        with pytest.raises(socket.timeout):
            a.recv(10)
        b.sendall(b"abc")
        assert a.recvall(10) == b"abc"      # partial data, then the timeout
    finally:
        a.close()
        b.close()


def test_setblocking_switches_modes(run):
    a, b = socket.socketpair()
    a, b = AsyncSocket(a), AsyncSocket(b)
    a.setblocking(True)
    a.sendall(b"sync")
    a.setblocking(False)

    def go(task=None):
        got = yield b.recvall(4)
        yield a.sendall(b"async")
        return got, (yield b.recvall(5))

    assert run(go) == (b"sync", b"async")
    a.close()
    b.close()


# ---------------------------------------------------------------- one read, one write


def test_second_concurrent_read_raises_runtime_error(run):
    a, b = socket.socketpair()
    a = AsyncSocket(a)
    ready = pycos.Event()

    def reader(task=None):
        ready.set()
        return (yield a.recv(100))

    def intruder(task=None):
        yield ready.wait(5)
        try:
            yield a.recv(100)
        except RuntimeError as exc:
            b.sendall(b"for the first reader")
            return str(exc)
        return "no error"

    r = pycos.Task(reader)
    msg = run(intruder)
    assert "pending" in msg
    assert r.value(5) == b"for the first reader"
    a.close()
    b.close()


def test_concurrent_read_and_write_are_fine(run):
    a, b = socket.socketpair()
    a, b = AsyncSocket(a), AsyncSocket(b)
    n = 8 << 20

    def reader(task=None):
        return len((yield a.recvall(n)))

    def writer(task=None):
        yield a.sendall(b"w" * n)       # a writes while a's read is pending

    def peer(task=None):
        got = yield b.recvall(n)
        yield b.sendall(got)
        return len(got)

    r = pycos.Task(reader)
    p = pycos.Task(peer)
    run(writer)
    assert p.value(10) == n
    assert r.value(10) == n
    a.close()
    b.close()


def test_second_concurrent_write_raises_runtime_error(run):
    a, b = socket.socketpair()
    a = AsyncSocket(a)
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    started = pycos.Event()

    def writer(task=None):
        started.set()
        try:
            yield a.sendall(b"x" * (4 << 20))     # cannot finish: nobody reads
        except OSError as exc:
            return exc.errno

    def intruder(task=None):
        yield started.wait(5)
        try:
            yield a.sendall(b"y")
        except RuntimeError:
            a.close()                              # wakes the writer
            return "RuntimeError"
        return "no error"

    w = pycos.Task(writer)
    assert run(intruder) == "RuntimeError"
    assert w.value(5) == errno.EBADF
    b.close()


# ---------------------------------------------------------------- plain peers in threads


def test_plain_socket_clients_in_threads(run):
    """Ordinary blocking ``socket`` clients in threads (code that knows
    nothing of pycos) against a server with one task per connection."""
    n_threads, n_msgs = 8, 20
    lsock = listener()

    def serve(conn, task=None):
        with conn:
            while True:
                msg = yield conn.recv_msg()
                if not msg:
                    return
                yield conn.send_msg(msg[::-1])

    def server(task=None):
        tasks = []
        for _ in range(n_threads):
            conn, _ = yield lsock.accept()
            tasks.append(pycos.Task(serve, conn))
        for t in tasks:
            yield t.finish()

    srv = pycos.Task(server)
    results, errors = {}, []

    def client(i):
        try:
            with socket.create_connection(addr_of(lsock), timeout=10) as s:
                f = s.makefile("rb")
                got = []
                for k in range(n_msgs):
                    payload = (b"%d-%d|" % (i, k)) * (k * 50 + 1)
                    s.sendall(struct.pack(">L", len(payload)) + payload)
                    n = struct.unpack(">L", f.read(4))[0]
                    got.append(f.read(n) == payload[::-1])
                f.close()
                results[i] = got
        except Exception as exc:        # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    srv.value(10)
    lsock.close()
    assert not errors and not any(t.is_alive() for t in threads), errors
    assert results == {i: [True] * n_msgs for i in range(n_threads)}


def test_client_against_a_plain_threaded_server(run):
    """A socketserver-style blocking server in a thread; AsyncSocket clients
    in tasks (recvall across the server's separate writes)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(10)

    def serve_one():
        conn, _ = srv.accept()
        with conn:
            conn.settimeout(10)
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = conn.recv(100)
                if not chunk:
                    return
                buf += chunk
            for ch in buf.strip():             # one byte per write
                conn.sendall(bytes([ch]).upper())

    th = threading.Thread(target=serve_one)
    th.start()

    def go(task=None):
        with AsyncSocket(socket.socket()) as s:
            s.settimeout(10)
            yield s.connect(srv.getsockname())
            yield s.sendall(b"trickle me\n")
            got = yield s.recvall(10)
            end = yield s.recv(10)
            return got, end

    try:
        assert run(go) == (b"TRICKLE ME", b"")
    finally:
        th.join(10)
        srv.close()


@pytest.mark.skipif(sys.implementation.name != "cpython" or os.name == "nt",
                    reason="direct reads are CPython's on POSIX (PyPy copies inside "
                    "os.read; a Windows socket is no file descriptor for os.read)")
def test_big_messages_are_read_directly(run, monkeypatch):
    """Once a waiting recv brought a big message, the next ones are read by
    os.read straight into the returned bytes, and every byte arrives; a
    readiness without data sends the recv back to waiting."""
    from pycos.io import fdio
    from pycos.reactor import EV_READY, READ
    calls = []
    real_read = fdio._os_read

    def counting_read(fd, n):
        calls.append(n)
        return real_read(fd, n)

    monkeypatch.setattr(fdio, "_os_read", counting_read)
    a, b = socket.socketpair()
    sock = AsyncSocket(a)
    chunks = [os.urandom(40000 + i) for i in range(12)]
    go = threading.Semaphore(0)

    def writer():
        for c in chunks:
            if not go.acquire(timeout=10):
                return
            b.sendall(c)

    th = threading.Thread(target=writer)
    th.start()

    def reader(task=None):
        got = []
        for c in chunks:
            part = b""
            while len(part) < len(c):
                if not part:
                    go.release()        # the writer sends while we wait
                part += yield sock.recv(65536)
            got.append(part)
        return got

    def spurious(task=None):
        t = pycos.Task(reader_one)
        yield task.sleep(0)             # t waits in recv (no data yet)
        assert sock._rd.task is t
        sock._big = True                # (the last piece above may have been small)
        # a readiness report with nothing to read: the watch is gone from
        # the reactor (as after a real report) and the handler finds EAGAIN
        sock._loop.cancel(sock._fd, READ)
        before = len(calls)
        sock._on_lazy(EV_READY, READ, 0)
        assert len(calls) == before + 1 and sock._rd.task is t      # waiting again
        b.sendall(b"x" * 20000)
        return (yield t.finish())

    def reader_one(task=None):
        return (yield sock.recv(65536))

    try:
        assert run(reader) == chunks
        assert len(calls) >= 5 and all(n == 65536 for n in calls)
        assert run(spurious) == b"x" * 20000
    finally:
        for _ in chunks:
            go.release()
        th.join(10)
        sock.close()
        b.close()


@NO_ARENA
def test_waiting_recv_gets_its_bytes_with_the_event(run, monkeypatch):
    """A recv that had to wait gets its bytes from the reactor's arena, read
    when the descriptor became ready: no second call into the reactor, and
    every reader gets its own bytes when many are ready in one poll."""
    from pycos.io import fdio
    calls = []
    real_recv = fdio._rx_recv

    def counting_recv(*args):
        calls.append(args[3])
        return real_recv(*args)

    monkeypatch.setattr(fdio, "_rx_recv", counting_recv)
    pairs = [socket.socketpair() for _ in range(30)]
    socks = [AsyncSocket(a) for a, _ in pairs]
    want = [os.urandom(1 + 37 * i) for i in range(len(pairs))]

    def reader(sock, task=None):
        return (yield sock.recv(4096))

    def main(task=None):
        readers = [pycos.Task(reader, s) for s in socks]
        yield task.sleep(0)             # every reader waits (nothing sent yet)
        assert all(s._rd.task is t for s, t in zip(socks, readers))
        del calls[:]
        for (_, b), data in zip(pairs, want):
            b.sendall(data)
        got = []
        for t in readers:
            got.append((yield t.finish()))
        return got

    try:
        assert run(main) == want
        assert calls == []              # the bytes came with the events
    finally:
        for s, (_, b) in zip(socks, pairs):
            s.close()
            b.close()


@NO_ARENA
def test_recv_withdrawn_after_the_reactor_read_keeps_the_bytes(run):
    """A timeout that is dispatched just before the event of the read the
    reactor has already done (both in one batch): the task gets its
    timeout, and the bytes, taken off the socket, go to the next recv."""
    from pycos.reactor import EV_DATA
    a, b = socket.socketpair()
    sock = AsyncSocket(a)
    sock.settimeout(30)

    def waiter(task=None):
        try:
            yield sock.recv(100)
        except socket.timeout:
            return "timeout"
        return "no timeout"

    def race(task=None):
        t = pycos.Task(waiter)
        yield task.sleep(0)             # t waits in recv
        assert sock._rd.task is t
        sched = sock._sched
        b.sendall(b"late bytes")
        # the reactor reads them at readiness; take its events before the
        # scheduler does, then play a timeout first and the events after
        events = []
        deadline = time.monotonic() + 10
        while not events and time.monotonic() < deadline:
            events = sched.loop.poll_flat(10 ** 7)
        assert events[1] == EV_DATA and events[3] == len(b"late bytes"), events
        sched._clear_timer(t)
        sched._fire_timeout(t)
        assert t._cancel is None and sock._rd.task is None
        sched._dispatch(events)
        assert sock._ahead == b"late bytes"
        status = yield t.finish()
        sock.settimeout(None)
        return status, (yield sock.recv(100))

    try:
        assert run(race) == ("timeout", b"late bytes")
    finally:
        sock.close()
        b.close()


def test_waiting_recv_pins_no_buffer(run):
    """recv waits lazily: many idle readers of recv(65536) hold no buffers,
    and the scheduler keeps scratch buffers only for moderate sizes."""
    from pycos.io import fdio
    pairs = [socket.socketpair() for _ in range(20)]
    socks = [AsyncSocket(a) for a, _ in pairs]
    sched = pycos.Pycos.instance()

    def reader(s, n, task=None):
        return (yield s.recv(n))

    def go(task=None):
        readers = [pycos.Task(reader, s, 65536) for s in socks[:-1]]
        big = pycos.Task(reader, socks[-1], fdio._SCRATCH_MAX * 4)
        yield task.sleep(0)          # every reader has run and is waiting now
        waiting = [s for s in socks if s._rd.task is not None]
        assert len(waiting) == 20
        assert all(s._rd.buf is None for s in waiting)
        for _, b in pairs:
            b.sendall(b"ping")
        got = []
        for t in readers + [big]:
            got.append((yield t.finish()))
        return got

    assert run(go) == [b"ping"] * 20
    assert max(sched._scratch, default=0) <= fdio._SCRATCH_MAX
    for s, (_, b) in zip(socks, pairs):
        s.close()
        b.close()


def test_idle_socket_is_small_and_a_blocked_write_gets_its_own_side(run):
    """An AsyncSocket has slots, no __dict__; its write side is the shared
    idle one until a write has to wait, which gets a side of its own and
    leaves the shared one untouched (10,000 idle connections each save it)."""
    from pycos.io import fdio
    a, b = socket.socketpair()
    b.setblocking(False)
    a = AsyncSocket(a)
    c, d = socket.socketpair()
    other = AsyncSocket(c)
    assert not hasattr(a, "__dict__")
    assert a._wr is fdio._IDLE and other._wr is fdio._IDLE
    blob = b"z" * (8 << 20)         # more than the socket buffers hold

    def writer(task=None):
        yield a.sendall(blob)
        return "sent"

    def go(task=None):
        w = pycos.Task(writer)
        while a._wr.task is None:   # the writer runs, fills the buffers, waits
            yield task.sleep(0.001)
        assert a._wr is not fdio._IDLE and fdio._IDLE.task is None
        assert other._wr is fdio._IDLE
        got = 0
        while got < len(blob):
            try:
                got += len(b.recv(1 << 20))
            except BlockingIOError:
                yield task.sleep(0.001)
        return got, (yield w.finish())

    assert run(go) == (len(blob), "sent")
    assert fdio._IDLE.task is None and fdio._IDLE.buf is None
    for s in (a, other, b, d):
        s.close()


def test_lazy_recv_into_a_sink(run):
    """_recv_lazy(n, sink) (TLS feeds its incoming BIO so): the bytes go to
    sink.write, the value is their count, inline or after waiting; 0 when
    the socket closes under the wait and at the end of the stream; a sink
    that raises fails that read, not the scheduler."""
    import ssl
    a, b = socket.socketpair()
    c, d = socket.socketpair()
    a, c = AsyncSocket(a), AsyncSocket(c)
    bio = ssl.MemoryBIO()

    class Broken(object):
        def write(self, data):
            raise ValueError("sink full")

    def reader(sock, sink, task=None):
        try:
            return (yield sock._recv_lazy(100, sink))
        except ValueError as exc:
            return str(exc)

    def go(task=None):
        b.sendall(b"ready")
        got = [(yield a._recv_lazy(100, bio))]          # inline
        for sock, sink, peer, data in ((a, bio, b, b"later"), (a, Broken(), b, b"x"),
                                       (c, bio, None, None)):
            t = pycos.Task(reader, sock, sink)
            while sock._rd.task is None:                # until t waits
                yield task.sleep(0.001)
            if peer is not None:
                peer.sendall(data)
            else:
                sock.close()                             # closed while waiting
            got.append((yield t.finish()))
        b.shutdown(socket.SHUT_WR)
        got.append((yield a._recv_lazy(100, bio)))      # end of stream
        return got

    assert run(go) == [5, 5, "sink full", 0, 0]
    assert bio.read() == b"readylater"
    for s in (a, b, d):
        s.close()


def test_flags_are_honoured_not_ignored(run):
    """recv/recvfrom/send/sendto with flags the reactor does not take
    (MSG_PEEK ...) use the socket's own call once it is ready: a peek leaves
    the data for the next recv, also when it had to wait; a peek that the
    socket's closing interrupts reads b''."""
    a, b = socket.socketpair()
    a = AsyncSocket(a)
    u1 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u1.bind(("127.0.0.1", 0))
    u2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u2.bind(("127.0.0.1", 0))
    u1, u2 = AsyncSocket(u1), AsyncSocket(u2)
    c, d = socket.socketpair()
    c = AsyncSocket(c)

    def peeker(sock, task=None):
        return (yield sock.recv(100, socket.MSG_PEEK))

    def go(task=None):
        out = []
        t = pycos.Task(peeker, a)
        while a._rd.task is None:           # the peek waits for data
            yield task.sleep(0.001)
        n = yield a.send(b"hello", DONTWAIT)
        b.sendall(b"world")
        out.append((yield t.finish()))
        out.append((yield a.recv(100, socket.MSG_PEEK)))     # inline this time
        out.append((yield a.recv(100)))                      # still there
        out.append(n)
        yield u1.sendto(b"dgram", DONTWAIT, u2.getsockname())
        out.append((yield u2.recvfrom(100, socket.MSG_PEEK))[0])
        data, addr = yield u2.recvfrom(100)
        out.append((data, addr == u1.getsockname()))
        t = pycos.Task(peeker, c)
        while c._rd.task is None:
            yield task.sleep(0.001)
        c.close()
        out.append((yield t.finish()))
        return out

    assert run(go) == [b"world", b"world", b"world", 5, b"dgram", (b"dgram", True), b""]
    assert b.recv(100) == b"hello"
    with pytest.raises(RuntimeError):       # outside a task, as every asynchronous call
        a.recv(100, socket.MSG_PEEK)
    for s in (a, b, u1, u2, d):
        s.close()
