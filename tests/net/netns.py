"""Linux network namespaces as test hosts, for the multi-host tests of netpycos.

netpycos talks between processes on different machines: it broadcasts to find
peers, connects over TCP, and must notice when a peer is cut off.  Loopback
cannot show any of that (one host, no broadcast domain, no lost packets), so
the tests build a small private network instead:

    <prefix>-br   a namespace holding the Linux bridge "br0"
    <prefix>-h0   one namespace per host, with "lo" and "eth0" (10.213.X.10/24)
    <prefix>-h1   ...                                       (10.213.X.11/24)

Each host's "eth0" is one end of a veth pair whose other end, "h<i>", is a
port of br0 in the bridge namespace.  The veth pairs are created inside the
bridge namespace with their peer placed straight into the host namespace, so
nothing is ever created in, moved through, or configured in the root
namespace: its interfaces, routes and firewall are never touched.  X is
derived from the prefix, which by default names this process ("pyc<pid>"), so
parallel runs use different namespaces and different subnets.

    with Cluster(3) as c:
        srv = c.hosts[0].popen([sys.executable, "-c", ...], stdout=PIPE)
        c.hosts[1].run([sys.executable, "-c", ...], timeout=5)
        c.hosts[0].link_down()           # cable pulled at the switch
        c.hosts[2].iptables("-A", "INPUT", "-j", "DROP")

`Cluster.close()` (also on leaving the with-block, and at interpreter exit for
a cluster never closed) kills every process in the cluster's namespaces, reaps
the ones it started, and deletes the namespaces, which takes the veths and the
bridge with them.  A run that was killed cannot clean up; the next Cluster
deletes namespaces whose creating process is gone (`sweep_stale`).

Tests call `require_netns()` (and `require_netem()`, `require_iptables()`),
which skip with a precise reason when this machine cannot do it: not root, no
`ip`, namespaces not permitted, a kernel without sch_netem, ...  The answer
comes from creating and deleting one throwaway namespace, once per process.

Every command has a timeout; a command that fails raises NetnsError naming the
command and quoting its stderr.
"""
import atexit
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import zlib

__all__ = [
    "Cluster", "Host", "NetnsError", "NetemUnavailable",
    "skip_reason", "netem_available", "netem_skip_reason", "iptables_skip_reason",
    "require_netns", "require_netem", "require_iptables",
    "sweep_stale", "list_namespaces",
]

#: Default time limit, in seconds, for one command (ip, tc, iptables, run()).
CMD_TIMEOUT = 10.0
#: How long close() waits after SIGTERM before it sends SIGKILL.
TERM_GRACE = 1.0
#: How long close() waits after SIGKILL for the processes to be gone.
KILL_GRACE = 5.0
#: How long to wait for a bridge port to forward after it is brought up.
LINK_TIMEOUT = 5.0

HOST_IFACE = "eth0"          # the host's end of its veth pair
BRIDGE = "br0"               # the bridge, in the bridge namespace
SUBNET = "10.213.%d.0/24"
FIRST_HOST = 10              # host i is 10.213.X.(10+i)
MAX_HOSTS = 254 - FIRST_HOST

# Where the creating pid of each live cluster is written, one file per prefix
# ("<pid> <start time>"), so that a later run can tell stale namespaces.
# /run is a tmpfs, cleared on reboot together with the namespaces.
OWNER_DIR = "/run/pycos-netns"
NETNS_DIRS = ("/run/netns", "/var/run/netns")    # where `ip netns` keeps them

_PREFIX_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
# every namespace the harness makes is "<prefix>-br", "<prefix>-h<i>", or
# "<prefix>-probe"
_NAME_RE = re.compile(r"^(?P<prefix>.+)-(?:br|h\d+|probe)$")
# the default prefixes, which carry their creator's pid
_DEFAULT_PREFIX_RE = re.compile(r"^pyc(?P<pid>\d+)(?:n\d+)?$")


