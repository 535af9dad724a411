"""Windows handles for AsyncFile: overlapped pipes, ``Popen`` with them, and
files opened for overlapped I/O -- without pywin32 (``_winapi``, ``msvcrt``
and ``ctypes`` of the standard library).

The IOCP backend reads and writes a handle with overlapped ``ReadFile`` /
``WriteFile``, which waits in the kernel only when the handle was opened
with ``FILE_FLAG_OVERLAPPED``.  A pipe that was not (``os.pipe()``, the
anonymous pipes ``subprocess.PIPE`` makes) would block the scheduler's
thread, every task with it, until data came; :func:`resolve` refuses such a
pipe with a message that says what to use instead: :func:`pipe` (a named
pipe whose two ends are overlapped) or :class:`Popen`, whose PIPE ends are
made that way -- overlapped on the parent's side only, since a child reads
and writes its standard streams synchronously.  Names and signatures are
pycos 4.x's (``asyncfile.pipe``, ``asyncfile.Popen``).

An AsyncFile on Windows keeps the handle (what the reactor is given) and a C
runtime descriptor owning it (what ``fileno()`` returns, so that the object
can be a child's ``stdin`` in ``subprocess``, and what ``close()`` closes).

Imported on Windows only.
"""

from __future__ import annotations

import sys

# (also how mypy, checking for Linux, knows to leave the rest alone)
assert sys.platform == "win32", "pycos.io.winpipe is for Windows"

import ctypes  # noqa: E402
import itertools  # noqa: E402
import msvcrt  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
from typing import Any, Optional, Tuple  # noqa: E402

import _winapi  # noqa: E402

__all__ = ["pipe", "Popen", "resolve"]

# (numbers from the Windows headers, so that the names read as there)
_GENERIC_READ = 0x80000000
_GENERIC_WRITE = 0x40000000
_FILE_READ_ATTRIBUTES = 0x80
_FILE_SHARE_READ = 0x1
_FILE_SHARE_WRITE = 0x2
_CREATE_ALWAYS = 2
_OPEN_EXISTING = 3
_OPEN_ALWAYS = 4
_FILE_FLAG_OVERLAPPED = 0x40000000
_FILE_FLAG_FIRST_PIPE_INSTANCE = 0x00080000
_PIPE_ACCESS_INBOUND = 0x1
_PIPE_TYPE_BYTE = 0x0
_PIPE_READMODE_BYTE = 0x0
_PIPE_WAIT = 0x0
_ERROR_PIPE_CONNECTED = 535
_FILE_TYPE_CHAR = 2
_FILE_TYPE_PIPE = 3
_FILE_END = 2
_FileModeInformation = 16
_FILE_SYNCHRONOUS_IO_ALERT = 0x10
_FILE_SYNCHRONOUS_IO_NONALERT = 0x20

_ids = itertools.count()


def _pipe(read_overlapped: bool, write_overlapped: bool, bufsize: int) -> Tuple[int, int]:
    """A one-way named pipe: (read handle, write handle), each overlapped or
    not as asked, neither inheritable."""
    if not isinstance(bufsize, int) or bufsize <= 0:
        raise ValueError("bufsize must be a positive int, not %r" % (bufsize,))
    name = r"\\.\pipe\pycos-%d-%d-%s" % (os.getpid(), next(_ids), os.urandom(4).hex())
    rh = _winapi.CreateNamedPipe(
        name, _PIPE_ACCESS_INBOUND | _FILE_FLAG_FIRST_PIPE_INSTANCE
        | (_FILE_FLAG_OVERLAPPED if read_overlapped else 0),
        _PIPE_TYPE_BYTE | _PIPE_READMODE_BYTE | _PIPE_WAIT, 1, bufsize, bufsize, 0,
        _winapi.NULL)
    try:
        wh = _winapi.CreateFile(
            name, _GENERIC_WRITE | _FILE_READ_ATTRIBUTES, 0, _winapi.NULL, _OPEN_EXISTING,
            _FILE_FLAG_OVERLAPPED if write_overlapped else 0, _winapi.NULL)
    except BaseException:
        _winapi.CloseHandle(rh)
        raise
    # the writer has opened it, so the pipe is connected: ConnectNamedPipe
    # says so at once (ERROR_PIPE_CONNECTED) and never waits
    try:
        _winapi.ConnectNamedPipe(rh, False)
    except OSError as e:
        if getattr(e, "winerror", None) != _ERROR_PIPE_CONNECTED:
            _winapi.CloseHandle(rh)
            _winapi.CloseHandle(wh)
            raise
    return rh, wh


