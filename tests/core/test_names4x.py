"""The pycos 4.x names this project had been missing: ``pycos.MsgTimeout``,
``pycos.PickleProtocolVersion``, ``AsyncSocket.get_ssl_version``/
``set_ssl_version``, ``getdefaulttimeout``/``setdefaulttimeout``,
``ssl_server_ctx``, and ``recvall``/``recv_msg`` returning ``bytearray``
as 4.x's did -- each checked for what it does, not only for being there."""
import math
import os
import pickle
import shutil
import socket
import ssl
import subprocess
import sys

import pytest

import pycos
from pycos import AsyncSocket, config

pytestmark = pytest.mark.timeout(60)


def _fds():
    fds = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            fds[name] = os.readlink("/proc/self/fd/" + name)
        except OSError:
            pass
    return fds


@pytest.fixture(autouse=True)
def no_socket_left():
    """(The core conftest checks tasks and threads; these tests also open
    sockets: every one is closed after.)"""
    before = _fds()
    yield
    after = _fds()
    leaked = {fd: what for fd, what in after.items()
              if before.get(fd) != what and what.startswith("socket:")}
    assert not leaked, leaked


# ---------------------------------------------------------------- settings


@pytest.fixture
def settings():
    saved = config.MsgTimeout, config.PickleProtocolVersion
    yield
    config.MsgTimeout, config.PickleProtocolVersion = saved


def test_msg_timeout_is_the_config_setting(settings):
    assert pycos.MsgTimeout == config.MsgTimeout == 10
    pycos.MsgTimeout = 25                  # as 4.x's dispycosnode did
    assert config.MsgTimeout == 25
    config.MsgTimeout = 7.5
    assert pycos.MsgTimeout == 7.5
    from pycos import MsgTimeout
    assert MsgTimeout == 7.5
    for bad, exc in (("10", TypeError), (True, TypeError), (None, TypeError),
                     (0, ValueError), (-1, ValueError), (math.nan, ValueError)):
        with pytest.raises(exc, match="MsgTimeout"):
            pycos.MsgTimeout = bad
    assert config.MsgTimeout == 7.5


def test_netpycos_has_the_live_settings_too():
    # a 4.x netpycos program: `import pycos.netpycos as pycos; pycos.MsgTimeout = 30`
    # (in a child: importing netpycos makes this process's schedulers networked)
    code = ("import pycos, pycos.config as config, pycos.netpycos as netpycos\n"
            "netpycos.MsgTimeout = 30\n"
            "netpycos.PickleProtocolVersion = 3\n"
            "print(config.MsgTimeout, pycos.MsgTimeout, netpycos.MsgTimeout,\n"
            "      config.PickleProtocolVersion, pycos.PickleProtocolVersion)\n")
    out = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE,
                         universal_newlines=True, timeout=60, check=True).stdout
    assert out.split() == ["30", "30", "30", "3", "3"]


def test_pickle_protocol_version_as_4x_read_it(settings):
    assert pycos.PickleProtocolVersion == pickle.HIGHEST_PROTOCOL
    pycos.PickleProtocolVersion = None     # 4.x: the highest
    assert pycos.PickleProtocolVersion == config.PickleProtocolVersion == pickle.HIGHEST_PROTOCOL
    pycos.PickleProtocolVersion = 0        # 4.x: the default
    assert pycos.PickleProtocolVersion == config.PickleProtocolVersion == pickle.DEFAULT_PROTOCOL
    pycos.PickleProtocolVersion = 2
    assert config.PickleProtocolVersion == 2
    assert pycos.serialize({"a": 1})[:2] == b"\x80\x02"      # what serialize uses
    for bad, exc in (("2", TypeError), (2.0, TypeError), (True, TypeError),
                     (-1, ValueError), (pickle.HIGHEST_PROTOCOL + 1, ValueError)):
        with pytest.raises(exc, match="PickleProtocolVersion"):
            pycos.PickleProtocolVersion = bad
    assert config.PickleProtocolVersion == 2
    # a program that sets the config value itself, 4.x-style
    config.PickleProtocolVersion = None
    assert pycos.PickleProtocolVersion == config._pickle_protocol() == pickle.HIGHEST_PROTOCOL
    assert config._pickle_protocol(0) == pickle.DEFAULT_PROTOCOL
    assert config._pickle_protocol(3) == 3


def test_star_import_has_them():
    ns = {}
    exec("from pycos import *", ns)
    assert ns["MsgTimeout"] == config.MsgTimeout
    assert ns["PickleProtocolVersion"] == config._pickle_protocol()


# ---------------------------------------------------------------- default timeout


@pytest.fixture
def default_timeout():
    yield
    AsyncSocket.setdefaulttimeout(None)


