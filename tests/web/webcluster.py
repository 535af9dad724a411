"""A real dispycos cluster on loopback with the web UI on its client, for
test_httpd_cluster.py (the JSON API) and test_httpd_browser.py (the page).

``web_cluster(tmp_path, components)`` (a context manager) makes this
process a dispycos client (a networked scheduler on 127.0.0.1 with a fresh
secret), starts a real ``dispycosnode`` process named ``web-node`` with two
server processes that finds it (``--peer``), puts an
:class:`pycos.httpd.HTTPServer` on a free port in front of the client's
status task, and yields a :class:`WebCluster`.  The client is not scheduled
yet: ``add_ui()`` may put more UIs on it, a page opened now sees the node
and its servers arrive, and ``schedule()`` starts it.

On the way out the UIs are shut down, the client is closed, the node is
told to quit (its servers end with it), and the test fails if a UI task, a
UI's listening port, a thread or a server process is left.
"""
import contextlib
import http.client
import json
import os
import secrets
import socket
import sys
import threading
import time

import pycos
import pycos.httpd
import pycos.netpycos as netpycos
from pycos.core.scheduler import Pycos as CorePycos
from pycos.dispycos import Client

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "net"))
sys.path.insert(0, os.path.join(HERE, "..", "dispy"))
from netutil import Proc  # noqa: E402
from clusterutil import _servers  # noqa: E402

#: the node's name (-n), as the UI shows it
NODE_NAME = "web-node"


def _yield_from(fn, *args, task=None):
    """A task's body: the value of ``yield fn(*args)`` (a client method)."""
    return (yield fn(*args))


def _close(client, task=None):
    return (yield client.close(terminate=True))


def _deliver(rt, message, task=None):
    return (yield rt.deliver(message, timeout=10))


class WebCluster(object):
    """The cluster: ``client`` (the dispycos Client), ``ui`` (its
    HTTPServer), ``token``, ``base`` (the UI's address without the
    token), ``url`` (with it), ``node`` (the dispycosnode's netutil.Proc)."""

    def __init__(self, client, ui, node):
        self.client = client
        self.node = node
        self.uis = []
        self.ui = self.add_ui(_made=ui)
        self.token = self.ui.url.partition("token=")[2]
        self.base = "http://127.0.0.1:%d" % self.ui.port
        self.url = self.base + "/?token=" + self.token

    def add_ui(self, _made=None, **kw):
        """Another HTTPServer on the client (keywords as HTTPServer's; port
        0 unless given); only before ``schedule()``."""
        if _made is None:
            kw.setdefault("port", 0)
            kw.setdefault("poll_sec", 1)
            _made = pycos.httpd.HTTPServer(self.client, **kw)
        self.uis.append(_made)
        return _made

    # ---- the client ------------------------------------------------------------------

    def call(self, fn, *args, timeout=30):
        """The value of ``yield fn(*args)`` for a client method ``fn``,
        from a task on the client's scheduler."""
        return pycos.Task(_yield_from, fn, *args).value(timeout)

    def schedule(self):
        assert self.call(self.client.schedule) == 0

    def submit(self, fn, *args, where=None, io=False):
        """Start a job: its remote task.  ``where``: a server's Location or
        id (client.rtask_at), else any server (client.rtask); ``io``: an
        I/O job (no one-job-per-server limit)."""
        if where is None:
            method = self.client.io_rtask if io else self.client.rtask
            rt = self.call(method, fn, *args)
        else:
            if isinstance(where, str):
                where = self.ui.cluster.servers[where].loc
            method = self.client.io_rtask_at if io else self.client.rtask_at
            rt = self.call(method, where, fn, *args)
        assert isinstance(rt, pycos.Task), rt
        return rt

    def tell(self, rt, message):
        """Deliver ``message`` to the job ``rt`` (a remote task) and wait
        for the acknowledgement."""
        assert pycos.Task(_deliver, rt, message).value(20) == 1

    # ---- the UI over HTTP -----------------------------------------------------------

    def request(self, method, path, body=None, token=True, headers=None, ui=None):
        """(status, the JSON document or the body's bytes) of a request to
        the UI (``ui``, else the first).  ``token``: True sends the UI's
        token in X-Pycos-Token, a string sends that one, None none;
        ``body``: sent as JSON."""
        ui = ui or self.ui
        hdrs = dict(headers or {})
        if token is True:
            token = ui.url.partition("token=")[2]
        if token is not None:
            hdrs["X-Pycos-Token"] = token
        if body is not None:
            body = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        c = http.client.HTTPConnection("127.0.0.1", ui.port, timeout=10)
        try:
            c.request(method, path, body=body, headers=hdrs)
            r = c.getresponse()
            data = r.read()
            if (r.getheader("Content-Type") or "").startswith("application/json"):
                data = json.loads(data)
            return r.status, data
        finally:
            c.close()

    def api(self, path):
        """The JSON document at ``path`` (which must answer 200)."""
        status, doc = self.request("GET", path)
        assert status == 200, (path, status, doc)
        return doc

    def until(self, what, cond, path="/api/cluster", timeout=30):
        """The document at ``path`` once ``cond(doc)`` holds; fails after
        ``timeout`` seconds with the last document."""
        deadline = time.monotonic() + timeout
        while True:
            doc = self.api(path)
            if cond(doc):
                return doc
            assert time.monotonic() < deadline, "never saw %s; last: %r" % (what, doc)
            time.sleep(0.05)                 # (polls the UI's answers, with a deadline)

    def ready(self):
        """Once the node and both its servers are Initialized: (the node's
        document, [the two server ids])."""
        cl = self.until("the node", lambda d: d["totals"]["nodes"] == 1)
        nid = cl["nodes"][0]["id"]
        doc = self.until("two servers ready",
                         lambda d: [s["status"] for s in d["server_list"]] == ["Initialized"] * 2,
                         path="/api/node/" + nid)
        return doc, [s["id"] for s in doc["server_list"]]

    def metrics(self):
        """/metrics as {(sample name, ((label, value), ...)): value}, read
        with prometheus_client's own parser."""
        from prometheus_client.parser import text_string_to_metric_families
        status, text = self.request("GET", "/metrics")
        assert status == 200, (status, text)
        out = {}
        for family in text_string_to_metric_families(text.decode("utf-8")):
            for s in family.samples:
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return out


