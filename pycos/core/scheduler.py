"""The kernel: one round loop over the C reactor, and parking.

A discussion of the design
--------------------------

A task is a stack of generators.  The kernel *steps* a task by sending a
value into (or throwing an exception at) the generator on top of its stack,
and then looks at what came out:

* a generator -- a sub-call: push it, start it with ``None``;
* :data:`PARK` -- the call the task just made (sleep, receive, a lock wait,
  an I/O operation) has already *parked* the task or arranged its next value;
  leave it alone;
* :data:`RESUME` -- the call completed at once with ``None`` (a ``sendall``
  that fit in the socket buffer): step the task again right away, with
  ``None``, without a trip through the ready queue (still counted against
  the round's step budget);
* anything else -- a plain value: the task is ready again and gets the same
  value back (at the end of the ready queue: a bare ``yield`` lets the
  others run).

``return v`` (``StopIteration``) pops the stack and hands ``v`` to the caller;
an exception pops it and is thrown into the caller.  At the bottom, the task
ends.  That is the whole kernel; everything users see (sleep, messages,
locks, channels, the thread pool, sockets) is a small function that parks
the current task and, later, wakes it.

A *round* takes the work other threads posted (a FIFO inbox plus
``loop.wakeup()``), steps the ready tasks (FIFO, a plain deque; embedded:
every ready task once; own thread: up to ``_STEPS`` steps), then polls the
reactor -- without waiting if anything is ready, else until the next timer
or event -- and dispatches the events by integer token.  The tasks the
events woke go to the front of the ready queue, so I/O and timers are not
kept waiting behind a long backlog.

Parking
~~~~~~~

``_park(task, timeout, alarm, cancel)`` marks the current task parked and,
with a timeout, starts one reactor timer whose token maps to the task.  A
parked task is woken exactly once, by the first of:

* ``_unpark(task, value)`` / ``_unpark_exc(task, exc)`` -- the normal way
  (the lock was released, the message came, the I/O completed);
* its timer -- ``cancel(task, TIMEOUT)`` runs first (a wait queue drops the
  task, a socket cancels its operation; the hook may itself wake the task
  with another value or exception), else the task resumes with ``alarm``;
* an interruption (``throw``, ``terminate``, hot swap) --
  ``cancel(task, INTERRUPT)`` runs, then the exception is thrown in.

Each park gets a fresh number, ``task._wid``; wakers that can be late (a
thread-pool result arriving after the task was terminated and parked again
elsewhere) pass it to ``_unpark`` and are ignored when it no longer matches.
One timeout mechanism therefore serves sleep, receive, locks, semaphores,
events, conditions and (later) sockets.

A forgotten ``yield``
~~~~~~~~~~~~~~~~~~~~~

A call that parks the task (or completes it at once with ``_now_value``)
changes the task's state from RUNNING while the task is still being stepped;
the task must yield that call's PARK before it does anything else.  When it
does not -- ``task.sleep(1)`` written without ``yield`` -- the state says so
at no extra cost: the next call that parks or completes finds the task not
RUNNING, and so does the end of the step (the task yields something other
than PARK while PARKED or READY) or of the frame (it returns or raises).
Each of those places calls :meth:`Scheduler._unyielded`, which withdraws
the forgotten call exactly as an interruption would (its timer, its place in
a wait queue, its pending I/O) and returns a :class:`MissingYieldError`
naming the call (from the park's cancel hook, or ``_now_value``'s ``what``),
which is raised in the task.  Nothing is checked per step beyond the state
comparisons the kernel already made.

Threads
~~~~~~~

The loop's data belong to the loop thread (or, for an embedded scheduler,
the thread calling ``run_once``).  Other threads never touch them: the
public calls (``Task(...)``, ``send``, ``resume``, ``throw``, ``terminate``,
``hot_swap``...) post ``(function, args)`` to the inbox with ``_post`` and
wake the loop; the inbox is FIFO, so each sender's order is kept.  The only
lock protects the counters that ``join``/``value`` wait on.

Internal API for other layers (sockets, files, netpycos)
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~

All of these run on the loop thread, except ``_post``.

``sched.loop``
    the :class:`pycos.reactor.Loop` (submit ``recv``/``send``/... with a
    token from ``_add_handler``).
``sched._add_handler(fn) -> token``
    reactor events carrying ``token`` call ``fn(kind, aux, result)`` until
    ``sched._drop_handler(token)``.  Exceptions from ``fn`` are logged.
``sched._new_token() -> int``
    a fresh token (for a handler-less operation or a private timer).
``Pycos.cur_task()``
    the task being stepped.
``sched._park(task, timeout=None, alarm=None, cancel=None) -> PARK``
    park ``task`` (the current one); return value must be what the task's
    call returns, so the task yields it.  ``cancel(task, reason)`` with
    ``reason`` TIMEOUT or INTERRUPT as described above.  Read ``task._wid``
    right after to identify this park.
``sched._unpark(task, value=None, wid=None) -> bool``,
``sched._unpark_exc(task, exc, wid=None) -> bool``
    wake a parked task with a value / by raising ``exc`` at its yield.  False
    when it was not parked (or not by park ``wid``).
``sched._now_value(task, value) -> PARK``
    complete a call at once with an arbitrary value (even a generator).
``sched._post(fn, *args) -> bool``
    from any thread: run ``fn(*args)`` on the loop thread soon.
``sched._external``
    count of operations completed by other threads (thread pool); virtual
    time does not jump while it is non-zero.
"""

from __future__ import annotations

import atexit as _atexit_mod
import itertools
import math
import os
import platform
import signal
import sys
import threading
import time
import traceback
import warnings
from bisect import insort
from collections import deque
from functools import partial
from types import (BuiltinFunctionType, CoroutineType, FunctionType, GeneratorType, MethodType,
                   ModuleType)
from typing import (TYPE_CHECKING, Any, Callable, Deque, Dict, List, Optional, Tuple, Type,
                    overload)

from pycos import reactor
from pycos.core.log import logger
from pycos.core.support import HotSwapException, Location, MonitorStatus, Singleton
from pycos.hints import Timeout

if TYPE_CHECKING:
    from pycos.core.channel import Channel
    from pycos.core.task import Task

__all__ = ["Scheduler", "Pycos", "PARK", "RESUME", "TIMEOUT", "INTERRUPT", "MissingYieldError"]


class MissingYieldError(TypeError):
    """A task made a pycos call that may wait (``task.sleep()``,
    ``lock.acquire()``, ``sock.recv()``...) without ``yield`` in front of it.

    Raised in that task, at its next pycos call, its next ``yield`` or the
    end of the function, whichever comes first; the forgotten call has then
    been withdrawn (it never completes).  Write ``value = yield call(...)``,
    one call per ``yield``."""


class _Park(object):
    """The sentinel a task yields when its call has parked it."""

    __slots__ = ()

    def __repr__(self) -> str:
        # what a user sees who printed the result of a call made without yield
        return "<pycos PARK: the result of a pycos call made without 'yield'>"