def test_setdefaulttimeout_applies_to_new_sockets(run, default_timeout):
    assert AsyncSocket.getdefaulttimeout() is None
    a, b = socket.socketpair()
    plain = AsyncSocket(a)
    assert plain.gettimeout() is None
    AsyncSocket.setdefaulttimeout(0.05)
    assert AsyncSocket.getdefaulttimeout() == 0.05
    s = AsyncSocket(b)
    assert s.gettimeout() == 0.05 and plain.gettimeout() is None
    assert s.getdefaulttimeout() == 0.05       # the 4.x form: called on a socket

    def reader(task=None):
        try:
            yield s.recv(10)
        except socket.timeout:
            return "timed out"

    try:
        assert run(reader) == "timed out"
    finally:
        s.close()
        plain.close()
    s.setdefaulttimeout(None)
    assert AsyncSocket.getdefaulttimeout() is None


def test_accepted_connections_take_the_listeners_timeout(run, default_timeout):
    AsyncSocket.setdefaulttimeout(3)
    srv = AsyncSocket(socket.socket())
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    AsyncSocket.setdefaulttimeout(None)
    cli = AsyncSocket(socket.socket())

    def go(task=None):
        yield cli.connect(srv.getsockname())
        conn, _ = yield srv.accept()
        t = conn.gettimeout()
        conn.close()
        return t

    try:
        assert run(go) == 3.0
        assert cli.gettimeout() is None
    finally:
        cli.close()
        srv.close()


def test_setdefaulttimeout_bad_values(default_timeout):
    for bad, exc in (("1", TypeError), (True, TypeError), (-1, ValueError),
                     (math.nan, ValueError)):
        with pytest.raises(exc):
            AsyncSocket.setdefaulttimeout(bad)
    assert AsyncSocket.getdefaulttimeout() is None


# ---------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """Two self-signed certificates for 127.0.0.1: (pem, key) each."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command to make the test certificates (Windows has none)")
    d = tmp_path_factory.mktemp("certs4x")
    out = []
    for name in ("one", "two"):
        pem, key = str(d / (name + ".pem")), str(d / (name + ".key"))
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", key, "-out", pem],
                       check=True, timeout=60, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
        out.append((pem, key))
    return out


@pytest.fixture
def ssl_default():
    yield
    AsyncSocket.set_ssl_version(ssl.PROTOCOL_TLS)


def _tls_pair(run, server, client_kw):
    """Connect a TLS client (``AsyncSocket(**client_kw)``) to ``server`` (a
    listening AsyncSocket); return (negotiated version, client's recvall)."""
    cli = AsyncSocket(socket.socket(), **client_kw)

    def serve(task=None):
        conn, _ = yield server.accept()
        try:
            yield conn.sendall(b"hello")
            return conn._tls.obj.version() if conn._tls is not None else None
        finally:
            conn.close()

    def go(task=None):
        t = pycos.Task(serve)
        try:
            yield cli.connect(server.getsockname())
            data = yield cli.recvall(5)
        finally:
            cli.close()
        return (yield t.finish()), data

    return run(go)


def _server(**kw):
    srv = AsyncSocket(socket.socket(), **kw)
    srv.bind(("127.0.0.1", 0))
    srv.listen(2)
    return srv


def test_ssl_version_default_and_set(run, certs, ssl_default):
    assert AsyncSocket.get_ssl_version() == ssl.PROTOCOL_TLS
    (pem, key), _ = certs
    srv = _server(certfile=pem, keyfile=key)
    try:
        version, data = _tls_pair(run, srv, {"certfile": pem})
        assert version == "TLSv1.3" and data == b"hello"    # negotiated: the best
    finally:
        srv.close()
    AsyncSocket.set_ssl_version(ssl.PROTOCOL_TLSv1_2)      # 4.x's class default
    assert AsyncSocket.get_ssl_version() == ssl.PROTOCOL_TLSv1_2
    srv = _server(certfile=pem, keyfile=key)
    try:
        version, _ = _tls_pair(run, srv, {"certfile": pem})
        assert version == "TLSv1.2"
    finally:
        srv.close()


def test_ssl_version_per_socket(run, certs):
    (pem, key), _ = certs
    srv = _server(certfile=pem, keyfile=key, ssl_version=ssl.TLSVersion.TLSv1_2)
    try:
        assert _tls_pair(run, srv, {"certfile": pem})[0] == "TLSv1.2"
        # a client that insists on TLS 1.3 cannot talk to it
        cli = AsyncSocket(socket.socket(), certfile=pem, ssl_version=ssl.TLSVersion.TLSv1_3)

        def serve(task=None):
            conn, _ = yield srv.accept()
            try:
                yield conn.recv(10)             # (the handshake: it fails)
            except (ssl.SSLError, OSError) as exc:
                return type(exc).__name__
            finally:
                conn.close()

        def go(task=None):
            t = pycos.Task(serve)
            try:
                with pytest.raises((ssl.SSLError, OSError)):
                    yield cli.connect(srv.getsockname())
            finally:
                cli.close()
            yield t.finish()
            return "refused"

        assert run(go) == "refused"
    finally:
        srv.close()


