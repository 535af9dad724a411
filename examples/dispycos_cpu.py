"""dispycos CPU jobs: split a computation, gather the results, see a failure.

Counts the primes below 2,000,000 with eight CPU jobs (``client.rtask``:
at most one runs in each server process at a time; the others wait for a
free server), each sieving its own slice of the range, and adds up what
they return.  A ninth job is given a slice that makes it raise: its
``yield rtask()`` is then not a count but a ``MonitorStatus`` whose
``type`` is the exception's class and whose ``value`` is its traceback,
text from the server.  Run it with::

    python examples/dispycos_cpu.py

It starts a local node daemon with two server processes for the duration
(``_localnode.py``, next to this file).
"""
import pycos
from pycos.dispycos import Client

from _localnode import run

LIMIT = 2000000
JOBS = 8


def count_primes(lo, hi, task=None):
    """The number of primes in [lo, hi) (a segmented sieve), and the
    server process that counted them."""
    import math
    import os
    if not 0 <= lo <= hi:
        raise ValueError("count_primes: need 0 <= lo <= hi, not lo=%r hi=%r" % (lo, hi))
    root = math.isqrt(hi) + 1
    small = bytearray([1]) * root              # the primes below sqrt(hi)
    small[:2] = b"\0\0"
    for p in range(2, math.isqrt(root) + 1):
        if small[p]:
            small[p * p::p] = bytes(len(range(p * p, root, p)))
    segment = bytearray([1]) * (hi - lo)       # segment[i]: lo + i may be prime
    for n in range(lo, min(hi, 2)):
        segment[n - lo] = 0
    for p in range(2, root):
        if small[p]:
            first = max(p * p, (lo + p - 1) // p * p)
            segment[first - lo::p] = bytes(len(range(first, hi, p)))
        if p % 256 == 0:
            # a job is a generator function; where it yields, its server
            # can run its other work (messages, heartbeats) meanwhile
            yield task.sleep(0)
    return sum(segment), os.getpid()


def main(task=None):
    client = Client([count_primes])
    if (yield client.schedule()):
        raise Exception("could not start the scheduler")
    step = LIMIT // JOBS
    slices = [(i * step, (i + 1) * step) for i in range(JOBS)]
    slices.append((100, 10))                   # a slice no job can count: it raises
    jobs = []
    for lo, hi in slices:
        rtask = yield client.rtask(count_primes, lo, hi)   # waits for a free server
        jobs.append(rtask)
    total, pids, failed = 0, set(), 0
    for (lo, hi), rtask in zip(slices, jobs):
        result = yield rtask()                 # the job's value, or a MonitorStatus
        if isinstance(result, pycos.MonitorStatus):
            failed += 1
            last = result.value.strip().splitlines()[-1]
            print("  [%d, %d): failed -- MonitorStatus type %s: %s"
                  % (lo, hi, result.type.__name__, last))
            continue
        count, pid = result
        total += count
        pids.add(pid)
        print("  [%7d, %7d): %5d primes (server process %d)" % (lo, hi, count, pid))
    yield client.close()
    print("%d primes below %d, counted by %d server processes; %d job failed"
          % (total, LIMIT, len(pids), failed))
    return total


if __name__ == "__main__":
    run(main)
