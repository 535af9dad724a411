"""dispycos heartbeats (pycos.dispy.liveness.Watch) on virtual time.

RELIABILITY.md A1: an hour of pulses and zombie checks for 50 simulated
nodes runs in well under 2 s of real time, and a node that goes silent is
declared dead once, ``zombie_period`` after the pulse it missed, give or
take one check (half a pulse interval); no live node is ever declared dead.
A4: liveness runs on the scheduler's monotonic (here virtual) clock, so
stepping the wall clock cannot make a node look silent.
"""
import time

import pytest

from pycos.core.scheduler import Pycos as CorePycos
from pycos.core.task import Task
from pycos.dispy.liveness import Watch

pytestmark = pytest.mark.timeout(30)

PULSE = 5.0
ZOMBIE = 30.0
HOUR = 3600.0


@pytest.fixture
def vtime():
    old = CorePycos.existing()
    if old is not None:
        old.terminate()
    sched = CorePycos(virtual_time=True)
    yield sched
    sched.terminate()


def test_an_hour_of_pulses_for_50_nodes(vtime, monkeypatch):
    silent_at = {7: 1000.0, 23: 2500.0}        # node -> when it stops pulsing
    declared = []
    # (A4) a wall clock that jumps an hour back and forth must change nothing
    real_time = time.time
    jumps = iter([3600.0, -3600.0] * 1000000)
    monkeypatch.setattr(time, "time", lambda: real_time() + next(jumps))

    def main(task=None):
        watch = Watch(ZOMBIE, PULSE, lambda key, silent: declared.append(
            (key, task._sched.now(), silent)))
        start = task._sched.now()
        last = {}

        def node(i, task=None):
            # each node its own phase, like real nodes started at different times
            yield task.sleep(PULSE * i / 50.0)
            while task._sched.now() - start < HOUR:
                t = task._sched.now() - start
                if i in silent_at and t >= silent_at[i]:
                    return
                watch.heard(i)
                last[i] = task._sched.now()
                yield task.sleep(PULSE)
        nodes = [Task(node, i) for i in range(50)]
        for n in nodes:
            yield n.finish()
        watch.stop()
        return start, last
    t0 = time.perf_counter()
    start, last = Task(main).value(timeout=20)
    took = time.perf_counter() - t0
    assert took < 2.0, took
    # only the two silent nodes were declared dead, once each
    assert sorted(k for k, _, _ in declared) == [7, 23], declared
    for key, when, silent in declared:
        missed = last[key] + PULSE           # the pulse that did not come
        assert ZOMBIE < when - missed <= ZOMBIE + PULSE / 2 + 1e-6, (key, when - missed)
        assert silent == pytest.approx(when - last[key])


def test_heard_again_restarts_the_watch_and_forget_stops_it(vtime):
    declared = []

    def main(task=None):
        watch = Watch(10, 1, lambda key, silent: declared.append((key, task._sched.now())))
        t0 = task._sched.now()
        watch.heard("a")
        watch.heard("b")
        watch.forget("b")
        yield task.sleep(20)                 # "a" reported once, "b" never
        watch.heard("a")                     # back: watched anew
        yield task.sleep(5)
        assert watch.silent_for("a") == pytest.approx(5)
        assert watch.silent_for("b") is None
        yield task.sleep(20)
        watch.stop()
        return [(k, round(t - t0, 3)) for k, t in declared]
    got = Task(main).value(timeout=10)
    assert [k for k, _ in got] == ["a", "a"]
    assert 11 < got[0][1] <= 11.5 and 31 < got[1][1] <= 31.5, got


def test_period_zero_reports_nobody_and_bad_arguments(vtime):
    declared = []

    def main(task=None):
        watch = Watch(0, 1, lambda key, silent: declared.append(key))
        watch.heard("x")
        yield task.sleep(100)
        watch.stop()
    Task(main).value(timeout=10)
    assert declared == []
    with pytest.raises(ValueError, match="interval"):
        Watch(10, 0, lambda k, s: None)
    with pytest.raises(ValueError, match="period"):
        Watch(-1, 1, lambda k, s: None)


def test_a_failing_callback_does_not_end_the_watch(vtime):
    calls = []

    def cb(key, silent):
        calls.append(key)
        if key == "bad":
            raise RuntimeError("callback failed on purpose")

    def main(task=None):
        watch = Watch(5, 1, cb)
        watch.heard("bad")
        yield task.sleep(3)
        watch.heard("good")
        yield task.sleep(20)
        watch.stop()
    Task(main).value(timeout=10)
    assert calls == ["bad", "good"]


def test_a_key_with_a_longer_interval_gets_its_own_limit(vtime):
    """A node that pulses less often than the client asked (its
    --min_pulse_interval) is watched at its own interval: silent for
    period + its interval, not the watch's."""
    declared = []

    def main(task=None):
        watch = Watch(5, 1, lambda key, silent: declared.append((key, task._sched.now())))
        t0 = task._sched.now()
        watch.heard("slow", 4)               # pulses every 4 s: limit 9 s
        watch.heard("fast", 0.5)             # shorter than the watch's: limit 6 s
        for _ in range(3):                   # "slow" pulses on time three times
            yield task.sleep(4)
            watch.heard("slow")
        yield task.sleep(20)
        watch.stop()
        return [(k, round(t - t0, 3)) for k, t in declared]
    got = Task(main).value(timeout=10)
    assert [k for k, _ in got] == ["fast", "slow"], got
    assert 6 < got[0][1] <= 6.5, got
    assert 12 + 9 < got[1][1] <= 12 + 9.5, got