def test_ssl_version_bad_values(certs, ssl_default):
    (pem, key), _ = certs
    for bad, exc in (("TLSv1_2", TypeError), (True, TypeError), (12345, ValueError)):
        with pytest.raises(exc, match="ssl_version"):
            AsyncSocket.set_ssl_version(bad)
        s = socket.socket()
        try:
            with pytest.raises(exc, match="ssl_version"):
                AsyncSocket(s, certfile=pem, keyfile=key, ssl_version=bad)
        finally:
            s.close()
    assert AsyncSocket.get_ssl_version() == ssl.PROTOCOL_TLS
    s = socket.socket()
    try:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with pytest.raises(ValueError, match="ssl_context"):
            AsyncSocket(s, ssl_context=ctx, ssl_version=ssl.PROTOCOL_TLSv1_2)
    finally:
        s.close()


def test_ssl_server_ctx(run, certs):
    (pem1, key1), (pem2, key2) = certs
    plain = AsyncSocket(socket.socket())
    client_only = AsyncSocket(socket.socket(), certfile=pem1)
    srv = _server(certfile=pem1, keyfile=key1)
    try:
        assert plain.ssl_server_ctx is None and client_only.ssl_server_ctx is None
        own = srv.ssl_server_ctx
        assert isinstance(own, ssl.SSLContext) and srv.ssl_server_ctx is own
        # a context of the program's own: the next connections use it (a
        # client that trusts only certificate two can connect now)
        other = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        other.load_cert_chain(pem2, key2)
        srv.ssl_server_ctx = other
        assert srv.ssl_server_ctx is other
        assert _tls_pair(run, srv, {"certfile": pem2})[1] == b"hello"
        srv.ssl_server_ctx = None                          # back to its own
        assert srv.ssl_server_ctx is own
        assert _tls_pair(run, srv, {"certfile": pem1})[1] == b"hello"
        with pytest.raises(TypeError):
            srv.ssl_server_ctx = "context"
        with pytest.raises(ValueError, match="PROTOCOL_TLS_CLIENT"):
            srv.ssl_server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        assert srv.ssl_server_ctx is own
    finally:
        plain.close()
        client_only.close()
        srv.close()


def test_ssl_server_ctx_makes_a_plain_listener_serve_tls(run, certs):
    (pem, key), _ = certs
    srv = _server()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pem, key)
    srv.ssl_server_ctx = ctx
    try:
        assert _tls_pair(run, srv, {"certfile": pem})[1] == b"hello"
        srv.ssl_server_ctx = None
        assert srv.ssl_server_ctx is None
        assert _tls_pair(run, srv, {})[1] == b"hello"       # plain again
    finally:
        srv.close()


# ---------------------------------------------------------------- bytearray


def test_recvall_and_recv_msg_return_bytearray(run):
    a, b = socket.socketpair()
    a, b = AsyncSocket(a), AsyncSocket(b)

    def go(task=None):
        yield a.sendall(b"abcdef")
        yield a.send_msg(b"framed")
        got = yield b.recvall(6)
        msg = yield b.recv_msg()
        yield a.sendall(b"xyz")
        raw = yield b.recv(3)
        got[0:1] = b"A"                    # a 4.x program may change them
        msg.extend(b"!")
        a.close()
        tail = yield b.recvall(10)         # end of stream: what there is (none)
        eof = yield b.recv_msg()
        return got, msg, raw, tail, eof

    try:
        got, msg, raw, tail, eof = run(go)
    finally:
        b.close()
    assert type(got) is bytearray and got == b"Abcdef"
    assert type(msg) is bytearray and msg == b"framed!"
    assert type(raw) is bytes and raw == b"xyz"                 # recv: bytes
    assert type(tail) is bytearray and tail == b""
    assert eof == b""


def test_recvall_partial_at_timeout_is_a_bytearray_of_its_own(run):
    """A timed-out recvall returns what came in a fresh bytearray: the
    reactor may still hold the read's buffer, so it must not be that one."""
    a, b = socket.socketpair()
    a, b = AsyncSocket(a), AsyncSocket(b)
    b.settimeout(0.05)

    def go(task=None):
        yield a.sendall(b"1234")
        part = yield b.recvall(100)
        part += b"-resized"                # no BufferError
        return part

    try:
        part = run(go)
    finally:
        a.close()
        b.close()
    assert type(part) is bytearray and part == b"1234-resized"


def test_blocking_and_tls_recvall_are_bytearray_too(run, certs):
    a, b = socket.socketpair()
    a, b = AsyncSocket(a, blocking=True), AsyncSocket(b, blocking=True)
    try:
        a.send_msg(b"sync")
        a.sendall(b"12")
        m, r = b.recv_msg(), b.recvall(2)
        assert (type(m), m, type(r), r) == (bytearray, b"sync", bytearray, b"12")
        a.send_msg(b"")
        assert b.recv_msg() == b""                          # an empty message
    finally:
        a.close()
        b.close()
    (pem, key), _ = certs
    srv = _server(certfile=pem, keyfile=key)
    try:
        version, data = _tls_pair(run, srv, {"certfile": pem})
        assert type(data) is bytearray and data == b"hello"
    finally:
        srv.close()
