"""Timers: ordering, cancellation, odd timeouts, the manual clock."""
import math
import time

import pytest
from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from pycos import reactor


def test_timer_fires_after_delay_never_before(loop, collect):
    start = loop.now()
    loop.timer_after(0.02, 7)
    (ev,) = collect(loop, 1)
    assert ev == reactor.Event(7, reactor.EV_TIMER, 0, 0)
    assert loop.now() - start >= 20_000_000


def test_poll_timeout_is_honoured(loop):
    t0 = time.monotonic()
    assert loop.poll(0.05) == []
    assert time.monotonic() - t0 >= 0.05


def test_poll_zero_does_not_wait(loop):
    tid = loop.timer_after(10, 1)
    t0 = time.monotonic()
    assert loop.poll(0) == []
    assert time.monotonic() - t0 < 1
    assert loop.statistics()["timers"] == 1
    assert loop.next_deadline() is not None
    assert loop.timer_cancel(tid)
    assert loop.statistics()["timers"] == 0


def test_equal_deadlines_fire_in_start_order(vloop):
    for token in range(100):
        vloop.timer_at(1000, token)
    vloop.clock_set(1000)
    assert [e.token for e in vloop.poll(0)] == list(range(100))


def test_cancel(vloop):
    a = vloop.timer_at(10, 1)
    b = vloop.timer_at(10, 2)
    assert vloop.timer_cancel(a)
    assert not vloop.timer_cancel(a), "second cancel of the same id"
    assert not vloop.timer_cancel(0) and not vloop.timer_cancel(-5) and not vloop.timer_cancel(1 << 60)
    vloop.clock_set(10)
    assert [e.token for e in vloop.poll(0)] == [2]
    assert not vloop.timer_cancel(b), "cancel after it fired"


def test_stale_id_of_reused_slot_is_refused(vloop):
    a = vloop.timer_at(5, 1)
    assert vloop.timer_cancel(a)
    b = vloop.timer_at(5, 2)          # reuses the slot
    assert a != b
    assert not vloop.timer_cancel(a)
    assert vloop.timer_cancel(b)


def test_zero_and_negative_delays_fire_at_next_poll(vloop):
    vloop.clock_set(50)
    vloop.timer_after(0, 1)
    vloop.timer_after(-3.5, 2)
    vloop.timer_at(-(1 << 63), 3)
    assert sorted(e.token for e in vloop.poll(0)) == [1, 2, 3]


def test_nan_is_refused_and_huge_never_fires(vloop):
    with pytest.raises(ValueError):
        vloop.timer_after(float("nan"), 1)
    a = vloop.timer_after(math.inf, 1)
    b = vloop.timer_after(1e300, 2)
    c = vloop.timer_at(reactor.NEVER, 3)
    d = vloop.timer_after(9.3e9, 4)   # just beyond int64 nanoseconds
    vloop.clock_set(reactor.NEVER - 1)
    assert vloop.poll(0) == []
    vloop.clock_set(reactor.NEVER)
    assert vloop.poll(0) == [], "RX_NEVER must never fire"
    assert vloop.next_deadline() is None, "a timer that never fires sets no deadline"
    assert vloop.statistics()["timers"] == 4
    for t in (a, b, c, d):
        assert vloop.timer_cancel(t)
    assert vloop.next_deadline() is None


def test_large_finite_delay_saturates_without_overflow(vloop):
    vloop.clock_set(reactor.NEVER - 10)
    t = vloop.timer_after(3600.0, 1)      # now + 1 h overflows int64: saturates
    assert vloop.next_deadline() is None
    assert vloop.statistics()["timers"] == 1
    assert vloop.timer_cancel(t)


def test_manual_clock_rules(vloop, loop):
    assert vloop.is_manual and not loop.is_manual
    with pytest.raises(PermissionError):
        loop.clock_advance(5)
    with pytest.raises(OSError):
        loop.clock_set(5)
    vloop.clock_set(100)
    with pytest.raises(OSError):      # never backwards
        vloop.clock_set(99)
    with pytest.raises(OSError):
        vloop.clock_advance(-1)
    assert vloop.now() == 100


def test_virtual_minutes_in_a_moment(vloop):
    """An hour of simulated timers takes no real time and fires in order."""
    t0 = time.monotonic()
    for i in range(3600):
        vloop.timer_at((3600 - i) * 1_000_000_000, 3600 - i)
    fired = []
    while vloop.next_deadline() is not None:
        vloop.clock_set(vloop.next_deadline())
        fired.extend(e.token for e in vloop.poll(0))
    assert fired == list(range(1, 3601))
    assert time.monotonic() - t0 < 5


def test_manual_clock_poll_does_not_wait_for_timers(vloop):
    vloop.timer_at(10 ** 12, 1)                 # far in virtual time
    t0 = time.monotonic()
    assert vloop.poll(0.01) == []               # waits only its real timeout
    assert time.monotonic() - t0 < 2
    vloop.clock_advance(10 ** 12)
    assert [e.token for e in vloop.poll(None)] == [1]


class TimerModel(RuleBasedStateMachine):
    """The timer heap against a sorted list: start, cancel, advance, poll."""

    def __init__(self):
        super().__init__()
        self.loop = reactor.Loop(manual_clock=True)
        self.model = {}          # id -> (deadline, seq, token)
        self.seq = 0
        self.cancelled = []

    @rule(delay=st.integers(min_value=-5, max_value=50), token=st.integers(0, 2 ** 62))
    def start(self, delay, token):
        deadline = self.loop.now() + delay
        tid = self.loop.timer_at(deadline, token)
        assert tid > 0 and tid not in self.model
        self.model[tid] = (deadline, self.seq, token)
        self.seq += 1

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def cancel(self, data):
        tid = data.draw(st.sampled_from(sorted(self.model)))
        assert self.loop.timer_cancel(tid)
        del self.model[tid]
        self.cancelled.append(tid)

    @precondition(lambda self: self.cancelled)
    @rule(data=st.data())
    def cancel_again(self, data):
        assert not self.loop.timer_cancel(data.draw(st.sampled_from(self.cancelled)))

    @rule(step=st.integers(min_value=0, max_value=30))
    def advance_and_poll(self, step):
        self.loop.clock_advance(step)
        now = self.loop.now()
        due = sorted((v for v in self.model.values() if v[0] <= now), key=lambda v: (v[0], v[1]))
        got = [e for e in self.loop.poll(0)]
        assert all(e.kind == reactor.EV_TIMER for e in got)
        assert [e.token for e in got] == [v[2] for v in due]
        for tid in [t for t, v in self.model.items() if v[0] <= now]:
            del self.model[tid]
            self.cancelled.append(tid)

    @invariant()
    def next_deadline_matches(self):
        expect = min((v[0] for v in self.model.values()), default=None)
        assert self.loop.next_deadline() == expect
        assert self.loop.statistics()["timers"] == len(self.model)

    def teardown(self):
        self.loop.close()


TestTimerModel = TimerModel.TestCase
TestTimerModel.settings = settings(max_examples=60, stateful_step_count=60, deadline=None)
