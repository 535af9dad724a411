"""TLS on AsyncSocket against peers nobody here wrote (openssl s_server /
s_client), and against itself: verification, hostname checking,
ssl_context, handshake deadline, close_notify, clean errors."""
import hashlib
import os
import random
import socket
import ssl
import threading
import time

import pytest

import pycos
from pycos.io import AsyncSocket

from iohelp import addr_of
from tls_util import SServer, have_pki, make_pki, need_openssl, s_client

pytestmark = pytest.mark.skipif(not have_pki(), reason="needs the openssl CLI to make the "
                                "certificates (or them made, in PYCOS_TEST_PKI)")


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def s_server(pki):
    """Factory: start ``openssl s_server``; every one is killed and reaped."""
    need_openssl()
    servers = []

    def start(cert=None, key=None, extra=("-rev",)):
        srv = SServer(cert or pki["server_pem"], key or pki["server_key"], extra)
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.stop()


def tls_listener(pki, **kw):
    kw.setdefault("certfile", pki["server_pem"])
    kw.setdefault("keyfile", pki["server_key"])
    s = AsyncSocket(socket.socket(), **kw)
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    return s


def _client(pki, **kw):
    kw.setdefault("certfile", pki["ca_pem"])
    return AsyncSocket(socket.socket(), **kw)


def _elapsed(t0):
    return time.monotonic() - t0


# ---------------------------------------------------------------- our client, openssl server


@pytest.mark.parametrize("hostname", ["localhost", "127.0.0.1", None])
def test_client_against_openssl_s_server(run, pki, s_server, hostname):
    srv = s_server()
    sock = _client(pki, server_hostname=hostname)

    def go(task=None):
        try:
            yield sock.connect(("127.0.0.1", srv.port))
            yield sock.sendall(b"hello pycos\n")
            got = b""
            while not got.endswith(b"\n"):
                chunk = yield sock.recv(100)
                if not chunk:
                    break
                got += chunk
            return got
        finally:
            sock.close()

    assert run(go) == b"socyp olleh\n"


def test_client_wrong_ca(run, pki, s_server):
    srv = s_server()
    sock = _client(pki, certfile=pki["other_ca_pem"], server_hostname="localhost")

    def go(task=None):
        t0 = time.monotonic()
        try:
            yield sock.connect(("127.0.0.1", srv.port))
        except ssl.SSLCertVerificationError as exc:
            return exc.verify_code, _elapsed(t0)
        finally:
            sock.close()

    code, waited = run(go)
    assert code == 20          # X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
    assert waited < 5


def test_client_expired_certificate(run, pki, s_server):
    srv = s_server(cert=pki["expired_pem"])
    sock = _client(pki, server_hostname="localhost")

    def go(task=None):
        try:
            yield sock.connect(("127.0.0.1", srv.port))
        except ssl.SSLCertVerificationError as exc:
            return exc.verify_code, str(exc)
        finally:
            sock.close()

    code, msg = run(go)
    assert code == 10 and "expired" in msg     # X509_V_ERR_CERT_HAS_EXPIRED


def test_client_hostname_mismatch(run, pki, s_server):
    srv = s_server()
    sock = _client(pki, server_hostname="not-localhost.example")

    def go(task=None):
        try:
            yield sock.connect(("127.0.0.1", srv.port))
        except ssl.SSLCertVerificationError as exc:
            return exc.verify_code, str(exc)
        finally:
            sock.close()

    code, msg = run(go)
    assert code == 62 and "not-localhost.example" in msg   # X509_V_ERR_HOSTNAME_MISMATCH


def test_client_ssl_context(run, pki, s_server):
    srv = s_server()
    ctx = ssl.create_default_context(cafile=pki["ca_pem"])
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    sock = AsyncSocket(socket.socket(), ssl_context=ctx, server_hostname="localhost")

    def go(task=None):
        try:
            yield sock.connect(("127.0.0.1", srv.port))
            yield sock.sendall(b"ctx\n")
            return (yield sock.recvall(4))
        finally:
            sock.close()

    assert run(go) == b"xtc\n"


def test_client_ssl_context_without_trust_fails(run, pki, s_server):
    srv = s_server()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)    # verifies, trusts nothing
    sock = AsyncSocket(socket.socket(), ssl_context=ctx, server_hostname="localhost")

    def go(task=None):
        try:
            yield sock.connect(("127.0.0.1", srv.port))
        except ssl.SSLCertVerificationError:
            return "verify failed"
        finally:
            sock.close()

    assert run(go) == "verify failed"


