"""dispycos under faults, with real processes on hosts of their own
(RELIABILITY.md section E: E1, E2, E3, E4, E6; and E7, ours: a node
restarted on its address while cut off).

Every test builds a private network of Linux network namespaces
(tests/net/netns.py, through tests/dispy/dispyns.py): one host for the
client -- a real process running a dispycos ``Client`` with its in-process
scheduler, which prints a JSON line per event with its time.monotonic()
(one clock for all namespaces) -- and one host per ``dispycosnode`` daemon,
which starts its server processes there.  The test kills processes, cuts
links (``Host.link_down``) and sets iptables rules on the hosts, then waits
for the events the client prints, with deadlines; it never sleeps to let
things settle (the one fixed wait is E6's 60 s head start of the nodes,
which is the scenario).  Everything is killed and the namespaces are deleted
at the end (and the nodes' scratch directory removed).

Liveness settings: the client is ``Client([...], pulse_interval=P,
zombie_period=Z)`` with P = 1 s and Z = 5 s (``pycos.config.MinPulseInterval``
is lowered in the client process for that), and the nodes get
``--msg_timeout 1 --min_pulse_interval 1 --zombie_period 5``.  netpycos's own
liveness is left at its defaults: a silent peer is declared offline after
``config.PeerTimeout + config.PeerReconnectPeriod`` = 10 + 10 s, so Z (and
2 x Z, E3's partition) is below it: what these tests measure for a silent
node is dispycos's heartbeat/zombie detection, whose contract is

    with Client(pulse_interval=P, zombie_period=Z) a node that goes silent
    is declared dead within [Z, Z + 2P] (status NodeDisconnected, or
    NodeAbandoned when abandon_zombie_nodes is set), each of its running
    jobs ends with a MonitorStatus whose type is PeerOffline, and a node
    that comes back is initialized again and gets jobs.

Discovery: nodes announce themselves every D = 2 s (``--ping_interval``)
and the client every D (``config.DiscoveryInterval``); nodes also have
``--peer <client>:9705``.

Jobs sleep 0.5-2 s (seeded).  Each test accounts for every job: exactly one
terminal state (``yield rtask()`` returned once, or ``rtask()`` gave no task),
exactly one TaskStarted and exactly one MonitorStatus at the status task for
each remote task, of the same kind as ``yield rtask()``'s value.

The scenarios' checks are collected and reported together (every failed
check, with the measured figures), so one run shows all that is wrong; the
measured figures are printed as a ``FIGURES`` line (``pytest -s``).
"""
import json
import os
import signal
import sys
import time
from collections import defaultdict

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dispyns  # noqa: E402
from dispyns import DispyNet, RuleWatch, SynWatch, ev, netns, status  # noqa: E402

#: heartbeat interval and zombie period given to the client and the nodes
P = 1.0
Z = 5.0
#: discovery interval: nodes' --ping_interval, the client's config.DiscoveryInterval
D = 2.0
#: server processes per node (a node refuses more than its host's CPUs)
CPUS = max(1, min(2, os.cpu_count() or 1))
#: the jobs' durations (seeded uniform)
JOB_LO, JOB_HI = 0.5, 2.0
#: a silent node is declared dead within [Z, DEAD_BOUND] of going silent
DEAD_BOUND = Z + 2 * P
#: every job running when a node dies ends within this (RELIABILITY E1)
JOB_BOUND = Z + 2 * P + JOB_HI
#: close() returns within this once every job has ended
CLOSE_BOUND = 10.0
#: a connection reset is detected within this (RELIABILITY E4)
RESET_BOUND = 1.0
#: E7: a restarted node's predecessor declared gone within this of the link
#: coming back (the first exchange after it meets the new process)
RESTART_BOUND = 2 * P
#: --peer back-off cap of dispycosnode (docs/dispycos.md: "capped at 30 s")
PEER_RETRY_CAP = 30.0
#: SYNs a node may send to an absent --peer scheduler in 30 s, once it has
#: tried for 30 s: waits of >= 8 s (16 x 0.5) then >= 15 s: 3 tries of 3 SYNs
MAX_LATE_SYNS = 9
#: from a connection to NodeInitialized (handshake, locate, info, files, reserve)
INIT_ALLOWANCE = 5.0
#: how long the nodes run before the client starts (E6)
LATE = 60.0
#: the time to start the cluster: namespaces, client, nodes, CPUS servers each
STARTUP = 90.0
DEAD = ("NodeDisconnected", "NodeAbandoned")


