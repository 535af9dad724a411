"""The scheduler's own thread leaves SIGINT and SIGTERM to the host program:
they must reach the main thread (which may be waiting in task.value())."""
import os
import signal
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(os.name == "nt", reason="POSIX signals (Windows has none: "
                                "Ctrl-C there is a console event, not SIGINT to a thread)")


def _blocked(native_id):
    with open("/proc/self/task/%d/status" % native_id) as f:
        for line in f:
            if line.startswith("SigBlk:"):
                return int(line.split()[1], 16)
    raise AssertionError("no SigBlk line")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux /proc")
def test_scheduler_thread_blocks_host_signals(sched):
    thread = sched._thread
    mask = _blocked(thread.native_id)
    for sig in (signal.SIGINT, signal.SIGTERM):
        assert mask & (1 << (sig - 1)), "scheduler thread takes %s" % sig.name
    main = _blocked(__import__("threading").main_thread().native_id)
    assert not main & (1 << (signal.SIGINT - 1))


def test_ctrl_c_interrupts_a_waiting_main_thread():
    code = textwrap.dedent("""
        import os, signal, threading, pycos
        # Python's own Ctrl-C handler, even when started with SIGINT ignored
        # (a background job of a non-interactive shell is)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        def sleeper(task=None):
            yield task.sleep(60)
        t = pycos.Task(sleeper)
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()
        try:
            t.value()
        except KeyboardInterrupt:
            print("interrupted")
            t.terminate()
    """)
    proc = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=30, universal_newlines=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "interrupted"
