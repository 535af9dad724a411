"""The web UI's application: who may do what, and the routes.

:class:`App` is the ``app`` of :class:`pycos.web.http.Server`: it checks
every request (``Host``, token, origin) before anything else, then serves
the pages (files under the document root, never outside it), the JSON
documents of :class:`pycos.web.model.Cluster`, the live event stream, the
metrics, and the control actions, which call the dispycos ``Client``.  The
rules are those of docs/httpd.md ("Access"):

* the ``Host`` header names this server (localhost, an IP literal, this
  machine's name or an allowed host) or the request gets 403 -- no DNS
  rebinding;
* reads are open on loopback and need the token beyond it; actions always
  need it, in a header (never the cookie alone), are POSTs, and come from
  the server's own origin when a browser says where they come from;
* a GET never changes anything.
"""

import hmac
import html
import ipaddress
import json
import mimetypes
import os
import socket

from pycos.core.log import logger
from pycos.web import metrics
from pycos.web.http import Response, Stream

__all__ = ["App", "STATIC"]

#: the built-in pages
STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")

#: the pages may load only what this server serves, and nothing may frame them
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
_COMMON = [("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer"),
           ("X-Frame-Options", "DENY")]
_JSON = "application/json; charset=utf-8"

#: live stream: at most this many updates a second, a keep-alive comment
#: this often, and at most this many streams at once
EVENTS_PER_SEC = 4
KEEPALIVE = 15.0
MAX_STREAMS = 32

_NODE_ACTIONS = {"suspend": "suspend_node", "resume": "resume_node"}
_SERVER_ACTIONS = {"suspend": "suspend_server", "resume": "resume_server",
                   "close": "close_server", "restart": "restart_server"}
_MAX_TERMINATE = 1000


def is_loopback(host):
    """Whether listening on ``host`` (an address or name) keeps to this
    machine."""
    if host in ("", None):
        return False
    try:
        infos = socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0].split("%")[0]).is_loopback
                               for i in infos)


