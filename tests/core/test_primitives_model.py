"""Stateful tests: each primitive against a reference model.

A few long-lived *actor* tasks run on an embedded, virtual-time scheduler and
perform one operation per command; hypothesis chooses commands (acquire,
release, wait, notify, set, clear ... with and without timeouts) and moves
the virtual clock.  After every step the model's view (who holds what, who
waits, each actor's results) must equal what the primitive did.
"""
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import pycos
from pycos.core.scheduler import Pycos

ACTORS = 4
TIMEOUTS = st.sampled_from([None, 0, 0.5, 1.0, 2.5])
NS = 1000000000


class ActorMachine(RuleBasedStateMachine):
    """Shared plumbing: actors, settling, virtual time."""

    def __init__(self):
        super().__init__()
        old = Pycos.existing()
        if old is not None:
            old.terminate()
        self.sched = Pycos(embedded=True, virtual_time=True)
        self.now = 0.0
        self.prim = self.make_primitive()
        self.results = [[] for _ in range(ACTORS)]    # actual
        self.expected = [[] for _ in range(ACTORS)]   # model
        self.blocked = set()                          # actors waiting (model)
        self.actors = [pycos.Task(self._actor, i) for i in range(ACTORS)]
        self.settle()

    def _actor(self, i, task=None):
        while True:
            cmd = yield task.receive()
            if cmd is None:
                return
            name, args = cmd
            try:
                res = yield getattr(self.prim, name)(*args)
            except Exception as e:
                res = type(e).__name__
            self.results[i].append(res)

    def settle(self):
        s = self.sched
        for _ in range(10000):
            if not (s._ready or s._inbox):
                return
            s.run_once(0)
        raise AssertionError("scheduler did not settle")

    def do(self, i, name, *args):
        self.actors[i].send((name, args))
        self.settle()

    def expect(self, i, value):
        self.expected[i].append(value)

    def deadline(self, timeout):
        return None if timeout is None else self.now + timeout

    @rule(dt=st.sampled_from([0.5, 1.0, 3.0]))
    def advance(self, dt):
        self.now += dt
        self.sched.loop.clock_advance(int(dt * NS))
        self.model_expire()
        # collect the timers that are due now; only when some are, since a
        # virtual-time run_once(0) with nothing to do jumps to the next timer
        loop = self.sched.loop
        while True:
            due = loop.next_deadline()
            if due is None or due > loop.now():
                break
            self.sched.run_once(0)
            self.settle()

    @invariant()
    def clock_moves_only_when_told(self):
        assert self.sched.loop.now() == int(round(self.now * NS))

    @invariant()
    def results_match(self):
        assert self.results == self.expected

    def teardown(self):
        for a in self.actors:
            a.terminate()
        self.settle()
        self.sched.terminate()


def idle(machine):
    return [i for i in range(ACTORS) if i not in machine.blocked]


# ---- Lock / RLock / Condition ---------------------------------------------------------

class LockModelMixin(object):
    """Model of a (re-entrant) lock with a FIFO queue of waiters.  Queue
    entries: [actor, deadline, kind, value, depth] with kind 'acquire' or
    'restore' (a Condition waiter taking the lock back)."""

    reentrant = False

    def init_model(self):
        self.owner = None
        self.depth = 0
        self.lockq = []
        self.condq = []       # [actor, deadline, depth]

    def handoff(self):
        if self.lockq:
            actor, _, kind, value, depth = self.lockq.pop(0)
            self.owner, self.depth = actor, depth
            self.blocked.discard(actor)
            self.expect(actor, value)
        else:
            self.owner, self.depth = None, 0

    def model_acquire(self, i, timeout):
        if self.owner == i and self.reentrant:
            self.depth += 1
            self.expect(i, True)
        elif self.owner is None:
            self.owner, self.depth = i, 1
            self.expect(i, True)
        elif timeout == 0:
            self.expect(i, False)
        else:
            self.lockq.append([i, self.deadline(timeout), "acquire", True, 1])
            self.blocked.add(i)

    def model_release(self, i):
        if self.owner != i:
            self.expect(i, "RuntimeError")
            return
        self.depth -= 1
        if self.depth == 0:
            self.handoff()
        self.expect(i, None)

    def restore(self, i, value, depth):
        if self.owner is None:
            self.owner, self.depth = i, depth
            self.blocked.discard(i)
            self.expect(i, value)
        else:
            self.lockq.append([i, None, "restore", value, depth])

    def model_expire(self):
        events = [(e[1], 0, n, "lock", e) for n, e in enumerate(self.lockq) if e[1] is not None
                  and e[1] <= self.now]
        events += [(e[1], 0, n, "cond", e) for n, e in enumerate(self.condq) if e[1] is not None
                   and e[1] <= self.now]
        events.sort(key=lambda x: (x[0], x[1]))
        woken = []
        for _, _, _, where, e in events:
            if where == "lock":
                self.lockq.remove(e)
                self.blocked.discard(e[0])
                self.expect(e[0], False)
            else:
                self.condq.remove(e)
                woken.append(e)
        for actor, _, depth in woken:     # they run after all timers were dispatched
            self.restore(actor, False, depth)

    @invariant()
    def lock_state_matches(self):
        stats = self.lock_stats()
        assert stats["waiters"] == len(self.lockq)
        owner = stats["owner"]
        assert (owner is None and self.owner is None) or owner is self.actors[self.owner]


