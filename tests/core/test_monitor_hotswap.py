"""MonitorStatus in every case, and every hot-swap rule."""
import pytest

from pycos import HotSwapException, MonitorStatus, Task


def _observer(task=None):
    """Receive one MonitorStatus and return (info, type, value)."""
    st = yield task.receive()
    assert isinstance(st, MonitorStatus)
    return st.info, st.type, st.value


# ---- monitor ------------------------------------------------------------------

def test_monitor_normal_exit(vrun):
    def observed(task=None):
        yield task.sleep(1)
        return {"result": 1}

    def main(task=None):
        o = Task(observed)
        m = Task(_observer)
        assert (yield m.monitor(o)) == 0
        return o, (yield m.finish())

    o, (info, typ, value) = vrun(main)
    assert info is o and typ is StopIteration and value == {"result": 1}


def test_monitor_exception(vrun):
    def observed(task=None):
        yield task.sleep(1)
        raise KeyError("lost")

    def main(task=None):
        o = Task(observed)
        m = Task(_observer)
        assert o.notify(m) == 0          # the reverse form
        return o, (yield m.finish()), (yield o.finish())

    o, (info, typ, value), result = vrun(main)
    assert info is o and typ is KeyError
    assert isinstance(value, str) and "KeyError: 'lost'" in value and "Traceback" in value
    assert isinstance(result, MonitorStatus) and result.type is KeyError


def test_monitor_terminated_gives_current_value(vrun):
    def observed(task=None):
        yield "current"
        yield task.sleep(100)

    def main(task=None):
        o = Task(observed)
        m = Task(_observer)
        yield m.monitor(o)
        yield task.sleep(1)
        o.terminate()
        return o, (yield m.finish()), (yield o.finish())

    o, (info, typ, value), result = vrun(main)
    assert (info, typ, value) == (o, StopIteration, "current")
    assert result == "current"


def test_monitor_invalid(run):
    def quick():
        yield

    def main(task=None):
        q = Task(quick)
        yield q.finish()
        return (yield task.monitor(q)), (yield task.monitor("x")), q.notify(task), \
            q.notify("x")

    assert run(main) == (-1, -1, -1, -1)


def test_several_monitors(vrun):
    def observed(task=None):
        yield task.sleep(1)
        return 7

    def main(task=None):
        o = Task(observed)
        ms = [Task(_observer) for _ in range(3)]
        for m in ms:
            yield m.monitor(o)
        out = []
        for m in ms:
            out.append((yield m.finish())[2])
        return out

    assert vrun(main) == [7, 7, 7]


# ---- hot swap --------------------------------------------------------------------

def _new_body(tag, task=None):
    msgs = []
    while True:
        m = yield task.receive()
        if m == "stop":
            return (tag, task.name, msgs)
        msgs.append(m)


def test_hot_swap_accepted_keeps_messages(vrun):
    def old(task=None):
        task.hot_swappable(True)
        while True:
            yield task.sleep(100)

    def main(task=None):
        t = Task(old)
        yield task.sleep(1)
        t.send("kept 1")
        t.send("kept 2")
        assert t.hot_swap(_new_body, "new") == 0
        t.send("stop")
        return (yield t.finish())

    assert vrun(main) == ("new", "_new_body", ["kept 1", "kept 2"])


def test_hot_swap_reraised_accepts_and_old_closed(vrun):
    log = []

    def old(task=None):
        task.hot_swappable(True)
        try:
            yield task.receive()
        except HotSwapException as e:
            log.append(type(e.args[0]).__name__)
            raise
        finally:
            log.append("old finally")

    def main(task=None):
        t = Task(old)
        yield task.sleep(1)
        t.hot_swap(_new_body, "swapped")
        yield task.sleep(1)
        t.send("stop")
        return (yield t.finish())

    assert vrun(main) == ("swapped", "_new_body", [])
    assert log == ["generator", "old finally"]


def test_hot_swap_refused_by_catching(vrun):
    def old(task=None):
        task.hot_swappable(True)
        refused = 0
        while True:
            try:
                m = yield task.receive()
            except HotSwapException:
                refused += 1
                continue
            if m == "stop":
                return ("old", refused)

    def main(task=None):
        t = Task(old)
        yield task.sleep(1)
        assert t.hot_swap(_new_body, "new") == 0
        yield task.sleep(1)
        t.send("stop")
        return (yield t.finish())

    assert vrun(main) == ("old", 1)


