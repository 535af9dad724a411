"""The shared dispycos scheduler: one scheduler for the client programs of a
cluster, serving them one at a time, in the order they asked.

The program ``dispycos`` (:mod:`pycos.dispy.sharedprog`: options, console,
signals) runs a :class:`SharedScheduler`; a client uses it with ``yield
client.schedule(location)`` (its side: :mod:`pycos.dispy.shared_client`).

Serving a client
    The program's netpycos scheduler offers the RPS ``dispycos_shared``
    (:data:`SERVICE`).  A client calls it with ``("schedule", token, inbox,
    pulse_interval, zombie_period)``; the call's task waits in a FIFO queue
    until it is that client's turn, then answers ``("granted", api, ctl,
    dir)``: ``api`` is an RPS of this client's own (requests that have an
    answer), ``ctl`` a task taking one-way messages (pulses, the jobs sent),
    ``dir`` where the client's files go (netpycos ``send_file``, under the
    program's ``--dest_path``).  The client sends its files, then
    ``api("start", ...)`` with its settings and code; the scheduler makes a
    stand-in :class:`~pycos.dispy.client.Client` holding them (the files as
    they are here, ``node_setup``/``server_setup`` by name) and the usual
    :class:`~pycos.dispy.scheduler.Scheduler` for it, which finds the nodes,
    sends them the files and starts servers as in a client program.  Every
    other request is the stand-in Client's own method of that name (nodes,
    servers, tasks, enable/suspend/resume/close/restart of nodes and
    servers, node_allocate, abandon_zombie, close), so the two kinds of
    scheduler behave alike.

    A client ends -- its jobs end, its nodes are released, its files here
    are removed -- when it calls ``close()``; when its peer goes offline or
    sends no pulse for its zombie period (with ``terminate``: running jobs
    are interrupted); when it cancels (its ``schedule()`` timed out); or
    when the program quits.  Then the next client is served.  A client
    waiting in the queue that goes offline or cancels leaves the queue.

What this process never unpickles
    Job arguments and results, setup arguments and custom node allocations
    may be instances of the client's classes, which this process does not
    have and should not load.  So:

    * a job is sent by the client: ``api("place", where, cpu)`` answers with
      the chosen server's RPS (its CPU slot taken, as for a local job), the
      client calls it with the arguments, then tells ``ctl`` the job's
      remote task, which goes to :meth:`Scheduler.placed` (the RPS call
      makes the client's task the job's monitor);
    * the job's end thus reaches the client, which passes this scheduler a
      MonitorStatus without type and value (enough to free the server),
      and puts the real one back when it comes round in the status stream;
      the TaskStarted status leaves here with empty args and kwargs, which
      the client fills in from its own copy;
    * when a server is given up here (it died, or its node was taken for
      dead) the client is told to give up its connection to it, which ends
      its jobs there with a PeerOffline MonitorStatus on its side;
    * setup arguments come pickled by the client and travel on unopened
      (:class:`Pickled`) to the node or server, which unpickles them after
      loading the client's code;
    * node allocations with code of their own (a DispycosNodeAllocate
      subclass overriding ``allocate`` or ``matches``, as 4.x programs
      write them) run in the client: the client then sends no allocations
      (``None``), and for each node found the scheduler sends the client's
      inbox ``("allocate", task, addr, name, platform, cpus, memory,
      disk)``; the client answers ``task`` with ``("allocated", n)``, its
      allocations' verdict -- a client that does not answer within
      MsgTimeout gets no servers on that node.
"""

import os
import pickle
import posixpath
import re
import shutil
import threading

import pycos.netpycos as netpycos
from pycos import config
from pycos.core.log import logger
from pycos.core.task import Task
from pycos.dispy.client import Client
from pycos.dispy.liveness import Watch
from pycos.dispy.packaging import Package, PackageFile
from pycos.dispy.scheduler import _AGAIN, RELEASE_WAIT, Scheduler, _collect
from pycos.dispy.status import DispycosNodeAllocate, Status

