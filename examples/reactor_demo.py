"""A tour of the C reactor on its own, without the pycos scheduler.

One loop drives a TCP echo server and a few clients through completion-style
operations, a timer prints progress, a plain thread wakes the loop, and the
loop's counters show what each echoed message cost in syscalls.

    python examples/reactor_demo.py [--backend epoll|poll] [--clients N] [--seconds S]
"""
import argparse
import socket
import threading
import time

from pycos import reactor
from pycos.reactor import EV_DONE, EV_TIMER, EV_WAKEUP, PENDING

MSG = b"x" * 100


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default=None, help="epoll or poll (default: best)")
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=1.0)
    args = ap.parse_args()

    loop = reactor.Loop(args.backend)
    print("reactor backend: %s (compiled in: %s)" % (loop.backend, ", ".join(reactor.backends())))

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    lfd = listener.fileno()

    # token -> (what, fd, buffer); tokens are plain integers we hand out
    waiting = {}
    next_token = [1]
    socks = []

    def token_for(what, fd, buf=None):
        t = next_token[0]
        next_token[0] += 1
        waiting[t] = (what, fd, buf)
        return t

    def completed(what, fd, buf, result):
        """Handle one completion (inline or from an event) and start the next step."""
        while True:
            if result < 0:
                raise reactor.error(result)
            if what == "accept":
                conn_fd = result
                socks.append(socket.socket(fileno=conn_fd))
                start(("srv-recv", conn_fd, bytearray(len(MSG))))
                what, fd, buf = "accept", lfd, None
                result = loop.accept(lfd, token_for(what, fd))
            elif what == "srv-recv":       # echo it back, then read the next one
                loop.send(fd, buf, token_for("srv-send", fd), all=True)
                result = loop.recv(fd, buf, token_for(what, fd, buf), all=True)
            elif what == "cli-recv":
                stats["echoed"] += 1
                loop.send(fd, MSG, token_for("cli-send", fd), all=True)
                result = loop.recv(fd, buf, token_for(what, fd, buf), all=True)
            else:                          # a send finished
                return
            if result == PENDING:
                return
            waiting.pop(next_token[0] - 1, None)

    def start(step):
        what, fd, buf = step
        if what in ("srv-recv", "cli-recv"):
            r = loop.recv(fd, buf, token_for(what, fd, buf), all=True)
        else:
            r = loop.accept(fd, token_for(what, fd))
        if r != PENDING:
            waiting.pop(next_token[0] - 1, None)
            completed(what, fd, buf, r)

    stats = {"echoed": 0}
    start(("accept", lfd, None))
    clients = []
    for _ in range(args.clients):
        c = socket.create_connection(listener.getsockname())
        c.setblocking(False)
        clients.append(c)
        loop.send(c.fileno(), MSG, token_for("cli-send", c.fileno()), all=True)
        start(("cli-recv", c.fileno(), bytearray(len(MSG))))

    tick = 0.25
    ticker = loop.timer_after(tick, -1)
    stop_at = time.monotonic() + args.seconds
    threading.Timer(args.seconds / 2, loop.wakeup).start()
    before = loop.statistics()
    t0 = time.monotonic()
    last = 0
    while time.monotonic() < stop_at:
        for ev in loop.poll(1.0):
            if ev.kind == EV_TIMER:
                n = stats["echoed"]
                print("  t=%.2fs  echoed %7d messages (+%d)" % (time.monotonic() - t0, n, n - last))
                last = n
                ticker = loop.timer_after(tick, -1)
            elif ev.kind == EV_WAKEUP:
                print("  a plain thread woke the loop (rx_wakeup)")
            elif ev.kind == EV_DONE:
                what, fd, buf = waiting.pop(ev.token)
                completed(what, fd, buf, ev.result)
    elapsed = time.monotonic() - t0
    after = loop.statistics()
    n = stats["echoed"]
    print("echoed %d messages over %d connections in %.2fs: %.0f round trips/s"
          % (n, args.clients, elapsed, n / elapsed))
    print("syscalls per round trip (client + server side, both in this process): %.2f"
          % ((after["syscalls"] - before["syscalls"]) / max(n, 1)))

    loop.timer_cancel(ticker)
    for c in clients + socks + [listener]:
        loop.forget(c.fileno())
        c.close()
    while loop.statistics()["queued_events"]:
        loop.poll(0)
    print("left behind:", {k: v for k, v in loop.statistics().items()
                           if k in ("pending_ops", "registered_fds", "timers") and v} or "nothing")
    loop.close()


if __name__ == "__main__":
    main()