class NetnsError(RuntimeError):
    """A harness operation failed.  ``argv``, ``returncode`` and ``stderr``
    describe the failing command when there was one."""

    def __init__(self, message, argv=None, returncode=None, stderr=None):
        self.argv = list(argv) if argv is not None else None
        self.returncode = returncode
        self.stderr = stderr
        text = message
        if argv is not None:
            text = "%s: %s" % (shlex.join(str(a) for a in argv), message)
        if stderr and stderr.strip():
            text += "\nstderr: " + stderr.strip()
        super().__init__(text)


class NetemUnavailable(NetnsError):
    """tc's netem qdisc cannot be used here (a kernel without sch_netem)."""


# ------------------------------------------------------------------ commands


def _tool(name):
    """The path of an administration command, looked up in PATH and in the
    sbin directories (which a non-root PATH often lacks), or None."""
    path = os.pathsep.join([os.environ.get("PATH", ""),
                            "/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"])
    return shutil.which(name, path=path)


def _need_tool(name, package):
    path = _tool(name)
    if path is None:
        raise NetnsError("command %r not found (Debian package %s)" % (name, package))
    return path


def _ip():
    return _need_tool("ip", "iproute2")


def _command(argv, timeout=CMD_TIMEOUT, check=True, input=None, text=True, env=None, cwd=None):
    """Run argv to completion with a time limit, capturing its output.

    Raises NetnsError when it cannot be started, when it runs past `timeout`
    (it is killed then), or, with `check`, when it exits non-zero."""
    argv = [str(a) for a in argv]
    try:
        return subprocess.run(argv, stdin=None if input is not None else subprocess.DEVNULL,
                              input=input, capture_output=True, text=text, timeout=timeout,
                              check=check, env=env, cwd=cwd)
    except subprocess.TimeoutExpired as exc:
        raise NetnsError("timed out after %gs" % timeout, argv, None,
                         _as_text(exc.stderr)) from None
    except subprocess.CalledProcessError as exc:
        raise NetnsError("exit status %d" % exc.returncode, argv, exc.returncode,
                         _as_text(exc.stderr)) from None
    except OSError as exc:
        raise NetnsError("cannot run: %s" % exc, argv) from None


def _as_text(data):
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return data or ""


def list_namespaces(timeout=CMD_TIMEOUT):
    """The names `ip netns list` shows."""
    out = _command([_ip(), "netns", "list"], timeout).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _delete_namespace(name, timeout=CMD_TIMEOUT):
    """Delete a named namespace; one that is gone already is no error."""
    try:
        _command([_ip(), "netns", "delete", name], timeout)
    except NetnsError as exc:
        if _ns_path(name) is None:
            return
        raise


def _ns_path(name):
    for d in NETNS_DIRS:
        p = os.path.join(d, name)
        if os.path.exists(p):
            return p
    return None


def _ns_inode(name):
    """The inode of a named namespace (what /proc/<pid>/ns/net links to)."""
    p = _ns_path(name)
    if p is None:
        return None
    try:
        return os.stat(p).st_ino
    except OSError:
        return None


# ------------------------------------------------------------------ processes


