"""``pycos.asyncfile`` -- the module path pycos 4.x programs import for
:class:`AsyncFile` and :class:`AsyncPipe` (they live in :mod:`pycos.io.file`,
with how ``yield pipe.wait()`` waits for a process: a pidfd on Linux, a
reaper thread elsewhere).

``asyncfile.Popen`` and ``asyncfile.pipe`` (overlapped handles) exist only
on Windows, where they come with the IOCP backend; on POSIX, pass ordinary
``subprocess.Popen`` objects to :class:`AsyncPipe`.
"""
from pycos.io.file import AsyncFile, AsyncPipe

__all__ = ["AsyncFile", "AsyncPipe"]
