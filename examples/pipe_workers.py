"""Worker processes spoken to line by line through their pipes -- the same
program on Linux, the BSDs, macOS and Windows.

Each worker is a Python child that reads numbers, one per line, and answers
each with a line of its own.  One task per worker writes a request with
``yield pipe.write(...)``, reads the answer with ``yield pipe.readline()``,
and at the end closes the child's stdin and waits for it to exit with
``yield pipe.wait()`` -- all without blocking the scheduler, so the workers
are busy side by side.

The one difference between systems is where the pipes come from: Windows
can wait only on overlapped pipes, which ``pycos.asyncfile.Popen`` makes
(as in pycos 4.x); elsewhere ``subprocess.Popen``'s pipes are fine.

    python examples/pipe_workers.py [--workers 3] [--jobs 12]

Prints each answer, then ``N of N answers correct`` (exit status 0), or
what went wrong (exit status 1).
"""
import argparse
import subprocess
import sys

import pycos
from pycos.asyncfile import AsyncPipe

# Windows' pipes that pycos can wait on; POSIX pipes all can be
if sys.platform == "win32":
    from pycos.asyncfile import Popen
else:
    from subprocess import Popen

#: the child: "n" in, "n*n pid" out, flushed at once (it talks to us)
WORKER = r"""
import os, sys
for line in sys.stdin:
    n = int(line)
    sys.stdout.write("%d %d\n" % (n * n, os.getpid()))
    sys.stdout.flush()
"""


def worker(index, numbers, task=None):
    """Ask one child for the squares of ``numbers``; returns how many
    answers were right."""
    proc = Popen([sys.executable, "-c", WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    pipe = AsyncPipe(proc)
    right = 0
    try:
        for n in numbers:
            yield pipe.write(b"%d\n" % n, full=True)
            line = yield pipe.readline(timeout=30)
            square, pid = line.split()
            ok = int(square) == n * n and int(pid) == proc.pid
            right += ok
            print("worker %d (pid %s): %d squared is %s%s"
                  % (index, pid.decode(), n, square.decode(), "" if ok else "  WRONG"),
                  flush=True)
        stdin = pipe.stdin              # (there: stdin=PIPE above)
        assert stdin is not None
        stdin.close()                   # end of input: the child's loop ends
        status = yield pipe.wait(timeout=30)
        if status != 0:
            raise RuntimeError("worker %d exited with %s" % (index, status))
    finally:
        pipe.close()
    return right


def main_task(workers, jobs, task=None):
    numbers = list(range(1, jobs + 1))
    tasks = [pycos.Task(worker, i + 1, numbers[i::workers]) for i in range(workers)]
    right = 0
    for t in tasks:
        r = yield t.finish()
        if isinstance(r, pycos.MonitorStatus):          # the task raised (logged)
            return right, False
        right += r
    return right, True


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=12)
    args = ap.parse_args()
    if args.workers < 1 or args.jobs < 1:
        ap.error("--workers and --jobs must be at least 1")
    right, finished = pycos.Task(main_task, args.workers, args.jobs).value()
    pycos.Pycos().finish()
    print("%d of %d answers correct" % (right, args.jobs))
    sys.exit(0 if finished and right == args.jobs else 1)


if __name__ == "__main__":
    main()
