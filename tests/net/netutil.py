"""Helpers for the netpycos tests: peer processes and their output.

``Proc`` runs a peer program (Python source, which usually starts with
``from peerlib import *``) in a real process, collects its output lines on a
reader thread, and waits for lines by pattern with a deadline -- never by
sleeping.  ``stop()`` closes the program's stdin (``peerlib.serve`` returns),
waits for it and fails loudly if it does not end; ``kill()`` is kill -9.
"""
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


class Proc(object):
    def __init__(self, code, secret, name="peer", python=None, env=None, args=(), host=None):
        e = dict(os.environ)
        e["PYTHONPATH"] = os.pathsep.join([HERE, ROOT] + [p for p in [e.get("PYTHONPATH")] if p])
        e["PYCOS_TEST_SECRET"] = secret
        e["PYCOS_TEST_NAME"] = name
        e.update(env or {})
        self.name = name
        self.lines = []
        self._q = queue.Queue()
        argv = [python or sys.executable, "-u", "-c", code] + list(args)
        kw = dict(stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                  env=e, cwd=ROOT)
        # host: a netns.Host -- the program runs inside that host's network
        # namespace (the cluster also kills and reaps it when it is closed)
        self.proc = host.popen(argv, **kw) if host is not None else subprocess.Popen(argv, **kw)
        self.host = host
        self._reader = threading.Thread(target=self._read, name="proc-reader", daemon=True)
        self._reader.start()
        self.location = None

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            self.lines.append(line)
            self._q.put(line)
        self._q.put(None)

    def expect(self, pattern, timeout=15):
        """The first new output line matching ``pattern`` (a regex): its
        match object.  Fails with the output so far after ``timeout``."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("%s: no line matching %r within %ss; output:\n%s"
                                     % (self.name, pattern, timeout, self.output()))
            try:
                line = self._q.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                self._q.put(None)
                raise AssertionError("%s ended (rc=%s) before a line matching %r; output:\n%s"
                                     % (self.name, self.proc.wait(), pattern, self.output()))
            m = rx.search(line)
            if m:
                return m

    def ready(self, timeout=20):
        """Wait for ``READY addr port``; returns the peer's Location."""
        import pycos
        m = self.expect(r"^READY (\S+) (\d+)$", timeout)
        self.location = pycos.Location(m.group(1), int(m.group(2)))
        return self.location

    def send_line(self, text):
        self.proc.stdin.write((text + "\n").encode())
        self.proc.stdin.flush()

    def output(self):
        return "\n".join(self.lines)

    def stop(self, timeout=15):
        """Close stdin, wait for a clean exit; returns the exit code."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self._reader.join(5)
                raise AssertionError("%s did not exit within %ss after stdin closed; output:\n%s"
                                     % (self.name, timeout, self.output()))
        else:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        self._reader.join(5)
        self.proc.stdout.close()
        return self.proc.returncode

    def kill(self):
        """kill -9, and reap."""
        self.killed = True
        if self.proc.poll() is None:
            self.proc.kill()            # (SIGKILL; Windows: TerminateProcess)
        self.proc.wait()
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        self._reader.join(5)
        self.proc.stdout.close()


def run(gen_fn, *args, timeout=20, **kwargs):
    """Run a task on the test's scheduler and return its value; a task that
    raised fails the test with its traceback."""
    import pycos
    task = pycos.Task(gen_fn, *args, **kwargs)
    value = task.value(timeout)
    assert not task.is_alive(), "task %s did not finish within %ss" % (task, timeout)
    if isinstance(value, pycos.MonitorStatus) and value.type is not StopIteration:
        raise AssertionError("task %s failed:\n%s" % (task, value.value))
    return value


def open_fds():
    """This process's open descriptors: {fd: what it points at}."""
    fds = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            fds[int(name)] = os.readlink("/proc/self/fd/" + name)
        except OSError:
            pass
    return fds


def self_signed_cert(directory, name):
    """A self-signed certificate for 127.0.0.1 made by openssl:
    ``directory/name.pem`` and ``directory/name.key`` (the test skips
    where there is no openssl command: Windows)."""
    if shutil.which("openssl") is None:
        import pytest
        pytest.skip("no openssl command to make a certificate (Windows has none)")
    pem, key = os.path.join(str(directory), name + ".pem"), os.path.join(str(directory),
                                                                       name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", pem],
                   check=True, timeout=60, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return pem, key