def _port_closed(port):
    with socket.socket() as s:
        s.settimeout(5)
        return s.connect_ex(("127.0.0.1", port)) != 0


@contextlib.contextmanager
def web_cluster(tmp_path, components, cpus=2, **ui_kw):
    """Yield a WebCluster (see the module docstring) whose node runs
    ``cpus`` servers and whose client ships ``components``; ``ui_kw``:
    keywords of the first HTTPServer."""
    old = CorePycos.existing()
    if old is not None:
        old.terminate()
    secret = secrets.token_hex(8)
    threads = set(threading.enumerate())
    sched = netpycos.Pycos(name="web-client", host="127.0.0.1", udp_port=0, secret=secret)
    node = client = cluster = None
    problems = []
    try:
        dest = tmp_path / "node"
        argv = ["-c", str(cpus), "-i", "127.0.0.1", "-s", secret, "--node_ports", "0",
                "-n", NODE_NAME, "--dest_path", str(dest),
                "--peer", "127.0.0.1:%d" % sched.location.port]
        node = Proc("import sys; from pycos.dispycosnode import main; sys.exit(main(%r))"
                    % (argv,), secret, name="node")
        node.dest = dest
        node.expect(r"^dispycosnode ", timeout=30)
        client = Client(components)
        ui_kw.setdefault("port", 0)
        ui_kw.setdefault("poll_sec", 1)
        cluster = WebCluster(client, pycos.httpd.HTTPServer(client, **ui_kw), node)
        yield cluster
    finally:
        for ui in (cluster.uis if cluster is not None else []):
            ui.shutdown()
            if ui.status_task.is_alive() or ui._server.task.is_alive() or ui._server.conns:
                problems.append("a task of the UI at port %d is alive" % ui.port)
            if not _port_closed(ui.port):
                problems.append("the UI's port %d still accepts connections" % ui.port)
        if client is not None and client._scheduler is not None:
            # (terminate: a job a failed test left running does not hold it up)
            pycos.Task(_close, client).value(30)
        if node is not None:
            alive = node.proc.poll() is None
            node.proc.stdin.close()                     # the node's "quit"
            if alive:
                try:
                    node.proc.wait(20)
                except Exception:
                    node.proc.kill()
                    problems.append("the node did not end on 'quit':\n" + node.output())
        sched.terminate()
        if node is not None:
            node._reader.join(10)
            node.proc.stdout.close()
            left = _servers(node)
            if left:
                problems.append("server processes left running: %r" % left)
    extra = [t for t in threading.enumerate() if t not in threads and t.is_alive()
             and t.name != "proc-reader"]
    problems += ["thread left running: %r" % t for t in extra]
    assert not problems, "\n".join(problems)
