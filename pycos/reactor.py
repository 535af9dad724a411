"""The thin Python face of the C reactor (``csrc/``, compiled as ``pycos._reactor``;
on Windows a DLL loaded through cffi's ABI mode, see :mod:`pycos._abi`).

Everything the C library does is reachable from here with Python types:

* :class:`Loop` owns one ``rx_loop``: timers, a cross-thread wakeup, a
  pollable descriptor, and completion-style I/O on descriptors.
* Results follow one rule.  An operation returns its result at once when it
  could complete inline, or :data:`PENDING`; a pending operation completes
  later as an event ``(token, EV_DONE, aux, result)`` returned by
  :meth:`Loop.poll` / :meth:`Loop.poll_flat`.  A negative result is an errno:
  inline ones are raised here as :class:`OSError` (so ``ConnectionResetError``,
  ``BrokenPipeError`` ... appear by themselves), event ones are turned into
  the same exception by :func:`error`.  That is the one place where C errors
  become Python errors.
* Buffers handed to a pending operation are held by the loop until the
  operation's event has been returned, so the C side never writes into
  memory Python has freed.

Tokens are caller-chosen integers (int64).  The scheduler uses them to find
the waiter of an event without any dictionary of C handles.
"""

import collections
import errno
import math
import os
import socket
import struct
import sys

try:
    from pycos._reactor import ffi, lib
except ImportError:
    if sys.platform != "win32":
        raise
    # Windows: the DLL the package carries, through cffi's ABI mode
    from pycos._abi import load_packaged
    ffi, lib = load_packaged()

__all__ = [
    "Loop", "Event", "AddrBuffer", "PENDING", "NEVER", "EV_DONE", "EV_TIMER", "EV_READY",
    "EV_WAKEUP", "EV_DATA", "READ", "WRITE", "backends", "error", "sockaddr", "parse_sockaddr",
]

PENDING = lib.RX_PENDING
NEVER = lib.RX_NEVER
EV_DONE = lib.RX_EV_DONE
EV_TIMER = lib.RX_EV_TIMER
EV_READY = lib.RX_EV_READY
EV_WAKEUP = lib.RX_EV_WAKEUP
EV_DATA = lib.RX_EV_DATA
READ = lib.RX_READ
WRITE = lib.RX_WRITE
_ALL = lib.RX_ALL
_LAZY = lib.RX_LAZY
_ARENA = lib.RX_ARENA

# the per-operation entry points, bound once: a call through the imported
# ``lib`` is an attribute lookup on it every time (CPython)
_rx_now = lib.rx_now
_rx_timer_after = lib.rx_timer_after
_rx_timer_cancel = lib.rx_timer_cancel
_rx_poll = lib.rx_poll
_rx_wakeup = lib.rx_wakeup

#: One reported event: the caller's token, its kind (EV_*), aux (ready sides
#: for EV_READY, bytes moved before a cancel for EV_DONE, the bytes' offset in
#: the arena for EV_DATA) and the result.
Event = collections.namedtuple("Event", "token kind aux result")

_BATCH = 1024          # events fetched by one poll
_MAX_WAIT_NS = 1 << 62


def error(rc):
    """Return the OSError for a negative errno result ``rc``."""
    return OSError(-rc, os.strerror(-rc))


def _check(rc):
    if rc < 0:
        raise error(rc)
    return rc


def backends():
    """Names of the backends compiled in, best first (e.g. ``['epoll', 'poll']``)."""
    return ffi.string(lib.rx_backends()).decode().split(",")


def _timeout_ns(timeout):
    """Seconds (None = no limit) to the reactor's nanoseconds (-1 = no limit)."""
    if timeout is None:
        return -1
    timeout = float(timeout)
    if math.isnan(timeout):
        raise ValueError("timeout is NaN")
    if timeout <= 0:
        return 0
    if timeout * 1e9 >= _MAX_WAIT_NS:
        return -1
    return int(math.ceil(timeout * 1e9))


# ---- socket addresses -------------------------------------------------------

_BSD_LAYOUT = sys.platform == "darwin" or "bsd" in sys.platform
_AF_UNIX = getattr(socket, "AF_UNIX", None)


def _family_header(family, length):
    if _BSD_LAYOUT:
        return struct.pack("=BB", min(length, 255), family)
    return struct.pack("=H", family)


