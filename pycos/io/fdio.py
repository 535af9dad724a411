"""The machinery under AsyncSocket and AsyncFile: one descriptor, at most one
pending read-side and one write-side operation, tasks parked on them.

How a call runs
---------------

A call such as ``data = yield sock.recv(4096)`` submits the operation to the
reactor with a fresh integer token.  Most of the time it completes *inline*:
the method returns the data itself, the task yields it and the kernel hands
it straight back (a plain value).  Otherwise the reactor says PENDING; only
then is the token given a handler and the task parked (with the descriptor's
timeout, if any).  The completion event calls the handler, which turns the
reactor's result into the value (or exception) the task wakes with.

Timeouts and interruptions use the kernel's one timeout mechanism: the park
carries a cancel hook.  On a timeout the hook cancels the operation, asking
the reactor how far it got (``withdraw``), and wakes the task with the
partial result or ``socket.timeout``.  On an interruption (throw,
terminate) it only cancels.  A cancelled operation's handler is dropped
with it, so its late ``-ECANCELED`` event finds nobody, and tokens are never
reused, so a late event can never be mistaken for a newer operation.

Closing wakes everyone: a reader gets what it had (or ``b''``), a writer
``OSError(EBADF)``; then the descriptor is forgotten by the reactor before
it is closed.

A descriptor is bound to the scheduler of the first task that uses it.
"""

from __future__ import annotations

import errno
import os
import platform
import socket
from typing import TYPE_CHECKING, Any, Optional, Tuple

from pycos import reactor
from pycos.core.scheduler import (PARK, PARKED, READY, RUNNING, TIMEOUT, _get_ident,
                                  _sched_of_thread)
from pycos.reactor import PENDING, READ, WRITE
from pycos.hints import Timeout

if TYPE_CHECKING:
    from pycos.core.scheduler import Scheduler
    from pycos.core.task import Task

__all__ = ["FDIO", "WATCH", "LAZY"]

#: the kind of :meth:`FDIO._wait_ready` (subclasses use kinds > 0)
WATCH = -1
#: the read-side kind of :meth:`FDIO._recv_lazy`
LAZY = -2

_timeout_exc = socket.timeout


def _current() -> Tuple[Scheduler, Task]:
    """(scheduler, task) of the calling task; a clear error outside one."""
    sched = _sched_of_thread(_get_ident())
    task = sched._cur if sched is not None else None
    if task is None:
        raise RuntimeError("this pycos call must be made (with yield) from a task; "
                           "use blocking=True for plain threads")
    return sched, task      # type: ignore[return-value]  # (a task: sched is not None)


#: the largest read size whose scratch buffer a scheduler keeps
_SCRATCH_MAX = 1 << 20

_ffi = reactor.ffi
_unpack = _ffi.unpack
_rx_recv = reactor.lib.rx_recv
_LAZY = reactor._LAZY
_LAZY_ARENA = reactor._LAZY | reactor._ARENA
_EV_DATA = reactor.EV_DATA
_error = reactor.error
_rx_drained = reactor.lib.rx_drained
_os_read = os.read
#: CPython hands C the bytes object's own storage, which never moves; PyPy
#: may move or copy it, so there a send always goes through ffi.from_buffer.
_BYTES_IN_PLACE = platform.python_implementation() == "CPython"
#: Big reads (the last one brought at least _BIG bytes) on CPython: the
#: handler of a lazy recv reads with os.read, straight into the bytes object
#: it returns, instead of into the scratch buffer and then copying (a 64 KiB
#: message costs a memcpy less; PyPy copies inside os.read anyway).  Not on
#: Windows: a socket there is no file descriptor os.read can take.
_DIRECT_READS = _BYTES_IN_PLACE and os.name != "nt"
_BIG = 16384
#: ... up to this size: os.read allocates all ``n`` bytes first, and larger
#: blocks are mmap'ed, shrunk with mremap and munmap'ed by the C allocator:
#: three syscalls per read, far dearer than the copy saved
_DIRECT_MAX = 65536