class Checks(object):
    """Failed checks and measured figures, reported together at the end."""

    def __init__(self, name):
        self.name = name
        self.failed = []
        self.figures = {}

    def check(self, ok, message):
        if not ok:
            self.failed.append(message)
        return ok

    def fig(self, name, value):
        if isinstance(value, float):
            value = round(value, 3)
        self.figures[name] = value

    def verify(self, client=None, nodes=()):
        print("FIGURES %s %s" % (self.name, json.dumps(self.figures, sort_keys=True)))
        if self.failed:
            text = "%s: %d check(s) failed:\n- %s\nfigures: %s" % (
                self.name, len(self.failed), "\n- ".join(self.failed),
                json.dumps(self.figures, sort_keys=True))
            if client is not None:
                text += "\n---- client output (last lines):\n" + client.output(150)
            for n in nodes:
                text += "\n---- %s output (last lines):\n%s" % (n.name, n.output(40))
            raise AssertionError(text)


@pytest.fixture
def dnet(request):
    """DispyNet(n) factory; everything is killed and deleted afterwards."""
    nets = []

    def make(n_nodes):
        net = DispyNet(n_nodes)
        nets.append(net)
        return net
    yield make
    problems = []
    for net in nets:
        problems += net.close()
    assert not problems, "\n".join(problems)


def start_cluster(dnet, n_nodes, discovery=D):
    """The client first, then the nodes (each with --peer to it); returns
    (net, client, nodes) once every server is initialized."""
    net = dnet(n_nodes)
    client = net.start_client(P, Z, discovery)
    client.wait_event(ev("ready"), STARTUP, "the client's scheduler")
    nodes = [net.start_node(i, CPUS, P, Z, discovery) for i in range(n_nodes)]
    try:
        client.wait_count(status("ServerInitialized"), n_nodes * CPUS, STARTUP,
                          "ServerInitialized")
    except AssertionError as e:
        raise AssertionError("%s\n%s" % (e, "\n".join("---- %s:\n%s" % (n.name, n.output(40))
                                                        for n in nodes))) from None
    return net, client, nodes


def node_of(server):
    return server.rsplit(":", 1)[0]


def account(client, n):
    """Every job's story from the client's events: {i: record}, problems.

    A record has ``key`` (the remote task), ``node``, ``t_start``
    (``yield client.rtask()`` returned), ``kind``/``t_end`` (``yield rtask()``
    returned: "ok" or the MonitorStatus type), ``end_kind``/``t_status``
    (the MonitorStatus at the status task), or ``nojob``."""
    evs = client.select(lambda e: True)
    jobs = {i: {"i": i, "submitted": [], "results": [], "nojob": []} for i in range(n)}
    started = defaultdict(int)
    ends = defaultdict(list)
    problems = []
    for e in evs:
        if e["ev"] in ("submitted", "result", "nojob"):
            if e["i"] not in jobs:
                problems.append("event for a job never submitted: %r" % e)
                continue
            jobs[e["i"]][{"submitted": "submitted", "result": "results",
                          "nojob": "nojob"}[e["ev"]]].append(e)
        elif e["ev"] == "status" and e["kind"] == "TaskStarted":
            started[e["job"]] += 1
        elif e["ev"] == "end":
            ends[e["job"]].append(e)
    keys = set()
    for i, j in jobs.items():
        terminal = len(j["results"]) + len(j["nojob"])
        if terminal == 0:
            problems.append("job %d never ended (%s)" % (
                i, "running on %s" % j["submitted"][0]["server"] if j["submitted"]
                else "never placed"))
        elif terminal > 1:
            problems.append("job %d reported %d times: %r" % (i, terminal,
                                                              j["results"] + j["nojob"]))
        if j["nojob"]:
            j["nojob_value"] = j["nojob"][0]["value"]
        if not j["submitted"]:
            continue
        s = j["submitted"][0]
        k = j["key"] = s["job"]
        keys.add(k)
        j["node"] = node_of(s["server"])
        j["t_start"] = s["t"]
        if j["results"]:
            j["kind"] = j["results"][0]["kind"]
            j["t_end"] = j["results"][0]["t"]
        if started[k] != 1:
            problems.append("job %d (%s): %d TaskStarted at the status task"
                            % (i, k, started[k]))
        if len(ends[k]) != 1:
            problems.append("job %d (%s): %d MonitorStatus at the status task: %s"
                            % (i, k, len(ends[k]), [x["kind"] for x in ends[k]]))
        if ends[k]:
            j["end_kind"] = ends[k][0]["kind"]
            j["t_status"] = ends[k][0]["t"]
            if "kind" in j:
                same = (j["kind"] == j["end_kind"] or
                        (j["kind"] == "ok" and j["end_kind"] == "StopIteration"))
                if not same:
                    problems.append("job %d: yield rtask() gave %s, the status task %s"
                                    % (i, j["kind"], j["end_kind"]))
    for k in set(ends) - keys:
        problems.append("MonitorStatus at the status task for a job no rtask() returned: "
                        "%s %s" % (k, [x["kind"] for x in ends[k]]))
    return jobs, problems


