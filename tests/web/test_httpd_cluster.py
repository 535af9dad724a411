"""The web UI's JSON API and metrics on a real cluster (no browser).

A real ``dispycosnode`` with two server processes, this process its client,
an HTTPServer on the client (webcluster.py); every request is a real HTTP
request over loopback.  What the API reports comes from the status stream
the real client produces, and the actions reach the real node and servers:

* the node and its servers appear, jobs show while they run (on their
  server, with their arguments) and are counted done or failed after, a
  failure keeps its traceback, and /metrics says the same as /api/cluster;
* suspending and resuming a server or the node is reported back by them
  and has its effect (a suspended server gets no job; a job given while
  the node is suspended runs once it is resumed); a terminated job ends
  on its server and counts as failed; requests without the token, with a
  wrong one, from another origin or as a GET are refused and change
  nothing;
* restarting a server replaces its process once its job is done, closing
  one does not; once the client closes, the UI shows it and the actions
  are refused.
"""
import os
import sys

import pytest

import pycos

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from webcluster import NODE_NAME, web_cluster  # noqa: E402

pytestmark = pytest.mark.timeout(120)


# ---- the jobs (shipped to the servers as source) ---------------------------------------

def compute(x, delay, task=None):
    yield task.sleep(delay)
    return x * x


def held(x, task=None):
    """Runs until it is told to end; returns (x, what it was told)."""
    msg = yield task.receive()
    return (x, msg)


def fails(x, task=None):
    yield task.sleep(0)
    return x / 0


def sleeper(task=None):
    yield task.sleep(3600)


# ---- helpers -----------------------------------------------------------------------------

def _metric(metrics, sample, **labels):
    """The value of a /metrics sample (see WebCluster.metrics)."""
    return metrics[(sample, tuple(sorted(labels.items())))]


def _wait_submit(client, fn, *args, task=None):
    return (yield client.rtask(fn, *args, 0))


def _status(w, kind, ident, want):
    """The /api/<kind>/<ident> document once its status is ``want``."""
    return w.until("%s %s %s" % (kind, ident, want), lambda d: d["status"] == want,
                   path="/api/%s/%s" % (kind, ident))


# ---- the tests ---------------------------------------------------------------------------

