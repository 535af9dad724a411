"""AsyncFile over pipes and files, and AsyncPipe over subprocess.Popen
chains with real programs (sha1sum, grep, wc, cat): POSIX's.  The same
behaviours with what Windows has too are tests/io/test_pipes_any_os.py."""
import errno
import hashlib
import os
import socket
import subprocess
import time

import pytest

import pycos
import pycos.asyncfile
from pycos.io import AsyncFile, AsyncPipe

PIPE = subprocess.PIPE

pytestmark = pytest.mark.skipif(
    os.name == "nt", reason="POSIX pipes, programs and ptys; on Windows os.pipe() and "
    "subprocess's pipes cannot be waited on (test_pipes_any_os.py tests asyncfile.pipe "
    "and asyncfile.Popen there)")


@pytest.fixture
def pipe():
    """An (AsyncFile reader, AsyncFile writer) over os.pipe(); closed after."""
    r, w = os.pipe()
    fr, fw = AsyncFile(r), AsyncFile(w)
    yield fr, fw
    fr.close()
    fw.close()


def test_compat_module():
    assert pycos.asyncfile.AsyncFile is AsyncFile
    assert pycos.asyncfile.AsyncPipe is AsyncPipe


# ---------------------------------------------------------------- AsyncFile


def test_read_sizes(run, pipe):
    r, w = pipe

    def go(task=None):
        yield w.write(b"0123456789")
        a = yield r.read(4)                 # up to 4
        b = yield r.read(100)               # what is there: 6
        pycos.Task(_later_write, w, b"abcdef")
        c = yield r.read(6, full=True)      # waits for all 6
        yield w.write(b"tail")
        w.close()
        d = yield r.read()                  # to end of file
        e = yield r.read(10)
        return a, b, c, d, e

    assert run(go) == (b"0123", b"456789", b"abcdef", b"tail", b"")


def _later_write(f, data, task=None):
    for i in range(len(data)):
        yield task.sleep(0.01)
        yield f.write(data[i:i + 1])


def test_read_timeout(run, pipe):
    r, w = pipe

    def go(task=None):
        t0 = time.monotonic()
        try:
            yield r.read(10, timeout=0.2)
        except socket.timeout:
            waited = time.monotonic() - t0
        else:
            raise AssertionError("no timeout")
        yield w.write(b"abc")
        part = yield r.read(10, full=True, timeout=0.2)     # partial after the timeout
        yield w.write(b"later")
        after = yield r.read(10)                          # nothing lost
        return waited, part, after

    waited, part, after = run(go)
    assert 0.15 <= waited < 2
    assert (part, after) == (b"abc", b"later")


def test_write_full_and_timeout(run, pipe):
    r, w = pipe
    big = os.urandom(4 << 20)

    def go(task=None):
        n = yield w.write(big, full=True, timeout=0.2)    # nobody reads: partial
        assert 0 < n < len(big), n
        try:
            yield w.write(b"x", timeout=0.1)               # pipe full: nothing goes
        except socket.timeout:
            pass
        else:
            raise AssertionError("no timeout")
        reader = pycos.Task(_read_n, r, len(big))
        rest = yield w.write(big[n:], full=True)
        assert rest == len(big) - n
        return (yield reader.finish())

    assert run(go) == big


def _read_n(f, n, task=None):
    return (yield f.read(n, full=True))


def test_write_partial_returns_count(run, pipe):
    r, w = pipe

    def go(task=None):
        n = yield w.write(b"y" * (1 << 20))     # not full: what fits
        assert 0 < n <= 1 << 20
        got = yield r.read(n, full=True)
        return n, len(got)

    n, m = run(go)
    assert n == m


