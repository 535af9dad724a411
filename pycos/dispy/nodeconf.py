"""Settings of the dispycos node daemon (``dispycosnode``), parsed and checked.

This module knows nothing about processes or sockets: :func:`load` turns a
command line (and the ``--config`` file it names) into a :class:`NodeConfig`
of plain, already validated values, so the daemon never meets a string where
it wants a number and every mistake is reported before anything starts.

Where the values come from, lowest priority first:

1. the defaults (the option table below; ports and heartbeats from
   :mod:`pycos.config`);
2. ``--config FILE``: an INI file whose ``[DEFAULT]`` section holds the
   options by their 4.x names (``peers`` for ``--peer``, ``loglevel`` for
   ``--debug``; the older ``node``, ``ext_ip_addr`` and ``tcp_ports`` are read
   as ``host``, ``ext_host`` and ``node_ports``, and ``udp_port``, which 4.12
   ignores, is ignored);
3. options given on the command line, each replacing the file's value (4.x
   replaced a file's value only when the command-line value differed from
   the default, so ``-c 0`` could not undo ``cpus = 4``; here any option
   actually given wins).

Reading a config file never evaluates it.  4.x ran ``eval`` on every value,
so its files hold Python literals (``name = 'n1'``, ``host = ['10.0.0.1']``)
while its own ``--save_config`` wrote strings unquoted (``name = n1``, which
its ``eval`` then failed on).  Both spellings load here: a value that parses
(with :mod:`ast`, not run) as a quoted string, a number, True/False/None or a
list of those is taken as that literal; anything else is plain text.  Either
way the value then goes through the same converter as the command-line
option, so ``cpus = __import__('os')...`` is an error and ``name =
__import__('os')...`` is just a strange name.  ``--save_config`` writes the
literal spelling, which this module and 4.x both read.

Checks made once all values are known (4.x rules unless marked *ours*):
``msg_timeout >= 1``; ``min_pulse_interval >= msg_timeout``;
``max_pulse_interval >= min_pulse_interval`` (0 for either means its
default); ``zombie_period`` is 0 (off) or ``>= min_pulse_interval``; service
times ordered start < stop < end within one day, and a start needs a stop or
an end; the CPU count as in :func:`_resolve_cpus`.  *Ours*: ports in range,
port ranges not reversed, ``serve`` is -1 or positive, certificate and key
files exist, a key file needs a certificate file, and a node reachable
beyond loopback needs a secret unless ``--insecure`` is given.
"""

import argparse
import ast
import collections
import configparser
import dataclasses
import datetime
import ipaddress
import os
import re
import socket
import tempfile
import typing

from pycos import config as _pycos_config

__all__ = ["NodeConfig", "parser", "load", "save", "parse_size", "parse_node_ports"]


# ---- converters (one per kind of value; used by argparse and for file values) ----
#
# Each takes the text of one value and returns the option's raw value, or
# raises ArgumentTypeError whose message argparse shows after the option's
# name.  An empty text means "not set" wherever the option's default is ''.

_INT_RE = re.compile(r"[+-]?[0-9]+")
_SIZE_RE = re.compile(r"([0-9]+)([kKmMgGtT]?)")
_TIME_RE = re.compile(r"([0-9]{1,2}):([0-9]{1,2})")
_HOSTNAME_RE = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_.])?")
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3, "t": 1024 ** 4}


def _integer(text):
    text = text.strip()
    if not _INT_RE.fullmatch(text):
        raise argparse.ArgumentTypeError("%r is not an integer" % (text,))
    return int(text)


def _non_negative(text):
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError("%d is negative (0 or more seconds expected)" % value)
    return value


def _at_least_one(text):
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError("%d is less than 1 second" % value)
    return value


def _serve(text):
    value = _integer(text)
    if value == 0 or value < -1:
        raise argparse.ArgumentTypeError(
            "%d: give the number of clients to serve before exiting (1 or more), "
            "or -1 to serve forever" % value)
    return value


