"""Fixtures for the core tests.

Every test gets a fresh scheduler (``sched``, or ``vsched`` with virtual
time) and, after it, a check that it left nothing behind: no live non-daemon
task, no reactor timer / token handler once no task is alive, no thread it
started.  The scheduler is then terminated so the next test starts clean.
"""
import threading

import pytest

from pycos.core.scheduler import Pycos


def _leftovers(sched):
    problems = []
    stats = sched.statistics()
    if stats["non_daemon"]:
        problems.append("%d non-daemon task(s) still alive" % stats["non_daemon"])
    if stats["tasks"] == 0:
        if stats["timeouts"] or stats["handlers"]:
            problems.append("timeouts/handlers left: %r" % (stats,))
        if stats.get("loop", {}).get("timers"):
            problems.append("%d reactor timer(s) left" % stats["loop"]["timers"])
    return problems


@pytest.fixture(autouse=True)
def nothing_left_behind():
    before = set(threading.enumerate())
    old = Pycos.existing()
    if old is not None:       # a previous test's scheduler must not leak into this one
        old.terminate()
    yield
    problems = []
    sched = Pycos.existing()
    if sched is not None:
        if sched.is_alive():
            problems += _leftovers(sched)
        sched.terminate()
    extra = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    problems += ["thread left running: %r" % t for t in extra]
    assert not problems, problems


@pytest.fixture
def sched():
    """A fresh threaded scheduler."""
    return Pycos()


@pytest.fixture
def vsched():
    """A fresh threaded scheduler on virtual time."""
    return Pycos(virtual_time=True)


def _run(gen_fn, *args, **kwargs):
    import pycos
    task = pycos.Task(gen_fn, *args, **kwargs)
    value = task.value(10)
    assert not task.is_alive(), "task %s did not finish within 10s" % (task,)
    return value


@pytest.fixture
def run(sched):
    """``run(gen_fn, *args)``: run a task on ``sched``, return its value."""
    return _run


@pytest.fixture
def vrun(vsched):
    """Like ``run`` on a virtual-time scheduler."""
    return _run
