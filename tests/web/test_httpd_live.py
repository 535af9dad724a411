"""The web UI on a real cluster, through its JSON API and metrics: a real
``dispycosnode`` with two server processes, this process its client (see
livecluster.py).  What the pages show comes from the status stream the
real client produces, and the actions reach the real node and servers:
suspending a server or node is reported back by them, terminating a job
ends it on its server.
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from livecluster import live_cluster  # noqa: E402

pytestmark = pytest.mark.timeout(120)


def compute(x, delay, task=None):
    yield task.sleep(delay)
    return x * x


def fails(x, task=None):
    yield task.sleep(0)
    return x / 0


def sleeper(task=None):
    yield task.sleep(3600)


def _servers_of(live):
    node = live.until("the node", lambda d: d["totals"]["nodes"] == 1)["nodes"][0]
    doc = live.until("two servers ready",
                     lambda d: [s["status"] for s in d["server_list"]] == ["Initialized"] * 2,
                     path="/api/node/" + node["id"])
    return node, doc["server_list"]


def _server_status(live, sid, want):
    return live.until("server %s %s" % (sid, want), lambda d: d["status"] == want,
                      path="/api/server/" + sid)


def test_jobs_failures_and_metrics_of_a_real_cluster(tmp_path):
    """Jobs show up running on their servers, with their arguments, then
    done; a failed job's traceback is in /api/failures; /metrics agrees
    with /api/cluster."""
    with live_cluster(tmp_path, [compute, fails]) as live:
        live.schedule()
        node, servers = _servers_of(live)
        assert node["name"] == "web-node" and node["cpus"] == 2
        jobs = [live.submit(compute, i, 1.0) for i in range(2)]
        doc = live.until("2 jobs running", lambda d: d["totals"]["running"] == 2)
        assert doc["nodes"][0]["running"] == 2
        running = []
        for s in servers:
            running += live.api("/api/server/" + s["id"])["jobs"]
        assert sorted(j["args"] for j in running) == ["(0, 1.0)", "(1, 1.0)"], running
        assert all(j["name"] == "compute" and j["run_time"] >= 0 for j in running), running
        assert [rt.value(10) for rt in jobs] == [0, 1]
        live.until("2 jobs done", lambda d: d["totals"]["done"] == 2
                   and d["totals"]["running"] == 0)
        live.submit(fails, 7).value(10)
        doc = live.until("a failure", lambda d: d["totals"]["failed"] == 1)
        assert sum(p[1] for p in doc["rate"]) == 3           # finished in the last 5 min
        failures = live.api("/api/failures")
        assert len(failures) == 1 and failures[0]["type"] == "ZeroDivisionError", failures
        assert "Traceback" in failures[0]["value"] and failures[0]["args"] == "(7,)"
        assert failures[0]["server"] in [s["id"] for s in servers]
        status, text = live.request("GET", "/metrics")
        assert status == 200
        text = text.decode()
        assert 'pycos_jobs_total{outcome="done"} 2' in text
        assert 'pycos_jobs_total{outcome="failed"} 1' in text
        assert 'pycos_servers{state="initialized"} 2' in text
        assert "pycos_job_duration_seconds_count 3" in text


def test_actions_reach_the_real_node_and_servers(tmp_path):
    """suspend/resume a server and the node through POSTs: the servers and
    the node report their new state back; a suspended server gets no job;
    a job terminated through the API ends on its server (and is counted
    failed); refused requests change nothing."""
    with live_cluster(tmp_path, [compute, sleeper]) as live:
        live.schedule()
        node, servers = _servers_of(live)
        a, b = servers[0]["id"], servers[1]["id"]
        # refused: no token, a GET, an unknown server -- nothing changes
        assert live.request("POST", "/api/server/%s/suspend" % a, token=False)[0] in (401, 403)
        assert live.request("GET", "/api/server/%s/suspend" % a)[0] == 405
        assert live.request("POST", "/api/server/nowhere:1/suspend")[0] == 404
        assert live.api("/api/server/" + a)["status"] == "Initialized"

        status, answer = live.request("POST", "/api/server/%s/suspend" % a)
        assert status == 200 and answer["ok"], answer
        _server_status(live, a, "Suspended")
        # jobs go to the other server only while it is suspended
        for i in range(2):
            live.submit(compute, i, 0.1).value(10)
        assert live.api("/api/server/" + a)["done"] == 0
        assert live.api("/api/server/" + b)["done"] == 2
        assert live.request("POST", "/api/server/%s/resume" % a)[0] == 200
        _server_status(live, a, "Initialized")

        assert live.request("POST", "/api/node/%s/suspend" % node["id"])[0] == 200
        live.until("the node suspended", lambda d: d["status"] == "Suspended",
                   path="/api/node/" + node["id"])
        assert live.request("POST", "/api/node/%s/resume" % node["id"])[0] == 200
        live.until("the node resumed", lambda d: d["status"] == "Initialized",
                   path="/api/node/" + node["id"])

        # terminate a job that would run for an hour
        rt = live.submit(sleeper)
        doc = live.until("the sleeper running", lambda d: d["totals"]["running"] == 1)
        jobs = [j for s in servers for j in live.api("/api/server/" + s["id"])["jobs"]]
        assert len(jobs) == 1 and jobs[0]["name"] == "sleeper", jobs
        assert live.request("POST", "/api/jobs/terminate", body={"jobs": [jobs[0]["id"]]},
                            token=False)[0] in (401, 403)
        status, answer = live.request("POST", "/api/jobs/terminate",
                                      body={"jobs": [jobs[0]["id"]]})
        assert status == 200 and answer["result"] == [jobs[0]["id"]], answer
        rt.value(20)                                        # it ends (its value: None)
        assert not rt.is_alive()
        doc = live.until("the sleeper ended", lambda d: d["totals"]["running"] == 0)
        assert doc["totals"]["failed"] == 1 and doc["totals"]["done"] == 2, doc
        failure = live.api("/api/failures")[0]
        assert failure["name"] == "sleeper" and failure["type"] == "Terminated", failure
