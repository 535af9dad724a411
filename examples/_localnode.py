"""A dispycos node daemon on this machine, for the dispycos examples.

Each ``examples/dispycos_*.py`` calls :func:`run` with its main task: it
makes this process a netpycos peer on loopback, starts ``dispycosnode``
(``python -m pycos.dispycosnode``) with a few server processes in a
temporary directory, runs the main task -- the client -- and then stops the
node (its servers end with it) and this process's scheduler, whatever
happened.  Not an example itself: it is the part every example would
otherwise repeat.

In a real cluster the node daemons run on other machines (``dispycosnode
-s SECRET -i ADDRESS``, or as a service) and the client finds them by
discovery; here the node is told where the client listens (``--peer``),
both listen on 127.0.0.1 only, and they share a fresh random secret (given
on the command line, which is fine for a throw-away node on loopback; keep
a real one in a ``--config`` file).
"""
import secrets
import subprocess
import sys
import tempfile
import threading

import pycos
import pycos.netpycos as netpycos

__all__ = ["run"]


def run(main, *args, cpus=2, timeout=120, output=None):
    """Run the task ``main(*args)`` (a generator function taking ``task``)
    as the client of a local node daemon with ``cpus`` servers, and return
    its value.  Everything is stopped afterwards; an exception of ``main``
    is raised here once it is; TimeoutError if it runs longer than
    ``timeout`` seconds.  What the node prints (its log, its servers'
    output) goes line by line to ``output``, called by a task of this
    scheduler, so never in the middle of a line the tasks print (default:
    this program's standard output)."""
    secret = secrets.token_hex(16)
    sched = netpycos.Pycos(name="example-client", host="127.0.0.1", udp_port=0, secret=secret)
    try:
        with tempfile.TemporaryDirectory(prefix="dispycos-example-") as dest:
            node = subprocess.Popen(
                [sys.executable, "-m", "pycos.dispycosnode", "-c", str(cpus), "-i", "127.0.0.1",
                 "-n", "example-node", "-s", secret, "--node_ports", "0", "--dest_path", dest,
                 "--peer", "127.0.0.1:%d" % sched.location.port],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            assert node.stdin is not None and node.stdout is not None   # (asked for)
            # the line "dispycosnode NAME: N servers, at ..." says it runs (log
            # lines such as pycos's start banner may come first); later ones
            # (its servers' output, if jobs print) are passed on by a thread,
            # so it never blocks
            for _ in range(20):
                first = node.stdout.readline().decode("utf-8", "replace").rstrip()
                if not first or first.startswith("dispycosnode "):
                    break
            if first.startswith("dispycosnode "):
                print("started %s" % first)
                sys.stdout.flush()
            # the node's lines are printed by a task of this scheduler, so a
            # line never lands inside one the example's tasks are printing
            printer = pycos.Task(_printer, output or _print)
            copier = threading.Thread(target=_copy, args=(node.stdout, printer),
                                      name="node-output")
            copier.start()
            try:
                if not first.startswith("dispycosnode "):
                    raise RuntimeError("dispycosnode did not start (exit status %s)"
                                       % (node.wait(30),))
                return _run_main(main, args, timeout)
            finally:
                node.stdin.close()                  # 'quit' for the node daemon
                try:
                    node.wait(30)
                except subprocess.TimeoutExpired:
                    node.kill()
                    node.wait()
                copier.join()
                node.stdout.close()
                printer.send(None)
                printer.value()
    finally:
        sched.terminate()


def _run_main(main, args, timeout):
    outcome = {}

    def wrapper(task=None):
        try:
            outcome["value"] = yield from main(*args, task=task)
        except BaseException as e:
            outcome["error"] = e
    t = pycos.Task(wrapper)
    t.value(timeout=timeout)
    if "error" in outcome:
        raise outcome["error"]
    if "value" not in outcome:
        raise TimeoutError("the example did not end within %s seconds" % (timeout,))
    return outcome["value"]


def _copy(stream, printer):
    for line in iter(stream.readline, b""):
        printer.send(line.decode("utf-8", "replace").rstrip("\n"))


def _printer(output, task=None):
    while True:
        line = yield task.receive()
        if line is None:
            return
        output(line)


def _print(text):
    sys.stdout.write(text + "\n")            # (one write: whole lines between threads)
    sys.stdout.flush()
