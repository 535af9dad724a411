"""One peer: its connection, its outgoing queue, and the tasks that move bytes.

A :class:`Peer` stands for another scheduler (a :class:`Location`).  It owns
at most one authenticated connection and a FIFO queue of frames waiting to be
written; everything that wants to reach the peer appends to that queue, from
any thread, and whatever has piled up goes out in one write.  Batching is
what makes a stream of small messages cheap: one ``send`` carries every frame
queued since the last one.

Who writes: when the connection is idle, a frame queued by a scheduler's
thread is written by that same thread at the end of its scheduler's round
(:meth:`Peer._flush`, a round-end hook), so a request leaves without waking
the system scheduler -- a thread crossing saved on every round trip, and the
round's frames still go out together.  Everything else -- connecting, a write
that would block, TLS, frames queued from plain threads -- is the *writer*
task's (a system task): it sends what is queued with ``sendall``.  The two
never write at once: ``Peer.lock`` is held while either takes frames off the
queue, by the round-end write for its whole (non-blocking) ``send``, and
around closing the socket; the writer takes frames only after marking the
connection busy (``idle`` false), and the round-end write sends only while
it is idle.  So the bytes on the wire are in queue order.

The connection is opened on demand by the writer, or arrives from the peer
(the node's listener hands it over).  If both sides connect at once, the
acceptor keeps the connection made by the side with the lower location and
answers the other one DUPLICATE (decided in :meth:`Peer.verdict`), so each
pair of peers ends up with one connection.  A connection that breaks is
re-established with jittered exponential back-off; when that fails for
``config.PeerReconnectPeriod`` seconds the peer is *offline*: the node fails
every request still waiting on it and tells the tasks that asked.

Liveness: the reader waits for bytes with a timeout of
``config.PeerPingInterval``; on an idle connection it sends a ping, and a
connection with no byte received for ``config.PeerTimeout`` seconds is
declared lost.  All of this runs on the monotonic clock of the system
scheduler.
"""

import random
import socket
import threading

from pycos import config
from pycos.core.log import logger
from pycos.core.scheduler import _sched_of_thread, _get_ident
from pycos.core.support import Location
from pycos.io.socket import AsyncSocket
from pycos.net import wire

__all__ = ["Peer", "handshake_initiator", "handshake_acceptor"]

#: largest write the writer makes at once
_BATCH = 256 * 1024
_DIRECT_FRAMES = 16      # more queued in one round: a stream, for the writer
#: largest read the reader asks for
_READ = 256 * 1024


def _exact(sock, n, deadline, sched, what):
    """[y] Exactly ``n`` bytes before ``deadline``, else ProtocolError."""
    left = deadline - sched.now()
    if left <= 0:
        raise wire.ProtocolError("handshake deadline passed (%s)" % what)
    sock.settimeout(left)
    try:
        data = yield sock.recvall(n)
    except socket.timeout:
        raise wire.ProtocolError("handshake deadline passed (%s)" % what)
    if len(data) != n:
        if not data:
            raise wire.ProtocolError("connection closed during the handshake (%s)" % what)
        raise wire.ProtocolError("handshake cut short (%s)" % what)
    return data


def _send_by(sock, data, deadline, sched):
    left = deadline - sched.now()
    if left <= 0:
        raise wire.ProtocolError("handshake deadline passed")
    sock.settimeout(left)
    try:
        yield sock.sendall(data)
    except socket.timeout:
        raise wire.ProtocolError("handshake deadline passed (sending)")


def _read_hello(sock, deadline, sched):
    # the first byte alone first: a stray client (a frame length, HTTP, a
    # TLS hello) is refused at once instead of holding a handshake slot
    # until the deadline for want of the head's other bytes
    head = yield _exact(sock, 1, deadline, sched, "hello")
    if head != wire.MAGIC[:1]:
        raise wire.ProtocolError("not a pycos peer (bad magic %r)" % (bytes(head),))
    head += yield _exact(sock, wire.HELLO_HEAD - 1, deadline, sched, "hello")
    n = wire.parse_hello_head(head)
    body = yield _exact(sock, n, deadline, sched, "hello")
    return head + body, wire.parse_hello(body)


def handshake_initiator(node, sock, sched):
    """[y] The initiator's side of the handshake (see :mod:`pycos.net.wire`);
    returns ``(hello, verdict)``.  ProtocolError/OSError on failure."""
    deadline = sched.now() + config.HandshakeTimeout
    nonce = wire.new_nonce()
    node._nonces.add(nonce)
    try:
        mine = node._hello(nonce)
        yield _send_by(sock, mine, deadline, sched)
        theirs, hello = yield _read_hello(sock, deadline, sched)
        if hello.nonce in node._nonces:
            raise wire.ProtocolError("the peer sent back one of our own nonces")
        yield _send_by(sock, wire.proof(node._key, True, mine, theirs), deadline, sched)
        try:
            v = yield _exact(sock, wire.VERDICT_SIZE, deadline, sched, "peer's proof")
        except wire.ProtocolError as e:
            raise wire.ProtocolError("%s: the peer refused our proof -- do both sides use "
                                     "the same secret?" % e)
        verdict = v[:1]
        wire.check_proof(node._key, False, mine, theirs, v[1:], verdict)
        return hello, verdict[0]
    finally:
        node._nonces.discard(nonce)


