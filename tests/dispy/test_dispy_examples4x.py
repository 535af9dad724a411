"""The original pycos 4.12.2's dispycos example programs, run unchanged
against this package's ``dispycosnode``, the way a 4.x user tries them.

`make pytest` fetches the original's example programs into
build/pycos4-examples/ (the Makefile rule ``build/pycos4-examples/.stamp``:
the pycos 4.12.2 source distribution from the package index,
``py3.7/examples/`` -- the files its setup installs for Python 3.7+).  They
are never kept in this repository.  Without that directory this module
skips; with it, every test runs.

Each test, as a user would on one computer, with no secret and nothing but
discovery to find each other:

1. starts ``python -m pycos.dispycosnode -c 2 -i 127.0.0.1`` (a real
   process: its two server processes, the default ports 9706-9708);
2. runs ``python dispycos_XXX.py [ARGS]`` from a copy of the examples
   directory (some examples read their data files from the current
   directory), with this package's pycos first on sys.path (PYTHONPATH) and
   the command-line arguments the example itself offers to make the run
   shorter (fewer jobs / files);
3. answers the example's prompts on its standard input when it has any
   (a job request, then ``quit``), only after the output that shows it got
   that far;
4. requires the example to end by itself with status 0 within the time
   limit, to print no traceback, and to print the results it is written to
   print; the node must have released it (``status`` says idle) and
   removed everything the client sent (its ``dest_path`` is empty).

TMPDIR points into the test's own directory, so the default ``dest_path``
of the client and of the node (both under the temporary directory) stay
there and go with it.

Examples left out, and why:

- ``dispycos_cloud_computing.py``: peers with the fixed Amazon EC2 address
  54.204.242.185 and starts its scheduler with ``ext_ip_addr =
  'router.ext.ip'`` (a router's external address to fill in); it needs an
  EC2 node and a configured router.
- ``dispycos_ssh_ec2.py``: the same EC2 node, reached through ssh remote
  port forwarding of port 9705 (and binds the fixed ports 9705).
- ``dispycos_client5_proc.py``: not an example of its own; it is the
  program ``dispycos_client5.py`` ships to the servers and runs there (so
  it is exercised by that test).

The web UI's examples (``dispycos_httpd1.py``, ``dispycos_httpd2.py``,
``dispycos_client1.py``) are opened as a user opens them: the address
they print, with its token, on the fixed port 8181 they use.

``dispycos_client10.py`` runs behind the ``soak`` marker (its smallest
run takes about 45 s; see its test).

Three examples read data files from the installed package's ``examples``
directory (``os.path.dirname(pycos.__file__)/examples/*.py``): 4.x's setup
installs its example programs there (``package_data`` ``examples/*``), so
a 4.x user's installation has exactly the files this module fetched.  This
package ships no such directory (the originals are never copied into it),
so these tests give the example an installation of its own: a ``pycos``
directory in the test's directory whose entries are links to this
package's, plus ``examples`` holding the fetched originals -- the original
package's own data, where its installation put it
(``dispycos_mem_servers.py``, ``dispycos_client9_server.py``,
``dispycos_client9_node.py``;
``dispycos_client10.py`` takes the directory as an argument instead).
"""
import hashlib
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(ROOT, "build", "pycos4-examples")
STAMP = os.path.join(EXAMPLES, ".stamp")

if not os.path.exists(STAMP):
    pytest.skip("build/pycos4-examples/.stamp is absent: the original pycos 4.12.2 example "
                "programs have not been fetched (`make build/pycos4-examples/.stamp`, a "
                "prerequisite of `make pytest`)", allow_module_level=True)


