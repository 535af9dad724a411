"""Shared plumbing for the dispycos workloads (``dispy-*``; stdlib only).

Every framework gets the same work on the same machine, with two worker
processes:

* ``dispy-jobs``: ``--n`` trivial jobs (``return x * x``), after
  :func:`warmup_count` unmeasured ones.  ``--window W`` keeps W jobs
  outstanding (a new one is submitted as soon as one ends); ``--window 0``
  submits all ``n`` at once and then collects the results.  Jobs/s from the
  first measured submission to the last result.
* ``dispy-makespan``: ``--n`` jobs that each sleep ``--sleep`` seconds on
  ``--servers`` worker processes that run ``--slots`` of them at a time.
  The makespan is the time from the first submission to the last result;
  the ideal is ``ceil(n / (servers * slots)) * sleep`` (200 jobs, 50 ms,
  2 x 4 slots: 1.25 s).

The scripts: ``dispy_pycos.py`` (both pycos implementations: this
project's from ``.venv/bench`` and the original 4.12.2 from
``.venv/bench-pycos4``; each starts a real ``dispycosnode`` of its own
package), ``dispy_dask.py``, ``dispy_ray.py`` and ``dispy_ppe.py``.  Each
prints one JSON line (``common.emit``), or ``{"unavailable": ...}`` with
exit status 3.  Every process a script starts is stopped before it exits,
also on an error (:class:`Daemon`); ``bench/run.py`` runs it in a session
of its own and kills whatever of that session is left.
"""

import argparse
import math
import os
import signal
import subprocess
import sys
import time

import common

SECRET = "pycos-bench-dispy"
WORKLOADS = ("dispy-jobs", "dispy-makespan")
perf = time.perf_counter


def parse_args(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("workload", choices=WORKLOADS)
    p.add_argument("--n", type=int, default=0, help="jobs (measured)")
    p.add_argument("--window", type=int, default=8,
                   help="dispy-jobs: jobs outstanding (0: all submitted at once)")
    p.add_argument("--servers", type=int, default=2, help="worker processes")
    p.add_argument("--slots", type=int, default=4, help="dispy-makespan: sleepers per process")
    p.add_argument("--sleep", type=float, default=0.05, help="dispy-makespan: seconds per job")
    p.add_argument("--variant", default="", help="a framework's variant (dask: map)")
    p.add_argument("--attempt", type=int, default=1, help="(dispy_pycos.py: a second try)")
    args = p.parse_args(argv)
    if args.n <= 0:
        args.n = 10000 if args.workload == "dispy-jobs" else 200
    return args


def warmup_count(args):
    """Unmeasured jobs before the measured ones: every worker process is
    up and has run a job (and any code a framework ships is loaded)."""
    return max(16, 2 * args.window)


def ideal_makespan(args):
    return math.ceil(args.n / float(args.servers * args.slots)) * args.sleep


def emit_jobs(args, seconds, **extra):
    common.emit(n=args.n, window=args.window, seconds=seconds, jobs_per_s=args.n / seconds,
                us_per_job=seconds / args.n * 1e6, **extra)


def emit_makespan(args, seconds, **extra):
    ideal = ideal_makespan(args)
    common.emit(n=args.n, sleep=args.sleep, servers=args.servers, slots=args.slots,
                makespan_s=seconds, ideal_s=ideal, vs_ideal=seconds / ideal,
                over_ideal_pct=(seconds / ideal - 1.0) * 100.0, **extra)


def check_squares(values, first):
    """``values`` are the squares of first, first + 1, ... (in any order of
    arrival the caller has put back in order), or exit 1."""
    for i, v in enumerate(values):
        if v != (first + i) * (first + i):
            sys.exit("job %d returned %r, not %d" % (first + i, v, (first + i) ** 2))


# -- a daemon process of a run (a dispycosnode) ---------------------------------

def _stat(pid):
    """(parent pid, start time) of process ``pid``, or None."""
    try:
        with open("/proc/%s/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[1]), int(fields[19])
    except (OSError, ValueError, IndexError):
        return None


def _children(pid):
    """Every live descendant of ``pid`` (from /proc), as (pid, start time)
    pairs: the start time tells a later look that the pid is the same
    process and not a new one that got its number."""
    kids = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(entry)
            if st is not None:
                kids.setdefault(st[0], []).append((int(entry), st[1]))
    out, todo = [], [pid]
    while todo:
        for c in kids.get(todo.pop(), []):
            out.append(c)
            todo.append(c[0])
    return out


class Daemon:
    """A process this run starts and must stop (a context manager):
    ``stop()`` asks it to end (``quit`` on its standard input, then
    SIGTERM), waits, and SIGKILLs it and every process it started that is
    still there (its server processes), whatever happened before."""

    def __init__(self, cmd, cwd=None, env=None, log_path=None):
        self.log = open(log_path, "w+b") if log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.PIPE,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.seen = set()

    def wait_for(self, word, timeout):
        """Wait until the daemon's output holds ``word``; False if it ends
        or ``timeout`` passes first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.output().find(word) >= 0:
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.05)
        return False

    def output(self):
        if self.log is subprocess.DEVNULL:
            return ""
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")

    def note_children(self):
        """Remember its descendants now (a SIGKILLed parent's children are
        re-parented, so they are looked up while it lives)."""
        if self.proc.poll() is None:
            self.seen.update(_children(self.proc.pid))

    def stop(self, wait=10.0):
        p = self.proc
        self.note_children()
        if p.poll() is None:
            try:
                p.stdin.write(b"quit\n")
                p.stdin.close()
            except OSError:
                pass
            try:
                p.wait(wait)
            except subprocess.TimeoutExpired:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(wait)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        for pid, start in self.seen:
            st = _stat(pid)
            if st is not None and st[1] == start:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        if self.log is not subprocess.DEVNULL:
            self.log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
