"""pycos.dispy.progress: the live progress line of a dispycos client and the
line of a node daemon.

Status sequences are made of the real records (DispycosStatus,
DispycosTaskInfo, DispycosNodeInfo, MonitorStatus); time is a fake clock and
the terminal an in-memory stream whose isatty() the test decides.  The
status-task path runs on a real (plain, threaded) pycos scheduler.
"""
import io
import logging
import threading

import pytest
from hypothesis import given, settings, strategies as hs

from pycos.core.scheduler import Pycos
from pycos.core.support import Location, MonitorStatus
from pycos.core.task import Task
from pycos.dispy import progress as progress_mod
from pycos.dispy.progress import LiveLine, LiveLogHandler, Progress, node_line
from pycos.dispy.status import DispycosNodeInfo, DispycosStatus, DispycosTaskInfo, Status
from pycos.net.refs import PeerOffline

pytestmark = pytest.mark.timeout(60)

CLEAR = "\x1b[K"


class Clock(object):
    def __init__(self, t=100.0):
        self.t = t

    def __call__(self):
        return self.t

    def advance(self, dt):
        self.t += dt


class Term(io.StringIO):
    """An in-memory stream that says it is (or is not) a terminal."""

    def __init__(self, tty=True):
        io.StringIO.__init__(self)
        self.tty = tty

    def isatty(self):
        return self.tty


class Job(object):
    """Stands in for a job's remote task: only an identity key here."""

    def __init__(self, n):
        self.n = n

    def __repr__(self):
        return "job%d" % self.n


def started(job):
    return DispycosStatus(Status.TaskStarted, DispycosTaskInfo(job, (job.n,), {}))


def ok(job, value=0):
    return MonitorStatus(job, StopIteration, value)


def raised(job, exc=ValueError):
    return MonitorStatus(job, exc, "Traceback ...\n%s: boom\n" % exc.__name__)


def lost(job):
    # as netpycos's RPS monitor ends the jobs of a server that went away
    return MonitorStatus(job, PeerOffline, "peer 127.0.0.1:9 is offline")


def node(name="n1", addr="10.0.0.1", cpus=2):
    return DispycosNodeInfo(name, addr, cpus, "Linux-x86_64", None)


def server(port):
    return Location("127.0.0.1", port)


def make(tty=True, **kw):
    clock = kw.pop("clock", None) or Clock()
    stream = Term(tty)
    kw.setdefault("width", 200)
    return Progress(stream=stream, clock=clock, **kw), stream, clock


# ---- counts ----------------------------------------------------------------------------

def test_counts_done_running_failed():
    p, _, _ = make()
    jobs = [Job(i) for i in range(5)]
    for j in jobs:
        p.update(started(j))
    assert (p.started, p.running, p.done, p.failed) == (5, 5, 0, 0)
    p.update(ok(jobs[0], 42))
    p.update(raised(jobs[1]))
    p.update(lost(jobs[2]))
    p.update(raised(jobs[3], KeyboardInterrupt))    # a node stopped by signal
    assert (p.started, p.running, p.done, p.failed) == (5, 1, 1, 3)
    assert p.ended == 4
    assert p.update(ok(jobs[4])) is None
    assert (p.running, p.done, p.failed) == (0, 2, 3)


def test_a_job_that_ends_normally_with_any_value_is_done():
    p, _, _ = make()
    for i, value in enumerate([None, MonitorStatus(None, ValueError), ValueError("x")]):
        j = Job(i)
        p.update(started(j))
        p.update(ok(j, value))            # StopIteration: done, whatever it returned
    assert (p.done, p.failed) == (3, 0)


def test_an_end_before_its_start_is_counted_once():
    p, _, _ = make()
    j = Job(1)
    p.update(raised(j))
    assert (p.started, p.running, p.failed) == (1, 0, 1)
    p.update(started(j))
    assert (p.started, p.running, p.failed) == (1, 0, 1)
    p.update(started(j))                  # a repeat is not a new job either
    assert (p.started, p.running) == (2, 1)  # (it is: the first start was consumed)


def test_a_repeated_start_is_one_job():
    p, _, _ = make()
    j = Job(1)
    p.update(started(j))
    p.update(started(j))
    assert (p.started, p.running) == (1, 1)


