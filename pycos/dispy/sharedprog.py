"""The ``dispycos`` program: the shared dispycos scheduler.

    dispycos [-i HOST] [-s SECRET] [--scheduler_port PORT] ...
    python -m pycos.dispycos ...

It serves client programs one at a time, in the order they call ``yield
client.schedule(location)`` (the work is in :mod:`pycos.dispy.shared`).
Nodes find it as they find any scheduler: they announce themselves to the
scheduler port, and ``dispycosnode --peer HOST:PORT`` connects to it.

Options (4.x's where they apply; the values are checked with the node
daemon's converters, :mod:`pycos.dispy.nodeconf`): ``-i/--host``,
``--ext_host``, ``--scheduler_port`` (TCP and UDP; 0: any free TCP port
and no UDP discovery), ``--node_port`` (where nodes listen),
``--ipv4_udp_multicast``, ``-n/--name``, ``--dest_path`` (where clients'
files are kept while they are served), ``--max_file_size``,
``-s/--secret``, ``--certfile``, ``--keyfile``, ``--node`` (a node to
contact, repeatable), ``--msg_timeout``, ``--zombie_period`` (the longest a
served client may stay silent; 0: as long as it asked for),
``--ping_interval``, ``--clean`` (remove clients' files left by an earlier
run), ``--daemon``, ``-d/--debug`` and ``--insecure``.  Like the node, it
listens beyond loopback only with a secret, unless ``--insecure``.

Commands on standard input (when not ``--daemon``): ``status``, ``close``
(close the client being served, and serve the next), ``quit`` or ``exit``
(turn the waiting clients away, close the one being served -- its running
jobs get KeyboardInterrupt and a grace period -- and exit), ``terminate``
(the same, but CPU jobs interrupted at once rather than awaited); end of
input is ``quit``.  SIGINT, SIGTERM and SIGHUP also quit.
"""

import argparse
import logging
import os
import shutil
import signal
import sys
import threading

import pycos.netpycos as netpycos
from pycos import config
from pycos.core.log import logger
from pycos.dispy import nodeconf
from pycos.dispy.nodeconf import _Option
from pycos.dispy.shared import CLIENTS_DIR, SharedScheduler

__all__ = ["main", "parser", "load"]


