"""The node daemon's work: serve one client at a time with server processes.

:class:`NodeDaemon` is what ``dispycosnode`` runs (the program's options are
parsed in :mod:`pycos.dispy.nodeconf`).  It is a netpycos scheduler whose
task ``dispycos_node`` answers a client's scheduler:

``("info", reply)``
    the node's :class:`DispycosNodeInfo` (name, address, CPUs, platform,
    availability) as ``("node_info", node, info)``;
``("claim", client_id, scheduler, settings)``
    take the node for that client -- its directory becomes the node's
    ``dest_path``, pulses start -- and answer ``("node_claimed", node,
    pulse_interval)``, or ``("node_busy", node)`` while another client has
    the node (as 4.x, a scheduler claims a node before it reports it
    NodeDiscovered, so what a client sends the node then is its own);
``("reserve", client_id, cpus, scheduler, settings)``
    start ``cpus`` server processes for that client (claiming the node
    first if it has not), or answer ``("node_busy", node)`` while another
    client has the node; ``settings``: the client's ``pulse_interval``,
    ``zombie_period``, ``restart_servers`` and ``node_setup`` (code, name,
    pickled arguments);
``("release", client_id, reply)``
    stop that client's servers (a grace period for their jobs, then
    ``kill``) and remove its directory; ``("node_released", node)`` to
    ``reply`` (also when that client was not here: it is not, now);
``("pulse_ack",)``
    the scheduler's answer to a pulse.

A scheduler answered ``node_busy`` is sent ``("node_free", node)`` when the
node releases its client (it may then ask again).

While it serves a client the node sends its scheduler ``("pulse", node,
avail_info)`` every pulse interval (the client's, within the node's
``--min/max_pulse_interval``); a scheduler not heard from for the zombie
period (the client's, or else the node's ``--zombie_period``) plus one
interval is taken for dead and its client released
(:mod:`pycos.dispy.liveness`).

Directories, as in 4.x: the client's files are sent (before ``reserve``)
to its own directory ``<dest_path>/<client_id>``, which is the node's
``dest_path`` while it serves that client (files sent to the node then land
there too); ``node_setup`` runs in it, and server ``n`` (1, 2, ...) in its
subdirectory ``dispycos_server_<n>``, which is that server's ``dest_path``
-- so ``../name`` from a job is one of the client's files.  A server's
directory goes when the server ends, the client's when it is released.

The servers of a client are the children of one process per client,
:mod:`pycos.dispy.spawner` (it runs ``node_setup`` first, then forks them);
it reports here when ``node_setup`` is done (then the node answers
``("node_reserved", node, cpus, pulse_interval)``, or ``("node_failed",
node, why)``) and
when a server ends.  A server reports ``("server_up", index, task, pid)``
here once it runs; the node passes it on to the scheduler, which then talks
to the server directly.  When a server process ends (crash, ``kill -9``)
the node tells the scheduler at once (``("server_exit", node, server)``),
and starts it again if the server said so as it closed (``("server_closing",
client_id, index, restart)``: True, False, or None -- as the client's
``restart_servers`` says).
The spawner holds a pipe from the node open, and each server one from the
spawner: if the node dies, they all end.  If the scheduler goes offline the
node releases its client by itself, so a client that dies frees the node
(RELIABILITY.md E5).
"""

import base64
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time

import pycos.netpycos as netpycos
from pycos import config
from pycos.core.log import logger
from pycos.core.scheduler import Scheduler
from pycos.dispy.liveness import Watch
from pycos.dispy.status import DispycosNodeInfo

__all__ = ["NodeDaemon"]

#: seconds servers get to end after ``quit`` before they are killed
STOP_GRACE = 5.0

#: with ``restart_servers``, a server that failed sooner than this after its
#: start is not started again
RESTART_MIN_RUN = 1.0

#: schedulers told the node is busy, to tell when it is free (at most)
MAX_ASKED = 64