def running_at(jobs, t, node=None):
    """The jobs placed before ``t`` that had not ended by then (on ``node``)."""
    return [j for j in jobs.values() if "t_start" in j and j["t_start"] < t
            and j.get("t_end", float("inf")) > t and (node is None or j["node"] == node)]


def in_flight(j, t):
    """Whether job ``j`` ended normally right after the fault at ``t``: its
    result was on its way already."""
    return j.get("kind") == "ok" and j["t_end"] < t + 0.3


def terminal(e):
    return e["ev"] in ("result", "nojob")


def close_client(client, checks, bound=CLOSE_BOUND):
    """Close the client: health before, close() within ``bound``,
    ClientClosed, a clean exit."""
    client.send("close")
    try:
        closed = client.wait_event(ev("closed"), bound + 30, "close() returning")
    except AssertionError:
        checks.check(False, "close() did not return within %.0f s" % (bound + 30))
        checks.fig("close_s", None)
        return
    changed = [(e["i"], e["kind"]) for e in client.select(ev("recheck"))
               if e["kind"] != [r["kind"] for r in client.select(ev("result", i=e["i"]))][0]]
    checks.check(not changed, "yield rtask() answered differently the second time: %r"
                 % changed)
    h = client.select(ev("health"))[0]
    checks.check(h["scheduler"] and h["monitor"],
                 "the scheduler's tasks died: %r" % h)
    checks.check(h["running"] == 0 and h["tasks"] == 0 and h["waiting"] == 0,
                 "jobs still counted as running or waiting at close: %r" % h)
    checks.fig("close_s", closed["took"])
    checks.check(closed["took"] <= bound, "close() took %.2f s (bound %.1f s)"
                 % (closed["took"], bound))
    checks.check(closed["rc"] == 0, "close() returned %r" % closed["rc"])
    client.wait_event(ev("finished"), 30, "ClientClosed")
    rc = client.wait_exit(30)
    checks.check(rc == 0, "the client program exited with %s" % rc)
    errors = client.errors()
    checks.check(not errors, "exceptions in the client process:\n%s" % "\n".join(errors))


def dead_event(client, addr, since, timeout):
    """The first NodeDisconnected/NodeAbandoned for node ``addr`` after
    ``since``, or None within ``timeout``."""
    try:
        return client.wait_event(status(DEAD, node=addr), timeout,
                                 "NodeDisconnected/NodeAbandoned for %s" % addr, since=since)
    except AssertionError:
        return None


def check_lost_jobs(checks, lost, t0, lo, hi, kinds, what):
    """Jobs ``lost`` (running on a node when it failed at ``t0``) each ended
    once, with a MonitorStatus of type in ``kinds``, within [t0+lo, t0+hi] --
    or finished normally, its result having come through before the failure
    was detected (not lost, then; reported once all the same)."""
    for j in lost:
        kind = j.get("kind")
        if kind == "ok" and j.get("end_kind") == "StopIteration":
            continue
        checks.check(kind in kinds and j.get("end_kind") in kinds,
                     "%s: job %d on %s ended with %s (status task: %s), not %s"
                     % (what, j["i"], j["node"], kind, j.get("end_kind"), "/".join(kinds)))
        if "t_end" in j:
            took = j["t_end"] - t0
            checks.check(lo <= took <= hi, "%s: job %d ended %.2f s after the fault, "
                         "not within [%.1f, %.1f] s" % (what, j["i"], took, lo, hi))
    took = [j["t_end"] - t0 for j in lost if "t_end" in j]
    return (min(took), max(took)) if took else None


# ---- E1 / E2: nodes killed during 100 jobs ------------------------------------------


