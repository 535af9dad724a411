"""Fixtures for the netpycos tests.

``net``: this process's netpycos scheduler (loopback, no discovery, the
test's own random secret, fast liveness settings), terminated after the test.
``spawn(code, name=...)``: a peer program in a real process (see netutil.Proc),
stopped -- and required to exit cleanly -- after the test.  Every test then
checks that nothing is left: threads, descriptors, child processes.
"""
import os
import secrets
import threading

import pytest

import pycos.netpycos as netpycos
from pycos import config
from pycos.core.scheduler import Pycos as CorePycos

from netutil import Proc, open_fds

_CONFIG = ("PeerPingInterval", "PeerTimeout", "PeerReconnectPeriod", "HandshakeTimeout",
           "MsgTimeout", "MaxFrameSize", "MaxHandshakes", "PeerHighWater", "PeerMaxQueue")


@pytest.fixture(autouse=True)
def net_clean():
    old = CorePycos.existing()
    if old is not None:
        old.terminate()
    saved = {k: getattr(config, k) for k in _CONFIG}
    config.PeerPingInterval = 0.2
    config.PeerTimeout = 2.0
    config.PeerReconnectPeriod = 2.0
    config.HandshakeTimeout = 2.0
    threads = set(threading.enumerate())
    fds = open_fds()
    yield
    sched = CorePycos.existing()
    if sched is not None:
        sched.terminate()
    for k, v in saved.items():
        setattr(config, k, v)
    problems = []
    extra = [t for t in threading.enumerate() if t not in threads and t.is_alive()
             and t.name != "proc-reader"]
    problems += ["thread left running: %r" % t for t in extra]
    leaked = {fd: what for fd, what in open_fds().items()
              if (fd not in fds or fds[fd] != what) and not what.startswith("/proc/")}
    if leaked:
        problems.append("descriptors leaked: %r" % (leaked,))
    assert not problems, problems


@pytest.fixture
def secret():
    return secrets.token_hex(16)


@pytest.fixture
def net(secret):
    """This process's netpycos scheduler."""
    return netpycos.Pycos(name="test", udp_port=0, secret=secret, host="127.0.0.1")


@pytest.fixture
def spawn(secret):
    procs = []

    def make(code, name="peer", **kw):
        kw.setdefault("secret", secret)
        p = Proc(code, name=name, **kw)
        procs.append(p)
        return p
    yield make
    errors = []
    for p in procs:
        try:
            rc = p.stop()
        except AssertionError as e:
            errors.append(str(e))
            continue
        # (killed by the test: -9, or on Windows TerminateProcess's status)
        if rc not in (0, -9) and not getattr(p, "killed", False):
            errors.append("%s exited with %s; output:\n%s" % (p.name, rc, p.output()))
    assert not errors, "\n".join(errors)

