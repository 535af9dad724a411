"""The client's side of a shared dispycos scheduler.

``yield client.schedule(location)`` makes a :class:`Remote` for the client,
and from then on the Client's methods (``rtask``, ``nodes``, ``close``...)
are served by the Remote method of the same name, which asks the scheduler
program (:mod:`pycos.dispy.shared` has the protocol and why it is shaped
so).  What stays here:

* jobs: the scheduler picks the server, but this process sends the job to
  it (so the arguments never pass through the scheduler) and reports the
  job's remote task back;
* job ends: each job's end comes to a task of this process (``yield
  rtask()`` gets it from the server as always); the scheduler is told
  only that the job ended;
* the status stream: the scheduler sends it to a task of this process
  (the *inbox*), which passes it on to the client's ``status_task`` after
  putting back what the scheduler does not see -- the arguments in each
  TaskStarted, the job's real MonitorStatus, the client's id in
  ClientClosed;
* pulses: this process tells the scheduler it lives every
  ``pulse_interval``, so a client that dies is closed within its
  ``zombie_period`` (at once when its connection resets).

``schedule(location, timeout)`` returns 0 once it is this client's turn;
-1 when there is no shared scheduler at ``location`` (or it refused the
client, or a file could not be sent -- the log says which); -2 when
``timeout`` passed while other clients were served.
"""

import collections
import os
import pickle
import posixpath
import time

import pycos.netpycos as netpycos
from pycos import config
from pycos.core.log import logger
from pycos.core.support import Location, MonitorStatus
from pycos.core.task import Task
from pycos.dispy.client import _check_job_options
from pycos.dispy.joblimits import Job, TimeLimits
from pycos.dispy.shared import SERVICE
from pycos.net import refs
from pycos.dispy.status import (DispycosNodeAllocate, DispycosStatus, DispycosTaskInfo, Status,
                                node_cpus)

__all__ = ["Remote"]

#: the Client's attributes that are not sent as plain settings
_NOT_SETTINGS = frozenset(["_package", "_scheduler", "_shared", "status_task", "_allocations",
                           "_node_setup", "_server_setup"])


def plain_allocation(alloc):
    """``alloc``'s fields as a plain DispycosNodeAllocate (what the shared
    scheduler takes), and whether ``alloc`` has code of its own (a subclass
    overriding ``allocate`` or ``matches``: that code runs here, when the
    scheduler asks -- see pycos.dispy.shared).  TypeError for anything
    else."""
    if not isinstance(alloc, DispycosNodeAllocate):
        raise TypeError("node_allocate needs a DispycosNodeAllocate, not %r" % (alloc,))
    if type(alloc) is DispycosNodeAllocate:
        return alloc, False
    code = any(getattr(type(alloc), name) is not getattr(DispycosNodeAllocate, name)
               for name in ("allocate", "matches"))
    return DispycosNodeAllocate(alloc.node, alloc.port, alloc.platform, alloc.cpus,
                                alloc.memory, alloc.disk), code


