"""The web UI's page in a real browser (headless Chromium driven by
Playwright) on a real cluster: a ``dispycosnode`` with two server
processes, this process its client, an HTTPServer on it (webcluster.py).

* The page, opened with the printed URL before the client is scheduled and
  never reloaded, shows the node and its servers arrive, jobs start and
  finish (the counters and the jobs per second chart move), a failure
  with its traceback; its buttons suspend and resume the node and a
  server, terminate running jobs (selected, or one), restart and close
  servers -- and the page shows what the cluster reports back.
* Without the token the page on loopback is read-only (data, no buttons)
  and the cookie alone never authorizes an action; a wrong token is
  refused; a UI listening beyond loopback shows nothing without the token.

A screenshot of each view goes to build/screenshots/ (cluster.png,
node.png, server.png, failures.png; docs/httpd.md shows copies of them
from docs/images/).
"""
import os
import sys
from urllib.parse import unquote

import pytest

pytest.importorskip("playwright.sync_api",
                    reason="playwright (the browser tests' driver) is not installed")
from playwright.sync_api import expect  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import browser  # noqa: E402
from webcluster import NODE_NAME, web_cluster  # noqa: E402

if browser.chromium_path() is None:
    pytest.skip("%s is not installed (scripts/setup-system installs Debian's chromium)"
                % browser.CHROMIUM, allow_module_level=True)

pytestmark = pytest.mark.timeout(120)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHOTS = os.path.join(ROOT, "build", "screenshots")
#: ms the page may take to show a change (it is pushed within ~0.25 s)
WAIT = 20000


# ---- the jobs (shipped to the servers as source) ---------------------------------------

def held(x, label, task=None):
    """Runs until it is told to end (or is terminated)."""
    msg = yield task.receive()
    return (x, msg)


def fails(x, task=None):
    yield task.sleep(0)
    return x / 0


def compute(x, task=None):
    yield task.sleep(0)
    return x + 1


# ---- helpers -----------------------------------------------------------------------------

def _shot(page, name):
    page.screenshot(path=os.path.join(SHOTS, name), full_page=True)


def _server_row(view, sid):
    return view.locator('[data-testid="server-row"][data-id="%s"]' % sid)


# ---- the tests ---------------------------------------------------------------------------

