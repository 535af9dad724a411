"""dispycos end to end on loopback: this process is the client (with the
in-process scheduler), ``dispycosnode`` runs in a real process and starts
real server processes.  Jobs, results, the status stream in order, a job
that fails, a server killed with -9 (its job ends with a PeerOffline
MonitorStatus, the others go on), close() releasing the node (its servers
end, its directory goes).
"""
import os
import signal
import sys
import time

import pytest

import pycos
import pycos.netpycos as netpycos
from pycos.dispycos import Client, DispycosStatus, DispycosTaskInfo, Scheduler

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "net"))
from netutil import Proc  # noqa: E402
from clusterutil import _servers, _statuses, _zombie  # noqa: E402

pytestmark = pytest.mark.timeout(90)


def compute(i, delay, task=None):
    import os                  # a job's imports are its own (the source travels alone)
    yield task.sleep(delay)
    return (i, i * i, os.getpid())


def fails(task=None):
    yield task.sleep(0)
    raise ValueError("job failed on purpose")


def sleeper(task=None):
    yield task.sleep(3600)








def test_jobs_results_and_status_stream(cluster):
    sched, start_node = cluster
    node = start_node(2)
    st = pycos.Task(_statuses)
    client = Client([compute], status_task=st)

    def main(task=None):
        assert (yield client.schedule()) == 0
        rtasks = []
        for i in range(8):
            rt = yield client.rtask(compute, i, 0.05)
            assert isinstance(rt, pycos.Task), rt
            rtasks.append(rt)
        results = []
        for rt in rtasks:
            results.append((yield rt()))
        servers = yield client.servers()
        nodes = yield client.nodes()
        bad = yield client.rtask(fails)
        failed = yield bad()
        assert (yield client.close()) == 0
        return results, servers, nodes, failed
    results, servers, nodes, failed = pycos.Task(main).value(timeout=60)
    assert [r[:2] for r in results] == [(i, i * i) for i in range(8)]
    assert len({r[2] for r in results}) == 2          # both server processes worked
    assert len(servers) == 2 and nodes == ["127.0.0.1"]
    assert isinstance(failed, pycos.MonitorStatus) and failed.type is ValueError
    got = st.value(timeout=30)
    kinds = [m.status if isinstance(m, DispycosStatus) else type(m).__name__ for m in got]
    assert kinds[:2] == [Scheduler.NodeDiscovered, Scheduler.NodeInitialized], kinds
    assert kinds.count(Scheduler.ServerDiscovered) == 2
    assert kinds.count(Scheduler.ServerInitialized) == 2
    assert kinds.count(Scheduler.TaskStarted) == 9
    assert kinds.count("MonitorStatus") == 9
    assert kinds[-1] == Scheduler.ClientClosed
    # each job: TaskStarted before its MonitorStatus
    started = [m.info.task for m in got if isinstance(m, DispycosStatus)
               and m.status == Scheduler.TaskStarted]
    ended = [m.info for m in got if isinstance(m, pycos.MonitorStatus)]
    assert set(started) == set(ended)
    for m in got:
        if isinstance(m, DispycosStatus) and m.status == Scheduler.TaskStarted:
            assert isinstance(m.info, DispycosTaskInfo)
    # the node released the client: its directory is gone, it is ready again
    node.send_line("status")
    node.expect(r"idle", timeout=10)
    assert not [d for d in os.listdir(node.dest) if not d.startswith(".")], os.listdir(node.dest)


