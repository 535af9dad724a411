"""pycos.httpd without a browser: the rules (Host, token, origin, methods),
every refusal (traversal, foreign Host, GET on an action, missing or wrong
token, oversized and malformed requests, slow headers), the JSON documents
built from a status stream, the live event stream, the metrics (parsed by
prometheus_client's own parser), TLS, and that nothing a client sends
disturbs the scheduler.  Real HTTP over loopback throughout."""
import json
import socket
import ssl
import time

import pytest

import pycos
import pycos.httpd
from pycos.core.support import Location, MonitorStatus
from pycos.dispy.status import (DispycosNodeAvailInfo, DispycosNodeInfo, DispycosStatus,
                                DispycosTaskInfo, Status)
from pycos.web import http as webhttp

from netutil import self_signed_cert  # noqa: E402  (tests/net, on sys.path: conftest.py)

NODE_LOC = Location("127.0.0.1", 9706)
SERVER_LOC = Location("127.0.0.1", 9707)


class FakeTask(object):
    """A remote task as the status stream carries it: name, location,
    terminate() (counted)."""

    def __init__(self, name, n, location=SERVER_LOC):
        self.name = name
        self.location = location
        self.n = n
        self.terminated = 0

    def terminate(self):
        self.terminated += 1
        return 0

    def __str__(self):
        return "%s/%d@%s" % (self.name, self.n, self.location)

    __repr__ = __str__


def _node(cpu=90.0):
    return DispycosNodeInfo("node-a", "127.0.0.1", 2, "Linux-test",
                            DispycosNodeAvailInfo(NODE_LOC, cpu, 1 << 30, 1 << 33, 100.0))


def _cluster(web):
    """A node with one server, as a status stream says it."""
    web.feed(DispycosStatus(Status.NodeDiscovered, _node()),
             DispycosStatus(Status.NodeInitialized, _node()),
             DispycosStatus(Status.ServerInitialized, SERVER_LOC))


def _get(web, path, **kw):
    status, headers, body = web.request("GET", path, **kw)
    return status, headers, body


def _json(web, path, **kw):
    status, headers, body = _get(web, path, **kw)
    assert status == 200, (status, body)
    assert headers["content-type"].startswith("application/json")
    return json.loads(body)


# ---- the documents -------------------------------------------------------------------------

def test_cluster_node_server_failures_documents(web):
    _cluster(web)
    ok, bad = FakeTask("compute", 1), FakeTask("compute", 2)
    start = time.time() - 1
    web.feed(DispycosStatus(Status.TaskStarted, DispycosTaskInfo(ok, (3, "x"), {}, start)),
             DispycosStatus(Status.TaskStarted, DispycosTaskInfo(bad, (0,), {"k": 1}, start)))
    doc = _json(web, "/api/cluster")
    assert doc["totals"] == {"nodes": 1, "servers": 1, "running": 2, "done": 0, "failed": 0}
    (node,) = doc["nodes"]
    assert node["id"] == "127.0.0.1" and node["name"] == "node-a"
    assert node["status"] == "Initialized" and node["cpus"] == 2
    assert node["avail"] == {"cpu": 90.0, "memory": 1 << 30, "disk": 1 << 33, "swap": 100.0}
    assert doc["can_act"] is False and doc["poll_sec"] == 10 and len(doc["rate"]) == 300

    server = _json(web, "/api/server/127.0.0.1:9707")
    assert server["node"] == "127.0.0.1" and server["running"] == 2
    assert [j["args"] for j in server["jobs"]] == ["(3, 'x')", "(0,)"]
    assert server["jobs"][1]["kwargs"] == "{'k': 1}"
    assert all(j["run_time"] >= 1 for j in server["jobs"])

    web.feed(MonitorStatus(ok, StopIteration, 9),
             MonitorStatus(bad, ZeroDivisionError, "Traceback ...\nZeroDivisionError: x"),
             DispycosNodeAvailInfo(NODE_LOC, 40.0, 1 << 29, 1 << 33, 99.0))
    doc = _json(web, "/api/cluster")
    assert doc["totals"] == {"nodes": 1, "servers": 1, "running": 0, "done": 1, "failed": 1}
    assert sum(c for _, c in doc["rate"]) == 2
    node = _json(web, "/api/node/127.0.0.1")
    assert node["done"] == 1 and node["failed"] == 1 and node["avail"]["cpu"] == 40.0
    assert [p[1:] for p in node["series"]] == [[90.0, 1 << 30], [40.0, 1 << 29]]
    assert [s["id"] for s in node["server_list"]] == ["127.0.0.1:9707"]
    (failure,) = _json(web, "/api/failures")
    assert failure["type"] == "ZeroDivisionError" and "Traceback" in failure["value"]
    assert failure["server"] == "127.0.0.1:9707" and failure["args"] == "(0,)"

    assert _get(web, "/api/node/nosuch")[0] == 404
    assert _get(web, "/api/server/1.2.3.4:5")[0] == 404
    assert _get(web, "/api/nothing")[0] == 404


