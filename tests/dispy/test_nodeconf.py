"""dispycosnode settings (pycos.dispy.nodeconf): options, config files, checks.

No process or socket is started: load() only parses and validates.  The CPU
count is pinned to 4 (os.cpu_count patched) so the results do not depend on
the machine running the tests.
"""
import ast
import configparser
import dataclasses
import datetime
import os
import socket
import stat
import tempfile

import pytest
from hypothesis import given, settings, strategies as st

from pycos import config as pycos_config
from pycos.dispy import nodeconf

CPUS = 4


@pytest.fixture(autouse=True)
def four_cpus(monkeypatch, tmp_path):
    monkeypatch.setattr(os, "cpu_count", lambda: CPUS)
    monkeypatch.chdir(tmp_path)


def fails(capsys, argv):
    """load(argv) must exit as argparse does; returns the error message."""
    with pytest.raises(SystemExit) as exc:
        nodeconf.load(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: dispycosnode")
    head = "dispycosnode: error: "
    assert head in err
    return err.split(head, 1)[1]


def write(path, text):
    path.write_text(text)
    return str(path)


# ---- defaults and each option --------------------------------------------------------

def test_defaults():
    cfg = nodeconf.load([])
    assert cfg.cpus == CPUS
    assert cfg.host == [] and cfg.ext_host == []
    assert cfg.scheduler_port == pycos_config.DispycosSchedulerPort == 9705
    assert cfg.node_ports == [9706, 9707, 9708, 9709, 9710]
    assert cfg.ipv4_udp_multicast is False
    assert cfg.name == (socket.gethostname() or "dispycos_server")
    assert cfg.dest_path == os.path.join(tempfile.gettempdir(), "pycos-%d" % os.getuid())
    assert cfg.max_file_size == 0
    assert cfg.secret == "" and cfg.certfile is None and cfg.keyfile is None
    assert cfg.serve == -1
    assert (cfg.service_start, cfg.service_stop, cfg.service_end) == (None, None, None)
    assert cfg.msg_timeout == 10
    assert (cfg.min_pulse_interval, cfg.max_pulse_interval) == (10, 100)
    assert (cfg.zombie_period, cfg.ping_interval) == (0, 0)
    assert not (cfg.daemon or cfg.clean or cfg.debug or cfg.insecure)
    assert cfg.peers == []
    assert cfg.config is None and cfg.save_config is None
    assert cfg.options["cpus"] == 0 and cfg.options["node_ports"] == []
    assert cfg.options["loglevel"] is False and cfg.options["peers"] == []


def test_parser_knows_every_4x_option():
    p = nodeconf.parser()
    flags = set(p._option_string_actions)
    for flag in ("-c", "--cpus", "-i", "--host", "--ext_host", "--scheduler_port",
                 "--node_ports", "--ipv4_udp_multicast", "-n", "--name", "--dest_path",
                 "--max_file_size", "-s", "--secret", "--certfile", "--keyfile", "--serve",
                 "--service_start", "--service_stop", "--service_end", "--msg_timeout",
                 "--min_pulse_interval", "--max_pulse_interval", "--zombie_period",
                 "--ping_interval", "--daemon", "--clean", "--peer", "-d", "--debug",
                 "--config", "--save_config", "--insecure"):
        assert flag in flags, flag


def test_parser_alone_gives_raw_values():
    args = nodeconf.parser().parse_args(["-c", "-1", "--max_file_size", "2g"])
    assert args.cpus == -1 and args.max_file_size == "2g"
    assert args.node_ports == [] and args.peers == [] and args.debug is False
    assert args.scheduler_port == 9705 and args.serve == -1


@pytest.fixture
def pem(tmp_path):
    cert = tmp_path / "node.pem"
    key = tmp_path / "node.key"
    cert.write_text("cert")
    key.write_text("key")
    return str(cert), str(key)


@pytest.mark.parametrize("argv, attr, expected", [
    (["-c", "2"], "cpus", 2),
    (["--cpus", "-1"], "cpus", 3),
    (["-i", "127.0.0.1"], "host", ["127.0.0.1"]),
    (["--host", "127.0.0.1", "-i", "::1", "-i", "localhost"], "host",
     ["127.0.0.1", "::1", "localhost"]),
    (["--ext_host", "10.1.2.3", "--ext_host", "gw.example.com", "-s", "x"], "ext_host",
     ["10.1.2.3", "gw.example.com"]),
    (["--scheduler_port", "9800"], "scheduler_port", 9800),
    (["--scheduler_port", "9800"], "node_ports", [9801, 9802, 9803, 9804, 9805]),
    (["--ipv4_udp_multicast"], "ipv4_udp_multicast", True),
    (["-n", "node7"], "name", "node7"),
    (["--name", "node 8"], "name", "node 8"),
    (["--dest_path", "files"], "dest_path", os.path.join("{tmp}", "files")),
    (["--dest_path", "/srv/x"], "dest_path", "/srv/x"),
    (["--max_file_size", "10m"], "max_file_size", 10 * 1024 ** 2),
    (["-s", "abc"], "secret", "abc"),
    (["--secret", "p%s w"], "secret", "p%s w"),
    (["--serve", "3"], "serve", 3),
    (["--serve", "-1"], "serve", -1),
    (["--service_start", "8:00", "--service_stop", "17:30"], "service_start",
     datetime.time(8, 0)),
    (["--service_start", "8:00", "--service_stop", "17:30"], "service_stop",
     datetime.time(17, 30)),
    (["--service_end", "23:59"], "service_end", datetime.time(23, 59)),
    (["--msg_timeout", "5"], "msg_timeout", 5),
    (["--min_pulse_interval", "20"], "min_pulse_interval", 20),
    (["--min_pulse_interval", "0"], "min_pulse_interval", 10),
    (["--max_pulse_interval", "50"], "max_pulse_interval", 50),
    (["--max_pulse_interval", "0"], "max_pulse_interval", 100),
    (["--zombie_period", "600"], "zombie_period", 600),
    (["--zombie_period", "0"], "zombie_period", 0),
    (["--ping_interval", "30"], "ping_interval", 30),
    (["--daemon"], "daemon", True),
    (["--clean"], "clean", True),
    (["--peer", "10.0.0.9:9705", "--peer", "sched.example.com:51"], "peers",
     [("10.0.0.9", 9705), ("sched.example.com", 51)]),
    (["--peer", "[fe80::1]:9705"], "peers", [("fe80::1", 9705)]),
    (["-d"], "debug", True),
    (["--debug"], "debug", True),
    (["--insecure"], "insecure", True),
])
def test_each_option(argv, attr, expected, tmp_path):
    cfg = nodeconf.load(argv)
    if isinstance(expected, str):
        expected = expected.replace("{tmp}", str(tmp_path))
    assert getattr(cfg, attr) == expected


def test_tls_files_are_made_absolute(pem, tmp_path):
    cfg = nodeconf.load(["--certfile", "node.pem", "--keyfile", "node.key"])
    assert (cfg.certfile, cfg.keyfile) == pem
    cfg = nodeconf.load(["--certfile", "node.pem"])
    assert cfg.keyfile is None


def test_secret_not_in_repr():
    assert "hunter2" not in repr(nodeconf.load(["-s", "hunter2"]))


# ---- cpus ---------------------------------------------------------------------------------

@pytest.mark.parametrize("cpus, servers", [
    (0, 4), (1, 1), (3, 3), (4, 4), (-1, 3), (-3, 1),
])
def test_cpus(cpus, servers):
    cfg = nodeconf.load(["-c", str(cpus)])
    assert cfg.cpus == servers
    assert len(cfg.node_ports) == servers + 1
    assert cfg.options["cpus"] == cpus


@pytest.mark.parametrize("cpus, message", [
    (5, "-c/--cpus 5: this computer has 4 CPUs"),
    (100, "-c/--cpus 100: this computer has 4 CPUs"),
    (-4, "-c/--cpus -4: leaves no CPU to use (this computer has 4)"),
    (-9, "-c/--cpus -9: leaves no CPU to use (this computer has 4)"),
])
def test_cpus_errors(capsys, cpus, message):
    assert message in fails(capsys, ["-c", str(cpus)])


def test_cpus_not_a_number(capsys):
    assert "argument -c/--cpus: 'two' is not an integer" in fails(capsys, ["-c", "two"])


def test_cpu_count_unknown_means_one(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert nodeconf.load([]).cpus == 1


# ---- node_ports ---------------------------------------------------------------------------

@pytest.mark.parametrize("argv, ports", [
    ([], [9706, 9707, 9708, 9709, 9710]),
    (["--node_ports", "9800"], [9800, 9801, 9802, 9803, 9804]),
    (["--node_ports", "9800-9804"], [9800, 9801, 9802, 9803, 9804]),
    (["--node_ports", "9800-9900"], [9800, 9801, 9802, 9803, 9804]),
    (["--node_ports", "9800-9801"], [9800, 9801, 9802, 9803, 9804]),
    (["--node_ports", "9800,9850,9900"], [9800, 9850, 9900, 9901, 9902]),
    (["--node_ports", "9900", "--node_ports", "9800-9801"], [9800, 9801, 9900, 9901, 9902]),
    (["--node_ports", " 9800 , 9810-9811 ,"], [9800, 9810, 9811, 9812, 9813]),
    (["--node_ports", "9800,9800-9801"], [9800, 9801, 9802, 9803, 9804]),
    (["--node_ports", "0"], [0, 0, 0, 0, 0]),
    (["--node_ports", "65531"], [65531, 65532, 65533, 65534, 65535]),
    (["-c", "1", "--node_ports", "9800-9810"], [9800, 9801]),
])
def test_node_ports(argv, ports):
    assert nodeconf.load(argv).node_ports == ports


@pytest.mark.parametrize("spec, message", [
    ("abc", "'abc' is not a port or a range of ports such as 9706-9710"),
    ("9706-", "'9706-' is not a port or a range of ports"),
    ("1-2-3", "'1-2-3' is not a port or a range of ports"),
    ("9710-9706", "'9710-9706': the range starts above its end"),
    ("65536", "'65536': 65536 is not a port number (0-65535)"),
    ("9000-70000", "'9000-70000': 70000 is not a port number (0-65535)"),
    ("-5", "'-5' is not a port or a range of ports"),
    (",", "',' names no port"),
])
def test_node_ports_errors(capsys, spec, message):
    err = fails(capsys, ["--node_ports=" + spec])
    assert err.startswith("argument --node_ports: ")
    assert message in err


def test_node_ports_past_65535(capsys):
    err = fails(capsys, ["--node_ports", "65533"])
    assert "--node_ports: 5 ports are needed (the node's and 4 servers')" in err
    assert "past 65535" in fails(capsys, ["--scheduler_port", "65535"])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 65535), st.integers(0, 300)), min_size=1,
                max_size=5))
