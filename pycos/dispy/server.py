"""A dispycos server: one process that runs one client's jobs.

The node daemon (:mod:`pycos.dispy.node`) has ``cpus`` of these started
for a client by :mod:`pycos.dispy.spawner`, which forks them and calls
:func:`run` with their settings (or, where there is no fork, starts
``python -c "from pycos.dispy.server import main; main()"`` and writes the
settings as one JSON line on its standard input: the secret never appears
in ``ps``).  Standard input stays open: the server ends when it reads
end-of-file, so a node that dies -- even by ``kill -9`` -- never leaves
servers behind.

The server is a netpycos scheduler of its own (no discovery: it talks to its
node and to the client's scheduler only).  Its task ``dispycos_server``
takes the client's code (``setup``): the source of the client's components
is executed in this process's ``__main__`` namespace -- so objects the
client pickled as ``__main__.Something`` unpickle here -- and the
``server_setup`` generator, if any, runs before the first job.  Jobs arrive
as calls of the RPS ``dispycos_job``: each starts the client's generator
function as a task here, and the RPS machinery sends the task's end to the
caller (the client's ``yield rtask()``) and to its monitor (the scheduler).
CPU jobs run one at a time, in the order they came: the scheduler sends a
server its next short CPU job before the current one ends, so the server
does not idle for a round trip between them.
``quit`` -- or the end of standard input -- throws ``KeyboardInterrupt``
into the running jobs, once each (so they can save state: a handler may
yield), waits up to a grace period for them, ends the ones still running,
then ends the process, telling its peers it goes.

``("close", terminate, restart)`` (the client's ``close_server``, or a job's
``dispycos_close_server()``): the server tells the scheduler it closes (no
new job comes), lets its jobs finish (``terminate``: interrupts them), asks
the node to start it again if ``restart``, and ends.  A job's
``dispycos_close_node()`` asks the scheduler to close every server of this
node and release it.
"""

import collections
import json
import os
import pickle
import sys
import threading
import time

import pycos.netpycos as netpycos
from pycos import config
from pycos.core.log import logger
from pycos.core.support import Location
from pycos.dispy import packaging
from pycos.dispy.status import JobTimeout

__all__ = ["main"]

#: seconds running jobs get between KeyboardInterrupt and the end of the process
QUIT_GRACE = 5.0


