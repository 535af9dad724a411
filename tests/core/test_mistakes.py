"""The mistakes a new user makes with tasks give clear errors, never silent harm.

A pycos call that may wait (sleep, receive, a lock, a socket read...) made
without ``yield`` is withdrawn and reported in the task as a
MissingYieldError (a TypeError) naming the call, at the task's next call,
its next yield or the end of the function; the scheduler's bookkeeping (its
timers, wait queues, non-daemon count, pending I/O) stays exact.  Yielding a
coroutine, an uncalled function or a list of calls is a TypeError that says
what to write instead, and so is ``with lock:``.  The kernel's own frames are
not in task tracebacks.
"""
import socket
import subprocess
import sys
import textwrap
import traceback

import pytest

import pycos
from pycos import MonitorStatus, Task
from pycos.core.scheduler import MissingYieldError

pytestmark = pytest.mark.timeout(60)


def _failure(value):
    """The exception a task died of (its value is a MonitorStatus)."""
    assert isinstance(value, MonitorStatus), value
    assert value.exception is not None, value
    return value.exception


# ---- a call made without yield ------------------------------------------------------------

def test_recv_without_yield_then_return_fails_the_task_and_withdraws_the_read(sched):
    a, b = socket.socketpair()
    a, b = pycos.AsyncSocket(a), pycos.AsyncSocket(b)

    def forgetful(task=None):
        a.recv(100)             # no yield: the read is pending, the task parked
        return "done"
        yield

    exc = _failure(Task(forgetful).value(10))
    assert type(exc) is MissingYieldError and isinstance(exc, TypeError)
    assert "called a read" in str(exc) and "without 'yield'" in str(exc)
    assert "and then returned" in str(exc) and "forgetful" in str(exc)
    stats = sched.statistics()
    assert stats["non_daemon"] == 0 and stats["tasks"] == 0 and stats["handlers"] == 0, stats

    def reader(task=None):      # the read was withdrawn: the socket is free
        return (yield a.recv(100))

    def sender(task=None):
        yield b.sendall(b"hello")

    t = Task(reader)
    Task(sender).value(10)
    assert t.value(10) == b"hello"
    a.close()
    b.close()


def test_recv_without_yield_does_not_hang_interpreter_exit():
    code = textwrap.dedent("""
        import socket, pycos
        a, b = socket.socketpair()
        a = pycos.AsyncSocket(a)
        def forgetful(task=None):
            a.recv(100)
            return 1
            yield
        t = pycos.Task(forgetful)
        print(type(t.value(10).exception).__name__, flush=True)
    """)
    proc = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=30, universal_newlines=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "MissingYieldError"
    assert "internal error" not in proc.stderr and "AttributeError" not in proc.stderr


def test_sleep_without_yield_does_not_cut_the_next_wait(vsched):
    def forgetful(task=None):
        task.sleep(0.05)        # no yield
        try:
            yield task.receive(timeout=0.3)
        except MissingYieldError as e:
            err = str(e)
        t0 = vsched.now()
        got = yield task.receive(timeout=0.3, alarm_value="alarm")
        return err, got, vsched.now() - t0

    err, got, waited = Task(forgetful).value(10)
    assert "called task.sleep() without 'yield' and then task.receive()" in err
    assert got == "alarm"
    assert waited == pytest.approx(0.3, abs=1e-6)     # not 0.05: the sleep's timer is gone
    assert vsched.statistics()["timeouts"] == 0


def test_contended_lock_acquired_without_yield_is_never_taken_in_the_tasks_name(sched):
    lock = pycos.Lock()
    seen = {}

    def holder(task=None):
        yield lock.acquire()
        yield task.sleep(0.05)
        lock.release()

    def forgetful(task=None):
        r = lock.acquire()      # no yield: contended, parks the task
        seen["r"] = repr(r)
        yield task.sleep(0.2)
        return "slept"

    def later(task=None):
        yield task.sleep(0.1)
        ok = yield lock.acquire()
        owner = lock.statistics()["owner"]
        lock.release()
        return ok, owner

    h = Task(holder)
    f = Task(forgetful)
    l2 = Task(later)
    exc = _failure(f.value(10))
    assert type(exc) is MissingYieldError
    assert "called lock.acquire() without 'yield' and then task.sleep()" in str(exc)
    assert "without 'yield'" in seen["r"]
    h.value(10)
    assert l2.value(10) == (True, l2)
    assert lock.statistics() == {"locked": False, "owner": None, "waiters": 0}


def test_completed_call_without_yield_then_return_keeps_the_count_exact(sched):
    def forgetful(task=None):
        task.sleep(0)           # completes at once, still must be yielded
        return 1
        yield

    exc = _failure(Task(forgetful).value(10))
    assert type(exc) is MissingYieldError and "task.sleep()" in str(exc)
    assert sched.statistics()["non_daemon"] == 0