def _head(buf, n):
    """The first ``n`` bytes of ``buf`` as bytes (one copy)."""
    return bytes(buf) if n == len(buf) else bytes(memoryview(buf)[:n])


def _scratch(sched, n):
    """The scheduler's C buffer of ``n`` bytes for inline reads (reused:
    only the scheduler's thread reads into it, and only synchronously)."""
    bufs = sched._scratch
    buf = bufs.get(n)
    if buf is None:
        if n < 0:
            raise ValueError("negative buffersize in recv")
        buf = _ffi.new("char[]", n or 1)
        if n > _SCRATCH_MAX:    # a huge read: its buffer is not kept
            return buf
        if len(bufs) >= 8:      # a program reading with many sizes: keep few
            bufs.clear()
        bufs[n] = buf
    return buf


class _Side(object):
    """State of one side (read or write) of a descriptor."""

    __slots__ = ("task", "tok", "kind", "buf", "extra")

    task: Optional[Task]
    tok: int
    kind: int
    buf: Any
    extra: Any

    def __init__(self) -> None:
        self.task = None
        self.tok = 0
        self.kind = 0
        self.buf = None
        self.extra = None


#: the write side of every descriptor that never had to wait for a write:
#: never changed (side.task stays None), replaced by a _Side of its own in
#: FDIO._wait
_IDLE = _Side()


