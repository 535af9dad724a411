#!/usr/bin/env python3
"""The benchmark harness: pycos against its peers, side by side, same machine.

    python bench/run.py [--quick] [--rounds N] [--only WORKLOAD,...]
                        [--peers NAME,...] [--interp cpython,pypy]
                        [--profile [py-spy]] [--syscalls] [--duration S]

Runs with any Python 3.9+ (stdlib only).  Each (framework, workload) runs in
a fresh subprocess with the interpreter of the right virtual environment
(made by ``bench/setup.sh``):

    .venv/bench             CPython: this project's pycos + asyncio, uvloop,
                            trio, gevent, curio, Pyro5, pyzmq, ray,
                            matplotlib (charts)
    .venv/bench-pycos4      CPython: the original pycos 4.12.2, alone
    .venv/bench-pypy        PyPy: this project's pycos + the peers that install
    .venv/bench-pypy-pycos4 PyPy: the original pycos 4.12.2

For every workload the frameworks run interleaved, A B C A B C ..., for
``--rounds`` rounds (the order rotates each round), and the table gives the
median and the min-max of the rounds.  Results go to ``bench/results/``:
``<interp>.md`` (the table, the ratios pycos/peer and the targets of the
issue, each stated as met or missed), ``<interp>.json`` (every round's raw
figures) and ``<interp>-<workload>.png`` charts (drawn with matplotlib from
``.venv/bench``; the table says when it is missing).

The socket workloads (echo, tls, c10k) are driven by one C client
(``bench/client/echo_client.c``) in a separate process, the same for every
server; ``bench/cserver/echo.c`` is a plain C epoll echo server that shows
the ceiling of the machine and the client.  Both are compiled with gcc into
``bench/build/`` when missing or older than their source.

The networked workloads (net-stream, net-deliver, net-rps, net-file) compare
``pycos.netpycos`` with the original 4.12.2's (also with ``stream_send``),
Pyro5, ``multiprocessing.connection``, pyzmq and Ray actors: each run is two
processes on 127.0.0.1 (the workload script starts its own receiver; see
``bench/workloads/netcommon.py``), and net-file shows a plain blocking
``socket.sendfile()`` of the same file as the ceiling.  Ray (``ray.init``
alone takes seconds) is left out of ``--quick``.

The dispycos workloads (dispy-jobs, dispy-makespan; the dispycos issue's
item 10) compare this project's dispycos with the original 4.12.2's (each
with a real ``dispycosnode`` of its own package on 127.0.0.1, 2 server
processes), Dask distributed (LocalCluster, 2 worker processes), Ray
(2 CPUs) and ``concurrent.futures.ProcessPoolExecutor``: trivial jobs per
second with 8 outstanding and with all of them submitted at once, and the
makespan of 200 jobs sleeping 50 ms on 2 processes x 4 slots against the
ideal 1.25 s (see ``bench/workloads/dispy_common.py``).

``--quick`` is a smoke run: tiny sizes, one round, no claims about speed.
``--profile`` also saves a profile of this project's pycos side of each
workload to ``bench/results/profiles/`` (CPython): cProfile by default
(``.prof`` + top-30 ``.txt``), or with ``--profile py-spy`` the sampling
profiler py-spy (``.folded`` stacks, native frames included, + top-30
``.txt``), which does not slow the code it measures the way cProfile's
per-call hooks do.
``--syscalls`` counts the server's system calls per echoed message with
``strace -c -f`` (a separate, slower run per server; needs strace).
``bench/compare.py`` tells whether several runs (``--tag``) order the
frameworks the same way.
"""

import argparse
import json
import os
import platform
import random
import re
import resource
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORKLOADS_DIR = os.path.join(HERE, "workloads")
BUILD = os.path.join(HERE, "build")
RESULTS = os.path.join(HERE, "results")
PROFILES = os.path.join(RESULTS, "profiles")
SPY_RATE = 250          # py-spy samples per second (--profile py-spy)
EXIT_UNAVAILABLE = 3            # bench/workloads/common.py

VENVS = {
    "cpython": {"main": ".venv/bench", "pycos4": ".venv/bench-pycos4"},
    "pypy": {"main": ".venv/bench-pypy", "pycos4": ".venv/bench-pypy-pycos4"},
}

# -- frameworks ----------------------------------------------------------------
# name: label, venv key, script (or binary), extra args, the module that must
# import, the workloads it takes part in (None = all), "role": "ours", "peer"
# or "reference" (the generator floor and the C server: shown, never a peer).

SOCKET_WL = ("echo", "c10k", "tls")
NET_WL = ("net-stream", "net-deliver", "net-rps", "net-file")
# the in-process and socket workloads (the peers without a network layer)
LOCAL_WL = ("spawn", "switch", "timers", "fanout") + SOCKET_WL
NET_MSG_WL = ("net-stream", "net-deliver", "net-rps")      # peers without file transfer
FRAMEWORKS = {
    "pycos": dict(label="pycos (this)", venv="main", script="pycos_new.py",
                  module="pycos", role="ours"),
    "pycos4": dict(label="pycos 4.12.2 (original)", venv="pycos4", script="pycos4.py",
                   module="pycos", role="peer", scale="pycos4"),
    "asyncio": dict(label="asyncio (streams)", venv="main", script="asyncio_peer.py",
                    args=["--variant", "asyncio"], module="asyncio", role="peer",
                    only=LOCAL_WL),
    "asyncio-proto": dict(label="asyncio protocols", venv="main", script="asyncio_peer.py",
                          args=["--variant", "asyncio-proto"], module="asyncio",
                          role="peer", only=SOCKET_WL),
    "uvloop": dict(label="uvloop (streams)", venv="main", script="asyncio_peer.py",
                   args=["--variant", "uvloop"], module="uvloop", role="peer", only=LOCAL_WL),
    "uvloop-proto": dict(label="uvloop protocols", venv="main", script="asyncio_peer.py",
                         args=["--variant", "uvloop-proto"], module="uvloop",
                         role="peer", only=SOCKET_WL),
    "trio": dict(label="trio", venv="main", script="trio_peer.py", module="trio", role="peer",
                 only=LOCAL_WL),
    "gevent": dict(label="gevent", venv="main", script="gevent_peer.py", module="gevent",
                   role="peer", only=LOCAL_WL),
    "curio": dict(label="curio", venv="main", script="curio_peer.py", module="curio",
                  role="peer", scale="curio", only=LOCAL_WL),
    "threads": dict(label="threads + queue.Queue", venv="main", script="threads_peer.py",
                    module="threading", role="peer", scale="threads", only=LOCAL_WL),
    # the networked peers (net-*): pycos 4.12.2 also runs them, once more
    # with stream_send=True (one connection kept instead of one per message)
    "pycos4-stream": dict(label="pycos 4.12.2, stream_send", venv="pycos4", script="pycos4.py",
                          args=["--stream-send"], module="pycos", role="peer",
                          scale="pycos4", only=NET_WL),
    "pyro5": dict(label="Pyro5", venv="main", script="pyro5_peer.py", module="Pyro5",
                  role="peer", scale="slow-net", only=NET_MSG_WL),
    "mp-conn": dict(label="multiprocessing.connection (authkey)", venv="main",
                    script="mpconn_peer.py", module="multiprocessing.connection", role="peer",
                    only=NET_MSG_WL),
    "pyzmq": dict(label="pyzmq + pickle (PUSH/PULL, REQ/REP)", venv="main",
                  script="zmq_peer.py", module="zmq", role="peer", only=NET_MSG_WL),
    "ray": dict(label="Ray actors", venv="main", script="ray_peer.py", module="ray",
                role="peer", scale="slow-net", only=NET_MSG_WL,
                not_quick="left out of --quick: ray.init() alone takes ~6 s per run"),
    "sendfile": dict(label="socket.sendfile (ceiling)", venv="main", script="sendfile_ref.py",
                     module=None, role="reference", only=("net-file",)),
    "floor": dict(label="bare generator send() (floor)", venv="main", script="floor.py",
                  module=None, role="reference", only=("switch",)),
    "c-epoll": dict(label="C epoll server (ceiling)", binary="echo_server",
                    role="reference", only=("echo", "c10k")),
}
# the dispycos workloads: both pycos run dispy_pycos.py (each starts a node
# daemon of its own package); the other peers have a script each
DISPY_WL = ("dispy-jobs", "dispy-makespan")
DISPY_SCRIPTS = {"pycos": "dispy_pycos.py", "pycos4": "dispy_pycos.py"}
FRAMEWORKS.update({
    "dask": dict(label="Dask distributed (LocalCluster, 2 processes; submit)", venv="main",
                 script="dispy_dask.py", module="distributed", role="peer", only=DISPY_WL),
    "dask-map": dict(label="Dask distributed, client.map", venv="main", script="dispy_dask.py",
                     args=["--variant", "map"], module="distributed", role="peer",
                     only=("dispy-jobs",)),
    "ray-jobs": dict(label="Ray (2 CPUs; makespan: 2 actors × max_concurrency 4)", venv="main",
                     script="dispy_ray.py", module="ray", role="peer", only=DISPY_WL,
                     not_quick="left out of --quick: ray.init() alone takes ~5 s per run"),
    "ppe": dict(label="ProcessPoolExecutor (2 processes; makespan: 8)", venv="main",
                script="dispy_ppe.py", module="concurrent.futures", role="peer",
                only=DISPY_WL),
})
PEER_NAMES = [n for n in FRAMEWORKS if n != "pycos"]

