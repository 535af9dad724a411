"""Every way an AsyncSocket operation can end badly: timeouts, end of
stream, reset, refused, unreachable, and closing while tasks wait.  Each
case must end cleanly (the right exception or value, within its deadline)
and leave nothing behind (the conftest checks the reactor afterwards)."""
import errno
import os
import shutil
import socket
import struct
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import pycos
from pycos.io import AsyncSocket

from iohelp import SEND_CANCEL_COUNT, UNDER_WINE, addr_of, listener

#: Wine reads a reset that reached the socket before the recv was made as a
#: clean end of stream (plain sockets there do too: recv() gives b''); one
#: made while a recv waits is reported
RESET_BEFORE = "Wine reports a reset that arrived before the recv as end of stream " \
    "(plain Python sockets there do the same)"


def _pair(**kw):
    a, b = socket.socketpair()
    return AsyncSocket(a, **kw), AsyncSocket(b, **kw)


def _tcp_pair(run):
    """A connected (client, server-side) pair of AsyncSockets over TCP."""
    lsock = listener()

    def go(task=None):
        c = AsyncSocket(socket.socket())
        acc = pycos.Task(lambda task=None: (yield lsock.accept()))
        yield c.connect(addr_of(lsock))
        conn, _ = yield acc.finish()
        return c, conn

    try:
        return run(go)
    finally:
        lsock.close()


def _unread(sock):
    """Bytes waiting in the kernel's receive queue of ``sock``."""
    if os.name == "nt":
        import ctypes
        n = ctypes.c_ulong(0)
        fionread = 0x4004667F
        if ctypes.windll.ws2_32.ioctlsocket(ctypes.c_size_t(sock.fileno()), fionread,
                                            ctypes.byref(n)) != 0:
            raise OSError("ioctlsocket(FIONREAD) failed")
        return n.value
    import fcntl
    import termios
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0" * 4))[0]


def _elapsed(t0):
    return time.monotonic() - t0


# ---------------------------------------------------------------- timeouts


def test_recv_timeout_without_data_raises_and_socket_stays_usable(run):
    a, b = _pair()
    a.settimeout(0.2)

    def go(task=None):
        t0 = time.monotonic()
        try:
            yield a.recv(10)
        except socket.timeout:
            waited = _elapsed(t0)
        else:
            raise AssertionError("no timeout")
        # data that arrives after the timeout is not lost
        yield b.sendall(b"late")
        return waited, (yield a.recv(10))

    waited, data = run(go)
    assert 0.15 <= waited < 2
    assert data == b"late"
    a.close()
    b.close()


def test_timeout_is_socket_timeout_and_oserror(run):
    a, b = _pair()
    a.settimeout(0.05)

    def go(task=None):
        try:
            yield a.recv_msg()
        except OSError as exc:      # socket.timeout is TimeoutError, an OSError
            return type(exc)

    assert issubclass(run(go), socket.timeout)
    a.close()
    b.close()


def test_recvall_timeout_with_partial_data_returns_it(run):
    a, b = _pair()
    a.settimeout(0.2)

    def go(task=None):
        yield b.sendall(b"12345")
        return (yield a.recvall(100))

    assert run(go) == b"12345"
    a.close()
    b.close()


def test_recvall_timeout_without_data_raises(run):
    a, b = _pair()
    a.settimeout(0.1)

    def go(task=None):
        try:
            yield a.recvall(100)
        except socket.timeout:
            return "timeout"

    assert run(go) == "timeout"
    a.close()
    b.close()


def test_recv_msg_timeout_mid_message(run):
    a, b = _pair()
    a.settimeout(0.1)

    def go(task=None):
        yield b.sendall(struct.pack(">L", 10) + b"abc")
        return (yield a.recv_msg())

    # a truncated message is never returned as if it were whole
    assert run(go) in (b"",)
    a.close()
    b.close()


@pytest.mark.skipif(os.name == "nt", reason=SEND_CANCEL_COUNT)
def test_sendall_timeout_returns_bytes_sent_then_raises_when_none(run):
    a, b = _tcp_pair(run)
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
    b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    a.settimeout(0.2)
    total = 32 << 20

    def go(task=None):
        n = yield a.sendall(b"s" * total)      # nobody reads b
        assert isinstance(n, int) and 0 < n < total, n
        t0 = time.monotonic()
        try:
            yield a.sendall(b"more")           # buffers full: nothing goes
        except socket.timeout:
            return n, _elapsed(t0)
        raise AssertionError("second sendall did not time out")

    n, waited = run(go)
    assert 0.15 <= waited < 2
    a.close()
    b.close()


