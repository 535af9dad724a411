"""Synchronisation primitives for tasks: Lock, RLock, Condition, Event,
Semaphore, BoundedSemaphore.

Tasks only switch at ``yield``, so most programs need none of these; they
exist for the cases where a task must hold something *across* yields (a
connection, a file) and for programs ported from threads.  They behave like
:mod:`threading`'s -- same names, same return values, same errors for wrong
use -- except that every blocking call is written ``ok = yield
prim.call(...)`` and the waiter is a task, not a thread.

Every primitive is a few lines of bookkeeping over one
:class:`~pycos.core.waitqueue.WaitQueue`:

* waits are strictly FIFO;
* releasing *hands off* directly to the oldest waiter (the lock is never free
  while someone waits, so a newcomer cannot barge past the queue);
* a timed-out or interrupted waiter is simply dropped from the queue, so a
  timeout never loses a wakeup meant for someone else.

The blocking calls are plain functions that either return their result at
once (``True``/``False``, which ``yield`` hands straight back) or park the
task; only :meth:`Condition.wait` is a generator (it waits twice).

Context managers are deliberately refused: ``__enter__`` cannot yield, so a
``with lock:`` would have to acquire without waiting -- a lie when the lock is
busy.  ``with lock:`` raises a TypeError that shows the way: ``yield
lock.acquire()`` ... ``try``/``finally: lock.release()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Dict, Generator, Literal, NoReturn, Optional, \
    Union

from pycos.core.scheduler import _check_timeout, _cur_task
from pycos.core.waitqueue import WaitQueue, current_task
from pycos.hints import Timeout, Yieldable

if TYPE_CHECKING:
    from pycos.core.task import Task

__all__ = ["Lock", "RLock", "Condition", "Event", "Semaphore", "BoundedSemaphore"]


def _lock_timeout(blocking: bool, timeout: Timeout) -> Optional[float]:
    """threading's rules; returns None (no limit) or seconds (0 = try)."""
    if timeout is None:
        timeout = -1
    timeout = _check_timeout(timeout)
    if not blocking:
        if timeout != -1:
            raise ValueError("can't specify a timeout for a non-blocking call")
        return 0
    if timeout < 0:
        if timeout != -1:
            raise ValueError("timeout value must be a non-negative number")
        return None
    return timeout


class _NoWith(object):
    """``with prim:`` in a task cannot wait for ``prim`` (entering a ``with``
    block cannot yield), so it is refused with the pattern that works."""

    __slots__ = ()

    def __enter__(self) -> NoReturn:
        name = type(self).__name__
        var = name.lower()
        raise TypeError(
            "'with %s:' cannot be used on a pycos %s: entering a 'with' block cannot wait "
            "for it (there is no 'yield' in it). In a task write:\n"
            "    yield %s.acquire()\n"
            "    try:\n"
            "        ...\n"
            "    finally:\n"
            "        %s.release()" % (var, name, var, var))

    def __exit__(self, *exc_info: Any) -> Literal[False]:
        return False


class Lock(_NoWith):
    """A mutual-exclusion lock owned by one task at a time.  [y] calls are
    made in a task as ``ok = yield lock.acquire()``; see docs/primitives.md."""

    __slots__ = ("_owner", "_q")

    _owner: Optional[Task]

    def __init__(self) -> None:
        self._owner = None
        self._q = WaitQueue("lock.acquire()")

    def acquire(self, blocking: bool = True, timeout: Timeout = -1) -> Yieldable:
        """[y] True once the lock is the current task's; False if it is busy
        and ``blocking`` is False or ``timeout`` seconds pass."""
        task = current_task("lock.acquire()")
        timeout = _lock_timeout(blocking, timeout)
        if self._owner is None:
            self._owner = task
            return True
        if timeout == 0:
            return False
        return self._q.park(task, timeout, False)

    def release(self) -> None:
        """Release; the oldest waiter (if any) owns it next.  RuntimeError if
        the current task does not hold it."""
        owner = self._owner
        if owner is None:
            raise RuntimeError("release unlocked lock")
        if owner is not _cur_task():
            raise RuntimeError("cannot release a lock held by another task (%s)" % (owner,))
        self._owner = self._q.unpark(True)

    def locked(self) -> bool:
        """True while a task holds the lock."""
        return self._owner is not None

    def _is_owned(self, task: Optional[Task]) -> bool:
        return self._owner is task

    def _release_save(self, task: Task) -> Any:
        self.release()
        return None

    def _acquire_restore(self, task: Task, state: Any) -> Yieldable:
        if self._owner is None:
            self._owner = task
            return True
        return self._q.park(task, None, False)

    def statistics(self) -> Dict[str, Any]:
        """``locked``, ``owner``, ``waiters``."""
        return {"locked": self._owner is not None, "owner": self._owner,
                "waiters": len(self._q)}

    def __repr__(self) -> str:
        return "<pycos.Lock %s>" % ("locked by %s" % (self._owner,) if self._owner else "unlocked")