def test_nodes_and_servers_up():
    p, _, _ = make()
    n1, n2 = node("n1", "10.0.0.1"), node("n2", "10.0.0.2")
    p.update(DispycosStatus(Status.NodeDiscovered, n1))
    assert p.nodes == 0                   # discovered is not yet in use
    p.update(DispycosStatus(Status.NodeInitialized, n1))
    p.update(DispycosStatus(Status.NodeInitialized, n2))
    for port in (1, 2, 3):
        p.update(DispycosStatus(Status.ServerDiscovered, server(port)))
    assert (p.nodes, p.servers) == (2, 0)
    for port in (1, 2, 3):
        p.update(DispycosStatus(Status.ServerInitialized, server(port)))
    assert p.servers == 3
    p.update(DispycosStatus(Status.ServerDisconnected, server(2)))
    p.update(DispycosStatus(Status.ServerClosed, server(2)))     # once is enough
    assert p.servers == 2
    p.update(DispycosStatus(Status.NodeDisconnected, node("n1", "10.0.0.1")))  # by value
    assert p.nodes == 1
    # a node that was only discovered goes away: the count does not go below
    p.update(DispycosStatus(Status.NodeDisconnected, node("n3", "10.0.0.3")))
    p.update(DispycosStatus(Status.NodeClosed, n2))
    p.update(DispycosStatus(Status.NodeClosed, n2))
    assert p.nodes == 0
    assert not p.client_closed
    p.update(DispycosStatus(Status.ClientClosed, 12345))
    assert p.client_closed


def test_two_nodes_on_one_host_count_twice():
    p, _, _ = make()
    p.update(DispycosStatus(Status.NodeInitialized, node()))
    p.update(DispycosStatus(Status.NodeInitialized, node()))
    assert p.nodes == 2
    p.update(DispycosStatus(Status.NodeClosed, node()))
    assert p.nodes == 1


def test_other_messages_are_ignored():
    p, _, _ = make()
    for msg in ("hello", None, 3, DispycosStatus(Status.NodeSuspended, node()),
                DispycosStatus(99, None)):
        p.update(msg)
    assert (p.started, p.running, p.done, p.failed, p.nodes, p.servers) == (0, 0, 0, 0, 0, 0)


EVENTS = hs.lists(hs.tuples(hs.sampled_from(["start", "ok", "fail", "lost",
                                             "node+", "node-", "srv+", "srv-"]),
                            hs.integers(0, 6)), max_size=60)


@settings(max_examples=150, deadline=None)
@given(EVENTS)
def test_counts_always_add_up(events):
    p, stream, clock = make(tty=False)
    jobs = [Job(i) for i in range(7)]
    running, ended_early = set(), set()
    nodes, servers = [0] * 7, set()
    for kind, i in events:
        clock.advance(0.1)
        if kind == "start":
            p.update(started(jobs[i]))
            if i in ended_early:
                ended_early.discard(i)
            else:
                running.add(i)
        elif kind in ("ok", "fail", "lost"):
            p.update({"ok": ok, "fail": raised, "lost": lost}[kind](jobs[i]))
            if i in running:
                running.discard(i)
            else:
                ended_early.add(i)
        elif kind == "node+":
            p.update(DispycosStatus(Status.NodeInitialized, node("n%d" % i)))
            nodes[i] += 1
        elif kind == "node-":
            p.update(DispycosStatus(Status.NodeDisconnected, node("n%d" % i)))
            nodes[i] = max(nodes[i] - 1, 0)
        elif kind == "srv+":
            p.update(DispycosStatus(Status.ServerInitialized, server(i + 1)))
            servers.add(i)
        else:
            p.update(DispycosStatus(Status.ServerClosed, server(i + 1)))
            servers.discard(i)
        assert p.started == p.running + p.done + p.failed
        assert p.running == len(running)
        assert p.nodes == sum(nodes) and p.servers == len(servers)
    assert p.done == sum(1 for k, _ in events if k == "ok")
    assert p.failed == sum(1 for k, _ in events if k in ("fail", "lost"))
    p.close()
    assert stream.getvalue() == ""        # not a terminal: never a byte


# ---- rate and ETA ----------------------------------------------------------------------

