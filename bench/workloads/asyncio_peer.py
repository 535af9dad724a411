"""Workloads for asyncio: the default event loop, or uvloop; streams or protocols.

``--variant``: ``asyncio`` (default loop, streams), ``asyncio-proto`` (default
loop, a ``Protocol`` echo server), ``uvloop`` (uvloop, streams), ``uvloop-proto``.
The protocol variants matter only for the socket workloads; the others use
tasks, ``asyncio.Queue`` and ``asyncio.sleep`` whatever the variant.
"""

import asyncio
import sys
import time

import common

perf = time.perf_counter


async def _trivial():
    return 0


async def spawn(n):
    t0 = perf()
    tasks = [asyncio.create_task(_trivial()) for _ in range(n)]
    await asyncio.gather(*tasks)
    dt = perf() - t0
    common.emit(n=n, seconds=dt, tasks_per_s=n / dt)


async def _pong(inbox, outbox):
    while True:
        msg = await inbox.get()
        if msg is None:
            return
        outbox.put_nowait(msg)


async def switch(n):
    to_pong, to_ping = asyncio.Queue(), asyncio.Queue()
    pong = asyncio.create_task(_pong(to_pong, to_ping))
    t0 = perf()
    for i in range(n):
        to_pong.put_nowait(i)
        await to_ping.get()
    dt = perf() - t0
    to_pong.put_nowait(None)
    await pong
    common.emit(n=n, seconds=dt, round_trips_per_s=n / dt, us_per_round_trip=dt / n * 1e6)


async def _sleeper(delay, idx, late):
    t0 = perf()
    await asyncio.sleep(delay)
    late[idx] = perf() - t0 - delay


async def timers(n, max_delay):
    delays = common.timer_delays(n, max_delay)
    late = [0.0] * n
    t0 = perf()
    await asyncio.gather(*[asyncio.create_task(_sleeper(d, i, late))
                           for i, d in enumerate(delays)])
    common.timer_report(late, perf() - t0, max_delay)


async def _subscriber(queue):
    count = 0
    while True:
        msg = await queue.get()
        if msg is None:
            return count
        count += 1


async def fanout(subs, n):
    queues = [asyncio.Queue() for _ in range(subs)]
    tasks = [asyncio.create_task(_subscriber(q)) for q in queues]
    t0 = perf()
    for i in range(n):
        for q in queues:
            q.put_nowait(i)
        await asyncio.sleep(0)
    for q in queues:
        q.put_nowait(None)
    total = sum(await asyncio.gather(*tasks))
    dt = perf() - t0
    assert total == subs * n, total
    common.emit(subs=subs, n=n, seconds=dt, deliveries_per_s=total / dt)


async def _echo_stream(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    writer.close()


class _EchoProtocol(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


async def server(args, proto):
    ssl = common.server_ssl_context(args) if args.workload == "tls" else None
    sock = common.listen_socket(args.backlog)
    if proto:
        srv = await asyncio.get_running_loop().create_server(
            _EchoProtocol, sock=sock, ssl=ssl, backlog=args.backlog)
    else:
        srv = await asyncio.start_server(_echo_stream, sock=sock, ssl=ssl, backlog=args.backlog)
    common.ready(sock.getsockname()[1])
    async with srv:
        await srv.serve_forever()


def main():
    argv = sys.argv[1:]
    variant = "asyncio"
    if "--variant" in argv:
        i = argv.index("--variant")
        variant = argv[i + 1]
        del argv[i:i + 2]
    args = common.parse_args(argv)
    if variant.startswith("uvloop"):
        try:
            import uvloop
        except ImportError as exc:
            common.unavailable("uvloop not installed: %s" % exc)
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    w = args.workload
    if w in common.SERVER_WORKLOADS:
        coro = server(args, variant.endswith("-proto"))
    elif w == "spawn":
        coro = spawn(args.n)
    elif w == "switch":
        coro = switch(args.n)
    elif w == "timers":
        coro = timers(args.n, args.max_delay)
    else:
        coro = fanout(args.subs, args.n)
    asyncio.run(coro)


if __name__ == "__main__":
    main()