def test_parse_node_ports_model(ranges):
    specs = ["%d-%d" % (a, min(a + n, 65535)) if n else str(a) for a, n in ranges]
    model = set()
    for a, n in ranges:
        model.update(range(a, min(a + n, 65535) + 1))
    assert nodeconf.parse_node_ports(specs) == model
    assert nodeconf.parse_node_ports([",".join(specs)]) == model


@settings(max_examples=200, deadline=None)
@given(st.sets(st.integers(1, 60000), min_size=1, max_size=8), st.integers(1, 16))
def test_resolved_ports_model(ports, count):
    def error(msg):
        raise AssertionError(msg)
    specs = [str(p) for p in ports]
    got = nodeconf._resolve_ports(specs, count, 9705, error)
    assert len(got) == count
    assert got == sorted(set(got))
    given_ = sorted(ports)[:count]
    assert got[:len(given_)] == given_
    assert got[len(given_):] == list(range(given_[-1] + 1, given_[-1] + 1 + count - len(given_)))


# ---- max_file_size --------------------------------------------------------------------------

@pytest.mark.parametrize("text, size", [
    ("0", 0), ("4096", 4096), ("1k", 1024), ("10K", 10240), ("10m", 10 * 2 ** 20),
    ("3M", 3 * 2 ** 20), ("2g", 2 * 2 ** 30), ("2G", 2 * 2 ** 30), ("1t", 2 ** 40),
    ("1T", 2 ** 40), ("", 0),
])
def test_max_file_size(text, size):
    cfg = nodeconf.load(["--max_file_size", text])
    assert cfg.max_file_size == size
    assert cfg.options["max_file_size"] == text


