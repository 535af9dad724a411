"""RPS (remote pico service, also RTI): a generator function offered by name.

The owner registers ``RPS(method)``; anyone locates it
(``rps = yield RPS.locate(name)``) and calls it: ``rtask = yield rps(*args)``
starts ``method(*args)`` as a task on the owner and returns a reference to
that task.  The owner sends the task's end back on its own, so ``yield
rtask.finish()`` gives the return value (or, on failure, the MonitorStatus)
even when it is asked for long after the task ended; a peer that goes
offline first makes it a MonitorStatus of type :class:`PeerOffline`.
``rps.monitor(task)`` makes ``task`` the monitor of every task that later
calls of this reference start (a local monitor also gets a PeerOffline
MonitorStatus for each of them that was running when the owner went
offline).
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Optional

from pycos import config
from pycos.core.log import logger
from pycos.core.scheduler import Pycos, Scheduler
from pycos.core.support import Location
from pycos.core.task import Task
from pycos.net import refs
from pycos.hints import TaskGenerator, Timeout, Yieldable

__all__ = ["RPS", "RTI"]


def _rps_ref(name, stamp, addr, port):
    node = refs._node
    if node is not None and stamp == node.stamp_user:
        rps = node._user._rrps.get(name)
        if rps is not None and rps._stamp == stamp:
            return rps
    r = RPS.__new__(RPS)
    r._name = name
    r._method = None
    r._stamp = stamp
    r._location = Location(addr, port)
    r._monitor = None
    r._closed = False
    return r


class RPS(object):
    """A generator function offered to peers under ``name`` (default: the
    function's name).  See the module docstring, and docs/netpycos.md.
    Calls marked [y] are made in a task as ``value = yield rps.call(...)``."""

    # (internal) called with a call's arguments, the name its task gets
    # instead of the method's: dispycos names a job's task after the
    # client's function, as 4.x did ("compute/12@host:port", not "job/12")
    _task_name = None

    _location: Optional[Location]
    _monitor: Optional[Task]

    def __init__(self, method: Callable[..., TaskGenerator], name: Optional[str] = None) -> None:
        if not inspect.isgeneratorfunction(method):
            raise TypeError("RPS needs a generator function, not %r" % (method,))
        self._method = method
        self._name = name or method.__name__
        if not isinstance(self._name, str):
            raise TypeError("RPS name must be a str")
        self._location = None
        self._monitor = None
        self._closed = False
        sched = Pycos.instance()
        node = refs._node
        self._stamp = node.stamp_user if node is not None else 0
        self._sched = sched

    @property
    def name(self) -> str:
        """The name the service is offered under."""
        return self._name

    @property
    def location(self) -> Optional[Location]:
        """Where the service runs (its owner's Location)."""
        return self._location if self._location is not None else Pycos.instance().location

    def __repr__(self) -> str:
        return "RPS(%s@%s)" % (self._name, self.location)

    def __reduce__(self):
        loc = self.location
        if loc is None:
            import pickle
            raise pickle.PicklingError("an RPS pickles only under netpycos")
        return (_rps_ref, (self._name, self._stamp, loc.addr, loc.port))

    def __eq__(self, other):
        return (isinstance(other, RPS) and self._name == other._name
                and self.location == other.location and self._stamp == other._stamp)

    def __ne__(self, other):
        return not self.__eq__(other)

    def __hash__(self):
        return hash((self._name, self.location))

    # -- the owner's side --------------------------------------------------------------

    def register(self) -> int:
        """Offer the service: ``RPS.locate(name)`` finds it.  0, or -1 when
        another live RPS has the name (or this is a remote reference)."""
        if self._location is not None:
            return -1
        reg = Pycos.instance()._registry("rps")
        cur = reg.get(self._name)
        if cur is not None and cur is not self:
            return -1
        self._closed = False
        reg[self._name] = self
        return 0

    def unregister(self) -> int:
        """Stop offering the service under its name: 0, or -1 if it was not."""
        if self._location is not None:
            return -1
        reg = Pycos.instance()._registry("rps")
        if reg.get(self._name) is self:
            del reg[self._name]
            return 0
        return -1

    def close(self) -> int:
        """Stop offering the service (unregister)."""
        self._closed = True
        self.unregister()
        return 0

    # -- the caller's side -------------------------------------------------------------

    @staticmethod
    def locate(name: str, location: Optional[Location] = None,
               timeout: Timeout = None) -> Yieldable:
        """[y] The RPS registered as ``name`` (on ``location``, or the first
        peer that has it); None on timeout."""
        return Pycos.instance()._locate("rps", name, location, timeout)

    def monitor(self, task: Optional[Task]) -> int:
        """Make ``task`` the monitor of the tasks later calls start."""
        if task is not None and not isinstance(task, Task):
            logger.warning("RPS.monitor: %r is not a task", task)
            return -1
        self._monitor = task
        return 0

    def __call__(self, *args: Any, **kwargs: Any) -> Yieldable:
        """[y] Start the service as a task on its owner; returns the task
        (a remote reference), or None when it could not be started."""
        if self._location is None:
            # a local RPS: just a task
            cur = Scheduler.cur_task()
            try:
                task = Task(self._method, *args, **kwargs)
            except Exception as e:
                logger.warning("RPS %s: %s", self._name, e)
                task = None
            if task is not None and self._monitor is not None:
                task.notify(self._monitor)
            return task if cur is None else cur._sched._now_value(cur, task)
        node = refs._node
        if node is None:
            raise RuntimeError("RPS call: the netpycos scheduler is not running")

        monitor = self._monitor
        # a monitor of this process: the owner sends the task's end once,
        # and it goes both to the result's box and to the monitor
        local = monitor if isinstance(monitor, Task) and monitor._location is None else None

        def made(req, rtask):
            if isinstance(rtask, refs.RemoteTask):
                rtask._box = refs._Box(local)
                node._boxes[req] = rtask
                if isinstance(monitor, Task):
                    # if the owner goes offline first, the monitor gets a
                    # PeerOffline status for the task, as with task.monitor()
                    with node._lock:
                        node._rmonitors.setdefault(rtask._location, {})[(rtask, monitor)] = None
            return rtask
        return node._request(self._location, "rps_call",
                             (self._name, self._stamp, args, kwargs,
                              True if local is not None else monitor),
                             config.MsgTimeout, alarm=None, fail=None, on_reply=made)


RTI = RPS
