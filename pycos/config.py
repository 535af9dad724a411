"""Settings shared by pycos, netpycos and dispycos.

Plain values only: nothing here is evaluated, so a program may change a
setting (``pycos.config.MsgTimeout = 30``) before it creates a scheduler and
every later use sees the new value.  Settings that the original derived from
others (``DispycosSchedulerPort = NetPort``...) are computed once, here, from
the defaults; change both if you change the base one.
"""

import pickle

#: Seconds to wait for a message to a peer to be acknowledged.
MsgTimeout = 10

#: Consecutive connection failures after which a peer is considered gone.
MaxConnectionErrors = 10

#: UDP/TCP port of the network scheduler (netpycos).
NetPort = 9705

#: Port of the dispycos scheduler and the first port of dispycos nodes.
DispycosSchedulerPort = NetPort
DispycosNodePort = DispycosSchedulerPort + 1

#: Heartbeat limits of dispycos, in seconds.
MinPulseInterval = MsgTimeout
MaxPulseInterval = 10 * MinPulseInterval

#: Pickle protocol used for messages between peers.  Peers negotiate down to
#: what both support; this is the most this process offers.
PickleProtocolVersion = pickle.HIGHEST_PROTOCOL

#: Multicast groups used for peer discovery.
IPV4_MULTICAST_GROUP = "239.255.97.5"
IPV6_MULTICAST_GROUP = "ff05::674f:48ba:b409:3171:9705"

# ---- netpycos -------------------------------------------------------------------
# (seconds, on the monotonic clock; read when used, so a program may change
# them before it creates the scheduler)

#: How long a connection's handshake may take before it is closed.
HandshakeTimeout = 5.0

#: An idle connection sends a ping this often.
PeerPingInterval = 2.0

#: A connection with no byte received for this long is considered lost.
PeerTimeout = 10.0

#: A peer whose lost connection cannot be re-established for this long is
#: declared offline (every wait on it ends).
PeerReconnectPeriod = 10.0

#: The largest message (pickled) accepted from a peer, in bytes.
MaxFrameSize = 64 * 1024 * 1024

#: Connections allowed in their handshake at once (the rest are refused).
MaxHandshakes = 1024

#: Schedulers re-announce themselves this often (0: only at start and on
#: ``discover_peers()``), so a peer that missed them finds them later.
DiscoveryInterval = 30.0

#: Bytes queued for one peer above which file transfers wait (back-pressure).
PeerHighWater = 4 * 1024 * 1024

#: Bytes queued for one peer above which a task's or channel's send() to it is
#: refused with -1, so a peer that stops reading cannot exhaust our memory.
PeerMaxQueue = 64 * 1024 * 1024
