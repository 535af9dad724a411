"""Self-tests of the network-namespace harness (netns.py).

Small Python programs, run with sys.executable inside the host namespaces,
exchange TCP and UDP; the tests then cut links, add firewall rules and tc
netem, and check that close() leaves no namespace and no process behind.
Nothing waits a fixed time: children print a line when they are ready and
the tests wait for it with a deadline.
"""
import os
import re
import select
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import netns

HERE = os.path.dirname(os.path.abspath(__file__))

# TCP echo server: argv = address; prints "READY <port>", serves until killed
ECHO_SERVER = textwrap.dedent("""
    import socket, sys, threading
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((sys.argv[1], 0))
    s.listen(16)
    print("READY", s.getsockname()[1], flush=True)
    def serve(c):
        with c:
            while True:
                d = c.recv(4096)
                if not d:
                    return
                c.sendall(d)
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()
""")

# TCP client: argv = timeout target... (target "addr:port"); one line per
# target: "OK addr:port secs" or "ERR addr:port ERRNAME secs"
TCP_CLIENT = textwrap.dedent("""
    import errno, socket, sys, time
    timeout = float(sys.argv[1])
    for target in sys.argv[2:]:
        host, port = target.rsplit(":", 1)
        t0 = time.monotonic()
        try:
            with socket.create_connection((host, int(port)), timeout=timeout) as c:
                msg = ("echo " + target).encode()
                c.sendall(msg)
                got = b""
                while len(got) < len(msg):
                    d = c.recv(100)
                    if not d:
                        break
                    got += d
            res = "OK" if got == msg else "ERR BADECHO"
        except socket.timeout:
            res = "ERR timeout"
        except OSError as e:
            res = "ERR " + errno.errorcode.get(e.errno, str(e.errno))
        res = res.split()
        print(res[0], target, *res[1:], "%.3f" % (time.monotonic() - t0), flush=True)
""")

# UDP broadcast receiver: argv = port own_addr n_others timeout; prints
# "READY", then "GOT a b ..." once a datagram from each of n_others other
# hosts has come in
UDP_RECEIVER = textwrap.dedent("""
    import socket, sys
    port, me, want = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("", port))
    s.settimeout(float(sys.argv[4]))
    print("READY", flush=True)
    seen = set()
    while len(seen) < want:
        data, (src, _) = s.recvfrom(200)
        if src != me and data == ("hello from " + src).encode():
            seen.add(src)
    print("GOT", *sorted(seen), flush=True)
""")

# UDP broadcast sender: argv = own_addr broadcast port; sends every 50 ms
# until killed (a datagram may be lost; the receivers wait for one each)
UDP_SENDER = textwrap.dedent("""
    import socket, sys, time
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    s.bind((sys.argv[1], 0))
    msg = ("hello from " + sys.argv[1]).encode()
    print("READY", flush=True)
    while True:
        s.sendto(msg, (sys.argv[2], int(sys.argv[3])))
        time.sleep(0.05)
""")

# a process tree: a child that ignores SIGTERM, and its grandchild; prints
# "READY <grandchild pid>"
STUBBORN_TREE = textwrap.dedent("""
    import signal, subprocess, sys, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    g = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    print("READY", g.pid, flush=True)
    time.sleep(600)
""")


class Lines:
    """Reads a child's stdout (bytes pipe, stderr merged in) line by line,
    waiting with a deadline."""

    def __init__(self, proc):
        self.proc = proc
        self.buf = b""
        self.seen = []

    def wait_for(self, prefix, timeout=10.0):
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                line = line.decode()
                self.seen.append(line)
                if line.startswith(prefix):
                    return line
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no %r line from %r within %gs; output: %r"
                                     % (prefix, self.proc.args, timeout, self.seen))
            if select.select([fd], [], [], left)[0]:
                data = os.read(fd, 4096)
                if not data:
                    raise AssertionError("%r ended (status %r) before a %r line; output: %r"
                                         % (self.proc.args, self.proc.wait(5), prefix,
                                            self.seen + [self.buf.decode()]))
                self.buf += data


