"""TLS for AsyncSocket on ``ssl.SSLObject`` and two ``ssl.MemoryBIO``\\s.

The SSL engine never touches the socket: encrypted bytes from the network
are written into the incoming BIO, and what the engine wants to send is read
from the outgoing BIO and sent with the socket's ordinary (reactor) calls.
So handshakes and records cost no blocking call, work the same on every
backend, and time out with the socket's timeout.  A handshake also has its
own deadline (``handshake_timeout``, default 30 s), so a peer that stalls
mid-handshake is dropped.

A server session handshakes lazily, on the connection's first read or write
(in the task that serves it); a client handshakes inside ``connect``.
Closing sends close_notify (best effort, never blocking).  A peer that
closes without close_notify ("ragged EOF") reads as end of stream, as
``ssl``'s ``suppress_ragged_eofs`` does by default.

Two tasks, one engine
---------------------

As on a plain socket, one task may read while another writes.  Both then
drive the one engine, and either may need the raw socket's other side (a
write can need to read during a handshake; a read can produce bytes to send,
such as a key-update reply).  Three small mutexes keep that straight:

* the *handshake* mutex: the first task to need the handshake runs it, the
  others wait for its outcome (and see its error if it failed);
* the *send* mutex: whoever holds it sends until the outgoing BIO is empty,
  so records always leave in the order the engine made them.  A reader that
  finds the mutex held leaves its bytes to the holder instead of waiting;
* the *receive* mutex: one raw read at a time feeds the incoming BIO.

The public rule stays "one pending read and one pending write per socket":
a second concurrent reader (or writer) gets ``RuntimeError``.
"""

import errno
import socket
import ssl
import time

from pycos.core.scheduler import RESUME
from pycos.core.waitqueue import WaitQueue, current_task
from pycos.io.fdio import _SCRATCH_MAX, _current, _ffi, _scratch

try:
    # PyPy's ssl module is Python over cffi bindings of OpenSSL: on PyPy
    # the outgoing BIO is read through them (Session._cipher), and the
    # plaintext through the scratch buffer (Session._plain)
    from _pypy_openssl import lib as _ossl
except ImportError:
    _ossl = None
_buffer = _ffi.buffer
_unpack = _ffi.unpack

__all__ = ["Config", "Session", "HANDSHAKE_TIMEOUT", "version_range"]

HANDSHAKE_TIMEOUT = 30.0
# raw read size: big, so a 64 KiB message is one read (the scheduler's
# scratch buffer holds it; nothing is pinned per connection)
_CHUNK = 256 * 1024
# raw read size of the timed reads (handshakes), whose buffer the socket keeps
_TIMED_CHUNK = 16 * 1024
_WRITE_CHUNK = 64 * 1024
# a direct send must not raise SIGPIPE in a program that does not ignore it
# (C programs embedding Python)
_NOSIGNAL = getattr(socket, "MSG_NOSIGNAL", 0)


# pycos 4.x's ssl_version values (ssl's PROTOCOL_* constants): the ones that
# negotiate, and the ones that pin one version (those this ssl still has)
_NEGOTIATE = {ssl.PROTOCOL_TLS, ssl.PROTOCOL_TLS_CLIENT, ssl.PROTOCOL_TLS_SERVER}
_PINNED = {getattr(ssl, "PROTOCOL_" + name): getattr(ssl.TLSVersion, name)
           for name in ("TLSv1", "TLSv1_1", "TLSv1_2") if hasattr(ssl, "PROTOCOL_" + name)}


def version_range(ssl_version):
    """``(minimum, maximum)`` TLS versions for ``ssl_version`` (None: no
    restriction, the context negotiates).  ``ssl_version``: None, one of
    ``ssl.PROTOCOL_TLS``/``_TLS_CLIENT``/``_TLS_SERVER`` (negotiate, as
    4.x's default ``PROTOCOL_TLS``), ``ssl.PROTOCOL_TLSv1``/``_TLSv1_1``/
    ``_TLSv1_2`` or an ``ssl.TLSVersion`` (that version only).  Anything
    else: TypeError/ValueError."""
    if ssl_version is None:
        return None
    if isinstance(ssl_version, ssl.TLSVersion):
        if ssl_version in (ssl.TLSVersion.MINIMUM_SUPPORTED, ssl.TLSVersion.MAXIMUM_SUPPORTED):
            return None
        return ssl_version, ssl_version
    if isinstance(ssl_version, bool) or not isinstance(ssl_version, int):
        raise TypeError("ssl_version must be an ssl.PROTOCOL_* constant or an ssl.TLSVersion, "
                        "not %r" % (ssl_version,))
    if ssl_version in _NEGOTIATE:
        return None
    pinned = _PINNED.get(ssl_version)
    if pinned is None:
        raise ValueError("ssl_version %r is not a TLS protocol this ssl module supports "
                         "(use ssl.PROTOCOL_TLS, ssl.PROTOCOL_TLSv1_2 or an ssl.TLSVersion)"
                         % (ssl_version,))
    return pinned, pinned


