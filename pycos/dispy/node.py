"""The node daemon's work: serve one client at a time with server processes.

:class:`NodeDaemon` is what ``dispycosnode`` runs (the program's options are
parsed in :mod:`pycos.dispy.nodeconf`).  It is a netpycos scheduler whose
task ``dispycos_node`` answers a client's scheduler:

``("info", reply)``
    the node's :class:`DispycosNodeInfo` (name, address, CPUs, platform,
    availability) as ``("node_info", node, info)``;
``("reserve", client_id, cpus, scheduler, settings)``
    start ``cpus`` server processes for that client (in the client's own
    directory under ``dest_path``, where its files were sent), or answer
    ``("node_busy", node)`` while another client has the node;
    ``settings``: the client's ``pulse_interval`` and ``zombie_period``;
``("release", client_id, reply)``
    stop that client's servers (a grace period for their jobs, then
    ``kill``) and remove its directory; ``("node_released", node)`` to
    ``reply`` (also when that client was not here: it is not, now);
``("pulse_ack",)``
    the scheduler's answer to a pulse.

While it serves a client the node sends its scheduler ``("pulse", node,
avail_info)`` every pulse interval (the client's, within the node's
``--min/max_pulse_interval``); a scheduler not heard from for the zombie
period (the client's, or else the node's ``--zombie_period``) plus one
interval is taken for dead and its client released
(:mod:`pycos.dispy.liveness`).

A server reports ``("server_up", index, task, pid)`` here once it runs; the
node passes it on to the scheduler, which then talks to the server
directly.  When a server process ends (crash, ``kill -9``) the node tells
the scheduler at once (``("server_exit", node, server)``).  Servers hold a pipe to the node open: if the node dies, they
end.  If the scheduler goes offline the node releases its client by itself,
so a client that dies frees the node (RELIABILITY.md E5).
"""

import json
import os
import platform
import shutil
import subprocess
import sys
import threading

import pycos.netpycos as netpycos
from pycos import config
from pycos.core.log import logger
from pycos.core.scheduler import Scheduler
from pycos.dispy.liveness import Watch
from pycos.dispy.status import DispycosNodeInfo

__all__ = ["NodeDaemon"]

#: seconds servers get to end after ``quit`` before they are killed
STOP_GRACE = 5.0


def _avail(location, path):
    try:
        from pycos.dispy.avail import avail_info
    except ImportError:
        return None
    try:
        return avail_info(location, path)
    except Exception:
        return None


class _Client(object):
    """The client a node serves: its scheduler, directory and servers."""

    def __init__(self, cid, scheduler, path):
        self.cid = cid
        self.scheduler = scheduler
        self.path = path
        self.procs = {}              # index -> Popen
        self.servers = {}            # index -> the server's task (once it is up)
        self.watch = None            # liveness.Watch over the scheduler
        self.pulser = None           # the task sending pulses


