"""``yield pipe.wait(timeout)``: waiting for a child process to exit without
blocking the scheduler -- through a pidfd watched by the reactor (Linux),
and through the reaper thread (forced here with monkeypatch) -- plus the
plain-thread form and the errors.

Children exit when the test tells them to (a line on their stdin, or a
signal), once the waiting task is known to wait: the pidfd spy (or the
reaper thread's appearance) tells the task that signals.  The io conftest
checks that no descriptor (pidfd), thread, child process or reactor
registration is left after each test.
"""
import errno
import math
import os
import signal
import subprocess
import sys
import threading

import pytest

import pycos
import pycos.asyncfile
from pycos.core.scheduler import Pycos
from pycos.io import AsyncPipe
from pycos.io import file as iofile

pytestmark = pytest.mark.timeout(60)

PIPE = subprocess.PIPE
WINDOWS = os.name == "nt"
#: on Windows, the Popen whose pipes can be waited on (asyncfile's, as in 4.x)
Popen = pycos.asyncfile.Popen if WINDOWS else subprocess.Popen
#: the status of a process ended by Popen.terminate(): SIGTERM's on POSIX;
#: Windows' TerminateProcess, as subprocess calls it, makes it 1
TERMINATED = 1 if WINDOWS else -signal.SIGTERM
#: a child that exits with the status it reads on its stdin ("" -> 0)
EXIT_WITH = [sys.executable, "-c", "import sys; sys.exit(int(sys.stdin.readline() or 0))"]

HAVE_PIDFD = iofile._pidfd_open is not None


def _start(procs, args=EXIT_WITH):
    p = Popen(args, stdin=PIPE)
    procs.append(p)
    return p


class PidfdSpy(object):
    """Wraps ``_pidfd_open``: records the descriptors it opened and sends
    "waiting" to ``tell`` (a task), if set, after each."""

    def __init__(self, real):
        self.real = real
        self.fds = []
        self.tell = None

    def __call__(self, pid):
        fd = self.real(pid)
        self.fds.append(fd)
        if self.tell is not None:
            self.tell.send("waiting")
        return fd

    def all_closed(self):
        for fd in self.fds:
            try:
                what = os.readlink("/proc/self/fd/%d" % fd)
            except FileNotFoundError:
                continue
            if "pidfd" in what:
                return False
        return True


@pytest.fixture
def spy(monkeypatch):
    if not HAVE_PIDFD:
        pytest.skip("no pidfd_open on this system: the reaper-thread tests cover it")
    s = PidfdSpy(iofile._pidfd_open)
    monkeypatch.setattr(iofile, "_pidfd_open", s)
    return s


@pytest.fixture
def no_pidfd(monkeypatch):
    """The portable path: no pidfds, the reaper thread."""
    monkeypatch.setattr(iofile, "_pidfd_open", None)


def _reapers():
    return [t for t in threading.enumerate() if t.name.startswith("pycos-reaper-")]


def _wait_reaper_started(task, n=1):
    """[y] Until ``n`` reaper threads run (the waiting task has parked)."""
    for _ in range(20000):
        if len(_reapers()) >= n:
            return
        yield task.sleep(0.001)
    raise AssertionError("no reaper thread started")


def _waiter(ap, timeout=None, task=None):
    return (yield ap.wait(timeout))


def _join_reapers():
    for t in _reapers():
        t.join(10)
        assert not t.is_alive(), t


# ---------------------------------------------------------------- pidfd path


@pytest.mark.parametrize("status", [0, 3, 255])
def test_exit_status_through_the_pidfd(run, procs, spy, status):
    p = _start(procs)
    ap = AsyncPipe(p)

    def signaller(task=None):
        assert (yield task.receive(10)) == "waiting"
        yield ap.write(b"%d\n" % status, full=True)
        ap.stdin.close()

    def waiter(task=None):
        spy.tell = pycos.Task(signaller)
        got = yield ap.wait()
        yield spy.tell.finish()
        return got, ap.returncode

    assert run(waiter) == (status, status)
    assert len(spy.fds) == 1 and spy.all_closed()


@pytest.mark.parametrize("signo", [getattr(signal, "SIGTERM", 15), getattr(signal, "SIGKILL", 9)])
def test_killed_by_a_signal_is_negative(run, procs, spy, signo):
    p = _start(procs)
    ap = AsyncPipe(p)

    def signaller(task=None):
        yield task.receive(10)
        p.send_signal(signo)

    def waiter(task=None):
        spy.tell = pycos.Task(signaller)
        got = yield ap.wait()
        yield spy.tell.finish()
        return got

    assert run(waiter) == -signo
    ap.close()
    assert spy.all_closed()


