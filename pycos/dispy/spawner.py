"""The parent of one client's server processes on a node.

For each client it serves, the node daemon (:mod:`pycos.dispy.node`) starts
one process running :func:`main` and writes it one JSON line of settings on
standard input: the servers' settings, and the client's ``node_setup`` (its
code, name and arguments) if it has one.  It works in the client's
directory on the node (``dir``: where the client's files are; on
``sys.path`` and ``PATH``), and each server in its own subdirectory
``dispycos_server_<n>`` of it, as in 4.x -- so ``../name`` from a job is
one of the client's files.  This process then

1. runs ``node_setup`` -- once for the node, before any server starts -- in
   its ``__main__`` namespace, on a scheduler of its own that it ends
   afterwards (no thread is left when it forks);
2. starts the servers (:mod:`pycos.dispy.server`): on POSIX it *forks*
   them, so the globals ``node_setup`` made (data loaded once, say) are
   there in every server, copy-on-write; elsewhere it starts them afresh
   (they do not inherit ``node_setup``'s state -- said in docs/dispycos.md);
3. reports on the pipe whose descriptor the settings name (``report_fd``),
   one line each: ``setup ok`` / ``setup failed <why>``, ``exit <index>
   <status>`` when a server ends;
4. takes commands on standard input: ``start <index>`` starts that server
   again (``restart_server``).  End of input -- the node releases the
   client, or died -- ends the servers (each holds a pipe from this process
   as its own standard input: its lifeline) and then this process.

A server's own end (crash, ``kill -9``) is noticed with SIGCHLD, so the node
learns it at once; its directory is removed then (a server started again
begins with an empty one).
"""

import base64
import json
import os
import pickle
import select
import shutil
import signal
import subprocess
import sys
import time

__all__ = ["main"]

#: seconds servers get to end after their lifeline closes before they are killed
STOP_GRACE = 5.0

_FORK = hasattr(os, "fork")


