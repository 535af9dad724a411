"""dispycosnode: the dispycos node daemon.

    dispycosnode [-c CPUS] [-i HOST] [-s SECRET] [--peer HOST:PORT] ...
    python -m pycos.dispycosnode ...

Runs one server process per CPU for one client at a time (the work is in
:mod:`pycos.dispy.node`; the options, ``--config`` files and
``--save_config`` in :mod:`pycos.dispy.nodeconf`).  It finds schedulers by
discovery -- it listens on its node port and announces itself to the
scheduler port -- and, with ``--peer``, by connecting to the schedulers
listed, again and again with a jittered back-off (capped at 30 s) while
they are not there, so a scheduler that starts later, even where UDP does
not pass, finds the node.

Commands on standard input (when not ``--daemon``): ``status``, ``close``
(release the current client), ``quit`` (release it and exit), ``terminate``
(the same, at once); end of input is ``quit``.  SIGINT, SIGTERM and SIGHUP
also quit: no server process outlives the daemon.

On a terminal (standard output a tty, not ``--daemon``) the node keeps a
live line below its output -- its client and what each server does (busy
with jobs, idle, starting, down), asked of the servers twice a second (see
:func:`pycos.dispy.progress.node_line`) -- and prints its log messages and
command answers above it; to a pipe or a file it writes nothing of the
kind.
"""

import logging
import os
import random
import signal
import sys
import threading
import time

import pycos.netpycos as netpycos
from pycos import config
from pycos.core.log import logger
from pycos.core.support import Location
from pycos.dispy import nodeconf
from pycos.dispy.node import NodeDaemon
from pycos.dispy.progress import LiveLine, LiveLogHandler, node_line

__all__ = ["main"]

#: the longest wait between two tries to reach a --peer scheduler
PEER_RETRY_MAX = 30.0

#: seconds between two redraws of the live line (and two questions to the servers)
LIVE_INTERVAL = 0.5


def _find_schedulers(sched, conf, task=None):
    """Announce to the scheduler port now and every ``ping_interval``; try
    each ``--peer`` that is not online (at start, and again whenever it
    went offline: a scheduler that restarts, a partition that heals) with a
    jittered back-off capped at PEER_RETRY_MAX."""
    sched.discover_peers(port=conf.scheduler_port)
    wanted = [Location(h, p) for h, p in conf.peers]
    if not wanted and not conf.ping_interval:
        return
    delay = 0.5
    waited = 0.0
    while True:
        online = set(sched.peers())
        missing = [loc for loc in wanted if loc not in online]
        for loc in missing:
            yield sched.peer(loc)
        if missing:
            wait = min(delay * random.uniform(0.5, 1.5), PEER_RETRY_MAX)
            delay = min(delay * 2, PEER_RETRY_MAX)
        else:
            wait = 1.0 if wanted else conf.ping_interval
            delay = 0.5              # (the next time one is gone, start quick)
        yield task.sleep(wait)
        waited += wait
        if conf.ping_interval and waited >= conf.ping_interval:
            sched.discover_peers(port=conf.scheduler_port)
            waited = 0.0


def _lines(fd):
    """The lines of ``fd``, read with os.read: a thread blocked in a
    buffered read of sys.stdin would hold a lock the interpreter's exit
    needs."""
    buf = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            chunk = b""
        if not chunk:
            if buf:
                yield buf.decode("utf-8", "replace")
            return
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            yield line.decode("utf-8", "replace")


