"""A task's failure is something a program can act on.

4.x's contract stays: ``value()``/``finish()`` of a task that died of an
uncaught exception return a MonitorStatus (type = the exception class, value
= the traceback text).  The status also holds the exception object itself,
``reraise()`` raises it, and the failure is logged with ``exc_info`` so that
handlers which look at exceptions (Sentry-like, ``logging.Formatter``
subclasses...) get it.
"""
import logging
import pickle
import traceback

import pytest

import pycos
from pycos import MonitorStatus, Task

pytestmark = pytest.mark.timeout(60)


class Boom(Exception):
    pass


class TwoArgs(Exception):
    """An exception that does not come back from pickle (its args are not
    its constructor's)."""

    def __init__(self, a, b):
        Exception.__init__(self, "%s-%s" % (a, b))


def test_value_is_a_monitor_status_holding_the_exception_object(run, caplog):
    raised = Boom("the cause")

    def fails(task=None):
        yield task.sleep(0)
        raise raised

    t = Task(fails)
    st = t.value(10)
    assert isinstance(st, MonitorStatus)                 # 4.x's contract
    assert st.info is t and st.type is Boom
    assert "Boom: the cause" in st.value and "Traceback" in st.value
    assert st.exception is raised
    assert st.failed()

    def waiter(task=None):
        return (yield t.finish())

    assert run(waiter) is st


def test_reraise_raises_the_tasks_exception_with_its_traceback(sched):
    def fails(task=None):
        yield task.sleep(0)
        raise Boom("from the task")     # the line the traceback shows

    st = Task(fails).value(10)
    with pytest.raises(Boom, match="from the task") as info:
        st.reraise()
    text = "".join(traceback.format_exception(info.type, info.value, info.tb))
    assert 'raise Boom("from the task")     # the line the traceback shows' in text
    assert "in fails" in text and "_run_ready" not in text


def test_reraise_is_a_no_op_for_normal_and_terminated_ends(sched):
    def ok(task=None):
        yield task.sleep(0)
        return 5

    def watcher(task=None):
        yield task.monitor(Task(ok))    # (monitored before it can run)
        return (yield task.receive())

    st = Task(watcher).value(10)
    assert st.type is StopIteration and st.value == 5 and st.exception is None
    assert not st.failed() and st.reraise() is None

    def forever(task=None):
        yield task.sleep()

    def terminator(task=None):
        f = Task(forever)
        yield task.monitor(f)
        f.terminate()
        return (yield task.receive())

    st = Task(terminator).value(10)
    assert st.type is StopIteration and st.reraise() is None


def test_monitors_get_the_exception_object_too(run):
    raised = Boom("watched")

    def fails(task=None):
        yield task.sleep(0.01)
        raise raised

    def watcher(task=None):
        t = Task(fails)
        yield task.monitor(t)
        st = yield task.receive()
        return st.type, st.exception

    assert run(watcher) == (Boom, raised)


def test_failure_is_logged_with_exc_info(run, caplog):
    raised = Boom("logged")

    def fails(task=None):
        yield task.sleep(0)
        raise raised

    with caplog.at_level(logging.WARNING, logger="pycos"):
        Task(fails).value(10)
    records = [r for r in caplog.records if r.getMessage().startswith("uncaught exception")]
    assert len(records) == 1, caplog.records
    rec = records[0]
    assert rec.name == "pycos" and rec.levelno == logging.WARNING
    assert rec.exc_info is not None and rec.exc_info[1] is raised
    assert rec.exc_info[0] is Boom and rec.exc_info[2] is not None
    assert "Boom: logged" in caplog.text and "in fails" in caplog.text


def test_exception_travels_with_the_status_when_it_pickles(sched):
    def fails(task=None):
        yield task.sleep(0)
        raise Boom("pickled")

    st = Task(fails).value(10)
    state = st.__getstate__()
    copy = MonitorStatus.__new__(MonitorStatus)
    copy.__setstate__(state)
    assert copy.type is Boom and copy.value == st.value
    assert type(copy.exception) is Boom and copy.exception.args == ("pickled",)
    with pytest.raises(Boom, match="pickled"):
        copy.reraise()

    def fails2(task=None):
        yield task.sleep(0)
        raise TwoArgs(1, 2)

    st = Task(fails2).value(10)
    copy = pickle.loads(pickle.dumps(MonitorStatus(None, st.type, st.value, st.exception)))
    assert copy.type is TwoArgs and copy.exception is None
    with pytest.raises(RuntimeError, match=r"(?s)failed with TwoArgs:.*TwoArgs: 1-2"):
        copy.reraise()


def test_4x_three_field_statuses_still_work():
    st = MonitorStatus("info", KeyError, "text")
    assert st.exception is None and st.failed()
    old = MonitorStatus.__new__(MonitorStatus)
    old.__setstate__(("info", KeyError, "text"))       # a 4.x-shaped state
    assert (old.info, old.type, old.value, old.exception) == ("info", KeyError, "text", None)
    assert repr(st) == "MonitorStatus('info', KeyError, 'text')"
    with pytest.raises(RuntimeError, match="failed with KeyError"):
        st.reraise()
    assert pycos.MonitorStatus is MonitorStatus