class App(object):
    """The routes and rules (see the module docstring).  ``cluster``: the
    Cluster; ``client``: the dispycos Client the actions go to; ``token``:
    the access token; ``open_reads``: whether reads need no token (loopback);
    ``doc_root``: the directory of the pages."""

    def __init__(self, cluster, client, token, open_reads, doc_root, poll_sec, port,
                 allowed_hosts=(), tls=False):
        self.cluster = cluster
        self.client = client
        self.token = token.encode("utf-8")
        self.open_reads = open_reads
        self.doc_root = os.path.realpath(doc_root)
        self.poll_sec = poll_sec
        self.tls = tls
        self.cookie = "pycos_token_%d" % (port,)
        names = {"localhost", "localhost.", socket.gethostname().lower(),
                 socket.getfqdn().lower()}
        self.hosts = names | {h.lower() for h in allowed_hosts}
        self.streams = set()             # tasks of the live streams
        self.pending = False             # an update is due to the streams

    # ---- the live streams ------------------------------------------------------------

    def changed(self):
        """The cluster changed: tell the live streams (throttled to
        EVENTS_PER_SEC by the streams themselves)."""
        if self.pending or not self.streams:
            return
        self.pending = True
        for t in list(self.streams):
            t.send("changed")

    def _events(self, authorized):
        def run(write, task=None):
            self.streams.add(task)
            try:
                yield write(b"retry: %d\n\n" % (self.poll_sec * 1000,))
                yield write(self._event(authorized))
                while True:
                    msg = yield task.receive(timeout=KEEPALIVE, alarm_value=None)
                    if msg is None:
                        yield write(b": keep-alive\n\n")
                        continue
                    if msg == "close":
                        yield write(self._event(authorized))
                        return
                    yield task.sleep(1.0 / EVENTS_PER_SEC)
                    self.pending = False
                    yield write(self._event(authorized))
            finally:
                self.streams.discard(task)
        return run

    def _event(self, authorized):
        doc = json.dumps(self._cluster_doc(authorized), separators=(",", ":"))
        return b"event: cluster\ndata: " + doc.encode("utf-8") + b"\n\n"

    def close_streams(self):
        """Send every live stream its last update and end it."""
        for t in list(self.streams):
            t.send("close")

    # ---- a request -------------------------------------------------------------------

    def __call__(self, req, task=None):
        """[y] The response to ``req``."""
        if not self._host_ok(req.headers.get("host")):
            return self._error(403, "unknown Host: this server answers to its own names only")
        if req.path is None or "\x00" in req.path:
            return self._error(400, "the path does not decode")
        presented, authorized = self._token(req)
        if presented and not authorized:
            return self._error(401, "wrong token: open the URL printed when the server started")
        path = req.path
        if req.method == "POST":
            resp = yield from self._post(req, path, authorized, task)
            return resp
        if req.method not in ("GET", "HEAD"):
            return self._error(405, "method not allowed", [("Allow", "GET, HEAD, POST")])
        if self._action(path) is not None:
            return self._error(405, "an action is a POST", [("Allow", "POST")])
        if not (authorized or self.open_reads):
            return self._error(401, "this server needs its token: open the URL printed when "
                                    "it started")
        if "token" in req.query and not path.startswith(("/api/", "/metrics")):
            # the token came in the URL: keep it as a cookie, and show the
            # page at its address without it
            cookie = "%s=%s; HttpOnly; SameSite=Strict; Path=/%s" % (
                self.cookie, self.token.decode(), "; Secure" if self.tls else "")
            return Response(303, b"", headers=_COMMON + [
                ("Location", req.raw_path), ("Set-Cookie", cookie),
                ("Cache-Control", "no-store")])
        return self._get(req, path, authorized)

    def _host_ok(self, host):
        if not host or "," in host:
            return False
        host = host.strip().lower()
        if host.startswith("["):                      # [IPv6]:port
            name, _, rest = host[1:].partition("]")
            if rest and not (rest.startswith(":") and rest[1:].isdigit()):
                return False
        else:
            name, _, port = host.partition(":")
            if port and not port.isdigit():
                return False
        try:
            ipaddress.ip_address(name)
            return True                     # no rebinding trick names an IP literal
        except ValueError:
            return name in self.hosts

    def _token(self, req):
        """(whether a token came in a header or the query, whether the
        request carries the right one)."""
        presented = []
        auth = req.headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            presented.append(auth[7:].strip())
        if "x-pycos-token" in req.headers:
            presented.append(req.headers["x-pycos-token"].strip())
        if req.method in ("GET", "HEAD") and "token" in req.query:
            presented.append(req.query["token"])
        ok = bool(presented) and all(self._is_token(t) for t in presented)
        if not presented and req.method in ("GET", "HEAD"):
            # the cookie authorizes reads only; a stale one is no error
            cookie = _cookie(req.headers.get("cookie", ""), self.cookie)
            return False, cookie is not None and self._is_token(cookie)
        return bool(presented), ok

    def _is_token(self, text):
        return hmac.compare_digest(text.encode("utf-8", "replace"), self.token)

    # ---- reads ---------------------------------------------------------------------------

    def _get(self, req, path, authorized):
        c = self.cluster
        if path == "/api/cluster":
            return self._json(self._cluster_doc(authorized))
        if path.startswith("/api/node/"):
            return self._json_or_404(c.node_doc(path[len("/api/node/"):]), "no such node")
        if path.startswith("/api/server/"):
            return self._json_or_404(c.server_doc(path[len("/api/server/"):]),
                                     "no such server")
        if path == "/api/failures":
            return self._json(c.failures_doc())
        if path == "/api/events":
            if len(self.streams) >= MAX_STREAMS:
                return self._error(503, "too many live streams", [("Retry-After", "10")])
            return Stream(self._events(authorized), "text/event-stream; charset=utf-8",
                          headers=_COMMON + [("Cache-Control", "no-store")])
        if path == "/metrics":
            return Response(200, metrics.render(c).encode("utf-8"), metrics.CONTENT_TYPE,
                            _COMMON + [("Cache-Control", "no-store")])
        if path.startswith("/api/"):
            return self._error(404, "no such API document")
        return self._file(path, authorized)

    def _cluster_doc(self, authorized):
        doc = self.cluster.cluster_doc()
        doc["can_act"] = authorized
        doc["poll_sec"] = self.poll_sec
        return doc

    def _file(self, path, authorized):
        rel = _relative(path)
        if rel is None:
            return self._error(404, "no such file")
        full = os.path.realpath(os.path.join(self.doc_root, rel))
        if not full.startswith(self.doc_root + os.sep) or not os.path.isfile(full):
            return self._error(404, "no such file")
        try:
            with open(full, "rb") as f:
                body = f.read()
        except OSError:
            return self._error(404, "no such file")
        kind = mimetypes.guess_type(full)[0] or "application/octet-stream"
        if kind.startswith("text/") or kind in ("application/javascript", "image/svg+xml"):
            kind += "; charset=utf-8"
        if rel == "index.html" and authorized:
            body = body.replace(b'<meta name="pycos-token" content="">',
                                b'<meta name="pycos-token" content="%s">'
                                % html.escape(self.token.decode()).encode())
        return Response(200, body, kind, _COMMON + [("Content-Security-Policy", CSP),
                                                    ("Cache-Control", "no-store")])

    # ---- actions -------------------------------------------------------------------------

    @staticmethod
    def _action(path):
        """(kind, id, verb) when ``path`` names an action, else None."""
        if path == "/api/jobs/terminate":
            return ("jobs", None, "terminate")
        for kind, verbs in (("node", _NODE_ACTIONS), ("server", _SERVER_ACTIONS)):
            prefix = "/api/%s/" % kind
            if path.startswith(prefix):
                ident, _, verb = path[len(prefix):].rpartition("/")
                if ident and verb in verbs:
                    return (kind, ident, verb)
        return None

    def _post(self, req, path, authorized, task):
        """[y] An action."""
        action = self._action(path)
        if action is None:
            return self._error(405 if path.startswith("/api/") else 404,
                               "no such action", [("Allow", "GET, HEAD")])
        if not authorized:
            return self._error(401, "an action needs the token (header X-Pycos-Token or "
                                    "Authorization: Bearer)")
        origin = req.headers.get("origin")
        if origin is not None:
            own = "%s://%s" % ("https" if self.tls else "http", req.headers.get("host", ""))
            if origin.lower() != own.lower():
                return self._error(403, "cross-origin action refused")
        elif req.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            return self._error(403, "cross-site action refused")
        kind, ident, verb = action
        c = self.cluster
        if kind == "jobs":
            if not req.headers.get("content-type", "").startswith("application/json"):
                return self._error(415, "the body must be JSON ({\"jobs\": [ids]})")
            try:
                ids = json.loads(req.body.decode("utf-8"))["jobs"]
                if (not isinstance(ids, list) or len(ids) > _MAX_TERMINATE
                        or not all(isinstance(i, int) and not isinstance(i, bool)
                                   for i in ids)):
                    raise ValueError
            except (ValueError, KeyError, TypeError, UnicodeDecodeError):
                return self._error(400, "the body must be {\"jobs\": [job ids (numbers)]}")
            done = []
            for i in ids:
                job = c.job_ids.get(i)
                if job is not None and job.task.terminate() == 0:
                    job.terminated = True
                    done.append(i)
            self._log(req, "terminate jobs %s" % (done,))
            return self._json({"ok": True, "result": done})
        if kind == "node":
            node = c.nodes.get(ident)
            if node is None:
                return self._error(404, "no such node")
            method, target = _NODE_ACTIONS[verb], node.where
        else:
            server = c.servers.get(ident)
            if server is None:
                return self._error(404, "no such server")
            method, target = _SERVER_ACTIONS[verb], server.loc
        result = yield getattr(self.client, method)(target)
        self._log(req, "%s %s: %s" % (method, ident, result))
        if result != 0:
            return self._error(409, "%s %s: the client refused (%s)" % (method, ident, result))
        return self._json({"ok": True, "result": result})

    @staticmethod
    def _log(req, what):
        logger.info("httpd: %s (from %s)", what, req.peer)

    # ---- responses ------------------------------------------------------------------------

    @staticmethod
    def _json(doc, status=200):
        return Response(status, json.dumps(doc, separators=(",", ":")).encode("utf-8"), _JSON,
                        _COMMON + [("Cache-Control", "no-store")])

    def _json_or_404(self, doc, why):
        return self._error(404, why) if doc is None else self._json(doc)

    def _error(self, status, why, headers=()):
        body = json.dumps({"error": why, "status": status}).encode("utf-8")
        return Response(status, body, _JSON, _COMMON + list(headers))


def _relative(path):
    """The file ``path`` names under the document root ('/' is
    index.html, '/static/x' is x), or None when it is not a plain relative
    path: absolute, with '..', '.', an empty part, a backslash or a drive."""
    if path in ("/", "/index.html"):
        return "index.html"
    if path == "/favicon.ico":
        return "favicon.svg"
    if not path.startswith("/"):
        return None
    rel = path[len("/static/"):] if path.startswith("/static/") else path[1:]
    parts = rel.split("/")
    if not rel or "\\" in rel or ":" in rel or any(p in ("", ".", "..") for p in parts):
        return None
    return rel


def _cookie(header, name):
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None