def test_rate_over_the_sliding_window():
    p, _, clock = make(window=10.0)
    assert p.rate is None                 # no job yet
    jobs = [Job(i) for i in range(40)]
    for j in jobs:
        p.update(started(j))
    assert p.rate is None                 # no time has passed
    clock.advance(2.0)
    for j in jobs[:10]:
        p.update(ok(j))
    assert p.rate == pytest.approx(10 / 2.0)   # shorter than the window: since the start
    clock.advance(8.0)
    for j in jobs[10:30]:
        p.update(ok(j))
    assert p.rate == pytest.approx(30 / 10.0)
    clock.advance(1.0)                    # the first ten (at +2 s) are now 9 s old
    assert p.rate == pytest.approx(30 / 10.0)
    clock.advance(1.5)                    # ... and now older than the window
    assert p.rate == pytest.approx(20 / 10.0)
    clock.advance(10.0)                   # nothing ended in the last 10 s
    assert p.rate == 0.0


def test_failed_jobs_count_in_the_rate():
    p, _, clock = make(window=5.0)
    jobs = [Job(i) for i in range(4)]
    for j in jobs:
        p.update(started(j))
    clock.advance(1.0)
    p.update(ok(jobs[0]))
    p.update(raised(jobs[1]))
    p.update(lost(jobs[2]))
    assert p.rate == pytest.approx(3.0)


def test_many_ends_keep_a_small_window():
    p, _, clock = make(window=10.0)
    for i in range(5000):
        j = Job(i)
        p.update(started(j))
        clock.advance(0.01)
        p.update(ok(j))
    assert len(p._ends) <= 60             # ends are kept in buckets, not one by one
    assert p.rate == pytest.approx(100.0, rel=0.03)


def test_eta():
    p, _, clock = make()
    jobs = [Job(i) for i in range(10)]
    for j in jobs:
        p.update(started(j))
    assert p.eta is None                  # no total
    p.total = 100
    assert p.eta is None                  # no rate yet
    clock.advance(2.0)
    for j in jobs:
        p.update(ok(j))
    assert p.rate == pytest.approx(5.0)
    assert p.eta == pytest.approx(90 / 5.0)
    assert "ETA 18s" in p.line()
    p.total = 10                          # every job ended
    assert p.eta == 0.0
    assert "ETA 0s" in p.line()
    p.total = None
    assert p.eta is None and "ETA" not in p.line()


def test_total_is_checked():
    for bad in (-1, 1.5, "10", True):
        with pytest.raises(ValueError):
            Progress(total=bad)
        p = Progress()
        with pytest.raises(ValueError):
            p.total = bad
    assert Progress(total=0).total == 0


def test_durations():
    d = progress_mod._duration
    assert [d(0), d(17.4), d(59.6), d(185), d(3600), d(7625), d(1e6)] == \
        ["0s", "17s", "1m00s", "3m05s", "1h00m", "2h07m", "277h46m"]


# ---- the line --------------------------------------------------------------------------

def test_the_line():
    p, _, clock = make(total=10000)
    p.update(DispycosStatus(Status.NodeInitialized, node("n1")))
    p.update(DispycosStatus(Status.NodeInitialized, node("n2")))
    for port in range(1, 5):
        p.update(DispycosStatus(Status.ServerInitialized, server(port)))
    jobs = [Job(i) for i in range(20)]
    for j in jobs:
        p.update(started(j))
    clock.advance(4.0)
    for j in jobs[:10]:
        p.update(ok(j))
    p.update(raised(jobs[10]))
    p.update(lost(jobs[11]))
    assert p.line() == ("dispycos: 10/10000 done, 8 running, 2 failed | 2 nodes, 4 servers"
                        " | 3.0 jobs/s | ETA 55m29s")
    p.total = None
    p.label = "run"
    assert p.line() == "run: 10 done, 8 running, 2 failed | 2 nodes, 4 servers | 3.0 jobs/s"
    fresh, _, _ = make()
    assert fresh.line() == "dispycos: 0 done, 0 running, 0 failed | 0 nodes, 0 servers | -- jobs/s"
    fresh.total = 5
    assert fresh.line().endswith("| ETA ?")
    fresh.update(DispycosStatus(Status.NodeInitialized, node()))
    fresh.update(DispycosStatus(Status.ServerInitialized, server(1)))
    assert "| 1 node, 1 server |" in fresh.line()


