"""AsyncSocket: a socket whose blocking calls are written ``yield sock.call()``.

It wraps a ``socket.socket`` (TCP, UDP, Unix; IPv4/IPv6) and runs its
operations through the reactor's completion-style calls (see
:mod:`pycos.io.fdio` for how a call parks a task).  Anything it does not
define (bind, listen, setsockopt, getsockname, fileno, shutdown ...) passes
through to the socket.  With ``blocking=True`` the same names are plain
synchronous calls, for threads.

TLS (``certfile``/``keyfile``, ``ssl_context``) is layered on the same calls
with ``ssl.MemoryBIO`` (:mod:`pycos.io.tls`), so handshakes and records go
through the reactor and never block the scheduler.

Message framing (``send_msg``/``recv_msg``): a 4-byte big-endian length, then
the payload.  ``max_msg_size`` (default 64 MiB) bounds what ``recv_msg``
accepts, so a hostile length cannot make it allocate gigabytes.

``recvall`` and ``recv_msg`` return a ``bytearray``, as in pycos 4.x: it is
the buffer the bytes were read into, handed over without a copy, and 4.x
programs may change it in place (``recv`` returns ``bytes``, as
``socket.recv`` does).  docs/sockets.md has the reasons.
"""

from __future__ import annotations

import _socket
import inspect
import errno
import math
import socket
import ssl
import struct
from typing import TYPE_CHECKING, Any, Literal, Optional, Tuple, Union

from pycos import reactor
from pycos.core.scheduler import RESUME, _get_ident, _sched_of_thread
from pycos.io.fdio import FDIO, _BYTES_IN_PLACE, _current, _head
from pycos.reactor import PENDING, READ, WRITE
from pycos.io import tls as _tls
from pycos.hints import Timeout

__all__ = ["AsyncSocket", "MAX_MSG_SIZE"]

MAX_MSG_SIZE = 64 << 20

# operation kinds
_RECV, _RECVALL, _ACCEPT, _RECVFROM = 1, 2, 3, 4
_SEND, _SENDALL, _CONNECT, _SENDTO = 5, 6, 7, 8

_HDR = struct.Struct(">L")
_from_buffer = reactor.ffi.from_buffer
_rx_send = reactor.lib.rx_send
_ALL = reactor._ALL
_rx_accept = reactor.lib.rx_accept
_family_of = _socket.socket.family.__get__
_type_of = _socket.socket.type.__get__
# an accepted descriptor is non-blocking already (accept4): a socket.socket
# made with this flag in its type starts with timeout 0 and skips the ioctl
# (and the setblocking call) that would tell it so.  Not on every platform.
_NONBLOCK_TYPE = getattr(socket, "SOCK_NONBLOCK", 0)


def _is_numeric(family: int, host: str) -> bool:
    try:
        socket.inet_pton(family, host)
        return True
    except (OSError, ValueError, TypeError):
        return False


