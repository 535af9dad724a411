"""asyncio and pycos in one process, both ways (see docs/asyncio.md).

Most of today's Python I/O libraries are asyncio's.  This module lets a pycos
task wait for any asyncio awaitable, lets asyncio code wait for pycos tasks
and calls, and lets one thread run both:

* ``bridge = pycos.aio.attach(loop=None)`` ties the pycos scheduler to a
  running asyncio loop.  An embedded scheduler (``Pycos(embedded=True)``) is
  then *driven by* the loop: its descriptor is watched with ``add_reader``,
  its timers become ``call_later`` handles and each wake-up runs one
  non-blocking ``run_once()`` -- one thread serves both.  A scheduler in its
  own thread (the default) stays there; the bridge only tells pycos which
  loop runs the awaitables, and everything crossing between the two threads
  goes through ``loop.call_soon_threadsafe`` one way and the scheduler's
  inbox (``_post`` + its wakeup) the other.  ``bridge.detach()`` (or leaving
  ``with attach():``) undoes it.
* ``result = yield pycos.aio.wait(awaitable, timeout=None, alarm_value=None)``
  in a task: the awaitable runs as an asyncio task on the loop while the
  pycos task is parked; its result comes back, its exception is raised at the
  ``yield``.  Terminating or throwing into the pycos task cancels the asyncio
  task; a timeout cancels it too and the task gets ``alarm_value``.
* ``await pycos.aio.call(fn, *args, **kwargs)`` in a coroutine: runs
  ``yield fn(*args, **kwargs)`` in a fresh pycos task (a generator function,
  with ``task=`` passed as Task does, or any pycos call such as
  ``sock.recv``); its return value comes back, its exception is raised at the
  ``await``.  Cancelling the coroutine terminates that pycos task.
* ``await pycos.aio.result(task)``: the end value of an existing pycos task,
  what ``yield task.finish()`` gives.

No polling and no thread per call anywhere: every hand-over is a callback on
the side that owns the data, and each wait is one pycos park plus one asyncio
future.

The one place this module reaches into the kernel's data: while an embedded
scheduler is attached, its ready queue is a deque whose ``append`` also asks
the loop to run a round soon (``_KickDeque``).  Code running on the loop's
thread outside a round -- a coroutine calling ``task.send(msg)``,
``pycos.Task(...)``, a socket closing and waking its reader -- makes a task
ready without any descriptor becoming readable; the kick is how the loop
learns of it.  During the rounds the bridge runs itself the queue is a plain
deque again, so the kernel's hot path is untouched.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import weakref
from collections import deque
from types import GeneratorType
from typing import Any, Awaitable, Callable, Dict, Optional, Set

from pycos.core.scheduler import PARKED, Pycos, Scheduler, _check_timeout
from pycos.core.task import Task, _make_generator
from pycos.hints import Timeout, Yieldable

__all__ = ["attach", "wait", "call", "result", "Bridge", "statistics"]

_running_loop = asyncio._get_running_loop     # None outside a running loop; no exception

_lock = threading.Lock()
_bridges: weakref.WeakKeyDictionary[Scheduler, Bridge] = weakref.WeakKeyDictionary()
#                                             (scheduler -> its attached Bridge)
_live_waits: Set[_Wait] = set()               # _Wait objects in flight
_live_calls: Set[_Call] = set()               # _Call objects in flight

#: ``atexit`` priority of the hook that detaches a bridge when its scheduler
#: finishes or is terminated: lower than anything a program would pick, so
#: the program's own atexit functions still run with the bridge in place
_ATEXIT_PRIORITY = -(1 << 30)

#: scheduler rounds one loop callback runs at most while tasks keep being
#: ready, before the loop's other callbacks get their turn
_ROUNDS = 8


def statistics() -> Dict[str, int]:
    """Counters of this module: attached ``bridges``, ``waits`` (pycos tasks
    waiting for asyncio awaitables) and ``calls`` (coroutines waiting for
    pycos calls) in flight.  All zero once everything has ended."""
    with _lock:
        bridges = len(_bridges)
    return {"bridges": bridges, "waits": len(_live_waits), "calls": len(_live_calls)}


def _current_scheduler():
    """The process's pycos scheduler, or None (never creates one)."""
    sched = Pycos.existing()
    if sched is None and Pycos._networked is not None:
        sched = Pycos._networked.existing()
    if sched is not None and not sched.is_alive():
        return None
    return sched


