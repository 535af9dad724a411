"""pycos.httpd: watch and steer a dispycos client from a browser.

    import pycos.httpd
    http_server = pycos.httpd.HTTPServer(client)    # before client.schedule()
    ...
    http_server.shutdown()

The server shows the client's nodes, servers, jobs and failures, live, with
charts; it takes actions (suspend/resume nodes and servers, close or
restart servers, terminate jobs) from whoever holds its token; and it gives
the same data as JSON (``/api/...``) and Prometheus metrics
(``/metrics``).  See docs/httpd.md.

The parts live in :mod:`pycos.web`: the HTTP server made of tasks
(:mod:`pycos.web.http`, parsing with ``h11`` -- ``pip install
'pycos[web]'``), the cluster model fed by the status stream
(:mod:`pycos.web.model`), the routes and access rules
(:mod:`pycos.web.app`) and the metrics (:mod:`pycos.web.metrics`); the
pages are in ``pycos/web/static``.
"""

import numbers
import os
import secrets
import socket
import sys
import time

try:
    import h11  # noqa: F401  (pycos.web.http parses HTTP with it)
except ImportError:                                      # pragma: no cover
    raise ImportError("pycos.httpd needs the h11 package: pip install 'pycos[web]'") from None

import pycos.netpycos as netpycos
from pycos.core.log import logger
from pycos.core.task import Task
from pycos.io.socket import AsyncSocket
from pycos.web.app import STATIC, App, is_loopback
from pycos.web.http import Server
from pycos.web.model import Cluster

__all__ = ["HTTPServer"]

_STOP = object()
#: shutdown(wait=True): how long the pages' streams may take to write their
#: last update
CLOSE_WAIT = 2.0


