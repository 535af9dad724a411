"""The networked workloads (``net-*``) written once against the netpycos API.

Both pycos implementations run this file, as they do ``pycos_api.py``:
``pycos_new.py`` (this project) and ``pycos4.py`` (the original 4.12.2, in
its own environment) call :func:`main` with their ``pycos.netpycos``.  The
calls are the 4.x ones, so one text serves both:

* the two schedulers listen on 127.0.0.1 on ports of their own choosing
  (``tcp_port=0``), with no discovery (``udp_port=0``,
  ``discover_peers=False``); the client adds the server with
  ``yield sched.peer(Location(...))`` (``stream_send=True`` for the
  original's ``--stream-send`` variant: one connection kept for every
  message instead of one per message);
* ``net-stream``: ``rtask.send(msg)`` to a task located with
  ``Task.locate(name, location)``; ``net-deliver``:
  ``yield rtask.deliver(msg, timeout)``; ``net-rps``: ``rtask = yield
  rps(x)`` then ``yield rtask.finish()`` (the original: the value by
  message, see :func:`_rps`); ``net-file``:
  ``yield sched.send_file(location, path, timeout=...)``.
"""

import os
import sys

import netcommon

perf = netcommon.perf
SINK = "bench-sink"
TIMEOUT = 30            # seconds for a call / locate / a stuck stream
DELIVER_TIMEOUT = 5     # a round trip takes well under 1 ms: 0 after this is a lost one


# -- the server process ----------------------------------------------------------

def _sink(task=None):
    """Takes every message; ``("count", n, client)`` makes it count the next
    ``n`` and then send ``("have", n)`` to ``client``."""
    task.register(SINK)
    while True:
        msg = yield task.receive()
        if type(msg) is tuple and msg[0] == "count":
            n, client = msg[1], msg[2]
            for _ in range(n):
                yield task.receive()
            client.send(("have", n))


def bench_call(x, reply_to=None, task=None):
    """The RPS: returns at once (a generator function, as RPS wants); with
    ``reply_to`` (the original's variant, see :func:`_rps`) it also sends
    the value to that task."""
    if reply_to is not None:
        reply_to.send(x + 1)
    return x + 1
    yield  # pragma: no cover


def _started(task=None):
    yield task.sleep(0.01)      # the sink has run and registered its name


def serve(pycos, args):
    sched = pycos.Pycos(name="bench-server", udp_port=0, tcp_port=0, host="127.0.0.1",
                        secret=netcommon.SECRET, discover_peers=False,
                        dest_path=args.dest or None)
    pycos.Task(_sink)
    if pycos.RPS(bench_call).register() != 0:
        sys.exit("RPS register failed")
    pycos.Task(_started).value()
    loc = _location(sched)
    netcommon.ready(addr=loc.addr, port=loc.port)
    netcommon.wait_for_eof()
    sched.terminate()


def _location(sched):
    loc = getattr(sched, "location", None)
    return loc if loc is not None else sched._location       # 4.x: no property


# -- the client process ----------------------------------------------------------

class Failed(Exception):
    pass


def _stream(pycos, sink, n, size, task=None):
    """Returns (seconds, sends refused).  A send is refused (-1) while the
    peer's queue is over its bound (this project's ``config.PeerMaxQueue``):
    the sender then waits a millisecond and sends it again, as a program
    must; a peer that takes nothing for TIMEOUT seconds fails the run."""
    msg = netcommon.payload(size)
    if (yield sink.deliver(("count", n, task), timeout=TIMEOUT)) != 1:
        raise Failed("deliver of the count request failed")
    refused = 0
    t0 = perf()
    for i in range(n):
        if sink.send(msg) != 0:
            stuck = perf()
            while sink.send(msg) != 0:
                refused += 1
                if perf() - stuck > TIMEOUT:
                    raise Failed("send %d refused for %d s" % (i, TIMEOUT))
                yield task.sleep(0.001)
        if i % 1000 == 999:
            yield task.sleep(0)
    reply = yield task.receive(timeout=60 + n / 1000.0)
    dt = perf() - t0
    if reply != ("have", n):
        raise Failed("the receiver did not report %d messages: %r" % (n, reply))
    return dt, refused


