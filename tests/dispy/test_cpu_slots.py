"""CPU jobs run one at a time on each server, also when the scheduler sends
short ones ahead (they wait at the server and run next); long jobs are
not sent ahead; jobs waiting at a server end on close(terminate=True).

Loopback, real node and server processes (the ``cluster`` fixture)."""
import os
import sys

import pytest

import pycos
from pycos.dispy import scheduler as dispy_scheduler
from pycos.dispycos import Client

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

pytestmark = pytest.mark.timeout(90)


def spell(busy, task=None):
    """Runs ``busy`` seconds, yielding in the middle (another job could run
    then if the server let it): (pid, start, end) on the monotonic clock."""
    import os
    import time
    t0 = time.monotonic()
    while time.monotonic() - t0 < busy / 2:
        pass
    yield task.sleep(0)
    while time.monotonic() - t0 < busy:
        pass
    return os.getpid(), t0, time.monotonic()


def nap(seconds, task=None):
    yield task.sleep(seconds)
    return seconds


def _run(client, main):
    def top(task=None):
        assert (yield client.schedule()) == 0
        try:
            return (yield from main(task))
        finally:
            yield client.close(terminate=True)
    return pycos.Task(top).value(timeout=80)


def test_short_cpu_jobs_sent_ahead_never_overlap(cluster):
    """300 short CPU jobs at once on 2 servers: they are sent ahead (a
    server has more than one CPU job at a time), yet on each server their
    run times never overlap."""
    sched, start_node = cluster
    start_node(2)
    client = Client([spell])
    most = [0]

    def one(task=None):
        rt = yield client.rtask(spell, 0.0005)
        s = client._scheduler
        most[0] = max([most[0]] + [sv.cpu_jobs for sv in s.servers.values()])
        return (yield rt(timeout=60))

    def main(task):
        tasks = [pycos.Task(one) for _ in range(300)]
        out = []
        for t in tasks:
            out.append((yield t.finish()))
        return out
    out = _run(client, main)
    assert all(isinstance(r, tuple) for r in out), out
    assert most[0] > 1, "no job was sent ahead"
    by_pid = {}
    for pid, t0, t1 in out:
        by_pid.setdefault(pid, []).append((t0, t1))
    assert len(by_pid) == 2
    for spans in by_pid.values():
        spans.sort()
        for (a0, a1), (b0, b1) in zip(spans, spans[1:]):
            assert b0 >= a1, "CPU jobs overlapped on one server: %r %r" % ((a0, a1), (b0, b1))


def test_long_cpu_jobs_wait_for_a_free_server(cluster):
    """Once CPU jobs are known to take longer than PREFETCH_BELOW, a second
    job on a one-server node is not sent until the first ends: rtask()
    returns after the first job's end."""
    sched, start_node = cluster
    start_node(1)
    client = Client([spell])
    busy = 3 * dispy_scheduler.PREFETCH_BELOW

    def main(task):
        for _ in range(3):                   # teach the scheduler the jobs are long
            rt = yield client.rtask(spell, busy)
            yield rt(timeout=30)
        first = yield client.rtask(spell, busy)
        second = yield client.rtask(spell, busy)   # waits for the server
        import time
        sent = time.monotonic()
        r1 = yield first(timeout=30)
        r2 = yield second(timeout=30)
        return sent, r1, r2
    sent, r1, r2 = _run(client, main)
    assert sent >= r1[2], "the second long job was sent before the first ended"
    assert r2[1] >= r1[2]


def test_jobs_waiting_at_a_server_end_on_terminate(cluster, monkeypatch):
    """Short jobs teach the scheduler to send ahead; then three long CPU
    jobs go to the one server (one runs, two wait there):
    close(terminate=True) ends all three with KeyboardInterrupt, at once."""
    # how many short jobs may wait at a server follows their measured run
    # time (PREFETCH_WORK / time): on a slow interpreter the short jobs
    # measured over 2.5 ms let only one wait, and the third long job was
    # never placed.  Room for several, whatever the machine's pace:
    monkeypatch.setattr(dispy_scheduler, "PREFETCH_WORK", 10 * dispy_scheduler.PREFETCH_BELOW)
    sched, start_node = cluster
    start_node(1)
    client = Client([spell, nap])

    def main(task):
        for _ in range(20):
            rt = yield client.rtask(spell, 0.0002)
            yield rt(timeout=30)
        jobs = []
        for _ in range(3):
            jobs.append((yield client.rtask(nap, 3600)))
        assert all(isinstance(j, pycos.Task) for j in jobs)
        assert len((yield client.tasks())) == 3
        yield client.close(terminate=True, timeout=20)
        ends = []
        for j in jobs:
            ends.append((yield j(timeout=20)))
        return ends
    ends = _run(client, main)
    for st in ends:
        assert isinstance(st, pycos.MonitorStatus) and st.type is KeyboardInterrupt, ends


def test_io_jobs_placed_together_spread_over_servers(cluster):
    """Eight I/O jobs submitted together go four to each of two servers: a
    job counts on its server from the moment it is placed, not only once
    its call is answered (else all of them went to the first server)."""
    sched, start_node = cluster
    start_node(2)
    client = Client([nap])

    def main(task):
        while len((yield client.servers())) < 2:
            yield task.sleep(0.05)
        submits = [pycos.Task(lambda task=None: (yield client.io_rtask(nap, 0.3)))
                   for _ in range(8)]
        jobs = []
        for t in submits:
            jobs.append((yield t.finish()))
        where = {}
        for j in jobs:
            where[j.location] = where.get(j.location, 0) + 1
        for j in jobs:
            yield j(timeout=30)
        return sorted(where.values())
    assert _run(client, main) == [4, 4]


def saves_slowly(handler_s, task=None):
    """Naps until KeyboardInterrupt, then spends ``handler_s`` seconds
    (yielding) saving its state: "saved"."""
    try:
        yield task.sleep(3600)
    except KeyboardInterrupt:
        yield task.sleep(handler_s)
        return "saved"
    return "not interrupted"


def test_interrupted_job_finishes_its_handler_on_terminate(cluster):
    """close(terminate=True) throws KeyboardInterrupt into a job once: its
    handler, which yields for a while, runs to its end and its value is
    the job's result -- neither a second KeyboardInterrupt (the node
    letting go of the server while the handler runs) nor an early
    terminate takes it away."""
    sched, start_node = cluster
    start_node(2)
    client = Client([saves_slowly])

    def main(task):
        jobs = []
        for handler_s in (0.0, 1.0):
            jobs.append((yield client.rtask(saves_slowly, handler_s)))
        assert all(isinstance(j, pycos.Task) for j in jobs)
        yield client.close(terminate=True, timeout=20)
        ends = []
        for j in jobs:
            ends.append((yield j(timeout=20)))
        return ends
    assert _run(client, main) == ["saved", "saved"]
