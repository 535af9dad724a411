"""Fixtures for the sockets-and-files tests (pycos.io).

Every test gets a fresh scheduler and, after it, a check that it left
nothing behind:

* no live non-daemon task;
* the reactor loop has no pending operation, registration or known
  descriptor (``pending_ops``, ``registered_fds``, ``known_fds`` all 0 --
  tests close every socket and file they make) and, once no task is alive,
  no timer;
* no thread the test started is still running;
* no descriptor leaked (``/proc/self/fd`` before/after);
* no child process left (every subprocess reaped).

The backend is whatever ``PYCOS_BACKEND`` says (``epoll`` or ``poll``).
"""
import os
import threading

import pytest

import pycos
from pycos.core.scheduler import Pycos


def open_fds():
    """The descriptors of this process, with what they point to."""
    fds = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            fds[int(name)] = os.readlink("/proc/self/fd/" + name)
        except OSError:         # the listing's own descriptor, gone already
            pass
    return fds


def child_pids():
    """Children of this process (zombies included) from /proc."""
    pids = set()
    base = "/proc/self/task"
    for tid in os.listdir(base):
        try:
            with open("%s/%s/children" % (base, tid)) as f:
                pids.update(int(p) for p in f.read().split())
        except OSError:
            pass
    return pids


def _leftovers(sched):
    problems = []
    stats = sched.statistics()
    if stats["non_daemon"]:
        problems.append("%d non-daemon task(s) still alive" % stats["non_daemon"])
    loop = stats.get("loop", {})
    for key in ("pending_ops", "registered_fds", "known_fds", "queued_events"):
        if loop.get(key):
            problems.append("reactor %s = %d (stats %r)" % (key, loop[key], loop))
    if stats["tasks"] == 0:
        if stats["timeouts"] or stats["handlers"]:
            problems.append("timeouts/handlers left: %r" % (stats,))
        if loop.get("timers"):
            problems.append("%d reactor timer(s) left" % loop["timers"])
    return problems


@pytest.fixture(autouse=True)
def nothing_left_behind():
    old = Pycos.existing()
    if old is not None:       # a previous test's scheduler must not leak into this one
        old.terminate()
    threads_before = set(threading.enumerate())
    fds_before = open_fds()
    children_before = child_pids()
    yield
    problems = []
    sched = Pycos.existing()
    if sched is not None:
        if sched.is_alive():
            problems += _leftovers(sched)
        sched.terminate()
    extra = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]
    problems += ["thread left running: %r" % t for t in extra]
    fds_after = open_fds()
    leaked = {fd: what for fd, what in fds_after.items()
              if fd not in fds_before or fds_before[fd] != what}
    # the listing itself may show up as one transient directory descriptor
    leaked = {fd: what for fd, what in leaked.items() if not what.startswith("/proc/")}
    if leaked:
        problems.append("descriptors leaked: %r" % (leaked,))
    kids = child_pids() - children_before
    if kids:
        problems.append("child processes left: %r" % (sorted(kids),))
    assert not problems, problems


@pytest.fixture
def sched():
    """A fresh threaded scheduler (backend from PYCOS_BACKEND)."""
    return Pycos()


def _run(gen_fn, *args, timeout=10, **kwargs):
    task = pycos.Task(gen_fn, *args, **kwargs)
    value = task.value(timeout)
    assert not task.is_alive(), "task %s did not finish within %ss" % (task, timeout)
    if isinstance(value, pycos.MonitorStatus):
        raise AssertionError("task %s failed:\n%s" % (task, value.value))
    return value


@pytest.fixture
def run(sched):
    """``run(gen_fn, *args, timeout=10)``: run a task on ``sched`` and return
    its value; a task that raised fails the test with its traceback."""
    return _run


@pytest.fixture
def procs():
    """Track Popen objects; every one still running is killed, all are
    reaped and their pipes closed."""
    started = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait(10)
        for f in (p.stdin, p.stdout, p.stderr):
            if f is not None and not f.closed:
                f.close()