def _on_sched(sched, fn, *args):
    """Run ``fn(*args)`` where ``sched``'s data live: now, on its thread, else
    posted to it.  False when the scheduler has stopped."""
    if sched._on_loop():
        fn(*args)
        return True
    return sched._post(fn, *args)


def _on_loop(loop, fn, *args):
    """Run ``fn(*args)`` on asyncio ``loop``'s thread: now when this is it,
    else through ``call_soon_threadsafe``.  False when the loop is closed."""
    if _running_loop() is loop:
        fn(*args)
        return True
    try:
        loop.call_soon_threadsafe(fn, *args)
    except RuntimeError:        # the loop is closed: nobody is waiting any more
        return False
    return True


def _discard(awaitable):
    """Dispose of an awaitable that will never be awaited: close a coroutine
    (no 'never awaited' warning), cancel a future."""
    if inspect.iscoroutine(awaitable):
        awaitable.close()
    elif asyncio.isfuture(awaitable):
        try:
            awaitable.cancel()
        except RuntimeError:     # its loop is closed
            pass


# ---- the bridge -----------------------------------------------------------------

_deque_append = deque.append
_deque_appendleft = deque.appendleft


class _KickDeque(deque):
    """The ready queue of an attached embedded scheduler between rounds:
    appending also asks the loop for a round (see the module docstring)."""

    __slots__ = ("kick",)

    kick: Optional[Callable[[], None]]

    def append(self, item):
        _deque_append(self, item)
        kick = self.kick
        if kick is not None:
            kick()

    def appendleft(self, item):
        _deque_appendleft(self, item)
        kick = self.kick
        if kick is not None:
            kick()


