"""Imported by the peer programs the netpycos tests start (real processes).

``start(**kw)`` makes the process's netpycos scheduler with the test's secret
(from the environment) and fast liveness settings; ``serve()`` (or
``ready()``) prints ``READY addr port`` for the parent once the tasks made
so far have started, and ``serve()`` keeps the process up until the parent
closes its stdin (then terminates the scheduler).
"""
import os
import sys
import threading

import pycos.netpycos as pycos
from pycos import config

config.PeerPingInterval = float(os.environ.get("PYCOS_TEST_PING", "0.2"))
config.PeerTimeout = float(os.environ.get("PYCOS_TEST_PEER_TIMEOUT", "2"))
config.PeerReconnectPeriod = float(os.environ.get("PYCOS_TEST_RECONNECT", "2"))
config.HandshakeTimeout = float(os.environ.get("PYCOS_TEST_HANDSHAKE", "2"))


_sched = []
_said = []


def start(**kw):
    """The netpycos scheduler of this peer program (not announced yet: the
    program creates its tasks, then calls serve(), or ready() first)."""
    kw.setdefault("udp_port", 0)
    kw.setdefault("host", "127.0.0.1")
    kw.setdefault("secret", os.environ.get("PYCOS_TEST_SECRET", ""))
    kw.setdefault("name", os.environ.get("PYCOS_TEST_NAME", "peer"))
    sched = pycos.Pycos(**kw)
    _sched.append(sched)
    return sched


def ready():
    """Print ``READY addr port`` once every task made so far has taken its
    first step (so the names they register at once are registered)."""
    if _said:
        return
    def barrier(task=None):
        yield task.sleep(0.001)
    pycos.Task(barrier).value()
    loc = pycos.Pycos().location
    say("READY", loc.addr, loc.port)
    _said.append(True)


_out = threading.Lock()


def say(*words):
    """One whole output line (tasks of both schedulers print)."""
    line = " ".join(map(str, words)) + "\n"
    with _out:
        sys.stdout.write(line)
        sys.stdout.flush()


def serve():
    """Announce readiness, wait until the parent closes stdin, then stop
    (tasks still waiting for messages are closed, as a server's are at
    shutdown)."""
    ready()
    sys.stdin.read()
    pycos.Pycos().terminate()
