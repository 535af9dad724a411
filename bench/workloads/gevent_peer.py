"""Workloads for gevent: greenlets, ``gevent.queue.Queue``, ``gevent.sleep``, StreamServer.

No monkey-patching: the workloads use gevent's own API directly.
"""

import time

import gevent
import gevent.queue
import gevent.server

import common

perf = time.perf_counter


def _trivial():
    return 0


def spawn(n):
    t0 = perf()
    greenlets = [gevent.spawn(_trivial) for _ in range(n)]
    gevent.joinall(greenlets)
    dt = perf() - t0
    common.emit(n=n, seconds=dt, tasks_per_s=n / dt)


def _pong(inbox, outbox):
    while True:
        msg = inbox.get()
        if msg is None:
            return
        outbox.put(msg)


def switch(n):
    to_pong, to_ping = gevent.queue.Queue(), gevent.queue.Queue()
    pong = gevent.spawn(_pong, to_pong, to_ping)
    t0 = perf()
    for i in range(n):
        to_pong.put(i)
        to_ping.get()
    dt = perf() - t0
    to_pong.put(None)
    pong.join()
    common.emit(n=n, seconds=dt, round_trips_per_s=n / dt, us_per_round_trip=dt / n * 1e6)


def _sleeper(delay, idx, late):
    t0 = perf()
    gevent.sleep(delay)
    late[idx] = perf() - t0 - delay


def timers(n, max_delay):
    delays = common.timer_delays(n, max_delay)
    late = [0.0] * n
    t0 = perf()
    gevent.joinall([gevent.spawn(_sleeper, d, i, late) for i, d in enumerate(delays)])
    common.timer_report(late, perf() - t0, max_delay)


def _subscriber(queue):
    count = 0
    while True:
        msg = queue.get()
        if msg is None:
            return count
        count += 1


def fanout(subs, n):
    queues = [gevent.queue.Queue() for _ in range(subs)]
    greenlets = [gevent.spawn(_subscriber, q) for q in queues]
    t0 = perf()
    for i in range(n):
        for q in queues:
            q.put(i)
        gevent.sleep(0)
    for q in queues:
        q.put(None)
    gevent.joinall(greenlets)
    dt = perf() - t0
    total = sum(g.value for g in greenlets)
    assert total == subs * n, total
    common.emit(subs=subs, n=n, seconds=dt, deliveries_per_s=total / dt)


def _echo(sock, _addr):
    common.nodelay(sock)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                break
            sock.sendall(data)
    except OSError:
        pass


def server(args):
    kw = {}
    if args.workload == "tls":
        kw["ssl_context"] = common.server_ssl_context(args)
    # gevent makes (and owns) the listening socket: a stdlib socket handed in
    # would block the hub in accept()
    srv = gevent.server.StreamServer(("127.0.0.1", 0), _echo, backlog=args.backlog, **kw)
    srv.start()
    common.ready(srv.server_port)
    srv.serve_forever()


def main():
    args = common.parse_args()
    w = args.workload
    if w in common.SERVER_WORKLOADS:
        server(args)
    elif w == "spawn":
        spawn(args.n)
    elif w == "switch":
        switch(args.n)
    elif w == "timers":
        timers(args.n, args.max_delay)
    else:
        fanout(args.subs, args.n)


if __name__ == "__main__":
    main()