def test_hidden_task_args_and_odd_messages(web_factory):
    web = web_factory(show_task_args=False)
    _cluster(web)
    t = FakeTask("secret_job", 1)
    web.feed(DispycosStatus(Status.TaskStarted, DispycosTaskInfo(t, ("password",), {}, None)),
             "not a status message", DispycosStatus(Status.ServerInitialized, "not a location"),
             MonitorStatus(object(), KeyError, None))
    (job,) = _json(web, "/api/server/127.0.0.1:9707")["jobs"]
    assert job["args"] is None and job["kwargs"] is None
    assert web.server.cluster.dropped == 2
    doc = _json(web, "/api/cluster")
    assert doc["show_task_args"] is False and doc["totals"]["failed"] == 1


def test_status_messages_reach_the_previous_status_task(web_factory):
    got = []

    def previous(task=None):
        while True:
            msg = yield task.receive()
            got.append(msg)
            if msg == "last":
                return

    prev = pycos.Task(previous)
    client = web_factory.StubClient()
    client.status_task = prev
    web = web_factory(client)
    assert client.status_task is web.server.status_task
    web.feed(DispycosStatus(Status.NodeDiscovered, _node()), "last")
    prev.value(10)
    assert [type(m).__name__ for m in got] == ["DispycosStatus", "str"]
    web.server.shutdown()
    assert client.status_task is prev        # shutdown puts it back


# ---- access ------------------------------------------------------------------------------

def test_token_url_sets_cookie_and_redirects(web):
    status, headers, _ = _get(web, "/?token=" + web.token)
    assert status == 303 and headers["location"] == "/"
    cookie = headers["set-cookie"]
    assert cookie.startswith("pycos_token_%d=%s;" % (web.port, web.token))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    # with the cookie the page carries the token for its actions; without, it does not
    status, headers, body = _get(web, "/", headers={"Cookie": cookie.split(";")[0]})
    assert status == 200 and ('content="%s"' % web.token).encode() in body
    assert "script-src 'self'" in headers["content-security-policy"]
    status, _, body = _get(web, "/")
    assert status == 200 and b'<meta name="pycos-token" content="">' in body
    assert _json(web, "/api/cluster", headers={"Cookie": cookie.split(";")[0]})["can_act"]


def test_wrong_token_refused(web):
    assert _get(web, "/?token=wrong")[0] == 401
    assert _get(web, "/api/cluster", headers={"Authorization": "Bearer nope"})[0] == 401
    # a stale cookie (a token of an earlier run) is no error on loopback
    status, _, body = _get(web, "/api/cluster", headers={"Cookie": "pycos_token_%d=old"
                                                         % web.port})
    assert status == 200 and json.loads(body)["can_act"] is False


