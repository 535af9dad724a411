"""pycos.aio: asyncio and pycos in one process, both ways.

Most tests run twice (the ``mode`` fixture): ``shared`` -- an embedded
scheduler driven by the asyncio loop, one thread for both (it needs a
pollable descriptor, so on ``PYCOS_BACKEND=poll`` it runs on epoll) -- and
``threads`` -- the scheduler in its own thread on the backend under test,
asyncio in the test's thread.  Real libraries: aiosqlite (the ``test``
extra) from pycos tasks, asyncio streams against pycos sockets and the
reverse.  After each test nothing is left: no pycos.aio wait or call in
flight, no bridge, no asyncio task, no thread, no descriptor.
"""
import asyncio
import os
import socket
import threading
from collections import deque

import pytest

import aiosqlite

import pycos
import pycos.aio
from pycos import AsyncSocket, MonitorStatus, Pycos, Task

pytestmark = pytest.mark.timeout(60)

LIMIT = 10          # seconds any single test coroutine may take
#: backends whose loop has no pollable descriptor (an asyncio loop cannot
#: drive an embedded scheduler on them), and one of them compiled in here
NO_FD = ("poll", "iocp")
NO_FD_BACKEND = next(b for b in NO_FD if b in pycos.reactor.backends())
#: shared mode (an embedded scheduler driven by the asyncio loop) needs a
#: backend with a descriptor: Windows has only iocp (and its Proactor loop
#: takes no readers), so there attach() always gives the scheduler a thread
NEEDS_SHARED = pytest.mark.skipif(
    not any(b not in NO_FD for b in pycos.reactor.backends()),
    reason="no reactor backend with a pollable descriptor here (Windows: iocp only)")


def _fds():
    fds = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            fds[int(name)] = os.readlink("/proc/self/fd/" + name)
        except OSError:
            pass
    return fds


def _embedded():
    """An embedded scheduler an asyncio loop can drive: the backend under
    test when it has a pollable descriptor, else epoll."""
    sched = Pycos(embedded=True)
    try:
        sched.fileno()
    except OSError:
        sched.terminate()
        sched = Pycos(embedded=True, backend="epoll")
    return sched


def _check_scheduler(sched):
    stats = sched.statistics()
    assert stats["non_daemon"] == 0, stats
    if stats["tasks"] == 0:
        assert not stats["timeouts"] and not stats["handlers"], stats
        assert not stats["loop"]["timers"], stats
    assert stats["external"] == 0, stats


@pytest.fixture
def clean():
    """Fails the test if it leaves pycos.aio work, asyncio tasks, threads or
    descriptors behind; terminates the scheduler first so its own
    descriptors are gone."""
    fds = _fds()
    threads = set(threading.enumerate())
    yield
    assert pycos.aio.statistics() == {"bridges": 0, "waits": 0, "calls": 0}
    sched = Pycos.existing()
    if sched is not None:
        if sched.is_alive():
            _check_scheduler(sched)
        sched.terminate()
    extra = [t for t in threading.enumerate() if t not in threads and t.is_alive()]
    assert not extra, extra
    leaked = {fd: what for fd, what in _fds().items() if fd not in fds}
    assert not leaked, leaked


@pytest.fixture(params=[pytest.param("shared", marks=NEEDS_SHARED), "threads"])
def mode(request, clean):
    return request.param


def _join_new_threads(before):
    """aiosqlite's worker thread says 'closed' just before it ends: wait for
    the end itself (an event, not a delay)."""
    for t in threading.enumerate():
        if t not in before and t is not threading.current_thread():
            t.join(LIMIT)


def arun(mode, body):
    """Run ``await body(bridge)`` in a fresh asyncio loop with the pycos
    scheduler of ``mode`` attached; check the loop has no task left."""
    if mode == "shared":
        _embedded()
    else:
        Pycos()

    async def outer():
        with pycos.aio.attach() as bridge:
            assert bridge.shared_thread == (mode == "shared")
            value = await asyncio.wait_for(body(bridge), LIMIT)
        assert not bridge.attached
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert not others, others
        return value

    value = asyncio.run(outer())
    sched = Pycos.existing()
    sched.finish()          # (drives an embedded one here: nothing may be pending)
    assert pycos.aio.statistics()["waits"] == 0
    return value


