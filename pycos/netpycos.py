"""netpycos: the pycos API across processes and hosts.

    import pycos.netpycos as pycos

    scheduler = pycos.Pycos(name="server", secret="s3cret")

gives everything in :mod:`pycos` plus the networked scheduler: tasks,
channels and RPS services found by name on other peers, messages, deliver,
monitor, terminate and throw across the network, peer discovery and file
transfer.  Importing this module also makes ``pycos.Pycos`` (and the
scheduler the first Task creates) the networked one, and adds ``RPS``/``RTI``,
``SysTask`` and ``PeerStatus`` to ``pycos``, as 4.x programs expect.

The layers below are in :mod:`pycos.net` (wire protocol, peers, node,
references, RPS, files); this module is their public face: the :class:`Pycos`
constructor, which checks every argument and decides what is exposed, and
its methods.  Security model and failure semantics: docs/netpycos.md.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import ssl
import sys
from typing import TYPE_CHECKING, Any, List, Optional, Tuple, Union

import pycos as _pycos
if TYPE_CHECKING:
    # what the star import gives, spelled out for type checkers, which would
    # otherwise take the Pycos it brings for the one this module defines
    from pycos import (  # noqa: F401
        AsyncDBCursor as AsyncDBCursor, AsyncSocket as AsyncSocket,
        AsyncThreadPool as AsyncThreadPool, BoundedSemaphore as BoundedSemaphore,
        CategorizeMessages as CategorizeMessages, Channel as Channel, Condition as Condition,
        Event as Event, HotSwapException as HotSwapException, Lock as Lock, Logger as Logger,
        MissingYieldError as MissingYieldError, MonitorStatus as MonitorStatus,
        MsgTimeout as MsgTimeout,
        PickleProtocolVersion as PickleProtocolVersion, RLock as RLock, Semaphore as Semaphore,
        deserialize as deserialize, serialize as serialize, unserialize as unserialize)
else:
    from pycos import *                               # noqa: F401,F403 (the whole pycos API)
from pycos import config
from pycos.core.log import logger
from pycos.core.scheduler import Pycos as _CorePycos, Scheduler, _check_timeout
from pycos.core.support import Location, Singleton, Struct
from pycos.core.task import Task
from pycos.net import files, refs
from pycos.net.node import Node, PeerStatus, SysTask
from pycos.net.refs import PeerOffline, RemoteChannel, RemoteTask  # noqa: F401
from pycos.net.rps import RPS, RTI
from pycos.hints import Timeout, Yieldable

__all__ = list(_pycos.__all__) + ["RPS", "RTI", "SysTask", "PeerStatus", "PeerOffline"]


class _Registry(dict):
    """A name table that tells the node when a name is registered, so that
    peers waiting in ``locate`` get their answer at once."""

    __slots__ = ("_sched", "_kind")

    def __init__(self, sched: Pycos, kind: str) -> None:
        dict.__init__(self)
        self._sched = sched
        self._kind = kind

    def __setitem__(self, name: str, obj: Any) -> None:
        dict.__setitem__(self, name, obj)
        node = getattr(self._sched, "_node", None)
        if node is not None:
            node.name_registered(self._kind, name, obj)


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _guess_host() -> str:
    """This host's address for peers to reach (not loopback when avoidable)."""
    try:
        addr = socket.gethostbyname(socket.gethostname())
        if not _loopback(addr):
            return addr
    except OSError:
        pass
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))      # no packet is sent: it only picks a route
        addr = probe.getsockname()[0]
        if addr and addr != "0.0.0.0":
            return addr
    except OSError:
        pass
    finally:
        probe.close()
    return "127.0.0.1"