__all__ = ["SharedScheduler", "Pickled", "SERVICE"]

#: the RPS a client calls to be served
SERVICE = "dispycos_shared"

#: the directory under the program's dest_path where clients' files go
CLIENTS_DIR = "clients"

_TOKEN = re.compile(r"[0-9a-f]{16}\Z")

#: requests served by the stand-in Client's method of the same name
_CLIENT_OPS = frozenset([
    "nodes", "servers", "tasks", "node_allocate", "enable_node", "enable_server",
    "suspend_node", "resume_node", "close_node", "restart_node", "suspend_server",
    "resume_server", "close_server", "restart_server", "abandon_zombie"])
#: of those, the ones whose arguments after the first are setup arguments
#: (pickled by the client)
_SETUP_OPS = frozenset(["enable_node", "enable_server", "restart_node"])


class Pickled(object):
    """An object the client pickled, carried through the scheduler unopened:
    it pickles as a call of ``pickle.loads`` on the client's bytes, so it is
    the client's object again wherever it is unpickled next."""

    __slots__ = ("data",)

    def __init__(self, data):
        if not isinstance(data, bytes):
            raise TypeError("Pickled needs bytes, not %r" % (type(data).__name__,))
        self.data = data

    def __reduce__(self):
        return (pickle.loads, (self.data,))


class _Named(object):
    """The client's node_setup or server_setup, which the scheduler names
    only (the function itself is in the client's code)."""

    def __init__(self, name):
        self.__name__ = name


class _ClientScheduler(Scheduler):
    """The Scheduler of one served client.  A server it gives up is given up
    by the client too (its jobs there end at once on the client's side); a
    node it takes for dead is released when the client ends, even if it
    did not come back (the next client needs it)."""

    def __init__(self, client, served):
        self.served = served
        self.lost = {}               # node Location -> its task, for nodes taken for dead
        Scheduler.__init__(self, client)

    def _node_dead(self, loc, silent, task=None):
        node = self.nodes.get(loc)
        if node is not None:
            self.lost[loc] = node.task
        return Scheduler._node_dead(self, loc, silent)

    def _allocate_node(self, node, info):
        if self.served.ask_alloc and not self.served.gone:
            netpycos.Task(self._ask_allocation, node, info)
        else:
            Scheduler._allocate_node(self, node, info)

    def _ask_allocation(self, node, info, task=None):
        """The client's allocations decide for ``node`` (see the module
        docstring); a wrong or missing answer counts as 0 CPUs."""
        task.set_daemon()                # (never what keeps the scheduler program up)
        avail = info.avail_info
        self.served.inbox.send(("allocate", task, info.addr, info.name, info.platform,
                                info.cpus, getattr(avail, "memory", None),
                                getattr(avail, "disk", None)))
        msg = yield task.receive(timeout=config.MsgTimeout)
        if (isinstance(msg, tuple) and len(msg) == 2 and msg[0] == "allocated"
                and type(msg[1]) is int and 0 <= msg[1] <= info.cpus):
            cpus = msg[1]
        else:
            logger.warning("dispycos: client %s gave no allocation for node %s (%r)",
                           self.served.token, info.addr, msg)
            cpus = 0
        if self.nodes.get(node.task.location) is node and not self.closing:
            self._allocated(node, cpus)

    def _server_closed(self, loc, status):
        gone = status == Status.ServerDisconnected and loc in self.servers
        Scheduler._server_closed(self, loc, status)
        if gone and not self.served.gone:
            self.served.inbox.send(("server_gone", loc))


class _Waiting(object):
    __slots__ = ("token", "task", "inbox", "pulse_interval", "zombie_period")

    def __init__(self, token, task, inbox, pulse_interval, zombie_period):
        self.token = token
        self.task = task
        self.inbox = inbox
        self.pulse_interval = pulse_interval
        self.zombie_period = zombie_period