PARK = _Park()


class _Resume(object):
    """The sentinel a call returns when it completed at once with ``None``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<pycos RESUME>"


RESUME = _Resume()

# cancel-hook reasons
TIMEOUT = 1
INTERRUPT = 2

# task states
READY = 1      # in the ready queue
RUNNING = 2    # being stepped
PARKED = 3     # waiting for _unpark / timeout / interruption
DONE = 4       # finished

# pending-exception marker that closes the task instead of throwing
_TERMINATE = object()

_get_ident = threading.get_ident
_by_thread: Dict[int, Scheduler] = {}      # thread ident -> scheduler running there
#: ``_by_thread.get``, bound once for the I/O hot paths of other modules:
#: there ``_by_thread.get(...)`` names an imported object, and CPython 3.11
#: compiles a method call on an imported name as an attribute load plus a
#: call, making a bound-method object every time
_sched_of_thread = _by_thread.get


def _cur_task() -> Optional[Task]:
    """The task being stepped now on this thread (None outside tasks):
    :meth:`Scheduler.cur_task` for other modules' hot paths, without the
    lookup of a static method on a class at every call."""
    sched = _sched_of_thread(_get_ident())
    return None if sched is None else sched._cur


_EV_TIMER = reactor.EV_TIMER


#: Task steps a threaded scheduler runs between two looks at I/O when tasks
#: keep being ready (bounds how late an I/O completion is seen under load).
_STEPS = 256

#: Signals the scheduler's own thread never takes (they go to the host's).
_HOST_SIGNALS = {signal.SIGINT, signal.SIGTERM}


@overload
def _check_timeout(timeout: None) -> None: ...


@overload
def _check_timeout(timeout: float) -> float: ...


@overload
def _check_timeout(timeout: Timeout) -> Optional[float]: ...


def _check_timeout(timeout: Timeout) -> Optional[float]:
    """None, or a float number of seconds; precise errors otherwise."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError("timeout must be a number or None, not %r" % (timeout,))
    if math.isnan(timeout):
        raise ValueError("timeout is NaN")
    return timeout


def _queue_exc(task, exc):
    """Queue ``exc`` behind the exception already due in ``task``."""
    if task._excq is None:
        task._excq = [exc]
    else:
        task._excq.append(exc)


def _format_exc(exc):
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


_CORE_DIR = os.path.normcase(os.path.dirname(os.path.abspath(__file__)))

#: seconds a wait of a plain thread (value(), join(), finish()) blocks at a
#: time: a Ctrl-C that came just before the thread blocked -- Python runs
#: signal handlers only between its own steps -- is acted on by then
_SLICE = 0.25


def _sliced(wait: Callable[[Optional[float]], bool], timeout: Optional[float]) -> bool:
    """``wait(seconds)`` (an Event's or a Condition's) in slices of at most
    :data:`_SLICE` seconds, until it says True or ``timeout`` (None: no
    limit) has passed; what the last one said."""
    if timeout is None:
        while not wait(_SLICE):
            pass
        return True
    end = time.monotonic() + timeout
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return wait(0)
        if wait(min(left, _SLICE)):
            return True


def _cut_core_tail(tb):
    """Drop the frames of pycos.core at the end of traceback ``tb`` (where
    a MissingYieldError was raised, inside the call the user made): the
    error is about the user's line above them."""
    last_user = None
    while tb is not None:
        # (normalized: on Windows a frame's file may say Z:\\a/b\\c.py)
        if os.path.normcase(os.path.dirname(os.path.abspath(
                tb.tb_frame.f_code.co_filename))) != _CORE_DIR:
            last_user = tb
        tb = tb.tb_next
    if last_user is not None and last_user.tb_next is not None:
        try:
            last_user.tb_next = None
        except (AttributeError, TypeError):     # (read-only: keep them)
            pass


def _short(obj, limit=60):
    """``repr(obj)``, cut to ``limit`` characters (for error messages)."""
    try:
        text = repr(obj)
    except Exception:
        text = "<%s object>" % (type(obj).__name__,)
    return text if len(text) <= limit else text[:limit - 3] + "..."


#: types of values a task yields that are handed back without a second look
#: (a yielded list or tuple *of calls* is caught by the task's state: the
#: calls in it parked the task)
_PLAIN = frozenset((bytes, bytearray, memoryview, str, int, bool, float, complex, tuple, list,
                    dict, set, frozenset, type(NotImplemented), type(Ellipsis)))

#: a yielded value of these types is a function the task forgot to call
_CALLABLES = frozenset((FunctionType, MethodType, BuiltinFunctionType,
                        type(object.__init__), type(object().__str__), type(str.join)))