def test_beyond_loopback_everything_needs_the_token(web_factory):
    web = web_factory(host="0.0.0.0")
    for path in ("/", "/api/cluster", "/metrics", "/api/events", "/static/app.js"):
        status, _, body = _get(web, path)
        assert status == 401, (path, status, body)
    assert _get(web, "/api/cluster", headers={"X-Pycos-Token": web.token})[0] == 200
    assert _get(web, "/metrics", headers={"Authorization": "Bearer " + web.token})[0] == 200
    status, headers, _ = _get(web, "/?token=" + web.token)
    assert status == 303
    assert _get(web, "/", headers={"Cookie": headers["set-cookie"].split(";")[0]})[0] == 200


@pytest.mark.parametrize("host", ["evil.example.com", "evil.example.com:8181",
                                  "localhost.evil.example", "127.0.0.1.nip.io", "",
                                  "127.0.0.1:x", "a, b"])
def test_foreign_host_refused(web, host):
    status, _, body = _get(web, "/api/cluster", host=host,
                           headers={"X-Pycos-Token": web.token})
    assert status in (400, 403), (host, status, body)


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST:1", "127.0.0.1", "[::1]:8181",
                                  socket.gethostname(), "proxy.example"])
def test_own_hosts_accepted(web_factory, host):
    web = web_factory(allowed_hosts=["proxy.example"])
    assert _get(web, "/api/cluster", host=host)[0] == 200


@pytest.mark.parametrize("path", [
    "/static/../httpd.py", "/static/..%2f..%2fhttpd.py", "/static/%2e%2e/app.py",
    "/..%2f..%2f..%2fetc%2fpasswd", "//etc/passwd", "/static//etc/passwd",
    "/static/%2fetc%2fpasswd", "/static/..\\..\\httpd.py", "/static/..%5chttpd.py",
    "/static/./index.html", "/static/%252e%252e/app.py", "/C:/Windows/win.ini",
    "/static/%00index.html", "/static/%ff%fe"])
def test_no_path_leaves_the_document_root(web, path):
    status, _, body = _get(web, path)
    assert status in (400, 404), (path, status)
    assert b"import" not in body and b"root:" not in body


def test_document_root_and_its_symlinks(web_factory, tmp_path):
    root = tmp_path / "pages"
    root.mkdir()
    (root / "index.html").write_text("<p>mine</p>")
    (root / "a.css").write_text("p {}")
    (tmp_path / "secret.txt").write_text("secret")
    (root / "link.txt").symlink_to(tmp_path / "secret.txt")
    web = web_factory(DocumentRoot=str(root))
    assert _get(web, "/")[2] == b"<p>mine</p>"
    status, headers, body = _get(web, "/static/a.css")
    assert status == 200 and headers["content-type"].startswith("text/css")
    assert _get(web, "/a.css")[2] == b"p {}"
    assert _get(web, "/link.txt")[0] == 404           # a link out of the root is not followed
    with pytest.raises(ValueError):
        web_factory(DocumentRoot=str(tmp_path / "missing"))


# ---- actions ------------------------------------------------------------------------------

def _post(web, path, body=b"", token=True, headers=None):
    h = {"Content-Type": "application/json"}
    if token:
        h["X-Pycos-Token"] = web.token
    h.update(headers or {})
    return web.request("POST", path, headers=h, body=body)


