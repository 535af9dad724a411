"""dispycos I/O jobs that exchange messages with the client.

Starts three I/O jobs (``client.io_rtask``: no one-per-server limit, so
three of them share the two server processes) as little services: each
receives work items -- blocks of bytes -- from the client's task, sends
back each block's SHA-256 digest, and, given ``None``, answers with a
sentinel (``"done"`` and how many items it did) and ends.  The client
hands the items out in turn, checks every digest it gets against its own,
and waits for every sentinel.  Run it with::

    python examples/dispycos_io.py

A job's remote task takes messages like any task (``rtask.send(msg)``),
and the client's task, passed to the job as an argument, is where the job
sends its answers.  It starts a local node daemon with two server
processes for the duration (``_localnode.py``, next to this file).
"""
import hashlib

from pycos.dispycos import Client

from _localnode import run

ITEMS = 12
WORKERS = 3


def digest_service(client_task, task=None):
    """An I/O job: a digest for each block received, until ``None``."""
    import hashlib
    done = 0
    while True:
        item = yield task.receive()           # waits without holding its server
        if item is None:
            break
        n, block = item
        client_task.send(("digest", n, hashlib.sha256(block).hexdigest(), task))
        done += 1
    client_task.send(("done", task, done))    # the sentinel: nothing more from this job
    return done


def main(task=None):
    client = Client([digest_service])
    if (yield client.schedule()):
        raise Exception("could not start the scheduler")
    workers = []
    for _ in range(WORKERS):
        rtask = yield client.io_rtask(digest_service, task)
        if rtask is None:
            raise Exception("an I/O job did not start")
        workers.append(rtask)
    print("%d I/O jobs: %s" % (len(workers), ", ".join(str(w) for w in workers)))
    blocks = [("item %d " % n).encode() * (1000 * (n + 1)) for n in range(ITEMS)]
    for n, block in enumerate(blocks):
        workers[n % WORKERS].send((n, block))  # round robin
    for w in workers:
        w.send(None)                           # no more work: each answers "done"
    finished: dict = {}
    digests: dict = {}
    while len(finished) < WORKERS:
        msg = yield task.receive(timeout=60)
        if msg is None:
            raise Exception("the I/O jobs fell silent")
        if msg[0] == "digest":
            _, n, digest, worker = msg
            ok = digest == hashlib.sha256(blocks[n]).hexdigest()
            digests[n] = ok
            print("  item %2d (%6d bytes): %s... from %s%s"
                  % (n, len(blocks[n]), digest[:16], worker, "" if ok else " WRONG"))
        elif msg[0] == "done":
            finished[msg[1]] = msg[2]
            print("  %s: done, %d items" % (msg[1], msg[2]))
    for w in workers:
        yield w()                              # each job's end (its count)
    yield client.close()
    good = sum(digests.values())
    print("%d of %d digests right, from %d I/O jobs on 2 servers" % (good, ITEMS, WORKERS))
    return good == ITEMS


if __name__ == "__main__":
    run(main)