class LockMachine(LockModelMixin, ActorMachine):
    def make_primitive(self):
        self.init_model()
        return pycos.Lock()

    def lock_stats(self):
        return self.prim.statistics()

    @precondition(lambda self: idle(self))
    @rule(data=st.data(), timeout=TIMEOUTS)
    def acquire(self, data, timeout):
        i = data.draw(st.sampled_from(idle(self)))
        if self.owner == i:
            return          # a Lock acquired twice by its owner just waits: not modelled
        self.model_acquire(i, timeout)
        self.do(i, "acquire", True, -1 if timeout is None else timeout)

    @precondition(lambda self: idle(self))
    @rule(data=st.data())
    def release(self, data):
        i = data.draw(st.sampled_from(idle(self)))
        self.model_release(i)
        self.do(i, "release")


class RLockMachine(LockMachine):
    reentrant = True

    def make_primitive(self):
        self.init_model()
        return pycos.RLock()

    @precondition(lambda self: idle(self))
    @rule(data=st.data(), timeout=TIMEOUTS)
    def acquire(self, data, timeout):
        i = data.draw(st.sampled_from(idle(self)))
        self.model_acquire(i, timeout)
        self.do(i, "acquire", True, -1 if timeout is None else timeout)


class ConditionMachine(RLockMachine):
    def make_primitive(self):
        self.init_model()
        return pycos.Condition()

    def lock_stats(self):
        return self.prim.statistics()["lock"]

    @precondition(lambda self: idle(self))
    @rule(data=st.data(), timeout=TIMEOUTS)
    def wait(self, data, timeout):
        i = data.draw(st.sampled_from(idle(self)))
        if self.owner != i:
            self.expect(i, "RuntimeError")
        elif timeout == 0:
            depth = self.depth
            self.depth = 0
            self.handoff()
            self.blocked.add(i)
            self.restore(i, False, depth)
        else:
            depth = self.depth
            self.depth = 0
            self.handoff()
            self.condq.append([i, self.deadline(timeout), depth])
            self.blocked.add(i)
        self.do(i, "wait", timeout)

    @precondition(lambda self: idle(self))
    @rule(data=st.data(), n=st.integers(1, 3))
    def notify(self, data, n):
        i = data.draw(st.sampled_from(idle(self)))
        if self.owner != i:
            self.expect(i, "RuntimeError")
        else:
            woken, self.condq = self.condq[:n], self.condq[n:]
            self.expect(i, None)
            for actor, _, depth in woken:
                self.restore(actor, True, depth)
        self.do(i, "notify", n)

    @precondition(lambda self: idle(self))
    @rule(data=st.data())
    def notify_all(self, data):
        i = data.draw(st.sampled_from(idle(self)))
        if self.owner != i:
            self.expect(i, "RuntimeError")
        else:
            woken, self.condq = self.condq, []
            self.expect(i, None)
            for actor, _, depth in woken:
                self.restore(actor, True, depth)
        self.do(i, "notify_all")

    @invariant()
    def cond_waiters_match(self):
        assert self.prim.statistics()["waiters"] == len(self.condq)


