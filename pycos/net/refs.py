"""Remote references: Task and Channel objects that live on another peer.

A task or channel crosses the network as a *reference*: its name, its id
(tasks), the *stamp* of the scheduler that owns it (64 random bits drawn when
that scheduler starts) and the owner's location.  Unpickled at the owner, a
reference becomes the real object again -- if the stamp and id still match a
live one -- so a reference never reaches a task of another run that happens
to reuse the id.  Unpickled elsewhere it becomes a :class:`RemoteTask` or
:class:`RemoteChannel`, subclasses of Task and Channel whose methods send
requests to the owner through the node (:mod:`pycos.net.node`).

What each call does remotely, and what it returns, is in docs/netpycos.md;
in short, one-way calls (``send``, ``throw``, ``terminate``) return 0 once the
message is queued for the peer (-1 if the peer is gone, the message does not
pickle, or -- ``send`` only -- more than ``config.PeerMaxQueue`` bytes already
wait for that peer), and the yielded calls (``deliver``, ``monitor``, ``finish``,
``subscribe``...) wait for the owner's answer, or for the peer to be declared
offline, whichever comes first.
"""

from pycos.core.channel import Channel
from pycos.core.scheduler import _check_timeout
from pycos.core.support import Location, MonitorStatus
from pycos.core.task import Task

__all__ = ["RemoteTask", "RemoteChannel", "PeerOffline"]

#: the node of this process (set by pycos.netpycos while its scheduler runs)
_node = None


class PeerOffline(ConnectionError):
    """The type in the MonitorStatus of a remote task whose peer went
    offline before the task's end was heard of."""


def _task_ref(name, tid, stamp, addr, port):
    """Unpickle a task reference (see the module docstring)."""
    node = _node
    if node is not None and stamp in node._stamps:
        task = node._stamps[stamp]._tasks.get(tid)
        if task is not None:
            return task
    t = RemoteTask.__new__(RemoteTask)
    t._name = name
    t._id = tid
    t._stamp = stamp
    t._location = Location(addr, port)
    t._box = None
    t._sched = None          # not on a scheduler of this process
    t._state = None
    t._names = None
    return t


def _channel_ref(name, stamp, addr, port):
    node = _node
    if node is not None and stamp in node._stamps:
        ch = node._stamps[stamp]._channels.get(name)
        if ch is not None:
            return ch
    c = RemoteChannel.__new__(RemoteChannel)
    c._name = name
    c._stamp = stamp
    c._location = Location(addr, port)
    c._closed = False
    c._transform = None
    c._subscribers = {}
    return c


def _need_node(what):
    if _node is None:
        raise RuntimeError("%s: the netpycos scheduler is not running" % what)
    return _node


class _Box(object):
    """Where the result of a remote task started by an RPS call arrives."""

    __slots__ = ("done", "value", "waiters", "event", "monitor", "held")

    def __init__(self, monitor=None):
        self.done = False
        self.value = None
        self.waiters = []        # (sched, task, wid)
        self.event = None
        self.monitor = monitor   # a local monitor the task's end also goes to
        self.held = False        # its owner going offline does not end it (see hold())


def hold(rtask):
    """Keep the result of ``rtask`` (a remote task started by an RPS call)
    open when its owner goes offline: the caller settles it later with
    :func:`settle` (dispycos runs the job again elsewhere).  Its end, when
    the owner sends it, still settles it.  True when held; False when it
    has no box or is already settled."""
    box = getattr(rtask, "_box", None)
    if box is None or box.done:
        return False
    box.held = True
    return not box.done


def settle(rtask, value):
    """Give a held result its value (see :func:`hold`); nothing when it
    is settled already."""
    box = getattr(rtask, "_box", None)
    if box is not None and _node is not None:
        _node._box_set(box, value)


