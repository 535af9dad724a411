"""How netpycos peers find each other, beyond plain broadcast discovery
(which tests/net/test_multihost.py covers):

* ``peer(host)`` -- a host name or address only: a unicast announcement to
  its UDP port makes it connect back -- and ``peer(Location)``;
* ``discover_peers(port=...)`` and the ``ignore_peers`` flag;
* ``relay=True``: the peer repeats our announcement on its own subnet, so a
  host there that never heard of us connects across the router;
* ``ext_host``: a scheduler behind a NAT (iptables DNAT) announces, and is
  known by, its external address;
* IPv6 multicast discovery between hosts with ULA addresses.

The loopback tests run peer programs (tests/net/peerlib.py) as processes on
this host; the others build private networks of Linux network namespaces
(tests/net/netns.py) and skip, with the reason, where that cannot be done.
Every wait is for an event (a line printed by a peer, a PeerStatus, a
datagram), with a deadline.
"""
import queue
import re
import socket
import time

import pytest

import netns
import pycos
import pycos.netpycos as netpycos
from pycos import config
from netutil import Proc, run

pytestmark = pytest.mark.timeout(60)

UDP_PORT = 19715
TCP_PORT = 19716


def _free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


class _Group(object):
    """A socket in the loopback discovery group at ``port``: it receives what
    loopback schedulers announce to that port (to watch for datagrams)."""

    def __init__(self, port):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((config.IPV4_MULTICAST_GROUP, port))
        s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                     socket.inet_aton(config.IPV4_MULTICAST_GROUP)
                     + socket.inet_aton("127.0.0.1"))
        self.sock = s

    def wait(self, n, timeout=10):
        """Wait for ``n`` datagrams; fail after ``timeout``."""
        deadline = time.monotonic() + timeout
        for i in range(n):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("%d of %d datagrams within %ss" % (i, n, timeout))
            self.sock.settimeout(left)
            try:
                self.sock.recvfrom(2048)
            except socket.timeout:
                raise AssertionError("%d of %d datagrams within %ss" % (i, n, timeout))

    def close(self):
        self.sock.close()


class _Status(object):
    """A task of this process's scheduler that collects PeerStatus messages;
    ``wait(name)`` returns the first one for the peer called ``name``."""

    def __init__(self, sched):
        self.q = queue.Queue()
        self.seen = []
        self.task = pycos.Task(self._collect)
        sched.peer_status(self.task)

    def _collect(self, task=None):
        while True:
            st = yield task.receive()
            if st is None:
                return
            self.q.put(st)

    def wait(self, name, status=netpycos.PeerStatus.Online, timeout=10):
        for st in self.seen:
            if st.name == name and st.status == status:
                return st
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no status %s for %r within %ss; got %r"
                                     % (status, name, timeout, self.seen))
            try:
                st = self.q.get(timeout=left)
            except queue.Empty:
                continue
            self.seen.append(st)
            if st.name == name and st.status == status:
                return st

    def stop(self):
        self.task.send(None)


# ---- loopback ------------------------------------------------------------------------

LISTENER = """
import sys
from peerlib import *
config.DiscoveryInterval = float(sys.argv[2])
sched = start(udp_port=int(sys.argv[1]), discover_peers=sys.argv[2] != "0")
def status(task=None):
    while True:
        st = yield task.receive()
        say("ONLINE" if st.status == pycos.PeerStatus.Online else "OFFLINE", st.name)
sched.peer_status(pycos.Task(status))
serve()
"""


def _me(secret, **kw):
    kw.setdefault("udp_port", 0)
    kw.setdefault("discover_peers", False)
    return netpycos.Pycos(name="test", host="127.0.0.1", secret=secret, **kw)


