"""The client's side of dispycos: :class:`Client` (also ``Computation``).

A client packages its components (:mod:`pycos.dispy.packaging`), starts a
scheduler (``yield client.schedule()``: the in-process one of
:mod:`pycos.dispy.scheduler`), and submits jobs -- generator functions that
run as tasks on the nodes' server processes.  ``yield client.rtask(gen,
*args)`` returns the job's remote task (or None), and ``yield rtask()``
its return value, or a MonitorStatus when it failed or its server died.

Every call marked [y] is yielded in a task.
"""

import functools
import inspect

from pycos import config

from pycos.core.task import Task
from pycos.dispy import packaging
from pycos.dispy.scheduler import Scheduler
from pycos.dispy.status import DispycosNodeAllocate, node_cpus

__all__ = ["Client", "Computation"]


def _value(v):
    """[y] ``v``, from a yielded call."""
    return v
    yield  # pragma: no cover  (makes this a generator)


def _or_shared(method):
    """With a shared scheduler (``schedule(location)``) the Client's
    ``method`` is served by its proxy's method of the same name
    (:class:`pycos.dispy.shared_client.Remote`)."""
    name = method.__name__

    def call(self, *args, **kwargs):
        shared = self._shared
        if shared is not None:
            return getattr(shared, name)(*args, **kwargs)
        return method(self, *args, **kwargs)
    return functools.update_wrapper(call, method)


