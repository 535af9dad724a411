"""dispycos jobs that save their state when they are interrupted.

Two long CPU jobs sum the series 1/1^2 + 1/2^2 + ... (it tends to
pi^2 / 6) between them -- one the odd terms, one the even ones -- over far
more terms than anyone waits for, telling the client every so often how
far they got.  Once each has reported a few times the client stops them
with ``client.close(terminate=True)``: every running job gets
``KeyboardInterrupt`` at the point where it yields, catches it, and
returns its state -- the next term and the partial sum -- instead of
dying.  The client prints those states: a later run could resume from
them.  Run it with::

    python examples/dispycos_save_state.py

The same ``KeyboardInterrupt`` arrives when the node daemon is stopped
(SIGINT, SIGTERM, ``quit``), when a server is closed with
``terminate=True``, or when the client throws it into one job itself
(``rtask.throw(KeyboardInterrupt)``, e.g. from a timer).  A job that never
yields cannot be interrupted: yield now and then (``yield task.sleep(0)``).
It starts a local node daemon with two server processes for the duration
(``_localnode.py``, next to this file).
"""
import math

import pycos
from pycos.dispycos import Client

from _localnode import run

JOBS = 2
REPORTS = 3          # stop once every job has reported this many times


def basel(k, step, terms, client_task, task=None):
    """Sum 1/k^2 for ``terms`` terms from ``k`` on, ``step`` apart; report
    to ``client_task`` every 100,000 terms; on KeyboardInterrupt return the
    state reached (enough to resume)."""
    total, left = 0.0, terms
    try:
        while left > 0:
            n = min(left, 100000)
            for k in range(k, k + n * step, step):
                total += 1.0 / (k * k)
            k += step
            left -= n
            client_task.send(("progress", task, k))
            yield task.sleep(0)              # where KeyboardInterrupt can arrive
        return {"finished": True, "next": k, "left": left, "sum": total}
    except KeyboardInterrupt:
        # save the state: here it goes back as the job's result; a job could
        # also write it to a file of its own, or send it in a message
        return {"finished": False, "next": k, "left": left, "sum": total}


def main(task=None):
    client = Client([basel])
    if (yield client.schedule()):
        raise Exception("could not start the scheduler")
    jobs = []
    for i in range(JOBS):
        # job i sums the terms i+1, i+1+JOBS, i+1+2*JOBS, ...
        rtask = yield client.rtask(basel, i + 1, JOBS, 10 ** 12, task)
        jobs.append(rtask)
    reports = {rtask: 0 for rtask in jobs}
    while min(reports.values()) < REPORTS:
        msg = yield task.receive(timeout=60)
        if msg is None:
            raise Exception("the jobs fell silent")
        reports[msg[1]] += 1
    print("every job reported %d times; stopping them" % REPORTS)
    yield client.close(terminate=True)      # the jobs get KeyboardInterrupt
    saved, total = 0, 0.0
    for i, rtask in enumerate(jobs):
        state = yield rtask()
        if isinstance(state, pycos.MonitorStatus):
            print("  job %d: no state saved: %s" % (i, state))
            continue
        saved += not state["finished"]
        total += state["sum"]
        print("  job %d: %s; state: next term %d, %d terms left, partial sum %.12f"
              % (i, "finished" if state["finished"] else "interrupted", state["next"],
                 state["left"], state["sum"]))
    print("%d of %d jobs saved their state; the partial sums add up to %.9f "
          "(pi^2/6 = %.9f)" % (saved, JOBS, total, math.pi ** 2 / 6))
    return saved == JOBS

if __name__ == "__main__":
    run(main)
