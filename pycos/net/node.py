"""The node: this process's presence on the network.

A :class:`Node` owns the listening socket, the discovery socket, the table of
:class:`~pycos.net.peer.Peer` objects and the requests waiting for answers.
It runs on the *system scheduler* (a second scheduler with its own thread),
so handshakes, heartbeats and replies keep flowing while user tasks compute.

Threads, and who touches what
-----------------------------
* The system thread runs the listener, discovery, every peer's reader and
  writer, and turns incoming frames into work.
* Work on user objects (delivering a message to a task, starting an RPS
  task, subscribing to a channel) is *posted* to the user scheduler, in the
  order the frames arrived, and the posted function sends the reply itself.
  Messages for tasks are posted in batches: one post per read, not per
  message.
* User tasks (and plain threads) call in through :meth:`_request`,
  :meth:`_one_way` and :meth:`_send_task`: they pickle in their own thread,
  append to the peer's queue, and park on their own scheduler.  Replies wake
  them with ``_unpark(task, value, wid)`` posted to that scheduler; the wait
  id makes a late reply (after a timeout) harmless.

Every wait on a peer ends: with the answer, the caller's timeout, or the
peer being declared offline (:meth:`_peer_offline` fails everything still
waiting on it).

Wire messages (pickled, after authentication only) are tuples whose first
item says what they are: ``("s", task id, stamp, msg)`` a message for a
task; ``("q", req, op, args)`` a request; ``("r", req, value)`` its reply;
``("x", req)`` the requester gave up; one-way ``throw``/``terminate``/
``resume``/``ch_send``; ``("done", req, value)`` the end of a task started
by an RPS call; ``("dm", req, status)`` the same when the caller's own
monitor is that task's monitor too (its MonitorStatus goes to both).
"""

import atexit
import itertools
import os
import random
import socket
import threading
import time
import traceback

from typing import Any, Tuple

from pycos import config
from pycos.core.lend import Lend
from pycos.core.log import logger
from pycos.core.scheduler import Scheduler
from pycos.core.support import Location, MonitorStatus
from pycos.core.task import Task
from pycos.io.socket import AsyncSocket
from pycos.net import files, refs, wire
from pycos.net.peer import Peer, handshake_acceptor

__all__ = ["Node", "PeerStatus"]

_DEFER = object()      # a request handler that replies later


class PeerStatus(object):
    """What a task registered with ``peer_status`` receives when a peer comes
    online or goes offline: ``location``, ``name``, ``status``.

    A process restarted at a peer's address is another peer: the one we
    knew goes Offline, then the new one comes Online.  A task may have
    heard of the new process's tasks (from a third peer) before the old
    one's Offline arrives: :meth:`about` tells which process a reference
    belongs to."""

    Offline = 0
    Online = 1

    __slots__ = ("location", "name", "status", "_stamps")

    def __init__(self, location: Location, name: str, status: int) -> None:
        self.location = location
        self.name = name
        self.status = status
        self._stamps: Tuple[int, ...] = ()     # its process's (see about): the node sets them

    @classmethod
    def _of(cls, peer: Any, status: int) -> "PeerStatus":
        """(the node's) The status of ``peer``, about its incarnation."""
        s = cls(peer.location, peer.name, status)
        s._stamps = peer.stamps
        return s

    def about(self, obj: Any) -> bool:
        """Whether remote task or channel ``obj`` lives in the process this
        status is about: False for an object elsewhere, or of another
        process (before or after a restart) at the same location."""
        if getattr(obj, "location", None) != self.location:
            return False
        stamp = getattr(obj, "_stamp", None)
        return not self._stamps or stamp is None or stamp in self._stamps

    def __repr__(self):
        return "PeerStatus(%s, %r, %s)" % (self.location, self.name,
                                           "Online" if self.status else "Offline")

    def __getstate__(self):
        return (self.location, self.name, self.status, self._stamps)

    def __setstate__(self, state):
        self.location, self.name, self.status = state[:3]
        self._stamps = state[3] if len(state) > 3 else ()


class _Waiter(object):
    """A task parked until a request is answered."""

    __slots__ = ("sched", "task", "wid", "fail", "loc", "on_reply", "asked", "kind", "gen")

    def __init__(self, sched, task, fail, loc, on_reply=None, kind=None):
        self.sched, self.task, self.fail, self.loc = sched, task, fail, loc
        self.on_reply, self.kind, self.asked, self.wid = on_reply, kind, None, 0
        self.gen = -1          # the peer's Peer.gen when asked (see _peer_restarted)

    def resolve(self, value):
        sched = self.sched
        if sched._on_loop():
            sched._unpark(self.task, value, self.wid)
        else:
            sched._post(sched._unpark, self.task, value, self.wid)


class _SyncWaiter(object):
    """A plain thread blocked until a request is answered."""

    __slots__ = ("event", "value", "fail", "loc", "on_reply", "asked", "kind", "gen")

    def __init__(self, loc):
        self.event, self.value, self.fail, self.loc = threading.Event(), None, None, loc
        self.on_reply, self.asked, self.kind, self.gen = None, None, None, -1

    def resolve(self, value):
        self.value = value
        self.event.set()


class _Sink(object):
    """Stands in a task's monitors to send its end to a peer as a reply."""

    __slots__ = ("node", "peer", "req", "kind")

    def __init__(self, node, peer, req, kind):
        self.node, self.peer, self.req, self.kind = node, peer, req, kind

    def send(self, status):
        if self.kind == "dm":            # the caller also monitors: the status whole
            value = status
        else:
            value = status.value if status.type is StopIteration else status
        self.node._answer(self.peer, self.req, value, self.kind)
        return 0