def _plain(value):
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return True
    if isinstance(value, (list, tuple, set, frozenset)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(_plain(k) and _plain(v) for k, v in value.items())
    return False


def _settings(client):
    """The client's settings (pulse_interval, zombie_period, disable_nodes...,
    whatever plain values it holds) for its stand-in in the scheduler."""
    out = {}
    for k, v in vars(client).items():
        if k in _NOT_SETTINGS:
            continue
        if _plain(v):
            out[k] = v
        else:
            logger.debug("dispycos: client setting %s=%r stays with the client", k, v)
    return out


def _pickled(args):
    return tuple(pickle.dumps(a, 4) for a in args)


class Remote(object):
    """What a Client uses a shared scheduler with (see the module docstring);
    its public methods are the Client's of the same names."""

    def __init__(self, client):
        self.client = client
        self.location = None
        self.api = None              # the scheduler's RPS for this client's requests
        self.ctl = None              # the scheduler's task for one-way messages
        self.monitor = None          # the scheduler's job monitor
        self.inbox = None
        self.job_ends = None
        self.pulser = None
        self.closed = False
        self.args = {}               # rtask -> (args, kwargs), until its TaskStarted passes
        self.ends = {}               # rtask -> its MonitorStatus, until the stream passes it
        self.opts = {}               # rtask -> joblimits.Job (job_retries, job_timeout)
        self.quiet = collections.Counter()   # rtask -> its stream messages not passed on
        self.limits = None           # joblimits.TimeLimits (made in schedule())

    # ---- getting served --------------------------------------------------------------------

    def schedule(self, location, timeout=None):
        """[y] (see the module docstring)."""
        if not isinstance(location, (Location, str)):
            raise TypeError("schedule(): location must be a Location or a host name or "
                            "address, not %r" % (location,))
        if timeout is not None and not (isinstance(timeout, (int, float)) and timeout >= 0):
            raise ValueError("schedule(): timeout must be None or seconds >= 0, not %r"
                             % (timeout,))
        allocations = [plain_allocation(a) for a in self.client._allocations]
        if any(code for _, code in allocations):
            allocations = None           # the client's code decides: it is asked
        else:
            allocations = [a for a, _ in allocations]
        return self._schedule(location, allocations, timeout)

    def _schedule(self, location, allocations, timeout):
        client = self.client
        end = None if timeout is None else time.monotonic() + timeout
        sched = netpycos.Pycos.instance()
        loc = location
        if not isinstance(loc, Location):
            addr = sched.host_ipaddr(loc)
            if addr is None:
                logger.warning("dispycos: scheduler host %r does not resolve", location)
                return -1
            loc = Location(addr, config.DispycosSchedulerPort)
        if (yield sched.peer(loc)) != 0:
            logger.warning("dispycos: no scheduler reachable at %s", loc)
            return -1
        svc = yield netpycos.RPS.locate(SERVICE, loc, timeout=config.MsgTimeout)
        if svc is None:
            logger.warning("dispycos: %s runs no shared dispycos scheduler", loc)
            return -1
        self.location = loc
        token = os.urandom(8).hex()
        self.inbox = netpycos.Task(self._inbox)
        self.job_ends = netpycos.Task(self._job_ends)
        self.limits = TimeLimits(lambda rtask: rtask in self.opts, self.job_ends._sched.now)
        rt = yield svc("schedule", token, self.inbox, client.pulse_interval, client.zombie_period)
        answer = None
        if isinstance(rt, Task):
            answer = yield rt(timeout=None if end is None else max(end - time.monotonic(), 0))
            if answer is None:           # its turn has not come
                yield svc("cancel", token)
                self._end("timed out waiting for its turn")
                return -2
        if not (isinstance(answer, tuple) and answer and answer[0] == "granted"):
            why = answer[1] if isinstance(answer, tuple) and len(answer) > 1 else answer
            logger.warning("dispycos: the scheduler at %s does not serve this client: %s",
                           loc, why)
            self._end(None)
            return -1
        _, self.api, self.ctl, dirname = answer
        self.pulser = netpycos.Task(self._pulse, client.pulse_interval)
        for f in client._package.files:
            sub = posixpath.dirname(f.name)
            r = yield sched.send_file(loc, f.path, dir=dirname + "/" + sub if sub else dirname,
                                      overwrite=True, timeout=config.MsgTimeout)
            if r < 0:
                logger.warning("dispycos: the scheduler at %s did not take file %s", loc, f.path)
                yield svc("cancel", token)
                self._end(None)
                return -1
        files = [(f.name, f.size) for f in client._package.files]
        setups = [fn.__name__ if fn is not None else None
                  for fn in (client._node_setup, client._server_setup)]
        monitor = yield self._call("start", _settings(client), client._package.code, files,
                                   allocations, setups[0], setups[1],
                                   client.status_task is not None)
        if not isinstance(monitor, Task):
            logger.warning("dispycos: the scheduler at %s did not start this client: %s",
                           loc, monitor)
            yield svc("cancel", token)
            self._end(None)
            return -1
        self.monitor = monitor
        client._shared = self
        return 0

    def _call(self, op, *args, fail=None):
        """[y] The scheduler's answer to request ``op``, or ``fail``."""
        if self.closed or self.api is None:
            return fail
        rt = yield self.api(op, *args)
        if not isinstance(rt, Task):
            logger.warning("dispycos: the scheduler at %s did not take request %r",
                           self.location, op)
            return fail
        r = yield rt()
        if isinstance(r, MonitorStatus):
            logger.warning("dispycos: request %r to the scheduler at %s failed: %s",
                           op, self.location, r.value)
            return fail
        return r

    def _end(self, why):
        """This process's side is over (``why``: logged, when the client did
        not ask for it)."""
        if self.inbox is not None:
            self.inbox.send(("closed", why))

    # ---- this process's tasks ---------------------------------------------------------------

    def _pulse(self, interval, task=None):
        while True:
            self.ctl.send(("pulse",))
            if (yield task.receive(timeout=interval)) == "quit":
                break

    def _job_ends(self, task=None):
        """Every job's monitor: the scheduler learns that the job ended.  A
        job with job_retries lost with its server runs again (its end and
        the next run's start are not reported); the end of a job run again
        is that of the remote task the client has."""
        while True:
            msg = yield task.receive()
            if isinstance(msg, MonitorStatus):
                rtask = msg.info
                self.monitor.send(MonitorStatus(rtask, None))
                opts = self.opts.pop(rtask, None)
                if opts is not None:
                    if not self.closed and opts.retry(msg):
                        self.quiet[rtask] += 1
                        Task(self._retry, opts, msg)
                        continue
                    msg = opts.ended(msg)
                if self.client.status_task is not None:
                    self.ends.setdefault(rtask, msg)
            elif msg == "quit":
                break

    def _retry(self, opts, lost, task=None):
        """Run job ``opts`` again; ``lost``: how its last run ended."""
        rtask = None
        try:
            rtask = yield self._send(opts, opts.where, opts.cpu, opts.name, opts.code,
                                     opts.args, opts.kwargs)
        finally:
            if rtask is None:            # no server for it: it ends as it was lost
                final = opts.ended(lost)
                if self.client.status_task is not None:
                    self.client.status_task.send(final)

    def _inbox(self, task=None):
        """The scheduler's messages: the status stream (completed here and
        passed on), a server given up, and the end of this client."""
        why = None
        while True:
            msg = yield task.receive()
            if isinstance(msg, tuple) and msg:
                if msg[0] == "server_gone" and len(msg) == 2:
                    yield netpycos.Pycos.instance().close_peer(msg[1])
                elif msg[0] == "allocate" and len(msg) == 8 and isinstance(msg[1], Task):
                    msg[1].send(("allocated", node_cpus(self.client._allocations, *msg[2:])))
                elif msg[0] == "closed":
                    why = msg[1] if len(msg) > 1 else None
                    break
                continue
            if isinstance(msg, MonitorStatus):
                if self._quiet(msg.info):
                    continue
                msg = self.ends.pop(msg.info, msg)
            elif isinstance(msg, DispycosStatus):
                if msg.status == Status.TaskStarted and isinstance(msg.info, DispycosTaskInfo):
                    if self._quiet(msg.info.task):
                        continue
                    given = self.args.pop(msg.info.task, None)
                    if given is not None:
                        msg.info.args, msg.info.kwargs = given
                elif msg.status == Status.ClientClosed:
                    msg = DispycosStatus(Status.ClientClosed, id(self.client))
            st = self.client.status_task
            if st is not None:
                st.send(msg)
        self.closed = True
        for t in (self.pulser, self.job_ends):
            if t is not None:
                t.send("quit")
        if self.limits is not None:
            self.limits.stop()
        self.args.clear()
        self.ends.clear()
        self.quiet.clear()
        if why:
            logger.warning("dispycos: the scheduler at %s ended this client: %s",
                           self.location, why)

    # ---- the Client's methods ------------------------------------------------------------

    def _quiet(self, rtask):
        """Whether a stream message about ``rtask`` is not passed on."""
        n = self.quiet.get(rtask)
        if not n:
            return False
        if n == 1:
            del self.quiet[rtask]
        else:
            self.quiet[rtask] = n - 1
        return True

    def _submit(self, where, cpu, gen, args, kwargs):
        client = self.client
        _check_job_options(client.job_retries, client.job_timeout)
        name, code = client._job_code(gen)
        opts = None
        if client.job_retries or client.job_timeout:
            opts = Job(where, cpu, name, code, args, kwargs, client.job_retries,
                       client.job_timeout)
        return self._send(opts, where, cpu, name, code, args, kwargs)

    def _send(self, opts, where, cpu, name, code, args, kwargs):
        while True:
            placed = yield self._call("place", where, cpu)
            if placed is None:
                return None
            number, rps = placed
            rps.monitor(self.job_ends)
            try:
                rtask = yield rps(name, code, args, kwargs, cpu)
            except BaseException:
                self.ctl.send(("placed", number, None))
                raise
            if isinstance(rtask, Task):
                again = opts is not None and opts.origin is not None
                if again:
                    self.quiet[rtask] += 1           # (its TaskStarted)
                elif self.client.status_task is not None:
                    self.args[rtask] = (tuple(args), dict(kwargs))
                if opts is not None:
                    if opts.origin is None:
                        opts.origin = rtask
                        if opts.retries:
                            opts.held = refs.hold(rtask)
                    self.opts[rtask] = opts
                    if opts.timeout:
                        self.limits.add(rtask, opts.timeout)
                self.ctl.send(("placed", number, rtask))
                return rtask
            if (yield self._call("placed", number)) != "again":
                return None

    def rtask_at(self, where, gen, *args, **kwargs):
        return self._submit(where, True, gen, args, kwargs)

    def rtask(self, gen, *args, **kwargs):
        return self._submit(None, True, gen, args, kwargs)

    def io_rtask_at(self, where, gen, *args, **kwargs):
        return self._submit(where, False, gen, args, kwargs)

    def io_rtask(self, gen, *args, **kwargs):
        return self._submit(None, False, gen, args, kwargs)

    def nodes(self):
        return self._call("nodes", fail=[])

    def servers(self):
        return self._call("servers", fail=[])

    def tasks(self, where=None):
        return self._call("tasks", where, fail=[])

    def node_allocate(self, node_allocate):
        plain, code = plain_allocation(node_allocate)
        allocations = self.client._allocations
        allocations.insert(0, node_allocate)        # (for the scheduler's asking)
        if code:                         # from now on the scheduler asks this process
            r = yield self._call("node_allocate", None, plain, fail=-1)
        else:
            r = yield self._call("node_allocate", plain, fail=-1)
        if r != 0 and node_allocate in allocations:
            allocations.remove(node_allocate)       # (refused: not this client's either)
        return r

    def enable_node(self, node, *setup_args):
        return self._call("enable_node", node, *_pickled(setup_args), fail=-1)

    def enable_server(self, location, *setup_args):
        return self._call("enable_server", location, *_pickled(setup_args), fail=-1)

    def suspend_node(self, node):
        return self._call("suspend_node", node, fail=-1)

    def resume_node(self, node):
        return self._call("resume_node", node, fail=-1)

    def close_node(self, node, terminate=False):
        return self._call("close_node", node, terminate, fail=-1)

    def restart_node(self, node, *setup_args):
        return self._call("restart_node", node, *_pickled(setup_args), fail=-1)

    def suspend_server(self, location):
        return self._call("suspend_server", location, fail=-1)

    def resume_server(self, location):
        return self._call("resume_server", location, fail=-1)

    def close_server(self, location, terminate=False, restart=False):
        return self._call("close_server", location, terminate, restart, fail=-1)

    def restart_server(self, location):
        return self._call("restart_server", location, fail=-1)

    def abandon_zombie(self, location, flag):
        return self._call("abandon_zombie", location, flag, fail=-1)

    def close(self, await_io=False, terminate=False, timeout=None):
        return self._close(await_io, terminate, timeout)

    def _close(self, await_io, terminate, timeout):
        if self.closed:
            return 0
        r = yield self._call("close", await_io, terminate, timeout, fail=-1)
        if r != 0:
            self._end("it did not answer close()")
        # the stream's end (ClientClosed, "closed") came before the answer
        yield self.inbox.finish(timeout=config.MsgTimeout)
        self._end(None)
        return r
