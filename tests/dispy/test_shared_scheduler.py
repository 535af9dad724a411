"""The shared scheduler program ``dispycos`` on loopback, with real
processes: the scheduler, a ``dispycosnode`` started with ``--peer`` at it,
this process as one client and client programs in processes of their own.

Clients are served one at a time in order (a second client waits, and one
whose ``timeout`` passes first gets -2); jobs run with their results, a
failing job ends with its MonitorStatus, shipped files reach the servers
and the status stream reaches the client's status task complete (the
arguments of TaskStarted and the jobs' results never pass through the
scheduler); a client killed with -9 is closed and the next one served; the
scheduler ends on ``quit`` and on SIGTERM leaving no client files and an
idle node.
"""
import os
import re
import signal
import sys
import time

import pytest

import pycos
from pycos.netpycos import PeerOffline
from pycos.dispycos import (Client, DispycosNodeAllocate, DispycosStatus, DispycosTaskInfo,
                            JobTimeout, Scheduler)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "net"))
from netutil import Proc  # noqa: E402
from clusterutil import _statuses, wait_idle  # noqa: E402

pytestmark = pytest.mark.timeout(90)


def start_scheduler(secret, dest, *extra):
    """The ``dispycos`` program on loopback (any free port): (Proc, port)."""
    argv = ["-i", "127.0.0.1", "-s", secret, "--scheduler_port", "0",
            "--dest_path", str(dest)] + list(extra)
    p = Proc("import sys; from pycos.dispycos import main; sys.exit(main(%r))" % (argv,),
             secret, name="scheduler")
    m = p.expect(r"^dispycos scheduler \S+ at 127\.0\.0\.1:(\d+)$", timeout=30)
    return p, int(m.group(1))


def client_files(dest):
    root = os.path.join(str(dest), "clients")
    return os.listdir(root) if os.path.isdir(root) else []


def compute(i, task=None):
    yield task.sleep(0.05)
    return (i, i * i)


def fails(task=None):
    yield task.sleep(0)
    raise ValueError("job failed on purpose")


def sleeper(task=None):
    yield task.sleep(3600)


def pid(task=None):
    import os
    yield task.sleep(0)
    return os.getpid()


def reads(name, task=None):
    yield task.sleep(0)
    with open(name) as f:
        return f.read()


class Point(object):
    """A class of the client's own: the scheduler cannot unpickle it."""

    def __init__(self, x):
        self.x = x


def moves(p, task=None):
    yield task.sleep(0)
    return Point(p.x + 1)


SETUP_POINT = None


def setup(p, task=None):
    global SETUP_POINT           # (the forked servers inherit it)
    SETUP_POINT = p
    yield task.sleep(0)
    return 0


def from_setup(task=None):
    yield task.sleep(0)
    return SETUP_POINT.x


# a client program: first asks with a short timeout (another client is
# served), then waits for its turn, runs a job and closes
WAITING_CLIENT = """
import sys
import pycos, pycos.netpycos as netpycos
from pycos.dispycos import Client

def square(x, task=None):
    yield task.sleep(0)
    return x * x

secret, port = sys.argv[1], int(sys.argv[2])
sched = netpycos.Pycos(host="127.0.0.1", udp_port=0, secret=secret)
client = Client([square])

def main(task=None):
    loc = pycos.Location("127.0.0.1", port)
    print("TIMEOUT", (yield client.schedule(loc, timeout=1)), flush=True)
    print("SCHEDULED", (yield client.schedule(loc)), flush=True)
    rt = yield client.rtask(square, 7)
    print("RESULT", (yield rt()), flush=True)
    print("CLOSED", (yield client.close()), flush=True)

pycos.Task(main).value()
sched.terminate()
"""


