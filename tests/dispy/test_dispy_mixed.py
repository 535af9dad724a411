"""A client on one interpreter, its node and servers on the other
(RELIABILITY.md G4, issue 16: "a client on one and servers on the other").

On loopback, two real processes besides pytest: the client program
(``CLIENT``, run by one venv's python: a dispycos ``Client`` with its
in-process scheduler) and ``dispycosnode`` run by the other venv's python
(``python -m pycos.dispycosnode``'s ``main``, as conftest.py starts it),
which starts its server processes with that same python.  Both directions:
CPython client with PyPy servers, PyPy client with CPython servers.  The
client runs CPU jobs (their results say which interpreter ran them), a job
that raises (its MonitorStatus), and an I/O job that receives a message
from the client and answers it; the status stream has each job's start
and end once, and close() releases the node (its servers end, its
directory goes).  The test needs both venvs (``make setup``); it skips,
saying which is missing, when one does not exist.
"""
import json
import os
import secrets
import sys
import threading

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "net"))
from netutil import ROOT, Proc  # noqa: E402
from clusterutil import _servers  # noqa: E402

PYTHONS = {"cpython": os.path.join(ROOT, ".venv", "cpython", "bin", "python"),
           "pypy": os.path.join(ROOT, ".venv", "pypy", "bin", "python")}
IMPL = {"cpython": "CPython", "pypy": "PyPy"}
#: server processes (a node refuses more than its host's CPUs)
CPUS = max(1, min(2, os.cpu_count() or 1))
#: CPU jobs
N = 6

CLIENT = r"""
import json, sys
import pycos, pycos.netpycos as netpycos
from pycos.dispycos import Client, DispycosStatus, Scheduler
from pycos.dispy.status import status_name


def compute(i, task=None):
    import platform, sys
    yield task.sleep(0.01)
    return (i, i * i, platform.python_implementation(), list(sys.version_info[:2]))


def fails(task=None):
    yield task.sleep(0)
    raise ValueError("job failed on purpose")


def echo(client_task, task=None):
    import platform
    msg = yield task.receive(timeout=20)
    client_task.send(("echo", msg, platform.python_implementation()))
    return "echoed"


# what the I/O job gets and sends back: types whose pickles could differ
PAYLOAD = {"text": "h\u00e9llo", "bytes": b"\x00\xff" * 100, "tuple": (1, 2.5, None, True),
           "big": 2 ** 70, "set": frozenset({1, 2, 3}), "nested": [[{"k": -1.5e300}]]}

sched = netpycos.Pycos(name="mixed-client", host="127.0.0.1", udp_port=0, secret=sys.argv[1])
print("PORT", sched.location.port, flush=True)


servers_up = pycos.Event()      # (the jobs start once every server can take one)


def statuses(task=None):
    got = []
    while True:
        msg = yield task.receive()
        if isinstance(msg, DispycosStatus):
            got.append(status_name(msg.status))
            if got.count("ServerInitialized") == %(cpus)d:
                servers_up.set()
            if msg.status == Scheduler.ClientClosed:
                return got
        elif isinstance(msg, pycos.MonitorStatus):
            got.append("end:" + msg.type.__name__)


def main(task=None):
    import platform
    st = pycos.Task(statuses)
    client = Client([compute, fails, echo], status_task=st)
    out = {"client": platform.python_implementation(), "schedule": (yield client.schedule())}
    out["servers_up"] = yield servers_up.wait(timeout=30)
    jobs = []
    for i in range(%(n)d):
        jobs.append((yield client.rtask(compute, i)))
    out["results"] = []
    for rt in jobs:
        out["results"].append((yield rt(timeout=30)) if isinstance(rt, pycos.Task) else repr(rt))
    bad = yield client.rtask(fails)
    failed = yield bad(timeout=30)
    out["failed"] = [type(failed).__name__, getattr(failed, "type", None).__name__,
                     "job failed on purpose" in str(getattr(failed, "value", ""))]
    io = yield client.io_rtask(echo, task)
    io.send(PAYLOAD)
    reply = yield task.receive(timeout=20)
    out["echo"] = [reply is not None and reply[0], reply is not None and reply[1] == PAYLOAD,
                   reply is not None and reply[2]]
    out["io_end"] = yield io(timeout=20)
    out["close"] = yield client.close(timeout=30)
    out["statuses"] = yield st.finish(timeout=30)
    print("RESULT", json.dumps(out), flush=True)


pycos.Task(main).value()
sched.terminate()
""" % {"n": N, "cpus": CPUS}


def _python(name):
    path = PYTHONS[name]
    if not os.path.exists(path):
        pytest.skip("no %s venv: %s does not exist (make setup creates it)" % (name, path))
    return path


@pytest.mark.timeout(60)
@pytest.mark.parametrize("client_py,node_py", [("cpython", "pypy"), ("pypy", "cpython")])
def test_client_and_servers_on_different_interpreters(tmp_path, client_py, node_py):
    """Jobs, a failing job's MonitorStatus and an I/O job's message round
    trip between a client on ``client_py`` and servers on ``node_py``."""
    client_python, node_python = _python(client_py), _python(node_py)
    secret = secrets.token_hex(8)
    threads = set(threading.enumerate())
    script = tmp_path / "client.py"            # (a file: job sources are read from it)
    script.write_text(CLIENT)
    dest = tmp_path / "node"
    procs = []
    try:
        client = Proc("import runpy; runpy.run_path(%r, run_name='__main__')" % str(script),
                      secret, name="client(%s)" % client_py, python=client_python,
                      args=[secret])
        procs.append(client)
        port = int(client.expect(r"^PORT (\d+)$", timeout=30).group(1))
        code = ("import sys; from pycos.dispycosnode import main; sys.exit(main(%r))"
                % (["-c", str(CPUS), "-i", "127.0.0.1", "-s", secret, "--node_ports", "0",
                    "--dest_path", str(dest), "--peer", "127.0.0.1:%d" % port],))
        node = Proc(code, secret, name="node(%s)" % node_py, python=node_python)
        node.dest = dest
        procs.append(node)
        node.expect(r"^dispycosnode ", timeout=30)
        line = client.expect(r"^RESULT ", timeout=45)
        out = json.loads(line.string[len("RESULT "):])
        assert client.proc.wait(15) == 0, client.output()
        assert node.stop(20) == 0, node.output()
        servers = _servers(node)
        assert not [d for d in os.listdir(dest) if not d.startswith(".")], os.listdir(dest)
    finally:
        for p in procs:
            p.kill()
    assert out["client"] == IMPL[client_py]
    assert out["schedule"] == 0
    assert out["servers_up"] is True, out
    assert [r[:2] for r in out["results"]] == [[i, i * i] for i in range(N)], out
    assert {r[2] for r in out["results"]} == {IMPL[node_py]}, out      # servers on node_py
    assert out["failed"] == ["MonitorStatus", "ValueError", True], out
    assert out["echo"] == ["echo", True, IMPL[node_py]], out
    assert out["io_end"] == "echoed"
    assert out["close"] == 0
    st = out["statuses"]
    assert st[:2] == ["NodeDiscovered", "NodeInitialized"], st
    assert st.count("ServerInitialized") == CPUS, st
    assert st.count("TaskStarted") == N + 2, st
    assert sorted(s for s in st if s.startswith("end:")) == (
        ["end:StopIteration"] * (N + 1) + ["end:ValueError"]), st
    assert st[-1] == "ClientClosed", st
    assert not servers, servers                 # none outlived the node
    left = [t for t in threading.enumerate() if t not in threads and t.is_alive()]
    assert not left, left
