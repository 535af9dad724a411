"""A netpycos RPS (remote procedure service) server: registers "divide",
which other processes call; each call runs as a new task here.

    python examples/net_rps_server.py         # prints "READY <addr> <port>"
    python examples/net_rps_client.py <port>

The secret comes from $PYCOS_DEMO_SECRET (default "demo-secret").  The
server stops when its standard input is closed (Ctrl-D).
"""
import os
import sys

import pycos.netpycos as pycos

SECRET = os.environ.get("PYCOS_DEMO_SECRET", "demo-secret")


def divide(a, b, task=None):
    yield task.sleep(0.01)        # pretend to work
    return a / b                  # b == 0 raises: the caller sees a MonitorStatus


def main():
    sched = pycos.Pycos(name="rps-server", udp_port=0, host="127.0.0.1", secret=SECRET)
    if pycos.RPS(divide).register() != 0:
        sys.exit("could not register 'divide'")
    print("READY", sched.location.addr, sched.location.port, flush=True)
    sys.stdin.read()
    sched.terminate()


if __name__ == "__main__":
    main()
