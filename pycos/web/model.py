"""What the web UI knows about a cluster, built from the client's status stream.

:class:`Cluster` takes each message a dispycos client's ``status_task``
receives (:meth:`Cluster.update`): node and server events, jobs starting
(``TaskStarted``) and ending (``MonitorStatus``), nodes' availability
reports.  It keeps the nodes, their servers, the running jobs, counts of
jobs done and failed, the recent failures with their tracebacks, each
node's CPU and memory over time and the jobs finished per second -- and
renders them as the JSON documents of the API (docs/httpd.md).  Because it
reads only the status stream, it works the same with the in-process and a
shared scheduler.

Nodes are known by their Location (``host:port``) when the client's
scheduler can say which one an event is about (``locate``), else by their
address; servers by their Location.  Nothing a message carries is trusted
to have the expected shape: a message it cannot use is counted and dropped.
"""

import collections
import reprlib
import time

from pycos.core.support import Location, MonitorStatus
from pycos.dispy.status import (DispycosNodeAvailInfo, DispycosNodeInfo, DispycosStatus,
                                DispycosTaskInfo, Status)

__all__ = ["Cluster", "DURATION_BUCKETS"]

#: how many points a node's series and the finished-jobs rate keep
HISTORY = 300
#: how many failures are kept
FAILURES = 100
#: the upper bounds (seconds) of the job duration histogram's buckets
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)
#: a failure's text is cut to this many characters
VALUE_CHARS = 8192

_repr = reprlib.Repr()
_repr.maxstring = 120
_repr.maxother = 120
_repr.maxlevel = 3
ARG_CHARS = 200

_NODE_STATES = {Status.NodeDiscovered: "Discovered", Status.NodeInitialized: "Initialized",
                Status.NodeSuspended: "Suspended", Status.NodeResumed: "Initialized",
                Status.NodeClosed: "Closed", Status.NodeDisconnected: "Disconnected",
                Status.NodeAbandoned: "Abandoned"}
_SERVER_STATES = {Status.ServerDiscovered: "Discovered",
                  Status.ServerInitialized: "Initialized",
                  Status.ServerSuspended: "Suspended", Status.ServerResumed: "Initialized",
                  Status.ServerClosed: "Closed", Status.ServerDisconnected: "Disconnected",
                  Status.ServerAbandoned: "Abandoned"}
#: the states a node or server can be in, in the order the metrics list them
STATES = ("Discovered", "Initialized", "Suspended", "Closed", "Disconnected", "Abandoned")


def _short(value):
    text = _repr.repr(value)
    return text if len(text) <= ARG_CHARS else text[:ARG_CHARS - 3] + "..."


class _Node(object):
    __slots__ = ("id", "where", "name", "addr", "status", "cpus", "platform", "avail",
                 "updated", "servers", "done", "failed", "series")

    def __init__(self, id, where, info):
        self.id = id
        self.where = where                     # what Client methods take: Location or address
        self.name = info.name
        self.addr = info.addr
        self.status = "Discovered"
        self.cpus = info.cpus
        self.platform = info.platform
        self.avail = None
        self.updated = time.time()
        self.servers = {}                     # server id -> _Server
        self.done = 0
        self.failed = 0
        self.series = collections.deque(maxlen=HISTORY)

    def running(self):
        return sum(len(s.jobs) for s in self.servers.values())

    def doc(self):
        a = self.avail
        return {"id": self.id, "name": self.name, "addr": self.addr, "status": self.status,
                "cpus": self.cpus, "platform": self.platform, "servers": len(self.servers),
                "running": self.running(), "done": self.done, "failed": self.failed,
                "avail": {"cpu": a.cpu if a else None, "memory": a.memory if a else None,
                          "disk": a.disk if a else None, "swap": a.swap if a else None},
                "updated": self.updated}


class _Server(object):
    __slots__ = ("id", "loc", "node", "status", "jobs", "done", "failed")

    def __init__(self, id, loc, node):
        self.id = id
        self.loc = loc
        self.node = node
        self.status = "Discovered"
        self.jobs = {}                         # job id -> _Job
        self.done = 0
        self.failed = 0

    def doc(self):
        return {"id": self.id, "node": self.node.id, "status": self.status,
                "running": len(self.jobs), "done": self.done, "failed": self.failed}