# ---- a pycos task waits for asyncio ------------------------------------------------


def test_wait_for_sleep_futures_and_tasks(mode):
    async def body(bridge):
        loop = asyncio.get_running_loop()
        later = loop.create_future()
        loop.call_later(0.02, later.set_result, "set later")
        done = loop.create_future()
        done.set_result("done already")
        atask = asyncio.ensure_future(asyncio.sleep(0.01, result="an asyncio task"))

        class Awaitable(object):          # anything with __await__
            def __await__(self):
                return asyncio.sleep(0, result="custom").__await__()

        def waiter(task=None):
            got = []
            got.append((yield pycos.aio.wait(asyncio.sleep(0.01, result="slept"))))
            got.append((yield pycos.aio.wait(later)))
            got.append((yield pycos.aio.wait(done)))
            got.append((yield pycos.aio.wait(atask)))
            got.append((yield pycos.aio.wait(Awaitable())))
            yield task.sleep(0.01)        # pycos timers still work in between
            return got

        return await pycos.aio.result(Task(waiter))

    assert arun(mode, body) == ["slept", "set later", "done already", "an asyncio task",
                                "custom"]


def test_exceptions_propagate_both_ways(mode):
    class Oops(Exception):
        pass

    async def failing():
        await asyncio.sleep(0)
        raise Oops("from asyncio")

    def pycos_side(task=None):
        seen = []
        try:
            yield pycos.aio.wait(failing())
        except Oops as e:
            seen.append(str(e))
        return seen

    def raising(n, task=None):
        yield task.sleep(0.001)
        raise KeyError(n)

    def dies(task=None):
        yield task.sleep(0.001)
        raise ValueError("uncaught in a task")

    async def body(bridge):
        loop = asyncio.get_running_loop()
        bad = loop.create_future()
        bad.set_exception(Oops("done with an error"))
        cancelled = loop.create_future()
        cancelled.cancel()

        def more(task=None):
            out = []
            for fut in (bad, cancelled):
                try:
                    yield pycos.aio.wait(fut)
                except (Oops, asyncio.CancelledError) as e:
                    out.append(type(e).__name__)
            return out

        seen = await pycos.aio.call(pycos_side)
        seen += await pycos.aio.call(more)
        with pytest.raises(KeyError) as info:
            await pycos.aio.call(raising, "the key")
        seen.append(info.value.args[0])
        status = await pycos.aio.result(Task(dies))
        return seen, status

    seen, status = arun(mode, body)
    assert seen == ["from asyncio", "Oops", "CancelledError", "the key"]
    assert isinstance(status, MonitorStatus) and status.type is ValueError
    assert "uncaught in a task" in status.value


def test_timeout_cancels_the_asyncio_side(mode):
    async def body(bridge):
        loop = asyncio.get_running_loop()
        ended = loop.create_future()

        async def slow():
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                ended.set_result("cancelled")
                raise

        async def stubborn():
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                return "finished anyway"

        def waiter(task=None):
            a = yield pycos.aio.wait(slow(), timeout=0.05, alarm_value="timed out")
            b = yield pycos.aio.wait(stubborn(), timeout=0.01, alarm_value="timed out")
            c = yield pycos.aio.wait(asyncio.sleep(0, result="in time"), timeout=5)
            d = yield pycos.aio.wait(asyncio.sleep(30), timeout=0)
            return a, b, c, d

        got = await pycos.aio.call(waiter)
        return got, ended.result()

    got, ended = arun(mode, body)
    assert got == ("timed out", "finished anyway", "in time", None)
    assert ended == "cancelled"


def test_terminating_or_throwing_into_a_pycos_task_cancels_its_asyncio_task(mode):
    async def body(bridge):
        loop = asyncio.get_running_loop()
        started = [loop.create_future(), loop.create_future()]
        cancelled = [loop.create_future(), loop.create_future()]

        async def forever(i):
            started[i].set_result(True)
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                cancelled[i].set_result(True)
                raise

        def victim(task=None):
            try:
                yield pycos.aio.wait(forever(0))
            finally:
                log.append("victim's finally ran")

        def catcher(task=None):
            try:
                yield pycos.aio.wait(forever(1))
            except KeyError as e:
                return "caught %s" % e

        log = []
        v, c = Task(victim), Task(catcher)
        await asyncio.gather(*started)
        assert v.terminate() == 0
        assert c.throw(KeyError("k")) == 0
        await asyncio.gather(*cancelled)
        v_end = await pycos.aio.result(v)
        c_end = await pycos.aio.result(c)
        return log, v_end, c_end, v.is_alive()

    log, v_end, c_end, alive = arun(mode, body)
    assert log == ["victim's finally ran"]
    assert v_end is None and not alive
    assert c_end == "caught 'k'"


