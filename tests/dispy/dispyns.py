"""dispycos in network namespaces: a client host and node hosts, each a real
process in its own namespace (tests/net/netns.py), for the fault tests of
RELIABILITY.md section E (tests/dispy/test_dispy_faults.py).

    net = DispyNet(3)                  # hosts[0]: the client, hosts[1:]: nodes
    client = net.start_client(pulse=1, zombie=5, discovery=2)
    nodes = [net.start_node(i) for i in range(3)]
    client.wait_count(status("ServerInitialized"), 9, timeout=60)
    client.send("run 100 1 0.5 2.0")
    ...
    net.close()                        # everything killed, namespaces deleted

The client program (``CLIENT``) runs a dispycos ``Client`` with its
in-process scheduler and takes commands on its standard input:

``run N SEED LO HI``
    submit N jobs at once (``fault_job``, each sleeping a seeded uniform
    LO..HI seconds); job numbers go on from the last ``run``;
``close [TIMEOUT]``
    ``yield client.close()``, then wait for ClientClosed and exit;
``stats``
    after a garbage collection, print the process's resident memory, open
    descriptors and threads (a ``stats`` event).

It prints one line per event, ``EV {json}``, each with ``t`` (time.monotonic:
one clock for every namespace, so the test's own times compare with it) and
``ev``:

``ready``      the scheduler runs (``location``)
``status``     a DispycosStatus: ``kind`` (its name), and ``node`` (address),
               ``server`` ("addr:port") or ``job`` (the remote task's repr and
               stamp: "name/id@addr:port#stamp")
``end``        a MonitorStatus at the status task: ``job``, ``kind`` (its
               type's name)
``submitted``  ``yield client.rtask()`` gave job ``i`` its remote task
               ``job`` on ``server``
``nojob``      ``yield client.rtask()`` gave job ``i`` no task (``value``)
``result``     ``yield rtask()`` returned for job ``i``: ``kind`` "ok" or the
               MonitorStatus type's name
``recheck``    before close, ``yield rtask()`` again for each job that
               ended with a MonitorStatus: ``i``, ``kind`` (must not change)
``health``     just before close: whether the scheduler's tasks are alive,
               the jobs it still counts as running, the waiting ones
``closed``     close() returned ``rc`` after ``took`` seconds
``finished``   ClientClosed arrived; the program ends
``stats``      ``rss`` (bytes, from /proc/self/statm), ``fds`` (entries of
               /proc/self/fd), ``threads``, ``jobs`` (the remote tasks the
               scheduler still counts)
``error``      a task of the client program raised (``exc``)

Everything else it prints (pycos's log) is kept for the failure messages.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
NET = os.path.join(ROOT, "tests", "net")
if NET not in sys.path:
    sys.path.insert(0, NET)

import netns  # noqa: E402

#: the client's netpycos port (TCP and UDP: nodes announce themselves there)
SCHED_PORT = 9705
#: the node daemons' port (their servers take the next ones)
NODE_PORT = 9706


def fault_job(i, delay, task=None):
    """The jobs: sleep ``delay`` seconds, return (i, pid)."""
    import os
    yield task.sleep(delay)
    return (i, os.getpid())


CLIENT = r"""
import json, os, random, sys, threading, time, traceback
cfg = json.loads(os.environ["DF_CONFIG"])
from pycos import config
# small heartbeat settings must pass the Client's check
config.MinPulseInterval = min(config.MinPulseInterval, cfg["pulse"])
config.DiscoveryInterval = cfg["discovery"]
import pycos
import pycos.netpycos as netpycos
from pycos.core.support import Location
if os.environ.get("DISPYFAULTS_DEBUG"):              # (to debug: pycos's debug log)
    import logging
    from pycos.core.log import logger
    class _Mono(logging.Filter):
        def filter(self, record):
            record.mono = time.monotonic()
            return True
    _h = logging.StreamHandler(sys.stdout)
    _h.addFilter(_Mono())
    _h.setFormatter(logging.Formatter("LOG %(mono).3f %(message)s"))
    logger.addHandler(_h)
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
from pycos.dispycos import Client, DispycosStatus, DispycosTaskInfo, Scheduler
from pycos.dispy.status import status_name
from dispyns import fault_job

