"""Networked workloads for Pyro5 (a peer of netpycos).

The server registers one object with a ``Daemon`` on 127.0.0.1 (Pyro5's
defaults otherwise: the thread-pool server and the serpent serializer; Pyro5
has no pickle) and the client calls it through a ``Proxy``.
``net-stream``: a ``@oneway`` method per 100-byte message (Pyro5 runs each
oneway call in a thread of its own), then a normal call that returns once
the object has counted them all.  ``net-deliver``: a normal (two-way) call
that returns an acknowledgement.  ``net-rps``: a normal call returning
``x + 1``.  No file transfer: not in net-file.
"""

import sys
import threading

import common
import netcommon

perf = netcommon.perf
WAIT = 120.0            # the longest the stream's final call waits


def serve(api):
    @api.expose
    class Bench:
        def __init__(self):
            self.count = 0
            self.cond = threading.Condition()

        @api.oneway
        def put(self, msg):
            with self.cond:
                self.count += 1
                self.cond.notify_all()

        def have(self, n):
            """Wait until ``n`` messages came (then start counting anew)."""
            with self.cond:
                self.cond.wait_for(lambda: self.count >= n, WAIT)
                got, self.count = self.count, 0
            return got

        def ack(self, msg):
            return 1

        def call(self, x):
            return x + 1

    daemon = api.Daemon(host="127.0.0.1", port=0)
    uri = daemon.register(Bench(), "bench")
    t = threading.Thread(target=daemon.requestLoop, daemon=True)
    t.start()
    netcommon.ready(uri=str(uri))
    netcommon.wait_for_eof()
    daemon.shutdown()
    t.join(5)
    daemon.close()


def client(api, args, uri):
    with api.Proxy(uri) as proxy:
        proxy._pyroBind()
        w = args.workload
        if w == "net-stream":
            msg = netcommon.payload(args.size)
            t0 = perf()
            for _ in range(args.n):
                proxy.put(msg)
            got = proxy.have(args.n)
            dt = perf() - t0
            if got != args.n:
                sys.exit("net-stream: the receiver counted %r of %d" % (got, args.n))
            netcommon.emit_stream(args.n, args.size, dt)
            return
        warm = netcommon.warmup_count(args.n)
        if w == "net-deliver":
            lat = []
            for i in range(warm + args.n):
                t0 = perf()
                ok = proxy.ack(i)
                dt = perf() - t0
                if ok != 1:
                    sys.exit("net-deliver: ack %r" % (ok,))
                if i >= warm:
                    lat.append(dt)
            netcommon.emit_latency(lat)
        else:
            for i in range(warm + args.n):
                if i == warm:
                    t0 = perf()
                if proxy.call(i) != i + 1:
                    sys.exit("net-rps: wrong value for call %d" % i)
            netcommon.emit_calls(args.n, perf() - t0)


def main():
    args = common.parse_args()
    if args.workload not in ("net-stream", "net-deliver", "net-rps"):
        common.unavailable("Pyro5 has no %s workload" % args.workload)
    try:
        import Pyro5.api as api
    except ImportError as exc:
        common.unavailable("Pyro5 not installed: %s" % exc)
    if args.serve:
        serve(api)
        return
    with netcommon.Server() as server:
        client(api, args, server.info["uri"])


if __name__ == "__main__":
    main()
