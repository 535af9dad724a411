"""Cross-thread wakeups, the pollable loop descriptor, loop lifecycle."""
import errno
import os
import select
import signal
import socket
import threading
import time

import pytest

from pycos import reactor


def test_backend_selection(backend_name):
    with reactor.Loop() as lp:
        assert lp.backend == backend_name
    for name in reactor.backends():
        with reactor.Loop(name) as lp:
            assert lp.backend == name
    with pytest.raises(ValueError, match="unknown reactor backend"):
        reactor.Loop("no-such-backend")


def test_env_variable_selects_backend(monkeypatch):
    for name in reactor.backends():
        monkeypatch.setenv("PYCOS_BACKEND", name)
        with reactor.Loop() as lp:
            assert lp.backend == name
    monkeypatch.setenv("PYCOS_BACKEND", "bogus")
    with pytest.raises(ValueError):
        reactor.Loop()


def test_closed_loop_is_a_clear_error():
    lp = reactor.Loop()
    lp.close()
    lp.close()                       # idempotent
    assert lp.closed and "closed" in repr(lp)
    with pytest.raises(ValueError, match="closed"):
        lp.poll(0)
    with pytest.raises(ValueError, match="closed"):
        lp.timer_after(1, 1)


@pytest.mark.parametrize("wait", [None, 60.0])
def test_wakeup_from_another_thread_ends_a_wait(loop, wait):
    # (also: a poll that waits lets other Python threads run -- on CPython
    # the reactor's other calls keep the GIL, see build_reactor.py)
    t = threading.Thread(target=lambda: (time.sleep(0.05), loop.wakeup()))
    t.start()
    t0 = time.monotonic()
    events = loop.poll(wait)
    t.join()
    assert events == [reactor.Event(0, reactor.EV_WAKEUP, 0, 0)]
    assert time.monotonic() - t0 < 5


def test_many_threads_many_wakeups_coalesce(loop):
    barrier = threading.Barrier(8)

    def hammer():
        barrier.wait()
        for _ in range(2000):
            loop.wakeup()

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    events = loop.poll(0)
    assert events == [reactor.Event(0, reactor.EV_WAKEUP, 0, 0)]
    assert loop.poll(0) == []


def test_wakeups_are_never_lost(loop):
    """Ping-pong: each round a thread posts and wakes, the poller must get a
    wakeup within its (generous) wait every single time."""
    rounds = 2000
    acked = threading.Semaphore(0)
    posted = []

    def poster():
        for i in range(rounds):
            posted.append(i)
            loop.wakeup()
            if not acked.acquire(timeout=10):
                return

    t = threading.Thread(target=poster)
    t.start()
    try:
        for i in range(rounds):
            events = []
            while len(posted) <= i:
                events = loop.poll(5)
                assert events, "round %d: a wakeup was lost" % i
            acked.release()
    finally:
        acked.release()
        t.join()
    loop.poll(0)


def test_wakeup_from_a_signal_handler(loop):
    """A Python signal handler's wakeup() ends the main thread's poll.  The
    handler runs when the interpreter gets round to it (PyPy may take its
    time, or drop a signal under load), so the sender repeats the signal
    until the handler has run once; from then on the poll must report the
    wakeup."""
    if not hasattr(signal, "pthread_kill") or threading.current_thread() is not threading.main_thread():
        pytest.skip("needs signals delivered to the main thread")
    handled = threading.Event()
    stop = threading.Event()

    def handler(*_):
        loop.wakeup()
        handled.set()

    def sender():
        while not (handled.wait(0.05) or stop.is_set()):
            signal.pthread_kill(threading.main_thread().ident, signal.SIGUSR1)

    old = signal.signal(signal.SIGUSR1, handler)
    t = threading.Thread(target=sender)
    try:
        t.start()
        events = []
        deadline = time.monotonic() + 10
        while not events and time.monotonic() < deadline:
            events = loop.poll(1)      # EINTR gives 0 events; the handler's wakeup follows
    finally:
        stop.set()
        t.join()
        signal.signal(signal.SIGUSR1, old)
    assert handled.is_set(), "the signal handler never ran"
    assert reactor.Event(0, reactor.EV_WAKEUP, 0, 0) in events, events


def test_loop_fileno_is_pollable(loop):
    if loop.backend == "poll":
        with pytest.raises(OSError) as info:
            loop.fileno()
        assert info.value.errno == errno.ENOTSUP
        return
    fd = loop.fileno()
    assert select.select([fd], [], [], 0)[0] == []
    loop.wakeup()
    assert select.select([fd], [], [], 5)[0] == [fd]
    assert loop.poll(0) == [reactor.Event(0, reactor.EV_WAKEUP, 0, 0)]
    # I/O readiness shows on it too
    a, b = socket.socketpair()
    try:
        buf = bytearray(4)
        assert loop.recv(a.fileno(), buf, 5) == reactor.PENDING
        # registering may report the socket's writability once (edge-
        # triggered, both directions): a poll consumes that, completing nothing
        assert loop.poll(0) == []
        assert select.select([fd], [], [], 0)[0] == []
        b.send(b"ping")
        assert select.select([fd], [], [], 5)[0] == [fd]
        assert loop.poll(0) == [reactor.Event(5, reactor.EV_DONE, 4, 4)]
    finally:
        loop.forget(a.fileno())
        a.close()
        b.close()


def test_statistics_names_backend(loop, backend_name):
    s = loop.statistics()
    assert s["backend"] == backend_name
    assert set(s) >= {"pending_ops", "registered_fds", "known_fds", "timers", "queued_events"}


def test_errors_become_specific_exceptions():
    assert isinstance(reactor.error(-errno.ECONNRESET), ConnectionResetError)
    assert isinstance(reactor.error(-errno.EPIPE), BrokenPipeError)
    assert isinstance(reactor.error(-errno.ECONNREFUSED), ConnectionRefusedError)
    e = reactor.error(-errno.EBADF)
    assert e.errno == errno.EBADF and e.strerror == os.strerror(errno.EBADF)
