"""A small HTTP/1.1 server made of pycos tasks, for the web UI.

One task accepts connections on an :class:`~pycos.io.socket.AsyncSocket`
(plain or TLS); each connection is a task of its own that reads requests,
calls the application and writes its responses, keeping the connection
alive between requests.  HTTP itself is parsed and framed by ``h11`` (a
sans-I/O library: it never touches a socket, so it fits our reactor), never
by hand here.

What a connection may cost is bounded, so a hostile or broken client gets
an error or a closed connection and never disturbs anything else:

* the request line and headers: at most ``MAX_HEAD`` bytes, all within
  ``HEAD_TIMEOUT`` seconds of the first byte (slow-header attacks);
* a body: at most ``MAX_BODY`` bytes (413 beyond, before reading it), each
  read within ``IO_TIMEOUT``;
* an idle kept-alive connection: closed after ``IDLE_TIMEOUT``;
* at most ``MAX_CONNECTIONS`` at once (further ones are closed at once).

The application is a generator function ``app(request, task=None)`` that
returns a :class:`Response` (or a :class:`Stream`, whose body it writes
piece by piece -- server-sent events).  An exception in it is logged and
answered with 500; the connection goes on.
"""

import socket
import time
import urllib.parse

import h11

from pycos.core.log import logger
from pycos.core.task import Task

__all__ = ["Request", "Response", "Stream", "Server", "MAX_HEAD", "MAX_BODY"]

MAX_HEAD = 16 * 1024
MAX_BODY = 64 * 1024
HEAD_TIMEOUT = 10.0
IO_TIMEOUT = 30.0
IDLE_TIMEOUT = 60.0
MAX_CONNECTIONS = 128

_REASONS = {200: b"OK", 204: b"No Content", 303: b"See Other", 304: b"Not Modified",
            400: b"Bad Request", 401: b"Unauthorized", 403: b"Forbidden", 404: b"Not Found",
            405: b"Method Not Allowed", 408: b"Request Timeout", 409: b"Conflict",
            413: b"Content Too Large", 414: b"URI Too Long",
            415: b"Unsupported Media Type", 431: b"Request Header Fields Too Large",
            500: b"Internal Server Error", 503: b"Service Unavailable"}


class Request(object):
    """One request: ``method`` ('GET' ...), ``target`` (as sent), ``path``
    (percent-decoded once; None when it does not decode to text),
    ``query`` (name -> first value), ``headers`` (lower-case name -> value;
    a repeated header's values joined with ', '), ``body`` (bytes), ``peer``
    (the client's address) and ``tls``."""

    __slots__ = ("method", "target", "path", "raw_path", "query", "headers", "body", "peer",
                 "tls")

    def __init__(self, method, target, headers, body=b"", peer=None, tls=False):
        self.method = method
        self.target = target
        raw_path, _, query = target.partition("?")
        self.raw_path = raw_path
        try:
            self.path = urllib.parse.unquote(raw_path, errors="strict")
        except UnicodeDecodeError:
            self.path = None
        self.query = {}
        for name, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
            self.query.setdefault(name, value)
        self.headers = headers
        self.body = body
        self.peer = peer
        self.tls = tls


class Response(object):
    """A whole response: ``status``, ``headers`` (a list of (name, value)
    str pairs) and ``body`` (bytes)."""

    __slots__ = ("status", "headers", "body")

    def __init__(self, status, body=b"", content_type=None, headers=()):
        self.status = status
        self.body = body
        self.headers = list(headers)
        if content_type is not None:
            self.headers.append(("Content-Type", content_type))


class Stream(object):
    """A response whose body is written as it comes: ``run(write,
    task=None)`` is a generator function run in the connection's task;
    ``yield write(data)`` sends ``data`` (bytes) at once and raises
    OSError once the client is gone.  The connection closes when ``run``
    returns."""

    __slots__ = ("status", "headers", "run")

    def __init__(self, run, content_type, status=200, headers=()):
        self.status = status
        self.run = run
        self.headers = list(headers) + [("Content-Type", content_type)]


class _Refused(Exception):
    """A request refused before the application saw it: (status, why)."""