def test_the_line_fits_the_width_dropping_the_least_useful_parts_first():
    p, _, clock = make(total=10000)
    p.update(DispycosStatus(Status.NodeInitialized, node()))
    jobs = [Job(i) for i in range(3)]
    for j in jobs:
        p.update(started(j))
    clock.advance(1.0)
    p.update(ok(jobs[0]))
    full = p.line(width=200)
    assert full == ("dispycos: 1/10000 done, 2 running, 0 failed | 1 node, 0 servers"
                    " | 1.0 jobs/s | ETA 2h46m")
    assert p.line(width=len(full) + 1) == full
    assert p.line(width=len(full)) == ("dispycos: 1/10000 done, 2 running, 0 failed"
                                       " | 1.0 jobs/s | ETA 2h46m")
    assert p.line(width=60) == "dispycos: 1/10000 done, 2 running, 0 failed | ETA 2h46m"
    assert p.line(width=50) == "dispycos: 1/10000 done, 2 running, 0 failed"
    assert p.line(width=21) == "dispycos: 1/10000 do"
    assert p.line(width=2) == "d"


@settings(max_examples=100, deadline=None)
@given(hs.integers(2, 300), hs.integers(0, 10 ** 9), hs.one_of(hs.none(), hs.integers(0, 10 ** 9)))
def test_the_line_never_exceeds_the_width(width, done, total):
    p, _, clock = make(width=width)
    p.total = total
    for i in range(3):
        p.update(started(Job(i)))
    clock.advance(0.5)
    p.update(raised(Job(0)))
    p.done = done
    assert len(p.line()) <= width - 1
    assert len(p.summary()) >= 1


def test_the_width_comes_from_the_terminal_or_is_80():
    assert LiveLine(Term(), width=None).width() == 80      # StringIO has no fileno
    assert LiveLine(Term(), width=33).width() == 33

    class FakeTty(Term):
        def fileno(self):
            raise OSError("not a real terminal")
    assert LiveLine(FakeTty()).width() == 80
    with pytest.raises(ValueError):
        LiveLine(Term(), width=1)
    with pytest.raises(ValueError):
        LiveLine(Term(), interval=-1)


# ---- rendering -------------------------------------------------------------------------

def frames(stream):
    """The lines written, each checked to be an in-place rewrite."""
    out = stream.getvalue()
    body = out[:-1] if out.endswith("\n") else out
    assert "\n" not in body
    chunks = body.split("\r")
    assert chunks[0] == ""
    for c in chunks[1:]:
        assert c.endswith(CLEAR), repr(c)
    return [c[:-len(CLEAR)] for c in chunks[1:]]


def test_rewrites_in_place_at_most_every_interval():
    p, stream, clock = make(interval=0.5)
    jobs = [Job(i) for i in range(10)]
    p.update(started(jobs[0]))                       # the first message draws at once
    assert frames(stream) == ["dispycos: 0 done, 1 running, 0 failed | 0 nodes, 0 servers"
                              " | -- jobs/s"]
    for j in jobs[1:]:                               # at +0.125 s ... +1.125 s
        clock.advance(0.125)
        p.update(started(j))
    assert len(frames(stream)) == 3                  # drawn again at +0.5 s and +1.0 s
    assert frames(stream)[-1].startswith("dispycos: 0 done, 9 running, 0 failed")
    clock.advance(0.25)                              # +1.375 s: too soon
    p.update(ok(jobs[0]))
    assert len(frames(stream)) == 3
    clock.advance(0.125)                             # +1.5 s
    p.update(ok(jobs[1]))
    assert len(frames(stream)) == 4
    assert frames(stream)[-1].startswith("dispycos: 2 done, 8 running, 0 failed")
    assert not stream.getvalue().endswith("\n")


def test_throttle_counts_frames_exactly():
    p, stream, clock = make(interval=0.5)
    for i in range(80):                              # five seconds of messages
        p.update(started(Job(i)))
        clock.advance(0.0625)
    # drawn at +0, +0.5, ... +4.5 s: ten frames
    assert len(frames(stream)) == 10
    p2, stream2, clock2 = make(interval=0)
    for i in range(7):
        p2.update(started(Job(i)))
    assert len(frames(stream2)) == 7


def test_nothing_is_written_when_not_a_terminal():
    p, stream, clock = make(tty=False, total=3)
    jobs = [Job(i) for i in range(3)]
    for j in jobs:
        p.update(started(j))
        clock.advance(1.0)
        p.update(ok(j))
    p.close()
    assert stream.getvalue() == ""
    assert p.done == 3                    # it still counts
    assert not p.live.active


def test_a_stream_without_isatty_is_not_a_terminal():
    stream = io.StringIO()
    stream.isatty = None                  # not callable
    assert not LiveLine(stream).active
    assert not LiveLine(object()).active


