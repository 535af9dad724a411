"""A netpycos echo server: a task registered as "echo" answers messages
from tasks in other processes.

Run it, then the client in another terminal (same secret, loopback)::

    python examples/net_echo_server.py        # prints "READY <addr> <port>"
    python examples/net_echo_client.py <port>

The secret comes from $PYCOS_DEMO_SECRET (default "demo-secret").  The
server stops when its standard input is closed (Ctrl-D), or on "quit".
"""
import os
import sys

import pycos.netpycos as pycos

SECRET = os.environ.get("PYCOS_DEMO_SECRET", "demo-secret")


def echo(task=None):
    task.register("echo")
    while True:
        msg = yield task.receive()
        if msg == "quit":
            return
        sender, text = msg
        sender.send(("echo", text))


def main():
    sched = pycos.Pycos(name="echo-server", udp_port=0, host="127.0.0.1", secret=SECRET)
    pycos.Task(echo)
    print("READY", sched.location.addr, sched.location.port, flush=True)
    sys.stdin.read()
    sched.terminate()


if __name__ == "__main__":
    main()
