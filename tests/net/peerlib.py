"""Imported by the peer programs the netpycos tests start (real processes).

``start(**kw)`` makes the process's netpycos scheduler with the test's secret
(from the environment) and fast liveness settings, prints ``READY addr port``
for the parent, and returns it; ``serve()`` keeps the process up until the
parent closes its stdin (then terminates the scheduler).
"""
import os
import sys

import pycos.netpycos as pycos
from pycos import config

config.PeerPingInterval = float(os.environ.get("PYCOS_TEST_PING", "0.2"))
config.PeerTimeout = float(os.environ.get("PYCOS_TEST_PEER_TIMEOUT", "2"))
config.PeerReconnectPeriod = float(os.environ.get("PYCOS_TEST_RECONNECT", "2"))
config.HandshakeTimeout = float(os.environ.get("PYCOS_TEST_HANDSHAKE", "2"))


def start(**kw):
    kw.setdefault("udp_port", 0)
    kw.setdefault("host", "127.0.0.1")
    kw.setdefault("secret", os.environ.get("PYCOS_TEST_SECRET", ""))
    kw.setdefault("name", os.environ.get("PYCOS_TEST_NAME", "peer"))
    sched = pycos.Pycos(**kw)
    say("READY", sched.location.addr, sched.location.port)
    return sched


def say(*words):
    print(*words, flush=True)


def serve():
    """Wait until the parent closes stdin, then stop (tasks still waiting
    for messages are closed, as a server's are at shutdown)."""
    sys.stdin.read()
    pycos.Pycos().terminate()
