"""Primitives: wrong use gives threading's errors; FIFO hand-off; timeouts;
interrupted waiters leave the queue."""
import pytest

import pycos
from pycos import (BoundedSemaphore, Condition, Event, Lock, RLock, Semaphore, Task)


def test_outside_task_is_an_error(sched):
    for call in (Lock().acquire, RLock().acquire, Semaphore().acquire, Event().wait):
        with pytest.raises(RuntimeError, match="must be used in a task"):
            call()


def test_lock_errors_like_threading(run):
    def body(task=None):
        lock = Lock()
        errors = []
        for call in (lock.release,
                     lambda: lock.acquire(False, 1),
                     lambda: lock.acquire(True, -2)):
            try:
                call()
            except (RuntimeError, ValueError) as e:
                errors.append(type(e).__name__)
        yield lock.acquire()
        other = Task(lambda_release, lock)
        errors.append((yield other.finish()))
        lock.release()
        return errors

    def lambda_release(lock, task=None):
        try:
            lock.release()
        except RuntimeError:
            return "RuntimeError"
        yield

    assert run(body) == ["RuntimeError", "ValueError", "ValueError", "RuntimeError"]


def test_constructor_errors(sched):
    with pytest.raises(ValueError):
        Semaphore(-1)
    with pytest.raises(TypeError):
        Semaphore("2")
    with pytest.raises(TypeError):
        Condition(lock=object())


def test_lock_fifo_handoff_no_barging(run):
    order = []

    def waiter(lock, n, task=None):
        yield lock.acquire()
        order.append(n)
        yield                       # hold it across a yield
        lock.release()

    def main(task=None):
        lock = Lock()
        yield lock.acquire()
        ws = [Task(waiter, lock, n) for n in range(5)]
        yield                       # let them all queue up
        yield
        lock.release()
        # a newcomer must queue behind the five, not barge in
        assert (yield lock.acquire(blocking=False)) is False
        yield lock.acquire()
        order.append("main")
        lock.release()
        for w in ws:
            yield w.finish()
        return order

    assert run(main) == [0, 1, 2, 3, 4, "main"]


def test_timeouts_return_false(vrun):
    def main(task=None):
        lock, sem, ev, cond = Lock(), Semaphore(0), Event(), Condition()
        yield lock.acquire()

        def contender(task=None):
            return (yield lock.acquire(timeout=2))

        t0 = task._sched.now()
        a = yield Task(contender).finish()
        b = yield sem.acquire(timeout=3)
        c = yield ev.wait(4)
        yield cond.acquire()
        d = yield cond.wait(5)
        e = cond._lock.statistics()["owner"] is task
        cond.release()
        elapsed = task._sched.now() - t0
        lock.release()
        return a, b, c, d, e, elapsed

    a, b, c, d, e, elapsed = vrun(main)
    assert (a, b, c, d, e) == (False, False, False, False, True)
    assert 14 <= elapsed < 14.01


def test_rlock_reentrant_and_condition(run):
    def consumer(cond, items, task=None):
        yield cond.acquire()
        while not items:
            yield cond.wait()
        item = items.pop(0)
        cond.release()
        return item

    def main(task=None):
        rl = RLock()
        assert (yield rl.acquire()) and (yield rl.acquire())
        rl.release()
        rl.release()
        with pytest.raises(RuntimeError):
            rl.release()
        cond = Condition()
        items = []
        cs = [Task(consumer, cond, items) for _ in range(3)]
        yield
        yield cond.acquire()
        items.extend(["a", "b", "c"])
        cond.notify_all()
        cond.release()
        got = []
        for c in cs:
            got.append((yield c.finish()))
        return got

    assert run(main) == ["a", "b", "c"]


def test_condition_wait_reacquires_after_throw(vrun):
    def waiter(cond, task=None):
        yield cond.acquire()
        try:
            yield cond.wait()
        except KeyError:
            owned = cond._lock.statistics()["owner"] is task
            cond.release()
            return ("caught", owned)

    def main(task=None):
        cond = Condition()
        w = Task(waiter, cond)
        yield task.sleep(1)
        w.throw(KeyError("x"))
        return (yield w.finish())

    assert vrun(main) == ("caught", True)


def test_terminated_waiter_leaves_queue(vrun):
    def waiter(sem, task=None):
        yield sem.acquire()
        return "got it"

    def main(task=None):
        sem = Semaphore(0)
        w1, w2 = Task(waiter, sem), Task(waiter, sem)
        yield task.sleep(1)
        assert sem.statistics()["waiters"] == 2
        w1.terminate()
        yield w1.finish()
        assert sem.statistics()["waiters"] == 1
        sem.release()
        return (yield w2.finish()), sem.statistics()

    assert vrun(main) == ("got it", {"value": 0, "waiters": 0})


def test_bounded_semaphore(run):
    def main(task=None):
        s = BoundedSemaphore(2)
        yield s.acquire()
        s.release()
        with pytest.raises(ValueError, match="too many"):
            s.release()
        plain = Semaphore(1)
        plain.release()
        return plain.value

    assert run(main) == 2


def test_event_set_wakes_all(run):
    def waiter(ev, task=None):
        return (yield ev.wait())

    def main(task=None):
        ev = Event()
        ws = [Task(waiter, ev) for _ in range(4)]
        yield
        assert not ev.is_set() and not ev.isSet()
        ev.set()
        res = []
        for w in ws:
            res.append((yield w.finish()))
        ev.clear()
        res.append((yield ev.wait(0)))
        return res

    assert run(main) == [True, True, True, True, False]


def test_no_context_manager(sched):
    with pytest.raises((TypeError, AttributeError)):
        with Lock():
            pass


def test_module_names():
    for name in ("Lock", "RLock", "Condition", "Event", "Semaphore", "BoundedSemaphore"):
        assert getattr(pycos, name).__module__ == "pycos.core.primitives"
