"""A netpycos echo client: finds the "echo" task of
examples/net_echo_server.py by name at a location, sends it messages, and
waits for a delivery acknowledgement with deliver().

    python examples/net_echo_client.py <server-port>

The secret comes from $PYCOS_DEMO_SECRET (default "demo-secret").
"""
import os
import sys

import pycos.netpycos as pycos

SECRET = os.environ.get("PYCOS_DEMO_SECRET", "demo-secret")


def client(loc, task=None):
    echo = yield pycos.Task.locate("echo", loc, timeout=5)
    if echo is None:
        print("client: no 'echo' task at", loc)
        return 1
    for i in range(3):
        echo.send((task, "hello %d" % i))
    for _ in range(3):
        print("client: got", (yield task.receive(timeout=5)))
    n = yield echo.deliver((task, "delivered"), timeout=5)
    print("client: deliver ->", n, "; reply", (yield task.receive(timeout=5)))
    return 0


def main():
    port = int(sys.argv[1])
    pycos.Pycos(name="echo-client", udp_port=0, host="127.0.0.1", secret=SECRET)
    rc = pycos.Task(client, pycos.Location("127.0.0.1", port)).value()
    sys.exit(rc)


if __name__ == "__main__":
    main()
