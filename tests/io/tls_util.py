"""Certificates made with the openssl CLI, and openssl s_server/s_client
as peers for the TLS tests (imported as ``tls_util``).

Where there is no openssl command (the Windows run under Wine), the
certificates can come made: ``PYCOS_TEST_PKI`` names a directory that
:func:`make_pki` filled beforehand (``make pytest-wine`` makes one on the
host), and only the tests that talk to openssl itself skip.
"""
import os
import select
import shutil
import subprocess
import time

import pytest

PKI_FILES = ["ca.pem", "ca.key", "other_ca.pem", "server.pem", "server.key", "expired.pem",
             "client.pem", "client.key", "client_bundle.pem"]


def have_pki():
    """Whether :func:`make_pki` can make (or copy) the certificates here."""
    return bool(shutil.which("openssl") or os.environ.get("PYCOS_TEST_PKI"))


def need_openssl():
    """Skip the calling test when the openssl command is not there to be
    a TLS peer."""
    if not shutil.which("openssl"):
        pytest.skip("needs the openssl command as a TLS peer (s_server / s_client)")


EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def _openssl(*args, cwd):
    subprocess.run(("openssl",) + args, cwd=cwd, check=True, timeout=60,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_pki(d):
    """Into directory ``d``: ca.pem/ca.key, server.pem/server.key (SAN
    DNS:localhost, IP:127.0.0.1), expired.pem (same key, notAfter in the
    past), other_ca.pem (an unrelated CA), client.pem/client.key (client
    certificate by the CA), client_bundle.pem (client cert + CA).  Returns a
    dict of absolute paths.  With ``PYCOS_TEST_PKI`` set, copies them from
    there instead."""
    d = str(d)
    made = os.environ.get("PYCOS_TEST_PKI")
    if made:
        for n in PKI_FILES:
            shutil.copy(os.path.join(made, n), os.path.join(d, n))
        return {n.replace(".", "_"): os.path.join(d, n) for n in PKI_FILES}
    # the CAs' extensions come from a config file of our own: OpenSSL 1.1.1
    # (Debian 11) appends -addext ones to those of its default config's
    # v3_ca, and a second basicConstraints makes a CA no verifier accepts
    with open(os.path.join(d, "ca.cnf"), "w") as f:
        f.write("[req]\ndistinguished_name = dn\nx509_extensions = ca\n[dn]\n"
                "[ca]\nbasicConstraints = critical,CA:TRUE\n"
                "keyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\n")
    ca_ext = ["-config", "ca.cnf"]
    _openssl("req", "-x509", *EC, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=pycos test CA", *ca_ext, cwd=d)
    _openssl("req", "-x509", *EC, "-keyout", "other_ca.key", "-out", "other_ca.pem",
             "-days", "2", "-subj", "/CN=unrelated CA", *ca_ext, cwd=d)
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    with open(os.path.join(d, "client.ext"), "w") as f:
        f.write("extendedKeyUsage=clientAuth\n")
    _openssl("req", "-new", *EC, "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=localhost", cwd=d)
    sign = ["x509", "-req", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial"]
    _openssl(*sign, "-in", "server.csr", "-out", "server.pem", "-days", "2",
             "-extfile", "server.ext", cwd=d)
    expired = [*sign, "-in", "server.csr", "-out", "expired.pem", "-extfile", "server.ext"]
    try:    # OpenSSL 1.1 to 3.3 (Debian 11, 12): a validity that ended a day ago
        _openssl(*expired, "-days", "-1", cwd=d)
    except subprocess.CalledProcessError:
        # 3.4 and later (Debian 13) refuse that, and take the dates instead
        _openssl(*expired, "-not_before", "20000101000000Z", "-not_after", "20000102000000Z",
                 cwd=d)
    _openssl("req", "-new", *EC, "-keyout", "client.key", "-out", "client.csr",
             "-subj", "/CN=pycos client", cwd=d)
    _openssl(*sign, "-in", "client.csr", "-out", "client.pem", "-days", "2",
             "-extfile", "client.ext", cwd=d)
    with open(os.path.join(d, "client_bundle.pem"), "w") as out:
        for name in ("client.pem", "ca.pem"):
            with open(os.path.join(d, name)) as f:
                out.write(f.read())
    return {n.replace(".", "_"): os.path.join(d, n) for n in PKI_FILES}


class SServer(object):
    """``openssl s_server`` on an ephemeral loopback port; ``port`` once it
    listens.  ``stop()`` kills and reaps it, returning its output."""

    def __init__(self, cert, key, extra=(), timeout=10):
        need_openssl()
        self.proc = subprocess.Popen(
            ["openssl", "s_server", "-accept", "127.0.0.1:0", "-cert", cert, "-key", key,
             "-naccept", "1"] + list(extra),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.output = b""
        self.port = None
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while self.port is None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                self.stop()
                raise RuntimeError("s_server did not start: %r" % self.output)
            chunk = os.read(fd, 4096)
            if not chunk:
                self.stop()
                raise RuntimeError("s_server exited: %r" % self.output)
            self.output += chunk
            for line in self.output.splitlines():
                if line.startswith(b"ACCEPT "):
                    self.port = int(line.rsplit(b":", 1)[1])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            out, _ = self.proc.communicate(timeout=10)
        except ValueError:          # already communicated
            out = b""
        self.output += out or b""
        return self.output


def s_client(port, stdin_data, *args, timeout=20):
    """Run ``openssl s_client`` against 127.0.0.1:port; returns the
    CompletedProcess (stdout, stderr as text)."""
    need_openssl()
    return subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port] + list(args),
                          input=stdin_data, capture_output=True, timeout=timeout)