def test_a_wait_without_yield_is_withdrawn(mode):
    """``pycos.aio.wait(aw)`` written without ``yield``: the kernel withdraws
    the call (as an interruption would), which cancels the asyncio side."""
    async def body(bridge):
        log = []

        async def forever():
            log.append("started")
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                log.append("cancelled")
                raise

        def forgetful(task=None):
            pycos.aio.wait(forever())        # (the mistake)
            try:
                yield task.sleep(0.001)
            except TypeError as e:           # pycos names the forgotten call
                return str(e)
            return "not reported"

        said = await pycos.aio.result(Task(forgetful))
        assert pycos.aio.statistics()["waits"] == 0
        return said, log

    said, log = arun(mode, body)        # (arun: no asyncio task left running)
    assert "pycos.aio.wait()" in said or said == "not reported"
    # cancelled before its first step (one thread), or while it slept
    assert log in ([], ["started", "cancelled"])


def test_asyncio_cancelling_a_call_terminates_the_pycos_task(mode):
    async def body(bridge):
        loop = asyncio.get_running_loop()
        running = loop.create_future()
        log = []

        def long_job(task=None):
            loop.call_soon_threadsafe(running.set_result, task)
            try:
                yield task.sleep(30)
            finally:
                log.append("pycos finally")

        caller = asyncio.ensure_future(pycos.aio.call(long_job))
        pycos_task = await running
        caller.cancel()
        try:
            await caller
        except asyncio.CancelledError:
            log.append("awaiter cancelled")
        alive_after = pycos_task.is_alive()

        # result(): cancelling the waiting does not end the task
        def sleeper(task=None):
            yield task.sleep(30)
            return "never"
        s = Task(sleeper)
        waiting = asyncio.ensure_future(pycos.aio.result(s))
        await asyncio.sleep(0)            # (a turn: the waiting starts)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        still = s.is_alive()
        s.terminate()
        await pycos.aio.result(s)
        return log, alive_after, still

    log, alive_after, still = arun(mode, body)
    # the pycos task had ended (its finally ran) when the awaiter got CancelledError
    assert log == ["pycos finally", "awaiter cancelled"]
    assert not alive_after
    assert still


def test_a_pycos_task_terminated_by_someone_else_cancels_the_awaiter(mode):
    async def body(bridge):
        loop = asyncio.get_running_loop()
        running = loop.create_future()

        def job(task=None):
            loop.call_soon_threadsafe(running.set_result, task)
            yield task.sleep(30)

        caller = asyncio.ensure_future(pycos.aio.call(job))
        (await running).terminate()
        with pytest.raises(asyncio.CancelledError):
            await caller
        return caller.cancelled()

    assert arun(mode, body) is True


def test_call_runs_pycos_calls_and_generator_functions(mode):
    class Server(object):
        def compute(self, x, task=None):       # a method with task=
            yield task.sleep(0.001)
            return (x, task is pycos.Pycos.cur_task())

    def plain(a, b):
        return a + b

    async def body(bridge):
        ev = pycos.Event()
        setter = Task(_set_event_later, ev)
        waited = await pycos.aio.call(ev.wait, 5)         # a pycos call, not a generator
        out = [waited, await pycos.aio.call(Server().compute, 7),
               await pycos.aio.call(plain, 2, b=3)]
        await pycos.aio.result(setter)
        return out

    assert arun(mode, body) == [True, (7, True), 5]


def _set_event_later(ev, task=None):
    yield task.sleep(0.01)
    ev.set()


# ---- a real asyncio library from pycos tasks -----------------------------------------


