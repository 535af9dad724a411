"""CategorizeMessages: sort a task's incoming messages into buckets.

A task that talks to several parties often wants "the next *reply*" while
requests keep arriving.  ``CategorizeMessages(task)`` sits between the task
and its message queue: functions added with :meth:`add` map a message to a
category (or None: "not mine"); :meth:`receive` returns the oldest message of
the category asked for and files the others in their buckets, in arrival
order, for later.  Messages no function claims are in category None, so
``receive()`` with no category behaves like ``task.receive()``.

Timeouts are measured on the scheduler's clock, so they follow virtual time
in tests.  The check of categorizer functions uses :func:`inspect.signature`
(works on 3.11+, unlike the original's ``getargspec``).
"""

from __future__ import annotations

import inspect
from collections import deque
from typing import Any, Callable, Deque, Dict, Generator, Hashable, List, Optional

from pycos.core.log import logger
from pycos.core.scheduler import Scheduler, _check_timeout
from pycos.core.task import Task
from pycos.hints import Timeout, Yieldable

__all__ = ["CategorizeMessages"]


class CategorizeMessages(object):
    """Message buckets for ``task`` (see the module docstring).  Guide:
    docs/messages.md."""

    _buckets: Dict[Optional[Hashable], Deque[Any]]
    _categorizers: List[Callable[[Any], Optional[Hashable]]]

    def __init__(self, task: Task) -> None:
        if not isinstance(task, Task):
            raise TypeError("CategorizeMessages needs a Task, not %r" % (task,))
        self._task = task
        self._buckets = {None: deque()}
        self._categorizers = []

    def add(self, categorize: Callable[[Any], Optional[Hashable]]) -> None:
        """Add ``categorize(msg) -> category or None``; the most recently
        added function is asked first.  TypeError if it cannot take one
        argument."""
        if not callable(categorize):
            raise TypeError("%r is not callable" % (categorize,))
        try:
            inspect.signature(categorize).bind("msg")
        except TypeError:
            raise TypeError("categorize function %r must take one argument" % (categorize,))
        except ValueError:
            pass
        self._categorizers.insert(0, categorize)

    def remove(self, categorize: Callable[[Any], Optional[Hashable]]) -> int:
        """Remove a function added before; -1 if it was not there."""
        try:
            self._categorizers.remove(categorize)
        except ValueError:
            logger.warning("CategorizeMessages.remove: %r was not added", categorize)
            return -1
        return 0

    def _category(self, msg: Any) -> Optional[Hashable]:
        for categorize in self._categorizers:
            try:
                c = categorize(msg)
            except Exception as e:
                logger.warning("categorize function %r failed on a message: %r", categorize, e)
                continue
            if c is not None:
                return c
        return None

    def receive(self, category: Optional[Hashable] = None, timeout: Timeout = None,
                alarm_value: Any = None) -> Yieldable:
        """[y] The oldest message in ``category``, waiting up to ``timeout``
        seconds (``alarm_value`` then).  Only in the task itself."""
        timeout = _check_timeout(timeout)
        task = self._task
        if Scheduler.cur_task() is not task:
            raise RuntimeError("CategorizeMessages.receive() must be called by its task %s, as "
                               "'yield categorizer.receive(...)'" % (task,))
        bucket = self._buckets.get(category)
        if bucket:      # (through the task's value: a message is never run as a sub-call)
            return task._sched._now_value(task, bucket.popleft(), "categorizer.receive()")
        return self._receive(category, timeout, alarm_value)

    def _receive(self, category: Optional[Hashable], timeout: Optional[float],
                 alarm_value: Any) -> Generator[Any, Any, Any]:
        task = self._task
        sched = task._sched
        end = None if timeout is None else sched.now() + timeout
        marker = _Alarm
        while True:
            left = None
            if end is not None:
                left = max(0.0, end - sched.now())
            msg = yield task.receive(left, marker)
            if msg is marker:
                return alarm_value
            c = self._category(msg)
            if c == category:
                return msg
            self._buckets.setdefault(c, deque()).append(msg)

    recv = receive

    def statistics(self) -> Dict[str, int]:
        """The number of messages waiting in each category (by its repr)."""
        return {repr(k): len(v) for k, v in self._buckets.items()}


class _AlarmType(object):
    __slots__ = ()


_Alarm = _AlarmType()