def sockaddr(family, address):
    """Encode a Python socket address as the bytes of a ``struct sockaddr``.

    ``address`` is what the socket module uses: ``(host, port)`` for AF_INET,
    ``(host, port[, flowinfo[, scope_id]])`` for AF_INET6, a path (str or
    bytes; a leading NUL is Linux's abstract namespace) for AF_UNIX.  Hosts
    must be numeric here; resolve names first (``socket.getaddrinfo``).
    """
    if family == socket.AF_INET:
        host, port = address
        packed = socket.inet_pton(socket.AF_INET, host or "0.0.0.0")
        return _family_header(family, 16) + struct.pack("!H", port) + packed + bytes(8)
    if family == socket.AF_INET6:
        host, port = address[0], address[1]
        flowinfo = address[2] if len(address) > 2 else 0
        scope_id = address[3] if len(address) > 3 else 0
        packed = socket.inet_pton(socket.AF_INET6, host or "::")
        return (_family_header(family, 28) + struct.pack("!HI", port, flowinfo) + packed
                + struct.pack("=I", scope_id))
    if _AF_UNIX is not None and family == _AF_UNIX:
        path = os.fsencode(address)
        if len(path) > 107:
            raise ValueError("AF_UNIX path too long")
        if not path.startswith(b"\0"):
            path += b"\0"
        return _family_header(family, 2 + len(path)) + path
    raise ValueError("unsupported address family %r" % (family,))


def parse_sockaddr(data):
    """Decode the bytes of a ``struct sockaddr`` into ``(family, address)``."""
    if len(data) < 2:
        return None, None
    family = data[1] if _BSD_LAYOUT else struct.unpack_from("=H", data)[0]
    if family == socket.AF_INET:
        port, = struct.unpack_from("!H", data, 2)
        return family, (socket.inet_ntop(socket.AF_INET, bytes(data[4:8])), port)
    if family == socket.AF_INET6:
        port, flowinfo = struct.unpack_from("!HI", data, 2)
        scope_id, = struct.unpack_from("=I", data, 24)
        host = socket.inet_ntop(socket.AF_INET6, bytes(data[8:24]))
        return family, (host, port, flowinfo, scope_id)
    if _AF_UNIX is not None and family == _AF_UNIX:
        path = bytes(data[2:])
        if not path.startswith(b"\0"):
            path = path.split(b"\0", 1)[0]
        return family, os.fsdecode(path)
    return family, bytes(data[2:])


class AddrBuffer(object):
    """Room for the sender's address of :meth:`Loop.recvfrom`."""

    __slots__ = ("_buf", "_len")

    def __init__(self):
        self._buf = ffi.new("char[]", 128)
        self._len = ffi.new("uint32_t *", 128)

    def reset(self):
        self._len[0] = 128

    def address(self):
        """The address received, as the socket module gives it."""
        return parse_sockaddr(ffi.buffer(self._buf, self._len[0])[:])[1]


# ---- the loop ---------------------------------------------------------------