def test_hot_swap_not_swappable_is_deferred_until_allowed(vrun):
    def old(task=None):
        yield task.sleep(5)             # not swappable yet: request waits
        task.hot_swappable(True)        # now it is applied at the next yield
        yield task.sleep(100)
        return "old finished"

    def main(task=None):
        t = Task(old)
        yield task.sleep(1)
        assert t.hot_swap(_new_body, "late") == 0
        yield task.sleep(1)
        assert t.name == "old"          # still the old generator
        t.send("stop")
        return (yield t.finish())

    assert vrun(main) == ("late", "_new_body", [])


def test_hot_swap_deferred_while_in_subcall(vrun):
    log = []

    def sub(task):
        yield task.sleep(10)
        log.append("sub finished")
        return "sub value"

    def old(task=None):
        task.hot_swappable(True)
        v = yield sub(task)            # the swap must wait for this to return
        log.append("back at top: " + v)
        yield task.sleep(100)

    def main(task=None):
        t = Task(old)
        yield task.sleep(1)
        t.send("queued")
        assert t.hot_swap(_new_body, "after sub") == 0
        yield task.sleep(20)
        t.send("stop")
        return (yield t.finish())

    assert vrun(main) == ("after sub", "_new_body", ["queued"])
    # the swap is thrown in where the sub-call returns to the top level
    assert log == ["sub finished"]


def test_hot_swap_never_swappable(vrun):
    def old(task=None):
        m = yield task.receive()
        return ("old", m)

    def main(task=None):
        t = Task(old)
        yield task.sleep(1)
        assert t.hot_swap(_new_body, "x") == 0
        t.send("stop")
        return (yield t.finish())

    assert vrun(main) == ("old", "stop")


def test_hot_swap_invalid(run):
    def quick():
        yield

    def not_gen(task=None):
        return 1

    def main(task=None):
        q = Task(quick)
        r1 = q.hot_swap(not_gen)
        yield q.finish()
        r2 = q.hot_swap(_new_body, "x")
        return r1, r2

    assert run(main) == (-1, -1)


def test_hot_swappable_only_by_self(run):
    def other(task=None):
        yield task.sleep(0)

    def main(task=None):
        o = Task(other)
        rc = o.hot_swappable(True)
        yield o.finish()
        return rc

    assert run(main) == -1


def test_hot_swap_from_thread(sched):
    import threading
    ready = threading.Event()

    def old(task=None):
        task.hot_swappable(True)
        ready.set()
        while True:
            yield task.sleep(0.01)

    t = Task(old)
    assert ready.wait(5)
    assert t.hot_swap(_new_body, "thread") == 0
    # a message sent after the swap request is read by the new generator
    t.send("m")
    t.send("stop")
    assert t.value(5) == ("thread", "_new_body", ["m"])


@pytest.mark.parametrize("swappable", [True, False])
def test_monitor_sees_swapped_task_end(vrun, swappable):
    def old(task=None):
        task.hot_swappable(swappable)
        yield task.sleep(100)
        return "old"

    def new(task=None):
        yield
        return "new"

    def main(task=None):
        t = Task(old)
        m = Task(_observer)
        yield m.monitor(t)
        yield task.sleep(1)
        t.hot_swap(new)
        if not swappable:
            yield task.sleep(200)
        return (yield m.finish())[1:]

    assert vrun(main) == (StopIteration, "new" if swappable else "old")


def test_monitor_uncaught_thrown_exception(vrun):
    def observed(task=None):
        yield task.sleep(100)

    def main(task=None):
        o = Task(observed)
        m = Task(_observer)
        yield m.monitor(o)
        yield task.sleep(1)
        assert o.throw(ValueError("thrown in")) == 0
        return o, (yield m.finish())

    o, (info, typ, value) = vrun(main)
    assert info is o and typ is ValueError and "ValueError: thrown in" in value


def test_monitor_terminated_in_subcall(vrun):
    log = []

    def sub(task):
        try:
            yield task.sleep(100)
        finally:
            log.append("sub finally")

    def observed(task=None):
        try:
            yield "top value"
            yield sub(task)
        finally:
            log.append("top finally")

    def main(task=None):
        o = Task(observed)
        m = Task(_observer)
        yield m.monitor(o)
        yield task.sleep(1)
        o.terminate()
        return o, (yield m.finish())

    o, (info, typ, _value) = vrun(main)
    assert info is o and typ is StopIteration
    assert log == ["sub finally", "top finally"]


def test_dead_monitor_does_not_disturb(vrun):
    def observed(task=None):
        yield task.sleep(2)
        return "ok"

    def short_lived(task=None):
        yield task.sleep(1)

    def main(task=None):
        o = Task(observed)
        m = Task(short_lived)
        live = Task(_observer)
        yield m.monitor(o)
        yield live.monitor(o)
        yield m.finish()
        return (yield o.finish()), (yield live.finish())[1:]

    assert vrun(main) == ("ok", (StopIteration, "ok"))