@pytest.mark.parametrize("udp_port", [0, "own"], ids=["no-udp-socket", "udp-socket"])
def test_peer_by_host_name_and_address(spawn, secret, udp_port):
    """peer("localhost", udp_port=P) sends one announcement to the host's
    discovery port: the scheduler listening there (discovery otherwise off)
    connects back, and both see each other Online.  Works whether or not we
    have a discovery socket of our own."""
    port = _free_udp_port()
    p = spawn(LISTENER, name="listener", args=[str(port), "0"])
    p.ready()
    sched = _me(secret, udp_port=_free_udp_port() if udp_port == "own" else 0)
    status = _Status(sched)

    def client(task=None):
        assert (yield sched.peer("no-such-host.invalid", udp_port=port)) == -1
        return (yield sched.peer("localhost", udp_port=port))
    assert run(client) == 0
    st = status.wait("listener")
    assert st.location in sched.peers()
    p.expect(r"^ONLINE test$")
    status.stop()


def test_peer_by_location(net, spawn):
    """peer(Location): 0 once online (and at once when it already is); -1
    for ourselves and for a port where nothing listens, quickly."""
    p = spawn(LISTENER, name="listener", args=["0", "0"])
    loc = p.ready()
    status = _Status(net)
    dead = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    dead.bind(("127.0.0.1", 0))            # bound, not listening: connections refused
    nobody = netpycos.Location("127.0.0.1", dead.getsockname()[1])

    def client(task=None):
        assert loc not in net.peers()
        assert (yield net.peer(loc)) == 0
        assert loc in net.peers()
        assert (yield net.peer(loc)) == 0
        assert (yield net.peer(net.location)) == -1
        t0 = time.monotonic()
        assert (yield net.peer(nobody)) == -1
        return time.monotonic() - t0
    try:
        took = run(client)
    finally:
        dead.close()
    assert took < 3, took
    assert status.wait("listener").location == loc
    p.expect(r"^ONLINE test$")
    with pytest.raises(TypeError):
        net.peer(("127.0.0.1", loc.port))
    status.stop()


def test_discover_peers_to_another_port(spawn, secret):
    """discover_peers() announces to our own discovery port;
    discover_peers(port=P) to port P, where a scheduler that does not announce
    itself hears it and connects."""
    mine = theirs = _free_udp_port()
    while theirs == mine:
        theirs = _free_udp_port()
    p = spawn(LISTENER, name="listener", args=[str(theirs), "0"])
    p.ready()
    watch = _Group(mine)
    try:
        sched = _me(secret, udp_port=mine)
        status = _Status(sched)
        sched.discover_peers()
        watch.wait(1)
        sched.discover_peers(port=theirs)
        status.wait("listener")
        p.expect(r"^ONLINE test$")
        status.stop()
    finally:
        watch.close()


def test_ignore_peers(spawn, secret):
    """With ignore_peers set, announcements of a new peer are dropped (no
    connection); cleared, the next one is followed."""
    port = _free_udp_port()
    watch = _Group(port)
    try:
        sched = _me(secret, udp_port=port)
        sched.ignore_peers = True
        assert sched.ignore_peers is True
        status = _Status(sched)
        p = spawn(LISTENER, name="announcer", args=[str(port), "0.1"])
        p.ready()
        # its announcements reach the group -- ours too -- and are ignored
        watch.wait(4)
        assert sched.peers() == [] and status.q.empty(), (sched.peers(), list(status.q.queue))
        assert not [l for l in p.lines if l.startswith("ONLINE")], p.output()
        sched.ignore_peers = False
        status.wait("announcer")
        p.expect(r"^ONLINE test$")
        status.stop()
    finally:
        watch.close()


# ---- namespaces ------------------------------------------------------------------------

