"""Task basics: creation, task= injection, sub-calls, values, sleep/resume,
messages, throw, terminate, value/finish, names, the scheduler's life."""
import threading

import pytest

from pycos import MonitorStatus, Pycos, Task


# ---- creation ---------------------------------------------------------------

def test_target_must_be_generator_function(sched):
    def plain(x):
        return x

    with pytest.raises(TypeError, match="plain is not a generator function"):
        Task(plain, 1)
    with pytest.raises(TypeError, match="not a generator function"):
        Task(42)
    with pytest.raises(TypeError):
        Task()


def test_task_injection_forms(run):
    def positional(a, task=None):
        yield
        return (a, task)

    def keyword_only(a, *, task=None):
        yield
        return (a, task)

    def other_default(a, task=0):
        yield
        return (a, task)

    def no_task(a):
        yield
        return a

    class Owner(object):
        def method(self, a, task=None):
            yield
            return (self, a, task)

    for fn in (positional, keyword_only, other_default):
        t = Task(fn, 1)
        assert t.value(5) == (1, t)
    assert Task(no_task, 3).value(5) == 3
    owner = Owner()
    t = Task(owner.method, 2)
    assert t.value(5) == (owner, 2, t)
    # the target=/args=/kwargs= form
    t = Task(target=positional, args=(7,))
    assert t.value(5) == (7, t)
    t = Task(target=keyword_only, kwargs={"a": 8})
    assert t.value(5) == (8, t)
    # static/class methods and functools.partial
    class Kinds(object):
        @staticmethod
        def static(a, task=None):
            yield
            return (a, task)

        @classmethod
        def klass(cls, a, task=None):
            yield
            return (cls, a, task)

    t = Task(Kinds.static, 4)
    assert t.value(5) == (4, t)
    t = Task(Kinds().klass, 5)
    assert t.value(5) == (Kinds, 5, t)
    import functools
    t = Task(functools.partial(positional, 6))
    assert t.value(5) == (6, t)
    # an explicit task argument is not overridden
    assert Task(positional, 1, task="mine").value(5) == (1, "mine")
    assert Task(positional, 1, "pos").value(5) == (1, "pos")


def test_task_scheduled_without_start(sched):
    ran = threading.Event()

    def body(task=None):
        ran.set()
        yield

    t = Task(body)
    assert ran.wait(5)
    assert t.value(5) is None
    assert not t.is_alive()


# ---- values, sub-calls, plain yields ------------------------------------------

def test_return_value_and_falling_off(run):
    def returns():
        yield
        return "done"

    def falls_off():
        yield 1

    assert Task(returns).value(5) == "done"
    assert Task(falls_off).value(5) is None


def test_plain_value_yield_comes_back(run):
    def body(task=None):
        got = []
        for v in (1, "x", None, (1, 2), [3]):
            got.append((yield v))
        return got

    assert run(body) == [1, "x", None, (1, 2), [3]]


def test_plain_yield_lets_the_others_run(run):
    """A bare ``yield`` goes to the back of the ready queue."""
    order = []

    def worker(name, task=None):
        for i in range(3):
            order.append((name, i))
            yield

    def body(task=None):
        a, b = Task(worker, "a"), Task(worker, "b")
        yield a.finish()
        yield b.finish()
        return order

    assert run(body) == [("a", 0), ("b", 0), ("a", 1), ("b", 1), ("a", 2), ("b", 2)]


def test_resume_sentinel_steps_at_once_within_the_budget(run):
    """RESUME (a call that completed with None) resumes the task at once
    with None; the round's step budget still bounds it, so a task that only
    ever gets RESUME cannot keep timers (or other tasks) from running."""
    from pycos.core.scheduler import RESUME, _STEPS
    state = {"stop": False, "spins": 0, "other": []}

    def spinner(task=None):
        while not state["stop"]:
            got = yield RESUME
            assert got is None
            state["spins"] += 1
        return state["spins"]

    def other(task=None):
        state["other"].append(state["spins"])
        yield task.sleep(0.01)          # a timer: needs a poll to fire
        state["stop"] = True

    def body(task=None):
        s = Task(spinner)
        o = Task(other)
        spins = yield s.finish()
        yield o.finish()
        return spins

    spins = run(body)
    # the spinner ran many steps before the timer fired, and the other task
    # got its first step before the spinner had used up one budget
    assert spins > _STEPS
    assert state["other"][0] <= _STEPS

