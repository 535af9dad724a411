"""Ctrl-C stops a pycos program: a real SIGINT to a child process.

The first Ctrl-C ends the program with a non-zero status (killed by SIGINT,
as Python itself ends on an uncaught KeyboardInterrupt), after every task
got KeyboardInterrupt at its yield and then was closed, so that all their
``finally`` blocks ran -- whether the main thread was waiting in
``task.value()`` or the script had ended and the interpreter's exit was
waiting for the tasks.  A program that catches KeyboardInterrupt decides
itself (docs/tasks.md shows the pattern).
"""
import os
import signal
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.timeout(60),
              pytest.mark.skipif(not hasattr(signal, "SIGINT") or os.name != "posix",
                                 reason="POSIX signals")]

PROG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "progs", "ctrl_c_prog.py")
FINALLY = ["finally: sleeper", "finally: sub-call", "finally: caller",
           "saved on KeyboardInterrupt", "finally: daemon"]


def _default_sigint():
    # a test runner started in the background may pass SIGINT on as
    # ignored, and Python then never installs its KeyboardInterrupt handler
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt(mode):
    """Run the program, SIGINT it once every task waits; (status, stdout
    lines, stderr)."""
    proc = subprocess.Popen([sys.executable, PROG, mode], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, universal_newlines=True,
                            preexec_fn=_default_sigint)
    try:
        line = proc.stdout.readline()
        assert line == "ready\n", (line, proc.stderr.read() if proc.poll() is not None else "")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, out.splitlines(), err


def _killed_by_sigint(status):
    return status in (-signal.SIGINT, 128 + signal.SIGINT)


@pytest.mark.parametrize("mode", ["value", "exit"])
def test_first_ctrl_c_stops_the_program_and_runs_every_finally(mode):
    status, out, err = _interrupt(mode)
    report = "status %s\n--- stdout\n%s\n--- stderr\n%s" % (status, "\n".join(out), err)
    assert status != 0 and _killed_by_sigint(status), report
    assert sorted(out) == sorted(FINALLY), report
    # the sub-call's finally runs before its caller's
    assert out.index("finally: sub-call") < out.index("finally: caller"), report
    # no task's KeyboardInterrupt is logged as a failure, nothing internal broke
    assert "uncaught exception" not in err and "internal error" not in err, report
    if mode == "value":     # Python's own report of the interrupted main program
        assert err.count("KeyboardInterrupt") == 1 and "Traceback" in err, report
    else:
        assert "Traceback" not in err, report


def test_a_program_that_catches_ctrl_c_decides():
    status, out, err = _interrupt("catch")
    report = "status %s\n--- stdout\n%s\n--- stderr\n%s" % (status, "\n".join(out), err)
    assert status == 3, report
    assert out[0] == "caught KeyboardInterrupt", report
    # terminate() closed the tasks: finally blocks ran, no KeyboardInterrupt in them
    assert sorted(out[1:]) == sorted(set(FINALLY) - {"saved on KeyboardInterrupt"}), report
    assert "Traceback" not in err, report