def _kill_during_jobs(dnet, name, n_victims, kill_host, kill_after):
    checks = Checks(name)
    net, client, nodes = start_cluster(dnet, 3)
    n = 100
    client.send("run %d 1 %s %s" % (n, JOB_LO, JOB_HI))
    client.wait_count(terminal, kill_after, 120, "job ends")
    victims = nodes[:n_victims]
    addrs = [v.addr for v in victims]
    # jobs on the victims now (all their servers are busy: the queue is long)
    client.wait_event(lambda e: e["ev"] == "submitted" and node_of(e["server"]) in addrs,
                      30, "a job on a victim")
    server_pids = {v.addr: net.pids(v.host) - {v.pid} for v in victims}
    t_kill = time.monotonic()
    if kill_host:
        for v in victims:
            net.kill_host(v.host)                     # the daemon and its servers
    else:
        for v in victims:
            os.kill(v.pid, signal.SIGKILL)            # the daemon alone
    left = n * JOB_HI / (CPUS * (3 - n_victims)) + JOB_BOUND + 30
    try:
        client.wait_count(terminal, n, left, "job ends")
    except AssertionError:
        pass                                          # (accounted for below)
    # (accounted once the status task has everything: after ClientClosed)
    close_client(client, checks)
    jobs, problems = account(client, n)
    for p in problems:
        checks.check(False, p)
    # every job running at the kill ended within Z + 2P + the longest job
    at_kill = running_at(jobs, t_kill)
    checks.fig("running_at_kill", len(at_kill))
    late = [(j["i"], round(j.get("t_end", float("inf")) - t_kill, 2)) for j in at_kill
            if j.get("t_end", float("inf")) - t_kill > JOB_BOUND]
    checks.check(not late, "jobs running at the kill that ended later than %.1f s: %r"
                 % (JOB_BOUND, late))
    ended = [j["t_end"] - t_kill for j in at_kill if "t_end" in j]
    checks.fig("last_running_job_end_s", max(ended) if ended else None)
    # the victims' jobs are lost: an exception as their MonitorStatus
    lost = [j for j in at_kill if j["node"] in addrs]
    checks.fig("victim_jobs", len(lost))
    checks.check(lost, "no job was running on the killed node(s)")
    kinds = ("PeerOffline",) if kill_host else ("PeerOffline", "KeyboardInterrupt")
    span = check_lost_jobs(checks, lost, t_kill, 0, JOB_BOUND, kinds, "lost")
    checks.fig("victim_jobs_end_s", span)
    checks.fig("victim_job_kinds", sorted({j.get("kind") for j in lost}))
    # nothing on a victim ended normally after the kill, or started there after it
    after = [j["i"] for j in jobs.values() if j.get("node") in addrs
             and j.get("t_end", 0) > t_kill + 0.2 and j.get("kind") == "ok"]
    checks.check(not after, "jobs on a killed node returned results: %r" % after)
    checks.fig("placed_on_victims_after_kill",
               [(j["i"], j.get("kind")) for j in jobs.values()
                if j.get("node") in addrs and j["t_start"] > t_kill])
    checks.fig("nojob", [j["i"] for j in jobs.values() if j["nojob"]])
    checks.fig("kinds", dict(sorted(_count(j.get("kind", "nojob" if j["nojob"] else "?")
                                           for j in jobs.values()).items())))
    # the victims are declared gone (figure: when)
    for a in addrs:
        e = client.select(status(DEAD, node=a), since=t_kill)
        checks.fig("node_dead_s[%s]" % a, e[0]["t"] - t_kill if e else None)
        sd = client.select(lambda e: e["ev"] == "status" and e["kind"] == "ServerDisconnected"
                           and node_of(e["server"]) == a, since=t_kill)
        checks.fig("servers_disconnected_s[%s]" % a,
                   [round(x["t"] - t_kill, 2) for x in sd])
    for a in addrs:
        checks.check(client.select(status(DEAD, node=a), since=t_kill),
                     "node %s killed but never declared gone (NodeDisconnected/"
                     "NodeAbandoned)" % a)
    if not kill_host:
        # a node's servers end when it dies, even by kill -9
        orphans = {a: [p for p in pids if netns._alive(p)] for a, pids in server_pids.items()}
        checks.check(not any(orphans.values()), "servers outlived their node: %r" % orphans)
    checks.fig("t_total_s", time.monotonic() - t_kill)
    checks.verify(client, nodes)


def _count(items):
    c = defaultdict(int)
    for x in items:
        c[x] += 1
    return c


@pytest.mark.timeout(240)
def test_e1_kill_node_during_jobs(dnet):
    """E1: 3 nodes (CPUS servers each) in 3 namespaces, the client in a 4th;
    100 jobs of 0.5-2 s; after 40 have ended, one node's host is killed
    (kill -9 of its daemon and its servers at once, as a crash).  Every job
    running then ends within Z + 2P + the longest job; the dead node's jobs
    end with a PeerOffline MonitorStatus (at ``yield rtask()`` and at the
    status task, once each); every one of the 100 jobs ends exactly once;
    the scheduler stays healthy; close() returns within CLOSE_BOUND."""
    _kill_during_jobs(dnet, "E1", 1, kill_host=True, kill_after=40)


@pytest.mark.timeout(240)
def test_e2_kill_two_of_three_nodes(dnet):
    """E2: the same cluster and jobs; after 70 have ended, two of the
    three node daemons are killed with -9 at once (the daemons only: their
    servers notice the node's pipe close and stop, so their jobs end with
    KeyboardInterrupt or PeerOffline).  The same bars as E1, no exception
    in the client process (its scheduler's tasks alive), and no server
    process outlives its node."""
    _kill_during_jobs(dnet, "E2", 2, kill_host=False, kill_after=70)


# ---- E3: partition and heal ---------------------------------------------------------