class _Served(object):
    """The client being served: its requests, stand-in and scheduler."""

    def __init__(self, owner, waiting):
        self.owner = owner
        self.token = waiting.token
        self.inbox = waiting.inbox
        self.location = waiting.inbox.location
        #: where its files are, relative to dest_path (as the client names
        #: it) and here
        self.dir = CLIENTS_DIR + "/" + self.token
        self.path = os.path.join(owner.sched.dest_path, CLIENTS_DIR, self.token)
        self.client = None           # the stand-in Client, from "start"
        self.ask_alloc = False       # the client's allocations are its code: ask it
        self.scheduler = None
        self.pending = {}            # placement number -> (server, cpu), until "placed"
        self.placements = 0
        self.closing = False
        self.gone = False            # not there any more: nothing is sent to it
        self.closed = netpycos.Event()
        periods = [p for p in (waiting.zombie_period, owner.zombie_period) if p]
        self.watch = Watch(min(periods) if periods else 0, waiting.pulse_interval,
                           lambda key, silent: owner.task.send(("silent", self, silent)))
        self.watch.heard("client")
        self.api = netpycos.RPS(self._api, name="dispycos_client_" + self.token)
        self.api.register()
        self.ctl = netpycos.Task(self._ctl)

    def _ctl(self, task=None):
        while True:
            msg = yield task.receive()
            if not isinstance(msg, tuple) or not msg:
                continue
            if msg[0] == "pulse":
                self.watch.heard("client")
            elif msg[0] == "placed" and len(msg) == 3:
                entry = self.pending.pop(msg[1], None)
                if entry is None:
                    pass
                elif msg[2] is None:     # (the call failed in the client: never sent)
                    self.scheduler.unplaced(entry[0], entry[1])
                else:
                    self.scheduler.placed(entry[0], entry[1], msg[2], (), {})
            elif msg[0] == "quit":
                break

    def _api(self, op, *args, task=None):
        """The client's requests (see the module docstring)."""
        self.watch.heard("client")
        if op == "start":
            return self._start(*args)
        if self.scheduler is None:
            raise RuntimeError("dispycos: request %r before 'start'" % (op,))
        if op == "place":
            where, cpu = args
            server = yield self.scheduler.place(where, bool(cpu))
            if server is None:
                return None
            self.placements += 1
            self.pending[self.placements] = (server, bool(cpu))
            return (self.placements, server.rps)
        if op == "placed":               # the job did not start there
            entry = self.pending.pop(args[0], None)
            if entry is None:
                return None
            r = self.scheduler.placed(entry[0], entry[1], None, (), {})
            return "again" if r is _AGAIN else None
        if op == "close":
            r = yield self.owner._close(self, *args)
            return r
        if op == "node_allocate" and len(args) == 2 and args[0] is None:
            # one with code of its own, kept by the client (its fields, for
            # a node named in it to be contacted)
            self.ask_alloc = True
            args = args[1:]
        if op in _CLIENT_OPS:
            if op in _SETUP_OPS:
                args = args[:1] + tuple(Pickled(data) for data in args[1:])
            r = yield getattr(self.client, op)(*args)
            return r
        raise ValueError("dispycos: no request %r" % (op,))

    def _start(self, settings, code, files, allocations, node_setup, server_setup, status):
        """Make the client's stand-in and its scheduler: the scheduler's job
        monitor task (where the client sends its jobs' ends), or a text
        saying why not."""
        if self.client is not None:
            return "the client has started already"
        pkg_files = []
        for name, size in files:
            path = os.path.normpath(os.path.join(self.path, *posixpath.normpath(name).split("/")))
            if os.path.commonpath([path, self.path]) != self.path or not os.path.isfile(path):
                return "file %r did not arrive" % (name,)
            pkg_files.append(PackageFile(path, name, size))
        if allocations is None:          # (the client's code decides: it is asked)
            self.ask_alloc = True
            allocations = []
        for a in allocations:
            if type(a) is not DispycosNodeAllocate:
                return "node allocation %r is not a plain DispycosNodeAllocate" % (a,)
        c = Client.__new__(Client)
        # the client's settings (plain values); never over a method or property
        c.__dict__.update((k, v) for k, v in settings.items() if not hasattr(Client, k))
        c._package = Package(code, (), pkg_files, "", {})
        c._allocations = list(allocations)
        c._node_hosts = list(c.__dict__.get("_node_hosts", ())) + self.owner.nodes
        c._node_port = self.owner.node_port
        c._node_setup = _Named(node_setup) if node_setup else None
        c._server_setup = _Named(server_setup) if server_setup else None
        c.status_task = self.inbox if status else None
        c._scheduler = None
        self.client = c
        self.scheduler = c._scheduler = _ClientScheduler(c, self)
        logger.info("dispycos: serving client %s at %s", self.token, self.location)
        return self.scheduler.monitor