class Prog(object):
    """A program in a real process (its own process group), its output lines
    (stdout and stderr together) collected by a reader thread."""

    def __init__(self, argv, name, cwd, env, stdin=True):
        self.name = name
        self.lines = []
        self._q = queue.Queue()
        self._seen = 0
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env, start_new_session=True,
                                     stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.started = time.monotonic()
        self._reader = threading.Thread(target=self._read, name="proc-reader", daemon=True)
        self._reader.start()

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(line)
            self._q.put(line)
        self._q.put(None)

    def output(self):
        return "\n".join(self.lines)

    def expect(self, pattern, timeout):
        """The first new output line matching ``pattern``: its match."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("%s: no line matching %r within %ss; output:\n%s"
                                     % (self.name, pattern, timeout, self.output()))
            try:
                line = self._q.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                self._q.put(None)
                self._reader.join(5)
                raise AssertionError("%s ended (status %s) before a line matching %r; "
                                     "output:\n%s" % (self.name, self.proc.wait(), pattern,
                                                      self.output()))
            m = rx.search(line)
            if m:
                return m

    def send_line(self, text):
        try:
            self.proc.stdin.write((text + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            raise AssertionError("%s: cannot send %r, its input is closed (status %s); "
                                 "output:\n%s" % (self.name, text, self.proc.poll(),
                                                  self.output()))

    def wait(self, timeout):
        """The exit status once the program ends by itself (AssertionError
        with its output when it does not within ``timeout``)."""
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("%s did not end within %ss; output:\n%s"
                                 % (self.name, timeout, self.output()))
        self._reader.join(10)
        return rc

    def stop(self):
        """End the program and everything it started (its process group),
        reap it, close its pipes."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
        self.proc.wait()
        # what it started (server processes) may outlive it in its group
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        if self.proc.stdin is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        self._reader.join(10)
        self.proc.stdout.close()


def _children(pid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(d))
    return out


def _alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