class AsyncSocket(FDIO):
    """Asynchronous version of ``sock`` (a ``socket.socket``).

    ``certfile``/``keyfile``: a TLS server presents them; a TLS client
    verifies the server against ``certfile`` (a CA bundle) and, with
    ``keyfile`` too, presents them as its own certificate.  ``ssl_context``:
    an ``ssl.SSLContext`` to use instead (full control).  ``server_hostname``:
    the name a client checks the server's certificate against (no hostname
    check without it).  ``ssl_version``: the TLS version(s) of the contexts
    pycos makes from ``certfile``/``keyfile`` (default
    :meth:`get_ssl_version`, which negotiates the best version both sides
    support; ``ssl.PROTOCOL_TLSv1_2`` or an ``ssl.TLSVersion`` pins one).

    Calls marked [y] are made in a task as ``value = yield sock.call(...)``
    (docs/index.md explains the marks); with ``blocking=True`` the same
    methods are plain calls for threads, returning their values, so they are
    annotated as returning ``Any``.  Guides: docs/sockets.md, docs/tls.md.
    """

    __slots__ = ("_sock", "_blocking", "_addrbuf", "_rbuf", "_ahead", "_max_msg",
                 "_tls_cfg", "_tls")

    #: what setdefaulttimeout() set (None: a new socket keeps its own timeout)
    _default_timeout: Optional[float] = None
    #: what set_ssl_version() set
    _ssl_version: Union[int, ssl.TLSVersion] = ssl.PROTOCOL_TLS

    _sock: socket.socket
    _blocking: bool
    _addrbuf: Optional[reactor.AddrBuffer]
    _rbuf: Optional[bytearray]
    _ahead: bytes
    _max_msg: int
    _tls: Any           # a pycos.io.tls.Session while TLS is on, else None
    _tls_cfg: Any       # a pycos.io.tls.Config for a TLS socket, else None

    def __init__(self, sock: socket.socket, blocking: bool = False, keyfile: Optional[str] = None,
                 certfile: Optional[str] = None,
                 ssl_version: Union[None, int, ssl.TLSVersion] = None,
                 ssl_context: Optional[ssl.SSLContext] = None,
                 server_hostname: Optional[str] = None, max_msg_size: int = MAX_MSG_SIZE,
                 handshake_timeout: float = _tls.HANDSHAKE_TIMEOUT) -> None:
        if isinstance(sock, AsyncSocket):
            raise TypeError("%r is already an AsyncSocket" % (sock,))
        if not isinstance(sock, socket.socket):
            raise TypeError("AsyncSocket wraps a socket.socket, not %r" % (type(sock).__name__,))
        fd = sock.fileno()
        if fd < 0:
            raise OSError(errno.EBADF, "AsyncSocket of a closed socket")
        self._sock = sock
        self._fdio_init(fd)
        timeout = AsyncSocket._default_timeout
        self._timeout = sock.gettimeout() if timeout is None else timeout
        self._blocking = False
        self._addrbuf = None
        self._rbuf = None
        self._ahead = b""           # plain bytes that came with TLS's end (unwrap)
        self._max_msg = int(max_msg_size)
        if keyfile is not None and certfile is None:
            raise ValueError("keyfile given without certfile")
        self._tls_cfg = None
        self._tls = None
        if certfile is not None or ssl_context is not None:
            if ssl_version is None:
                ssl_version = None if ssl_context is not None else AsyncSocket._ssl_version
            self._tls_cfg = _tls.Config(certfile, keyfile, ssl_context, server_hostname,
                                        handshake_timeout, ssl_version)
        elif ssl_version is not None:
            _tls.version_range(ssl_version)     # (bad values are errors here too)
        if blocking:
            self.setblocking(True)
        else:
            sock.setblocking(False)

    @classmethod
    def _accepted(cls, parent, sock):
        """The connection accepted by ``parent``."""
        self = cls.__new__(cls)
        self._sock = sock
        self._fdio_init(sock.fileno())
        self._timeout = parent._timeout
        self._blocking = False
        self._addrbuf = None
        self._rbuf = None
        self._ahead = b""           # plain bytes that came with TLS's end (unwrap)
        self._max_msg = parent._max_msg
        self._tls_cfg = parent._tls_cfg
        self._tls = _tls.Session(self._tls_cfg, server_side=True) if self._tls_cfg else None
        return self

    # -- plumbing --

    def __repr__(self) -> str:
        return "<pycos.AsyncSocket fd=%d%s%s>" % (
            self._fd, " tls" if self._tls_cfg else "", " blocking" if self._blocking else "")

    def __enter__(self) -> AsyncSocket:
        return self

    def __exit__(self, *exc: Any) -> Literal[False]:
        self.close()
        return False

    @property
    def sock(self) -> socket.socket:
        """The wrapped ``socket.socket``."""
        return self._sock

    def fileno(self) -> int:
        """The socket's descriptor (-1 once closed)."""
        return self._fd

    def setblocking(self, blocking: bool) -> None:
        """``True``: the methods become plain synchronous calls (for threads),
        honouring :meth:`settimeout`; ``False``: asynchronous (the default)."""
        if blocking and self._sched is not None and (self._rd.task or self._wr.task):
            raise RuntimeError("cannot switch to blocking mode while operations are pending")
        self._blocking = bool(blocking)
        if self._blocking:
            self._sock.settimeout(self._timeout)
        else:
            self._sock.setblocking(False)

    def settimeout(self, timeout: Timeout) -> None:
        """Timeout in seconds for each operation (None: wait forever); a read
        that times out with no data raises ``socket.timeout``."""
        FDIO.settimeout(self, timeout)
        if self._blocking:
            self._sock.settimeout(self._timeout)

    # -- 4.x's defaults for new sockets --

    @staticmethod
    def setdefaulttimeout(timeout: Timeout) -> None:
        """The timeout (seconds, or None) every AsyncSocket made afterwards
        starts with, instead of its socket's own (which follows
        ``socket.setdefaulttimeout``); None goes back to that.  Accepted
        connections take their listening socket's timeout.  (A static
        method: ``AsyncSocket.setdefaulttimeout(t)`` or on any socket.)"""
        if timeout is not None:
            if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
                raise TypeError("timeout must be a number or None, not %r" % (timeout,))
            if math.isnan(timeout) or timeout < 0:
                raise ValueError("timeout must be None or a non-negative number, not %r"
                                 % (timeout,))
            timeout = float(timeout)
        AsyncSocket._default_timeout = timeout

    @staticmethod
    def getdefaulttimeout() -> Optional[float]:
        """What :meth:`setdefaulttimeout` set (None: not set)."""
        return AsyncSocket._default_timeout

    @classmethod
    def set_ssl_version(cls, version: Union[int, ssl.TLSVersion]) -> None:
        """The TLS version(s) of the contexts made from ``certfile``/
        ``keyfile`` for AsyncSockets created afterwards without
        ``ssl_version``: ``ssl.PROTOCOL_TLS`` (the default),
        ``PROTOCOL_TLS_CLIENT``/``_SERVER`` negotiate the best version both
        sides have; ``ssl.PROTOCOL_TLSv1_2`` (``_TLSv1``, ``_TLSv1_1``) or an
        ``ssl.TLSVersion`` allows only that one.  A context given as
        ``ssl_context`` is used as it is."""
        _tls.version_range(version)
        AsyncSocket._ssl_version = version

    @classmethod
    def get_ssl_version(cls) -> Union[int, ssl.TLSVersion]:
        """What :meth:`set_ssl_version` set (default ``ssl.PROTOCOL_TLS``)."""
        return AsyncSocket._ssl_version

    @property
    def ssl_server_ctx(self) -> Optional[ssl.SSLContext]:
        """The ``ssl.SSLContext`` connections accepted on this socket
        handshake with (4.x's attribute): the one assigned, else the
        ``ssl_context``, else the one made from ``certfile`` and ``keyfile``
        (made now if need be); None for a socket without TLS (or with only
        a client's CA file).  Assign an
        ``ssl.SSLContext`` (a server-side one) to use it for the connections
        accepted from then on (on a plain socket too: they become TLS), or
        None to go back to the socket's own."""
        cfg = self._tls_cfg
        if cfg is None:
            return None
        return cfg.current_server_context()

    @ssl_server_ctx.setter
    def ssl_server_ctx(self, ctx: Optional[ssl.SSLContext]) -> None:
        if ctx is not None:
            if not isinstance(ctx, ssl.SSLContext):
                raise TypeError("ssl_server_ctx must be an ssl.SSLContext or None, not %r"
                                % (type(ctx).__name__,))
            if ctx.protocol == ssl.PROTOCOL_TLS_CLIENT:
                raise ValueError("ssl_server_ctx is a PROTOCOL_TLS_CLIENT context; accepted "
                                 "connections need a server one (ssl.PROTOCOL_TLS_SERVER)")
        cfg = self._tls_cfg
        if cfg is None:
            if ctx is not None:
                self._tls_cfg = _tls.Config.server_only(ctx)
            return
        # a copy: accepted connections share their listener's configuration
        self._tls_cfg = cfg.with_server_context(ctx)

    # -- values of completions --

    def _read_value(self, kind, buf, n, extra, closing=False, lent=False):
        if kind == _RECV:
            return _head(buf, n)
        if kind == _RECVALL:
            # the buffer itself (a bytearray made for this read), unless the
            # reactor may still hold it (withdrawn: copy out)
            if n == len(buf) and not (closing or lent):
                return buf
            if n < len(buf) and not closing:
                # short: end of stream, a timeout, or an error after the data
                # (recvall raises that one now, as recv_msg relies on)
                exc = self._loop.take_error(self._fd)
                if exc is not None:
                    raise exc
            return buf[:n]
        if kind == _ACCEPT:
            if closing:
                raise OSError(errno.EBADF, "socket closed while accepting")
            return self._new_conn(n)
        if kind == _RECVFROM:
            data = _head(buf, n)
            # closed while waiting: nothing came, so there is no sender
            return data, (None if closing else extra.address())
        raise AssertionError(kind)

    def _write_value(self, kind, n, extra, partial=False):
        if kind == _SENDALL:
            return n if partial else None
        if kind == _CONNECT:
            return None
        return n

    def _lost(self, kind, value):
        if kind == _ACCEPT:
            value[0].close()

    def _new_conn(self, fd):
        s = self._sock
        # the plain ints: socket.socket's family/type properties convert
        # them to enums first (1 µs of every accept)
        conn = socket.socket(_family_of(s), _type_of(s) | _NONBLOCK_TYPE, s.proto, fd)
        if not _NONBLOCK_TYPE:
            # make the socket object agree with its non-blocking descriptor,
            # or a direct conn.recv() could spin on some Pythons
            conn.setblocking(False)
        try:
            addr = conn.getpeername()
        except OSError:
            addr = None
        return AsyncSocket._accepted(self, conn), addr

    def _buffer(self, n):
        buf = self._rbuf
        if buf is None or len(buf) != n:
            if n < 0:
                raise ValueError("negative buffersize in recv")
            buf = self._rbuf = bytearray(n)
        return buf

    def _sockaddr(self, address):
        """Bytes of a struct sockaddr for ``address``; names are resolved
        (a blocking lookup: prefer numeric addresses in hot paths)."""
        family = self._sock.family
        if family in (socket.AF_INET, socket.AF_INET6):
            host = address[0]
            if host == "<broadcast>":
                address = ("255.255.255.255",) + tuple(address[1:])
            elif host and not _is_numeric(family, host):
                info = socket.getaddrinfo(host, address[1], family, self._sock.type)
                address = info[0][4]
        return reactor.sockaddr(family, address)

    # -- raw operations (no TLS) --

    def _raw_recv(self, n, timeout=False):
        buf = self._buffer(n)
        fd = self._fd
        return self._read(_RECV, buf, lambda loop, tok: loop.recv(fd, buf, tok), timeout=timeout)

    def _raw_sendall(self, data, timeout=False):
        fd = self._fd
        return self._write(_SENDALL, lambda loop, tok: loop.send(fd, data, tok, all=True),
                           timeout=timeout)

    # -- the API --

    def recv(self, bufsize: int, *flags: int) -> Any:
        """[y] Up to ``bufsize`` bytes; ``b''`` at end of stream."""
        if self._blocking:
            return self._sock.recv(bufsize, *flags) if not self._tls else self._tls.sync_recv(
                self._sock, bufsize)
        if flags and flags[0]:
            if self._tls_cfg is not None:
                raise ValueError("recv() flags are not allowed on a TLS socket")
            if self._ahead:
                return (self._ahead[:bufsize] if flags[0] & socket.MSG_PEEK
                        else self._take_ahead(bufsize))
            return self._flagged(READ, b"", self._sock.recv, bufsize, *flags)
        if self._tls is not None:
            return self._tls_recv(bufsize)
        if self._ahead:
            return self._take_ahead(bufsize)
        return self._recv_lazy(bufsize)

    def _flagged(self, which, closed, call, *args):
        """[y] A call with flags the reactor does not take (``MSG_PEEK``,
        ``MSG_OOB`` ...): the socket's own ``call(*args)``, inline when it
        completes at once (the socket is non-blocking: it never waits), else
        again each time the socket is ready on ``which``.  ``closed``: the
        value when the socket closes under a waiting read (a waiting write
        gets ``OSError``, as the other writes do)."""
        _current()          # in a task only, as every asynchronous call
        try:
            return call(*args)
        except (BlockingIOError, InterruptedError):
            return self._flagged_wait(which, closed, call, args)

    def _flagged_wait(self, which, closed, call, args):
        """[y] The waiting part of :meth:`_flagged`."""
        while True:
            if not (yield self._wait_ready(which)):
                return closed
            try:
                return call(*args)
            except (BlockingIOError, InterruptedError):
                pass

    def _take_ahead(self, n):
        data, self._ahead = self._ahead[:n], self._ahead[n:]
        return data

    def recvall(self, bufsize: int) -> Any:
        """[y] Exactly ``bufsize`` bytes, as a ``bytearray`` (as in 4.x);
        fewer only at end of stream or when the timeout passes after some
        data came (no data: ``socket.timeout``).  An error (a reset) is
        raised even after some data came."""
        if self._blocking or self._tls is not None:
            return self._recvall_loop(bufsize)
        if bufsize < 0:
            raise ValueError("negative buffersize in recvall")
        if self._ahead:
            _current()
            if self._rd.task is not None:
                raise self._busy("read")
            data = bytearray(self._take_ahead(bufsize))
            if len(data) == bufsize:
                return data
            return self._recvall_rest(bufsize, data)
        return self._recvall_once(bufsize)

    def _recvall_once(self, n):
        """[y] One all-or-end-of-stream read of ``n`` bytes (the reactor's
        RX_ALL recv, into a buffer of its own: the operation holds it while
        it waits).  An error that comes after some data is raised (the
        reactor returns the data and keeps the error: see _read_value)."""
        buf = bytearray(n)
        fd = self._fd
        return self._read(_RECVALL, buf, lambda loop, tok: loop.recv(fd, buf, tok, all=True))

    def _recvall_rest(self, n, first):
        first += yield self._recvall_once(n - len(first))
        return first

    def send(self, data: Any, *flags: int) -> Any:
        """[y] Send what fits now (at least one byte); returns the count."""
        if self._blocking:
            return self._sock.send(data, *flags) if not self._tls else self._tls.sync_send(
                self._sock, data)
        if flags and flags[0]:
            if self._tls_cfg is not None:
                raise ValueError("send() flags are not allowed on a TLS socket")
            return self._flagged(WRITE, None, self._sock.send, data, *flags)
        if self._tls is not None:
            return self._tls_send(data, all=False)
        fd = self._fd
        return self._write(_SEND, lambda loop, tok: loop.send(fd, data, tok))

    def sendall(self, data: Any) -> Any:
        """[y] Send everything.  On a timeout: ``socket.timeout`` if nothing
        was sent, else the number of bytes that were."""
        if self._blocking:
            if self._tls:
                return self._tls.sync_sendall(self._sock, data)
            return self._sock.sendall(data)
        if self._tls is not None:
            return self._tls_send(data, all=True)
        # the hot path of every stream server: _write's work, inlined
        side = self._wr
        sched = _sched_of_thread(_get_ident())
        task = sched._cur if sched is not None else None
        if task is None or sched is not self._sched or side.task is not None:
            sched, task = self._claim(side, "write")
        if type(data) is bytes and _BYTES_IN_PLACE:
            c = data
            n = len(data)
        else:
            c = _from_buffer(data)
            n = len(c)
        tok = next(sched._tokens)
        loop = self._loop
        r = _rx_send(loop._l, self._fd, c, n, _ALL, tok)
        if r >= 0:
            return RESUME
        if r != PENDING:
            raise reactor.error(r)
        loop._held[tok] = c
        return self._wait(sched, task, side, tok, _SENDALL, None, None, False)

    def recvfrom(self, bufsize: int, *flags: int) -> Any:
        """[y] A datagram: ``(data, address)``."""
        if self._blocking:
            return self._sock.recvfrom(bufsize, *flags)
        if flags and flags[0]:
            return self._flagged(READ, (b"", None), self._sock.recvfrom, bufsize, *flags)
        buf = self._buffer(bufsize)
        ab = self._addrbuf
        if ab is None:
            ab = self._addrbuf = reactor.AddrBuffer()
        fd = self._fd
        return self._read(_RECVFROM, buf, lambda loop, tok: loop.recvfrom(fd, buf, ab, tok), ab)

    def sendto(self, data: Any, *args: Any) -> Any:
        """[y] ``sendto(data[, flags], address)``: send a datagram."""
        if self._blocking:
            return self._sock.sendto(data, *args)
        if not args or len(args) > 2:
            raise TypeError("sendto(data[, flags], address)")
        if len(args) == 2 and args[0]:
            return self._flagged(WRITE, None, self._sock.sendto, data, *args)
        addr = self._sockaddr(args[-1])
        fd = self._fd
        return self._write(_SENDTO, lambda loop, tok: loop.sendto(fd, data, addr, tok))

    def accept(self) -> Any:
        """[y] ``(conn, address)`` with ``conn`` an AsyncSocket (TLS sockets
        handshake on the connection's first read or write, in its own task,
        so a slow client never holds up the accepting task)."""
        if self._blocking:
            conn, addr = self._sock.accept()
            a = AsyncSocket._accepted(self, conn)
            a.setblocking(True)
            return a, addr
        # the accepting loop of every server: _read's work, without its
        # submit lambda and Loop.accept
        side = self._rd
        sched, task = self._claim(side, "read")
        tok = next(sched._tokens)
        r = _rx_accept(self._loop._l, self._fd, tok)
        if r >= 0:
            return self._new_conn(r)
        if r != PENDING:
            raise reactor.error(r)
        return self._wait(sched, task, side, tok, _ACCEPT, None, None, False)

    def connect(self, address: Any) -> Any:
        """[y] Connect (and, with TLS, complete the handshake)."""
        if self._blocking:
            self._sock.connect(address)
            if self._tls_cfg is not None and self._tls_cfg.client:
                self._tls = _tls.Session(self._tls_cfg, server_side=False)
                self._tls.sync_handshake(self._sock)
            return None
        if self._tls_cfg is not None and self._tls_cfg.client:
            return self._connect_tls(address)
        addr = self._sockaddr(address)
        fd = self._fd
        return self._write(_CONNECT, lambda loop, tok: loop.connect(fd, addr, tok))

    def create_connection(self, address: Any, timeout: Timeout = None,
                          source_address: Any = None) -> Any:
        """[y] Like ``socket.create_connection`` for this socket: bind to
        ``source_address`` if given, connect to ``address`` (a name is
        resolved), with ``timeout`` for the connection; returns this socket."""
        if source_address is not None:
            self._sock.bind(source_address)
        if timeout is not None:
            self.settimeout(timeout)
        if self._blocking:
            self.connect(address)
            return self
        return self._connect_gen(address)

    def _connect_gen(self, address):
        yield self.connect(address)
        return self

    def recv_msg(self) -> Any:
        """[y] One framed message (4-byte big-endian length + payload), as a
        ``bytearray`` (as in 4.x); ``b''`` at end of stream (and for an empty
        message).  A length over ``max_msg_size`` raises ``OSError(EMSGSIZE)``
        (the stream cannot be trusted after that)."""
        if self._blocking:
            return self._sync_recv_msg()
        return self._recv_msg()

    def _recv_msg(self):
        hdr = yield self.recvall(4)
        if len(hdr) < 4:
            return b""
        n = _HDR.unpack(hdr)[0]
        if n > self._max_msg:
            raise OSError(errno.EMSGSIZE, "message of %d bytes exceeds max_msg_size %d"
                          % (n, self._max_msg))
        if n == 0:
            return b""
        data = yield self.recvall(n)
        if len(data) < n:
            return b""
        return data

    def _sync_recv_msg(self):
        hdr = self._recvall_sync(4)
        if len(hdr) < 4:
            return b""
        n = _HDR.unpack(hdr)[0]
        if n > self._max_msg:
            raise OSError(errno.EMSGSIZE, "message of %d bytes exceeds max_msg_size %d"
                          % (n, self._max_msg))
        if n == 0:
            return b""
        data = self._recvall_sync(n)
        return data if len(data) == n else b""

    def send_msg(self, data: Any) -> Any:
        """[y] Send ``data`` as one framed message."""
        n = len(data)
        if n > 0xffffffff:
            raise ValueError("message too long for a 4-byte length")
        if n <= 65536:
            return self.sendall(_HDR.pack(n) + bytes(data))
        if self._blocking:
            self.sendall(_HDR.pack(n))
            return self.sendall(data)
        return self._send_msg_big(data)

    def _send_msg_big(self, data):
        yield self.sendall(_HDR.pack(len(data)))
        yield self.sendall(data)

    # -- loops for TLS and blocking mode --

    def _recvall_loop(self, n):
        if self._blocking:
            return self._recvall_sync(n)
        return self._recvall_gen(n)

    def _recvall_gen(self, n, first=None):
        parts = [first] if first else []
        got = len(first) if first else 0
        while got < n:
            try:
                chunk = yield self.recv(n - got)
            except socket.timeout:
                if got:
                    break
                raise
            if not chunk:
                break
            parts.append(chunk)
            got += len(chunk)
        return bytearray().join(parts)

    def _recvall_sync(self, n):
        parts = []
        got = 0
        while got < n:
            try:
                chunk = self.recv(n - got)
            except socket.timeout:
                if got:
                    break
                raise
            if not chunk:
                break
            parts.append(chunk)
            got += len(chunk)
        return bytearray().join(parts)

    # -- TLS --

    def _connect_tls(self, address):
        addr = self._sockaddr(address)
        fd = self._fd
        yield self._write(_CONNECT, lambda loop, tok: loop.connect(fd, addr, tok))
        self._tls = _tls.Session(self._tls_cfg, server_side=False)
        yield self._tls.handshake(self)

    def _tls_recv(self, n):
        return self._tls.recv(self, n)

    def _tls_send(self, data, all):
        return self._tls.send(self, data, all)

    def unwrap(self) -> Any:
        """[y] End TLS (send close_notify, wait for the peer's) and return
        this socket, now plain."""
        if self._tls is None:
            raise ValueError("%r has no TLS session" % (self,))
        return self._unwrap()

    def _unwrap(self):
        yield self._tls.shutdown(self)
        # what the peer sent after its close_notify is plain data, and may
        # already be in the engine's incoming buffer
        self._ahead = self._tls.inc.read()
        self._tls = None
        self._tls_cfg = None
        return self

    # -- closing --

    def close(self) -> None:
        """Close the socket.  Tasks waiting on it wake: a reader with what it
        had (or ``b''``), a writer with ``OSError``.  A TLS session sends its
        close_notify first, without waiting for the peer's."""
        if self._fd < 0:
            return
        self._on_loop_thread(self._close)

    def _close(self):
        if self._fd < 0:
            return
        if self._tls is not None:
            self._tls.close_notify(self._sock)
        self._close_fd()
        self._sock.close()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run."""
        return self._fd < 0

    if TYPE_CHECKING:
        # What passes through to the wrapped socket (set up below the class,
        # one method per name): their types, for type checkers.
        family: socket.AddressFamily
        type: socket.SocketKind
        proto: int
        timeout: Optional[float]

        def bind(self, address: Any) -> None: ...

        def listen(self, backlog: int = ...) -> None: ...

        def connect_ex(self, address: Any) -> int: ...

        def detach(self) -> int: ...

        def dup(self) -> socket.socket: ...

        def get_inheritable(self) -> bool: ...

        def set_inheritable(self, inheritable: bool) -> None: ...

        def getblocking(self) -> bool: ...

        def getpeername(self) -> Any: ...

        def getsockname(self) -> Any: ...

        def getsockopt(self, level: int, optname: int, buflen: int = ...) -> Any: ...

        def setsockopt(self, level: int, optname: int, value: Any, optlen: int = ...) -> None: ...

        def shutdown(self, how: int) -> None: ...

        def makefile(self, mode: str = ..., buffering: Optional[int] = ..., *,
                     encoding: Optional[str] = ..., errors: Optional[str] = ...,
                     newline: Optional[str] = ...) -> Any: ...

        def recv_into(self, buffer: Any, nbytes: int = ..., flags: int = ...) -> int: ...

        def recvfrom_into(self, buffer: Any, nbytes: int = ...,
                          flags: int = ...) -> Tuple[int, Any]: ...

        def recvmsg(self, bufsize: int, ancbufsize: int = ..., flags: int = ...) -> Any: ...

        def recvmsg_into(self, buffers: Any, ancbufsize: int = ..., flags: int = ...) -> Any: ...

        def sendfile(self, file: Any, offset: int = ..., count: Optional[int] = ...) -> int: ...

        def sendmsg(self, buffers: Any, ancdata: Any = ..., flags: int = ...,
                    address: Any = ...) -> int: ...

        def sendmsg_afalg(self, msg: Any = ..., *, op: int, iv: Any = ..., assoclen: int = ...,
                          flags: int = ...) -> int: ...


def _pass_through(name: str, attr: Any) -> Any:
    """A method (or read-only property) of AsyncSocket that is ``name`` of
    the wrapped socket."""
    if callable(attr):
        def method(self, *args, **kwargs):
            return getattr(self._sock, name)(*args, **kwargs)
        method.__name__ = method.__qualname__ = name
        method.__doc__ = "``socket.socket.%s`` of the wrapped socket." % name
        # what help() and inspect.signature() show: the socket method's own
        # parameters where Python knows them (C methods' docstrings say them)
        try:
            setattr(method, "__signature__", inspect.signature(attr))
        except (TypeError, ValueError):
            first = (getattr(attr, "__doc__", None) or "").strip().split("\n")[0]
            if first.startswith(name + "("):
                method.__doc__ = "``socket.socket.%s``: %s" % (name, first)
        return method
    return property(lambda self: getattr(self._sock, name),
                    doc="``socket.socket.%s`` of the wrapped socket." % name)


# Everything public of socket.socket that AsyncSocket does not define passes
# through to the wrapped socket.  Spelled out per name rather than with
# __getattr__: a class with __getattr__ makes every attribute access on its
# instances slow (CPython cannot specialize them), and the hot path of a
# server reads a dozen attributes of the socket per message.
for _name in dir(socket.socket):
    if not _name.startswith("_") and not hasattr(AsyncSocket, _name):
        setattr(AsyncSocket, _name, _pass_through(_name, getattr(socket.socket, _name)))
del _name