PEER = r"""
import os, socket
from peerlib import *
E = os.environ
config.DiscoveryInterval = float(E.get("D_INTERVAL", "0"))
kw = dict(host=E["D_HOST"], udp_port=int(E["D_UDP"]), tcp_port=int(E["D_TCP"]),
          discover_peers=E.get("D_DISCOVER") == "1")
if E.get("D_EXT"):
    kw["ext_host"] = E["D_EXT"]
if ":" in E["D_HOST"]:
    kw["socket_family"] = socket.AF_INET6
sched = start(**kw)

def status(task=None):
    while True:
        st = yield task.receive()
        say("ONLINE" if st.status == pycos.PeerStatus.Online else "OFFLINE",
            st.location.addr, st.location.port, st.name)
sched.peer_status(pycos.Task(status))

def whoami(task=None):
    task.register("whoami")
    while True:
        who = yield task.receive()
        who.send(E["PYCOS_TEST_NAME"])
pycos.Task(whoami)

def act(task=None):
    if E.get("D_PEER"):
        a, p = E["D_PEER"].rsplit(",", 1)
        rc = yield sched.peer(pycos.Location(a, int(p)), relay=E.get("D_RELAY") == "1")
        say("PEER", rc)
    if E.get("D_PEER_HOST"):
        rc = yield sched.peer(E["D_PEER_HOST"], udp_port=int(E["D_UDP"]),
                              relay=E.get("D_RELAY") == "1")
        say("PEER-HOST", rc)
    if E.get("D_ASK"):      # once the peer called D_ASK is online, ask its task
        loc = yield sched.locate(E["D_ASK"], timeout=15)
        t = yield pycos.Task.locate("whoami", loc, timeout=10) if loc else None
        if t is None:
            say("ASKED", None, loc)
        else:
            t.send(task)
            say("ASKED", (yield task.receive(timeout=10)), t.location)
pycos.Task(act)
serve()
"""


class Net(object):
    """Clusters and the peer programs on their hosts; all stopped and
    deleted at the end of the test."""

    def __init__(self, secret):
        self.secret = secret
        self.clusters = []
        self.procs = []

    def cluster(self, n):
        c = netns.Cluster(n)
        self.clusters.append(c)
        return c

    def start(self, host, name, addr=None, discover=False, interval=0, **env):
        e = {"D_HOST": addr or host.addr, "D_UDP": str(UDP_PORT), "D_TCP": str(TCP_PORT),
             "D_DISCOVER": "1" if discover else "0", "D_INTERVAL": str(interval)}
        e.update({"D_" + k.upper(): str(v) for k, v in env.items()})
        p = Proc(PEER, self.secret, name=name, env=e, host=host)
        self.procs.append(p)
        return p

    def close(self):
        errors = []
        for p in self.procs:
            try:
                rc = p.stop()
            except AssertionError as e:
                errors.append(str(e))
                continue
            if rc != 0:
                errors.append("%s exited with %s; output:\n%s" % (p.name, rc, p.output()))
        for c in self.clusters:
            try:
                c.close()
            except netns.NetnsError as e:
                errors.append(str(e))
        return errors


@pytest.fixture
def nets(secret):
    netns.require_netns()
    n = Net(secret)
    try:
        yield n
    finally:
        errors = n.close()
    assert not errors, "\n".join(errors)


def _line(p, pattern, timeout=10):
    """The first line of ``p`` matching ``pattern``, printed so far (before
    READY too) or within ``timeout``: its match object."""
    for line in list(p.lines):
        m = re.search(pattern, line)
        if m:
            return m
    return p.expect(pattern, timeout)


def _online(p, addr, port=TCP_PORT, name=None, timeout=10):
    """Wait for p's ONLINE line for addr:port (and name)."""
    return _line(p, r"^ONLINE %s %d %s$" % (re.escape(addr), port, name or r"\S+"), timeout)


def test_peer_by_address_across_hosts(nets):
    """Two hosts, no discovery (nobody announces): A's peer("B's address")
    sends one unicast announcement to B's UDP port; B connects to A."""
    c = nets.cluster(2)
    a, b = c.hosts
    pb = nets.start(b, "B")
    pb.ready()
    pa = nets.start(a, "A", peer_host=b.addr)
    pa.ready()
    _line(pa, r"^PEER-HOST 0$")
    _online(pb, a.addr, name="A")
    _online(pa, b.addr, name="B")


