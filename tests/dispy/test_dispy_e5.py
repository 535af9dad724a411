"""RELIABILITY.md E5, a client that dies: its nodes release it by
themselves and serve the next client.

In network namespaces (tests/dispy/dispyns.py): a client host running the
dispycos client program and two node hosts with ``dispycosnode``.  While
the client's jobs run on both nodes, the client process is killed with -9,
in two ways:

``kill``
    the process alone: its host's kernel closes its connections, so the
    nodes hear a reset (docs/dispycos.md: released "at once");
``silent``
    its host's link goes down first (``Host.link_down``), then the process
    is killed: nothing more reaches the nodes -- a client host that
    crashed or lost its cable -- and only the nodes' heartbeat watch can
    tell (released within the zombie period: the node waits ``Z + P``
    after the last pulse answer, checking every ``P / 2``).

Why namespaces: on loopback a killed process always resets its
connections, so only the first way can be made there (test_cluster.py's
``test_client_killed_frees_the_node`` does); a silent client needs a host
of its own whose link can be cut.

A node has released the client when its server processes are gone, the
client's directory under its ``--dest_path`` is removed, and it answers
``status`` with ``idle``; the test polls that every POLL seconds and prints
the times (``FIGURES`` line, ``pytest -s``).  Then a new client starts on
the same host and port and runs jobs on both nodes.
"""
import os
import signal
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_dispy_faults as faults  # noqa: E402
from dispyns import ev, status  # noqa: E402
from test_dispy_faults import Checks, account, close_client, node_of, terminal  # noqa: E402

#: the namespaces fixture of the E tests
dnet = faults.dnet

#: the client's pulse_interval and zombie_period (the nodes take the
#: client's), and the discovery interval: as test_dispy_faults.py (Z above
#: RESET_BOUND + RELEASE_MARGIN, so a release after a reset cannot pass for
#: one by the zombie watch)
P = 1.0
Z = 5.0
D = 2.0
#: server processes per node
CPUS = max(1, min(2, os.cpu_count() or 1))
#: a node hears a reset within this (a refused reconnect ends the peer at once)
RESET_BOUND = 1.0
#: a silent client is given up within [Z - P, Z + 2P] of the cut: the node
#: counts Z + P from the last answer to its pulses, which came up to a pulse
#: interval (more on a loaded machine) before the cut, and checks every P / 2
SILENT_LO = Z - P
SILENT_BOUND = Z + 2 * P
#: the release itself once decided -- its servers end when their lifeline
#: closes (a running job gets KeyboardInterrupt), the directory is removed --
#: plus this test's polling and a loaded machine's scheduling
RELEASE_MARGIN = 3.0
#: polling period of the nodes' state
POLL = 0.1
#: starting the namespaces, a client, the nodes and their servers
STARTUP = 60.0


def _start(net, checks, what, nodes=None):
    """A client on the client host; nodes on the node hosts (or those
    already running); returns (client, nodes) once every server is
    initialized for it (figure ``what``: how long that took)."""
    t0 = time.monotonic()
    client = net.start_client(P, Z, D)
    client.wait_event(ev("ready"), STARTUP, "the client's scheduler")
    if nodes is None:
        nodes = [net.start_node(i, CPUS, P, Z, D) for i in range(len(net.node_hosts))]
    try:
        client.wait_count(status("ServerInitialized"), len(nodes) * CPUS, STARTUP,
                          "ServerInitialized")
    except AssertionError as e:
        raise AssertionError("%s\n%s" % (e, "\n".join("---- %s:\n%s" % (n.name, n.output(40))
                                                        for n in nodes))) from None
    checks.fig(what, time.monotonic() - t0)
    return client, nodes


def _running(client, nodes):
    """{node address: how many jobs the client has running there}."""
    ended = {e["i"] for e in client.select(terminal)}
    started = client.select(ev("submitted"))
    return {n.addr: len([e for e in started if node_of(e["server"]) == n.addr
                         and e["i"] not in ended]) for n in nodes}


def _holds(net, node):
    """What ``node`` still holds for a client: (its server processes, the
    entries in its --dest_path)."""
    servers = net.pids(node.host) - {node.pid}
    files = [d for d in os.listdir(node.dest) if not d.startswith(".")]
    return servers, files