def test_actions_need_post_token_and_same_origin(web):
    _cluster(web)
    c = web.client
    # a GET never changes anything
    for path in ("/api/node/127.0.0.1/suspend", "/api/server/127.0.0.1:9707/close",
                 "/api/jobs/terminate"):
        status, headers, _ = _get(web, path + "?token=" + web.token)
        assert status == 405 and headers["allow"] == "POST"
    # no token, the cookie alone, a wrong one
    assert _post(web, "/api/node/127.0.0.1/suspend", token=False)[0] == 401
    cookie = "pycos_token_%d=%s" % (web.port, web.token)
    assert _post(web, "/api/node/127.0.0.1/suspend", token=False,
                 headers={"Cookie": cookie})[0] == 401
    assert _post(web, "/api/node/127.0.0.1/suspend", token=False,
                 headers={"X-Pycos-Token": "x" * 32})[0] == 401
    # from another origin or site
    assert _post(web, "/api/node/127.0.0.1/suspend",
                 headers={"Origin": "http://evil.example"})[0] == 403
    assert _post(web, "/api/node/127.0.0.1/suspend",
                 headers={"Sec-Fetch-Site": "cross-site"})[0] == 403
    assert c.calls == []
    # the real thing, from the page's own origin
    origin = "http://127.0.0.1:%d" % web.port
    status, _, body = _post(web, "/api/node/127.0.0.1/suspend", headers={"Origin": origin})
    assert status == 200 and json.loads(body) == {"ok": True, "result": 0}
    for verb in ("suspend", "resume", "close", "restart"):
        assert _post(web, "/api/server/127.0.0.1:9707/" + verb)[0] == 200
    assert _post(web, "/api/node/127.0.0.1/resume")[0] == 200
    assert c.calls == [("suspend_node", "127.0.0.1"), ("suspend_server", SERVER_LOC),
                       ("resume_server", SERVER_LOC), ("close_server", SERVER_LOC),
                       ("restart_server", SERVER_LOC), ("resume_node", "127.0.0.1")]
    # unknown targets and verbs, and a client that refuses
    assert _post(web, "/api/node/nosuch/suspend")[0] == 404
    assert _post(web, "/api/server/127.0.0.1:1/close")[0] == 404
    assert _post(web, "/api/node/127.0.0.1/explode")[0] == 405
    assert _post(web, "/index.html")[0] == 404
    c.answer = -1
    assert _post(web, "/api/node/127.0.0.1/suspend")[0] == 409


def test_terminate_jobs(web):
    _cluster(web)
    tasks = [FakeTask("compute", i) for i in range(3)]
    web.feed(*[DispycosStatus(Status.TaskStarted, DispycosTaskInfo(t, (i,), {}, None))
               for i, t in enumerate(tasks)])
    ids = [j["id"] for j in _json(web, "/api/server/127.0.0.1:9707")["jobs"]]
    status, _, body = _post(web, "/api/jobs/terminate",
                            json.dumps({"jobs": ids[:2] + [999]}).encode())
    assert status == 200 and json.loads(body)["result"] == ids[:2]
    assert [t.terminated for t in tasks] == [1, 1, 0]
    for bad in (b"", b"{", b'{"jobs": "all"}', b'{"jobs": [true]}', b'{"nojobs": []}',
                b'{"jobs": ["1"]}', b"\xff\xfe"):
        assert _post(web, "/api/jobs/terminate", bad)[0] == 400, bad
    assert _post(web, "/api/jobs/terminate", b'{"jobs": []}',
                 headers={"Content-Type": "text/plain"})[0] == 415
    assert [t.terminated for t in tasks] == [1, 1, 0]


# ---- bad requests ---------------------------------------------------------------------------

def _until(cond, what, timeout=10):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out waiting for: " + what
        time.sleep(0.005)


def _raw(web, data, timeout=10, shut=False):
    """Send raw bytes; the whole answer until the server closes."""
    s = socket.create_connection(("127.0.0.1", web.port), timeout=timeout)
    try:
        s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk
    finally:
        s.close()


def _status_of(answer):
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else None


