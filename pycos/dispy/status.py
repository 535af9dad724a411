"""dispycos status: the numbers and small records a cluster reports.

A client's ``status_task`` receives :class:`DispycosStatus` messages whose
``status`` is one of the constants on :class:`Status` (the scheduler class
inherits them, so programs write ``Scheduler.NodeDiscovered``) and whose
``info`` depends on it: a :class:`DispycosNodeInfo` for node events, the
server's Location for server events, a :class:`DispycosTaskInfo` for a job
that started.  Nodes also report :class:`DispycosNodeAvailInfo` (free CPU,
memory, disk, swap) now and then.  :class:`DispycosNodeAllocate` says which
nodes a client uses and how many of their CPUs.  :class:`JobTimeout` is
what a job past its time limit gets.

The numbers and constructor signatures are those of pycos 4.x, so status
code written for it runs unchanged.  The records are pickled across the
network often, so they keep ``__slots__`` and pickle as a tuple (any
protocol); they compare by value.  Their constructors check their
arguments, so a wrong field fails where it was made, not on another host.
"""

import ipaddress
import numbers
import re
import time

from pycos.core.log import logger
from pycos.core.support import Location

__all__ = ["Status", "status_name", "DispycosStatus", "DispycosTaskInfo", "DispycosNodeInfo",
           "DispycosNodeAvailInfo", "DispycosNodeAllocate", "node_cpus", "JobTimeout"]


class JobTimeout(Exception):
    """Thrown into a job that runs longer than its time limit
    (``Client(job_timeout=...)``); uncaught, it is the type of the job's
    MonitorStatus.  Job code sees it as ``JobTimeout``, unimported."""


class Status(object):
    """The ``status`` numbers of :class:`DispycosStatus` (those of 4.x)."""

    NodeIgnore = 1
    NodeDiscovered = 2
    NodeInitialized = 3
    NodeSuspended = 4
    NodeResumed = 5
    NodeClosed = 6
    NodeDisconnected = 7
    NodeAbandoned = 8

    ServerDiscovered = 12
    ServerInitialized = 13
    ServerSuspended = 14
    ServerResumed = 15
    ServerClosed = 16
    ServerDisconnected = 17
    ServerAbandoned = 18

    TaskStarted = 21
    TaskCreated = TaskStarted          # the older name
    TaskFinished = 22
    TaskAbandoned = 23
    TaskTerminated = 24

    ClientScheduled = 31
    ClientClosed = 32


_NAMES = {value: name for name, value in vars(Status).items()
          if not name.startswith("_") and name != "TaskCreated"}


def status_name(n):
    """The name of status number ``n`` for logs: ``status_name(2) ==
    'NodeDiscovered'``; an unknown value gives ``'Status(<n>)'``."""
    if isinstance(n, int) and not isinstance(n, bool) and n in _NAMES:
        return _NAMES[n]
    return "Status(%r)" % (n,)


# ---- argument checks --------------------------------------------------------------------

def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_int(owner, arg, value, minimum=None, maximum=None, optional=False):
    if value is None and optional:
        return value
    if not _is_int(value):
        raise TypeError("%s: %r must be an int%s, not %s"
                        % (owner, arg, " or None" if optional else "", type(value).__name__))
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError("%s: %r must be in [%s, %s], not %r"
                         % (owner, arg, minimum, "..." if maximum is None else maximum, value))
    return value


def _check_percent(owner, arg, value):
    if value is None:
        return value
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError("%s: %r must be a number or None, not %s"
                        % (owner, arg, type(value).__name__))
    if not 0 <= value <= 100:
        raise ValueError("%s: %r is a percentage in [0, 100], not %r" % (owner, arg, value))
    return value


def _check_str(owner, arg, value):
    if not isinstance(value, str):
        raise TypeError("%s: %r must be a str, not %s" % (owner, arg, type(value).__name__))
    return value


class _Record(object):
    """Fields in ``__slots__``; repr, equality and pickling by those fields."""

    __slots__ = ()

    def __repr__(self):
        return "%s(%s)" % (type(self).__name__,
                           ", ".join("%s=%r" % (f, getattr(self, f)) for f in self.__slots__))

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in self.__slots__)

    def __ne__(self, other):
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    __hash__ = None  # type: ignore[assignment]   # mutable records that compare by value

    def __getstate__(self):
        return tuple(getattr(self, f) for f in self.__slots__)

    def __setstate__(self, state):
        for f, value in zip(self.__slots__, state):
            setattr(self, f, value)


# ---- the records ---------------------------------------------------------------------