class _LogLimiter(object):
    """At most ``burst`` lines per ``period`` seconds, then one summary."""

    def __init__(self, burst=20, period=10.0):
        self.burst, self.period = burst, period
        self.start = 0.0
        self.count = 0
        self.dropped = 0

    def __call__(self, msg):
        now = time.monotonic()
        if now - self.start > self.period:
            if self.dropped:
                logger.warning("netpycos: %d similar messages suppressed", self.dropped)
            self.start, self.count, self.dropped = now, 0, 0
        self.count += 1
        if self.count <= self.burst:
            logger.warning("netpycos: %s", msg)
        else:
            self.dropped += 1


def _is_loopback(addr):
    return addr.startswith("127.") or addr == "::1"


def _numeric(addr):
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, addr)
            return True
        except (OSError, ValueError):
            pass
    return False


def _subnet_broadcast(addr):
    """The broadcast address of the interface that has IPv4 ``addr``
    (Linux ioctls; None where they are missing or nothing matches)."""
    try:
        import fcntl
        import struct
    except ImportError:
        return None
    try:
        names = [n for _, n in socket.if_nameindex()]
    except (AttributeError, OSError):          # PyPy has no if_nameindex
        try:
            names = os.listdir("/sys/class/net")
        except OSError:
            return None
    siocgifaddr, siocgifbrdaddr = 0x8915, 0x8919
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for name in names:
            req = struct.pack("256s", name.encode()[:15])
            try:
                if socket.inet_ntoa(fcntl.ioctl(probe.fileno(), siocgifaddr, req)[20:24]) != addr:
                    continue
                bcast = socket.inet_ntoa(fcntl.ioctl(probe.fileno(), siocgifbrdaddr, req)[20:24])
            except OSError:
                continue
            return bcast if bcast != "0.0.0.0" else None
    finally:
        probe.close()
    return None


