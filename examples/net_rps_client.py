"""A netpycos RPS client: locates the "divide" service of
examples/net_rps_server.py, calls it twice, and waits for the results with
finish(): a value, and a MonitorStatus for the call that raised.

    python examples/net_rps_client.py <server-port>

The secret comes from $PYCOS_DEMO_SECRET (default "demo-secret").
"""
import os
import sys

import pycos.netpycos as pycos

SECRET = os.environ.get("PYCOS_DEMO_SECRET", "demo-secret")


def client(loc, task=None):
    divide = yield pycos.RPS.locate("divide", loc, timeout=5)
    if divide is None:
        print("client: no 'divide' service at", loc)
        return 1
    ok = yield divide(10, 4)          # a reference to the task running the call
    bad = yield divide(1, 0)
    print("client: 10 / 4 =", (yield ok.finish(timeout=5)))
    status = yield bad.finish(timeout=5)
    if not isinstance(status, pycos.MonitorStatus):
        return 1
    print("client: 1 / 0 failed with", status.type.__name__)
    return 0


def main():
    port = int(sys.argv[1])
    pycos.Pycos(name="rps-client", udp_port=0, host="127.0.0.1", secret=SECRET)
    sys.exit(pycos.Task(client, pycos.Location("127.0.0.1", port)).value())


if __name__ == "__main__":
    main()