def test_event_woken_task_runs_before_the_backlog(run):
    """A task woken by an event (here its timer) runs before the tasks that
    were already queued: with thousands of ready tasks, a due timer costs
    at most about one round of _STEPS steps, not the whole backlog."""
    from pycos.core.scheduler import _STEPS
    state = {"steps": 0, "woke_at": None}

    def busy(task=None):
        for _ in range(3):
            state["steps"] += 1
            yield

    def sleeper(task=None):
        yield task.sleep(1e-6)          # due long before one round ends
        state["woke_at"] = state["steps"]

    def body(task=None):
        s = Task(sleeper)
        workers = [Task(busy) for _ in range(3000)]
        yield s.finish()
        for w in workers:
            yield w.finish()
        return state["steps"]

    assert run(body) == 9000
    assert state["woke_at"] is not None and state["woke_at"] <= 3 * _STEPS, state


def test_events_every_round_do_not_starve_the_backlog(run):
    """Each round runs the event-woken tasks and then _STEPS others: a task
    woken by its timer at every poll cannot keep the ready ones waiting."""
    state = {"done": 0, "stop": False, "naps": 0}

    def busy(task=None):
        for _ in range(5):
            yield
        state["done"] += 1

    def napper(task=None):
        while not state["stop"]:
            yield task.sleep(1e-6)
            state["naps"] += 1

    def body(task=None):
        n = Task(napper)
        workers = [Task(busy) for _ in range(2000)]
        for w in workers:
            yield w.finish()
        state["stop"] = True
        yield n.finish()
        return state["done"]

    assert run(body) == 2000
    assert state["naps"] > 1


def test_subcalls_return_and_raise(run):
    def inner(x):
        yield
        if x < 0:
            raise ValueError("negative %d" % x)
        return x * 10

    def middle(x):
        v = yield inner(x)
        return v + 1

    def outer(task=None):
        a = yield middle(4)
        try:
            yield middle(-1)
        except ValueError as e:
            b = str(e)
        c = yield inner(0)
        return a, b, c

    assert run(outer) == (41, "negative -1", 0)


def test_deep_subcall_recursion(run):
    def depth(n):
        if n == 0:
            return 0
            yield
        r = yield depth(n - 1)
        return r + 1

    assert run(depth, 2000) == 2000


# ---- sleep / resume ---------------------------------------------------------------

def test_sleep_timeout_returns_alarm(vrun):
    def body(task=None):
        a = yield task.sleep(5, alarm_value="alarm")
        b = yield task.sleep(0, alarm_value="now")
        c = yield task.sleep(-1, "neg")
        d = yield task.suspend(0.5)
        return a, b, c, d

    assert vrun(body) == ("alarm", "now", "neg", None)


def test_resume_wakes_with_value(vrun):
    def sleeper(task=None):
        v = yield task.sleep(100, alarm_value="timeout")
        return v

    def waker(task=None):
        target = Task(sleeper)
        yield task.sleep(1)
        assert target.resume("hello") == 0
        assert target.resume("again") == 0     # not suspended any more: dropped
        return (yield target.finish())

    assert vrun(waker) == "hello"


def test_resume_not_queued(vrun):
    def body(task=None):
        assert task.resume("early") == 0         # running, not suspended: dropped
        v = yield task.sleep(1, alarm_value="alarm")
        return v

    assert vrun(body) == "alarm"


def test_resume_does_not_wake_receive(vrun):
    def receiver(task=None):
        return (yield task.receive(2, alarm_value="alarm"))

    def main(task=None):
        r = Task(receiver)
        yield task.sleep(1)
        r.resume("resumed")
        return (yield r.finish())

    assert vrun(main) == "alarm"


def test_sleep_only_on_current_task(vrun):
    def other(task=None):
        yield task.sleep(1)

    def main(task=None):
        o = Task(other)
        rc = o.sleep(1)
        yield o.finish()
        return rc

    assert vrun(main) == -1


def test_bad_timeouts(run):
    def body(task=None):
        errors = []
        for bad in ("1", [], float("nan"), True):
            try:
                yield task.sleep(bad)
            except (TypeError, ValueError) as e:
                errors.append(type(e).__name__)
        return errors

    assert run(body) == ["TypeError", "TypeError", "ValueError", "TypeError"]


def test_sleep_until_resumed_from_thread(sched):
    def sleeper(task=None):
        return (yield task.sleep())

    t = Task(sleeper)
    # the resume may arrive before the task sleeps (then it is dropped): retry
    for _ in range(500):
        t.resume("from thread")
        if t.value(0.01) is not None:
            break
    assert t.value(5) == "from thread"


# ---- messages ---------------------------------------------------------------------

