"""The socket, TLS and pipe examples (examples/*.py), run as programs.

Each example runs as a subprocess of the interpreter running the tests
(``sys.executable``), on whatever backend ``PYCOS_BACKEND`` selects.  Servers
listen on port 0 and print the port they got; the tests read it from their
output.  Peers nobody here wrote take part where they exist: ``curl``
against the HTTP server, ``openssl s_client`` against the TLS echo server,
``sha1sum``/``grep``/``wc`` inside the pipe examples, and the test checks the
results against ``hashlib`` and plain Python.

Every process is started in its own session and, whatever happens, killed
(the whole process group) and reaped at the end of its test; the threads
reading its output are joined.
"""
import hashlib
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

WINDOWS = os.name == "nt"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(ROOT, "examples")


class Program(object):
    """An example (or any command) running in its own process group, its
    stdout and stderr collected line by line by two threads."""

    def __init__(self, argv, stdin=False):
        self.argv = argv
        # a process group of its own (Windows: no sessions; what the example
        # starts there is killed with it by cleanup() on POSIX only)
        group = ({"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP} if WINDOWS
                 else {"start_new_session": True})
        # (Windows: UTF-8 output, as on Linux, not the ANSI code page's)
        env = dict(os.environ, PYTHONIOENCODING="utf-8") if WINDOWS else None
        self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, **group,
                                     stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines = queue.Queue()      # stdout lines not yet looked at by expect()
        self.stdout = []
        self.stderr = []
        self.threads = [threading.Thread(target=self._pump, args=(self.proc.stdout, True)),
                        threading.Thread(target=self._pump, args=(self.proc.stderr, False))]
        for t in self.threads:
            t.start()

    def _pump(self, f, is_out):
        for raw in iter(f.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if is_out:
                self.stdout.append(line)
                self.lines.put(line)
            else:
                self.stderr.append(line)

    def output(self):
        return "stdout:\n%s\nstderr:\n%s" % ("\n".join(self.stdout), "\n".join(self.stderr))

    def expect(self, pattern, timeout=20):
        """Wait for a stdout line matching ``pattern`` (lines before it are
        skipped); returns the match."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                line = self.lines.get(timeout=max(0.0, left))
            except queue.Empty:
                raise AssertionError("no line matching %r within %ss from %r\n%s"
                                     % (pattern, timeout, self.argv, self.output()))
            m = re.search(pattern, line)
            if m:
                return m

    def write(self, text):
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def close_stdin(self):
        self.proc.stdin.close()

    def wait(self, timeout=30):
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("%r still running after %ss\n%s"
                                 % (self.argv, timeout, self.output()))
        for t in self.threads:
            t.join(10)
        return rc

    def stop(self, timeout=30):
        """SIGTERM (the examples treat it as Ctrl-C); returns the exit status."""
        self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def _kill_group(self):
        if WINDOWS:
            if self.proc.poll() is None:
                self.proc.kill()
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def cleanup(self):
        if self.proc.poll() is None:
            self._kill_group()
        self.proc.wait(30)
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if f is not None:
                try:
                    f.close()
                except OSError:     # a stdin pipe whose reader is gone
                    pass
        for t in self.threads:
            t.join(10)
        # anything the example started in its group (grep, wc, sha1sum...)
        self._kill_group()


def stop(prog):
    """End ``prog`` with SIGTERM, which the examples take as Ctrl-C: they
    must exit cleanly (0).  Windows has no signal to give them (subprocess's
    terminate() is TerminateProcess, which ends them at once), so there only
    that they end is checked."""
    rc = prog.stop()
    assert WINDOWS or rc == 0, prog.output()


@pytest.fixture
def start():
    """``start(example, *args, stdin=False)`` -> Program; all are killed and
    reaped when the test ends."""
    progs = []

    def _start(example, *args, stdin=False):
        argv = [sys.executable, os.path.join(EXAMPLES, example)] + [str(a) for a in args]
        p = Program(argv, stdin=stdin)
        progs.append(p)
        return p

    def _cmd(*argv, stdin=False):
        p = Program(list(argv), stdin=stdin)
        progs.append(p)
        return p

    _start.cmd = _cmd
    yield _start
    for p in progs:
        p.cleanup()


def run_to_end(start, example, *args, timeout=60):
    """Run an example to its end; returns (exit status, Program)."""
    p = start(example, *args)
    return p.wait(timeout), p


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    from tls_util import have_pki, make_pki
    if not have_pki():
        pytest.skip("the openssl command is not installed (needed to make certificates)")
    return make_pki(tmp_path_factory.mktemp("pki"))


def have_ipv6():
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


# -- echo ---------------------------------------------------------------------

def test_echo_selftest(start):
    rc, p = run_to_end(start, "echo_server.py", "--port", 0, "--selftest", "--clients", 10)
    assert rc == 0, p.output()
    assert "selftest: 10 clients, 0 failures" in p.stdout, p.output()


@pytest.mark.skipif(not have_ipv6(), reason="no IPv6 loopback (::1) on this machine")
def test_echo_selftest_ipv6(start):
    rc, p = run_to_end(start, "echo_server.py", "--host", "::1", "--port", 0, "--selftest")
    assert rc == 0, p.output()
    assert p.stdout[0].startswith("echo server listening on [::1]:"), p.output()


def test_echo_selftest_tls(start, pki):
    rc, p = run_to_end(start, "echo_server.py", "--port", 0, "--selftest",
                       "--certfile", pki["server_pem"], "--keyfile", pki["server_key"],
                       "--cafile", pki["ca_pem"])
    assert rc == 0, p.output()
    assert p.stdout[0].endswith("(TLS)"), p.output()
    assert "selftest: 5 clients, 0 failures" in p.stdout, p.output()


def test_echo_selftest_tls_wrong_ca_fails(start, pki):
    """The self-test really checks: clients trusting another CA fail."""
    rc, p = run_to_end(start, "echo_server.py", "--port", 0, "--selftest", "--clients", 2,
                       "--certfile", pki["server_pem"], "--keyfile", pki["server_key"],
                       "--cafile", pki["other_ca_pem"])
    assert rc == 1, p.output()
    assert "selftest: 2 clients, 2 failures" in p.stdout, p.output()
    assert "CERTIFICATE_VERIFY_FAILED" in p.output()


def test_echo_client_against_server(start):
    server = start("echo_server.py", "--port", 0)
    port = server.expect(r"listening on 127\.0\.0\.1:(\d+)").group(1)
    rc, client = run_to_end(start, "echo_client.py", "--port", port, "hello", "wörld")
    assert rc == 0, client.output()
    assert client.stdout[:2] == ["echo 'hello'", "echo 'wörld'"], client.output()
    assert client.stdout[2].startswith("2 of 2 echoes correct, 0 connection(s) failed")
    rc, many = run_to_end(start, "echo_client.py", "--port", port, "--clients", 40,
                          "--repeat", 5, "a", "bb" * 5000)
    assert rc == 0, many.output()
    assert many.stdout[-1].startswith("400 of 400 echoes correct"), many.output()
    server.expect(r"closed after echoing \d+ bytes")
    stop(server)
    assert WINDOWS or server.stdout[-1] == "stopping", server.output()


def test_echo_client_refused(start):
    with socket.socket() as s:          # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        rc, client = run_to_end(start, "echo_client.py", "--port", port, "x")
    assert rc == 1, client.output()
    assert "0 of 1 echoes correct, 1 connection(s) failed" in client.stdout[-1]
    assert "ConnectionRefusedError" in client.output()


def test_echo_client_tls(start, pki):
    server = start("echo_server.py", "--port", 0, "--certfile", pki["server_pem"],
                   "--keyfile", pki["server_key"])
    port = server.expect(r"listening on 127\.0\.0\.1:(\d+) \(TLS\)").group(1)
    rc, client = run_to_end(start, "echo_client.py", "--port", port, "--cafile", pki["ca_pem"],
                            "--clients", 5, "--repeat", 3, "secret")
    assert rc == 0, client.output()
    assert client.stdout[-1].startswith("15 of 15 echoes correct"), client.output()
    # the certificate names localhost and 127.0.0.1, not this:
    rc, bad = run_to_end(start, "echo_client.py", "--port", port, "--cafile", pki["ca_pem"],
                         "--server-hostname", "example.org", "secret")
    assert rc == 1, bad.output()
    assert "CERTIFICATE_VERIFY_FAILED" in bad.output() and "example.org" in bad.output()
    stop(server)


def test_echo_server_tls_with_openssl_s_client(start, pki):
    """The docs/tls.md walk-through: openssl s_client talks to the server."""
    from tls_util import need_openssl
    need_openssl()
    server = start("echo_server.py", "--port", 0, "--certfile", pki["server_pem"],
                   "--keyfile", pki["server_key"])
    port = server.expect(r"listening on 127\.0\.0\.1:(\d+) \(TLS\)").group(1)
    client = start.cmd("openssl", "s_client", "-connect", "127.0.0.1:%s" % port,
                       "-CAfile", pki["ca_pem"], "-verify_return_error",
                       "-verify_hostname", "localhost", "-quiet", "-no_ign_eof", stdin=True)
    client.write("hello over TLS\n")
    client.expect(r"^hello over TLS$")
    client.write("and again\n")
    client.expect(r"^and again$")
    client.close_stdin()                # s_client sends close_notify and exits
    assert client.wait() == 0, client.output()
    server.expect(r"closed after echoing 25 bytes")
    stop(server)


def test_echo_server_survives_plain_client_on_tls_port(start, pki):
    server = start("echo_server.py", "--port", 0, "--certfile", pki["server_pem"],
                   "--keyfile", pki["server_key"])
    port = int(server.expect(r"listening on 127\.0\.0\.1:(\d+)").group(1))
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")        # not a TLS ClientHello
        s.settimeout(20)
        while s.recv(4096):                         # the server drops us
            pass
    server.expect(r"TLS error")
    rc, client = run_to_end(start, "echo_client.py", "--port", port, "--cafile", pki["ca_pem"],
                            "still alive")
    assert rc == 0, client.output()
    stop(server)


# -- HTTP -----------------------------------------------------------------------

def test_http_selftest(start):
    rc, p = run_to_end(start, "http_server.py", "--port", 0, "--selftest")
    assert rc == 0, p.output()
    assert p.stdout[-1] == "selftest: 0 failure(s)", p.output()
    assert not [line for line in p.stdout if line.startswith("FAIL")], p.output()


@pytest.fixture
def curl():
    path = shutil.which("curl")
    if path is None:
        pytest.skip("curl is not installed: the HTTP example cannot be checked against it")
    return path


def run_curl(curl, *args):
    r = subprocess.run([curl, "-sS", "--max-time", "20"] + list(args), capture_output=True,
                       timeout=60, start_new_session=True)
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout.decode()


def test_http_server_with_curl(start, curl):
    server = start("http_server.py", "--port", 0)
    base = server.expect(r"http server on (http://127\.0\.0\.1:\d+/)").group(1)

    out = run_curl(curl, "-i", base + "hello")
    head, _, body = out.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 200 OK"), out
    assert "\r\nContent-Length: 17\r\n" in head and body == "hello from pycos\n", out

    # two URLs in one curl run: the second reuses the connection (keep-alive)
    out = run_curl(curl, "-o", "/dev/null", "-o", "/dev/null",
                   "-w", "%{http_code} %{num_connects}\n", base, base + "stats")
    assert out.split("\n")[:2] == ["200 1", "200 0"], out

    assert run_curl(curl, "-o", "/dev/null", "-w", "%{http_code}", base + "nothing") == "404"
    assert run_curl(curl, "-o", "/dev/null", "-w", "%{http_code}", "-X", "DELETE",
                    base + "hello") == "405"
    head = run_curl(curl, "-I", base + "hello")               # HEAD
    assert head.startswith("HTTP/1.1 200 OK") and "Content-Length: 17" in head, head
    out = run_curl(curl, "-i", "--http1.0", base)
    assert "Connection: close" in out and "<h1>pycos</h1>" in out, out

    numbers = json.loads(run_curl(curl, base + "stats"))      # 7 curl runs, 8 requests
    assert (numbers["connections"], numbers["requests"]) == (7, 8), numbers
    server.expect(r"GET /stats 200")
    stop(server)


def test_http_server_no_keepalive_with_curl(start, curl):
    server = start("http_server.py", "--port", 0, "--no-keepalive", "-q")
    base = server.expect(r"http server on (http://127\.0\.0\.1:\d+/)").group(1)
    out = run_curl(curl, "-o", "/dev/null", "-o", "/dev/null",
                   "-w", "%{http_code} %{num_connects}\n", base + "hello", base + "hello")
    assert out.split("\n")[:2] == ["200 1", "200 1"], out
    stop(server)


def test_http_server_many_curl_at_once(start, curl):
    """Several curl processes at the same time, each with a few requests."""
    server = start("http_server.py", "--port", 0, "-q")
    base = server.expect(r"http server on (http://127\.0\.0\.1:\d+/)").group(1)
    procs = [start.cmd(curl, "-sS", "--max-time", "20", *([base + "hello"] * 5))
             for _ in range(8)]
    for p in procs:
        assert p.wait() == 0, p.output()
        assert p.stdout == ["hello from pycos"] * 5, p.output()
    stop(server)


# -- chat -------------------------------------------------------------------------

def test_chat_selftest(start):
    rc, p = run_to_end(start, "chat_server.py", "--port", 0, "--selftest")
    assert rc == 0, p.output()
    assert p.stdout[-1] == "selftest: 0 failure(s)", p.output()
    assert "carol | alice: hello from alice" in p.stdout, p.output()


def test_chat_clients_through_stdin(start):
    server = start("chat_server.py", "--port", 0)
    port = server.expect(r"chat server on 127\.0\.0\.1:(\d+)").group(1)
    alice = start("chat_client.py", "--port", port, "--nick", "alice", stdin=True)
    alice.expect(r"^\* welcome alice; online: alice$")
    bob = start("chat_client.py", "--port", port, "--nick", "bob", stdin=True)
    bob.expect(r"^\* welcome bob; online: alice, bob$")
    alice.expect(r"^\* bob joined$")

    alice.write("hello bob\n")
    bob.expect(r"^alice: hello bob$")
    bob.write("hi alice, ünïcode\n\n/who\n")        # the empty line is not sent
    alice.expect(r"^bob: hi alice, ünïcode$")
    bob.expect(r"^\* online: alice, bob$")

    # a nickname already taken is refused
    rc, dup = run_to_end(start, "chat_client.py", "--port", port, "--nick", "alice")
    assert rc == 0 and dup.stdout[0] == "* nickname 'alice' is not available", dup.output()

    # end of input: alice says /quit and leaves
    alice.close_stdin()
    assert alice.wait() == 0, alice.output()
    assert alice.stdout[-1] == "* disconnected", alice.output()
    bob.expect(r"^\* alice left$")

    # the server goes away while bob's keyboard thread waits for a line:
    # bob must notice and exit anyway (stdin still open)
    stop(server)
    assert bob.wait() == 0, bob.output()
    assert bob.stdout[-1] == "* disconnected", bob.output()


def test_chat_server_refuses_huge_frame(start):
    """A length prefix over the limit drops that client, not the server."""
    server = start("chat_server.py", "--port", 0)
    port = int(server.expect(r"chat server on 127\.0\.0\.1:(\d+)").group(1))
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.settimeout(20)
        s.sendall(b"\x00\x00\x00\x04evil")
        assert s.recv(4096)                         # the welcome
        s.sendall(b"\xff\xff\xff\xf0")              # "4 GiB follow"
        while s.recv(4096):
            pass                                    # closed by the server
    server.expect(r"^evil: .*max_msg_size")
    rc, client = run_to_end(start, "chat_client.py", "--port", port, "--nick", "after")
    assert rc == 0 and client.stdout[0].startswith("* welcome after"), client.output()
    stop(server)


# -- UDP --------------------------------------------------------------------------

def test_udp_many(start):
    rc, p = run_to_end(start, "udp_many.py", "--clients", 100, "--messages", 5)
    assert rc == 0, p.output()
    assert re.match(r"100 clients x 5 requests: 500 answered, \d+ resent, 0 client", p.stdout[1])


@pytest.mark.skipif(not have_ipv6(), reason="no IPv6 loopback (::1) on this machine")
def test_udp_many_ipv6(start):
    rc, p = run_to_end(start, "udp_many.py", "--host", "::1", "--clients", 20, "--messages", 3)
    assert rc == 0, p.output()
    assert p.stdout[0].startswith("UDP server on ::1 port"), p.output()


def test_udp_server_and_clients_apart(start):
    server = start("udp_many.py", "--serve")
    port = server.expect(r"UDP server on 127\.0\.0\.1 port (\d+)").group(1)
    rc, clients = run_to_end(start, "udp_many.py", "--connect", "--port", port,
                             "--clients", 30, "--messages", 4)
    assert rc == 0, clients.output()
    assert clients.stdout[0].startswith("30 clients x 4 requests: 120 answered")
    stop(server)


def test_udp_clients_without_server_fail(start):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))        # bound, never answers
        port = s.getsockname()[1]
        rc, p = run_to_end(start, "udp_many.py", "--connect", "--port", port, "--clients", 3,
                           "--messages", 1, "--retries", 1, "--timeout", 0.1)
    assert rc == 1, p.output()
    assert p.stdout[0].startswith("3 clients x 1 requests: 0 answered, 3 resent"), p.output()


# -- pipes ------------------------------------------------------------------------

@pytest.fixture
def data_files(tmp_path):
    files = {"empty": b"", "small": b"pycos\n", "big": os.urandom(3 << 20) + b"tail"}
    paths = {}
    for name, data in files.items():
        path = tmp_path / name
        path.write_bytes(data)
        paths[name] = (str(path), data)
    return paths


def test_pipe_checksum(start, data_files):
    if shutil.which("sha1sum") is None:
        pytest.skip("sha1sum is not installed")
    names = ["big", "empty", "small"]
    rc, p = run_to_end(start, "pipe_checksum.py", "--verify",
                       *[data_files[n][0] for n in names])
    assert rc == 0, p.output()
    want = ["%s  %s" % (hashlib.sha1(data_files[n][1]).hexdigest(), data_files[n][0])
            for n in names]
    assert p.stdout == want, p.output()


def test_pipe_checksum_other_program_and_missing_file(start, data_files, tmp_path):
    if shutil.which("md5sum") is None:
        pytest.skip("md5sum is not installed")
    path, data = data_files["big"]
    missing = str(tmp_path / "missing")
    rc, p = run_to_end(start, "pipe_checksum.py", "--program", "md5sum", path, missing)
    assert rc == 1, p.output()
    assert p.stdout == ["%s  %s" % (hashlib.md5(data).hexdigest(), path),
                        "%s: FAILED" % missing], p.output()


def wc_of(lines):
    """What ``wc`` prints for ``lines`` (bytes, each with its newline)."""
    return (len(lines), sum(len(x.split()) for x in lines), sum(len(x) + 1 for x in lines))


def test_pipe_grep_wc(start, tmp_path):
    for tool in ("grep", "wc", "cat"):
        if shutil.which(tool) is None:
            pytest.skip("%s is not installed" % tool)
    text = [("line %d has a needle here" % i if i % 7 == 0 else "line %d is hay" % i).encode()
            for i in range(20000)]
    path = tmp_path / "haystack.txt"
    path.write_bytes(b"\n".join(text) + b"\n")
    nomatch = tmp_path / "nothing.txt"
    nomatch.write_bytes(b"only hay\n" * 10)
    rc, p = run_to_end(start, "pipe_grep_wc.py", "needle", path, nomatch)
    assert rc == 0, p.output()
    matching = [x for x in text if b"needle" in x]
    summary = "%s: %d lines, %d words, %d bytes match 'needle'" % ((path,) + wc_of(matching))
    assert p.stdout == [summary, "%s: 0 lines, 0 words, 0 bytes match 'needle'" % nomatch]
    # --lines: the same input also goes through grep | cat, line by line
    rc, p = run_to_end(start, "pipe_grep_wc.py", "--lines", "needle", path)
    assert rc == 0, p.output()
    assert p.stdout == ["  | " + x.decode() for x in matching] + [summary], p.output()


def test_pipe_grep_wc_stdin_and_lines(start, tmp_path):
    for tool in ("grep", "wc", "cat"):
        if shutil.which(tool) is None:
            pytest.skip("%s is not installed" % tool)
    text = [b"Alpha one", b"beta two", b"ALPHA three four", b"gamma"]
    p = start("pipe_grep_wc.py", "-i", "--lines", "alpha", "-", stdin=True)
    p.write((b"\n".join(text) + b"\n").decode())
    p.close_stdin()
    assert p.wait(60) == 0, p.output()
    assert p.stdout == ["  | Alpha one", "  | ALPHA three four",
                        "-: 2 lines, 5 words, 27 bytes match 'alpha'"], p.output()
    assert wc_of([text[0], text[2]]) == (2, 5, 27)


def test_pipe_grep_wc_missing_file(start, tmp_path):
    missing = str(tmp_path / "missing")
    rc, p = run_to_end(start, "pipe_grep_wc.py", "x", missing)
    assert rc == 1, p.output()
    assert p.stdout[0].startswith(missing + ": [Errno 2]"), p.output()


def test_pipe_workers_on_any_system(start):
    """The portable pipe example: Python workers spoken to line by line
    (asyncfile.Popen on Windows, subprocess.Popen elsewhere)."""
    rc, p = run_to_end(start, "pipe_workers.py", "--workers", 3, "--jobs", 12)
    assert rc == 0, p.output()
    assert p.stdout[-1] == "12 of 12 answers correct", p.output()
    answers = [re.match(r"worker (\d) \(pid (\d+)\): (\d+) squared is (\d+)$", line)
               for line in p.stdout[:-1]]
    assert all(answers) and len(answers) == 12, p.output()
    assert sorted(int(m.group(3)) for m in answers) == list(range(1, 13))
    assert all(int(m.group(4)) == int(m.group(3)) ** 2 for m in answers)
    # one child per worker, each answering its own
    assert len({(m.group(1), m.group(2)) for m in answers}) == 3, p.output()