class RLock(_NoWith):
    """A re-entrant lock: the owning task may acquire it again; it is free
    after as many releases as acquires.  See docs/primitives.md."""

    __slots__ = ("_owner", "_depth", "_q", "_restore")

    _owner: Optional[Task]
    _restore: Dict[int, int]

    def __init__(self) -> None:
        self._owner = None
        self._depth = 0
        self._q = WaitQueue("rlock.acquire()")
        self._restore = {}      # waiter id -> depth to restore (Condition.wait)

    def acquire(self, blocking: bool = True, timeout: Timeout = -1) -> Yieldable:
        """[y] Like :meth:`Lock.acquire`; immediate for the owner."""
        task = current_task("rlock.acquire()")
        timeout = _lock_timeout(blocking, timeout)
        owner = self._owner
        if owner is task:
            self._depth += 1
            return True
        if owner is None:
            self._owner = task
            self._depth = 1
            return True
        if timeout == 0:
            return False
        return self._q.park(task, timeout, False)

    def release(self) -> None:
        """Undo one acquire; RuntimeError if the current task is not the owner."""
        if self._owner is None or self._owner is not _cur_task():
            raise RuntimeError("cannot release un-acquired lock")
        self._depth -= 1
        if self._depth == 0:
            self._handoff()

    def _handoff(self) -> None:
        nxt = self._q.unpark(True)
        self._owner = nxt
        self._depth = 0 if nxt is None else self._restore.pop(nxt._id, 1)

    def _is_owned(self, task: Optional[Task]) -> bool:
        return self._owner is task

    def _release_save(self, task: Task) -> Any:
        depth = self._depth
        self._depth = 0
        self._handoff()
        return depth

    def _acquire_restore(self, task: Task, depth: Any) -> Yieldable:
        if self._owner is None:
            self._owner = task
            self._depth = depth
            return True
        self._restore[task._id] = depth
        return self._q.park(task, None, False)

    def statistics(self) -> Dict[str, Any]:
        """``locked``, ``owner``, ``depth``, ``waiters``."""
        return {"locked": self._owner is not None, "owner": self._owner,
                "depth": self._depth, "waiters": len(self._q)}

    def __repr__(self) -> str:
        return "<pycos.RLock %s>" % ("owned by %s x%d" % (self._owner, self._depth)
                                     if self._owner else "unlocked")


class Condition(_NoWith):
    """A condition variable over a lock (a new :class:`RLock` by default).
    See docs/primitives.md."""

    __slots__ = ("_lock", "_q")

    _lock: Union[Lock, RLock]

    def __init__(self, lock: Union[Lock, RLock, None] = None) -> None:
        if lock is None:
            lock = RLock()
        elif not isinstance(lock, (Lock, RLock)):
            raise TypeError("Condition needs a pycos Lock or RLock, not %r" % (lock,))
        self._lock = lock
        self._q = WaitQueue("condition.wait()")

    def acquire(self, blocking: bool = True, timeout: Timeout = -1) -> Yieldable:
        """[y] Acquire the underlying lock."""
        return self._lock.acquire(blocking, timeout)

    def release(self) -> None:
        """Release the underlying lock."""
        self._lock.release()

    def wait(self, timeout: Timeout = None) -> Yieldable:
        """[y] Release the lock, wait for :meth:`notify` (True) or ``timeout``
        seconds (False), re-acquire the lock, and return.  RuntimeError if the
        current task does not hold the lock."""
        # (a plain function that checks, returning the generator that waits:
        # a misuse from a thread fails here instead of doing nothing)
        task = current_task("condition.wait()")
        timeout = _check_timeout(timeout)
        if not self._lock._is_owned(task):
            raise RuntimeError("cannot wait on un-acquired lock")
        return self._wait(task, timeout)

    def _wait(self, task: Task, timeout: Optional[float]) -> Generator[Any, Any, Any]:
        lock = self._lock
        saved = lock._release_save(task)
        notified = False
        try:
            if timeout is None or timeout > 0:
                notified = yield self._q.park(task, timeout, False)
        except GeneratorExit:
            raise
        except BaseException:
            yield lock._acquire_restore(task, saved)
            raise
        yield lock._acquire_restore(task, saved)
        return notified

    def wait_for(self, predicate: Callable[[], Any], timeout: Timeout = None) -> Yieldable:
        """[y] Wait until ``predicate()`` is true (checked with the lock
        held); returns its last value."""
        task = current_task("condition.wait_for()")
        timeout = _check_timeout(timeout)
        return self._wait_for(task, predicate, timeout)

    def _wait_for(self, task: Task, predicate: Callable[[], Any],
                  timeout: Optional[float]) -> Generator[Any, Any, Any]:
        sched = task._sched
        end = None if timeout is None else sched.now() + timeout
        result = predicate()
        while not result:
            left = None
            if end is not None:
                left = end - sched.now()
                if left <= 0:
                    break
            yield self.wait(left)
            result = predicate()
        return result

    def notify(self, n: int = 1) -> None:
        """Wake up to ``n`` waiting tasks (oldest first)."""
        if not self._lock._is_owned(_cur_task()):
            raise RuntimeError("cannot notify on un-acquired lock")
        for _ in range(n):
            if self._q.unpark(True) is None:
                break

    def notify_all(self) -> None:
        """Wake every waiting task."""
        if not self._lock._is_owned(_cur_task()):
            raise RuntimeError("cannot notify on un-acquired lock")
        self._q.unpark_all(True)

    notifyAll = notify_all

    def statistics(self) -> Dict[str, Any]:
        """``waiters``, and the lock's statistics under ``lock``."""
        return {"waiters": len(self._q), "lock": self._lock.statistics()}


