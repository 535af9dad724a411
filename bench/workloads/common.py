"""Shared plumbing for the per-peer workload scripts (stdlib only).

Every ``bench/workloads/<peer>.py`` is run by ``bench/run.py`` in a fresh
process as ``python <peer>.py <workload> [--n N] [--subs S] ...`` and must
print exactly one JSON line on stdout:

* a finished in-process workload prints its metrics (see :func:`emit`);
* a server workload (``echo``/``c10k``/``tls``) prints ``{"port", "pid"}``
  once it listens (see :func:`ready`) and then serves until killed; the
  driver measures it from outside with the C client and ``/proc``;
* a workload the peer cannot run prints ``{"unavailable": reason}`` and
  exits with :data:`EXIT_UNAVAILABLE` (see :func:`unavailable`).  That is
  "not available", not a failure.  Any other non-zero exit is a crash.

The same inputs go to every peer: the timer delays come from one seeded
generator (:func:`timer_delays`), so peers sleep the same random durations.

The networked workloads (``net-*``, plumbing in ``netcommon.py``) run two
processes: the script started by the driver is the sender/client; it starts
itself again with ``--serve`` as the receiver/server and stops it when done.
"""

import argparse
import json
import os
import random
import resource
import socket
import sys

EXIT_UNAVAILABLE = 3

NET_WORKLOADS = ("net-stream", "net-deliver", "net-rps", "net-file")
WORKLOADS = ("spawn", "switch", "timers", "echo", "c10k", "tls", "fanout") + NET_WORKLOADS
SERVER_WORKLOADS = ("echo", "c10k", "tls")


def parse_args(argv=None):
    """Parse ``<workload> [sizes]``; sizes default to the full run's."""
    p = argparse.ArgumentParser()
    p.add_argument("workload", choices=WORKLOADS)
    p.add_argument("--n", type=int, default=0, help="tasks / round trips / messages")
    p.add_argument("--subs", type=int, default=1000, help="fan-out subscribers")
    p.add_argument("--max-delay", type=float, default=0.1, help="timers: seconds")
    p.add_argument("--backlog", type=int, default=4096)
    p.add_argument("--certfile", default="")
    p.add_argument("--keyfile", default="")
    # the net-* workloads
    p.add_argument("--size", type=int, default=100, help="net-stream: payload bytes")
    p.add_argument("--file", default="", help="net-file: the file to send")
    p.add_argument("--serve", action="store_true", help="net-*: be the receiving process")
    p.add_argument("--dest", default="", help="net-file: the receiver's directory")
    return p.parse_args(argv)


def maxrss_kb():
    """Peak resident set size of this process so far, in KiB (Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def emit(**metrics):
    """Print the one JSON result line and flush."""
    metrics.setdefault("maxrss_kb", maxrss_kb())
    sys.stdout.write(json.dumps(metrics) + "\n")
    sys.stdout.flush()


def ready(port):
    """A server announces it listens on ``port``; the driver starts the client."""
    sys.stdout.write(json.dumps({"port": port, "pid": os.getpid()}) + "\n")
    sys.stdout.flush()


def unavailable(reason):
    """Report that this peer cannot run this workload and exit."""
    sys.stdout.write(json.dumps({"unavailable": str(reason)}) + "\n")
    sys.stdout.flush()
    os._exit(EXIT_UNAVAILABLE)


def listen_socket(backlog, host="127.0.0.1"):
    """A bound, listening (blocking) TCP socket on an ephemeral port."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, 0))
    s.listen(backlog)
    return s


def nodelay(sock):
    """Set TCP_NODELAY on an accepted connection (any object with setsockopt).

    Every echo server in the harness runs without Nagle's algorithm, as
    request/response servers should: asyncio, uvloop and trio set it on
    their own; the others get it here.  Otherwise a reply whose last segment
    is small waits for the client's delayed ACK (40 ms on Linux), and the
    TLS 64 KiB figures would measure that timer, not the framework.
    """
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def server_ssl_context(args):
    """A server-side ``ssl.SSLContext`` for the run's self-signed certificate."""
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.certfile, args.keyfile)
    return ctx


def timer_delays(n, max_delay, seed=5):
    """The same ``n`` random sleep durations in [0, max_delay) for every peer."""
    rnd = random.Random(seed)
    return [rnd.random() * max_delay for _ in range(n)]


def timer_report(lateness, wall, max_delay, **extra):
    """Emit the timers metrics from per-task lateness (seconds) and wall time."""
    late = sorted(lateness)
    n = len(late)
    emit(n=n, wall_s=wall, beyond_ms=(wall - max_delay) * 1e3,
         late_mean_ms=sum(late) / n * 1e3 if n else 0.0,
         late_p99_ms=late[min(n - 1, int(n * 0.99))] * 1e3 if n else 0.0,
         late_max_ms=late[-1] * 1e3 if n else 0.0, **extra)
