"""A dispycos cluster on this machine, in one command (``make demo`` runs it).

Starts a node daemon (``dispycosnode``, two server processes) on loopback,
runs a small computation on it from this program -- each job estimates pi
from random points and says which server process ran it -- with a live
progress line (jobs done / running / failed, jobs per second, time left)
and, above it, the cluster's status messages, the node's output and
pycos's log messages; then it prints the results and shuts everything
down.  Run it with::

    python examples/dispycos_demo.py [--ui[=PORT]] [JOBS [POINTS]]

``--ui`` (``make demo-ui``) also serves the cluster's web UI (pycos.httpd,
on port 8181 unless given): open the address it prints, with its token,
to watch the nodes, servers and jobs live; once the jobs are done the
cluster stays up for you to look around until you press Enter.

The progress line goes to standard error; it is forced on here, so it shows
even when the output is not a terminal (then as plain lines, one per
redraw).  The node daemon is started by ``_localnode.py`` (next to this
file); in a real cluster the nodes run on other machines and are found by
discovery.
"""
import logging
import sys
import threading

import pycos
from pycos.dispycos import Client, DispycosStatus, Progress, Scheduler

from _localnode import run


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


def show_status(progress, task=None):
    """The cluster's news, printed above the progress line."""
    while True:
        msg = yield task.receive()
        if isinstance(msg, pycos.MonitorStatus):
            if msg.type is not StopIteration:
                progress.say("  job %s failed: %s" % (msg.info, msg.type.__name__))
        elif isinstance(msg, DispycosStatus):
            if msg.status == Scheduler.NodeInitialized:
                progress.say("  node %s (%s): %d servers" % (msg.info.name, msg.info.addr,
                                                             msg.info.cpus))
            elif msg.status == Scheduler.ServerInitialized:
                progress.say("  server %s ready" % (msg.info,))
            elif msg.status == Scheduler.NodeClosed:
                progress.say("  node %s closed" % (msg.info.name,))
            elif msg.status == Scheduler.ClientClosed:
                break


def read_enter(waiter):
    """(a thread) Tell ``waiter`` when the user pressed Enter (or closed
    the input)."""
    sys.stdin.readline()
    waiter.send("enter")


def main(njobs, points, progress, ui_port=None, task=None):
    status = pycos.Task(show_status, progress)
    watcher = progress.task(forward=status)
    client = Client([estimate_pi], status_task=watcher)
    http_server = None
    if ui_port is not None:
        from pycos import httpd          # (needs the web extra: h11)
        # before schedule(): it sees the cluster's status from the start
        # (and passes every message on to the watcher)
        http_server = httpd.HTTPServer(client, port=ui_port, poll_sec=2)
    if (yield client.schedule()):
        raise Exception("could not start the scheduler")
    jobs = []
    for i in range(njobs):
        rtask = yield client.rtask(estimate_pi, i, points)   # waits for a free server
        jobs.append(rtask)
    results = []
    for rtask in jobs:
        results.append((yield rtask()) if rtask is not None else None)
    if http_server is not None:
        progress.say("the jobs are done; the cluster stays up for the web UI at %s -- "
                     "press Enter to end" % (http_server.url,))
        reader = threading.Thread(target=read_enter, args=(task,), name="read-enter")
        reader.start()
        yield task.receive()
        reader.join()
    yield client.close()
    if http_server is not None:
        yield http_server.shutdown().finish()
    yield watcher.finish()                 # (the progress line's summary is out)
    yield status.finish()
    print("results:")
    estimates, pids = [], set()
    for i, value in enumerate(results):
        if isinstance(value, tuple):
            pi, pid = value
            estimates.append(pi)
            pids.add(pid)
            print("  job %2d: pi ~ %.5f (server process %d)" % (i, pi, pid))
        else:
            print("  job %2d: no result: %s" % (i, value))
    if estimates:
        mean = sum(estimates) / len(estimates)
        print("mean of %d estimates: %.5f, from %d server processes"
              % (len(estimates), mean, len(pids)))
    return len(estimates) == njobs


if __name__ == "__main__":
    argv = sys.argv[1:]
    ui_port = None
    if argv and argv[0].startswith("--ui"):
        flag = argv.pop(0)
        ui_port = int(flag.partition("=")[2] or 8181)
    njobs = int(argv[0]) if argv else 16
    points = int(argv[1]) if len(argv) > 1 else 2000000
    print("dispycos demo: %d jobs, each estimating pi from %d random points" % (njobs, points))
    sys.stdout.flush()
    # the live line on standard error; what the node prints, and pycos's
    # log messages, go above it
    progress = Progress(total=njobs, force=True)
    logging.getLogger("pycos").addHandler(progress.log_handler())
    ok = run(main, njobs, points, progress, ui_port, output=lambda line: progress.say("  " + line),
             timeout=None if ui_port is not None else 120)
    sys.exit(0 if ok else 1)