def test_receive_without_yield_then_another_yield(run):
    def forgetful(task=None):
        task.send("queued")
        msg = task.receive()     # a message is queued: completes at once
        try:
            yield 42
        except MissingYieldError as e:
            return repr(msg), str(e)

    shown, err = run(forgetful)
    assert "without 'yield'" in shown
    assert "called task.receive() without 'yield' and then yielded 42" in err


def test_forgotten_call_detected_at_the_yield_and_task_can_go_on(run):
    def forgetful(task=None):
        task.sleep(5)
        try:
            yield "something else"
        except MissingYieldError as e:
            first = str(e)
        second = yield task.sleep(0.01, alarm_value="slept")
        return first, second

    first, second = run(forgetful)
    assert "called task.sleep() without 'yield' and then yielded 'something else'" in first
    assert second == "slept"


def test_forgotten_call_in_a_sub_call_is_raised_in_the_caller(run):
    def helper(task):
        task.sleep(5)           # forgotten, then the helper returns
        return "helper's value"
        yield

    def main(task=None):
        try:
            yield helper(task)
        except MissingYieldError as e:
            return str(e)

    err = run(main)
    assert "called task.sleep() without 'yield' in helper() and then returned" in err


def test_the_park_value_explains_itself(run):
    def f(task=None):
        r = task.sleep(1)
        text = repr(r)
        try:
            yield
        except MissingYieldError:
            pass
        return text

    assert run(f) == "<pycos PARK: the result of a pycos call made without 'yield'>"


def test_finish_without_yield_is_withdrawn(run):
    def sleeper(task=None):
        yield task.sleep(0.05)
        return "woke"

    def forgetful(task=None):
        other = Task(sleeper)
        other.finish()          # no yield: parks waiting for other
        try:
            yield task.sleep(0.01)
        except MissingYieldError as e:
            err = str(e)
        return err, (yield other.finish())

    err, value = run(forgetful)
    assert "called sleeper/" in err and ".finish() without 'yield'" in err
    assert value == "woke"


# ---- wrong things yielded ----------------------------------------------------------------

def test_yielding_a_coroutine_is_a_type_error_pointing_to_aio(run):
    async def fetch():
        return 1

    def f(task=None):
        try:
            yield fetch()
        except TypeError as e:
            return str(e)

    err = run(f)
    assert "yielded a coroutine" in err and "fetch" in err
    assert "yield pycos.aio.wait(" in err and "docs/asyncio.md" in err
    # (the coroutine was closed: no "never awaited" warning, which would fail the test)


def test_yielding_another_awaitable_is_a_type_error(run):
    class Awaitable(object):
        def __await__(self):
            return iter(())

    def f(task=None):
        try:
            yield Awaitable()
        except TypeError as e:
            return str(e)

    err = run(f)
    assert "yielded an awaitable" in err and "pycos.aio.wait(" in err


def test_async_def_target_is_a_clear_type_error(sched):
    async def main():
        return 1

    with pytest.raises(TypeError, match=r"'async def' function: a task's target must be a "
                                        r"generator function.*pycos\.aio\.wait"):
        Task(main)

    def gen(x, task=None):
        yield
        return x

    with pytest.raises(TypeError, match=r"not a generator object: write Task\(gen, arg"):
        Task(gen(1))


def test_yielding_an_uncalled_function_is_a_type_error(run):
    def helper(task):
        yield task.sleep(0)

    def f(task=None):
        errors = []
        for thing in (helper, task.sleep, len):
            try:
                yield thing
            except TypeError as e:
                errors.append(str(e))
        return errors

    errors = run(f)
    assert "yielded the function" in errors[0] and "'yield helper(...)'" in errors[0]
    assert "'yield task.sleep(...)'" in errors[1]
    assert "'yield len(...)'" in errors[2]


def test_plain_values_still_come_back(run):
    class Thing(object):
        pass

    thing = Thing()

    def f(task=None):
        got = []
        for v in (None, 1, "s", b"b", (1, 2), [3], {"k": 4}, thing, 2.5):
            got.append((yield v))
        return got

    assert run(f) == [None, 1, "s", b"b", (1, 2), [3], {"k": 4}, thing, 2.5]


def test_yielding_a_list_of_calls_is_a_type_error(run):
    def sleeper(task=None):
        yield task.sleep(0.01)
        return "s"

    def f(task=None):
        errors = []
        try:
            yield [task.sleep(0.01)]
        except TypeError as e:
            errors.append(str(e))
        t1, t2 = Task(sleeper), Task(sleeper)
        try:
            yield [t1.finish(), t2.finish()]
        except TypeError as e:
            errors.append(str(e))
        return errors, (yield t1.finish()), (yield t2.finish())

    errors, v1, v2 = run(f)
    assert "yielded a list of pycos calls" in errors[0]
    assert "one call per 'yield'" in errors[0]
    assert ".finish() without 'yield' and then" in errors[1]
    assert "one call per 'yield'" in errors[1]
    assert (v1, v2) == ("s", "s")


