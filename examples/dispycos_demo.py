"""A dispycos cluster on this machine, in one command.

Starts a node daemon (``dispycosnode``, two server processes) on loopback,
runs a small computation on it from this program -- each job estimates pi
from random points and reports which server process ran it -- shows the
status messages as they come, prints the results, and shuts everything
down.  Run it with::

    python examples/dispycos_demo.py [jobs]

In a real cluster the node daemons run on other machines
(``dispycosnode -s SECRET -i ADDRESS``) and are found by discovery; here the
node is told where this program listens (``--peer``), and both use a
random secret.
"""
import secrets
import subprocess
import sys
import tempfile

import pycos
import pycos.netpycos as netpycos
from pycos.dispycos import Client, DispycosStatus, Scheduler
from pycos.dispy.status import status_name


def estimate_pi(seed, points, task=None):
    # a job's imports go inside it: only its source travels
    import os
    import random
    rnd = random.Random(seed)
    inside = 0
    for i in range(points):
        x, y = rnd.random(), rnd.random()
        inside += x * x + y * y <= 1.0
        if i % 20000 == 0:
            yield task.sleep(0)            # let the server's other work run
    return 4.0 * inside / points, os.getpid()


def show_status(task=None):
    while True:
        msg = yield task.receive()
        if isinstance(msg, DispycosStatus):
            print("  status: %-17s %s" % (status_name(msg.status), msg.info))
            if msg.status == Scheduler.ClientClosed:
                break


def main(njobs, task=None):
    status = pycos.Task(show_status)
    client = Client([estimate_pi], status_task=status)
    if (yield client.schedule()):
        raise Exception("could not start the scheduler")
    jobs = []
    for i in range(njobs):
        rtask = yield client.rtask(estimate_pi, i, 200000)
        jobs.append(rtask)
    total = 0.0
    for i, rtask in enumerate(jobs):
        value = yield rtask()
        if isinstance(value, pycos.MonitorStatus):
            print("  job %d failed: %s" % (i, value))
            continue
        pi, pid = value
        total += pi
        print("  job %d: pi ~ %.5f (server process %d)" % (i, pi, pid))
    print("mean of %d jobs: %.5f" % (njobs, total / njobs))
    yield client.close()
    yield status.finish()


if __name__ == "__main__":
    njobs = int(sys.argv[1]) if len(sys.argv) > 1 else 6
    secret = secrets.token_hex(16)
    sched = netpycos.Pycos(name="demo-client", host="127.0.0.1", udp_port=0, secret=secret)
    with tempfile.TemporaryDirectory() as dest:
        node = subprocess.Popen(
            [sys.executable, "-m", "pycos.dispycosnode", "-c", "2", "-i", "127.0.0.1",
             "-s", secret, "--node_ports", "0", "--dest_path", dest,
             "--peer", "127.0.0.1:%d" % sched.location.port],
            stdin=subprocess.PIPE)
        try:
            pycos.Task(main, njobs).value(timeout=120)
        finally:
            node.stdin.close()                     # 'quit' for the node daemon
            node.wait(30)
    sched.finish()
