"""Networked workloads for Ray actors (a peer of netpycos).

The driver (this process) starts a local Ray instance (``ray.init``: its
own GCS, raylet and worker processes; not timed) and one actor, a worker
process of its own, and calls its methods.  ``net-stream``: ``put.remote(msg)``
per 100-byte message without waiting, then ``ray.get(actor.have.remote())``:
an actor runs its calls in the order they were made, so that answer comes
after every message.  ``net-deliver``: ``ray.get(actor.ack.remote(x))``.
``net-rps``: ``ray.get(actor.call.remote(x))`` returning ``x + 1``.  No file
transfer: not in net-file.  ``ray.shutdown()`` stops every process it started;
its session directory is removed.
"""

import shutil
import sys
import tempfile

import common
import netcommon

perf = netcommon.perf


class Bench:
    def __init__(self):
        self.count = 0

    def put(self, msg):
        self.count += 1

    def have(self):
        got, self.count = self.count, 0
        return got

    def ack(self, x):
        return 1

    def call(self, x):
        return x + 1


def run(ray, args):
    actor = ray.remote(Bench).remote()
    ray.get(actor.ack.remote(0))                # the actor's process is up
    w = args.workload
    if w == "net-stream":
        msg = netcommon.payload(args.size)
        t0 = perf()
        for _ in range(args.n):
            actor.put.remote(msg)
        got = ray.get(actor.have.remote(), timeout=300)
        dt = perf() - t0
        if got != args.n:
            sys.exit("net-stream: the actor counted %r of %d" % (got, args.n))
        netcommon.emit_stream(args.n, args.size, dt, ray=ray.__version__)
        return
    warm = netcommon.warmup_count(args.n)
    if w == "net-deliver":
        lat = []
        for i in range(warm + args.n):
            t0 = perf()
            ok = ray.get(actor.ack.remote(i))
            dt = perf() - t0
            if ok != 1:
                sys.exit("net-deliver: ack %r" % (ok,))
            if i >= warm:
                lat.append(dt)
        netcommon.emit_latency(lat, ray=ray.__version__)
    else:
        for i in range(warm + args.n):
            if i == warm:
                t0 = perf()
            if ray.get(actor.call.remote(i)) != i + 1:
                sys.exit("net-rps: wrong value for call %d" % i)
        netcommon.emit_calls(args.n, perf() - t0, ray=ray.__version__)


def main():
    args = common.parse_args()
    if args.workload not in ("net-stream", "net-deliver", "net-rps"):
        common.unavailable("Ray has no %s workload" % args.workload)
    try:
        import ray
    except ImportError as exc:
        common.unavailable("ray not installed: %s" % exc)
    # Ray's session files (logs, sockets) go to a directory of this run, not
    # to /tmp/ray where they would pile up (a short path: Ray's AF_UNIX
    # sockets live under it)
    tmp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 configure_logging=False, _temp_dir=tmp)
        try:
            run(ray, args)
        finally:
            ray.shutdown()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