class DispycosStatus(_Record):
    """A status message for a client's ``status_task``: ``status`` is a
    :class:`Status` number and ``info`` depends on it (node events:
    :class:`DispycosNodeInfo`; server events: the server's Location;
    ``TaskStarted``: :class:`DispycosTaskInfo`; ``ClientClosed``: the
    client's id)."""

    __slots__ = ("status", "info")

    def __init__(self, status, info):
        self.status = _check_int("DispycosStatus", "status", status)
        self.info = info


class DispycosTaskInfo(_Record):
    """The ``info`` of ``DispycosStatus(TaskStarted, ...)``: the remote
    ``task`` a job runs in, the ``args`` (tuple) and ``kwargs`` (dict) it was
    given, and ``start_time`` (``time.time()`` when the job was known to have
    started, unless given)."""

    __slots__ = ("task", "args", "kwargs", "start_time")

    def __init__(self, task, args, kwargs, start_time=None):
        if not isinstance(args, (tuple, list)):
            raise TypeError("DispycosTaskInfo: 'args' must be a tuple, not %s"
                            % type(args).__name__)
        if kwargs is None:
            kwargs = {}
        elif not isinstance(kwargs, dict):
            raise TypeError("DispycosTaskInfo: 'kwargs' must be a dict, not %s"
                            % type(kwargs).__name__)
        if start_time is None:
            start_time = time.time()
        elif not isinstance(start_time, numbers.Real) or isinstance(start_time, bool):
            raise TypeError("DispycosTaskInfo: 'start_time' must be a number (time.time()), "
                            "not %s" % type(start_time).__name__)
        self.task = task
        self.args = tuple(args)
        self.kwargs = kwargs
        self.start_time = start_time


class DispycosNodeAvailInfo(_Record):
    """What a node has free, measured on the node: ``cpu`` the idle CPU in
    percent (100: idle, 0: every CPU busy), ``memory`` the memory available
    in bytes, ``disk`` the free bytes on the partition of the node's working
    directory and ``swap`` the swap space *not* in use, in percent.  Each is
    None when the node cannot measure it (no ``psutil`` there).
    ``location`` is the node's Location (None once it has been reported)."""

    __slots__ = ("location", "cpu", "memory", "disk", "swap")

    def __init__(self, location, cpu, memory, disk, swap):
        if location is not None and not isinstance(location, Location):
            raise TypeError("DispycosNodeAvailInfo: 'location' must be a Location or None, "
                            "not %s" % type(location).__name__)
        self.location = location
        self.cpu = _check_percent("DispycosNodeAvailInfo", "cpu", cpu)
        self.memory = _check_int("DispycosNodeAvailInfo", "memory", memory, 0, optional=True)
        self.disk = _check_int("DispycosNodeAvailInfo", "disk", disk, 0, optional=True)
        self.swap = _check_percent("DispycosNodeAvailInfo", "swap", swap)


class DispycosNodeInfo(_Record):
    """The ``info`` of node events: the node's ``name``, IP address
    ``addr``, the number of ``cpus`` (servers) it offers, its ``platform``
    (``platform.platform()`` there) and ``avail_info``, a
    :class:`DispycosNodeAvailInfo` (whose fields are None without psutil)."""

    __slots__ = ("name", "addr", "cpus", "platform", "avail_info")

    def __init__(self, name, addr, cpus, platform, avail_info):
        self.name = _check_str("DispycosNodeInfo", "name", name)
        self.addr = _check_str("DispycosNodeInfo", "addr", addr)
        self.cpus = _check_int("DispycosNodeInfo", "cpus", cpus, 0)
        self.platform = _check_str("DispycosNodeInfo", "platform", platform)
        if avail_info is not None and not isinstance(avail_info, DispycosNodeAvailInfo):
            raise TypeError("DispycosNodeInfo: 'avail_info' must be a DispycosNodeAvailInfo "
                            "or None, not %s" % type(avail_info).__name__)
        self.avail_info = avail_info


# ---- allocation ----------------------------------------------------------------------

def _resolve(host):
    """The numeric address of ``host`` in canonical text (None if it does not
    resolve)."""
    try:
        addr = Location._numeric(host)
    except (OSError, UnicodeError, ValueError, IndexError):
        return None
    try:
        return str(ipaddress.ip_address(addr))
    except ValueError:
        return addr