class _Job(object):
    __slots__ = ("id", "task", "server", "args", "kwargs", "start_time", "terminated")

    def __init__(self, id, task, server, args, kwargs, start_time):
        self.id = id
        self.task = task
        self.server = server
        self.args = args
        self.kwargs = kwargs
        self.start_time = start_time
        # set when the UI terminated it: a terminated task's end looks like
        # any other's (StopIteration) in the status stream
        self.terminated = False


class Cluster(object):
    """The cluster as the status stream shows it (see the module docstring).

    ``locate(kind, what)`` (optional) gives the Location of the node an
    event is about: ``kind`` 'node' with a DispycosNodeInfo, 'server' with
    a server's Location; None when it cannot tell.  ``show_args``: keep
    the jobs' arguments (as short reprs).  ``changed()`` is called after
    every change."""

    def __init__(self, name, location, locate=None, show_args=True, changed=None):
        self.name = name
        self.location = str(location)
        self.started = time.time()
        self.locate = locate
        self.show_args = show_args
        self.changed = changed
        self.version = 0
        self.closed = False
        self.nodes = {}                         # node id -> _Node
        self.servers = {}                       # server id -> _Server
        self.jobs = {}                          # remote task -> _Job
        self.job_ids = {}                       # job id -> _Job
        self.next_job = 1
        self.done = 0
        self.failed = 0
        self.dropped = 0                        # messages not understood
        self.failures = collections.deque(maxlen=FAILURES)
        self.finished = collections.deque()     # [second, count], the last HISTORY seconds
        self.durations = [0] * (len(DURATION_BUCKETS) + 1)
        self.duration_sum = 0.0
        self.node_ids = {}                      # (addr, name) -> node Location (or address)

    # ---- the status stream -----------------------------------------------------------

    def update(self, msg):
        """Take one status message; True if it was understood."""
        try:
            if isinstance(msg, MonitorStatus):
                ok = self._ended(msg)
            elif isinstance(msg, DispycosStatus):
                ok = self._status(msg.status, msg.info)
            elif isinstance(msg, DispycosNodeAvailInfo):
                ok = self._avail(msg)
            else:
                ok = False
        except (AttributeError, TypeError, ValueError, KeyError):
            ok = False
        if not ok:
            self.dropped += 1
            return False
        self.version += 1
        if self.changed is not None:
            self.changed()
        return True

    def _status(self, status, info):
        if status == Status.TaskStarted:
            return self._started(info)
        if status in _NODE_STATES:
            if not isinstance(info, DispycosNodeInfo):
                return False
            node = self._node(info)
            node.status = _NODE_STATES[status]
            node.cpus = info.cpus
            node.updated = time.time()
            if info.avail_info is not None and node.avail is None:
                self._sample(node, info.avail_info)
            return True
        if status in _SERVER_STATES:
            if not isinstance(info, Location):
                return False
            server = self._server(str(info), info)
            if server is None:
                return False
            server.status = _SERVER_STATES[status]
            server.node.updated = time.time()
            return True
        if status == Status.ClientClosed:
            self.closed = True
            return True
        return False

    def _node(self, info):
        """The _Node of ``info`` (a DispycosNodeInfo), made if new."""
        key = (info.addr, info.name)
        where = self.node_ids.get(key)
        if where is None:
            where = self.locate("node", info) if self.locate else None
            if where is None:
                where = info.addr
            self.node_ids[key] = where
        nid = str(where)
        node = self.nodes.get(nid)
        if node is None:
            node = self.nodes[nid] = _Node(nid, where, info)
        return node

    def _server(self, sid, loc):
        """The _Server ``sid`` (made if new, on the node that runs it), or
        None when its node is not known."""
        server = self.servers.get(sid)
        if server is not None:
            return server
        node = None
        nloc = self.locate("server", loc) if self.locate else None
        if nloc is not None:
            node = self.nodes.get(str(nloc))
        if node is None:
            addr = getattr(loc, "addr", None)
            node = next((n for n in self.nodes.values() if n.addr == addr), None)
        if node is None:
            return None
        server = self.servers[sid] = node.servers[sid] = _Server(sid, loc, node)
        return server

    def _started(self, info):
        if not isinstance(info, DispycosTaskInfo):
            return False
        rtask = info.task
        server = self._server(str(rtask.location), rtask.location)
        if server is None:
            return False
        job = _Job(self.next_job, rtask, server,
                   _short(info.args) if self.show_args else None,
                   _short(info.kwargs) if self.show_args else None, info.start_time)
        self.next_job += 1
        self.jobs[rtask] = job
        self.job_ids[job.id] = job
        server.jobs[job.id] = job
        return True

    def _ended(self, msg):
        job = self.jobs.pop(msg.info, None)
        now = time.time()
        ok = msg.type is StopIteration and not (job is not None and job.terminated)
        if job is not None:
            del self.job_ids[job.id]
            server = job.server
            del server.jobs[job.id]
            took = max(0.0, now - job.start_time)
            self.duration_sum += took
            self.durations[_bucket(took)] += 1
        else:
            server = self.servers.get(str(getattr(msg.info, "location", None)))
        if ok:
            self.done += 1
        else:
            self.failed += 1
        if server is not None:
            if ok:
                server.done += 1
                server.node.done += 1
            else:
                server.failed += 1
                server.node.failed += 1
        second = int(now)
        if self.finished and self.finished[-1][0] == second:
            self.finished[-1][1] += 1
        else:
            self.finished.append([second, 1])
            while self.finished[0][0] <= second - HISTORY:
                self.finished.popleft()
        if not ok:
            if msg.type is StopIteration:
                name, value = "Terminated", "terminated from the web UI"
            else:
                name = getattr(msg.type, "__name__", None) or str(msg.type)
                value = msg.value if isinstance(msg.value, str) else repr(msg.value)
            self.failures.appendleft({
                "id": job.id if job else None, "task": str(msg.info),
                "name": getattr(msg.info, "name", None),
                "server": server.id if server else None,
                "node": server.node.id if server else None,
                "type": name[:200], "value": value[:VALUE_CHARS], "time": now,
                "args": job.args if job else None, "kwargs": job.kwargs if job else None})
        return True

    def _avail(self, info):
        node = None
        loc = info.location
        if loc is not None:
            node = self.nodes.get(str(loc))
            if node is None:
                node = next((n for n in self.nodes.values() if n.addr == loc.addr), None)
        if node is None:
            return False
        self._sample(node, info)
        return True

    def _sample(self, node, info):
        node.avail = info
        node.updated = time.time()
        node.series.append([node.updated, info.cpu, info.memory])

    # ---- the documents -------------------------------------------------------------------

    def running(self):
        return len(self.jobs)

    def cluster_doc(self):
        """The ``/api/cluster`` document (without the per-request fields)."""
        nodes = sorted(self.nodes.values(), key=lambda n: (n.name, n.id))
        return {"client": {"name": self.name, "location": self.location,
                           "started": self.started, "closed": self.closed},
                "time": time.time(), "version": self.version,
                "show_task_args": self.show_args,
                "totals": {"nodes": len(self.nodes), "servers": len(self.servers),
                           "running": len(self.jobs), "done": self.done,
                           "failed": self.failed},
                "nodes": [n.doc() for n in nodes],
                "rate": self.rate()}

    def rate(self):
        """[[second, jobs finished], ...] for the last HISTORY seconds."""
        now = int(time.time())
        counts = {s: c for s, c in self.finished}
        return [[s, counts.get(s, 0)] for s in range(now - HISTORY + 1, now + 1)]

    def node_doc(self, nid):
        node = self.nodes.get(nid)
        if node is None:
            return None
        doc = node.doc()
        doc["server_list"] = [s.doc() for _, s in sorted(node.servers.items())]
        doc["series"] = [list(p) for p in node.series]
        doc["time"] = time.time()
        doc["version"] = self.version
        return doc

    def server_doc(self, sid):
        server = self.servers.get(sid)
        if server is None:
            return None
        now = time.time()
        doc = server.doc()
        doc["time"] = now
        doc["version"] = self.version
        doc["show_task_args"] = self.show_args
        doc["jobs"] = [{"id": j.id, "task": str(j.task), "name": getattr(j.task, "name", None),
                        "args": j.args, "kwargs": j.kwargs, "start_time": j.start_time,
                        "run_time": max(0.0, now - j.start_time)}
                       for _, j in sorted(server.jobs.items())]
        return doc

    def failures_doc(self):
        return list(self.failures)


def _bucket(seconds):
    for i, bound in enumerate(DURATION_BUCKETS):
        if seconds <= bound:
            return i
    return len(DURATION_BUCKETS)