class Client(object):
    """A computation to run on dispycos nodes (see the module docstring and
    docs/dispycos.md for every argument)."""

    #: the proxy of a shared scheduler (pycos.dispy.shared_client), once
    #: schedule(location) got this client its turn
    _shared = None

    def __init__(self, components, nodes=[], status_task=None, node_setup=None,
                 server_setup=None, disable_nodes=False, disable_servers=False,
                 pulse_interval=5 * config.MinPulseInterval, node_allocations=[], ping_interval=None,
                 restart_servers=False, zombie_period=None, abandon_zombie_nodes=False,
                 job_retries=0, job_timeout=None):
        if not isinstance(components, (list, tuple)):
            raise TypeError("components must be a list, not %r" % (type(components).__name__,))
        if not isinstance(nodes, (list, tuple)):
            raise TypeError("nodes must be a list of host names or DispycosNodeAllocate")
        if not isinstance(node_allocations, (list, tuple)):
            raise TypeError("node_allocations must be a list of DispycosNodeAllocate")
        nodes = list(nodes) + list(node_allocations)
        for n in nodes:
            if not isinstance(n, (str, DispycosNodeAllocate)):
                raise TypeError("nodes: %r is neither a host name nor a DispycosNodeAllocate"
                                % (n,))
        if status_task is not None and not isinstance(status_task, Task):
            raise TypeError("status_task must be a Task, not %r" % (status_task,))
        for what, fn in (("node_setup", node_setup), ("server_setup", server_setup)):
            if fn is not None and not inspect.isgeneratorfunction(fn):
                raise TypeError("%s must be a generator function, not %r" % (what, fn))
        if not (config.MinPulseInterval <= pulse_interval <= config.MaxPulseInterval):
            raise ValueError("pulse_interval must be between %s and %s seconds, not %r"
                             % (config.MinPulseInterval, config.MaxPulseInterval,
                                pulse_interval))
        if ping_interval is not None and ping_interval < pulse_interval:
            raise ValueError("ping_interval must be at least pulse_interval (%s)"
                             % (pulse_interval,))
        if zombie_period is not None and zombie_period < 0:
            raise ValueError("zombie_period must be 0 or more, not %r" % (zombie_period,))
        _check_job_options(job_retries, job_timeout)
        comps = list(components)
        for fn in (node_setup, server_setup):
            if fn is not None and fn not in comps:
                comps.append(fn)
        self._package = packaging.package(comps)
        self._allocations = [n for n in nodes if isinstance(n, DispycosNodeAllocate)]
        self._node_hosts = [n for n in nodes if isinstance(n, str)]
        self._node_hosts += [a.node for a in self._allocations if "*" not in a.node]
        self._node_port = config.DispycosNodePort
        self.status_task = status_task
        self._server_setup = server_setup
        self._node_setup = node_setup
        self._disable_nodes = bool(disable_nodes)
        self._disable_servers = bool(disable_servers)
        self._restart_servers = bool(restart_servers)
        self.pulse_interval = pulse_interval
        self.ping_interval = ping_interval
        # a node not heard from for this long (plus one pulse interval) is
        # taken for dead, its jobs ended (0: only netpycos's own liveness)
        self.zombie_period = 5 * pulse_interval if zombie_period is None else zombie_period
        self.abandon_zombie_nodes = bool(abandon_zombie_nodes)
        # beyond the original, for the jobs submitted from now on (see docs):
        # a job lost with its server runs again, up to job_retries times
        # (idempotent jobs only); a job running longer than job_timeout
        # seconds gets JobTimeout
        self.job_retries = job_retries
        self.job_timeout = job_timeout
        self._scheduler = None

    # ---- the scheduler ---------------------------------------------------------------------

    def schedule(self, location=None, timeout=None):
        """[y] Start the scheduler for this client: 0.

        ``location`` None: the scheduler runs in this process.  Else it is a
        shared scheduler (the ``dispycos`` program) there -- a Location, or
        a host name or address (with the default scheduler port) -- which
        serves clients one at a time in order: this returns 0 when it is
        this client's turn, -1 when there is no such scheduler (or it
        refused the client; the log says why), -2 when ``timeout`` seconds
        passed first.  Every method of the client then works through it
        (see pycos.dispy.shared_client); node allocations with code of
        their own run in this process, when the scheduler asks."""
        if location is not None:
            if self._scheduler is not None:
                raise RuntimeError("this client already has the in-process scheduler")
            if self._shared is not None and not self._shared.closed:
                return _value(0)
            from pycos.dispy.shared_client import Remote
            return Remote(self).schedule(location, timeout)
        if self._shared is not None:
            raise RuntimeError("this client uses the shared scheduler at %s"
                               % (self._shared.location,))
        if self._scheduler is None:
            self._scheduler = Scheduler(self)
        return _value(0)

    def _need(self):
        if self._scheduler is None:
            raise RuntimeError("call 'yield client.schedule()' first")
        return self._scheduler

    def _allocate(self, info):
        """CPUs to use on the node described by ``info`` (DispycosNodeInfo)."""
        avail = info.avail_info
        return node_cpus(self._allocations, info.addr, info.name, info.platform, info.cpus,
                         getattr(avail, "memory", None), getattr(avail, "disk", None))

    def _job_code(self, gen):
        """(name, source or None) of a job function: the source goes along
        when ``gen`` was not among the components."""
        if not inspect.isfunction(gen):
            raise TypeError("a job must be a (generator) function, not %r" % (gen,))
        return gen.__name__, packaging.add_source(self._package, gen)

    # ---- jobs -------------------------------------------------------------------------------

    @_or_shared
    def rtask_at(self, where, gen, *args, **kwargs):
        """[y] Run ``gen(*args, **kwargs)`` as a CPU job at ``where`` (a node's
        address or name, a node's or a server's Location): its remote task,
        or None.  Waits while every server there has a CPU job."""
        return self._submit(where, True, gen, args, kwargs)

    @_or_shared
    def rtask(self, gen, *args, **kwargs):
        """[y] Run a CPU job on the least-loaded node (see rtask_at)."""
        return self._submit(None, True, gen, args, kwargs)

    @_or_shared
    def io_rtask_at(self, where, gen, *args, **kwargs):
        """[y] Run an I/O job at ``where``: no one-per-server limit."""
        return self._submit(where, False, gen, args, kwargs)

    @_or_shared
    def io_rtask(self, gen, *args, **kwargs):
        """[y] Run an I/O job on any server."""
        return self._submit(None, False, gen, args, kwargs)

    def _submit(self, where, cpu, gen, args, kwargs):
        _check_job_options(self.job_retries, self.job_timeout)
        return self._need().submit(where, cpu, gen, args, kwargs, self.job_retries,
                                   self.job_timeout)

    run = rtask
    run_at = rtask_at
    run_async = io_rtask
    run_async_at = io_rtask_at

    # ---- what is there -------------------------------------------------------------------

    @_or_shared
    def nodes(self):
        """[y] The addresses of the nodes in use."""
        s = self._need()
        return _value([n.info.addr for n in s.nodes.values()
                       if n.status == Scheduler.NodeInitialized])

    @_or_shared
    def servers(self):
        """[y] The Locations of the servers that take jobs (or will when
        resumed; not those closing)."""
        s = self._need()
        return _value([loc for loc, sv in s.servers.items()
                       if sv.status == Scheduler.ServerInitialized and not sv.closing])

    @_or_shared
    def tasks(self, where=None):
        """[y] The running jobs (at ``where``: a node's address or Location,
        or a server's Location)."""
        s = self._need()
        from pycos.dispy.scheduler import _matches
        return _value([t for t, (sv, _) in s.jobs.items()
                       if where is None or _matches(where, sv.task.location, sv.node)])

    # ---- nodes and servers ------------------------------------------------------------------

    @_or_shared
    def node_allocate(self, node_allocate):
        """[y] Use ``node_allocate`` (a DispycosNodeAllocate) for nodes
        found from now on, before the allocations given so far: 0."""
        if not isinstance(node_allocate, DispycosNodeAllocate):
            raise TypeError("node_allocate needs a DispycosNodeAllocate, not %r"
                            % (node_allocate,))
        self._allocations.insert(0, node_allocate)
        s = self._scheduler
        if s is not None and "*" not in node_allocate.node:
            Task(_peer_host, s, node_allocate.node, self._node_port)
        return _value(0)

    @_or_shared
    def enable_node(self, node, *setup_args):
        """[y] With ``disable_nodes``: initialize node ``node`` (its address,
        name or Location) -- ``node_setup(*setup_args)`` runs there, then
        its servers start.  0."""
        return _value(self._need().enable_node(node, setup_args))

    @_or_shared
    def enable_server(self, location, *setup_args):
        """[y] With ``disable_servers``: server ``location`` runs
        ``server_setup(*setup_args)`` and takes jobs.  0."""
        return _value(self._need().enable_server(location, setup_args))

    def _nodes_at(self, where):
        s = self._need()
        return [n for loc, n in list(s.nodes.items()) if _node_is(where, loc, n)]

    def _server_at(self, location):
        return self._need().servers.get(location)

    @_or_shared
    def suspend_node(self, node):
        """[y] No new job goes to node ``node`` (its jobs go on): 0, or -1."""
        return self._each_node(node, lambda s, n: s.suspend(n, True))

    @_or_shared
    def resume_node(self, node):
        """[y] Node ``node`` takes jobs again: 0, or -1."""
        return self._each_node(node, lambda s, n: s.suspend(n, False))

    @_or_shared
    def close_node(self, node, terminate=False):
        """[y] Close node ``node`` for this client: its servers end once
        their jobs are done (``terminate``: interrupted) and it is released;
        it is not used again.  0, or -1."""
        return self._each_node(node, lambda s, n: s.close_node(n, terminate))

    @_or_shared
    def restart_node(self, node, *setup_args):
        """[y] Close node ``node``'s servers (their jobs done), release it,
        and initialize it again (``node_setup(*setup_args)``, new servers).
        0, or -1."""
        return self._each_node(node, lambda s, n: s.close_node(n, False, setup_args))

    def _each_node(self, node, fn):
        nodes = self._nodes_at(node)
        for n in nodes:
            fn(self._scheduler, n)
        return _value(0 if nodes else -1)

    @_or_shared
    def suspend_server(self, location):
        """[y] No new job goes to server ``location``: 0, or -1."""
        return self._one_server(location, lambda s, sv: s.suspend(sv, True))

    @_or_shared
    def resume_server(self, location):
        """[y] Server ``location`` takes jobs again: 0, or -1."""
        return self._one_server(location, lambda s, sv: s.suspend(sv, False))

    @_or_shared
    def close_server(self, location, terminate=False, restart=False):
        """[y] Server ``location`` ends once its jobs are done
        (``terminate``: interrupted); ``restart``: its node starts a fresh
        one.  0, or -1."""
        return self._one_server(location, lambda s, sv: s.close_server(sv, terminate, restart))

    @_or_shared
    def restart_server(self, location):
        """[y] close_server(location, restart=True)."""
        return self.close_server(location, restart=True)

    def _one_server(self, location, fn):
        server = self._server_at(location)
        if server is None:
            return _value(-1)
        fn(self._scheduler, server)
        return _value(0)

    @_or_shared
    def abandon_zombie(self, location, flag):
        """[y] ``flag`` True: node ``location`` (its Location, address or
        name), once taken for dead, is not used again when it comes back
        (as with ``abandon_zombie_nodes`` for every node); False: it is.
        0, or -1 for no such node."""
        s = self._need()
        locs = [loc for loc, n in s.nodes.items() if _node_is(location, loc, n)]
        locs += [loc for loc in s.dead | s.abandoned if location == loc]
        if not locs:
            return _value(-1)
        for loc in locs:
            s.abandon[loc] = bool(flag)
            if not flag and loc in s.abandoned:     # it may come back (released first)
                s.abandoned.discard(loc)
                s.dead.add(loc)
        return _value(0)

    @_or_shared
    def close(self, await_io=False, terminate=False, timeout=None):
        """[y] End the computation: waits for the CPU jobs (and the I/O jobs
        with ``await_io``; with ``terminate`` every job gets
        KeyboardInterrupt at once), stops the servers (a job still running
        gets KeyboardInterrupt, once, and a grace period for its handler),
        releases the nodes (which remove the client's files) and sends
        ClientClosed."""
        if self._scheduler is None:
            return _value(0)
        return self._scheduler.close(await_io, terminate, timeout)


Computation = Client


def _check_job_options(retries, timeout):
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        raise ValueError("job_retries must be an int, 0 or more, not %r" % (retries,))
    if timeout is not None and (not isinstance(timeout, (int, float))
                                or isinstance(timeout, bool) or not timeout > 0):
        raise ValueError("job_timeout must be None or a number of seconds above 0, not %r"
                         % (timeout,))


def _node_is(where, loc, node):
    return where == loc or where in (node.info.addr, node.info.name)


def _peer_host(sched, host, port, task=None):
    yield sched.sched.peer(host, udp_port=port)