@pytest.mark.parametrize("text", ["10x", "m", "1.5m", "-1", "10mb", "1 k", "0x10", "١٠"])
def test_max_file_size_errors(capsys, text):
    err = fails(capsys, ["--max_file_size=" + text])
    assert err.startswith("argument --max_file_size: %r is not a size" % (text,))


@given(st.integers(0, 10 ** 15), st.sampled_from(["", "k", "K", "m", "M", "g", "G", "t", "T"]))
def test_parse_size_model(n, unit):
    factor = {"": 1, "k": 2 ** 10, "m": 2 ** 20, "g": 2 ** 30, "t": 2 ** 40}[unit.lower()]
    assert nodeconf.parse_size("%d%s" % (n, unit)) == n * factor


@given(st.text(max_size=12))
def test_parse_size_rejects_or_agrees(text):
    try:
        size = nodeconf.parse_size(text)
    except Exception as exc:
        assert type(exc).__name__ == "ArgumentTypeError"
    else:
        digits = text.rstrip("kKmMgGtT")
        assert digits.isascii() and digits.isdigit()
        assert size >= int(digits)


# ---- service times ------------------------------------------------------------------------

@pytest.mark.parametrize("argv, times", [
    (["--service_start", "08:00", "--service_stop", "17:00"], ("08:00", "17:00", None)),
    (["--service_start", "8:5", "--service_end", "9:00"], ("08:05", None, "09:00")),
    (["--service_start", "0:00", "--service_stop", "12:00", "--service_end", "23:59"],
     ("00:00", "12:00", "23:59")),
    (["--service_stop", "17:00"], (None, "17:00", None)),
    (["--service_end", "17:00"], (None, None, "17:00")),
    (["--service_stop", "17:00", "--service_end", "18:00"], (None, "17:00", "18:00")),
])
def test_service_times(argv, times):
    cfg = nodeconf.load(argv)
    got = (cfg.service_start, cfg.service_stop, cfg.service_end)
    want = tuple(None if t is None else datetime.time(*map(int, t.split(":"))) for t in times)
    assert got == want
    assert tuple(cfg.options[k] or None for k in
                 ("service_start", "service_stop", "service_end")) == times


