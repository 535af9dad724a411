"""netpycos over TLS: peers with certificates from one CA talk; a certificate
from another CA, an expired one, or a plain peer on a TLS port is refused."""
import os
import socket
import subprocess
import time

import pytest

import pycos
import pycos.netpycos as netpycos
from netutil import run

pytestmark = pytest.mark.timeout(90)

EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def _ssl(d, *args):
    subprocess.run(("openssl",) + args, cwd=d, check=True, timeout=60,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """Two CAs; node certificates (server and client use) from the first CA,
    one expired, and one from the second CA."""
    d = str(tmp_path_factory.mktemp("pki"))
    ca_ext = ["-addext", "basicConstraints=critical,CA:TRUE",
              "-addext", "keyUsage=critical,keyCertSign,cRLSign"]
    for ca in ("ca", "other_ca"):
        _ssl(d, "req", "-x509", *EC, "-keyout", ca + ".key", "-out", ca + ".pem", "-days", "2",
             "-subj", "/CN=" + ca, *ca_ext)
    with open(os.path.join(d, "node.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n"
                "extendedKeyUsage=serverAuth,clientAuth\n")
    for name, ca, days in (("node", "ca", "2"), ("node2", "ca", "2"), ("expired", "ca", "-1"),
                           ("foreign", "other_ca", "2")):
        _ssl(d, "req", "-new", *EC, "-keyout", name + ".key", "-out", name + ".csr",
             "-subj", "/CN=" + name)
        _ssl(d, "x509", "-req", "-CA", ca + ".pem", "-CAkey", ca + ".key", "-CAcreateserial",
             "-in", name + ".csr", "-out", name + ".pem", "-days", days, "-extfile", "node.ext")
    return d


PEER = """
from peerlib import *
import sys
d = sys.argv[1]
sched = start(certfile=d + "/node2.pem", keyfile=d + "/node2.key", cafile=d + "/ca.pem")
def echo(task=None):
    task.register("echo")
    while True:
        who, m = yield task.receive()
        who.send(m)
pycos.Task(echo)
serve()
"""


def _sched(secret, pki, cert):
    return netpycos.Pycos(name="tls", udp_port=0, secret=secret, host="127.0.0.1",
                          certfile=os.path.join(pki, cert + ".pem"),
                          keyfile=os.path.join(pki, cert + ".key"),
                          cafile=os.path.join(pki, "ca.pem"))


def test_tls_peers_talk(secret, spawn, pki):
    p = spawn(PEER, args=[pki])
    loc = p.ready()
    _sched(secret, pki, "node")

    def client(task=None):
        echo = yield pycos.Task.locate("echo", loc, timeout=10)
        assert echo is not None
        for i in range(200):
            echo.send((task, i))
        for i in range(200):
            assert (yield task.receive(timeout=10)) == i
        return True
    assert run(client)


@pytest.mark.parametrize("cert", ["foreign", "expired"])
def test_tls_wrong_ca_or_expired_refused(secret, spawn, pki, cert):
    p = spawn(PEER, args=[pki])
    loc = p.ready()
    _sched(secret, pki, cert)

    def client(task=None):
        t0 = time.monotonic()
        r = yield pycos.Task.locate("echo", loc, timeout=10)
        return r, time.monotonic() - t0
    r, took = run(client)
    assert r is None and took < 8


def test_plain_client_on_tls_port_is_closed(secret, spawn, pki):
    p = spawn(PEER, args=[pki], env={"PYCOS_TEST_HANDSHAKE": "1"})
    loc = p.ready()
    with socket.create_connection((loc.addr, loc.port), timeout=5) as s:
        s.sendall(b"pycos\x05\r\n" + b"\x00" * 100)
        t0 = time.monotonic()
        s.settimeout(5)
        try:
            while s.recv(4096):
                pass
        except ConnectionResetError:
            pass
        assert time.monotonic() - t0 < 3
    # a stalled TLS handshake (nothing after connect) is closed at the deadline
    with socket.create_connection((loc.addr, loc.port), timeout=5) as s:
        t0 = time.monotonic()
        s.settimeout(5)
        try:
            assert s.recv(4096) == b""
        except ConnectionResetError:
            pass
        took = time.monotonic() - t0
        assert 0.5 < took < 3, took