def test_aiosqlite_from_pycos_tasks(mode):
    before = set(threading.enumerate())

    def writer(db, n, task=None):
        for i in range(n):
            yield pycos.aio.wait(db.execute("INSERT INTO kv VALUES (?, ?)", (i, "v%d" % i)))
        yield pycos.aio.wait(db.commit())
        return n

    def reader(task=None):
        db = yield pycos.aio.wait(aiosqlite.connect(":memory:"))
        try:
            yield pycos.aio.wait(db.execute("CREATE TABLE kv (k INTEGER, v TEXT)"))
            writers = [Task(writer, db, 10) for _ in range(3)]
            total = 0
            for w in writers:
                total += yield w.finish()
            cur = yield pycos.aio.wait(db.execute("SELECT COUNT(*), SUM(k) FROM kv"))
            row = yield pycos.aio.wait(cur.fetchone())
            yield pycos.aio.wait(cur.close())
            try:
                yield pycos.aio.wait(db.execute("SELECT * FROM no_such_table"))
            except Exception as e:          # sqlite3.OperationalError, through asyncio
                err = "%s: %s" % (type(e).__name__, e)
            return total, tuple(row), err
        finally:
            yield pycos.aio.wait(db.close())

    async def body(bridge):
        return await pycos.aio.call(reader)

    total, row, err = arun(mode, body)
    _join_new_threads(before)
    assert total == 30
    assert row == (30, 3 * sum(range(10)))
    assert err == "OperationalError: no such table: no_such_table"


# ---- pycos sockets with asyncio ---------------------------------------------------------


def _pycos_echo_server(lsock, n, task=None):
    """A pycos server: one task per connection, echoing lines until EOF."""
    def serve(conn, task=None):
        with conn:
            while True:
                data = yield conn.recv(4096)
                if not data:
                    return
                yield conn.sendall(data.upper())
    handlers = []
    for _ in range(n):
        conn, _ = yield lsock.accept()
        handlers.append(Task(serve, conn))
    for h in handlers:
        yield h.finish()
    lsock.close()
    return n


def test_asyncio_streams_against_a_pycos_server(mode):
    async def body(bridge):
        lsock = AsyncSocket(socket.socket())
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(8)
        port = lsock.getsockname()[1]
        server = Task(_pycos_echo_server, lsock, 5)

        async def client(i):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            replies = []
            for j in range(3):
                writer.write(b"client %d line %d\n" % (i, j))
                await writer.drain()
                replies.append(await reader.readexactly(len(b"client 0 line 0\n")))
            writer.close()
            await writer.wait_closed()
            return replies

        replies = await asyncio.gather(*(client(i) for i in range(5)))
        served = await pycos.aio.result(server)
        return served, replies

    served, replies = arun(mode, body)
    assert served == 5
    assert replies[3] == [b"CLIENT 3 LINE %d\n" % j for j in range(3)]


def test_pycos_socket_calls_from_a_coroutine_and_pycos_client_of_asyncio_server(mode):
    async def body(bridge):
        handlers = []

        async def handle(reader, writer):
            handlers.append(asyncio.current_task())
            while True:
                line = await reader.readline()
                if not line:
                    break
                writer.write(line[::-1])
                await writer.drain()
            writer.close()
            await writer.wait_closed()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]

        # asyncio code drives a pycos AsyncSocket through pycos.aio.call
        sock = AsyncSocket(socket.socket())
        await pycos.aio.call(sock.connect, ("127.0.0.1", port))
        await pycos.aio.call(sock.sendall, b"abc\n")
        from_coroutine = await pycos.aio.call(sock.recvall, 4)
        sock.close()

        # a pycos task as the client of the asyncio server
        def client(task=None):
            s = AsyncSocket(socket.socket())
            try:
                yield s.connect(("127.0.0.1", port))
                yield s.sendall(b"pycos\n")
                return (yield s.recvall(6))
            finally:
                s.close()

        from_task = await pycos.aio.call(client)
        server.close()
        await server.wait_closed()
        await asyncio.gather(*handlers)       # (3.11's wait_closed does not wait for them)
        assert len(handlers) == 2
        return from_coroutine, from_task

    assert arun(mode, body) == (b"\ncba", b"\nsocyp")


# ---- threads -------------------------------------------------------------------------------