class Run(object):
    """One example's run: the directory, the node, the example."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="pycos-ex4x-")
        self.examples = os.path.join(self.dir, "examples")
        shutil.copytree(EXAMPLES, self.examples, ignore=shutil.ignore_patterns(".stamp"))
        tmp = os.path.join(self.dir, "tmp")
        os.mkdir(tmp)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([ROOT] + [p for p in [env.get("PYTHONPATH")] if p])
        env["PYTHONUNBUFFERED"] = "1"          # lines as they come, for the prompts
        env["TMPDIR"] = tmp
        self.env = env
        self.progs = []

    def install(self):
        """A 4.x-like installation for the examples that read
        ``dirname(pycos.__file__)/examples``: ``site/pycos`` links to this
        package's files, with ``examples`` the fetched originals (see the
        module docstring); it comes first on PYTHONPATH (call before
        starting anything)."""
        pkg = os.path.join(self.dir, "site", "pycos")
        os.makedirs(pkg)
        here = os.path.join(ROOT, "pycos")
        for name in os.listdir(here):
            if name != "__pycache__":
                os.symlink(os.path.join(here, name), os.path.join(pkg, name))
        os.symlink(self.examples, os.path.join(pkg, "examples"))
        self.env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(pkg),
                                                  self.env["PYTHONPATH"]])

    def start(self, argv, name, stdin=True):
        p = Prog([sys.executable] + argv, name, self.examples, self.env, stdin=stdin)
        self.progs.append(p)
        return p

    def node(self, cpus=2):
        node = self.start(["-m", "pycos.dispycosnode", "-c", str(cpus), "-i", "127.0.0.1"],
                          "dispycosnode")
        node.expect(r"^dispycosnode ", timeout=60)
        # its default --dest_path, under TMPDIR
        node.dest = os.path.join(self.env["TMPDIR"], "pycos-%d" % os.getuid())
        return node

    def close(self):
        problems = []
        for p in self.progs:
            if p.name != "dispycosnode" or p.proc.poll() is not None:
                continue
            servers = _children(p.proc.pid)
            try:
                p.proc.stdin.close()                # end of input: quit
                p.proc.wait(30)
            except (OSError, subprocess.TimeoutExpired):
                problems.append("dispycosnode did not end on 'quit':\n" + p.output())
                continue
            left = [pid for pid in servers if _alive(pid)]
            if left:
                problems.append("server processes outlived their node: %r" % left)
        for p in self.progs:
            p.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
        return problems


@pytest.fixture
def run():
    r = Run()
    try:
        yield r
    finally:
        problems = r.close()
    assert not problems, "\n".join(problems)


def _tracebacks(prog):
    """How many tracebacks ``prog`` printed that do not end with a bare
    KeyboardInterrupt (a job interrupted by close(): 4.x printed those
    too -- a server logs the job's end, an example may print its status)."""
    return prog.output().count("Traceback") - prog.lines.count("KeyboardInterrupt")


def finish(ex, node, timeout, results=(), interrupted=False, shown=None, others=()):
    """The example ends with 0 within ``timeout``, prints no traceback (but
    for jobs ended by KeyboardInterrupt when ``interrupted``, and those an
    example prints as a result on a line matching ``shown``) and prints
    every line in ``results`` ((pattern, count) pairs: at least that many
    lines match); the node is idle again, with nothing left in its
    ``dest_path`` (but for the directories named in ``others``: those of
    other programs of the run, which the caller checks).  Returns the
    output lines."""
    rc = ex.wait(timeout)
    out = ex.output()
    context = "\n--- %s output:\n%s\n--- dispycosnode output:\n%s" % (ex.name, out,
                                                                     node.output())
    assert rc == 0, "%s ended with status %s%s" % (ex.name, rc, context)
    bad = _tracebacks(ex) if interrupted else out.count("Traceback")
    if shown is not None:
        bad -= len([line for line in ex.lines if re.search(shown, line)])
    assert bad <= 0, "%s printed a traceback%s" % (ex.name, context)
    for pattern, count in results:
        n = len([line for line in ex.lines if re.search(pattern, line)])
        assert n >= count, ("%s: %d lines match %r, expected at least %d%s"
                            % (ex.name, n, pattern, count, context))
    assert _tracebacks(node) <= 0, "the node or a server printed a traceback" + context
    node.send_line("status")
    m = node.expect(r"^dispycosnode .*: (idle|client.*)$", timeout=20)
    assert m.group(1) == "idle", "the node still serves the example's client" + context
    # the client's directory went with it, and every file sent went there
    left = [name for name in os.listdir(node.dest) if name not in others]
    assert not left, "left in the node's dest_path %s: %r%s" % (node.dest, left, context)
    return ex.lines


# -- the examples ---------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_dispycos_client2(run):
    """4 jobs of 2-5 s returning (i, location, time); prints each result."""
    node = run.node()
    ex = run.start(["dispycos_client2.py", "4"], "dispycos_client2.py", stdin=False)
    lines = finish(ex, node, 90, [(r"^    result for [0-3] from \S+:\d+: ", 4)])
    assert not [line for line in lines if "** rtask" in line], lines


@pytest.mark.timeout(120)
def test_dispycos_client3(run):
    """4 jobs taking objects of the client's class C; each sends its result
    (the square root) back by message."""
    node = run.node()
    ex = run.start(["dispycos_client3.py", "4"], "dispycos_client3.py", stdin=False)
    lines = finish(ex, node, 90, [(r"^  request [0-3]: [0-9.]+$", 4),
                                  (r"^    result for job [0-3]: [0-3]: [0-9.]+$", 4)])
    requested = {}
    for line in lines:
        m = re.match(r"^  request (\d): ([0-9.]+)$", line)
        if m:
            requested[int(m.group(1))] = float(m.group(2))
    for line in lines:
        m = re.match(r"^    result for job \d: (\d): ([0-9.]+)$", line)
        if m:
            assert abs(float(m.group(2)) ** 2 - requested[int(m.group(1))]) < 1e-6, line
    assert not [line for line in lines if "** rtask" in line], lines


@pytest.mark.timeout(120)
def test_dispycos_client4(run):
    """3 files (of dispycos_client*.py in the current directory) sent to
    jobs, which send back a result file of line lengths."""
    node = run.node()
    ex = run.start(["dispycos_client4.py", "3"], "dispycos_client4.py", stdin=False)
    lines = finish(ex, node, 90, [(r"^    job [0-2] output is in ", 3)])
    outputs = [re.match(r"^    job \d output is in (.*)$", line).group(1) for line in lines
               if re.match(r"^    job \d output is in ", line)]
    for path in outputs:
        assert os.path.dirname(path) == run.examples, path
        source = os.path.join(run.examples, os.path.basename(path)[len("result-"):])
        with open(source) as f:
            want = ["%d: %d" % (i, len(line) - 1) for i, line in enumerate(f, start=1)]
        with open(path) as f:
            assert f.read().splitlines() == want, path



@pytest.mark.timeout(120)
def test_dispycos_client7(run):
    """4 jobs placed by the example itself from the status messages
    (ServerInitialized, then each job's MonitorStatus) with rtask_at."""
    node = run.node()
    ex = run.start(["dispycos_client7.py", "4"], "dispycos_client7.py", stdin=False)
    lines = finish(ex, node, 90, [(r"^  rtask_proc started at \S+:\d+ with [0-9.]+$", 4),
                                  (r"^      rtask_proc at \S+:\d+ finished with [0-9.]+$", 4)])
    assert not [line for line in lines if "** rtask_proc" in line], lines


@pytest.mark.timeout(200)
def test_dispycos_client8(run):
    """1 job that blocks its server with time.sleep (5 requests of 10-20 s)
    while the client keeps sending it messages; prints the sum."""
    node = run.node()
    ex = run.start(["dispycos_client8.py", "1"], "dispycos_client8.py", stdin=False)
    finish(ex, node, 170, [(r"^  job 0 processed by \S+:\d+$", 1),
                           (r"^    \S+:\d+ computed result: [0-9.]+$", 1)])



@pytest.mark.timeout(120)
def test_dispycos_live_analytics(run):
    """1000 values streamed at 50 per second to two jobs (a moving average
    sending trend signals back, and one saving the data)."""
    node = run.node()
    ex = run.start(["dispycos_live_analytics.py"], "dispycos_live_analytics.py", stdin=False)
    finish(ex, node, 90)
    # (how many trend signals a random walk gives is chance: none is possible)
    assert time.monotonic() - ex.started >= 20, "the 1000 values were not all sent"


@pytest.mark.timeout(120)
def test_dispycos_live_analytics_channel(run):
    """The same, broadcast on a Channel the two jobs subscribe to
    (deliver('start', n=2) must reach both)."""
    node = run.node()
    ex = run.start(["dispycos_live_analytics_channel.py"],
                   "dispycos_live_analytics_channel.py", stdin=False)
    finish(ex, node, 90)
    assert time.monotonic() - ex.started >= 20, "the 1000 values were not all sent"


@pytest.mark.timeout(120)
def test_dispycos_client5(run):
    """1 job running the shipped dispycos_client5_proc.py as ``../`` from
    its server's directory (the client's files are in its parent), fed 10
    lines by message, its output sent back line by line."""
    node = run.node()
    ex = run.start(["dispycos_client5.py", "1"], "dispycos_client5.py", stdin=False)
    finish(ex, node, 90, [(r"^  job 1 processed by \S+:\d+$", 1),
                          (r"^      job 1 output: Line ([1-9]|10) - current time is ", 10),
                          (r"^  job 1 done$", 1)])


@pytest.mark.timeout(120)
def test_dispycos_kbd_int(run):
    """A never-ending job per server reporting its best value; on ``quit``
    the client closes with terminate: the jobs get KeyboardInterrupt.  The
    example prints with pycos.logger.info (4.x: on stdout, by default)."""
    node = run.node()
    ex = run.start(["dispycos_kbd_int.py"], "dispycos_kbd_int.py")
    ex.expect(r'Enter "quit" or "exit" to end the program', timeout=30)
    # (it prints a value only when it beats the best so far: the first one,
    # then by chance)
    ex.expect(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+ - update from \S+:\d+: [0-9.]+$",
              timeout=60)
    ex.send_line("quit")
    finish(ex, node, 60, interrupted=True)


@pytest.mark.timeout(120)
def test_dispycos_mas(run):
    """An agent per server sending the client its new low / high values,
    printed with pycos.logger.info; ``quit`` ends it (terminate)."""
    node = run.node()
    ex = run.start(["dispycos_mas.py"], "dispycos_mas.py")
    ex.expect(r'Enter "quit" or "exit" to end the program', timeout=30)
    for _ in range(2):
        ex.expect(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+ - Update from \S+:\d+: "
                  r"[0-9.]+ / [0-9.]+ $", timeout=60)
    ex.send_line("quit")
    finish(ex, node, 60, interrupted=True)


@pytest.mark.soak
@pytest.mark.timeout(150)
def test_dispycos_client10(run):
    """1 file (from the directory given) sent to a server, whose job sends
    back a checksum per hash algorithm (printed with pycos.logger.info),
    then closes its server (restart_servers: it comes back).  Behind the
    soak marker: its smallest run takes about 45 s (a 2-5 s pause per
    algorithm, no argument shortens it), and what it exercises is in the
    default run already (pycos.logger.info output: kbd_int, mas; files
    sent to a server, dispycos_close_server, a server restarted:
    mem_servers)."""
    node = run.node()
    ex = run.start(["dispycos_client10.py", run.examples, "1"], "dispycos_client10.py",
                   stdin=False)
    # (the job skips the algorithms whose hexdigest() needs a length)
    algs = len([a for a in hashlib.algorithms_guaranteed if not a.startswith("shake_")])
    finish(ex, node, 120, [(r"^\S+ \S+ \S+ -   Sending \S+\.py to \S+:\d+$", 1),
                           (r'^\S+ \S+ \S+ - \w+sum for "\S+\.py": [0-9a-f]+$', algs)])


@pytest.mark.timeout(120)
def test_dispycos_mem_servers(run):
    """A file of the installed package's examples directory sent to the
    server: it is read into the server's memory (init_mem), then 5 checksum
    requests by message.  One server: the example sends each file to one
    server but runs init_mem with rtask(), which may pick another server
    (with two, a job can look for its file on the other server when the
    second file's transfer ends first)."""
    run.install()
    node = run.node(cpus=1)
    ex = run.start(["dispycos_mem_servers.py", "1"], "dispycos_mem_servers.py", stdin=False)
    # (a request may pick shake_128/256, whose hexdigest() needs a length:
    # the example sends back that traceback as the result, on purpose)
    finish(ex, node, 90, [(r"^\S+ \S+ \S+ -   sending \S+/pycos/examples/\S+\.py to ", 1),
                          (r'^\S+ \S+ \S+ -   server at \S+:\d+ computed \w+ for \S+\.py as "',
                           5)],
           shown=r' computed shake_\d+ for \S+ as "Traceback \(most recent call last\):$')


@pytest.mark.timeout(120)
def test_dispycos_client9_server(run):
    """2 files of the installed package's examples directory sent to the
    servers as they are discovered (disable_servers), read into memory by
    server_setup; 15 checksum jobs on them."""
    run.install()
    node = run.node()
    ex = run.start(["dispycos_client9_server.py", "2"], "dispycos_client9_server.py",
                   stdin=False)
    finish(ex, node, 90, [(r"^  Sending \S+/pycos/examples/\S+\.py to \S+:\d+$", 2),
                          (r"^   \w+sum for \S+\.py: [0-9a-f]+$", 15)])


@pytest.mark.timeout(120)
def test_dispycos_client9_node(run):
    """2 files of the installed package's examples directory sent to the
    node when it is discovered (disable_nodes): the node is the client's by
    then, so each lands in the client's directory there, where node_setup
    (run by enable_node) reads it into memory and removes it; 15 checksum
    jobs on the data in the servers' memory (inherited from node_setup)."""
    run.install()
    node = run.node()
    ex = run.start(["dispycos_client9_node.py", "2"], "dispycos_client9_node.py",
                   stdin=False)
    finish(ex, node, 90, [(r"^  Sending \S+/pycos/examples/\S+\.py to \S+$", 1),
                          (r"^   \w+sum for \S+\.py: [0-9a-f]+$", 15)])
    assert re.search(r'^data_file: "\S+\.py"$', node.output(), re.MULTILINE), node.output()


# -- the examples with the web UI (pycos.httpd) ---------------------------------------------


class WebUI(object):
    """The web UI an example started, seen as a user sees it: the address
    it printed (``pycos.httpd: open URL``), opened with that URL's token."""

    def __init__(self, ex, timeout=60):
        pattern = r"^pycos\.httpd: open (http://127\.0\.0\.1:8181/\?token=(\S+))$"
        # (printed when the example makes its HTTPServer: maybe before a
        # line the test waited for first)
        seen = [m for m in map(re.compile(pattern).search, list(ex.lines)) if m]
        m = seen[0] if seen else ex.expect(pattern, timeout)
        self.url, self.token = m.group(1), m.group(2)

    def get(self, path, token=True):
        """(status, headers, body) of a GET on the UI's own address."""
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", 8181, timeout=10)
        try:
            c.request("GET", path, headers={"X-Pycos-Token": self.token} if token else {})
            r = c.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            c.close()

    def api(self, path):
        import json
        status, _, body = self.get(path)
        assert status == 200, (path, status, body)
        return json.loads(body)

    def until(self, what, cond, timeout=60):
        """The cluster document once ``cond(doc)`` holds."""
        deadline = time.monotonic() + timeout
        while True:
            doc = self.api("/api/cluster")
            if cond(doc):
                return doc
            assert time.monotonic() < deadline, "the UI never showed %s: %r" % (what, doc)
            time.sleep(0.1)                  # (polls the UI, as the page's reader would)

    def check_views(self, servers):
        """The printed URL opens the page (its token becomes a cookie), and
        every view's data is there: the cluster, each node and server, the
        failures, the metrics; nothing without the token."""
        import urllib.request
        with urllib.request.urlopen(self.url, timeout=10) as r:   # follows the 303
            page = r.read()
        assert r.status == 200 and b"<html" in page.lower()
        assert self.get("/api/cluster", token=False)[0] == 200  # loopback: reads are open
        assert self.get("/api/node/x/suspend", token=False)[0] in (401, 403, 405)
        doc = self.until("%d servers" % servers, lambda d: d["totals"]["servers"] >= servers)
        for node in doc["nodes"]:
            nd = self.api("/api/node/" + urllib.request.quote(node["id"], safe=""))
            assert len(nd["server_list"]) >= 1, nd
            for server in nd["server_list"]:
                sd = self.api("/api/server/" + urllib.request.quote(server["id"], safe=""))
                assert "jobs" in sd, sd
        assert isinstance(self.api("/api/failures"), (list, dict))
        status, headers, metrics = self.get("/metrics")
        assert status == 200 and b"pycos_jobs_running" in metrics


    def browse(self):
        """Open the printed URL in a headless Chromium as a user would and
        visit every view: the cluster with its node, the node with its
        servers, a server, the failures."""
        sys.path.insert(0, os.path.join(ROOT, "tests", "web"))
        import browser
        try:
            from playwright.sync_api import expect
        except ImportError:
            pytest.skip("playwright (the browser extra) is not installed: everything but "
                        "the browser's visit passed")
        if browser.chromium_path() is None:
            pytest.skip("chromium is not installed: everything but the browser's visit passed")
        with browser.browser_page("http://127.0.0.1:8181") as page:
            page.goto(self.url)
            expect(page.get_by_test_id("view-cluster")).to_be_visible(timeout=15000)
            expect(page.get_by_test_id("conn-state")).to_have_text("live", timeout=15000)
            expect(page.get_by_test_id("node-row")).to_have_count(1, timeout=15000)
            page.get_by_test_id("node-link").first.click()
            expect(page.get_by_test_id("view-node")).to_be_visible(timeout=15000)
            expect(page.get_by_test_id("server-row")).to_have_count(2, timeout=15000)
            page.get_by_test_id("server-link").first.click()
            expect(page.get_by_test_id("view-server")).to_be_visible(timeout=15000)
            page.get_by_test_id("nav-failures").click()
            expect(page.get_by_test_id("view-failures")).to_be_visible(timeout=15000)
            expect(page.get_by_test_id("not-found")).to_have_count(0)


@pytest.mark.timeout(120)
def test_dispycos_httpd1(run):
    """The UI of a client whose jobs (io_rtask) the user asks for by number
    (each sleeps that many seconds): the views work, the two jobs show up
    and are counted done; 'quit' waits for them (close(await_io=True))."""
    node = run.node()
    ex = run.start(["dispycos_httpd1.py"], "dispycos_httpd1.py")
    ex.expect(r"Enter a number", timeout=30)
    ui = WebUI(ex)
    ui.check_views(servers=2)
    ex.send_line("3")
    ex.send_line("3")
    ui.until("2 jobs running", lambda d: d["totals"]["running"] == 2)
    ui.until("2 jobs done", lambda d: d["totals"]["done"] == 2 and d["totals"]["running"] == 0)
    ui.browse()
    ex.send_line("quit")
    finish(ex, node, 60)


@pytest.mark.timeout(120)
def test_dispycos_httpd2(run):
    """The same with jobs of 20-50 s that 'quit' terminates (close()
    without awaiting them): the UI shows them running first."""
    node = run.node()
    ex = run.start(["dispycos_httpd2.py"], "dispycos_httpd2.py")
    ex.expect(r"Enter anything else", timeout=30)
    ui = WebUI(ex)
    ui.check_views(servers=2)
    ex.send_line("a")
    ex.send_line("b")
    ex.expect(r"^  2: rtask \S+ created$", timeout=30)
    ui.until("2 jobs running", lambda d: d["totals"]["running"] == 2)
    ex.send_line("quit")
    finish(ex, node, 60, [(r"^rtask \S+ started$", 2)], interrupted=True)


@pytest.mark.timeout(120)
def test_dispycos_client1(run):
    """2 jobs (rtask) of 5-10 s with the UI up: they show up as running
    (one per server) and the example ends by itself after them."""
    node = run.node()
    ex = run.start(["dispycos_client1.py", "2"], "dispycos_client1.py", stdin=False)
    ui = WebUI(ex)
    ui.until("2 jobs running", lambda d: d["totals"]["running"] == 2)
    ui.check_views(servers=2)
    finish(ex, node, 60, [(r"^  job [01] processed by \S+:\d+$", 2)])


@pytest.mark.timeout(120)
def test_dispycos_remote_scheduler(run):
    """Its client is served by the shared scheduler program (``python -m
    pycos.dispycos``, as 4.x's ``dispycos.py``), with a node allocation of
    its own code (one server less than the node's CPUs): that code runs in
    the client (its 'Allocate' line), the node gets 1 server, jobs asked
    for by number send their replies, its web UI shows the cluster, and
    'quit' closes the client (the scheduler then quits on 'quit')."""
    node = run.node()
    scheduler = run.start(["-m", "pycos.dispycos", "-i", "127.0.0.1"], "dispycos")
    scheduler.expect(r"^dispycos scheduler \S+ at 127\.0\.0\.1:\d+$", timeout=60)
    ex = run.start(["dispycos_remote_scheduler.py", "127.0.0.1"], "dispycos_remote_scheduler.py")
    ui = WebUI(ex)
    ex.expect(r"Enter a number", timeout=30)
    ex.expect(r"^Allocate 127\.0\.0\.1 \(\S+\): 2$", timeout=60)
    ui.check_views(servers=1)
    ex.send_line("1")
    ex.send_line("1")
    for i in (1, 2):
        ex.expect(r"^      Received reply for %d from \S+:\d+: " % i, timeout=30)
    assert ui.api("/api/cluster")["totals"]["servers"] == 1
    ex.send_line("quit")
    # (the scheduler's default dest_path is inside the node's: both are
    # under the same temporary directory on one computer)
    finish(ex, node, 60, [(r"^  Task [12] created for 1\.0 at \S+:\d+$", 2)],
           others=["dispycos_scheduler"])
    clients = os.path.join(node.dest, "dispycos_scheduler", "clients")
    assert not os.path.exists(clients) or os.listdir(clients) == []
    scheduler.send_line("quit")
    assert scheduler.wait(30) == 0, scheduler.output()