def test_server_killed_ends_its_job_not_others(cluster):
    """kill -9 the server running one job: that job ends with a PeerOffline
    MonitorStatus (to `yield rtask()` and to the status task, with a
    ServerDisconnected), the job on the other server finishes normally, and
    close() still releases the node."""
    sched, start_node = cluster
    start_node(2)
    st = pycos.Task(_statuses)
    client = Client([compute, sleeper], status_task=st)

    def main(task=None):
        assert (yield client.schedule()) == 0
        doomed = yield client.rtask(sleeper)
        other = yield client.rtask(compute, 1, 1.0)
        assert doomed.location != other.location
        # an I/O job on the doomed server tells its pid
        probe = yield client.io_rtask_at(doomed.location, compute, 0, 0)
        pid = (yield probe())[2]
        os.kill(pid, signal.SIGKILL)
        start = time.monotonic()
        lost = yield doomed(timeout=20)
        took = time.monotonic() - start
        done = yield other(timeout=20)
        assert (yield client.close()) == 0
        return lost, took, done
    lost, took, done = pycos.Task(main).value(timeout=60)
    assert isinstance(lost, pycos.MonitorStatus) and lost.type is netpycos.PeerOffline, lost
    assert took < 5, took                 # a reset connection: at once, not a timeout
    assert done[:2] == (1, 1)
    got = st.value(timeout=30)
    disc = [m for m in got if isinstance(m, DispycosStatus)
            and m.status == Scheduler.ServerDisconnected]
    assert len(disc) == 1
    ends = [m for m in got if isinstance(m, pycos.MonitorStatus)]
    assert sorted(m.type.__name__ for m in ends) == ["PeerOffline", "StopIteration",
                                                      "StopIteration"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_node_signal_stops_it_and_its_servers(cluster, sig):
    """SIGTERM/SIGINT/SIGHUP to the node daemon while a job runs: the daemon
    exits cleanly, its server processes with it (no orphan), and the job
    gets KeyboardInterrupt (so it can save its state) -- the client sees
    that as its MonitorStatus, at once, not after a reconnect period."""
    sched, start_node = cluster
    node = start_node(2)
    client = Client([sleeper])

    def main(task=None):
        assert (yield client.schedule()) == 0
        job = yield client.rtask(sleeper)
        assert isinstance(job, pycos.Task)
        servers = _servers(node)
        node.proc.send_signal(sig)
        t0 = time.monotonic()
        end = yield job(timeout=20)
        assert (yield client.close(timeout=10)) == 0
        took = time.monotonic() - t0
        return servers, end, took
    servers, end, took = pycos.Task(main).value(timeout=60)
    assert took < 5, took                  # close() does not wait for a node that is gone
    assert node.proc.wait(20) == 0, node.output()
    assert len(servers) == 3                 # two servers and their parent
    assert isinstance(end, pycos.MonitorStatus) and end.type is KeyboardInterrupt, end
    for pid in servers:
        assert not os.path.exists("/proc/%d" % pid) or _zombie(pid), pid
    # (the job's KeyboardInterrupt is logged by its server: that is all)
    out = node.output()
    assert "Fatal" not in out and out.count("Traceback") <= 1, out




CLIENT = r"""
import sys
import pycos, pycos.netpycos as netpycos
from pycos.dispycos import Client
def sleeper(task=None):
    yield task.sleep(3600)
sched = netpycos.Pycos(name="doomed-client", host="127.0.0.1", udp_port=0,
                       secret=sys.argv[1])
print("PORT", sched.location.port, flush=True)
def main(task=None):
    client = Client([sleeper])
    yield client.schedule()
    job = yield client.rtask(sleeper)
    print("RUNNING", job is not None, flush=True)
    yield task.sleep(3600)
pycos.Task(main).value()
"""


def test_client_killed_frees_the_node(cluster, tmp_path):
    """E5 on loopback: kill -9 a client while its job runs; the node stops
    that client's servers and removes its files by itself, within
    netpycos's bound for a peer that went away (PeerReconnectPeriod)."""
    sched, start_node = cluster
    # the node must find the doomed client: start it first, then the node
    # with --peer pointing at it (the fixture's scheduler is a bystander)
    script = tmp_path / "client.py"            # (a file: job sources are read from it)
    script.write_text(CLIENT)
    client = Proc("import runpy; runpy.run_path(%r, run_name='__main__')" % str(script),
                  start_node.secret, name="client", args=[start_node.secret])
    try:
        port = int(client.expect(r"^PORT (\d+)$", timeout=20).group(1))
        node = start_node(2, peer_port=port)
        client.expect(r"^RUNNING True$", timeout=30)
        servers = _servers(node)
        assert len(servers) == 3
        start = time.monotonic()
        client.kill()
        deadline = start + 25
        while True:
            node.send_line("status")
            m = node.expect(r"dispycosnode .*: (idle|client)", timeout=10)
            if m.group(1) == "idle":
                break
            assert time.monotonic() < deadline, node.output()
            time.sleep(0.5)                  # (polls the node's state)
        took = time.monotonic() - start
        assert not [d for d in os.listdir(node.dest) if not d.startswith(".")]
        assert not [d for d in servers if os.path.exists("/proc/%s" % d)
                    and not _zombie(int(d))]
    finally:
        client.kill()
        client.proc.stdout.close()
    assert took < 25, took


def square(x, task=None):
    yield task.sleep(0)
    return x * x


@pytest.mark.parametrize("n", [1000])
def test_many_jobs_at_once_none_lost(cluster, n):
    """n jobs submitted at once (n tasks each waiting for a free server):
    every job starts once and ends once -- n results, n TaskStarted and n
    MonitorStatus messages, 0 lost completions (the original could lose one
    under load and leave `yield rtask()` hanging)."""
    sched, start_node = cluster
    start_node(2)
    st = pycos.Task(_statuses)
    client = Client([square], status_task=st)

    def one(x, task=None):
        rt = yield client.rtask(square, x)
        if not isinstance(rt, pycos.Task):
            return ("no job", x)
        return (yield rt(timeout=60))

    def main(task=None):
        assert (yield client.schedule()) == 0
        jobs = [pycos.Task(one, x) for x in range(n)]
        results = []
        for j in jobs:
            results.append((yield j.finish()))
        assert (yield client.close()) == 0
        return results
    results = pycos.Task(main).value(timeout=120)
    assert results == [x * x for x in range(n)]
    got = st.value(timeout=30)
    started = [m.info.task for m in got if isinstance(m, DispycosStatus)
               and m.status == Scheduler.TaskStarted]
    ended = [m.info for m in got if isinstance(m, pycos.MonitorStatus)]
    assert len(started) == n and len(set(started)) == n
    assert len(ended) == n and set(ended) == set(started)


def test_silent_node_taken_for_dead_then_rejoins(cluster, monkeypatch):
    """A node (and its servers) stopped with SIGSTOP: no reset, no byte --
    only heartbeats tell.  With pulse_interval P=1 and zombie_period Z=3 it
    is declared dead within [Z, Z + 2P] of going quiet (NodeDisconnected),
    its running job ends with a PeerOffline MonitorStatus then, and after
    SIGCONT the node is initialized again and runs jobs; the job of its old
    incarnation is reported once, never twice."""
    from pycos import config
    monkeypatch.setattr(config, "MinPulseInterval", 1)
    sched, start_node = cluster
    node = start_node(1, extra=["--msg_timeout", "1", "--min_pulse_interval", "1"])
    st = pycos.Task(_statuses)
    client = Client([compute, sleeper], status_task=st, pulse_interval=1, zombie_period=3)
    seen = []                                # (monotonic time, status) as they come

    def watch(task=None):
        while True:
            msg = yield task.receive()
            seen.append((time.monotonic(), msg))
            st.send(msg)
    client.status_task = pycos.Task(watch)

    def wait_for(status, after, task, timeout=30):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for t, m in seen:
                if t >= after and isinstance(m, DispycosStatus) and m.status == status:
                    return t
            yield task.sleep(0.05)
        raise AssertionError("no %s: %r" % (status, seen))

    def main(task=None):
        assert (yield client.schedule()) == 0
        job = yield client.rtask(sleeper)
        assert isinstance(job, pycos.Task)
        pids = [node.proc.pid] + _servers(node)
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        stopped = time.monotonic()
        try:
            lost = yield job(timeout=30)
            ended = time.monotonic() - stopped
            dead = (yield wait_for(Scheduler.NodeDisconnected, stopped, task)) - stopped
        finally:
            for pid in pids:
                os.kill(pid, signal.SIGCONT)
        resumed = time.monotonic()
        yield wait_for(Scheduler.ServerInitialized, resumed, task)
        again = yield client.rtask(compute, 3, 0)
        value = yield again(timeout=30)
        assert (yield client.close()) == 0
        return lost, ended, dead, value
    lost, ended, dead, value = pycos.Task(main).value(timeout=80)
    assert isinstance(lost, pycos.MonitorStatus) and lost.type is netpycos.PeerOffline, lost
    assert 3 <= dead <= 3 + 2 * 1 + 0.5, dead          # (+ scheduling slack)
    assert ended <= dead + 0.5, (ended, dead)
    assert value[:2] == (3, 9)
    got = st.value(timeout=30)
    ends = [m.info for m in got if isinstance(m, pycos.MonitorStatus)]
    assert len(ends) == 2 and len(set(ends)) == 2, got


def test_arguments_that_do_not_pickle(cluster):
    """A job whose arguments do not pickle fails in rtask() with the pickling
    error; the server it was meant for takes the next job."""
    sched, start_node = cluster
    start_node(1)
    client = Client([compute])

    def main(task=None):
        assert (yield client.schedule()) == 0
        try:
            yield client.rtask(compute, lambda: 1, 0)
        except Exception as e:
            err = e
        else:
            err = None
        rt = yield client.rtask(compute, 3, 0)
        value = yield rt(timeout=30)
        yield client.close()
        return err, value
    err, value = pycos.Task(main).value(timeout=60)
    assert err is not None and "pickle" in ("%s %s" % (type(err).__name__, err)).lower(), err
    assert value[:2] == (3, 9)
