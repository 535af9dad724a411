"""The Pycos constructor: what is exposed, and precise errors."""
import socket

import pytest

import pycos.netpycos as netpycos

pytestmark = pytest.mark.timeout(30)


def test_no_secret_means_loopback_only():
    s = netpycos.Pycos(udp_port=0)
    assert s.location.addr == "127.0.0.1"
    s.terminate()


def test_no_secret_beyond_loopback_is_an_error_that_says_how():
    with pytest.raises(ValueError) as e:
        netpycos.Pycos(udp_port=0, host="0.0.0.0")
    assert "secret" in str(e.value) and "insecure=True" in str(e.value)


def test_insecure_opt_in():
    s = netpycos.Pycos(udp_port=0, host="0.0.0.0", insecure=True)
    assert s.location.port > 0
    s.terminate()


@pytest.mark.parametrize("kw, exc", [
    ({"udp_port": -1}, ValueError), ({"tcp_port": 70000}, ValueError),
    ({"secret": 5}, TypeError), ({"keyfile": "k.pem"}, ValueError),
    ({"name": 3}, TypeError), ({"max_file_size": -2}, ValueError),
    ({"ssl_context": object()}, TypeError), ({"host": "no.such.host.invalid"}, ValueError),
])
def test_bad_arguments(kw, exc):
    with pytest.raises(exc):
        netpycos.Pycos(**kw)
    assert netpycos.Pycos.existing() is None


def test_port_in_use_is_the_constructors_error():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    try:
        with pytest.raises(OSError):
            netpycos.Pycos(udp_port=0, tcp_port=s.getsockname()[1])
    finally:
        s.close()


def test_rps_on_a_plain_scheduler_says_why():
    """A process that made a plain scheduler before importing netpycos: an
    RPS cannot be registered or located there, and says so (it found a
    Channel of the same name, or failed with an AttributeError)."""
    import subprocess
    import sys
    code = "\n".join([
        "import pycos",
        "pycos.Pycos()",
        "import pycos.netpycos as netpycos",
        "def f(task=None):",
        "    yield task.sleep(0)",
        "def t(task=None):",
        "    pycos.Channel('svc').register()",
        "    out = []",
        "    for call in (lambda: netpycos.RPS(f).register(),",
        "                 lambda: netpycos.RPS.locate('svc')):",
        "        try:",
        "            out.append(repr((yield call())))",
        "        except RuntimeError as e:",
        "            out.append(str(e))",
        "    return out",
        "for line in pycos.Task(t).value(10):",
        "    print(line)",
    ])
    out = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE,
                         universal_newlines=True, timeout=30, check=True).stdout.splitlines()
    assert len(out) == 2, out
    for line in out:
        assert "RPS needs pycos.netpycos's scheduler" in line, out