def _proc_stat(pid):
    """(state, start time) of a process from /proc/<pid>/stat, or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rfind(")") + 2:].split()    # from field 3, "state", on
    try:
        return fields[0], int(fields[19])           # fields 3 and 22
    except (IndexError, ValueError):
        return None


def _alive(pid, start=None):
    """Whether pid runs (a zombie does not), and is the process that had
    start time `start` when one is given (pids are reused)."""
    st = _proc_stat(pid)
    if st is None or st[0] in "ZXx":
        return False
    return start is None or st[1] == start


def _pids_in(inodes):
    """Pids of the live processes whose network namespace is one of `inodes`."""
    if not inodes:
        return set()
    links = {"net:[%d]" % ino for ino in inodes}
    pids = set()
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        if pid == me:
            continue
        try:
            if os.readlink("/proc/%d/ns/net" % pid) not in links:
                continue
        except OSError:             # gone, or a kernel thread
            continue
        if _alive(pid):
            pids.add(pid)
    return pids


def _signal_all(pids, sig):
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _kill_in_namespaces(inodes, popens=(), term_grace=TERM_GRACE, kill_grace=KILL_GRACE):
    """SIGTERM every process in the namespaces (and every still running
    Popen), SIGKILL what is left after `term_grace`, then wait up to
    `kill_grace` for all of them to be gone, reaping the Popens.  Returns the
    pids still there at the end (normally none)."""
    def remaining():
        pids = _pids_in(inodes)
        pids.update(p.pid for p in popens if p.poll() is None)
        return pids

    for sig, grace in ((signal.SIGTERM, term_grace), (signal.SIGKILL, kill_grace)):
        pids = remaining()
        if not pids:
            return set()
        _signal_all(pids, sig)
        deadline = time.monotonic() + grace
        while pids and time.monotonic() < deadline:
            time.sleep(0.005)
            pids = remaining()
    return remaining()


# ------------------------------------------------------------------ owners and stale namespaces


def _start_time(pid):
    st = _proc_stat(pid)
    return st[1] if st else None


def _read_owner(prefix):
    """(pid, start time) from a prefix's owner file, or None."""
    try:
        with open(os.path.join(OWNER_DIR, prefix)) as f:
            pid, start = f.read().split()[:2]
        return int(pid), int(start)
    except (OSError, ValueError):
        return None


def _owner_alive(prefix):
    """True/False for a prefix with an owner file; None when it has none."""
    owner = _read_owner(prefix)
    if owner is None:
        return None
    return _alive(*owner)


def sweep_stale(timeout=CMD_TIMEOUT):
    """Delete the namespaces left by harness runs that died without cleaning
    up, killing what still runs in them; return the names deleted.

    A namespace is stale when it is named like the harness's ("<prefix>-br",
    "<prefix>-h<i>", "<prefix>-probe") and its prefix's owner file names a
    process that is gone, or, with no owner file, when its prefix is a
    default one ("pyc<pid>...") whose pid is gone.  Namespaces of this
    process and of live processes are never touched."""
    me = os.getpid()
    stale = []
    for name in list_namespaces(timeout):
        m = _NAME_RE.match(name)
        if not m:
            continue
        prefix = m.group("prefix")
        alive = _owner_alive(prefix)
        if alive is None:
            d = _DEFAULT_PREFIX_RE.match(prefix)
            if not d:
                continue                     # not ours to judge
            pid = int(d.group("pid"))
            alive = pid == me or _alive(pid)
        if not alive:
            stale.append((name, prefix))
    inodes = {ino for ino in (_ns_inode(n) for n, _ in stale) if ino}
    _kill_in_namespaces(inodes, term_grace=0)
    deleted = []
    for name, _ in stale:
        _delete_namespace(name, timeout)
        deleted.append(name)
    # owner files whose process is gone and whose namespaces are all deleted
    try:
        owners = os.listdir(OWNER_DIR)
    except OSError:
        owners = []
    for prefix in owners:
        if _owner_alive(prefix) is False:
            try:
                os.unlink(os.path.join(OWNER_DIR, prefix))
            except OSError:
                pass
    return deleted


# ------------------------------------------------------------------ what this machine can do

_probe_lock = threading.Lock()
_probe_result = None


def _probe():
    """Try once what the harness needs, in a throwaway namespace; cache the
    reasons why each part cannot work (None: it works)."""
    global _probe_result
    with _probe_lock:
        if _probe_result is None:
            _probe_result = _run_probe()
        return _probe_result