def handshake_acceptor(node, sock, sched, decide):
    """[y] The acceptor's side; ``decide(hello)`` returns the verdict once
    the initiator has proved itself.  Returns ``(hello, verdict)``."""
    deadline = sched.now() + config.HandshakeTimeout
    theirs, hello = yield _read_hello(sock, deadline, sched)
    if hello.nonce in node._nonces:
        raise wire.ProtocolError("hello carries one of our own nonces (reflection)")
    nonce = wire.new_nonce()
    node._nonces.add(nonce)
    try:
        mine = node._hello(nonce)
        yield _send_by(sock, mine, deadline, sched)
        got = yield _exact(sock, wire.PROOF_SIZE, deadline, sched, "proof")
        wire.check_proof(node._key, True, theirs, mine, got)
        verdict = decide(hello)
        vb = bytes((verdict,))
        yield _send_by(sock, vb + wire.proof(node._key, False, theirs, mine, vb), deadline,
                       sched)
        return hello, verdict
    finally:
        node._nonces.discard(nonce)


class Peer(object):
    """A remote scheduler and our connection to it (see the module docstring)."""

    def __init__(self, node, location, name=None):
        self.node = node
        self.location = location
        self.name = name
        self.stamps = ()                   # its process's (see attach), from its first hello
        self.gen = 0                       # connections lost so far
        self.proto = min(node._proto, 5)   # until the handshake says what the peer has
        self.out = []                      # frames (bytes) waiting for the writer
        self.conn = None                   # the authenticated AsyncSocket
        self.conn_ours = False             # we initiated self.conn
        self.connecting = False
        self.online = False                # announced Online to the status tasks
        self.gone = False                  # offline: the node has dropped this peer
        self.want = False                  # keep (re)connecting even with nothing queued
        self.idle = False                  # the writer waits: nothing in flight
        self.lock = threading.Lock()       # see the module docstring
        self.writer = None
        self.last_rx = 0.0
        self.drained = []                  # tasks waiting for the queue to go low (files)
        self.relay = False
        self.closing = False               # graceful close: drain, say goodbye, stop
        self.on_closed = []                # called once the peer is closed
        node._sys_task(self._write_loop)

    def __repr__(self):
        return "<peer %s %s>" % (self.location, self.name or "")

    # ---- the queue (any thread) ----------------------------------------------

    def enqueue(self, data):
        """Queue a frame for the writer.  False if the peer is gone."""
        if self.gone:
            return False
        self.out.append(data)
        if self.idle:
            sched = _sched_of_thread(_get_ident())
            if sched is not None and len(self.out) <= _DIRECT_FRAMES:
                sched._at_round_end(self, self._flush)
                if sched._lend is not None:
                    sched._lend.hinted = True      # a reply may come: idle through the lend
            else:
                # a plain thread's, or a stream: the writer's, starting now
                # so that its sends overlap with this thread's work
                self.idle = False
                self.node._sys._post(self._wake)
        return True

    def _flush(self):
        """Round-end hook of the scheduler whose thread queued frames: write
        them now if the connection is idle; what does not go out at once
        (or needs connecting, or TLS) is left to the writer."""
        with self.lock:
            out = self.out
            if not self.idle or not out:
                return
            conn = self.conn
            n = len(out)
            if conn is None or conn._tls_cfg is not None or n > _DIRECT_FRAMES:
                self.idle = False
                self.node._sys._post(self._wake)
                return
            data = out[0] if n == 1 else b"".join(out[:n])
            del out[:n]
            try:
                sent = conn._sock.send(data)
            except OSError:              # would block, or broken: the writer's business
                sent = 0
            if sent < len(data):
                out.insert(0, data[sent:])
                self.idle = False
                self.node._sys._post(self._wake)
            elif self.drained:
                self.node._sys._post(self._wake)

    def queued(self):
        """Bytes waiting for the writer (any thread; a snapshot).  Counted,
        not kept in a counter: enqueuers run on several threads."""
        return sum(map(len, list(self.out)))

    # what full() found when it last summed the queue (class defaults)
    _full_n = 0              # the queue's length then
    _full_added = 0          # bytes offered since (only decides when to sum again)
    _full = False

    def full(self, size):
        """True while more than ``config.PeerMaxQueue`` bytes are queued: a
        user's one-way message (of ``size`` bytes) is then refused, so a peer
        that stops reading costs the sender at most about that much memory
        (any thread).  The queue is summed again only once PeerMaxQueue/16
        bytes were offered since the last sum, or when it got shorter (the
        writer took some): O(1) per message; the attributes are hints, races
        between threads only move the next sum."""
        n = len(self.out)
        added = self._full_added + size
        limit = config.PeerMaxQueue
        if n >= self._full_n and added < limit >> 4:
            self._full_added = added
            return self._full
        self._full_n = n
        self._full_added = 0
        self._full = full = self.queued() > limit
        return full

    def send_obj(self, obj):
        """Pickle ``obj`` (here, in the caller's thread: a pickling error is
        the caller's) and queue it."""
        return self.enqueue(wire.frame(wire.F_MSG, self.node._dumps(obj, self.proto)))

    def _wake(self):
        w = self.writer
        if w is not None:
            w.resume(None)

    # ---- the writer -------------------------------------------------------------

    def _write_loop(self, task=None):
        self.writer = task
        node = self.node
        while not self.gone:
            if self.conn is None:
                if self.closing:
                    self.close(graceful=False)
                    return
                if not (self.out or self.want):
                    self.idle = True
                    if not (self.out or self.want or self.conn is not None):
                        yield task.suspend()
                    self.idle = False
                    continue
                ok = yield self._establish(task)
                if not ok:
                    node._peer_offline(self, "could not connect for %ss"
                                       % config.PeerReconnectPeriod)
                    return
                continue
            batch = None
            with self.lock:
                out = self.out
                if out:
                    self.idle = False
                    n = 0
                    size = 0
                    for chunk in out:
                        n += 1
                        size += len(chunk)
                        if size >= _BATCH:
                            break
                    batch = out[:n]
                    del out[:n]
                else:
                    self.idle = True
            if batch is None:
                if self.closing:
                    self.close(graceful=False)
                    return
                self._notify_drained()
                if self.idle and not self.out:
                    yield task.suspend()
                continue
            conn = self.conn
            data = batch[0] if n == 1 else b"".join(batch)
            try:
                conn.settimeout(config.PeerTimeout)
                sent = yield conn.sendall(data)
                if sent is not None:
                    # the timeout passed mid-batch: the rest must never follow
                    # a cut frame (the peer would read payload bytes as frames)
                    raise socket.timeout("timed out after %d of %d bytes" % (sent, len(data)))
            except (OSError, socket.timeout) as e:
                self._lost(conn, "write failed: %s" % (e,))
            if self.drained and self.queued() < config.PeerHighWater:
                self._notify_drained()
        self._notify_drained()

    def _notify_drained(self):
        waiters, self.drained = self.drained, []
        for w in waiters:
            w()

    def _establish(self, task):
        """[y] Connect (with back-off) until a connection is up; False when
        ``config.PeerReconnectPeriod`` passes without one."""
        node = self.node
        sched = node._sys
        deadline = sched.now() + config.PeerReconnectPeriod
        delay = 0.05
        refused = 0
        while self.conn is None and not self.gone:
            self.connecting = True
            try:
                r = yield self._connect_once()
            finally:
                self.connecting = False
            if self.conn is not None or r == "up":
                return True
            if self.gone:
                return False
            if r == "refused":
                # nobody listens there (the process is gone: a restarted one
                # is a new peer, which announces itself), or not one of
                # ours: not worth PeerReconnectPeriod of retries
                refused += 1
                if refused >= 3:
                    return False
            now = sched.now()
            if now >= deadline:
                return False
            # jittered exponential back-off; an inbound connection wakes us early
            wait = min(delay * random.uniform(0.5, 1.5), deadline - now)
            delay = min(delay * 2, 2.0)
            yield task.suspend(wait)
        return self.conn is not None

    def _connect_once(self):
        node = self.node
        sched = node._sys
        loc = self.location
        family = socket.AF_INET6 if ":" in loc.addr else socket.AF_INET
        raw = socket.socket(family, socket.SOCK_STREAM)
        if node._tls_client is not None:
            sock = AsyncSocket(raw, ssl_context=node._tls_client,
                               handshake_timeout=config.HandshakeTimeout)
        else:
            sock = AsyncSocket(raw)
        try:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(config.HandshakeTimeout)
            yield sock.connect((loc.addr, loc.port))
            hello, verdict = yield handshake_initiator(node, sock, sched)
        except ConnectionRefusedError:
            sock.close()
            return "refused"
        except wire.ProtocolError as e:
            # it answered, but it is not one of ours (another secret, not
            # pycos): retrying will not change that
            sock.close()
            node._log_once("connect %s: %s" % (loc, e))
            return "refused"
        except (OSError, socket.timeout, wire.ProtocolError, ValueError) as e:
            sock.close()
            node._log_once("connect %s: %s" % (loc, e))
            return "failed"
        if Location(hello.addr, hello.port) != loc:
            sock.close()
            logger.warning("peer at %s says it is %s:%s; dropped", loc, hello.addr, hello.port)
            return "failed"
        if verdict != wire.ACCEPT:
            sock.close()
            return "duplicate"
        self.attach(sock, hello, True)
        return "up"

    # ---- the connection ------------------------------------------------------------

    def verdict(self, hello):
        """The acceptor's choice for an authenticated inbound connection."""
        if self.gone:
            return wire.ACCEPT
        ours = self.connecting or (self.conn is not None and self.conn_ours)
        if not ours:
            return wire.ACCEPT           # a first connection, or the peer replacing its own
        mine = self.node._location
        if (mine.addr, mine.port) < (self.location.addr, self.location.port):
            return wire.DUPLICATE        # our connection wins
        return wire.ACCEPT

    def attach(self, sock, hello, ours):
        """Make ``sock`` (authenticated) this peer's connection.  From
        another incarnation than before (the process restarted at this
        address): the one we knew is offline -- what waited on it fails, its
        monitors get PeerOffline -- and the connection is a new peer's."""
        node = self.node
        if self.gone:                    # (a connect that ended after we gave up)
            sock.close()
            return
        stamps = wire.stamps_of(hello.boot)
        if self.stamps and stamps != self.stamps:
            node._peer_restarted(self, sock, hello, ours)
            return
        self.stamps = stamps
        old = self.conn
        self.conn = sock
        self.conn_ours = ours
        self.name = hello.name
        self.proto = wire.pickle_protocol(node._proto, hello.proto)
        self.last_rx = node._sys.now()
        if old is not None:
            with self.lock:
                old.close()
        node._sys_task(self._read_loop, sock)
        if not self.online:
            self.online = True
            node._peer_online(self)
        self._wake()

    def _lost(self, sock, why):
        if sock is not self.conn:
            sock.close()
            return
        logger.debug("connection to %s lost: %s", self.location, why)
        with self.lock:                  # not while a round-end write uses it
            self.conn = None
            self.gen += 1
            sock.close()
        if not self.gone and not self.node._closing:
            self.want = True         # re-establish it, or declare the peer offline
            self._wake()

    def close(self, graceful=True):
        """Stop: drop the connection (the node forgets the peer).
        ``graceful``: what is queued is written first, then a goodbye, by the
        writer; :attr:`closed` is set when it is done."""
        if graceful and self.conn is not None and not self.gone:
            self.closing = True
            self.enqueue(wire.frame(wire.F_BYE))
            self._wake()
            return
        self.gone = True
        with self.lock:
            conn, self.conn = self.conn, None
            self.out = []
            if conn is not None:
                conn.close()
        self._wake()
        self._closed()

    def _closed(self):
        waiters, self.on_closed = self.on_closed, []
        for fn in waiters:
            fn()

    def _read_loop(self, sock, task=None):
        node = self.node
        sched = node._sys
        reader = wire.FrameReader(node._max_frame)
        ping = config.PeerPingInterval
        # a plain socket's reads copy straight into the reader's buffer (a
        # sink: no bytes object in between); TLS decrypts into one first
        plain = sock._tls_cfg is None
        while sock is self.conn:
            sock.settimeout(ping)
            try:
                if plain:
                    data = yield sock._recv_lazy(_READ, reader)
                else:
                    data = yield sock.recv(_READ)
                    reader.write(data)
            except socket.timeout:
                if sock is not self.conn:
                    break
                if sched.now() - self.last_rx >= config.PeerTimeout:
                    self._lost(sock, "no data for %ss" % config.PeerTimeout)
                    break
                self.enqueue(wire.frame(wire.F_PING))
                continue
            except OSError as e:
                self._lost(sock, "read failed: %s" % (e,))
                break
            if not data:
                self._lost(sock, "closed by the peer")
                break
            self.last_rx = sched.now()
            try:
                frames = reader.take()
                for ftype, payload in frames:
                    if ftype == wire.F_MSG:
                        node._on_message(self, payload)
                    elif ftype == wire.F_DATA:
                        node._on_data(self, payload)
                    elif ftype == wire.F_PING:
                        self.enqueue(wire.frame(wire.F_PONG))
                    elif ftype == wire.F_BYE:
                        raise _Bye()
                node._flush_sends()
            except _Bye:
                node._flush_sends()
                self._lost(sock, "peer said goodbye")
                node._peer_offline(self, "closed by the peer", goodbye=True)
                break
            except Exception as e:         # ProtocolError, a pickle that does not load...
                node._flush_sends()
                node._log_once("dropping connection to %s: %s: %s"
                               % (self.location, type(e).__name__, e))
                self._lost(sock, "bad frame")
                break


class _Bye(Exception):
    pass