class Bridge(object):
    """The tie between a pycos scheduler and an asyncio loop, made by
    :func:`attach`.

    ``shared_thread`` is True when the loop drives an embedded scheduler
    (pycos tasks and coroutines run in one thread), False when the scheduler
    has a thread of its own.  ``detach()`` ends it; so does leaving a
    ``with`` / ``async with`` block, and the scheduler's ``finish()`` or
    ``terminate()``.  Detaching cancels nothing: waits in flight go on (an
    embedded scheduler that is no longer driven runs them when its host next
    drives it, e.g. in ``finish()``).
    """

    # (a shared-thread bridge's ready queue and descriptor; None with two
    # threads, where nothing reads them)
    _kd: _KickDeque
    _fd: int
    _soon_handle: Optional[asyncio.Handle]
    _timer: Optional[asyncio.TimerHandle]

    def __init__(self, scheduler: Scheduler, loop: asyncio.AbstractEventLoop) -> None:
        self._sched = scheduler
        self._loop = loop
        self._attached = True
        self._rounds = 0
        self._soon_handle = None
        self._timer = None
        self._fd = None     # type: ignore[assignment]  # (see above)
        self._kd = None     # type: ignore[assignment]
        self.shared_thread = scheduler.embedded
        if self.shared_thread:
            self._fd = scheduler.fileno()
            kd = _KickDeque(scheduler._ready)
            kd.kick = self._soon
            scheduler._ready = kd
            self._kd = kd
            loop.add_reader(self._fd, self._run)
            self._soon()          # tasks may be ready already
        scheduler.atexit(_ATEXIT_PRIORITY, self._at_sched_exit)

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The asyncio loop."""
        return self._loop

    @property
    def scheduler(self) -> Scheduler:
        """The pycos scheduler."""
        return self._sched

    @property
    def attached(self) -> bool:
        """True until :meth:`detach`."""
        return self._attached

    def __repr__(self) -> str:
        return "<pycos.aio.Bridge %s %r <-> %r%s>" % (
            "shared thread" if self.shared_thread else "two threads", self._sched, self._loop,
            "" if self._attached else " (detached)")

    def statistics(self) -> Dict[str, Any]:
        """``attached``, ``shared_thread``, ``rounds`` (scheduler rounds the
        loop has run) and ``fd`` (the scheduler's descriptor the loop watches,
        None with two threads)."""
        return {"attached": self._attached, "shared_thread": self.shared_thread,
                "rounds": self._rounds, "fd": self._fd}

    # -- driving an embedded scheduler (loop thread) --

    def _soon(self):
        """A round as soon as the loop gets to it (once, however often asked)."""
        if not self._attached:
            return
        if self._loop.is_closed():          # closed without detaching
            self._forget()
        elif self._soon_handle is None:
            self._soon_handle = self._loop.call_soon(self._run)

    def _run(self):
        """One scheduler round, then arrange for the next one."""
        if self._soon_handle is not None:
            self._soon_handle.cancel()
            self._soon_handle = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        sched = self._sched
        if not self._attached:
            return
        if not sched.is_alive():
            self.detach()
            return
        kd = self._kd
        if sched._ready is kd:
            # a plain deque for the round: the kernel's hot path as usual
            sched._ready = deque(kd)
            kd.clear()
        try:
            # a few rounds while tasks stay ready (a sub-call, a message
            # answered at once), then the loop's other callbacks get a turn
            for _ in range(_ROUNDS):
                self._rounds += 1
                sched.run_once(0)
                if not sched._ready or not self._attached:
                    break
        finally:
            if self._attached and sched.is_alive():
                ready = sched._ready
                if ready is not kd:
                    kd.extend(ready)
                    sched._ready = kd
                self._arm()

    def _arm(self):
        """After a round: the next one now (tasks ready), at the next pycos
        timer, or when the descriptor becomes readable."""
        wait = self._sched.next_deadline()
        if wait is None:
            return
        if wait <= 0:
            self._soon()
        else:
            self._timer = self._loop.call_later(wait, self._run)

    def _disarm(self):
        """Stop asking the loop for rounds, without touching the loop (it
        may be closed, or this may be called in the middle of a round)."""
        if self._kd is not None:
            self._kd.kick = None
        for handle in (self._soon_handle, self._timer):
            if handle is not None:
                handle.cancel()
        self._soon_handle = self._timer = None

    # -- ending --

    def detach(self) -> None:
        """Untie the scheduler from the loop.  From the loop's thread (or,
        with two threads, any thread); a second call does nothing."""
        if not self._attached:
            return
        sched = self._sched
        if (self.shared_thread and not self._loop.is_closed()
                and self._loop.is_running() and _running_loop() is not self._loop):
            raise RuntimeError("detach() a shared-thread bridge from its loop's thread")
        self._forget()
        if self.shared_thread:
            if not self._loop.is_closed():
                self._loop.remove_reader(self._fd)
            kd = self._kd
            # outside a round the kernel gets a plain deque back; inside one
            # run by _run the round's own deque is plain already; inside a
            # round run by someone else (finish() on this thread...) kd
            # stays, kicking no more: a plain deque in all but speed
            if sched._ready is kd and Scheduler.scheduler() is not sched:
                sched._ready = deque(kd)
                kd.clear()

    def _forget(self):
        """Detach as far as can be done from anywhere, at any moment: no
        more rounds asked for, out of the registry.  (The reader and the
        ready queue are the loop thread's to put back, between rounds.)"""
        self._attached = False
        self._disarm()
        sched = self._sched
        with _lock:
            if _bridges.get(sched) is self:
                del _bridges[sched]
        sched.drop_atexit(_ATEXIT_PRIORITY, self._at_sched_exit)

    def _at_sched_exit(self):
        """The scheduler finishes or is terminated: detach first."""
        if not self._attached:
            return
        if (not self.shared_thread or self._loop.is_closed() or not self._loop.is_running()
                or _running_loop() is self._loop):
            self.detach()
        else:
            self._disarm()
            _on_loop(self._loop, self.detach)

    def __enter__(self) -> Bridge:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.detach()

    async def __aenter__(self) -> Bridge:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.detach()


def attach(loop: Optional[asyncio.AbstractEventLoop] = None) -> Bridge:
    """Tie the pycos scheduler to asyncio ``loop`` (default: the running
    loop) and return the :class:`Bridge` (also a context manager, plain and
    async, that detaches on exit).

    * No scheduler yet: an embedded one is created and driven by the loop,
      so pycos tasks and coroutines share this thread -- unless the reactor
      backend has no pollable descriptor (``poll``), in which case the
      scheduler gets its own thread as usual.
    * An embedded scheduler (``Pycos(embedded=True)``): driven by the loop;
      call from the loop's thread.  Its backend must have a pollable
      descriptor (``fileno()``), else RuntimeError.
    * A scheduler with its own thread: it stays there; the loop becomes the
      one :func:`wait` runs awaitables on.

    A scheduler is attached to one loop at a time (RuntimeError otherwise).
    """
    if loop is None:
        loop = _running_loop()
        if loop is None:
            raise RuntimeError("pycos.aio.attach() needs an asyncio loop: call it from a "
                               "coroutine, or pass loop=")
    elif not isinstance(loop, asyncio.AbstractEventLoop):
        raise TypeError("loop must be an asyncio event loop, not %r" % (loop,))
    if loop.is_closed():
        raise RuntimeError("asyncio loop %r is closed" % (loop,))
    here = _running_loop()
    # this thread runs (or will run) the loop: only then can the loop drive
    # an embedded scheduler here
    drives_here = here is loop or (here is None and not loop.is_running())
    sched = _current_scheduler()
    if sched is None:
        sched = Pycos(embedded=drives_here)
        if sched.embedded:
            try:
                sched.fileno()
            except OSError:         # the poll backend: no descriptor to watch
                sched.terminate()
                sched = Pycos()
    elif sched.embedded:
        if not drives_here:
            raise RuntimeError("an embedded pycos scheduler is driven by its loop's thread: "
                               "call attach() there")
        if Scheduler.cur_task() is not None:
            raise RuntimeError("attach() an embedded scheduler from the loop, not from a task")
        try:
            sched.fileno()
        except OSError as e:
            raise RuntimeError(
                "the embedded pycos scheduler's reactor backend (%s) has no pollable "
                "descriptor (%s), so an asyncio loop cannot drive it: create it with "
                "Pycos(embedded=True, backend='epoll'), or use a scheduler with its own "
                "thread (Pycos()); see docs/asyncio.md" % (sched.loop.backend, e)) from None
    old = _bridges.get(sched)
    if old is not None and old._attached and old._loop.is_closed():
        old.detach()                # its loop ended without detaching
    with _lock:
        old = _bridges.get(sched)
        if old is not None and old._attached:
            raise RuntimeError("%r is already attached to %r; detach() it first"
                               % (sched, old._loop))
        bridge = Bridge(sched, loop)
        _bridges[sched] = bridge
    return bridge


# ---- a pycos task waits for an asyncio awaitable -----------------------------------


class _Wait(object):
    """One pycos task waiting for one awaitable.  ``pending`` is touched on
    the scheduler's thread only, ``fut``/``aw``/``cancel`` on the loop's."""

    __slots__ = ("sched", "task", "wid", "loop", "aw", "fut", "alarm", "tok", "tid",
                 "pending", "timed_out", "cancel")

    #: how the kernel names this call (in the error for a missing ``yield``)
    _what = "pycos.aio.wait()"

    def __init__(self, sched, task, loop, aw, alarm):
        self.sched = sched
        self.task = task
        self.wid = 0
        self.loop = loop
        self.aw = aw
        self.fut = None
        self.alarm = alarm
        self.tok = 0
        self.tid = 0
        self.pending = False
        self.timed_out = False
        self.cancel = False

    # scheduler thread

    def interrupted(self, task, reason):
        """The park's cancel hook: the task was thrown into or terminated
        (or an exception was already due when it tried to wait)."""
        if self.pending:
            self._end()
        _on_loop(self.loop, self._cancel_aio)

    def on_timer(self, kind, aux, result):
        self.sched._drop_handler(self.tok)
        self.tid = 0
        if self.pending:
            self.timed_out = True
            _on_loop(self.loop, self._cancel_aio)

    def settle(self, ok, value):
        """The asyncio side ended: wake the task (unless it gave up)."""
        if not self.pending:
            return
        self._end()
        sched, task, wid = self.sched, self.task, self.wid
        if ok:
            sched._unpark(task, value, wid)
        elif ok is None:                  # cancelled
            if self.timed_out:
                sched._unpark(task, self.alarm, wid)
            else:
                sched._unpark_exc(task, asyncio.CancelledError(), wid)
        else:
            sched._unpark_exc(task, value, wid)

    def _end(self):
        self.pending = False
        sched = self.sched
        sched._external -= 1
        if self.tid:
            sched.loop.timer_cancel(self.tid)
            self.tid = 0
            sched._drop_handler(self.tok)
        _live_waits.discard(self)

    # loop thread

    def start(self):
        aw, self.aw = self.aw, None
        if self.cancel:                   # given up before it started
            _discard(aw)
            self.deliver(None, None)
            return
        try:
            fut = asyncio.ensure_future(aw, loop=self.loop)
        except BaseException as e:
            _discard(aw)
            self.deliver(False, e)
            return
        self.fut = fut
        fut.add_done_callback(self.done)

    def _cancel_aio(self):
        self.cancel = True
        fut = self.fut
        if fut is not None:
            try:
                fut.cancel()
            except RuntimeError:          # its loop is closed
                pass
        elif self.aw is not None and not self.pending:
            # refused before it started (an exception was due): never start
            _discard(self.aw)
            self.aw = None

    def done(self, fut):
        if fut.cancelled():
            self.deliver(None, None)
            return
        exc = fut.exception()
        if exc is None:
            self.deliver(True, fut.result())
        else:
            self.deliver(False, exc)

    def deliver(self, ok, value):
        if not _on_sched(self.sched, self.settle, ok, value):
            _live_waits.discard(self)     # the scheduler has stopped


def wait(awaitable: Awaitable[Any], timeout: Timeout = None, alarm_value: Any = None,
         loop: Optional[asyncio.AbstractEventLoop] = None) -> Yieldable:
    """[y] ``result = yield pycos.aio.wait(awaitable)`` in a task: run an
    asyncio awaitable (a coroutine, an asyncio Future or Task, any object
    with ``__await__``) on the asyncio loop while the task waits; the result
    comes back at the ``yield``, an exception is raised there.

    ``loop``: the loop to run it on; default the future's own loop, else the
    loop the scheduler is attached to (:func:`attach`).

    ``timeout`` (seconds, on the scheduler's clock): when it passes, the
    asyncio task is cancelled and, once it has ended, the pycos task gets
    ``alarm_value`` -- as ``receive``/``sleep`` do.  (If the awaitable
    finishes anyway, ignoring the cancellation, its own outcome is given.)
    Terminating or throwing into the waiting task cancels the asyncio task
    (the pycos task does not wait for it to end).  An awaitable cancelled by
    asyncio code raises ``asyncio.CancelledError`` in the task.
    """
    task = Scheduler.cur_task()
    if task is None:
        _discard(awaitable)
        raise RuntimeError("pycos.aio.wait() must be yielded in a pycos task "
                           "('result = yield pycos.aio.wait(aw)'); a coroutine awaits directly")
    if not (asyncio.isfuture(awaitable) or inspect.isawaitable(awaitable)):
        if type(awaitable) is GeneratorType:
            raise TypeError("pycos.aio.wait() takes an asyncio awaitable; %r is a generator: "
                            "yield it directly to run it as a pycos sub-call" % (awaitable,))
        raise TypeError("pycos.aio.wait() takes an asyncio awaitable (a coroutine, a Future, "
                        "an object with __await__), not %r" % (awaitable,))
    try:
        timeout = _check_timeout(timeout)
        if asyncio.isfuture(awaitable):
            own = awaitable.get_loop()
            if loop is not None and loop is not own:
                raise ValueError("the future %r belongs to loop %r, not %r"
                                 % (awaitable, own, loop))
            loop = own
        elif loop is None:
            bridge = _bridges.get(task._sched)
            if bridge is None:
                raise RuntimeError("pycos.aio.wait(): no asyncio loop to run %r on: attach the "
                                   "scheduler to one (pycos.aio.attach()) or pass loop="
                                   % (awaitable,))
            loop = bridge._loop
        elif not isinstance(loop, asyncio.AbstractEventLoop):
            raise TypeError("loop must be an asyncio event loop, not %r" % (loop,))
        if loop.is_closed():
            raise RuntimeError("asyncio loop %r is closed" % (loop,))
    except BaseException:
        _discard(awaitable)
        raise
    sched = task._sched
    if asyncio.isfuture(awaitable) and awaitable.done():
        # complete already: no trip through the loop
        if awaitable.cancelled():
            raise asyncio.CancelledError()
        exc = awaitable.exception()
        if exc is not None:
            raise exc
        return sched._now_value(task, awaitable.result())
    w = _Wait(sched, task, loop, awaitable, alarm_value)
    rc = sched._park(task, None, None, w.interrupted)
    if task._state != PARKED:       # an exception is due: interrupted() has run
        return rc
    w.wid = task._wid
    w.pending = True
    sched._external += 1            # virtual time waits for asyncio, as for threads
    _live_waits.add(w)
    if timeout is not None:
        w.tok = sched._add_handler(w.on_timer)
        w.tid = sched.loop.timer_after(timeout, w.tok)
    if not _on_loop(loop, w.start):
        w._end()
        sched._unpark_exc(task, RuntimeError("asyncio loop %r is closed" % (loop,)), w.wid)
    return rc


# ---- asyncio code waits for pycos -------------------------------------------------


class _Call(object):
    """One coroutine waiting for one pycos call.  Settled on the loop's thread."""

    __slots__ = ("loop", "fut", "ended", "end_fut", "started", "sched")

    def __init__(self, loop):
        self.sched = None
        self.loop = loop
        self.fut = loop.create_future()
        self.ended = False
        self.end_fut = None
        self.started = False       # scheduler thread: the runner's body has begun

    def stop(self, task):
        """Scheduler thread: the awaiter was cancelled -- terminate the task.
        One whose generator never started ends without running a line (no
        ``finally`` to report it), so report it here."""
        if task.is_alive():
            task.terminate()
        if not self.started:
            self.started = True
            self.finish(None, None)

    def finish(self, ok, value):
        """From the pycos task as it ends (scheduler thread): report once
        the step is over, when the task is no longer alive."""
        sched = self.sched
        if sched is not None and Scheduler.scheduler() is sched:     # in a round
            sched._at_round_end(self, lambda: self.report(ok, value))
        else:
            self.report(ok, value)

    def report(self, ok, value):
        if not _on_loop(self.loop, self._set, ok, value):
            _live_calls.discard(self)

    def _set(self, ok, value):
        self.ended = True
        _live_calls.discard(self)
        fut = self.fut
        if not fut.done():
            if ok is None:
                fut.cancel()
            elif ok:
                fut.set_result(value)
            else:
                if isinstance(value, StopIteration):    # futures refuse it
                    err = RuntimeError("pycos call raised StopIteration")
                    err.__cause__ = value
                    value = err
                fut.set_exception(value)
        end = self.end_fut
        if end is not None and not end.done():
            end.set_result(None)


def _runner(fn, args, kwargs, call, task=None):
    """The pycos task behind :func:`call`."""
    if call.started:               # stopped before it began
        return
    call.started = True
    call.sched = task._sched
    ok, value = None, None
    try:
        if inspect.isgeneratorfunction(fn):
            # delegated, not a sub-call: the call starts in this same step
            value = yield from _make_generator(task, (fn,) + args, kwargs)
        else:
            op = fn(*args, **kwargs)
            if inspect.iscoroutine(op):
                op.close()
                raise TypeError("%r returned a coroutine: await it in asyncio code, or yield "
                                "pycos.aio.wait(...) for it in a task" % (fn,))
            value = yield op
        ok = True
    except GeneratorExit:            # terminated: the awaiter is cancelled
        ok, value = None, None
        raise
    except BaseException as e:
        ok, value = False, e
    finally:
        call.finish(ok, value)


def _scheduler_for_call():
    sched = _current_scheduler()
    if sched is not None and sched.embedded and sched not in _bridges:
        raise RuntimeError("the pycos scheduler is embedded and not attached to an asyncio "
                           "loop, so nothing would run the call: use pycos.aio.attach()")
    return sched


async def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``value = await pycos.aio.call(fn, *args, **kwargs)`` in a coroutine:
    run ``yield fn(*args, **kwargs)`` in a new pycos task and return what
    it gives.

    ``fn`` is a generator function (``task=`` is passed to it as
    :class:`pycos.Task` does) or any pycos call that a task yields -- e.g.
    ``await pycos.aio.call(sock.recv, 1024)``.  An exception it raises is
    raised at the ``await``.  Cancelling the coroutine terminates the pycos
    task (its ``finally`` blocks run) and the ``await`` raises
    ``CancelledError`` once it has ended; a pycos task terminated by someone
    else raises ``CancelledError`` too.
    """
    if not callable(fn):
        raise TypeError("pycos.aio.call() needs a generator function or a pycos call, not %r"
                        % (fn,))
    if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
        raise TypeError("%r is a coroutine function: await it directly (pycos.aio.call runs "
                        "pycos generator functions)" % (fn,))
    loop = asyncio.get_running_loop()
    _scheduler_for_call()
    c = _Call(loop)
    _live_calls.add(c)
    try:
        task = Task(_runner, fn, args, kwargs, c)
        c.sched = task._sched
        _watch_exit(c.sched)
    except BaseException:
        _live_calls.discard(c)
        raise
    try:
        return await c.fut
    except asyncio.CancelledError:
        if not c.ended:
            c.end_fut = loop.create_future()
            if _on_sched(task._sched, c.stop, task):
                await c.end_fut
            else:
                _live_calls.discard(c)
        raise


_watched: weakref.WeakKeyDictionary[Scheduler, bool] = weakref.WeakKeyDictionary()
#                                          (schedulers with the hook below)


def _watch_exit(sched):
    """Once per scheduler: when it is terminated, calls whose task never got
    to start (and so never reports) are cancelled."""
    if sched not in _watched:
        with _lock:
            if sched in _watched:
                return
            _watched[sched] = True
        sched.atexit(_ATEXIT_PRIORITY, _unstarted_calls, weakref.ref(sched))


def _unstarted_calls(sched_ref):
    sched = sched_ref()
    for c in list(_live_calls):
        if c.sched is sched and not c.started:
            c.report(None, None)


async def result(task: Task) -> Any:
    """``value = await pycos.aio.result(task)`` in a coroutine: wait until
    pycos ``task`` ends and return its value -- exactly what ``yield
    task.finish()`` gives in a task (a ``MonitorStatus`` when it died of an
    exception).  Cancelling the coroutine stops the waiting only: ``task``
    goes on (use :func:`call` for a call owned by the coroutine, or
    ``task.terminate()``)."""
    if not isinstance(task, Task):
        raise TypeError("pycos.aio.result() needs a pycos Task, not %r" % (task,))
    if not task.is_alive() and task._sched._on_loop():
        # ended, and its scheduler's data are this thread's: the value is
        # there (from another thread it may not be yet; finish() knows)
        return task.value()
    return await call(task.finish)