@pytest.mark.skipif(os.name == "nt", reason=SEND_CANCEL_COUNT)
def test_send_timeout_on_full_buffer(run):
    a, b = _pair()
    a.settimeout(0.1)

    def go(task=None):
        n = yield a.sendall(b"f" * (16 << 20))
        assert isinstance(n, int)
        try:
            yield a.send(b"x")
        except socket.timeout:
            return "timeout"

    assert run(go) == "timeout"
    a.close()
    b.close()


def test_accept_timeout(run):
    lsock = listener()
    lsock.settimeout(0.1)

    def go(task=None):
        try:
            yield lsock.accept()
        except socket.timeout:
            return "timeout"

    assert run(go) == "timeout"
    lsock.close()


def test_connect_timeout(run):
    """A listener whose accept queue is full drops SYNs: connect waits,
    then times out cleanly."""
    raw = socket.socket()
    raw.bind(("127.0.0.1", 0))
    raw.listen(0)
    filler = socket.socket()
    filler.connect(raw.getsockname())        # fills the queue (backlog 0: one)
    probe = socket.socket()
    probe.setblocking(False)
    probe.connect_ex(raw.getsockname())      # may or may not fit: make sure it is full
    sock = AsyncSocket(socket.socket())
    sock.settimeout(0.3)

    def go(task=None):
        t0 = time.monotonic()
        try:
            yield sock.connect(raw.getsockname())
        except socket.timeout:
            return _elapsed(t0)
        return None

    waited = run(go)
    for s in (sock, probe, filler, raw):
        s.close()
    assert waited is not None and 0.25 <= waited < 3


def test_timeout_per_operation_not_cumulative(run):
    """Each operation gets the full timeout: a slow trickle of data within
    the timeout keeps a long exchange going."""
    a, b = _pair()
    a.settimeout(0.5)

    def trickle(task=None):
        for i in range(5):
            yield task.sleep(0.1)
            yield b.send(b"%d" % i)

    def go(task=None):
        got = b""
        for _ in range(5):
            got += yield a.recv(10)
        return got

    t = pycos.Task(trickle)
    assert run(go) == b"01234"
    t.value(5)
    a.close()
    b.close()


# ---------------------------------------------------------------- end of stream, reset


def test_eof(run):
    a, b = _tcp_pair(run)

    def go(task=None):
        yield b.sendall(b"last words")
        b.close()
        first = yield a.recv(100)
        eof = yield a.recv(100)
        eof2 = yield a.recvall(100)
        msg = yield a.recv_msg()
        return first, eof, eof2, msg

    assert run(go) == (b"last words", b"", b"", b"")
    a.close()


def test_eof_after_shutdown_write(run):
    a, b = _tcp_pair(run)

    def go(task=None):
        yield b.sendall(b"half")
        b.shutdown(socket.SHUT_WR)
        got = yield a.recvall(10)           # partial at EOF
        yield a.sendall(b"still open")       # the other direction still works
        back = yield b.recvall(10)
        return got, back

    assert run(go) == (b"half", b"still open")
    a.close()
    b.close()


def _reset(sock):
    """Close ``sock`` so that its peer gets a RST."""
    # (struct linger: two ints on POSIX, two u_shorts on Windows)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                    struct.pack("HH" if os.name == "nt" else "ii", 1, 0))
    sock.close()


def test_reset_while_reading(run):
    a, b = _tcp_pair(run)
    ready = pycos.Event()

    def reader(task=None):
        ready.set()
        try:
            yield a.recv(100)
        except ConnectionResetError:
            return "reset"

    def resetter(task=None):
        yield ready.wait(5)
        _reset(b)

    r = pycos.Task(reader)
    run(resetter)
    assert r.value(5) == "reset"
    a.close()


def test_reset_then_send(run):
    a, b = _tcp_pair(run)
    _reset(b)

    def go(task=None):
        errs = set()
        for _ in range(3):
            try:
                yield a.sendall(b"x" * 100000)
            except (ConnectionResetError, BrokenPipeError) as exc:
                errs.add(type(exc))
                break
        try:
            r = yield a.recv(10)
        except ConnectionResetError:
            r = "reset"
        return errs, r

    errs, r = run(go)
    assert errs and r in (b"", "reset")
    a.close()


