"""Soak runs (opt-in: ``pytest -m soak tests/core``): the property tests
with many more examples, and bigger task counts, on real time."""
import threading

import pytest
from hypothesis import given, settings

from pycos import MonitorStatus, Task

import test_primitives_model as models
import test_threads_messages as messages

pytestmark = pytest.mark.soak

SOAK = settings(max_examples=500, stateful_step_count=60, deadline=None)


def _soaked(machine):
    """A fresh subclass, so the quick tests' TestCase (and its settings and
    marks) stays as it is."""
    sub = type(machine.__name__ + "Soak", (machine,), {})
    case = sub.TestCase
    case.settings = SOAK
    return pytest.mark.timeout(3600)(case)


TestLockSoak = _soaked(models.LockMachine)
TestRLockSoak = _soaked(models.RLockMachine)
TestConditionSoak = _soaked(models.ConditionMachine)
TestSemaphoreSoak = _soaked(models.SemaphoreMachine)
TestBoundedSemaphoreSoak = _soaked(models.BoundedSemaphoreMachine)
TestEventSoak = _soaked(models.EventMachine)


@pytest.mark.timeout(3600)
@settings(max_examples=2000, deadline=None)
@given(plan=messages.PLANS)
def test_message_order_soak(plan):
    messages.check_interleaving(plan)


@pytest.mark.timeout(1800)
def test_half_a_million_tasks_real_time(sched):
    n = 500000
    done = [0]

    def sleeper(i, task=None):
        yield task.sleep((i % 50) / 1000.0)
        done[0] += 1

    def main(task=None):
        ts = [Task(sleeper, i) for i in range(n)]
        for t in ts:
            yield t.finish()

    Task(main).value(1700)
    assert done[0] == n
    assert sched.statistics()["tasks"] == 0


@pytest.mark.timeout(1800)
def test_exception_storm_with_thread_senders(sched, caplog):
    import logging
    caplog.set_level(logging.CRITICAL, logger="pycos")
    n = 50000

    def failing(i, task=None):
        m = yield task.receive()
        raise ValueError((i, m))

    ts = [Task(failing, i) for i in range(n)]

    def poke(part):
        for t in ts[part::8]:
            t.send("go")

    threads = [threading.Thread(target=poke, args=(k,)) for k in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    vals = [t.value(600) for t in ts]
    assert all(isinstance(v, MonitorStatus) and v.type is ValueError for v in vals)
    assert sched.join(timeout=60)
    assert Task(lambda_gen).value(10) == "alive"


def lambda_gen(task=None):
    yield
    return "alive"
