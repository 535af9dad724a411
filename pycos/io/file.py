"""AsyncFile and AsyncPipe: descriptors that are not sockets (pipes, ttys,
character devices, regular files) read and written with ``yield``.

On POSIX they use the same reactor calls as sockets (the reactor falls back
to ``read``/``write`` for descriptors that are not sockets and makes pipes
non-blocking), so everything in :mod:`pycos.io.fdio` applies: one pending
read and one write, timeouts, closing wakes the waiters.  Regular files are
always "ready", so their reads and writes complete inline.

AsyncPipe gathers the pipes of a ``subprocess.Popen`` chain (first ... last):
``stdin`` of the first process, ``stdout``/``stderr`` of the last, with
``communicate`` feeding and draining them concurrently.

Waiting for a process to exit
-----------------------------

``yield pipe.wait(timeout)`` (and ``communicate``) wait for the last process
without blocking the scheduler, and reap only that process, through its own
``Popen`` (``wait``/``poll``: never ``waitpid(-1)``, which would steal other
code's children).  Two ways, best first:

* **a pidfd** (Linux >= 5.3): ``pidfd_open(pid)`` gives a descriptor that
  becomes readable when the process exits; the reactor watches it like any
  descriptor (each waiting task has its own), and on readiness
  ``Popen.wait()`` collects the status at once.  ``os.pidfd_open`` where
  Python has it (CPython >= 3.9), else the system call through ``ctypes``
  (PyPy 3.9 lacks ``os.pidfd_open``) on the architectures whose call number
  is known;
* **a reaper thread** everywhere else (other systems, older kernels, a
  sandbox refusing the call): one thread per process, blocked in
  ``Popen.wait()``, tells every task waiting for that process (on any
  scheduler) when it returns.  No polling, and timeouts are the scheduler's
  timers, so a wait that times out leaves the thread to the next wait.  It
  is not a thread of an ``AsyncThreadPool``: a pool's fixed size would make
  a wait queue behind others' waits for processes that may never exit.  The
  thread ends when the process does (it is a daemon: a process that never
  exits keeps it until the program ends).
"""

from __future__ import annotations

import errno
import os
import platform
import socket
import subprocess
import sys
import threading
from types import GeneratorType
from typing import Any, Dict, Generator, Literal, Optional, Tuple, Union

from pycos.core.scheduler import INTERRUPT, PARKED, TIMEOUT, _check_timeout, _get_ident, \
    _sched_of_thread
from pycos.io.fdio import FDIO, _current, _head
from pycos.reactor import READ
from pycos.hints import Timeout, Yieldable

__all__ = ["AsyncFile", "AsyncPipe"]

_READ, _READALL = 1, 2
_WRITE, _WRITEALL = 3, 4
_CHUNK = 65536