def pipe(bufsize: int = 8192) -> Tuple[int, int]:
    """An overlapped pipe: ``(read_handle, write_handle)``, both ends
    overlapped; give each to :class:`~pycos.io.file.AsyncFile` (pycos 4.x's
    ``asyncfile.pipe``)."""
    return _pipe(True, True, bufsize)


def _crt(handle: int, readable: bool) -> int:
    """A C runtime descriptor that owns ``handle`` (closing it closes the
    handle)."""
    return msvcrt.open_osfhandle(handle, os.O_RDONLY if readable else 0)


class _IoStatus(ctypes.Structure):
    _fields_ = [("status", ctypes.c_void_p), ("information", ctypes.c_void_p)]


_query = None


def _mode_of(handle: int) -> Optional[int]:
    """The handle's FileModeInformation (its FILE_SYNCHRONOUS_IO_* bits),
    None when the system does not say."""
    global _query
    query = _query
    if query is None:
        try:
            query = ctypes.WinDLL("ntdll").NtQueryInformationFile
        except (OSError, AttributeError):
            return None
        query.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_ulong,
                          ctypes.c_int]
        query.restype = ctypes.c_long
        _query = query
    iosb = _IoStatus()
    mode = ctypes.c_ulong(0)
    if query(handle, ctypes.byref(iosb), ctypes.byref(mode), ctypes.sizeof(mode),
             _FileModeInformation) != 0:
        return None
    return mode.value


def _check_overlapped(handle: int) -> None:
    """Refuse a handle opened for synchronous I/O: a read on a pipe would
    hold the scheduler's thread until data came, and the completion port
    never hears of a file's."""
    try:
        kind = _winapi.GetFileType(handle)
    except OSError as e:
        raise OSError(e.errno, "AsyncFile: not a usable handle (%s)" % (e,)) from None
    mode = _mode_of(handle)
    if mode is None or not mode & (_FILE_SYNCHRONOUS_IO_ALERT | _FILE_SYNCHRONOUS_IO_NONALERT):
        return
    if kind in (_FILE_TYPE_PIPE, _FILE_TYPE_CHAR):
        raise ValueError(
            "AsyncFile: this pipe was not opened for overlapped I/O, so reading it "
            "would stop every task until data came; on Windows make pipes with "
            "pycos.asyncfile.pipe() and processes with pycos.asyncfile.Popen")
    raise ValueError(
        "AsyncFile: this file was not opened for overlapped I/O (Python's open() "
        "does not); on Windows give AsyncFile the path and a mode instead: "
        "AsyncFile(path, 'rb')")


def _open(path: str, mode: str, share: Optional[int]) -> Tuple[int, bool]:
    """Open ``path`` for overlapped I/O as ``mode`` ('r', 'w' or 'a', each
    with '+' allowed; 'b' ignored): (handle, readable)."""
    m = mode.replace("b", "")
    plus = "+" in m
    m = m.replace("+", "")
    if m == "r":
        access, create = _GENERIC_READ | (_GENERIC_WRITE if plus else 0), _OPEN_EXISTING
    elif m == "w":
        access, create = _GENERIC_WRITE | (_GENERIC_READ if plus else 0), _CREATE_ALWAYS
    elif m == "a":
        access, create = _GENERIC_WRITE | (_GENERIC_READ if plus else 0), _OPEN_ALWAYS
    else:
        raise ValueError("AsyncFile: mode must be 'r', 'w' or 'a' (with '+' and 'b' "
                         "allowed), not %r" % (mode,))
    if share is None:
        share = _FILE_SHARE_READ | _FILE_SHARE_WRITE
    handle = _winapi.CreateFile(path, access, share, _winapi.NULL, create,
                                _FILE_FLAG_OVERLAPPED, _winapi.NULL)
    if m == "a":
        # the reactor starts at the file pointer it finds: the end
        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
        kernel32.SetFilePointerEx.argtypes = [ctypes.c_void_p, ctypes.c_longlong,
                                              ctypes.c_void_p, ctypes.c_ulong]
        if not kernel32.SetFilePointerEx(handle, 0, None, _FILE_END):
            err = ctypes.get_last_error()
            _winapi.CloseHandle(handle)
            raise ctypes.WinError(err)
    return handle, m == "r" or plus


