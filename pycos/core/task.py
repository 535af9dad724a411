"""Task: the user's handle on a generator run by a scheduler.

A Task holds the state the kernel (:mod:`pycos.core.scheduler`) steps --
the generator stack, the value or exception to deliver next, the park
bookkeeping -- plus what belongs to the task as a whole: its message queue,
monitors, daemon flag, hot-swap request, and the result.  The methods are
thin: each checks its arguments precisely, then either acts directly (on the
loop thread) or posts itself to the loop (from another thread).

Calls a task makes on *itself* (sleep, receive) return :data:`PARK` after
parking it or arranging its next value; the task yields that, and the kernel
knows not to reschedule it.  Calls on *other* tasks (send, resume, throw,
terminate, hot_swap) never block and return 0 (done), or -1 (invalid target).
"""

from __future__ import annotations

import inspect
from collections import deque
from types import CodeType, FunctionType, GeneratorType
from typing import (TYPE_CHECKING, Any, Callable, Deque, Dict, Iterable, List, Mapping, Optional,
                    Tuple, overload)

from pycos.core.log import logger
from pycos.core.support import Location, Singleton
from pycos.core.scheduler import (PARK, Pycos, Scheduler, _check_timeout, _get_ident,
                                  _sliced, _TERMINATE, DONE, PARKED, READY, RUNNING)
from pycos.hints import TaskGenerator, TaskTarget, Timeout, Yieldable

__all__ = ["Task"]

_param_cache: Dict[CodeType, Tuple[bool, int]] = {}
_gen_cache: Dict[CodeType, Tuple[bool, int]] = {}
_singletons = Singleton._memo     # code of a plain generator function -> _task_param() result


def _task_param(target: Any) -> Tuple[bool, int]:
    """Where ``target`` takes ``task=``: (True, positional index or -1 for
    keyword-only) if it has a ``task`` parameter with a default, else
    (False, 0).  Cached per code object."""
    func = getattr(target, "__func__", target)
    code = getattr(func, "__code__", None)
    shift = 1 if func is not target else 0
    if code is not None and hasattr(func, "__defaults__"):
        hit = _param_cache.get(code)
        if hit is None:
            argc = code.co_argcount
            defaults = func.__defaults__ or ()
            names = code.co_varnames[argc - len(defaults):argc]
            kwdefaults = func.__kwdefaults__ or {}
            if "task" in names:
                hit = (True, code.co_varnames.index("task"))
            elif "task" in kwdefaults:
                hit = (True, -1)
            else:
                hit = (False, 0)
            _param_cache[code] = hit
        if hit[0] and hit[1] >= 0:
            return True, hit[1] - shift
        return hit
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return False, 0
    p = sig.parameters.get("task")
    if p is None or p.default is inspect.Parameter.empty:
        return False, 0
    if p.kind == p.KEYWORD_ONLY:
        return True, -1
    if p.kind == p.POSITIONAL_OR_KEYWORD:
        return True, list(sig.parameters).index("task")
    return False, 0


def _not_a_target(target: Any) -> str:
    """Why ``target`` cannot be a task's target, said so that the fix is clear."""
    name = getattr(target, "__qualname__", None) or repr(target)
    if inspect.iscoroutinefunction(target) or inspect.isasyncgenfunction(target):
        return ("%s is an 'async def' function: a task's target must be a generator function "
                "(a plain 'def' containing 'yield'); to wait for a coroutine from a task use "
                "'yield pycos.aio.wait(coro)' (see docs/asyncio.md)" % name)
    if inspect.isgenerator(target) or inspect.iscoroutine(target):
        fn = getattr(target, "__name__", "f")
        return ("Task() takes a generator function and its arguments, not %s object: write "
                "Task(%s, arg, ...), not Task(%s(arg, ...))"
                % ("a generator" if inspect.isgenerator(target) else "a coroutine", fn, fn))
    if not callable(target):
        return ("%r is not a generator function: Task() needs one (a function containing "
                "'yield') as its first argument" % (target,))
    return ("%s is not a generator function (a task's target must contain 'yield')" % name)