# -- sizes ---------------------------------------------------------------------

SIZES = {
    "full": dict(spawn=100000, switch=200000, timers=100000, conns=100, c10k=10000,
                 subs=1000, fanout=10000, warmup=0.5, duration=3.0,
                 net_stream=200000, net_deliver=5000, net_rps=5000, net_file=256),
    "quick": dict(spawn=2000, switch=5000, timers=2000, conns=10, c10k=200,
                  subs=50, fanout=100, warmup=0.1, duration=0.3,
                  net_stream=2000, net_deliver=200, net_rps=200, net_file=4),
}
# net-*: messages, measured round trips, measured calls, MiB of the file
# dispy-*: jobs, jobs outstanding (the windowed case), makespan jobs and
# their sleep (2 processes x 4 slots: the ideal is ceil(n / 8) * sleep)
SIZES["full"].update(dispy_jobs=10000, dispy_window=8, dispy_makespan=200, dispy_sleep_ms=50,
                     dispy_ideal_s=1.25)
SIZES["quick"].update(dispy_jobs=200, dispy_window=8, dispy_makespan=24, dispy_sleep_ms=50,
                      dispy_ideal_s=0.15)
# Smaller sizes for two peers (rates stay comparable; every row shows its n):
# threads cost far more than tasks, and curio 1.6's spawn() slows down with
# the number of live tasks (100,000 tasks take minutes, 100,000 sleepers
# over four minutes per run).
# workloads whose figures grow with n (not rates): a scaled peer is shown but
# not judged against
SIZE_BOUND_WL = ("timers",)
# The networked peers that stream a few thousand messages/s (the original
# pycos, Pyro5, Ray) send fewer messages: 200,000 would take a minute a run.
SCALED_SIZES = {
    "threads": {"full": dict(spawn=10000, switch=20000, timers=5000, fanout=100),
                "quick": dict(spawn=500, switch=1000, timers=500, fanout=10)},
    "curio": {"full": dict(spawn=10000, timers=10000),
              "quick": dict()},
    "pycos4": {"full": dict(net_stream=20000, net_rps=2000), "quick": dict()},
    "slow-net": {"full": dict(net_stream=20000), "quick": dict()},
}
# the original dispycos slows down with the number of jobs submitted at once
# (~200 jobs/s with 2,000, ~70 with 5,000): 10,000 would take minutes a run,
# and a smaller n only flatters it
SCALED_SIZES["pycos4"]["full"]["dispy_jobs"] = 2000


def size_key(workload):
    """The SIZES key of a workload (net-stream -> net_stream)."""
    return workload.replace("-", "_")

# -- cases: the table's sections -------------------------------------------------
# metric: (key, label, format, better)  better is "high" or "low"

M_SPAWN = [("tasks_per_s", "tasks/s", "rate", "high"), ("maxrss_mib", "peak RSS MiB", "f1", "low")]
M_SWITCH = [("round_trips_per_s", "round trips/s", "rate", "high"),
            ("us_per_round_trip", "µs/round trip", "f2", "low")]
M_TIMERS = [("beyond_ms", "wall beyond max delay ms", "f1", "low"),
            ("late_mean_ms", "late mean ms", "f2", "low"),
            ("late_p99_ms", "late p99 ms", "f2", "low")]
M_ECHO = [("msgs_per_s", "msgs/s", "rate", "high"), ("mb_per_s", "MB/s", "f1", "high"),
          ("cpu_us_per_msg", "server CPU µs/msg", "f2", "low"),
          ("syscalls_per_msg", "syscalls/msg", "f2", "low")]
M_C10K = [("accept_s", "time to accept all s", "f3", "low"),
          ("kib_per_conn", "server KiB/conn", "f2", "low")]
M_FANOUT = [("deliveries_per_s", "deliveries/s", "rate", "high")]
M_NET_STREAM = [("msgs_per_s", "msgs/s", "rate", "high")]
M_NET_DELIVER = [("p50_us", "p50 µs", "f1", "low"), ("p99_us", "p99 µs", "f1", "low"),
                 ("mean_us", "mean µs", "f1", "low")]
M_NET_RPS = [("calls_per_s", "calls/s", "rate", "high"), ("us_per_call", "µs/call", "f1", "low")]
M_NET_FILE = [("mb_per_s", "MB/s", "f1", "high")]

CASES = [
    dict(name="spawn", workload="spawn", metrics=M_SPAWN, charts=["tasks_per_s"],
         title="spawn: create and finish {spawn:,} trivial tasks"),
    dict(name="switch", workload="switch", metrics=M_SWITCH, charts=["round_trips_per_s"],
         title="switch: two tasks ping-pong a message {switch:,} times"),
    dict(name="timers", workload="timers", metrics=M_TIMERS, charts=["beyond_ms", "late_p99_ms"],
         title="timers: {timers:,} tasks each sleep a random 0-100 ms"),
    dict(name="echo-100B", workload="echo", size=100, metrics=M_ECHO,
         charts=["msgs_per_s", "cpu_us_per_msg"],
         title="echo: {conns} connections, 100-byte messages, {duration:g} s"),
    dict(name="echo-64KiB", workload="echo", size=65536, metrics=M_ECHO,
         charts=["mb_per_s", "cpu_us_per_msg"],
         title="echo: {conns} connections, 64 KiB messages, {duration:g} s"),
    dict(name="c10k", workload="c10k", metrics=M_C10K, charts=["accept_s", "kib_per_conn"],
         title="c10k: {c10k:,} idle connections"),
    dict(name="tls-100B", workload="tls", size=100, metrics=M_ECHO,
         charts=["msgs_per_s", "cpu_us_per_msg"],
         title="TLS echo: {conns} connections, 100-byte messages, {duration:g} s"),
    dict(name="tls-64KiB", workload="tls", size=65536, metrics=M_ECHO,
         charts=["mb_per_s", "cpu_us_per_msg"],
         title="TLS echo: {conns} connections, 64 KiB messages, {duration:g} s"),
    dict(name="fanout", workload="fanout", metrics=M_FANOUT, charts=["deliveries_per_s"],
         title="channel fan-out: one sender, {subs:,} subscribers, {fanout:,} messages"),
    dict(name="net-stream", workload="net-stream", metrics=M_NET_STREAM, charts=["msgs_per_s"],
         title="net-stream: {net_stream:,} one-way 100-byte remote messages between two "
               "processes (the receiver reports when it has all)"),
    dict(name="net-deliver", workload="net-deliver", metrics=M_NET_DELIVER,
         charts=["p50_us", "p99_us"],
         title="net-deliver: {net_deliver:,} acknowledged round trips between two processes, "
               "one at a time (pycos: yield rtask.deliver(msg))"),
    dict(name="net-rps", workload="net-rps", metrics=M_NET_RPS, charts=["calls_per_s"],
         title="net-rps: {net_rps:,} remote calls returning a value, one at a time "
               "(pycos: rtask = yield rps(x); yield rtask.finish())"),
    dict(name="net-file", workload="net-file", metrics=M_NET_FILE, charts=["mb_per_s"],
         title="net-file: a {net_file:,} MiB file to another process, written to disk "
               "(pycos: yield sched.send_file(loc, path))"),
]
M_DISPY_JOBS = [("jobs_per_s", "jobs/s", "rate", "high"), ("us_per_job", "µs/job", "f1", "low")]
M_DISPY_MAKESPAN = [("makespan_s", "makespan s", "f3", "low"),
                    ("vs_ideal", "× the ideal", "f3", "low")]
