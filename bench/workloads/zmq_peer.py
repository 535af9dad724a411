"""Networked workloads for pyzmq with pickle (a peer of netpycos).

Every message goes with ``send_pyobj``/``recv_pyobj`` (pickle), over TCP on
127.0.0.1.  ``net-stream``: PUSH/PULL, the 100-byte payloads one way; the
server's PULL counts them and a PUSH back to the client reports the count
(the client's PULL).  ``net-deliver``: REQ/REP, a message and its
acknowledgement.  ``net-rps``: REQ/REP, ``("call", x)`` answered with
``x + 1``.  No file transfer: not in net-file.
"""

import sys
import threading

import common
import netcommon

perf = netcommon.perf
WAIT_MS = 120000        # the longest the client waits for one reply


def serve(zmq):
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    rep = ctx.socket(zmq.REP)
    pull_port = pull.bind_to_random_port("tcp://127.0.0.1")
    rep_port = rep.bind_to_random_port("tcp://127.0.0.1")
    stop = threading.Event()

    def loop():
        poller = zmq.Poller()
        poller.register(pull, zmq.POLLIN)
        poller.register(rep, zmq.POLLIN)
        back = None
        asked = left = 0
        while not stop.is_set():
            for sock, _ev in poller.poll(200):
                if sock is rep:
                    req = rep.recv_pyobj()
                    rep.send_pyobj(1 if req[0] == "deliver" else req[1] + 1)
                    continue
                msg = pull.recv_pyobj()
                if left == 0 and type(msg) is tuple:    # ("count", n, the client's port)
                    asked = left = msg[1]
                    if back is None:
                        back = ctx.socket(zmq.PUSH)
                        back.connect("tcp://127.0.0.1:%d" % msg[2])
                    back.send_pyobj(("go", asked))
                    continue
                left -= 1
                if left == 0:
                    back.send_pyobj(("have", asked))
        for s in (pull, rep, back):
            if s is not None:
                s.close(linger=0)

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    netcommon.ready(pull_port=pull_port, rep_port=rep_port)
    netcommon.wait_for_eof()
    stop.set()
    t.join(5)
    ctx.term()


def _recv(sock, zmq):
    if not sock.poll(WAIT_MS, zmq.POLLIN):
        sys.exit("no reply within %d s" % (WAIT_MS // 1000))
    return sock.recv_pyobj()


def client(zmq, args, info):
    ctx = zmq.Context()
    socks = []
    try:
        w = args.workload
        if w == "net-stream":
            back = ctx.socket(zmq.PULL)
            socks.append(back)
            back_port = back.bind_to_random_port("tcp://127.0.0.1")
            push = ctx.socket(zmq.PUSH)
            socks.append(push)
            push.connect("tcp://127.0.0.1:%d" % info["pull_port"])
            push.send_pyobj(("count", args.n, back_port))
            _recv(back, zmq)                            # ("go", n): both ways connected
            msg = netcommon.payload(args.size)
            t0 = perf()
            for _ in range(args.n):
                push.send_pyobj(msg)
            reply = _recv(back, zmq)
            dt = perf() - t0
            if reply != ("have", args.n):
                sys.exit("net-stream: the receiver said %r" % (reply,))
            netcommon.emit_stream(args.n, args.size, dt)
            return
        req = ctx.socket(zmq.REQ)
        socks.append(req)
        req.connect("tcp://127.0.0.1:%d" % info["rep_port"])
        warm = netcommon.warmup_count(args.n)
        if w == "net-deliver":
            lat = []
            for i in range(warm + args.n):
                t0 = perf()
                req.send_pyobj(("deliver", i))
                ok = _recv(req, zmq)
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
                req.send_pyobj(("call", i))
                if _recv(req, zmq) != i + 1:
                    sys.exit("net-rps: wrong value for call %d" % i)
            netcommon.emit_calls(args.n, perf() - t0)
    finally:
        for s in socks:
            s.close(linger=0)
        ctx.term()


def main():
    args = common.parse_args()
    if args.workload not in ("net-stream", "net-deliver", "net-rps"):
        common.unavailable("pyzmq has no %s workload" % args.workload)
    try:
        import zmq
    except ImportError as exc:
        common.unavailable("pyzmq not installed: %s" % exc)
    if args.serve:
        serve(zmq)
        return
    with netcommon.Server() as server:
        client(zmq, args, server.info)


if __name__ == "__main__":
    main()