def _make_generator(task: Task, args: Tuple[Any, ...],
                    kwargs: Dict[str, Any]) -> GeneratorType[Any, Any, Any]:
    """Parse ``Task(target, *args, **kw)`` / ``Task(target=, args=, kwargs=)``
    and call the target; returns the generator."""
    if args:
        target, args = args[0], args[1:]
    else:
        if "target" not in kwargs:
            raise TypeError("Task() needs a generator function as its first argument")
        kwargs = dict(kwargs)
        target = kwargs.pop("target")
        args = tuple(kwargs.pop("args", ()))
        kwargs = dict(kwargs.pop("kwargs", kwargs))
    if type(target) is FunctionType:    # the common case, cached per code object
        code = target.__code__
        hit = _gen_cache.get(code)
        if hit is None and code.co_flags & inspect.CO_GENERATOR:
            hit = _gen_cache[code] = _task_param(target)
        if hit is not None:
            if hit[0] and (hit[1] < 0 or len(args) <= hit[1]):
                if not kwargs:
                    return target(*args, task=task)
                if "task" not in kwargs:
                    kwargs["task"] = task
            return target(*args, **kwargs)
    if not inspect.isgeneratorfunction(target):
        raise TypeError(_not_a_target(target))
    inject, index = _task_param(target)
    if inject and "task" not in kwargs and (index < 0 or len(args) <= index):
        kwargs["task"] = task
    gen = target(*args, **kwargs)
    if type(gen) is not GeneratorType:
        raise TypeError("%r did not return a generator" % (target,))
    return gen


def _make_suspend(name: str) -> Callable[..., Yieldable]:
    """Task.suspend and Task.sleep: the same call under two names.  Each is
    its own function (not one calling the other: no extra call per sleep)
    so that a misuse names the one the program used."""
    call = "task.%s()" % name

    def suspend(self: Task, timeout: Timeout = None, alarm_value: Any = None) -> Yieldable:
        sched = self._sched
        if sched._cur is not self or sched._thread_ident != _get_ident():
            return self._current(name)
        if timeout is not None:
            timeout = _check_timeout(timeout)
            if timeout <= 0:
                if self._state == RUNNING:      # _now_value, inlined
                    self._value = alarm_value
                    self._alarm = call
                    self._state = READY
                    sched._ready.append(self)
                    return PARK
                return sched._now_value(self, alarm_value, call)    # (raises)
        return sched._park(self, timeout, alarm_value, sched._sleep_hook)

    suspend.__name__ = name
    suspend.__qualname__ = "Task." + name
    suspend.__doc__ = """[y] %s the current task until :meth:`resume` (its value) or
    ``timeout`` seconds (``alarm_value``); ``timeout <= 0`` returns
    ``alarm_value`` at once.  In a task: ``value = yield task.%s(...)``;
    from a thread it logs a warning and returns -1.""" % (
        "Suspend" if name == "suspend" else "Sleep: suspend", name)
    return suspend