def test_force_writes_plain_lines_to_a_non_terminal():
    p, stream, clock = make(tty=False, force=True, interval=0.5, total=2)
    jobs = [Job(1), Job(2)]
    p.update(started(jobs[0]))
    clock.advance(0.25)
    p.update(started(jobs[1]))                       # too soon: no line
    clock.advance(0.25)
    p.update(ok(jobs[0]))
    clock.advance(1.0)
    p.update(ok(jobs[1]))
    p.close()
    out = stream.getvalue()
    assert "\r" not in out and "\x1b" not in out   # a log gets no terminal codes
    lines = out.split("\n")
    assert lines[-1] == ""                           # every line ended
    assert [line.split(" | ")[0] for line in lines[:-1]] == [
        "dispycos: 0/2 done, 1 running, 0 failed",
        "dispycos: 1/2 done, 1 running, 0 failed",
        "dispycos: 2/2 done, 0 running, 0 failed",
        "dispycos: 2/2 done, 0 running, 0 failed"]   # the summary
    assert lines[-2] == "dispycos: 2/2 done, 0 running, 0 failed | 2s, 1.3 jobs/s"


def test_forced_plain_lines_are_not_cut_to_the_width():
    line = LiveLine(Term(tty=False), force=True, width=10)
    line.show("a line longer than ten columns")
    line.close()
    assert line.stream.getvalue() == "a line longer than ten columns\n"
    p, stream, _ = make(tty=False, force=True, width=20, total=5)
    p.update(started(Job(1)))
    assert stream.getvalue() == ("dispycos: 0/5 done, 1 running, 0 failed | 0 nodes, 0 servers"
                                 " | -- jobs/s | ETA ?\n")


def test_say_prints_above_the_live_line():
    stream = Term()
    line = LiveLine(stream, width=40)
    line.say("before anything")                      # no live line yet: a plain line
    line.show("live 1")
    line.say("a message")
    line.show("live 2")
    line.close()
    line.say("after it")
    assert stream.getvalue() == (
        "before anything\n"
        "\rlive 1" + CLEAR +
        "\ra message" + CLEAR + "\n\rlive 1" + CLEAR +   # cleared, printed, drawn again
        "\rlive 2" + CLEAR + "\n"
        "after it\n")


def test_say_draws_the_progress_line_afresh():
    p, stream, clock = make(interval=10)
    job = Job(1)
    p.update(started(job))
    p.update(ok(job))                                # not drawn: too soon
    assert frames(stream)[-1].startswith("dispycos: 0 done, 1 running")
    clock.advance(1.0)
    p.say("job 1 ended")
    before, after = stream.getvalue().split("\n")
    assert before.endswith("\rjob 1 ended" + CLEAR)
    assert after.startswith("\rdispycos: 1 done, 0 running") and after.count("\r") == 1
    p.update(started(Job(2)))                        # the interval starts again at say()
    assert stream.getvalue().split("\n")[1] == after


def test_say_always_prints():
    for tty, force in ((False, False), (False, True)):
        p, stream, _ = make(tty=tty, force=force)
        p.update(started(Job(1)))
        p.say("job 1 failed: ValueError")
        assert "job 1 failed: ValueError\n" in stream.getvalue()
        assert "\r" not in stream.getvalue()


def test_log_records_go_above_the_line():
    p, stream, clock = make(total=2)
    log = logging.getLogger("test_progress.records")
    log.propagate = False
    handler = p.log_handler()
    log.addHandler(handler)
    try:
        p.update(started(Job(1)))
        log.warning("node %s lost", "n1")
        log.info("below the logger's level: not printed")
    finally:
        log.removeHandler(handler)
    out = stream.getvalue()
    before, after = out.split("\n")
    assert before.startswith("\rdispycos: 0/2 done, 1 running")
    record = before.split("\r")[2]
    assert record.endswith(" test_progress.records - node n1 lost" + CLEAR), repr(record)
    assert after.startswith("\rdispycos: 0/2 done, 1 running")

    plain = Term(tty=False)
    h = LiveLogHandler(LiveLine(plain))
    h.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    h.handle(logging.LogRecord("x", logging.ERROR, __file__, 1, "disk full", (), None))
    assert plain.getvalue() == "ERROR disk full\n"     # printed, even on a non-terminal


