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
"""

import errno
import os
from types import GeneratorType

from pycos.io.fdio import FDIO, _head
from pycos.reactor import READ

__all__ = ["AsyncFile", "AsyncPipe"]

_READ, _READALL = 1, 2
_WRITE, _WRITEALL = 3, 4
_CHUNK = 65536


class AsyncFile(FDIO):
    """Asynchronous I/O on ``fd_or_fileobj``: an int descriptor or any
    object with ``fileno()`` (closed with it)."""

    __slots__ = ("_fileobj", "_ahead", "_tty")

    def __init__(self, fd_or_fileobj):
        if isinstance(fd_or_fileobj, int):
            fd, self._fileobj = fd_or_fileobj, None
        elif hasattr(fd_or_fileobj, "fileno"):
            fd, self._fileobj = fd_or_fileobj.fileno(), fd_or_fileobj
        else:
            raise TypeError("AsyncFile needs a descriptor or an object with fileno(), not %r"
                            % (type(fd_or_fileobj).__name__,))
        if fd < 0:
            raise ValueError("AsyncFile of a closed descriptor")
        self._fdio_init(fd)
        self._ahead = b""           # read ahead by readline
        try:
            self._tty = os.isatty(fd)
        except OSError:
            self._tty = False

    def __repr__(self):
        return "<pycos.AsyncFile fd=%d>" % self._fd

    def fileno(self):
        return self._fd

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False                # never swallow the exception

    def _read_value(self, kind, buf, n, extra, closing=False):
        return _head(buf, n)

    def _write_value(self, kind, n, extra, partial=False):
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

    def read(self, size=0, full=False, timeout=None):
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

    def readline(self, size=0, sizehint=100, timeout=None):
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

    def write(self, buf, full=False, timeout=None):
        """[y] Write ``buf``; returns the count written (all of it with
        ``full=True``; on a timeout, what was written before it)."""
        fd = self._fd
        kind = _WRITEALL if full else _WRITE
        return self._write(kind, lambda loop, tok: loop.send(fd, buf, tok, all=full),
                           timeout=self._timeout if timeout is None else timeout)

    def close(self):
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
            os.close(fd)

    @property
    def closed(self):
        return self._fd < 0


class AsyncPipe(object):
    """The pipes of ``subprocess.Popen`` objects ``first`` ... ``last`` (one
    process: ``last`` omitted).  Attributes not defined here (``wait``,
    ``pid``, ``returncode`` ...) are the last process's."""

    def __init__(self, first, last=None):
        if last is None:
            last = first
        for p in (first, last):
            if not hasattr(p, "poll") or not hasattr(p, "stdin"):
                raise TypeError("AsyncPipe takes subprocess.Popen objects, not %r"
                                % (type(p).__name__,))
        self.first = first
        self.last = last
        self.stdin = AsyncFile(first.stdin) if first.stdin is not None else None
        self.stdout = AsyncFile(last.stdout) if last.stdout is not None else None
        self.stderr = AsyncFile(last.stderr) if last.stderr is not None else None

    def __getattr__(self, name):
        last = self.__dict__.get("last")
        if last is None:
            raise AttributeError(name)
        return getattr(last, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _need(self, f, name):
        if f is None:
            raise ValueError("the pipe has no %s (pass %s=subprocess.PIPE to Popen)"
                             % (name, name))
        return f

    def write(self, buf, full=False, timeout=None):
        """[y] Write to the first process's stdin."""
        return self._need(self.stdin, "stdin").write(buf, full, timeout)

    # read/read_stderr take (size, timeout) positionally, as in pycos 4.x;
    # ``full`` is an extension, by keyword

    def read(self, size=0, timeout=None, full=False):
        """[y] Read the last process's stdout (see AsyncFile.read)."""
        return self._need(self.stdout, "stdout").read(size, full, timeout)

    def readline(self, size=0, sizehint=100, timeout=None):
        return self._need(self.stdout, "stdout").readline(size, sizehint, timeout)

    def read_stderr(self, size=0, timeout=None, full=False):
        return self._need(self.stderr, "stderr").read(size, full, timeout)

    def readline_stderr(self, size=0, sizehint=100, timeout=None):
        return self._need(self.stderr, "stderr").readline(size, sizehint, timeout)

    def communicate(self, input=None):
        """[y] Feed ``input`` (bytes, or a file object -- an AsyncFile too --
        read to its end and then closed) to stdin and close it, while reading
        stdout and stderr to their end and closing them, then wait (without
        blocking the scheduler) for the last process to exit, as
        ``Popen.communicate`` does; returns ``(stdout_data, stderr_data)``
        (None for a pipe that is not there), and ``returncode`` is set."""
        return self._communicate(input)

    def _communicate(self, input):
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
        yield _wait_exit(self.last)
        return out, err

    def poll(self):
        return self.last.poll()

    def close(self):
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


def _wait_exit(proc):
    """[y] Wait for ``proc`` to exit and reap it, without blocking the
    scheduler: a pidfd watched by the reactor where the platform has one,
    else polling with a growing interval (1 ms .. 50 ms)."""
    if proc.poll() is not None:
        return proc.returncode
    fd = -1
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is not None:
        try:
            fd = pidfd_open(proc.pid)
        except OSError:         # not supported, or already reaped elsewhere
            fd = -1
    if fd >= 0:
        f = AsyncFile(fd)
        try:
            yield f._wait_ready(READ, None)
        finally:
            f.close()
        return proc.wait()
    from pycos.core.scheduler import Pycos
    task = Pycos.cur_task()
    delay = 0.001
    while proc.poll() is None:
        yield task.sleep(delay)
        delay = min(delay * 2, 0.05)
    return proc.returncode
