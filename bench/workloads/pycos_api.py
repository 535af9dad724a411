"""The workloads written once against the pycos 4.x API (API.md section 1).

Both pycos implementations run this same file: ``pycos_new.py`` (this project)
and ``pycos4.py`` (the original pycos 4.12.2, in its own virtual environment)
import :func:`main` after checking which ``pycos`` they got.  The API names
are the same, so one idiomatic text serves both and the comparison is fair.

Each workload runs inside one task; the main thread only waits for its value
(the scheduler runs in its own thread, as pycos programs are written).
"""

import sys
import time

import common

perf = time.perf_counter


def _need(pycos, *names):
    """Report "not available" unless ``pycos`` has every attribute in ``names``."""
    for name in names:
        if not hasattr(pycos, name):
            common.unavailable("pycos.%s is not implemented yet" % name)


# -- spawn -------------------------------------------------------------------

class _Countdown:
    """Wakes ``waiter`` (suspended in ``sleep()``) when ``left`` reaches 0.

    Waiting for many tasks with one suspend/resume, rather than one
    ``yield t.finish()`` per task, keeps the measurement on spawning: the
    original pycos makes every scheduler round O(tasks ever scheduled) after
    a burst (its ready set never shrinks), and ``finish()`` per task costs one
    round each, which turned 100,000 tasks into a quadratic 70 s.
    """

    __slots__ = ("left", "waiter")

    def __init__(self, left, waiter):
        self.left = left
        self.waiter = waiter

    def done(self):
        self.left -= 1
        if self.left == 0:
            self.waiter.resume()


def _trivial(countdown):
    countdown.done()
    return 0
    yield  # pragma: no cover - makes this a generator function


def _spawn(pycos, n, task=None):
    t0 = perf()
    countdown = _Countdown(n, task)
    for _ in range(n):
        pycos.Task(_trivial, countdown)
    yield task.sleep()                  # resumed by the last task
    return perf() - t0


# -- switch ------------------------------------------------------------------

def _pong(peer, task=None):
    while True:
        msg = yield task.receive()
        if msg is None:
            return
        peer.send(msg)


def _switch(pycos, n, task=None):
    pong = pycos.Task(_pong, task)
    t0 = perf()
    for i in range(n):
        pong.send(i)
        yield task.receive()
    dt = perf() - t0
    pong.send(None)
    yield pong.finish()
    return dt


# -- timers ------------------------------------------------------------------

def _sleeper(delay, idx, late, countdown, task=None):
    t0 = perf()
    yield task.sleep(delay)
    late[idx] = perf() - t0 - delay
    countdown.done()


def _timers(pycos, delays, task=None):
    late = [0.0] * len(delays)
    t0 = perf()
    countdown = _Countdown(len(delays), task)
    for i, d in enumerate(delays):
        pycos.Task(_sleeper, d, i, late, countdown)
    yield task.sleep()                  # resumed by the last sleeper
    return perf() - t0, late


# -- channel fan-out ---------------------------------------------------------

def _subscriber(task=None):
    count = 0
    while True:
        msg = yield task.receive()
        if msg is None:
            return count
        count += 1


def _fanout(pycos, subs, msgs, task=None):
    channel = pycos.Channel("bench-fanout")
    tasks = [pycos.Task(_subscriber) for _ in range(subs)]
    for t in tasks:
        yield channel.subscribe(t)
    t0 = perf()
    for i in range(msgs):
        yield channel.send(i)        # send() is [y?]: yielding lets subscribers run
    channel.send(None)
    total = 0
    for t in tasks:
        total += yield t.finish()
    return perf() - t0, total


# -- echo / c10k / tls servers -------------------------------------------------

def _echo_conn(conn, task=None):
    common.nodelay(conn)
    try:
        while True:
            data = yield conn.recv(65536)
            if not data:
                break
            yield conn.sendall(data)
    except OSError:
        pass
    conn.close()


def _server(pycos, args, tls, task=None):
    raw = common.listen_socket(args.backlog)
    if tls:
        sock = pycos.AsyncSocket(raw, certfile=args.certfile, keyfile=args.keyfile)
    else:
        sock = pycos.AsyncSocket(raw)
    common.ready(raw.getsockname()[1])
    while True:
        conn, _addr = yield sock.accept()
        pycos.Task(_echo_conn, conn)


def _check(pycos, value):
    """A task's value is a MonitorStatus when it raised: make that a crash."""
    status = getattr(pycos, "MonitorStatus", None)
    if status is not None and isinstance(value, status):
        sys.stderr.write("workload task failed: %r\n%s\n" % (value.type, value.value))
        sys.exit(1)
    return value


def main(pycos, args, **extra):
    """Run ``args.workload`` with the already imported ``pycos`` module."""
    w = args.workload
    _need(pycos, "Task", "Pycos")
    if w in common.SERVER_WORKLOADS:
        _need(pycos, "AsyncSocket")
        task = pycos.Task(_server, pycos, args, w == "tls")
        _check(pycos, task.value())
        return
    if w == "fanout":
        _need(pycos, "Channel")
    pycos.Pycos()                       # start the scheduler outside the timing
    if w == "spawn":
        dt = _check(pycos, pycos.Task(_spawn, pycos, args.n).value())
        common.emit(n=args.n, seconds=dt, tasks_per_s=args.n / dt, **extra)
    elif w == "switch":
        dt = _check(pycos, pycos.Task(_switch, pycos, args.n).value())
        common.emit(n=args.n, seconds=dt, round_trips_per_s=args.n / dt,
                    us_per_round_trip=dt / args.n * 1e6, **extra)
    elif w == "timers":
        delays = common.timer_delays(args.n, args.max_delay)
        wall, late = _check(pycos, pycos.Task(_timers, pycos, delays).value())
        common.timer_report(late, wall, args.max_delay, **extra)
    elif w == "fanout":
        dt, total = _check(pycos, pycos.Task(_fanout, pycos, args.subs, args.n).value())
        if total != args.subs * args.n:
            sys.exit("fanout: %d deliveries, expected %d" % (total, args.subs * args.n))
        common.emit(subs=args.subs, n=args.n, seconds=dt, deliveries_per_s=total / dt, **extra)
