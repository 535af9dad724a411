"""Channel: publish/subscribe between tasks.

A channel is a named fan-out point.  Subscribers are tasks (the message goes
to their ordinary message queue, so they ``yield task.receive()`` as usual)
or other channels (hierarchies: a message sent to the parent reaches every
subscriber of every child).  A sender needs no subscription.

Design notes:

* Delivery is synchronous and in subscription order: ``send`` puts the
  message in every subscriber's queue before it returns, so the messages of
  one sender arrive everywhere in the order sent, through any depth of
  channels.
* ``transform(channel_name, msg)`` runs once per channel the message passes
  through; it returns the message to pass on, or None to drop it.  It is
  checked with :func:`inspect.signature` when set, which works on every
  Python version (the original used ``getargspec``, gone in 3.11, and so
  silently lost transforms there).
* A subscription that would make a cycle is refused, so a message can never
  loop forever.
* Subscribers that have ended are dropped when a message finds them gone.
* ``deliver(msg, n=...)`` waits for enough subscribers on the same
  :class:`~pycos.core.waitqueue.WaitQueue` as every other wait in pycos.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Dict, Generator, Optional, Tuple, Union

from pycos.core.log import logger
from pycos.core.scheduler import Pycos, _check_timeout
from pycos.core.task import Task
from pycos.core.waitqueue import WaitQueue, current_task
from pycos.core.support import Location
from pycos.hints import Timeout, Yieldable

#: ``transform(channel_name, message)``: the message to pass on, or None
Transform = Callable[[str, Any], Any]

__all__ = ["Channel"]


def _check_transform(transform: Any) -> Optional[str]:
    """None if ``transform`` can be called as ``transform(name, msg)``, else
    the reason it cannot."""
    if not callable(transform):
        return "%r is not callable" % (transform,)
    try:
        inspect.signature(transform).bind("name", "msg")
    except TypeError as e:
        return "transform %r cannot be called as transform(channel_name, message): %s" % (
            transform, e)
    except ValueError:
        pass        # no signature available (some builtins): trust it
    return None


class Channel(object):
    """A named publish/subscribe channel (see the module docstring).

    Calls marked [y] are made in a task as ``value = yield ch.call(...)``;
    [y?]: a plain call, safe from any thread, that a task may also yield
    (docs/index.md explains the marks).  Guide: docs/channels.md."""

    __slots__ = ("_name", "_transform", "_subscribers", "_subq", "_sched", "_location",
                 "_closed", "__weakref__")

    _transform: Optional[Transform]
    _subscribers: Dict[Union[Task, Channel], None]
    _location: Optional[Location]

    def __init__(self, name: str, transform: Optional[Transform] = None) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError("channel name must be a non-empty str, not %r" % (name,))
        if transform is not None:
            why = _check_transform(transform)
            if why:
                raise TypeError(why)
        self._name = name
        self._transform = transform
        self._subscribers = {}
        self._subq = WaitQueue("channel.deliver()")
        self._sched = Pycos.instance()
        self._location = None
        self._closed = False
        channels = self._sched._channels
        if name in channels:
            logger.warning('duplicate channel "%s"', name)
        else:
            channels[name] = self

    @property
    def name(self) -> str:
        """The channel's name."""
        return self._name

    @property
    def location(self) -> Optional[Location]:
        """The Location of the channel's scheduler (None without networking)."""
        return self._location if self._location is not None else self._sched.location

    def __repr__(self) -> str:
        if self._location is not None:
            return "%s@%s" % (self._name, self._location)
        return self._name

    # ---- configuration ----------------------------------------------------

    def set_transform(self, transform: Optional[Transform]) -> int:
        """Replace the transform (None removes it).  0, or -1 if it cannot be
        called as ``transform(channel_name, message)``."""
        if transform is not None:
            why = _check_transform(transform)
            if why:
                logger.warning("set_transform: %s", why)
                return -1
        self._transform = transform
        return 0

    def _reaches(self, target: Channel) -> bool:
        """True if a message sent here can reach channel ``target``."""
        seen = set()
        stack = [self]
        while stack:
            ch = stack.pop()
            if ch is target:
                return True
            if id(ch) in seen:
                continue
            seen.add(id(ch))
            stack.extend(s for s in ch._subscribers if isinstance(s, Channel))
        return False

    def subscribe(self, subscriber: Union[Task, Channel], timeout: Timeout = None) -> Yieldable:
        """[y] Add a Task or Channel as a subscriber.  0, or -1 for an invalid
        subscriber, a cycle, or a closed channel."""
        _check_timeout(timeout)
        if not isinstance(subscriber, (Task, Channel)):
            logger.warning("subscribe: %r is not a Task or Channel", subscriber)
            return -1
        if self._closed:
            return -1
        if isinstance(subscriber, Channel) and subscriber._reaches(self):
            logger.warning("subscribe: %s -> %s would make a cycle", subscriber, self)
            return -1
        if isinstance(subscriber, Task) and not subscriber.is_alive():
            return -1
        self._subscribers[subscriber] = None
        self._subq.unpark_all(True)
        return 0

    def unsubscribe(self, subscriber: Union[Task, Channel],
                    timeout: Timeout = None) -> Yieldable:
        """[y] Remove a subscriber.  0, or -1 if it was not subscribed."""
        _check_timeout(timeout)
        if self._subscribers.pop(subscriber, 0) is None:
            return 0
        return -1

    # ---- sending ------------------------------------------------------------

    def _pass(self, msg: Any) -> Tuple[bool, Any]:
        """Apply the transform; returns (keep, msg)."""
        transform = self._transform
        if transform is None:
            return True, msg
        try:
            msg = transform(self._name, msg)
        except Exception as e:
            logger.warning("transform of channel %s failed (%r); message dropped", self, e)
            return False, None
        return msg is not None, msg

    def _fanout(self, msg: Any) -> int:
        """Deliver to every subscriber; returns the end tasks reached."""
        keep, msg = self._pass(msg)
        if not keep:
            return 0
        reached = 0
        gone = None
        for sub in list(self._subscribers):
            if isinstance(sub, Task):
                if sub._sched is self._sched and sub._sched._on_loop():
                    rc = sub._deliver_msg(msg)
                else:
                    rc = sub.send(msg)
                if rc == 0:
                    reached += 1
                else:
                    gone = gone or []
                    gone.append(sub)
            else:
                reached += sub._fanout(msg)
        if gone:
            for sub in gone:
                self._subscribers.pop(sub, None)
        return reached

    def send(self, message: Any) -> int:
        """[y?] Send ``message`` to every subscriber.  0, or -1 if the channel
        is closed.  Thread-safe."""
        if self._closed:
            return -1
        sched = self._sched
        if sched._on_loop():
            self._fanout(message)
            return 0
        return 0 if sched._post(self._fanout, message) else -1

    def deliver(self, message: Any, timeout: Timeout = None, n: int = 0) -> Yieldable:
        """[y] Wait (up to ``timeout`` seconds) until the channel has at least
        ``n`` subscribers, then send; returns the number of end tasks reached
        (0 on timeout, -1 for bad ``n`` or a closed channel).  Only in a task
        (RuntimeError elsewhere; a thread uses :meth:`send`)."""
        task = current_task("channel.deliver()")
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            return -1
        timeout = _check_timeout(timeout)
        if self._closed:
            return -1
        if len(self._subscribers) >= n:     # no wait: the count, handed back by yield
            return self._fanout(message)
        return self._deliver_wait(task, message, timeout, n)

    def _deliver_wait(self, task: Task, message: Any, timeout: Optional[float],
                      n: int) -> Generator[Any, Any, int]:
        sched = task._sched
        end = None if timeout is None else sched.now() + timeout
        while len(self._subscribers) < n:
            if self._closed:
                return -1
            left = None
            if end is not None:
                left = end - sched.now()
                if left <= 0:
                    return 0
            yield self._subq.park(task, left, False)
        if self._closed:
            return -1
        return self._fanout(message)

    def close(self) -> None:
        """Drop every subscriber and the channel's name; later sends fail."""
        self._closed = True
        self._subscribers.clear()
        self._subq.unpark_all(False)
        self.unregister()
        if self._sched._channels.get(self._name) is self:
            del self._sched._channels[self._name]

    # ---- names ----------------------------------------------------------------

    def register(self) -> int:
        """Make the channel findable with ``Channel.locate(name)``.  0, or -1
        if another live channel has the name."""
        reg = self._sched._rchannels
        cur = reg.get(self._name)
        if self._closed or (cur is not None and cur is not self and not cur._closed):
            return -1
        reg[self._name] = self
        return 0

    def unregister(self) -> int:
        """Drop the channel's name: 0, or -1 if it was not registered."""
        reg = self._sched._rchannels
        if reg.get(self._name) is self:
            del reg[self._name]
            return 0
        return -1

    @staticmethod
    def locate(name: str, location: Optional[Location] = None,
               timeout: Timeout = None) -> Yieldable:
        """[y] The channel registered as ``name``, or None.  Without
        networking only this process is searched (see :meth:`Task.locate`)."""
        return Pycos.instance()._locate("channel", name, location, timeout)

    def __reduce__(self) -> Any:
        return self._sched._reduce_ref(self)

    def statistics(self) -> Dict[str, Any]:
        """``subscribers``, ``waiting_senders``, ``closed``."""
        return {"subscribers": len(self._subscribers), "waiting_senders": len(self._subq),
                "closed": self._closed}