def test_two_tasks_wait_for_one_process(run, procs, spy):
    p = _start(procs)
    ap = AsyncPipe(p)

    def main(task=None):
        spy.tell = task
        ws = [pycos.Task(_waiter, ap) for _ in range(2)]
        for _ in ws:
            assert (yield task.receive(10)) == "waiting"
        yield ap.write(b"7\n", full=True)
        ap.stdin.close()
        got = []
        for w in ws:
            got.append((yield w.finish()))
        return got

    assert run(main) == [7, 7]
    assert len(spy.fds) == 2 and spy.all_closed()


def test_timeout_then_wait_again(run, procs, spy):
    p = _start(procs)
    ap = AsyncPipe(p)

    def main(task=None):
        try:
            yield ap.wait(0.05)
        except subprocess.TimeoutExpired as exc:
            timed_out = (exc.timeout, exc.cmd, p.poll())
        assert spy.all_closed()             # the timed-out wait's pidfd is gone
        spy.tell = pycos.Task(signaller)
        return timed_out, (yield ap.wait(30))

    def signaller(task=None):
        yield task.receive(10)
        yield ap.write(b"4\n", full=True)
        ap.stdin.close()

    assert run(main) == ((0.05, EXIT_WITH, None), 4)
    assert len(spy.fds) == 2 and spy.all_closed()


def test_terminated_waiter_closes_its_pidfd(run, procs, spy):
    p = _start(procs)
    ap = AsyncPipe(p)

    def waiter(task=None):
        yield ap.wait()
        return "not reached"

    def main(task=None):
        spy.tell = task
        w = pycos.Task(waiter)
        yield task.receive(10)
        w.terminate()
        yield w.finish()
        closed = spy.all_closed()
        ap.stdin.close()
        return closed, p.poll() is None or p.returncode, (yield ap.wait())

    assert run(main) == (True, True, 0)


def test_the_ctypes_system_call_opens_a_pidfd(run, procs, monkeypatch):
    """The path PyPy 3.9 takes (it has no os.pidfd_open): the system call
    itself, through ctypes."""
    if not sys.platform.startswith("linux") or iofile.platform.machine() not in \
            iofile._COMMON_NUMBERS:
        pytest.skip("pidfd_open's number is not known here")
    p = _start(procs)
    fd = iofile._pidfd_syscall(p.pid)
    try:
        assert "pidfd" in os.readlink("/proc/self/fd/%d" % fd)
    finally:
        os.close(fd)
    spy = PidfdSpy(iofile._pidfd_syscall)
    monkeypatch.setattr(iofile, "_pidfd_open", spy)
    ap = AsyncPipe(p)

    def signaller(task=None):
        yield task.receive(10)
        yield ap.write(b"9\n", full=True)
        ap.stdin.close()

    def waiter(task=None):
        spy.tell = pycos.Task(signaller)
        got = yield ap.wait()
        yield spy.tell.finish()
        return got

    assert run(waiter) == 9
    assert len(spy.fds) == 1 and spy.all_closed()
    with pytest.raises(OSError) as info:
        iofile._pidfd_syscall(2 ** 22 + 12345)      # above pid_max: no such process
    assert info.value.errno in (errno.ESRCH, errno.EINVAL)


def test_a_kernel_refusing_pidfds_falls_back_for_good(run, procs, monkeypatch):
    calls = []

    def refuse(pid):
        calls.append(pid)
        raise OSError(errno.ENOSYS, "no pidfd_open here")
    monkeypatch.setattr(iofile, "_pidfd_open", refuse)
    p = _start(procs)
    ap = AsyncPipe(p)

    def main(task=None):
        w = pycos.Task(_waiter, ap)
        yield _wait_reaper_started(task)
        ap.stdin.close()
        return (yield w.finish())

    assert run(main) == 0
    assert calls == [p.pid] and iofile._pidfd_open is None
    _join_reapers()


# ---------------------------------------------------------------- reaper thread


@pytest.mark.parametrize("status", [0, 5])
def test_exit_status_through_the_reaper_thread(run, procs, no_pidfd, status):
    p = _start(procs)
    ap = AsyncPipe(p)

    def main(task=None):
        w = pycos.Task(_waiter, ap)
        yield _wait_reaper_started(task)
        yield ap.write(b"%d\n" % status, full=True)
        ap.stdin.close()
        return (yield w.finish())

    assert run(main) == status
    _join_reapers()


def test_reaper_one_thread_for_two_waiters_and_a_signal(run, procs, no_pidfd):
    p = _start(procs)
    ap = AsyncPipe(p)

    def main(task=None):
        ws = [pycos.Task(_waiter, ap) for _ in range(2)]
        yield _wait_reaper_started(task)
        while len(iofile._Reaper._all.get(id(p)).waiters) < 2:
            yield task.sleep(0.001)
        threads = len(_reapers())
        p.terminate()
        got = []
        for w in ws:
            got.append((yield w.finish()))
        return threads, got

    assert run(main) == (1, [TERMINATED] * 2)
    ap.close()
    _join_reapers()


