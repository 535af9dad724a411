"""The dispycos workloads (``dispy-*``) for both pycos implementations.

One text serves this project's pycos (run with ``.venv/bench``'s python)
and the original 4.12.2 (``.venv/bench-pycos4``'s): the calls are the
documented 4.x dispycos API, and each run uses the package of the
interpreter that runs it.

* The client process (this one) makes its netpycos scheduler on 127.0.0.1
  with the run's secret and no UDP discovery (``udp_port=0``).
* It starts a real node daemon of the same package,
  ``python -m pycos.dispycosnode -c 2 -i 127.0.0.1 -s SECRET --node_ports 0
  --dest_path TMP --peer 127.0.0.1:<the client's port>``: the node finds
  the client by that ``--peer`` (both implementations take it), not by a
  broadcast.  The node runs with a temporary directory as its working
  directory, so the original's node never imports this tree's ``pycos``.
* ``Client([square, nap])``, ``yield client.schedule()``, then (not timed)
  until ``yield client.servers()`` lists both server processes, then a
  warm-up.
* ``dispy-jobs``: ``rtask = yield client.rtask(square, i)`` and
  ``yield rtask()``.  A CPU job waits in ``rtask`` for a free server, so
  jobs in flight are tasks of this process: ``--window W`` runs W tasks
  that each submit their next job when their last one ends; ``--window 0``
  starts one task per job, all at once (all ``n`` submitted together).
* ``dispy-makespan``: ``io_rtask(nap, 0.05)`` (I/O jobs have no
  one-per-server limit): ``servers * slots`` tasks each keep one in flight,
  so each server has ``slots`` jobs sleeping at a time (I/O jobs go to the
  server with the fewest jobs; the result tells how many each ran).
* ``yield client.close()``; the node gets ``quit`` and is stopped (killed
  with its servers if need be) in a ``finally``.
"""

import logging
import os
import shutil
import sys
import tempfile
import warnings

import common
import dispy_common

perf = dispy_common.perf
TIMEOUT = 60        # seconds: a node's servers to run jobs, a phase beyond its expected time


# -- the jobs (sent to the servers as source) -----------------------------------

def square(x, task=None):
    return x * x
    yield       # a job is a generator function  # pragma: no cover


def nap(seconds, task=None):
    yield task.sleep(seconds)
    return seconds


# -- the client -----------------------------------------------------------------

class Failed(Exception):
    pass


class StartupFailed(Failed):
    """The warm-up did not end: the run is tried once more with a new node.
    Seen with the original 4.12.2 on this machine, in about 1 run of 10:
    its node logs "invalid task ... to resume" at its start and never
    starts its server processes, or a warm-up job's result never arrives."""


def _one_job(pycos, client, i, out, task=None):
    rtask = yield client.rtask(square, i)
    if not isinstance(rtask, pycos.Task):
        raise Failed("rtask(square, %d) returned %r" % (i, rtask))
    out[i] = yield rtask()
    out.setdefault("servers", set()).add(str(rtask.location))


def _window_worker(pycos, client, state, out, last, task=None):
    """Submit the next job index, wait for its result, again until ``last``."""
    while state[0] < last:
        i = state[0]
        state[0] += 1
        yield from _one_job(pycos, client, i, out, task=task)


def _finish_all(pycos, workers, seconds, task=None):
    """Wait for every task in ``workers``, all within ``seconds``."""
    deadline = perf() + seconds
    for w in workers:
        left = deadline - perf()
        r = (yield w.finish(timeout=left)) if left > 0 else None
        if left <= 0 or (r is None and w.is_alive()):
            for x in workers:
                if x.is_alive():
                    x.terminate()
            raise Failed("not done within %.0f s" % seconds)
        if isinstance(r, (pycos.MonitorStatus, BaseException)):
            raise Failed("a submitting task ended with %r" % (r,))


def _run_jobs(pycos, client, first, n, window, out, seconds, task=None):
    """Jobs first .. first + n - 1; ``window`` 0: all at once."""
    if window:
        state = [first]
        workers = [pycos.Task(_window_worker, pycos, client, state, out, first + n)
                   for _ in range(min(window, n))]
    else:
        workers = [pycos.Task(_one_job, pycos, client, i, out) for i in range(first, first + n)]
    yield from _finish_all(pycos, workers, seconds, task=task)


def _nap_worker(pycos, client, state, n, seconds, where, task=None):
    while state[0] < n:
        state[0] += 1
        rtask = yield client.io_rtask(nap, seconds)
        if not isinstance(rtask, pycos.Task):
            raise Failed("io_rtask(nap) returned %r" % (rtask,))
        v = yield rtask()
        if v != seconds:
            raise Failed("nap returned %r" % (v,))
        key = str(rtask.location)
        where[key] = where.get(key, 0) + 1


