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
"""

import socket
import ssl
import time

__all__ = ["Config", "Session", "HANDSHAKE_TIMEOUT"]

HANDSHAKE_TIMEOUT = 30.0
_CHUNK = 65536


class Config(object):
    """What an AsyncSocket was given: files, a context, a server name."""

    def __init__(self, certfile, keyfile, context, server_hostname, handshake_timeout):
        if context is not None and not isinstance(context, ssl.SSLContext):
            raise TypeError("ssl_context must be an ssl.SSLContext")
        self.certfile = certfile
        self.keyfile = keyfile
        self.context = context
        self.server_hostname = server_hostname
        self.handshake_timeout = handshake_timeout
        self._server_ctx = None
        self._client_ctx = None

    def server_context(self):
        if self.context is not None:
            return self.context
        if self._server_ctx is None:
            if self.certfile is None:
                raise ValueError("a TLS server needs certfile (and keyfile) or ssl_context")
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self.certfile, self.keyfile)
            self._server_ctx = ctx
        return self._server_ctx

    def client_context(self):
        if self.context is not None:
            return self.context
        if self._client_ctx is None:
            ctx = ssl.create_default_context(cafile=self.certfile)
            ctx.check_hostname = self.server_hostname is not None
            if self.keyfile is not None:
                ctx.load_cert_chain(self.certfile, self.keyfile)
            self._client_ctx = ctx
        return self._client_ctx


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

    # -- moving bytes between the BIOs and the socket --

    def _flush(self, sock, timeout=False):
        data = self.out.read()
        if data:
            r = yield sock._raw_sendall(data, timeout=timeout)
            if r is not None:      # partial: the timeout passed
                raise socket.timeout("timed out sending TLS data")

    def _fill(self, sock, timeout=False):
        data = yield sock._raw_recv(_CHUNK, timeout=timeout)
        if data:
            self.inc.write(data)
        else:
            self.inc.write_eof()
        return len(data)

    # -- handshake --

    def handshake(self, sock):
        deadline = time.monotonic() + self.cfg.handshake_timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("TLS handshake timed out")
            if sock._timeout is not None:
                left = min(left, sock._timeout)
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                yield self._flush(sock, left)
                n = yield self._fill(sock, max(0.0, deadline - time.monotonic()))
                if not n:
                    raise ssl.SSLEOFError(8, "peer closed the connection during the TLS handshake")
        yield self._flush(sock)
        self.shaken = True

    # -- data --

    def recv(self, sock, n):
        if not self.shaken:
            yield self.handshake(sock)
        while True:
            try:
                return self.obj.read(n)
            except ssl.SSLWantReadError:
                pass
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""
            yield self._flush(sock)     # e.g. a key update reply
            got = yield self._fill(sock)
            if not got and not self.obj.pending():
                try:
                    return self.obj.read(n)
                except (ssl.SSLZeroReturnError, ssl.SSLEOFError, ssl.SSLWantReadError):
                    return b""

    def send(self, sock, data, all):
        if not self.shaken:
            yield self.handshake(sock)
        view = memoryview(data)
        total = len(view)
        sent = 0
        while sent < total:
            chunk = view[sent:sent + 16 * 1024 * 4]
            try:
                n = self.obj.write(chunk)
            except ssl.SSLWantReadError:
                yield self._flush(sock)
                yield self._fill(sock)
                continue
            sent += n
            yield self._flush(sock)
            if not all:
                break
        return None if all else sent

    # -- ending --

    def close_notify(self, plain_sock):
        """Queue close_notify and send it if the socket takes it now."""
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
            sent += self.obj.write(view[sent:sent + 65536])
            self._sync_flush(s)

    def sync_send(self, s, data):
        self.sync_sendall(s, data)
        return len(data)
