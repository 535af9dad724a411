"""The dispycos scheduler: finds nodes, starts servers on them for a client,
and places the client's jobs.

This is the in-process scheduler (``yield client.schedule()``): it runs as
tasks on the client's own netpycos scheduler.  Its task
``dispycos_scheduler`` takes what nodes and servers report:

``PeerStatus`` Online
    a peer appeared (discovery, ``Client(nodes=...)``, or a node started
    with ``--peer``); if it has a ``dispycos_node`` task it is asked for its
    :class:`DispycosNodeInfo`, the node allocation decides how many CPUs to
    use, the node is claimed for the client (NodeDiscovered: from then on
    what the client sends the node lands in the client's directory there, as
    in 4.x), the client's files are sent to it, and it is asked to start
    that many servers (NodeInitialized);
``("server_up", node, index, server)``
    a server process runs (ServerDiscovered): it is sent the client's code
    and ``server_setup``;
``("server_ready", server, rps)``
    the server can take jobs (ServerInitialized) through the RPS ``rps``;
``PeerStatus`` Offline, ``("server_exit", node, server)``
    a server or node is gone (ServerDisconnected / NodeDisconnected); the
    node reports a server process's end at once.

Jobs are calls of a server's RPS, so a job's end reaches the client's
``yield rtask()`` from the server directly, and reaches the scheduler's
monitor task, which frees the server, hands the next waiting job its place
and passes the MonitorStatus to the client's ``status_task``.  A server that
dies ends each of its jobs with a MonitorStatus whose type is
:class:`pycos.netpycos.PeerOffline` (netpycos's RPS monitor) -- never a job
left running.

Placement: a CPU job (``rtask``) needs a server without a CPU job (one per
server process, as in the original), on the least-loaded node; an I/O job
(``io_rtask``) any initialized server, the one with the fewest jobs.  Jobs
that find no free server wait in order, and each freed server wakes one
waiter (not all of them).
"""

import os
import pickle
import socket
import time

import pycos.netpycos as netpycos
from pycos import config
from pycos.core.log import logger
from pycos.core.scheduler import Scheduler as _Loop
from pycos.core.support import MonitorStatus
from pycos.core.support import Location
from pycos.net import refs
from pycos.dispy.joblimits import Job, TimeLimits
from pycos.dispy.liveness import Watch
from pycos.dispy.status import (DispycosNodeAvailInfo, DispycosStatus, DispycosTaskInfo,
                                JobTimeout, Status)

__all__ = ["Scheduler", "JobTimeout"]

#: the longest close() waits for nodes to release the client (their servers
#: get pycos.dispy.node.STOP_GRACE to end)
RELEASE_WAIT = 10.0

#: Scheduler.placed(): the job's server went away, place it again
_AGAIN = object()

#: CPU jobs shorter than this (on average, lately) are sent to a server while
#: its current one runs, to wait there and run next: the server does not idle
#: for a round trip between short jobs.  Longer jobs go one at a time, as in
#: the original, so none waits behind a long one.
PREFETCH_BELOW = 0.02
#: how many short CPU jobs may wait at a server: one, or as many as take
#: PREFETCH_WORK seconds together, up to PREFETCH_MAX
PREFETCH_WORK = 0.005
PREFETCH_MAX = 8


class _Node(object):
    __slots__ = ("task", "info", "status", "cpus", "servers", "suspended", "closing",
                 "restart", "initializing", "setup_args", "claimed", "reported")

    def __init__(self, task, info):
        self.task = task
        self.info = info
        self.status = Status.NodeDiscovered
        self.cpus = 0                # allocated, then as many as the node started
        self.servers = {}            # server Location -> _Server
        self.suspended = False
        self.closing = False
        self.restart = None          # restart_node()'s setup arguments
        self.initializing = False    # files sent / reserved, not yet NodeInitialized
        self.setup_args = ()         # node_setup's arguments
        self.claimed = False         # the node said it is this client's (node_claimed)
        self.reported = False        # NodeDiscovered sent to the status task