class Server(object):
    """Serve ``app`` on ``listener`` (a listening AsyncSocket) until
    :meth:`close`.  ``tls``: whether the listener does TLS (for
    :attr:`Request.tls`)."""

    def __init__(self, listener, app, tls=False):
        self.listener = listener
        self.app = app
        self.tls = tls
        self.conns = {}                      # connection task -> AsyncSocket
        self.closed = False
        self.task = Task(self._accept)

    def close(self):
        """Stop accepting and close every connection (in the scheduler's
        thread).  Returns the tasks that end now, for the caller to wait
        for if it likes."""
        if self.closed:
            return []
        self.closed = True
        tasks = [self.task] + list(self.conns)
        for t, sock in list(self.conns.items()):
            sock.close()
            t.terminate()
        self.conns.clear()
        self.listener.close()
        self.task.terminate()
        return tasks

    # ---- accepting --------------------------------------------------------------

    def _accept(self, task=None):
        task.set_daemon()
        while not self.closed:
            try:
                sock, addr = yield self.listener.accept()
            except OSError as exc:
                if self.closed:
                    return
                # out of descriptors or a connection reset before accept():
                # pause a little, then go on
                logger.warning("httpd: accept failed: %s", exc)
                yield task.sleep(0.1)
                continue
            if len(self.conns) >= MAX_CONNECTIONS:
                sock.close()
                continue
            t = Task(self._serve, sock, addr)
            self.conns[t] = sock

    # ---- one connection ------------------------------------------------------------

    def _serve(self, sock, addr, task=None):
        task.set_daemon()
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        try:
            while not self.closed:
                try:
                    req = yield from self._read_request(conn, sock, addr)
                except _Refused as refused:
                    status, why = refused.args
                    if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                        yield from self._send(conn, sock, _error(status, why, close=True))
                    return
                if req is None:
                    return
                try:
                    resp = yield from self.app(req, task=task)
                except Exception:
                    logger.exception("httpd: %s %s failed", req.method, req.target)
                    resp = _error(500, "internal error")
                if isinstance(resp, Stream) and req.method == "HEAD":
                    resp = Response(resp.status, headers=resp.headers)
                if isinstance(resp, Stream):
                    yield from self._stream(conn, sock, resp, task)
                    return
                yield from self._send(conn, sock, resp, head=req.method == "HEAD")
                if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                    return
                conn.start_next_cycle()
        except (OSError, h11.LocalProtocolError) as exc:
            logger.debug("httpd: connection from %s: %s", addr, exc)
        finally:
            self.conns.pop(task, None)
            sock.close()

    def _read_request(self, conn, sock, addr):
        """[y] The next request on ``conn`` (None once the client closed
        the connection between requests); _Refused for a bad one."""
        head_by = None
        headers = None
        body = []
        size = 0
        req = None
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                raise _Refused(exc.error_status_hint, str(exc))
            if event is h11.NEED_DATA:
                if req is None:
                    # the head: IDLE_TIMEOUT for its first byte, then
                    # HEAD_TIMEOUT for all of it
                    if head_by is None and conn.trailing_data[0]:
                        head_by = time.monotonic() + HEAD_TIMEOUT
                    wait = (IDLE_TIMEOUT if head_by is None
                            else max(0.0, head_by - time.monotonic()))
                else:
                    wait = IO_TIMEOUT
                sock.settimeout(wait)
                try:
                    data = yield sock.recv(65536)
                except socket.timeout:
                    if req is None and head_by is None:
                        return None                  # an idle connection: close it quietly
                    raise _Refused(408, "request too slow")
                if data and head_by is None and req is None:
                    head_by = time.monotonic() + HEAD_TIMEOUT
                conn.receive_data(data)
                continue
            if isinstance(event, h11.Request):
                # a head that came whole in one read is not bounded by h11
                if len(event.target) + sum(len(n) + len(v) + 4 for n, v in event.headers) \
                        > MAX_HEAD:
                    raise _Refused(431, "request head over %d bytes" % MAX_HEAD)
                headers = {}
                for name, value in event.headers:
                    name = name.decode("ascii").lower()
                    value = value.decode("latin-1")
                    headers[name] = headers[name] + ", " + value if name in headers else value
                length = headers.get("content-length")
                if length is not None and length.isdigit() and int(length) > MAX_BODY:
                    raise _Refused(413, "request body over %d bytes" % MAX_BODY)
                try:
                    target = event.target.decode("ascii")
                except UnicodeDecodeError:
                    raise _Refused(400, "request target is not ASCII")
                req = Request(event.method.decode("ascii"), target, headers, peer=addr,
                              tls=self.tls)
            elif isinstance(event, h11.Data):
                size += len(event.data)
                if size > MAX_BODY:
                    raise _Refused(413, "request body over %d bytes" % MAX_BODY)
                body.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                req.body = b"".join(body)
                return req
            elif isinstance(event, h11.ConnectionClosed):
                if req is not None:
                    raise _Refused(400, "connection closed in a request")
                return None
            else:
                raise _Refused(400, "unexpected %s" % type(event).__name__)

    def _send(self, conn, sock, resp, head=False):
        """[y] Write ``resp`` whole (``head``: all but the body, which a
        HEAD request's answer describes without carrying)."""
        headers = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in resp.headers]
        headers.append((b"Content-Length", str(len(resp.body)).encode()))
        out = conn.send(h11.Response(status_code=resp.status, headers=headers,
                                     reason=_REASONS.get(resp.status, b"")))
        if resp.body and not head:
            out += conn.send(h11.Data(data=resp.body))
        out += conn.send(h11.EndOfMessage())
        sock.settimeout(IO_TIMEOUT)
        yield sock.sendall(out)

    def _stream(self, conn, sock, resp, task):
        """[y] Write the head of ``resp`` (a Stream), run its body writer,
        then end the response (the connection closes after it)."""
        headers = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in resp.headers]
        headers.append((b"Connection", b"close"))
        sock.settimeout(IO_TIMEOUT)
        yield sock.sendall(conn.send(h11.Response(status_code=resp.status, headers=headers,
                                                  reason=_REASONS.get(resp.status, b""))))

        def write(data):
            if self.closed:
                raise OSError("server closed")
            return sock.sendall(conn.send(h11.Data(data=data)))
        yield from resp.run(write, task=task)
        yield sock.sendall(conn.send(h11.EndOfMessage()))


def _error(status, why, close=False):
    """A small plain-text error response."""
    headers = [("Connection", "close")] if close else []
    return Response(status, (why + "\n").encode("utf-8"), "text/plain; charset=utf-8", headers)
