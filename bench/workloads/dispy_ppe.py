"""The dispycos workloads (``dispy-*``) for ``concurrent.futures.ProcessPoolExecutor``.

No network: the worker processes are this machine's, fed through pipes.
``dispy-jobs``: ``ProcessPoolExecutor(2)``, one ``submit(square, i)`` per
job; ``--window W`` keeps W futures outstanding (``wait(...,
FIRST_COMPLETED)``, a new submit per result), ``--window 0`` submits all
and then takes the results.  ``dispy-makespan``: a process runs one job at a
time (there are no threads per process), so ``servers * slots`` = 8
processes, every ``nap`` (``time.sleep(0.05)``) submitted at once.  The
pool is shut down in a ``finally`` (its processes end with it).
"""

import concurrent.futures as cf
import os
import sys
import time

import dispy_common

perf = dispy_common.perf


def square(x):
    return x * x


def nap(seconds):
    time.sleep(seconds)
    return seconds, os.getpid()


def jobs(ex, first, n, window):
    if window == 0:
        futs = [ex.submit(square, i) for i in range(first, first + n)]
        return [f.result() for f in futs]
    out = {}
    pending = {}
    nxt = first
    for _ in range(min(window, n)):
        pending[ex.submit(square, nxt)] = nxt
        nxt += 1
    while pending:
        done, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
        for f in done:
            out[pending.pop(f)] = f.result()
            if nxt < first + n:
                pending[ex.submit(square, nxt)] = nxt
                nxt += 1
    return [out[i] for i in range(first, first + n)]


def main():
    args = dispy_common.parse_args()
    procs = args.servers if args.workload == "dispy-jobs" else args.servers * args.slots
    ex = cf.ProcessPoolExecutor(procs)
    try:
        warm = max(dispy_common.warmup_count(args), 4 * procs)
        dispy_common.check_squares(jobs(ex, 0, warm, 8), 0)
        if args.workload == "dispy-jobs":
            t0 = perf()
            res = jobs(ex, warm, args.n, args.window)
            dt = perf() - t0
            dispy_common.check_squares(res, warm)
            dispy_common.emit_jobs(args, dt, processes=procs)
            return
        # every process is up (the pool starts them on demand)
        list(ex.map(nap, [0.02] * procs))
        t0 = perf()
        futs = [ex.submit(nap, args.sleep) for _ in range(args.n)]
        res = [f.result() for f in futs]
        dt = perf() - t0
        where = {}
        for v, pid in res:
            if v != args.sleep:
                sys.exit("dispy-makespan: wrong result %r" % (v,))
            where[pid] = where.get(pid, 0) + 1
        dispy_common.emit_makespan(args, dt, processes=procs,
                                   jobs_per_server=sorted(where.values()))
    finally:
        ex.shutdown(wait=True, cancel_futures=True)


if __name__ == "__main__":
    main()