def _run_probe():
    result = {"netns": None, "netem": None, "iptables": None}

    def fail(reason):
        return {"netns": reason,
                "netem": "network namespaces unavailable: " + reason,
                "iptables": "network namespaces unavailable: " + reason}

    if not sys.platform.startswith("linux"):
        return fail("network namespaces are Linux-only (this is %s)" % sys.platform)
    ip = _tool("ip")
    if ip is None:
        return fail("the 'ip' command (Debian package iproute2) is not installed")
    who = "" if os.geteuid() == 0 else " (running as uid %d, not root)" % os.geteuid()
    name = "pyc%d-probe" % os.getpid()
    try:
        _delete_namespace(name)          # a leftover of an earlier probe of this pid
    except NetnsError:
        pass
    try:
        try:
            _command([ip, "netns", "add", name])
        except NetnsError as exc:
            return fail("'ip netns add' does not work here%s: %s" % (who, exc))
        steps = [
            ("cannot configure a namespace's loopback",
             [ip, "-n", name, "link", "set", "lo", "up"]),
            ("'ip netns exec' does not work here",
             [ip, "netns", "exec", name, ip, "link", "show", "lo"]),
            ("cannot create a Linux bridge (CONFIG_BRIDGE)",
             [ip, "-n", name, "link", "add", BRIDGE, "type", "bridge"]),
            ("cannot create a veth pair (CONFIG_VETH)",
             [ip, "-n", name, "link", "add", "v0", "type", "veth", "peer", "name", "v1"]),
        ]
        for what, argv in steps:
            try:
                _command(argv)
            except NetnsError as exc:
                return fail("%s%s: %s" % (what, who, exc))
        tc = _tool("tc")
        if tc is None:
            result["netem"] = "the 'tc' command (Debian package iproute2) is not installed"
        else:
            try:
                _command([tc, "-n", name, "qdisc", "add", "dev", "v0", "root", "netem",
                          "delay", "1ms"])
            except NetnsError as exc:
                result["netem"] = ("tc qdisc netem is not available (a kernel without "
                                   "sch_netem, CONFIG_NET_SCH_NETEM): %s" % exc)
        ipt = _tool("iptables")
        if ipt is None:
            result["iptables"] = "the 'iptables' command (Debian package iptables) is not installed"
        else:
            try:
                _command([ip, "netns", "exec", name, ipt, "-w", "5", "-A", "INPUT",
                          "-p", "tcp", "--dport", "9", "-j", "REJECT",
                          "--reject-with", "tcp-reset"])
            except NetnsError as exc:
                result["iptables"] = "iptables does not work in a namespace here: %s" % exc
        return result
    finally:
        try:
            _delete_namespace(name)
        except NetnsError:
            pass


def skip_reason():
    """None when this machine can build clusters, else why not (a sentence)."""
    return _probe()["netns"]


def netem_skip_reason():
    """None when `Host.netem()` works here, else why not."""
    return _probe()["netem"]


def netem_available():
    """Whether tc's netem qdisc can be used (the kernel has sch_netem)."""
    return netem_skip_reason() is None


def iptables_skip_reason():
    """None when `Host.iptables()` works here, else why not."""
    return _probe()["iptables"]


def _skip(reason):
    if reason is not None:
        import pytest
        pytest.skip(reason)


def require_netns():
    """For tests: pytest.skip() unless clusters can be built here."""
    _skip(skip_reason())


def require_netem():
    """For tests: pytest.skip() unless netem works here."""
    _skip(netem_skip_reason())


def require_iptables():
    """For tests: pytest.skip() unless iptables works in a namespace here."""
    _skip(iptables_skip_reason())


# ------------------------------------------------------------------ the cluster

_live_lock = threading.Lock()
_live = {}          # prefix -> Cluster, the open clusters of this process


def _default_prefix():
    base = "pyc%d" % os.getpid()
    if base not in _live:
        return base
    k = 2
    while "%sn%d" % (base, k) in _live:
        k += 1
    return "%sn%d" % (base, k)