class _Server(object):
    def __init__(self, cfg, sched):
        self.cfg = cfg
        self.sched = sched
        self.ns = sys.modules["__main__"].__dict__
        # 4.x job code uses these unimported
        for name, mod in (("pycos", netpycos), ("os", os), ("sys", sys), ("time", time)):
            self.ns.setdefault(name, mod)
        self.jobs = set()
        self.interrupted = set()         # jobs thrown KeyboardInterrupt (once each)
        self.cpu_job = None              # the CPU job that runs
        self.cpu_queue = collections.deque()   # CPU jobs waiting for it to end
        self.rps = None
        self.task = None
        self.quitting = False
        self.closing = False
        self.scheduler = None            # the client's scheduler task (from setup)
        self.node = None                 # the node's task
        self.eof = threading.Event()     # stdin (the node's pipe) closed
        self.ns["JobTimeout"] = JobTimeout
        self.ns["dispycos_close_server"] = self.close_server
        self.ns["dispycos_close_node"] = self.close_node

    # ---- in job code --------------------------------------------------------------

    def close_server(self, terminate=False, restart=False):
        """Close this server once its jobs are done (``terminate``: at once,
        interrupting them); ``restart``: the node starts a fresh one."""
        if self.task is not None:
            # (not restarted: None -- the client's restart_servers decides)
            self.task.send(("close", bool(terminate), True if restart else None))

    def close_node(self, terminate=False):
        """Close every server of this node for the client, and release it."""
        if self.scheduler is not None and self.node is not None:
            self.scheduler.send(("close_node", self.node, bool(terminate)))

    # ---- the jobs ----------------------------------------------------------------

    def job(self, name, code, args, kwargs, cpu=False, task=None):
        """The RPS method: run the client's generator ``name`` in this task;
        a CPU job (``cpu``) first waits for the CPU slot (one CPU job runs
        at a time: the scheduler may send the next one early)."""
        fn = self.ns.get(name)
        if fn is None and code:
            packaging.load(code, self.ns)          # a job sent with its source
            fn = self.ns.get(name)
        if fn is None:
            raise NameError("dispycos job %r: no such function in the client's code" % (name,))
        self.jobs.add(task)
        try:
            if cpu:
                yield from self._cpu_take(task)
            kwargs = dict(kwargs or {})
            kwargs["task"] = task
            gen = fn(*args, **kwargs)
            if not hasattr(gen, "send"):
                return gen                         # a plain function: its value
            return (yield gen)
        finally:
            self.jobs.discard(task)
            self.interrupted.discard(task)
            if cpu:
                self._cpu_give(task)

    def _cpu_take(self, task):
        """(yield from) The CPU slot for job ``task``, in the order jobs came."""
        if self.cpu_job is None:
            self.cpu_job = task
            return
        self.cpu_queue.append(task)
        while self.cpu_job is not task:
            yield task.suspend()

    def _cpu_give(self, task):
        if self.cpu_job is task:
            self.cpu_job = self.cpu_queue.popleft() if self.cpu_queue else None
            if self.cpu_job is not None:
                self.cpu_job.resume()
        elif task in self.cpu_queue:               # ended (interrupted) while it waited
            self.cpu_queue.remove(task)

    # ---- the control task ---------------------------------------------------------

    def control(self, task=None):
        self.task = task
        if self.eof.is_set():          # the node let go of us while we started
            return
        cfg = self.cfg
        task.register("dispycos_server")
        node_loc = Location(cfg["node_addr"], cfg["node_port"])
        node = yield netpycos.Task.locate("dispycos_node", node_loc, timeout=config.MsgTimeout)
        if node is None:
            logger.warning("dispycos server %s: node at %s not found", cfg["index"], node_loc)
            return
        self.node = node
        node.send(("server_up", cfg["index"], task, os.getpid()))
        while True:
            msg = yield task.receive()
            if not isinstance(msg, tuple) or not msg:
                continue
            kind = msg[0]
            if kind == "setup":
                _, code, setup, setup_args, reply = msg
                self.scheduler = reply
                ok = yield self._setup(code, setup, setup_args)
                if ok:
                    self.rps = netpycos.RPS(self.job, name="dispycos_job")
                    self.rps._task_name = _job_name
                    self.rps.register()
                    reply.send(("server_ready", task, self.rps))
                else:
                    reply.send(("server_failed", task))
            elif kind == "close" and not self.closing:
                self.closing = True
                if self.scheduler is not None:
                    self.scheduler.send(("server_closing", task))
                terminate, restart = msg[1], msg[2]
                # the node starts it again, or not (None: as the client's
                # restart_servers says)
                node.send(("server_closing", cfg.get("cid"), cfg["index"], restart))
                if terminate:
                    self._interrupt_jobs()
                waiter = netpycos.Task(_wait_all, list(self.jobs))
                while waiter.is_alive() and not self.eof.is_set():
                    yield waiter.finish(timeout=0.5)   # (or the node lets go of us)
                # jobs still running (the node let go first) get the grace
                # any quit gives to finish what their handler does
                yield self._quit()
                return
            elif kind == "quit":
                # (("quit", terminate): the grace is the same either way --
                # a job interrupted at once still gets to run its handler)
                yield self._quit()
                return
            elif kind == "jobs":           # (the node's live line asks)
                msg[1].send(("server_jobs", task, len(self.jobs)))

    def _setup(self, code, setup, setup_args):
        try:
            packaging.load(code, self.ns)
        except Exception as e:
            logger.warning("dispycos server: the client's code does not load: %s: %s",
                           type(e).__name__, e)
            return False
        if not setup:
            return True
        fn = self.ns.get(setup)
        if fn is None:
            logger.warning("dispycos server: no server_setup %r in the client's code", setup)
            return False
        try:
            # (pickled apart: they may be of the client's classes, loaded just now)
            args = pickle.loads(setup_args) if isinstance(setup_args, bytes) else setup_args
        except Exception as e:
            logger.warning("dispycos server: server_setup's arguments do not load: %s: %s",
                           type(e).__name__, e)
            return False
        t = netpycos.Task(fn, *(args or ()))
        r = yield t.finish()
        if r not in (0, None):
            logger.warning("dispycos server: server_setup returned %r", r)
            return False
        return True

    def _interrupt_jobs(self):
        """KeyboardInterrupt into every running job, once: a second one
        (close with terminate, then the node letting go) would land in the
        job's caller after its handler returned, losing the state it saved."""
        for t in list(self.jobs - self.interrupted):
            self.interrupted.add(t)
            t.throw(KeyboardInterrupt)

    def _quit(self):
        self.quitting = True
        if self.scheduler is not None and not self.closing:
            # (before the job service closes: no job is sent here now)
            self.closing = True
            self.scheduler.send(("server_closing", self.task))
        if self.rps is not None:
            self.rps.close()
        jobs = list(self.jobs)
        self._interrupt_jobs()
        if jobs:
            waiter = netpycos.Task(_wait_all, jobs)
            yield waiter.finish(timeout=QUIT_GRACE)
        for t in list(self.jobs):
            t.terminate()