class Event(object):
    """A flag tasks can wait for.  See docs/primitives.md."""

    __slots__ = ("_flag", "_q")

    def __init__(self) -> None:
        self._flag = False
        self._q = WaitQueue("event.wait()")

    def set(self) -> None:
        """Set the flag and wake every waiter."""
        self._flag = True
        self._q.unpark_all(True)

    def clear(self) -> None:
        """Reset the flag."""
        self._flag = False

    def is_set(self) -> bool:
        """True while the flag is set."""
        return self._flag

    isSet = is_set

    def wait(self, timeout: Timeout = None) -> Yieldable:
        """[y] True when the flag is (or becomes) set; False after
        ``timeout`` seconds."""
        timeout = _check_timeout(timeout)
        if self._flag:
            return True
        task = current_task("event.wait()")
        if timeout is not None and timeout <= 0:
            return False
        return self._q.park(task, timeout, False)

    def statistics(self) -> Dict[str, Any]:
        """``set``, ``waiters``."""
        return {"set": self._flag, "waiters": len(self._q)}


class Semaphore(_NoWith):
    """A counter of available units: ``acquire`` takes one (waiting when
    there is none), ``release`` gives one back.  See docs/primitives.md."""

    __slots__ = ("_value", "_q")

    def __init__(self, value: int = 1) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError("semaphore value must be an int, not %r" % (value,))
        if value < 0:
            raise ValueError("semaphore initial value must be >= 0")
        self._value = value
        self._q = WaitQueue("semaphore.acquire()")

    def acquire(self, blocking: bool = True, timeout: Timeout = None) -> Yieldable:
        """[y] True once a unit is taken; False if none is free and
        ``blocking`` is False or ``timeout`` seconds pass."""
        task = current_task("semaphore.acquire()")
        if not blocking and timeout is not None:
            raise ValueError("can't specify timeout for non-blocking acquire")
        timeout = _check_timeout(timeout)
        if self._value > 0:
            self._value -= 1
            return True
        if not blocking or (timeout is not None and timeout <= 0):
            return False
        return self._q.park(task, timeout, False)

    def release(self, n: int = 1) -> None:
        """Give back ``n`` units; each goes to the oldest waiter, if any."""
        if n < 1:
            raise ValueError("n must be one or more")
        self._check_release(n)
        for _ in range(n):
            if self._q.unpark(True) is None:
                self._value += 1

    def _check_release(self, n: int) -> None:
        pass

    @property
    def value(self) -> int:
        """The units available now."""
        return self._value

    def statistics(self) -> Dict[str, Any]:
        """``value``, ``waiters``."""
        return {"value": self._value, "waiters": len(self._q)}


class BoundedSemaphore(Semaphore):
    """A Semaphore that refuses (ValueError) to be released more often than
    it was acquired."""

    __slots__ = ("_initial",)

    def __init__(self, value: int = 1) -> None:
        Semaphore.__init__(self, value)
        self._initial = value

    def _check_release(self, n: int) -> None:
        if self._value + n > self._initial:
            raise ValueError("Semaphore released too many times")
