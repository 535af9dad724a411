"""The dispycos examples (examples/dispycos_*.py) run as a user runs them,
and the node daemon's live line.

Each example is run as a program in a session of its own, with a time
limit and TMPDIR pointing at the test's directory: it must exit 0, print
what it is about, leave no process of its session behind (its node daemon,
the servers' parent and the servers included) and no file in TMPDIR.

``dispycosnode`` keeps a live status line when its standard output is a
terminal (a pty here): it shows the client and what each server does, and
the answers to ``status`` go above it.  To a pipe it writes none of that.
"""
import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import threading
import time

import pytest

import pycos
from pycos.dispycos import Client, DispycosStatus, Scheduler

from clusterutil import _servers, _zombie

pytestmark = pytest.mark.timeout(90)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(ROOT, "examples")
CLEAR = "\x1b[K"


def _session(sid):
    """pids of the live (not zombie) processes of session ``sid``."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and not _zombie(int(d)):   # (field 6: the session)
            pids.append(int(d))
    return pids


def run_example(tmp_path, name, *args, timeout=60):
    """Run examples/``name`` with ``args``: (stdout, stderr), after checking
    that it exited 0 and left no process and no temporary file."""
    env = dict(os.environ, TMPDIR=str(tmp_path), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, os.path.join(EXAMPLES, name)] + list(args),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=ROOT, env=env, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        left = _session(proc.pid)
        if proc.poll() is None or left:
            for pid in left + [proc.pid]:
                try:
                    os.kill(pid, 9)
                except OSError:
                    pass
            proc.communicate()
    out, err = out.decode(), err.decode()
    assert proc.returncode == 0, "%s: exit status %s\n%s\n%s" % (name, proc.returncode, out, err)
    assert not left, "%s left processes behind: %r" % (name, left)
    assert os.listdir(tmp_path) == [], "%s left files: %r" % (name, os.listdir(tmp_path))
    assert "Traceback" not in out, out
    # the node's output came through a pipe: no live line in it
    assert "\r" not in out and "\x1b" not in out, out
    return out, err


def test_demo_with_progress(tmp_path):
    out, err = run_example(tmp_path, "dispycos_demo.py", "6", "100000")
    assert out.startswith("dispycos demo: 6 jobs, each estimating pi from 100000 random points\n")
    assert re.search(r"^started dispycosnode example-node: 2 servers, at 127\.0\.0\.1:\d+$",
                     out, re.M), out
    jobs = re.findall(r"^  job +(\d+): pi ~ (3\.\d+) \(server process \d+\)$", out, re.M)
    assert [int(i) for i, _ in jobs] == list(range(6)), out
    assert all(abs(float(pi) - 3.1416) < 0.05 for _, pi in jobs), out
    assert re.search(r"^mean of 6 estimates: 3\.\d+, from [12] server process", out, re.M), out
    # the progress line, forced on: plain lines on a non-terminal, ending
    # with the summary; the cluster's news above it
    assert "\r" not in err and "\x1b" not in err, err
    lines = err.splitlines()
    progress = [line for line in lines if line.startswith("dispycos: ")]
    assert progress[0].startswith("dispycos: 0/6 done, "), err
    assert re.match(r"dispycos: 6/6 done, 0 running, 0 failed \| \d+s, [\d.]+ jobs/s$",
                    progress[-1]), err
    # the rest: the status task's lines, the node's output, log messages
    assert all(re.match(r"dispycos: |  |\d{4}-\d\d-\d\d \d\d:\d\d:\d\d pycos", line)
               for line in lines), err
    assert "  node example-node (127.0.0.1): 2 servers" in lines, err
    assert "Traceback" not in err, err


def test_cpu_jobs_and_a_failure(tmp_path):
    out, _ = run_example(tmp_path, "dispycos_cpu.py")
    counts = re.findall(r"^  \[ *(\d+), *(\d+)\): +(\d+) primes \(server process \d+\)$",
                        out, re.M)
    assert len(counts) == 8, out
    assert re.search(r"^  \[100, 10\): failed -- MonitorStatus type ValueError: ValueError: "
                     r"count_primes: need 0 <= lo <= hi, not lo=100 hi=10$", out, re.M), out
    assert re.search(r"^148933 primes below 2000000, counted by [12] server processes; "
                     r"1 job failed$", out, re.M), out


def test_io_jobs_exchange_messages(tmp_path):
    out, _ = run_example(tmp_path, "dispycos_io.py")
    assert len(re.findall(r"^  item +\d+ \( *\d+ bytes\): [0-9a-f]{16}\.\.\. from \S+$",
                          out, re.M)) == 12, out
    assert len(re.findall(r"^  \S+: done, 4 items$", out, re.M)) == 3, out
    assert "WRONG" not in out
    assert "12 of 12 digests right, from 3 I/O jobs on 2 servers" in out, out


def test_node_setup_loads_once_per_node(tmp_path):
    out, _ = run_example(tmp_path, "dispycos_node_setup.py")
    rows = re.findall(r"^  1001 words: score \d+ \(right\), 1 unknown; table of 50000 loaded "
                      r"by process (\d+), job ran in (\d+)$", out, re.M)
    assert len(rows) == 6, out
    assert len({loader for loader, _ in rows}) == 1, out
    assert not {loader for loader, _ in rows} & {pid for _, pid in rows}, out
    assert re.search(r"^6 of 6 jobs right; the table was loaded 1 time\(s\)", out, re.M), out


def test_jobs_save_their_state_when_interrupted(tmp_path):
    out, _ = run_example(tmp_path, "dispycos_save_state.py")
    assert "every job reported 3 times; stopping them" in out, out
    states = re.findall(r"^  job (\d): interrupted; state: next term (\d+), (\d+) terms left, "
                        r"partial sum ([\d.]+)$", out, re.M)
    assert [j for j, _, _, _ in states] == ["0", "1"], out
    m = re.search(r"^2 of 2 jobs saved their state; the partial sums add up to ([\d.]+) ", out,
                  re.M)
    assert m and abs(float(m.group(1)) - 1.6449) < 1e-3, out


# ---- the node's live line --------------------------------------------------------------

def waiter(task=None):
    msg = yield task.receive()
    return msg


class _Pty(object):
    """The output of a process on a pty, read by a thread."""

    def __init__(self, columns=200):
        self.master, self.slave = pty.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
        self.data = ""
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._read, name="pty-reader")

    def start(self):
        os.close(self.slave)
        self.thread.start()

    def _read(self):
        while True:
            try:
                chunk = os.read(self.master, 4096)
            except OSError:                  # EIO: every writer closed the pty
                chunk = b""
            with self.cond:
                if not chunk:
                    self.data += "\0"        # (the end)
                    self.cond.notify_all()
                    return
                self.data += chunk.decode("utf-8", "replace")
                self.cond.notify_all()

    def wait_for(self, pattern, timeout=30, start=0):
        """The first match of ``pattern`` in the output from ``start`` on."""
        rx = re.compile(pattern)
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                m = rx.search(self.data, start)
                if m:
                    return m
                left = end - time.monotonic()
                assert left > 0 and not self.data.endswith("\0"), \
                    "no %r in the output:\n%r" % (pattern, self.data)
                self.cond.wait(left)

    def close(self):
        self.thread.join(30)
        os.close(self.master)


def _ready(want, event, task=None):
    """The status task: ``event`` set once ``want`` servers are initialized."""
    up = 0
    while True:
        msg = yield task.receive()
        if isinstance(msg, DispycosStatus):
            if msg.status == Scheduler.ServerInitialized:
                up += 1
                if up == want:
                    event.set()
            elif msg.status == Scheduler.ClientClosed:
                return


def test_node_live_line_on_a_tty_and_not_on_a_pipe(cluster, tmp_path):
    sched, start_node = cluster
    term = _Pty()
    dest = tmp_path / "ptynode"
    node = subprocess.Popen(
        [sys.executable, "-m", "pycos.dispycosnode", "-c", "2", "-i", "127.0.0.1", "-n",
         "ptynode", "-s", start_node.secret, "--node_ports", "0", "--dest_path", str(dest),
         "--peer", "127.0.0.1:%d" % sched.location.port],
        stdin=subprocess.PIPE, stdout=term.slave, cwd=ROOT)
    node.dest = dest
    term.start()
    piped = start_node(2, extra=("-n", "pipenode"))
    ready = pycos.Event()
    status = pycos.Task(_ready, 4, ready)
    client = Client([waiter], status_task=status)
    jobs = []

    def main(task=None):
        assert (yield client.schedule()) == 0
        assert (yield ready.wait(timeout=30)), "the servers did not start"
        for where in ("ptynode", "pipenode"):
            rtask = yield client.rtask_at(where, waiter)
            assert isinstance(rtask, pycos.Task), rtask
            jobs.append(rtask)
        go = yield task.receive()            # (from the test, once it saw the line)
        for rtask in jobs:
            rtask.send(go)
        results = []
        for rtask in jobs:
            results.append((yield rtask(timeout=60)))
        assert (yield client.close()) == 0
        return results
    try:
        run = pycos.Task(main)
        # on the pty: the line, rewritten in place, with the busy server
        m = term.wait_for(r"\rnode ptynode: client 127\.0\.0\.1:%d \| 2 servers: 1 busy, "
                          r"1 idle, 1 job \| 0 (busy\(1\) 1 idle|idle\(0\) 1 busy)\(\d\)"
                          % sched.location.port)
        # two redraws more: the piped node, as busy all along, would have drawn too
        m = term.wait_for(r"\rnode ptynode: ", start=m.end())
        m = term.wait_for(r"\rnode ptynode: ", start=m.end())
        # a command's answer goes above the line, which is drawn again below it
        node.stdin.write(b"status\n")
        node.stdin.flush()
        m = term.wait_for(r"\rdispycosnode ptynode at 127\.0\.0\.1:\d+: client [^\r]*"
                          + re.escape(CLEAR) + r"\r?\n\rnode ptynode: ", start=m.end())
        run.send("done")
        assert run.value(timeout=60) == ["done", "done"]
        # the node is released: the line says so
        m = term.wait_for(r"\rnode ptynode: no client \| 0 servers", start=m.end())
        node.stdin.close()                   # quit
        assert node.wait(30) == 0
        term.wait_for("\0", start=m.end())
        assert term.data.rstrip("\0").endswith("\r\n")   # the line ended before the exit
        # (after pycos's start banner, a log line: the node logs at INFO)
        first = [ln for ln in term.data.split("\r\n") if " pycos - " not in ln][0]
        assert first.startswith("dispycosnode ptynode: 2 servers, at 127.0.0.1:"), term.data
    finally:
        if node.poll() is None:
            node.kill()
            node.wait()
        node.stdin.close()
        term.close()
    left = _servers(node)
    assert not left, "servers left running: %r" % left
    # through a pipe: the same node, the same work, and none of it
    out = "\n".join(piped.lines)
    assert "\r" not in out and "\x1b" not in out, out
    assert not re.search(r"^node pipenode: ", out, re.M), out


def test_demo_with_the_web_ui(tmp_path):
    """``dispycos_demo.py --ui``: it prints the UI's address, the UI shows
    the jobs done, and the cluster stays up (the UI answering) until the
    user presses Enter; then everything ends as without it."""
    import http.client
    import json
    import queue
    env = dict(os.environ, TMPDIR=str(tmp_path), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, os.path.join(EXAMPLES, "dispycos_demo.py"),
                             "--ui=0", "4", "100000"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, cwd=ROOT, env=env,
                            start_new_session=True)
    lines = queue.Queue()
    seen = []

    def read():
        for raw in proc.stdout:
            lines.put(raw.decode("utf-8", "replace").rstrip("\n"))
        lines.put(None)
    reader = threading.Thread(target=read, name="demo-output")
    reader.start()

    def expect(pattern, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
            assert line is not None, "the demo ended early:\n" + "\n".join(seen)
            seen.append(line)
            m = re.search(pattern, line)
            if m:
                return m
    try:
        m = expect(r"^pycos\.httpd: open http://127\.0\.0\.1:(\d+)/\?token=(\S+)$")
        port, token = int(m.group(1)), m.group(2)
        expect(r"the cluster stays up for the web UI at http://127\.0\.0\.1:%d/" % port)
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/api/cluster", headers={"X-Pycos-Token": token})
        doc = json.loads(c.getresponse().read())
        c.close()
        assert doc["totals"]["done"] == 4 and doc["totals"]["servers"] == 2, doc
        assert proc.poll() is None                   # still up, waiting for Enter
        proc.stdin.write(b"\n")
        proc.stdin.flush()
        assert proc.wait(60) == 0, "\n".join(seen)
        reader.join(10)
        while not lines.empty():
            line = lines.get()
            if line is not None:
                seen.append(line)
        out = "\n".join(seen)
        assert "Traceback" not in out, out
        assert re.search(r"^mean of 4 estimates: 3\.\d+", out, re.M), out
    finally:
        left = _session(proc.pid)
        for pid in left + ([proc.pid] if proc.poll() is None else []):
            try:
                os.kill(pid, 9)
            except OSError:
                pass
        proc.wait()
        reader.join(10)
        proc.stdin.close()
        proc.stdout.close()
    assert not left, "the demo left processes behind: %r" % left
    assert os.listdir(tmp_path) == [], os.listdir(tmp_path)
