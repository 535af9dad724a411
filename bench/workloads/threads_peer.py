"""Workloads for plain threads: ``threading.Thread``, ``queue.Queue``, ``time.sleep``,
and a thread-per-connection ``socketserver`` echo server.

What one would write with no framework at all.  Threads cost far more than
tasks, so ``bench/run.py`` gives this peer smaller sizes (the table shows
them; rates stay comparable).
"""

import queue
import socketserver
import threading
import time

import common

perf = time.perf_counter


def _trivial():
    return 0


def spawn(n):
    t0 = perf()
    for _ in range(n):
        t = threading.Thread(target=_trivial)
        t.start()
        t.join()
    dt = perf() - t0
    common.emit(n=n, seconds=dt, tasks_per_s=n / dt)


def _pong(inbox, outbox):
    while True:
        msg = inbox.get()
        if msg is None:
            return
        outbox.put(msg)


def switch(n):
    to_pong, to_ping = queue.Queue(), queue.Queue()
    pong = threading.Thread(target=_pong, args=(to_pong, to_ping))
    pong.start()
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
    time.sleep(delay)
    late[idx] = perf() - t0 - delay


def timers(n, max_delay):
    delays = common.timer_delays(n, max_delay)
    late = [0.0] * n
    t0 = perf()
    threads = [threading.Thread(target=_sleeper, args=(d, i, late)) for i, d in enumerate(delays)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    common.timer_report(late, perf() - t0, max_delay)


def _subscriber(inbox, counts, idx):
    count = 0
    while True:
        msg = inbox.get()
        if msg is None:
            break
        count += 1
    counts[idx] = count


def fanout(subs, n):
    queues = [queue.Queue() for _ in range(subs)]
    counts = [0] * subs
    threads = [threading.Thread(target=_subscriber, args=(q, counts, i))
               for i, q in enumerate(queues)]
    for t in threads:
        t.start()
    t0 = perf()
    for i in range(n):
        for q in queues:
            q.put(i)
    for q in queues:
        q.put(None)
    for t in threads:
        t.join()
    dt = perf() - t0
    total = sum(counts)
    assert total == subs * n, total
    common.emit(subs=subs, n=n, seconds=dt, deliveries_per_s=total / dt)


class _Echo(socketserver.BaseRequestHandler):
    ssl_context = None

    def handle(self):
        sock = self.request
        common.nodelay(sock)
        try:
            if self.ssl_context is not None:
                sock = self.ssl_context.wrap_socket(sock, server_side=True)
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                sock.sendall(data)
        except OSError:
            pass


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def server(args):
    if args.workload == "tls":
        _Echo.ssl_context = common.server_ssl_context(args)
    _Server.request_queue_size = args.backlog
    srv = _Server(("127.0.0.1", 0), _Echo)
    common.ready(srv.server_address[1])
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
