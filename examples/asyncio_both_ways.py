"""asyncio and pycos in one program, both ways, in one thread.

``pycos.aio.attach()`` ties the pycos scheduler to the running asyncio loop;
with a reactor backend that has a pollable descriptor (epoll) the loop
drives pycos, so pycos tasks and coroutines share one thread.  Then:

* pycos tasks serve a line protocol on ``AsyncSocket`` (one task per
  connection), and asyncio clients talk to them with asyncio streams;
* each server task keeps a log in SQLite through aiosqlite, an asyncio
  library, with ``yield pycos.aio.wait(...)`` (without aiosqlite installed,
  through ``sqlite3`` and ``asyncio.to_thread`` -- still an awaitable);
* a coroutine uses a pycos socket through ``await pycos.aio.call(sock.recv, n)``;
* a pycos task gives up on a slow coroutine after a timeout (the coroutine is
  cancelled), and a cancelled coroutine terminates the pycos call it awaited.

With ``PYCOS_BACKEND=poll`` (no pollable descriptor) the scheduler keeps its
own thread and everything else works the same across the two threads.  Run
it with no arguments; it takes well under a second:

    python examples/asyncio_both_ways.py
    PYCOS_BACKEND=poll python examples/asyncio_both_ways.py
"""
import asyncio
import socket
import sqlite3
import threading
from typing import Any

import pycos
import pycos.aio

try:
    import aiosqlite
except ImportError:         # the example still runs, with the standard library
    aiosqlite = None        # type: ignore[assignment]  # (checked before each use)

threads_seen = set()


# ---- the pycos side ---------------------------------------------------------------


class Log(object):
    """A table of (client, line) rows, used from pycos tasks."""

    def __init__(self):
        self.db: Any = None     # an aiosqlite or a sqlite3 connection, once open

    def open(self, task=None):
        if aiosqlite is not None:
            self.db = yield pycos.aio.wait(aiosqlite.connect(":memory:"))
            yield pycos.aio.wait(self.db.execute("CREATE TABLE log (client TEXT, line TEXT)"))
        else:
            self.db = sqlite3.connect(":memory:", check_same_thread=False)
            yield pycos.aio.wait(self._blocking(self.db.execute,
                                                "CREATE TABLE log (client TEXT, line TEXT)"))

    def _blocking(self, fn, *args):
        # a coroutine: it runs on the asyncio loop, whichever thread this is
        return asyncio.to_thread(fn, *args)

    def add(self, client, line, task=None):
        if aiosqlite is not None:
            yield pycos.aio.wait(self.db.execute("INSERT INTO log VALUES (?, ?)", (client, line)))
        else:
            yield pycos.aio.wait(self._blocking(self.db.execute, "INSERT INTO log VALUES (?, ?)",
                                                (client, line)))

    def counts(self, task=None):
        query = "SELECT client, COUNT(*) FROM log GROUP BY client ORDER BY client"
        if aiosqlite is not None:
            cursor = yield pycos.aio.wait(self.db.execute(query))
            rows = yield pycos.aio.wait(cursor.fetchall())
            yield pycos.aio.wait(self.db.close())
        else:
            rows = yield pycos.aio.wait(self._blocking(lambda: self.db.execute(query).fetchall()))
            self.db.close()
        return [tuple(row) for row in rows]


def serve(conn, log, task=None):
    """One connection: 'NAME: text' lines in, upper-cased lines out."""
    threads_seen.add(threading.get_ident())
    buf = b""
    with conn:
        while True:
            data = yield conn.recv(4096)
            if not data:
                return
            buf += data
            *lines, buf = buf.split(b"\n")
            for line in lines:
                client, _, text = line.decode().partition(": ")
                yield log.add(client, text, task=task)       # a sub-call
                yield conn.sendall(line.upper() + b"\n")


def server(lsock, log, n, task=None):
    """Accept ``n`` connections, serve each in its own task."""
    handlers = []
    for _ in range(n):
        conn, _ = yield lsock.accept()
        handlers.append(pycos.Task(serve, conn, log))
    for handler in handlers:
        yield handler.finish()
    lsock.close()
    return (yield log.counts(task=task))


def patient(task=None):
    """Gives up on a slow coroutine after 0.05 s."""
    async def slow_answer():
        try:
            await asyncio.sleep(10)
            return "answer"
        except asyncio.CancelledError:
            print("asyncio: slow_answer() was cancelled by the pycos timeout")
            raise
    reply = yield pycos.aio.wait(slow_answer(), timeout=0.05, alarm_value="gave up")
    print("pycos: waited 0.05 s for slow_answer(): %s" % reply)


def forever(task=None):
    try:
        yield task.sleep()
    finally:
        print("pycos: forever() ended because its awaiter was cancelled")


# ---- the asyncio side -------------------------------------------------------------------


async def client(name, port, lines):
    threads_seen.add(threading.get_ident())
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    replies = []
    for text in lines:
        writer.write(b"%s: %s\n" % (name.encode(), text.encode()))
        await writer.drain()
        replies.append((await reader.readline()).decode().strip())
    writer.close()
    await writer.wait_closed()
    return replies


async def main():
    with pycos.aio.attach() as bridge:
        if bridge.shared_thread:
            print("bridge: the asyncio loop drives pycos (backend %s): one thread"
                  % bridge.scheduler.loop.backend)
        else:
            print("bridge: pycos keeps its own thread (backend %s has no pollable "
                  "descriptor)" % bridge.scheduler.loop.backend)
        store = "aiosqlite" if aiosqlite else "sqlite3 in a thread (aiosqlite not installed)"
        print("log store: %s" % store)
        log = Log()
        await pycos.aio.call(log.open)

        lsock = pycos.AsyncSocket(socket.socket())
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(8)
        port = lsock.getsockname()[1]
        srv = pycos.Task(server, lsock, log, 3)

        replies = await asyncio.gather(
            client("ann", port, ["hello", "pycos"]),
            client("bob", port, ["asyncio", "streams", "too"]),
            pycos_socket_from_asyncio(port))
        for r in replies:
            print("asyncio client got: %s" % " | ".join(r))
        print("pycos server logged (client, lines): %s" % (await pycos.aio.result(srv),))

        await pycos.aio.result(pycos.Task(patient))

        call = asyncio.ensure_future(pycos.aio.call(forever))
        await asyncio.sleep(0.01)
        call.cancel()
        try:
            await call
        except asyncio.CancelledError:
            print("asyncio: the awaiting coroutine saw CancelledError")
    if bridge.shared_thread:
        print("threads that ran pycos tasks and coroutines: %d" % len(threads_seen))


async def pycos_socket_from_asyncio(port):
    """A coroutine using a pycos AsyncSocket, each call run by pycos."""
    sock = pycos.AsyncSocket(socket.socket())
    try:
        await pycos.aio.call(sock.connect, ("127.0.0.1", port))
        line = b"cy: through a pycos socket\n"
        await pycos.aio.call(sock.sendall, line)
        return [(await pycos.aio.call(sock.recvall, len(line))).decode().strip()]
    finally:
        sock.close()


if __name__ == "__main__":
    asyncio.run(main())
    pycos.Pycos().finish()
    print("done: %r" % (pycos.aio.statistics(),))
