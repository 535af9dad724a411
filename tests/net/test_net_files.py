"""send_file / del_file between real processes, confined to dest_path."""
import hashlib
import os

import pytest

import pycos
from netutil import run

pytestmark = pytest.mark.timeout(60)

RECEIVER = """
from peerlib import *
import sys
sched = start(dest_path=sys.argv[1], max_file_size=int(sys.argv[2]))
serve()
"""


def _digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def test_send_file_kept_mode_mtime_overwrite_and_delete(net, spawn, tmp_path):
    dest = tmp_path / "dest"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_bytes(b"keep me")
    src = tmp_path / "data.bin"
    src.write_bytes(os.urandom(3 * 256 * 1024 + 123))
    os.chmod(src, 0o640)
    os.utime(src, ns=(1_600_000_000_000_000_000, 1_600_000_000_123_456_789))
    p = spawn(RECEIVER, args=[str(dest), str(1 << 30)])
    loc = p.ready()

    def client(task=None):
        assert (yield net.send_file(loc, str(src), dir="sub/dir")) == 0
        got = dest / "sub" / "dir" / "data.bin"
        assert _digest(got) == _digest(src)
        st = os.stat(got)
        assert st.st_mode & 0o777 == 0o640
        assert st.st_mtime_ns == 1_600_000_000_123_456_789
        # identical file already there: 0 without overwrite
        assert (yield net.send_file(loc, str(src), dir="sub/dir")) == 0
        # a different file of the same name: refused without overwrite
        src.write_bytes(b"changed")
        assert (yield net.send_file(loc, str(src), dir="sub/dir")) == -1
        assert (yield net.send_file(loc, str(src), dir="sub/dir", overwrite=True)) == 0
        assert got.read_bytes() == b"changed"
        # never outside dest_path
        for bad in ("../outside", "/" + str(outside).lstrip("/"), "sub/../../outside"):
            assert (yield net.send_file(loc, str(src), dir=bad, overwrite=True)) == -1
            assert (yield net.del_file(loc, "victim", dir=bad)) == -1
        os.symlink(str(outside), str(dest / "link"))
        assert (yield net.send_file(loc, str(src), dir="link", overwrite=True)) == -1
        assert (yield net.del_file(loc, "victim", dir="link")) == -1
        assert (yield net.del_file(loc, "data.bin", dir="sub/dir")) == 0
        assert not got.exists()
        assert (yield net.del_file(loc, "data.bin", dir="sub/dir")) == -1
        return True
    assert run(client)
    assert sorted(os.listdir(outside)) == ["victim"]
    assert (outside / "victim").read_bytes() == b"keep me"
    assert [n for n in os.listdir(dest / "sub" / "dir") if n.startswith(".pycos-tmp")] == []


def test_send_file_over_max_size_refused(net, spawn, tmp_path):
    dest = tmp_path / "dest"
    src = tmp_path / "big"
    src.write_bytes(b"x" * 5000)
    p = spawn(RECEIVER, args=[str(dest), "4096"])
    loc = p.ready()

    def client(task=None):
        return (yield net.send_file(loc, str(src)))
    assert run(client) == -1
    assert not (dest / "big").exists()


def test_send_big_file_with_back_pressure(net, spawn, tmp_path):
    """64 MiB through a 1 MiB high-water mark: the sender's queue stays bounded."""
    from pycos import config
    config.PeerHighWater = 1 << 20
    dest = tmp_path / "dest"
    src = tmp_path / "big"
    with open(src, "wb") as f:
        block = os.urandom(1 << 20)
        for _ in range(64):
            f.write(block)
    p = spawn(RECEIVER, args=[str(dest), str(1 << 30)])
    loc = p.ready()
    peak = [0]

    def watch(task=None):
        while True:
            peer = net._node._peers.get(loc)
            if peer is not None:
                peak[0] = max(peak[0], peer.queued())
            yield task.sleep(0.005)

    def client(task=None):
        w = pycos.Task(watch)
        r = yield net.send_file(loc, str(src), timeout=30)
        w.terminate()
        return r
    assert run(client, timeout=60) == 0
    assert _digest(dest / "big") == _digest(src)
    # high-water mark plus one chunk in flight
    assert peak[0] <= (1 << 20) + 2 * 256 * 1024, peak[0]