class Scheduler(object):
    """A task scheduler on one reactor loop (see the module docstring).

    Users want :class:`Pycos`, the per-process singleton.  ``Scheduler``
    itself is not a singleton, so a process can run more than one (netpycos
    runs its system tasks on a second one).

    ``embedded=True``: no thread is started; the host program drives the
    scheduler with :meth:`fileno`, :meth:`run_once` and :meth:`next_deadline`.
    ``virtual_time=True``: the reactor's manual clock; when no task is ready,
    no posted call waits and no thread-pool job runs, the clock jumps to the
    next timer, so long sleeps and timeouts take no real time (tests).  I/O
    that is still in flight does not hold the clock back: a socket timeout
    expires at once in simulated time, so test real I/O on real time.
    ``backend``: reactor backend name (default ``$PYCOS_BACKEND`` or best).
    """

    loop: reactor.Loop
    _scratch: Dict[int, Any]
    _location: Optional[Location]
    _locations: List[Location]
    _ready: Deque[Task]
    _inbox: Deque[Tuple[Callable[..., Any], Tuple[Any, ...]]]
    _round_end: Dict[Any, Callable[[], Any]]
    _cur: Optional[Task]
    _thread_ident: Optional[int]
    _tasks: Dict[int, Task]
    _timeouts: Dict[int, Task]
    _handlers: Dict[int, Callable[[int, int, int], Any]]
    _rtasks: Dict[str, Task]
    _channels: Dict[str, Channel]
    _rchannels: Dict[str, Channel]
    _atexit: List[Tuple[float, int, Callable[..., Any], Tuple[Any, ...], Dict[str, Any]]]
    _thread: Optional[threading.Thread]
    _lend: Any
    _lent: Any

    def __init__(self, embedded: bool = False, virtual_time: bool = False,
                 backend: Optional[str] = None, name: str = "") -> None:
        self.loop = reactor.Loop(backend=backend, manual_clock=bool(virtual_time))
        self._virtual = bool(virtual_time)
        self._scratch = {}      # size -> bytearray for inline reads (pycos.io)
        self._arena = self.loop.arena()     # where lazy recvs get their bytes (pycos.io)
        self._embedded = bool(embedded)
        self._name = name or ""
        self._location = None
        self._locations = []
        self._ready = deque()
        self._woken = 0                # tasks the last events put ahead of the backlog
        self._inbox = deque()
        self._round_end = {}           # key -> fn(): run once before this round polls
        self._sleeping = False
        self._quit = False
        self._stopped = False
        self._cur = None
        self._thread_ident = None
        self._tasks = {}               # task id -> Task (alive)
        self._timeouts = {}            # timer token -> parked Task
        self._handlers = {}            # token -> fn(kind, aux, result)
        self._tokens = itertools.count(1)
        self._ids = itertools.count(1)
        self._external = 0
        self._ctrl_c = False           # stopping because of Ctrl-C (see _stop_on_ctrl_c)
        self._rtasks = {}              # registered task names
        self._channels = {}            # channel name -> Channel
        self._rchannels = {}           # registered channel names
        self._atexit = []              # sorted (priority, seq, func, args, kwargs)
        self._atexit_seq = itertools.count()
        # counters other threads wait on
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._nondaemon = 0
        self._stop_done = threading.Event()
        # bound once: identity marks what a parked task waits for
        self._sleep_hook = self._sleep_cancel
        self._recv_hook = self._recv_cancel
        self._lend = None              # host: a Lend of another scheduler's rounds
        self._lent = None              # helper: the Lend of this one's rounds
        self._thread = None
        if self._embedded:
            self._thread_ident = _get_ident()
            self._sleeping = True
        else:
            started = threading.Event()
            self._thread = threading.Thread(target=self._thread_main, args=(started,),
                                            name=self._thread_name(), daemon=True)
            self._thread.start()
            started.wait()
            _atexit_mod.register(self._at_interpreter_exit)
            _exit_hooked.append(self)
            _hook_ctrl_c()

    # ---- identity -------------------------------------------------------

    def _thread_name(self) -> str:
        return "pycos-scheduler"

    @property
    def name(self) -> str:
        """The scheduler's name (netpycos: what peers know it by)."""
        return self._name

    @property
    def location(self) -> Optional[Location]:
        """Where peers reach this scheduler (None without networking)."""
        return self._location

    @property
    def locations(self) -> List[Location]:
        """Every Location of this scheduler (empty without networking)."""
        return list(self._locations)

    @property
    def embedded(self) -> bool:
        """True for ``Pycos(embedded=True)``: a host loop drives it."""
        return self._embedded

    @property
    def virtual_time(self) -> bool:
        """True for ``Pycos(virtual_time=True)``: simulated time."""
        return self._virtual

    @staticmethod
    def scheduler() -> Optional[Scheduler]:
        """The scheduler owning the current thread (None outside one)."""
        return _by_thread.get(_get_ident())

    @staticmethod
    def cur_task(scheduler: Optional[Scheduler] = None) -> Optional[Task]:
        """The task being stepped now (None outside tasks)."""
        if scheduler is None:
            scheduler = _by_thread.get(_get_ident())
            if scheduler is None:
                return None
        return scheduler._cur

    def _on_loop(self) -> bool:
        return self._thread_ident == _get_ident()

    def __repr__(self) -> str:
        return "<pycos %s%s>" % (self.__class__.__name__, " %s" % self._name if self._name else "")

    # ---- the round ------------------------------------------------------

    def _thread_main(self, started):
        # Ctrl-C and SIGTERM belong to the program's main thread (which may
        # be waiting in task.value()): the kernel must not pick this thread
        # to deliver them.  Threads started from here inherit the mask.
        if hasattr(signal, "pthread_sigmask"):
            signal.pthread_sigmask(signal.SIG_BLOCK, _HOST_SIGNALS)
        self._thread_ident = _get_ident()
        _by_thread[self._thread_ident] = self
        started.set()
        try:
            while not self._quit:
                try:
                    lent = self._lent
                    if lent is None:
                        self._round(-1)
                    else:
                        lent.helper_round()
                except Exception:   # a bug in the kernel or a handler: log, go on
                    logger.error("pycos scheduler: internal error\n%s", traceback.format_exc())
        finally:
            self._shutdown()
            _by_thread.pop(self._thread_ident, None)

    def _round(self, wait_ns):
        """One round: inbox, ready tasks, poll (up to ``wait_ns``), events."""
        inbox = self._inbox
        ready = self._ready
        # embedded: a round that did work returns without waiting, so the
        # host sees run_once() come back as soon as the work is done
        worked = self._embedded and bool(inbox or ready)
        if inbox:
            self._drain_inbox()
        if ready:
            self._run_ready()
        if self._round_end:
            self._run_round_end()
        loop = self.loop
        if ready or inbox or self._quit or worked:
            events = loop.poll_flat(0)
        else:
            # virtual time: nothing ready, so jump to the next timer (even
            # for run_once(0): next_deadline() said 0.0 to ask for this)
            if self._virtual and self._external == 0:
                events = loop.poll_flat(0)
                if not events and not inbox:
                    deadline = loop.next_deadline()
                    if deadline is not None:
                        now = loop.now()
                        if wait_ns > 0:
                            # simulated time never runs past the caller's wait
                            deadline = min(deadline, now + wait_ns)
                        if deadline > now:
                            loop.clock_set(deadline)
                        events = loop.poll_flat(0)
                if events or inbox:
                    if events:
                        self._dispatch(events)
                    return
            lend = self._lend
            if lend is not None:
                wait_ns = lend.idle(wait_ns)
            self._sleeping = True
            if inbox or ready:
                wait_ns = 0
            events = loop.poll_flat(wait_ns)
            self._sleeping = self._embedded
            if lend is not None:
                lend.awake()
        if events:
            backlog = len(ready)
            self._dispatch(events)
            if backlog and not self._embedded:
                # the tasks these events woke run before the backlog
                woken = len(ready) - backlog
                if woken > 0:
                    ready.rotate(woken)
                    self._woken = woken

    def _at_round_end(self, key, fn):
        """Loop thread: run ``fn()`` once, as soon as the current task step
        is over -- before the next step, or before the scheduler polls --
        however often it is asked for with the same ``key``.  netpycos
        writes the frames a step queued this way: together, from the thread
        that queued them, and without waiting for a busy round to end."""
        self._round_end[key] = fn

    def _run_round_end(self):
        hooks = self._round_end
        self._round_end = {}
        for fn in hooks.values():
            try:
                fn()
            except Exception:
                logger.error("pycos: round-end call %r failed\n%s", fn, traceback.format_exc())

    def _drain_inbox(self):
        pop = self._inbox.popleft
        for _ in range(len(self._inbox)):
            fn, args = pop()
            try:
                fn(*args)
            except Exception:
                logger.error("pycos: posted call %r failed\n%s", fn, traceback.format_exc())

    def _run_ready(self):
        ready = self._ready
        popleft = ready.popleft
        append = ready.append
        gentype = GeneratorType
        plain = _PLAIN
        park = PARK
        resume = RESUME
        # Embedded: every ready task once (run_once's contract).  Own thread:
        # _STEPS task steps (the tasks made ready meanwhile included) after
        # the ones the last poll's events woke, so a busy scheduler looks
        # at I/O and timers once per _STEPS switches, whatever the backlog.
        if self._embedded:
            steps = len(ready)
        else:
            steps = _STEPS + self._woken
            self._woken = 0
        failed: Optional[BaseException]
        while steps and ready:
            # between steps, not only once a round: what the last step
            # queued for the network leaves now (see _at_round_end), and
            # calls other threads posted (netpycos's requests and messages)
            # run now -- tasks that compute for long between yields must
            # not hold either back for a whole round
            if self._round_end:
                self._run_round_end()
            if self._inbox:
                self._drain_inbox()
            steps -= 1
            task = popleft()
            self._cur = task
            task._state = RUNNING
            try:
                exc = task._exc
                if exc is None:
                    r = task._gen.send(task._value)
                    while (r is resume and steps and task._exc is None and task._state == RUNNING
                           and not self._round_end and not self._inbox):
                        steps -= 1
                        r = task._gen.send(None)
                else:
                    task._exc = task._excq.pop(0) if task._excq else None
                    if exc is _TERMINATE:
                        self._close_task(task)
                        continue
                    r = task._gen.throw(exc)
            except StopIteration as e:
                self._frame_done(task, e.value, None)
                continue
            except BaseException as e:
                # handled below, outside the except clause: there (PyPy) an
                # exception's __traceback__ stays as the kernel trims it
                failed = e
            else:
                if r is park:
                    if task._state == RUNNING:   # pending exception, or PARK out of place
                        task._state = READY
                        append(task)
                    continue
                if task._state != RUNNING:
                    # parked (or completed at once) by a call it did not yield
                    self._not_yielded(task, r)
                    continue
                if type(r) is gentype:
                    callers = task._callers
                    if callers is None:
                        task._callers = [task._gen]
                    else:
                        callers.append(task._gen)
                    task._gen = r
                    task._value = None
                elif r is None or r is resume:
                    task._value = None
                elif type(r) in plain:
                    task._value = r
                else:
                    self._odd_yield(task, r)
                task._state = READY
                append(task)
                continue
            self._frame_done(task, None, failed)
            failed = None
        self._cur = None

    def _odd_yield(self, task, r):
        """``task`` yielded ``r``, a value of a type the fast path does not
        know: hand it back (4.x: a plain value lets the others run and comes
        back), unless it is a mistake pycos can name -- a coroutine or other
        awaitable, a function or method not called -- which is raised in
        the task as a TypeError."""
        tr = type(r)
        if tr is CoroutineType or hasattr(tr, "__await__"):
            what = ("a coroutine (%s)" % (r.__qualname__,) if tr is CoroutineType
                    else "an awaitable (%s)" % (_short(r),))
            if tr is CoroutineType:
                r.close()       # never to run: no "was never awaited" warning later
            why = ("task %s yielded %s: a pycos task does not await; use "
                   "'yield pycos.aio.wait(awaitable)' (see docs/asyncio.md)" % (task, what))
        elif tr in _CALLABLES or isinstance(r, partial):
            name = getattr(r, "__qualname__", None) or getattr(r, "__name__", None) or _short(r)
            call = getattr(r, "__name__", "function")
            owner = getattr(r, "__self__", None)
            if owner is not None and not isinstance(owner, ModuleType):
                call = "%s.%s" % (type(owner).__name__.lower(), call)
            why = ("task %s yielded the function %s itself, not a call of it: call it, as in "
                   "'yield %s(...)'" % (task, name, call))
        else:
            task._value = r
            return
        task._value = None
        self._raise_in(task, TypeError(why))

    def _raise_in(self, task, exc):
        """Have ``exc`` raised at the yield ``task`` (running now) stopped at."""
        if task._exc is None:
            task._exc = exc
        elif task._exc is not _TERMINATE:
            _queue_exc(task, exc)

    def _not_yielded(self, task, r):
        """``task`` yielded ``r`` while a call it made before is parking it
        (or completed at once): the call was not yielded.  Withdraw it and
        raise the error at this yield."""
        if isinstance(r, (list, tuple, set)) and any(x is PARK for x in r):
            self._unyielded(task)
            err = MissingYieldError(
                "task %s yielded a %s of pycos calls: pycos waits for one call per 'yield'; "
                "yield them one after the other, or run each in a Task of its own and yield "
                "each task's finish()" % (task, type(r).__name__))
        else:
            err = self._unyielded(task, "and then yielded %s" % (_short(r),))
        if type(r) is GeneratorType or type(r) is CoroutineType:
            r.close()       # (a sub-call that never started)
        task._value = None
        self._raise_in(task, err)
        task._state = READY
        self._ready.append(task)

    def _describe_call(self, task):
        """Name the call that parked ``task`` (or completed at once)."""
        if task._state == READY:
            # (while READY, _alarm holds _now_value's ``what``, see there)
            return task._alarm if isinstance(task._alarm, str) else "a pycos call"
        return self._describe_hook(task._cancel)

    def _describe_hook(self, hook):
        """Name the call that parks a task with cancel hook ``hook``."""
        if hook is None:
            return "a pycos call"
        if hook is self._sleep_hook:
            return "task.sleep()"
        if hook is self._recv_hook:
            return "task.receive()"
        owner = getattr(hook, "__self__", None)
        what = getattr(owner, "_what", None)        # a WaitQueue names its primitive's call
        if isinstance(what, str):
            return what
        name = getattr(hook, "__name__", "")
        if name == "_finish_cancel":
            return "%r.finish()" % (owner,)
        if name == "_cancel_read":
            return "a read (recv(), recvall(), accept()...) on %s" % (_short(owner),)
        if name == "_cancel_write":
            return "a write (send(), sendall(), connect()...) on %s" % (_short(owner),)
        return "a pycos call (%s)" % (getattr(hook, "__qualname__", None) or _short(hook),)

    def _unyielded(self, task, then=None):
        """``task`` (the one running) made a call that parked it or completed
        at once, and did not yield it: withdraw that call (as an interruption
        would: its timer, its place in a wait queue, its pending I/O), make
        the task RUNNING again and return the MissingYieldError to raise in
        it.  ``then``: the name of the call being made now, if any.  Other
        layers (pycos.io) may call this too."""
        what = self._describe_call(task)
        state = task._state
        if state == PARKED:
            self._unpark_quietly(task)
        elif state == READY:
            try:
                self._ready.remove(task)
            except ValueError:
                pass
            task._alarm = None
        task._state = RUNNING
        task._value = None
        msg = "task %s called %s without 'yield'" % (task, what)
        if then is not None:
            msg += " " + then
        msg += ("; a pycos call that may wait must be written 'value = yield call(...)', "
                "one call per 'yield'")
        return MissingYieldError(msg)

    def _dispatch(self, ev):
        timeouts = self._timeouts
        handlers = self._handlers
        for i in range(0, len(ev), 4):
            tok = ev[i]
            # I/O first (most events): handler and timeout tokens come from
            # one counter, so a token is in at most one of the two tables
            fn = handlers.get(tok)
            if fn is not None:
                try:
                    fn(ev[i + 1], ev[i + 2], ev[i + 3])
                except Exception:
                    logger.error("pycos: event handler %r failed\n%s", fn, traceback.format_exc())
            elif ev[i + 1] == _EV_TIMER:
                task = timeouts.pop(tok, None)
                if task is not None:
                    task._tid = 0
                    self._fire_timeout(task)

    # ---- the task stack -------------------------------------------------

    def _frame_done(self, task, value, exc):
        """The top generator of ``task`` returned ``value`` or raised ``exc``."""
        if exc is not None:
            tb = exc.__traceback__
            if tb is not None and tb.tb_frame.f_code is _STEP_CODE and tb.tb_next is not None:
                # the kernel's frame says nothing to the user: leave it out
                exc.__traceback__ = tb = tb.tb_next
            if type(exc) is MissingYieldError:
                _cut_core_tail(tb)
        if task._state != RUNNING:
            # the frame made a call it did not yield, then returned or raised
            err = self._unyielded(task, "in %s() and then %s" % (
                getattr(task._gen, "__name__", "?"),
                "returned" if exc is None else "raised %s" % (_short(exc),)))
            if exc is None or isinstance(exc, Exception):
                err.__context__ = exc
                exc = err
                value = None
        callers = task._callers
        if callers:
            task._gen = callers.pop()
            if exc is None:
                task._value = value
            elif task._exc is not _TERMINATE:
                if task._exc is not None:
                    task._excq = [task._exc] + (task._excq or [])
                task._exc = exc
            self._requeue(task)
            if not callers and task._swap is not None and task._hot_swappable:
                self._deliver_swap(task)
            return
        if (exc is not None and type(exc) is HotSwapException and task._hot_swappable
                and exc.args and type(exc.args[0]) is GeneratorType):
            self._swap_in(task, exc.args[0])
            return
        if exc is None:
            self._finish(task, value, None)
        else:
            text = _format_exc(exc)
            if self._ctrl_c and isinstance(exc, KeyboardInterrupt):
                logger.debug("task %s ended by Ctrl-C", task)
            else:
                logger.warning("uncaught exception in task %s:", task, exc_info=exc)
            status = MonitorStatus(task, type(exc), text, exc)
            self._finish(task, status, status)

    def _requeue(self, task):
        state = task._state
        if state == RUNNING:
            task._state = READY
            self._ready.append(task)
        elif state == PARKED:
            self._unpark_quietly(task)
            task._state = READY
            self._ready.append(task)

    def _close_task(self, task):
        """Terminate: GeneratorExit into every frame, top first."""
        gens = [task._gen] + list(reversed(task._callers or ()))
        task._callers = None
        for gen in gens:
            try:
                gen.close()
            except BaseException as e:
                logger.warning("closing task %s raised:\n%s", task, _format_exc(e))
        value = task._value
        self._finish(task, value, MonitorStatus(task, StopIteration, value))

    def _finish(self, task, result, status):
        """``task`` ended with ``result``; ``status`` is the MonitorStatus for
        its monitors (None: a normal return, made only when monitored)."""
        state = task._state
        if state == PARKED or state == READY:
            # a finally block, run by close(), made a call without yield
            logger.warning("task %s called %s without 'yield' while it was being closed",
                           task, self._describe_call(task))
            self._unyielded(task)
        task._result = result         # (before DONE: a thread that sees DONE reads it)
        task._state = DONE
        task._gen = None
        task._callers = None
        task._exc = None
        task._excq = None
        task._msgs = None
        if task._swap is not None:
            task._swap = None
        self._tasks.pop(task._id, None)
        for name in task._names or ():
            if self._rtasks.get(name) is task:
                del self._rtasks[name]
        monitors = task._monitors
        if monitors:
            task._monitors = None
            if status is None:
                status = MonitorStatus(task, StopIteration, result)
            for monitor in monitors:
                if monitor.send(status) < 0:
                    logger.debug("monitor %s of %s is gone", monitor, task)
        fq = task._finishq
        if fq is not None:
            task._finishq = None
            while fq:
                waiter = fq.popleft()
                self._unpark(waiter, result)
        with self._lock:
            ev = task._tevent
            task._tevent = True   # done; value() need not wait
            if not task._daemon:
                self._nondaemon -= 1
                if self._nondaemon == 0:
                    self._idle.notify_all()
        if ev is not None and ev is not True:
            ev.set()

    def _swap_in(self, task, gen):
        """Hot swap accepted: ``gen`` replaces the task's generator."""
        task._gen = gen
        task._name = getattr(gen, "__name__", task._name)
        task._value = None
        task._exc = None
        task._excq = None
        task._swap = None
        task._state = READY
        self._ready.append(task)

    def _deliver_swap(self, task):
        gen = task._swap
        task._swap = None
        self._interrupt(task, HotSwapException(gen))

    # ---- parking --------------------------------------------------------

    def _park(self, task, timeout=None, alarm=None, cancel=None):
        if task._state != RUNNING:     # a call before this one was not yielded
            err = self._unyielded(task, "and then " + self._describe_hook(cancel))
            if cancel is not None:      # (the new call may have queued the task)
                cancel(task, INTERRUPT)
            raise err
        if task._exc is not None:      # an exception is due: do not block
            if cancel is not None:
                cancel(task, INTERRUPT)
            return PARK
        task._state = PARKED
        task._cancel = cancel
        task._alarm = alarm
        task._wid += 1
        if timeout is not None:
            tok = next(self._tokens)
            task._tok = tok
            task._tid = self.loop.timer_after(timeout, tok)
            self._timeouts[tok] = task
        return PARK

    def _clear_timer(self, task):
        tid = task._tid
        if tid:
            task._tid = 0
            self.loop.timer_cancel(tid)
            self._timeouts.pop(task._tok, None)

    def _unpark(self, task, value=None, wid=None):
        if task._state != PARKED or (wid is not None and wid != task._wid):
            return False
        if task._tid:
            self._clear_timer(task)
        task._cancel = None
        task._alarm = None
        task._value = value
        task._state = READY
        self._ready.append(task)
        return True

    def _unpark_exc(self, task, exc, wid=None):
        if task._state != PARKED or (wid is not None and wid != task._wid):
            return False
        if task._exc is None:
            task._exc = exc
        else:
            _queue_exc(task, exc)
        return self._unpark(task, None)

    def _unpark_quietly(self, task):
        """Withdraw a park without waking through the queue (used when the
        task is already on its way to run)."""
        if task._tid:
            self._clear_timer(task)
        cancel = task._cancel
        task._cancel = None
        task._alarm = None
        if cancel is not None:
            try:
                cancel(task, INTERRUPT)
            except Exception:
                logger.error("pycos: cancel hook %r failed\n%s", cancel, traceback.format_exc())

    def _fire_timeout(self, task):
        if task._state != PARKED:
            return
        cancel = task._cancel
        if cancel is not None:
            task._cancel = None
            try:
                cancel(task, TIMEOUT)
            except Exception:
                logger.error("pycos: cancel hook %r failed\n%s", cancel, traceback.format_exc())
            if task._state != PARKED:
                return
        alarm = task._alarm
        task._alarm = None
        task._value = alarm
        task._state = READY
        self._ready.append(task)

    def _now_value(self, task, value, what=None):
        """Complete the current call of running ``task`` with ``value``;
        ``what`` names the call (for the error if it is not yielded)."""
        if task._state != RUNNING:     # a call before this one was not yielded
            raise self._unyielded(task, "and then " + (what or "another pycos call"))
        task._value = value
        task._alarm = what       # (unused while READY: names the call, see _describe_call)
        task._state = READY
        self._ready.append(task)
        return PARK

    def _interrupt(self, task, exc):
        """Throw ``exc`` (or terminate) at the task's yield, waking it."""
        if task._state == DONE:
            return -1
        if exc is _TERMINATE:
            task._exc = _TERMINATE
            task._excq = None
        elif task._exc is _TERMINATE:
            return 0
        elif task._exc is None:
            task._exc = exc
        else:
            _queue_exc(task, exc)
        if task._state == PARKED:
            self._unpark_quietly(task)
            task._state = READY
            self._ready.append(task)
        return 0

    def _sleep_cancel(self, task, reason):
        pass

    def _recv_cancel(self, task, reason):
        pass

    # ---- handlers and posting --------------------------------------------

    # ---- names and references (netpycos overrides both) -----------------------

    def _registry(self, kind):
        """The name table of ``kind`` ("task" or "channel"; netpycos adds "rps")."""
        if kind == "task":
            return self._rtasks
        if kind == "channel":
            return self._rchannels
        raise RuntimeError("no %r names on this scheduler: %s" % (kind, (
            "RPS needs pycos.netpycos's scheduler, and this process made a plain one first "
            "(import pycos.netpycos before any scheduler is made)" if kind == "rps" else
            "names are of tasks or channels")))

    def _find_local(self, kind, name):
        obj = self._registry(kind).get(name)
        if obj is not None and not (obj.is_alive() if kind == "task" else not obj._closed):
            return None
        return obj

    def _locate(self, kind, name, location=None, timeout=None):
        """``Task.locate``/``Channel.locate`` without networking: only this
        process has names."""
        _check_timeout(timeout)
        if location is not None and location not in self._locations:
            return None
        return self._find_local(kind, name)

    def _reduce_ref(self, obj):
        import pickle
        raise pickle.PicklingError("%s %r can only be pickled as a network reference: "
                                   "use pycos.netpycos" % (type(obj).__name__, obj))

    def _new_token(self):
        return next(self._tokens)

    def _add_handler(self, fn):
        tok = next(self._tokens)
        self._handlers[tok] = fn
        return tok

    def _drop_handler(self, tok):
        self._handlers.pop(tok, None)

    def _post(self, fn, *args):
        """Thread-safe: run ``fn(*args)`` on the loop thread soon."""
        if self._stopped:
            return False
        self._inbox.append((fn, args))
        if self._sleeping:
            try:
                self.loop.wakeup()
            except (ValueError, OSError):   # closed meanwhile
                return False
        return True

    def _call_sync(self, fn, *args):
        """Run ``fn(*args)`` on the loop and return its result (any thread)."""
        if self._on_loop() or self._stopped:
            return fn(*args)
        box = []
        done = threading.Event()

        def run():
            try:
                box.append((True, fn(*args)))
            except BaseException as e:
                box.append((False, e))
            done.set()
        if not self._post(run):
            return fn(*args)
        while not done.wait(0.1):
            if self._stopped and not done.is_set():
                return fn(*args)
        ok, value = box[0]
        if not ok:
            raise value
        return value

    # ---- tasks (called by Task) ------------------------------------------

    def _admit(self, task):
        if self._quit:
            with self._lock:
                task._state = DONE
                task._tevent = True
                if not task._daemon:
                    self._nondaemon -= 1
                    if self._nondaemon == 0:
                        self._idle.notify_all()
            return
        self._tasks[task._id] = task
        task._state = READY
        self._ready.append(task)

    def _new_task(self, task):
        """Account for a new task (any thread) and schedule it."""
        if self._stopped or self._quit:
            raise RuntimeError("pycos scheduler %r has stopped; create a new one" % self)
        with self._lock:
            self._nondaemon += 1
        if self._thread_ident == _get_ident():
            self._tasks[task._id] = task     # _admit, inlined (not quitting)
            task._state = READY
            self._ready.append(task)
        elif not self._post(self._admit, task):
            raise RuntimeError("pycos scheduler %r has stopped" % self)

    def _set_daemon(self, task, flag):
        with self._lock:
            if task._state == DONE or task._daemon == flag:
                task._daemon = flag
                return 0
            task._daemon = flag
            self._nondaemon += -1 if flag else 1
            if self._nondaemon == 0:
                self._idle.notify_all()
        return 0

    # ---- running, joining, stopping ------------------------------------------

    def statistics(self) -> Dict[str, Any]:
        """Counters: tasks, non_daemon, ready, timeouts, handlers, inbox, and
        the reactor loop's own statistics under ``loop``."""
        def collect():
            stats = {
                "tasks": len(self._tasks),
                "non_daemon": self._nondaemon,
                "ready": len(self._ready),
                "timeouts": len(self._timeouts),
                "handlers": len(self._handlers),
                "inbox": len(self._inbox),
                "external": self._external,
                "virtual_time": self._virtual,
                "embedded": self._embedded,
            }
            if not self.loop.closed:
                stats["loop"] = self.loop.statistics()
            return stats
        return self._call_sync(collect)

    def is_alive(self) -> bool:
        """False once the scheduler has stopped (finish/terminate)."""
        return not self._stopped

    def now(self) -> float:
        """The scheduler's clock in seconds (monotonic, or virtual)."""
        return self.loop.now() / 1e9

    def fileno(self) -> int:
        """A descriptor that becomes readable when the scheduler has work
        (posted calls, I/O).  Timers do not make it readable: also wake up
        after :meth:`next_deadline`.  Raises OSError (ENOTSUP) on reactor
        backends without a pollable descriptor (``poll``)."""
        return self.loop.fileno()

    def next_deadline(self) -> Optional[float]:
        """Seconds until :meth:`run_once` must be called again: 0.0 when
        tasks are ready or calls are posted, the time to the next timer,
        or None when only an event on :meth:`fileno` can create work."""
        if self._ready or self._inbox or self._quit or self._round_end:
            return 0.0
        deadline = self.loop.next_deadline()
        if deadline is None:
            return None
        if self._virtual and self._external == 0:
            return 0.0
        return max(0.0, (deadline - self.loop.now()) / 1e9)

    def run_once(self, timeout: Timeout = 0) -> None:
        """Embedded mode: run one round -- posted calls, every ready task
        once, due timers and I/O -- waiting up to ``timeout`` seconds for
        events when nothing is ready (None: until something happens)."""
        if not self._embedded:
            raise RuntimeError("run_once() is only for Pycos(embedded=True)")
        if self._stopped:
            raise RuntimeError("scheduler has stopped")
        timeout = _check_timeout(timeout)
        wait_ns = -1 if timeout is None else int(max(0.0, timeout) * 1e9)
        ident = _get_ident()
        prev = _by_thread.get(ident)
        self._thread_ident = ident
        _by_thread[ident] = self
        try:
            self._round(wait_ns)
        finally:
            if prev is None:
                _by_thread.pop(ident, None)
            else:
                _by_thread[ident] = prev
            self._sleeping = True

    def _drive(self, pred, timeout):
        """Embedded: run rounds in this thread until ``pred()`` or timeout."""
        end = None if timeout is None else self.now() + timeout
        while not pred():
            if end is not None:
                left = end - self.now()
                if left <= 0:
                    return False
                wait = left
                nd = self.next_deadline()
                if nd is not None and not self._virtual:
                    # (virtual time: a round given `left` jumps the clock
                    # to the next timer itself, never past `left`)
                    wait = min(wait, nd)
            else:
                wait = self.next_deadline()
            self.run_once(wait)
        return True

    def _wait_idle(self, timeout):
        if self._embedded and not self._stopped:
            return self._drive(lambda: self._nondaemon == 0, timeout)
        with self._lock:
            return _sliced(lambda t: self._idle.wait_for(
                lambda: self._nondaemon == 0 or self._stopped, t), timeout)

    def _not_from_task(self, what):
        if self._cur is not None and self._on_loop():
            raise RuntimeError("%s() must be called from a thread, not from a task" % what)

    def join(self, show_running: bool = False, timeout: Timeout = None) -> bool:
        """[thread] Wait (in a thread, not a task) until only daemon tasks remain;
        False on timeout.  As in pycos 4.x, the first argument is
        ``show_running`` (log the tasks waited for): a timeout is given by
        name, ``join(timeout=5)``; ``join(5)`` warns and waits without one,
        as 4.x did."""
        self._not_from_task("join")
        if type(show_running) in (int, float):
            warnings.warn(
                "Pycos.join(%r): the first argument of join(show_running=False, timeout=None) "
                "is show_running, as in pycos 4.x, not a timeout, so this waits for every "
                "task without a time limit; write join(timeout=%r) for a timeout"
                % (show_running, show_running), stacklevel=2)
        timeout = _check_timeout(timeout)
        if show_running:
            for task in self._call_sync(lambda: list(self._tasks.values())):
                logger.info("waiting for %s%s", task, " (daemon)" if task._daemon else "")
        return self._wait_idle(timeout)

    def atexit(self, priority: float, func: Callable[..., Any], *args: Any,
               **kwargs: Any) -> int:
        """Call ``func(*args, **kwargs)`` when the scheduler finishes or is
        terminated; higher ``priority`` first, equal priorities in order of
        registration."""
        if not callable(func):
            raise TypeError("atexit function %r is not callable" % (func,))
        with self._lock:
            insort(self._atexit, (-priority, next(self._atexit_seq), func, args, kwargs))
        return 0

    def drop_atexit(self, priority: float, func: Callable[..., Any]) -> int:
        """Forget ``func`` registered with ``priority``; -1 if it was not."""
        with self._lock:
            for i, item in enumerate(self._atexit):
                if item[0] == -priority and item[2] == func:
                    del self._atexit[i]
                    return 0
        return -1

    def _run_atexit(self):
        while True:
            with self._lock:
                if not self._atexit:
                    return
                _, _, func, args, kwargs = self._atexit.pop(0)
            try:
                func(*args, **kwargs)
            except Exception:
                logger.warning("atexit function %r failed:\n%s", func, traceback.format_exc())

    def finish(self) -> None:
        """[thread] Wait for all non-daemon tasks, run the atexit functions (highest
        priority first), then stop.  From a thread, not a task."""
        if self._stopped:
            return
        self._not_from_task("finish")
        if self._nondaemon:
            logger.debug("waiting for %d tasks to terminate", self._nondaemon)
        self._wait_idle(None)
        self._run_atexit()
        self._wait_idle(None)
        self._stop()

    def terminate(self) -> None:
        """[thread] Make every task a daemon, run the atexit functions, close every
        task's generators (their ``finally`` blocks run) and stop."""
        if self._stopped:
            return
        self._not_from_task("terminate")

        def all_daemons():
            with self._lock:
                for task in self._tasks.values():
                    task._daemon = True
                self._nondaemon = 0
                self._idle.notify_all()
        self._call_sync(all_daemons)
        self._run_atexit()
        self._stop()

    def _stop(self):
        if self._embedded:
            if not self._stopped:
                self._quit = True
                self._shutdown()
            return
        self._quit = True
        if self._lent is not None:
            self._lent.end()
        self._post(lambda: None)
        thread = self._thread
        if thread is not None and thread.ident != _get_ident():
            while thread.is_alive():
                thread.join(_SLICE)
        _sliced(self._stop_done.wait, None)

    def _shutdown(self):
        """On the loop thread: close what is left, close the loop."""
        self._quit = True
        if self._lend is not None:
            self._lend.end()        # the helper runs its own rounds from now on
        prev_ident = self._thread_ident
        _by_thread[_get_ident()] = self
        try:
            for task in list(self._tasks.values()):
                self._cur = task
                task._exc = None
                task._state = RUNNING
                self._unpark_quietly(task)
                gens = [task._gen] + list(reversed(task._callers or ()))
                for gen in gens:
                    try:
                        gen.close()
                    except BaseException as e:
                        logger.warning("closing task %s raised:\n%s", task, _format_exc(e))
                task._callers = None
                task._monitors = None
                self._finish(task, task._value, None)
            self._cur = None
            self._stopped = True
            # posted calls that arrived meanwhile: run what is harmless
            for _ in range(3):
                if self._round_end:
                    self._run_round_end()
                if not self._inbox:
                    break
                self._drain_inbox()
            self._tasks.clear()
            self._timeouts.clear()
            self._handlers.clear()
            self._ready.clear()
            self.loop.close()
        finally:
            if self._embedded:
                _by_thread.pop(_get_ident(), None)
            self._thread_ident = prev_ident
            try:
                _atexit_mod.unregister(self._at_interpreter_exit)
            except Exception:
                pass
            try:
                _exit_hooked.remove(self)
            except ValueError:
                pass
            self._discard()
            with self._lock:
                self._nondaemon = 0
                self._idle.notify_all()
            logger.debug("pycos %sterminated", "%s " % self._location if self._location else "")
            self._stop_done.set()

    def _discard(self):
        pass

    #: seconds the tasks get, after Ctrl-C threw KeyboardInterrupt into them,
    #: to end by themselves before they are closed (a second Ctrl-C cuts it short)
    ctrl_c_grace: float = 2.0

    def _at_interpreter_exit(self):
        """The interpreter is exiting: wait for the tasks, as 4.x did -- unless
        Ctrl-C ended the program, or ends this wait."""
        if self._stopped:
            return
        last = getattr(sys, "last_type", None)
        if isinstance(last, type) and issubclass(last, KeyboardInterrupt):
            # the main program died of Ctrl-C (and our excepthook was replaced)
            self._stop_on_ctrl_c()
            return
        try:
            self.finish()
        except KeyboardInterrupt:
            # Ctrl-C while the script's end waits for the tasks: stop them
            # (their finally blocks run) and exit as Python exits on Ctrl-C
            self._stop_on_ctrl_c()
            _exit_by_sigint()

    def _stop_on_ctrl_c(self):
        """From the program's thread, on Ctrl-C: throw KeyboardInterrupt into
        every task, give them :attr:`ctrl_c_grace` seconds to end (their
        ``except``/``finally`` blocks may still yield), then terminate: what
        is left is closed, ``finally`` blocks run, the scheduler stops."""
        if self._stopped or (self._cur is not None and self._on_loop()):
            return
        self._ctrl_c = True
        try:
            self._call_sync(self._throw_everywhere, KeyboardInterrupt)
            self._wait_idle(self.ctrl_c_grace)
        except KeyboardInterrupt:       # pressed again: no more grace
            pass
        try:
            self.terminate()
        except KeyboardInterrupt:       # and again, while finally blocks run: give up
            _exit_by_sigint()

    def _throw_everywhere(self, exc_type):
        for task in list(self._tasks.values()):
            self._interrupt(task, exc_type())