class RemoteTask(Task):
    """A task on another peer (see the module docstring)."""

    __slots__ = ("_stamp", "_box")

    def __repr__(self):
        return "%s/%s@%s" % (self._name, self._id, self._location)

    def __reduce__(self):
        loc = self._location
        return (_task_ref, (self._name, self._id, self._stamp, loc.addr, loc.port))

    def __eq__(self, other):
        return (isinstance(other, Task) and other._location is not None
                and self._id == other._id and self._location == other._location
                and getattr(other, "_stamp", None) == self._stamp)

    def __ne__(self, other):
        return not self.__eq__(other)

    def __hash__(self):
        return hash((self._id, self._location))

    @property
    def location(self):
        return self._location

    def is_alive(self):
        box = self._box
        if box is not None:
            return not box.done
        node = _node
        return node is not None and not node._is_gone(self._location)

    # -- one-way ---------------------------------------------------------------------

    def send(self, message):
        return _need_node("send")._send_task(self, message)

    def deliver(self, message, timeout=None):
        timeout = _check_timeout(timeout)
        return _need_node("deliver")._request(self._location, "deliver",
                                              (self._id, self._stamp, message),
                                              timeout, alarm=0, fail=-1)

    def throw(self, *args):
        if len(args) == 1 and isinstance(args[0], tuple):
            args = args[0]
        if not args or len(args) > 3:
            return -1
        return _need_node("throw")._one_way(self._location,
                                            ("throw", self._id, self._stamp, args[:2]))

    def terminate(self):
        return _need_node("terminate")._one_way(self._location,
                                                ("terminate", self._id, self._stamp))

    def resume(self, update=None):
        return _need_node("resume")._one_way(self._location,
                                             ("resume", self._id, self._stamp, update))

    wakeup = resume

    # -- monitoring and results -----------------------------------------------------------

    def notify(self, monitor):
        if not isinstance(monitor, Task):
            return -1
        return _need_node("monitor")._remote_monitor(self, monitor)

    def finish(self, timeout=None):
        timeout = _check_timeout(timeout)
        node = _need_node("finish")
        box = self._box
        if box is not None:
            return node._box_wait(box, timeout)
        return node._request(self._location, "finish", (self._id, self._stamp),
                             timeout, alarm=None, fail=None)

    __call__ = finish

    def value(self, timeout=None):
        timeout = _check_timeout(timeout)
        node = _need_node("value")
        if self._box is not None:
            return node._box_value(self._box, timeout)
        return node._request_sync(self._location, "finish", (self._id, self._stamp), timeout)

    # -- what only the owner may do --------------------------------------------------

    def _local_only(self, what):
        from pycos.core.log import logger
        logger.warning("%s() is not possible on remote task %s", what, self)
        return -1

    def suspend(self, timeout=None, alarm_value=None):
        return self._local_only("suspend")

    sleep = suspend

    def receive(self, timeout=None, alarm_value=None):
        return self._local_only("receive")

    recv = receive

    def set_daemon(self, flag=True):
        return self._local_only("set_daemon")

    def hot_swappable(self, flag):
        return self._local_only("hot_swappable")

    def hot_swap(self, target, *args, **kwargs):
        return self._local_only("hot_swap")

    def register(self, name=None):
        return -1

    def unregister(self, name=None):
        return -1


class RemoteChannel(Channel):
    """A channel on another peer: ``send``, ``deliver``, ``subscribe`` and
    ``unsubscribe`` go to the owner; a remote channel can also be a
    subscriber of a local one (messages are forwarded to it)."""

    __slots__ = ("_stamp",)

    def __repr__(self):
        return "%s@%s" % (self._name, self._location)

    def __reduce__(self):
        loc = self._location
        return (_channel_ref, (self._name, self._stamp, loc.addr, loc.port))

    def __eq__(self, other):
        return (isinstance(other, RemoteChannel) and self._name == other._name
                and self._location == other._location and self._stamp == other._stamp)

    def __ne__(self, other):
        return not self.__eq__(other)

    def __hash__(self):
        return hash((self._name, self._location))

    @property
    def location(self):
        return self._location

    def send(self, message):
        return _need_node("send")._one_way(self._location,
                                           ("ch_send", self._name, self._stamp, message))

    def _fanout(self, message):
        # a remote sub-channel of a local channel: forward; it counts as one
        return 1 if self.send(message) == 0 else 0

    def _reaches(self, target):
        return False

    def deliver(self, message, timeout=None, n=0):
        timeout = _check_timeout(timeout)
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            return -1
        return _need_node("deliver")._request(self._location, "ch_deliver",
                                              (self._name, self._stamp, message, timeout, n),
                                              timeout, alarm=0, fail=-1)

    def subscribe(self, subscriber, timeout=None):
        timeout = _check_timeout(timeout)
        if not isinstance(subscriber, (Task, Channel)):
            return -1
        return _need_node("subscribe")._request(self._location, "ch_sub",
                                                (self._name, self._stamp, subscriber, True),
                                                timeout, alarm=-1, fail=-1)

    def unsubscribe(self, subscriber, timeout=None):
        timeout = _check_timeout(timeout)
        return _need_node("unsubscribe")._request(self._location, "ch_sub",
                                                  (self._name, self._stamp, subscriber, False),
                                                  timeout, alarm=-1, fail=-1)

    def close(self):
        return -1

    def register(self):
        return -1

    def unregister(self):
        return -1

    def set_transform(self, transform):
        return -1

    def statistics(self):
        return {"remote": True}


def _offline_status(task):
    return MonitorStatus(task, PeerOffline, "peer %s is offline" % (task._location,))