def test_readline(run, pipe):
    r, w = pipe

    def go(task=None):
        yield w.write(b"first line\nsecond")
        pycos.Task(_later_write, w, b" part\nthird\nabcdefghij\nno newline")
        a = yield r.readline()
        b = yield r.readline()
        c = yield r.readline(size=3)           # at most 3 bytes
        d = yield r.readline()
        e = yield r.read(4, full=True)         # read after readline keeps order
        f = yield r.readline()
        yield task.sleep(0.3)
        w.close()
        g = yield r.readline()                 # last line without newline
        h = yield r.readline()                 # end of file
        return [a, b, c, d, e, f, g, h]

    assert run(go) == [b"first line\n", b"second part\n", b"thi", b"rd\n", b"abcd",
                       b"efghij\n", b"no newline", b""]


def test_readline_timeout(run, pipe):
    r, w = pipe

    def go(task=None):
        yield w.write(b"no end")
        try:
            yield r.readline(timeout=0.1)
        except socket.timeout:
            return "timeout"

    assert run(go) == "timeout"


def test_close_wakes_reader_and_writer(run):
    rfd, wfd = os.pipe()
    r, w = AsyncFile(rfd), AsyncFile(wfd)
    r2fd, w2fd = os.pipe()
    r2, w2 = AsyncFile(r2fd), AsyncFile(w2fd)

    def reader(task=None):
        return (yield r.read(10))

    def writer(task=None):
        try:
            yield w2.write(b"z" * (4 << 20), full=True)
        except OSError as exc:
            return exc.errno

    def go(task=None):
        rt = pycos.Task(reader)
        wt = pycos.Task(writer)
        yield task.sleep(0)
        while pycos.Pycos().statistics()["loop"]["pending_ops"] < 2:
            yield task.sleep(0.01)
        r.close()
        w2.close()
        return (yield rt.finish()), (yield wt.finish())

    assert run(go) == (b"", errno.EBADF)
    w.close()
    r2.close()


def test_second_concurrent_read_raises(run, pipe):
    r, w = pipe
    ready = pycos.Event()

    def reader(task=None):
        ready.set()
        return (yield r.read(10))

    def go(task=None):
        t = pycos.Task(reader)
        yield ready.wait(5)
        try:
            yield r.read(10)
        except RuntimeError:
            yield w.write(b"ok")
            return (yield t.finish())

    assert run(go) == b"ok"


def test_fileobj_closed_with_asyncfile_and_context_manager(run, tmp_path):
    rfd, wfd = os.pipe()
    fobj = os.fdopen(wfd, "wb", buffering=0)
    with pytest.raises(ZeroDivisionError):
        with AsyncFile(fobj) as f:
            assert f.fileno() == wfd
            1 / 0                              # never swallowed
    assert fobj.closed and f.closed
    f.close()                                  # twice is harmless
    with AsyncFile(rfd) as f:                  # an int descriptor is closed too
        pass
    with pytest.raises(OSError):
        os.fstat(rfd)


def test_regular_file(run, tmp_path):
    path = tmp_path / "data.bin"
    data = os.urandom(300000) + b"\nlast line\n"

    def go(task=None):
        with AsyncFile(open(path, "wb")) as f:
            n = yield f.write(data, full=True)
        with AsyncFile(open(path, "rb")) as f:
            head = yield f.read(100)
            rest = yield f.read()
        with AsyncFile(open(path, "rb")) as f:
            yield f.read(300000, full=True)
            line0 = yield f.readline()
            line1 = yield f.readline()
        return n, head + rest, line0, line1

    n, back, l0, l1 = run(go)
    assert n == len(data) and back == data and (l0, l1) == (b"\n", b"last line\n")


def test_asyncfile_errors(tmp_path):
    with pytest.raises(TypeError):
        AsyncFile(1.5)
    with pytest.raises(TypeError):
        AsyncFile(True)
    with pytest.raises(FileNotFoundError):
        AsyncFile(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="mode must be"):
        AsyncFile(str(tmp_path / "x"), "x")
    with pytest.raises(TypeError, match="mode must be a str"):
        AsyncFile(str(tmp_path / "x"), 1)
    assert not (tmp_path / "x").exists()
    r, w = os.pipe()
    f = os.fdopen(r, "rb")
    f.close()
    with pytest.raises(ValueError):
        AsyncFile(f)
    os.close(w)