@NEEDS_SHARED
def test_one_thread_serves_both(clean):
    threads_before = threading.active_count()

    def where(task=None):
        here = threading.get_ident()
        yield pycos.aio.wait(asyncio.sleep(0))
        return here, threading.get_ident()

    async def body(bridge):
        idents = {"coroutine": threading.get_ident()}
        idents["pycos task"], idents["after wait"] = await pycos.aio.call(where)

        def in_pycos(task=None):
            yield task.sleep(0)
            return threading.get_ident()
        idents["result"] = await pycos.aio.result(Task(in_pycos))
        return idents

    idents = arun("shared", body)
    assert len(set(idents.values())) == 1, idents
    assert idents["coroutine"] == threading.get_ident()
    assert threading.active_count() == threads_before
    assert not [t for t in threading.enumerate() if t.name == "pycos-scheduler"]


def test_two_threads_never_share(clean):
    async def body(bridge):
        def where(task=None):
            yield pycos.aio.wait(asyncio.sleep(0))
            return threading.get_ident()
        return threading.get_ident(), await pycos.aio.call(where), bridge.scheduler._thread

    loop_ident, task_ident, sched_thread = arun("threads", body)
    assert loop_ident == threading.get_ident()
    assert task_ident == sched_thread.ident != loop_ident


def test_coroutines_use_plain_pycos_calls_without_stalling(mode):
    """send/resume/Task(...) from a coroutine reach the scheduler at once
    (in shared mode they make tasks ready without any descriptor event)."""
    async def body(bridge):
        loop = asyncio.get_running_loop()
        asleep = loop.create_future()

        def echo(task=None):
            got = []
            for _ in range(3):
                got.append((yield task.receive()))
            # (posted before the task parks; the loop reads it after that)
            loop.call_soon_threadsafe(asleep.set_result, True)
            woken = yield task.sleep()
            return got, woken

        t = Task(echo)
        for i in range(3):
            t.send(i)
            await asyncio.sleep(0)
        await asleep
        t.resume("resumed")
        return await asyncio.wait_for(pycos.aio.result(t), 5)

    assert arun(mode, body) == ([0, 1, 2], "resumed")


def test_loop_in_another_thread_with_an_explicit_loop(clean):
    """A threaded scheduler and an asyncio loop in a third thread, no attach:
    wait(loop=...) and call() cross by call_soon_threadsafe and the inbox."""
    Pycos()
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    def loop_thread():
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set)
        loop.run_forever()

    th = threading.Thread(target=loop_thread)
    th.start()
    try:
        assert ready.wait(LIMIT)

        def user(task=None):
            a = yield pycos.aio.wait(asyncio.sleep(0.01, result="a"), loop=loop)
            return a

        def double(x, task=None):
            yield task.sleep(0)
            return 2 * x

        assert Task(user).value(LIMIT) == "a"
        fut = asyncio.run_coroutine_threadsafe(pycos.aio.call(double, 21), loop)
        assert fut.result(LIMIT) == 42
    finally:
        loop.call_soon_threadsafe(loop.stop)
        th.join(LIMIT)
        loop.close()


def test_virtual_time_waits_for_asyncio(clean):
    """While a task waits for asyncio, simulated time does not jump over the
    wait's own timeout (the wait counts as external work)."""
    Pycos(virtual_time=True)

    def user(task=None):
        return (yield pycos.aio.wait(asyncio.sleep(0.05, result="real"), timeout=3600,
                                     alarm_value="jumped"))

    async def body():
        with pycos.aio.attach():
            return await pycos.aio.result(Task(user))

    assert asyncio.run(body()) == "real"
    Pycos.existing().finish()


# ---- attach / detach ------------------------------------------------------------------------


def test_attach_creates_the_right_scheduler(clean, backend_name):
    async def body():
        bridge = pycos.aio.attach()
        try:
            sched = Pycos.existing()
            has_fd = backend_name not in NO_FD
            assert bridge.shared_thread == has_fd == sched.embedded
            assert bridge.scheduler is sched and bridge.loop is asyncio.get_running_loop()
            assert bridge.statistics()["attached"]
            assert pycos.aio.statistics()["bridges"] == 1
            return (await pycos.aio.call(_one))
        finally:
            bridge.detach()
            bridge.detach()          # a second time does nothing

    assert asyncio.run(body()) == 1
    Pycos.existing().finish()


def _one(task=None):
    yield task.sleep(0)
    return 1