def test_liveline_from_threads_keeps_writes_whole():
    class Slow(Term):
        def write(self, data):                       # a write that can be interrupted
            for ch in data:
                Term.write(self, ch)
    stream = Slow()
    line = LiveLine(stream, interval=0, width=200)

    def run(n):
        for i in range(200):
            line.show("thread %d frame %d" % (n, i))
            if i % 50 == 0:
                line.say("thread %d says %d" % (n, i))
    threads = [threading.Thread(target=run, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    line.close()
    for chunk in stream.getvalue().split("\r")[1:]:
        text = chunk.replace(CLEAR, "").rstrip("\n")
        assert text.startswith("thread ") and len(text.split()) == 4, repr(chunk)


def test_close_ends_with_a_summary_and_a_newline():
    p, stream, clock = make(total=4)
    jobs = [Job(i) for i in range(4)]
    for j in jobs:
        p.update(started(j))
    clock.advance(2.0)
    for j in jobs[:3]:
        p.update(ok(j))
    p.update(lost(jobs[3]))
    clock.advance(30.0)                   # closing late does not change the rate
    p.close()
    out = stream.getvalue()
    assert out.endswith(CLEAR + "\n") and out.count("\n") == 1
    assert frames(stream)[-1] == "dispycos: 3/4 done, 0 running, 1 failed | 2s, 2.0 jobs/s"
    p.close()                             # once only
    p.update(started(Job(9)))             # and nothing after it
    assert stream.getvalue() == out


def test_close_without_jobs():
    p, stream, _ = make()
    p.close()
    assert frames(stream) == ["dispycos: 0 done, 0 running, 0 failed"]
    assert stream.getvalue().endswith("\n")


def test_close_fits_the_summary_to_the_width():
    p, stream, _ = make(width=20)
    p.close()
    assert frames(stream) == ["dispycos: 0 done, 0"]


def test_stream_errors_do_not_escape():
    class Broken(Term):
        def write(self, data):
            raise OSError("EPIPE")
    p = Progress(stream=Broken(), clock=Clock())
    p.update(started(Job(1)))
    p.close()

    closed = Term()
    closed.close()
    line = LiveLine(closed, force=True)
    line.show("x")
    line.close("y")


def test_liveline_on_its_own():
    clock = Clock()
    stream = Term()
    line = LiveLine(stream, interval=1.0, clock=clock, width=10)
    calls = []

    def render():
        calls.append(1)
        return "abcdefghijklmnop"
    assert line.due() and line.tick(render)
    assert not line.due() and not line.tick(render)
    assert len(calls) == 1                # not asked for text it will not show
    clock.advance(1.0)
    assert line.tick(render)
    line.close()
    assert stream.getvalue() == ("\rabcdefghi" + CLEAR) * 2 + "\n"
    assert not line.due()

    quiet = Term()
    unused = LiveLine(quiet)
    unused.close()                        # nothing shown: no newline either
    assert quiet.getvalue() == ""


def test_liveline_defaults_to_stderr(monkeypatch):
    fake = Term(tty=False)
    monkeypatch.setattr("sys.stderr", fake)
    line = LiveLine()
    assert line.stream is fake and not line.active and line.interval == 0.5
    p = Progress()
    assert p.live.stream is fake and p.live.interval == 0.5


# ---- the node line ---------------------------------------------------------------------

def test_node_line():
    assert node_line("n1", [(1, "idle", 0), (0, "busy", 3)], client="abc") == \
        "node n1: client abc | 2 servers: 1 busy, 1 idle, 3 jobs | 0 busy(3) 1 idle(0)"
    assert node_line("n1", [(0, "starting", None)]) == \
        "node n1: no client | 1 server: 1 starting | 0 starting"
    assert node_line("host.example", []) == "node host.example: no client | 0 servers"
    # busy, idle, starting first; others as they come
    assert node_line("n", [(3, "closing", 1), (2, "starting", None), (1, "idle", 0),
                           (0, "busy", 1)], client="c") == \
        ("node n: client c | 4 servers: 1 busy, 1 idle, 1 starting, 1 closing, 2 jobs"
         " | 0 busy(1) 1 idle(0) 2 starting 3 closing(1)")
    assert node_line("n", [(0, "busy", 1)], client="c").endswith("1 busy, 1 job | 0 busy(1)")
    text = node_line("n1", [(i, "busy", i) for i in range(40)], client="c")
    line = LiveLine(Term(), width=40)
    line.show(text)
    assert len(frames(line.stream)[0]) == 39


# ---- as the client's status task -------------------------------------------------------

@pytest.fixture
def sched():
    """A fresh plain pycos scheduler (not netpycos's, even when another test
    imported it); after the test: no task left alive, no thread left."""
    old = Pycos.existing()
    if old is not None:
        old.terminate()
    threads = set(threading.enumerate())
    saved = Pycos._networked
    Pycos._networked = None
    try:
        s = Pycos()
    finally:
        Pycos._networked = saved
    yield s
    left = s.statistics()["non_daemon"]
    s.terminate()
    assert left == 0, "%d task(s) left running" % left
    extra = [t for t in threading.enumerate() if t not in threads and t.is_alive()]
    assert not extra, extra


def _collect(task=None):
    got = []
    while True:
        msg = yield task.receive()
        got.append(msg)
        if isinstance(msg, DispycosStatus) and msg.status == Status.ClientClosed:
            return got


def test_task_forwards_every_message_unchanged_and_in_order(sched):
    p, stream, clock = make(total=3, interval=0)
    fwd = Task(_collect)
    pt = p.task(forward=fwd)
    jobs = [Job(i) for i in range(3)]
    msgs = [DispycosStatus(Status.NodeInitialized, node()),
            DispycosStatus(Status.ServerInitialized, server(1))]
    for j in jobs:
        msgs.append(started(j))
    msgs += [ok(jobs[0]), "not a status", raised(jobs[1]), lost(jobs[2]),
             DispycosStatus(Status.ServerClosed, server(1)),
             DispycosStatus(Status.NodeClosed, node()),
             DispycosStatus(Status.ClientClosed, 1)]
    for m in msgs:
        clock.advance(0.25)
        assert pt.send(m) == 0
    got = fwd.value(timeout=10)
    assert got is not None, "the forward task did not end"
    assert len(got) == len(msgs) and all(a is b for a, b in zip(got, msgs))
    assert pt.value(timeout=10) is None
    assert not pt.is_alive() and pt.send("late") == -1
    assert (p.started, p.running, p.done, p.failed, p.nodes, p.servers) == (3, 0, 1, 2, 0, 0)
    assert stream.getvalue().endswith("\n")
    assert frames(stream)[-1].startswith("dispycos: 1/3 done, 0 running, 2 failed | ")
    assert p.live.closed


def test_task_without_forward_ends_after_client_closed(sched):
    p, stream, _ = make(tty=False)
    pt = p.task()
    pt.send(started(Job(1)))
    pt.send(DispycosStatus(Status.ClientClosed, 1))
    assert pt.value(timeout=10) is None
    assert not pt.is_alive()
    assert p.started == 1 and p.client_closed and p.live.closed
    assert stream.getvalue() == ""


def test_task_forward_must_be_a_task():
    with pytest.raises(TypeError):
        Progress().task(forward="my status task")


def _job(fail, task=None):
    yield task.receive()
    if fail:
        raise ValueError("job failed on purpose")
    return "result"


def _driver(pt, fails, task=None):
    """Runs real tasks as jobs with the progress task as their monitor,
    reporting them as the dispycos scheduler does: TaskStarted, then (from
    the monitor) their MonitorStatus."""
    for fail in fails:
        job = Task(_job, fail)
        assert pt.monitor(job) == 0
        pt.send(DispycosStatus(Status.TaskStarted, DispycosTaskInfo(job, (fail,), {})))
        job.send("go")
        yield job.finish()
    pt.send(DispycosStatus(Status.ClientClosed, 0))


def test_task_with_real_jobs_ending_normally_and_by_exception(sched):
    p, stream, _ = make(tty=False, total=4)
    fwd = Task(_collect)
    pt = p.task(forward=fwd)
    fails = [False, True, False, True]
    Task(_driver, pt, fails).value(timeout=10)
    got = fwd.value(timeout=10)
    assert got is not None and pt.value(timeout=10) is None
    kinds = [(m.status if isinstance(m, DispycosStatus) else m.type) for m in got]
    assert kinds == [Status.TaskStarted, StopIteration, Status.TaskStarted, ValueError,
                     Status.TaskStarted, StopIteration, Status.TaskStarted, ValueError,
                     Status.ClientClosed]
    assert (p.started, p.running, p.done, p.failed) == (4, 0, 2, 2)
    assert p.eta == 0.0
