"""Workloads for trio: nurseries, memory channels, ``trio.sleep``, ``serve_tcp``."""

import functools
import math
import time

import trio

import common

perf = time.perf_counter


async def _trivial():
    return 0


async def spawn(n):
    t0 = perf()
    async with trio.open_nursery() as nursery:
        for _ in range(n):
            nursery.start_soon(_trivial)
    dt = perf() - t0
    common.emit(n=n, seconds=dt, tasks_per_s=n / dt)


async def _pong(inbox, outbox):
    async for msg in inbox:
        if msg is None:
            return
        await outbox.send(msg)


async def switch(n):
    to_pong_send, to_pong_recv = trio.open_memory_channel(0)
    to_ping_send, to_ping_recv = trio.open_memory_channel(0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_pong, to_pong_recv, to_ping_send)
        t0 = perf()
        for i in range(n):
            await to_pong_send.send(i)
            await to_ping_recv.receive()
        dt = perf() - t0
        await to_pong_send.send(None)
    common.emit(n=n, seconds=dt, round_trips_per_s=n / dt, us_per_round_trip=dt / n * 1e6)


async def _sleeper(delay, idx, late):
    t0 = perf()
    await trio.sleep(delay)
    late[idx] = perf() - t0 - delay


async def timers(n, max_delay):
    delays = common.timer_delays(n, max_delay)
    late = [0.0] * n
    t0 = perf()
    async with trio.open_nursery() as nursery:
        for i, d in enumerate(delays):
            nursery.start_soon(_sleeper, d, i, late)
    common.timer_report(late, perf() - t0, max_delay)


async def _subscriber(inbox, counts, idx):
    count = 0
    async for msg in inbox:
        if msg is None:
            break
        count += 1
    counts[idx] = count


async def fanout(subs, n):
    counts = [0] * subs
    senders = []
    async with trio.open_nursery() as nursery:
        for i in range(subs):
            send, recv = trio.open_memory_channel(math.inf)
            senders.append(send)
            nursery.start_soon(_subscriber, recv, counts, i)
        t0 = perf()
        for i in range(n):
            for s in senders:
                s.send_nowait(i)
            await trio.sleep(0)
        for s in senders:
            s.send_nowait(None)
    dt = perf() - t0
    total = sum(counts)
    assert total == subs * n, total
    common.emit(subs=subs, n=n, seconds=dt, deliveries_per_s=total / dt)


async def _echo(stream):
    try:
        while True:
            data = await stream.receive_some(65536)
            if not data:
                break
            await stream.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass


async def server(args):
    async with trio.open_nursery() as nursery:
        if args.workload == "tls":
            ctx = common.server_ssl_context(args)
            serve = functools.partial(trio.serve_ssl_over_tcp, _echo, 0, ctx,
                                      host="127.0.0.1", backlog=args.backlog)
        else:
            serve = functools.partial(trio.serve_tcp, _echo, 0, host="127.0.0.1",
                                      backlog=args.backlog)
        listeners = await nursery.start(serve)
        lst = listeners[0]
        sock = getattr(lst, "transport_listener", lst).socket
        common.ready(sock.getsockname()[1])


def main():
    args = common.parse_args()
    w = args.workload
    if w in common.SERVER_WORKLOADS:
        trio.run(server, args)
    elif w == "spawn":
        trio.run(spawn, args.n)
    elif w == "switch":
        trio.run(switch, args.n)
    elif w == "timers":
        trio.run(timers, args.n, args.max_delay)
    else:
        trio.run(fanout, args.subs, args.n)


if __name__ == "__main__":
    main()