class Node(object):
    """See the module docstring.  Made by :class:`pycos.netpycos.Pycos`."""

    def __init__(self, user, settings):
        self._user = user
        s = settings
        self._secret_given = bool(s.secret)
        self._key = wire.derive_key(s.secret)
        self._dkey = wire.derive_key(s.secret, b"discovery")
        self._proto = max(2, config._pickle_protocol())
        self._max_frame = int(s.max_frame)
        self._loopback = s.loopback
        self._name = s.name
        self._discover = s.discover_peers
        self.ignore_peers = False
        self._nonces = set()
        self._peers = {}                 # Location -> Peer
        self._lock = threading.RLock()
        self._pending = {}               # req -> _Waiter/_SyncWaiter
        self._reqs = itertools.count(1)
        self._watches = {}               # (kind, name) -> [(peer, req)]
        self._sendq = []                 # (task, msg) read, not yet posted
        self._status_tasks = []
        self._relay_addrs = set()         # peer(host, relay=True) not yet online
        self._rmonitors = {}             # Location -> {(remote task, monitor): None}
        self._boxes = {}                 # req -> RemoteTask (results of RPS calls)
        self._handshakes = 0
        self._closing = False
        self._log_once = _LogLimiter()
        self._files = None
        self._tls_server = s.tls_server
        self._tls_client = s.tls_client
        self.dest_path = s.dest_path
        self.max_file_size = s.max_file_size

        # sockets first, in the caller's thread: a port in use is the
        # constructor's exception
        family = s.family
        lsock = socket.socket(family, socket.SOCK_STREAM)
        try:
            lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            lsock.bind((s.host, s.tcp_port))
            lsock.listen(1024)
        except OSError:
            lsock.close()
            raise
        port = lsock.getsockname()[1]
        self._location = Location(s.ext_host or s.host, port)
        self._bind_addr = s.host
        self._udp_port = s.udp_port
        self._family = family
        self._multicast = s.multicast
        self._usock = None
        if s.udp_port is not None:
            try:
                self._usock = self._udp_socket(s)
            except OSError as e:
                logger.warning("netpycos: no discovery (UDP port %s: %s)", s.udp_port, e)
        self._raw_lsock = lsock
        self._sys = None
        self._stamps = {}

    def discard(self):
        """Undo the constructor (start() was not called)."""
        self._raw_lsock.close()
        if self._usock is not None:
            self._usock.close()

    def start(self):
        """Start the system scheduler and the node's tasks (once the user
        scheduler runs)."""
        self._sys = _SysScheduler(name="netpycos-sys")
        # the system scheduler stops after the user's, from Node.close (its
        # own exit hook would run first and cut the goodbyes short)
        atexit.unregister(self._sys._at_interpreter_exit)
        user = self._user
        if not (user._embedded or user._virtual):
            try:
                # the user thread runs the system scheduler while it idles,
                # so a reply for a user task wakes no other thread
                user._lend = self._sys._lent = Lend(user, self._sys)
            except OSError:
                pass                    # no pollable loop descriptor (poll backend)
        self.stamp_user = self._new_stamp(self._user)
        self.stamp_sys = self._new_stamp(self._sys)
        # this incarnation, in every hello (see Peer.attach)
        self._boot = wire.boot_of((self.stamp_user, self.stamp_sys))
        if self._tls_server is not None:
            self._lsock = AsyncSocket(self._raw_lsock, ssl_context=self._tls_server,
                                      handshake_timeout=config.HandshakeTimeout)
        else:
            self._lsock = AsyncSocket(self._raw_lsock)
        refs._node = self
        self._sys_task(self._listen)
        if self._usock is not None:
            self._sys_task(self._discovery)

    def _new_stamp(self, sched):
        while True:
            stamp = random.getrandbits(63) | 1
            if stamp not in self._stamps:
                self._stamps[stamp] = sched
                return stamp

    # ---- helpers used by peers ----------------------------------------------------

    def _sys_task(self, fn, *args):
        """A daemon system task running ``fn(*args, task=...)``."""
        t = SysTask(fn, *args)
        t.set_daemon()
        return t

    def _hello(self, nonce):
        loc = self._location
        return wire.make_hello(nonce, self._proto, loc.addr, loc.port, self._name, self._boot)

    @staticmethod
    def _dumps(obj, proto):
        import pickle
        return pickle.dumps(obj, proto)

    def _get_peer(self, loc, create=True):
        peer = self._peers.get(loc)
        if peer is None and create and not self._closing and loc != self._location:
            with self._lock:
                peer = self._peers.get(loc)
                if peer is None:
                    peer = self._peers[loc] = Peer(self, loc)
        return peer

    def _is_gone(self, loc):
        peer = self._peers.get(loc)
        return peer is not None and peer.gone

    # ---- peers coming and going --------------------------------------------------

    def _peer_online(self, peer):
        logger.debug("peer %s (%s) is online", peer.location, peer.name)
        status = PeerStatus._of(peer, PeerStatus.Online)
        for t in list(self._status_tasks):
            if t.send(status) < 0:
                self._status_tasks.remove(t)
        if self._relay_addrs and peer.location.addr in self._relay_addrs:
            self._relay_addrs.discard(peer.location.addr)
            peer.relay = True
        if peer.relay:
            self._relay_to(peer)
        for req, w in list(self._pending.items()):
            if w.kind == "locate":      # location-less locates still waiting: ask it too
                self._ask_locate(peer, w)
            elif ((w.kind == "online" and w.loc == peer.location)
                  or (w.kind == "name" and w.loc == ("name", peer.name))):
                if self._pending.pop(req, None) is w:
                    w.resolve(0 if w.kind == "online" else peer.location)

    def _peer_offline(self, peer, why, goodbye=False):
        if peer.gone and self._peers.get(peer.location) is not peer:
            return
        # (a peer that said goodbye is routine, for DEBUG; one lost is news)
        (logger.debug if goodbye else logger.info)(
            "netpycos: peer %s (%s) is offline: %s", peer.location, peer.name, why)
        self._peer_ended(peer, lambda rtask: True)

    def _peer_ended(self, peer, ours):
        """Forget ``peer`` and end every wait on it: requests (but those the
        caller took out of _pending first), boxes and monitors of its tasks
        for which ``ours(rtask)``; Offline to the status tasks."""
        loc = peer.location
        with self._lock:
            if self._peers.get(loc) is peer:
                del self._peers[loc]
        peer.close(graceful=False)
        was_online = peer.online
        peer.online = False
        for req, w in list(self._pending.items()):
            if w.loc == loc and self._pending.pop(req, None) is w:
                w.resolve(w.fail)
        with self._lock:
            for key, lst in list(self._watches.items()):
                lst[:] = [pr for pr in lst if pr[0] is not peer]
                if not lst:
                    del self._watches[key]
        for req, rtask in list(self._boxes.items()):
            if rtask._location == loc and ours(rtask):
                self._boxes.pop(req, None)
                if not rtask._box.held:          # (else its caller settles it)
                    self._box_set(rtask._box, refs._offline_status(rtask))
        with self._lock:
            mons = self._rmonitors.pop(loc, None) or {}
            ended = [key for key in mons if ours(key[0])]
            if len(ended) < len(mons):           # (the next process's tasks')
                kept = self._rmonitors.setdefault(loc, {})
                for key in mons:
                    if not ours(key[0]):
                        kept[key] = None
        for rtask, monitor in ended:
            monitor.send(refs._offline_status(rtask))
        if self._files is not None:
            self._files.peer_gone(peer)
        if was_online:
            status = PeerStatus._of(peer, PeerStatus.Offline)
            for t in list(self._status_tasks):
                t.send(status)

    def _peer_restarted(self, old, sock, hello, ours):
        """``sock`` (authenticated) is from another process than the one
        ``old`` stood for (see Peer.attach): that one is offline; a new peer
        takes the connection, with what was queued for ``old`` but never
        written (it was meant for whoever listens there: frames for the old
        process's tasks are dropped by the receiver, their stamps unknown
        there) and the requests among those frames."""
        logger.info("netpycos: peer %s (%s) is offline: restarted (another process at its "
                    "address)", old.location, old.name)
        with old.lock:
            unsent, old.out = old.out, []
            down = old.conn is None
        keep = []
        if down:
            # asked since the old connection was lost: never written to it
            for req, w in list(self._pending.items()):
                if (w.loc == old.location and w.gen == old.gen
                        and self._pending.pop(req, None) is w):
                    keep.append((req, w))
        stamps = old.stamps
        self._peer_ended(old, lambda rtask: rtask._stamp in stamps)
        new = self._get_peer(old.location)
        if new is None:                          # (closing)
            sock.close()
            for req, w in keep:
                w.resolve(w.fail)
            return
        with new.lock:
            # (pickled for the old process's protocol: every Python we
            # support reads 5, the highest any peer offers today)
            new.out[:0] = unsent
        for req, w in keep:
            w.gen = new.gen
            self._pending[req] = w
        new.attach(sock, hello, ours)

    # ---- incoming -------------------------------------------------------------------

    def _on_message(self, peer, payload):
        msg = wire.unpickle(payload)
        kind = msg[0]
        if kind == "s":
            sched = self._stamps.get(msg[2])
            if sched is not None:
                task = sched._tasks.get(msg[1])
                if task is not None:
                    m = msg[3]
                    if self._rmonitors and type(m) is MonitorStatus:
                        self._monitor_done(m)     # that task's end is known now
                    self._sendq.append((task, m))
            return
        self._flush_sends()
        if kind == "q":
            self._on_request(peer, msg[1], msg[2], msg[3])
        elif kind == "r":
            w = self._pending.pop(msg[1], None)
            if w is not None:
                value = msg[2]
                if w.on_reply is not None:
                    value = w.on_reply(msg[1], value)
                if w.asked is not None:
                    if value is None:        # "not here" never ends a location-less locate
                        self._pending[msg[1]] = w
                        return
                    self._cancel_others(w, peer, msg[1])
                w.resolve(value)
        elif kind == "done":
            rtask = self._boxes.pop(msg[1], None)
            if rtask is not None:
                self._box_set(rtask._box, msg[2])
        elif kind == "dm":
            # the end of a task an RPS call started, for its box and for the
            # caller's monitor (one message instead of "done" and "s")
            rtask = self._boxes.pop(msg[1], None)
            status = msg[2]
            if rtask is not None and type(status) is MonitorStatus:
                self._box_set(rtask._box, status.value if status.type is StopIteration
                              else status)
                monitor = rtask._box.monitor
                self._monitor_done(status)
                if monitor._sched is self._user:
                    self._sendq.append((monitor, status))
                else:
                    monitor.send(status)
        elif kind == "x":
            self._drop_watch(peer, msg[1])
        elif kind in _ONE_WAY:
            self._user._post(_ONE_WAY[kind], self, peer, msg)
        elif kind == "relay":
            self._relay(msg[1])
        else:
            raise wire.ProtocolError("unknown message kind %r" % (kind,))

    def _flush_sends(self):
        q = self._sendq
        if not q:
            return
        self._sendq = []
        sys = self._sys
        if sys._round_end:
            # the replies this read produced go out before the user thread
            # is woken: it would take the interpreter lock from this one
            sys._run_round_end()
        user = self._user
        mine = [tm for tm in q if tm[0]._sched is user]
        if len(mine) != len(q):
            for t, m in q:
                if t._sched is not user:
                    t.send(m)
        if mine:
            user._post(_deliver_batch, mine)

    def _on_data(self, peer, payload):
        files._files(self).on_data(peer, payload)

    def _on_request(self, peer, req, op, args):
        fn = _OPS.get(op)
        if fn is None:
            raise wire.ProtocolError("unknown request %r" % (op,))
        if op in _SYS_OPS:
            self._run_op(fn, peer, req, args)
        elif not self._user._post(self._run_op, fn, peer, req, args):
            self._answer(peer, req, None)

    def _run_op(self, fn, peer, req, args):
        try:
            value = fn(self, peer, req, *args)
        except Exception:
            logger.warning("netpycos: request %s from %s failed:\n%s", fn.__name__,
                           peer.location, traceback.format_exc())
            value = None
        if value is not _DEFER:
            self._answer(peer, req, value)

    def _answer(self, peer, req, value, kind="r"):
        try:
            ok = peer.send_obj((kind, req, value))
        except Exception as e:
            logger.warning("netpycos: reply to %s does not pickle (%s: %s); sent None",
                           peer.location, type(e).__name__, e)
            ok = peer.send_obj((kind, req, None))
        return ok

    # ---- outgoing: one-way, requests -------------------------------------------------

    def _peer_for(self, loc):
        if not isinstance(loc, Location) or loc == self._location or self._closing:
            return None
        peer = self._get_peer(loc)
        if peer is None or peer.gone:
            return None
        return peer

    def _send_task(self, rtask, message):
        peer = self._peer_for(rtask._location)
        if peer is None:
            return -1
        user = type(message) is not MonitorStatus      # a task's end always goes
        if user and peer._full and peer.full(0):
            return -1                # backlogged (see _backlogged): not even pickled
        try:
            data = wire.frame(wire.F_MSG, self._dumps(("s", rtask._id, rtask._stamp, message),
                                                      peer.proto))
        except Exception as e:
            logger.warning("send to %s: message does not pickle: %s: %s", rtask,
                           type(e).__name__, e)
            return -1
        if user and self._backlogged(peer, len(data)):
            return -1
        return 0 if peer.enqueue(data) else -1

    def _one_way(self, loc, msg):
        peer = self._peer_for(loc)
        if peer is None:
            return -1
        user = msg[0] == "ch_send"       # a channel's message (not throw, terminate...)
        if user and peer._full and peer.full(0):
            return -1
        try:
            data = wire.frame(wire.F_MSG, self._dumps(msg, peer.proto))
        except Exception as e:
            logger.warning("netpycos: %s to %s does not pickle: %s", msg[0], loc, e)
            return -1
        if user and self._backlogged(peer, len(data)):
            return -1
        return 0 if peer.enqueue(data) else -1

    def _backlogged(self, peer, size):
        """A user's one-way message (task or channel ``send``) is refused
        while more than config.PeerMaxQueue bytes wait for the peer (it is
        not reading, or reads slower than we send): the sender's memory
        stays bounded (RELIABILITY.md D3)."""
        was = peer._full
        if not peer.full(size):
            return False
        if not was:
            self._log_once("%s is not taking messages (over %d bytes queued): sends to it "
                           "refused" % (peer.location, config.PeerMaxQueue))
        return True

    def _request(self, loc, op, args, timeout, alarm, fail, on_reply=None):
        """[y] Send request ``op`` to the peer at ``loc`` and park the current
        task until the answer (``alarm`` on timeout, ``fail`` when the peer
        is or goes offline)."""
        task = Scheduler.cur_task()
        if task is None:
            raise RuntimeError("this call must be yielded in a task ('yield ...'); "
                               "plain threads use task.value()")
        sched = task._sched
        peer = self._peer_for(loc)
        if peer is None:
            return sched._now_value(task, fail)
        if timeout is not None and timeout <= 0:
            return sched._now_value(task, alarm)
        req = next(self._reqs)
        data = wire.frame(wire.F_MSG, self._dumps(("q", req, op, args), peer.proto))
        w = _Waiter(sched, task, fail, loc, on_reply)
        w.gen = peer.gen
        r = sched._park(task, timeout, alarm, lambda t, why: self._gave_up(req, why))
        w.wid = task._wid
        self._pending[req] = w
        if not peer.enqueue(data) and self._pending.pop(req, None) is w:
            sched._unpark(task, fail, w.wid)
        return r

    def _request_sync(self, loc, op, args, timeout):
        """The same for a plain thread: block it until the answer."""
        if Scheduler.cur_task() is not None:
            raise RuntimeError("value() blocks the thread; from a task use "
                               "'yield task.finish()'")
        peer = self._peer_for(loc)
        if peer is None:
            return None
        req = next(self._reqs)
        w = _SyncWaiter(loc)
        w.gen = peer.gen
        self._pending[req] = w
        if not peer.send_obj(("q", req, op, args)):
            self._pending.pop(req, None)
            return None
        if not w.event.wait(timeout):
            self._pending.pop(req, None)
            return None
        return w.value

    def _gave_up(self, req, why):
        w = self._pending.pop(req, None)
        if w is not None and w.asked:
            self._cancel_others(w, None, req)

    def _cancel_others(self, w, but, req):
        for peer in w.asked:
            if peer is not but and not peer.gone:
                try:
                    peer.send_obj(("x", req))
                except Exception:
                    pass

    # ---- locate ----------------------------------------------------------------------

    def _locate(self, kind, name, location, timeout):
        """[y] (see Task.locate)"""
        user = self._user
        task = Scheduler.cur_task()
        if location is None or location == self._location:
            obj = user._find_local(kind, name)
            if obj is not None or location is not None:
                return obj if task is None else task._sched._now_value(task, obj)
        if task is None:
            raise RuntimeError("locate() must be yielded in a task")
        sched = task._sched
        if location is not None:
            return self._request(location, "locate", (kind, name, False), timeout,
                                 alarm=None, fail=None)
        if timeout is not None and timeout <= 0:
            return sched._now_value(task, None)
        # every peer is asked; each answers when (if ever) it has the name
        req = next(self._reqs)
        w = _Waiter(sched, task, None, None, kind="locate")
        w.asked = []
        return self._park_locate(req, w, kind, name, timeout)

    def _park_locate(self, req, w, kind, name, timeout):
        sched, task = w.sched, w.task
        r = sched._park(task, timeout, None, lambda t, why: self._gave_up(req, why))
        w.wid = task._wid
        w.loc = (kind, name, req)
        with self._lock:
            self._pending[req] = w
            peers = [p for p in self._peers.values() if p.online and not p.gone]
            self._watches.setdefault((kind, name), []).append((None, req))
        for peer in peers:
            self._ask_locate(peer, w)
        return r

    def _ask_locate(self, peer, w):
        kind, name, req = w.loc
        if peer in w.asked:
            return
        w.asked.append(peer)
        try:
            peer.send_obj(("q", req, "locate", (kind, name, True)))
        except Exception:
            pass

    def _drop_watch(self, peer, req):
        with self._lock:
            for key, lst in list(self._watches.items()):
                lst[:] = [pr for pr in lst if not (pr[0] is peer and pr[1] == req)]
                if not lst:
                    del self._watches[key]

    def name_registered(self, kind, name, obj):
        """A name was registered here (user thread): answer whoever waits."""
        with self._lock:
            lst = self._watches.pop((kind, name), None)
        if not lst:
            return
        for peer, req in lst:
            if peer is None:         # a local location-less locate
                w = self._pending.pop(req, None)
                if w is not None:
                    if w.asked:
                        self._cancel_others(w, None, req)
                    w.resolve(obj)
            else:
                self._answer(peer, req, obj)

    def _wait_peer(self, task, kind, key, timeout, fail=None):
        """[y] Park ``task`` until a peer comes online: the one at Location
        ``key`` (kind "online", ``fail`` if it goes offline first) or the one
        named ``key[1]`` (kind "name", answered with its Location)."""
        sched = task._sched
        req = next(self._reqs)
        w = _Waiter(sched, task, fail, key, kind=kind)
        r = sched._park(task, timeout, fail, lambda t, why: self._pending.pop(req, None))
        w.wid = task._wid
        self._pending[req] = w
        for peer in list(self._peers.values()):      # online meanwhile?
            if peer.online and (peer.location == key if kind == "online"
                                else ("name", peer.name) == key):
                if self._pending.pop(req, None) is w:
                    sched._unpark(task, 0 if kind == "online" else peer.location, w.wid)
                break
        return r

    def _relay_to(self, peer):
        try:
            peer.send_obj(("relay", self._announcement()))
        except Exception:
            pass

    # ---- monitors and RPS results ---------------------------------------------------

    def _remote_monitor(self, rtask, monitor):
        loc = rtask._location
        if self._peer_for(loc) is None:
            return -1
        with self._lock:
            self._rmonitors.setdefault(loc, {})[(rtask, monitor)] = None
        if Scheduler.cur_task() is None:
            return self._one_way(loc, ("q", 0, "monitor", (rtask._id, rtask._stamp, monitor)))
        key = (rtask, monitor)

        def answered(req, rc):
            if rc != 0:         # not monitoring after all: no PeerOffline status later
                mons = self._rmonitors.get(loc)
                if mons:
                    mons.pop(key, None)
            return rc
        return self._request(loc, "monitor", (rtask._id, rtask._stamp, monitor),
                             config.MsgTimeout, alarm=-1, fail=-1, on_reply=answered)

    def _monitor_done(self, status):
        """A MonitorStatus for a local task came from a remote task: forget the
        offline bookkeeping for it."""
        info = status.info
        mons = self._rmonitors.get(getattr(info, "_location", None))
        if mons:
            for key in [k for k in mons if k[0] == info]:
                mons.pop(key, None)

    def _box_set(self, box, value):
        """Settle ``box`` (once; from either thread) and wake its waiters."""
        if box is None:
            return
        with self._lock:
            if box.done:
                return
            # the value before 'done': _box_wait reads 'done' without the
            # lock and takes the value as there (the other way round it read
            # None -- a lost job result, seen once in CI)
            box.value = value
            box.done = True
            waiters, box.waiters = box.waiters, []
            event = box.event
        for sched, task, wid in waiters:
            if sched._on_loop():
                sched._unpark(task, value, wid)
            else:
                sched._post(sched._unpark, task, value, wid)
        if event is not None:
            event.set()

    def _box_wait(self, box, timeout):
        task = Scheduler.cur_task()
        if task is None:
            raise RuntimeError("finish() must be yielded in a task; threads use value()")
        sched = task._sched
        if box.done:
            return sched._now_value(task, box.value)
        if timeout is not None and timeout <= 0:
            return sched._now_value(task, None)

        def cancel(t, why):
            with self._lock:
                try:
                    box.waiters.remove(entry)
                except ValueError:
                    pass
        r = sched._park(task, timeout, None, cancel)
        entry = (sched, task, task._wid)
        with self._lock:
            if not box.done:
                box.waiters.append(entry)
                return r
        sched._post(sched._unpark, task, box.value, entry[2])   # settled meanwhile
        return r

    def _box_value(self, box, timeout):
        with self._lock:
            if not box.done and box.event is None:
                box.event = threading.Event()
            event = box.event
        if event is not None:
            event.wait(timeout)
        return box.value if box.done else None

    # ---- the listener -------------------------------------------------------------

    def _listen(self, task=None):
        lsock = self._lsock
        delay = 0.1
        while not self._closing:
            try:
                conn, addr = yield lsock.accept()
            except OSError as e:
                if self._closing or lsock.closed:
                    break
                # out of descriptors (or similar): back off, never spin; at
                # most 0.5 s, so accepting resumes well within 1 s of
                # descriptors being freed (RELIABILITY.md D2)
                self._log_once("accept failed (%s); retrying in %.1fs" % (e, delay))
                yield task.sleep(delay)
                delay = min(delay * 2, 0.5)
                continue
            delay = 0.1
            if self._handshakes >= config.MaxHandshakes:
                self._log_once("too many connections in their handshake; %s:%s refused"
                               % addr[:2])
                conn.close()
                continue
            self._sys_task(self._inbound, conn, addr)

    def _inbound(self, conn, addr, task=None):
        self._handshakes += 1
        peer_box = []

        def decide(hello):
            if not _numeric(hello.addr):
                raise wire.ProtocolError("peer's address %r is not numeric" % (hello.addr,))
            loc = Location(hello.addr, hello.port)
            if loc == self._location:
                raise wire.ProtocolError("connection from ourselves")
            if self._loopback and not _is_loopback(hello.addr):
                raise wire.ProtocolError("non-loopback peer for a loopback scheduler")
            peer = self._get_peer(loc)
            if peer is None:
                raise wire.ProtocolError("scheduler is closing")
            peer_box.append(peer)
            return peer.verdict(hello)
        try:
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            hello, verdict = yield handshake_acceptor(self, conn, self._sys, decide)
        except (wire.ProtocolError, OSError, ValueError) as e:
            self._log_once("connection from %s:%s refused: %s" % (addr[0], addr[1], e))
            conn.close()
            return
        finally:
            self._handshakes -= 1
        if verdict != wire.ACCEPT or peer_box[0].gone:
            conn.close()
            return
        peer_box[0].attach(conn, hello, False)

    # ---- discovery ------------------------------------------------------------------

    def _udp_socket(self, s):
        family = s.family
        u = socket.socket(family, socket.SOCK_DGRAM)
        try:
            u.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if self._loopback:
                # the group on the loopback interface only, TTL 0: never leaves the host
                if family == socket.AF_INET:
                    u.bind((config.IPV4_MULTICAST_GROUP, s.udp_port))
                    mreq = (socket.inet_aton(config.IPV4_MULTICAST_GROUP)
                            + socket.inet_aton("127.0.0.1"))
                    u.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
                    u.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                                 socket.inet_aton("127.0.0.1"))
                    u.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 0)
                    u.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
                else:
                    u.bind(("::1", s.udp_port))
                self._bcast = [(config.IPV4_MULTICAST_GROUP if family == socket.AF_INET
                                else "::1", s.udp_port)]
            elif family == socket.AF_INET6:
                u.bind(("", s.udp_port))
                group = socket.inet_pton(socket.AF_INET6, config.IPV6_MULTICAST_GROUP)
                u.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP,
                             group + b"\0\0\0\0")
                u.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 1)
                self._bcast = [(config.IPV6_MULTICAST_GROUP, s.udp_port)]
            elif s.multicast:
                u.bind(("", s.udp_port))
                mreq = (socket.inet_aton(config.IPV4_MULTICAST_GROUP)
                        + socket.inet_aton(s.host))
                u.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
                u.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(s.host))
                u.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 2)
                self._bcast = [(config.IPV4_MULTICAST_GROUP, s.udp_port)]
            else:
                u.bind(("", s.udp_port))
                u.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
                # the broadcast address of host's own network: '<broadcast>'
                # (255.255.255.255) follows the routing table, so it fails
                # without a default route, or leaves by another interface
                self._bcast = [(_subnet_broadcast(s.host) or "<broadcast>", s.udp_port)]
        except OSError:
            u.close()
            raise
        return AsyncSocket(u)

    def _announcement(self):
        loc = self._location
        return wire.pack_announce(self._dkey, wire.ANNOUNCE, loc.addr, loc.port,
                                  self._udp_port or 0, self._name)

    def announce(self, dests=None):
        """Send our announcement (system thread).  Without a discovery socket
        (udp_port=0) only to explicit ``dests`` (peer("host")), from a
        throwaway socket."""
        u = self._usock
        if self._closing or (u is None and not dests):
            return
        data = self._announcement()
        sock = u.sock if u is not None else self._oneshot_udp()
        try:
            for dest in dests or self._bcast:
                try:
                    sock.sendto(data, dest)
                except OSError as e:
                    logger.debug("netpycos: announce to %s failed: %s", dest, e)
        finally:
            if u is None:
                sock.close()

    def _oneshot_udp(self):
        sock = socket.socket(self._family, socket.SOCK_DGRAM)
        if self._loopback and self._family == socket.AF_INET:
            # the loopback group (see _udp_socket): on lo, never beyond the host
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                            socket.inet_aton("127.0.0.1"))
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 0)
        return sock

    def _relay(self, datagram):
        u = self._usock
        if u is None or self._loopback:
            return
        try:
            wire.parse_announce(self._dkey, datagram)
        except wire.ProtocolError:
            return
        for dest in self._bcast:
            try:
                u.sock.sendto(datagram, dest)
            except OSError:
                pass

    def _announcer(self, task=None):
        """Announce at start and then every ``config.DiscoveryInterval``
        seconds (jittered), so peers that missed us -- started later, or
        behind a link that was down -- find us without help."""
        while not self._closing:
            self.announce()
            for peer in list(self._peers.values()):
                if peer.relay and peer.online:
                    self._relay_to(peer)
            interval = config.DiscoveryInterval
            if not interval or interval <= 0:
                break
            yield task.sleep(interval * random.uniform(0.8, 1.2))

    def _discovery(self, task=None):
        u = self._usock
        if self._discover:
            self._sys_task(self._announcer)
        while not self._closing:
            try:
                data, addr = yield u.recvfrom(wire.DATAGRAM_MAX + 1)
            except OSError:
                if self._closing or u.closed:
                    break
                continue
            if not addr:            # the socket was closed
                break
            if self._loopback and not _is_loopback(addr[0]):
                continue
            try:
                kind, paddr, tport, uport, name = wire.parse_announce(self._dkey, data)
            except wire.ProtocolError:
                continue             # unsigned, forged or garbage: no reply, no connection
            if not _numeric(paddr) or (self._loopback and not _is_loopback(paddr)):
                continue
            loc = Location(paddr, tport)
            if loc == self._location or self.ignore_peers:
                continue
            peer = self._get_peer(loc)
            if peer is not None and not peer.online and not peer.gone:
                peer.want = True
                peer._wake()

    # ---- closing ----------------------------------------------------------------------

    def close(self):
        """Close every connection and stop the system scheduler (any thread
        but the system one)."""
        if self._closing:
            return
        self._closing = True
        sys_sched = self._sys
        if sys_sched._lent is not None:
            sys_sched._lent.end()

        done = threading.Event()

        def shut():
            self._lsock.close()
            if self._usock is not None:
                self._usock.close()
            for req, w in list(self._pending.items()):
                if self._pending.pop(req, None) is w:
                    w.resolve(w.fail)
            if self._files is not None:
                self._files.close()
            # what is queued goes out, then a goodbye (bounded below)
            peers = [p for p in self._peers.values() if not p.gone]
            left = [len(peers)]

            def one_closed():
                left[0] -= 1
                if left[0] == 0:
                    done.set()
            for peer in peers:
                peer.on_closed.append(one_closed)
                peer.close(graceful=True)
            if not peers:
                done.set()
        if sys_sched._post(shut):
            done.wait(config.HandshakeTimeout)
        sys_sched.terminate()
        self._peers.clear()
        if refs._node is self:
            refs._node = None