def _tls_contexts(certfile: Optional[str], keyfile: Optional[str], cafile: Optional[str],
                  ssl_context: Optional[Tuple[ssl.SSLContext, ssl.SSLContext]]
                  ) -> Tuple[Optional[ssl.SSLContext], Optional[ssl.SSLContext]]:
    """(server context, client context) or (None, None)."""
    if ssl_context is not None:
        if isinstance(ssl_context, tuple) and len(ssl_context) == 2:
            server, client = ssl_context
        else:
            raise TypeError("ssl_context must be a pair (server context, client context) "
                            "of ssl.SSLContext")
        for c in (server, client):
            if not isinstance(c, ssl.SSLContext):
                raise TypeError("ssl_context items must be ssl.SSLContext, not %r" % (c,))
        return server, client
    if certfile is None:
        if keyfile is not None:
            raise ValueError("keyfile given without certfile")
        if cafile is not None:
            raise ValueError("cafile given without certfile")
        return None, None
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(certfile, keyfile)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False       # peers are addressed by IP; the CA decides
    client.load_cert_chain(certfile, keyfile)
    # the trust anchor: the CA bundle if given, else the cluster's own
    # certificate (a shared self-signed certificate, the 4.x way)
    client.load_verify_locations(cafile or certfile)
    client.verify_mode = ssl.CERT_REQUIRED
    if cafile is not None:
        server.load_verify_locations(cafile)
        server.verify_mode = ssl.CERT_REQUIRED
    return server, client


