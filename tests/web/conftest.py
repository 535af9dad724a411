"""Fixtures of the web UI tests.

``web``: an :class:`pycos.httpd.HTTPServer` on a free loopback port, for a
stand-in client whose control methods record their calls (the routes and
rules under test here do not need a cluster; tests/web/test_httpd_cluster.py
has a real one), on this process's netpycos scheduler.  ``web.feed(*msgs)``
sends status messages and waits until the server has taken them;
``web.request(method, path, headers=..., body=...)`` makes a real HTTP
request over loopback and returns (status, headers, body).  Afterwards the
server is shut down and the test fails if a thread, descriptor or task of
it is left.
"""
import http.client
import os
import sys
import threading
import time

import pytest

import pycos.netpycos as netpycos
from pycos.core.scheduler import Pycos as CorePycos

sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "net"))
from netutil import open_fds  # noqa: E402


class StubClient(object):
    """What HTTPServer needs of a dispycos Client: ``status_task`` and the
    control methods ([y] calls), which record (name, argument) and answer
    ``self.answer``."""

    def __init__(self):
        self.status_task = None
        self.calls = []
        self.answer = 0

    def _call(self, name, where):
        self.calls.append((name, where))
        return self.answer
        yield  # pragma: no cover

    def suspend_node(self, node):
        return self._call("suspend_node", node)

    def resume_node(self, node):
        return self._call("resume_node", node)

    def suspend_server(self, loc):
        return self._call("suspend_server", loc)

    def resume_server(self, loc):
        return self._call("resume_server", loc)

    def close_server(self, loc):
        return self._call("close_server", loc)

    def restart_server(self, loc):
        return self._call("restart_server", loc)


class Web(object):
    def __init__(self, server, client, sched):
        self.server = server
        self.client = client
        self.sched = sched
        self.port = server.port
        self.token = server.url.partition("token=")[2]

    def feed(self, *msgs, timeout=10):
        """Send status messages; return once the server has taken them."""
        want = self.server.cluster.version + self.server.cluster.dropped + len(msgs)
        for m in msgs:
            self.server.status_task.send(m)
        deadline = time.monotonic() + timeout
        c = self.server.cluster
        while c.version + c.dropped < want:
            assert time.monotonic() < deadline, "status messages not taken"
            time.sleep(0.005)

    def conn(self, timeout=10):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, headers=None, body=None, host=None):
        c = self.conn()
        try:
            c.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            hdrs = {"Host": "127.0.0.1:%d" % self.port if host is None else host}
            hdrs.update(headers or {})
            if body is not None:
                hdrs.setdefault("Content-Length", str(len(body)))
            for k, v in hdrs.items():
                if v is not None:
                    c.putheader(k, v)
            c.endheaders(body)
            r = c.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            c.close()


@pytest.fixture
def web_factory():
    """make(**HTTPServer keywords) -> Web; all shut down and checked after."""
    old = CorePycos.existing()
    if old is not None:
        old.terminate()
    threads = set(threading.enumerate())
    sched = netpycos.Pycos(name="web-test", host="127.0.0.1", udp_port=0, secret="web-test")
    fds = open_fds()
    made = []

    def make(client=None, **kw):
        import pycos.httpd
        kw.setdefault("port", 0)
        client = client or StubClient()
        server = pycos.httpd.HTTPServer(client, **kw)
        w = Web(server, client, sched)
        made.append(w)
        return w
    make.StubClient = StubClient          # (for tests that build the client first)
    yield make
    for w in made:
        w.server.shutdown(wait=False)
    problems = []
    for w in made:
        if w.server.status_task.is_alive():
            problems.append("the status task of %s is alive" % (w.server.url,))
        if w.server._server.task.is_alive() or w.server._server.conns:
            problems.append("the server of %s still has tasks" % (w.server.url,))
    leaked = {fd: what for fd, what in open_fds().items()
              if (fd not in fds or fds[fd] != what) and not what.startswith("/proc/")}
    if leaked:
        problems.append("descriptors leaked: %r" % (leaked,))
    sched.terminate()
    extra = [t for t in threading.enumerate() if t not in threads and t.is_alive()]
    problems += ["thread left running: %r" % t for t in extra]
    assert not problems, problems


@pytest.fixture
def web(web_factory):
    return web_factory()
