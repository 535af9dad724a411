"""Scale: 100,000 concurrent tasks; an exception storm leaves the scheduler
healthy."""
import logging

import pytest

from pycos import MonitorStatus, Task


@pytest.mark.timeout(180)
def test_100k_concurrent_tasks(vsched):
    n = 100000
    done = []

    def sleeper(i, task=None):
        yield task.sleep(1 + (i % 100) / 10.0)
        done.append(i)

    def main(task=None):
        ts = [Task(sleeper, i) for i in range(n)]
        # every task is alive at once: all are sleeping now
        yield task.sleep(0.5)
        alive = sum(1 for t in ts if t.is_alive())
        for t in ts:
            yield t.finish()
        return alive

    t = Task(main)
    assert t.value(170) == n
    assert len(done) == n and sorted(done) == list(range(n))


@pytest.mark.timeout(120)
def test_exception_storm(sched, caplog):
    caplog.set_level(logging.CRITICAL, logger="pycos")    # keep the log small
    n = 5000

    def failing(i, task=None):
        yield
        if i % 2:
            raise ValueError(i)
        raise KeyError(i)

    def main(task=None):
        ts = [Task(failing, i) for i in range(n)]
        out = []
        for t in ts:
            out.append((yield t.finish()))
        return out

    out = Task(main).value(100)
    assert len(out) == n and all(isinstance(s, MonitorStatus) for s in out)
    assert [s.type for s in out[:2]] == [KeyError, ValueError]

    def healthy(task=None):
        yield task.sleep(0.01)
        return "fine"

    assert Task(healthy).value(10) == "fine"
    assert sched.statistics()["tasks"] == 0
