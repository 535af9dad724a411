"""File transfer between peers: ``send_file`` and ``del_file``.

The sender streams a file in chunks: a ``file_begin`` request (name,
directory, size, mode, mtime) that the receiver may answer "already there"
(0), "refused" (-1) or "go" with a transfer id; then raw ``F_DATA`` frames
(8-byte transfer id + bytes, no pickle); then ``file_end``, answered once the
file is in place.  The sender waits whenever more than
``config.PeerHighWater`` bytes are queued for the peer, so a file of any
size passes through a bounded amount of memory.

The receiver does everything on the system scheduler's thread, in frame
order, through :mod:`pycos.net.paths`: a file is written to a temporary file
inside ``dest_path`` and renamed into place only when every byte arrived, so
a transfer cut short (or a peer that goes offline) leaves nothing behind, and
no path a peer names can reach outside ``dest_path``.  The size the sender
declared is a hard limit: a byte more and the transfer is refused.
"""

import os
import stat
import struct

from pycos import config
from pycos.core.log import logger
from pycos.core.scheduler import Scheduler
from pycos.core.support import Location
from pycos.net import paths, wire

__all__ = ["Files", "send_file", "del_file"]

_CHUNK = 256 * 1024
_ID = struct.Struct(">Q")


class _Xfer(object):
    __slots__ = ("writer", "size", "mode", "mtime", "bad")


class Files(object):
    """The receiving side of a node (system thread only)."""

    def __init__(self, node):
        self.node = node
        self.xfers = {}            # (peer, id) -> _Xfer
        self.ids = 0

    def _dir(self):
        return paths.ConfinedDir(self.node.dest_path, create=True)

    def begin(self, peer, name, dirname, size, mode, mtime, overwrite):
        node = self.node
        limit = node.max_file_size
        if not isinstance(size, int) or size < 0 or (limit is not None and size > limit):
            logger.warning("netpycos: file %r from %s refused: size %s over max_file_size %s",
                           name, peer.location, size, limit)
            return -1
        try:
            with self._dir() as d:
                if d.existing_same(dirname, name, size, mtime):
                    return 0
                writer = d.open_for_write(dirname, name, bool(overwrite))
        except (paths.PathRefused, TypeError, OSError, NotImplementedError) as e:
            logger.warning("netpycos: file %r (dir %r) from %s refused: %s", name, dirname,
                           peer.location, e)
            return -1
        self.ids += 1
        x = _Xfer()
        x.writer, x.size, x.mode, x.mtime, x.bad = writer, size, mode, mtime, False
        self.xfers[(peer, self.ids)] = x
        return ("go", self.ids)

    def on_data(self, peer, payload):
        if len(payload) < _ID.size:
            raise wire.ProtocolError("short file data frame")
        (xid,) = _ID.unpack_from(payload)
        x = self.xfers.get((peer, xid))
        if x is None or x.bad:
            return                 # a refused or aborted transfer: drop its data
        data = memoryview(payload)[_ID.size:]
        if x.writer.size + len(data) > x.size:
            logger.warning("netpycos: file from %s is larger than announced; refused",
                           peer.location)
            x.bad = True
            x.writer.abort()
            return
        try:
            x.writer.write(data)
        except OSError as e:
            logger.warning("netpycos: writing file from %s failed: %s", peer.location, e)
            x.bad = True
            x.writer.abort()

    def end(self, peer, xid):
        x = self.xfers.pop((peer, xid), None)
        if x is None:
            return -1
        if x.bad or x.writer.size != x.size:
            x.writer.abort()
            return -1
        try:
            x.writer.commit(mode=x.mode, mtime=x.mtime)
        except (paths.PathRefused, OSError, TypeError, NotImplementedError) as e:
            logger.warning("netpycos: file from %s not installed: %s", peer.location, e)
            x.writer.abort()
            return -1
        return 0

    def delete(self, peer, name, dirname):
        try:
            with self._dir() as d:
                d.delete(dirname, name)
        except (paths.PathRefused, TypeError, OSError, NotImplementedError) as e:
            logger.warning("netpycos: del_file %r (dir %r) from %s refused: %s", name, dirname,
                           peer.location, e)
            return -1
        return 0

    def peer_gone(self, peer):
        for key in [k for k in self.xfers if k[0] is peer]:
            self.xfers.pop(key).writer.abort()

    def close(self):
        for x in self.xfers.values():
            x.writer.abort()
        self.xfers.clear()


