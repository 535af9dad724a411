"""A netpycos channel server: registers a Channel called "ticks" and
publishes a numbered tick on it every 0.2 s -- but only while at least one
task (here or in another process) is subscribed, so no tick is lost before
the first subscriber arrives.

Run it, then the client in another terminal (same secret, loopback)::

    python examples/net_channel_server.py     # prints "READY <addr> <port>"
    python examples/net_channel_client.py <port>

The client may be run again and again against the same server.  The secret
comes from $PYCOS_DEMO_SECRET (default "demo-secret").  The server stops
when its standard input is closed (Ctrl-D).
"""
import os
import sys

import pycos.netpycos as pycos

SECRET = os.environ.get("PYCOS_DEMO_SECRET", "demo-secret")


def publisher(channel, task=None):
    n = 0
    while True:
        # deliver() waits until the channel has a subscriber (n=1), then
        # sends; it returns the number of subscribed tasks the tick reached
        reached = yield channel.deliver(("tick", n), n=1)
        if reached < 0:                  # the channel was closed
            return
        if reached:
            n += 1
        yield task.sleep(0.2)


def main():
    sched = pycos.Pycos(name="channel-server", udp_port=0, host="127.0.0.1", secret=SECRET)
    channel = pycos.Channel("ticks")
    if channel.register() != 0:
        sys.exit("could not register channel 'ticks'")
    pycos.Task(publisher, channel)
    print("READY", sched.location.addr, sched.location.port, flush=True)
    sys.stdin.read()
    sched.terminate()


if __name__ == "__main__":
    main()