def _port(text):
    value = _integer(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError("%d is not a port number (1-65535)" % value)
    return value


def _node_ports(text):
    parse_node_ports([text])            # raises on a bad port or range
    return ",".join(part.strip() for part in text.split(",") if part.strip())


def _size(text):
    text = text.strip()
    if text:
        parse_size(text)
    return text


def _time_of_day(text):
    text = text.strip()
    if not text:
        return ""
    match = _TIME_RE.fullmatch(text)
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise argparse.ArgumentTypeError("%r is not a time of day HH:MM (00:00 to 23:59)"
                                         % (text,))
    return "%02d:%02d" % (int(match.group(1)), int(match.group(2)))


def _host(text):
    text = text.strip()
    try:
        ipaddress.ip_address(text)
    except ValueError:
        if not _HOSTNAME_RE.fullmatch(text) or len(text) > 253:
            raise argparse.ArgumentTypeError(
                "%r is neither an IP address nor a host name" % (text,)) from None
    return text


def _split_peer(text):
    """(host, port) of ``host:port`` or ``[v6addr]:port``."""
    text = text.strip()
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        host = ""                       # a bare IPv6 address is ambiguous; brackets needed
    if not sep or not host:
        raise argparse.ArgumentTypeError(
            "%r is not a peer location host:port (an IPv6 address in brackets: "
            "[::1]:9706)" % (text,))
    try:
        return _host(host), _port(port)
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError("peer %r: %s" % (text, exc)) from None


def _peer(text):
    host, port = _split_peer(text)
    return ("[%s]:%d" if ":" in host else "%s:%d") % (host, port)


def _text(text):
    return text


def _path(text):
    return os.path.abspath(text) if text else ""


def parse_size(text):
    """Bytes in a size such as ``4096``, ``10k``, ``10m``, ``2g`` or ``1t``
    (powers of 1024, suffix in either case, as 4.x reads ``--max_file_size``).
    Raises ArgumentTypeError for anything else."""
    match = _SIZE_RE.fullmatch(text)
    if not match:
        raise argparse.ArgumentTypeError(
            "%r is not a size: digits with an optional k, m, g or t suffix "
            "(e.g. 4096, 10m, 2g)" % (text,))
    return int(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]


def parse_node_ports(specs):
    """The set of ports named by ``specs``: strings of comma-separated ports
    (``9706``) and inclusive ranges (``9706-9710``).  Raises
    ArgumentTypeError naming the bad part."""
    ports = set()
    for spec in specs:
        parts = [part.strip() for part in spec.split(",")]
        if not any(parts):
            raise argparse.ArgumentTypeError("%r names no port" % (spec,))
        for part in parts:
            if not part:
                continue
            bounds = part.split("-")
            if len(bounds) > 2 or not all(_INT_RE.fullmatch(b.strip()) for b in bounds):
                raise argparse.ArgumentTypeError(
                    "%r is not a port or a range of ports such as 9706-9710" % (part,))
            first, last = int(bounds[0]), int(bounds[-1])
            for port in (first, last):
                if not 0 <= port <= 65535:
                    raise argparse.ArgumentTypeError(
                        "%r: %d is not a port number (0-65535)" % (part, port))
            if first > last:
                raise argparse.ArgumentTypeError(
                    "%r: the range starts above its end" % (part,))
            ports.update(range(first, last + 1))
    return ports


# ---- the option table -------------------------------------------------------------

# dest: attribute and argparse dest; key: name in a config file (4.x's);
# kind: "str", "int", "bool" or "list" (repeatable option); conv: converter
# of one value (None for flags); default: a callable for defaults read from
# pycos.config when the parser is made.
_Option = collections.namedtuple("_Option", "dest flags key kind conv default metavar help")

_OPTIONS = (
    _Option("cpus", ("-c", "--cpus"), "cpus", "int", _integer, 0, "N",
            "server processes to run: N, or 0 for one per CPU (default), "
            "or -N for one per CPU but N"),
    _Option("host", ("-i", "--host"), "host", "list", _host, list, "HOST",
            "address or host name to listen on (may be repeated); without a secret "
            "only loopback is allowed"),
    _Option("ext_host", ("--ext_host",), "ext_host", "list", _host, list, "HOST",
            "address peers should use to reach this node, e.g. its NAT gateway's "
            "(may be repeated)"),
    _Option("scheduler_port", ("--scheduler_port",), "scheduler_port", "int", _port,
            lambda: _pycos_config.DispycosSchedulerPort, "PORT",
            "port of the dispycos scheduler (default %(default)s)"),
    _Option("node_ports", ("--node_ports",), "node_ports", "list", _node_ports, list, "PORTS",
            "ports to use, as 9706 or 9706-9710 or 9706,9720-9723 (may be repeated): "
            "the lowest is the node's, the next ones its servers'; missing ones "
            "continue from the highest (default: scheduler port + 1 onwards; 0: any "
            "free port)"),
    _Option("ipv4_udp_multicast", ("--ipv4_udp_multicast",), "ipv4_udp_multicast", "bool",
            None, False, None, "discover peers by IPv4 multicast instead of broadcast"),
    _Option("name", ("-n", "--name"), "name", "str", _text, "", "NAME",
            "name of this node (default: the host name)"),
    _Option("dest_path", ("--dest_path",), "dest_path", "str", _path, "", "DIR",
            "directory under which files sent by clients are kept (default: a "
            "directory of this user's in the temporary directory)"),
    _Option("max_file_size", ("--max_file_size",), "max_file_size", "str", _size, "", "SIZE",
            "largest file a client may send, e.g. 4096, 10k, 10m, 2g (default: no limit)"),
    _Option("secret", ("-s", "--secret"), "secret", "str", _text, "", "SECRET",
            "secret shared with clients and schedulers; it authenticates every "
            "connection (prefer the config file: the command line is visible to "
            "other users)"),
    _Option("certfile", ("--certfile",), "certfile", "str", _path, "", "FILE",
            "PEM file with this node's TLS certificate (and key, unless --keyfile)"),
    _Option("keyfile", ("--keyfile",), "keyfile", "str", _path, "", "FILE",
            "PEM file with the TLS private key"),
    _Option("serve", ("--serve",), "serve", "int", _serve, -1, "N",
            "clients to serve before exiting (default -1: serve forever)"),
    _Option("service_start", ("--service_start",), "service_start", "str", _time_of_day,
            "", "HH:MM", "time of day to start accepting clients"),
    _Option("service_stop", ("--service_stop",), "service_stop", "str", _time_of_day,
            "", "HH:MM", "time of day to stop accepting new jobs (running jobs finish)"),
    _Option("service_end", ("--service_end",), "service_end", "str", _time_of_day,
            "", "HH:MM", "time of day to end service (running jobs are terminated)"),
    _Option("msg_timeout", ("--msg_timeout",), "msg_timeout", "int", _at_least_one,
            lambda: _pycos_config.MsgTimeout, "SECONDS",
            "time to wait for a message to be acknowledged (default %(default)s)"),
    _Option("min_pulse_interval", ("--min_pulse_interval",), "min_pulse_interval", "int",
            _non_negative, lambda: _pycos_config.MinPulseInterval, "SECONDS",
            "shortest heartbeat interval a client may ask for; at least msg_timeout "
            "(default %(default)s; 0: the default)"),
    _Option("max_pulse_interval", ("--max_pulse_interval",), "max_pulse_interval", "int",
            _non_negative, lambda: _pycos_config.MaxPulseInterval, "SECONDS",
            "longest heartbeat interval a client may ask for "
            "(default %(default)s; 0: the default)"),
    _Option("zombie_period", ("--zombie_period",), "zombie_period", "int", _non_negative,
            0, "SECONDS", "close a client whose servers ran nothing for this long; "
            "at least min_pulse_interval (default 0: never)"),
    _Option("ping_interval", ("--ping_interval",), "ping_interval", "int", _non_negative,
            0, "SECONDS", "announce this node to schedulers this often "
            "(default 0: only when service starts)"),
    _Option("daemon", ("--daemon",), "daemon", "bool", None, False, None,
            "do not read commands from the terminal"),
    _Option("clean", ("--clean",), "clean", "bool", None, False, None,
            "kill the node and server processes a previous run left behind"),
    _Option("peers", ("--peer",), "peers", "list", _peer, list, "HOST:PORT",
            "a peer to contact directly, e.g. a scheduler beyond the broadcast "
            "domain (may be repeated)"),
    _Option("debug", ("-d", "--debug"), "loglevel", "bool", None, False, None,
            "log debugging messages"),
    _Option("insecure", ("--insecure",), "insecure", "bool", None, False, None,
            "allow listening beyond loopback without a secret (anyone who can reach "
            "the node can then run code on it)"),
)

_BY_KEY = {opt.key: opt for opt in _OPTIONS}
# names some config files use: 4.x spellings of the command line, and keys of
# older 4.x releases (None: read and ignored, as 4.12 does)
_KEY_ALIASES = {"peer": "peers", "debug": "loglevel", "node": "host",
                "ext_ip_addr": "ext_host", "tcp_ports": "node_ports", "udp_port": None}


def _default(opt):
    value = opt.default
    return value() if callable(value) else value


def parser():
    """The argparse parser of every ``dispycosnode`` option.  Parsed alone it
    gives the raw option values; :func:`load` adds the config file and the
    checks."""
    p = argparse.ArgumentParser(
        prog="dispycosnode",
        description="Run dispycos servers on this computer for clients that ask for them.")
    p.add_argument("--config", default="", metavar="FILE",
                   help="read options from this INI file ([DEFAULT] section); options "
                        "given on the command line take precedence")
    p.add_argument("--save_config", default="", metavar="FILE",
                   help="write the options (after --config and the command line) to this "
                        "file and exit")
    for opt in _OPTIONS:
        kwargs = {"dest": opt.dest, "help": opt.help}
        if opt.kind == "bool":
            kwargs["action"] = "store_true"
        else:
            kwargs.update(type=opt.conv, metavar=opt.metavar)
            if opt.kind == "list":
                kwargs["action"] = "append"
        kwargs["default"] = _default(opt)
        p.add_argument(*opt.flags, **kwargs)
    return p


# ---- the result ---------------------------------------------------------------------

@dataclasses.dataclass
class NodeConfig:
    """The node's settings, checked and resolved (see the module docstring).

    ``options`` holds the values as the user gave them (``cpus`` 0 rather
    than the count it became, ``max_file_size`` '10m', ``node_ports`` the
    port specs...), keyed as in a config file; :func:`save` writes them.
    """

    #: server processes to run, 1..os.cpu_count()
    cpus: int
    #: addresses/host names to listen on ([] lets netpycos choose: loopback
    #: without a secret)
    host: typing.List[str]
    #: addresses peers should use (NAT); [] for none
    ext_host: typing.List[str]
    #: port of the dispycos scheduler
    scheduler_port: int
    #: cpus + 1 ports: [0] the node's (UDP and TCP), [i] server i's; 0 = any
    node_ports: typing.List[int]
    #: discover by IPv4 multicast instead of broadcast
    ipv4_udp_multicast: bool
    #: node name (the -n value, else the host name)
    name: str
    #: absolute directory prefix for files from clients
    dest_path: str
    #: largest file a client may send, in bytes; 0: no limit
    max_file_size: int
    #: shared secret ('' for none)
    secret: str = dataclasses.field(repr=False)
    #: absolute path of the TLS certificate file, or None
    certfile: typing.Optional[str]
    #: absolute path of the TLS key file, or None (key in certfile)
    keyfile: typing.Optional[str]
    #: clients to serve before exiting; -1: forever
    serve: int
    #: daily service window, local time; None when not given
    service_start: typing.Optional[datetime.time]
    service_stop: typing.Optional[datetime.time]
    service_end: typing.Optional[datetime.time]
    #: seconds
    msg_timeout: int
    min_pulse_interval: int
    max_pulse_interval: int
    #: seconds; 0: zombie detection off
    zombie_period: int
    #: seconds between announcements; 0: only when service starts
    ping_interval: int
    daemon: bool
    clean: bool
    #: peers to contact directly, as (host, port)
    peers: typing.List[typing.Tuple[str, int]]
    debug: bool
    insecure: bool
    #: the --config file read, or None
    config: typing.Optional[str]
    #: the --save_config file written, or None (the caller should then exit)
    save_config: typing.Optional[str]
    #: raw option values, keyed as in a config file
    options: typing.Dict[str, typing.Any] = dataclasses.field(repr=False)


# ---- reading a config file ------------------------------------------------------------

_NOT_LITERAL = object()


def _literal_node(node, top):
    if isinstance(node, ast.Constant):
        if node.value is None or isinstance(node.value, (str, int, float, bool)):
            return node.value
    elif (isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd))
          and isinstance(node.operand, ast.Constant)
          and type(node.operand.value) in (int, float)):
        value = node.operand.value
        return -value if isinstance(node.op, ast.USub) else value
    elif top and isinstance(node, (ast.List, ast.Tuple)):
        items = [_literal_node(item, False) for item in node.elts]
        if _NOT_LITERAL not in items:
            return items
    return _NOT_LITERAL