#: the frame every exception of a task passes through on its way out
_STEP_CODE = Scheduler._run_ready.__code__


# ---- Ctrl-C ------------------------------------------------------------------------
#
# Python turns Ctrl-C into KeyboardInterrupt in the main thread.  When it ends
# the main program, CPython prints it (sys.excepthook), runs the atexit
# functions and kills itself with SIGINT; PyPy prints it and kills itself
# without running them.  Either way the scheduler's thread (a daemon) would
# die with the process and no task's finally block would run -- or, on
# CPython, the atexit hook would wait for tasks that nobody stops.  So a
# threaded scheduler wraps sys.excepthook (the one place both interpreters go
# through): after the usual printout, a KeyboardInterrupt stops every such
# scheduler (Scheduler._stop_on_ctrl_c).  Interactive sessions are left
# alone (Ctrl-C there interrupts a statement, not the program).

_exit_hooked: List[Scheduler] = []     # threaded schedulers with an interpreter-exit hook
_prev_excepthook: List[Callable[..., Any]] = []    # the hook ours wraps (set once, read by it)


def _excepthook(exc_type, value, tb):
    prev = _prev_excepthook[0] if _prev_excepthook else sys.__excepthook__
    try:
        prev(exc_type, value, tb)
    finally:
        if (isinstance(exc_type, type) and issubclass(exc_type, KeyboardInterrupt)
                and not hasattr(sys, "ps1") and not sys.flags.interactive):
            for sched in list(_exit_hooked):
                sched._stop_on_ctrl_c()