@pytest.mark.parametrize("flag", ["--service_start", "--service_stop", "--service_end"])
@pytest.mark.parametrize("text", ["24:00", "12:60", "8", "8:00pm", "08-00", "x:y", "123:00",
                                  "8:00:00"])
def test_service_time_format_errors(capsys, flag, text):
    err = fails(capsys, [flag + "=" + text])
    assert err.startswith("argument %s: %r is not a time of day HH:MM" % (flag, text))


@pytest.mark.parametrize("argv, message", [
    (["--service_start", "08:00"], "--service_start needs --service_stop or --service_end"),
    (["--service_start", "17:00", "--service_stop", "08:00"],
     "--service_start 17:00 must be before --service_stop 08:00 (within one day)"),
    (["--service_start", "08:00", "--service_stop", "08:00"],
     "--service_start 08:00 must be before --service_stop 08:00"),
    (["--service_start", "22:00", "--service_end", "06:00"],
     "--service_start 22:00 must be before --service_end 06:00 (within one day)"),
    (["--service_stop", "18:00", "--service_end", "17:00"],
     "--service_stop 18:00 must be before --service_end 17:00"),
    (["--service_start", "08:00", "--service_stop", "18:00", "--service_end", "18:00"],
     "--service_stop 18:00 must be before --service_end 18:00"),
])
def test_service_time_order_errors(capsys, argv, message):
    assert message in fails(capsys, argv)