CASES += [
    dict(name="dispy-jobs-8", workload="dispy-jobs", wl_args=["--window", "8"],
         metrics=M_DISPY_JOBS, charts=["jobs_per_s"],
         title="dispy-jobs, {dispy_window} outstanding: {dispy_jobs:,} trivial jobs "
               "(return x * x) on one local node with 2 worker processes (pycos: "
               "{dispy_window} tasks each `rtask = yield client.rtask(square, i)`, "
               "`yield rtask()`; the others: a new submit per result)"),
    dict(name="dispy-jobs-all", workload="dispy-jobs", wl_args=["--window", "0"],
         metrics=M_DISPY_JOBS, charts=["jobs_per_s"],
         title="dispy-jobs, all at once: {dispy_jobs:,} trivial jobs submitted together, "
               "then their results (pycos: one task per job, each `yield client.rtask(...)`)"),
    dict(name="dispy-makespan", workload="dispy-makespan", metrics=M_DISPY_MAKESPAN,
         charts=["makespan_s"],
         title="dispy-makespan: {dispy_makespan} jobs sleeping {dispy_sleep_ms} ms on 2 "
               "processes × 4 slots, ideal {dispy_ideal_s:g} s (pycos: 8 tasks each keep "
               "one `client.io_rtask(nap, 0.05)` in flight; Dask: 4 threads per worker; "
               "Ray: 2 actors with max_concurrency=4; ProcessPoolExecutor has no threads "
               "per process: 8 processes; Dask, Ray and the pool get all jobs at once)"),
]
# the makespan is judged against the ideal, not ranked (see dispy_targets)
NOT_RANKED = ("dispy-makespan",)
# The figure that decides "ahead of every peer" for each case.
PRIMARY = {"spawn": ["tasks_per_s"], "switch": ["round_trips_per_s"],
           "timers": ["beyond_ms", "late_p99_ms"],
           "echo-100B": ["msgs_per_s", "cpu_us_per_msg"],
           "echo-64KiB": ["mb_per_s", "cpu_us_per_msg"],
           "c10k": ["accept_s", "kib_per_conn"],
           "tls-100B": ["msgs_per_s", "cpu_us_per_msg"],
           "tls-64KiB": ["mb_per_s", "cpu_us_per_msg"],
           "fanout": ["deliveries_per_s"],
           "net-stream": ["msgs_per_s"], "net-deliver": ["p50_us", "p99_us"],
           "net-rps": ["calls_per_s"], "net-file": ["mb_per_s"]}
PRIMARY.update({"dispy-jobs-8": ["jobs_per_s"], "dispy-jobs-all": ["jobs_per_s"],
                "dispy-makespan": ["makespan_s"]})


def log(msg):
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


# -- building the C programs ------------------------------------------------------

def build_c():
    """Compile the echo client and the C server into bench/build/ if stale."""
    os.makedirs(BUILD, exist_ok=True)
    gcc = shutil.which("gcc") or shutil.which("cc")
    out = {}
    jobs = [("echo_client", os.path.join(HERE, "client", "echo_client.c"), ["-lssl", "-lcrypto"]),
            ("echo_server", os.path.join(HERE, "cserver", "echo.c"), [])]
    for name, src, libs in jobs:
        exe = os.path.join(BUILD, name)
        if os.path.exists(exe) and os.path.getmtime(exe) >= os.path.getmtime(src):
            out[name] = exe
            continue
        if gcc is None:
            log("!! no C compiler: %s not built" % name)
            continue
        cmd = [gcc, "-O2", "-Wall", "-o", exe, src] + libs
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0 and libs:       # no OpenSSL headers: client without TLS
            log("-- %s: building without TLS (%s)" % (name, r.stderr.strip().splitlines()[-1:]))
            r = subprocess.run([gcc, "-O2", "-Wall", "-DNO_TLS", "-o", exe, src],
                               capture_output=True, text=True)
        if r.returncode != 0:
            log("!! %s did not build:\n%s" % (name, r.stderr))
            continue
        out[name] = exe
    return out


