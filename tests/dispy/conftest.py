"""The ``cluster`` fixture of the loopback dispycos tests: this process is
the client (a networked scheduler on 127.0.0.1 with a fresh secret), and
``start_node(cpus)`` starts a real ``dispycosnode`` that finds it with
``--peer``.  Afterwards every node is told to quit and the test fails if a
node did not end, a server outlived its node, or a thread was left."""
import os
import secrets
import sys
import threading

import pytest

import pycos.netpycos as netpycos
from pycos.core.scheduler import Pycos as CorePycos

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "net"))
from netutil import Proc  # noqa: E402
from clusterutil import _servers  # noqa: E402


@pytest.fixture
def cluster(tmp_path):
    """(client scheduler, start_node(cpus) -> Proc) ; everything is stopped
    and checked after the test."""
    old = CorePycos.existing()
    if old is not None:
        old.terminate()
    secret = secrets.token_hex(8)
    threads = set(threading.enumerate())
    sched = netpycos.Pycos(name="client", host="127.0.0.1", udp_port=0, secret=secret)
    nodes = []

    def start_node(cpus, peer_port=None, extra=()):
        dest = tmp_path / ("node%d" % len(nodes))
        port = peer_port or sched.location.port
        code = ("import sys; from pycos.dispycosnode import main; sys.exit(main(%r))"
                % (["-c", str(cpus), "-i", "127.0.0.1", "-s", secret, "--node_ports", "0",
                    "--dest_path", str(dest), "--peer", "127.0.0.1:%d" % port] + list(extra),))
        p = Proc(code, secret, name="node%d" % len(nodes))
        p.dest = dest
        nodes.append(p)
        p.expect(r"^dispycosnode ", timeout=30)
        return p
    start_node.secret = secret
    yield sched, start_node
    problems = []
    for p in nodes:
        alive = p.proc.poll() is None
        p.proc.stdin.close()
        if alive:
            try:
                p.proc.wait(20)
            except Exception:
                p.proc.kill()
                problems.append("%s did not end on 'quit':\n%s" % (p.name, p.output()))
    sched.terminate()
    for p in nodes:
        p._reader.join(10)
        p.proc.stdout.close()
    for p in nodes:
        # no server process outlives its node
        left = _servers(p)
        if left:
            problems.append("servers left running: %r" % left)
    extra = [t for t in threading.enumerate() if t not in threads and t.is_alive()
             and t.name != "proc-reader"]
    problems += ["thread left running: %r" % t for t in extra]
    assert not problems, "\n".join(problems)