class HTTPServer(object):
    """A web UI for ``client`` (a dispycos Client), listening on ``host``
    (loopback unless given; ``''`` is every interface) and ``port`` (0:
    any free one, see :attr:`port`).  ``poll_sec``: how often (seconds, at
    least 1) a page polls when its live stream is down.  ``DocumentRoot``:
    a directory of pages to serve instead of the built-in ones.
    ``certfile``/``keyfile``: serve HTTPS.  ``show_task_args``: False keeps
    the jobs' arguments out of the pages and the API.  ``token``: the
    access token (default: a fresh random one).  ``allowed_hosts``: host
    names besides localhost, IP literals and this machine's name that
    requests may be addressed to (a reverse proxy's name).

    Create it before ``client.schedule()``: it puts itself in front of
    ``client.status_task`` (which still gets every message)."""

    def __init__(self, client, host="127.0.0.1", port=8181, poll_sec=10, DocumentRoot=None,
                 keyfile=None, certfile=None, show_task_args=True, token=None,
                 allowed_hosts=()):
        if not hasattr(client, "status_task") or not hasattr(client, "suspend_node"):
            raise TypeError("HTTPServer needs a dispycos Client, not %r" % (client,))
        if host is None:
            host = "127.0.0.1"
        if not isinstance(host, str):
            raise TypeError("host must be a str, not %r" % (host,))
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
            raise ValueError("port must be an int in [0, 65535], not %r" % (port,))
        if not isinstance(poll_sec, numbers.Real) or isinstance(poll_sec, bool):
            raise TypeError("poll_sec must be a number of seconds, not %r" % (poll_sec,))
        if poll_sec < 1:
            logger.warning("httpd: poll_sec %s is below 1; using 1", poll_sec)
            poll_sec = 1
        if DocumentRoot is not None and not os.path.isdir(DocumentRoot):
            raise ValueError("DocumentRoot %r is not a directory" % (DocumentRoot,))
        if keyfile is not None and certfile is None:
            raise ValueError("keyfile given without certfile")
        if token is None:
            token = secrets.token_urlsafe(24)
        elif not isinstance(token, str) or len(token) < 16 or not token.isprintable():
            raise ValueError("token must be a printable str of at least 16 characters")
        if isinstance(allowed_hosts, str) or not all(isinstance(h, str) for h in allowed_hosts):
            raise TypeError("allowed_hosts must be a list of host names")

        self.client = client
        self._sched = netpycos.Pycos.instance()
        self._tls = certfile is not None
        sock = _listen(host, port)
        try:
            listener = AsyncSocket(sock, certfile=certfile, keyfile=keyfile)
        except Exception:
            sock.close()
            raise
        self.host, self.port = sock.getsockname()[:2]
        open_reads = is_loopback(host)
        self.cluster = Cluster(getattr(self._sched, "name", None), self._sched.location,
                               self._locate, bool(show_task_args))
        self._app = App(self.cluster, client, token, open_reads, DocumentRoot or STATIC,
                        int(poll_sec), self.port, allowed_hosts, self._tls)
        self.cluster.changed = self._app.changed
        self._poll_sec = int(poll_sec)
        self._closed = False
        self._prev_status = client.status_task
        self.status_task = Task(self._status_proc)
        client.status_task = self.status_task
        self._server = Server(listener, self._app, self._tls)
        shown = host if host not in ("", "0.0.0.0", "::") else socket.gethostname()
        if ":" in shown:
            shown = "[%s]" % shown
        #: the address to open, with the token
        self.url = "%s://%s:%d/?token=%s" % ("https" if self._tls else "http", shown,
                                             self.port, token)
        logger.info("httpd: serving the dispycos client at %s", self.url)
        # one write: print's text and its newline are two, and a log line
        # from another thread could come between them (seen in CI)
        sys.stdout.write("pycos.httpd: open %s\n" % (self.url,))
        sys.stdout.flush()
        if not open_reads:
            logger.info("httpd: listening beyond loopback (%s): every request needs the token",
                        host or "every interface")

    # ---- the status stream ----------------------------------------------------------------

    def _status_proc(self, task=None):
        task.set_daemon()
        while True:
            msg = yield task.receive()
            if msg is _STOP:
                return
            self.cluster.update(msg)
            prev = self._prev_status
            if prev is not None:
                prev.send(msg)

    def _locate(self, kind, what):
        """The Location of the node an event is about, from the client's
        in-process scheduler (None with a shared one)."""
        s = getattr(self.client, "_scheduler", None)
        servers = getattr(s, "servers", None)
        if servers is None:
            return None
        if kind == "server":
            server = servers.get(what)
            return server.node.task.location if server is not None else None
        for loc, node in list(s.nodes.items()):
            if node.info is what or node.info == what:
                return loc
        return None

    # ---- closing ------------------------------------------------------------------------

    def shutdown(self, wait=True):
        """Stop the server.  ``wait``: the pages get their last update
        first.  Outside the client's scheduler this returns once the server
        is closed; in a task it returns at once and the server closes next
        (``yield http_server.shutdown().finish()`` waits for it).  Returns
        the closing task."""
        closer = Task(self._close, wait)
        sched = self._sched
        if not (sched._on_loop() and sched._cur is not None):
            closer.value()
        return closer

    def _close(self, wait, task=None):
        if self._closed:
            return
        self._closed = True
        if self.client.status_task is self.status_task:
            self.client.status_task = self._prev_status
        self.status_task.send(_STOP)
        app = self._app
        if wait and app.streams:
            # each stream writes its last update and ends (a stuck one is
            # cut when the server closes)
            streams = list(app.streams)
            app.close_streams()
            by = time.monotonic() + CLOSE_WAIT
            for t in streams:
                yield t.finish(timeout=max(0.0, by - time.monotonic()))
        ending = self._server.close() + [self.status_task]
        for t in ending:
            yield t.finish(timeout=CLOSE_WAIT)
        logger.info("httpd: closed %s", self.url.partition("?")[0])


def _listen(host, port):
    """A listening TCP socket on ``host`` ('' : every interface)."""
    infos = socket.getaddrinfo(host or None, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0,
                               socket.AI_PASSIVE)
    # the wildcard: IPv4's, which every client reaches; else the first answer
    infos.sort(key=lambda i: i[0] != socket.AF_INET)
    family, kind, proto, _, addr = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock

