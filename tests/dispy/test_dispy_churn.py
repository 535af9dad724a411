"""RELIABILITY.md G2, churn (behind the soak marker): 3 nodes, one of them
killed with -9 and started again every cycle while jobs keep running.

In network namespaces (tests/dispy/dispyns.py, the hosts and client
program of the E tests in test_dispy_faults.py): a client host and three
node hosts.  Each cycle (CYCLE_PERIOD s) the client is given enough jobs
(0.5-2 s each) to keep every server busy for the cycle; a quarter into it,
while the victim runs jobs, the next node in turn is killed -- its whole
host (daemon and servers at once, a crash) on even cycles, the daemon
alone on odd ones (its servers must end by themselves) -- and, once its
processes are gone, started again on the same address and port; the
client must initialize it again and give it jobs.

At the end: every job ended exactly once (a result, or a MonitorStatus:
PeerOffline / KeyboardInterrupt for those on a killed node), none stuck;
the client process -- where the in-process scheduler runs -- grew its
resident memory by less than MEM_LIMIT, and its descriptors (within
FD_SLACK) and threads came back to their baseline, measured after a
warm-up cycle with every job done and every node up (the client program's
``stats`` command: after gc.collect(), from /proc/self/statm and
/proc/self/fd).

    pytest -m soak -s tests/dispy/test_dispy_churn.py      # 30 cycles of 60 s
    PYCOS_CHURN_CYCLES=4 PYCOS_CHURN_PERIOD=15 pytest -m soak -s ...   # a short run

The figures are printed (``FIGURES G2 {...}``).
"""
import os
import signal
import sys
import time
from collections import Counter

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_dispy_faults as faults  # noqa: E402
from dispyns import ev, status  # noqa: E402
from test_dispy_faults import (CPUS, D, JOB_HI, JOB_LO, P, Z, Checks, account,  # noqa: E402
                               close_client, node_of, start_cluster, terminal)

#: the namespaces fixture of the E tests
dnet = faults.dnet

#: cycles (RELIABILITY.md G2: 30) and their period (there: a minute)
CYCLES = int(os.environ.get("PYCOS_CHURN_CYCLES", "30"))
CYCLE_PERIOD = float(os.environ.get("PYCOS_CHURN_PERIOD", "60"))
#: warm-up cycles before the baseline is measured
WARMUP = 1
#: the bars: client memory growth; descriptors over the baseline (a
#: connection being made as they are counted; a leak per cycle shows as
#: one per cycle)
MEM_LIMIT = 10 * 2 ** 20
FD_SLACK = 2
#: a killed node's processes are gone within this (servers whose node died
#: end when their lifeline closes, after at most the spawner's grace)
GONE_BOUND = 15.0
#: a restarted node is initialized, with its servers, within this
REJOIN_BOUND = 30.0
#: what a job on a killed node may end with
LOST_KINDS = ("PeerOffline", "KeyboardInterrupt")


def _batch():
    """Jobs that keep every server busy for about one cycle."""
    return max(1, int(3 * CPUS * CYCLE_PERIOD / ((JOB_LO + JOB_HI) / 2) * 0.9))


class Churn(object):
    """The cluster, the jobs submitted so far, and what each cycle did."""

    def __init__(self, net, client, nodes, checks):
        self.net = net
        self.client = client
        self.nodes = nodes
        self.checks = checks
        self.submitted = 0
        self.figs = {"gone_s": [], "dead_s": [], "rejoin_s": []}
        self.kills = []                      # (node address, when)
        self.starts = []                     # (cycle, node address, when it was restarted)

    def cycle(self, k):
        """Cycle ``k``: a batch of jobs; node ``k % 3`` killed and restarted."""
        client, net, checks = self.client, self.net, self.checks
        t_cycle = time.monotonic()
        n = _batch()
        client.send("run %d %d %s %s" % (n, 1000 + k, JOB_LO, JOB_HI))
        self.submitted += n
        victim = self.nodes[k % 3]
        a, h = victim.addr, victim.host
        left = t_cycle + CYCLE_PERIOD / 4 - time.monotonic()
        if left > 0:
            time.sleep(left)                 # (the scenario's timing: a deadline)
        client.wait_event(lambda e: e["ev"] == "submitted" and node_of(e["server"]) == a,
                          30, "a job on %s" % a, since=t_cycle)
        t_kill = time.monotonic()
        if k % 2 == 0:
            net.kill_host(h)                 # the daemon and its servers: a crash
        else:
            os.kill(victim.pid, signal.SIGKILL)      # the daemon alone
        self.kills.append((a, t_kill))
        victim.wait_exit(10)
        end = t_kill + GONE_BOUND
        while net.pids(h) and time.monotonic() < end:
            time.sleep(0.1)                  # (polls the host's processes)
        left = sorted(net.pids(h))
        if not checks.check(not left, "cycle %d: processes on %s's host %.0f s after its "
                            "node was killed: %r" % (k, a, GONE_BOUND, left)):
            return
        self.figs["gone_s"].append(round(time.monotonic() - t_kill, 2))
        t_start = time.monotonic()
        self.nodes[k % 3] = net.start_node(k % 3, CPUS, P, Z, D)
        self.starts.append((k, a, t_start))
        try:
            client.wait_count(lambda e: e["ev"] == "status" and e["kind"] == "ServerInitialized"
                              and node_of(e["server"]) == a, CPUS, REJOIN_BOUND,
                              "%s's servers initialized again" % a, since=t_start)
            self.figs["rejoin_s"].append(round(time.monotonic() - t_start, 2))
        except AssertionError:
            checks.check(False, "cycle %d: %s's servers not initialized within %.0f s of its "
                         "restart" % (k, a, REJOIN_BOUND))
        dead = client.select(status(("NodeDisconnected", "NodeAbandoned"), node=a),
                             since=t_kill)
        self.figs["dead_s"].append(round(dead[0]["t"] - t_kill, 2) if dead else None)
        left = t_cycle + CYCLE_PERIOD - time.monotonic()
        if left > 0:
            time.sleep(left)                 # (the cycle's period: a deadline)

    def drain(self, what):
        """Wait for every job submitted so far to end."""
        left = self.submitted - len(self.client.select(terminal))
        bound = left * JOB_HI / (2 * CPUS) + 60
        try:
            self.client.wait_count(terminal, self.submitted, bound, "job ends")
        except AssertionError:
            self.checks.check(False, "%s: not every job ended within %.0f s" % (what, bound))

    def stats(self):
        """The client's ``stats`` event, asked for now."""
        t = time.monotonic()
        self.client.send("stats")
        return self.client.wait_event(ev("stats"), 30, "the client's stats", since=t)

    def check_rejoined(self, jobs):
        """Each restarted node got jobs before it was killed again (or the
        run ended)."""
        got = []
        for k, a, t in self.starts:
            until = min([tk for ak, tk in self.kills if ak == a and tk > t] or [float("inf")])
            got.append(len([j for j in jobs.values()
                            if j.get("node") == a and t < j["t_start"] < until]))
        self.checks.fig("jobs_per_restart", got)
        idle = [(k, a) for (k, a, t), n in zip(self.starts, got) if not n]
        self.checks.check(not idle, "restarted nodes that got no job: %r (cycle, node)" % idle)