def _hook_ctrl_c():
    if sys.excepthook is not _excepthook:
        _prev_excepthook[:] = [sys.excepthook]
        sys.excepthook = _excepthook


def _exit_by_sigint():
    """End the process as CPython ends a program that Ctrl-C interrupted:
    killed by SIGINT (a shell sees status 130 and stops its script too).
    Standard streams and logging are flushed first; atexit functions that
    would have run after the caller's do not run."""
    import logging
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    try:
        logging.shutdown()
    except Exception:
        pass
    if hasattr(signal, "SIGINT") and threading.current_thread() is threading.main_thread():
        try:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
        except (OSError, ValueError):
            pass
    os._exit(130)


class _PycosClass(Singleton):
    """Pycos's metaclass: once netpycos is imported, the scheduler made on
    first use (``Pycos()``, the first Task...) is the networked one, so a 4.x
    program that imports ``pycos.netpycos`` and then uses ``pycos`` names gets
    networking, as it did."""

    def __call__(cls, *args, **kwargs):
        net = Pycos._networked
        if net is not None and cls is Pycos and Singleton._memo.get(Pycos) is None:
            return net(*args, **kwargs)
        return Singleton.__call__(cls, *args, **kwargs)


class Pycos(Scheduler, metaclass=_PycosClass):
    """The per-process scheduler: ``Pycos()`` and ``Pycos.instance()`` return
    the same object, created on first use (first Task, Channel...).  After
    ``finish()``/``terminate()`` the next ``Pycos()`` makes a fresh one.

    Keywords (only the call that creates the instance uses them):
    ``embedded=True`` -- no own thread, the host drives it with
    ``fileno()``/``run_once()``/``next_deadline()``; ``virtual_time=True`` --
    simulated time for tests; ``backend`` -- reactor backend name.

    The marks at the start of method docstrings say where a call may be
    made: **[y]** only in a task, as ``value = yield obj.call(...)``;
    **[y?]** a plain call that never waits, safe from any thread, which a
    task may also write with ``yield`` (it gets the same value back);
    **[thread]** from a plain thread (the main program), never from a task
    -- it blocks its caller.  Unmarked methods are plain calls.  Guide:
    docs/tasks.md (the scheduler, joining and stopping), docs/embedding.md
    (``embedded``, ``virtual_time``); the marks: docs/index.md.
    """

    #: the networked subclass, once pycos.netpycos is imported
    _networked: Optional[Type[Pycos]] = None

    def __init__(self, embedded: bool = False, virtual_time: bool = False,
                 backend: Optional[str] = None, name: str = "") -> None:
        Scheduler.__init__(self, embedded, virtual_time, backend, name)
        # 4.x's start banner (INFO: seen by programs that set the level)
        from pycos import __version__
        logger.info("version %s (Python %s) with %s I/O notifier", __version__,
                    platform.python_version(), self.loop.backend)

    def _discard(self):
        Singleton.discard(type(self), self)
        Singleton.discard(Pycos, self)

    def _singleton_check(self, embedded=None, virtual_time=None, backend=None, name=None):
        wanted = {"embedded": embedded, "virtual_time": virtual_time, "backend": backend}
        have = {"embedded": self._embedded, "virtual_time": self._virtual,
                "backend": self.loop.backend if not self._stopped else None}
        for key, value in wanted.items():
            if value is not None and (bool(value) if key != "backend" else value) != have[key]:
                raise RuntimeError("Pycos() already exists with %s=%r; finish() or terminate() "
                                   "it before asking for %s=%r" % (key, have[key], key, value))