# ---------------------------------------------------------------- AsyncPipe


def test_communicate_sha1sum(run, procs):
    data = os.urandom(3 << 20)
    p = subprocess.Popen(["sha1sum"], stdin=PIPE, stdout=PIPE)
    procs.append(p)

    def go(task=None):
        ap = AsyncPipe(p)
        out, err = yield ap.communicate(data)
        ap.close()
        return out, err

    out, err = run(go)
    assert out.split()[0].decode() == hashlib.sha1(data).hexdigest()
    assert err is None and p.wait(10) == 0


def test_communicate_closes_the_pipes(run, procs):
    """Like Popen.communicate, communicate leaves no pipe open: stdin is
    closed to signal end of input, stdout and stderr once read to their end
    (an AsyncFile left open stays registered with the reactor)."""
    p = subprocess.Popen(["sha1sum"], stdin=PIPE, stdout=PIPE, stderr=PIPE)
    procs.append(p)

    def go(task=None):
        ap = AsyncPipe(p)
        yield ap.communicate(b"abc")
        return ap.stdin.closed, ap.stdout.closed, ap.stderr.closed

    assert run(go) == (True, True, True)
    assert p.wait(10) == 0


def test_communicate_input_from_file_object(run, procs, tmp_path):
    path = tmp_path / "in.txt"
    path.write_bytes(b"alpha\nbeta\ngamma\n" * 1000)
    p = subprocess.Popen(["sha1sum"], stdin=PIPE, stdout=PIPE, stderr=PIPE)
    procs.append(p)

    def go(task=None):
        with open(path, "rb") as f, AsyncPipe(p) as ap:
            return (yield ap.communicate(f))

    out, err = run(go)
    assert out.split()[0].decode() == hashlib.sha1(path.read_bytes()).hexdigest()
    assert err == b""
    assert p.wait(10) == 0


def test_communicate_large_both_ways_through_cat(run, procs):
    """Input and output both far beyond the pipe buffers: communicate must
    feed and drain concurrently (a sequential one would deadlock)."""
    data = os.urandom(16 << 20)
    p = subprocess.Popen(["cat"], stdin=PIPE, stdout=PIPE, stderr=PIPE)
    procs.append(p)

    def go(task=None):
        with AsyncPipe(p) as ap:
            return (yield ap.communicate(data))

    out, err = run(go, timeout=30)
    assert hashlib.sha256(out).digest() == hashlib.sha256(data).digest()
    assert err == b"" and p.wait(10) == 0


def test_communicate_process_not_reading(run, procs):
    """A process that exits without reading its input: communicate still
    returns (the broken pipe is not an error, as with Popen.communicate)."""
    p = subprocess.Popen(["grep", "-q", "x", "/dev/null"], stdin=PIPE, stdout=PIPE)
    procs.append(p)

    def go(task=None):
        with AsyncPipe(p) as ap:
            return (yield ap.communicate(b"y" * (8 << 20)))

    assert run(go) == (b"", None)
    assert p.wait(10) == 1


def test_chain_grep_wc(run, procs):
    p1 = subprocess.Popen(["grep", "pycos"], stdin=PIPE, stdout=PIPE)
    p2 = subprocess.Popen(["wc", "-l"], stdin=p1.stdout, stdout=PIPE)
    p1.stdout.close()               # only wc reads it now
    procs.extend([p1, p2])
    lines = [b"pycos line %d\n" % i if i % 3 == 0 else b"other %d\n" % i for i in range(30000)]

    def go(task=None):
        ap = AsyncPipe(p1, p2)
        assert ap.first is p1 and ap.last is p2
        assert ap.pid == p2.pid                       # delegation to the last process
        assert ap.stderr is None
        assert ap.poll() is None
        for i in range(0, len(lines), 1000):
            yield ap.write(b"".join(lines[i:i + 1000]), full=True)
        ap.stdin.close()
        out = yield ap.read()
        ap.close()
        return out

    out = run(go)
    assert int(out) == 10000
    assert p1.wait(10) == 0 and p2.wait(10) == 0