class NodeDaemon(object):
    """A node: ``cpus`` servers for one client at a time.

    ``sched`` is this process's netpycos scheduler (made by the caller with
    the node's address, ports, ``secret`` and ``dest_path``); ``server_ports``
    the TCP ports for the servers (0: any free one); ``serve``: how many
    clients to serve before the daemon ends (a negative number: forever);
    ``server_config``: netpycos settings (``pycos.config`` names) the
    servers start with.
    """

    def __init__(self, sched, cpus, dest_path, secret="", server_ports=(), serve=-1,
                 insecure=False, server_config=None, min_pulse_interval=None,
                 max_pulse_interval=None, zombie_period=0):
        if not isinstance(cpus, int) or cpus < 1:
            raise ValueError("cpus must be a positive int, not %r" % (cpus,))
        self.sched = sched
        self.cpus = cpus
        self.dest_path = os.path.abspath(dest_path)
        self.server_ports = list(server_ports)
        self.serve = serve
        self.insecure = insecure
        self.server_config = dict(server_config or {})
        self.min_pulse = min_pulse_interval or config.MinPulseInterval
        self.max_pulse = max_pulse_interval or config.MaxPulseInterval
        self.zombie_period = zombie_period or 0
        self.client = None
        self.served = 0
        self.done = threading.Event()      # set when the daemon's work is over
        self._secret = secret
        self.task = netpycos.Task(self._run)

    # ---- the node task -------------------------------------------------------------

    def _run(self, task=None):
        task.register("dispycos_node")
        self.sched.peer_status(task)
        while True:
            msg = yield task.receive()
            if isinstance(msg, netpycos.PeerStatus):
                c = self.client
                if (msg.status == netpycos.PeerStatus.Offline and c is not None
                        and c.scheduler.location == msg.location):
                    logger.info("dispycos node: client %s's scheduler is gone; releasing",
                                c.cid)
                    yield self._release(c)
                    if self._finished():
                        break
                continue
            if not isinstance(msg, tuple) or not msg:
                continue
            kind = msg[0]
            if kind == "info":
                msg[1].send(("node_info", task, self.info()))
            elif kind == "reserve":
                _, cid, cpus, scheduler = msg[:4]
                settings = msg[4] if len(msg) > 4 and isinstance(msg[4], dict) else {}
                if self.client is not None and self.client.cid != cid:
                    scheduler.send(("node_busy", task))
                    continue
                if self.client is None:
                    self._reserve(cid, min(max(int(cpus), 1), self.cpus), scheduler, settings)
                self.client.watch.heard("scheduler")
                scheduler.send(("node_reserved", task, len(self.client.procs)))
            elif kind == "pulse_ack":
                if self.client is not None:
                    self.client.watch.heard("scheduler")
            elif kind == "zombie":
                c = self.client
                if c is not None and c.cid == msg[1]:
                    logger.warning("dispycos node: client %s's scheduler silent for %.1fs; "
                                   "releasing", c.cid, msg[2])
                    yield self._release(c)
                    if self._finished():
                        break
            elif kind == "server_up":
                _, index, server, pid = msg
                c = self.client
                if c is not None and index in c.procs and c.procs[index].pid == pid:
                    c.servers[index] = server
                    c.scheduler.send(("server_up", task, index, server))
            elif kind == "server_exit":
                _, cid, index, rc = msg
                c = self.client
                if c is not None and c.cid == cid and index in c.servers:
                    logger.info("dispycos node: server %d of client %s ended (status %s)",
                                index, cid, rc)
                    c.scheduler.send(("server_exit", task, c.servers.pop(index)))
            elif kind == "release":
                c = self.client
                if c is not None and c.cid == msg[1]:
                    yield self._release(c)
                if len(msg) > 2 and msg[2] is not None:
                    msg[2].send(("node_released", task))
                if self._finished():
                    break
            elif kind == "quit":
                if self.client is not None:
                    yield self._release(self.client)
                break
        self.done.set()

    def _finished(self):
        return self.serve >= 0 and self.served >= self.serve

    def info(self):
        loc = self.sched.location
        return DispycosNodeInfo(self.sched.name, loc.addr, self.cpus, platform.platform(),
                                _avail(loc, self.dest_path))

    # ---- servers --------------------------------------------------------------------

    def _reserve(self, cid, cpus, scheduler, settings):
        path = os.path.join(self.dest_path, _safe(cid))
        os.makedirs(path, exist_ok=True)
        c = self.client = _Client(cid, scheduler, path)
        pulse = settings.get("pulse_interval") or self.min_pulse
        pulse = min(max(pulse, self.min_pulse), self.max_pulse)
        zombie = settings.get("zombie_period") or self.zombie_period
        c.watch = Watch(zombie, pulse,
                        lambda key, silent: self.task.send(("zombie", cid, silent)))
        c.pulser = netpycos.Task(self._pulse, c, pulse)
        loc = self.sched.location
        for i in range(cpus):
            port = self.server_ports[i] if i < len(self.server_ports) else 0
            cfg = {"index": i, "name": "%s-%d" % (self.sched.name, i), "host": loc.addr,
                   "port": port, "node_addr": loc.addr, "node_port": loc.port,
                   "secret": self._secret or "", "dir": path, "insecure": self.insecure,
                   "config": self.server_config}
            try:
                proc = subprocess.Popen(
                    [sys.executable, "-c", "from pycos.dispy.server import main; main()"],
                    stdin=subprocess.PIPE, cwd=path)
            except OSError as e:         # (out of processes, memory...): fewer servers
                logger.warning("dispycos node: server %d not started: %s", i, e)
                break
            try:
                proc.stdin.write((json.dumps(cfg) + "\n").encode())
                proc.stdin.flush()
            except OSError:              # it died at once: its watcher reports it
                pass
            c.procs[i] = proc
            # its end is news for the scheduler at once (a dead process's
            # connection may take a reconnect period to be given up)
            threading.Thread(target=self._watch, args=(cid, i, proc), daemon=True,
                             name="dispycos-server-%d" % i).start()
        logger.info("dispycos node: %d servers for client %s", cpus, cid)

    def _watch(self, cid, index, proc):
        proc.wait()
        self.task.send(("server_exit", cid, index, proc.returncode))

    def _pulse(self, c, interval, task=None):
        """Tell client ``c``'s scheduler, every ``interval`` seconds, that
        this node lives (with its availability)."""
        while self.client is c:
            c.scheduler.send(("pulse", self.task, _avail(self.sched.location, self.dest_path)))
            yield task.sleep(interval)

    def _release(self, c, task=None):
        """[y] Stop client ``c``'s servers and remove its directory."""
        if c.pulser is not None:
            c.pulser.terminate()
        if c.watch is not None:
            c.watch.stop()
        for proc in c.procs.values():
            try:
                proc.stdin.close()           # the server's lifeline: it ends
            except OSError:
                pass
        yield _reap(c.procs.values(), STOP_GRACE)
        shutil.rmtree(c.path, ignore_errors=True)
        if self.client is c:             # (the node is free only now)
            self.client = None
            self.served += 1
        logger.info("dispycos node: released client %s", c.cid)


def _reap(procs, grace):
    """[y] Wait up to ``grace`` seconds for ``procs`` to end; kill the rest."""
    task = Scheduler.cur_task()
    procs = list(procs)
    waited = 0.0
    step = 0.02
    while waited < grace and any(p.poll() is None for p in procs):
        yield task.sleep(step)               # (a child's end is not an event we get)
        waited += step
        step = min(step * 2, 0.2)
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


def _safe(cid):
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in str(cid))[:64]
