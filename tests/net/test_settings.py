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
