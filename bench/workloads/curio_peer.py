"""Workloads for curio: ``spawn``/TaskGroup, ``curio.Queue``, ``curio.sleep``, run_server."""

import time

import curio
import curio.network

import common

perf = time.perf_counter


async def _trivial():
    return 0


async def spawn(n):
    t0 = perf()
    # curio.spawn + join: a TaskGroup of 100,000 tasks is quadratic in curio 1.6
    tasks = [await curio.spawn(_trivial) for _ in range(n)]
    for t in tasks:
        await t.join()
    dt = perf() - t0
    common.emit(n=n, seconds=dt, tasks_per_s=n / dt)


async def _pong(inbox, outbox):
    while True:
        msg = await inbox.get()
        if msg is None:
            return
        await outbox.put(msg)


async def switch(n):
    to_pong, to_ping = curio.Queue(), curio.Queue()
    pong = await curio.spawn(_pong, to_pong, to_ping)
    t0 = perf()
    for i in range(n):
        await to_pong.put(i)
        await to_ping.get()
    dt = perf() - t0
    await to_pong.put(None)
    await pong.join()
    common.emit(n=n, seconds=dt, round_trips_per_s=n / dt, us_per_round_trip=dt / n * 1e6)


async def _sleeper(delay, idx, late):
    t0 = perf()
    await curio.sleep(delay)
    late[idx] = perf() - t0 - delay


async def timers(n, max_delay):
    delays = common.timer_delays(n, max_delay)
    late = [0.0] * n
    t0 = perf()
    tasks = [await curio.spawn(_sleeper, d, i, late) for i, d in enumerate(delays)]
    for t in tasks:
        await t.join()
    common.timer_report(late, perf() - t0, max_delay)


async def _subscriber(queue):
    count = 0
    while True:
        msg = await queue.get()
        if msg is None:
            return count
        count += 1


async def fanout(subs, n):
    queues = [curio.Queue() for _ in range(subs)]
    tasks = [await curio.spawn(_subscriber, q) for q in queues]
    t0 = perf()
    for i in range(n):
        for q in queues:
            await q.put(i)
        await curio.sleep(0)
    for q in queues:
        await q.put(None)
    total = 0
    for t in tasks:
        total += await t.join()
    dt = perf() - t0
    assert total == subs * n, total
    common.emit(subs=subs, n=n, seconds=dt, deliveries_per_s=total / dt)


async def _echo(client, _addr):
    common.nodelay(client)
    try:
        async with client:
            while True:
                data = await client.recv(65536)
                if not data:
                    break
                await client.sendall(data)
    except OSError:
        pass


async def server(args):
    ssl = common.server_ssl_context(args) if args.workload == "tls" else None
    sock = curio.network.tcp_server_socket("127.0.0.1", 0, backlog=args.backlog)
    common.ready(sock.getsockname()[1])
    await curio.network.run_server(sock, _echo, ssl=ssl)


def main():
    args = common.parse_args()
    w = args.workload
    if w in common.SERVER_WORKLOADS:
        curio.run(server, args)
    elif w == "spawn":
        curio.run(spawn, args.n)
    elif w == "switch":
        curio.run(switch, args.n)
    elif w == "timers":
        curio.run(timers, args.n, args.max_delay)
    else:
        curio.run(fanout, args.subs, args.n)


if __name__ == "__main__":
    main()