def test_interactive_cat_readline(run, procs):
    p = subprocess.Popen(["cat"], stdin=PIPE, stdout=PIPE)
    procs.append(p)

    def go(task=None):
        with AsyncPipe(p) as ap:
            out = []
            for word in (b"one", b"two", b"three"):
                yield ap.write(word + b"\n", full=True)
                out.append((yield ap.readline(timeout=5)))
            yield ap.write(b"partial")
            out.append((yield ap.read(7, full=True, timeout=5)))
            try:
                yield ap.readline(timeout=0.1)
            except socket.timeout:
                out.append("timeout")
        return out

    assert run(go) == [b"one\n", b"two\n", b"three\n", b"partial", "timeout"]
    assert p.wait(10) == 0               # the pipes closed: cat saw end of input


def test_stderr_read_and_readline(run, procs, tmp_path):
    missing = [str(tmp_path / ("missing%d" % i)) for i in range(3)]
    p = subprocess.Popen(["cat"] + missing, stdin=PIPE, stdout=PIPE, stderr=PIPE)
    procs.append(p)

    def go(task=None):
        ap = AsyncPipe(p)
        first = yield ap.readline_stderr()
        rest = yield ap.read_stderr()
        out = yield ap.read()
        ap.close()
        return first, rest, out

    first, rest, out = run(go)
    assert first.startswith(b"cat: ") and missing[0].encode() in first and first.endswith(b"\n")
    assert rest.count(b"\n") == 2 and missing[2].encode() in rest
    assert out == b""
    assert p.wait(10) == 1


def test_poll_and_returncode(run, procs):
    p = subprocess.Popen(["cat"], stdin=PIPE, stdout=PIPE)
    procs.append(p)

    def go(task=None):
        ap = AsyncPipe(p)
        assert ap.poll() is None and ap.returncode is None
        ap.stdin.close()
        out = yield ap.read()                 # EOF once cat has ended
        ap.close()
        return out

    assert run(go) == b""
    assert p.wait(10) == 0
    assert AsyncPipe.poll(_Dead(p)) == 0


class _Dead(object):
    def __init__(self, p):
        self.last = p


def test_asyncpipe_errors(run, procs):
    with pytest.raises(TypeError):
        AsyncPipe(object())
    p = subprocess.Popen(["cat"], stdin=PIPE)
    procs.append(p)
    ap = AsyncPipe(p)
    with pytest.raises(ValueError, match="stdout"):
        ap.read()
    with pytest.raises(ValueError, match="stderr"):
        ap.read_stderr()
    ap.close()
    assert p.wait(10) == 0


# ---------------------------------------------------------------- more descriptors


def test_pty_read_write_readline_and_hangup(run):
    """A pseudo-terminal: AsyncFile on both ends; when the terminal side is
    closed, the master reads end of file (the kernel says EIO there)."""
    import tty
    master, slave = os.openpty()
    tty.setraw(slave)                       # no echo, no line discipline games
    m, s = AsyncFile(master), AsyncFile(slave)

    def go(task=None):
        yield s.write(b"first line\nsecond", full=True)
        line = yield m.readline(timeout=5)
        part = yield m.read(6, full=True, timeout=5)
        yield m.write(b"to the terminal\n", full=True)
        back = yield s.readline(timeout=5)
        try:
            yield m.read(10, timeout=0.05)
        except socket.timeout:
            timed_out = True
        else:
            timed_out = False
        yield s.write(b"bye", full=True)
        s.close()
        rest = yield m.read()               # to end of file: the data, then the hangup
        return line, part, back, timed_out, rest

    try:
        assert run(go) == (b"first line\n", b"second", b"to the terminal\n", True, b"bye")
    finally:
        m.close()
        s.close()