@pytest.mark.timeout(240)
@pytest.mark.parametrize("cut", ["link", "one-way"])
def test_e3_partition_and_heal(dnet, cut):
    """E3: one node's link down (bridge port down: silence both ways) for
    2 x Z while jobs run, then up.  The node is declared dead
    (NodeDisconnected/NodeAbandoned) within [Z, Z + 2P] of the cut and its
    running jobs end then with PeerOffline; after the link is up it is
    initialized again (NodeInitialized) within two discovery intervals and
    gets jobs again; results of its old incarnation are ignored (each job
    is reported exactly once, as lost, and ``yield rtask()`` asked again
    gives the same); close() does not hang.

    Two cuts: ``link`` (the bridge port down: nothing passes either way;
    the node, too, gives up its silent client after the client's Z and
    stops its servers), and ``one-way`` (iptables on the node's host drops
    what it sends, nothing else: what the node and its old servers send
    during the cut -- results of jobs that end then, the KeyboardInterrupt
    ends when the node gives up its client -- stays queued in TCP and is
    delivered after the heal: the old incarnation's results, which must
    not be reported again)."""
    if cut == "one-way":
        netns.require_iptables()
    checks = Checks("E3-%s" % cut)
    net, client, nodes = start_cluster(dnet, 3)
    victim = nodes[0]
    a = victim.addr
    n1, n2 = 50, 30
    client.send("run %d 3 %s %s" % (n1, JOB_LO, JOB_HI))
    client.wait_count(terminal, 9, 60, "job ends")
    t = time.monotonic()
    client.wait_event(lambda e: e["ev"] == "submitted" and node_of(e["server"]) == a, 30,
                      "a job on the victim", since=t)
    t_down = time.monotonic()
    h = victim.host
    if cut == "link":
        h.link_down()
    else:
        h.iptables("-I", "OUTPUT", "1", "-o", h.iface, "-j", "DROP")
    dead = dead_event(client, a, t_down, 2 * Z)
    if dead is not None:
        checks.fig("declared_dead_s", dead["t"] - t_down)
        checks.fig("dead_status", dead["kind"])
        checks.check(Z <= dead["t"] - t_down <= DEAD_BOUND,
                     "node declared dead %.2f s after the cut, not within [%.1f, %.1f] s"
                     % (dead["t"] - t_down, Z, DEAD_BOUND))
    else:
        checks.fig("declared_dead_s", None)
        checks.check(False, "node not declared dead (NodeDisconnected/NodeAbandoned) "
                     "within the %.0f s the link was down (bound %.1f s)" % (2 * Z, DEAD_BOUND))
    # the partition lasts 2 x Z: a deadline, not a wait for things to settle
    left = t_down + 2 * Z - time.monotonic()
    if left > 0:
        time.sleep(left)
    old_servers = net.pids(h) - {victim.pid}
    if cut == "link":
        h.link_up()
    else:
        h.iptables("-D", "OUTPUT", "1")
    t_up = time.monotonic()
    checks.fig("old_servers_alive_at_heal", len(old_servers))
    checks.fig("link_down_s", t_up - t_down)
    try:
        back = client.wait_event(status("NodeInitialized", node=a), 2 * D + 10,
                                 "NodeInitialized for %s after the link is up" % a, since=t_up)
    except AssertionError:
        back = None
    if back is not None:
        checks.fig("rejoined_s", back["t"] - t_up)
        checks.check(back["t"] - t_up <= 2 * D, "node initialized again %.2f s after the "
                     "link was up, not within 2 discovery intervals (%.1f s)"
                     % (back["t"] - t_up, 2 * D))
        try:
            srv = client.wait_count(lambda e: e["ev"] == "status"
                                    and e["kind"] == "ServerInitialized"
                                    and node_of(e["server"]) == a, CPUS, 30,
                                    "its servers initialized", since=t_up)
            checks.fig("servers_back_s", srv[-1]["t"] - t_up)
        except AssertionError:
            checks.check(False, "the rejoined node's servers were not initialized "
                         "within 30 s")
    else:
        checks.fig("rejoined_s", None)
        checks.check(False, "no NodeInitialized for the node within %.0f s of the link "
                     "being up (bound %.1f s)" % (2 * D + 10, 2 * D))
    # more jobs: the node must get some again
    t_more = time.monotonic()
    client.send("run %d 4 %s %s" % (n2, JOB_LO, JOB_HI))
    try:
        client.wait_count(terminal, n1 + n2, 60, "job ends")
    except AssertionError:
        pass                                       # (accounted for below)
    checks.fig("second_batch_s", time.monotonic() - t_more)
    close_client(client, checks)
    jobs, problems = account(client, n1 + n2)
    for p in problems:
        checks.check(False, p)
    lost = running_at(jobs, t_down, a)
    checks.fig("victim_jobs_at_cut", len(lost))
    checks.check(lost, "no job was running on the node when its link went down")
    lost = [j for j in lost if not in_flight(j, t_down)]
    span = check_lost_jobs(checks, lost, t_down, Z, DEAD_BOUND, ("PeerOffline",), "cut")
    checks.fig("victim_jobs_end_s", span)
    checks.fig("victim_job_kinds", sorted({str(j.get("kind")) for j in lost}))
    # jobs placed on the node while it was cut off, before it was declared dead
    during = [j for j in jobs.values() if j.get("node") == a and t_down < j["t_start"] < t_up]
    checks.fig("placed_during_cut", [(j["i"], j.get("kind")) for j in during])
    again = [j for j in jobs.values() if j.get("node") == a and j["t_start"] > t_up]
    checks.fig("jobs_on_node_after_heal", len(again))
    checks.check(again, "the node got no jobs after it came back")
    bad = [(j["i"], j.get("kind")) for j in again if j.get("kind") != "ok"]
    checks.check(not bad, "jobs on the rejoined node failed: %r" % bad)
    checks.fig("nojob", [j["i"] for j in jobs.values() if j["nojob"]])
    checks.fig("stuck", [j["i"] for j in jobs.values() if not j["results"] and not j["nojob"]])
    checks.verify(client, nodes)


