"""A server task and client tasks talking only through messages.

The server is an ordinary task that loops on ``yield task.receive()``.  A
request is a dict carrying the client task itself, so the server can reply
with ``client.send(...)``.  Each client sends a few requests and waits for
every reply with a timeout; one request asks for slow work, so that client's
first wait times out (``receive`` returns the ``alarm_value``), and it then
waits again and gets the late reply.  The server notices it has been idle
with a receive timeout, and stops when told to.  A monitor reports how the
server ended.

Run it with no arguments; it takes well under a second:

    python examples/client_server.py
"""
import pycos

TIMED_OUT = "no reply yet"


def server(task=None):
    """Answer requests until a 'quit' message; return how many it served."""
    served = 0
    while True:
        req = yield task.receive(timeout=0.5, alarm_value=None)
        if req is None:
            print("server: idle for 0.5 s, still waiting")
            continue
        if req == "quit":
            break
        client, op, arg = req["client"], req["op"], req["arg"]
        if op == "square":
            client.send({"id": req["id"], "result": arg * arg})
        elif op == "slow-square":
            # slow work goes to a helper task, so the server keeps answering
            pycos.Task(slow_worker, client, req["id"], arg)
        else:
            client.send({"id": req["id"], "error": "unknown op %r" % (op,)})
        served += 1
    print("server: served %d requests, stopping" % served)
    return served


def slow_worker(client, req_id, arg, task=None):
    yield task.sleep(0.2)
    client.send({"id": req_id, "result": arg * arg})


def client(srv, name, numbers, slow=False, task=None):
    """Send one request per number; return the results in order."""
    results = []
    for i, n in enumerate(numbers):
        op = "slow-square" if slow and i == 0 else "square"
        srv.send({"client": task, "id": i, "op": op, "arg": n})
        reply = yield task.receive(timeout=0.05, alarm_value=TIMED_OUT)
        if reply == TIMED_OUT:
            print("%s: request %d: %s after 0.05 s; waiting longer" % (name, i, reply))
            reply = yield task.receive(timeout=2, alarm_value=TIMED_OUT)
        if reply == TIMED_OUT or reply["id"] != i:
            raise RuntimeError("%s: bad reply %r to request %d" % (name, reply, i))
        results.append(reply["result"])
    print("%s: squares of %s are %s" % (name, numbers, results))
    return results


def watcher(task=None):
    """Print the MonitorStatus of every task it monitors (the server here)."""
    status = yield task.receive()
    print("watcher: %s ended: %s, value %r" % (status.info, status.type.__name__, status.value))


def main(task=None):
    srv = pycos.Task(server)
    w = pycos.Task(watcher)
    yield w.monitor(srv)

    clients = [pycos.Task(client, srv, "client-a", [1, 2, 3]),
               pycos.Task(client, srv, "client-b", [4, 5, 6], slow=True),
               pycos.Task(client, srv, "client-c", [7, 8, 9])]
    total = 0
    for c in clients:
        total += sum((yield c.finish()))

    yield task.sleep(0.6)            # long enough for the server to notice it is idle
    srv.send("quit")
    served = yield srv.finish()
    yield w.finish()
    print("main: %d requests served, sum of all squares %d" % (served, total))
    return served


if __name__ == "__main__":
    served = pycos.Task(main).value()
    if served != 9:
        raise SystemExit("expected 9 requests served, got %r" % (served,))