def _literal(text):
    """The value of ``text`` if it is a simple Python literal (see the module
    docstring), else _NOT_LITERAL.  Parsed, never evaluated."""
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return _NOT_LITERAL
    return _literal_node(tree.body, True)


_BOOLEANS = configparser.ConfigParser.BOOLEAN_STATES


def _file_value(opt, text):
    """The raw value of ``opt`` from its config-file text; None for "not set".
    Raises ArgumentTypeError."""
    text = text.strip()
    if not text:
        return None
    lit = _literal(text)
    if lit is None:
        return None
    if opt.kind == "list":
        if isinstance(lit, list):
            items = lit
        elif isinstance(lit, str):
            items = [lit]
        else:
            items = [item.strip() for item in text.split(",") if item.strip()]
        values = []
        for item in items:
            if isinstance(item, bool) or not isinstance(item, (str, int)):
                raise argparse.ArgumentTypeError("%r is not a %s" % (item, opt.metavar))
            values.append(opt.conv(str(item)))
        return values
    if isinstance(lit, str):
        text = lit
    if opt.kind == "bool":
        try:
            return _BOOLEANS[text.lower()]
        except KeyError:
            raise argparse.ArgumentTypeError("%r is not True or False" % (text,)) from None
    return opt.conv(text)


def _read_config(path, error):
    """{dest: raw value} of the options set in the config file ``path``."""
    cfg = configparser.ConfigParser()
    try:
        with open(path, encoding="utf-8") as fd:
            cfg.read_file(fd)
    except (OSError, UnicodeDecodeError) as exc:
        error("--config: cannot read %r: %s" % (path, exc))
    except configparser.Error as exc:
        error("--config %r: %s" % (path, " ".join(str(exc).split())))
    if cfg.sections():
        error("--config %r: options must be in the [DEFAULT] section; section [%s] "
              "would be ignored" % (path, cfg.sections()[0]))
    values = {}
    for key in cfg.defaults():
        name = _KEY_ALIASES.get(key, key)
        if key in _KEY_ALIASES and name is None:
            continue
        opt = _BY_KEY.get(name)
        if opt is None:
            error("--config %r: unknown option %r (known: %s)"
                  % (path, key, ", ".join(sorted(_BY_KEY))))
        if opt.dest in values:
            error("--config %r: option %r is given twice (as %r and another name)"
                  % (path, name, key))
        try:
            text = cfg.get(configparser.DEFAULTSECT, key)
        except configparser.Error as exc:
            error("--config %r: %s" % (path, " ".join(str(exc).split())))
        try:
            value = _file_value(opt, text)
        except argparse.ArgumentTypeError as exc:
            error("--config %r: %s = %s: %s" % (path, key, text.strip(), exc))
        if value is not None:
            values[opt.dest] = value
    return values