def test_send_receive_fifo(run):
    def receiver(n, task=None):
        got = []
        for _ in range(n):
            got.append((yield task.receive()))
        return got

    def main(task=None):
        r = Task(receiver, 5)
        for i in range(3):
            assert r.send(i) == 0
            yield
        assert (yield r.deliver(3)) == 1
        r.send(4)
        return (yield r.finish())

    assert run(main) == [0, 1, 2, 3, 4]


def test_receive_timeout_and_poll(vrun):
    def body(task=None):
        a = yield task.receive(timeout=3, alarm_value="none")
        b = yield task.receive(0, "poll")
        task.send("m")
        c = yield task.receive(0, "poll")
        d = yield task.recv(1)
        return a, b, c, d

    assert vrun(body) == ("none", "poll", "m", None)


def test_send_to_dead_task(run):
    def quick():
        yield

    def main(task=None):
        q = Task(quick)
        yield q.finish()
        return q.send(1), (yield q.deliver(1)), q.resume(1), q.throw(ValueError), q.terminate()

    assert run(main) == (-1, -1, -1, -1, -1)


def test_message_that_is_a_generator_is_not_run(run):
    def gen():
        yield "should not run"

    def main(task=None):
        g = gen()
        task.send(g)
        m = yield task.receive()
        return m is g

    assert run(main) is True


# ---- throw ------------------------------------------------------------------------

def test_throw_forms(vrun):
    def victim(task=None):
        caught = []
        while len(caught) < 4:
            try:
                yield task.sleep(100)
            except KeyError as e:
                caught.append(("KeyError", e.args))
            except ValueError as e:
                caught.append(("ValueError", e.args))
        return caught

    def main(task=None):
        v = Task(victim)
        yield task.sleep(1)
        assert v.throw(KeyError("a")) == 0
        yield task.sleep(1)
        assert v.throw(ValueError, "b") == 0
        yield task.sleep(1)
        try:
            raise KeyError("c")
        except KeyError:
            import sys
            assert v.throw(sys.exc_info()) == 0
        yield task.sleep(1)
        assert v.throw(ValueError) == 0
        assert v.throw() == -1
        assert v.throw("not an exception") == -1
        return (yield v.finish())

    assert vrun(main) == [("KeyError", ("a",)), ("ValueError", ("b",)),
                          ("KeyError", ("c",)), ("ValueError", ())]


def test_throw_into_subcall_propagates_to_caller(vrun):
    def inner(task):
        yield task.sleep(100)

    def victim(task=None):
        try:
            yield inner(task)
        except RuntimeError as e:
            return "caught " + str(e)

    def main(task=None):
        v = Task(victim)
        yield task.sleep(1)
        v.throw(RuntimeError("boom"))
        return (yield v.finish())

    assert vrun(main) == "caught boom"


# ---- terminate ----------------------------------------------------------------------

def test_terminate_runs_finally_in_every_frame(vrun):
    log = []

    def inner(task):
        try:
            yield task.sleep(100)
        finally:
            log.append("inner finally")

    def victim(task=None):
        try:
            yield inner(task)
        except GeneratorExit:
            log.append("outer GeneratorExit")
            raise
        finally:
            log.append("outer finally")

    def main(task=None):
        v = Task(victim)
        yield task.sleep(1)
        assert v.terminate() == 0
        yield v.finish()
        return v.is_alive()

    assert vrun(main) is False
    assert log == ["inner finally", "outer GeneratorExit", "outer finally"]


def test_terminate_ready_and_self(run):
    def spinner(task=None):
        while True:
            yield 1

    def self_terminating(task=None):
        task.terminate()
        yield 5
        raise AssertionError("not reached")

    def main(task=None):
        s = Task(spinner)
        yield
        s.terminate()
        a = yield s.finish()
        b = yield Task(self_terminating).finish()
        return a, b

    assert run(main) == (1, 5)


def test_terminate_from_thread(sched):
    started = threading.Event()

    def looper(task=None):
        started.set()
        while True:
            yield task.sleep(0.01)

    t = Task(looper)
    assert started.wait(5)
    assert t.terminate() == 0
    t.value(5)
    assert not t.is_alive()


# ---- value / finish ---------------------------------------------------------------

def test_value_timeout_and_finish(sched):
    gate = threading.Event()

    def slow(task=None):
        while not gate.is_set():
            yield task.sleep(0.005)
        return "slow done"

    def waiter(t, task=None):
        a = yield t.finish(timeout=0)
        gate.set()
        b = yield t()
        return a, b

    t = Task(slow)
    assert t.value(timeout=0.01) is None
    w = Task(waiter, t)
    assert w.value(5) == (None, "slow done")
    assert t.value(5) == "slow done"


