"""A netpycos channel client: locates the "ticks" channel of
examples/net_channel_server.py, subscribes a task to it, prints the ticks
that arrive, publishes a message of its own on the remote channel (every
subscriber gets it, this task too), then unsubscribes.

    python examples/net_channel_client.py <server-port>

The secret comes from $PYCOS_DEMO_SECRET (default "demo-secret").
"""
import os
import sys

import pycos.netpycos as pycos

SECRET = os.environ.get("PYCOS_DEMO_SECRET", "demo-secret")
TICKS = 5


def client(loc, task=None):
    channel = yield pycos.Channel.locate("ticks", loc, timeout=5)
    if channel is None:
        print("client: no 'ticks' channel at", loc)
        return 1
    print("client: found channel", channel)
    if (yield channel.subscribe(task)) != 0:
        print("client: subscribe failed")
        return 1
    ticks = 0
    note_seen = False
    while ticks < TICKS or not note_seen:
        msg = yield task.receive(timeout=5)
        if msg is None:
            print("client: nothing arrived for 5 s")
            return 1
        print("client: got", msg)
        if msg[0] == "tick":
            ticks += 1
            if ticks == 3:
                # a message sent to the remote channel goes to every subscriber
                reached = yield channel.deliver(("note", "hello from pid %d" % os.getpid()),
                                                timeout=5)
                print("client: my note reached %d subscriber(s)" % reached)
        elif msg[0] == "note":
            note_seen = True
    rc = yield channel.unsubscribe(task)
    print("client: unsubscribed (%d) after %d ticks" % (rc, ticks))
    return 0 if rc == 0 else 1


def main():
    port = int(sys.argv[1])
    pycos.Pycos(name="channel-client", udp_port=0, host="127.0.0.1", secret=SECRET)
    sys.exit(pycos.Task(client, pycos.Location("127.0.0.1", port)).value())


if __name__ == "__main__":
    main()