@pytest.mark.soak
@pytest.mark.timeout((CYCLES + WARMUP + 3) * CYCLE_PERIOD + 600)
def test_g2_churn(dnet):
    """G2: CYCLES cycles of one node killed and restarted while jobs run:
    every job ends exactly once, with a result or (on a killed node) a
    PeerOffline/KeyboardInterrupt MonitorStatus -- none stuck, and none
    left without a task by ``rtask()`` (docs/dispycos.md: a job sent to a
    server that goes away at that moment is placed on another one); each
    restarted node gets jobs again; client memory growth < 10 MiB and no
    descriptor or thread left over, after WARMUP cycles."""
    checks = Checks("G2")
    checks.fig("cycles", CYCLES)
    checks.fig("cycle_period_s", CYCLE_PERIOD)
    net, client, nodes = start_cluster(dnet, 3)
    churn = Churn(net, client, nodes, checks)
    t0 = time.monotonic()
    for k in range(WARMUP):
        churn.cycle(k)
    churn.drain("warm-up")
    base = churn.stats()
    for k in range(WARMUP, WARMUP + CYCLES):
        churn.cycle(k)
    churn.drain("the cycles")
    last = churn.stats()
    checks.fig("t_total_s", time.monotonic() - t0)
    checks.fig("jobs", churn.submitted)
    for name in ("rss", "fds", "threads", "jobs"):
        checks.fig("client_%s" % name, [base[name], last[name]])
    growth = last["rss"] - base["rss"]
    checks.fig("client_rss_growth_mib", growth / 2 ** 20)
    checks.check(growth < MEM_LIMIT, "the client's resident memory grew %.1f MiB (bar %.0f "
                 "MiB)" % (growth / 2 ** 20, MEM_LIMIT / 2 ** 20))
    checks.check(last["fds"] <= base["fds"] + FD_SLACK, "the client holds %d descriptors, "
                 "%d after the warm-up" % (last["fds"], base["fds"]))
    checks.check(last["threads"] <= base["threads"], "the client runs %d threads, %d after "
                 "the warm-up" % (last["threads"], base["threads"]))
    checks.check(last["jobs"] == 0, "the client's scheduler still counts %d jobs"
                 % last["jobs"])
    for name, v in churn.figs.items():
        checks.fig(name, v)
    close_client(client, checks)
    jobs, problems = account(client, churn.submitted)
    for p in problems:
        checks.check(False, p)
    kinds = Counter(j.get("kind", "nojob" if j["nojob"] else "?") for j in jobs.values())
    checks.fig("kinds", dict(sorted(kinds.items())))
    stuck = [j["i"] for j in jobs.values() if not j["results"] and not j["nojob"]]
    checks.fig("stuck", len(stuck))
    checks.check(not stuck, "jobs that never ended: %r" % stuck[:50])
    odd = sorted(k for k in kinds if k not in ("ok",) + LOST_KINDS)
    checks.check(not odd, "jobs ended otherwise than with a result or %s: %r"
                 % ("/".join(LOST_KINDS), {k: kinds[k] for k in odd}))
    churn.check_rejoined(jobs)
    checks.verify(client, churn.nodes)