def test_finish_misuse(run):
    def body(task=None):
        try:
            yield task.finish()
        except RuntimeError as e:
            return str(e)

    assert "cannot wait for itself" in run(body)

    def quick():
        yield

    t = Task(quick)
    with pytest.raises(RuntimeError, match="must be used in a task"):
        t.finish()
    t.value(5)


def test_value_from_task_is_refused(run):
    def body(task=None):
        try:
            task.value()
        except RuntimeError:
            return "refused"
        yield

    assert run(body) == "refused"


# ---- uncaught exceptions ----------------------------------------------------------

def test_uncaught_exception_becomes_monitor_status(run, caplog):
    def bad(task=None):
        yield
        raise ZeroDivisionError("oops")

    t = Task(bad)
    v = t.value(5)
    assert isinstance(v, MonitorStatus)
    assert v.info is t and v.type is ZeroDivisionError
    assert "ZeroDivisionError: oops" in v.value and "Traceback" in v.value
    assert any("uncaught exception" in r.getMessage() for r in caplog.records)

    def ok():
        yield
        return "still fine"

    assert run(ok) == "still fine"


# ---- names ----------------------------------------------------------------------------

def test_register_locate(run):
    def server(task=None):
        return (yield task.receive())

    def main(task=None):
        s = Task(server)
        assert s.register("srv") == 0
        assert s.register("srv") == 0           # same task again: fine
        other = Task(server)
        assert other.register("srv") == -1      # taken by a live task
        found = yield Task.locate("srv")
        assert found is s
        assert (yield Task.locate("nobody")) is None
        s.send("hi")
        r = yield s.finish()
        assert (yield Task.locate("srv")) is None    # gone with the task
        assert other.register("srv") == 0
        assert other.unregister("srv") == 0
        assert other.unregister("srv") == -1
        other.send(None)
        yield other.finish()
        return r

    assert run(main) == "hi"


def test_name_repr_equality(run):
    def named(task=None):
        yield
        return task

    t = Task(named)
    assert t.value(5) is t
    assert t.name == "named"
    assert repr(t).startswith("named/")
    t2 = Task(named)
    assert t == t and t != t2 and len({t, t}) == 1
    assert t2.value(5) is t2
    assert t.location is None


# ---- scheduler -----------------------------------------------------------------------

def test_singleton_and_cur_task(sched):
    assert Pycos() is sched and Pycos.instance() is sched
    assert Pycos.cur_task() is None and Pycos.scheduler() is None

    def body(task=None):
        yield
        return Pycos.cur_task() is task, Pycos.scheduler() is sched

    assert Task(body).value(5) == (True, True)
    assert sched.is_alive() and sched.name == "" and sched.location is None
    assert sched.locations == []


def test_fresh_scheduler_after_finish_and_terminate():
    first = Pycos()
    first.finish()
    assert not first.is_alive()
    second = Pycos()
    assert second is not first and second.is_alive()
    second.terminate()
    third = Pycos()
    assert third is not second

    def body():
        yield
        return 1

    assert Task(body).value(5) == 1
    third.finish()


def test_join_waits_for_non_daemons_only(sched):
    gate = threading.Event()

    def daemon(task=None):
        task.set_daemon()
        while True:
            yield task.sleep(0.01)

    def worker(task=None):
        while not gate.is_set():
            yield task.sleep(0.001)

    Task(daemon)
    Task(worker)
    assert sched.join(timeout=0.01) is False
    gate.set()
    assert sched.join(timeout=5) is True


def test_join_finish_from_task_refused(run, sched):
    def body(task=None):
        errors = []
        for call in (sched.join, sched.finish, sched.terminate):
            try:
                call()
            except RuntimeError:
                errors.append(call.__name__)
        yield
        return errors

    assert run(body) == ["join", "finish", "terminate"]


def test_finish_order_daemon_atexit(sched):
    order = []
    gate = threading.Event()

    def daemon(task=None):
        task.set_daemon()
        try:
            while True:
                yield task.sleep(0.01)
        finally:
            order.append("daemon closed")

    def worker(task=None):
        while not gate.is_set():
            yield task.sleep(0.001)
        order.append("worker done")

    Task(daemon)
    Task(worker)
    sched.atexit(1, order.append, "low")
    sched.atexit(10, order.append, "high")
    sched.atexit(5, order.append, "dropped")
    assert sched.drop_atexit(5, order.append) == 0
    assert sched.drop_atexit(5, order.append) == -1
    sched.atexit(5, order.append, "mid")
    opener = threading.Timer(0.05, gate.set)
    opener.start()
    sched.finish()
    opener.join()
    assert order == ["worker done", "high", "mid", "low", "daemon closed"]
    assert not sched.is_alive()