class _Server(object):
    __slots__ = ("task", "node", "rps", "status", "cpu_jobs", "jobs", "suspended", "closing",
                 "cpu_free_at", "sending")

    def __init__(self, task, node):
        self.task = task
        self.node = node
        self.rps = None
        self.status = Status.ServerDiscovered
        self.cpu_jobs = 0            # CPU jobs sent to it (one runs, at most one waits)
        self.jobs = set()
        self.suspended = False
        self.closing = False
        self.cpu_free_at = 0.0       # when its last CPU job ended
        self.sending = 0             # jobs placed here, their call not answered yet

    def usable(self):
        return (self.status == Status.ServerInitialized and not self.suspended
                and not self.closing and not self.node.suspended and not self.node.closing)


class Scheduler(Status):
    """The in-process scheduler of one :class:`Client` (see the module
    docstring).  The status constants (``Scheduler.NodeDiscovered`` ...)
    are the ones the status task receives."""

    def __init__(self, client):
        self.client = client
        self.sched = netpycos.Pycos.instance()
        self.cid = "%s-%d-%s" % (socket.gethostname(), os.getpid(), os.urandom(4).hex())
        self.nodes = {}              # node Location -> _Node
        self.servers = {}            # server Location -> _Server
        self.jobs = {}               # remote task -> (_Server, cpu)
        self.early = {}              # job ends that came before their call's reply
        self.calls = 0               # job calls waiting for their reply
        self.cpu_sent = {}           # CPU job's remote task -> when it was placed
        self.job_opts = {}           # remote task -> _Job (job_retries, job_timeout)
        self.retrying = 0            # jobs lost with their server, being placed again
        self.cpu_time = None         # CPU jobs' recent run time (moving average)
        self.dead = set()            # nodes declared dead: released before they are used again
        self.abandoned = set()       # nodes taken for dead and not to be used again
        self.abandon = {}            # node Location -> abandon_zombie() flag
        self.not_nodes = set()       # peers known to be servers
        self.closed_nodes = set()    # closed by close_node(): not used again
        self.enable_nodes = []       # (where, setup args) of enable_node() calls not used yet
        self.enable_servers = []     # (where, setup args) of enable_server() calls not used yet
        self.waiting = []            # [task, where, woken] of jobs waiting for a server
        self.closing = False
        self._collector = None       # close()'s task counting the nodes' releases
        self.idle = netpycos.Event()
        self.idle.set()
        self.task = netpycos.Task(self._run)
        self.monitor = netpycos.Task(self._monitor)
        self.limits = TimeLimits(lambda rtask: rtask in self.jobs, self.task._sched.now)
        self.watch = Watch(client.zombie_period, client.pulse_interval,
                           lambda loc, silent: self.task.send(("zombie", loc, silent)))

    # ---- status ----------------------------------------------------------------------

    def _status(self, status, info):
        st = self.client.status_task
        if st is not None:
            st.send(DispycosStatus(status, info))

    # ---- nodes and servers ----------------------------------------------------------------

    def _run(self, task=None):
        task.register("dispycos_scheduler")
        self.sched.peer_status(task)
        for loc in self.sched.peers():
            netpycos.Task(self._probe, loc)
        for host in self.client._node_hosts:
            yield self.sched.peer(host, udp_port=self.client._node_port)
        # nodes listen on DispycosNodePort; they also announce themselves to
        # DispycosSchedulerPort (netpycos's port) on their own
        self.sched.discover_peers(port=self.client._node_port)
        while True:
            msg = yield task.receive()
            if isinstance(msg, netpycos.PeerStatus):
                if msg.status == netpycos.PeerStatus.Online:
                    netpycos.Task(self._probe, msg.location)
                else:
                    self._peer_gone(msg)
                continue
            if not isinstance(msg, tuple) or not msg:
                continue
            kind = msg[0]
            if kind == "node_info":
                self._node_info(msg[1], msg[2])
            elif kind == "node_reserved":
                node = self.nodes.get(msg[1].location)
                if node is not None and node.status == Status.NodeDiscovered:
                    node.status = Status.NodeInitialized
                    node.cpus = msg[2]
                    # (watched at the node's own pulse interval: it may pulse
                    # less often than the client asked, within its limits)
                    self.watch.heard(node.task.location, msg[3] if len(msg) > 3 else None)
                    self._status(Status.NodeInitialized, node.info)
            elif kind == "node_claimed":
                node = self.nodes.get(msg[1].location)
                if (node is not None and node.status == Status.NodeDiscovered
                        and not node.claimed and not self.closing):
                    node.claimed = True
                    self.watch.heard(node.task.location, msg[2])
                    if not node.reported:
                        node.reported = True
                        self._status(Status.NodeDiscovered, node.info)
                    self._claimed(node)
            elif kind == "node_busy":
                logger.info("dispycos: node %s serves another client", msg[1].location)
                node = self.nodes.get(msg[1].location)
                if node is not None and node.status == Status.NodeDiscovered:
                    node.claimed = False             # (claimed again when it is free)
            elif kind == "node_free":
                node = self.nodes.get(msg[1].location)
                if (node is not None and node.status == Status.NodeDiscovered
                        and not node.claimed and not node.closing and not self.closing):
                    self._claim(node)
            elif kind == "node_failed":
                node = self.nodes.pop(msg[1].location, None)
                if node is not None:
                    logger.warning("dispycos: node %s not used: %s", msg[1].location, msg[2])
                    self.watch.forget(msg[1].location)
                    node.status = Status.NodeClosed
                    self._status(Status.NodeClosed, node.info)
                    self.closed_nodes.add(msg[1].location)
            elif kind == "server_closing":
                server = self.servers.get(msg[1].location)
                if server is not None:
                    server.closing = True
            elif kind == "close_node":
                node = self.nodes.get(msg[1].location)
                if node is not None:
                    self.close_node(node, msg[2])
            elif kind == "server_up":
                self._server_up(msg[1], msg[3])
            elif kind == "server_ready":
                self._server_ready(msg[1], msg[2])
            elif kind == "server_exit":
                # the process is gone: its connection is given up now, which
                # ends its jobs (PeerOffline) without waiting for netpycos
                loc = msg[2].location
                if loc in self.servers:
                    yield self.sched.close_peer(loc)
            elif kind == "server_failed":
                self._server_closed(msg[1].location, Status.ServerClosed)
            elif kind == "pulse":
                loc = msg[1].location
                node = self.nodes.get(loc)
                if node is not None and (node.status == Status.NodeInitialized or node.claimed):
                    self.watch.heard(loc)
                    msg[1].send(("pulse_ack",))
                    if (isinstance(msg[2], DispycosNodeAvailInfo)
                            and node.status == Status.NodeInitialized):
                        st = self.client.status_task
                        if st is not None:
                            st.send(msg[2])
            elif kind == "zombie":
                yield self._node_dead(msg[1], msg[2])
            elif kind == "quit":
                break
        self.watch.stop()

    def _node_dead(self, loc, silent, task=None):
        """[y] Node ``loc`` has been silent for ``silent`` seconds: it is
        taken for dead.  Its servers' and its own connections are given up,
        which ends each of their jobs with a PeerOffline MonitorStatus (and
        makes anything that still comes from them a new peer); unless
        abandoned, it is released and used again when it comes back."""
        node = self.nodes.get(loc)
        if node is None or node.status != Status.NodeInitialized:
            return
        abandon = self.abandon.get(loc, self.client.abandon_zombie_nodes)
        logger.warning("dispycos: node %s silent for %.1fs: %s", loc, silent,
                       "abandoned" if abandon else "taken for dead")
        del self.nodes[loc]
        node.status = Status.NodeAbandoned if abandon else Status.NodeDisconnected
        for sloc in list(node.servers):
            self._server_closed(sloc, Status.ServerDisconnected)
            yield self.sched.close_peer(sloc)
        if self._collector is not None:
            self._collector.send(("node_gone", loc))
        self._status(node.status, node.info)
        if abandon:
            self.abandoned.add(loc)
        else:
            self.dead.add(loc)
        yield self.sched.close_peer(loc)

    def _probe(self, loc, task=None):
        if loc in self.nodes or loc in self.servers or loc in self.not_nodes or self.closing:
            return
        node = yield netpycos.Task.locate("dispycos_node", loc, timeout=config.MsgTimeout)
        if node is not None and not self.closing:
            node.send(("info", self.task))

    def _node_info(self, node_task, info):
        loc = node_task.location
        if loc in self.nodes or self.closing:
            return
        node = self.nodes[loc] = _Node(node_task, info)
        if loc in self.abandoned or loc in self.closed_nodes:
            self._status(Status.NodeDiscovered, info)
            node.status = Status.NodeIgnore
            return
        self._allocate_node(node, info)

    def _allocate_node(self, node, info):
        """Decide how many servers ``node`` gets (the shared scheduler's
        subclass may ask its client first, and decide later)."""
        self._allocated(node, self.client._allocate(info))

    def _allocated(self, node, cpus):
        if cpus <= 0:
            self._status(Status.NodeDiscovered, node.info)
            node.status = Status.NodeIgnore
            return
        node.cpus = cpus
        # NodeDiscovered once the node is the client's (node_claimed)
        if node.task.location in self.dead:
            netpycos.Task(self._release_then_claim, node)
        else:
            self._claim(node)

    def _claim(self, node):
        node.task.send(("claim", self.cid, self.task, self._settings()))

    def _release_then_claim(self, node, task=None):
        """``node`` is back after it was taken for dead (or is restarted):
        whatever it still runs for this client goes first (those results
        are ignored anyway), then it is claimed afresh."""
        loc = node.task.location
        node.task.send(("release", self.cid, task))
        yield task.receive(timeout=RELEASE_WAIT)
        self.dead.discard(loc)
        if self.nodes.get(loc) is node and not self.closing:
            self._claim(node)

    def _settings(self):
        """What a node is told of the client when it is claimed/reserved."""
        c = self.client
        return {"pulse_interval": c.pulse_interval, "zombie_period": c.zombie_period,
                "restart_servers": c._restart_servers}

    def _claimed(self, node):
        """``node`` is the client's: initialize it, or wait for enable_node()."""
        if node.restart is not None:             # (restart_node())
            args, node.restart = node.restart, None
            self._start_init(node, args)
            return
        if node.initializing:                    # (claimed again, after it was busy)
            self._start_init(node, node.setup_args)
            return
        if not self.client._disable_nodes:
            self._start_init(node, ())
            return
        loc = node.task.location
        for i, (where, args) in enumerate(self.enable_nodes):      # enabled before it came
            if _node_matches(where, loc, node):
                del self.enable_nodes[i]
                self._start_init(node, args)
                return

    def _start_init(self, node, setup_args):
        node.initializing = True
        node.setup_args = setup_args
        netpycos.Task(self._init_node, node, node.cpus, setup_args)

    def enable_node(self, where, setup_args):
        """A node discovered with ``disable_nodes`` is initialized, its
        ``node_setup`` given ``setup_args``; a node not there yet will be
        when it comes.  0."""
        for loc, node in list(self.nodes.items()):
            if (node.status == Status.NodeDiscovered and node.claimed and not node.initializing
                    and node.cpus > 0 and _node_matches(where, loc, node)):
                self._start_init(node, setup_args)
                return 0
        self.enable_nodes.append((where, setup_args))
        return 0

    def _init_node(self, node, cpus, setup_args, task=None):
        loc = node.task.location
        # (the node is the client's: its dest_path is the client's directory)
        for f in self.client._package.files:
            r = yield self.sched.send_file(loc, f.path, overwrite=True, timeout=config.MsgTimeout,
                                           dir=os.path.dirname(f.name) or None)
            if r < 0:
                logger.warning("dispycos: sending %s to node %s failed", f.path, loc)
                node.status = Status.NodeIgnore
                node.task.send(("release", self.cid, None))     # (the files sent so far go)
                return
        c = self.client
        settings = self._settings()
        if c._node_setup is not None:
            # (its arguments stay pickled until the client's code is loaded there)
            settings["node_setup"] = {"code": c._package.code, "name": c._node_setup.__name__,
                                      "args": pickle.dumps(tuple(setup_args))}
        node.task.send(("reserve", self.cid, cpus, self.task, settings))

    def _server_up(self, node_task, server_task):
        node = self.nodes.get(node_task.location)
        loc = server_task.location
        if node is None or loc in self.servers or self.closing:
            return
        server = self.servers[loc] = node.servers[loc] = _Server(server_task, node)
        self.not_nodes.add(loc)
        self._status(Status.ServerDiscovered, loc)
        if not self.client._disable_servers:
            self._setup_server(server, ())
            return
        for i, (where, args) in enumerate(self.enable_servers):    # enabled before it came
            if where == loc:
                del self.enable_servers[i]
                self._setup_server(server, args)
                return

    def _setup_server(self, server, setup_args):
        c = self.client
        setup = c._server_setup.__name__ if c._server_setup is not None else None
        server.task.send(("setup", c._package.code, setup, pickle.dumps(tuple(setup_args)),
                          self.task))

    def enable_server(self, where, setup_args):
        """A server discovered with ``disable_servers`` runs ``server_setup``
        with ``setup_args`` (a server not there yet will when it comes).  0."""
        server = self.servers.get(where)
        if server is not None and server.status == Status.ServerDiscovered:
            self._setup_server(server, setup_args)
        else:
            self.enable_servers.append((where, setup_args))
        return 0

    # ---- suspend, resume, close --------------------------------------------------------------

    def suspend(self, what, flag):
        """Suspend (``flag`` True) or resume jobs on ``what`` (a _Node or
        a _Server)."""
        if what.suspended == flag:
            return
        what.suspended = flag
        if isinstance(what, _Node):
            self._status(Status.NodeSuspended if flag else Status.NodeResumed, what.info)
        else:
            self._status(Status.ServerSuspended if flag else Status.ServerResumed,
                         what.task.location)
        if not flag:
            self._wake()

    def close_server(self, server, terminate=False, restart=False):
        """Close ``server`` once its jobs end (``terminate``: interrupt them);
        ``restart``: its node starts it again."""
        if not server.closing:
            server.closing = True
            server.task.send(("close", bool(terminate), bool(restart)))

    def close_node(self, node, terminate=False, restart=None):
        """Close every server of ``node`` (see close_server), then release
        it; ``restart`` (setup arguments): initialize it again."""
        if node.closing:
            return
        node.closing = True
        node.restart = restart
        for server in list(node.servers.values()):
            self.close_server(server, terminate)
        self._node_closed_maybe(node)

    def _node_closed_maybe(self, node):
        if not node.closing or node.servers:
            return
        loc = node.task.location
        if self.nodes.get(loc) is not node:
            return
        del self.nodes[loc]
        self.watch.forget(loc)
        if node.restart is not None:
            self.dead.add(loc)                       # released first, then as new
            again = self.nodes[loc] = _Node(node.task, node.info)
            again.cpus = node.cpus
            again.restart = node.restart             # (node_setup's arguments, once claimed)
            again.reported = True
            netpycos.Task(self._release_then_claim, again)
            return
        node.task.send(("release", self.cid, None))
        self.closed_nodes.add(loc)
        node.status = Status.NodeClosed
        self._status(Status.NodeClosed, node.info)

    def _server_ready(self, server_task, rps):
        server = self.servers.get(server_task.location)
        if server is None or server.status != Status.ServerDiscovered:
            return
        rps.monitor(self.monitor)
        server.rps = rps
        server.status = Status.ServerInitialized
        self._status(Status.ServerInitialized, server_task.location)
        self._wake()

    def _peer_gone(self, status):
        """PeerStatus Offline: the server or node it names is gone -- not one
        at that address already heard of from a process started since
        (``status.about``: a node restarted before netpycos saw the old one
        go reports its new servers first)."""
        loc = status.location
        server = self.servers.get(loc)
        if server is not None and status.about(server.task):
            self._server_closed(loc, Status.ServerDisconnected)
            if self.nodes.get(server.node.task.location) is server.node:
                # a write on the node's own connection: if its host reset the
                # server's, that one is reset too, and shows it now -- not at
                # the node's next pulse (RELIABILITY E4)
                server.node.task.send(("pulse_ack",))
        node = self.nodes.get(loc)
        if node is not None and not status.about(node.task):
            return
        self.watch.forget(loc)
        if node is not None and self._collector is not None:
            self._collector.send(("node_gone", loc))      # close() waits for it no more
        if node is not None and node.status not in (Status.NodeClosed, Status.NodeDisconnected):
            node.status = Status.NodeDisconnected
            for sloc in list(node.servers):
                self._server_closed(sloc, Status.ServerDisconnected)
            self._status(Status.NodeDisconnected, node.info)
            del self.nodes[loc]

    def _server_closed(self, loc, status):
        server = self.servers.pop(loc, None)
        if server is None:
            return
        server.node.servers.pop(loc, None)
        if server.closing and status == Status.ServerDisconnected:
            status = Status.ServerClosed             # (it ended as it was asked to)
        was = server.status
        server.status = status
        if was in (Status.ServerDiscovered, Status.ServerInitialized):
            self._status(status, loc)
        # its jobs end by the RPS monitor (PeerOffline), which frees the rest
        self._node_closed_maybe(server.node)

    # ---- jobs ---------------------------------------------------------------------------

    def _pick(self, where, cpu):
        best = None
        best_key = None
        most = self._cpu_most()
        for loc, s in self.servers.items():
            if not s.usable():
                continue
            if where is not None and not _matches(where, loc, s.node):
                continue
            if cpu and s.cpu_jobs >= most:
                continue
            node_busy = sum(x.cpu_jobs for x in s.node.servers.values())
            key = (s.cpu_jobs if cpu else 0, node_busy / max(len(s.node.servers), 1),
                   len(s.jobs) + s.sending)
            if best is None or key < best_key:
                best, best_key = s, key
        return best

    def _cpu_most(self):
        """How many CPU jobs a server may have: the one that runs, and
        (short jobs) those that wait there."""
        t = self.cpu_time
        if t is None or t >= PREFETCH_BELOW:
            return 1
        return 1 + max(1, min(PREFETCH_MAX, int(PREFETCH_WORK / max(t, 1e-6))))

    def _possible(self, where):
        """Whether a server for ``where`` exists or may still come."""
        if self.closing:
            return False
        if where is None:
            return True
        return any(_matches(where, loc, s.node) for loc, s in self.servers.items())

    def submit(self, where, cpu, gen, args, kwargs, retries=0, timeout=None):
        """[y] Start job ``gen(*args, **kwargs)`` (see Client.rtask);
        ``retries``: run it again when its server is lost, up to that many
        times; ``timeout``: seconds it may run before it gets JobTimeout."""
        name, code = self.client._job_code(gen)
        opts = None
        if retries or timeout:
            opts = Job(where, cpu, name, code, args, kwargs, retries, timeout)
        return (yield self._submit(opts, where, cpu, name, code, args, kwargs))

    def _submit(self, opts, where, cpu, name, code, args, kwargs):
        while True:
            server = yield self.place(where, cpu)
            if server is None:
                return None
            try:
                rtask = yield server.rps(name, code, args, kwargs, cpu)
            except BaseException:        # (the call failed here: arguments that do not pickle)
                self.unplaced(server, cpu)
                raise
            again = opts is not None and opts.origin is not None
            if opts is not None and isinstance(rtask, netpycos.Task):
                self._job_opts(rtask, opts)     # (before placed(): it may see the end)
            rtask = self.placed(server, cpu, rtask, args, kwargs, announce=not again)
            if rtask is not _AGAIN:
                return rtask

    def place(self, where, cpu):
        """[y] A server for a job (see Client.rtask_at for ``where`` and
        ``cpu``), or None when none will come.  The job is then sent with
        the server's RPS (``server.rps(name, code, args, kwargs, cpu)``) and
        its outcome given to :meth:`placed` -- always, once."""
        server = yield self._server_for(_Loop.cur_task(), where, cpu)
        if server is not None:
            self.idle.clear()
            self.calls += 1
        return server

    def placed(self, server, cpu, rtask, args, kwargs, announce=True):
        """What came of a job sent to ``server`` (from :meth:`place`):
        ``rtask`` is its remote task, or what the call returned instead.
        Returns the remote task, or ``_AGAIN`` when the server did not take
        the job -- it is going away (its job service closed): place it
        again, elsewhere.
        ``announce``: TaskStarted goes to the status task (not for a job
        run again)."""
        self.calls -= 1
        server.sending -= 1
        if not isinstance(rtask, netpycos.Task):
            server.closing = True        # (no other job goes there)
            self._unplace(server, cpu)
            return _AGAIN
        server.jobs.add(rtask)
        self.jobs[rtask] = (server, cpu)
        if cpu:
            self.cpu_sent[rtask] = time.monotonic()
        if announce:
            self._status(Status.TaskStarted, DispycosTaskInfo(rtask, args, kwargs, time.time()))
        early = self.early.pop(rtask, None)
        if not self.calls:
            self.early.clear()           # (late ends, of jobs already ended)
        if early is not None:
            self._job_done(early)
        return rtask

    def unplaced(self, server, cpu):
        """A job placed on ``server`` (from :meth:`place`) was never sent:
        the call failed on the caller's side (arguments that do not
        pickle).  Instead of :meth:`placed`."""
        self.calls -= 1
        server.sending -= 1
        self._unplace(server, cpu)

    def _unplace(self, server, cpu):
        """A job placed on ``server`` did not go there."""
        if cpu:
            server.cpu_jobs -= 1
            self._wake(server)
        self._check_idle()

    def _server_for(self, task, where, cpu):
        """[y] A server for a job (waiting in order for one; a CPU job takes
        the server's CPU slot), or None when none will come."""
        entry = None
        while True:
            server = self._pick(where, cpu)
            if server is not None:
                break
            if not self._possible(where):
                if entry is not None:
                    self.waiting.remove(entry)
                return None
            if entry is None:            # its place in the queue, kept until it gets a server
                entry = [task, where, False]
                self.waiting.append(entry)
            entry[2] = False
            r = yield task.suspend()
            if r == "closing":
                return None
        if entry is not None:
            self.waiting.remove(entry)
        if cpu:                          # (taken now: other jobs run before this returns)
            server.cpu_jobs += 1
        server.sending += 1              # (counted now: the next job sees it)
        return server

    def _wake(self, server=None, n=1):
        """Resume the first ``n`` waiting jobs that ``server`` (its CPU slot
        just freed) can take -- not all; ``server`` None (a new server):
        every waiting job looks again."""
        for entry in self.waiting:
            t, where, woken = entry
            if woken:
                continue
            if server is None or where is None or _matches(where, server.task.location,
                                                           server.node):
                entry[2] = True
                t.resume(None)
                if server is not None:
                    n -= 1
                    if n <= 0:
                        return

    def _monitor(self, task=None):
        while True:
            msg = yield task.receive()
            if isinstance(msg, MonitorStatus):
                if msg.info in self.jobs:
                    self._job_done(msg)
                elif self.calls:         # (else: a late end, of a job already ended)
                    self.early[msg.info] = msg
            elif msg == "quit":
                break

    def _job_done(self, status):
        server, cpu = self.jobs.pop(status.info)
        server.jobs.discard(status.info)
        if cpu:
            server.cpu_jobs -= 1
            # how long it ran: from when it was sent, or from when the job
            # before it on that server ended
            now = time.monotonic()
            ran = now - max(self.cpu_sent.pop(status.info, now), server.cpu_free_at)
            server.cpu_free_at = now
            most = self._cpu_most()
            self.cpu_time = ran if self.cpu_time is None else 0.8 * self.cpu_time + 0.2 * ran
            # (jobs got shorter: every server takes more of them)
            more = 1 + max(0, self._cpu_most() - most) * len(self.servers)
        self._report(status)
        if cpu and server.status == Status.ServerInitialized:   # (not a server that is gone)
            self._wake(server, more)
        self._check_idle()

    def _report(self, status):
        """A job ended: its MonitorStatus goes to the status task -- unless
        it was lost with its server and may run again (job_retries); the
        end of a job run again is reported as the end of the first one,
        the remote task the client has."""
        opts = self.job_opts.pop(status.info, None)
        if opts is not None:
            if not self.closing and opts.retry(status):
                self.retrying += 1
                netpycos.Task(self._retry, opts, status)
                return
            status = opts.ended(status)
        self._tell(status)

    def _tell(self, status):
        st = self.client.status_task
        if st is not None:
            st.send(status)

    def _retry(self, opts, lost, task=None):
        """Run job ``opts`` again, elsewhere; ``lost``: how its last run ended."""
        rtask = None
        try:
            rtask = yield self._submit(opts, opts.where, opts.cpu, opts.name, opts.code,
                                       opts.args, opts.kwargs)
        finally:
            self.retrying -= 1
            if rtask is None:            # no server for it: it ends as it was lost
                self._tell(opts.ended(lost))
            self._check_idle()

    def _job_opts(self, rtask, opts):
        if opts.origin is None:
            opts.origin = rtask
            if opts.retries:
                # (its owner going offline does not end it: _report() does)
                opts.held = refs.hold(rtask)
        self.job_opts[rtask] = opts
        if opts.timeout:
            self.limits.add(rtask, opts.timeout)

    def _check_idle(self):
        if not self.jobs and not self.retrying:
            self.idle.set()

    # ---- close --------------------------------------------------------------------------

    def close(self, await_io=False, terminate=False, timeout=None):
        """[y] (see Client.close)"""
        if self.closing:
            return 0
        # (terminate: no waiting; the servers' quit interrupts each job once
        # -- a second KeyboardInterrupt from here would land after the job's
        # handler, or in it)
        if not terminate and (self.jobs or self.retrying):
            # CPU jobs always finish; I/O jobs only with await_io
            def busy():
                return self.retrying or any(cpu or await_io for _, cpu in self.jobs.values())
            end = None if timeout is None else time.monotonic() + timeout
            while busy():
                left = None if end is None else end - time.monotonic()
                if left is not None and left <= 0:
                    break
                self.idle.clear()
                yield self.idle.wait(timeout=0.5 if left is None else min(left, 0.5))
        self.closing = True
        self.limits.stop()
        for t, _, _ in list(self.waiting):
            t.resume("closing")
        self.waiting.clear()
        for loc, server in list(self.servers.items()):
            server.task.send(("quit", bool(terminate)))
        waits = list(self.nodes.values())
        # the nodes stop the servers (a grace period for their jobs) and
        # remove the client's files; close() returns when they did, or at
        # RELEASE_WAIT
        collector = self._collector = netpycos.Task(_collect, len(waits), RELEASE_WAIT)
        for node in waits:
            node.task.send(("release", self.cid, collector))
        for loc in list(self.servers):
            self._server_closed(loc, Status.ServerClosed)
        yield collector.finish()
        for node in waits:
            if node.status in (Status.NodeInitialized, Status.NodeDiscovered):
                node.status = Status.NodeClosed
                self._status(Status.NodeClosed, node.info)
        self.nodes.clear()
        self._status(Status.ClientClosed, id(self.client))
        self.task.send(("quit",))
        self.monitor.send("quit")
        return 0


def _collect(n, timeout, task=None):
    """Wait for ``n`` replies (up to ``timeout`` seconds in all)."""
    end = time.monotonic() + timeout
    while n > 0:
        left = end - time.monotonic()
        if left <= 0 or (yield task.receive(timeout=left)) is None:
            break
        n -= 1


def _matches(where, loc, node):
    """``where`` (a server Location, a node Location, or a node's address or
    name) names server ``loc`` or its node."""
    if isinstance(where, Location):
        return where == loc or where == node.task.location
    return where in (node.info.addr, node.info.name, loc.addr)


def _node_matches(where, loc, node):
    """``where`` (a Location, an address or a name) names node ``loc``."""
    return where == loc or where in (node.info.addr, node.info.name)