class _SysScheduler(Scheduler):
    """The second scheduler of a netpycos process (network plumbing)."""

    def _thread_name(self):
        return "pycos-netpycos"


class SysTask(Task):
    """A task on the system scheduler (the network plumbing's own thread),
    so it keeps running while user tasks compute.  Its registered names live
    in their own namespace."""

    __slots__ = ()

    @classmethod
    def _default_scheduler(cls):
        node = refs._node
        if node is None:
            from pycos.core.scheduler import Pycos
            Pycos.instance()
            node = refs._node
        if node is None:
            raise RuntimeError("SysTask needs the netpycos scheduler: import pycos.netpycos")
        return node._sys


def _deliver_batch(batch):
    for task, msg in batch:
        task._deliver_msg(msg)


# ---- request handlers (user thread unless in _SYS_OPS) -----------------------------------


def _op_deliver(node, peer, req, tid, stamp, msg):
    sched = node._stamps.get(stamp)
    task = sched._tasks.get(tid) if sched is not None else None
    if task is None:
        return -1
    if isinstance(msg, MonitorStatus):
        node._monitor_done(msg)
    if task._sched is node._user:
        node._sendq.append((task, msg))      # posted with the read's others (_flush_sends)
        return 1
    return 1 if task.send(msg) == 0 else -1