def resolve(what: Any, mode: str, share: Optional[int]) -> Tuple[int, int, Any]:
    """What an AsyncFile is made of on Windows: ``(handle, crt_fd, owner)``.
    ``what`` is a handle (an int, as pycos 4.x took it; e.g. from
    :func:`pipe`), a path (opened for overlapped I/O as ``mode``) or an
    object with ``fileno()`` (``owner``: it is closed with the AsyncFile)."""
    if isinstance(what, str):
        handle, readable = _open(what, mode, share)
        try:
            return handle, _crt(handle, readable), None
        except BaseException:
            _winapi.CloseHandle(handle)
            raise
    if isinstance(what, bool) or not (isinstance(what, int) or hasattr(what, "fileno")):
        raise TypeError("AsyncFile needs a handle, a path or an object with fileno(), "
                        "not %r" % (type(what).__name__,))
    if isinstance(what, int):
        _check_overlapped(what)
        return what, _crt(what, mode.startswith("r")), None
    fd = what.fileno()
    handle = msvcrt.get_osfhandle(fd)
    _check_overlapped(handle)
    return handle, fd, what


class Popen(subprocess.Popen):
    """``subprocess.Popen`` whose ``subprocess.PIPE`` ends are overlapped on
    this side and AsyncFile objects (``stdin``, ``stdout``, ``stderr``), so
    that :class:`~pycos.io.file.AsyncPipe` reads and writes them without
    blocking the scheduler (pycos 4.x's ``asyncfile.Popen``; on Windows
    ``subprocess.Popen``'s pipes cannot be waited on).  Another process's
    ``stdout`` AsyncFile may be given as ``stdin``, to chain them."""

    def __init__(self, args: Any, stdin: Any = None, stdout: Any = None, stderr: Any = None,
                 **kwargs: Any) -> None:
        from pycos.io.file import AsyncFile
        if kwargs.get("text") or kwargs.get("universal_newlines") or kwargs.get("encoding") \
                or kwargs.get("errors"):
            raise ValueError("asyncfile.Popen's pipes carry bytes: text, universal_newlines, "
                             "encoding and errors are not supported")
        mine = {}               # name -> the parent's end (a handle)
        theirs = []             # the child's ends, as C runtime descriptors
        try:
            if stdin == subprocess.PIPE:
                rh, wh = _pipe(False, True, 65536)
                mine["stdin"] = wh
                stdin = _crt(rh, True)
                theirs.append(stdin)
            if stdout == subprocess.PIPE:
                rh, wh = _pipe(True, False, 65536)
                mine["stdout"] = rh
                stdout = _crt(wh, False)
                theirs.append(stdout)
            if stderr == subprocess.PIPE:
                rh, wh = _pipe(True, False, 65536)
                mine["stderr"] = rh
                stderr = _crt(wh, False)
                theirs.append(stderr)
            super().__init__(args, stdin=stdin, stdout=stdout, stderr=stderr, **kwargs)
        except BaseException:
            for h in mine.values():
                _winapi.CloseHandle(h)
            for fd in theirs:
                os.close(fd)
            raise
        for fd in theirs:           # the child has its copies
            os.close(fd)
        # (none was subprocess's PIPE, so it left these None)
        for name, h in mine.items():
            setattr(self, name, AsyncFile(h, "w" if name == "stdin" else "r"))

    def close(self) -> None:
        """Close this side's pipes (tasks waiting on them wake)."""
        for name in ("stdin", "stdout", "stderr"):
            f = getattr(self, name)
            if f is not None:
                f.close()
                setattr(self, name, None)

    def terminate(self) -> None:
        """Close the pipes and terminate the process."""
        self.close()
        super().terminate()