def test_client_sees_ragged_eof_as_end_of_stream(run, pki, s_server):
    srv = s_server()
    sock = _client(pki, server_hostname="localhost")

    def go(task=None):
        try:
            yield sock.connect(("127.0.0.1", srv.port))
            yield sock.sendall(b"x\n")
            got = yield sock.recvall(2)
            srv.proc.kill()                 # dies without close_notify
            return got, (yield sock.recv(10))
        finally:
            sock.close()

    assert run(go) == (b"x\n", b"")


def test_client_handshake_stalled_by_server(run, pki):
    """A server that accepts and never answers the ClientHello: connect
    fails within handshake_timeout."""
    plain = socket.socket()
    plain.bind(("127.0.0.1", 0))
    plain.listen(1)
    sock = _client(pki, server_hostname="localhost", handshake_timeout=0.5)

    def go(task=None):
        t0 = time.monotonic()
        try:
            yield sock.connect(plain.getsockname())
        except socket.timeout:
            return _elapsed(t0)
        finally:
            sock.close()

    waited = run(go)
    plain.close()
    assert waited is not None and 0.4 <= waited < 2.5


def test_client_mutual_tls_with_client_certificate(run, pki):
    """keyfile+certfile on a client: it presents its certificate (the
    bundle also carries the CA that verifies the server)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki["server_pem"], pki["server_key"])
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(pki["ca_pem"])
    lsock = AsyncSocket(socket.socket(), ssl_context=ctx)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)

    def server2(task=None):
        conn, _ = yield lsock.accept()
        with conn:
            data = yield conn.recv_msg()
            yield conn.send_msg(data.upper())

    srv = pycos.Task(server2)
    sock = AsyncSocket(socket.socket(), certfile=pki["client_bundle_pem"],
                       keyfile=pki["client_key"], server_hostname="localhost")

    def go(task=None):
        try:
            yield sock.connect(addr_of(lsock))
            yield sock.send_msg(b"mutual")
            return (yield sock.recv_msg())
        finally:
            sock.close()

    assert run(go) == b"MUTUAL"
    srv.value(5)
    lsock.close()


# ---------------------------------------------------------------- our server, openssl client


def _echo_once(lsock, task=None):
    conn, _ = yield lsock.accept()
    with conn:
        data = b""
        while not data.endswith(b"\n"):
            chunk = yield conn.recv(1024)
            if not chunk:
                break
            data += chunk
        yield conn.sendall(data.upper())
    return data


def test_server_against_openssl_s_client(run, pki, sched):
    need_openssl()                  # (before anything is opened)
    lsock = tls_listener(pki)
    srv = pycos.Task(_echo_once, lsock)
    p = s_client(lsock.getsockname()[1], b"hello from s_client\n",
                 "-CAfile", pki["ca_pem"], "-verify_return_error",
                 "-verify_hostname", "localhost", "-ign_eof", "-quiet")
    assert srv.value(10) == b"hello from s_client\n"
    lsock.close()
    # s_client verified us, got the echo, and saw a clean close (close_notify):
    # without it, OpenSSL 3 reports "unexpected eof while reading" and exits 1
    assert p.stdout == b"HELLO FROM S_CLIENT\n", p.stderr
    assert b"unexpected eof" not in p.stderr, p.stderr
    assert p.returncode == 0, p.stderr


def test_server_close_notify_seen_by_s_client(run, pki, sched):
    need_openssl()                  # (before anything is opened)
    lsock = tls_listener(pki)
    srv = pycos.Task(_echo_once, lsock)
    p = s_client(lsock.getsockname()[1], b"x\n", "-CAfile", pki["ca_pem"], "-ign_eof")
    srv.value(10)
    lsock.close()
    out = p.stdout.decode(errors="replace")
    assert "Verify return code: 0 (ok)" in out
    assert out.rstrip().endswith("closed"), out[-300:]    # s_client's clean-close report
    assert p.returncode == 0


def test_server_plain_tcp_client_gets_clean_error_and_listener_keeps_going(run, pki):
    lsock = tls_listener(pki)
    errors = []

    def serve(conn, task=None):
        with conn:
            try:
                data = yield conn.recv(100)
                yield conn.sendall(data.upper())
            except ssl.SSLError as exc:
                errors.append(exc)

    def server(task=None):
        for _ in range(2):
            conn, _ = yield lsock.accept()
            t = pycos.Task(serve, conn)
        yield t.finish()

    srv = pycos.Task(server)

    def plain(task=None):
        with AsyncSocket(socket.socket()) as s:
            yield s.connect(addr_of(lsock))
            yield s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            try:
                return (yield s.recv(100))
            except ConnectionResetError:
                return b""

    run(plain)

    def tls(task=None):
        with _client(pki, server_hostname="localhost") as s:
            yield s.connect(addr_of(lsock))
            yield s.sendall(b"after")
            return (yield s.recvall(5))

    assert run(tls) == b"AFTER"
    srv.value(5)
    lsock.close()
    assert len(errors) == 1 and isinstance(errors[0], ssl.SSLError), errors


@pytest.mark.parametrize("stall", ["silent", "half-hello"])
def test_server_handshake_deadline(run, pki, stall):
    """A client that stalls mid-handshake: the connection task's first read
    fails within handshake_timeout (0.5 s) and the socket is released."""
    lsock = tls_listener(pki, handshake_timeout=0.5)

    def server(task=None):
        conn, _ = yield lsock.accept()
        with conn:
            t0 = time.monotonic()
            try:
                yield conn.recv(100)
            except (socket.timeout, ssl.SSLError) as exc:
                return type(exc), _elapsed(t0)
            return None, _elapsed(t0)

    srv = pycos.Task(server)
    c = socket.create_connection(addr_of(lsock), timeout=5)
    if stall == "half-hello":
        c.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")   # a ClientHello's start
    kind, waited = srv.value(10)
    c.close()
    lsock.close()
    assert kind is socket.timeout or issubclass(kind, socket.timeout), kind
    assert 0.4 <= waited < 2.5


def test_server_handshake_deadline_not_reset_by_trickle(run, pki):
    """The handshake deadline is total: a client trickling one byte of its
    hello every 0.2 s cannot keep the handshake alive past 0.6 s."""
    lsock = tls_listener(pki, handshake_timeout=0.6)
    hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 20

    def server(task=None):
        conn, _ = yield lsock.accept()
        with conn:
            t0 = time.monotonic()
            try:
                yield conn.recv(100)
            except (socket.timeout, ssl.SSLError) as exc:
                return type(exc).__name__, _elapsed(t0)
            return None, _elapsed(t0)

    def trickler(task=None):
        with AsyncSocket(socket.socket()) as s:
            yield s.connect(addr_of(lsock))
            for b in hello:
                yield task.sleep(0.2)
                try:
                    yield s.sendall(bytes([b]))
                except OSError:
                    break
                if not srv.is_alive():
                    break

    srv = pycos.Task(server)
    tr = pycos.Task(trickler)
    name, waited = srv.value(10)
    tr.value(10)
    lsock.close()
    assert name in ("timeout", "TimeoutError"), name
    assert waited < 2


# ---------------------------------------------------------------- both sides ours


def _tls_pair_run(run, pki, server_fn, client_fn, **server_kw):
    lsock = tls_listener(pki, **server_kw)

    def server(task=None):
        conn, _ = yield lsock.accept()
        with conn:
            return (yield server_fn(conn))

    srv = pycos.Task(server)

    def client(task=None):
        with _client(pki, server_hostname="localhost") as sock:
            yield sock.connect(addr_of(lsock))
            return (yield client_fn(sock))

    try:
        c = run(client, timeout=30)
        s = srv.value(30)
    finally:
        lsock.close()
    return s, c


def test_tls_large_transfer_integrity(run, pki):
    data = os.urandom(1 << 20) * 12          # 12 MiB

    def server(conn):
        h = hashlib.sha256()
        n = 0
        while n < len(data):
            chunk = yield conn.recv(1 << 16)
            if not chunk:
                break
            h.update(chunk)
            n += len(chunk)
        yield conn.send_msg(h.hexdigest().encode())
        return n

    def client(sock):
        yield sock.sendall(data)
        return (yield sock.recv_msg())

    n, digest = _tls_pair_run(run, pki, server, client)
    assert n == len(data)
    assert digest == hashlib.sha256(data).hexdigest().encode()


def test_tls_framing_and_recvall(run, pki):
    def server(conn):
        msgs = []
        while True:
            m = yield conn.recv_msg()
            if not m:
                break
            msgs.append(m)
            yield conn.send_msg(m[::-1])
        return msgs

    def client(sock):
        out = []
        for n in (1, 100, 70000, 300000):
            yield sock.send_msg(b"a" * (n - 1) + b"b")
            out.append((yield sock.recv_msg()))
        yield sock.sendall(b"\x00\x00\x00\x00")   # a zero-length frame ends it
        return out

    msgs, out = _tls_pair_run(run, pki, server, client)
    assert [len(m) for m in msgs] == [1, 100, 70000, 300000]
    assert out == [m[::-1] for m in msgs]


def test_tls_recv_timeout(run, pki):
    def server(conn):
        conn.settimeout(0.2)
        yield conn.recv(1)                       # handshake, then one byte
        try:
            yield conn.recv(10)
        except socket.timeout:
            return "timeout"

    def client(sock):
        yield sock.send(b"!")
        yield sock.recv(10)                       # until the server closes

    assert _tls_pair_run(run, pki, server, client)[0] == "timeout"


def test_tls_close_wakes_reader(run, pki):
    lsock = tls_listener(pki)
    ready = pycos.Event()

    def server(task=None):
        conn, _ = yield lsock.accept()
        with conn:
            yield conn.recv_msg()            # "ready" from the client
            ready.set()
            yield conn.recv(10)              # until the client is gone

    srv = pycos.Task(server)
    sock = _client(pki, server_hostname="localhost")

    def reader(task=None):
        yield sock.connect(addr_of(lsock))
        yield sock.send_msg(b"ready")
        return (yield sock.recv(100))

    def closer(task=None):
        yield ready.wait(5)
        sock.close()

    r = pycos.Task(reader)
    run(closer)
    assert r.value(5) == b""
    srv.value(5)
    lsock.close()


def test_tls_unwrap_then_plain(run, pki):
    def server(conn):
        m = yield conn.recv_msg()
        plain = yield conn.unwrap()
        assert plain is conn
        yield conn.sendall(b"plain now")
        return m

    def client(sock):
        yield sock.send_msg(b"secret")
        plain = yield sock.unwrap()
        return (yield plain.recvall(9))

    assert _tls_pair_run(run, pki, server, client) == (b"secret", b"plain now")


def test_tls_blocking_client_in_a_thread(run, pki):
    lsock = tls_listener(pki)

    def server(task=None):
        conn, _ = yield lsock.accept()
        with conn:
            m = yield conn.recv_msg()
            yield conn.send_msg(m * 2)

    srv = pycos.Task(server)
    out = {}

    def client():
        sock = AsyncSocket(socket.socket(), blocking=True, certfile=pki["ca_pem"],
                           server_hostname="localhost")
        try:
            sock.settimeout(10)
            sock.connect(addr_of(lsock))
            sock.send_msg(b"sync")
            out["reply"] = sock.recv_msg()
        finally:
            sock.close()

    th = threading.Thread(target=client)
    th.start()
    th.join(15)
    srv.value(5)
    lsock.close()
    assert out == {"reply": b"syncsync"}


def test_tls_config_errors(pki):
    raw = socket.socket()
    try:
        with pytest.raises(TypeError):
            AsyncSocket(raw, ssl_context="not a context")
        with pytest.raises(ValueError):
            AsyncSocket(raw, keyfile=pki["server_key"])
    finally:
        raw.close()


@pytest.mark.parametrize("start,pieces", [("after-handshake", False), ("at-once", False),
                                          ("after-handshake", True)])
def test_tls_full_duplex_reader_and_writer_tasks(run, pki, start, pieces, monkeypatch):
    """One task reads while another writes on the same TLS connection, on
    both sides ("at-once": from the very start, so the server's lazy
    handshake is wanted by two tasks at once; "after-handshake": once one
    message has gone each way).  ``pieces``: the writers send many small
    sendalls, the inline path whose record may only partly fit in the
    socket buffer (its tail must still leave first: checked by the
    digests, and the tail case must have happened)."""
    from pycos.io import tls
    tails = []
    send_rest = tls.Session._send_rest

    def counting_send_rest(self, *args):
        tails.append(len(self._rest))
        return send_rest(self, *args)

    monkeypatch.setattr(tls.Session, "_send_rest", counting_send_rest)
    lsock = tls_listener(pki)
    n = 4 << 20
    up, down = os.urandom(n), os.urandom(n)

    def reader(sock, size, task=None):
        h = hashlib.sha256()
        got = 0
        while got < size:
            chunk = yield sock.recv(1 << 16)
            if not chunk:
                break
            h.update(chunk)
            got += len(chunk)
        return h.hexdigest()

    def writer(sock, data, task=None):
        if not pieces:
            yield sock.sendall(data)
            return
        rng = random.Random(len(data))
        i = 0
        while i < len(data):
            k = rng.randint(1, 20000)
            yield sock.sendall(data[i:i + k])
            i += k

    def server(task=None):
        conn, _ = yield lsock.accept()
        with conn:
            if start == "after-handshake":
                yield conn.send_msg((yield conn.recv_msg()))
            r = pycos.Task(reader, conn, n)
            w = pycos.Task(writer, conn, down)
            yield w.finish()
            return (yield r.finish())

    srv = pycos.Task(server)

    def client(task=None):
        with _client(pki, server_hostname="localhost") as sock:
            yield sock.connect(addr_of(lsock))
            if start == "after-handshake":
                yield sock.send_msg(b"hi")
                assert (yield sock.recv_msg()) == b"hi"
            r = pycos.Task(reader, sock, n)
            w = pycos.Task(writer, sock, up)
            yield w.finish()
            return (yield r.finish())

    try:
        got_down = run(client, timeout=30)
        got_up = srv.value(30)
    finally:
        lsock.close()
    assert got_up == hashlib.sha256(up).hexdigest()
    assert got_down == hashlib.sha256(down).hexdigest()
    if pieces:
        assert tails and all(t > 0 for t in tails)


def test_tls_second_concurrent_reader_raises(run, pki):
    """One pending read per socket holds for TLS too: a second reader gets
    RuntimeError at once; the first one is unaffected."""
    started = pycos.Event()

    def server(conn):
        yield conn.send_msg(b"go")
        m = yield conn.recv_msg()               # the client's verdict
        yield conn.sendall(b"for the first reader")
        return m

    def client(sock):
        assert (yield sock.recv_msg()) == b"go"

        def first(task=None):
            started.set()
            return (yield sock.recv(100))

        r = pycos.Task(first)
        yield started.wait(5)
        yield task_sleep0()
        try:
            yield sock.recv(100)
            verdict = b"no error"
        except RuntimeError as exc:
            verdict = b"RuntimeError" if "pending" in str(exc) else str(exc).encode()
        yield sock.send_msg(verdict)
        return (yield r.finish())

    m, got = _tls_pair_run(run, pki, server, client)
    assert m == b"RuntimeError"
    assert got == b"for the first reader"


def task_sleep0():
    return pycos.Pycos.cur_task().sleep(0)


def test_tls_failed_lazy_handshake_reaches_reader_and_writer(run, pki):
    """A server connection with a reader task and a writer task from the
    start; the peer is no TLS client.  Both tasks see the one handshake's
    SSL error (neither hangs, neither gets a 'busy' error)."""
    lsock = tls_listener(pki)

    def reader(conn, task=None):
        try:
            yield conn.recv(10)
        except ssl.SSLError:
            return "SSLError"

    def writer(conn, task=None):
        try:
            yield conn.sendall(b"x" * 1000)
        except ssl.SSLError:
            return "SSLError"

    def server(task=None):
        conn, _ = yield lsock.accept()
        with conn:
            r, w = pycos.Task(reader, conn), pycos.Task(writer, conn)
            return (yield r.finish()), (yield w.finish())

    srv = pycos.Task(server)
    with socket.create_connection(addr_of(lsock), timeout=10) as c:
        c.sendall(b"GET / HTTP/1.0\r\n\r\n")
        assert srv.value(10) == ("SSLError", "SSLError")
    lsock.close()


def test_tls_sendall_timeout_and_close_wakes_writer(run, pki):
    """A peer that never reads: sendall times out within its deadline; a
    second sendall is woken by close with an OSError."""
    release = pycos.Event()

    def server(conn):
        yield conn.recv(1)                      # the handshake, one byte
        yield release.wait(20)                  # then read nothing

    def client(sock):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
        yield sock.send(b"!")
        sock.settimeout(0.3)
        t0 = time.monotonic()
        try:
            yield sock.sendall(b"y" * (32 << 20))
            out = "no timeout"
        except socket.timeout:
            out = "timeout"
        waited = _elapsed(t0)
        sock.settimeout(None)

        def writer(task=None):
            try:
                yield sock.sendall(b"z" * (32 << 20))
            except OSError as exc:
                return type(exc)

        w = pycos.Task(writer)
        yield task_sleep0()
        yield task_sleep0()
        sock.close()
        wres = yield w.finish()
        release.set()
        return out, waited, wres

    _, (out, waited, wres) = _tls_pair_run(run, pki, server, client)
    assert out == "timeout" and 0.25 <= waited < 3
    assert issubclass(wres, OSError)


def test_tls_echo_server_with_openssl_s_client_many_lines(run, pki, sched):
    """The user's first try (docs): a TLS echo server, one task per
    connection, talked to by openssl s_client."""
    need_openssl()                  # (before anything is opened)
    lsock = tls_listener(pki)

    lines = b"".join(b"echo line %d\n" % i for i in range(2000))

    def serve(conn, task=None):
        with conn:              # closing sends close_notify: s_client then exits
            n = 0
            while n < len(lines):
                data = yield conn.recv(4096)
                if not data:
                    break
                yield conn.sendall(data)
                n += len(data)
        return n

    def server(task=None):
        conn, _ = yield lsock.accept()
        return (yield pycos.Task(serve, conn).finish())

    srv = pycos.Task(server)
    p = s_client(lsock.getsockname()[1], lines, "-CAfile", pki["ca_pem"],
                 "-verify_return_error", "-verify_hostname", "localhost", "-quiet")
    assert srv.value(10) == len(lines)
    lsock.close()
    assert p.returncode == 0, p.stderr
    assert p.stdout == lines, p.stdout[-200:]


def test_flags_are_refused_on_tls(pki):
    """recv/send flags (MSG_PEEK ...) make no sense through TLS records: a
    TLS socket refuses them with ValueError (as ssl.SSLSocket does), before
    it is even connected, instead of ignoring them."""
    sock = AsyncSocket(socket.socket(), certfile=pki["ca_pem"])
    with pytest.raises(ValueError):
        sock.recv(10, socket.MSG_PEEK)
    with pytest.raises(ValueError):
        sock.send(b"x", socket.MSG_OOB)
    sock.close()


def test_engine_reads_whole_records_at_once_and_drains_everything_queued(run, pki):
    """The engine's two buffer paths, without sockets: a read gets every
    whole record the incoming BIO holds (up to its size, exactly), and the
    bytes queued for the peer come out whole, also beyond the scratch
    buffer's size.  (On PyPy both go through the scheduler's scratch
    buffer, so this runs in a task; elsewhere through ssl's own calls.)"""
    from pycos.io import tls

    def engine(task=None):
        yield None
        srv = tls.Session(tls.Config(pki["server_pem"], pki["server_key"], None, None, None),
                          server_side=True)
        ctx = ssl.create_default_context(cafile=pki["ca_pem"])
        c_in, c_out = ssl.MemoryBIO(), ssl.MemoryBIO()
        cli = ctx.wrap_bio(c_in, c_out, server_hostname="localhost")
        for _ in range(4):          # handshake: shuttle the records both ways
            for obj in (cli, srv.obj):
                try:
                    obj.do_handshake()
                except ssl.SSLWantReadError:
                    pass
            srv.inc.write(c_out.read())
            c_in.write(srv._cipher())
        cli.do_handshake()          # both done: neither raises any more
        srv.obj.do_handshake()

        data = bytes(random.Random(5).getrandbits(8) for _ in range(40000))
        for i in range(0, len(data), 16384):        # three records
            cli.write(data[i:i + 16384])
        srv.inc.write(c_out.read())
        assert srv._read(100) == data[:100]
        assert srv._read(1 << 16) == data[100:]      # every record left, at once
        with pytest.raises(ssl.SSLWantReadError):
            srv._read(1 << 16)

        big = os.urandom(300 * 1024)                # more than the scratch buffer
        for i in range(0, len(big), 65536):
            srv.obj.write(big[i:i + 65536])
        wire = srv._cipher()
        assert not srv.out.pending
        assert len(wire) > tls._CHUNK
        c_in.write(wire)
        got = b""
        while len(got) < len(big):
            got += cli.read(1 << 20)
        assert got == big
        return True

    assert run(engine) is True