# ---- other checks --------------------------------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["--scheduler_port", "0"], "argument --scheduler_port: 0 is not a port number (1-65535)"),
    (["--scheduler_port", "65536"], "argument --scheduler_port: 65536 is not a port number"),
    (["--scheduler_port", "http"], "argument --scheduler_port: 'http' is not an integer"),
    (["--msg_timeout", "0"], "argument --msg_timeout: 0 is less than 1 second"),
    (["--msg_timeout", "1.5"], "argument --msg_timeout: '1.5' is not an integer"),
    (["--min_pulse_interval", "-1"],
     "argument --min_pulse_interval: -1 is negative (0 or more seconds expected)"),
    (["--max_pulse_interval", "-1"], "argument --max_pulse_interval: -1 is negative"),
    (["--zombie_period", "-5"], "argument --zombie_period: -5 is negative"),
    (["--ping_interval", "-5"], "argument --ping_interval: -5 is negative"),
    (["--min_pulse_interval", "5"], "--min_pulse_interval 5 must be at least --msg_timeout 10"),
    (["--msg_timeout", "20"], "--min_pulse_interval 10 must be at least --msg_timeout 20"),
    (["--max_pulse_interval", "5", "--msg_timeout", "1", "--min_pulse_interval", "6"],
     "--max_pulse_interval 5 must be at least --min_pulse_interval 6"),
    (["--min_pulse_interval", "200"],
     "--max_pulse_interval 100 must be at least --min_pulse_interval 200"),
    (["--zombie_period", "5"],
     "--zombie_period 5 must be 0 (off) or at least --min_pulse_interval 10"),
    (["--serve", "0"], "argument --serve: 0: give the number of clients to serve"),
    (["--serve", "-2"], "or -1 to serve forever"),
    (["--peer", "10.0.0.1"], "argument --peer: '10.0.0.1' is not a peer location host:port"),
    (["--peer", "::1:9705"], "is not a peer location host:port (an IPv6 address in brackets"),
    (["--peer", "h:0"], "argument --peer: peer 'h:0': 0 is not a port number (1-65535)"),
    (["--peer", "h:x"], "argument --peer: peer 'h:x': 'x' is not an integer"),
    (["--peer", "bad host:9"], "peer 'bad host:9': 'bad host' is neither an IP address"),
    (["-i", ""], "argument -i/--host: '' is neither an IP address nor a host name"),
    (["-i", "a/b"], "argument -i/--host: 'a/b' is neither an IP address nor a host name"),
    (["--ext_host", "a b"], "argument --ext_host: 'a b' is neither an IP address"),
    (["--certfile", "missing.pem"], "--certfile: '{tmp}/missing.pem' is not a file"),
    (["--keyfile", "."], "--keyfile: '{tmp}' is not a file"),
    (["--no_such_option"], "unrecognized arguments: --no_such_option"),
])
def test_errors(capsys, tmp_path, argv, message):
    assert message.replace("{tmp}", str(tmp_path)) in fails(capsys, argv)


def test_keyfile_needs_certfile(capsys, pem):
    assert "--keyfile needs --certfile" in fails(capsys, ["--keyfile", pem[1]])


def test_pulse_rules_accept_equal_values():
    cfg = nodeconf.load(["--msg_timeout", "7", "--min_pulse_interval", "7",
                         "--max_pulse_interval", "7", "--zombie_period", "7"])
    assert (cfg.msg_timeout, cfg.min_pulse_interval, cfg.max_pulse_interval,
            cfg.zombie_period) == (7, 7, 7, 7)


# ---- no secret beyond loopback ------------------------------------------------------------

@pytest.mark.parametrize("argv", [
    ["-i", "192.168.1.5"], ["-i", "127.0.0.1", "-i", "10.0.0.1"], ["-i", "0.0.0.0"],
    ["-i", "::"], ["-i", "node.example.com"], ["--ext_host", "203.0.113.7"],
])
def test_no_secret_beyond_loopback(capsys, argv):
    err = fails(capsys, argv)
    assert "without a secret" in err
    assert "-s/--secret SECRET" in err and "secret = ..." in err and "--insecure" in err


@pytest.mark.parametrize("argv", [
    [], ["-i", "127.0.0.1"], ["-i", "127.1.2.3"], ["-i", "::1"], ["-i", "localhost"],
    ["-i", "LocalHost", "--ext_host", "127.0.0.1"],
    ["-i", "192.168.1.5", "-s", "k"], ["--ext_host", "203.0.113.7", "--secret", "k"],
    ["-i", "192.168.1.5", "--insecure"], ["-i", "0.0.0.0", "--ext_host", "1.2.3.4", "--insecure"],
])
def test_loopback_or_secret_or_insecure_is_fine(argv):
    nodeconf.load(argv)


