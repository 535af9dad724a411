"""The wire protocol of netpycos, as pure functions and objects (no I/O).

Everything a peer reads from the network before it knows who is talking is
parsed here, by code that never unpickles, never allocates more than a few
hundred bytes for an unauthenticated party, and fails with one precise
exception (:class:`ProtocolError`).  The tasks in :mod:`pycos.net.peer` move
the bytes; these functions decide what they mean.  Being free of sockets,
they are fuzzed directly (tests/net/test_wire.py).

The connection handshake (mutual, HMAC-SHA256 over the shared secret)::

    initiator (I)                               acceptor (A)
      HELLO_I = MAGIC | len | JSON{nonce, proto, loc, name, boot}  ->
                                <-  HELLO_A = MAGIC | len | JSON{...}
      PROOF_I = HMAC(K, "pycos initiator" | HELLO_I | HELLO_A)  ->
                                    A checks PROOF_I (compare_digest)
                     <-  VERDICT (1 byte) | HMAC(K, "pycos acceptor" | HELLO_I | HELLO_A | VERDICT)
      I checks the acceptor's proof

Each side's nonce is 32 fresh random bytes, and each proof covers both
hellos byte for byte (so both nonces, both roles and every negotiated
field), so a recorded handshake is worthless later and a proof made in one
role is never accepted in the other.  The acceptor proves itself only after
the initiator has, so an unauthenticated caller gets no MAC at all.  K is
derived from the secret; an empty secret still runs the same exchange (a
scheduler without a secret listens on loopback only).

After the handshake: frames ``length (4 bytes, big-endian) | type (1 byte) |
payload``, the length (type + payload) checked against the maximum before a
byte of the body is stored.  Pickled payloads (``F_MSG``) use the highest
pickle protocol both hellos offered.

Discovery datagrams are a fixed binary format (never pickle) signed with a
key derived from the same secret; see :func:`pack_announce`.
"""

import hashlib
import hmac
import json
import os
import pickle
import struct

__all__ = ["ProtocolError", "derive_key", "make_hello", "parse_hello_head", "parse_hello",
           "proof", "check_proof", "FrameReader", "frame", "pack_announce", "parse_announce"]

#: first bytes of every connection (also what tells a stray HTTP client apart)
MAGIC = b"pycos\x05\r\n"
#: the largest hello accepted (what an unauthenticated peer can make us read)
HELLO_MAX = 512
HELLO_HEAD = len(MAGIC) + 2
NONCE_SIZE = 32
#: a process's incarnation (``boot`` in its hellos): the stamps of its two
#: schedulers (random, drawn at its start; see pycos.net.refs), 8 bytes each
BOOT_SIZE = 16
PROOF_SIZE = 32          # HMAC-SHA256
VERDICT_SIZE = 1 + PROOF_SIZE

# acceptor verdicts
ACCEPT = 1
DUPLICATE = 2            # keep the connection the other way round (simultaneous connect)

_ROLE_I = b"pycos initiator"
_ROLE_A = b"pycos acceptor"

# frame types
F_MSG = 1                # a pickled message
F_DATA = 2               # raw bytes of a file transfer: 8-byte transfer id + data
F_PING = 3
F_PONG = 4
F_BYE = 5                # orderly close
_FRAME_TYPES = frozenset((F_MSG, F_DATA, F_PING, F_PONG, F_BYE))
_LEN = struct.Struct(">I")
_HEAD = struct.Struct(">IB")


class ProtocolError(Exception):
    """The peer broke the protocol (bad magic, bad hello, wrong proof,
    oversized or malformed frame).  The connection is closed; nothing else is
    affected."""


def derive_key(secret, purpose=b"connection"):
    """The HMAC key for ``secret`` (str or bytes) and a purpose label, so
    that a connection proof can never pass as a discovery signature."""
    if isinstance(secret, str):
        secret = secret.encode("utf-8")
    elif not isinstance(secret, bytes):
        raise TypeError("secret must be str or bytes, not %r" % (type(secret).__name__,))
    return hmac.new(b"pycos-5 key " + purpose, secret, hashlib.sha256).digest()


# ---- the handshake ------------------------------------------------------------