def test_clients_served_in_order(cluster, tmp_path, monkeypatch):
    sched, start_node = cluster
    secret = start_node.secret
    dest = tmp_path / "sched"
    scheduler, port = start_scheduler(secret, dest)
    loc = pycos.Location("127.0.0.1", port)
    other = None
    try:
        node = start_node(2, peer_port=port)
        data = tmp_path / "data.txt"
        data.write_text("shipped through the scheduler")
        st = pycos.Task(_statuses)
        client = Client([compute, fails, sleeper, pid, reads, Point, moves, str(data)],
                        status_task=st)
        # as in a client program, Point lives in __main__ (pickled as
        # __main__.Point, which the shipped source defines on the servers)
        monkeypatch.setattr(Point, "__module__", "__main__")
        monkeypatch.setattr(sys.modules["__main__"], "Point", Point, raising=False)

        def first(task=None):
            assert (yield client.schedule(loc, timeout=30)) == 0
            return 0
        pycos.Task(first).value(timeout=40)
        script = tmp_path / "waiting_client.py"
        script.write_text(WAITING_CLIENT)
        other = Proc("import runpy; runpy.run_path(%r, run_name='__main__')" % str(script),
                     secret, name="client2", args=[secret, str(port)])
        # while this client is served the other one's short wait ends
        other.expect(r"^TIMEOUT -2$", timeout=30)

        def main(task=None):
            rtasks = []
            for i in range(6):
                rt = yield client.rtask(compute, i)
                assert isinstance(rt, pycos.Task), rt
                rtasks.append(rt)
            results = []
            for rt in rtasks:
                results.append((yield rt()))
            # (a server works in a directory of its own below the client's files)
            text = yield (yield client.io_rtask(reads, "../data.txt"))()
            moved = yield (yield client.rtask(moves, Point(41)))()
            bad = yield client.rtask(fails)
            failed = yield bad()
            listed = ((yield client.nodes()), (yield client.servers()))
            assert (yield client.suspend_node("127.0.0.1")) == 0
            assert (yield client.resume_node("127.0.0.1")) == 0
            # a server killed under a job: the job ends with PeerOffline
            doomed = yield client.rtask(sleeper)
            probe = yield client.io_rtask_at(doomed.location, pid)
            os.kill((yield probe()), signal.SIGKILL)
            lost = yield doomed(timeout=20)
            return results, text, moved, failed, listed, lost
        results, text, moved, failed, (nodes, servers), lost = pycos.Task(main).value(timeout=40)
        assert results == [(i, i * i) for i in range(6)]
        assert text == "shipped through the scheduler"
        assert isinstance(moved, Point) and moved.x == 42
        assert isinstance(failed, pycos.MonitorStatus) and failed.type is ValueError
        assert nodes == ["127.0.0.1"] and len(servers) == 2
        assert isinstance(lost, pycos.MonitorStatus) and lost.type is PeerOffline, lost
        assert not any(line.startswith("SCHEDULED") for line in other.lines)   # still waits

        def close(task=None):
            return (yield client.close())
        assert pycos.Task(close).value(timeout=30) == 0
        got = st.value(timeout=20)
        # the next client is served now
        other.expect(r"^SCHEDULED 0$", timeout=30)
        other.expect(r"^RESULT 49$", timeout=30)
        other.expect(r"^CLOSED 0$", timeout=30)
        assert other.stop() == 0
        other = None

        kinds = [m.status if isinstance(m, DispycosStatus) else type(m).__name__ for m in got]
        assert kinds[:2] == [Scheduler.NodeDiscovered, Scheduler.NodeInitialized], kinds
        assert kinds.count(Scheduler.ServerInitialized) == 2
        assert kinds.count(Scheduler.TaskStarted) == 11 and kinds.count("MonitorStatus") == 11
        assert kinds.count(Scheduler.ServerDisconnected) == 1
        assert kinds[-1] == Scheduler.ClientClosed and got[-1].info == id(client)
        started = {m.info.task: m.info for m in got if isinstance(m, DispycosStatus)
                   and m.status == Scheduler.TaskStarted}
        ends = [m for m in got if isinstance(m, pycos.MonitorStatus)]
        assert set(started) == {m.info for m in ends}
        # what the scheduler did not see is in the stream: arguments, results
        assert all(isinstance(i, DispycosTaskInfo) for i in started.values())
        assert sorted(i.args for i in started.values() if i.args and
                      isinstance(i.args[0], int)) == [(i,) for i in range(6)]
        assert any(i.args and isinstance(i.args[0], Point) for i in started.values())
        values = [m.value for m in ends if m.type is StopIteration]
        assert sorted(v for v in values if isinstance(v, tuple)) == results
        assert any(isinstance(v, Point) and v.x == 42 for v in values)
        assert sorted(m.type.__name__ for m in ends
                      if m.type is not StopIteration) == ["PeerOffline", "ValueError"]

        scheduler.send_line("status")
        scheduler.expect(r": idle; 0 waiting, 2 served$", timeout=10)
        scheduler.send_line("quit")
        assert scheduler.proc.wait(20) == 0
        assert client_files(dest) == []
        wait_idle(node)
    finally:
        if other is not None:
            other.kill()
        scheduler.stop()


# a client program that starts a long job, then is killed
DOOMED_CLIENT = """
import sys
import pycos, pycos.netpycos as netpycos
from pycos.dispycos import Client

def sleeper(task=None):
    yield task.sleep(3600)

secret, port = sys.argv[1], int(sys.argv[2])
sched = netpycos.Pycos(host="127.0.0.1", udp_port=0, secret=secret)
client = Client([sleeper])

def main(task=None):
    assert (yield client.schedule(pycos.Location("127.0.0.1", port))) == 0
    job = yield client.rtask(sleeper)
    print("RUNNING", job is not None, flush=True)
    yield task.sleep(3600)

pycos.Task(main).value()
"""