def test_cluster_api_shows_nodes_servers_jobs_and_failures(tmp_path):
    with web_cluster(tmp_path, [held, fails]) as w:
        # up before the client is scheduled: nothing yet
        doc = w.api("/api/cluster")
        assert doc["totals"] == {"nodes": 0, "servers": 0, "running": 0, "done": 0,
                                 "failed": 0}, doc
        assert doc["can_act"] is True and doc["client"]["closed"] is False

        w.schedule()
        node, (a, b) = w.ready()
        nid = node["id"]
        assert (node["name"], node["cpus"], node["servers"], node["status"]) == \
            (NODE_NAME, 2, 2, "Initialized"), node
        doc = w.api("/api/cluster")
        assert doc["totals"]["nodes"] == 1 and doc["totals"]["servers"] == 2, doc
        assert [n["id"] for n in doc["nodes"]] == [nid]
        for sid in (a, b):
            s = w.api("/api/server/" + sid)
            assert (s["id"], s["node"], s["status"], s["jobs"]) == (sid, nid, "Initialized", [])
        assert w.request("GET", "/api/node/nowhere:1")[0] == 404
        assert w.request("GET", "/api/server/nowhere:1")[0] == 404

        # two jobs, one per server (CPU jobs), running until told to end
        jobs = [w.submit(held, i) for i in range(2)]
        doc = w.until("2 jobs running", lambda d: d["totals"]["running"] == 2)
        assert doc["nodes"][0]["running"] == 2, doc
        running = {sid: w.api("/api/server/" + sid)["jobs"] for sid in (a, b)}
        assert [len(js) for js in running.values()] == [1, 1], running
        listed = sorted(running[a] + running[b], key=lambda j: j["args"])
        assert [j["args"] for j in listed] == ["(0,)", "(1,)"], listed
        assert all(j["name"] == "held" and j["kwargs"] == "{}" and j["run_time"] >= 0
                   for j in listed), listed
        assert {str(rt.location) for rt in jobs} == {a, b}
        m = w.metrics()
        assert _metric(m, "pycos_jobs_running") == 2
        assert _metric(m, "pycos_node_jobs_running", node=nid, name=NODE_NAME) == 2
        assert _metric(m, "pycos_servers", state="initialized") == 2
        assert _metric(m, "pycos_nodes", state="initialized") == 1

        for i, rt in enumerate(jobs):
            w.tell(rt, "end")
            assert rt.value(20) == (i, "end")
        doc = w.until("2 jobs done", lambda d: d["totals"]["done"] == 2
                      and d["totals"]["running"] == 0)
        assert sum(count for _, count in doc["rate"]) == 2, doc["rate"]
        assert [w.api("/api/server/" + sid)["done"] for sid in (a, b)] == [1, 1]

        # a job that raises: a failure, with its traceback
        rt = w.submit(fails, 7)
        rt.value(20)
        doc = w.until("a failure", lambda d: d["totals"]["failed"] == 1)
        assert doc["totals"]["done"] == 2 and doc["nodes"][0]["failed"] == 1, doc
        failures = w.api("/api/failures")
        assert len(failures) == 1, failures
        f = failures[0]
        assert (f["type"], f["name"], f["args"], f["node"]) == \
            ("ZeroDivisionError", "fails", "(7,)", nid), f
        assert f["server"] == str(rt.location) and f["task"] == str(rt), f
        assert f["value"].startswith("Traceback") and "x / 0" in f["value"], f["value"]
        assert "ZeroDivisionError: division by zero" in f["value"], f["value"]

        # the metrics agree with the API
        doc = w.api("/api/cluster")
        m = w.metrics()
        assert _metric(m, "pycos_jobs_total", outcome="done") == doc["totals"]["done"] == 2
        assert _metric(m, "pycos_jobs_total", outcome="failed") == doc["totals"]["failed"] == 1
        assert _metric(m, "pycos_jobs_running") == doc["totals"]["running"] == 0
        assert _metric(m, "pycos_job_duration_seconds_count") == 3
        assert _metric(m, "pycos_node_jobs_running", node=nid, name=NODE_NAME) == 0
        assert _metric(m, "pycos_servers", state="initialized") == doc["totals"]["servers"]
        assert _metric(m, "pycos_node_memory_available_bytes", node=nid, name=NODE_NAME) == \
            doc["nodes"][0]["avail"]["memory"]


def test_cluster_api_actions_reach_the_node_and_servers(tmp_path):
    with web_cluster(tmp_path, [compute, sleeper]) as w:
        w.schedule()
        node, (a, b) = w.ready()
        nid = node["id"]
        action = "/api/server/%s/suspend" % a

        # refused, and nothing changes: no token, a wrong one, the cookie
        # alone, another origin, a GET
        assert w.request("POST", action, token=None)[0] == 401
        assert w.request("POST", action, token="x" * 32)[0] == 401
        cookie = "pycos_token_%d=%s" % (w.ui.port, w.token)
        assert w.request("POST", action, token=None, headers={"Cookie": cookie})[0] == 401
        assert w.request("POST", action, headers={"Origin": "http://evil.example"})[0] == 403
        for path in (action, "/api/node/%s/suspend" % nid, "/api/jobs/terminate"):
            assert w.request("GET", path)[0] == 405, path
        # (the status stream is in order: once a later action on b is
        # reported, a suspension of a would have been too)
        status, answer = w.request("POST", "/api/server/%s/suspend" % b, token=None,
                                   headers={"Authorization": "Bearer " + w.token})
        assert status == 200 and answer == {"ok": True, "result": 0}, answer
        _status(w, "server", b, "Suspended")
        assert w.api("/api/server/" + a)["status"] == "Initialized"
        m = w.metrics()
        assert _metric(m, "pycos_servers", state="suspended") == 1
        assert _metric(m, "pycos_servers", state="initialized") == 1

        # a suspended server gets no job
        for i in range(3):
            rt = w.submit(compute, i, 0)
            assert rt.location == w.ui.cluster.servers[a].loc and rt.value(20) == i * i
        w.until("3 jobs done", lambda d: d["totals"]["done"] == 3)
        assert [w.api("/api/server/" + sid)["done"] for sid in (a, b)] == [3, 0]
        assert w.request("POST", "/api/server/%s/resume" % b)[0] == 200
        _status(w, "server", b, "Initialized")
        assert _metric(w.metrics(), "pycos_servers", state="suspended") == 0

        # the node: suspended (no server of it takes a job -- tests/dispy
        # checks that), then resumed, and a job given meanwhile runs
        assert w.request("POST", "/api/node/%s/suspend" % nid)[0] == 200
        _status(w, "node", nid, "Suspended")
        assert w.api("/api/cluster")["nodes"][0]["status"] == "Suspended"
        assert _metric(w.metrics(), "pycos_nodes", state="suspended") == 1
        waiting = pycos.Task(_wait_submit, w.client, compute, 5)
        assert w.request("POST", "/api/node/%s/resume" % nid)[0] == 200
        _status(w, "node", nid, "Initialized")
        assert waiting.value(20).value(20) == 25

        # terminate a job that would run for an hour
        rt = w.submit(sleeper)
        w.until("the sleeper running", lambda d: d["totals"]["running"] == 1)
        job = w.api("/api/server/%s" % rt.location)["jobs"][0]
        assert job["name"] == "sleeper" and job["task"] == str(rt), job
        body = {"jobs": [job["id"], 99999]}                 # 99999: no such job
        assert w.request("POST", "/api/jobs/terminate", body=body, token=None)[0] == 401
        assert w.request("POST", "/api/jobs/terminate", body={"jobs": "all"})[0] == 400
        assert w.request("GET", "/api/cluster")[1]["totals"]["running"] == 1
        status, answer = w.request("POST", "/api/jobs/terminate", body=body)
        assert status == 200 and answer == {"ok": True, "result": [job["id"]]}, answer
        assert rt.value(20) is None and not rt.is_alive()
        doc = w.until("the sleeper ended", lambda d: d["totals"]["running"] == 0)
        assert doc["totals"]["failed"] == 1 and doc["totals"]["done"] == 4, doc["totals"]
        f = w.api("/api/failures")[0]
        assert (f["id"], f["name"], f["type"], f["server"]) == \
            (job["id"], "sleeper", "Terminated", str(rt.location)), f
        assert _metric(w.metrics(), "pycos_jobs_total", outcome="failed") == 1
        # the job is gone: terminating it again does nothing
        assert w.request("POST", "/api/jobs/terminate", body=body)[1]["result"] == []