def test_secret_from_config_file_satisfies_the_rule(tmp_path):
    path = write(tmp_path / "n.ini", "[DEFAULT]\nsecret = 'k'\n")
    assert nodeconf.load(["--config", path, "-i", "10.0.0.1"]).secret == "k"


# ---- config files -----------------------------------------------------------------------

# what 4.12's --save_config writes (configparser over its option dict: every
# value str()'d, so strings unquoted), for a few options set
SAVED_BY_4X = """\
[DEFAULT]
cpus = 2
host = ['127.0.0.1']
ext_host = []
scheduler_port = 9800
node_ports = ['9900-9902']
ipv4_udp_multicast = False
name = node9
dest_path = /srv/dispycos
max_file_size = 10m
secret = s3cret
certfile = 
keyfile = 
serve = 5
service_start = 08:00
service_stop = 18:00
service_end = 
msg_timeout = 10
min_pulse_interval = 20
max_pulse_interval = 200
zombie_period = 600
ping_interval = 30
daemon = True
clean = False
peers = ['10.0.0.9:9705']
loglevel = True
"""

# a hand-written 4.x file: values as Python literals (4.x eval()s them)
WRITTEN_FOR_4X = """\
[DEFAULT]
cpus = 2
host = ['127.0.0.1']
scheduler_port = '9800'
node_ports = ['9900-9902']
name = 'node9'
dest_path = '/srv/dispycos'
max_file_size = '10m'
secret = 's3cret'
serve = 5
service_start = '08:00'
service_stop = '18:00'
min_pulse_interval = 20
max_pulse_interval = 200
zombie_period = 600
ping_interval = 30
daemon = True
peers = ['10.0.0.9:9705']
loglevel = True
"""


@pytest.mark.parametrize("text", [SAVED_BY_4X, WRITTEN_FOR_4X], ids=["saved", "hand"])
def test_4x_config_file_loads(tmp_path, text):
    path = write(tmp_path / "node.ini", text)
    cfg = nodeconf.load(["--config", path])
    assert cfg.config == path
    assert cfg.cpus == 2 and cfg.host == ["127.0.0.1"] and cfg.ext_host == []
    assert cfg.scheduler_port == 9800 and cfg.node_ports == [9900, 9901, 9902]
    assert cfg.name == "node9" and cfg.dest_path == "/srv/dispycos"
    assert cfg.max_file_size == 10 * 2 ** 20 and cfg.secret == "s3cret"
    assert cfg.certfile is None and cfg.serve == 5
    assert (cfg.service_start, cfg.service_stop, cfg.service_end) == (
        datetime.time(8), datetime.time(18), None)
    assert (cfg.msg_timeout, cfg.min_pulse_interval, cfg.max_pulse_interval) == (10, 20, 200)
    assert (cfg.zombie_period, cfg.ping_interval) == (600, 30)
    assert cfg.daemon and not cfg.clean and cfg.debug
    assert cfg.peers == [("10.0.0.9", 9705)]


def test_command_line_overrides_config(tmp_path):
    path = write(tmp_path / "node.ini", SAVED_BY_4X)
    cfg = nodeconf.load(["--config", path, "-c", "0", "-n", "other", "--peer", "h:1",
                         "--node_ports", "9000", "--max_file_size", "1k", "--clean"])
    # "-c 0" is the default, yet wins over the file (4.x let the file win)
    assert cfg.cpus == CPUS and cfg.options["cpus"] == 0
    assert cfg.name == "other"
    assert cfg.peers == [("h", 1)]                  # replaces the file's list
    assert cfg.node_ports == [9000, 9001, 9002, 9003, 9004]
    assert cfg.max_file_size == 1024 and cfg.clean
    assert cfg.secret == "s3cret" and cfg.serve == 5  # the rest from the file


def test_config_value_spellings(tmp_path):
    path = write(tmp_path / "node.ini", """\
[DEFAULT]
host = 127.0.0.1, ::1
node_ports = 9900
peers = "a:1"
daemon = yes
clean = 0
loglevel = on
serve = '-1'
cpus = -1
name = "it's"
secret = "with ' quote and %% sign"
ping_interval = None
""")
    cfg = nodeconf.load(["--config", path])
    assert cfg.host == ["127.0.0.1", "::1"]
    assert cfg.node_ports == [9900, 9901, 9902, 9903]
    assert cfg.peers == [("a", 1)]
    assert cfg.daemon and not cfg.clean and cfg.debug
    assert cfg.serve == -1 and cfg.cpus == 3
    assert cfg.name == "it's"
    assert cfg.secret == "with ' quote and % sign"
    assert cfg.ping_interval == 0