@NEEDS_SHARED
def test_detach_leaves_a_working_scheduler(clean):
    sched = _embedded()

    async def body():
        with pycos.aio.attach() as bridge:
            assert type(sched._ready) is not deque    # the kicking queue
            assert await pycos.aio.call(_one) == 1
        assert type(sched._ready) is deque
        assert bridge.statistics()["rounds"] > 0
        # not attached: nothing would run a call
        with pytest.raises(RuntimeError, match="not attached"):
            await pycos.aio.call(_one)
        return Task(_one)

    t = asyncio.run(body())
    assert t.value(LIMIT) == 1        # the host drives it again
    sched.finish()


@NEEDS_SHARED
def test_finish_detaches(clean):
    sched = _embedded()

    async def body():
        bridge = pycos.aio.attach()
        assert await pycos.aio.call(_one) == 1
        sched.finish()              # nothing pending: returns at once
        return bridge

    bridge = asyncio.run(body())
    assert not bridge.attached and not sched.is_alive()


def test_precise_errors(clean):
    def not_in_task():
        coro = asyncio.sleep(0)
        with pytest.raises(RuntimeError, match="must be yielded in a pycos task"):
            pycos.aio.wait(coro)

    not_in_task()

    async def coroutine_fn():
        return 1

    def bad_waits(task=None):
        errors = []
        for bad in (42, (x for x in ()), None):
            try:
                pycos.aio.wait(bad)
            except TypeError as e:
                errors.append(str(e))
        for kw in ({"timeout": "soon"}, {"timeout": float("nan")}):
            try:
                pycos.aio.wait(asyncio.sleep(0), loop=loop, **kw)
            except (TypeError, ValueError) as e:
                errors.append(type(e).__name__)
        try:
            pycos.aio.wait(asyncio.sleep(0))      # threads, not attached: which loop?
        except RuntimeError as e:
            errors.append(str(e))
        yield
        return errors

    loop = asyncio.new_event_loop()
    try:
        Pycos()
        errors = Task(bad_waits).value(LIMIT)
        assert "not 42" in errors[0]
        assert "yield it directly" in errors[1]
        assert "not None" in errors[2]
        assert errors[3:5] == ["TypeError", "ValueError"]
        assert "attach the scheduler" in errors[5]

        async def calls():
            with pytest.raises(TypeError, match="generator function or a pycos call"):
                await pycos.aio.call(42)
            with pytest.raises(TypeError, match="coroutine function"):
                await pycos.aio.call(coroutine_fn)
            with pytest.raises(TypeError, match="needs a pycos Task"):
                await pycos.aio.result("task")
            with pytest.raises(TypeError, match="returned a coroutine"):
                await pycos.aio.call(lambda: coroutine_fn())
            with pycos.aio.attach():
                with pytest.raises(RuntimeError, match="already attached"):
                    pycos.aio.attach()
            with pytest.raises(TypeError, match="asyncio event loop"):
                pycos.aio.attach(loop="loop")
        loop.run_until_complete(calls())
        with pytest.raises(RuntimeError, match="needs an asyncio loop"):
            pycos.aio.attach()
        Pycos.existing().finish()

        # an embedded scheduler on a backend without a pollable descriptor
        Pycos(embedded=True, backend=NO_FD_BACKEND)

        async def refused():
            with pytest.raises(RuntimeError, match="no pollable descriptor"):
                pycos.aio.attach()
        loop.run_until_complete(refused())
        Pycos.existing().finish()
    finally:
        loop.close()


@NEEDS_SHARED
def test_a_loop_closed_without_detaching(clean):
    """The program forgot to detach: the scheduler notices the closed loop
    and carries on without it (finish() drives it)."""
    sched = _embedded()
    bridges = []

    async def body():
        bridges.append(pycos.aio.attach())
        assert await pycos.aio.call(_one) == 1

    asyncio.run(body())
    assert bridges[0].attached
    asyncio.run(body())             # a new loop: the old bridge is replaced
    assert not bridges[0].attached and bridges[1].attached
    t = Task(_one)                  # ready: the bridge finds its loop closed
    assert t.value(LIMIT) == 1      # and this thread drives the scheduler
    assert not bridges[1].attached
    assert pycos.aio.statistics()["bridges"] == 0
    sched.finish()
