"""The web UI in a real browser (headless Chromium, driven by Playwright)
on a real cluster: a ``dispycosnode`` with two server processes, this
process its client (livecluster.py).

The page is opened before the client is scheduled and never reloaded: the
node and its servers appear in it live, jobs start and finish, the jobs
per second chart moves; a server and the node are suspended and resumed
with the page's buttons, running jobs are terminated from the page; a page
without the token is read-only and a wrong token is refused.  A
screenshot of each view goes to build/screenshots/ (docs/httpd.md shows
them; copy them to docs/images/ to update the docs).
"""
import os
import sys
import time

import pytest

pytest.importorskip("playwright.sync_api", reason="playwright (the browser extra) is not "
                    "installed")
from playwright.sync_api import expect  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import browser  # noqa: E402
from livecluster import live_cluster  # noqa: E402

if browser.chromium_path() is None:
    pytest.skip("%s is not installed (scripts/setup-system installs Debian's chromium)"
                % browser.CHROMIUM, allow_module_level=True)

pytestmark = pytest.mark.timeout(150)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHOTS = os.path.join(ROOT, "build", "screenshots")
WAIT = 20000                                   # ms: what the page may take to show a change


def compute(x, delay, task=None):
    yield task.sleep(delay)
    return x * x


def fails(x, task=None):
    yield task.sleep(0)
    return x / 0


def waits(x, label, task=None):
    yield task.sleep(3600)


def _changes(locator, before, what, timeout=20):
    """Wait until ``locator``'s markup differs from ``before``."""
    deadline = time.monotonic() + timeout
    while locator.inner_html() == before:
        assert time.monotonic() < deadline, what + " did not change"
        time.sleep(0.1)                          # (polls the page's DOM)