class Config(object):
    """What an AsyncSocket was given: files, a context, a server name, TLS
    versions.  ``client``: False for the configuration of a plain socket
    given only ``ssl_server_ctx`` (its accepted connections are TLS, its own
    connect is not)."""

    def __init__(self, certfile, keyfile, context, server_hostname, handshake_timeout,
                 ssl_version=None):
        if context is not None and not isinstance(context, ssl.SSLContext):
            raise TypeError("ssl_context must be an ssl.SSLContext")
        if handshake_timeout is None:
            handshake_timeout = float("inf")
        handshake_timeout = float(handshake_timeout)
        if handshake_timeout != handshake_timeout or handshake_timeout <= 0:
            raise ValueError("handshake_timeout must be a positive number (or None)")
        versions = version_range(ssl_version)
        if versions is not None and context is not None:
            raise ValueError("ssl_version does not apply to a given ssl_context: set its "
                             "minimum_version/maximum_version instead")
        self.certfile = certfile
        self.keyfile = keyfile
        self.context = context
        self.server_hostname = server_hostname
        self.handshake_timeout = handshake_timeout
        self.versions = versions
        self.client = True
        self.server_ctx = None          # ssl_server_ctx, when assigned
        self._server_ctx = None
        self._client_ctx = None

    @classmethod
    def server_only(cls, ctx):
        """The configuration of a plain socket given ``ssl_server_ctx``."""
        cfg = cls(None, None, None, None, HANDSHAKE_TIMEOUT)
        cfg.client = False
        cfg.server_ctx = ctx
        return cfg

    def with_server_context(self, ctx):
        """A copy with ``ssl_server_ctx`` set to ``ctx`` (None: unset, and
        None for a server-only configuration, which then has nothing)."""
        if ctx is None and not self.client:
            return None
        cfg = object.__new__(Config)
        cfg.__dict__.update(self.__dict__)
        cfg.server_ctx = ctx
        return cfg

    def current_server_context(self):
        """The server context in use (``ssl_server_ctx``), made now from
        certfile and keyfile if need be; None when there is none to make
        (a client's CA file alone is no server certificate)."""
        if self.server_ctx is not None or self.context is not None:
            return self.server_context()
        if self._server_ctx is None and self.certfile is not None and self.keyfile is not None:
            self.server_context()
        return self._server_ctx

    def _versions(self, ctx):
        if self.versions is not None:
            ctx.minimum_version, ctx.maximum_version = self.versions
        return ctx

    def server_context(self):
        if self.server_ctx is not None:
            return self.server_ctx
        if self.context is not None:
            return self.context
        if self._server_ctx is None:
            if self.certfile is None:
                raise ValueError("a TLS server needs certfile (and keyfile) or ssl_context")
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self.certfile, self.keyfile)
            self._server_ctx = self._versions(ctx)
        return self._server_ctx

    def client_context(self):
        if self.context is not None:
            return self.context
        if self._client_ctx is None:
            ctx = ssl.create_default_context(cafile=self.certfile)
            ctx.check_hostname = self.server_hostname is not None
            if self.keyfile is not None:
                ctx.load_cert_chain(self.certfile, self.keyfile)
            self._client_ctx = self._versions(ctx)
        return self._client_ctx


class _Mutex(object):
    """A task mutex that costs nothing when free: ``take()`` returns True
    when the current task got it at once; otherwise the task must yield
    ``wait(timeout)`` and owns it when that returns True (False: timed out).
    Ownership passes FIFO on :meth:`release`."""

    __slots__ = ("held", "_q")

    def __init__(self):
        self.held = False
        self._q = WaitQueue()

    def take(self):
        if self.held:
            return False
        self.held = True
        return True

    def wait(self, timeout=None):
        return self._q.park(current_task("TLS I/O"), timeout, False)

    def release(self):
        if self._q.unpark(True) is None:
            self.held = False