class Host:
    """One host of a Cluster: a network namespace with loopback and eth0.

    ``name`` is the namespace's name, ``addr`` its IPv4 address (a string),
    ``broadcast`` the subnet's broadcast address, ``index`` its number."""

    def __init__(self, cluster, index, name, addr, broadcast):
        self.cluster = cluster
        self.index = index
        self.name = name
        self.addr = addr
        self.broadcast = broadcast
        self.iface = HOST_IFACE                 # in this host's namespace
        self.port = "h%d" % index               # its bridge port, in cluster.bridge_ns

    def __repr__(self):
        return "<Host %s %s>" % (self.name, self.addr)

    def command(self, argv):
        """argv wrapped to run inside this host's namespace."""
        return [_ip(), "netns", "exec", self.name] + [str(a) for a in argv]

    def popen(self, argv, **kw):
        """subprocess.Popen(argv, **kw) inside this host's namespace.  stdin
        defaults to /dev/null.  The cluster kills and reaps it on close(),
        and closes its pipes."""
        self.cluster._check_open()
        kw.setdefault("stdin", subprocess.DEVNULL)
        proc = subprocess.Popen(self.command(argv), **kw)
        self.cluster._procs.append(proc)
        return proc

    def run(self, argv, timeout=CMD_TIMEOUT, check=True, input=None, text=True, env=None,
            cwd=None):
        """Run argv inside this host's namespace to completion; return the
        CompletedProcess (stdout and stderr captured, as str by default).
        Raises NetnsError past `timeout` (the process is killed) or, with
        `check`, on a non-zero exit status."""
        self.cluster._check_open()
        return _command(self.command(argv), timeout, check, input, text, env, cwd)

    # -- the link

    def link_down(self):
        """Cut this host off: bring its port on the bridge down, as if its
        cable were pulled at the switch.  The host keeps its address and route
        (eth0 only loses carrier), so its sockets get no local error: packets
        in both directions are silently dropped, a connect() times out, and
        open TCP connections survive a short cut."""
        self.cluster._bridge_cmd(["link", "set", self.port, "down"])

    def link_up(self):
        """Reconnect the host; returns once its bridge port forwards again."""
        self.cluster._bridge_cmd(["link", "set", self.port, "up"])
        self.cluster._wait_ports([self.port])

    # -- traffic shaping and firewall

    def netem(self, spec, timeout=CMD_TIMEOUT):
        """Put tc's netem qdisc on this host's eth0 (outgoing traffic), e.g.
        ``"loss 10% delay 50ms"`` (a string or an argument list); replaces
        the one set before.  Raises NetemUnavailable on a kernel without
        sch_netem (`netem_available()` tells beforehand)."""
        self.cluster._check_open()
        args = shlex.split(spec) if isinstance(spec, str) else [str(a) for a in spec]
        reason = netem_skip_reason()
        argv = [_tool("tc") or "tc", "-n", self.name, "qdisc", "replace", "dev", self.iface,
                "root", "netem"] + args
        if reason is not None:
            raise NetemUnavailable(reason, argv)
        _command(argv, timeout)

    def netem_clear(self, timeout=CMD_TIMEOUT):
        """Remove a netem qdisc set by netem(); nothing to remove is no error."""
        self.cluster._check_open()
        tc = _need_tool("tc", "iproute2")
        shown = _command([tc, "-n", self.name, "qdisc", "show", "dev", self.iface], timeout)
        if "netem" in shown.stdout:
            _command([tc, "-n", self.name, "qdisc", "del", "dev", self.iface, "root"], timeout)

    def iptables(self, *args, timeout=CMD_TIMEOUT):
        """Run ``iptables ARGS`` inside this host's namespace (its own
        tables; the root namespace's firewall is not involved); return its
        stdout.  ``-w 5`` is passed first, so a held xtables lock is waited
        for rather than failing."""
        ipt = _need_tool("iptables", "iptables")
        return self.run([ipt, "-w", "5"] + [str(a) for a in args], timeout=timeout).stdout


