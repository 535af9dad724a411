"""``pycos.asyncfile`` -- the module path pycos 4.x programs import for
:class:`AsyncFile` and :class:`AsyncPipe` (they live in :mod:`pycos.io.file`,
with how ``yield pipe.wait()`` waits for a process: a pidfd on Linux, a
reaper thread elsewhere).

On Windows it also has ``pipe()`` (an overlapped pipe: two handles for
AsyncFile) and ``Popen`` (``subprocess.Popen`` whose pipes are AsyncFiles
over overlapped handles), as 4.x had: pipes that ``subprocess`` or
``os.pipe()`` make there cannot be waited on (:mod:`pycos.io.winpipe`).
On POSIX, pass ordinary ``subprocess.Popen`` objects to :class:`AsyncPipe`.
"""
import sys

from pycos.io.file import AsyncFile, AsyncPipe

__all__ = ["AsyncFile", "AsyncPipe"]

if sys.platform == "win32":
    from pycos.io.winpipe import Popen, pipe
    __all__ += ["Popen", "pipe"]