#: each server's directory in its client's (4.x's names: numbered from 1)
SERVER_DIR = "dispycos_server_%d"


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
        self.cpus = 0
        self.spawner = None          # the Popen of the servers' parent (pycos.dispy.spawner)
        self.ready = False           # node_setup done, servers started
        self.servers = {}            # index -> the server's task (once it is up)
        self.restart = {}            # index -> start it again when it ends (None: maybe)
        self.restart_servers = False
        self.started = {}            # index -> when it was last started (monotonic)
        self.watch = None            # liveness.Watch over the scheduler
        self.pulser = None           # the task sending pulses
        self.pulse = None            # its interval (the client's, within the node's limits)


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
        self.asked = {}              # client id -> scheduler told "node_busy"
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
                        and msg.about(c.scheduler)):
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
            elif kind == "claim":
                _, cid, scheduler = msg[:3]
                settings = msg[3] if len(msg) > 3 and isinstance(msg[3], dict) else {}
                if self._busy(cid, scheduler):
                    continue
                c = self.client or self._claim(cid, scheduler, settings)
                c.watch.heard("scheduler")
                scheduler.send(("node_claimed", task, c.pulse))
            elif kind == "reserve":
                _, cid, cpus, scheduler = msg[:4]
                settings = msg[4] if len(msg) > 4 and isinstance(msg[4], dict) else {}
                if self._busy(cid, scheduler):
                    continue
                c = self.client or self._claim(cid, scheduler, settings)
                if c.spawner is None:
                    if not self._start_servers(c, min(max(int(cpus), 1), self.cpus), settings):
                        scheduler.send(("node_failed", task, "servers could not start"))
                        continue
                self.client.watch.heard("scheduler")
                if self.client.ready:
                    scheduler.send(("node_reserved", task, self.client.cpus,
                                    self.client.pulse))
            elif kind == "spawner":
                yield self._spawner_said(msg[1], msg[2])
                if self._finished():
                    break
            elif kind == "server_closing":
                c = self.client
                if c is not None and c.cid == msg[1]:
                    c.restart[msg[2]] = msg[3]
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
                if c is not None and 0 <= index < c.cpus and index not in c.servers:
                    c.servers[index] = server
                    c.scheduler.send(("server_up", task, index, server))
            elif kind == "spawner_exit":
                c = self.client
                if c is not None and c.cid == msg[1]:
                    # the servers' parent is gone (killed?): so are they
                    logger.warning("dispycos node: the servers of client %s ended (status %s)",
                                   c.cid, msg[2])
                    for index in list(c.servers):
                        c.scheduler.send(("server_exit", task, c.servers.pop(index)))
                    yield self._release(c)
                    if self._finished():
                        break
            elif kind == "release":
                c = self.client
                if c is not None and c.cid == msg[1]:
                    yield self._release(c)
                elif isinstance(msg[1], str):
                    # files sent for a client that never reserved the node
                    # (its scheduler gave up on it half way)
                    shutil.rmtree(os.path.join(self.dest_path, _safe(msg[1])),
                                  ignore_errors=True)
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

    def _busy(self, cid, scheduler):
        """Whether another client than ``cid`` has the node (``scheduler`` is
        then told so, and told again when the node is free)."""
        if self.client is None or self.client.cid == cid:
            return False
        scheduler.send(("node_busy", self.task))
        if len(self.asked) < MAX_ASKED:
            self.asked[cid] = scheduler
        return True

    def _claim(self, cid, scheduler, settings):
        """Take the node for client ``cid``: its directory, the pulses to its
        scheduler and the watch over it (no servers yet)."""
        path = os.path.join(self.dest_path, _safe(cid))
        os.makedirs(path, exist_ok=True)
        c = self.client = _Client(cid, scheduler, path)
        self.sched.dest_path = path          # (files sent to the node now are the client's)
        pulse = settings.get("pulse_interval") or self.min_pulse
        pulse = min(max(pulse, self.min_pulse), self.max_pulse)
        zombie = settings.get("zombie_period") or self.zombie_period
        c.watch = Watch(zombie, pulse,
                        lambda key, silent: self.task.send(("zombie", cid, silent)))
        c.pulser = netpycos.Task(self._pulse, c, pulse)
        c.pulse = pulse
        logger.info("dispycos node: claimed by client %s", cid)
        return c

    def _start_servers(self, c, cpus, settings):
        """Start ``cpus`` servers for client ``c`` (who has the node)."""
        cid, path = c.cid, c.path
        c.cpus = cpus
        c.restart_servers = bool(settings.get("restart_servers"))
        loc = self.sched.location
        servers = []
        for i in range(cpus):
            port = self.server_ports[i] if i < len(self.server_ports) else 0
            servers.append({"index": i, "name": "%s-%d" % (self.sched.name, i), "cid": cid,
                            "host": loc.addr, "port": port, "node_addr": loc.addr,
                            "node_port": loc.port, "secret": self._secret or "",
                            "dir": os.path.join(path, SERVER_DIR % (i + 1)),
                            "client_dir": path,
                            "insecure": self.insecure, "config": self.server_config})
        r, w = os.pipe()
        setup = settings.get("node_setup")
        if setup:                        # (its arguments: pickled bytes, for JSON in base64)
            setup = dict(setup, args=base64.b64encode(setup.get("args") or b"").decode())
        cfg = {"dir": path, "servers": servers, "report_fd": w, "node_setup": setup}
        try:
            proc = subprocess.Popen(
                [sys.executable, "-c", "from pycos.dispy.spawner import main; main()"],
                stdin=subprocess.PIPE, cwd=path, pass_fds=(w,))
        except OSError as e:             # (out of processes, memory...)
            logger.warning("dispycos node: servers for client %s not started: %s", cid, e)
            os.close(r)
            os.close(w)
            self.task.send(("release", cid, None))
            return False
        os.close(w)
        c.spawner = proc
        try:
            proc.stdin.write((json.dumps(cfg) + "\n").encode())
            proc.stdin.flush()
        except OSError:                  # it died at once: its watcher reports it
            pass
        now = time.monotonic()
        c.started = {i: now for i in range(cpus)}
        # its reports (setup done, a server's end: news for the scheduler at
        # once -- a dead process's connection may take a reconnect period
        # to be given up), and its own end
        threading.Thread(target=self._reports, args=(cid, r, proc), daemon=True,
                         name="dispycos-spawner").start()
        logger.info("dispycos node: %d servers for client %s", cpus, cid)
        return True

    def _reports(self, cid, fd, proc):
        buf = b""
        while True:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                chunk = b""
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                self.task.send(("spawner", cid, line.decode("utf-8", "replace")))
        os.close(fd)
        proc.wait()
        self.task.send(("spawner_exit", cid, proc.returncode))

    def _spawner_said(self, cid, line, task=None):
        """[y] A report of client ``cid``'s servers' parent."""
        c = self.client
        if c is None or c.cid != cid:
            return
        words = line.split(None, 2)
        if words[:2] == ["setup", "ok"]:
            c.ready = True
            c.scheduler.send(("node_reserved", self.task, c.cpus, c.pulse))
        elif words[:2] == ["setup", "failed"]:
            why = words[2] if len(words) > 2 else ""
            logger.warning("dispycos node: node_setup of client %s failed: %s", cid, why)
            c.scheduler.send(("node_failed", self.task, "node_setup failed: " + why))
            yield self._release(c)
        elif words[0] == "exit" and len(words) == 3:
            index, rc = int(words[1]), words[2]
            logger.info("dispycos node: server %d of client %s ended (status %s)",
                        index, cid, rc)
            server = c.servers.pop(index, None)
            if server is not None:
                c.scheduler.send(("server_exit", self.task, server))
            again = c.restart.pop(index, None)
            if again is None:
                # restart_servers: a server that closed, or crashed after a
                # while; not one that keeps dying at once
                again = c.restart_servers and (
                    rc == "0" or time.monotonic() - c.started.get(index, 0) >= RESTART_MIN_RUN)
            if again and c.spawner is not None:
                try:
                    c.spawner.stdin.write(("start %d\n" % index).encode())
                    c.spawner.stdin.flush()
                    c.started[index] = time.monotonic()
                except (OSError, ValueError):
                    pass

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
        proc = c.spawner
        if proc is not None:
            try:
                proc.stdin.close()           # the servers' lifeline: they end, then it
            except OSError:
                pass
            yield _reap([proc], STOP_GRACE + 2)
        if self.sched.dest_path == c.path:
            self.sched.dest_path = self.dest_path
        shutil.rmtree(c.path, ignore_errors=True)
        if self.client is c:             # (the node is free only now)
            self.client = None
            self.served += 1
            asked, self.asked = self.asked, {}
            if not self._finished():
                for cid, scheduler in asked.items():
                    if cid != c.cid:
                        scheduler.send(("node_free", self.task))
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
    """A client id as one directory name (never ``.`` or ``..``)."""
    name = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in str(cid))[:64]
    return name if name.strip(".") else "_" + name
