"""AsyncFile and AsyncPipe with what every platform has, so that the same
tests run on Linux and on Windows (``make pytest-wine``): the platform's
pipe that can be waited on (``os.pipe()`` on POSIX, ``asyncfile.pipe()``'s
overlapped named pipe on Windows), Python children instead of POSIX
programs (``subprocess.Popen`` on POSIX, ``asyncfile.Popen`` on Windows,
whose pipes are overlapped), and files opened by path."""
import os
import socket
import subprocess
import sys

import pytest

import pycos
import pycos.asyncfile
from pycos.io import AsyncFile, AsyncPipe

PIPE = subprocess.PIPE
WINDOWS = os.name == "nt"
Popen = pycos.asyncfile.Popen if WINDOWS else subprocess.Popen

# children: reverse stdin to stdout (and say so on stderr); upper-case
# lines; count lines; echo lines one by one (flushing each)
REVERSE = ("import sys; d = sys.stdin.buffer.read(); sys.stdout.buffer.write(d[::-1]); "
           "sys.stderr.buffer.write(b'reversed %d' % len(d))")
UPPER = "import sys\nfor line in sys.stdin.buffer: sys.stdout.buffer.write(line.upper())"
COUNT = "import sys; print(sum(1 for _ in sys.stdin.buffer))"
ECHO = ("import sys\nfor line in sys.stdin.buffer:\n"
        "    sys.stdout.buffer.write(line); sys.stdout.buffer.flush()")


def py(code):
    return [sys.executable, "-c", code]


@pytest.fixture
def pipe():
    """(reader, writer) AsyncFiles over the platform's waitable pipe."""
    if WINDOWS:
        r, w = pycos.asyncfile.pipe()
        fr, fw = AsyncFile(r, "r"), AsyncFile(w, "w")
    else:
        r, w = os.pipe()
        fr, fw = AsyncFile(r), AsyncFile(w)
    yield fr, fw
    fr.close()
    fw.close()


def test_pipe_reads_writes_and_end_of_file(run, pipe):
    r, w = pipe

    def later(task=None):
        for c in b"abcdef":
            yield task.sleep(0.01)
            yield w.write(bytes([c]))

    def go(task=None):
        yield w.write(b"0123456789", full=True)
        a = yield r.read(4)
        b = yield r.read(100)
        pycos.Task(later)
        c = yield r.read(6, full=True)          # waits for all six
        big = os.urandom(1 << 20)               # more than the pipe holds
        writer = pycos.Task(lambda task=None: (yield w.write(big, full=True)))
        got = yield r.read(len(big), full=True)
        n = yield writer.finish()
        w.close()
        end = yield r.read(10)
        return a, b, c, got == big, n, end

    assert run(go) == (b"0123", b"456789", b"abcdef", True, 1 << 20, b"")


def test_pipe_read_timeout_loses_nothing(run, pipe):
    r, w = pipe

    def go(task=None):
        try:
            yield r.read(10, timeout=0.2)
        except socket.timeout:
            pass
        else:
            raise AssertionError("no timeout")
        yield w.write(b"abc")
        part = yield r.read(10, full=True, timeout=0.2)
        yield w.write(b"later")
        after = yield r.read(10)
        return part, after

    assert run(go) == (b"abc", b"later")


def test_close_wakes_a_reader(run, pipe):
    r, w = pipe

    def reader(task=None):
        return (yield r.read(10))

    def go(task=None):
        t = pycos.Task(reader)
        while pycos.Pycos().statistics()["loop"]["pending_ops"] < 1:
            yield task.sleep(0.01)
        r.close()
        return (yield t.finish())

    assert run(go) == b""


def test_files_by_path(run, tmp_path):
    path = str(tmp_path / "data")
    body = os.urandom(200000)

    def go(task=None):
        with AsyncFile(path, "w") as f:
            n = yield f.write(body, full=True)
        with AsyncFile(path, "ab") as f:
            yield f.write(b"tail", full=True)
        with AsyncFile(path) as f:
            head = yield f.read(10, full=True)
            rest = yield f.read()
        with AsyncFile(path, "r+") as f:
            yield f.write(b"XY", full=True)
            more = yield f.read(3, full=True)
        return n, head + rest, more

    n, data, more = run(go)
    assert n == len(body) and data == body + b"tail"
    assert more == body[2:5]
    with open(path, "rb") as f:
        assert f.read(2) == b"XY"