_out = threading.Lock()
def emit(ev, **kw):
    kw["ev"] = ev
    kw["t"] = time.monotonic()
    line = "EV " + json.dumps(kw, sort_keys=True, default=repr) + "\n"
    with _out:
        sys.stdout.write(line)
        sys.stdout.flush()

def tname(t):
    return getattr(t, "__name__", repr(t))

def key(rt):
    # a server that comes back reuses its port and task ids: the stamp tells
    # the incarnations apart
    return "%r#%s" % (rt, getattr(rt, "_stamp", ""))

sched = netpycos.Pycos(name="client", host=cfg["addr"], tcp_port=cfg["port"],
                       udp_port=cfg["port"], secret=cfg["secret"])
finished = threading.Event()

def statuses(task=None):
    while True:
        msg = yield task.receive()
        if isinstance(msg, DispycosStatus):
            d = {"kind": status_name(msg.status)}
            info = msg.info
            if isinstance(info, DispycosTaskInfo):
                d["job"] = key(info.task)
            elif isinstance(info, Location):
                d["server"] = "%s:%s" % (info.addr, info.port)
            elif hasattr(info, "addr"):
                d["node"] = info.addr
            else:
                d["info"] = repr(info)
            emit("status", **d)
            if msg.status == Scheduler.ClientClosed:
                emit("finished")
                finished.set()
                return
        elif isinstance(msg, pycos.MonitorStatus):
            emit("end", job=key(msg.info), kind=tname(msg.type), value=str(msg.value)[:300])
        else:
            emit("other", what=repr(msg)[:300])

status_task = pycos.Task(statuses)
client = Client([fault_job], status_task=status_task, pulse_interval=cfg["pulse"],
                zombie_period=cfg["zombie"], abandon_zombie_nodes=cfg.get("abandon", False))

def guarded(fn):
    def run(*args, task=None):
        try:
            return (yield from fn(*args, task=task))
        except Exception:
            emit("error", where=fn.__name__, exc=traceback.format_exc())
    run.__name__ = fn.__name__
    return run

@guarded
def start(task=None):
    rc = yield client.schedule()
    emit("ready", rc=rc, location="%s:%s" % (sched.location.addr, sched.location.port))

@guarded
def one(i, delay, task=None):
    rt = yield client.rtask(fault_job, i, delay)
    if not isinstance(rt, pycos.Task):
        emit("nojob", i=i, value=repr(rt))
        return
    k = key(rt)
    emit("submitted", i=i, job=k, server="%s:%s" % (rt.location.addr, rt.location.port),
         delay=delay)
    v = yield rt()
    if isinstance(v, pycos.MonitorStatus):
        lost.append((i, k, rt))
        emit("result", i=i, job=k, kind=tname(v.type), value=str(v.value)[:300])
    else:
        emit("result", i=i, job=k, kind="ok", value=repr(v))

lost = []

@guarded
def recheck(task=None):
    # yield rtask() again for the jobs that ended with a MonitorStatus: the
    # same answer, whatever their old servers sent since
    for i, k, rt in lost:
        v = yield rt(timeout=1)
        kind = tname(v.type) if isinstance(v, pycos.MonitorStatus) else "ok"
        emit("recheck", i=i, job=k, kind=kind)

@guarded
def close(timeout, task=None):
    yield recheck()
    s = client._scheduler
    emit("health", scheduler=s.task.is_alive(), monitor=s.monitor.is_alive(),
         running=len(s.jobs), waiting=len(s.waiting), tasks=len((yield client.tasks())))
    t0 = time.monotonic()
    rc = yield client.close(timeout=timeout)
    emit("closed", rc=rc, took=time.monotonic() - t0)

pycos.Task(start)
count = [0]
for line in sys.stdin:
    words = line.split()
    if not words:
        continue
    if words[0] == "run":
        n, seed, lo, hi = int(words[1]), int(words[2]), float(words[3]), float(words[4])
        rnd = random.Random(seed)
        for _ in range(n):
            pycos.Task(one, count[0], round(rnd.uniform(lo, hi), 3))
            count[0] += 1
    elif words[0] == "close":
        pycos.Task(close, float(words[1]) if len(words) > 1 else None)
        break
    elif words[0] == "stats":
        import gc
        gc.collect()
        with open("/proc/self/statm") as f:
            rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        emit("stats", rss=rss, fds=len(os.listdir("/proc/self/fd")),
             threads=threading.active_count(), jobs=len(client._scheduler.jobs))