class Loop(object):
    """One reactor loop.  Use it from one thread; :meth:`wakeup` from any.

    ``backend`` is ``'epoll'``, ``'poll'`` or None (``$PYCOS_BACKEND``, else
    the best one).  ``manual_clock=True`` starts a manual clock at 0 (see
    :meth:`clock_manual`).
    """

    def __init__(self, backend=None, manual_clock=False):
        err = ffi.new("int *")
        name = ffi.NULL if backend is None else backend.encode()
        ptr = lib.rx_loop_new(name, err)
        if ptr == ffi.NULL:
            if err[0] == -errno.EINVAL:   # the only EINVAL: an unknown name
                raise ValueError("unknown reactor backend %r (compiled in: %s)"
                                 % (backend or os.environ.get("PYCOS_BACKEND"), ", ".join(backends())))
            raise error(err[0])
        # ffi.gc closes a loop nobody closed; close() releases it early.
        self._l = ffi.gc(ptr, lib.rx_loop_close)
        self._evs = ffi.new("rx_event[]", _BATCH)
        self._flat = memoryview(ffi.buffer(self._evs)).cast("q")
        self._held = {}
        self._arena = None
        self._stats = ffi.new("rx_stats *")
        self.backend = ffi.string(lib.rx_loop_backend(self._l)).decode()
        if manual_clock:
            self.clock_manual(0)

    closed = False

    def close(self):
        """Free the loop.  Pending operations are dropped without events."""
        if self.closed:
            return
        ffi.release(self._l)
        self._held.clear()
        self._arena = None
        self._flat.release()
        self.__class__ = _ClosedLoop

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self):
        return "<pycos.reactor.Loop %s>" % self.backend

    def fileno(self):
        """A descriptor that is readable when the loop has I/O or a wakeup to
        report (not for timers: see :meth:`next_deadline`).  ``OSError``
        (ENOTSUP) on backends that have none (``poll``)."""
        return _check(lib.rx_loop_fd(self._l))

    # -- clock and timers --

    def now(self):
        """Current time on the loop's clock, in integer nanoseconds."""
        return _rx_now(self._l)

    def clock_manual(self, start_ns=0):
        """Switch to a manual clock at ``start_ns``: time moves only by
        :meth:`clock_set`/:meth:`clock_advance`, and polls never wait for
        timers.  For tests that need virtual time."""
        _check(lib.rx_clock_manual(self._l, start_ns))

    @property
    def is_manual(self):
        return bool(lib.rx_clock_is_manual(self._l))

    def clock_set(self, now_ns):
        _check(lib.rx_clock_set(self._l, now_ns))

    def clock_advance(self, delta_ns):
        _check(lib.rx_clock_advance(self._l, delta_ns))

    def timer_at(self, deadline_ns, token):
        """Start a timer at an absolute deadline (ns); returns its id."""
        return _check(lib.rx_timer_start(self._l, deadline_ns, token))

    def timer_after(self, delay, token):
        """Start a timer ``delay`` seconds from now; returns its id.  NaN is a
        ValueError; infinite delays never fire; delays <= 0 fire at the next
        poll."""
        rc = _rx_timer_after(self._l, delay, token)
        if rc < 0:
            if rc == -errno.EINVAL:
                raise ValueError("timer delay is NaN")
            raise error(rc)
        return rc

    def timer_cancel(self, timer_id):
        """Cancel a timer; False when it already fired or was cancelled."""
        return _rx_timer_cancel(self._l, timer_id) == 0

    def next_deadline(self):
        """Deadline (ns) of the earliest timer, or None."""
        d = lib.rx_next_deadline(self._l)
        return None if d == NEVER else d

    # -- waiting --

    def poll_flat(self, timeout_ns):
        """Wait up to ``timeout_ns`` (< 0: no limit) and return the events as a
        flat list ``[token, kind, aux, result, token, kind, ...]``.  The
        hot-path form of :meth:`poll`."""
        n = _rx_poll(self._l, timeout_ns, self._evs, _BATCH)
        if n <= 0:
            if n < 0:
                raise error(n)
            return []
        flat = self._flat[:4 * n].tolist()
        held = self._held
        if held:
            for i in range(0, 4 * n, 4):
                if flat[i + 1] == EV_DONE:
                    held.pop(flat[i], None)
        return flat

    def arena(self):
        """The loop's read arena as a cffi buffer (made on the first call):
        the bytes of an EV_DATA event are ``arena()[aux:aux + result]``,
        valid until the next poll."""
        buf = self._arena
        if buf is None:
            size = ffi.new("size_t *")
            p = lib.rx_arena(self._l, size)
            if p == ffi.NULL:
                raise MemoryError("reactor read arena")
            buf = self._arena = ffi.buffer(p, size[0])
        return buf

    def poll(self, timeout=None):
        """Wait up to ``timeout`` seconds (None: no limit, 0: only what is
        ready) and return a list of :class:`Event`."""
        flat = self.poll_flat(_timeout_ns(timeout))
        return [Event(*flat[i:i + 4]) for i in range(0, len(flat), 4)]

    def wakeup(self):
        """Make a concurrent or the next poll return with an EV_WAKEUP event.
        Safe from any thread; wakeups coalesce."""
        _check(_rx_wakeup(self._l))

    # -- completion-style I/O --

    def _pending(self, rc, token, hold):
        if rc == PENDING:
            self._held[token] = hold
        elif rc < 0:
            raise error(rc)
        return rc

    def recv(self, fd, buf, token, all=False, lazy=False, arena=False):
        """Read into the writable buffer ``buf`` (up to its length; all of it
        with ``all=True``, fewer bytes only at end of stream).  Returns the
        byte count inline, or PENDING.  ``lazy=True`` (not with ``all``): a
        recv that must wait does not keep ``buf``; it completes as an
        EV_READY event and the caller calls ``recv`` again.  ``arena=True``
        too: when the descriptor becomes ready the loop reads up to
        ``len(buf)`` bytes into its :meth:`arena` and reports EV_DATA
        (``aux`` the offset there, ``result`` the count; EV_READY when the
        arena has no room for that many)."""
        c = ffi.from_buffer(buf, require_writable=True)
        if lazy:
            if all:
                raise ValueError("recv: lazy and all exclude each other")
            rc = lib.rx_recv(self._l, fd, c, len(c), _LAZY | _ARENA if arena else _LAZY, token)
            if rc < 0 and rc != PENDING:
                raise error(rc)
            return rc
        rc = lib.rx_recv(self._l, fd, c, len(c), _ALL if all else 0, token)
        return self._pending(rc, token, c)

    def send(self, fd, data, token, all=False):
        """Write from ``data`` (all of it with ``all=True``).  Returns the byte
        count inline, or PENDING."""
        c = ffi.from_buffer(data)
        rc = lib.rx_send(self._l, fd, c, len(c), _ALL if all else 0, token)
        return self._pending(rc, token, c)

    def accept(self, fd, token):
        """Accept a connection: the new descriptor (non-blocking,
        close-on-exec), or PENDING."""
        return self._pending(lib.rx_accept(self._l, fd, token), token, None)

    def connect(self, fd, addr, token):
        """Connect to ``addr`` (bytes of a sockaddr, see :func:`sockaddr`):
        0 or PENDING."""
        c = ffi.from_buffer(addr)
        return self._pending(lib.rx_connect(self._l, fd, c, len(c), token), token, c)

    def recvfrom(self, fd, buf, addrbuf, token):
        """Receive a datagram into ``buf``; the sender goes to ``addrbuf`` (an
        :class:`AddrBuffer`).  Returns the byte count, or PENDING."""
        c = ffi.from_buffer(buf, require_writable=True)
        addrbuf._len[0] = 128
        rc = lib.rx_recvfrom(self._l, fd, c, len(c), addrbuf._buf, addrbuf._len, token)
        return self._pending(rc, token, (c, addrbuf))

    def sendto(self, fd, data, addr, token):
        """Send a datagram to ``addr`` (bytes of a sockaddr)."""
        c = ffi.from_buffer(data)
        a = ffi.from_buffer(addr)
        return self._pending(lib.rx_sendto(self._l, fd, c, len(c), a, len(a), token), token, (c, a))

    def watch(self, fd, sides, token):
        """One-shot readiness of READ and/or WRITE: the ready sides inline, or
        PENDING and later an EV_READY event whose aux holds them."""
        return self._pending(lib.rx_watch(self._l, fd, sides, token), token, None)

    def cancel(self, fd, sides=READ | WRITE):
        """Cancel pending operations on ``fd``; each is reported by the next
        poll as EV_DONE with result -ECANCELED.  Returns how many."""
        return _check(lib.rx_cancel(self._l, fd, sides))

    def pending_done(self, fd, side):
        """Bytes moved so far by the operation pending on ``fd``'s ``side``
        (READ or WRITE), or None when nothing is pending there."""
        n = lib.rx_pending_done(self._l, fd, side)
        return None if n < 0 else n

    def withdraw(self, fd, side):
        """Cancel the operation pending on ``fd``'s ``side`` (as :meth:`cancel`)
        and return the bytes it moved in the end, or None when nothing is
        pending there.  Unlike :meth:`pending_done` then :meth:`cancel`, it
        counts what a completion backend's (iocp's) kernel call moved since
        the last poll, before the cancel took hold."""
        n = lib.rx_withdraw(self._l, fd, side)
        return None if n < 0 else n

    def take_error(self, fd):
        """The error an ``all=True`` recv on ``fd`` met after it had read
        some data (it returned the data), as an OSError, cleared; None when
        there is none.  Otherwise the next recv raises it."""
        rc = lib.rx_take_error(self._l, fd)
        return error(rc) if rc else None

    def drained(self, fd, sides=READ):
        """The caller read (or wrote) ``fd`` itself and found ``sides``
        drained (EAGAIN, or fewer bytes than it asked for): the next
        operation there waits for readiness without trying first."""
        _check(lib.rx_drained(self._l, fd, sides))

    def forget(self, fd):
        """Cancel everything on ``fd`` and drop it from the loop; call before
        closing a descriptor the loop has seen."""
        return _check(lib.rx_forget(self._l, fd))

    def statistics(self):
        """Counters of the loop: backend, pending_ops, registered_fds,
        known_fds, timers, queued_events, polls, syscalls."""
        s = self._stats
        lib.rx_loop_stats(self._l, s)
        return {
            "backend": self.backend,
            "pending_ops": s.pending_ops,
            "registered_fds": s.registered_fds,
            "known_fds": s.known_fds,
            "timers": s.timers,
            "queued_events": s.queued_events,
            "polls": s.polls,
            "syscalls": s.syscalls,
        }


class _ClosedLoop(Loop):
    """What a Loop becomes once closed: every use is a clear error."""

    closed = True

    def __getattribute__(self, name):
        if name in ("close", "closed", "backend", "__class__", "__repr__", "__enter__", "__exit__"):
            return object.__getattribute__(self, name)
        raise ValueError("reactor loop is closed")

    def close(self):
        pass

    def __repr__(self):
        return "<pycos.reactor.Loop %s (closed)>" % self.backend