def _job_name(name, *args, **kwargs):
    """A job task's name: the client's function's, as in 4.x."""
    return name if isinstance(name, str) and name.isidentifier() else "job"


def _wait_all(jobs, task=None):
    for t in jobs:
        yield t.finish()


def _lifeline(server):
    """End-of-file on stdin: the node is gone, or releases its client; the
    control task quits (jobs get KeyboardInterrupt) and main() ends the
    process."""
    # os.read, not sys.stdin: a thread blocked in a buffered read holds the
    # buffer's lock, which the interpreter's exit then cannot take
    try:
        while os.read(0, 4096):
            pass
    except OSError:
        pass
    server.eof.set()
    task = server.task
    if task is not None:
        task.send(("quit", False))


def main():
    """Entry point of a server process started afresh (see the module
    docstring): its settings are the first line of standard input."""
    line = b""
    while not line.endswith(b"\n"):
        chunk = os.read(0, 1)            # byte by byte: nothing after the line is taken
        if not chunk:
            return
        line += chunk
    run(json.loads(line))


def run(cfg):
    """Be the server described by ``cfg`` until told to end."""
    for k, v in (cfg.get("config") or {}).items():
        setattr(config, k, v)
    # its own directory (its dest_path: files sent to it land there) in the
    # client's, both on sys.path, as in 4.x (see pycos.dispy.spawner)
    os.makedirs(cfg["dir"], exist_ok=True)
    os.chdir(cfg["dir"])
    for d in (cfg.get("client_dir"), cfg["dir"]):
        if d and d not in sys.path:
            sys.path.insert(0, d)
    sched = netpycos.Pycos(name=cfg["name"], host=cfg["host"], tcp_port=cfg.get("port", 0),
                           udp_port=0, discover_peers=False, secret=cfg["secret"],
                           dest_path=cfg["dir"], insecure=cfg.get("insecure", False))
    server = _Server(cfg, sched)
    try:
        ctl = netpycos.Task(server.control)
    except RuntimeError:
        return
    threading.Thread(target=_lifeline, args=(server,), name="dispycos-lifeline",
                     daemon=True).start()
    ctl.value()
    # here, not in another thread, so the process ends only after the peers
    # got what was queued and a goodbye (they learn at once that we are gone)
    sched.terminate()