# ---- writing one ------------------------------------------------------------------------

def _ini_text(value):
    if isinstance(value, bool) or isinstance(value, int):
        text = repr(value)
    elif isinstance(value, list):
        text = repr([str(item) for item in value])
    else:
        text = repr(str(value))
    return text.replace("%", "%%")      # the reader interpolates, as 4.x's does


def save(cfg, path):
    """Write ``cfg.options`` to ``path`` as a config file that :func:`load`
    (and 4.x dispycosnode) read back.  The file holds the secret, so it is
    created readable by its owner only.  Raises OSError."""
    lines = ["# dispycosnode options (written by --save_config; read with --config)",
             "[%s]" % configparser.DEFAULTSECT]
    for opt in _OPTIONS:
        lines.append("%s = %s" % (opt.key, _ini_text(cfg.options[opt.key])))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "w", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")


# ---- checks and resolution -----------------------------------------------------------------

def _resolve_cpus(cpus, error):
    """4.x's rule: 0 = every CPU, N > 0 = N (at most the CPUs there are),
    -N = every CPU but N (leaving at least one)."""
    have = os.cpu_count() or 1
    if cpus > have:
        error("-c/--cpus %d: this computer has %d CPUs" % (cpus, have))
    if cpus < 0 and have + cpus < 1:
        error("-c/--cpus %d: leaves no CPU to use (this computer has %d)" % (cpus, have))
    return cpus if cpus > 0 else have + cpus


