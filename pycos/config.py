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