def _port_or_any(text):
    value = nodeconf._integer(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("%d is not a port number (0-65535)" % value)
    return value


_OPTIONS = (
    _Option("host", ("-i", "--host"), None, "list", nodeconf._host, list, "HOST",
            "address or host name to listen on (may be repeated); without a secret "
            "only loopback is allowed"),
    _Option("ext_host", ("--ext_host",), None, "list", nodeconf._host, list, "HOST",
            "address peers should use to reach this scheduler, e.g. its NAT gateway's"),
    _Option("scheduler_port", ("--scheduler_port",), None, "int", _port_or_any,
            lambda: config.DispycosSchedulerPort, "PORT",
            "port (TCP and UDP) of this scheduler (default %(default)s; 0: any free TCP "
            "port and no UDP discovery)"),
    _Option("node_port", ("--node_port",), None, "int", nodeconf._port,
            lambda: config.DispycosNodePort, "PORT",
            "port nodes listen on (default %(default)s)"),
    _Option("ipv4_udp_multicast", ("--ipv4_udp_multicast",), None, "bool", None, False, None,
            "discover peers by IPv4 multicast instead of broadcast"),
    _Option("name", ("-n", "--name"), None, "str", nodeconf._text, "dispycos_scheduler",
            "NAME", "name of this scheduler (default %(default)s)"),
    _Option("dest_path", ("--dest_path",), None, "str", nodeconf._path, "", "DIR",
            "directory where clients' files are kept while they are served (default: a "
            "directory of this user's in the temporary directory)"),
    _Option("max_file_size", ("--max_file_size",), None, "str", nodeconf._size, "", "SIZE",
            "largest file a client may send, e.g. 4096, 10k, 10m, 2g (default: no limit)"),
    _Option("secret", ("-s", "--secret"), None, "str", nodeconf._text, "", "SECRET",
            "secret shared with clients and nodes; it authenticates every connection"),
    _Option("certfile", ("--certfile",), None, "str", nodeconf._path, "", "FILE",
            "PEM file with this scheduler's TLS certificate (and key, unless --keyfile)"),
    _Option("keyfile", ("--keyfile",), None, "str", nodeconf._path, "", "FILE",
            "PEM file with the TLS private key"),
    _Option("nodes", ("--node",), None, "list", nodeconf._host, list, "HOST",
            "a node to contact, beyond those discovered (may be repeated)"),
    _Option("msg_timeout", ("--msg_timeout",), None, "int", nodeconf._at_least_one,
            lambda: config.MsgTimeout, "SECONDS",
            "time to wait for a message to be acknowledged (default %(default)s)"),
    _Option("zombie_period", ("--zombie_period",), None, "int", nodeconf._non_negative, 0,
            "SECONDS", "close a served client not heard from for this long, even if it "
            "asked for longer (default 0: its own zombie_period)"),
    _Option("ping_interval", ("--ping_interval",), None, "int", nodeconf._non_negative, 0,
            "SECONDS", "announce this scheduler to nodes this often (default 0: when a "
            "client is served)"),
    _Option("clean", ("--clean",), None, "bool", None, False, None,
            "remove clients' files an earlier run left in --dest_path"),
    _Option("daemon", ("--daemon",), None, "bool", None, False, None,
            "do not read commands from standard input"),
    _Option("debug", ("-d", "--debug"), None, "bool", None, False, None,
            "log debugging messages"),
    _Option("insecure", ("--insecure",), None, "bool", None, False, None,
            "allow listening beyond loopback without a secret (anyone who can reach "
            "the scheduler can then run code on the nodes)"),
)


def parser():
    """The argparse parser of the ``dispycos`` program's options."""
    p = argparse.ArgumentParser(
        prog="dispycos",
        description="Schedule the jobs of dispycos clients on the nodes, one client at a "
                    "time, in the order they come.")
    for opt in _OPTIONS:
        kwargs = {"dest": opt.dest, "help": opt.help, "default": nodeconf._default(opt)}
        if opt.kind == "bool":
            kwargs["action"] = "store_true"
        else:
            kwargs.update(type=opt.conv, metavar=opt.metavar)
            if opt.kind == "list":
                kwargs["action"] = "append"
                kwargs["default"] = None
        p.add_argument(*opt.flags, **kwargs)
    return p


def load(argv=None):
    """The program's options from ``argv`` (default ``sys.argv[1:]``),
    checked: an argparse.Namespace.  A mistake ends the program as argparse
    does (usage and a message on stderr, exit status 2)."""
    p = parser()
    args = p.parse_args(argv)
    for opt in _OPTIONS:
        if opt.kind == "list" and getattr(args, opt.dest) is None:
            setattr(args, opt.dest, [])
    for key in ("certfile", "keyfile"):
        if getattr(args, key) and not os.path.isfile(getattr(args, key)):
            p.error("--%s: %r is not a file" % (key, getattr(args, key)))
    if args.keyfile and not args.certfile:
        p.error("--keyfile needs --certfile (the certificate that goes with the key)")
    if not args.secret and not args.insecure:
        for flag, key in (("-i/--host", "host"), ("--ext_host", "ext_host")):
            for host in getattr(args, key):
                if not nodeconf._is_loopback(host):
                    p.error("%s %s: without a secret, anyone who can reach this scheduler "
                            "could run code on the nodes.  Give the scheduler, its clients "
                            "and the nodes the same secret (-s/--secret SECRET), or add "
                            "--insecure if every host on this network is trusted"
                            % (flag, host))
    args.max_file_size = nodeconf.parse_size(args.max_file_size) if args.max_file_size else 0
    args.dest_path = args.dest_path or os.path.join(nodeconf._default_dest_path(),
                                                    "dispycos_scheduler")
    return args


def _console(shared):
    """Commands from standard input (see the module docstring)."""
    from pycos.dispycosnode import _lines
    terminate = False
    for line in _lines(0):
        cmd = line.strip().lower()
        if cmd == "status":
            print(shared.status())
            sys.stdout.flush()
        elif cmd == "close":
            shared.close_current()
        elif cmd in ("quit", "exit", "terminate"):
            terminate = cmd == "terminate"
            break
    shared.quit(terminate)


def main(argv=None):
    """Run the shared scheduler (see the module docstring); its exit status."""
    conf = load(argv)
    # (a program: it shows its news, as 4.x's scheduler did)
    logger.setLevel(logging.DEBUG if conf.debug else logging.INFO)
    config.MsgTimeout = conf.msg_timeout
    # clients' code waits here to go to the nodes: ours alone
    os.makedirs(conf.dest_path, mode=0o700, exist_ok=True)
    st = os.stat(conf.dest_path)
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        sys.stderr.write("dispycos: %s belongs to another user; give --dest_path a directory "
                         "of your own\n" % conf.dest_path)
        return 2
    if conf.clean:
        shutil.rmtree(os.path.join(conf.dest_path, CLIENTS_DIR), ignore_errors=True)
    sched = netpycos.Pycos(
        name=conf.name, host=conf.host[0] if conf.host else None,
        ext_host=conf.ext_host[0] if conf.ext_host else None,
        tcp_port=conf.scheduler_port, udp_port=conf.scheduler_port,
        ipv4_udp_multicast=conf.ipv4_udp_multicast, secret=conf.secret,
        certfile=conf.certfile or None, keyfile=conf.keyfile or None,
        dest_path=conf.dest_path, max_file_size=conf.max_file_size or None,
        insecure=conf.insecure)
    shared = SharedScheduler(sched, node_port=conf.node_port, nodes=conf.nodes,
                             zombie_period=conf.zombie_period,
                             ping_interval=conf.ping_interval)

    def stop(signum, frame):
        shared.quit()
    for sig in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None:
            signal.signal(sig, stop)
    if not conf.daemon:
        threading.Thread(target=_console, args=(shared,), name="dispycos-console",
                         daemon=True).start()
    print("dispycos scheduler %s at %s" % (sched.name, sched.location))
    sys.stdout.flush()
    while not shared.done.wait(0.5):      # (wakes for signals)
        pass
    sched.terminate()
    return 0