def test_communicate_both_ways(run, procs):
    p = Popen(py(REVERSE), stdin=PIPE, stdout=PIPE, stderr=PIPE)
    procs.append(p)
    data = os.urandom(1 << 20)

    def go(task=None):
        ap = AsyncPipe(p)
        out, err = yield ap.communicate(data)
        ap.close()
        return out, err, ap.returncode

    out, err, rc = run(go, timeout=60)
    assert out == data[::-1]
    assert err == b"reversed %d" % len(data)
    assert rc == 0


def test_chain_of_two(run, procs):
    p1 = Popen(py(UPPER), stdin=PIPE, stdout=PIPE)
    p2 = Popen(py(COUNT), stdin=p1.stdout, stdout=PIPE)
    p1.stdout.close()                   # only the second reads it now
    procs.extend([p1, p2])
    lines = b"".join(b"line %d\n" % i for i in range(20000))

    def go(task=None):
        ap = AsyncPipe(p1, p2)
        out, err = yield ap.communicate(lines)
        return out, err

    out, err = run(go, timeout=60)
    assert int(out) == 20000 and err is None
    assert p1.wait(10) == 0 and p2.wait(10) == 0


def test_interactive_readline(run, procs):
    p = Popen(py(ECHO), stdin=PIPE, stdout=PIPE)
    procs.append(p)

    def go(task=None):
        with AsyncPipe(p) as ap:
            out = []
            for word in (b"one", b"two", b"three"):
                yield ap.write(word + b"\n", full=True)
                out.append((yield ap.readline(timeout=30)))
            try:
                yield ap.readline(timeout=0.1)
            except socket.timeout:
                out.append("timeout")
        status = yield ap.wait(timeout=30)
        return out, status

    assert run(go, timeout=60) == ([b"one\n", b"two\n", b"three\n", "timeout"], 0)


@pytest.mark.skipif(not WINDOWS, reason="Windows only: POSIX pipes are made non-blocking "
                                        "by the reactor, so every pipe can be waited on")
def test_windows_synchronous_handles_refused(tmp_path):
    import msvcrt
    path = tmp_path / "f"
    path.write_bytes(b"x")
    with open(path, "rb") as f:                     # (refused: still the caller's)
        with pytest.raises(ValueError, match=r"AsyncFile\(path, 'rb'\)"):
            AsyncFile(f)
    r, w = os.pipe()
    try:
        with pytest.raises(ValueError, match="asyncfile.pipe"):
            AsyncFile(msvcrt.get_osfhandle(r))
        with os.fdopen(os.dup(r), "rb") as f:       # (refused: still the caller's)
            with pytest.raises(ValueError, match="overlapped"):
                AsyncFile(f)
    finally:
        os.close(r)
        os.close(w)


@pytest.mark.skipif(not WINDOWS, reason="Windows only: asyncfile.Popen and pipe() are "
                                        "Windows' (as in pycos 4.x)")
def test_windows_popen_pipes_are_asyncfiles(run, procs):
    p = pycos.asyncfile.Popen(py(ECHO), stdin=PIPE, stdout=PIPE, stderr=subprocess.STDOUT)
    procs.append(p)
    assert isinstance(p.stdin, AsyncFile) and isinstance(p.stdout, AsyncFile)
    assert p.stderr is None
    with pytest.raises(ValueError, match="bytes"):
        pycos.asyncfile.Popen(py(ECHO), stdout=PIPE, text=True)
    with pytest.raises(ValueError, match="bufsize"):
        pycos.asyncfile.pipe(0)

    def go(task=None):
        yield p.stdin.write(b"hello\n", full=True)
        line = yield p.stdout.readline(timeout=30)
        p.close()
        return line

    assert run(go, timeout=60) == b"hello\n"
    assert p.wait(30) == 0