def make_cert(tmpdir):
    """A self-signed certificate for the TLS workloads (openssl CLI), or None."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    cert, key = os.path.join(tmpdir, "cert.pem"), os.path.join(tmpdir, "key.pem")
    r = subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                        "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        log("!! openssl could not make a certificate: %s" % r.stderr)
        return None
    return cert, key


def make_net_file(tmpdir, mib):
    """The file net-file sends: ``mib`` MiB of random bytes (no framework
    compresses, but none gets a file of zeros either)."""
    path = os.path.join(tmpdir, "net-file-%dMiB.bin" % mib)
    block = os.urandom(1 << 20)
    with open(path, "wb") as f:
        for _ in range(mib):
            f.write(block)
    return path


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# -- /proc helpers -------------------------------------------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pid):
    """(user, system) CPU seconds of process ``pid`` and all its threads so
    far (the utime/stime that getrusage reports, from /proc/<pid>/stat)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def proc_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def read_json_line(proc, timeout, what):
    """The next JSON line a child prints, or raise RuntimeError."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise RuntimeError("timeout waiting for %s" % what)
        r, _, _ = select.select([proc.stdout], [], [], left)
        if not r:
            continue
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("%s: process exited (rc=%s)" % (what, proc.poll()))
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)


def wait_for_word(stream, word, timeout=10.0):
    """Read ``stream`` (a tool's output) until a line holds ``word``, the
    stream ends, or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([stream], [], [], 0.5)
        if r:
            line = stream.readline()
            if word in line or not line:
                return


def kill_session(sid):
    """SIGKILL every process left in session ``sid`` (a child started with
    start_new_session=True, and all it started: Ray's workers, for one, move
    to process groups of their own but stay in the session)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[3]) == sid:
                os.kill(int(entry), signal.SIGKILL)
        except (OSError, ValueError, IndexError):
            continue        # gone meanwhile


def stop(proc, sig=signal.SIGTERM, wait=5.0):
    if proc is None or proc.poll() is not None:
        return
    try:
        proc.send_signal(sig)
        proc.wait(wait)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    except ProcessLookupError:
        pass


# -- the runner ---------------------------------------------------------------------

class Runner:
    def __init__(self, opts, interp, cbin, cert, netfile=None):
        self.opts = opts
        self.interp = interp
        self.cbin = cbin
        self.cert = cert
        self.netfile = netfile          # the file net-file sends
        self.mode = "quick" if opts.quick else "full"
        self.sizes = dict(SIZES[self.mode])
        if opts.duration:
            self.sizes["duration"] = opts.duration
        # quick: a run of the tiny sizes takes seconds (a node, Dask's
        # cluster); what takes a minute hangs -- as the original's dispycos
        # can (a lost completion), which cost CI two minutes at 120 s
        self.timeout = 60 if opts.quick else 900
        self.available = {}
        self.stderr_dir = tempfile.mkdtemp(prefix="pycos-bench-log-")
        self.failed = False

    # which interpreter runs a framework, or why it cannot
    def python(self, fw):
        venv = VENVS[self.interp][FRAMEWORKS[fw]["venv"]]
        exe = os.path.join(ROOT, venv, "bin", "python")
        return exe if os.path.exists(exe) else None

    def check(self, fw):
        """None if ``fw`` can run here, else the reason it cannot."""
        if fw in self.available:
            return self.available[fw]
        spec = FRAMEWORKS[fw]
        reason = None
        if "binary" in spec:
            if spec["binary"] not in self.cbin:
                reason = "not built (no C compiler?)"
        else:
            py = self.python(fw)
            if py is None:
                reason = "no %s (run bench/setup.sh)" % VENVS[self.interp][spec["venv"]]
            elif spec.get("module"):
                r = subprocess.run([py, "-c", "import %s" % spec["module"]], cwd="/",
                                   capture_output=True, text=True)
                if r.returncode != 0:
                    reason = "%s does not import under %s" % (spec["module"], self.interp)
        self.available[fw] = reason
        return reason

    def sizes_for(self, fw):
        s = dict(self.sizes)
        scale = FRAMEWORKS[fw].get("scale")
        if scale:
            s.update(SCALED_SIZES[scale][self.mode])
        return s

    def command(self, fw, workload, s, profile_prefix=None):
        spec = FRAMEWORKS[fw]
        if "binary" in spec:
            return [self.cbin[spec["binary"]], "4096"]
        script = os.path.join(WORKLOADS_DIR, spec["script"])
        if workload in DISPY_WL:
            script = os.path.join(WORKLOADS_DIR, DISPY_SCRIPTS.get(fw, spec["script"]))
        cmd = [self.python(fw)]
        if profile_prefix and self.opts.profile == "cprofile":
            cmd += [os.path.join(WORKLOADS_DIR, "profiled.py"), profile_prefix]
        cmd += [script] + list(spec.get("args", [])) + [workload]
        if workload == "spawn":
            cmd += ["--n", str(s["spawn"])]
        elif workload == "switch":
            cmd += ["--n", str(s["switch"])]
        elif workload == "timers":
            cmd += ["--n", str(s["timers"])]
        elif workload == "fanout":
            cmd += ["--n", str(s["fanout"]), "--subs", str(s["subs"])]
        elif workload == "net-file":
            cmd += ["--file", self.netfile]
        elif workload in DISPY_WL:
            cmd += ["--n", str(s[size_key(workload)]), "--servers", "2", "--slots", "4",
                    "--sleep", str(s["dispy_sleep_ms"] / 1000.0)]
        elif workload in NET_WL:
            cmd += ["--n", str(s[size_key(workload)]), "--size", "100"]
        else:
            cmd += ["--backlog", "4096"]
            if workload == "tls":
                cmd += ["--certfile", self.cert[0], "--keyfile", self.cert[1]]
        return cmd

    def _stderr_file(self, fw, case):
        return open(os.path.join(self.stderr_dir, "%s-%s.err" % (fw, case["name"])), "w+")

    @staticmethod
    def _tail(errf):
        errf.seek(0)
        lines = errf.read().strip().splitlines()
        return " | ".join(lines[-3:])[-400:]

    def _spy(self, profile_prefix, target):
        """The py-spy command that samples ``target`` (["--pid", PID], or
        ["--", command...]) into ``profile_prefix.folded``, or None when
        not profiling with py-spy."""
        if not profile_prefix or self.opts.profile != "py-spy":
            return None
        return [self.opts.pyspy, "record", "--format", "raw", "--function", "--native",
                "--rate", str(SPY_RATE), "-o", profile_prefix + ".folded"] + target

    # one in-process workload: the child prints its metrics.  A net-*
    # workload starts a second process of its own (its receiver; Ray: its
    # cluster): it runs in a session of its own, and whatever of that
    # session is left when it ends (a timeout, a crash) is killed.
    def run_inproc(self, fw, case, profile_prefix=None):
        s = self.sizes_for(fw)
        net = case["workload"] in NET_WL + DISPY_WL    # (dispy-*: node daemons, clusters)
        cmd = self.command(fw, case["workload"], s, profile_prefix)
        cmd += case.get("wl_args", [])
        env = None
        spy = self._spy(profile_prefix, ["--"] + cmd)
        if net and profile_prefix:
            if spy:             # the receiver's samples too
                spy.insert(2, "--subprocesses")
            else:               # cProfile: the receiver writes <prefix>-server.*
                env = dict(os.environ, PYCOS_BENCH_SERVER_PROFILE=profile_prefix + "-server")
        # (py-spy starts the workload; its own lines on stdout are not JSON)
        cmd = spy or cmd
        with self._stderr_file(fw, case) as errf:
            proc = subprocess.Popen(cmd, cwd=WORKLOADS_DIR, stdout=subprocess.PIPE, stderr=errf,
                                    text=True, env=env, start_new_session=net)
            try:
                stdout, _ = proc.communicate(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                return {"failed": "timeout after %d s" % self.timeout}
            finally:
                if net:
                    kill_session(proc.pid)
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            lines = [ln for ln in stdout.splitlines() if ln.startswith("{")]
            out = json.loads(lines[-1]) if lines else {}
            if proc.returncode == EXIT_UNAVAILABLE and "unavailable" in out:
                return out
            if proc.returncode != 0 or not out:
                return {"failed": "exit %d: %s" % (proc.returncode, self._tail(errf))}
        if "maxrss_kb" in out:
            out["maxrss_mib"] = out["maxrss_kb"] / 1024.0
        return out

    # a server workload: start the server, drive it with the C client
    def run_server(self, fw, case, profile_prefix=None, syscalls=False):
        if "echo_client" not in self.cbin:
            return {"unavailable": "the C echo client did not build"}
        if case["workload"] == "tls" and self.cert is None:
            return {"unavailable": "no openssl CLI to make a test certificate"}
        s = self.sizes_for(fw)
        cmd = self.command(fw, case["workload"], s, profile_prefix)
        errf = self._stderr_file(fw, case)
        server = client = tracer = spy = None
        try:
            server = subprocess.Popen(cmd, cwd=WORKLOADS_DIR, stdout=subprocess.PIPE,
                                      stderr=errf, text=True)
            hello = read_json_line(server, 60, "server start")
            if "unavailable" in hello:
                return hello
            port, pid = hello["port"], hello["pid"]
            spy_cmd = self._spy(profile_prefix, ["--pid", str(pid)])
            if case["workload"] == "c10k":
                return self._c10k(server, pid, port, s, spy_cmd, errf)
            ccmd = [self.cbin["echo_client"], "--port", str(port), "--conns", str(s["conns"]),
                    "--size", str(case["size"]), "--warmup", str(s["warmup"]),
                    "--duration", str(1.0 if syscalls and not self.opts.quick else s["duration"])]
            if case["workload"] == "tls":
                ccmd.append("--tls")
            client = subprocess.Popen(ccmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=errf, text=True)
            read_json_line(client, 120, "client warm-up")
            if spy_cmd:         # the measured phase only
                spy = self._start_spy(spy_cmd, errf)
            if syscalls:
                tfile = os.path.join(self.stderr_dir, "strace-%s-%s.txt" % (fw, case["name"]))
                tracer = subprocess.Popen(["strace", "-c", "-f", "-o", tfile, "-p", str(pid)],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                          text=True)
                self._wait_attached(tracer)
            cpu0 = proc_cpu_s(pid)
            client.stdin.write("go\n")
            client.stdin.flush()
            done = read_json_line(client, s["duration"] + 120, "client run")
            cpu1 = proc_cpu_s(pid)
            msgs = done["msgs"]
            if msgs <= 0:
                return {"failed": "no message echoed"}
            user, system = cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]
            out = {"msgs": msgs, "seconds": done["seconds"], "conns": done["conns"],
                   "size": done["size"], "msgs_per_s": msgs / done["seconds"],
                   "mb_per_s": done["bytes"] / done["seconds"] / 1e6,
                   "server_cpu_s": user + system,
                   "cpu_us_per_msg": (user + system) / msgs * 1e6,
                   # the split says how much is the framework's own (user)
                   # and how much the kernel's (the same for every server)
                   "user_us_per_msg": user / msgs * 1e6,
                   "sys_us_per_msg": system / msgs * 1e6}
            if tracer is not None:
                stop(tracer, signal.SIGINT, 30)
                tracer = None
                calls, top = parse_strace(tfile)
                if calls is None:
                    return {"failed": "strace gave no summary"}
                out = {"syscalls_per_msg": calls / msgs, "syscall_top": top, "msgs": msgs}
            return out
        except (RuntimeError, ValueError, KeyError, OSError) as exc:
            detail = self._tail(errf)
            return {"failed": "%s%s" % (exc, (": " + detail) if detail else "")}
        finally:
            stop(tracer, signal.SIGINT, 30)
            stop(spy, signal.SIGINT, 60)       # py-spy writes its file on SIGINT
            stop(client, signal.SIGTERM, 5)
            # a profiled server writes its profile on SIGTERM: give it time
            stop(server, signal.SIGTERM, 120 if profile_prefix else 5)
            errf.close()

    def _c10k(self, server, pid, port, s, spy_cmd=None, errf=None):
        time.sleep(0.2)         # let the server finish starting up before the baseline
        rss0 = proc_rss_kib(pid)
        ccmd = [self.cbin["echo_client"], "--port", str(port), "--mode", "c10k",
                "--conns", str(s["c10k"])]
        spy = self._start_spy(spy_cmd, errf) if spy_cmd else None
        client = subprocess.Popen(ccmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        try:
            res = read_json_line(client, 300, "c10k client")
            stop(spy, signal.SIGINT, 60)        # the accepting only, not the closing
            rss1 = proc_rss_kib(pid)
            client.stdin.write("\n")
            client.stdin.flush()
            client.wait(30)
        finally:
            stop(spy, signal.SIGINT, 60)
            stop(client)
        n = res["conns"]
        return {"conns": n, "accept_s": res["seconds"], "rss0_kib": rss0, "rss1_kib": rss1,
                "kib_per_conn": (rss1 - rss0) / n}

    @staticmethod
    def _start_spy(cmd, errf):
        """Start py-spy on a running server; returns once it samples."""
        spy = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errf, text=True)
        wait_for_word(spy.stdout, "Sampling")
        return spy

    @staticmethod
    def _wait_attached(tracer):
        """Wait (bounded) until strace says it attached to the server."""
        wait_for_word(tracer.stderr, "attached")
        time.sleep(0.2)         # strace -f attaches the other threads right after

    def run(self, fw, case, **kw):
        if self.opts.quick and FRAMEWORKS[fw].get("not_quick"):
            return {"unavailable": FRAMEWORKS[fw]["not_quick"]}
        reason = self.check(fw)
        if reason:
            return {"unavailable": reason}
        if case["workload"] in SOCKET_WL:
            return self.run_server(fw, case, **kw)
        return self.run_inproc(fw, case, **kw)


def parse_strace(path):
    """(total calls, [(syscall, calls), ...] top 6) from an ``strace -c`` file."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return None, []
    rows, total = [], None
    for line in lines:
        parts = line.split()
        if len(parts) < 5 or not parts[0].replace(".", "").isdigit():
            continue
        if parts[-1] == "total":
            total = int(parts[3])
            continue
        # % time, seconds, usecs/call, calls, [errors], syscall
        try:
            rows.append((parts[-1], int(parts[3])))
        except ValueError:
            continue
    if total is None and rows:
        total = sum(c for _, c in rows)
    rows.sort(key=lambda r: -r[1])
    return total, rows[:6]


_C_LINE = re.compile(r"(\.[ch]):\d+\)$")
#: a frame of a thread waiting for a lock: idle, which py-spy's native
#: stacks do not always recognise
_LOCK_WAIT = "PyThread_acquire_lock_timed "


def folded_summary(folded, txt, what):
    """Write ``txt``: the 30 frames with the most samples of their own and the
    30 with the most samples in all, from py-spy's folded stacks
    (``frame;frame;... count`` lines).  Returns False when there were none."""
    own, inclusive = {}, {}
    total = 0
    with open(folded) as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack or not count.isdigit():
                continue
            n = int(count)
            # native frames: one entry per C function (not per line), and
            # one per library for those without a symbol
            frames = [_C_LINE.sub(r"\1)", fr.split(" ", 1)[1] if fr.startswith("0x") else fr)
                      for fr in stack.split(";")]
            if any(fr.startswith(_LOCK_WAIT) for fr in frames):
                continue        # a thread blocked on a lock (the main one, in value())
            total += n
            own[frames[-1]] = own.get(frames[-1], 0) + n
            for fr in set(frames):
                inclusive[fr] = inclusive.get(fr, 0) + n
    if not total:
        return False
    out = ["py-spy of: %s" % what,
           "(%d samples at %d Hz of the threads that were not idle or waiting for a lock; "
           "native frames included)" % (total, SPY_RATE), ""]
    for title, table in (("own samples", own), ("samples in all (the frame and its callees)",
                                                inclusive)):
        out += ["%s:" % title, "%8s %7s  frame" % ("samples", "%")]
        for fr, n in sorted(table.items(), key=lambda kv: -kv[1])[:30]:
            out.append("%8d %6.1f%%  %s" % (n, 100.0 * n / total, fr))
        out.append("")
    with open(txt, "w") as f:
        f.write("\n".join(out))
    return True


# -- statistics and formatting ---------------------------------------------------------

def summarize(runs, key):
    vals = [r[key] for r in runs if isinstance(r, dict) and key in r]
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


def fmt(v, kind):
    if v is None:
        return "–"
    if kind == "rate":
        if abs(v) >= 1e6:
            return "%.2fM" % (v / 1e6)
        if abs(v) >= 1e3:
            return "%.1fk" % (v / 1e3)
        return "%.0f" % v
    return {"f1": "%.1f", "f2": "%.2f", "f3": "%.3f"}[kind] % v


def cell(st, kind):
    if st is None:
        return "–"
    if st["n"] == 1:
        return fmt(st["median"], kind)
    return "%s (%s–%s)" % (fmt(st["median"], kind), fmt(st["min"], kind), fmt(st["max"], kind))


def fw_label(fw, case):
    """A framework's name in a table ("streams" only matters for sockets)."""
    label = FRAMEWORKS[fw]["label"]
    if case["workload"] not in SOCKET_WL:
        label = label.replace(" (streams)", "")
    return label


def ahead(ours, theirs, better):
    return ours > theirs if better == "high" else ours < theirs


def overlap(a, b):
    """Do the min-max ranges of two summaries overlap (the run did not
    separate the two frameworks)?"""
    return a["min"] <= b["max"] and b["min"] <= a["max"]


def case_size_note(case, sizes):
    return case["title"].format(**sizes)


# -- the report -------------------------------------------------------------------------

def write_report(interp, data, opts, charts_status):
    """bench/results/<interp>.md from ``data`` (what main() collected)."""
    sizes = data["sizes"]
    out = []
    w = out.append
    w("# pycos benchmarks on %s" % data["interpreter"])
    w("")
    w("Generated by `python bench/run.py%s` on %s (%s, %d CPUs, load average at start %s)."
      % (data["argv"], data["date"], data["machine"], data["cpus"], data["loadavg"]))
    w("Rounds: %d, frameworks interleaved (A B C A B C ...). Cells: median (min–max)."
      % data["rounds"])
    if opts.quick:
        w("")
        w("**Quick smoke run**: tiny sizes and one round. These figures say that every "
          "workload runs, nothing about speed; the targets below are not judged.")
    w("")
    w("Ratio columns: pycos median / peer median (for \"low\" figures, such as CPU per "
      "message, below 1 means pycos is better). A ✓ marks a peer pycos is ahead of.")
    if charts_status:
        w("")
        w("Charts: %s" % charts_status)
    w("")
    for case in data["cases"]:
        name = case["name"]
        runs = data["results"].get(name, {})
        w("## %s" % case_size_note(case, sizes))
        w("")
        metrics = [m for m in case["metrics"]
                   if any(summarize(r, m[0]) for r in runs.values())]
        primary = [m for m in metrics if m[0] in PRIMARY[name]]
        head = ["framework"] + ["%s (%s better)" % (m[1], "higher" if m[3] == "high" else "lower")
                                for m in metrics] + ["pycos/peer: %s" % m[1] for m in primary]
        w("| " + " | ".join(head) + " |")
        w("|" + "---|" * len(head))
        ours = {m[0]: summarize(runs.get("pycos", []), m[0]) for m in metrics}
        for fw in data["frameworks"]:
            if fw not in runs:
                continue
            rr = runs[fw]
            label = fw_label(fw, case)
            scale = FRAMEWORKS[fw].get("scale")
            if scale and size_key(case["workload"]) in SCALED_SIZES[scale]["full"]:
                n = next((r.get("n") for r in rr if isinstance(r, dict) and "n" in r), None)
                if n:
                    label += " (n=%s)" % format(n, ",")
            bad = [r for r in rr if "unavailable" in r or "failed" in r]
            good = [r for r in rr if "unavailable" not in r and "failed" not in r]
            if not good:
                why = bad[0].get("unavailable") or "FAILED: " + bad[0].get("failed", "?")
                w("| %s | %s |" % (label, ("not available: " + why) if "unavailable" in bad[0]
                                   else why) + " |" * (len(head) - 2))
                continue
            row = [("**%s**" % label) if fw == "pycos" else label]
            for m in metrics:
                row.append(cell(summarize(good, m[0]), m[2]))
            for m in primary:
                st, o = summarize(good, m[0]), ours[m[0]]
                if fw == "pycos" or st is None or o is None or not st["median"]:
                    row.append("")
                else:
                    ratio = o["median"] / st["median"]
                    mark = " ✓" if ahead(o["median"], st["median"], m[3]) else ""
                    row.append("%.2f×%s" % (ratio, mark))
            if bad:
                row[0] += " (%d of %d rounds failed: %s)" % (
                    len(bad), len(rr), (bad[0].get("failed") or bad[0].get("unavailable"))[:120])
            w("| " + " | ".join(row) + " |")
        splits = []
        for fw in data["frameworks"]:
            u = summarize([r for r in runs.get(fw, []) if isinstance(r, dict)], "user_us_per_msg")
            k = summarize([r for r in runs.get(fw, []) if isinstance(r, dict)], "sys_us_per_msg")
            if u and k:
                splits.append("%s %.2f + %.2f" % (fw_label(fw, case), u["median"], k["median"]))
        if splits:
            w("")
            w("Server CPU per message, user + system µs (median; the system part is mostly "
              "the kernel's TCP work, alike for every server): " + "; ".join(splits) + ".")
        tops = [(fw, r["syscall_top"]) for fw, rr in runs.items() for r in rr
                if isinstance(r, dict) and r.get("syscall_top")]
        if tops:
            w("")
            w("Syscalls of the server during a 1 s run (strace -c -f), most frequent, per message:")
            for fw, top in tops:
                msgs = next(r["msgs"] for r in runs[fw] if r.get("syscall_top"))
                w("- %s: %s" % (FRAMEWORKS[fw]["label"],
                                ", ".join("%s %.2f" % (sc, c / msgs) for sc, c in top)))
        if data.get("charts", {}).get(name):
            w("")
            w("![%s](%s)" % (name, data["charts"][name]))
        prof = data.get("profiles", {}).get(name)
        if prof:
            w("")
            w("Profile of the pycos side (%s): `%s` (top 30: `%s`)"
              % (prof["tool"], prof["data"], prof["summary"])
              + ("; its receiving process: `%s`" % prof["server"] if prof.get("server") else "")
              + ("; both processes' samples" if prof["tool"] == "py-spy"
                 and case["workload"] in NET_WL else ""))
        w("")
    w("## Targets (issue 5; the net-* ones: the netpycos issue)")
    w("")
    if data["rounds"] > 1:
        w("\"Within the spread\": the two min–max ranges overlap, so this run did not separate "
          "pycos from that peer. `bench/compare.py` compares the orderings of several runs.")
        w("")
    if any(c["workload"] in DISPY_WL for c in data["cases"]):
        w("The dispy-* targets: the dispycos issue (item 10). dispy-makespan is judged "
          "against the ideal, not ranked.")
        w("")
    for line in targets(interp, data, opts):
        w("- " + line)
    w("")
    w("Figures on a shared machine are noisy; ratios from the same run (interleaved) are the "
      "figures to compare. See bench/results/README.md.")
    path = os.path.join(RESULTS, "%s.md" % data["base"])
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    return path


def targets(interp, data, opts):
    """One line per target of the issue: MET, MISSED or NOT MEASURED, plainly."""
    lines = []
    res = data["results"]
    tag = "(quick run: not judged) " if opts.quick else ""

    def stats(fw, case, key):
        return summarize([r for r in res.get(case, {}).get(fw, [])
                          if "failed" not in r and "unavailable" not in r], key)

    def med(fw, case, key):
        st = stats(fw, case, key)
        return st["median"] if st else None

    where = "on CPython" if interp == "cpython" else "on PyPy (fastest of everything that runs there)"
    for case in data["cases"]:
        name = case["name"]
        if name in NOT_RANKED:
            continue
        for key in PRIMARY[name]:
            m = next(m for m in case["metrics"] if m[0] == key)
            o = stats("pycos", name, key)
            if o is None:
                lines.append("%s%s %s: pycos ahead of every peer %s — NOT MEASURED (pycos did "
                             "not run)" % (tag, name, m[1], where))
                continue
            ours = o["median"]
            behind = []
            close = []
            skipped = []
            compared = 0
            for fw in data["frameworks"]:
                if FRAMEWORKS[fw]["role"] != "peer":
                    continue
                st = stats(fw, name, key)
                if st is None:
                    continue
                theirs = st["median"]
                scale = FRAMEWORKS[fw].get("scale")
                if (case["workload"] in SIZE_BOUND_WL and scale
                        and size_key(case["workload"]) in SCALED_SIZES[scale]["full"]):
                    skipped.append(fw_label(fw, case))
                    continue
                compared += 1
                within = o["n"] > 1 and overlap(o, st)
                if not ahead(ours, theirs, m[3]):
                    behind.append("%s %s%s" % (fw_label(fw, case), fmt(theirs, m[2]),
                                               ", within the spread" if within else ""))
                elif within:
                    close.append(fw_label(fw, case))
            verdict = "MET" if not behind else "MISSED (behind: %s)" % "; ".join(behind)
            if close:
                verdict += "; within the spread of this run: %s" % ", ".join(close)
            if compared == 0:
                verdict = "NOT MEASURED (no peer ran)"
            if skipped:
                verdict += " (not judged against %s: run with fewer tasks, and this figure " \
                           "grows with their number)" % ", ".join(skipped)
            lines.append("%s%s %s: pycos %s ahead of every peer %s — %s"
                         % (tag, name, m[1], fmt(ours, m[2]), where, verdict))
    if interp == "cpython":
        for name, key in (("switch", "round_trips_per_s"), ("spawn", "tasks_per_s")):
            o, p = med("pycos", name, key), med("pycos4", name, key)
            if o is None or p is None:
                lines.append("%s%s at least 2× the original pycos — NOT MEASURED" % (tag, name))
            else:
                lines.append("%s%s at least 2× the original pycos: %.2f× — %s"
                             % (tag, name, o / p, "MET" if o >= 2 * p else "MISSED"))
        cpu = med("pycos", "echo-100B", "cpu_us_per_msg")
        if cpu is None:
            lines.append("%secho server CPU ≤ 5 µs per 100-byte message — NOT MEASURED" % tag)
        else:
            lines.append("%secho server CPU ≤ 5 µs per 100-byte message: %.2f µs — %s"
                         % (tag, cpu, "MET" if cpu <= 5.0 else "MISSED"))
        sc = med("pycos", "echo-100B", "syscalls_per_msg")
        # one recv + one send per message, plus epoll_wait amortised over the
        # ready connections (the C server measures 2.01): up to 2.1 counts as 2
        if sc is None:
            why = ("strace is not installed" if shutil.which("strace") is None
                   else "run with --syscalls")
            lines.append("%s≤ 2 syscalls per echoed message — NOT MEASURED (%s)" % (tag, why))
        else:
            lines.append("%s≤ 2 syscalls per echoed message (+ amortised epoll_wait, ≤ 2.1): "
                         "%.2f — %s" % (tag, sc, "MET" if sc <= 2.1 else "MISSED"))
    if any(c["workload"] in NET_WL for c in data["cases"]):
        lines += net_targets(interp, tag, med)
    if any(c["workload"] in DISPY_WL for c in data["cases"]):
        lines += dispy_targets(interp, tag, med, data["sizes"])
    return lines


def dispy_targets(interp, tag, med, sizes):
    """The dispycos issue's targets (item 10) besides "ahead of every peer"
    on both dispy-jobs rows (judged above; that covers Ray, Dask and
    ProcessPoolExecutor)."""
    lines = []
    on = "on CPython" if interp == "cpython" else "on PyPy"
    n = sizes.get("dispy_jobs")
    parts, ok, seen = [], True, False
    for case, what in (("dispy-jobs-8", "%s outstanding" % sizes.get("dispy_window")),
                       ("dispy-jobs-all", "all at once")):
        o, p = med("pycos", case, "jobs_per_s"), med("pycos4", case, "jobs_per_s")
        if o is None or p is None:
            ok = False
            parts.append("%s: NOT MEASURED" % what)
            continue
        seen = True
        ok = ok and o >= 5 * p
        parts.append("%s: %.1f× (%s vs %s jobs/s)" % (what, o / p, fmt(o, "rate"), fmt(p, "rate")))
    scaled = SCALED_SIZES["pycos4"]["full"].get("dispy_jobs")
    note = (" (the original ran n=%s, not %s: its rate falls with n)" % (format(scaled, ","),
                                                                         format(n, ","))
            if scaled and n and scaled < n else "")
    lines.append("%sdispy-jobs jobs/s at least 5× the original dispycos's %s: %s%s — %s"
                 % (tag, on, "; ".join(parts), note,
                    ("MET" if ok else "MISSED") if seen else "NOT MEASURED"))
    a, b = med("pycos", "dispy-jobs-all", "jobs_per_s"), med("pycos", "dispy-jobs-8", "jobs_per_s")
    if a is None or b is None:
        lines.append("%sdispy-jobs: the same rate with all %s jobs submitted at once as with %s "
                     "outstanding %s — NOT MEASURED" % (tag, format(n or 0, ","),
                                                        sizes.get("dispy_window"), on))
    else:
        lines.append("%sdispy-jobs: the same rate (at least 90 %%) with all %s jobs submitted "
                     "at once as with %s outstanding %s: %s vs %s jobs/s, %.0f %% — %s"
                     % (tag, format(n or 0, ","), sizes.get("dispy_window"), on, fmt(a, "rate"),
                        fmt(b, "rate"), 100.0 * a / b, "MET" if a >= 0.9 * b else "MISSED"))
    m, r = med("pycos", "dispy-makespan", "makespan_s"), med("pycos", "dispy-makespan", "vs_ideal")
    if m is None:
        lines.append("%sdispy-makespan within 5 %% of the ideal %s — NOT MEASURED" % (tag, on))
    else:
        lines.append("%sdispy-makespan within 5 %% of the ideal %s: %.3f s against %g s "
                     "(+%.1f %%) — %s" % (tag, on, m, sizes.get("dispy_ideal_s"),
                                          (r - 1.0) * 100.0, "MET" if r <= 1.05 else "MISSED"))
    return lines


def net_targets(interp, tag, med):
    """The netpycos issue's own targets (besides "ahead of every peer" on
    every net-* figure, judged above): ``med(fw, case, key)`` is a median."""
    lines = []
    on = "on CPython" if interp == "cpython" else "on PyPy"
    o = med("pycos", "net-stream", "msgs_per_s")
    orig = [(label, med(fw, "net-stream", "msgs_per_s"))
            for fw, label in (("pycos4", "plain"), ("pycos4-stream", "stream_send"))]
    orig = [(label, v) for label, v in orig if v]
    if o is None or not orig:
        lines.append("%snet-stream messages/s at least 50× the original pycos's %s — NOT MEASURED"
                     % (tag, on))
    else:
        ok = all(o >= 50 * v for _, v in orig)
        lines.append("%snet-stream messages/s at least 50× the original pycos's %s: %s — %s"
                     % (tag, on, ", ".join("%.1f× (%s: %s/s)" % (o / v, label, fmt(v, "rate"))
                                           for label, v in orig), "MET" if ok else "MISSED"))
    p50 = med("pycos", "net-deliver", "p50_us")
    if p50 is None:
        lines.append("%snet-deliver p50 ≤ 100 µs %s — NOT MEASURED" % (tag, on))
    else:
        lines.append("%snet-deliver p50 ≤ 100 µs %s: %.1f µs — %s"
                     % (tag, on, p50, "MET" if p50 <= 100.0 else "MISSED"))
    f, ceiling = med("pycos", "net-file", "mb_per_s"), med("sendfile", "net-file", "mb_per_s")
    if f is None or not ceiling:
        lines.append("%snet-file send_file at least 80 %% of a blocking socket.sendfile() %s — "
                     "NOT MEASURED" % (tag, on))
    else:
        lines.append("%snet-file send_file at least 80 %% of a blocking socket.sendfile() %s: "
                     "%.0f %% (%.1f of %.1f MB/s) — %s"
                     % (tag, on, 100.0 * f / ceiling, f, ceiling,
                        "MET" if f >= 0.8 * ceiling else "MISSED"))
    return lines


# -- charts -------------------------------------------------------------------------------

def draw_charts(interp, json_path):
    """Draw the PNGs with .venv/bench's matplotlib; returns (status line, {case: file})."""
    py = os.path.join(ROOT, VENVS["cpython"]["main"], "bin", "python")
    if not os.path.exists(py):
        return "not drawn: .venv/bench is missing (bench/setup.sh)", {}
    r = subprocess.run([py, os.path.join(HERE, "charts.py"), json_path, RESULTS, interp],
                       capture_output=True, text=True)
    if r.returncode == EXIT_UNAVAILABLE:
        return "not drawn: matplotlib is not installed in .venv/bench", {}
    if r.returncode != 0:
        return "not drawn: charts.py failed: %s" % r.stderr.strip()[-300:], {}
    made = json.loads(r.stdout.strip().splitlines()[-1])
    return "PNG per workload below (median, bars = min–max)", made


# -- main ------------------------------------------------------------------------------

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke run: tiny sizes, one round")
    p.add_argument("--rounds", type=int, default=0, help="rounds (default 3, --quick 1)")
    p.add_argument("--only", default="", help="workloads: spawn,switch,timers,echo,c10k,tls,fanout,"
                                              "net-stream,net-deliver,net-rps,net-file "
                                              "(or case names such as echo-100B)")
    p.add_argument("--peers", default="", help="frameworks besides pycos, comma-separated "
                                               "(default all: %s)" % ",".join(PEER_NAMES))
    p.add_argument("--interp", default="cpython,pypy",
                   help="cpython,pypy (PyPy is skipped when its venvs are missing)")
    p.add_argument("--profile", nargs="?", const="cprofile", choices=("cprofile", "py-spy"),
                   help="save a profile of the pycos side to bench/results/profiles/ (CPython): "
                        "cProfile (the default), or py-spy's samples (needs py-spy, which "
                        "bench/setup.sh installs)")
    p.add_argument("--syscalls", action="store_true",
                   help="count server syscalls per echoed message with strace -c -f")
    p.add_argument("--duration", type=float, default=0.0, help="echo/tls seconds per run")
    p.add_argument("--seed", type=int, default=0, help="shuffle seed for the first round's order")
    p.add_argument("--tag", default="",
                   help="write <interp>-<tag>.md/.json/-*.png instead of <interp>.*, so a partial "
                        "run (--only) does not replace the full tables")
    opts = p.parse_args(argv)
    if opts.rounds <= 0:
        opts.rounds = 1 if opts.quick else 3
    return opts


def select_cases(opts):
    if not opts.only:
        return list(CASES)
    wanted = [w.strip() for w in opts.only.split(",") if w.strip()]
    names = {c["name"] for c in CASES} | {c["workload"] for c in CASES}
    bad = [w for w in wanted if w not in names]
    if bad:
        sys.exit("unknown workload(s): %s (choose from %s)" % (", ".join(bad), ", ".join(sorted(names))))
    return [c for c in CASES if c["name"] in wanted or c["workload"] in wanted]


def select_frameworks(opts):
    if not opts.peers:
        return ["pycos"] + PEER_NAMES
    wanted = [p.strip() for p in opts.peers.split(",") if p.strip()]
    bad = [p for p in wanted if p not in FRAMEWORKS]
    if bad:
        sys.exit("unknown peer(s): %s (choose from %s)" % (", ".join(bad), ", ".join(PEER_NAMES)))
    return ["pycos"] + [p for p in wanted if p != "pycos"]


def interp_available(interp):
    return os.path.exists(os.path.join(ROOT, VENVS[interp]["main"], "bin", "python"))


def interp_version(interp):
    py = os.path.join(ROOT, VENVS[interp]["main"], "bin", "python")
    r = subprocess.run([py, "-c", "import sys, platform; print(platform.python_implementation(), "
                                  "sys.version.split()[0])"], capture_output=True, text=True)
    return r.stdout.strip() or interp


def main(argv=None):
    opts = parse_args(argv)
    t_start = time.monotonic()
    ours_failed = []    # (interp, workload) where this project's pycos failed
    cases = select_cases(opts)
    frameworks = select_frameworks(opts)
    os.makedirs(RESULTS, exist_ok=True)
    if opts.profile:
        os.makedirs(PROFILES, exist_ok=True)
    nofile = raise_nofile()
    cbin = build_c()
    if opts.profile == "py-spy":
        opts.pyspy = os.path.join(ROOT, VENVS["cpython"]["main"], "bin", "py-spy")
        if not os.path.exists(opts.pyspy):
            opts.pyspy = shutil.which("py-spy")
        if opts.pyspy is None:
            log("-- py-spy is not installed (bench/setup.sh installs it): no profiles")
            opts.profile = None
    if opts.syscalls and shutil.which("strace") is None:
        log("-- strace is not installed: --syscalls ignored (syscalls per message not measured)")
        opts.syscalls = False
    tmp = tempfile.mkdtemp(prefix="pycos-bench-")
    written = []
    runners = []
    try:
        cert = make_cert(tmp) if any(c["workload"] == "tls" for c in cases) else None
        netfile = None
        if any(c["workload"] == "net-file" for c in cases):
            netfile = make_net_file(tmp, SIZES["quick" if opts.quick else "full"]["net_file"])
        interps = [i.strip() for i in opts.interp.split(",") if i.strip()]
        for interp in interps:
            if interp not in VENVS:
                sys.exit("unknown interpreter %r (cpython, pypy)" % interp)
            if not interp_available(interp):
                log("-- %s: %s is missing, skipped (bench/setup.sh makes it)"
                    % (interp, VENVS[interp]["main"]))
                continue
            sizes = dict(SIZES["quick" if opts.quick else "full"])
            if opts.duration:
                sizes["duration"] = opts.duration
            if any(c["workload"] == "c10k" for c in cases) and nofile < sizes["c10k"] + 100:
                log("!! RLIMIT_NOFILE is %d: c10k needs %d (ulimit -Hn)" % (nofile, sizes["c10k"] + 100))
            runner = Runner(opts, interp, cbin, cert, netfile)
            runners.append(runner)
            data = {"interpreter": interp_version(interp), "argv": "".join(" " + a for a in (argv or sys.argv[1:])),
                    "date": time.strftime("%Y-%m-%d %H:%M"), "machine": platform.machine(),
                    "cpus": os.cpu_count() or 0,
                    "loadavg": " ".join("%.2f" % x for x in os.getloadavg()),
                    "base": interp + ("-" + opts.tag if opts.tag else ""),
                    "rounds": opts.rounds, "sizes": sizes, "frameworks": frameworks,
                    "cases": cases, "results": {}, "profiles": {},
                    "labels": {fw: FRAMEWORKS[fw]["label"] for fw in FRAMEWORKS}}
            order_rng = random.Random(opts.seed)
            for case in cases:
                runs = data["results"].setdefault(case["name"], {})
                fws = [fw for fw in frameworks
                       if FRAMEWORKS[fw].get("only") is None or case["workload"] in FRAMEWORKS[fw]["only"]]
                order = list(fws)
                order_rng.shuffle(order)
                for rnd in range(opts.rounds):
                    k = rnd % len(order)
                    for fw in order[k:] + order[:k]:
                        if runs.get(fw) and runner.check(fw):
                            continue        # not installed: it will not be next round
                        res = runner.run(fw, case)
                        runner.failed |= "failed" in res
                        if fw == "pycos" and "failed" in res:
                            ours_failed.append("%s %s" % (interp, case["name"]))
                        runs.setdefault(fw, []).append(res)
                        log("[%s] %s round %d/%d %-14s %s" % (interp, case["name"], rnd + 1,
                                                             opts.rounds, fw, brief(case, res)))
                if opts.syscalls and case["workload"] in ("echo",) and case.get("size") == 100:
                    for fw in fws:
                        if runner.check(fw):
                            continue
                        res = runner.run(fw, case, syscalls=True)
                        if "syscalls_per_msg" in res:
                            runs[fw].append(res)
                        log("[%s] %s strace %-14s %s" % (interp, case["name"], fw, brief(case, res)))
                if opts.profile and interp == "cpython" and "pycos" in fws and not runner.check("pycos"):
                    prefix = os.path.join(PROFILES, "%s-%s" % (data["base"], case["name"]))
                    res = runner.run("pycos", case, profile_prefix=prefix)
                    if opts.profile == "py-spy":
                        main_file = prefix + ".folded"
                        ok = os.path.exists(main_file) and folded_summary(
                            main_file, prefix + ".txt", "pycos, %s" % case["name"])
                    else:
                        main_file = prefix + ".prof"
                        ok = os.path.exists(main_file)
                    if ok:
                        data["profiles"][case["name"]] = {
                            "tool": opts.profile, "data": os.path.relpath(main_file, RESULTS),
                            "summary": os.path.relpath(prefix + ".txt", RESULTS)}
                        if os.path.exists(prefix + "-server.txt"):     # net-*, cProfile
                            data["profiles"][case["name"]]["server"] = os.path.relpath(
                                prefix + "-server.txt", RESULTS)
                    log("[%s] %s profile: %s" % (interp, case["name"],
                                                 prefix + ".txt" if ok else "not written: %s" % res))
            json_path = os.path.join(RESULTS, "%s.json" % data["base"])
            with open(json_path, "w") as f:
                json.dump(data, f, indent=1, default=str)
            status, made = draw_charts(data["base"], json_path)
            data["charts"] = made
            written.append(write_report(interp, data, opts, status))
            with open(json_path, "w") as f:
                json.dump(data, f, indent=1, default=str)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        for runner in runners:      # keep the servers' stderr only when something failed
            if runner.failed:
                log("-- %s: stderr of the runs kept in %s" % (runner.interp, runner.stderr_dir))
            else:
                shutil.rmtree(runner.stderr_dir, ignore_errors=True)
    for path in written:
        log("== wrote %s" % os.path.relpath(path, ROOT))
    log("== bench done in %.0f s" % (time.monotonic() - t_start))
    if not written:
        log("!! nothing ran: make the environments with bench/setup.sh")
        return 1
    if ours_failed:     # a peer may be missing or broken; this project's pycos may not
        log("!! this pycos failed: %s" % ", ".join(ours_failed))
        return 1
    return 0


def brief(case, res):
    if "unavailable" in res:
        return "not available: %s" % res["unavailable"]
    if "failed" in res:
        return "FAILED: %s" % res["failed"]
    parts = []
    for key, label, kind, _better in case["metrics"]:
        if key in res:
            parts.append("%s %s" % (fmt(res[key], kind), label))
    return ", ".join(parts)


if __name__ == "__main__":
    sys.exit(main())