def _acquire(mutex, timeout):
    """[y] Own ``mutex`` (socket.timeout after ``timeout`` seconds)."""
    if mutex.take():
        return
    if not (yield mutex.wait(timeout)):
        raise socket.timeout("timed out")


class Session(object):
    """One TLS connection's engine and buffers."""

    def __init__(self, cfg, server_side):
        self.cfg = cfg
        self.inc = ssl.MemoryBIO()
        self.out = ssl.MemoryBIO()
        if server_side:
            ctx = cfg.server_context()
            self.obj = ctx.wrap_bio(self.inc, self.out, server_side=True)
        else:
            ctx = cfg.client_context()
            self.obj = ctx.wrap_bio(self.inc, self.out, server_side=False,
                                    server_hostname=cfg.server_hostname)
        self.shaken = False
        self.hs_error = None
        self._hs_mu = _Mutex()
        self._send_mu = _Mutex()
        self._recv_mu = _Mutex()
        self._reader = None         # the task in recv (one at a time)
        self._writer = None         # the task in send
        self._rest = b""            # the unsent tail of a record: goes out first

    # -- moving bytes between the BIOs and the socket --

    def _flush(self, sock, timeout=False, wait=True):
        """[y] Send what the engine has queued.  ``wait=False``: if another
        task is sending, leave the bytes to it (it sends until the BIO is
        empty) instead of waiting."""
        if not self.out.pending and not self._rest:
            return
        mu = self._send_mu
        if not mu.take():
            if not wait:
                return
            if not (yield mu.wait(sock._timeout if timeout is False else timeout)):
                raise socket.timeout("timed out")
        try:
            while self._rest or self.out.pending:
                if sock._fd < 0:
                    raise OSError(errno.EBADF, "TLS socket closed while writing")
                data = self._rest or self._cipher()
                self._rest = b""
                r = yield sock._raw_sendall(data, timeout=timeout)
                if r is not None:      # partial: the timeout passed
                    raise socket.timeout("timed out sending TLS data")
        finally:
            mu.release()

    def _fill(self, sock, timeout=False):
        """[y] One raw read into the engine; returns its size (0: end of
        stream, which is also what a closed socket reads as)."""
        mu = self._recv_mu
        if not mu.take():
            ok = yield mu.wait(sock._timeout if timeout is False else timeout)
            if not ok:
                raise socket.timeout("timed out")
            # the task before us may have fed what we need: let the caller retry
            mu.release()
            return -1
        try:
            if sock._fd < 0:
                return self._fed(0)
            if timeout is False:        # the socket's own timeout: the lazy recv
                return self._fed((yield sock._recv_lazy(_CHUNK, self.inc)))
            return self._feed((yield sock._raw_recv(_TIMED_CHUNK, timeout=timeout)))
        finally:
            mu.release()

    def _feed(self, data):
        """Raw bytes (``b''``: end of stream) into the engine; their count."""
        if data:
            self.inc.write(data)
        return self._fed(len(data))

    def _fed(self, got):
        """``got`` raw bytes went into the engine (0: the end of the stream)."""
        if not got:
            self.inc.write_eof()
        return got

    # -- handshake --

    def handshake(self, sock):
        """[y] Complete the handshake (once; concurrent callers wait for the
        first one and share its outcome)."""
        if self.shaken:
            return
        if self.hs_error is not None:
            raise self.hs_error
        deadline = time.monotonic() + self.cfg.handshake_timeout
        mu = self._hs_mu
        if not mu.take():
            left = deadline - time.monotonic()
            if not (yield mu.wait(None if left == float("inf") else max(0.0, left))):
                raise socket.timeout("TLS handshake timed out")
        try:
            if self.shaken:
                return
            if self.hs_error is not None:
                raise self.hs_error
            try:
                yield self._handshake(sock, deadline)
            except Exception as exc:
                self.hs_error = exc
                raise
        finally:
            mu.release()

    def _handshake(self, sock, deadline):
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("TLS handshake timed out")
            if sock._timeout is not None:
                left = min(left, sock._timeout)
            if left == float("inf"):
                left = None
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                yield self._flush(sock, left)
                left = deadline - time.monotonic()
                if sock._timeout is not None:
                    left = min(left, sock._timeout)
                n = yield self._fill(sock, None if left == float("inf") else max(0.0, left))
                if not n:
                    raise ssl.SSLEOFError(8, "peer closed the connection during the TLS handshake")
        yield self._flush(sock)
        self.shaken = True

    # -- data --

    def _enter(self, who, what):
        task = current_task("TLS I/O")
        cur = getattr(self, who)
        if cur is not None and cur is not task:
            raise RuntimeError("another task's %s is pending on this TLS socket "
                               "(one read and one write at a time)" % what)
        setattr(self, who, task)

    def _read(self, n):
        """Up to ``n`` bytes of plaintext from the engine: one record, and
        the next ones while whole records may be waiting in the incoming BIO
        (one record holds at most 16 KiB: a big recv gets all of them at
        once).  Raises like ``SSLObject.read`` when there is nothing."""
        if _ossl is not None and 0 < n <= _SCRATCH_MAX:
            return self._plain(n)
        data = self.obj.read(n)
        got = len(data)
        if got >= n or not self.inc.pending:
            return data
        parts = [data]
        while got < n and self.inc.pending:
            try:
                more = self.obj.read(n - got)
            except ssl.SSLError:    # no whole record yet, or the end: next call
                break
            parts.append(more)
            got += len(more)
        return b"".join(parts)

    def _plain(self, n):
        """:meth:`_read` on PyPy: the records are decrypted into the
        scheduler's scratch buffer and copied out once.  There
        ``SSLObject.read(n)`` mallocs ``n`` bytes and copies each record
        out of them, then the records are joined: 15 % more CPU per 64 KiB
        message.  (On CPython, where ``read(n)`` decrypts into the bytes
        object it returns, this way costs 4 % more per 100-byte message.)"""
        buf = _scratch(_current()[0], n)
        read = self.obj.read
        got = read(n, _buffer(buf, n))
        while got < n and self.inc.pending:
            try:
                more = read(n - got, _buffer(buf + got, n - got))
            except ssl.SSLError:    # no whole record yet, or the end: next call
                break
            if not more:
                break
            got += more
        return _unpack(buf, got)

    def _cipher(self):
        """The bytes the engine has queued for the peer (the outgoing BIO,
        emptied).  On PyPy they are read through the scheduler's scratch
        buffer: PyPy's ``MemoryBIO.read`` takes a zero-filled buffer from
        ``ffi.new`` on every call, and PyPy counts each one as memory
        pressure; at 64 KiB a message its major collections ran about
        twice as often (and the server used 20 % more CPU)."""
        if _ossl is None:
            return self.out.read()
        buf = _scratch(_current()[0], _CHUNK)
        n = _ossl.BIO_read(self.out.bio, buf, _CHUNK)     # type: ignore[attr-defined]  # (PyPy's)
        data = _unpack(buf, n) if n > 0 else b""
        if self.out.pending:        # more than _CHUNK queued: rare
            data += self.out.read()
        return data

    def recv(self, sock, n):
        """[y] Up to ``n`` bytes of plaintext; ``b''`` at end of stream.
        Plaintext the engine already has is returned inline."""
        if self.shaken and self._reader is None and not self._rest and not self.out.pending:
            _current()
            if not self._may_read():
                return self._recv_wait(sock, n)
            try:
                return self._read(n)
            except ssl.SSLWantReadError:
                return self._recv_wait(sock, n)
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""
        return self._recv_wait(sock, n)

    def _may_read(self):
        """False when a read of the engine would certainly want more raw
        bytes: no plaintext is buffered, no raw bytes wait in the incoming
        BIO and it has not ended.  The engine reads one record at a time
        from the BIO (``ssl`` never turns on OpenSSL's read-ahead), so it
        cannot hold a whole undecrypted record of its own.  Saves the
        SSLWantReadError of every recv that must wait (its making is the
        costliest part of an empty read, on PyPy especially)."""
        return self.inc.pending or self.obj.pending() or self.inc.eof

    def _recv_wait(self, sock, n):
        """[y] recv that may have to handshake, flush or read the socket."""
        self._enter("_reader", "read")
        try:
            if not self.shaken:
                yield self.handshake(sock)
            while True:
                if self._may_read():
                    try:
                        return self._read(n)
                    except ssl.SSLWantReadError:
                        pass
                    except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                        return b""
                if sock._fd < 0:
                    return b""
                if self._rest or self.out.pending:
                    yield self._flush(sock, wait=False)     # e.g. a key update reply
                mu = self._recv_mu
                if mu.take():           # the usual case, without _fill's frame
                    try:
                        got = yield sock._recv_lazy(_CHUNK, self.inc)
                    finally:
                        mu.release()
                    got = self._fed(got)
                else:
                    got = yield self._fill(sock)
                if not got and not self.obj.pending():
                    try:
                        return self.obj.read(n)
                    except (ssl.SSLZeroReturnError, ssl.SSLEOFError, ssl.SSLWantReadError):
                        return b""
        finally:
            self._reader = None

    def send(self, sock, data, all):
        """[y] Encrypt and send ``data`` (all of it, or one chunk when
        ``all`` is false: returns the count then).  A record that fits in
        the socket buffer goes out inline, with no task switch."""
        if (self.shaken and self._writer is None and not self._send_mu.held and not self._rest
                and not self.out.pending and type(data) is bytes
                and 0 < len(data) <= _WRITE_CHUNK):
            _current()
            if sock._fd < 0:
                raise OSError(errno.EBADF, "TLS socket closed while writing")
            try:
                n = self.obj.write(data)
            except ssl.SSLWantReadError:
                return self._send_wait(sock, data, all)
            rec = self._cipher()
            try:
                k = sock._sock.send(rec, _NOSIGNAL)
            except (BlockingIOError, InterruptedError):
                k = 0
            if k < len(rec):
                # the tail goes out before anything else (see _flush)
                self._rest = rec[k:]
                return self._send_rest(sock, n, all)
            return RESUME if all else n
        return self._send_wait(sock, data, all)

    def _send_rest(self, sock, n, all):
        """[y] The end of :meth:`send` when the socket took only part of
        the record."""
        self._enter("_writer", "write")
        try:
            yield self._flush(sock)
            return None if all else n
        finally:
            self._writer = None

    def _send_wait(self, sock, data, all):
        """[y] send that may have to handshake, or wait for the socket."""
        self._enter("_writer", "write")
        try:
            if not self.shaken:
                yield self.handshake(sock)
            view = memoryview(data)
            total = len(view)
            sent = 0
            while sent < total:
                if sock._fd < 0:
                    raise OSError(errno.EBADF, "TLS socket closed while writing")
                chunk = view[sent:sent + _WRITE_CHUNK]
                try:
                    n = self.obj.write(chunk)
                except ssl.SSLWantReadError:
                    yield self._flush(sock)
                    if not (yield self._fill(sock)):
                        raise OSError(errno.EPIPE, "TLS peer closed the connection")
                    continue
                sent += n
                yield self._flush(sock)
                if not all:
                    break
            return None if all else sent
        finally:
            self._writer = None

    # -- ending --

    def close_notify(self, plain_sock):
        """Queue close_notify and send it if the socket takes it now."""
        if self._send_mu.held or self._rest:
            return              # a record is half sent: an alert now would corrupt the stream
        try:
            self.obj.unwrap()
        except (ssl.SSLError, ValueError, OSError):
            pass
        data = self.out.read()
        if data:
            try:
                plain_sock.send(data)
            except OSError:
                pass

    def shutdown(self, sock):
        """[y] Send close_notify and wait for the peer's."""
        while True:
            try:
                self.obj.unwrap()
                break
            except ssl.SSLWantReadError:
                yield self._flush(sock)
                n = yield self._fill(sock)
                if not n:
                    break
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                break
        yield self._flush(sock)

    # -- blocking mode --

    def sync_handshake(self, s):
        deadline = time.monotonic() + self.cfg.handshake_timeout
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._sync_flush(s)
                if time.monotonic() > deadline:
                    raise socket.timeout("TLS handshake timed out")
                if not self._sync_fill(s):
                    raise ssl.SSLEOFError(8, "peer closed the connection during the TLS handshake")
        self._sync_flush(s)
        self.shaken = True

    def _sync_flush(self, s):
        data = self.out.read()
        if data:
            s.sendall(data)

    def _sync_fill(self, s):
        data = s.recv(_CHUNK)
        if data:
            self.inc.write(data)
        else:
            self.inc.write_eof()
        return len(data)

    def sync_recv(self, s, n):
        if not self.shaken:
            self.sync_handshake(s)
        while True:
            try:
                return self.obj.read(n)
            except ssl.SSLWantReadError:
                self._sync_flush(s)
                if not self._sync_fill(s):
                    return b""
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""

    def sync_sendall(self, s, data):
        if not self.shaken:
            self.sync_handshake(s)
        view = memoryview(data)
        sent = 0
        while sent < len(view):
            sent += self.obj.write(view[sent:sent + _WRITE_CHUNK])
            self._sync_flush(s)

    def sync_send(self, s, data):
        self.sync_sendall(s, data)
        return len(data)