def make_hello(nonce, proto, addr, port, name, boot=None):
    """The bytes of a hello.  ``nonce``: NONCE_SIZE fresh random bytes;
    ``boot``: the sender's incarnation (:func:`boot_of`): a process
    restarted at the same address says another one."""
    if len(nonce) != NONCE_SIZE:
        raise ValueError("nonce must be %d bytes" % NONCE_SIZE)
    d = {"v": 1, "nonce": nonce.hex(), "proto": int(proto), "addr": addr, "port": int(port),
         "name": name}
    if boot is not None:
        if len(boot) != BOOT_SIZE:
            raise ValueError("boot must be %d bytes" % BOOT_SIZE)
        d["boot"] = boot.hex()
    body = json.dumps(d, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    if len(body) > HELLO_MAX:
        raise ValueError("hello too long (%d bytes): shorten the scheduler's name" % len(body))
    return MAGIC + struct.pack(">H", len(body)) + body


def boot_of(stamps):
    """The ``boot`` of a process whose schedulers have ``stamps`` (ints < 2**64)."""
    return struct.pack(">QQ", *stamps)


def stamps_of(boot):
    """The stamps a ``boot`` names (a tuple), or () for None."""
    return struct.unpack(">QQ", boot) if boot is not None else ()


def parse_hello_head(head):
    """The body length announced by the first HELLO_HEAD bytes of a hello."""
    if len(head) != HELLO_HEAD:
        raise ProtocolError("truncated hello (%d bytes)" % len(head))
    if head[:len(MAGIC)] != MAGIC:
        raise ProtocolError("not a pycos peer (bad magic %r)" % (bytes(head[:len(MAGIC)]),))
    (n,) = struct.unpack(">H", head[len(MAGIC):])
    if not 0 < n <= HELLO_MAX:
        raise ProtocolError("hello length %d out of range" % n)
    return n


class Hello(object):
    """A parsed hello: ``nonce`` (bytes), ``proto``, ``addr``, ``port``,
    ``name``, ``boot`` (bytes, or None from a peer that sends none)."""

    __slots__ = ("nonce", "proto", "addr", "port", "name", "boot")

    def __repr__(self):
        return "Hello(%s:%s %r proto=%s)" % (self.addr, self.port, self.name, self.proto)


def parse_hello(body):
    """Parse a hello's body (JSON only: no pickle before authentication)."""
    if len(body) > HELLO_MAX:
        raise ProtocolError("hello too long")
    try:
        d = json.loads(bytes(body).decode("ascii"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ProtocolError("hello is not valid JSON")
    if not isinstance(d, dict) or d.get("v") != 1:
        raise ProtocolError("unsupported hello version")
    h = Hello()
    try:
        nonce = d["nonce"]
        if not isinstance(nonce, str) or len(nonce) != 2 * NONCE_SIZE:
            raise ProtocolError("bad nonce")
        h.nonce = bytes.fromhex(nonce)
        proto, port = d["proto"], d["port"]
        addr, name = d["addr"], d["name"]
    except (KeyError, ValueError):
        raise ProtocolError("malformed hello")
    if type(proto) is not int or not 2 <= proto <= 255:
        raise ProtocolError("bad pickle protocol %r" % (proto,))
    if type(port) is not int or not 0 <= port <= 65535:
        raise ProtocolError("bad port")
    if not isinstance(addr, str) or not 0 < len(addr) <= 64:
        raise ProtocolError("bad address")
    if not isinstance(name, str) or len(name) > 128:
        raise ProtocolError("bad name")
    boot = d.get("boot")
    if boot is not None:
        try:
            if not isinstance(boot, str) or len(boot) != 2 * BOOT_SIZE:
                raise ValueError
            boot = bytes.fromhex(boot)
        except ValueError:
            raise ProtocolError("bad boot")
    h.proto, h.port, h.addr, h.name, h.boot = proto, port, addr, name, boot
    return h


def proof(key, initiator, hello_i, hello_a, verdict=b""):
    """The MAC one side sends: over its role, both hellos and (acceptor)
    the verdict byte."""
    role = _ROLE_I if initiator else _ROLE_A
    return hmac.new(key, role + bytes(hello_i) + bytes(hello_a) + verdict,
                    hashlib.sha256).digest()


def check_proof(key, initiator, hello_i, hello_a, got, verdict=b""):
    """Raise ProtocolError unless ``got`` is the right proof."""
    want = proof(key, initiator, hello_i, hello_a, verdict)
    if not hmac.compare_digest(want, bytes(got)):
        raise ProtocolError("authentication failed (wrong secret?)")


def new_nonce():
    return os.urandom(NONCE_SIZE)


def pickle_protocol(mine, theirs):
    """The pickle protocol two peers use: the highest both support."""
    return max(2, min(int(mine), int(theirs), pickle.HIGHEST_PROTOCOL))


# ---- frames -----------------------------------------------------------------------


def frame(ftype, payload=b""):
    """One frame's bytes."""
    return _HEAD.pack(len(payload) + 1, ftype) + payload


def frame_head(ftype, n):
    """The 5-byte head of a frame whose payload is ``n`` bytes."""
    return _HEAD.pack(n + 1, ftype)


class FrameReader(object):
    """Turns a byte stream into frames: ``feed(data)`` returns the list of
    complete ``(type, payload)`` frames and keeps the rest.

    The announced length is checked against ``max_frame`` (and the type
    against the known ones) as soon as the 5-byte head is in, before any of
    the body is kept, so an oversized or garbage length costs nothing.
    """

    __slots__ = ("max_frame", "_buf", "_need")

    def __init__(self, max_frame):
        if max_frame < 1:
            raise ValueError("max_frame must be positive")
        self.max_frame = max_frame
        self._buf = bytearray()
        self._need = 0      # body bytes of the frame at the head of _buf, 0: head not read

    def buffered(self):
        return len(self._buf)

    def write(self, data):
        """Keep ``data`` (any bytes-like object; a sink for the socket's
        reads, which then copy straight from the reactor's buffer) and
        return its length.  :meth:`take` parses what was kept."""
        self._buf += data
        return len(data)

    def take(self):
        """The complete frames kept so far, as ``(type, payload bytes)``;
        the rest stays.  ProtocolError for a bad head."""
        buf = self._buf
        end = len(buf)
        if end < 5:
            return []
        out = []
        pos = 0
        max_frame = self.max_frame
        unpack = _HEAD.unpack_from
        with memoryview(buf) as view:
            while end - pos >= 5:
                n, ftype = unpack(buf, pos)
                if n > max_frame + 1:
                    raise ProtocolError("frame of %d bytes exceeds the maximum %d"
                                        % (n - 1, max_frame))
                if n == 0 or ftype not in _FRAME_TYPES:
                    raise ProtocolError("malformed frame head (length %d, type %d)" % (n, ftype))
                if end - pos < 4 + n:
                    break
                out.append((ftype, view[pos + 5:pos + 4 + n].tobytes()))
                pos += 4 + n
        if pos:
            del buf[:pos]
        return out

    def feed(self, data):
        """:meth:`write` then :meth:`take`."""
        self._buf += data
        return self.take()


# ---- discovery datagrams ------------------------------------------------------------

DMAGIC = b"pycosD\x05\n"
ANNOUNCE = 1
_DHEAD = struct.Struct(">8sBBHH")      # magic, version, kind, tcp port, udp port
DATAGRAM_MAX = 512


def pack_announce(key, kind, addr, tcp_port, udp_port, name):
    """A signed discovery datagram saying "a scheduler called ``name``
    listens at ``addr``:``tcp_port``".  Fixed format, no pickle."""
    a = addr.encode("ascii")
    nm = name.encode("utf-8")[:128]
    body = (_DHEAD.pack(DMAGIC, 1, kind, tcp_port, udp_port) + bytes((len(a),)) + a
            + bytes((len(nm),)) + nm + os.urandom(8))
    return body + hmac.new(key, body, hashlib.sha256).digest()


def parse_announce(key, data):
    """(kind, addr, tcp_port, udp_port, name) of a well-formed datagram
    signed with ``key``; ProtocolError otherwise (the caller drops it)."""
    n = len(data)
    if n > DATAGRAM_MAX or n < _DHEAD.size + 2 + 8 + PROOF_SIZE:
        raise ProtocolError("datagram size %d" % n)
    data = bytes(data)
    body, mac = data[:-PROOF_SIZE], data[-PROOF_SIZE:]
    if body[:8] != DMAGIC:
        raise ProtocolError("not a pycos datagram")
    # the signature first: nothing else of an unsigned datagram is looked at
    if not hmac.compare_digest(hmac.new(key, body, hashlib.sha256).digest(), mac):
        raise ProtocolError("bad signature")
    magic, ver, kind, tcp_port, udp_port = _DHEAD.unpack_from(body)
    if ver != 1 or kind != ANNOUNCE:
        raise ProtocolError("unknown datagram kind")
    pos = _DHEAD.size
    try:
        alen = body[pos]
        addr = body[pos + 1:pos + 1 + alen].decode("ascii")
        pos += 1 + alen
        nlen = body[pos]
        name = body[pos + 1:pos + 1 + nlen].decode("utf-8")
        pos += 1 + nlen
    except (IndexError, UnicodeDecodeError):
        raise ProtocolError("malformed datagram")
    if pos + 8 != len(body) or not addr or tcp_port == 0:
        raise ProtocolError("malformed datagram")
    return kind, addr, tcp_port, udp_port, name


def unpickle(data):
    """The one place where bytes from the network become objects.  Called
    only for frames of an authenticated connection (tests instrument it to
    prove that nothing reaches it before authentication)."""
    return pickle.loads(data)
