"""The dispycos workloads (``dispy-*``) for Ray.

``ray.init(num_cpus=2)`` (its GCS, raylet and workers; not timed, nor is a
warm-up).  ``dispy-jobs``: a remote function ``square`` (one CPU each, so
two run at a time), one ``square.remote(i)`` per job; ``--window W`` keeps
W outstanding (``ray.wait`` for one, then the next ``.remote``),
``--window 0`` submits all and then ``ray.get``\\ s them.
``dispy-makespan``: two actors (one CPU each, so one worker process each)
with ``max_concurrency=4``: each runs 4 ``nap`` calls (``time.sleep(0.05)``)
at a time on its threads; every call is submitted at once, alternating
between the two actors.  ``ray.shutdown()`` in a ``finally`` stops every
process it started; its session directory is removed.
"""

import os
import shutil
import sys
import tempfile
import time

import common
import dispy_common

perf = dispy_common.perf


def square(x):
    return x * x


class Napper:
    def nap(self, seconds):
        time.sleep(seconds)
        return seconds

    def pid(self):
        return os.getpid()


def jobs(ray, fn, first, n, window):
    if window == 0:
        return ray.get([fn.remote(i) for i in range(first, first + n)], timeout=600)
    out = {}
    pending = {}
    nxt = first
    for _ in range(min(window, n)):
        pending[fn.remote(nxt)] = nxt
        nxt += 1
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            out[pending.pop(ref)] = ray.get(ref)
            if nxt < first + n:
                pending[fn.remote(nxt)] = nxt
                nxt += 1
    return [out[i] for i in range(first, first + n)]


def run(ray, args):
    if args.workload == "dispy-jobs":
        fn = ray.remote(num_cpus=1)(square)
        warm = dispy_common.warmup_count(args)
        dispy_common.check_squares(jobs(ray, fn, 0, warm, 8), 0)
        t0 = perf()
        res = jobs(ray, fn, warm, args.n, args.window)
        dt = perf() - t0
        dispy_common.check_squares(res, warm)
        dispy_common.emit_jobs(args, dt, ray=ray.__version__)
        return
    cls = ray.remote(num_cpus=1, max_concurrency=args.slots)(Napper)
    actors = [cls.remote() for _ in range(args.servers)]
    ray.get([a.pid.remote() for a in actors], timeout=120)        # both are up
    ray.get([a.nap.remote(0.001) for a in actors for _ in range(args.slots)])
    t0 = perf()
    refs = [actors[i % len(actors)].nap.remote(args.sleep) for i in range(args.n)]
    res = ray.get(refs, timeout=600)
    dt = perf() - t0
    if res != [args.sleep] * args.n:
        sys.exit("dispy-makespan: wrong results")
    dispy_common.emit_makespan(args, dt, ray=ray.__version__,
                               jobs_per_server=[len(range(i, args.n, len(actors)))
                                                for i in range(len(actors))])


def main():
    args = dispy_common.parse_args()
    if os.environ.get("BENCH_RAY", "1") == "0":
        common.unavailable("BENCH_RAY=0")
    try:
        import ray
    except ImportError as exc:
        common.unavailable("ray not installed: %s" % exc)
    # Ray's session files go to a directory of this run (a short path: its
    # AF_UNIX sockets live under it), removed at the end
    tmp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    try:
        ray.init(num_cpus=args.servers, include_dashboard=False, log_to_driver=False,
                 configure_logging=False, _temp_dir=tmp)
        try:
            run(ray, args)
        finally:
            ray.shutdown()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
