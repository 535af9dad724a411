"""Embedded mode from Python: run_once/next_deadline/fileno, value() driving
the loop, and the singleton refusing contradictory arguments."""
import pytest

from pycos import Pycos, Task


def test_embedded_run_once_and_value_drive():
    sched = Pycos(embedded=True, virtual_time=True)
    assert Pycos(embedded=True) is sched
    with pytest.raises(RuntimeError, match="already exists with embedded=True"):
        Pycos(embedded=False)

    def sleeper(task=None):
        yield task.sleep(30)
        return "woke"

    t = Task(sleeper)
    assert sched.next_deadline() == 0.0        # the new task is ready
    sched.run_once(0)                          # it runs and parks
    assert t.is_alive()
    assert t.value(timeout=60) == "woke"       # drives the loop in this thread
    assert sched.next_deadline() is None
    sched.finish()
    assert not sched.is_alive()


def test_embedded_real_time_deadline_and_finish():
    sched = Pycos(embedded=True)

    def sleeper(task=None):
        yield task.sleep(0.05)

    Task(sleeper)
    sched.run_once(0)
    d = sched.next_deadline()
    assert 0 < d <= 0.05
    sched.finish()                             # runs rounds until the task is done
    assert not sched.is_alive()
    with pytest.raises(RuntimeError):
        sched.run_once(0)


def test_run_once_refused_when_threaded(sched):
    with pytest.raises(RuntimeError, match="embedded"):
        sched.run_once()
