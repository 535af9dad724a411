"""A real dispycos cluster with the web UI on it, for the web UI's cluster
and browser tests.

``live_cluster(tmp_path, components)`` (a context manager) starts a real
``dispycosnode`` process with two server processes on loopback, makes this
process its client (a networked scheduler with a fresh secret) with an
:class:`pycos.httpd.HTTPServer` on a free port, and yields a
:class:`Live`.  The client is not scheduled yet, so a page opened first
sees the node and servers arrive; ``live.schedule()`` starts it.  On the
way out the UI, the client, the node and its servers end, and leftovers
(threads, server processes) fail the test.
"""
import contextlib
import http.client
import json
import os
import secrets
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


def _call(fn, *args, task=None):
    return (yield fn(*args))


class Live(object):
    """The cluster: ``client``, ``server`` (the HTTPServer), ``url``
    (with the token), ``base`` (without), ``token``, ``node`` (the
    dispycosnode Proc)."""

    def __init__(self, client, server, node):
        self.client = client
        self.server = server
        self.node = node
        self.url = server.url
        self.token = server.url.partition("token=")[2]
        self.base = "http://127.0.0.1:%d" % server.port

    def call(self, fn, *args, timeout=30):
        """The value of ``yield fn(*args)`` (a client method) in a task."""
        return pycos.Task(_call, fn, *args).value(timeout)

    def schedule(self):
        assert self.call(self.client.schedule) == 0

    def submit(self, fn, *args, io=False):
        """A job (a remote Task): ``client.rtask`` (or ``io_rtask``)."""
        rt = self.call(self.client.io_rtask if io else self.client.rtask, fn, *args)
        assert isinstance(rt, pycos.Task), rt
        return rt

    def request(self, method, path, body=None, token=True, headers=None):
        """(status, decoded JSON or body bytes) of a request to the UI."""
        c = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)
        try:
            hdrs = dict(headers or {})
            if token:
                hdrs["X-Pycos-Token"] = self.token
            if body is not None:
                body = json.dumps(body).encode()
                hdrs["Content-Type"] = "application/json"
            c.request(method, path, body=body, headers=hdrs)
            r = c.getresponse()
            data = r.read()
            if r.getheader("Content-Type", "").startswith("application/json"):
                data = json.loads(data)
            return r.status, data
        finally:
            c.close()

    def api(self, path):
        status, doc = self.request("GET", path)
        assert status == 200, (path, status, doc)
        return doc

    def until(self, what, cond, path="/api/cluster", timeout=30):
        """The document at ``path`` once ``cond(doc)`` holds."""
        deadline = time.monotonic() + timeout
        while True:
            doc = self.api(path)
            if cond(doc):
                return doc
            assert time.monotonic() < deadline, "never saw %s: %r" % (what, doc)
            time.sleep(0.05)                 # (polls the server's answers)


@contextlib.contextmanager
def live_cluster(tmp_path, components, cpus=2):
    old = CorePycos.existing()
    if old is not None:
        old.terminate()
    secret = secrets.token_hex(8)
    threads = set(threading.enumerate())
    sched = netpycos.Pycos(name="web-client", host="127.0.0.1", udp_port=0, secret=secret)
    node = server = client = None
    problems = []
    try:
        code = ("import sys; from pycos.dispycosnode import main; sys.exit(main(%r))"
                % (["-c", str(cpus), "-i", "127.0.0.1", "-s", secret, "--node_ports", "0",
                    "-n", "web-node", "--dest_path", str(tmp_path / "node"),
                    "--peer", "127.0.0.1:%d" % sched.location.port],))
        node = Proc(code, secret, name="node")
        node.dest = tmp_path / "node"
        node.expect(r"^dispycosnode ", timeout=30)
        client = Client(components)
        server = pycos.httpd.HTTPServer(client, port=0, poll_sec=1)
        yield Live(client, server, node)
    finally:
        if server is not None:
            server.shutdown()
        if client is not None and client._scheduler is not None:
            pycos.Task(_call, client.close).value(30)
        if node is not None:
            alive = node.proc.poll() is None
            node.proc.stdin.close()
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
                problems.append("servers left running: %r" % left)
    extra = [t for t in threading.enumerate() if t not in threads and t.is_alive()
             and t.name != "proc-reader"]
    problems += ["thread left running: %r" % t for t in extra]
    assert not problems, "\n".join(problems)