def test_killed_client_is_closed_and_next_served(cluster, tmp_path, monkeypatch):
    """kill -9 a client while its job runs: the client waiting is served at
    once (its job ended, its node released).  This one enables its node
    with a setup argument of its own class (it passes the scheduler
    pickled)."""
    sched, start_node = cluster
    secret = start_node.secret
    dest = tmp_path / "sched"
    scheduler, port = start_scheduler(secret, dest)
    doomed = None
    try:
        node = start_node(1, peer_port=port)
        script = tmp_path / "doomed_client.py"
        script.write_text(DOOMED_CLIENT)
        doomed = Proc("import runpy; runpy.run_path(%r, run_name='__main__')" % str(script),
                      secret, name="doomed", args=[secret, str(port)])
        doomed.expect(r"^RUNNING True$", timeout=30)
        client = Client([compute, Point, from_setup], disable_nodes=True, node_setup=setup)
        monkeypatch.setattr(Point, "__module__", "__main__")
        monkeypatch.setattr(sys.modules["__main__"], "Point", Point, raising=False)

        def main(task=None):
            start = time.monotonic()
            doomed.kill()
            # its turn comes when the killed client's is over: its job ended,
            # its node released
            assert (yield client.schedule(pycos.Location("127.0.0.1", port), timeout=30)) == 0
            took = time.monotonic() - start
            assert (yield client.enable_node("127.0.0.1", Point(8))) == 0
            rt = yield client.rtask(compute, 3)
            result = yield rt()
            rt = yield client.rtask(from_setup)
            return took, result, (yield rt()), (yield client.close())
        took, result, from_node, closed = pycos.Task(main).value(timeout=60)
        doomed = None
        assert result == (3, 9) and from_node == 8 and closed == 0
        assert took < 20, took
        scheduler.proc.send_signal(signal.SIGTERM)
        assert scheduler.proc.wait(20) == 0
        assert client_files(dest) == []
        wait_idle(node)
    finally:
        if doomed is not None:
            doomed.kill()
        scheduler.stop()


# a client that pulses every second (the scheduler closes a client silent
# for 2 s); it is stopped (SIGSTOP) once it runs a job
SILENT_CLIENT = """
import sys
import pycos, pycos.netpycos as netpycos
from pycos import config
from pycos.dispycos import Client

def sleeper(task=None):
    yield task.sleep(3600)

config.MinPulseInterval = 1
secret, port = sys.argv[1], int(sys.argv[2])
sched = netpycos.Pycos(host="127.0.0.1", udp_port=0, secret=secret)
client = Client([sleeper], pulse_interval=1, zombie_period=0)

def main(task=None):
    assert (yield client.schedule(pycos.Location("127.0.0.1", port))) == 0
    job = yield client.rtask(sleeper)
    print("RUNNING", job is not None, flush=True)
    yield task.sleep(3600)

pycos.Task(main).value()
"""


def test_silent_client_is_closed_and_next_served(cluster, tmp_path):
    """A client that stops pulsing (SIGSTOP) is closed once the zombie
    period (the scheduler's --zombie_period here; plus up to two pulse
    intervals) passed; the next client is served.  Also: no shared
    scheduler at a location is -1."""
    sched, start_node = cluster
    secret = start_node.secret
    dest = tmp_path / "sched"
    scheduler, port = start_scheduler(secret, dest, "--zombie_period", "2")
    silent = None
    try:
        node = start_node(1, peer_port=port)
        # the node is a netpycos peer, but runs no shared scheduler
        m = [re.search(r" at 127\.0\.0\.1:(\d+)", line) for line in node.lines]
        node_loc = pycos.Location("127.0.0.1", int([x for x in m if x][0].group(1)))

        def elsewhere(task=None):
            return (yield Client([compute]).schedule(node_loc, timeout=10))
        assert pycos.Task(elsewhere).value(timeout=30) == -1

        script = tmp_path / "silent_client.py"
        script.write_text(SILENT_CLIENT)
        silent = Proc("import runpy; runpy.run_path(%r, run_name='__main__')" % str(script),
                      secret, name="silent", args=[secret, str(port)])
        silent.expect(r"^RUNNING True$", timeout=30)
        client = Client([compute])

        def main(task=None):
            start = time.monotonic()
            silent.proc.send_signal(signal.SIGSTOP)
            assert (yield client.schedule(pycos.Location("127.0.0.1", port), timeout=30)) == 0
            took = time.monotonic() - start
            rt = yield client.rtask(compute, 4)
            result = yield rt()
            assert (yield client.close()) == 0
            return took, result
        took, result = pycos.Task(main).value(timeout=60)
        assert result == (4, 16)
        # zombie period 2 s, pulses every second: closed 2-4 s after the
        # last pulse (and the node released)
        assert 1.5 < took < 15, took
        scheduler.send_line("quit")
        assert scheduler.proc.wait(20) == 0
        assert client_files(dest) == []
        wait_idle(node)
    finally:
        if silent is not None:
            silent.kill()
        scheduler.stop()