finished.wait(60)
sched.terminate()
"""


class Program(object):
    """A process in a host's namespace whose output lines are collected by
    a thread; ``EV {json}`` lines are also parsed into ``events``."""

    def __init__(self, host, argv, name, env=None, stdin=True):
        e = dict(os.environ)
        e["PYTHONPATH"] = os.pathsep.join([HERE, NET, ROOT] + [p for p in [e.get("PYTHONPATH")]
                                                              if p])
        e["PYTHONUNBUFFERED"] = "1"
        e.update(env or {})
        self.name = name
        self.host = host
        self.lines = []
        self.times = []              # when each line arrived (time.monotonic)
        self.events = []
        self._cond = threading.Condition()
        self._eof = False
        self.proc = host.popen(argv, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=e, cwd=ROOT)
        self.pid = self.proc.pid          # (`ip netns exec` execs the command: the same pid)
        self._reader = threading.Thread(target=self._read, name="dispyns-reader", daemon=True)
        self._reader.start()

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            ev = None
            if line.startswith("EV {"):
                try:
                    ev = json.loads(line[3:])
                except ValueError:
                    pass
            with self._cond:
                self.lines.append(line)
                self.times.append(time.monotonic())
                if ev is not None:
                    self.events.append(ev)
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def send(self, line):
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()

    def ask(self, line, pattern, timeout):
        """Send ``line`` (a command, e.g. ``status`` to a node) and wait for
        the first output line after it that matches ``pattern``: (the match,
        when the line arrived)."""
        rx = re.compile(pattern)
        with self._cond:
            start = len(self.lines)
        self.send(line)

        def find():
            for k in range(start, len(self.lines)):
                m = rx.search(self.lines[k])
                if m:
                    return m, self.times[k]
        return self._wait(find, timeout, "an answer to %r matching %r" % (line, pattern))

    def output(self, last=400):
        with self._cond:
            lines = self.lines[-last:] if last else list(self.lines)
        return "\n".join(lines)

    def _wait(self, find, timeout, what):
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                got = find()
                if got is not None:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("%s: %s not seen within %.1f s; output:\n%s"
                                         % (self.name, what, timeout, self.output()))
                if self._eof:
                    raise AssertionError("%s ended (rc %s) before %s; output:\n%s"
                                         % (self.name, self.proc.poll(), what, self.output()))
                self._cond.wait(min(left, 0.5))

    def wait_line(self, pattern, timeout):
        rx = re.compile(pattern)

        def find():
            for line in self.lines:
                m = rx.search(line)
                if m:
                    return m
        return self._wait(find, timeout, "a line matching %r" % pattern)

    def select(self, pred, since=None):
        with self._cond:
            evs = list(self.events)
        return [e for e in evs if pred(e) and (since is None or e["t"] >= since)]

    def wait_event(self, pred, timeout, what, since=None):
        """The first event matching ``pred`` (with ``t`` >= ``since``)."""
        def find():
            for e in self.events:
                if pred(e) and (since is None or e["t"] >= since):
                    return e
        return self._wait(find, timeout, what)

    def wait_count(self, pred, n, timeout, what, since=None):
        """The events matching ``pred``, once there are ``n`` of them."""
        def find():
            got = [e for e in self.events if pred(e) and (since is None or e["t"] >= since)]
            return got if len(got) >= n else None
        return self._wait(find, timeout, "%d x %s" % (n, what))

    def wait_exit(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("%s did not exit within %s s; output:\n%s"
                                 % (self.name, timeout, self.output()))

    def errors(self):
        """The ``error`` events and the tracebacks in the output."""
        errs = [e["exc"] for e in self.select(lambda e: e["ev"] == "error")]
        with self._cond:
            lines = list(self.lines)
        errs += ["%s: %s" % (self.name, line) for line in lines
                 if "Traceback" in line and not line.startswith("EV {")]
        return errs


def status(kind, **match):
    """A predicate for ``status`` events of this kind (and fields)."""
    kinds = (kind,) if isinstance(kind, str) else tuple(kind)

    def pred(e):
        return (e["ev"] == "status" and e["kind"] in kinds
                and all(e.get(k) == v for k, v in match.items()))
    return pred


def ev(name, **match):
    def pred(e):
        return e["ev"] == name and all(e.get(k) == v for k, v in match.items())
    return pred


class DispyNet(object):
    """A client host (``client_host``) and ``n_nodes`` node hosts
    (``node_hosts``) on one bridge, with a default route each (netpycos
    announces to 255.255.255.255), a scratch directory for the nodes'
    files, and the programs started on them.  ``close()`` kills every
    process in the namespaces, deletes them and the scratch directory."""

    def __init__(self, n_nodes):
        netns.require_netns()
        self.secret = os.urandom(12).hex()
        self.scratch = tempfile.mkdtemp(prefix="pycos-dispyfaults-")
        self.programs = []
        self.nodes = {}
        self.client = None
        self.cluster = None
        try:
            self.cluster = netns.Cluster(n_nodes + 1)
            for h in self.cluster.hosts:
                h.run(["ip", "route", "add", "default", "dev", h.iface])
        except BaseException:
            self.close()
            raise
        self.client_host = self.cluster.hosts[0]
        self.node_hosts = self.cluster.hosts[1:]

    def start_client(self, pulse, zombie, discovery, abandon=False):
        h = self.client_host
        cfg = {"addr": h.addr, "port": SCHED_PORT, "secret": self.secret, "pulse": pulse,
               "zombie": zombie, "discovery": discovery, "abandon": abandon}
        p = Program(h, [sys.executable, "-u", "-c", CLIENT], "client(%s)" % h.addr,
                    env={"DF_CONFIG": json.dumps(cfg)})
        self.programs.append(p)
        self.client = p
        return p

    def start_node(self, i, cpus, pulse, zombie, discovery, peer=True):
        """dispycosnode on node host ``i``, ``--peer`` the client's address;
        ``zombie``: its --zombie_period (0: it never releases a silent
        client)."""
        h = self.node_hosts[i]
        dest = os.path.join(self.scratch, "node%d" % i)
        argv = [sys.executable, "-m", "pycos.dispycosnode", "-c", str(cpus), "-i", h.addr,
                "-n", "node%d" % i, "-s", self.secret, "--node_ports", str(NODE_PORT),
                "--scheduler_port", str(SCHED_PORT), "--dest_path", dest,
                # min_pulse_interval must be at least msg_timeout
                "--msg_timeout", str(int(pulse)), "--min_pulse_interval", str(int(pulse)),
                "--zombie_period", str(int(zombie)), "--ping_interval", str(int(discovery))]
        if peer:
            argv += ["--peer", "%s:%d" % (self.client_host.addr, SCHED_PORT)]
        p = Program(h, argv, "node%d(%s)" % (i, h.addr))
        p.addr = h.addr
        p.index = i
        p.dest = dest
        self.programs.append(p)
        self.nodes[h.addr] = p
        return p

    def pids(self, host):
        """The processes running in ``host``'s namespace."""
        return netns._pids_in({netns._ns_inode(host.name)})

    def kill_host(self, host):
        """kill -9 every process on ``host`` (its node daemon and servers) as
        a crash would: all of them stopped first, then killed, so none sees
        another die (a server whose daemon dies first ends its jobs with
        KeyboardInterrupt and reports that before its own kill -9 lands);
        the pids killed."""
        killed = set()
        while True:
            pids = self.pids(host) - killed
            if not pids:
                return killed
            for sig in (signal.SIGSTOP, signal.SIGKILL):
                for pid in pids:
                    try:
                        os.kill(pid, sig)
                    except ProcessLookupError:
                        pass
            killed |= pids

    def close(self):
        """Kill and delete everything; a list of problems (empty: clean)."""
        problems = []
        if self.cluster is not None:
            try:
                self.cluster.close()
            except netns.NetnsError as e:
                problems.append(str(e))
        logs = os.environ.get("DISPYFAULTS_LOG")      # (a directory: full outputs, to debug)
        for p in self.programs:
            p._reader.join(10)
            if p._reader.is_alive():
                problems.append("%s: output reader still running" % p.name)
            if logs:
                with open(os.path.join(logs, "%d-%s.log" % (int(time.time()), p.name)),
                          "w") as f:
                    f.write(p.output(last=None) + "\n")
        shutil.rmtree(self.scratch, ignore_errors=True)
        if os.path.exists(self.scratch):
            problems.append("scratch directory %s not removed" % self.scratch)
        return problems