def _resolve_ports(specs, count, scheduler_port, error):
    """``count`` ports: the lowest given, then on from the highest of them
    (or all 0 when that is 0); default: from scheduler_port + 1."""
    ports = sorted(parse_node_ports(specs))[:count] or [scheduler_port + 1]
    while len(ports) < count:
        ports.append(ports[-1] + 1 if ports[-1] else 0)
    if ports[-1] > 65535:
        error("--node_ports: %d ports are needed (the node's and %d servers') but ports "
              "%d... run past 65535" % (count, count - 1, ports[0]))
    return ports


def _is_loopback(host):
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False            # a host name: assume it is reachable from elsewhere


def _default_dest_path():
    # 4.x used <tmp>/pycos, shared by every user of the computer; another user
    # could create it first and plant files the node trusts (its --clean
    # unpickles a file from there).  A directory per user closes that.
    base = tempfile.gettempdir()
    if hasattr(os, "getuid"):
        return os.path.join(base, "pycos-%d" % os.getuid())
    return os.path.join(base, "pycos")          # Windows: the temp dir is per user


def _check_service_times(opts, error):
    times = {}
    for key in ("service_start", "service_stop", "service_end"):
        if opts[key]:
            hour, minute = opts[key].split(":")
            times[key] = datetime.time(int(hour), int(minute))
        else:
            times[key] = None
    start, stop, end = times["service_start"], times["service_stop"], times["service_end"]
    if start is not None and stop is None and end is None:
        error("--service_start needs --service_stop or --service_end")
    if start is not None and stop is not None and start >= stop:
        error("--service_start %s must be before --service_stop %s (within one day)"
              % (opts["service_start"], opts["service_stop"]))
    if start is not None and end is not None and start >= end:
        error("--service_start %s must be before --service_end %s (within one day)"
              % (opts["service_start"], opts["service_end"]))
    if stop is not None and end is not None and stop >= end:
        error("--service_stop %s must be before --service_end %s"
              % (opts["service_stop"], opts["service_end"]))
    return start, stop, end