def tells(boss, x, task=None):
    """Tells ``boss`` which process runs it, waits for its go."""
    import os
    boss.send((task, os.getpid()))
    if (yield task.receive(timeout=60)) != "go":
        raise RuntimeError("no go")
    return x * x


def patient(seconds, task=None):
    try:
        yield task.sleep(seconds)
    except JobTimeout:           # (job code has it unimported)
        return "stopped in time"
    return "slept"


def _kill_first(runs, task=None):
    """Kills the server of the first run it hears of; lets the next go."""
    job, pid_ = yield task.receive(timeout=60)
    runs.append(pid_)
    os.kill(pid_, signal.SIGKILL)
    job, pid_ = yield task.receive(timeout=60)
    runs.append(pid_)
    job.send("go")


def test_job_options_with_a_shared_scheduler(cluster, tmp_path):
    """job_retries and job_timeout work through a shared scheduler as with
    the in-process one: a job lost with its server runs again on another
    and is reported once, as the task rtask() returned; a job past its time
    limit gets JobTimeout."""
    sched, start_node = cluster
    secret = start_node.secret
    scheduler, port = start_scheduler(secret, tmp_path / "sched")
    try:
        start_node(1, peer_port=port)
        start_node(1, peer_port=port)
        st = pycos.Task(_statuses)
        client = Client([tells, patient, sleeper], status_task=st, job_retries=1)
        runs = []

        def main(task=None):
            assert (yield client.schedule(pycos.Location("127.0.0.1", port))) == 0
            while len((yield client.servers())) < 2:
                yield task.sleep(0.05)
            boss = pycos.Task(_kill_first, runs)
            rt = yield client.rtask(tells, boss, 6)
            value = yield rt(timeout=60)
            yield boss.finish(timeout=30)
            client.job_retries, client.job_timeout = 0, 0.5
            late = yield client.rtask(sleeper)
            caught = yield client.io_rtask(patient, 3600)
            out = (rt, value, (yield late(timeout=30)), (yield caught(timeout=30)))
            yield client.close()
            return out
        rt, value, late, caught = pycos.Task(main).value(timeout=80)
        assert value == 36 and len(runs) == 2 and runs[0] != runs[1]
        assert isinstance(late, pycos.MonitorStatus) and late.type is JobTimeout, late
        assert caught == "stopped in time"
        got = st.value(timeout=30)
        started = [m.info.task for m in got if isinstance(m, DispycosStatus)
                   and m.status == Scheduler.TaskStarted]
        ended = [m for m in got if isinstance(m, pycos.MonitorStatus)]
        assert len(started) == 3 and started[0] == rt
        assert len(ended) == 3 and ended[0].info == rt and ended[0].value == 36
    finally:
        scheduler.stop()


class OneLess(DispycosNodeAllocate):
    """An allocation with code of the client's own (as 4.x programs write
    them): it runs in the client, never in the scheduler."""
    calls = []

    def allocate(self, ip_addr, name, platform, cpus, memory, disk):
        OneLess.calls.append((ip_addr, cpus, os.getpid()))
        return cpus - 1


def test_allocation_with_code_runs_in_the_client(cluster, tmp_path, monkeypatch):
    """A DispycosNodeAllocate subclass with its own allocate(): the shared
    scheduler asks the client for each node it finds, and starts as many
    servers as the client's code said (1 of the node's 2)."""
    sched, start_node = cluster
    scheduler, port = start_scheduler(start_node.secret, tmp_path / "sched")
    monkeypatch.setattr(OneLess, "calls", [])
    try:
        start_node(2, peer_port=port)
        client = Client([compute], nodes=[OneLess("*")])

        def main(task=None):
            assert (yield client.schedule(pycos.Location("127.0.0.1", port))) == 0
            rt = yield client.rtask(compute, 3)       # (waits for the server)
            out = ((yield rt(timeout=30)), (yield client.servers()))
            assert (yield client.close()) == 0
            return out
        result, servers = pycos.Task(main).value(timeout=60)
        assert result == (3, 9)
        assert len(servers) == 1, servers
        assert OneLess.calls == [("127.0.0.1", 2, os.getpid())]
    finally:
        scheduler.stop()
