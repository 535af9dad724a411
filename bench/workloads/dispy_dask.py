"""The dispycos workloads (``dispy-*``) for Dask distributed.

``LocalCluster(n_workers=2, processes=True)`` on 127.0.0.1 (its scheduler
and two worker processes; not timed, nor is a warm-up), one thread per
worker for ``dispy-jobs`` and ``--slots`` (4) for ``dispy-makespan``.

* ``dispy-jobs``, ``submit`` (the default): one ``client.submit(square, i,
  pure=False)`` per job; ``--window W`` keeps W futures outstanding
  (``as_completed``, a new submit per result), ``--window 0`` submits all
  and then gathers them.  ``--variant map``: ``client.map(square, range(n),
  pure=False)`` then ``client.gather``: all at once only (a map is a whole
  list: it has no window).
* ``dispy-makespan``: every ``nap`` (``time.sleep(0.05)``) submitted at once;
  each worker runs ``slots`` of them at a time on its threads.

The cluster is closed in a ``finally``; ``bench/run.py`` also kills what
is left of the run's session.
"""

import logging
import shutil
import sys
import tempfile
import time
import warnings

import common
import dispy_common

perf = dispy_common.perf


def square(x):
    return x * x


def nap(seconds):
    time.sleep(seconds)
    return seconds


def jobs(client, args, first, n, window, variant):
    from distributed import as_completed
    if variant == "map":
        futs = client.map(square, range(first, first + n), pure=False)
        return client.gather(futs)
    if window == 0:
        futs = [client.submit(square, i, pure=False) for i in range(first, first + n)]
        return client.gather(futs)
    out = {}
    idx = {}
    nxt = first
    ac = as_completed()
    for _ in range(min(window, n)):
        f = client.submit(square, nxt, pure=False)
        idx[f.key] = nxt
        ac.add(f)
        nxt += 1
    for f in ac:
        out[idx.pop(f.key)] = f.result()
        if nxt < first + n:
            g = client.submit(square, nxt, pure=False)
            idx[g.key] = nxt
            ac.add(g)
            nxt += 1
    return [out[i] for i in range(first, first + n)]


def main():
    args = dispy_common.parse_args()
    if args.variant == "map" and (args.workload != "dispy-jobs" or args.window):
        common.unavailable("client.map submits a whole list at once: no window of %d"
                           % args.window if args.workload == "dispy-jobs"
                           else "map: dispy-jobs only")
    warnings.simplefilter("ignore")
    try:
        import distributed
        from distributed import Client, LocalCluster
    except ImportError as exc:
        common.unavailable("distributed not installed (bench/setup.sh): %s" % exc)
    for name in ("distributed", "tornado", "asyncio"):
        logging.getLogger(name).setLevel(logging.ERROR)
    threads = 1 if args.workload == "dispy-jobs" else args.slots
    tmp = tempfile.mkdtemp(prefix="dask-bench-")
    cluster = client = None
    try:
        cluster = LocalCluster(n_workers=args.servers, threads_per_worker=threads,
                               processes=True, host="127.0.0.1", dashboard_address=None,
                               local_directory=tmp, silence_logs=logging.ERROR)
        client = Client(cluster)
        client.wait_for_workers(args.servers, timeout=60)
        warm = dispy_common.warmup_count(args)
        dispy_common.check_squares(jobs(client, args, 0, warm, 8, ""), 0)
        if args.workload == "dispy-jobs":
            t0 = perf()
            res = jobs(client, args, warm, args.n, args.window, args.variant)
            dt = perf() - t0
            dispy_common.check_squares(res, warm)
            dispy_common.emit_jobs(args, dt, dask=distributed.__version__,
                                   variant=args.variant or "submit")
            return
        # the sleepers' threads are up: one nap per slot before timing
        client.gather([client.submit(nap, 0.001, pure=False)
                       for _ in range(args.servers * args.slots)])
        t0 = perf()
        futs = [client.submit(nap, args.sleep, pure=False) for _ in range(args.n)]
        res = client.gather(futs)
        dt = perf() - t0
        if res != [args.sleep] * args.n:
            sys.exit("dispy-makespan: wrong results")
        where = {}
        for w in client.who_has(futs).values():
            for addr in w:
                where[addr] = where.get(addr, 0) + 1
        dispy_common.emit_makespan(args, dt, dask=distributed.__version__,
                                   jobs_per_server=sorted(where.values()))
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