# ---- E4: blackhole vs reset ---------------------------------------------------------


@pytest.mark.timeout(180)
@pytest.mark.parametrize("mode", ["reset", "drop"])
def test_e4_blackhole_vs_reset(dnet, mode):
    """E4: on one node's host, iptables answers every TCP packet that
    arrives with a reset (``REJECT --reject-with tcp-reset``), or drops
    everything both ways (``DROP``).  The reset is detected within 1 s of
    the first reset sent (the rule's packet counter, polled, says when):
    the node declared gone and its running jobs ended with PeerOffline; the
    silent drop within the zombie bound [Z, Z + 2P].  (With REJECT only
    what arrives at the node is refused: a result the node sends before it
    is declared gone still reaches the client.)  Every job ends exactly
    once; close() returns within CLOSE_BOUND."""
    netns.require_iptables()
    checks = Checks("E4-%s" % mode)
    net, client, nodes = start_cluster(dnet, 2)
    victim = nodes[0]
    a = victim.addr
    h = victim.host
    n = 40
    client.send("run %d 5 %s %s" % (n, JOB_LO, JOB_HI))
    client.wait_count(terminal, 6, 60, "job ends")
    t = time.monotonic()
    client.wait_event(lambda e: e["ev"] == "submitted" and node_of(e["server"]) == a, 30,
                      "a job on the victim", since=t)
    watch = None
    t_rule = time.monotonic()
    if mode == "reset":
        h.iptables("-I", "INPUT", "1", "-i", h.iface, "-p", "tcp", "-j", "REJECT",
                   "--reject-with", "tcp-reset")
        watch = RuleWatch(h, "INPUT")
    else:
        h.iptables("-I", "INPUT", "1", "-i", h.iface, "-j", "DROP")
        h.iptables("-I", "OUTPUT", "1", "-o", h.iface, "-j", "DROP")
    # waited for up to netpycos's own bound, so that a miss is measured too
    dead = dead_event(client, a, t_rule, 10 + 10 + 5)
    if watch is not None:
        watch.stop()
        checks.check(watch.error is None, "polling the REJECT rule failed: %r" % watch.error)
    t0 = t_rule
    if mode == "reset":
        first = watch.first
        checks.fig("first_reset_s", None if first is None else first - t_rule)
        checks.check(first is not None, "the REJECT rule never matched a packet")
        # measured from the earliest time the first reset can have been sent
        t0 = (watch.before or t_rule) if first is not None else t_rule
        lo, hi = 0.0, RESET_BOUND
    else:
        lo, hi = Z, DEAD_BOUND
    if dead is not None:
        checks.fig("declared_dead_s", dead["t"] - t0)
        checks.fig("dead_status", dead["kind"])
        checks.check(lo <= dead["t"] - t0 <= hi, "node declared gone %.2f s after the %s, "
                     "not within [%.1f, %.1f] s" % (dead["t"] - t0,
                                                    "first reset" if mode == "reset"
                                                    else "drop began", lo, hi))
    else:
        checks.fig("declared_dead_s", None)
        checks.check(False, "node never declared gone (NodeDisconnected/NodeAbandoned) "
                     "within %.0f s (bound %.1f s)" % (25, hi))
    try:
        client.wait_count(terminal, n, 60, "job ends")
    except AssertionError:
        pass                                       # (accounted for below)
    close_client(client, checks)
    jobs, problems = account(client, n)
    for p in problems:
        checks.check(False, p)
    lost = running_at(jobs, t_rule, a)
    checks.fig("victim_jobs", len(lost))
    checks.check(lost, "no job was running on the node when the rule was set")
    if mode == "reset":
        # results still leave the node (only what arrives there is refused):
        # a job's result that came before the node was declared gone counts
        got_through = dead["t"] if dead is not None else float("inf")
        lost = [j for j in lost if not (j.get("kind") == "ok" and j["t_end"] < got_through)]
    else:
        lost = [j for j in lost if not in_flight(j, t_rule)]
    span = check_lost_jobs(checks, lost, t0, lo, hi, ("PeerOffline",), mode)
    checks.fig("victim_jobs_end_s", span)
    checks.fig("victim_job_kinds", sorted({str(j.get("kind")) for j in lost}))
    checks.fig("placed_after_rule", [(j["i"], j.get("kind")) for j in jobs.values()
                                     if j.get("node") == a and j["t_start"] > t_rule])
    checks.fig("nojob", [j["i"] for j in jobs.values() if j["nojob"]])
    checks.fig("stuck", [j["i"] for j in jobs.values() if not j["results"] and not j["nojob"]])
    checks.verify(client, nodes)