def test_browser_page_follows_and_steers_a_live_cluster(tmp_path):
    with web_cluster(tmp_path, [held, fails]) as w, \
            browser.browser_page(w.base, screenshot_dir=SHOTS) as page:
        page.set_default_timeout(WAIT)                # (clicks wait for their button)
        loads = []                                    # the documents the page loads
        page.on("request", lambda r: loads.append(r.url)
                if r.resource_type == "document" else None)
        answer = page.goto(w.url)                     # the printed URL: a cookie, then "/"
        assert answer.status == 200 and page.url == w.base + "/", (answer.status, page.url)
        expect(page.get_by_test_id("view-cluster")).to_be_visible(timeout=WAIT)
        expect(page.get_by_test_id("conn-state")).to_have_text("live", timeout=WAIT)
        expect(page.get_by_test_id("readonly-note")).to_be_hidden()
        expect(page.get_by_test_id("node-row")).to_have_count(0)
        expect(page.get_by_test_id("total-nodes")).to_have_text("0")
        loaded = len(loads)

        # the node and its servers arrive in the open page
        w.schedule()
        expect(page.get_by_test_id("node-row")).to_have_count(1, timeout=WAIT)
        expect(page.get_by_test_id("node-link")).to_have_text(NODE_NAME)
        expect(page.get_by_test_id("node-status")).to_have_text("Initialized", timeout=WAIT)
        expect(page.get_by_test_id("total-servers")).to_have_text("2", timeout=WAIT)

        # jobs start and finish; the jobs per second chart gets its bars
        bars = page.get_by_test_id("chart-rate").locator("path.bars")
        expect(bars).to_have_count(0)
        jobs = [w.submit(held, i, "cpu") for i in range(2)]
        expect(page.get_by_test_id("total-running")).to_have_text("2", timeout=WAIT)
        for rt in jobs:
            w.tell(rt, "end")
        expect(page.get_by_test_id("total-done")).to_have_text("2", timeout=WAIT)
        expect(page.get_by_test_id("total-running")).to_have_text("0", timeout=WAIT)
        expect(bars).to_have_count(1, timeout=WAIT)
        drawn = bars.get_attribute("d")
        w.submit(fails, 7).value(20)
        expect(page.get_by_test_id("total-failed")).to_have_text("1", timeout=WAIT)
        expect(page.locator("#nav-failed-count")).to_have_text("1")
        expect(bars).not_to_have_attribute("d", drawn, timeout=WAIT)   # a third job's bar

        # the failures: the exception, the arguments, the traceback
        page.get_by_test_id("nav-failures").click()
        expect(page.get_by_test_id("view-failures")).to_be_visible(timeout=WAIT)
        expect(page.get_by_test_id("failure-row")).to_have_count(1, timeout=WAIT)
        expect(page.get_by_test_id("failure-type")).to_have_text("ZeroDivisionError")
        expect(page.get_by_test_id("failure-args")).to_have_text("(7,)")
        traceback = page.get_by_test_id("failure-traceback")
        expect(traceback).to_be_hidden()                        # folded until asked for
        page.get_by_test_id("failure-row").locator("summary").click()
        expect(traceback).to_be_visible()
        expect(traceback).to_contain_text("Traceback (most recent call last)")
        expect(traceback).to_contain_text("ZeroDivisionError: division by zero")
        _shot(page, "failures.png")

        # the node: its charts and servers; suspended and resumed by its buttons
        page.get_by_test_id("nav-cluster").click()
        page.get_by_test_id("node-link").click()
        view = page.get_by_test_id("view-node")
        expect(view).to_be_visible(timeout=WAIT)
        expect(view.get_by_test_id("server-row")).to_have_count(2, timeout=WAIT)
        expect(view.get_by_test_id("chart-cpu").locator("circle.dot")).to_have_count(
            1, timeout=WAIT)                                    # a point per report
        expect(view.get_by_test_id("chart-mem")).to_be_visible()
        nid = unquote(page.url.rsplit("/", 1)[1])
        _shot(page, "node.png")
        status = view.get_by_test_id("node-status")
        view.get_by_test_id("node-suspend").click()
        expect(status).to_have_text("Suspended", timeout=WAIT)
        expect(view.get_by_test_id("node-suspend")).to_be_hidden()
        assert w.api("/api/node/" + nid)["status"] == "Suspended"
        view.get_by_test_id("node-resume").click()
        expect(status).to_have_text("Initialized", timeout=WAIT)
        assert w.api("/api/node/" + nid)["status"] == "Initialized"

        # a server: suspended and resumed by its buttons
        view.get_by_test_id("server-link").first.click()
        server = page.get_by_test_id("view-server")
        expect(server).to_be_visible(timeout=WAIT)
        sid = unquote(page.url.rsplit("/", 1)[1])
        status = server.get_by_test_id("server-status")
        expect(status).to_have_text("Initialized", timeout=WAIT)
        server.get_by_test_id("server-suspend").click()
        expect(status).to_have_text("Suspended", timeout=WAIT)
        assert w.api("/api/server/" + sid)["status"] == "Suspended"
        server.get_by_test_id("server-resume").click()
        expect(status).to_have_text("Initialized", timeout=WAIT)
        assert w.api("/api/server/" + sid)["status"] == "Initialized"

        # three jobs running there (I/O jobs: no one-per-server limit)
        batch = [w.submit(held, i, "batch-%d" % i, where=sid, io=True) for i in range(3)]
        rows = server.get_by_test_id("job-row")
        expect(rows).to_have_count(3, timeout=WAIT)
        expect(server.get_by_test_id("job-args").first).to_have_text("(0, 'batch-0')")
        page.get_by_test_id("nav-cluster").click()
        expect(page.get_by_test_id("total-running")).to_have_text("3", timeout=WAIT)
        _shot(page, "cluster.png")
        page.go_back()                                          # (the hash route)
        expect(server).to_be_visible(timeout=WAIT)
        expect(rows).to_have_count(3, timeout=WAIT)
        _shot(page, "server.png")

        # terminated from the page: two selected, then the last one's button
        for box in server.get_by_test_id("job-select").all()[:2]:
            box.check()
        server.get_by_test_id("terminate-selected").click()
        expect(rows).to_have_count(1, timeout=WAIT)
        expect(server.get_by_test_id("job-args")).to_have_text("(2, 'batch-2')")
        server.get_by_test_id("job-terminate").click()
        expect(rows).to_have_count(0, timeout=WAIT)
        for rt in batch:
            rt.value(20)
            assert not rt.is_alive(), rt
        totals = w.api("/api/cluster")["totals"]
        assert totals["failed"] == 4 and totals["running"] == 0, totals
        assert [f["type"] for f in w.api("/api/failures")] == ["Terminated"] * 3 + [
            "ZeroDivisionError"]

        # restart that server and close the other with the node view's buttons
        page.get_by_test_id("nav-cluster").click()
        page.get_by_test_id("node-link").click()
        expect(view).to_be_visible(timeout=WAIT)
        (other,) = [s["id"] for s in w.api("/api/node/" + nid)["server_list"] if s["id"] != sid]
        _server_row(view, sid).get_by_test_id("server-restart").click()
        expect(_server_row(view, sid).get_by_test_id("server-status")).to_have_text(
            "Closed", timeout=WAIT)
        expect(_server_row(view, sid).get_by_test_id("server-close")).to_be_hidden()
        expect(view.get_by_test_id("server-row")).to_have_count(3, timeout=WAIT)
        _server_row(view, other).get_by_test_id("server-close").click()
        expect(_server_row(view, other).get_by_test_id("server-status")).to_have_text(
            "Closed", timeout=WAIT)
        statuses = view.get_by_test_id("server-status")
        expect(statuses.filter(has_text="Initialized")).to_have_count(1, timeout=WAIT)
        expect(statuses.filter(has_text="Closed")).to_have_count(2)
        assert len(loads) == loaded, "the page was loaded again: %r" % loads[loaded:]


