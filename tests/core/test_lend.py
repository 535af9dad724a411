"""A helper scheduler's rounds lent to its host's thread (pycos.core.lend).

Two real threaded schedulers: the host (the user's ``Pycos``) and a helper
(netpycos's system scheduler is one).  While lent, the helper's tasks run on
the host's thread; when the host computes, the helper's own thread takes
them back within :attr:`Lend.period`; after :meth:`Lend.end` the helper is
on its own for good, and both stop cleanly.
"""
import threading
import time

import pytest

import pycos
from pycos import reactor
from pycos.core import lend as lend_mod
from pycos.core.scheduler import Scheduler

# the best backend with a pollable loop descriptor (what a lend watches)
_BACKEND = next((b for b in reactor.backends() if b in ("epoll", "kqueue")), None)

pytestmark = [
    pytest.mark.timeout(30),
    pytest.mark.skipif(_BACKEND is None, reason="no backend with a loop descriptor here "
                       "(iocp): netpycos runs without the lend, its two threads as before"),
]

_helper = {}


class HelperTask(pycos.Task):
    __slots__ = ()

    @classmethod
    def _default_scheduler(cls):
        return _helper["sched"]


@pytest.fixture
def pair():
    # epoll (kqueue) whatever PYCOS_BACKEND says: the poll backend has no
    # loop descriptor to lend through (see the last test)
    sched = pycos.Pycos(backend=_BACKEND)
    helper = Scheduler(backend=_BACKEND, name="helper")
    _helper["sched"] = helper
    lend = lend_mod.Lend(sched, helper)
    sched._lend = helper._lent = lend
    yield sched, helper, lend
    lend.end()
    helper.terminate()
    _helper.clear()


def _until(pred, timeout=10.0):
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            return False
        time.sleep(0.001)
    return True


def _echo(task=None):
    """Helper task: answers (its thread, the task it runs as, whether its
    scheduler thinks it is on its loop) to each (reply_to,) message."""
    while True:
        msg = yield task.receive()
        if msg is None:
            return
        helper = _helper["sched"]
        msg.send((threading.get_ident(), Scheduler.cur_task() is task, helper._on_loop()))


def _ask(echo, n, out, task=None):
    out["host"] = threading.get_ident()
    _helper["sched"]._lent.hinted = True      # as a direct network write does
    yield task.sleep(0.01)                      # idle: the host asks for the lend
    while _helper["sched"]._lent.state != lend_mod._LENT:
        yield task.sleep(0.001)
    replies = []
    for _ in range(n):
        echo.send(task)
        replies.append((yield task.receive(timeout=5)))
    out["replies"] = replies


def test_lent_rounds_run_on_the_hosts_thread(pair):
    host, helper, lend = pair
    echo = HelperTask(_echo)
    out = {}
    pycos.Task(_ask, echo, 20, out).value()
    threads = {r[0] for r in out["replies"]}
    # every step of the helper's task ran on the host's thread, as itself
    assert threads == {out["host"]}, (threads, out["host"], helper._thread.ident)
    assert all(r[1] and r[2] for r in out["replies"]), out["replies"]
    echo.send(None)
    assert echo.value(timeout=5) is None


def _compute(seconds, started, task=None):
    started.set()
    time.sleep(seconds)                 # a step that does not yield
    yield task.sleep(0)


def test_the_helper_takes_back_while_the_host_computes(pair):
    host, helper, lend = pair
    echo = HelperTask(_echo)
    pycos.Task(_ask, echo, 1, {}).value()           # lent now
    assert lend.state == lend_mod._LENT
    started = threading.Event()
    busy = pycos.Task(_compute, 2.0, started)
    assert started.wait(5)
    box = []
    got = threading.Event()

    class Sink(object):
        def send(self, msg):
            box.append(msg)
            got.set()
    t0 = time.monotonic()
    echo.send(Sink())                   # from this thread, while the host computes
    assert got.wait(1.5), "the helper was not taken back while the host computed"
    # answered by the helper's own thread, well before the step ended
    assert box[0][0] == helper._thread.ident
    assert time.monotonic() - t0 < 1.5
    assert lend.state == lend_mod._SYS
    busy.value(timeout=10)
    echo.send(None)
    assert echo.value(timeout=5) is None


def test_an_idle_host_gives_the_helper_back(pair):
    host, helper, lend = pair
    lend.idle_limit = 0.05
    echo = HelperTask(_echo)
    pycos.Task(_ask, echo, 1, {}).value()
    assert _until(lambda: lend.state == lend_mod._SYS)
    # and the helper still answers, by its own thread now
    box = []
    got = threading.Event()

    class Sink(object):
        def send(self, msg):
            box.append(msg)
            got.set()
    echo.send(Sink())
    assert got.wait(5) and box[0][0] == helper._thread.ident
    echo.send(None)
    assert echo.value(timeout=5) is None


def test_a_helper_timer_fires_while_lent(pair):
    host, helper, lend = pair
    echo = HelperTask(_echo)
    pycos.Task(_ask, echo, 1, {}).value()
    assert lend.state == lend_mod._LENT

    def sleeper(task=None):
        t0 = time.monotonic()
        yield task.sleep(0.05)
        return threading.get_ident(), time.monotonic() - t0
    ident, slept = HelperTask(sleeper).value(timeout=5)
    assert slept >= 0.05
    assert ident in (threading.get_ident(), host._thread.ident, helper._thread.ident)
    echo.send(None)
    assert echo.value(timeout=5) is None


def test_end_hands_the_helper_back_for_good(pair):
    host, helper, lend = pair
    echo = HelperTask(_echo)
    pycos.Task(_ask, echo, 1, {}).value()
    lend.end()
    assert lend.state == lend_mod._SYS
    lend.hinted = True

    def again(task=None):
        yield task.sleep(0.01)          # idle with a hint: no lend after end()
        return lend.state, lend.wanted
    assert pycos.Task(again).value(timeout=5) == (lend_mod._SYS, False)
    box = []
    got = threading.Event()

    class Sink(object):
        def send(self, msg):
            box.append(msg)
            got.set()
    echo.send(Sink())
    assert got.wait(5) and box[0][0] == helper._thread.ident
    echo.send(None)
    assert echo.value(timeout=5) is None


def test_the_helper_stops_while_lent(pair):
    host, helper, lend = pair
    echo = HelperTask(_echo)
    pycos.Task(_ask, echo, 1, {}).value()
    assert lend.state == lend_mod._LENT
    helper.terminate()                  # from a plain thread, while parked
    assert not helper._thread.is_alive() and lend.ended


@pytest.mark.skipif("poll" not in reactor.backends(), reason="no poll backend here")
def test_no_lend_over_a_loop_without_a_descriptor():
    host = Scheduler(backend="poll", name="poll-host")
    helper = Scheduler(backend="poll", name="poll-helper")
    try:
        with pytest.raises(OSError):
            lend_mod.Lend(host, helper)
    finally:
        helper.terminate()
        host.terminate()