def test_config_aliases_and_older_keys(tmp_path):
    path = write(tmp_path / "old.ini", """\
[DEFAULT]
node = 127.0.0.1
ext_ip_addr = ['127.0.0.2']
tcp_ports = ['9900', '9950']
udp_port = 9706
peer = 10.0.0.1:9705
debug = True
""")
    cfg = nodeconf.load(["--config", path])
    assert cfg.host == ["127.0.0.1"] and cfg.ext_host == ["127.0.0.2"]
    assert cfg.node_ports == [9900, 9950, 9951, 9952, 9953]
    assert cfg.peers == [("10.0.0.1", 9705)] and cfg.debug


@pytest.mark.parametrize("text, message", [
    ("cpus = 2\n", "File contains no section headers"),
    ("[DEFAULT]\ncpus = 2\n[node]\nname = x\n",
     "options must be in the [DEFAULT] section; section [node] would be ignored"),
    ("[DEFAULT]\ncpu = 2\n", "unknown option 'cpu' (known: cert"),
    ("[DEFAULT]\nconfig = other.ini\n", "unknown option 'config'"),
    ("[DEFAULT]\ncpus = 2\ncpus = 3\n", "option 'cpus' in section 'DEFAULT' already exists"),
    ("[DEFAULT]\npeers = []\npeer = a:1\n", "option 'peers' is given twice (as 'peer'"),
    ("[DEFAULT]\ncpus = two\n", "cpus = two: 'two' is not an integer"),
    ("[DEFAULT]\ncpus = 9\n", "-c/--cpus 9: this computer has 4 CPUs"),
    ("[DEFAULT]\ncpus = True\n", "cpus = True: 'True' is not an integer"),
    ("[DEFAULT]\ncpus = 2.5\n", "cpus = 2.5: '2.5' is not an integer"),
    ("[DEFAULT]\ndaemon = maybe\n", "daemon = maybe: 'maybe' is not True or False"),
    ("[DEFAULT]\nhost = [1.5]\n", "host = [1.5]: 1.5 is not a HOST"),
    ("[DEFAULT]\nhost = ['a b']\n", "'a b' is neither an IP address nor a host name"),
    ("[DEFAULT]\nnode_ports = ['9902-9900']\n", "'9902-9900': the range starts above its end"),
    ("[DEFAULT]\nservice_start = '25:00'\n", "'25:00' is not a time of day HH:MM"),
    ("[DEFAULT]\nmax_file_size = 10 m\n", "'10 m' is not a size"),
    ("[DEFAULT]\nsecret = 50%\n", "'%' must be followed by '%' or '('"),
    ("[DEFAULT]\nhost = 10.0.0.1\n", "-i/--host 10.0.0.1: without a secret"),
])
def test_config_errors(capsys, tmp_path, text, message):
    path = write(tmp_path / "bad.ini", text)
    err = fails(capsys, ["--config", path])
    assert message in err
    if "=" in message and "%" not in message and "/--" not in message:
        assert err.startswith("--config %r: " % path)


def test_config_file_missing(capsys, tmp_path):
    err = fails(capsys, ["--config", "nope.ini"])
    assert err.startswith("--config: cannot read 'nope.ini': ")
    assert "No such file" in err


# ---- no eval ------------------------------------------------------------------------------

def test_config_values_are_never_evaluated(capsys, tmp_path):
    marker = tmp_path / "EVALUATED"
    attack = "__import__('os').system('touch %s')" % marker
    path = write(tmp_path / "evil.ini", "[DEFAULT]\nname = %s\n" % attack)
    assert nodeconf.load(["--config", path]).name == attack       # just a (strange) name
    for key in ("cpus", "host", "node_ports", "peers", "daemon", "max_file_size",
                "service_start", "scheduler_port", "min_pulse_interval"):
        path = write(tmp_path / "evil.ini", "[DEFAULT]\n%s = %s\n" % (key, attack))
        fails(capsys, ["--config", path])
    path = write(tmp_path / "evil.ini", "[DEFAULT]\nhost = [%s]\n" % attack)
    fails(capsys, ["--config", path])
    assert not marker.exists()