def _live(daemon, sched, live, task=None):
    """Keep the node's live line: ask each server of the client how many
    jobs it runs, and redraw the line, every LIVE_INTERVAL seconds."""
    jobs = {}                        # a server's task -> its jobs, as it last said
    client, was_up = None, set()     # the client, and the indexes of its servers seen up
    while True:
        if daemon.client is not None:
            for server in daemon.client.servers.values():
                server.send(("jobs", task))
        end = time.monotonic() + LIVE_INTERVAL
        left = LIVE_INTERVAL
        while left > 0:
            msg = yield task.receive(timeout=left)
            if isinstance(msg, tuple) and len(msg) == 3 and msg[0] == "server_jobs":
                jobs[msg[1]] = msg[2]
            left = end - time.monotonic()
        c = daemon.client
        if c is not client:
            client, was_up = c, set()
        if c is None:
            jobs.clear()
            text = node_line(sched.name, [])
        else:
            servers = []
            for index in range(c.cpus):
                server = c.servers.get(index)
                if server is None:
                    servers.append((index, "down" if index in was_up else "starting", None))
                    continue
                was_up.add(index)
                n = jobs.get(server)
                servers.append((index, "up" if n is None else "busy" if n else "idle", n))
            for server in set(jobs) - set(c.servers.values()):
                del jobs[server]
            text = node_line(sched.name, servers, c.scheduler.location)
        live.show(text)        # (each time: it also mends a line that servers' output crossed)


def _say(live, text):
    """Print a line of output (above the live line, if there is one)."""
    if live is not None:
        live.say(text)
    else:
        print(text)
        sys.stdout.flush()


def _console(daemon, sched, live=None):
    """Commands from standard input (see the module docstring)."""
    for line in _lines(0):
        cmd = line.strip().lower()
        if cmd == "status":
            c = daemon.client
            _say(live, "dispycosnode %s at %s: %s" % (
                sched.name, sched.location,
                "idle" if c is None else "client %s, %d servers" % (c.cid, len(c.servers))))
        elif cmd == "close":
            c = daemon.client
            if c is not None:
                daemon.task.send(("release", c.cid, None))
        elif cmd in ("quit", "terminate"):
            break
    daemon.task.send(("quit",))


def main(argv=None):
    """Run the node daemon (see the module docstring); its exit status."""
    conf = nodeconf.load(argv)
    if conf.save_config:
        return 0
    # (a program: it shows its news, as 4.x's node did; a library would not)
    logger.setLevel(logging.DEBUG if conf.debug else logging.INFO)
    config.MsgTimeout = conf.msg_timeout
    # clients' files land here: ours alone (another local user must not
    # plant files a server would load)
    os.makedirs(conf.dest_path, mode=0o700, exist_ok=True)
    st = os.stat(conf.dest_path)
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        sys.stderr.write("dispycosnode: %s belongs to another user; give --dest_path a "
                         "directory of your own\n" % conf.dest_path)
        return 2
    sched = netpycos.Pycos(
        name=conf.name, host=conf.host[0] if conf.host else None,
        ext_host=conf.ext_host[0] if conf.ext_host else None,
        tcp_port=conf.node_ports[0], udp_port=conf.node_ports[0],
        ipv4_udp_multicast=conf.ipv4_udp_multicast, secret=conf.secret,
        certfile=conf.certfile, keyfile=conf.keyfile, dest_path=conf.dest_path,
        max_file_size=conf.max_file_size or None, insecure=conf.insecure)
    daemon = NodeDaemon(sched, conf.cpus, sched.dest_path, secret=conf.secret,
                        server_ports=conf.node_ports[1:], serve=conf.serve,
                        insecure=conf.insecure, min_pulse_interval=conf.min_pulse_interval,
                        max_pulse_interval=conf.max_pulse_interval,
                        zombie_period=conf.zombie_period)
    netpycos.Task(_find_schedulers, sched, conf)

    def stop(signum, frame):
        daemon.task.send(("quit",))
    for sig in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None:
            signal.signal(sig, stop)
    print("dispycosnode %s: %d servers, at %s" % (sched.name, conf.cpus, sched.location))
    sys.stdout.flush()
    live = None if conf.daemon else LiveLine(sys.stdout, interval=0)
    if live is not None and live.tty:
        logger.addHandler(LiveLogHandler(live))     # (its messages above the line)
        netpycos.Task(_live, daemon, sched, live)
    else:
        live = None
    if not conf.daemon:
        threading.Thread(target=_console, args=(daemon, sched, live),
                         name="dispycosnode-console", daemon=True).start()
    while not daemon.done.wait(0.5):      # (wakes for signals)
        pass
    if live is not None:
        live.close()
    sched.terminate()
    return 0


def _console_main():
    sys.exit(main())


if __name__ == "__main__":
    _console_main()