class SharedScheduler(object):
    """The shared scheduler's work, on the netpycos scheduler ``sched`` (made
    by the caller with the program's address, port, secret and dest_path):
    see the module docstring.

    ``node_port``: the port nodes listen on (to find them); ``nodes``: host
    names or addresses of nodes to contact (beyond discovery and nodes'
    ``--peer``); ``zombie_period``: a served client silent this long is
    closed even if it asked for longer (0: each client's own);
    ``ping_interval``: announce this scheduler to nodes this often (0:
    only when a client is served).  :meth:`quit` ends it; ``done`` is set
    then.
    """

    def __init__(self, sched, node_port=None, nodes=(), zombie_period=0, ping_interval=0):
        self.sched = sched
        self.node_port = node_port or config.DispycosNodePort
        self.nodes = list(nodes)
        self.zombie_period = zombie_period or 0
        self.queue = []              # _Waiting, in order
        self.current = None          # _Served
        self.served = 0
        self.quitting = False
        self.done = threading.Event()
        self.task = netpycos.Task(self._run)
        self.pinger = netpycos.Task(self._ping, ping_interval) if ping_interval else None
        self.rps = netpycos.RPS(self._service, name=SERVICE)
        self.rps.register()

    # ---- for the program (thread-safe) ----------------------------------------------------

    def quit(self, terminate=False):
        """End: the waiting clients are turned away, the client being served
        is closed (as its ``close()``: its CPU jobs are awaited, or with
        ``terminate`` interrupted at once; a job still running gets
        KeyboardInterrupt and a grace period), then ``done`` is set."""
        self.task.send(("quit", bool(terminate)))

    def close_current(self):
        """Close the client being served (as quit does), and serve the next."""
        self.task.send(("close",))

    def status(self):
        """One line saying what the scheduler does."""
        cur = self.current
        if cur is None:
            what = "idle"
        elif cur.scheduler is None:
            what = "starting client %s at %s" % (cur.token, cur.location)
        else:
            s = cur.scheduler
            what = "serving client %s at %s: %d nodes, %d servers, %d jobs" % (
                cur.token, cur.location, len(s.nodes), len(s.servers), len(s.jobs))
        return "dispycos scheduler %s at %s: %s; %d waiting, %d served" % (
            self.sched.name, self.sched.location, what, len(self.queue), self.served)

    # ---- clients coming and going ------------------------------------------------------------

    def _service(self, op, *args, task=None):
        """The RPS clients call: ``("schedule", token, inbox, pulse_interval,
        zombie_period)`` (answered when it is the client's turn) and
        ``("cancel", token)``."""
        if op == "schedule":
            token, inbox, pulse_interval, zombie_period = args
            if not (isinstance(token, str) and _TOKEN.match(token) and isinstance(inbox, Task)
                    and inbox.location is not None and _seconds(pulse_interval) > 0
                    and _seconds(zombie_period) >= 0):
                return ("error", "malformed request")
            if self.quitting:
                return ("error", "the scheduler is quitting")
            cur = self.current
            if (cur is not None and cur.token == token) or any(
                    w.token == token for w in self.queue):
                return ("error", "token in use")
            self.queue.append(_Waiting(token, task, inbox, pulse_interval, zombie_period))
            logger.info("dispycos: client %s at %s waits (%d before it)", token,
                        inbox.location, len(self.queue) - 1 + (cur is not None))
            self._next()
            answer = yield task.receive()
            return answer
        if op == "cancel":
            token = args[0]
            for w in self.queue:
                if w.token == token:
                    self.queue.remove(w)
                    w.task.send(("error", "cancelled"))
                    return 0
            cur = self.current
            if cur is not None and cur.token == token:
                netpycos.Task(self._close, cur, False, True, 0, "cancelled")
                return 0
            return -1
        raise ValueError("dispycos: no service %r" % (op,))

    def _next(self):
        """Serve the first waiting client if none is served."""
        if self.current is not None or self.quitting or not self.queue:
            return
        waiting = self.queue.pop(0)
        served = self.current = _Served(self, waiting)
        os.makedirs(served.path, exist_ok=True)
        waiting.task.send(("granted", served.api, served.ctl, served.dir))

    def _run(self, task=None):
        self.sched.peer_status(task)
        while True:
            msg = yield task.receive()
            if isinstance(msg, netpycos.PeerStatus):
                if msg.status == netpycos.PeerStatus.Offline:
                    self._gone(msg)
                continue
            if not isinstance(msg, tuple) or not msg:
                continue
            cur = self.current
            if msg[0] == "silent":
                if msg[1] is cur and not cur.closing:
                    logger.warning("dispycos: client %s at %s silent for %.1fs; closing it",
                                   cur.token, cur.location, msg[2])
                    netpycos.Task(self._close, cur, False, True, 0, "silent for too long", True)
            elif msg[0] == "close":
                if cur is not None:
                    netpycos.Task(self._close, cur, False, False, 0,
                                  "closed by the scheduler's operator")
            elif msg[0] == "quit":
                self.quitting = True
                for w in self.queue:
                    w.task.send(("error", "the scheduler quits"))
                self.queue.clear()
                if cur is not None:
                    yield self._close(cur, False, msg[1], 0, "the scheduler quits")
                break
        if self.pinger is not None:
            self.pinger.send("quit")
        self.rps.close()
        self.done.set()

    def _gone(self, status):
        """A peer is offline (PeerStatus ``status``): if it was a client (the
        process it names: not a successor at that address), it is done."""
        for w in [w for w in self.queue if status.about(w.inbox)]:
            self.queue.remove(w)
            w.task.send(("error", "gone"))
        cur = self.current
        if cur is not None and status.about(cur.inbox) and not cur.closing:
            logger.warning("dispycos: client %s at %s is gone; closing it", cur.token,
                           status.location)
            netpycos.Task(self._close, cur, False, True, 0, "gone", True)

    def _close(self, served, await_io=False, terminate=False, timeout=None, why=None,
               gone=False, task=None):
        """[y] End client ``served`` (see Client.close for the arguments;
        ``why``: told to the client when it did not ask for it; ``gone``:
        it is not there to be told anything), then serve the next one.  0."""
        if served.closing:
            yield served.closed.wait()
            return 0
        served.closing = True
        served.gone = gone
        r = 0
        if served.scheduler is not None:
            if gone:
                served.client.status_task = None
            r = yield served.client.close(await_io, terminate, timeout)
            lost = served.scheduler.lost
            if lost:
                replies = netpycos.Task(_collect, len(lost), RELEASE_WAIT)
                for node in lost.values():
                    node.send(("release", served.scheduler.cid, replies))
                yield replies.finish()
        served.api.close()
        served.ctl.send(("quit",))
        served.watch.stop()
        shutil.rmtree(served.path, ignore_errors=True)
        if not gone:
            served.inbox.send(("closed", why))
        logger.info("dispycos: client %s at %s closed%s", served.token, served.location,
                    ": %s" % why if why else "")
        if self.current is served:
            self.current = None
            self.served += 1
        served.closed.set()
        self._next()
        return r

    def _ping(self, interval, task=None):
        while True:
            self.sched.discover_peers(port=self.node_port)
            if (yield task.receive(timeout=interval)) == "quit":
                break


def _seconds(value):
    """``value`` if it is a number of seconds, else -1."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    return -1