def test_terminate_closes_everything(sched):
    order = []
    started = threading.Event()

    def forever(n, task=None):
        try:
            started.set()
            yield task.sleep()
        finally:
            order.append(n)

    tasks = [Task(forever, i) for i in range(3)]
    assert started.wait(5)
    sched.atexit(0, order.append, "atexit")
    sched.terminate()
    assert order[0] == "atexit" and sorted(order[1:]) == [0, 1, 2]
    assert not any(t.is_alive() for t in tasks)
    assert not sched.is_alive()


def test_set_daemon_back(sched):
    gate = threading.Event()

    def body(task=None):
        task.set_daemon(True)
        task.set_daemon(False)
        while not gate.is_set():
            yield task.sleep(0.001)

    Task(body)
    assert sched.join(timeout=0.02) is False
    gate.set()
    assert sched.join(timeout=5)


def test_statistics(sched):
    stats = sched.statistics()
    for key in ("tasks", "non_daemon", "ready", "timeouts", "handlers", "inbox", "loop"):
        assert key in stats
    assert stats["loop"]["backend"] in ("epoll", "poll", "kqueue", "iocp")


def test_interpreter_exit_waits_for_tasks(tmp_path):
    """A script that creates tasks and ends waits for them (atexit)."""
    import subprocess
    import sys
    import os
    script = tmp_path / "s.py"
    script.write_text(
        "import pycos\n"
        "def t(task=None):\n"
        "    yield task.sleep(0.2)\n"
        "    print('task finished', flush=True)\n"
        "pycos.Task(t)\n"
        "print('main ends', flush=True)\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=30, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["main ends", "task finished"]


def test_interpreter_exit_ignores_daemons_runs_atexit(tmp_path):
    """At interpreter exit pycos waits for non-daemon tasks only, runs the
    scheduler's atexit functions (higher priority first) and closes daemons
    (their ``finally`` runs)."""
    import subprocess
    import sys
    import os
    script = tmp_path / "s.py"
    script.write_text(
        "import pycos\n"
        "def daemon(task=None):\n"
        "    task.set_daemon()\n"
        "    try:\n"
        "        yield task.sleep()\n"
        "    finally:\n"
        "        print('daemon closed', flush=True)\n"
        "def worker(task=None):\n"
        "    yield task.sleep(0.05)\n"
        "    print('worker done', flush=True)\n"
        "pycos.Task(daemon)\n"
        "pycos.Task(worker)\n"
        "s = pycos.Pycos()\n"
        "s.atexit(1, print, 'atexit low', flush=True)\n"
        "s.atexit(9, print, 'atexit high', flush=True)\n"
        "print('main ends', flush=True)\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=30, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["main ends", "worker done", "atexit high", "atexit low",
                                       "daemon closed"]


def test_deliver_to_local_task(run):
    def sink(task=None):
        return [(yield task.receive()), (yield task.receive())]

    def main(task=None):
        s = Task(sink)
        assert (yield s.deliver("a")) == 1
        assert (yield s.deliver("b", timeout=5)) == 1
        got = yield s.finish()
        assert (yield s.deliver("late")) == -1
        return got

    assert run(main) == ["a", "b"]


def test_value_from_many_threads_and_finish_from_many_tasks(sched):
    gate = threading.Event()

    def slow(task=None):
        while not gate.is_set():
            yield task.sleep(0.001)
        return "done"

    t = Task(slow)

    def waiter(task=None):
        return (yield t.finish())

    waiters = [Task(waiter) for _ in range(5)]
    got = []
    threads = [threading.Thread(target=lambda: got.append(t.value(10))) for _ in range(5)]
    for th in threads:
        th.start()
    gate.set()
    for th in threads:
        th.join()
    assert got == ["done"] * 5
    assert [w.value(5) for w in waiters] == ["done"] * 5


def test_exception_in_one_task_does_not_disturb_others(vrun, caplog):
    def bad(task=None):
        yield task.sleep(1)
        raise RuntimeError("boom")

    def good(n, task=None):
        total = 0
        for i in range(5):
            total += yield task.sleep(1, alarm_value=i)
        return (n, total)

    def main(task=None):
        ts = [Task(good, 0), Task(bad), Task(good, 1)]
        out = []
        for t in ts:
            out.append((yield t.finish()))
        return out

    out = vrun(main)
    assert out[0] == (0, 10) and out[2] == (1, 10)
    assert isinstance(out[1], MonitorStatus) and out[1].type is RuntimeError