def test_reaper_timeout_keeps_the_thread_for_the_next_wait(run, procs, no_pidfd):
    p = _start(procs)
    ap = AsyncPipe(p)

    def main(task=None):
        try:
            yield ap.wait(0.05)
        except subprocess.TimeoutExpired as exc:
            first = exc.timeout
        reaper = iofile._Reaper._all[id(p)]
        assert not reaper.waiters and reaper.thread.is_alive()
        w = pycos.Task(_waiter, ap, 30)
        while not reaper.waiters:
            yield task.sleep(0.001)
        assert iofile._Reaper._all[id(p)] is reaper      # the same thread
        yield ap.write(b"6\n", full=True)
        ap.stdin.close()
        return first, (yield w.finish())

    assert run(main) == (0.05, 6)
    _join_reapers()
    assert not iofile._Reaper._all
    assert Pycos().statistics()["external"] == 0


def test_reaper_terminated_waiter(run, procs, no_pidfd):
    p = _start(procs)
    ap = AsyncPipe(p)

    def main(task=None):
        w = pycos.Task(_waiter, ap)
        yield _wait_reaper_started(task)
        w.terminate()
        yield w.finish()
        left = len(iofile._Reaper._all[id(p)].waiters)
        ap.stdin.close()
        return left, (yield ap.wait())

    assert run(main) == (0, 0)
    _join_reapers()
    assert Pycos().statistics()["external"] == 0


# ---------------------------------------------------------------- either path


def test_an_exited_process_gives_its_status_at_once(run, procs):
    p = subprocess.Popen([sys.executable, "-c", "raise SystemExit(2)"])
    procs.append(p)
    p.wait(10)
    ap = AsyncPipe(p)

    def main(task=None):
        inline = ap.wait()                  # a plain value, no wait
        return inline, (yield ap.wait()), (yield ap.wait(0))

    assert run(main) == (2, 2, 2)


def test_timeout_zero_on_a_running_process(run, procs):
    p = _start(procs)
    ap = AsyncPipe(p)

    def main(task=None):
        with pytest.raises(subprocess.TimeoutExpired):
            yield ap.wait(0)
        ap.stdin.close()
        return (yield ap.wait())

    assert run(main) == 0


def test_bad_timeouts(run, procs):
    p = _start(procs)
    ap = AsyncPipe(p)

    def main(task=None):
        for bad, exc in (("1", TypeError), (True, TypeError), (math.nan, ValueError)):
            with pytest.raises(exc):
                ap.wait(bad)
            yield
        return "ok"

    assert run(main) == "ok"
    with pytest.raises(TypeError):
        ap.wait("1")
    ap.stdin.close()
    assert ap.wait(30) == 0


def test_from_a_plain_thread_it_is_popen_wait(procs):
    """4.x delegated wait() to the Popen: threads keep that."""
    p = _start(procs)
    ap = AsyncPipe(p)
    with pytest.raises(subprocess.TimeoutExpired):
        ap.wait(0.05)
    ap.stdin.close()
    assert ap.wait(30) == 0 and ap.returncode == 0


def test_on_the_scheduler_thread_outside_a_task_it_is_an_error(sched, procs):
    p = _start(procs)
    ap = AsyncPipe(p)
    with pytest.raises(RuntimeError, match="outside a task"):
        sched._call_sync(ap.wait)
    ap.stdin.close()
    assert ap.wait(30) == 0


def test_communicate_waits_through_the_same_machinery(run, procs, no_pidfd):
    p = Popen([sys.executable, "-c",
               "import sys; sys.stdout.write(sys.stdin.read().upper()); sys.exit(1)"],
              stdin=PIPE, stdout=PIPE)
    procs.append(p)

    def main(task=None):
        out, err = yield AsyncPipe(p).communicate(b"abc")
        return out, err, p.returncode

    assert run(main) == (b"ABC", None, 1)
    _join_reapers()


def test_reaping_the_first_of_a_chain_after_communicate(run, procs):
    """communicate() waits for the last process; an AsyncPipe of the first
    one, whose pipes communicate closed, waits for it."""
    first = Popen([sys.executable, "-c",
                   "import sys; sys.stdout.write(sys.stdin.read()); sys.exit(4)"],
                  stdin=PIPE, stdout=PIPE)
    procs.append(first)
    last = Popen([sys.executable, "-c", "import sys; print(len(sys.stdin.read()))"],
                 stdin=first.stdout, stdout=PIPE)
    procs.append(last)
    first.stdout.close()

    def main(task=None):
        out, _ = yield AsyncPipe(first, last).communicate(b"x" * 1000)
        head = AsyncPipe(first)
        assert (head.stdin, head.stdout, head.stderr) == (None, None, None)
        return out, last.returncode, (yield head.wait())

    out, status, first_status = run(main)
    assert (out.strip(), status, first_status) == (b"1000", 0, 4)   # (Windows: \\r\\n)