def test_browser_page_without_or_with_a_wrong_token(tmp_path):
    with web_cluster(tmp_path, [compute]) as w:
        wide = w.add_ui(host="")                  # every interface: the token for everything
        wide_base = "http://127.0.0.1:%d" % wide.port
        wide_token = wide.url.partition("token=")[2]
        w.schedule()
        _, (a, _) = w.ready()
        with browser.browser_page(w.base) as page:
            page.set_default_timeout(WAIT)
            # loopback, no token: the data, read-only
            page.goto("/")
            expect(page.get_by_test_id("readonly-note")).to_be_visible(timeout=WAIT)
            expect(page.get_by_test_id("node-row")).to_have_count(1, timeout=WAIT)
            expect(page.get_by_test_id("node-status")).to_have_text("Initialized")
            expect(page.get_by_test_id("node-suspend")).to_be_hidden()
            page.get_by_test_id("node-link").click()
            view = page.get_by_test_id("view-node")
            expect(view.get_by_test_id("server-row")).to_have_count(2, timeout=WAIT)
            for button in ("server-suspend", "server-close", "server-restart"):
                for each in view.get_by_test_id(button).all():
                    expect(each).to_be_hidden()
            # an action without the token (as a script of the page would send it)
            answer = page.request.post(w.base + "/api/server/%s/suspend" % a)
            assert answer.status == 401, answer.status
            # with the token the page acts; its cookie alone still authorizes nothing
            page.goto(w.url)
            expect(page.get_by_test_id("node-suspend")).to_be_visible(timeout=WAIT)
            expect(page.get_by_test_id("readonly-note")).to_be_hidden()
            answer = page.request.post(w.base + "/api/server/%s/suspend" % a)
            assert answer.status == 401, answer.status
            assert w.api("/api/server/" + a)["status"] == "Initialized"
            # a wrong token is refused
            answer = page.goto("/?token=" + "x" * 32)
            assert answer.status == 401, answer.status
            expect(page.get_by_test_id("view-cluster")).to_have_count(0)

            # beyond loopback: nothing without the token, nor with a wrong one
            for url in ("/", "/static/app.js", "/api/cluster", "/metrics"):
                answer = page.goto(wide_base + url)
                assert answer.status == 401, (url, answer.status)
            expect(page.get_by_test_id("view-cluster")).to_have_count(0)
            page.context.add_cookies([{"name": "pycos_token_%d" % wide.port,
                                       "value": "x" * 32, "url": wide_base}])
            assert page.goto(wide_base + "/").status == 401
            assert page.request.get(wide_base + "/api/cluster").status == 401
            # with it: the page, live, and able to act
            assert page.goto(wide_base + "/?token=" + wide_token).status == 200
            assert page.url == wide_base + "/", page.url
            expect(page.get_by_test_id("conn-state")).to_have_text("live", timeout=WAIT)
            expect(page.get_by_test_id("node-row")).to_have_count(1, timeout=WAIT)
            expect(page.get_by_test_id("total-servers")).to_have_text("2")
            expect(page.get_by_test_id("node-suspend")).to_be_visible()