class RuleWatch(object):
    """Polls the packet counter of the first rule of an iptables chain on
    a host (every ``step`` s, on a thread) and records when it first moved
    -- e.g. the first connection reset a REJECT rule sent: between
    ``before`` (the start of the last poll that read 0) and ``first`` (the
    start of the poll that read more), both monotonic."""

    def __init__(self, host, chain, step=0.05, limit=60.0):
        self.host = host
        self.chain = chain
        self.first = None
        self.before = None
        self.error = None
        self._stop = threading.Event()
        self._limit = limit
        self._step = step
        self._t = threading.Thread(target=self._run, name="dispyns-rulewatch", daemon=True)
        self._t.start()

    def _count(self):
        out = self.host.iptables("-L", self.chain, "-v", "-x", "-n")
        rows = [l.split() for l in out.splitlines()[2:] if l.strip()]
        return int(rows[0][0]) if rows else 0

    def _run(self):
        end = time.monotonic() + self._limit
        try:
            while not self._stop.is_set() and time.monotonic() < end:
                t = time.monotonic()
                if self._count() > 0:
                    self.first = t
                    return
                self.before = t
                self._stop.wait(self._step)
        except Exception as e:          # (the cluster was closed under us)
            self.error = e

    def stop(self):
        self._stop.set()
        self._t.join(10)