def _op_locate(node, peer, req, kind, name, wait):
    obj = node._user._find_local(kind, name)
    if obj is not None or not wait:
        return obj
    with node._lock:
        node._watches.setdefault((kind, name), []).append((peer, req))
    return _DEFER


def _op_monitor(node, peer, req, tid, stamp, monitor):
    sched = node._stamps.get(stamp)
    task = sched._tasks.get(tid) if sched is not None else None
    if task is None or not task.is_alive():
        if req == 0:
            return _DEFER
        return -1
    rc = task._add_monitor(monitor) if task._sched is node._user else task.notify(monitor)
    return _DEFER if req == 0 else rc


def _op_finish(node, peer, req, tid, stamp):
    sched = node._stamps.get(stamp)
    task = sched._tasks.get(tid) if sched is not None else None
    if task is None:
        return None
    if not task.is_alive():
        return task._result
    task._add_monitor(_Sink(node, peer, req, "r"))
    return _DEFER


def _op_ch_deliver(node, peer, req, name, stamp, msg, timeout, n):
    ch = node._user._channels.get(name) if stamp == node.stamp_user else None
    if ch is None or ch._closed:
        return -1

    def deliver(task=None):
        r = yield ch.deliver(msg, timeout, n)
        node._answer(peer, req, r)
    t = Task(deliver)
    t.set_daemon()
    return _DEFER