class FDIO(object):
    """Base of AsyncSocket and AsyncFile: a non-blocking descriptor driven
    by the reactor.  Subclasses turn completions into values with
    ``_read_value(kind, buf, n, extra, closing=False, lent=False)``: ``n``
    bytes are in ``buf``; ``closing``: the descriptor is being closed;
    ``lent``: the operation was withdrawn and the reactor may still hold
    ``buf`` until its cancellation event, so the value must not be ``buf``
    itself (closing implies it)."""

    # slots, not a __dict__: 10,000 idle connections are 10,000 of these
    # (_big: the last read brought a big message, see _DIRECT_READS)
    __slots__ = ("_fd", "_sched", "_loop", "_timeout", "_rd", "_wr", "_big", "__weakref__")

    _fd: int
    # the scheduler of the first task that used the descriptor, and its loop
    # (see _bind): None until then, which the paths of operations never see
    _sched: Scheduler
    _loop: reactor.Loop
    _timeout: Optional[float]
    _big: bool
    _rd: _Side
    _wr: _Side

    if TYPE_CHECKING:
        # what subclasses define (see the class docstring; _ahead: bytes
        # read ahead, in their slots)
        @property
        def _ahead(self) -> bytes: ...

        @_ahead.setter
        def _ahead(self, value: bytes) -> None: ...

        def _read_value(self, kind: int, buf: Any, n: int, extra: Any, closing: bool = False,
                        lent: bool = False) -> Any: ...

        def _write_value(self, kind: int, n: int, extra: Any, partial: bool = False) -> Any: ...

    def _fdio_init(self, fd: int) -> None:
        self._fd = fd
        self._sched = None      # type: ignore[assignment]  # (unbound: see above)
        self._loop = None       # type: ignore[assignment]
        self._timeout = None
        self._big = False
        self._rd = _Side()
        # the write side starts as the shared idle one and gets its own
        # _Side at its first wait (_wait): a socket whose sends all complete
        # at once (most of them) never needs one
        self._wr = _IDLE

    # -- binding --

    def _bind(self, sched):
        if self._sched is None:
            if self._fd < 0:
                raise OSError(errno.EBADF, "I/O on a closed descriptor")
            self._sched = sched
            self._loop = sched.loop
            return
        raise RuntimeError("%r is used by the tasks of scheduler %r; it cannot be used from "
                           "another scheduler" % (self, self._sched))

    # -- timeouts --

    def settimeout(self, timeout: Timeout) -> None:
        """Timeout in seconds for each operation (None: wait forever)."""
        if timeout is not None:
            timeout = float(timeout)
            if timeout != timeout or timeout < 0:
                raise ValueError("timeout must be None or a non-negative number")
        self._timeout = timeout

    def gettimeout(self) -> Optional[float]:
        """What :meth:`settimeout` set (None: no limit)."""
        return self._timeout

    # -- submitting --

    def _claim(self, side, what):
        """(scheduler, task) of the calling task, about to start a ``what``
        on ``side``: binds the descriptor, refuses a second pending one."""
        sched, task = _current()
        if sched is not self._sched:
            self._bind(sched)
        if side.task is not None:
            if side.task is task and task is not None:
                # its own earlier call on this descriptor, made without yield
                raise sched._unyielded(task, "and then another %s on it" % (what,))
            raise self._busy(what)
        return sched, task

    def _wait(self, sched, task, side, tok, kind, buf, extra, timeout):
        """Park ``task`` until the completion of ``tok`` reaches ``side``'s
        handler (``timeout`` False: the descriptor's own)."""
        if side is _IDLE:
            side = self._wr = _Side()
        side.task = task
        side.tok = tok
        side.kind = kind
        side.buf = buf
        side.extra = extra
        # (bound methods made per wait, not kept: 256 bytes less per socket)
        if side is self._rd:
            sched._handlers[tok] = self._on_read
            cancel = self._cancel_read
        else:
            sched._handlers[tok] = self._on_write
            cancel = self._cancel_write
        return sched._park(task, self._timeout if timeout is False else timeout, None, cancel)

    def _busy(self, what):
        return RuntimeError("%s: another task's %s is pending on this descriptor "
                            "(one read and one write at a time)" % (self, what))

    def _read(self, kind, buf, submit, extra=None, timeout=False):
        """Run a read-side operation; ``submit(loop, tok)`` starts it in the
        reactor.  Returns the value inline, or PARK with the task parked."""
        side = self._rd
        sched, task = self._claim(side, "read")
        tok = next(sched._tokens)
        r = submit(self._loop, tok)
        if r != PENDING:
            return self._read_value(kind, buf, r, extra)
        return self._wait(sched, task, side, tok, kind, buf, extra, timeout)

    def _recv_lazy(self, n, sink=None):
        """[y] Up to ``n`` bytes, on the reactor's lazy recv: the read goes
        into the scheduler's scratch buffer, and a read that must wait holds
        no buffer at all (an idle connection pins no memory).  The bytes are
        returned inline, or the task parks until the descriptor is readable
        and :meth:`_on_lazy` reads them.  (The hot path of every stream
        server: the checks of :meth:`_claim` are inlined.)

        ``sink`` (an object with ``write(buffer)``, e.g. TLS's incoming
        ``ssl.MemoryBIO``): the bytes go straight from the scratch buffer to
        ``sink.write`` and the value is their count (0: end of stream), with
        no bytes object made in between."""
        side = self._rd
        sched = _sched_of_thread(_get_ident())
        task = sched._cur if sched is not None else None
        if task is None or sched is not self._sched or side.task is not None:
            sched, task = self._claim(side, "read")
        buf = sched._scratch.get(n)
        if buf is None:
            buf = _scratch(sched, n)
        tok = next(sched._tokens)
        # a wait without a sink ends with the bytes in the reactor's arena
        # (no second call into C), unless _on_lazy is to read a big message
        # straight into its bytes object
        r = _rx_recv(self._loop._l, self._fd, buf, n,
                     _LAZY if sink is not None or self._big else _LAZY_ARENA, tok)
        if r >= 0:
            if sink is None:
                return _unpack(buf, r)
            if r:
                sink.write(_ffi.buffer(buf, r))
            return r
        if r != PENDING:
            raise _error(r)
        side.task = task
        side.tok = tok
        side.kind = LAZY
        side.buf = sink
        side.extra = n
        sched._handlers[tok] = self._on_lazy
        if task._exc is None and self._timeout is None and task._state == RUNNING:
            # (Pycos._park, inlined)
            task._state = PARKED
            task._cancel = self._cancel_read
            task._alarm = None
            task._wid += 1
            return PARK
        return sched._park(task, self._timeout, None, self._cancel_read)

    def _on_lazy(self, kind, aux, result):
        """The descriptor of a parked lazy recv was readable: the reactor
        read the bytes into its arena (EV_DATA), or the handler reads now
        (EV_READY)."""
        side = self._rd
        task = side.task
        sched = self._sched
        handlers = sched._handlers
        handlers.pop(side.tok, None)
        if task is None:
            return
        if kind == _EV_DATA:
            side.task = None
            if result >= _BIG:
                self._big = _DIRECT_READS
            if task._state == PARKED and not task._tid:     # Pycos._unpark, inlined
                task._cancel = None
                task._alarm = None
                task._value = sched._arena[aux:aux + result]
                task._state = READY
                sched._ready.append(task)
                return
            sched._unpark(task, sched._arena[aux:aux + result])
            return
        if result < 0:
            side.task = None
            side.buf = None
            sched._unpark_exc(task, _error(result))
            return
        n = side.extra
        sink = side.buf
        if self._big and _BIG <= n <= _DIRECT_MAX and sink is None:
            try:
                data = _os_read(self._fd, n)
            except BlockingIOError:     # readiness without data
                _rx_drained(self._loop._l, self._fd, READ)
            except OSError as exc:
                side.task = None
                sched._unpark_exc(task, exc)
                return
            else:
                got = len(data)
                if got < n:             # a short read: the kernel has no more
                    _rx_drained(self._loop._l, self._fd, READ)
                self._big = got >= _BIG
                side.task = None
                sched._unpark(task, data)
                return
        buf = sched._scratch.get(n)
        if buf is None:
            buf = _scratch(sched, n)
        tok = next(sched._tokens)
        r = _rx_recv(self._loop._l, self._fd, buf, n, _LAZY, tok)
        if r == PENDING:        # readiness without data: wait on, same park
            side.tok = tok
            handlers[tok] = self._on_lazy
            return
        side.task = None
        if r < 0:
            side.buf = None
            sched._unpark_exc(task, _error(r))
            return
        if sink is not None:
            side.buf = None
            if r:
                try:
                    sink.write(_ffi.buffer(buf, r))
                except Exception as exc:
                    sched._unpark_exc(task, exc)
                    return
            sched._unpark(task, r)
            return
        if r >= _BIG:
            self._big = _DIRECT_READS
        if task._state == PARKED and not task._tid:         # Pycos._unpark, inlined
            task._cancel = None
            task._alarm = None
            task._value = _unpack(buf, r)
            task._state = READY
            sched._ready.append(task)
            return
        sched._unpark(task, _unpack(buf, r))

    def _wait_ready(self, which, timeout=False):
        """[y] Wait until the descriptor is ready on ``which`` (READ or
        WRITE), without moving data: true then.  Closed meanwhile: False for
        READ, ``OSError(EBADF)`` for WRITE."""
        side = self._rd if which == READ else self._wr
        sched, task = self._claim(side, "read" if which == READ else "write")
        tok = next(sched._tokens)
        if self._loop.watch(self._fd, which, tok) != PENDING:
            return True
        return self._wait(sched, task, side, tok, WATCH, None, None, timeout)

    def _write(self, kind, submit, extra=None, timeout=False):
        side = self._wr
        sched, task = self._claim(side, "write")
        tok = next(sched._tokens)
        r = submit(self._loop, tok)
        if r != PENDING:
            return self._write_value(kind, r, extra)
        return self._wait(sched, task, side, tok, kind, None, extra, timeout)

    # -- completions --

    def _on_read(self, kind, aux, result):
        side = self._rd
        task = side.task
        side.task = None
        sched = self._sched
        sched._handlers.pop(side.tok, None)
        if task is None:
            return
        if side.kind == WATCH:
            if result < 0:
                sched._unpark_exc(task, reactor.error(result))
            else:
                sched._unpark(task, True)
            return
        if result < 0:
            side.buf = None
            sched._unpark_exc(task, reactor.error(result))
            return
        try:
            value = self._read_value(side.kind, side.buf, result, side.extra)
        except Exception as exc:
            sched._unpark_exc(task, exc)
            return
        side.buf = None
        if not sched._unpark(task, value):
            self._lost(side.kind, value)

    def _on_write(self, kind, aux, result):
        side = self._wr
        task = side.task
        side.task = None
        sched = self._sched
        sched._handlers.pop(side.tok, None)
        if task is None:
            return
        if result < 0:
            sched._unpark_exc(task, reactor.error(result))
            return
        sched._unpark(task, self._write_value(side.kind, result, side.extra))

    def _lost(self, kind, value):
        """A completed value whose task is gone (hook for accept's new fd)."""

    # -- cancellation (the park's cancel hooks) --

    def _withdraw(self, side, which):
        """Cancel the pending operation of ``side``; return bytes it moved."""
        done = self._loop.withdraw(self._fd, which)
        if done is None and side.kind == LAZY and side.buf is None:
            # nothing pending: the reactor has finished the read, and its
            # event is still on the way (queued, or later in the batch being
            # dispatched: a timeout queued before it).  Its bytes are taken
            # off the socket: keep them for the next read.
            tok = side.tok
            self._sched._handlers[tok] = lambda kind, aux, result: self._on_late(
                tok, kind, aux, result)
        else:
            self._sched._handlers.pop(side.tok, None)
        side.task = None
        return done or 0

    def _on_late(self, tok, kind, aux, result):
        """The event of a lazy recv withdrawn after the reactor had read
        (only AsyncSocket reads lazily; its reads take ``_ahead`` first)."""
        self._sched._handlers.pop(tok, None)
        if kind == _EV_DATA and result > 0:
            self._ahead += self._sched._arena[aux:aux + result]

    def _cancel_read(self, task, reason):
        side = self._rd
        if side.task is not task:
            return
        kind, buf, extra = side.kind, side.buf, side.extra
        done = self._withdraw(side, READ)
        side.buf = None
        if reason == TIMEOUT and kind == WATCH:
            self._sched._unpark_exc(task, _timeout_exc("timed out"))
        elif reason == TIMEOUT:
            sched = self._sched
            if done:
                sched._unpark(task, self._read_value(kind, buf, done, extra, lent=True))
            else:
                sched._unpark_exc(task, _timeout_exc("timed out"))

    def _cancel_write(self, task, reason):
        side = self._wr
        if side.task is not task:
            return
        kind, extra = side.kind, side.extra
        done = self._withdraw(side, WRITE)
        if reason == TIMEOUT:
            sched = self._sched
            if done:
                sched._unpark(task, self._write_value(kind, done, extra, partial=True))
            else:
                sched._unpark_exc(task, _timeout_exc("timed out"))

    # -- closing --

    def _close_fd(self):
        """Wake waiters (reader: what it had or b''; writer: EBADF), drop the
        descriptor from the reactor.  Returns the descriptor number, -1 if
        already closed.  Must run on the scheduler's thread."""
        fd = self._fd
        if fd < 0:
            return -1
        sched = self._sched
        if sched is not None:
            rd, wr = self._rd, self._wr
            rtask, wtask = rd.task, wr.task
            if rtask is not None:
                kind, buf, extra = rd.kind, rd.buf, rd.extra
                done = self._withdraw(rd, READ)
                rd.buf = None
                value: Any
                try:
                    if kind == WATCH:
                        value = False
                    elif kind == LAZY:
                        value = b"" if buf is None else 0     # 0: a sink's read
                    else:
                        value = self._read_value(kind, buf, done, extra, closing=True)
                except Exception as exc:
                    sched._unpark_exc(rtask, exc)
                else:
                    sched._unpark(rtask, value)
            if wtask is not None:
                self._withdraw(wr, WRITE)
                sched._unpark_exc(wtask, OSError(errno.EBADF, "descriptor closed while writing"))
            try:
                self._loop.forget(fd)
            except ValueError:      # the scheduler's loop is closed already
                pass
        self._fd = -1
        return fd

    def _on_loop_thread(self, fn, *args):
        """Run ``fn`` where the bound scheduler's data may be touched."""
        sched = self._sched
        if sched is None or sched._on_loop() or getattr(sched, "_stopped", False):
            return fn(*args)
        return sched._call_sync(fn, *args)