# ---- with lock: ----------------------------------------------------------------------------

@pytest.mark.parametrize("make", [pycos.Lock, pycos.RLock, pycos.Semaphore, pycos.Condition],
                         ids=["Lock", "RLock", "Semaphore", "Condition"])
def test_with_lock_says_how_to_use_locks_in_tasks(run, make):
    prim = make()

    def f(task=None):
        try:
            with prim:
                pass
        except TypeError as e:
            return str(e)
        yield

    err = run(f)
    name = make.__name__.lower()
    assert "'with %s:' cannot be used" % name in err
    assert "yield %s.acquire()" % name in err and "finally:" in err
    assert "%s.release()" % name in err


# ---- tracebacks ------------------------------------------------------------------------------

def test_task_tracebacks_leave_the_kernel_out(run):
    def inner(task):
        yield task.sleep(0)
        raise ValueError("deep")

    def outer(task=None):
        try:
            yield inner(task)
        except ValueError:
            return traceback.format_exc()

    text = run(outer)
    assert "_run_ready" not in text and "scheduler.py" not in text, text
    assert "in outer" in text and "in inner" in text

    def dies(task=None):
        yield inner(task)

    st = Task(dies).value(10)
    assert "_run_ready" not in st.value and "scheduler.py" not in st.value, st.value
    assert "in dies" in st.value and "in inner" in st.value


def test_missing_yield_traceback_points_at_the_users_line(run):
    def f(task=None):
        task.sleep(1)
        yield task.sleep(0.01)  # the line the error points at

    st = Task(f).value(10)
    assert st.type is MissingYieldError
    lines = [line.strip() for line in st.value.strip().splitlines()]
    at = lines.index("yield task.sleep(0.01)  # the line the error points at")
    assert lines[at - 1].startswith('File "%s"' % (__file__,)) and lines[at - 1].endswith("in f")
    assert lines[-1].startswith("pycos.core.scheduler.MissingYieldError: task f/")
    assert "pycos/core" not in st.value.replace("\\", "/"), st.value


# ---- same-task pending read ------------------------------------------------------------------

def test_same_task_pending_read_is_the_forgotten_yield(sched):
    a, b = socket.socketpair()
    a, b = pycos.AsyncSocket(a), pycos.AsyncSocket(b)

    def forgetful(task=None):
        a.recv(10)              # no yield: pending
        return (yield a.recv(10))

    exc = _failure(Task(forgetful).value(10))
    assert type(exc) is MissingYieldError
    assert "called a read" in str(exc)
    a.close()
    b.close()


def test_same_task_pending_read_is_not_called_another_tasks(sched):
    a, b = socket.socketpair()
    a, b = pycos.AsyncSocket(a), pycos.AsyncSocket(b)

    def forgetful(task=None):
        a.recv(10)
        try:
            yield a.recv(10)
        except Exception as e:
            return "%s: %s" % (type(e).__name__, e)

    try:
        err = Task(forgetful).value(10)
        assert err.startswith("MissingYieldError") and "another task" not in err, err
    finally:
        a.close()
        b.close()


# ---- calls only tasks can make, made from a thread ------------------------------------------

def test_sleep_from_a_thread_names_itself(sched, caplog):
    def waiter(task=None):
        yield task.sleep(0.5)

    t = Task(waiter)
    assert t.sleep(1) == -1
    assert t.suspend(1) == -1
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("task.sleep() must be called in a task") and "time.sleep()" in m
               for m in messages), messages
    assert any(m.startswith("task.suspend() must be called in a task") for m in messages)
    t.resume()
    t.value(10)


def test_channel_deliver_from_a_thread_raises(sched):
    ch = pycos.Channel("deliver-from-thread")
    with pytest.raises(RuntimeError, match=r"channel\.deliver\(\) must be used in a task"):
        ch.deliver("x")
    with pytest.raises(RuntimeError, match=r"condition\.wait\(\) must be used in a task"):
        pycos.Condition().wait()
    ch.close()


def test_channel_deliver_still_works_in_tasks(run):
    ch = pycos.Channel("deliver-in-task")

    def sub(task=None):
        yield ch.subscribe(task)
        return (yield task.receive())

    def pub(task=None):
        s = Task(sub)
        n = yield ch.deliver("hello", timeout=5, n=1)
        return n, (yield s.finish()), (yield ch.deliver("nobody"))

    assert run(pub) == (1, "hello", 0)
    ch.close()


def test_join_with_a_number_warns(sched):
    with pytest.warns(UserWarning, match=r"join\(timeout=1\) for a timeout"):
        assert sched.join(1) is True
    assert sched.join(timeout=1) is True
    assert sched.join(True, 1) is True