def test_cluster_api_close_restart_and_the_client_closing(tmp_path):
    with web_cluster(tmp_path, [held, compute]) as w:
        w.schedule()
        node, (a, b) = w.ready()
        nid = node["id"]

        # restart a busy server: it ends after its job, a new one takes its place
        rt = w.submit(held, 1, where=a)
        w.until("a's job running", lambda d: d["running"] == 1, path="/api/server/" + a)
        status, answer = w.request("POST", "/api/server/%s/restart" % a)
        assert status == 200 and answer == {"ok": True, "result": 0}, answer
        w.tell(rt, "done")
        assert rt.value(20) == (1, "done")
        _status(w, "server", a, "Closed")
        doc = w.until("a new server", lambda d: len(d["server_list"]) == 3 and [
            s["status"] for s in d["server_list"]].count("Initialized") == 2,
            path="/api/node/" + nid)
        (c,) = [s["id"] for s in doc["server_list"] if s["id"] not in (a, b)]
        assert w.api("/api/server/" + a)["done"] == 1
        # a closed server's actions: the client refuses them
        assert w.request("POST", "/api/server/%s/suspend" % a)[0] == 409

        # close one: no new server; the jobs go to the one left
        assert w.request("POST", "/api/server/%s/close" % b)[0] == 200
        _status(w, "server", b, "Closed")
        for i in range(2):
            rt = w.submit(compute, i, 0)
            assert str(rt.location) == c and rt.value(20) == i * i
        m = w.metrics()
        assert _metric(m, "pycos_servers", state="initialized") == 1
        assert _metric(m, "pycos_servers", state="closed") == 2
        assert w.api("/api/server/" + c)["done"] == 2

        # the client closes: the UI says so, and refuses what it cannot do any more
        assert w.call(w.client.close) == 0
        doc = w.until("the client closed", lambda d: d["client"]["closed"])
        assert doc["nodes"][0]["status"] == "Closed", doc
        doc = w.api("/api/node/" + nid)
        assert [s["status"] for s in doc["server_list"]] == ["Closed"] * 3, doc
        assert w.request("POST", "/api/node/%s/suspend" % nid)[0] == 409
        assert w.request("POST", "/api/server/%s/suspend" % c)[0] == 409
        assert doc["done"] == 3 and doc["failed"] == 0, doc