def _op_ch_sub(node, peer, req, name, stamp, sub, flag):
    ch = node._user._channels.get(name) if stamp == node.stamp_user else None
    if ch is None or ch._closed:
        return -1
    return ch.subscribe(sub) if flag else ch.unsubscribe(sub)


def _op_rps_call(node, peer, req, name, stamp, args, kwargs, monitor):
    rps = node._user._rrps.get(name)
    if rps is None or rps._stamp != stamp:
        return None
    try:
        task = Task(rps._method, *args, **kwargs)
        if rps._task_name is not None:
            task._name = rps._task_name(*args, **kwargs)
    except Exception as e:
        logger.warning("RPS %s: %s: %s", name, type(e).__name__, e)
        return None
    if monitor is True:                  # (the caller monitors it: one message)
        task._add_monitor(_Sink(node, peer, req, "dm"))
        return task
    task._add_monitor(_Sink(node, peer, req, "done"))
    if isinstance(monitor, Task):
        task._add_monitor(monitor)
    return task


_OPS = {"deliver": _op_deliver, "locate": _op_locate, "monitor": _op_monitor,
        "finish": _op_finish, "ch_deliver": _op_ch_deliver, "ch_sub": _op_ch_sub,
        "rps_call": _op_rps_call}
_OPS.update(files.OPS)
# Run on the system thread: file requests (their data arrives there) and
# deliver (Task.send is thread-safe and keeps the order of the user inbox), so
# a deliver is acknowledged while user tasks compute.
_SYS_OPS = set(files.OPS) | {"deliver"}


def _ow_throw(node, peer, msg):
    sched = node._stamps.get(msg[2])
    task = sched._tasks.get(msg[1]) if sched is not None else None
    if task is not None:
        task.throw(*msg[3])


def _ow_terminate(node, peer, msg):
    sched = node._stamps.get(msg[2])
    task = sched._tasks.get(msg[1]) if sched is not None else None
    if task is not None:
        task.terminate()


def _ow_resume(node, peer, msg):
    sched = node._stamps.get(msg[2])
    task = sched._tasks.get(msg[1]) if sched is not None else None
    if task is not None:
        task.resume(msg[3])


def _ow_ch_send(node, peer, msg):
    ch = node._user._channels.get(msg[1]) if msg[2] == node.stamp_user else None
    if ch is not None:
        ch.send(msg[3])


_ONE_WAY = {"throw": _ow_throw, "terminate": _ow_terminate, "resume": _ow_resume,
            "ch_send": _ow_ch_send}
