"""dispycos on loopback: what a client controls -- node_setup (its globals
inherited by the forked servers), disable_nodes/enable_node and
disable_servers/enable_server with setup arguments, suspending and resuming
nodes and servers, closing and restarting servers (from the client and
from job code: dispycos_close_server, dispycos_close_node), restart_servers,
a node_setup that fails, node_allocate.  Real dispycosnode and server
processes, as in test_cluster.py (the ``cluster`` fixture: conftest.py).
"""
import os
import sys

import pytest

import pycos
from pycos.dispycos import Client, DispycosNodeAllocate, DispycosStatus, Scheduler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clusterutil import _statuses, wait_idle  # noqa: E402

pytestmark = pytest.mark.timeout(90)


class Shared(object):
    """Shipped as source: node_setup's data is one of these."""

    def __init__(self, base):
        self.base = base


def setup_node(shared, task=None):
    import os
    global node_data, node_pid
    node_data = shared.base * 10             # made once per node, before the servers
    node_pid = os.getpid()
    yield task.sleep(0)
    return 0


def setup_server(offset, task=None):
    global server_offset
    server_offset = offset
    yield task.sleep(0)
    return 0


def uses_node_data(x, task=None):
    import os
    yield task.sleep(0)
    return (x + node_data + globals().get("server_offset", 0), node_pid, os.getpid(),
            os.getppid())


def bad_setup(task=None):
    yield task.sleep(0)
    return "no"


def compute(i, delay, task=None):
    import os
    yield task.sleep(delay)
    return (i, os.getpid())


def closes_its_server(restart, task=None):
    import os
    yield task.sleep(0)
    dispycos_close_server(restart=restart)   # noqa: F821 (the server defines it)
    return os.getpid()


def closes_its_node(task=None):
    yield task.sleep(0)
    dispycos_close_node()                    # noqa: F821 (the server defines it)
    return 1


def _submit(client, *args, task=None):
    return (yield client.rtask(*args))


def _kinds(got):
    return [m.status if isinstance(m, DispycosStatus) else type(m).__name__ for m in got]


def test_node_setup_globals_reach_forked_servers(cluster, monkeypatch):
    """disable_nodes + enable_node(node, Shared(4)): node_setup runs once on
    the node (in the servers' parent) with that argument -- an instance of
    a class the client shipped -- and every server inherits its globals;
    disable_servers + enable_server(loc, 1000): server_setup gets its
    argument per server."""
    sched, start_node = cluster
    start_node(2)
    st = pycos.Task(_statuses)
    client = Client([Shared, uses_node_data], status_task=st, node_setup=setup_node,
                    server_setup=setup_server, disable_nodes=True, disable_servers=True)
    # as in a client program, Shared lives in __main__ (so it is pickled as
    # __main__.Shared, which the shipped source defines there)
    monkeypatch.setattr(Shared, "__module__", "__main__")
    monkeypatch.setattr(sys.modules["__main__"], "Shared", Shared, raising=False)

    def main(task=None):
        assert (yield client.schedule()) == 0
        assert (yield client.enable_node("127.0.0.1", Shared(4))) == 0
        servers = []
        while len(servers) < 2:
            msg = yield task.receive(timeout=30)
            assert msg is not None, "servers not discovered"
            servers.append(msg)
        for i, loc in enumerate(servers):
            assert (yield client.enable_server(loc, 1000 * (i + 1))) == 0
        results = []
        for loc in servers:
            rt = yield client.rtask_at(loc, uses_node_data, 1)
            results.append((yield rt()))
        assert (yield client.close()) == 0
        return servers, results

    def watch(task=None):
        while True:
            msg = yield task.receive()
            if isinstance(msg, DispycosStatus) and msg.status == Scheduler.ServerDiscovered:
                main_task.send(msg.info)
            st.send(msg)
    main_task = pycos.Task(main)
    client.status_task = pycos.Task(watch)
    servers, results = main_task.value(timeout=60)
    assert sorted(r[0] for r in results) == [1 + 40 + 1000, 1 + 40 + 2000]
    setup_pids = {r[1] for r in results}
    assert len(setup_pids) == 1                       # node_setup ran once
    assert len({r[2] for r in results}) == 2          # in two servers
    if hasattr(os, "fork"):
        assert {r[3] for r in results} == setup_pids  # forked from where it ran
    kinds = _kinds(st.value(timeout=30))
    assert kinds.count(Scheduler.NodeInitialized) == 1
    assert kinds.count(Scheduler.ServerInitialized) == 2


def test_node_setup_failing_closes_the_node(cluster):
    sched, start_node = cluster
    node = start_node(1)
    st = pycos.Task(_statuses)
    client = Client([compute], status_task=st, node_setup=bad_setup)

    def main(task=None):
        assert (yield client.schedule()) == 0
        while True:
            closed = [m for m in seen if isinstance(m, DispycosStatus)
                      and m.status == Scheduler.NodeClosed]
            if closed:
                break
            yield task.sleep(0.05)
        assert (yield client.nodes()) == []
        # a job waits for a server (as in 4.x): close() ends the wait
        waiting = pycos.Task(_submit, client, compute, 1, 0)
        r = yield waiting.finish(timeout=0.5)
        assert waiting.is_alive(), r
        assert (yield client.close()) == 0
        return (yield waiting.finish(timeout=10))
    seen = []

    def watch(task=None):
        while True:
            msg = yield task.receive()
            seen.append(msg)
            st.send(msg)
    client.status_task = pycos.Task(watch)
    assert pycos.Task(main).value(timeout=60) is None
    kinds = _kinds(st.value(timeout=30))
    assert Scheduler.NodeInitialized not in kinds and Scheduler.NodeClosed in kinds
    wait_idle(node)