class AsyncFile(FDIO):
    """Asynchronous I/O on ``fd_or_fileobj``: a descriptor (an int), any object with
    ``fileno()`` (closed with the AsyncFile), or a path, opened as ``mode``
    ('r', 'w' or 'a', with '+' and 'b' allowed).  On Windows an int is a
    handle, as in pycos 4.x (from ``pycos.asyncfile.pipe()``, say), a path
    is opened for overlapped I/O (``share``: its share mode, by default
    read and write), and a pipe not opened for overlapped I/O is refused
    (see :mod:`pycos.io.winpipe`).  Calls marked [y] are made in a task as
    ``value = yield f.call(...)`` (docs/index.md explains the marks); guide:
    docs/files.md."""

    __slots__ = ("_fileobj", "_ahead", "_tty", "_crt")

    def __init__(self, fd_or_fileobj: Union[int, str, Any], mode: str = "r",
                 share: Optional[int] = None) -> None:
        what = fd_or_fileobj
        if not isinstance(mode, str):
            raise TypeError("AsyncFile: mode must be a str, not %r" % (type(mode).__name__,))
        if sys.platform == "win32":
            from pycos.io import winpipe
            if isinstance(what, int) and what < 0:
                raise ValueError("AsyncFile of a closed handle")
            fd, crt, self._fileobj = winpipe.resolve(what, mode, share)
        else:
            if isinstance(what, str):
                fd, self._fileobj = os.open(what, _posix_flags(mode), 0o666), None
            elif isinstance(what, int) and not isinstance(what, bool):
                fd, self._fileobj = what, None
            elif hasattr(what, "fileno"):
                fd, self._fileobj = what.fileno(), what
            else:
                raise TypeError("AsyncFile needs a descriptor, a path or an object with "
                                "fileno(), not %r" % (type(what).__name__,))
            crt = fd
        if fd < 0:
            raise ValueError("AsyncFile of a closed descriptor")
        self._crt = crt
        self._fdio_init(fd)
        self._ahead = b""           # read ahead by readline
        try:
            self._tty = os.isatty(crt)
        except OSError:
            self._tty = False

    def __repr__(self) -> str:
        return "<pycos.AsyncFile fd=%d>" % self._fd

    def fileno(self) -> int:
        """The descriptor (-1 once closed); on Windows the C runtime's
        descriptor of the handle (what ``subprocess`` takes as a child's
        stream)."""
        return self._crt if self._fd >= 0 else -1

    def __enter__(self) -> AsyncFile:
        return self

    def __exit__(self, *exc: Any) -> Literal[False]:
        self.close()
        return False                # never swallow the exception

    def _read_value(self, kind: int, buf: Any, n: int, extra: Any, closing: bool = False,
                    lent: bool = False) -> bytes:
        return _head(buf, n)

    def _write_value(self, kind: int, n: int, extra: Any, partial: bool = False) -> int:
        return n

    def _read_once(self, size, full, timeout):
        buf = bytearray(size)
        fd = self._fd
        kind = _READALL if full else _READ
        return self._read(kind, buf, lambda loop, tok: loop.recv(fd, buf, tok, all=full),
                          timeout=self._timeout if timeout is None else timeout)

    def _read_chunk(self, size, full, timeout):
        """[y] One read; a terminal whose other side has gone (``EIO`` on a
        pty master) reads as end of file."""
        try:
            return (yield self._read_once(size, full, timeout))
        except OSError as exc:
            if exc.errno == errno.EIO and self._tty:
                return b""
            raise

    def read(self, size: int = 0, full: bool = False, timeout: Timeout = None) -> Yieldable:
        """[y] Up to ``size`` bytes (exactly ``size`` with ``full=True``, fewer
        only at end of file or when ``timeout`` passes after some data);
        ``size <= 0`` reads to end of file.  ``b''`` at end of file."""
        return self._read_gen(size, full, timeout)

    def _read_gen(self, size, full, timeout):
        ahead = self._ahead
        if size > 0 and ahead:
            data, self._ahead = ahead[:size], ahead[size:]
            if len(data) == size or not full:
                return data
            rest = yield self._read_chunk(size - len(data), True, timeout)
            return data + rest
        self._ahead = b""
        if size > 0:
            data = yield self._read_chunk(size, full, timeout)
            return ahead + data
        parts = [ahead] if ahead else []
        while True:
            chunk = yield self._read_chunk(_CHUNK, False, timeout)
            if not chunk:
                return b"".join(parts)
            parts.append(chunk)

    def readline(self, size: int = 0, sizehint: int = 100,
                 timeout: Timeout = None) -> Yieldable:
        """[y] One line with its newline; at most ``size`` bytes if
        ``size > 0``; ``b''`` at end of file."""
        return self._readline_gen(size, sizehint, timeout)

    def _readline_gen(self, size, sizehint, timeout):
        buf = self._ahead
        start = 0
        while True:
            i = buf.find(b"\n", start)
            if i >= 0 and (size <= 0 or i < size):
                self._ahead = buf[i + 1:]
                return buf[:i + 1]
            if size > 0 and len(buf) >= size:
                self._ahead = buf[size:]
                return buf[:size]
            start = len(buf)
            chunk = yield self._read_chunk(max(sizehint, 4096), False, timeout)
            if not chunk:
                self._ahead = b""
                return buf
            buf += chunk

    def write(self, buf: Any, full: bool = False, timeout: Timeout = None) -> Yieldable:
        """[y] Write ``buf``; returns the count written (all of it with
        ``full=True``; on a timeout, what was written before it)."""
        fd = self._fd
        kind = _WRITEALL if full else _WRITE
        return self._write(kind, lambda loop, tok: loop.send(fd, buf, tok, all=full),
                           timeout=self._timeout if timeout is None else timeout)

    def close(self) -> None:
        """Close the descriptor (and the file object it came from); tasks
        waiting on it wake."""
        if self._fd < 0:
            return
        self._on_loop_thread(self._close)

    def _close(self):
        fd = self._close_fd()
        if fd < 0:
            return
        if self._fileobj is not None:
            self._fileobj.close()
        else:
            os.close(self._crt)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run."""
        return self._fd < 0


def _posix_flags(mode: str) -> int:
    m = mode.replace("b", "")
    plus = "+" in m
    flags = {"r": os.O_RDONLY, "w": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
             "a": os.O_WRONLY | os.O_CREAT | os.O_APPEND}.get(m.replace("+", ""))
    if flags is None:
        raise ValueError("AsyncFile: mode must be 'r', 'w' or 'a' (with '+' and 'b' "
                         "allowed), not %r" % (mode,))
    if plus:
        flags = (flags & ~os.O_WRONLY) | os.O_RDWR
    return flags | getattr(os, "O_CLOEXEC", 0)


def _end(f: Any) -> Optional[AsyncFile]:
    """An AsyncFile for a Popen's pipe ``f`` (itself when it is one: Windows'
    ``asyncfile.Popen``); None when there is no pipe or it has been closed
    (by an earlier AsyncPipe's communicate, say)."""
    if f is None or getattr(f, "closed", False):
        return None
    return f if isinstance(f, AsyncFile) else AsyncFile(f)


class AsyncPipe(object):
    """The pipes of ``subprocess.Popen`` objects ``first`` ... ``last`` (one
    process: ``last`` omitted); ends that are not pipes, or are closed, are
    None.  Attributes not defined here (``pid``, ``returncode``, ``kill``
    ...) are the last process's.  Calls marked [y] are made in a task as
    ``value = yield pipe.call(...)``; guide: docs/files.md."""

    first: subprocess.Popen[Any]
    last: subprocess.Popen[Any]
    stdin: Optional[AsyncFile]
    stdout: Optional[AsyncFile]
    stderr: Optional[AsyncFile]

    def __init__(self, first: subprocess.Popen[Any],
                 last: Optional[subprocess.Popen[Any]] = None) -> None:
        if last is None:
            last = first
        for p in (first, last):
            if not hasattr(p, "poll") or not hasattr(p, "stdin"):
                raise TypeError("AsyncPipe takes subprocess.Popen objects, not %r"
                                % (type(p).__name__,))
        self.first = first
        self.last = last
        self.stdin = _end(first.stdin)
        self.stdout = _end(last.stdout)
        self.stderr = _end(last.stderr)

    def __getattr__(self, name: str) -> Any:
        last = self.__dict__.get("last")
        if last is None:
            raise AttributeError(name)
        return getattr(last, name)

    def __enter__(self) -> AsyncPipe:
        return self

    def __exit__(self, *exc: Any) -> Literal[False]:
        self.close()
        return False

    def _need(self, f: Optional[AsyncFile], name: str) -> AsyncFile:
        if f is None:
            raise ValueError("the pipe has no %s (pass %s=subprocess.PIPE to Popen)"
                             % (name, name))
        return f

    def write(self, buf: Any, full: bool = False, timeout: Timeout = None) -> Yieldable:
        """[y] Write to the first process's stdin."""
        return self._need(self.stdin, "stdin").write(buf, full, timeout)

    # read/read_stderr take (size, timeout) positionally, as in pycos 4.x;
    # ``full`` is an extension, by keyword

    def read(self, size: int = 0, timeout: Timeout = None, full: bool = False) -> Yieldable:
        """[y] Read the last process's stdout (see AsyncFile.read)."""
        return self._need(self.stdout, "stdout").read(size, full, timeout)

    def readline(self, size: int = 0, sizehint: int = 100, timeout: Timeout = None) -> Yieldable:
        """[y] A line of the last process's stdout (see AsyncFile.readline)."""
        return self._need(self.stdout, "stdout").readline(size, sizehint, timeout)

    def read_stderr(self, size: int = 0, timeout: Timeout = None,
                    full: bool = False) -> Yieldable:
        """[y] Read the last process's stderr (see AsyncFile.read)."""
        return self._need(self.stderr, "stderr").read(size, full, timeout)

    def readline_stderr(self, size: int = 0, sizehint: int = 100,
                        timeout: Timeout = None) -> Yieldable:
        """[y] A line of the last process's stderr (see AsyncFile.readline)."""
        return self._need(self.stderr, "stderr").readline(size, sizehint, timeout)

    def communicate(self, input: Any = None) -> Yieldable:
        """[y] Feed ``input`` (bytes, or a file object -- an AsyncFile too --
        read to its end and then closed) to stdin and close it, while reading
        stdout and stderr to their end and closing them, then wait (without
        blocking the scheduler) for the last process to exit, as
        ``Popen.communicate`` does; returns ``(stdout_data, stderr_data)``
        (None for a pipe that is not there), and ``returncode`` is set."""
        return self._communicate(input)

    def _communicate(self, input: Any) -> Generator[Any, Any, Tuple[Any, Any]]:
        from pycos.core.task import Task
        tasks = []
        if self.stdin is not None:
            tasks.append(Task(_feed, self.stdin, input))
        err_task = Task(_drain, self.stderr) if self.stderr is not None else None
        out = None
        if self.stdout is not None:
            out = yield _drain(self.stdout)
        err = (yield err_task.finish()) if err_task is not None else None
        for t in tasks:
            yield t.finish()
        yield _wait_process(self.last, None)
        return out, err

    def poll(self) -> Optional[int]:
        """The last process's ``poll()``: its exit status, None while it runs."""
        return self.last.poll()

    def wait(self, timeout: Timeout = None) -> Any:
        """[y] Wait for the last process to exit and return its exit status
        (``returncode``: negative for a process killed by a signal), without
        blocking the scheduler; ``subprocess.TimeoutExpired`` after
        ``timeout`` seconds.  Any number of tasks may wait for the same
        process.  In a task, write ``status = yield pipe.wait()``.

        From a plain thread (not the scheduler's) it is ``Popen.wait(timeout)``
        of the last process, blocking that thread, as in pycos 4.x; on the
        scheduler's thread outside a task it is a RuntimeError (it would
        stop every task)."""
        return _wait_process(self.last, timeout)

    def close(self) -> None:
        """Close the pipes this object holds."""
        for f in (self.stdin, self.stdout, self.stderr):
            if f is not None:
                f.close()


def _feed(f, data, task=None):
    """Write ``data`` (bytes/str, or a file-like object read to its end and
    then closed -- an AsyncFile too) to ``f``, then close ``f``."""
    try:
        if data is not None:
            if hasattr(data, "read"):
                try:
                    while True:
                        chunk = data.read(_CHUNK)
                        if isinstance(chunk, GeneratorType):    # an AsyncFile's read
                            chunk = yield chunk
                        if not chunk:
                            break
                        if isinstance(chunk, str):
                            chunk = chunk.encode()
                        yield f.write(chunk, full=True)
                finally:
                    data.close()
            else:
                if isinstance(data, str):
                    data = data.encode()
                if len(data):
                    yield f.write(data, full=True)
    except BrokenPipeError:
        pass                        # the process stopped reading: as Popen.communicate
    finally:
        f.close()


def _drain(f, task=None):
    """Read ``f`` to its end, close it, return the data."""
    try:
        data = yield f.read()
    finally:
        f.close()
    return data


# ---- waiting for a process ----------------------------------------------------

#: the pidfd_open system call number on the architectures that share it
#: (alpha, ia64 and mips have their own: left to the reaper thread)
_NR_PIDFD_OPEN = 434
_COMMON_NUMBERS = ("x86_64", "i386", "i686", "aarch64", "armv7l", "armv6l", "armv8l",
                   "ppc64le", "ppc64", "s390x", "riscv64", "loongarch64")
_syscall = None


def _pidfd_syscall(pid):
    """``os.pidfd_open`` for Pythons without it (PyPy 3.9): the system call
    through ``ctypes``, loaded on first use.  OSError(ENOSYS) where its
    number is not known."""
    global _syscall
    if _syscall is None:
        if platform.machine() not in _COMMON_NUMBERS:
            raise OSError(errno.ENOSYS, "pidfd_open: system call number unknown here")
        import ctypes
        fn = ctypes.CDLL(None, use_errno=True).syscall
        fn.restype = ctypes.c_long
        fn.argtypes = (ctypes.c_long, ctypes.c_long, ctypes.c_long)
        _syscall = (fn, ctypes.get_errno)
    fn, get_errno = _syscall
    fd = fn(_NR_PIDFD_OPEN, pid, 0)
    if fd < 0:
        err = get_errno()
        raise OSError(err, os.strerror(err))
    return fd


#: pidfd_open(pid) -> descriptor; None: no pidfds here (the reaper thread),
#: also set to None for good when the system refuses the call itself
_pidfd_open = getattr(os, "pidfd_open", None) or (
    _pidfd_syscall if sys.platform.startswith("linux") else None)
_NO_PIDFD = (errno.ENOSYS, errno.EPERM, errno.EACCES, errno.EOPNOTSUPP)


def _wait_process(proc, timeout):
    """[y] ``proc``'s exit status (see AsyncPipe.wait)."""
    timeout = _check_timeout(timeout)
    sched = _sched_of_thread(_get_ident())
    task = sched._cur if sched is not None else None
    if task is None:
        if sched is not None:
            raise RuntimeError("AsyncPipe.wait() on the scheduler's thread outside a task would "
                               "block every task: use 'status = yield pipe.wait()' in a task")
        return proc.wait(timeout)           # a plain thread: as Popen.wait
    status = proc.poll()
    if status is not None:
        return status                       # (a plain value: the task gets it back)
    if timeout is not None and timeout <= 0:
        raise subprocess.TimeoutExpired(proc.args, timeout)
    return _wait_gen(proc, timeout)


def _wait_gen(proc, timeout):
    global _pidfd_open
    fd = -1
    if _pidfd_open is not None:
        try:
            fd = _pidfd_open(proc.pid)
        except OSError as exc:
            if exc.errno == errno.ESRCH:    # reaped already, by someone
                return proc.wait()
            if exc.errno in _NO_PIDFD:
                _pidfd_open = None
            fd = -1                         # (EMFILE...: the reaper, this time)
    if fd < 0:
        return (yield _Reaper.wait(proc, timeout))
    f = AsyncFile(fd)
    try:
        if proc.poll() is not None:
            # reaped meanwhile (by another thread's Popen.wait): the pid, and
            # so the pidfd, may be another process's now
            return proc.returncode
        try:
            yield f._wait_ready(READ, timeout)
        except socket.timeout:
            raise subprocess.TimeoutExpired(proc.args, timeout) from None
    finally:
        f.close()
    # exited: this returns at once (after another thread's wait() that
    # holds the Popen's lock has collected the status, if there is one)
    return proc.wait()


class _Reaper(object):
    """The thread waiting for one process (without pidfds), and the tasks
    to tell when it exits (``waiters``: a dict of :class:`_Waiter`, used as
    an ordered set; guarded by ``_lock``, as ``_all`` is)."""

    _lock = threading.Lock()
    _all: Dict[int, _Reaper] = {}           # id(proc) -> _Reaper

    def __init__(self, proc):
        self.proc = proc
        self.waiters = {}
        self.thread = threading.Thread(target=self._run, daemon=True,
                                       name="pycos-reaper-%d" % proc.pid)

    @classmethod
    def wait(cls, proc, timeout):
        """[y] Park the current task until ``proc`` exits (or ``timeout``)."""
        sched, task = _current()
        w = _Waiter(proc, sched, task, timeout)
        r = sched._park(task, timeout, None, w.cancel)
        if task._state != PARKED:
            return r                # an exception is due: it does not wait
        w.wid = task._wid
        sched._external += 1        # (virtual time waits for the thread)
        with cls._lock:
            reaper = cls._all.get(id(proc))
            new = reaper is None
            if reaper is None:
                reaper = cls._all[id(proc)] = _Reaper(proc)
            reaper.waiters[w] = True
        w.reaper = reaper
        if new:
            reaper.thread.start()
        return r

    def _run(self):
        try:
            status = self.proc.wait()
            ok = True
        except BaseException as exc:
            status, ok = exc, False
        with _Reaper._lock:
            del _Reaper._all[id(self.proc)]
            waiters, self.waiters = list(self.waiters), {}
        for w in waiters:
            w.sched._post(w.done, ok, status)


class _Waiter(object):
    """One task waiting for a reaper."""

    __slots__ = ("proc", "sched", "task", "wid", "timeout", "reaper")
    _what = "AsyncPipe.wait()"      # (names the call in the scheduler's errors)

    reaper: _Reaper     # (None until registered with it: see _Reaper.wait)

    def __init__(self, proc, sched, task, timeout):
        self.proc = proc
        self.sched = sched
        self.task = task
        self.timeout = timeout
        self.wid = None
        self.reaper = None      # type: ignore[assignment]  # (see above)

    def _withdraw(self):
        """Leave the reaper's list; False if it has taken us (the status is
        on its way)."""
        reaper = self.reaper
        if reaper is None:
            return True
        with _Reaper._lock:
            if reaper.waiters.pop(self, None) is None:
                return False
        self.sched._external -= 1
        return True

    def cancel(self, task, reason):
        """The park's hook: a timeout or an interruption."""
        if self.wid is None:        # (_park refused: never registered)
            return
        if self._withdraw():
            if reason == TIMEOUT:
                self.sched._unpark_exc(task, subprocess.TimeoutExpired(self.proc.args,
                                                                       self.timeout))
        elif reason != INTERRUPT:
            # the process exited as the time ran out: the status is there
            self.sched._unpark(task, self.proc.returncode)

    def done(self, ok, status):
        """On the task's scheduler: the reaper's news."""
        self.sched._external -= 1
        self.reaper.thread.join()   # (it has nothing left to do but end)
        if ok:
            self.sched._unpark(self.task, status, self.wid)
        else:
            self.sched._unpark_exc(self.task, status, self.wid)
