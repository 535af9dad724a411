"""AsyncThreadPool and AsyncDBCursor (against real sqlite3 files)."""
import sqlite3
import threading

import pytest

from pycos import AsyncDBCursor, AsyncThreadPool, Task


@pytest.fixture
def pool():
    p = AsyncThreadPool(4)
    yield p
    p.terminate()


def test_values_and_exceptions_come_back(run, pool):
    def work(x, delay=0.0):
        if delay:
            threading.Event().wait(delay)
        if x < 0:
            raise ValueError("negative")
        return x * 2, threading.current_thread().name

    def main(task=None):
        v, tname = yield pool.async_task(work, 21)
        try:
            yield pool.async_task(work, -1)
        except ValueError as e:
            err = str(e)
        kw = yield pool.async_task(work, args=(5,), kwargs={"delay": 0.01})
        return v, tname.startswith("pycos-pool-"), err, kw[0]

    assert run(main) == (42, True, "negative", 10)


def test_many_tasks_share_the_pool(run, pool):
    def square(x):
        return x * x

    def client(x, task=None):
        return (yield pool.async_task(square, x))

    def main(task=None):
        ts = [Task(client, i) for i in range(200)]
        out = []
        for t in ts:
            out.append((yield t.finish()))
        return out

    assert run(main) == [i * i for i in range(200)]
    pool.join()


def test_terminated_task_ignores_late_result(sched, pool):
    release = threading.Event()

    def blocker():
        release.wait(10)
        return "late"

    def victim(task=None):
        try:
            yield pool.async_task(blocker)
        finally:
            pass

    def main(task=None):
        v = Task(victim)
        yield task.sleep(0.01)
        v.terminate()
        yield v.finish()
        # the task is gone; the late result must not disturb this wait
        release.set()
        r = yield task.sleep(0.05, alarm_value="quiet")
        return r

    assert Task(main).value(10) == "quiet"
    pool.join()


def test_bad_arguments(sched):
    with pytest.raises(ValueError):
        AsyncThreadPool(0)
    p = AsyncThreadPool(1)
    p.terminate()

    def main(task=None):
        with pytest.raises(RuntimeError):
            p.async_task(len, "x")
        with pytest.raises(TypeError):
            AsyncDBCursor(object(), None)
        yield
        return "ok"

    assert Task(main).value(5) == "ok"


@pytest.mark.timeout(60)
def test_sqlite_from_several_tasks(run, pool, tmp_path):
    path = str(tmp_path / "db.sqlite")
    setup = sqlite3.connect(path)
    setup.execute("create table t (writer integer, n integer)")
    setup.commit()
    setup.close()

    def writer(k, task=None):
        # one connection per task, used from pool threads one call at a time;
        # autocommit, so no connection holds the write lock while its next
        # call waits for a pool thread (that would deadlock the writers)
        conn = sqlite3.connect(path, timeout=30, check_same_thread=False,
                               isolation_level=None)
        cur = AsyncDBCursor(pool, conn.cursor())
        try:
            for i in range(20):
                yield cur.execute("insert into t values (?, ?)", (k, i))
            yield cur.executemany("insert into t values (?, ?)",
                                  [(k, 100 + i) for i in range(5)])
            yield pool.async_task(conn.commit)
            yield cur.execute("select count(*) from t where writer = ?", (k,))
            (count,) = cur.fetchone()     # delegated to the real cursor
            return count
        finally:
            yield pool.async_task(conn.close)

    def main(task=None):
        ws = [Task(writer, k) for k in range(5)]
        out = []
        for w in ws:
            out.append((yield w.finish()))
        return out

    assert run(main) == [25] * 5
    check = sqlite3.connect(path)
    rows = check.execute("select writer, n from t order by rowid").fetchall()
    check.close()
    assert len(rows) == 125
    for k in range(5):
        ns = [n for w, n in rows if w == k]
        assert ns == list(range(20)) + list(range(100, 105))


def test_cursor_serialises_calls(run, pool):
    active = []
    overlap = []

    class SlowCursor(object):
        def execute(self, q, args=None):
            active.append(q)
            if len(active) > 1:
                overlap.append(q)
            threading.Event().wait(0.005)
            active.remove(q)
            return q

        def callproc(self, proc, args=()):
            return (proc, args)

    def user(cur, q, task=None):
        return (yield cur.execute(q))

    def main(task=None):
        cur = AsyncDBCursor(pool, SlowCursor())
        ts = [Task(user, cur, "q%d" % i) for i in range(6)]
        out = []
        for t in ts:
            out.append((yield t.finish()))
        out.append((yield cur.callproc("p", (1,))))
        return out

    assert run(main) == ["q%d" % i for i in range(6)] + [("p", (1,))]
    assert overlap == []


def test_sqlite_errors_come_back_and_cursor_survives(run, pool, tmp_path):
    path = str(tmp_path / "err.sqlite")

    def main(task=None):
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        cur = AsyncDBCursor(pool, conn.cursor())
        try:
            yield cur.execute("create table t (x integer primary key)")
            yield cur.execute("insert into t values (?)", (1,))
            errors = []
            try:
                yield cur.execute("select * from no_such_table")
            except sqlite3.OperationalError as e:
                errors.append("no such table" in str(e))
            try:
                yield cur.execute("insert into t values (?)", (1,))
            except sqlite3.IntegrityError:
                errors.append(True)
            yield cur.execute("select x from t")
            return errors, cur.fetchall()
        finally:
            yield pool.async_task(conn.close)

    assert run(main) == ([True, True], [(1,)])