class Cluster:
    """n_hosts hosts on one Ethernet segment, each in its own network
    namespace, joined by a bridge in a namespace of its own.

    ``hosts`` lists the Host objects, ``prefix`` names the namespaces,
    ``bridge_ns`` is the bridge's namespace, ``subnet`` the hosts' /24.
    A context manager; close() is idempotent."""

    def __init__(self, n_hosts, prefix=None, timeout=CMD_TIMEOUT):
        if not isinstance(n_hosts, int) or not 1 <= n_hosts <= MAX_HOSTS:
            raise ValueError("n_hosts must be an int in 1..%d, not %r" % (MAX_HOSTS, n_hosts))
        if prefix is not None and not _PREFIX_RE.match(prefix):
            raise ValueError("prefix must match %s, not %r" % (_PREFIX_RE.pattern, prefix))
        self.timeout = timeout
        self.hosts = []
        self._pid = os.getpid()
        self._closed = False
        self._namespaces = []           # (name, inode) of each namespace this created
        self._procs = []                # every Popen of Host.popen()
        self._owner_file = None
        with _live_lock:
            if prefix is None:
                prefix = _default_prefix()
            elif prefix in _live:
                raise NetnsError("prefix %r is in use by an open cluster of this process"
                                 % prefix)
            _live[prefix] = self
        self.prefix = prefix
        self.bridge_ns = prefix + "-br"
        self.net = zlib.crc32(prefix.encode()) % 250 + 1
        self.subnet = SUBNET % self.net
        try:
            self._setup(n_hosts)
        except BaseException:
            try:
                self.close()
            except Exception:           # the setup error is the one to report
                pass
            raise

    def __repr__(self):
        return "<Cluster %s %d hosts %s%s>" % (self.prefix, len(self.hosts), self.subnet,
                                               " closed" if self._closed else "")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def closed(self):
        return self._closed

    @property
    def namespaces(self):
        """The names of the namespaces this cluster created (and has not
        deleted yet)."""
        return [name for name, _ in self._namespaces]

    def addr(self, i):
        return "10.213.%d.%d" % (self.net, FIRST_HOST + i)

    @property
    def broadcast(self):
        return "10.213.%d.255" % self.net

    # -- setup

    def _cmd(self, argv):
        return _command(argv, self.timeout)

    def _bridge_cmd(self, args):
        self._check_open()
        return self._cmd([_ip(), "-n", self.bridge_ns] + args)

    def _check_open(self):
        if self._closed:
            raise NetnsError("cluster %s is closed" % self.prefix)

    def _setup(self, n_hosts):
        reason = skip_reason()
        if reason is not None:
            raise NetnsError("cannot build a cluster here: " + reason)
        sweep_stale(self.timeout)
        self._claim_prefix()
        ip = _ip()
        mine = re.compile(r"^%s-(?:br|h\d+)$" % re.escape(self.prefix))
        clash = [n for n in list_namespaces(self.timeout) if mine.match(n)]
        if clash:
            raise NetnsError("namespaces of prefix %r exist already: %s"
                             % (self.prefix, ", ".join(clash)))
        self._add_namespace(self.bridge_ns)
        br = [ip, "-n", self.bridge_ns]
        self._cmd(br + ["link", "set", "lo", "up"])
        self._cmd(br + ["link", "add", BRIDGE, "type", "bridge", "stp_state", "0"])
        self._cmd(br + ["link", "set", BRIDGE, "up"])
        for i in range(n_hosts):
            self._add_host(i)
        self._wait_ports([h.port for h in self.hosts])

    def _claim_prefix(self):
        """Write the owner file: this pid and its start time."""
        try:
            os.makedirs(OWNER_DIR, exist_ok=True)
        except OSError:
            return                      # sweeping then relies on default prefixes
        path = os.path.join(OWNER_DIR, self.prefix)
        if _owner_alive(self.prefix) and _read_owner(self.prefix)[0] != self._pid:
            raise NetnsError("prefix %r belongs to live process %d"
                             % (self.prefix, _read_owner(self.prefix)[0]))
        with open(path, "w") as f:
            f.write("%d %d\n" % (self._pid, _start_time(self._pid)))
        self._owner_file = path

    def _add_namespace(self, name):
        self._cmd([_ip(), "netns", "add", name])
        self._namespaces.append((name, _ns_inode(name)))

    def _add_host(self, i):
        ip = _ip()
        name = "%s-h%d" % (self.prefix, i)
        self._add_namespace(name)
        host = Host(self, i, name, self.addr(i), self.broadcast)
        br = [ip, "-n", self.bridge_ns]
        hn = [ip, "-n", name]
        self._cmd(br + ["link", "add", host.port, "type", "veth",
                        "peer", "name", HOST_IFACE, "netns", name])
        self._cmd(br + ["link", "set", host.port, "master", BRIDGE, "up"])
        self._cmd(hn + ["link", "set", "lo", "up"])
        self._cmd(hn + ["addr", "add", "%s/24" % host.addr, "broadcast", host.broadcast,
                        "dev", HOST_IFACE])
        self._cmd(hn + ["link", "set", HOST_IFACE, "up"])
        self.hosts.append(host)
        return host

    def _port_states(self):
        """{port: (operstate, bridge port state)} of br0's ports."""
        out = self._cmd([_ip(), "-j", "-d", "-n", self.bridge_ns, "link", "show",
                         "master", BRIDGE]).stdout
        states = {}
        for link in json.loads(out or "[]"):
            slave = link.get("linkinfo", {}).get("info_slave_data", {})
            states[link.get("ifname")] = (link.get("operstate"), slave.get("state"))
        return states

    def _wait_ports(self, ports, timeout=LINK_TIMEOUT):
        """Wait until each port is up with carrier (so the host's eth0 is up
        too) and forwarding."""
        deadline = time.monotonic() + timeout
        while True:
            states = self._port_states()
            waiting = [p for p in ports if states.get(p) != ("UP", "forwarding")]
            if not waiting:
                return
            if time.monotonic() >= deadline:
                raise NetnsError("bridge ports not forwarding after %gs: %s"
                                 % (timeout, ", ".join("%s=%s" % (p, states.get(p))
                                                       for p in waiting)))
            time.sleep(0.005)

    # -- teardown

    def close(self):
        """Kill every process in the cluster's namespaces (SIGTERM, then
        SIGKILL after TERM_GRACE), reap and close the pipes of those
        Host.popen() started, delete the namespaces (their veths and the
        bridge go with them) and the owner file.  Safe to call again; also
        cleans up after a setup that failed halfway.  Raises NetnsError at
        the end if something could not be cleaned up."""
        if self._closed:
            return
        self._closed = True
        problems = []
        try:
            inodes = {ino for _, ino in self._namespaces if ino}
            left = _kill_in_namespaces(inodes, self._procs)
            if left:
                problems.append("processes still running after SIGKILL: %s"
                                % ", ".join(map(str, sorted(left))))
            for proc in self._procs:
                try:
                    proc.wait(timeout=0.5)
                except subprocess.TimeoutExpired:
                    problems.append("pid %d not reaped" % proc.pid)
                for f in (proc.stdin, proc.stdout, proc.stderr):
                    if f is not None:
                        try:
                            f.close()
                        except OSError:
                            pass
        finally:
            # hosts first (their eth0 takes the bridge port with it), bridge last
            for name, _ in reversed(self._namespaces):
                try:
                    _delete_namespace(name, self.timeout)
                except NetnsError as exc:
                    problems.append(str(exc))
                    continue
            self._namespaces = [(n, i) for n, i in self._namespaces if _ns_path(n)]
            if self._owner_file is not None and not self._namespaces:
                try:
                    os.unlink(self._owner_file)
                except OSError:
                    pass
            with _live_lock:
                if _live.get(self.prefix) is self:
                    del _live[self.prefix]
        if problems:
            raise NetnsError("cleanup of cluster %s incomplete: %s"
                             % (self.prefix, "; ".join(problems)))


@atexit.register
def _close_forgotten():
    """Close the clusters a program left open (not in forked children)."""
    for cluster in list(_live.values()):
        if cluster._pid == os.getpid():
            try:
                cluster.close()
            except Exception:
                pass
