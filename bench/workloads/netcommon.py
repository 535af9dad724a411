"""Shared plumbing for the networked workloads (``net-*``; stdlib only).

Each of them runs in two processes on 127.0.0.1.  The script the driver
starts is the sender/client; :class:`Server` starts the same script again,
with the same arguments plus ``--serve``, as the receiver/server, reads the
one JSON line it prints once it listens (:func:`ready`: its port and
whatever else the client needs), and stops it at the end by closing its
standard input.  A server waits for that in :func:`wait_for_eof`, so it also
ends when its client dies, whatever killed it: no process outlives a run.

The workloads, their inputs and what they report (:func:`emit_stream` ...):

* ``net-stream``: ``--n`` one-way messages of ``--size`` bytes; the receiver
  counts them and tells the sender when it has all of them; messages/s over
  the whole (from the first send to that report).
* ``net-deliver``: ``--n`` acknowledged round trips, one at a time, after
  :func:`warmup_count` unmeasured ones; p50/p99 latency in µs.
* ``net-rps``: ``--n`` remote calls that return a value, one at a time
  (after a warm-up); calls/s.
* ``net-file``: ``--file`` sent to the receiver, which writes it into
  ``--dest`` (a fresh directory the client makes and removes); MB/s from the
  start of the transfer until the receiver says the file is in place.

With ``$PYCOS_BENCH_SERVER_PROFILE`` set (``bench/run.py --profile``), the
server runs under ``profiled.py`` too and writes that prefix's profile.
"""

import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time

import common

SECRET = "pycos-bench-secret"       # netpycos secret, mp authkey
PAYLOAD_FILL = b"x"
perf = time.perf_counter


def payload(size):
    """The ``size``-byte message body every peer sends."""
    return PAYLOAD_FILL * size


def warmup_count(n):
    """Unmeasured round trips before the ``n`` measured ones."""
    return max(20, n // 10)


# -- the server process --------------------------------------------------------

def ready(**info):
    """A server announces it listens (``port`` and the like) on stdout."""
    info.setdefault("pid", os.getpid())
    sys.stdout.write(json.dumps(info) + "\n")
    sys.stdout.flush()


def wait_for_eof():
    """Block until the client closes our stdin (or dies)."""
    try:
        while sys.stdin.buffer.read1(65536):
            pass
    except (OSError, ValueError):
        pass


class Server:
    """The receiving process of one run (a context manager: always stopped)."""

    def __init__(self, *extra, timeout=60.0):
        script = os.path.abspath(sys.argv[0])
        cmd = [sys.executable]
        prof = os.environ.get("PYCOS_BENCH_SERVER_PROFILE")
        if prof:
            cmd += [os.path.join(os.path.dirname(script), "profiled.py"), prof]
        cmd += [script] + sys.argv[1:] + ["--serve"] + [str(a) for a in extra]
        env = dict(os.environ)
        env.pop("PYCOS_BENCH_SERVER_PROFILE", None)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     env=env)
        try:
            self.info = self._hello(timeout)
        except BaseException:
            self.stop()
            raise
        if "unavailable" in self.info:
            self.stop()
            common.unavailable(self.info["unavailable"])

    def _hello(self, timeout):
        deadline = time.monotonic() + timeout
        out = self.proc.stdout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError("the server did not start within %.0f s" % timeout)
            r, _, _ = select.select([out], [], [], left)
            if not r:
                continue
            line = out.readline()
            if not line:
                raise RuntimeError("the server exited (rc=%s) before it was ready"
                                   % self.proc.wait())
            line = line.strip()
            if line.startswith(b"{"):
                return json.loads(line)

    def stop(self, wait=30.0):
        """Close its stdin and wait for it to end (a profiled server writes
        its profile then); kill it if it does not."""
        p = self.proc
        if p.poll() is None:
            try:
                p.stdin.close()
            except OSError:
                pass
            try:
                p.wait(wait)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for f in (p.stdin, p.stdout):
            try:
                f.close()
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def dest_dir():
    """A fresh directory for the file the receiver writes (remove_dest())."""
    return tempfile.mkdtemp(prefix="pycos-bench-recv-")


def remove_dest(path):
    shutil.rmtree(path, ignore_errors=True)


def check_received(path, dest):
    """The received copy of ``path`` in ``dest`` has the right size, or exit 1."""
    got = os.path.join(dest, os.path.basename(path))
    want = os.path.getsize(path)
    have = os.path.getsize(got) if os.path.exists(got) else -1
    if have != want:
        sys.exit("net-file: the receiver has %d bytes of %d" % (have, want))


# -- results --------------------------------------------------------------------

def percentile(sorted_vals, q):
    n = len(sorted_vals)
    return sorted_vals[min(n - 1, int(n * q))]


def emit_stream(n, size, seconds, **extra):
    common.emit(n=n, size=size, seconds=seconds, msgs_per_s=n / seconds,
                mb_per_s=n * size / seconds / 1e6, **extra)


def emit_latency(lat, **extra):
    """``lat``: seconds per round trip."""
    lat = sorted(lat)
    n = len(lat)
    common.emit(n=n, p50_us=percentile(lat, 0.5) * 1e6, p99_us=percentile(lat, 0.99) * 1e6,
                mean_us=sum(lat) / n * 1e6, max_us=lat[-1] * 1e6,
                round_trips_per_s=n / sum(lat), **extra)


def emit_calls(n, seconds, **extra):
    common.emit(n=n, seconds=seconds, calls_per_s=n / seconds,
                us_per_call=seconds / n * 1e6, **extra)


def emit_file(nbytes, seconds, **extra):
    common.emit(bytes=nbytes, seconds=seconds, mb_per_s=nbytes / seconds / 1e6, **extra)