def test_suspend_and_resume(cluster):
    """A suspended server gets no job (they go to the other one); a
    suspended node gets none at all (a job waits) until it is resumed."""
    sched, start_node = cluster
    start_node(2)
    st = pycos.Task(_statuses)
    client = Client([compute], status_task=st)

    def main(task=None):
        assert (yield client.schedule()) == 0
        while len((yield client.servers())) < 2:
            yield task.sleep(0.05)
        a, b = yield client.servers()
        assert (yield client.suspend_server(a)) == 0
        jobs = []
        for i in range(4):
            rt = yield client.io_rtask(compute, i, 0)
            jobs.append(rt)
        assert {rt.location for rt in jobs} == {b}
        for rt in jobs:
            yield rt()
        assert (yield client.resume_server(a)) == 0
        assert (yield client.suspend_node("127.0.0.1")) == 0
        waiting = pycos.Task(_submit, client, compute, 9, 0)
        r = yield waiting.finish(timeout=1.0)         # no server: it waits
        assert waiting.is_alive(), r
        assert (yield client.resume_node("127.0.0.1")) == 0
        rt = yield waiting.finish(timeout=20)
        value = yield rt()
        assert (yield client.suspend_server("nowhere")) == -1
        assert (yield client.close()) == 0
        return value
    assert pycos.Task(main).value(timeout=60)[0] == 9
    kinds = _kinds(st.value(timeout=30))
    for k in (Scheduler.ServerSuspended, Scheduler.ServerResumed, Scheduler.NodeSuspended,
              Scheduler.NodeResumed):
        assert kinds.count(k) == 1, (k, kinds)


def test_close_and_restart_servers(cluster):
    """close_server(loc, restart=True) and a job's
    dispycos_close_server(restart=True): the server ends after its jobs
    (ServerClosed) and a fresh process takes its place; a plain
    close_server: fewer servers."""
    sched, start_node = cluster
    start_node(2)
    st = pycos.Task(_statuses)
    client = Client([compute, closes_its_server], status_task=st)

    def servers_now(task, n):
        while len((yield client.servers())) != n:
            yield task.sleep(0.05)
        return (yield client.servers())

    def main(task=None):
        assert (yield client.schedule()) == 0
        a, b = yield servers_now(task, 2)
        busy = yield client.rtask_at(a, compute, 1, 0.5)
        assert (yield client.restart_server(a)) == 0
        r = yield busy()                              # its job finished first
        assert r[0] == 1
        servers = yield servers_now(task, 2)
        assert a not in servers                       # a new process, a new location
        rt = yield client.rtask_at(b, closes_its_server, True)
        old_pid = yield rt()
        servers = yield servers_now(task, 2)
        assert b not in servers
        pids = []
        for loc in servers:
            rt = yield client.rtask_at(loc, compute, 0, 0)
            pids.append((yield rt())[1])
        assert old_pid not in pids
        assert (yield client.close_server(servers[0])) == 0
        yield servers_now(task, 1)
        assert (yield client.close()) == 0
    pycos.Task(main).value(timeout=80)
    kinds = _kinds(st.value(timeout=30))
    assert kinds.count(Scheduler.ServerClosed) >= 3, kinds
    assert kinds.count(Scheduler.ServerInitialized) == 4, kinds


def test_restart_servers_and_close_node_from_a_job(cluster):
    """restart_servers=True: a server closed by its job comes back without
    being asked; a job's dispycos_close_node(): the node's servers end,
    NodeClosed, and the node is free for the next client."""
    sched, start_node = cluster
    node = start_node(1)
    st = pycos.Task(_statuses)
    client = Client([closes_its_server, closes_its_node, compute], status_task=st,
                    restart_servers=True)

    def main(task=None):
        assert (yield client.schedule()) == 0
        while not (yield client.servers()):
            yield task.sleep(0.05)
        first = (yield client.servers())[0]
        rt = yield client.rtask(closes_its_server, False)
        yield rt()
        while True:
            servers = yield client.servers()
            if servers and servers != [first]:
                break
            yield task.sleep(0.05)
        rt = yield client.rtask(closes_its_node)
        assert (yield rt()) == 1
        while (yield client.nodes()):
            yield task.sleep(0.05)
        assert (yield client.close()) == 0
    pycos.Task(main).value(timeout=80)
    kinds = _kinds(st.value(timeout=30))
    assert kinds.count(Scheduler.ServerInitialized) == 2, kinds
    assert Scheduler.NodeClosed in kinds
    wait_idle(node)


def test_node_allocate_and_bad_arguments(cluster):
    """node_allocate() added after schedule() applies to a node found
    later: 1 of its 2 CPUs is used.  Wrong arguments: clear errors."""
    sched, start_node = cluster
    client = Client([compute])

    def main(task=None):
        assert (yield client.schedule()) == 0
        assert (yield client.node_allocate(DispycosNodeAllocate("127.0.0.1", cpus=1))) == 0
        start_node(2)
        while not (yield client.servers()):
            yield task.sleep(0.05)
        yield task.sleep(0)
        n = len((yield client.servers()))
        assert (yield client.close()) == 0
        return n
    assert pycos.Task(main).value(timeout=60) == 1
    with pytest.raises(TypeError, match="DispycosNodeAllocate"):
        client.node_allocate("127.0.0.1")