def test_the_page_follows_and_steers_a_real_cluster(tmp_path):
    with live_cluster(tmp_path, [compute, fails, waits]) as live, \
            browser.browser_page(live.base, screenshot_dir=SHOTS) as page:
        documents = []
        page.on("request", lambda r: documents.append(r.url)
                if r.resource_type == "document" else None)
        page.goto(live.url)                      # the printed URL: cookie, then "/"
        expect(page.get_by_test_id("view-cluster")).to_be_visible(timeout=WAIT)
        expect(page.get_by_test_id("conn-state")).to_have_text("live", timeout=WAIT)
        expect(page.get_by_test_id("readonly-note")).to_be_hidden()
        expect(page.get_by_test_id("node-row")).to_have_count(0)
        loaded = len(documents)

        # the node and its servers arrive in the open page
        live.schedule()
        expect(page.get_by_test_id("node-row")).to_have_count(1, timeout=WAIT)
        expect(page.get_by_test_id("total-servers")).to_have_text("2", timeout=WAIT)
        expect(page.get_by_test_id("node-status")).to_have_text("Initialized", timeout=WAIT)

        # jobs start and finish; the rate chart moves
        chart = page.get_by_test_id("chart-rate")
        before = chart.inner_html()
        jobs = [live.submit(compute, i, 1.5) for i in range(2)]
        expect(page.get_by_test_id("total-running")).to_have_text("2", timeout=WAIT)
        assert [rt.value(20) for rt in jobs] == [0, 1]
        expect(page.get_by_test_id("total-done")).to_have_text("2", timeout=WAIT)
        expect(page.get_by_test_id("total-running")).to_have_text("0", timeout=WAIT)
        _changes(chart, before, "the jobs per second chart")
        live.submit(fails, 7).value(20)
        expect(page.get_by_test_id("total-failed")).to_have_text("1", timeout=WAIT)

        # the failures view: the exception and its traceback
        page.get_by_test_id("nav-failures").click()
        expect(page.get_by_test_id("view-failures")).to_be_visible(timeout=WAIT)
        expect(page.get_by_test_id("failure-row")).to_have_count(1, timeout=WAIT)
        expect(page.get_by_test_id("failure-type")).to_have_text("ZeroDivisionError")
        expect(page.get_by_test_id("failure-traceback")).to_contain_text("Traceback")
        expect(page.get_by_test_id("failure-traceback")).to_contain_text("ZeroDivisionError")
        page.get_by_text("traceback", exact=True).click()
        expect(page.get_by_test_id("failure-traceback")).to_be_visible()
        page.screenshot(path=os.path.join(SHOTS, "failures.png"), full_page=True)

        # the node view: its charts and servers; suspend and resume the node
        page.get_by_test_id("nav-cluster").click()
        page.get_by_test_id("node-link").click()
        expect(page.get_by_test_id("view-node")).to_be_visible(timeout=WAIT)
        expect(page.get_by_test_id("server-row")).to_have_count(2, timeout=WAIT)
        expect(page.get_by_test_id("chart-cpu")).to_be_visible()
        expect(page.get_by_test_id("chart-mem")).to_be_visible()
        page.screenshot(path=os.path.join(SHOTS, "node.png"), full_page=True)
        view = page.get_by_test_id("view-node")
        view.get_by_test_id("node-suspend").first.click()
        expect(view.get_by_test_id("node-status").first).to_have_text("Suspended",
                                                                       timeout=WAIT)
        view.get_by_test_id("node-resume").first.click()
        expect(view.get_by_test_id("node-status").first).to_have_text("Initialized",
                                                                       timeout=WAIT)

        # a server: suspend and resume it with its buttons
        view.get_by_test_id("server-link").first.click()
        server = page.get_by_test_id("view-server")
        expect(server).to_be_visible(timeout=WAIT)
        sid = page.url.rsplit("/", 1)[1]
        server.get_by_test_id("server-suspend").click()
        expect(server.get_by_test_id("server-status")).to_have_text("Suspended", timeout=WAIT)
        assert live.api("/api/server/" + sid)["status"] == "Suspended"
        server.get_by_test_id("server-resume").click()
        expect(server.get_by_test_id("server-status")).to_have_text("Initialized",
                                                                    timeout=WAIT)

        # running jobs on that server, with their arguments, terminated from the page
        from urllib.parse import unquote
        sid = unquote(sid)
        loc = live.server.cluster.servers[sid].loc
        waiting = [live.call(live.client.io_rtask_at, loc, waits, i, "batch-%d" % i)
                   for i in range(3)]
        expect(server.get_by_test_id("job-row")).to_have_count(3, timeout=WAIT)
        expect(server.get_by_test_id("job-args").first).to_contain_text("'batch-")
        page.get_by_test_id("nav-cluster").click()
        expect(page.get_by_test_id("total-running")).to_have_text("3", timeout=WAIT)
        page.screenshot(path=os.path.join(SHOTS, "cluster.png"), full_page=True)
        page.go_back()
        expect(server).to_be_visible(timeout=WAIT)
        expect(server.get_by_test_id("job-row")).to_have_count(3, timeout=WAIT)
        page.screenshot(path=os.path.join(SHOTS, "server.png"), full_page=True)
        for box in server.get_by_test_id("job-select").all()[:2]:
            box.check()
        server.get_by_test_id("terminate-selected").click()
        expect(server.get_by_test_id("job-row")).to_have_count(1, timeout=WAIT)
        server.get_by_test_id("job-terminate").click()
        expect(server.get_by_test_id("job-row")).to_have_count(0, timeout=WAIT)
        for rt in waiting:
            rt.value(20)
            assert not rt.is_alive()
        totals = live.api("/api/cluster")["totals"]
        assert totals["failed"] == 4 and totals["running"] == 0, totals
        assert len(documents) == loaded, "the page was reloaded: %r" % documents

        # without the token: read-only; with a wrong one: refused
        other = page.context.browser.new_context(base_url=live.base)
        try:
            p2 = other.new_page()
            p2.goto("/")
            expect(p2.get_by_test_id("readonly-note")).to_be_visible(timeout=WAIT)
            expect(p2.get_by_test_id("node-row")).to_have_count(1, timeout=WAIT)
            expect(p2.get_by_test_id("node-suspend")).to_be_hidden()
            answer = p2.goto("/?token=" + "x" * 32)
            assert answer.status == 401, answer.status
            expect(p2.get_by_test_id("view-cluster")).to_have_count(0)
        finally:
            other.close()