class SynWatch(object):
    """Counts SYNs from each node host to the client's port (one counting
    rule per source in the client host's INPUT chain), polled every
    ``step`` s on a thread: ``hits[addr]`` the times the count moved,
    ``counts[addr]`` the count then."""

    def __init__(self, host, sources, port, step=0.2):
        self.host = host
        self.sources = list(sources)
        self.hits = {a: [] for a in self.sources}
        self.counts = {a: [] for a in self.sources}
        for a in self.sources:
            host.iptables("-A", "INPUT", "-i", host.iface, "-s", a, "-p", "tcp", "--syn",
                          "--dport", str(port), "-j", "ACCEPT")
        self._last = {a: 0 for a in self.sources}
        self._stop = threading.Event()
        self.error = None
        self._step = step
        self._t = threading.Thread(target=self._run, name="dispyns-synwatch", daemon=True)
        self._t.start()

    def _run(self):
        try:
            while not self._stop.is_set():
                t = time.monotonic()
                out = self.host.iptables("-L", "INPUT", "-v", "-x", "-n")
                for line in out.splitlines()[2:]:
                    f = line.split()
                    if len(f) < 9 or f[7] not in self._last:
                        continue
                    n = int(f[0])
                    if n > self._last[f[7]]:
                        self.hits[f[7]].append(t)
                        self.counts[f[7]].append(n)
                        self._last[f[7]] = n
                self._stop.wait(self._step)
        except Exception as e:
            self.error = e

    def stop(self):
        self._stop.set()
        self._t.join(10)

    def syns_between(self, addr, t0, t1):
        """How many SYNs from ``addr`` were counted in [t0, t1)."""
        before = [n for t, n in zip(self.hits[addr], self.counts[addr]) if t < t0]
        upto = [n for t, n in zip(self.hits[addr], self.counts[addr]) if t < t1]
        return (upto[-1] if upto else 0) - (before[-1] if before else 0)

    def attempts(self, addr, gap=0.5):
        """The times of the connection attempts from ``addr``: SYN
        increments closer than ``gap`` s are one attempt (netpycos tries a
        refused peer three times in a row, within ~0.2 s)."""
        out = []
        last = None
        for t in self.hits[addr]:
            if last is None or t - last > gap:
                out.append(t)
            last = t
        return out
