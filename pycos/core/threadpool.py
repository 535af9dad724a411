"""AsyncThreadPool and AsyncDBCursor: blocking calls without blocking tasks.

Some work cannot be written as a task -- a C library call, a DB-API driver,
``hashlib`` over a large file.  ``yield pool.async_task(fn, *args)`` runs
``fn(*args)`` on one of the pool's threads and parks the task; the worker
posts the outcome back to the scheduler (through the same thread-safe inbox
as ``Task.send``), where the task is woken with the return value or has the
exception raised at its ``yield``.

Correctness points:

* The park is numbered (``task._wid``): if the task is terminated or thrown
  at while the call runs, the late result is dropped rather than waking a
  later, unrelated wait.
* While a call is in flight the scheduler's ``_external`` count is non-zero,
  so virtual time does not jump over real work done by threads.
* ``terminate()`` lets queued calls finish, then stops and joins every worker
  thread: nothing is left running.

``AsyncDBCursor`` wraps a DB-API cursor: ``execute``/``executemany``/
``callproc`` run on the pool, one at a time per cursor (a pycos Lock keeps
them in order), and every other attribute is the cursor's.  Remember that
many drivers tie a connection to the thread that made it (``sqlite3`` needs
``check_same_thread=False`` to be used from pool threads).
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Callable, Dict, Generator, List

from pycos.core.primitives import Lock
from pycos.core.scheduler import PARKED
from pycos.core.waitqueue import current_task
from pycos.hints import Yieldable

__all__ = ["AsyncThreadPool", "AsyncDBCursor"]

_STOP = object()


class AsyncThreadPool(object):
    """``num_threads`` worker threads for blocking calls made by tasks.
    Guide: docs/threadpool.md."""

    _seq = 0
    _queue: queue.Queue[Any]
    _threads: List[threading.Thread]

    def __init__(self, num_threads: int) -> None:
        if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
            raise ValueError("num_threads must be a positive int, not %r" % (num_threads,))
        self._num_threads = num_threads
        self._queue = queue.Queue()
        self._closed = False
        AsyncThreadPool._seq += 1
        self._threads = [threading.Thread(target=self._worker, daemon=True,
                                          name="pycos-pool-%d-%d" % (AsyncThreadPool._seq, i))
                         for i in range(num_threads)]
        for t in self._threads:
            t.start()

    def _worker(self) -> None:
        get = self._queue.get
        done = self._queue.task_done
        while True:
            item = get()
            if item is _STOP:
                done()
                return
            sched, task, wid, target, args, kwargs = item
            try:
                value = target(*args, **kwargs)
            except BaseException as e:
                ok, value = False, e
            else:
                ok = True
            if not sched._post(self._complete, sched, task, wid, ok, value):
                pass    # the scheduler has stopped; nobody is waiting
            del item, task, value
            done()

    @staticmethod
    def _complete(sched, task, wid, ok, value):
        sched._external -= 1
        if ok:
            sched._unpark(task, value, wid)
        else:
            sched._unpark_exc(task, value, wid)

    def async_task(self, target: Callable[..., Any], *args: Any, **kwargs: Any) -> Yieldable:
        """[y] Run ``target(*args, **kwargs)`` on a worker thread; the task
        gets its return value, or its exception is raised at the yield.
        (``async_task(target, args=(...), kwargs={...})`` also works.)"""
        if not callable(target):
            raise TypeError("async_task target %r is not callable" % (target,))
        if self._closed:
            raise RuntimeError("thread pool has been terminated")
        task = current_task("pool.async_task()")
        if not args and kwargs and set(kwargs) <= {"args", "kwargs"}:
            args = tuple(kwargs.get("args", ()))
            kwargs = dict(kwargs.get("kwargs", {}))
        sched = task._sched
        rc = sched._park(task, None, None, None)
        if task._state == PARKED:   # (not refused because an exception is due)
            sched._external += 1
            self._queue.put((sched, task, task._wid, target, args, kwargs))
        return rc

    def join(self) -> None:
        """[thread] Wait until every submitted call has finished."""
        self._queue.join()

    def terminate(self) -> None:
        """[thread] Let submitted calls finish, then stop the workers."""
        if self._closed:
            return
        self._closed = True
        for _ in self._threads:
            self._queue.put(_STOP)
        for t in self._threads:
            if t is not threading.current_thread():
                t.join()

    def statistics(self) -> Dict[str, Any]:
        """``threads`` (alive), ``queued`` calls, ``closed``."""
        return {"threads": sum(t.is_alive() for t in self._threads),
                "queued": self._queue.qsize(), "closed": self._closed}


class AsyncDBCursor(object):
    """A DB-API cursor whose ``execute``/``executemany``/``callproc`` run on
    ``pool`` (one at a time); other attributes pass through."""

    def __init__(self, pool: AsyncThreadPool, cursor: Any) -> None:
        if not isinstance(pool, AsyncThreadPool):
            raise TypeError("AsyncDBCursor needs an AsyncThreadPool, not %r" % (pool,))
        self._pool = pool
        self._cursor = cursor
        self._lock = Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)

    def _run(self, fn: Callable[..., Any], *args: Any) -> Generator[Any, Any, Any]:
        yield self._lock.acquire()
        try:
            result = yield self._pool.async_task(fn, *args)
        finally:
            self._lock.release()
        return result

    def execute(self, query: str, args: Any = None) -> Yieldable:
        """[y] ``cursor.execute(query[, args])`` on the pool."""
        if args is None:
            return self._run(self._cursor.execute, query)
        return self._run(self._cursor.execute, query, args)

    def executemany(self, query: str, args: Any) -> Yieldable:
        """[y] ``cursor.executemany(query, args)`` on the pool."""
        return self._run(self._cursor.executemany, query, args)

    def callproc(self, proc: str, args: Any = ()) -> Yieldable:
        """[y] ``cursor.callproc(proc, args)`` on the pool."""
        return self._run(self._cursor.callproc, proc, args)