@pytest.mark.parametrize("how", ["location", "host"])
def test_relay_announces_on_the_peers_subnet(nets, how):
    """Two subnets joined by host R (a router, one leg in each).  A (subnet
    X) peers with R with relay=True (by R's Location, or by its address: R
    connects to A, then A asks); R repeats A's announcement on subnet Y,
    where C -- which announces nothing and was told of nobody -- hears it and
    connects to A through R.  Nobody runs periodic discovery."""
    cx = nets.cluster(2)
    for _ in range(5):                # a second cluster on another /24
        cy = nets.cluster(1)
        if cy.net != cx.net:
            break
    else:
        pytest.skip("could not get two clusters on different subnets")
    a, r = cx.hosts
    (cc,) = cy.hosts
    ry = "10.213.%d.100" % cy.net
    # R's second leg: a veth from Y's bridge straight into R's namespace
    cy._bridge_cmd(["link", "add", "r1", "type", "veth", "peer", "name", "eth1",
                    "netns", r.name])
    cy._bridge_cmd(["link", "set", "r1", "master", netns.BRIDGE, "up"])
    r.run(["ip", "addr", "add", ry + "/24", "broadcast", cy.broadcast, "dev", "eth1"])
    r.run(["ip", "link", "set", "eth1", "up"])
    r.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"])
    a.run(["ip", "route", "add", cy.subnet, "via", r.addr])
    cc.run(["ip", "route", "add", cx.subnet, "via", ry])
    cy._wait_ports(["r1"])

    pc = nets.start(cc, "C")
    pr = nets.start(r, "R", addr=ry)
    pc.ready()
    pr.ready()
    if how == "location":
        pa = nets.start(a, "A", peer="%s,%d" % (ry, TCP_PORT), relay=1)
        pa.ready()
        _line(pa, r"^PEER 0$")
    else:
        pa = nets.start(a, "A", peer_host=ry, relay=1)
        pa.ready()
        _line(pa, r"^PEER-HOST 0$")
    _online(pr, a.addr, name="A")
    _online(pc, a.addr, name="A")
    _online(pa, cc.addr, name="C")
    # R never announced itself: C knows A (from the relayed datagram) only
    assert not [l for l in pc.lines if l.startswith("ONLINE") and l.endswith(" R")], pc.output()


def test_ext_host_behind_dnat(nets):
    """A listens on its own address but sets ext_host=E, an address that only
    exists as a DNAT rule on A (B routes E to A).  A's Location is E, its
    announcements say E: B, which announces nothing, hears A, connects to E
    (so through the NAT), and a task on B finds and talks to a task on A at
    E."""
    netns.require_iptables()
    c = nets.cluster(2)
    a, b = c.hosts
    ext = "10.213.%d.200" % c.net
    b.run(["ip", "route", "add", ext + "/32", "via", a.addr])
    a.iptables("-t", "nat", "-A", "PREROUTING", "-d", ext, "-j", "DNAT",
               "--to-destination", a.addr)
    pb = nets.start(b, "B", ask="A")
    pb.ready()
    pa = nets.start(a, "A", ext=ext, discover=True, interval=0.3)
    assert pa.ready() == pycos.Location(ext, TCP_PORT)
    _online(pb, ext, name="A")
    _online(pa, b.addr, name="B")
    _line(pb, r"^ASKED A %s:%d$" % (re.escape(ext), TCP_PORT))
    assert not [l for l in pb.lines if l.startswith("ONLINE %s " % a.addr)], pb.output()


def test_ipv6_multicast_discovery(nets):
    """Three hosts with IPv6 ULA addresses only in use (socket_family
    AF_INET6): discovery by the IPv6 multicast group finds every pair."""
    c = nets.cluster(3)
    addrs = []
    for h in c.hosts:
        addr = "fd00:213:%d::%d" % (c.net, 10 + h.index)
        h.run(["ip", "-6", "addr", "add", addr + "/64", "dev", h.iface, "nodad"])
        addrs.append(addr)
    procs = [nets.start(h, "H%d" % h.index, addr=addr, discover=True, interval=0.3)
             for h, addr in zip(c.hosts, addrs)]
    for p in procs:
        p.ready()
    for p, addr in zip(procs, addrs):
        for q, other in zip(procs, addrs):
            if q is not p:
                _online(p, other, name=q.name)
