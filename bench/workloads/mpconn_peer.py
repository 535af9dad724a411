"""Networked workloads for ``multiprocessing.connection`` (a peer of netpycos).

One connection made with ``Client``/``Listener`` and an authkey (the
HMAC challenge both ways that netpycos's secret also does); every message
is pickled by ``Connection.send``.  ``net-stream``: the client sends the
100-byte payloads one way; the server counts them and sends the count back.
``net-deliver``: a message and its acknowledgement.  ``net-rps``: a call
``("call", x)`` answered with ``x + 1``.  No file transfer: not in net-file.
"""

import sys
import threading
from multiprocessing.connection import Client, Listener

import common
import netcommon

perf = netcommon.perf
AUTHKEY = netcommon.SECRET.encode()


def _serve_conn(conn):
    try:
        while True:
            msg = conn.recv()
            kind = msg[0]
            if kind == "count":
                n = msg[1]
                for _ in range(n):
                    conn.recv()
                conn.send(("have", n))
            elif kind == "deliver":
                conn.send(1)
            elif kind == "call":
                conn.send(msg[1] + 1)
    except (EOFError, OSError):
        pass
    conn.close()


def serve():
    listener = Listener(("127.0.0.1", 0), authkey=AUTHKEY)

    def accept():
        while True:
            try:
                conn = listener.accept()
            except OSError:
                return
            threading.Thread(target=_serve_conn, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    netcommon.ready(port=listener.address[1])
    netcommon.wait_for_eof()
    listener.close()


def client(args, port):
    conn = Client(("127.0.0.1", port), authkey=AUTHKEY)
    try:
        w = args.workload
        if w == "net-stream":
            msg = netcommon.payload(args.size)
            t0 = perf()
            conn.send(("count", args.n))
            for _ in range(args.n):
                conn.send(msg)
            reply = conn.recv()
            dt = perf() - t0
            if reply != ("have", args.n):
                sys.exit("net-stream: the receiver said %r" % (reply,))
            netcommon.emit_stream(args.n, args.size, dt)
        elif w == "net-deliver":
            warm = netcommon.warmup_count(args.n)
            lat = []
            for i in range(warm + args.n):
                t0 = perf()
                conn.send(("deliver", i))
                ok = conn.recv()
                dt = perf() - t0
                if ok != 1:
                    sys.exit("net-deliver: ack %r" % (ok,))
                if i >= warm:
                    lat.append(dt)
            netcommon.emit_latency(lat)
        else:
            warm = netcommon.warmup_count(args.n)
            for i in range(warm + args.n):
                if i == warm:
                    t0 = perf()
                conn.send(("call", i))
                if conn.recv() != i + 1:
                    sys.exit("net-rps: wrong value for call %d" % i)
            netcommon.emit_calls(args.n, perf() - t0)
    finally:
        conn.close()


def main():
    args = common.parse_args()
    if args.workload not in ("net-stream", "net-deliver", "net-rps"):
        common.unavailable("multiprocessing.connection has no %s workload" % args.workload)
    if args.serve:
        serve()
        return
    with netcommon.Server() as server:
        client(args, server.info["port"])


if __name__ == "__main__":
    main()