# ---- Semaphore / BoundedSemaphore ---------------------------------------------------

class SemaphoreMachine(ActorMachine):
    initial = 2
    bounded = False

    def make_primitive(self):
        self.value = self.initial
        self.q = []
        return (pycos.BoundedSemaphore if self.bounded else pycos.Semaphore)(self.initial)

    @precondition(lambda self: idle(self))
    @rule(data=st.data(), timeout=TIMEOUTS, blocking=st.booleans())
    def acquire(self, data, timeout, blocking):
        i = data.draw(st.sampled_from(idle(self)))
        if not blocking and timeout is not None:
            self.expect(i, "ValueError")
        elif self.value > 0:
            self.value -= 1
            self.expect(i, True)
        elif not blocking or timeout == 0:
            self.expect(i, False)
        else:
            self.q.append([i, self.deadline(timeout)])
            self.blocked.add(i)
        self.do(i, "acquire", blocking, timeout)

    @precondition(lambda self: idle(self))
    @rule(data=st.data())
    def release(self, data):
        i = data.draw(st.sampled_from(idle(self)))
        if self.bounded and self.value + 1 > self.initial:
            self.expect(i, "ValueError")
        else:
            if self.q:
                actor, _ = self.q.pop(0)
                self.blocked.discard(actor)
                self.expect(actor, True)
            else:
                self.value += 1
            self.expect(i, None)
        self.do(i, "release")

    def model_expire(self):
        expired = sorted((e for e in self.q if e[1] is not None and e[1] <= self.now),
                         key=lambda e: e[1])
        for e in expired:
            self.q.remove(e)
            self.blocked.discard(e[0])
            self.expect(e[0], False)

    @invariant()
    def state_matches(self):
        assert self.prim.statistics() == {"value": self.value, "waiters": len(self.q)}


class BoundedSemaphoreMachine(SemaphoreMachine):
    bounded = True


# ---- Event ------------------------------------------------------------------------------

class EventMachine(ActorMachine):
    def make_primitive(self):
        self.flag = False
        self.q = []
        return pycos.Event()

    @precondition(lambda self: idle(self))
    @rule(data=st.data(), timeout=TIMEOUTS)
    def wait(self, data, timeout):
        i = data.draw(st.sampled_from(idle(self)))
        if self.flag:
            self.expect(i, True)
        elif timeout == 0:
            self.expect(i, False)
        else:
            self.q.append([i, self.deadline(timeout)])
            self.blocked.add(i)
        self.do(i, "wait", timeout)

    @precondition(lambda self: idle(self))
    @rule(data=st.data())
    def set(self, data):
        i = data.draw(st.sampled_from(idle(self)))
        self.flag = True
        for actor, _ in self.q:
            self.blocked.discard(actor)
            self.expect(actor, True)
        self.q = []
        self.expect(i, None)
        self.do(i, "set")

    @precondition(lambda self: idle(self))
    @rule(data=st.data())
    def clear(self, data):
        i = data.draw(st.sampled_from(idle(self)))
        self.flag = False
        self.expect(i, None)
        self.do(i, "clear")

    def model_expire(self):
        expired = sorted((e for e in self.q if e[1] is not None and e[1] <= self.now),
                         key=lambda e: e[1])
        for e in expired:
            self.q.remove(e)
            self.blocked.discard(e[0])
            self.expect(e[0], False)

    @invariant()
    def state_matches(self):
        assert self.prim.statistics() == {"set": self.flag, "waiters": len(self.q)}


SETTINGS = settings(max_examples=60, stateful_step_count=30, deadline=None)

TestLock = LockMachine.TestCase
TestRLock = RLockMachine.TestCase
TestCondition = ConditionMachine.TestCase
TestSemaphore = SemaphoreMachine.TestCase
TestBoundedSemaphore = BoundedSemaphoreMachine.TestCase
TestEvent = EventMachine.TestCase
for _case in (TestLock, TestRLock, TestCondition, TestSemaphore, TestBoundedSemaphore, TestEvent):
    _case.settings = SETTINGS
    pytest.mark.timeout(120)(_case)
del _case
