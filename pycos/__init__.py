"""pycos: concurrent programming with tasks -- generator functions in which
every blocking call is written ``x = yield obj.call(...)``.

    import pycos

    def hello(n, task=None):
        yield task.sleep(0.1)
        return n * 2

    t = pycos.Task(hello, 21)
    print(t.value())          # 42

A task runs until it yields, so tasks need no locks to share data.  The
scheduler (:class:`Pycos`) is created on first use and runs in its own thread;
the main program creates tasks and waits for them (``task.value()``,
``Pycos().join()``/``finish()``).

Docstrings mark each call with where it may be made: [y] in a task, as
``value = yield call(...)``; [y?] a plain call a task may also yield;
[thread] from a plain thread, never from a task.  The guide is docs/index.md
(``make docs`` builds docs/ as a website), which explains the marks; type
hints: docs/typing.md and :mod:`pycos.hints`.
"""

import sys as _sys
from typing import TYPE_CHECKING as _TYPE_CHECKING

from pycos import config
from pycos.core.log import logger, Logger
from pycos.core.support import (HotSwapException, Location, MonitorStatus, Singleton, Struct,
                                deserialize, serialize, unserialize)
from pycos.core.scheduler import MissingYieldError, Pycos
from pycos.core.task import Task
from pycos.core.primitives import BoundedSemaphore, Condition, Event, Lock, RLock, Semaphore
from pycos.core.channel import Channel
from pycos.core.messages import CategorizeMessages
from pycos.core.threadpool import AsyncDBCursor, AsyncThreadPool
from pycos.io.socket import AsyncSocket

__version__ = "5.0.0.dev0"

# pycos.MsgTimeout and pycos.PickleProtocolVersion (4.x names) are
# pycos.config's settings, read and written through (see pycos.config)
_sys.modules[__name__].__class__ = config._PycosModule
if _TYPE_CHECKING:
    # (what type checkers see of those two properties of the module)
    MsgTimeout: float
    PickleProtocolVersion: int

__all__ = [
    "Pycos", "Task", "Lock", "RLock", "Condition", "Event", "Semaphore", "BoundedSemaphore",
    "Channel", "CategorizeMessages", "AsyncThreadPool", "AsyncDBCursor", "AsyncSocket",
    "MonitorStatus", "HotSwapException", "Location", "Singleton", "Struct",
    "serialize", "deserialize", "unserialize", "logger", "Logger", "config",
    "MsgTimeout", "PickleProtocolVersion", "MissingYieldError",
]