def _resolve(opts, error):
    """NodeConfig from the raw values ``opts`` ({dest: value}), or error()."""
    cpus = _resolve_cpus(opts["cpus"], error)
    node_ports = _resolve_ports(opts["node_ports"], cpus + 1, opts["scheduler_port"], error)

    msg_timeout = opts["msg_timeout"]
    min_pulse = opts["min_pulse_interval"] or _pycos_config.MinPulseInterval
    max_pulse = opts["max_pulse_interval"] or _pycos_config.MaxPulseInterval
    if min_pulse < msg_timeout:
        error("--min_pulse_interval %d must be at least --msg_timeout %d"
              % (min_pulse, msg_timeout))
    if max_pulse < min_pulse:
        error("--max_pulse_interval %d must be at least --min_pulse_interval %d"
              % (max_pulse, min_pulse))
    if opts["zombie_period"] and opts["zombie_period"] < min_pulse:
        error("--zombie_period %d must be 0 (off) or at least --min_pulse_interval %d"
              % (opts["zombie_period"], min_pulse))

    start, stop, end = _check_service_times(opts, error)

    for key in ("certfile", "keyfile"):
        if opts[key] and not os.path.isfile(opts[key]):
            error("--%s: %r is not a file" % (key, opts[key]))
    if opts["keyfile"] and not opts["certfile"]:
        error("--keyfile needs --certfile (the certificate that goes with the key)")

    if not opts["secret"] and not opts["insecure"]:
        for flag, key in (("-i/--host", "host"), ("--ext_host", "ext_host")):
            for host in opts[key]:
                if not _is_loopback(host):
                    error("%s %s: without a secret, anyone who can reach this node could "
                          "run code on it.  Give the node and its clients the same secret: "
                          "-s/--secret SECRET, or 'secret = ...' in the [DEFAULT] section "
                          "of a --config file (kept out of the process list); or add "
                          "--insecure if every host on this network is trusted"
                          % (flag, host))

    name = opts["name"] or socket.gethostname() or "dispycos_server"
    options = {opt.key: opts[opt.dest] for opt in _OPTIONS}
    return NodeConfig(
        cpus=cpus, host=list(opts["host"]), ext_host=list(opts["ext_host"]),
        scheduler_port=opts["scheduler_port"], node_ports=node_ports,
        ipv4_udp_multicast=opts["ipv4_udp_multicast"], name=name,
        dest_path=opts["dest_path"] or _default_dest_path(),
        max_file_size=parse_size(opts["max_file_size"]) if opts["max_file_size"] else 0,
        secret=opts["secret"], certfile=opts["certfile"] or None,
        keyfile=opts["keyfile"] or None, serve=opts["serve"],
        service_start=start, service_stop=stop, service_end=end,
        msg_timeout=msg_timeout, min_pulse_interval=min_pulse, max_pulse_interval=max_pulse,
        zombie_period=opts["zombie_period"], ping_interval=opts["ping_interval"],
        daemon=opts["daemon"], clean=opts["clean"],
        peers=[_split_peer(peer) for peer in opts["peers"]],
        debug=opts["debug"], insecure=opts["insecure"],
        config=None, save_config=None, options=options)