def _files(node):
    if node._files is None:
        node._files = Files(node)
    return node._files


# ---- request handlers (system thread) -------------------------------------------


def _op_file_begin(node, peer, req, name, dirname, size, mode, mtime, overwrite):
    return _files(node).begin(peer, name, dirname, size, mode, mtime, overwrite)


def _op_file_end(node, peer, req, xid):
    return _files(node).end(peer, xid)


def _op_file_del(node, peer, req, name, dirname):
    return _files(node).delete(peer, name, dirname)


OPS = {"file_begin": _op_file_begin, "file_end": _op_file_end, "file_del": _op_file_del}


# ---- the sending side (a sub-call of the caller's task) --------------------------------


def _check(location, file, dir, timeout):
    if not isinstance(location, Location):
        raise TypeError("location must be a Location, not %r" % (location,))
    if not isinstance(file, str) or not file:
        raise TypeError("file must be a path (str), not %r" % (file,))
    if dir is not None and not isinstance(dir, str):
        raise TypeError("dir must be a str or None, not %r" % (dir,))
    if timeout is not None and (isinstance(timeout, bool)
                                or not isinstance(timeout, (int, float))):
        raise TypeError("timeout must be a number or None")


def send_file(node, location, file, dir=None, overwrite=False, timeout=None):
    """[y] (see Pycos.send_file)"""
    _check(location, file, dir, timeout)
    task = Scheduler.cur_task()
    if task is None:
        raise RuntimeError("send_file() must be yielded in a task")
    try:
        st = os.stat(file)
    except OSError as e:
        logger.warning("send_file: %s", e)
        return -1
    if not stat.S_ISREG(st.st_mode):
        logger.warning("send_file: %s is not a regular file", file)
        return -1
    r = yield node._request(location, "file_begin",
                            (os.path.basename(file), dir, st.st_size,
                             stat.S_IMODE(st.st_mode), st.st_mtime_ns, bool(overwrite)),
                            timeout, alarm=-1, fail=-1)
    if r == 0 or r == -1:
        return r
    if not (isinstance(r, tuple) and len(r) == 2 and r[0] == "go"):
        return -1
    xid = r[1]
    peer = node._peer_for(location)
    if peer is None:
        return -1
    head = _ID.pack(xid)
    pre = 5 + len(head)                  # frame head + transfer id
    sent = 0
    with open(file, "rb") as f:
        while sent < st.st_size:
            # each frame read in place behind its head: one copy of the data
            want = min(_CHUNK, st.st_size - sent)
            frame = bytearray(pre + want)
            n = f.readinto(memoryview(frame)[pre:])
            if not n:
                break
            if n < want:                 # the file shrank meanwhile
                frame = frame[:pre + n]
            frame[:pre] = wire.frame_head(wire.F_DATA, len(head) + n) + head
            if not peer.enqueue(frame):
                return -1
            sent += n
            if peer.queued() > config.PeerHighWater:
                ok = yield _drained(node, peer, task, timeout)
                if not ok:
                    return -1
    if sent != st.st_size:
        logger.warning("send_file: %s changed size while being sent", file)
    r = yield node._request(location, "file_end", (xid,), timeout, alarm=-1, fail=-1)
    return r


def _drained(node, peer, task, timeout):
    """Park ``task`` until the peer's queue is below the high-water mark
    (True), or the peer is gone / ``timeout`` passes (False)."""
    sched = task._sched
    if peer.gone:
        return sched._now_value(task, False)
    r = sched._park(task, timeout, False)
    wid = task._wid

    def wake():
        sched._post(sched._unpark, task, not peer.gone, wid)
    node._sys._post(_add_drained, peer, wake)
    return r


def _add_drained(peer, wake):
    if peer.gone or peer.queued() < config.PeerHighWater:
        wake()
    else:
        peer.drained.append(wake)
        peer._wake()


def del_file(node, location, file, dir=None, timeout=None):
    """[y] (see Pycos.del_file)"""
    _check(location, file, dir, timeout)
    return node._request(location, "file_del", (os.path.basename(file), dir), timeout,
                         alarm=-1, fail=-1)
