"""WaitQueue: the one FIFO wait queue under every primitive.

Locks, semaphores, events, conditions and channels all need the same thing:
"park the current task here, maybe with a timeout; later wake the oldest one
(or all) with a value".  Doing that once, correctly, means every primitive
gets FIFO fairness, timeouts, and correct cleanup when a waiter is
interrupted (thrown at, terminated, hot-swapped) for free -- and each
primitive shrinks to its own bookkeeping.  (The idea is trio's ParkingLot.)

A waiter leaves the queue in exactly one of three ways: :meth:`unpark` pops
it and wakes it with a value; its timeout fires (it wakes with the queue's
timeout value, usually False); or it is interrupted.  In the last two cases
the scheduler calls the queue's cancel hook, which drops the task.  The
queue is an ``OrderedDict`` keyed by the task id, so removal from the middle
and popping the oldest are both O(1).

A WaitQueue never blocks anything itself and never imports the scheduler
class: it talks to the task's scheduler through ``task._sched``.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Dict, Optional

from pycos.core.scheduler import PARKED, _cur_task
from pycos.hints import Yieldable

if TYPE_CHECKING:
    from pycos.core.task import Task

__all__ = ["WaitQueue", "current_task"]


def current_task(what: str) -> Task:
    """The running task, or RuntimeError naming the call ``what``."""
    task = _cur_task()
    if task is None:
        raise RuntimeError("%s must be used in a task, as 'yield %s'" % (what, what))
    return task


class WaitQueue(object):
    """A FIFO of parked tasks: park / unpark / unpark_all / cancel.

    ``what`` names the call that parks tasks here (``"lock.acquire()"``),
    for the error a task gets when it makes that call without ``yield``."""

    __slots__ = ("_waiters", "_hook", "_what")

    _waiters: OrderedDict[int, Task]

    def __init__(self, what: str = "a wait in a pycos primitive") -> None:
        self._waiters = OrderedDict()
        self._hook = self._cancel
        self._what = what

    def __len__(self) -> int:
        return len(self._waiters)

    def __bool__(self) -> bool:
        return bool(self._waiters)

    def park(self, task: Task, timeout: Optional[float] = None, alarm: Any = False) -> Yieldable:
        """Park the running ``task`` at the end of the queue; the task must
        yield the return value.  It resumes with what :meth:`unpark` gives,
        or ``alarm`` after ``timeout`` seconds."""
        self._waiters[task._id] = task
        return task._sched._park(task, timeout, alarm, self._hook)

    def _cancel(self, task: Task, reason: int) -> None:
        self._waiters.pop(task._id, None)

    def unpark(self, value: Any = True) -> Optional[Task]:
        """Wake the oldest waiter with ``value``; returns it (None if empty)."""
        waiters = self._waiters
        while waiters:
            _, task = waiters.popitem(last=False)
            if task._state == PARKED and task._sched._unpark(task, value):
                return task
        return None

    def unpark_all(self, value: Any = True) -> int:
        """Wake every waiter (oldest first) with ``value``; returns how many."""
        n = 0
        while self.unpark(value) is not None:
            n += 1
        return n

    def cancel(self, task: Task) -> bool:
        """Remove ``task`` without waking it; True if it was waiting here."""
        return self._waiters.pop(task._id, None) is not None

    def peek(self) -> Optional[Task]:
        """The oldest waiter, or None."""
        for task in self._waiters.values():
            return task
        return None

    def statistics(self) -> Dict[str, Any]:
        return {"waiters": len(self._waiters)}