class _Unset:
    def __repr__(self):
        return "<unset>"


_UNSET = _Unset()


def load(argv=None):
    """The node's :class:`NodeConfig` from ``argv`` (default ``sys.argv[1:]``)
    and the ``--config`` file it names.  With ``--save_config FILE`` the
    options are also written to FILE; the caller should then exit.  Any
    invalid value ends the program as argparse does: usage and a message on
    stderr, exit status 2."""
    p = parser()
    # A namespace already holding every option makes argparse skip the
    # defaults, so what is still _UNSET (or None, for repeatable options) was
    # not given on the command line.
    given = argparse.Namespace(config="", save_config="")
    for opt in _OPTIONS:
        setattr(given, opt.dest, None if opt.kind == "list" else _UNSET)
    args = p.parse_args(argv, namespace=given)

    opts = {opt.dest: _default(opt) for opt in _OPTIONS}
    if args.config:
        opts.update(_read_config(args.config, p.error))
    for opt in _OPTIONS:
        value = getattr(args, opt.dest)
        if value is not _UNSET and value is not None:
            opts[opt.dest] = value

    cfg = _resolve(opts, p.error)
    cfg.config = args.config or None
    if args.save_config:
        try:
            save(cfg, args.save_config)
        except OSError as exc:
            p.error("--save_config: cannot write %r: %s" % (args.save_config, exc))
        cfg.save_config = args.save_config
    return cfg