# ---- E7: a node restarted on its address --------------------------------------------


@pytest.mark.timeout(180)
def test_e7_node_restarted_on_its_address(dnet):
    """E7 (ours): a node's host is cut off, crashes (kill -9 of its daemon and
    servers) and has its node started again -- same address, same ports --
    before the link comes back, so no refused connection tells the client
    anything: its connections to the old processes just meet the new ones.
    The client tells them apart by the incarnation in netpycos's hellos:
    the old node is declared gone within RESTART_BOUND of the link coming
    back (not a zombie period after its last pulse), its running jobs end
    with PeerOffline -- none stuck, each reported once -- and the new node
    and its servers are initialized and get jobs."""
    checks = Checks("E7")
    net, client, nodes = start_cluster(dnet, 2)
    victim = nodes[0]
    a, h = victim.addr, victim.host
    n1, n2 = 30, 20
    client.send("run %d 3 %s %s" % (n1, JOB_LO, JOB_HI))
    client.wait_event(lambda e: e["ev"] == "submitted" and node_of(e["server"]) == a, 60,
                      "a job on the victim")
    t_down = time.monotonic()
    h.link_down()
    net.kill_host(h)
    victim.wait_exit(10)
    nodes[0] = net.start_node(0, CPUS, P, Z, D)
    nodes[0].wait_line(r"^dispycosnode ", 30)
    h.link_up()
    t_up = time.monotonic()
    checks.fig("link_down_s", t_up - t_down)
    dead = dead_event(client, a, t_down, Z + 2 * P + 10)
    checks.fig("declared_dead_after_up_s", dead["t"] - t_up if dead else None)
    checks.check(dead is not None and dead["t"] - t_up <= RESTART_BOUND,
                 "old node not declared gone within %.1f s of the link coming back"
                 % RESTART_BOUND)
    try:
        srv = client.wait_count(lambda e: e["ev"] == "status" and e["kind"] == "ServerInitialized"
                                and node_of(e["server"]) == a, CPUS, 30,
                                "the new node's servers initialized", since=t_up)
        checks.fig("servers_back_s", srv[-1]["t"] - t_up)
    except AssertionError:
        checks.check(False, "the new node's servers were not initialized within 30 s")
    client.send("run %d 4 %s %s" % (n2, JOB_LO, JOB_HI))
    try:
        client.wait_count(terminal, n1 + n2, 90, "job ends")
    except AssertionError:
        pass                                       # (accounted for below)
    close_client(client, checks)
    jobs, problems = account(client, n1 + n2)
    for p in problems:
        checks.check(False, p)
    lost = [j for j in running_at(jobs, t_down, a) if not in_flight(j, t_down)]
    checks.fig("victim_jobs_at_cut", len(lost))
    checks.check(lost, "no job was running on the node when it was cut off")
    checks.fig("victim_job_kinds", sorted({str(j.get("kind")) for j in lost}))
    checks.check(all(j.get("kind") == "PeerOffline" for j in lost),
                 "jobs of the old node that did not end with PeerOffline: %r"
                 % [(j["i"], j.get("kind")) for j in lost if j.get("kind") != "PeerOffline"])
    again = [j for j in jobs.values() if j.get("node") == a and j["t_start"] > t_up]
    checks.fig("jobs_on_new_node", len(again))
    checks.check(again, "the new node got no jobs")
    bad = [(j["i"], j.get("kind")) for j in again if j.get("kind") != "ok"]
    checks.check(not bad, "jobs on the new node failed: %r" % bad)
    stuck = [j["i"] for j in jobs.values() if not j["results"] and not j["nojob"]]
    checks.fig("stuck", stuck)
    checks.check(not stuck, "jobs that never ended: %r" % stuck)
    checks.verify(client, nodes)


# ---- E6: the scheduler starts late, UDP does not pass -------------------------------