class Task(object):
    """A task running generator function ``target`` on the scheduler.

    ``Task(target, *args, **kwargs)`` (or ``Task(target=f, args=(),
    kwargs={})``) calls ``target`` and schedules the generator at once.  If
    ``target`` has a parameter ``task`` with a default, the new Task is
    passed as ``task=``.  Safe from any thread.

    The marks at the start of method docstrings say where a call may be
    made: **[y]** only in a task, as ``value = yield obj.call(...)`` (the
    call returns something for the task to yield, and the ``yield`` gives
    the result); **[y?]** a plain call that never waits and is safe from any
    thread, which a task may also write with ``yield`` (it gets the same
    value back); **[thread]** from a plain thread (the main program), never
    from a task: it blocks its caller.  Unmarked methods are plain calls.

    Guide: docs/tasks.md (tasks, the scheduler, monitors, hot swapping,
    calls from threads) and docs/messages.md (send, deliver, receive);
    the marks: docs/index.md.
    """

    __slots__ = (
        # kernel state
        "_gen", "_callers", "_value", "_exc", "_excq", "_state", "_cancel", "_alarm",
        "_tid", "_tok", "_wid", "_sched",
        # task-level state
        "_id", "_name", "_msgs", "_monitors", "_daemon", "_swap", "_hot_swappable",
        "_result", "_finishq", "_tevent", "_names", "_location", "__weakref__",
    )

    # kernel state (see pycos.core.scheduler): the generator on top of the
    # stack (None once ended), the ones under it, the value or exception it
    # gets next, what a timeout gives (the alarm value; while READY: the
    # name of a call completed at once)
    _gen: Any
    _callers: Optional[List[TaskGenerator]]
    _value: Any
    _alarm: Any
    _exc: Any
    _excq: Optional[List[Any]]
    _state: Optional[int]
    _cancel: Optional[Callable[[Task, int], Any]]
    _sched: Scheduler          # (Pycos, or netpycos's system scheduler for a SysTask)
    _name: str
    _msgs: Optional[Deque[Any]]
    _monitors: Optional[Dict[Task, None]]
    _swap: Optional[TaskGenerator]
    _finishq: Optional[Deque[Task]]
    _tevent: Any
    _names: Optional[List[str]]
    _location: Optional[Location]

    @classmethod
    def _default_scheduler(cls) -> Scheduler:
        return _singletons.get(Pycos) or Pycos.instance()

    @overload
    def __init__(self, target: TaskTarget, /, *args: Any, **kwargs: Any) -> None: ...

    @overload
    def __init__(self, *, target: TaskTarget, args: Iterable[Any] = (),
                 kwargs: Mapping[str, Any] = {}) -> None: ...

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        sched = self._default_scheduler()
        self._sched = sched
        self._state = None
        self._gen = None
        gen = _make_generator(self, args, kwargs)
        self._gen = gen
        self._callers = None
        self._value = None
        self._exc = None
        self._excq = None           # exceptions queued behind _exc (made on demand)
        self._cancel = None
        self._alarm = None
        self._tid = 0
        self._tok = 0
        self._wid = 0
        self._id = next(sched._ids)
        self._name = gen.__name__
        self._msgs = None           # the message queue, made by the first message
        self._monitors = None
        self._daemon = False
        self._swap = None
        self._hot_swappable = False
        self._result = None
        self._finishq = None
        self._tevent = None
        self._names = None
        self._location = None
        sched._new_task(self)

    # ---- identity -------------------------------------------------------

    @property
    def name(self) -> str:
        """The task's name: its function's (or the one ``hot_swap`` gave it)."""
        return self._name

    @property
    def location(self) -> Optional[Location]:
        """The Location of the task's scheduler (None without networking)."""
        return self._location if self._location is not None else self._sched.location

    @classmethod
    def scheduler(cls) -> Pycos:
        """The process's scheduler (:class:`Pycos`)."""
        return Pycos.instance()

    def __repr__(self) -> str:
        s = "%s/%s" % (self._name, self._id)
        if self._location is not None:
            s += "@%s" % (self._location,)
        return s

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, Task) or self._location is None or other._location is None:
            return False
        return self._id == other._id and self._location == other._location

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        if self._location is None:
            return id(self) >> 4
        return hash((self._id, self._location))

    def is_alive(self) -> bool:
        """True until the task has ended."""
        return self._state != DONE

    # ---- helpers --------------------------------------------------------

    def _current(self, what: str) -> Optional[int]:
        """Check that ``self`` is the task running now; None if so, else -1
        (logged), like the original."""
        sched = self._sched
        if not sched._on_loop():
            how = " (a thread sleeps with time.sleep())" if what == "sleep" else ""
            if what != "hot_swappable":
                how = ", as 'yield task.%s(...)'%s" % (what, how)
            logger.warning("task.%s() must be called in a task%s, not from a thread; "
                           "it returns -1 here", what, how)
            return -1
        if sched._cur is not self:
            logger.warning("%s() is only valid on the current task (%s is not running; "
                           "returns -1)", what, self)
            return -1
        return None

    def _post_or_run(self, fn: Callable[..., int], *args: Any) -> int:
        sched = self._sched
        if sched._on_loop():
            return fn(*args)
        if self._state == DONE:
            return -1
        return 0 if sched._post(fn, *args) else -1

    # ---- sleeping and waking --------------------------------------------

    if TYPE_CHECKING:
        def suspend(self, timeout: Timeout = None, alarm_value: Any = None) -> Yieldable: ...

        def sleep(self, timeout: Timeout = None, alarm_value: Any = None) -> Yieldable: ...
    else:
        suspend = _make_suspend("suspend")
        sleep = _make_suspend("sleep")

    def resume(self, update: Any = None) -> int:
        """[y?] Wake the task from :meth:`suspend` with ``update``.  A resume
        to a task that is not suspended is dropped (returns 0); -1 if the task
        has ended."""
        return self._post_or_run(self._resume, update)

    wakeup = resume

    def _resume(self, update: Any) -> int:
        if self._state == DONE:
            return -1
        sched = self._sched
        if self._state == PARKED and self._cancel is sched._sleep_hook:
            sched._unpark(self, update)
        return 0

    # ---- messages -------------------------------------------------------

    def send(self, message: Any) -> int:
        """[y?] Queue ``message`` for the task (or hand it to a waiting
        receive).  0, or -1 if the task has ended.  Thread-safe."""
        sched = self._sched
        if sched._thread_ident != _get_ident():
            return self._post_or_run(self._deliver_msg, message)
        # the hot path of message passing: _deliver_msg and _unpark inlined
        state = self._state
        if state == PARKED and self._cancel is sched._recv_hook:
            if self._tid:
                sched._clear_timer(self)
            self._cancel = None
            self._alarm = None
            self._value = message
            self._state = READY
            sched._ready.append(self)
            return 0
        if state == DONE:
            return -1
        msgs = self._msgs
        if msgs is None:
            msgs = self._msgs = deque()
        msgs.append(message)
        return 0

    def _deliver_msg(self, message: Any) -> int:
        if self._state == DONE:
            return -1
        sched = self._sched
        if self._state == PARKED and self._cancel is sched._recv_hook:
            sched._unpark(self, message)
        else:
            if self._msgs is None:
                self._msgs = deque()
            self._msgs.append(message)
        return 0

    def deliver(self, message: Any, timeout: Timeout = None) -> Yieldable:
        """[y] Send with acknowledgement: 1 delivered/queued, 0 timeout
        (remote), -1 invalid target."""
        _check_timeout(timeout)
        return 1 if self.send(message) == 0 else -1

    def receive(self, timeout: Timeout = None, alarm_value: Any = None) -> Yieldable:
        """[y] The oldest queued message, waiting up to ``timeout`` seconds
        (None: no limit, 0: poll); ``alarm_value`` on timeout."""
        sched = self._sched
        if sched._cur is not self or sched._thread_ident != _get_ident():
            return self._current("receive")
        if timeout is not None:
            timeout = _check_timeout(timeout)
        msgs = self._msgs
        if msgs and self._state == RUNNING:     # the hot path: _now_value inlined
            self._value = msgs.popleft()
            self._alarm = "task.receive()"
            self._state = READY
            sched._ready.append(self)
            return PARK
        if timeout is not None and timeout <= 0:
            return sched._now_value(self, alarm_value, "task.receive()")
        return sched._park(self, timeout, alarm_value, sched._recv_hook)

    recv = receive

    # ---- exceptions and termination -------------------------------------

    def throw(self, *args: Any) -> int:
        """Raise an exception at the task's current yield (waking it).
        ``throw(exc)``, ``throw(type[, value[, tb]])`` or ``throw(exc_info)``.
        0, or -1 for bad arguments or an ended task."""
        if len(args) == 1 and isinstance(args[0], tuple):
            args = args[0]
        if not args or len(args) > 3:
            logger.warning("throw: expected an exception, got %r", args)
            return -1
        first = args[0]
        try:
            if isinstance(first, BaseException):
                exc = first
            elif isinstance(first, type) and issubclass(first, BaseException):
                value = args[1] if len(args) > 1 else None
                if isinstance(value, first):
                    exc = value
                elif value is None:
                    exc = first()
                elif isinstance(value, tuple):
                    exc = first(*value)
                else:
                    exc = first(value)
            else:
                logger.warning("throw: %r is not an exception", first)
                return -1
            if len(args) > 2 and args[2] is not None:
                exc = exc.with_traceback(args[2])
        except Exception as e:
            logger.warning("throw: cannot build exception from %r: %s", args, e)
            return -1
        return self._post_or_run(self._sched._interrupt, self, exc)

    def terminate(self) -> int:
        """Make the task end: GeneratorExit at its yield point in every frame
        (their ``finally`` blocks run).  0, or -1 if it has already ended."""
        return self._post_or_run(self._sched._interrupt, self, _TERMINATE)

    # ---- results --------------------------------------------------------

    def value(self, timeout: Timeout = None) -> Any:
        """[thread] Wait until the task ends and return its value (None on
        timeout).  Not from a task (use ``yield task.finish()``)."""
        sched = self._sched
        timeout = _check_timeout(timeout)
        if sched._on_loop() and sched._cur is not None:
            raise RuntimeError("Task.value() blocks the thread; from a task use "
                               "'yield task.finish()'")
        if sched._embedded and sched._on_loop():
            if not sched._drive(lambda: self._state == DONE, timeout):
                return None
            return self._result
        import threading
        with sched._lock:
            ev = self._tevent
            if ev is True:
                return self._result
            if ev is None:
                ev = self._tevent = threading.Event()
        if _sliced(ev.wait, timeout):
            return self._result
        return None

    def finish(self, timeout: Timeout = None) -> Yieldable:
        """[y] From another task: wait until this task ends and return its
        value (None on timeout).  ``yield task()`` is the same."""
        sched = self._sched
        cur = sched._cur if sched._on_loop() else None
        if cur is None:
            raise RuntimeError("Task.finish() must be used in a task as "
                               "'yield task.finish()'; threads use task.value()")
        if cur is self:
            raise RuntimeError("task %s cannot wait for itself to finish" % self)
        timeout = _check_timeout(timeout)
        if self._state == DONE:
            return sched._now_value(cur, self._result, "task.finish()")
        if timeout is not None and timeout <= 0:
            return sched._now_value(cur, None, "task.finish()")
        fq = self._finishq
        if fq is None:
            fq = self._finishq = deque()
        fq.append(cur)
        return sched._park(cur, timeout, None, self._finish_cancel)

    __call__ = finish

    def _finish_cancel(self, waiter: Task, reason: int) -> None:
        fq = self._finishq
        if fq is not None:
            try:
                fq.remove(waiter)
            except ValueError:
                pass

    # ---- monitoring -----------------------------------------------------

    def monitor(self, observe: Task) -> Yieldable:
        """[y] Make this task a monitor of ``observe``: when ``observe`` ends,
        this task receives a :class:`MonitorStatus` message.  0 or -1."""
        if not isinstance(observe, Task):
            logger.warning("monitor: %r is not a task", observe)
            return -1
        return observe.notify(self)

    def notify(self, monitor: Task) -> int:
        """The reverse of :meth:`monitor`: ``monitor`` will be told when this
        task ends.  0 or -1."""
        if not isinstance(monitor, Task):
            logger.warning("notify: monitor %r is not a task", monitor)
            return -1
        if self._state == DONE:
            return -1
        return self._post_or_run(self._add_monitor, monitor)

    def _add_monitor(self, monitor: Task) -> int:
        if self._state == DONE:
            return -1
        if self._monitors is None:
            self._monitors = {}
        self._monitors[monitor] = None
        return 0

    # ---- daemon, hot swap -----------------------------------------------

    def set_daemon(self, flag: bool = True) -> int:
        """Daemon tasks do not keep join()/finish()/interpreter exit waiting."""
        return self._sched._set_daemon(self, bool(flag))

    def hot_swappable(self, flag: bool) -> int:
        """Called by the task itself: allow (True) or refuse hot swapping.
        A swap requested earlier is applied now when possible."""
        bad = self._current("hot_swappable")
        if bad is not None:
            return bad
        self._hot_swappable = bool(flag)
        if flag and self._swap is not None and not self._callers:
            self._sched._deliver_swap(self)
        return 0

    def hot_swap(self, target: TaskTarget, *args: Any, **kwargs: Any) -> int:
        """Ask the task to replace its generator with ``target(*args, **kw)``
        (see docs/tasks.md for the rules).  0, or -1 if ``target`` is not a
        generator function or the task has ended."""
        if self._state == DONE:
            return -1
        try:
            gen = _make_generator(self, (target,) + args, kwargs)
        except TypeError as e:
            logger.warning("hot_swap: %s", e)
            return -1
        return self._post_or_run(self._request_swap, gen)

    def _request_swap(self, gen: TaskGenerator) -> int:
        if self._state == DONE:
            return -1
        self._swap = gen
        if self._hot_swappable and not self._callers:
            # thrown in at the task's yield (its next one, if it is running)
            self._sched._deliver_swap(self)
        return 0

    # ---- names ------------------------------------------------------------

    def register(self, name: Optional[str] = None) -> int:
        """Register under ``name`` (default: the task's name) so that
        ``Task.locate(name)`` finds it.  0, or -1 if the name is taken."""
        if self._location is not None:
            return -1
        if name is None:
            name = self._name
        if not isinstance(name, str) or not name:
            raise TypeError("task name must be a non-empty str, not %r" % (name,))
        return self._sched._call_sync(self._register, name)

    def _register(self, name: str) -> int:
        reg = self._sched._rtasks
        cur = reg.get(name)
        if self._state == DONE or (cur is not None and cur is not self and cur._state != DONE):
            return -1
        reg[name] = self
        if self._names is None:
            self._names = []
        self._names.append(name)
        return 0

    def unregister(self, name: Optional[str] = None) -> int:
        """Drop the name (default: the task's name).  0, or -1 if the task
        was not registered under it."""
        if self._location is not None:
            return -1
        if name is None:
            name = self._name
        return self._sched._call_sync(self._unregister, name)

    def _unregister(self, name: str) -> int:
        reg = self._sched._rtasks
        if reg.get(name) is not self:
            return -1
        del reg[name]
        if self._names and name in self._names:
            self._names.remove(name)
        return 0

    @staticmethod
    def locate(name: str, location: Optional[Location] = None,
               timeout: Timeout = None) -> Yieldable:
        """[y] The task registered as ``name`` (None if there is none).
        Without networking only this process is searched; with netpycos,
        ``location`` names the peer to ask, and without it every peer is asked
        and the first that has the name answers."""
        return Pycos.instance()._locate("task", name, location, timeout)

    # ---- pickling -------------------------------------------------------------

    def __reduce__(self) -> Any:
        # a task travels as a reference (netpycos); the scheduler decides how
        return self._sched._reduce_ref(self)


# what help() and inspect.signature() show for Task(...): the target, then
# its arguments (the keyword form, Task(target=f, args=(), kwargs={}), is in
# the class docstring)
# (annotations as strings, as in the rest of the module)
setattr(Task.__init__, "__signature__", inspect.Signature([
    inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY),
    inspect.Parameter("target", inspect.Parameter.POSITIONAL_ONLY, annotation="TaskTarget"),
    inspect.Parameter("args", inspect.Parameter.VAR_POSITIONAL, annotation="Any"),
    inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD, annotation="Any")],
    return_annotation="None"))