@pytest.mark.skipif(UNDER_WINE, reason=RESET_BEFORE)
def test_reset_pending_recv_msg(run):
    """A RST in the middle of a framed message: recv_msg never returns a
    truncated message, and the reset is reported (by recv_msg itself or,
    at the latest, by the next read) -- it must not turn into a clean EOF."""
    a, b = _tcp_pair(run)

    def go(task=None):
        yield b.sendall(struct.pack(">L", 100) + b"part")
        _reset(b)
        try:
            m = yield a.recv_msg()
        except ConnectionResetError:
            return "reset"
        assert m == b"", m
        try:
            yield a.recv(10)
        except ConnectionResetError:
            return "reset"
        return "reset lost: reads as a clean end of stream"

    try:
        assert run(go) == "reset"
    finally:
        a.close()


@pytest.mark.skipif(UNDER_WINE, reason=RESET_BEFORE)
def test_reset_during_recvall_is_not_lost(run):
    """Data, then a RST: recvall raises ECONNRESET (a short result would
    read as a clean end of stream), whether the reset came before the call
    or while it was waiting with part of the data."""
    a, b = _tcp_pair(run)

    def go(task=None):
        yield b.sendall(b"part")
        _reset(b)
        try:
            got = yield a.recvall(100)
        except ConnectionResetError:
            return "reset"
        return "reset lost: recvall returned %r" % (got,)

    try:
        assert run(go) == "reset"
    finally:
        a.close()


# ---------------------------------------------------------------- refused, unreachable


@pytest.mark.parametrize("family,host", [(socket.AF_INET, "127.0.0.1"),
                                         (socket.AF_INET6, "::1")])
def test_connect_refused(run, family, host):
    try:
        holder = socket.socket(family)
        holder.bind((host, 0))              # bound, not listening: RST to a SYN
    except OSError as exc:
        holder.close()
        pytest.skip("cannot bind %s: %s" % (host, exc))
    sock = AsyncSocket(socket.socket(family))

    def go(task=None):
        t0 = time.monotonic()
        try:
            yield sock.connect(holder.getsockname()[:2])
        except ConnectionRefusedError:
            return _elapsed(t0)

    waited = run(go)
    assert waited is not None and waited < 2
    sock.close()
    holder.close()


@pytest.mark.skipif(os.name == "nt", reason="Windows reports an ICMP port-unreachable to "
                    "every UDP socket or to none (SIO_UDP_CONNRESET); the iocp backend "
                    "turns it off, so that unconnected sockets behave as on Linux")