def _main(pycos, args, task=None):
    from pycos.dispycos import Client
    client = Client([square, nap])
    try:
        if (yield client.schedule()) != 0:
            raise Failed("client.schedule() failed")
        # warm-up rounds until both server processes have run jobs (the
        # original's client.servers() returns None: it drops the reply)
        warm = dispy_common.warmup_count(args)
        t0 = perf()
        while True:
            out = {}
            try:
                yield from _run_jobs(pycos, client, 0, warm, 8, out, 30, task=task)
            except Failed as exc:
                raise StartupFailed("warm-up: %s; jobs ran on %d of %d servers"
                                    % (exc, len(out.get("servers", ())), args.servers))
            if len(out.get("servers", ())) >= args.servers:
                break
            if perf() - t0 > TIMEOUT:
                raise Failed("jobs ran on %d of %d servers after %d s"
                             % (len(out.get("servers", ())), args.servers, TIMEOUT))
            yield task.sleep(0.05)
        if args.workload == "dispy-jobs":
            out = {}
            t0 = perf()
            try:
                yield from _run_jobs(pycos, client, warm, args.n, args.window, out,
                                     20 + args.n / 20.0, task=task)
            except Failed as exc:
                raise Failed("%s: %d results of %d (a job's result never came)"
                             % (exc, len(out) - ("servers" in out), args.n))
            dt = perf() - t0
            if len(out) != args.n + 1:
                raise Failed("%d results of %d" % (len(out) - 1, args.n))
            dispy_common.check_squares([out[i] for i in range(warm, warm + args.n)], warm)
            return dt, {}
        state, where = [0], {}
        t0 = perf()
        workers = [pycos.Task(_nap_worker, pycos, client, state, args.n, args.sleep, where)
                   for _ in range(args.servers * args.slots)]
        yield from _finish_all(pycos, workers, 20 + args.n * args.sleep, task=task)
        dt = perf() - t0
        if sum(where.values()) != args.n:
            raise Failed("%d naps of %d" % (sum(where.values()), args.n))
        return dt, {"jobs_per_server": sorted(where.values())}
    except Failed as exc:
        return exc
    finally:
        yield client.close(terminate=True, timeout=10)


def main(args):
    warnings.simplefilter("ignore")
    try:
        import pycos
        import pycos.netpycos as netpycos
        import pycos.dispycos  # noqa: F401
    except (ImportError, AttributeError) as exc:
        common.unavailable("pycos.dispycos is not importable: %s" % exc)
    version = getattr(pycos, "__version__", "?")
    logger = getattr(pycos, "logger", None)
    if logger is not None:
        logger.setLevel(logging.WARNING)
    tmp = tempfile.mkdtemp(prefix="pycos-bench-dispy-")
    node = None
    retry = False
    try:
        sched = netpycos.Pycos(name="bench-dispy-client", host="127.0.0.1", udp_port=0,
                               tcp_port=0, secret=dispy_common.SECRET,
                               dest_path=os.path.join(tmp, "client"))
        loc = getattr(sched, "location", None) or sched._location
        cmd = [sys.executable, "-m", "pycos.dispycosnode", "-c", str(args.servers),
               "-i", "127.0.0.1", "-s", dispy_common.SECRET, "--node_ports", "0",
               "--dest_path", os.path.join(tmp, "node"), "--peer", "127.0.0.1:%d" % loc.port]
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        node = dispy_common.Daemon(cmd, cwd=tmp, env=env,
                                   log_path=os.path.join(tmp, "node.log"))
        res = netpycos.Task(_main, netpycos, args).value(
            timeout=3 * TIMEOUT + args.n / 20.0 + args.n * args.sleep)
        node.note_children()
        if isinstance(res, Failed) or not isinstance(res, tuple):
            sys.stderr.write("node output:\n%s\n" % node.output()[-3000:])
            if isinstance(res, StartupFailed) and args.attempt < 2:
                retry = True
            else:
                sys.exit("%s: %s" % (args.workload, res))
        try:
            sched.terminate()
        except Exception:
            pass
    finally:
        if node is not None:
            node.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    if retry:
        sys.stderr.write("%s: %s: trying again with a new node\n" % (args.workload, res))
        sys.stderr.flush()
        sys.stdout.flush()
        os.execv(sys.executable, [sys.executable, os.path.abspath(__file__)] + sys.argv[1:]
                 + ["--attempt", str(args.attempt + 1)])
    dt, extra = res
    extra["attempt"] = args.attempt
    impl = "original" if version.startswith("4.") else "this"
    if args.workload == "dispy-jobs":
        dispy_common.emit_jobs(args, dt, version=version, impl=impl, **extra)
    else:
        dispy_common.emit_makespan(args, dt, version=version, impl=impl, **extra)


if __name__ == "__main__":
    main(dispy_common.parse_args())