@pytest.mark.parametrize("data, expect", [
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n\r\n", 400),                              # HTTP/1.1 needs Host
    (b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n", 431),
    (b"POST /api/jobs/terminate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 9999999\r\n\r\n",
     413),
    (b"GET /\xff HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400),
    (b"DELETE / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 405),
])
def test_malformed_and_oversized_requests(web, data, expect):
    answer = _raw(web, data, shut=expect != 413)
    assert _status_of(answer) == expect, answer[:200]
    # and the server goes on
    assert _get(web, "/api/cluster")[0] == 200


def test_chunked_body_over_the_limit(web):
    chunk = b"%x\r\n%s\r\n" % (40000, b"x" * 40000)
    answer = _raw(web, b"POST /api/jobs/terminate HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                       b"Transfer-Encoding: chunked\r\n\r\n" + chunk * 3)
    assert _status_of(answer) == 413


def test_slow_headers_are_cut(web, monkeypatch):
    monkeypatch.setattr(webhttp, "HEAD_TIMEOUT", 0.5)
    s = socket.create_connection(("127.0.0.1", web.port), timeout=10)
    try:
        s.sendall(b"GET / HTTP/1.1\r\n")            # and never the rest
        start = time.monotonic()
        answer = s.recv(65536)
        assert _status_of(answer) == 408 and time.monotonic() - start < 5
    finally:
        s.close()


def test_idle_connection_closed_quietly(web, monkeypatch):
    monkeypatch.setattr(webhttp, "IDLE_TIMEOUT", 0.3)
    s = socket.create_connection(("127.0.0.1", web.port), timeout=10)
    try:
        assert s.recv(100) == b""                  # closed, no answer
    finally:
        s.close()


def test_keep_alive_and_pipelining(web):
    req = b"GET /api/cluster HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    answer = _raw(web, req * 3 + b"GET /api/failures HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Connection: close\r\n\r\n")
    assert answer.count(b"HTTP/1.1 200 OK") == 4


def test_head_request(web):
    status, headers, body = web.request("HEAD", "/api/cluster")
    assert status == 200 and body == b"" and int(headers["content-length"]) > 10
    status, headers, body = web.request("HEAD", "/api/events")    # no stream follows
    assert status == 200 and body == b"" and headers["content-type"].startswith(
        "text/event-stream")


def test_a_barrage_does_not_disturb_the_scheduler(web):
    """Hundreds of bad connections while a task ticks: the task keeps its
    pace and the server still answers."""
    ticks = []

    def ticker(task=None):
        for _ in range(40):
            yield task.sleep(0.01)
            ticks.append(time.monotonic())

    t = pycos.Task(ticker)
    for i in range(200):
        _raw(web, [b"GARBAGE\r\n\r\n", b"GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
                   b"\x16\x03\x01\x00\x05hello"][i % 3], shut=True)
    t.value(20)
    assert len(ticks) == 40
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    assert max(gaps) < 1.0, max(gaps)
    assert _get(web, "/api/cluster")[0] == 200
    _until(lambda: not web.server._server.conns, "connections closed")


# ---- live updates ----------------------------------------------------------------------------

def _events(web, want, timeout=10):
    """Read the event stream until ``want`` 'cluster' events came: their
    documents."""
    s = socket.create_connection(("127.0.0.1", web.port), timeout=timeout)
    docs = []
    buf = b""
    try:
        s.sendall(b"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        while len(docs) < want:
            chunk = s.recv(65536)
            assert chunk, "the stream ended"
            buf += chunk
            while b"\n\n" in buf:
                block, buf = buf.split(b"\n\n", 1)
                for line in block.split(b"\n"):
                    # chunked framing: the event lines are inside chunks
                    if line.startswith(b"data: "):
                        docs.append(json.loads(line[6:]))
                if len(docs) == 1 and want > 1 and len(docs) == 1 and not hasattr(s, "_fed"):
                    pass
            yield docs
    finally:
        s.close()


def test_event_stream_pushes_changes(web):
    reader = _events(web, 2)
    first = next(reader)
    while not first:
        first = next(reader)
    assert first[0]["totals"]["nodes"] == 0
    _cluster(web)
    docs = first
    while len(docs) < 2:
        docs = next(reader)
    assert docs[-1]["totals"]["nodes"] == 1 and docs[-1]["version"] > docs[0]["version"]
    reader.close()


def test_shutdown_sends_the_last_update_and_ends_streams(web):
    s = socket.create_connection(("127.0.0.1", web.port), timeout=10)
    try:
        s.sendall(b"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        got = b""
        while got.count(b"event: cluster") < 1:
            got += s.recv(65536)
        web.server.shutdown(wait=True)
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        assert got.count(b"event: cluster") == 2
        assert got.endswith(b"0\r\n\r\n")          # the chunked body's proper end
    finally:
        s.close()


# ---- metrics ---------------------------------------------------------------------------------

def test_metrics_parse_with_prometheus_client(web):
    parser = pytest.importorskip("prometheus_client.parser",
                                 reason="prometheus_client (the test extra) is not installed")
    _cluster(web)
    tasks = [FakeTask("compute", i) for i in range(3)]
    web.feed(*[DispycosStatus(Status.TaskStarted,
                              DispycosTaskInfo(t, (), {}, time.time() - 0.2 * i))
               for i, t in enumerate(tasks)])
    web.feed(MonitorStatus(tasks[0], StopIteration, 1), MonitorStatus(tasks[1], KeyError, "x"))
    status, headers, body = _get(web, "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
    fams = {f.name: f for f in parser.text_string_to_metric_families(body.decode())}
    value = {(s.name, tuple(sorted(s.labels.items()))): s.value
             for f in fams.values() for s in f.samples}
    assert fams["pycos_jobs"].type == "counter"
    assert value[("pycos_jobs_total", (("outcome", "done"),))] == 1
    assert value[("pycos_jobs_total", (("outcome", "failed"),))] == 1
    assert value[("pycos_jobs_running", ())] == 1
    assert value[("pycos_nodes", (("state", "initialized"),))] == 1
    assert value[("pycos_servers", (("state", "initialized"),))] == 1
    assert fams["pycos_job_duration_seconds"].type == "histogram"
    assert value[("pycos_job_duration_seconds_count", ())] == 2
    assert value[("pycos_job_duration_seconds_bucket", (("le", "+Inf"),))] == 2
    node = (("name", "node-a"), ("node", "127.0.0.1"))
    assert value[("pycos_node_cpu_idle_percent", node)] == 90.0
    assert value[("pycos_node_memory_available_bytes", node)] == 1 << 30
    assert value[("pycos_node_jobs_running", node)] == 1


# ---- TLS and arguments ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    return self_signed_cert(tmp_path_factory.mktemp("cert"), "web")


def test_https(web_factory, cert):
    certfile, keyfile = cert
    web = web_factory(certfile=certfile, keyfile=keyfile)
    assert web.server.url.startswith("https://127.0.0.1:%d/?token=" % web.port)
    ctx = ssl.create_default_context(cafile=certfile)
    import http.client
    c = http.client.HTTPSConnection("127.0.0.1", web.port, context=ctx, timeout=10)
    try:
        c.request("GET", "/?token=" + web.token)
        r = c.getresponse()
        r.read()
        assert r.status == 303 and "Secure" in r.getheader("Set-Cookie")
    finally:
        c.close()
    # plain HTTP to the TLS port: that connection fails, the server goes on
    assert not _raw(web, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", shut=True).startswith(
        b"HTTP/1.1 200")
    c = http.client.HTTPSConnection("127.0.0.1", web.port, context=ctx, timeout=10)
    try:
        c.request("GET", "/api/cluster")
        assert c.getresponse().status == 200
    finally:
        c.close()


def test_bad_arguments(web_factory):
    StubClient = web_factory.StubClient
    with pytest.raises(TypeError):
        pycos.httpd.HTTPServer(object())
    for kw, exc in [({"port": -1}, ValueError), ({"port": "80"}, ValueError),
                    ({"poll_sec": "10"}, TypeError), ({"keyfile": "k"}, ValueError),
                    ({"token": "short"}, ValueError), ({"allowed_hosts": "a.b"}, TypeError),
                    ({"host": 127}, TypeError)]:
        with pytest.raises(exc):
            pycos.httpd.HTTPServer(StubClient(), **kw)
    web = web_factory()
    with pytest.raises(OSError):           # the port is taken: said at once
        pycos.httpd.HTTPServer(StubClient(), port=web.port)
    web2 = web_factory(poll_sec=0.1, token="a-chosen-token-of-some-length")
    assert _json(web2, "/api/cluster")["poll_sec"] == 1
    assert web2.token == "a-chosen-token-of-some-length"