class Pycos(_CorePycos):
    """The networked scheduler (one per process; ``Pycos()`` returns it).

    ``udp_port`` (default ``config.NetPort``; 0: no discovery socket, so
    peers are added with :meth:`peer` only) for discovery, ``tcp_port``
    (default: any free port) for connections,
    ``host`` the address to listen on, ``ext_host`` the address peers should
    use (NAT), ``socket_family``, ``ipv4_udp_multicast`` (discover by
    multicast instead of broadcast), ``name`` (default: the host name),
    ``discover_peers`` (announce at start), ``secret`` (peers must share it),
    ``certfile``/``keyfile`` (TLS), ``dest_path`` (where received files go),
    ``max_file_size``.

    Beyond 4.x: ``cafile`` (a CA bundle that verifies peers' certificates),
    ``ssl_context`` (a pair of server and client ``ssl.SSLContext``),
    ``insecure`` (allow listening beyond loopback without a secret),
    ``max_frame_size`` (the largest message accepted from a peer).  With an
    empty secret the scheduler listens on loopback only.

    Methods marked [y] are made in a task as ``value = yield
    scheduler.call(...)`` (docs/index.md explains the marks).  Guide, with
    the security model and failure semantics: docs/netpycos.md.
    """

    # (None only while the constructor runs: see there)
    _node: Node

    if TYPE_CHECKING:
        @property
        def location(self) -> Location:
            """Where peers reach this scheduler (set by the constructor)."""

    def __init__(self, udp_port: Optional[int] = None, tcp_port: Optional[int] = None,
                 host: Optional[str] = None, ext_host: Optional[str] = None,
                 socket_family: Optional[int] = None, ipv4_udp_multicast: bool = False,
                 name: Optional[str] = None, discover_peers: bool = True,
                 secret: Union[str, bytes] = "", certfile: Optional[str] = None,
                 keyfile: Optional[str] = None, dest_path: Optional[str] = None,
                 max_file_size: Optional[int] = None, cafile: Optional[str] = None,
                 ssl_context: Optional[Tuple[ssl.SSLContext, ssl.SSLContext]] = None,
                 insecure: bool = False, max_frame_size: Optional[int] = None,
                 embedded: bool = False, virtual_time: bool = False,
                 backend: Optional[str] = None) -> None:
        s = self._settings(udp_port, tcp_port, host, ext_host, socket_family,
                           ipv4_udp_multicast, name, discover_peers, secret, certfile, keyfile,
                           dest_path, max_file_size, cafile, ssl_context, insecure,
                           max_frame_size)
        self._node = None       # type: ignore[assignment]  # (see above)
        # the sockets first: a port in use is this constructor's error, raised
        # before any thread starts
        node = Node(self, s)
        try:
            super().__init__(embedded=embedded, virtual_time=virtual_time, backend=backend,
                             name=s.name)
        except BaseException:
            node.discard()
            raise
        Singleton._memo[_CorePycos] = self
        self._rtasks = _Registry(self, "task")
        self._rchannels = _Registry(self, "channel")
        self._rrps = _Registry(self, "rps")
        node.start()
        self._node = node
        self._location = node._location
        self._locations = [node._location]
        if s.loopback and not s.secret:
            logger.info("netpycos: no secret, so listening on loopback only (%s); give "
                        "secret='...' (and host=) to reach other hosts", node._location)
        logger.debug("netpycos %r at %s", s.name, node._location)

    @staticmethod
    def _settings(udp_port: Optional[int], tcp_port: Optional[int], host: Optional[str],
                  ext_host: Optional[str], socket_family: Optional[int], multicast: bool,
                  name: Optional[str], discover_peers: bool, secret: Union[str, bytes],
                  certfile: Optional[str], keyfile: Optional[str], dest_path: Optional[str],
                  max_file_size: Optional[int], cafile: Optional[str],
                  ssl_context: Optional[Tuple[ssl.SSLContext, ssl.SSLContext]],
                  insecure: bool, max_frame_size: Optional[int]) -> Struct:
        if secret is None:
            secret = ""
        if not isinstance(secret, (str, bytes)):
            raise TypeError("secret must be a str, not %r" % (type(secret).__name__,))
        for what, port in (("udp_port", udp_port), ("tcp_port", tcp_port)):
            if port is not None and (isinstance(port, bool) or not isinstance(port, int)
                                     or not 0 <= port <= 65535):
                raise ValueError("%s must be a port number (0-65535) or None, not %r"
                                 % (what, port))
        if host is None:
            host = _guess_host() if (secret or insecure) else "127.0.0.1"
        elif not isinstance(host, str):
            raise TypeError("host must be a str, not %r" % (type(host).__name__,))
        else:
            host = Pycos.host_ipaddr(host)
            if host is None:
                raise ValueError("host: cannot resolve it to an address")
        loopback = _loopback(host)
        if not loopback and not secret and not insecure:
            raise ValueError(
                "netpycos would listen on %s without a secret, so anyone who can reach it "
                "could run code in this process.  Give every peer the same secret, e.g. "
                "Pycos(secret=os.environ['PYCOS_SECRET'], host=%r), or pass insecure=True "
                "if this network is trusted." % (host, host))
        if ext_host is not None:
            ext_host = Pycos.host_ipaddr(ext_host)
            if ext_host is None:
                raise ValueError("ext_host: cannot resolve it to an address")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        if socket_family is not None and socket_family != family:
            if socket_family not in (socket.AF_INET, socket.AF_INET6):
                raise ValueError("socket_family must be socket.AF_INET or AF_INET6")
            raise ValueError("socket_family %r does not match host %s" % (socket_family, host))
        if name is None:
            name = socket.gethostname()
        if not isinstance(name, str):
            raise TypeError("name must be a str")
        if dest_path is None:
            import tempfile
            dest_path = os.path.join(tempfile.gettempdir(), "pycos")
        if max_file_size is not None and (not isinstance(max_file_size, int)
                                          or max_file_size < 0):
            raise ValueError("max_file_size must be a non-negative int or None")
        if max_frame_size is None:
            max_frame_size = config.MaxFrameSize
        tls_server, tls_client = _tls_contexts(certfile, keyfile, cafile, ssl_context)
        return Struct(udp_port=config.NetPort if udp_port is None else (udp_port or None),
                      tcp_port=tcp_port or 0, host=host, ext_host=ext_host, family=family,
                      multicast=bool(multicast), name=name, discover_peers=bool(discover_peers),
                      secret=secret, dest_path=os.path.abspath(dest_path),
                      max_file_size=max_file_size, max_frame=max_frame_size,
                      loopback=loopback, tls_server=tls_server, tls_client=tls_client)

    def _singleton_check(self, *args: Any, **kwargs: Any) -> None:
        if args or any(v is not None and k not in ("embedded", "virtual_time", "backend")
                       for k, v in kwargs.items()):
            logger.debug("Pycos() already exists; arguments of this call ignored")

    # ---- references and names ----------------------------------------------------

    def _registry(self, kind):
        if kind == "rps":
            return self._rrps
        return _CorePycos._registry(self, kind)

    def _locate(self, kind, name, location=None, timeout=None):
        timeout = _check_timeout(timeout)
        if location is not None and not isinstance(location, Location):
            raise TypeError("location must be a Location, not %r" % (location,))
        node = self._node
        if node is None:
            return _CorePycos._locate(self, kind, name, location, timeout)
        return node._locate(kind, name, location, timeout)

    def _reduce_ref(self, obj):
        node = self._node
        if node is None:
            return _CorePycos._reduce_ref(self, obj)
        loc = node._location
        if isinstance(obj, Task):
            stamp = node.stamp_user if obj._sched is self else node.stamp_sys
            return (refs._task_ref, (obj._name, obj._id, stamp, loc.addr, loc.port))
        return (refs._channel_ref, (obj._name, node.stamp_user, loc.addr, loc.port))

    # ---- peers -----------------------------------------------------------------------

    @staticmethod
    def host_ipaddr(host: Optional[str]) -> Optional[str]:
        """The numeric address of ``host`` (None if it does not resolve)."""
        if not host:
            return None
        try:
            return Location._numeric(host)
        except (OSError, UnicodeError, IndexError):
            return None

    def locate(self, name: str, timeout: Timeout = None) -> Yieldable:
        """[y] The Location of the peer called ``name`` (waits until one is
        online, up to ``timeout`` seconds; None then)."""
        timeout = _check_timeout(timeout)
        node = self._node
        task = Scheduler.cur_task()
        if task is None:
            raise RuntimeError("locate() must be yielded in a task")
        for peer in list(node._peers.values()):
            if peer.online and peer.name == name:
                return task._sched._now_value(task, peer.location)
        return node._wait_peer(task, "name", ("name", name), timeout)

    def peer(self, loc: Union[Location, str], udp_port: int = 0, stream_send: bool = False,
             relay: bool = False) -> Any:
        """[y] Add a peer: a Location (connect now; 0 once it is online, -1
        if it cannot be reached within MsgTimeout) or a host name/address
        (ask it to connect to us by a discovery datagram; 0).  ``relay``: the
        peer repeats our announcement on its own network once it is online,
        and again each time we announce (``config.DiscoveryInterval``), so
        hosts that start later there find us too.  ``stream_send``
        is accepted for compatibility: every peer keeps one connection."""
        node = self._node
        task = Scheduler.cur_task()
        if isinstance(loc, Location):
            if loc == node._location:
                return -1 if task is None else task._sched._now_value(task, -1)
            p = node._get_peer(loc)
            if p is None:
                return -1 if task is None else task._sched._now_value(task, -1)
            if relay:
                p.relay = True           # relayed when online, then every announcement
                if p.online:
                    node._relay_to(p)
            if p.online:
                return 0 if task is None else task._sched._now_value(task, 0)
            p.want = True
            p._wake()
            if task is None:
                return 0
            return node._wait_peer(task, "online", loc, config.MsgTimeout, fail=-1)
        if not isinstance(loc, str):
            raise TypeError("peer() takes a Location or a host name, not %r" % (loc,))
        addr = self.host_ipaddr(loc)
        if addr is None:
            rc = -1
        else:
            port = udp_port or node._udp_port or config.NetPort
            if relay:                    # asked once it has connected (Node._peer_online)
                node._relay_addrs.add(addr)
            if node._loopback and node._family == socket.AF_INET and _loopback(addr):
                # loopback schedulers' discovery sockets are bound to the
                # loopback multicast group: they hear no unicast datagram
                addr = config.IPV4_MULTICAST_GROUP
            self._node._sys._post(node.announce, [(addr, port)])
            rc = 0
        return rc if task is None else task._sched._now_value(task, rc)

    def discover_peers(self, port: Optional[int] = None) -> None:
        """Announce this scheduler again (broadcast/multicast) so peers that
        missed it connect."""
        node = self._node
        dests = None
        if port is not None:
            dests = [(d[0], port) for d in getattr(node, "_bcast", [])]
        node._sys._post(node.announce, dests)

    def peers(self) -> List[Location]:
        """Locations of the peers online now."""
        return [p.location for p in list(self._node._peers.values()) if p.online]

    def peer_status(self, task: Task) -> int:
        """``task`` receives a PeerStatus message whenever a peer comes online
        or goes offline, and one now for each peer already online."""
        if not isinstance(task, Task):
            raise TypeError("peer_status needs a Task, not %r" % (task,))
        node = self._node
        if task not in node._status_tasks:
            node._status_tasks.append(task)
        for p in list(node._peers.values()):
            if p.online:
                task.send(PeerStatus(p.location, p.name, PeerStatus.Online))
        return 0

    def close_peer(self, location: Location, timeout: Timeout = None) -> Any:
        """[y] Close the connection to the peer at ``location`` and forget it
        (it is reported Offline).  0, or -1 if there is no such peer."""
        node = self._node
        task = Scheduler.cur_task()
        peer = node._peers.get(location) if isinstance(location, Location) else None
        if peer is None:
            return -1 if task is None else task._sched._now_value(task, -1)
        node._sys._post(node._peer_offline, peer, "closed by close_peer()")
        return 0 if task is None else task._sched._now_value(task, 0)

    def send_file(self, location: Location, file: str, dir: Optional[str] = None,
                  overwrite: bool = False, timeout: Timeout = config.MsgTimeout) -> Yieldable:
        """[y] Send ``file`` to the peer at ``location``, into ``dir`` (relative)
        under its ``dest_path``.  0 once it is in place (or an identical file
        -- same size and mtime -- already is); -1 if the peer refuses it (an
        existing file without ``overwrite``, over its ``max_file_size``, a
        path that would leave its ``dest_path``) or cannot be reached.  Mode
        and mtime are kept; the file is streamed, never held in memory."""
        return files.send_file(self._node, location, file, dir, overwrite, timeout)

    def del_file(self, location: Location, file: str, dir: Optional[str] = None,
                 timeout: Timeout = None) -> Yieldable:
        """[y] Delete ``file`` (its base name) in ``dir`` under the peer's
        ``dest_path``: 0, or -1 (no such file, or a path outside)."""
        return files.del_file(self._node, location, file, dir, timeout)

    @property
    def ignore_peers(self) -> bool:
        """True: announcements from new peers are ignored."""
        return self._node.ignore_peers

    @ignore_peers.setter
    def ignore_peers(self, flag: bool) -> None:
        self._node.ignore_peers = bool(flag)

    @property
    def dest_path(self) -> str:
        """Where files sent to this scheduler land (nothing is ever written
        outside it)."""
        return self._node.dest_path

    @dest_path.setter
    def dest_path(self, path: str) -> None:
        self._node.dest_path = os.path.abspath(path)

    @property
    def max_file_size(self) -> Optional[int]:
        """The largest file peers may send here (None: no limit)."""
        return self._node.max_file_size

    @max_file_size.setter
    def max_file_size(self, size: Optional[int]) -> None:
        if size is not None and (not isinstance(size, int) or size < 0):
            raise ValueError("max_file_size must be a non-negative int or None")
        self._node.max_file_size = size

    # ---- stopping ----------------------------------------------------------------

    def finish(self) -> None:
        """[thread] As :meth:`pycos.Pycos.finish`, then close the network."""
        _CorePycos.finish(self)
        self._close_node()

    def terminate(self) -> None:
        """[thread] As :meth:`pycos.Pycos.terminate`, then close the network."""
        _CorePycos.terminate(self)
        self._close_node()

    def _close_node(self) -> None:
        node = self._node
        if node is not None:
            node.close()


_CorePycos._networked = Pycos

# 4.x programs do `import pycos; import pycos.netpycos` and then use pycos.RPS...
# (set with setattr: type checkers know the pycos module as it is defined)
setattr(_pycos, "RPS", RPS)
setattr(_pycos, "RTI", RTI)
setattr(_pycos, "SysTask", SysTask)
setattr(_pycos, "PeerStatus", PeerStatus)
setattr(_pycos, "Pycos", Pycos)

# pycos.netpycos.MsgTimeout and .PickleProtocolVersion are the live settings
# too, as pycos.MsgTimeout is (the star import above copied their values)
for _name in ("MsgTimeout", "PickleProtocolVersion"):
    globals().pop(_name, None)
sys.modules[__name__].__class__ = config._PycosModule