@pytest.mark.timeout(300)
def test_e6_late_scheduler_without_udp(dnet):
    """E6: UDP dropped on every host's eth0 (no discovery at all); three
    nodes start with ``--peer <client>:9705``, the client 60 s later.
    The nodes keep trying (a jittered back-off capped at 30 s: the SYNs
    they send, counted by iptables on the client's host, show each wait
    between two tries is at most 30 s), and the client gets NodeInitialized
    from each within 30 s + INIT_ALLOWANCE of its start; jobs then run on
    them."""
    netns.require_iptables()
    checks = Checks("E6")
    net = dnet(3)
    for h in net.cluster.hosts:
        h.iptables("-A", "INPUT", "-i", h.iface, "-p", "udp", "-j", "DROP")
        h.iptables("-A", "OUTPUT", "-o", h.iface, "-p", "udp", "-j", "DROP")
    syns = SynWatch(net.client_host, [h.addr for h in net.node_hosts], dispyns.SCHED_PORT)
    try:
        nodes = [net.start_node(i, CPUS, P, Z, D) for i in range(3)]
        for nd in nodes:
            nd.wait_line(r"^dispycosnode ", STARTUP)
        t_nodes = time.monotonic()
        # the scenario's head start of the nodes (a deadline: a node that
        # ends meanwhile fails at once)
        for nd in nodes:
            left = t_nodes + LATE - time.monotonic()
            try:
                rc = nd.proc.wait(max(left, 0))
            except Exception:
                continue
            raise AssertionError("%s ended (rc %s) while waiting for the client:\n%s"
                                 % (nd.name, rc, nd.output()))
        client = net.start_client(P, Z, D)
        ready = client.wait_event(ev("ready"), STARTUP, "the client's scheduler")
        t_ready = ready["t"]
        bound = PEER_RETRY_CAP + INIT_ALLOWANCE
        try:
            client.wait_count(status("NodeInitialized"), 3, bound + 20, "NodeInitialized")
        except AssertionError:
            pass
        for nd in nodes:
            e = client.select(status("NodeInitialized", node=nd.addr))
            took = e[0]["t"] - t_ready if e else None
            checks.fig("node_initialized_s[%s]" % nd.addr, took)
            checks.check(took is not None and took <= bound,
                         "node %s initialized %s after the client started (bound %.0f s)"
                         % (nd.addr, "never" if took is None else "%.1f s" % took, bound))
    finally:
        syns.stop()
    checks.check(syns.error is None, "counting SYNs failed: %r" % syns.error)
    for nd in nodes:
        # the back-off: in the last 30 s before the client came, a node whose
        # waits grow to 30 s (x 0.5-1.5 jitter) tried at most ~3 times
        # (netpycos sends up to 3 SYNs per try to a port that refuses)
        late = syns.syns_between(nd.addr, t_nodes + LATE - 30, t_nodes + LATE)
        checks.fig("syns_in_last_30s_before_client[%s]" % nd.addr, late)
        checks.fig("syns_per_10s_before_client[%s]" % nd.addr,
                   [syns.syns_between(nd.addr, t_nodes + k, t_nodes + k + 10)
                    for k in range(0, int(LATE), 10)])
        checks.check(late <= MAX_LATE_SYNS,
                     "node %s sent %d SYNs to the absent scheduler in the 30 s before it "
                     "started (a back-off growing to 30 s allows %d): it does not back off"
                     % (nd.addr, late, MAX_LATE_SYNS))
        tries = syns.attempts(nd.addr)
        gaps = [b - a for a, b in zip(tries, tries[1:])]
        checks.fig("tries[%s]" % nd.addr, [round(t - t_nodes, 1) for t in tries])
        checks.fig("max_gap_s[%s]" % nd.addr, max(gaps) if gaps else None)
        checks.check(tries, "no connection attempt from %s seen" % nd.addr)
        # (+ the counters' polling period and the refusals' own retries)
        worst = max(gaps) if gaps else 0.0
        checks.check(worst <= PEER_RETRY_CAP + 1.0,
                     "node %s waited %.1f s between two tries (cap %.0f s)"
                     % (nd.addr, worst, PEER_RETRY_CAP))
    ran = len(client.select(status("NodeInitialized"))) == 3
    if ran:
        client.wait_count(status("ServerInitialized"), 3 * CPUS, 60, "ServerInitialized")
        client.send("run 9 6 0.2 0.5")
        client.wait_count(terminal, 9, 60, "job ends")
    close_client(client, checks)
    if ran:
        jobs, problems = account(client, 9)
        for p in problems:
            checks.check(False, p)
        checks.check(all(j.get("kind") == "ok" for j in jobs.values()),
                     "jobs failed: %r" % [(j["i"], j.get("kind")) for j in jobs.values()])
    checks.verify(client, nodes)