def test_udp_refused_reported_on_connected_socket(run):
    holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    holder.bind(("127.0.0.1", 0))
    port = holder.getsockname()[1]
    holder.close()                       # nobody there: ICMP port unreachable
    sock = AsyncSocket(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    sock.settimeout(5)

    def go(task=None):
        yield sock.connect(("127.0.0.1", port))
        yield sock.send(b"anyone?")
        try:
            yield sock.recv(10)
        except ConnectionRefusedError:
            return "refused"

    assert run(go) == "refused"
    sock.close()


_NETNS_SCRIPT = textwrap.dedent("""
    import errno, socket, sys
    import pycos
    from pycos.io import AsyncSocket

    def attempt(family, kind, addr, task=None):
        s = AsyncSocket(socket.socket(family, kind))
        s.settimeout(5)
        try:
            if kind == socket.SOCK_STREAM:
                yield s.connect(addr)
            else:
                yield s.sendto(b"x", addr)
        except OSError as exc:
            return errno.errorcode.get(exc.errno, str(exc.errno))
        finally:
            s.close()
        return "no error"

    out = []
    for args in [(socket.AF_INET, socket.SOCK_STREAM, ("192.0.2.1", 9)),
                 (socket.AF_INET, socket.SOCK_DGRAM, ("192.0.2.1", 9)),
                 (socket.AF_INET6, socket.SOCK_STREAM, ("2001:db8::1", 9)),
                 (socket.AF_INET6, socket.SOCK_DGRAM, ("2001:db8::1", 9))]:
        out.append(pycos.Task(attempt, *args).value(10))
    st = pycos.Pycos().statistics()["loop"]
    print(" ".join(out), st["pending_ops"], st["known_fds"])
""")


@pytest.mark.skipif(os.name == "nt" or os.geteuid() != 0 or not shutil.which("unshare"),
                    reason="needs Linux, root and unshare(1) to make a network namespace")
def test_unreachable_in_a_network_namespace():
    """In a fresh network namespace (no routes, loopback down) a connect or
    sendto fails at once with ENETUNREACH, no traffic leaves."""
    env = dict(os.environ)
    # loopback up (so IPv6 has a source address), no other interface, no route
    p = subprocess.run(["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$0" -c "$1"',
                        sys.executable, _NETNS_SCRIPT],
                       capture_output=True, text=True, timeout=30, env=env)
    if p.returncode != 0 and "unshare failed" in p.stderr:
        pytest.skip("unshare -n not permitted here: %s" % p.stderr.strip())
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["ENETUNREACH"] * 4 + ["0", "0"], p.stdout + p.stderr


# ---------------------------------------------------------------- closing while waiting


def test_close_wakes_reader_with_empty_bytes(run):
    a, b = _pair()
    ready = pycos.Event()

    def reader(task=None):
        ready.set()
        return (yield a.recv(100))

    def closer(task=None):
        yield ready.wait(5)
        a.close()

    r = pycos.Task(reader)
    run(closer)
    assert r.value(5) == b""
    b.close()


def test_close_wakes_recvall_with_partial_data(run):
    a, b = _pair()
    ready = pycos.Event()

    def reader(task=None):
        ready.set()
        return (yield a.recvall(100))

    def closer(task=None):
        yield ready.wait(5)
        yield b.sendall(b"part")
        # the reader has the 4 bytes once its recvall has taken them out of
        # the kernel's receive queue
        deadline = time.monotonic() + 5
        while _unread(a) and time.monotonic() < deadline:
            yield task.sleep(0.005)
        assert _unread(a) == 0
        a.close()

    r = pycos.Task(reader)
    run(closer)
    assert r.value(5) == b"part"
    b.close()


def test_close_wakes_writer_with_oserror(run):
    a, b = _pair()
    started = pycos.Event()

    def writer(task=None):
        started.set()
        try:
            yield a.sendall(b"w" * (32 << 20))
        except OSError as exc:
            return exc.errno

    def closer(task=None):
        yield started.wait(5)
        a.close()

    w = pycos.Task(writer)
    run(closer)
    assert w.value(5) == errno.EBADF
    b.close()


def test_close_wakes_reader_and_writer_together(run):
    a, b = _pair()
    n = [0]

    def reader(task=None):
        n[0] += 1
        return (yield a.recv(10))

    def writer(task=None):
        n[0] += 1
        try:
            yield a.sendall(b"w" * (32 << 20))
        except OSError as exc:
            return exc.errno

    r = pycos.Task(reader)
    w = pycos.Task(writer)

    def closer(task=None):
        while n[0] < 2:
            yield task.sleep(0.01)
        yield None                     # let both reach their yield
        a.close()

    run(closer)
    assert r.value(5) == b""
    assert w.value(5) == errno.EBADF
    b.close()


def test_close_wakes_accept(run):
    lsock = listener()
    ready = pycos.Event()

    def acceptor(task=None):
        ready.set()
        try:
            yield lsock.accept()
        except OSError as exc:
            return exc.errno

    def closer(task=None):
        yield ready.wait(5)
        lsock.close()

    t = pycos.Task(acceptor)
    run(closer)
    assert t.value(5) == errno.EBADF


def test_close_wakes_recvfrom(run):
    u = AsyncSocket(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    u.bind(("127.0.0.1", 0))
    ready = pycos.Event()

    def reader(task=None):
        ready.set()
        try:
            return (yield u.recvfrom(100))
        except OSError as exc:
            return exc

    def closer(task=None):
        yield ready.wait(5)
        u.close()

    t = pycos.Task(reader)
    run(closer)
    v = t.value(5)
    assert not isinstance(v, pycos.MonitorStatus), v
    assert v == (b"", None), v      # no sender: no (garbage) address


def test_close_wakes_pending_connect(run):
    raw = socket.socket()
    raw.bind(("127.0.0.1", 0))
    raw.listen(0)
    filler = socket.socket()
    filler.connect(raw.getsockname())
    probe = socket.socket()
    probe.setblocking(False)
    probe.connect_ex(raw.getsockname())
    sock = AsyncSocket(socket.socket())
    started = pycos.Event()

    def connector(task=None):
        started.set()
        try:
            yield sock.connect(raw.getsockname())
        except OSError as exc:
            return exc.errno
        return "connected"

    def closer(task=None):
        yield started.wait(5)
        sock.close()

    t = pycos.Task(connector)
    run(closer)
    assert t.value(5) == errno.EBADF
    for s in (probe, filler, raw):
        s.close()


def test_close_from_a_plain_thread_wakes_reader(run):
    a, b = _pair()
    ready = threading.Event()

    def reader(task=None):
        ready.set()
        return (yield a.recv(100))

    r = pycos.Task(reader)
    assert ready.wait(5)
    a.close()                        # from the test's own thread
    assert r.value(5) == b""
    b.close()


def test_operation_on_closed_socket(run):
    a, b = _pair()
    a.close()

    def go(task=None):
        try:
            yield a.recv(10)
        except OSError as exc:
            return exc.errno

    assert run(go) == errno.EBADF
    b.close()


def test_terminated_reader_cancels_its_operation(run):
    a, b = _pair()
    ready = pycos.Event()

    def reader(task=None):
        ready.set()
        yield a.recv(100)

    def go(task=None):
        r = pycos.Task(reader)
        yield ready.wait(5)
        r.terminate()
        yield r.finish()
        # the socket is free again: another task may read
        yield b.sendall(b"after")
        return (yield a.recv(100))

    assert run(go) == b"after"
    a.close()
    b.close()


def test_thrown_reader_cancels_its_operation(run):
    a, b = _pair()
    ready = pycos.Event()

    def reader(task=None):
        ready.set()
        try:
            yield a.recv(100)
        except KeyError:
            pass
        b.send(b"again")
        return (yield a.recv(100))

    def go(task=None):
        r = pycos.Task(reader)
        yield ready.wait(5)
        r.throw(KeyError("x"))
        return (yield r.finish())

    assert run(go) == b"again"
    a.close()
    b.close()


def test_scheduler_terminate_with_pending_operations(sched):
    """terminate() while tasks wait on sockets: every task ends, nothing
    hangs (the sockets are closed by the test afterwards)."""
    a, b = _pair()
    lsock = listener()

    def waiter(sock, task=None):
        yield sock.recv(10)

    def acceptor(task=None):
        yield lsock.accept()

    tasks = [pycos.Task(waiter, a), pycos.Task(waiter, b), pycos.Task(acceptor)]
    # all three parked: wait until the reactor holds their operations
    deadline = time.monotonic() + 5
    while sched.statistics()["loop"]["pending_ops"] < 3 and time.monotonic() < deadline:
        time.sleep(0.005)
    sched.terminate()
    assert not any(t.is_alive() for t in tasks)
    for s in (a, b, lsock):
        s.close()


def test_recvfrom_timeout_and_late_datagram(run):
    u = AsyncSocket(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    u.bind(("127.0.0.1", 0))
    u.settimeout(0.1)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def go(task=None):
        t0 = time.monotonic()
        try:
            yield u.recvfrom(100)
        except socket.timeout:
            waited = _elapsed(t0)
        sender.sendto(b"late", u.getsockname())
        data, addr = yield u.recvfrom(100)
        return waited, data, addr[1] == sender.getsockname()[1]

    try:
        waited, data, same = run(go)
    finally:
        u.close()
        sender.close()
    assert 0.05 <= waited < 2 and data == b"late" and same


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"),
                    reason="no AF_UNIX in this platform's socket module")
def test_unix_connect_refused_and_missing(run, tmp_path):
    """A Unix socket path nobody listens on: ConnectionRefusedError; a path
    that does not exist: FileNotFoundError."""
    path = str(tmp_path / "bound-not-listening")
    holder = socket.socket(socket.AF_UNIX)
    holder.bind(path)
    a = AsyncSocket(socket.socket(socket.AF_UNIX))
    b = AsyncSocket(socket.socket(socket.AF_UNIX))

    def go(task=None):
        out = []
        for sock, where in ((a, path), (b, str(tmp_path / "missing"))):
            try:
                yield sock.connect(where)
            except OSError as exc:
                out.append(type(exc))
        return out

    try:
        assert run(go) == [ConnectionRefusedError, FileNotFoundError]
    finally:
        a.close()
        b.close()
        holder.close()


def test_reset_wakes_a_pending_recv_msg(run):
    """The reset arrives while recv_msg is already waiting mid-message."""
    a, b = _tcp_pair(run)
    started = pycos.Event()

    def reader(task=None):
        started.set()
        try:
            return (yield a.recv_msg())
        except ConnectionResetError:
            return "reset"

    def go(task=None):
        r = pycos.Task(reader)
        yield started.wait(5)
        yield b.sendall(struct.pack(">L", 1000) + b"x" * 10)
        deadline = time.monotonic() + 5
        while _unread(a) and time.monotonic() < deadline:
            yield task.sleep(0.005)
        _reset(b)
        return (yield r.finish())

    try:
        assert run(go) == "reset"
    finally:
        a.close()