def test_character_device_and_int_descriptor(run):
    """Any descriptor: /dev/zero through a file object and /dev/null by number."""
    zero = open("/dev/zero", "rb", buffering=0)
    null = os.open("/dev/null", os.O_WRONLY)

    def go(task=None):
        with AsyncFile(zero) as z, AsyncFile(null) as n:
            data = yield z.read(100000, full=True)
            wrote = yield n.write(b"x" * 100000, full=True)
        return data, wrote

    data, wrote = run(go)
    assert data == bytes(100000) and wrote == 100000
    assert zero.closed


def test_asyncfile_over_a_socket(run):
    """An AsyncFile over a socket (or an AsyncSocket, as pycos 4.x's
    socket_afile example does): lines and bulk data, then end of file."""
    from pycos.io import AsyncSocket
    a, b = socket.socketpair()
    sa = AsyncSocket(a)
    data = b"".join(b"line %d\n" % i for i in range(20000))

    def writer(task=None):
        f = AsyncFile(sa)
        yield f.write(data, full=True)
        f.close()                           # closes the AsyncSocket with it

    def go(task=None):
        w = pycos.Task(writer)
        with AsyncFile(b) as f:
            lines = []
            while True:
                line = yield f.readline()
                if not line:
                    break
                lines.append(line)
        yield w.finish()
        return lines

    lines = run(go)
    assert b"".join(lines) == data and len(lines) == 20000
    assert sa.closed and b.fileno() == -1


def test_asyncpipe_context_manager_never_swallows(run, procs):
    p = subprocess.Popen(["cat"], stdin=PIPE, stdout=PIPE, stderr=PIPE)
    procs.append(p)

    def go(task=None):
        try:
            with AsyncPipe(p) as ap:
                yield ap.write(b"", full=True)
                raise KeyError("from the body")
        except KeyError as exc:
            return exc.args[0], ap.stdin.closed, ap.stdout.closed, ap.stderr.closed

    assert run(go) == ("from the body", True, True, True)
    assert p.wait(10) == 0


def test_communicate_waits_for_exit_and_sets_returncode(run, procs):
    """As Popen.communicate: the process has been reaped when it returns."""
    p = subprocess.Popen(["sh", "-c", "cat >/dev/null; echo done; echo oops >&2; exit 3"],
                         stdin=PIPE, stdout=PIPE, stderr=PIPE)
    procs.append(p)

    def go(task=None):
        ap = AsyncPipe(p)
        out, err = yield ap.communicate(b"ignored")
        return out, err, ap.returncode

    assert run(go) == (b"done\n", b"oops\n", 3)


def test_communicate_input_from_an_asyncfile(run, procs):
    """The input may be an AsyncFile (read to its end, then closed)."""
    data = os.urandom(1 << 20)
    p = subprocess.Popen(["sha1sum"], stdin=PIPE, stdout=PIPE)
    procs.append(p)
    r, w = os.pipe()
    src = AsyncFile(r)

    def feed(task=None):
        with AsyncFile(w) as f:
            yield f.write(data, full=True)

    def go(task=None):
        feeder = pycos.Task(feed)
        out, _ = yield AsyncPipe(p).communicate(src)
        yield feeder.finish()
        return out

    out = run(go)
    assert out.split()[0].decode() == hashlib.sha1(data).hexdigest()
    assert src.closed and p.returncode == 0


def test_asyncpipe_read_takes_timeout_second(run, procs):
    """pycos 4.x's AsyncPipe.read(size, timeout): the second positional
    argument is the timeout."""
    p = subprocess.Popen(["cat"], stdin=PIPE, stdout=PIPE, stderr=PIPE)
    procs.append(p)

    def go(task=None):
        with AsyncPipe(p) as ap:
            try:
                yield ap.read(10, 0.05)
            except socket.timeout:
                first = "timeout"
            try:
                yield ap.read_stderr(10, 0.05)
            except socket.timeout:
                second = "timeout"
            return first, second

    assert run(go) == ("timeout", "timeout")
    assert p.wait(10) == 0
