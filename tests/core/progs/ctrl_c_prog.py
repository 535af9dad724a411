"""A program interrupted by Ctrl-C in tests/core/test_ctrl_c.py.

``python ctrl_c_prog.py MODE``: starts tasks that wait for a long time and
print a line from their ``finally`` (or ``except KeyboardInterrupt``) blocks,
prints ``ready`` once every task waits, then

* ``value``: waits in ``task.value()`` (Ctrl-C reaches the main thread there);
* ``exit``: ends the script, so the interpreter's exit waits for the tasks;
* ``catch``: waits in ``task.value()`` and catches KeyboardInterrupt, the
  documented pattern: it terminates the scheduler itself and exits with 3.

The test sends SIGINT after ``ready``.
"""
import sys

import pycos

MODE = sys.argv[1]
READY = []


def ready():
    READY.append(1)
    if len(READY) == 4:
        print("ready", flush=True)


def sleeper(task=None):
    try:
        ready()
        yield task.sleep(60)
    finally:
        print("finally: sleeper", flush=True)


def deep(task):
    try:
        ready()                         # (the caller is in its try block too)
        yield task.sleep(60)
    finally:
        print("finally: sub-call", flush=True)


def caller(task=None):
    try:
        yield deep(task)
    finally:
        print("finally: caller", flush=True)


def saver(task=None):
    try:
        ready()
        yield task.receive()
    except KeyboardInterrupt:
        yield task.sleep(0.01)          # cleanup that still waits
        print("saved on KeyboardInterrupt", flush=True)
        raise


def daemon(task=None):
    task.set_daemon()
    try:
        ready()
        yield task.sleep(60)
    finally:
        print("finally: daemon", flush=True)


t = pycos.Task(sleeper)
for fn in (caller, saver, daemon):
    pycos.Task(fn)

if MODE == "value":
    t.value()
elif MODE == "catch":
    try:
        t.value()
    except KeyboardInterrupt:
        print("caught KeyboardInterrupt", flush=True)
        pycos.Pycos().terminate()
        sys.exit(3)
elif MODE != "exit":
    raise SystemExit("unknown mode %r" % MODE)