class _Spawner(object):
    def __init__(self, cfg):
        self.cfg = cfg
        self.servers = {s["index"]: s for s in cfg["servers"]}
        self.report_fd = cfg["report_fd"]
        self.children = {}           # pid -> index
        self.lifelines = {}          # index -> write end of its lifeline (or a Popen)
        self.wake = os.pipe()        # SIGCHLD's wakeup descriptor

    def report(self, line):
        try:
            os.write(self.report_fd, (line + "\n").encode())
        except OSError:
            pass

    # ---- node_setup ---------------------------------------------------------------

    def node_setup(self):
        setup = self.cfg.get("node_setup")
        if not setup:
            return True
        from pycos.core.scheduler import Pycos
        from pycos.core.task import Task
        from pycos.dispy import packaging
        ns = sys.modules["__main__"].__dict__
        try:
            packaging.load(setup["code"], ns)
            fn = ns.get(setup["name"])
            if fn is None:
                raise NameError("no node_setup %r in the client's code" % (setup["name"],))
            args = pickle.loads(base64.b64decode(setup["args"])) if setup.get("args") else ()
            sched = Pycos()
            try:
                r = Task(fn, *args).value()
            finally:
                sched.terminate()        # (its thread ends: nothing left running at fork)
        except Exception as e:
            self.report("setup failed %s: %s" % (type(e).__name__, str(e).replace("\n", " ")))
            return False
        if r not in (0, None):
            self.report("setup failed node_setup returned %r" % (r,))
            return False
        return True

    # ---- servers ------------------------------------------------------------------

    def start(self, index):
        scfg = self.servers[index]
        if _FORK:
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:                 # the server
                try:
                    os.close(w)
                    os.dup2(r, 0)
                    os.close(r)
                    for fd in [self.report_fd] + list(self.wake) + [fd for fd in self.lifelines.values()
                                                  if isinstance(fd, int)]:
                        try:
                            os.close(fd)
                        except OSError:
                            pass
                    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                    signal.signal(signal.SIGINT, signal.default_int_handler)
                    signal.set_wakeup_fd(-1)
                    from pycos.dispy import server
                    server.run(scfg)
                    code = 0
                except BaseException:
                    import traceback
                    traceback.print_exc()
                    code = 1
                finally:
                    sys.stdout.flush()
                    sys.stderr.flush()
                os._exit(code)
            os.close(r)
            self.children[pid] = index
            self.lifelines[index] = w
        else:
            proc = subprocess.Popen([sys.executable, "-c",
                                     "from pycos.dispy.server import main; main()"],
                                    stdin=subprocess.PIPE)
            proc.stdin.write((json.dumps(scfg) + "\n").encode())
            proc.stdin.flush()
            self.children[proc.pid] = index
            self.lifelines[index] = proc

    def reaped(self, pid, status):
        index = self.children.pop(pid, None)
        if index is None:
            return
        lifeline = self.lifelines.pop(index, None)
        if isinstance(lifeline, int):
            os.close(lifeline)
        # its directory goes with it (a server started again gets a fresh one)
        shutil.rmtree(self.servers[index]["dir"], ignore_errors=True)
        self.report("exit %d %d" % (index, status))

    def reap(self):
        if _FORK:
            while self.children:
                try:
                    pid, status = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    return
                if pid == 0:
                    return
                self.reaped(pid, os.waitstatus_to_exitcode(status)
                            if hasattr(os, "waitstatus_to_exitcode") else status)
        else:
            for index, proc in list(self.lifelines.items()):
                if proc.poll() is not None:
                    self.reaped(proc.pid, proc.returncode)

    def stop(self):
        """Close every lifeline; kill what has not ended after STOP_GRACE."""
        for index, lifeline in list(self.lifelines.items()):
            try:
                if isinstance(lifeline, int):
                    os.close(lifeline)
                else:
                    lifeline.stdin.close()
            except OSError:
                pass
            self.lifelines[index] = None
        end = time.monotonic() + STOP_GRACE
        step = 0.01
        while self.children and time.monotonic() < end:
            time.sleep(step)                 # (SIGCHLD may be missed between checks)
            step = min(step * 2, 0.1)
            self.reap()
        for pid in list(self.children):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        while self.children:
            self.reap()
            time.sleep(0.01)

    # ---- the loop -----------------------------------------------------------------

    def run(self):
        wake_r, wake_w = self.wake
        os.set_blocking(wake_w, False)
        signal.signal(signal.SIGINT, signal.SIG_IGN)     # (the node decides when we end)
        if _FORK:
            signal.signal(signal.SIGCHLD, lambda signum, frame: None)
            signal.set_wakeup_fd(wake_w)
        if not self.node_setup():
            return 1
        self.report("setup ok")
        for index in sorted(self.servers):
            self.start(index)
        buf = b""
        while True:
            try:
                ready, _, _ = select.select([0, wake_r], [], [], None if _FORK else 0.2)
            except InterruptedError:
                ready = []
            if wake_r in ready:
                os.read(wake_r, 4096)
            self.reap()
            if 0 in ready:
                chunk = os.read(0, 4096)
                if not chunk:
                    break
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    words = line.decode("utf-8", "replace").split()
                    if (len(words) == 2 and words[0] == "start" and words[1].isdigit()
                            and int(words[1]) in self.servers
                            and int(words[1]) not in self.children.values()):
                        self.start(int(words[1]))
        self.stop()
        return 0


def main():
    """Entry point (see the module docstring)."""
    line = b""
    while not line.endswith(b"\n"):
        chunk = os.read(0, 1)            # byte by byte: commands follow the line
        if not chunk:
            return
        line += chunk
    cfg = json.loads(line)
    # the client's directory, as 4.x: node_setup runs here, its files are
    # importable (the servers, forked, inherit sys.path) and its programs
    # found on PATH
    os.chdir(cfg["dir"])
    sys.path.insert(0, cfg["dir"])
    os.environ["PATH"] = cfg["dir"] + os.pathsep + os.environ.get("PATH", "")
    sys.exit(_Spawner(cfg).run())