def _deliver(pycos, sink, n, task=None):
    lat = []
    warm = netcommon.warmup_count(n)
    for i in range(warm + n):
        t0 = perf()
        r = yield sink.deliver(i, timeout=DELIVER_TIMEOUT)
        dt = perf() - t0
        if r != 1:
            raise Failed("deliver %d returned %r" % (i, r))
        if i >= warm:
            lat.append(dt)
    return lat


def _rps(pycos, loc, n, by_message, task=None):
    """``by_message``: the value comes back as a message to this task, not
    by ``rtask.finish()``.  The original pycos loses the end of an RPS task
    that finishes before the call's reply reaches the caller (its monitor
    task retries the lookup with None instead of the task), so there
    ``finish()`` of a call that returns at once waits until its timeout;
    the message costs the same one network message as that end."""
    rps = yield pycos.RPS.locate("bench_call", loc, timeout=TIMEOUT)
    if rps is None:
        raise Failed("RPS.locate found no bench_call")
    warm = netcommon.warmup_count(n)
    t0 = None
    for i in range(warm + n):
        if i == warm:
            t0 = perf()
        rtask = yield (rps(i, task) if by_message else rps(i))
        if rtask is None:
            raise Failed("RPS call %d started no task" % i)
        if by_message:
            v = yield task.receive(timeout=TIMEOUT)
        else:
            v = yield rtask.finish(timeout=TIMEOUT)
        if v != i + 1:
            raise Failed("RPS call %d returned %r" % (i, v))
    return perf() - t0


def _client(pycos, sched, args, loc, stream_send, rps_by_message, task=None):
    try:
        if (yield sched.peer(loc, stream_send=stream_send)) != 0:
            raise Failed("peer(%s) failed" % (loc,))
        w = args.workload
        if w == "net-file":
            t0 = perf()
            r = yield sched.send_file(loc, args.file, timeout=600)
            dt = perf() - t0
            if r != 0:
                raise Failed("send_file returned %r" % (r,))
            return dt
        if w == "net-rps":
            return (yield _rps(pycos, loc, args.n, rps_by_message, task=task))
        sink = yield pycos.Task.locate(SINK, loc, timeout=TIMEOUT)
        if sink is None:
            raise Failed("Task.locate found no %s" % SINK)
        if w == "net-stream":
            return (yield _stream(pycos, sink, args.n, args.size, task=task))
        return (yield _deliver(pycos, sink, args.n, task=task))
    except Failed as exc:
        return exc


def main(pycos, args, stream_send=False, rps_by_message=False, **extra):
    """Run ``args.workload`` (a net-* one) with ``pycos`` = its ``pycos.netpycos``
    (``stream_send``, ``rps_by_message``: the original's variants)."""
    if args.serve:
        serve(pycos, args)
        return
    dest = netcommon.dest_dir() if args.workload == "net-file" else ""
    try:
        with netcommon.Server(*(("--dest", dest) if dest else ())) as server:
            sched = pycos.Pycos(name="bench-client", udp_port=0, tcp_port=0, host="127.0.0.1",
                                secret=netcommon.SECRET, discover_peers=False)
            loc = pycos.Location(server.info["addr"], server.info["port"])
            res = pycos.Task(_client, pycos, sched, args, loc, stream_send,
                             rps_by_message).value()
            if isinstance(res, Failed):
                sys.exit("%s: %s" % (args.workload, res))
            if res is None or isinstance(res, getattr(pycos, "MonitorStatus", ())):
                sys.exit("%s: the client task failed: %r" % (args.workload, res))
            if args.workload == "net-file":
                netcommon.check_received(args.file, dest)
            sched.terminate()
    finally:
        if dest:
            netcommon.remove_dest(dest)
    w = args.workload
    if w == "net-stream":
        netcommon.emit_stream(args.n, args.size, res[0], refused=res[1], **extra)
    elif w == "net-deliver":
        netcommon.emit_latency(res, **extra)
    elif w == "net-rps":
        netcommon.emit_calls(args.n, res, **extra)
    else:
        netcommon.emit_file(os.path.getsize(args.file), res, **extra)
