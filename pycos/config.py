"""Settings shared by pycos, netpycos and dispycos.

Plain values only: nothing here is evaluated, so a program may change a
setting (``pycos.config.MsgTimeout = 30``) before it creates a scheduler and
every later use sees the new value.  Settings that the original derived from
others (``DispycosSchedulerPort = NetPort``...) are computed once, here, from
the defaults; change both if you change the base one.

pycos 4.x also had two of them as names of the ``pycos`` module itself:
``pycos.MsgTimeout`` and ``pycos.PickleProtocolVersion``.  They are still
there, and they *are* these settings (reading one reads the setting here,
assigning one checks the value and sets it here: see :class:`_PycosModule`),
so a 4.x program that does ``pycos.MsgTimeout = 30`` changes what pycos
uses, as it did.
"""

from __future__ import annotations

import math
import pickle
import types
import typing as _typing

if _typing.TYPE_CHECKING:      # (names of annotations only: the settings stay the
    from typing import Any, Optional    # module's only public names)

#: Seconds to wait for a message to a peer to be acknowledged.
MsgTimeout: float = 10

#: Consecutive connection failures after which a peer is considered gone.
MaxConnectionErrors = 10

#: UDP/TCP port of the network scheduler (netpycos).
NetPort = 9705

#: Port of the dispycos scheduler and the first port of dispycos nodes.
DispycosSchedulerPort = NetPort
DispycosNodePort = DispycosSchedulerPort + 1

#: Heartbeat limits of dispycos, in seconds.
MinPulseInterval: float = MsgTimeout
MaxPulseInterval: float = 10 * MinPulseInterval

#: Pickle protocol used for messages between peers.  Peers negotiate down to
#: what both support; this is the most this process offers.  As in 4.x, None
#: stands for ``pickle.HIGHEST_PROTOCOL`` and 0 for ``pickle.DEFAULT_PROTOCOL``
#: (:func:`_pickle_protocol` says which number the setting means).
PickleProtocolVersion: Optional[int] = pickle.HIGHEST_PROTOCOL

#: Multicast groups used for peer discovery.
IPV4_MULTICAST_GROUP = "239.255.97.5"
IPV6_MULTICAST_GROUP = "ff05::674f:48ba:b409:3171:9705"

# ---- netpycos -------------------------------------------------------------------
# (seconds, on the monotonic clock; read when used, so a program may change
# them before it creates the scheduler)

#: How long a connection's handshake may take before it is closed.
HandshakeTimeout: float = 5.0

#: An idle connection sends a ping this often.
PeerPingInterval: float = 2.0

#: A connection with no byte received for this long is considered lost.
PeerTimeout: float = 10.0

#: A peer whose lost connection cannot be re-established for this long is
#: declared offline (every wait on it ends).
PeerReconnectPeriod: float = 10.0

#: The largest message (pickled) accepted from a peer, in bytes.
MaxFrameSize = 64 * 1024 * 1024

#: Connections allowed in their handshake at once (the rest are refused).
MaxHandshakes = 1024

#: Schedulers re-announce themselves this often (0: only at start and on
#: ``discover_peers()``), so a peer that missed them finds them later.
DiscoveryInterval: float = 30.0

#: Bytes queued for one peer above which file transfers wait (back-pressure).
PeerHighWater = 4 * 1024 * 1024

#: Bytes queued for one peer above which a task's or channel's send() to it is
#: refused with -1, so a peer that stops reading cannot exhaust our memory.
PeerMaxQueue = 64 * 1024 * 1024


# ---- checked settings ------------------------------------------------------------


_CURRENT = object()


def _pickle_protocol(value: Any = _CURRENT) -> int:
    """The pickle protocol number that ``value`` (default: the current
    ``PickleProtocolVersion``) stands for, read as 4.x read it: None is
    ``pickle.HIGHEST_PROTOCOL``, 0 is ``pickle.DEFAULT_PROTOCOL``, any other
    int is itself.  TypeError for a non-int, ValueError for a protocol this
    Python does not have."""
    if value is _CURRENT:
        value = PickleProtocolVersion
    if value is None:
        return pickle.HIGHEST_PROTOCOL
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("PickleProtocolVersion must be an int or None, not %r" % (value,))
    if value == 0:
        return pickle.DEFAULT_PROTOCOL
    if not 0 < value <= pickle.HIGHEST_PROTOCOL:
        raise ValueError("PickleProtocolVersion %d: this Python's pickle has protocols 0 to %d"
                         % (value, pickle.HIGHEST_PROTOCOL))
    return value


def _check_msg_timeout(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("MsgTimeout must be a number of seconds, not %r" % (value,))
    if math.isnan(value) or value <= 0:
        raise ValueError("MsgTimeout must be a positive number of seconds, not %r" % (value,))
    return value


class _PycosModule(types.ModuleType):
    """The class of the ``pycos`` module object: its 4.x names
    ``MsgTimeout`` and ``PickleProtocolVersion`` are properties that read
    and (after checking the value) write the settings of this module."""

    @property
    def MsgTimeout(self) -> float:
        """``pycos.config.MsgTimeout``."""
        return MsgTimeout

    @MsgTimeout.setter
    def MsgTimeout(self, value: float) -> None:
        global MsgTimeout
        MsgTimeout = _check_msg_timeout(value)

    @property
    def PickleProtocolVersion(self) -> int:
        """The protocol number ``pycos.config.PickleProtocolVersion`` stands
        for (as 4.x's ``pycos.PickleProtocolVersion``, never None)."""
        return _pickle_protocol()

    @PickleProtocolVersion.setter
    def PickleProtocolVersion(self, value: Optional[int]) -> None:
        global PickleProtocolVersion
        PickleProtocolVersion = _pickle_protocol(value)
