"""Beyond the original: ``job_retries`` (a job lost with its server runs
again elsewhere, and is reported once, as the remote task the client has)
and ``job_timeout`` (a job running longer gets JobTimeout).

Loopback, real node and server processes (the ``cluster`` fixture)."""
import os
import signal
import sys

import pytest

import pycos
import pycos.netpycos as netpycos
from pycos.dispycos import Client, DispycosStatus, JobTimeout, Scheduler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clusterutil import _statuses  # noqa: E402

pytestmark = pytest.mark.timeout(90)


def nap(seconds, task=None):
    yield task.sleep(seconds)
    return seconds


def patient(seconds, task=None):
    """Catches JobTimeout and returns what it has done."""
    try:
        yield task.sleep(seconds)
    except JobTimeout:
        return "stopped in time"
    return "slept"


def report_then_work(boss, x, task=None):
    """Tells ``boss`` which process runs it and waits for its go."""
    import os
    boss.send((task, os.getpid()))
    msg = yield task.receive(timeout=60)
    if msg != "go":
        raise RuntimeError("no go: %r" % (msg,))
    return x * x


def _kill_each(order, runs, task=None):
    """Receives (job, pid) from each run; ``order`` says per run whether to
    kill its server (True) or let it go on."""
    for kill in order:
        job, pid = yield task.receive(timeout=60)
        runs.append(pid)
        if kill:
            os.kill(pid, signal.SIGKILL)
        else:
            job.send("go")


def _ends(got):
    started = [m.info.task for m in got
               if isinstance(m, DispycosStatus) and m.status == Scheduler.TaskStarted]
    ended = [m for m in got if isinstance(m, pycos.MonitorStatus)]
    return started, ended


def test_time_limit(cluster):
    sched, start_node = cluster
    start_node(2)
    st = pycos.Task(_statuses)
    client = Client([nap, patient], status_task=st, job_timeout=0.5)
    assert client.job_timeout == 0.5

    def main(task=None):
        assert (yield client.schedule()) == 0
        late = yield client.rtask(nap, 3600)
        caught = yield client.io_rtask(patient, 3600)
        client.job_timeout = None                  # from now on: no limit
        fine = yield client.rtask(nap, 0.7)
        out = [(yield late(timeout=30)), (yield caught(timeout=30)), (yield fine(timeout=30))]
        yield client.close()
        return out
    late, caught, fine = pycos.Task(main).value(timeout=60)
    assert isinstance(late, pycos.MonitorStatus) and late.type is JobTimeout, late
    assert caught == "stopped in time"
    assert fine == 0.7
    started, ended = _ends(st.value(timeout=30))
    assert len(started) == 3 and len(ended) == 3
    assert sorted(e.type.__name__ for e in ended) == ["JobTimeout", "StopIteration",
                                                      "StopIteration"]


@pytest.mark.parametrize("retries,order,outcome", [
    (2, [True, False], "result"),        # lost once, runs again: its result
    (1, [True, True], "lost"),           # lost twice with one retry: PeerOffline
])
def test_retry_when_the_server_is_lost(cluster, retries, order, outcome):
    sched, start_node = cluster
    start_node(1)
    start_node(1)
    st = pycos.Task(_statuses)
    client = Client([report_then_work], status_task=st, job_retries=retries)
    runs = []

    def main(task=None):
        assert (yield client.schedule()) == 0
        while len((yield client.servers())) < 2:
            yield task.sleep(0.05)                 # (both nodes' servers, for a second run)
        boss = pycos.Task(_kill_each, order, runs)
        rtask = yield client.rtask(report_then_work, boss, 7)
        assert isinstance(rtask, pycos.Task)
        value = yield rtask(timeout=60)
        yield boss.finish(timeout=30)
        yield client.close()
        return rtask, value
    rtask, value = pycos.Task(main).value(timeout=80)
    assert len(runs) == 2 and runs[0] != runs[1]
    started, ended = _ends(st.value(timeout=30))
    # reported once, as the remote task the client has
    assert started == [rtask]
    assert len(ended) == 1 and ended[0].info == rtask
    if outcome == "result":
        assert value == 49
        assert ended[0].type is StopIteration and ended[0].value == 49
    else:
        assert isinstance(value, pycos.MonitorStatus) and value.type is netpycos.PeerOffline
        assert ended[0].type is netpycos.PeerOffline


def test_retry_with_no_server_left_ends_at_close(cluster):
    """Its only server lost, a job with a retry left waits for another;
    none comes, and close(timeout) ends it as it was lost: the client's
    remote task gets that end (not a wait forever), reported once."""
    sched, start_node = cluster
    start_node(1)
    st = pycos.Task(_statuses)
    client = Client([report_then_work], status_task=st, job_retries=1)
    runs = []

    def main(task=None):
        assert (yield client.schedule()) == 0
        boss = pycos.Task(_kill_each, [True], runs)
        rtask = yield client.rtask(report_then_work, boss, 7)
        assert isinstance(rtask, pycos.Task)
        yield boss.finish(timeout=30)
        assert (yield rtask(timeout=1)) is None          # (waiting to run again)
        yield client.close(timeout=2)
        return rtask, (yield rtask(timeout=30))
    rtask, value = pycos.Task(main).value(timeout=60)
    assert len(runs) == 1
    assert isinstance(value, pycos.MonitorStatus) and value.type is netpycos.PeerOffline, value
    started, ended = _ends(st.value(timeout=30))
    assert started == [rtask]
    assert len(ended) == 1 and ended[0].info == rtask and ended[0].type is netpycos.PeerOffline


@pytest.mark.parametrize("kwargs,msg", [
    ({"job_retries": -1}, "job_retries"),
    ({"job_retries": 1.5}, "job_retries"),
    ({"job_timeout": 0}, "job_timeout"),
    ({"job_timeout": "5"}, "job_timeout"),
])
def test_bad_options(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        Client([nap], **kwargs)