# ---- save_config ------------------------------------------------------------------------

def same_config(a, b):
    strip = dict(config=None, save_config=None)
    return dataclasses.replace(a, **strip) == dataclasses.replace(b, **strip)


@pytest.mark.parametrize("argv", [
    [],
    ["-c", "-1", "-i", "127.0.0.1", "-i", "::1", "--ext_host", "127.0.0.2",
     "--scheduler_port", "9800", "--node_ports", "9900-9901,9950", "--node_ports", "9960",
     "--ipv4_udp_multicast", "-n", "n 'q' \"d\"", "--dest_path", "files",
     "--max_file_size", "2G", "-s", "a%b'c\"\\d", "--serve", "7",
     "--service_start", "7:05", "--service_stop", "17:00", "--service_end", "18:00",
     "--msg_timeout", "3", "--min_pulse_interval", "4", "--max_pulse_interval", "40",
     "--zombie_period", "60", "--ping_interval", "9", "--daemon", "--clean",
     "--peer", "[::1]:9705", "--peer", "h:1", "-d", "--insecure"],
])
def test_save_config_round_trip(tmp_path, argv):
    out = str(tmp_path / "saved.ini")
    cfg = nodeconf.load(argv + ["--save_config", out])
    assert cfg.save_config == out
    assert stat.S_IMODE(os.stat(out).st_mode) & 0o077 == 0      # it may hold the secret
    back = nodeconf.load(["--config", out])
    assert same_config(back, cfg)
    assert back.options == cfg.options
    # saving what was loaded gives the same file
    again = str(tmp_path / "again.ini")
    nodeconf.load(["--config", out, "--save_config", again])
    with open(out) as a, open(again) as b:
        assert a.read() == b.read()


def test_saved_file_reads_as_4x_reads_it(tmp_path, pem):
    """4.12 reads [DEFAULT] with ConfigParser, takes node_ports/peers apart
    by hand and eval()s the rest; literal_eval stands in for eval here."""
    out = str(tmp_path / "saved.ini")
    cfg = nodeconf.load(["-n", "n1", "--node_ports", "9900-9902", "--peer", "h:5",
                         "-s", "x%y", "--max_file_size", "10m", "--certfile", pem[0],
                         "--save_config", out])
    parsed = configparser.ConfigParser()
    parsed.read(out)
    values = dict(parsed.items("DEFAULT"))
    for key in values:
        if key in ("node_ports", "peers"):
            items = [v.strip()[1:-1] for v in values[key][1:-1].split(",")]
            values[key] = [v for v in items if v]
        elif values[key]:
            values[key] = ast.literal_eval(values[key])
    assert values["name"] == "n1" and values["secret"] == "x%y"
    assert values["node_ports"] == ["9900-9902"] and values["peers"] == ["h:5"]
    assert values["max_file_size"] == "10m" and values["certfile"] == pem[0]
    assert values["cpus"] == 0 and values["serve"] == -1 and values["loglevel"] is False
    assert values["scheduler_port"] == 9705 and values["host"] == []
    assert set(values) == set(cfg.options)


def test_save_config_after_config_and_overrides(tmp_path):
    src = write(tmp_path / "node.ini", WRITTEN_FOR_4X)
    out = str(tmp_path / "out.ini")
    cfg = nodeconf.load(["--config", src, "-n", "renamed", "--save_config", out])
    back = nodeconf.load(["--config", out])
    assert back.name == "renamed" and back.secret == "s3cret" and back.cpus == 2
    assert same_config(back, cfg)


def test_invalid_config_is_not_saved(capsys, tmp_path):
    out = tmp_path / "out.ini"
    fails(capsys, ["-c", "99", "--save_config", str(out)])
    assert not out.exists()


def test_save_config_unwritable(capsys, tmp_path):
    out = str(tmp_path / "no" / "such" / "dir.ini")
    err = fails(capsys, ["--save_config", out])
    assert err.startswith("--save_config: cannot write %r: " % out)