def _wait_released(net, nodes, t0, timeout):
    """Poll every node until it holds nothing for a client and says it is
    idle; {node: seconds after ``t0``, or None past ``timeout``}."""
    left = {n.addr: n for n in nodes}
    took = {}
    end = t0 + timeout
    while left and time.monotonic() < end:
        for a, n in list(left.items()):
            servers, files = _holds(net, n)
            if servers or files:
                continue
            m, t = n.ask("status", r"^dispycosnode .*: (idle|client)", 10)
            if m.group(1) == "idle":
                took[a] = t - t0
                del left[a]
        if left:
            time.sleep(POLL)                  # (polls the nodes' state)
    for a in left:
        took[a] = None
    return took


@pytest.mark.timeout(120)
@pytest.mark.parametrize("death", ["kill", "silent"])
def test_e5_client_dies_nodes_free_and_serve_the_next(dnet, death):
    """E5: kill -9 the client while its jobs run on two nodes (``silent``:
    after cutting its host's link).  Each node stops the client's servers,
    removes its files and reports idle -- within RESET_BOUND +
    RELEASE_MARGIN of the kill when the client's host resets the
    connections, within [Z - P, Z + 2P + RELEASE_MARGIN] of the cut when it
    is silent -- and then serves a new client (same host and port) whose jobs
    all succeed on both nodes."""
    checks = Checks("E5-%s" % death)
    net = dnet(2)
    client, nodes = _start(net, checks, "first_client_servers_s")
    client.send("run 40 1 0.5 2.0")
    client.wait_count(terminal, 2, 60, "job ends")
    end = time.monotonic() + 30
    while not all(_running(client, nodes).values()) and time.monotonic() < end:
        time.sleep(0.05)                      # (polls the client's events)
    for n in nodes:
        servers, files = _holds(net, n)
        checks.check(len(servers) == CPUS + 1,
                     "%s: %d processes for the client before the kill, not %d servers and "
                     "their parent" % (n.name, len(servers), CPUS))
        checks.check(files, "%s: no client directory before the kill" % n.name)
    for a, k in _running(client, nodes).items():
        checks.fig("jobs_running_at_kill[%s]" % a, k)
        checks.check(k, "no job running on %s when the client was killed" % a)
    if death == "silent":
        net.client_host.link_down()
    t0 = time.monotonic()
    os.kill(client.pid, signal.SIGKILL)
    client.wait_exit(10)
    lo, hi = (0.0, RESET_BOUND) if death == "kill" else (SILENT_LO, SILENT_BOUND)
    took = _wait_released(net, nodes, t0, hi + RELEASE_MARGIN + 10)
    for n in nodes:
        s = took[n.addr]
        checks.fig("released_s[%s]" % n.addr, s)
        if s is None:
            servers, files = _holds(net, n)
            checks.check(False, "%s still holds the dead client %.0f s after %s: servers %r, "
                         "files %r" % (n.name, hi + RELEASE_MARGIN + 10,
                                       "the kill" if death == "kill" else "the cut",
                                       sorted(servers), files))
            continue
        checks.check(lo <= s <= hi + RELEASE_MARGIN,
                     "%s released the dead client %.2f s after %s, not within "
                     "[%.1f, %.1f + %.1f] s" % (n.name, s, "the kill" if death == "kill"
                                                else "the cut", lo, hi, RELEASE_MARGIN))
    if death == "silent":
        net.client_host.link_up()
    # the next client: found, served on both nodes, its jobs succeed
    client, nodes = _start(net, checks, "next_client_servers_s", nodes)
    n_jobs = 4 * CPUS
    client.send("run %d 2 0.2 0.5" % n_jobs)
    try:
        client.wait_count(terminal, n_jobs, 60, "job ends")
    except AssertionError:
        pass                                  # (accounted for below)
    close_client(client, checks)
    jobs, problems = account(client, n_jobs)
    for p in problems:
        checks.check(False, p)
    bad = [(j["i"], j.get("kind"), j.get("nojob_value")) for j in jobs.values()
           if j.get("kind") != "ok"]
    checks.check(not bad, "jobs of the next client failed: %r" % bad)
    used = {j.get("node") for j in jobs.values()}
    checks.check(used >= {nd.addr for nd in nodes}, "the next client's jobs ran on %r only"
                 % sorted(a for a in used if a))
    for nd in nodes:
        checks.check(nd.proc.poll() is None, "%s ended (rc %s)" % (nd.name, nd.proc.poll()))
    checks.verify(client, nodes)
