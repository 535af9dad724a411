"""The pycos core: scheduler, tasks, primitives, channels, thread pool.

One module per concern:

* :mod:`~pycos.core.support` -- small value objects (MonitorStatus, Location,
  Struct, Singleton, serialize) that everything else may use.
* :mod:`~pycos.core.log` -- the ``pycos`` logger and the ``Logger`` shim.
* :mod:`~pycos.core.scheduler` -- the kernel: the round loop over the C
  reactor, parking and waking tasks, timeouts, the cross-thread inbox, and
  the internal API the socket layer builds on.
* :mod:`~pycos.core.task` -- :class:`Task`, the user's view of a task.
* :mod:`~pycos.core.waitqueue` -- the one FIFO wait queue under every
  primitive.
* :mod:`~pycos.core.primitives` -- Lock, RLock, Condition, Event, Semaphore,
  BoundedSemaphore.
* :mod:`~pycos.core.channel` -- publish/subscribe channels.
* :mod:`~pycos.core.messages` -- CategorizeMessages.
* :mod:`~pycos.core.threadpool` -- AsyncThreadPool and AsyncDBCursor.
"""