def start(host, script, *args):
    """Run a script in a host; return (proc, Lines)."""
    proc = host.popen([sys.executable, "-c", script] + [str(a) for a in args],
                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return proc, Lines(proc)


def echo_server(host):
    """Start an echo server on host; return its "addr:port"."""
    _, lines = start(host, ECHO_SERVER, host.addr)
    return "%s:%s" % (host.addr, lines.wait_for("READY").split()[1])


def connect(host, targets, timeout):
    """Connect from host to each target; {target: (status, secs)} where
    status is "OK" or an errno name / "timeout"."""
    res = host.run([sys.executable, "-c", TCP_CLIENT, timeout] + list(targets),
                   timeout=timeout * len(targets) + 10)
    out = {}
    for line in res.stdout.splitlines():
        f = line.split()
        out[f[1]] = ("OK", float(f[2])) if f[0] == "OK" else (f[2], float(f[3]))
    assert set(out) == set(targets), res.stdout + res.stderr
    return out


@pytest.fixture
def make_cluster():
    """make_cluster(n, **kw) -> a netns.Cluster, closed after the test."""
    netns.require_netns()
    made = []

    def make(n, **kw):
        c = netns.Cluster(n, **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def ours(prefix):
    return [n for n in netns.list_namespaces() if n.startswith(prefix + "-")]


def root_snapshot():
    """The root namespace's interfaces, IPv4 addresses and routes, and its
    firewall rules: what the harness must never change."""
    ip = netns._tool("ip")
    snap = {}
    for key, argv in [("links", [ip, "-o", "link", "show"]),
                      ("addrs", [ip, "-o", "-4", "addr", "show"]),
                      ("routes", [ip, "-4", "route", "show", "table", "all"])]:
        snap[key] = netns._command(argv).stdout
    snap["links"] = sorted(line.split(":")[1].strip() for line in snap["links"].splitlines())
    # iptables-save only reads (listing a table with legacy iptables would
    # create it); its timestamp comments and packet counters are left out
    save = netns._tool("iptables-save")
    if save:
        snap["iptables"] = [re.sub(r"\[\d+:\d+\]", "", line)
                            for line in netns._command([save]).stdout.splitlines()
                            if not line.startswith("#")]
    return snap


# ------------------------------------------------------------------ traffic


@pytest.mark.timeout(30)
@pytest.mark.parametrize("n", [2, 3])
def test_hosts_exchange_tcp_and_udp_broadcast(make_cluster, n):
    c = make_cluster(n)
    hosts = c.hosts
    assert [h.name for h in hosts] == ["%s-h%d" % (c.prefix, i) for i in range(n)]
    assert len({h.addr for h in hosts}) == n
    assert all(h.broadcast == hosts[0].addr.rsplit(".", 1)[0] + ".255" for h in hosts)
    assert sorted(ours(c.prefix)) == sorted([c.bridge_ns] + [h.name for h in hosts])

    # TCP: every host reaches every other host's echo server
    servers = [echo_server(h) for h in hosts]
    for i, h in enumerate(hosts):
        others = servers[:i] + servers[i + 1:]
        assert {t: r[0] for t, r in connect(h, others, 5).items()} == dict.fromkeys(others, "OK")
    # loopback is up in each host namespace
    for h in hosts:
        h.run([sys.executable, "-c",
               "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.close()"])

    # UDP broadcast to the subnet broadcast address: each host hears all others
    port = 47000 + n
    receivers = [start(h, UDP_RECEIVER, port, h.addr, n - 1, 10) for h in hosts]
    for _, lines in receivers:
        lines.wait_for("READY")
    for h in hosts:
        start(h, UDP_SENDER, h.addr, h.broadcast, port)[1].wait_for("READY")
    for h, (_, lines) in zip(hosts, receivers):
        got = lines.wait_for("GOT").split()[1:]
        assert got == sorted(o.addr for o in hosts if o is not h)


@pytest.mark.timeout(30)
def test_root_namespace_untouched(make_cluster):
    before = root_snapshot()
    c = make_cluster(2)
    a, b = c.hosts
    b.link_down()
    b.link_up()
    if netns.iptables_skip_reason() is None:
        b.iptables("-A", "INPUT", "-p", "tcp", "-j", "DROP")
    during = root_snapshot()
    c.close()
    after = root_snapshot()
    assert during == before
    assert after == before


# ------------------------------------------------------------------ links, firewall, netem


@pytest.mark.timeout(30)
def test_link_down_cuts_host_off_and_link_up_restores(make_cluster):
    c = make_cluster(2)
    a, b = c.hosts
    target = echo_server(b)
    assert connect(a, [target], 3)[target][0] == "OK"

    b.link_down()
    # silently dropped: no error comes back, the connect times out
    assert connect(a, [target], 1)[target][0] in ("timeout", "EHOSTUNREACH")
    # and the other direction too
    back = echo_server(a)
    assert connect(b, [back], 1)[back][0] in ("timeout", "EHOSTUNREACH")

    b.link_up()
    assert connect(a, [target], 5)[target][0] == "OK"
    assert connect(b, [back], 5)[back][0] == "OK"


@pytest.mark.timeout(30)
def test_iptables_drop_blocks_and_delete_restores(make_cluster):
    netns.require_iptables()
    c = make_cluster(2)
    a, b = c.hosts
    target = echo_server(b)
    port = target.split(":")[1]
    rule = ["INPUT", "-p", "tcp", "--dport", port, "-j", "DROP"]
    b.iptables("-A", *rule)
    assert "--dport %s -j DROP" % port in b.iptables("-S", "INPUT")
    assert "DROP" not in a.iptables("-S", "INPUT")           # only b has the rule
    assert connect(a, [target], 1)[target][0] == "timeout"
    b.iptables("-D", *rule)
    assert connect(a, [target], 5)[target][0] == "OK"


@pytest.mark.timeout(30)
def test_iptables_reject_with_tcp_reset_refuses_quickly(make_cluster):
    netns.require_iptables()
    c = make_cluster(2)
    a, b = c.hosts
    target = echo_server(b)
    b.iptables("-A", "INPUT", "-p", "tcp", "--dport", target.split(":")[1],
               "-j", "REJECT", "--reject-with", "tcp-reset")
    status, secs = connect(a, [target], 5)[target]
    assert status in ("ECONNREFUSED", "ECONNRESET")
    assert secs < 1.0


@pytest.mark.timeout(30)
def test_iptables_error_names_command_and_stderr(make_cluster):
    netns.require_iptables()
    c = make_cluster(1)
    with pytest.raises(netns.NetnsError) as info:
        c.hosts[0].iptables("-A", "NO-SUCH-CHAIN", "-j", "DROP")
    msg = str(info.value)
    assert "iptables" in msg and "NO-SUCH-CHAIN" in msg and "stderr:" in msg
    assert info.value.returncode not in (None, 0)


@pytest.mark.timeout(30)
def test_netem_loss_100_blocks_and_clear_restores(make_cluster):
    netns.require_netem()
    c = make_cluster(2)
    a, b = c.hosts
    target = echo_server(b)
    assert connect(a, [target], 3)[target][0] == "OK"
    b.netem("loss 100%")                 # b's outgoing packets: the SYN-ACK is lost
    assert connect(a, [target], 1)[target][0] == "timeout"
    b.netem_clear()
    b.netem_clear()                      # nothing left to clear: no error
    assert connect(a, [target], 5)[target][0] == "OK"


@pytest.mark.timeout(30)
def test_netem_unavailable_raises_clearly(make_cluster):
    if netns.netem_available():
        pytest.skip("netem works here; this checks the error on kernels without it")
    c = make_cluster(1)
    with pytest.raises(netns.NetemUnavailable) as info:
        c.hosts[0].netem("loss 10% delay 50ms")
    assert "netem" in str(info.value) and "loss 10% delay 50ms" in str(info.value)
    assert info.value.argv is not None
    c.hosts[0].netem_clear()             # no qdisc there: no error


# ------------------------------------------------------------------ commands


@pytest.mark.timeout(30)
def test_run_raises_with_command_stderr_and_timeout(make_cluster):
    c = make_cluster(1)
    h = c.hosts[0]
    res = h.run([sys.executable, "-c", "import sys; print('out'); print('err', file=sys.stderr)"])
    assert (res.returncode, res.stdout, res.stderr) == (0, "out\n", "err\n")
    with pytest.raises(netns.NetnsError) as info:
        h.run([sys.executable, "-c", "import sys; sys.exit('went wrong')"])
    assert "went wrong" in str(info.value) and "exit status 1" in str(info.value)
    assert sys.executable in str(info.value) and info.value.returncode == 1
    t0 = time.monotonic()
    with pytest.raises(netns.NetnsError, match="timed out after 0.5s"):
        h.run([sys.executable, "-c", "import time; time.sleep(60)"], timeout=0.5)
    assert time.monotonic() - t0 < 5
    assert h.run(["false"], check=False).returncode == 1


# ------------------------------------------------------------------ cleanup


@pytest.mark.timeout(30)
def test_close_kills_everything_and_deletes_namespaces(make_cluster):
    c = make_cluster(2)
    procs, grandchildren = [], []
    for h in c.hosts:
        echo_server(h)
        proc, lines = start(h, STUBBORN_TREE)
        grandchildren.append(int(lines.wait_for("READY").split()[1]))
        procs.append(proc)
    assert all(netns._alive(pid) for pid in grandchildren)
    t0 = time.monotonic()
    c.close()
    assert time.monotonic() - t0 < netns.TERM_GRACE + 3
    assert ours(c.prefix) == []
    assert all(p.returncode == -signal.SIGKILL for p in procs)      # ignored SIGTERM
    assert all(p.returncode is not None for p in c._procs)
    assert not any(netns._alive(pid) for pid in grandchildren)
    assert not os.path.exists(os.path.join(netns.OWNER_DIR, c.prefix))
    c.close()                                                      # twice: a no-op
    assert c.closed
    with pytest.raises(netns.NetnsError, match="closed"):
        c.hosts[0].popen(["true"])


@pytest.mark.timeout(30)
def test_setup_failing_halfway_cleans_up(monkeypatch):
    netns.require_netns()
    real = netns.Cluster._add_host
    prefix = "pycfail%d" % os.getpid()

    def add_host(self, i):
        if i == 2:
            raise RuntimeError("injected failure at host 2")
        return real(self, i)

    monkeypatch.setattr(netns.Cluster, "_add_host", add_host)
    with pytest.raises(RuntimeError, match="injected"):
        netns.Cluster(4, prefix=prefix)
    assert ours(prefix) == []
    assert prefix not in netns._live
    assert not os.path.exists(os.path.join(netns.OWNER_DIR, prefix))


@pytest.mark.timeout(30)
def test_stale_namespaces_of_dead_runs_are_swept():
    netns.require_netns()
    # a run killed with SIGKILL: it leaves its namespaces and a process in them
    prefix = "pycstale%d" % os.getpid()
    script = textwrap.dedent("""
        import subprocess, sys, time
        sys.path.insert(0, sys.argv[1])
        import netns
        c = netns.Cluster(2, prefix=sys.argv[2])
        p = c.hosts[1].popen([sys.executable, "-c", "import time; time.sleep(600)"])
        print("READY", p.pid, flush=True)
        time.sleep(600)
    """)
    run = subprocess.Popen([sys.executable, "-c", script, HERE, prefix],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
    try:
        orphan = int(Lines(run).wait_for("READY").split()[1])
    finally:
        run.kill()
        run.wait(10)
        run.stdout.close()
    # the dead run's namespaces are stale from now on: a test run in parallel
    # (pytest-xdist, a second pytest) may sweep them before this one does,
    # so what is checked is the state after sweeping, not who swept
    expected = {prefix + "-br", prefix + "-h0", prefix + "-h1"}
    assert set(ours(prefix)) <= expected

    # a default-prefix namespace of a pid that cannot exist, with no owner file
    with open("/proc/sys/kernel/pid_max") as f:
        dead = int(f.read()) + 7
    ghost = "pyc%d-h0" % dead
    netns._command([netns._tool("ip"), "netns", "add", ghost])
    # a default-prefix namespace of a live process (this one) is kept
    mine = "pyc%dn99-h0" % os.getpid()
    netns._command([netns._tool("ip"), "netns", "add", mine])
    try:
        deleted = netns.sweep_stale()
        assert set(deleted) <= expected | {ghost}
        assert ours(prefix) == []
        assert ghost not in netns.list_namespaces()
        assert mine in netns.list_namespaces()
        assert not netns._alive(orphan)
        assert not os.path.exists(os.path.join(netns.OWNER_DIR, prefix))
    finally:
        for name in (ghost, mine):
            netns._delete_namespace(name)


@pytest.mark.timeout(30)
def test_default_prefixes_are_unique_per_open_cluster(make_cluster):
    a = make_cluster(1)
    b = make_cluster(1)
    assert a.prefix == "pyc%d" % os.getpid()
    assert b.prefix != a.prefix and b.prefix.startswith(a.prefix)
    assert a.hosts[0].name != b.hosts[0].name
    with pytest.raises(netns.NetnsError, match="in use"):
        netns.Cluster(1, prefix=a.prefix)