class DispycosNodeAllocate(object):
    """Which nodes a client uses, and how many of their CPUs.

    ``node`` is a host name or IP address (resolved now: one that does not
    resolve is a ValueError), or a pattern over IP addresses in which each
    ``*`` stands for any run of characters: ``'192.168.1.*'``, ``'*'``.
    Patterns match the node's IP address, never its name, and the whole of
    it (``'10.0.0.1'`` does not match ``'10.0.0.12'``).  ``port`` is the
    node's TCP port, used to find a node that is given by name/address.

    The rest are conditions and the CPU count, applied by :meth:`allocate`:
    ``platform`` a regular expression searched (ignoring case) in the node's
    ``platform.platform()``, e.g. ``'linux.*x86_64'``; ``memory`` and
    ``disk`` the minimum bytes free there; ``cpus`` how many servers to run:
    None all the node's CPUs, n > 0 exactly n (a node with fewer is not
    used), 0 none, n < 0 all but -n.

    Subclass and override :meth:`allocate` to decide otherwise.  Instances
    keep plain attributes and pickle with them, subclasses' included.
    """

    def __init__(self, node, port=None, platform='', cpus=None, memory=None, disk=None):
        owner = type(self).__name__
        _check_str(owner, "node", node)
        if not node.strip():
            raise ValueError("%s: 'node' must be a host name, an IP address or a pattern, "
                             "not %r" % (owner, node))
        if "*" in node:
            rex = "".join(".*" if c == "*" else re.escape(c) for c in node)
        else:
            addr = _resolve(node)
            if addr is None:
                raise ValueError("%s: 'node' %r does not resolve to an IP address"
                                 % (owner, node))
            rex = re.escape(addr)
        self.node = node
        #: a regular expression over the whole IP address (see matches())
        self.ip_rex = rex + r"\Z"
        self.port = _check_int(owner, "port", port, 1, 65535, optional=True)
        _check_str(owner, "platform", platform)
        try:
            re.compile(platform, re.IGNORECASE)
        except re.error as exc:
            raise ValueError("%s: 'platform' %r is not a regular expression: %s"
                             % (owner, platform, exc)) from None
        self.platform = platform
        self.cpus = _check_int(owner, "cpus", cpus, optional=True)
        self.memory = _check_int(owner, "memory", memory, 0, optional=True)
        self.disk = _check_int(owner, "disk", disk, 0, optional=True)

    def matches(self, ip_addr):
        """True if this allocation applies to the node at ``ip_addr``."""
        return isinstance(ip_addr, str) and re.match(self.ip_rex, ip_addr) is not None

    def allocate(self, ip_addr, name, platform, cpus, memory, disk):
        """How many of a node's ``cpus`` to use (the scheduler calls this for
        a node that :meth:`matches`, with what the node reported; ``memory``
        and ``disk`` may be None).  0 means "do not use the node"; a negative
        number means "this allocation does not apply: try the next one".
        This one returns -1 when ``platform`` does not match, 0 when the node
        has less ``memory`` or ``disk`` free than asked, else per ``cpus``."""
        if self.platform and not re.search(self.platform, platform or "", re.IGNORECASE):
            return -1
        if ((self.memory and memory is not None and memory < self.memory) or
                (self.disk and disk is not None and disk < self.disk)):
            return 0
        if self.cpus is None:
            return cpus
        if self.cpus >= 0:
            return self.cpus if self.cpus <= cpus else 0
        return max(cpus + self.cpus, 0)

    def __repr__(self):
        fields = ["%r" % (self.node,)]
        for arg, default in (("port", None), ("platform", ""), ("cpus", None),
                             ("memory", None), ("disk", None)):
            value = getattr(self, arg)
            if value != default:
                fields.append("%s=%r" % (arg, value))
        return "%s(%s)" % (type(self).__name__, ", ".join(fields))


def node_cpus(allocations, ip_addr, name, platform, cpus, memory=None, disk=None):
    """How many servers to start on a node, given a client's ``allocations``
    (a list of DispycosNodeAllocate, tried in order): the first that
    :meth:`~DispycosNodeAllocate.matches` the node's address and whose
    ``allocate()`` is not negative decides, capped at ``cpus``; 0 means the
    node is not used.  No allocation applies: all
    ``cpus``.  An ``allocate()`` that raises or returns a non-int is logged
    and counts as 0: one user callback cannot stop the scheduler."""
    for alloc in allocations:
        if not alloc.matches(ip_addr):
            continue
        try:
            n = alloc.allocate(ip_addr, name, platform, cpus, memory, disk)
        except Exception as exc:
            logger.warning("dispycos: %r.allocate(%s) failed: %s: %s",
                           alloc, ip_addr, type(exc).__name__, exc)
            return 0
        if not _is_int(n):
            logger.warning("dispycos: %r.allocate(%s) returned %r, not an int",
                           alloc, ip_addr, n)
            return 0
        if n < 0:
            continue
        return min(n, cpus)
    return cpus
