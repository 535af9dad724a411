"""Ten thousand tasks, each sleeping a random time: cheap tasks and timers.

Every task asks to sleep a random 0-1 s, measures how late it woke, and
returns that.  A coordinating task starts them all, waits for each with
``yield t.finish()``, and prints how many finished and how punctual the
timers were.  Nothing here uses threads or locks: a task only gives up the
CPU at a ``yield``.

Run it with no arguments (about one second); ``--tasks N`` and ``--max-sleep S``
change the load:

    python examples/sleepers.py
    python examples/sleepers.py --tasks 100000 --max-sleep 2
"""
import argparse
import random
import time

import pycos


def sleeper(delay, task=None):
    """Sleep ``delay`` seconds; return how much later than asked it woke."""
    start = time.monotonic()
    yield task.sleep(delay)
    return time.monotonic() - start - delay


def coordinator(count, max_sleep, task=None):
    rng = random.Random(2024)          # fixed seed: the same run every time
    started = time.monotonic()
    tasks = [pycos.Task(sleeper, rng.uniform(0, max_sleep)) for _ in range(count)]
    print("created %d tasks in %.3f s" % (count, time.monotonic() - started))

    late = []
    for t in tasks:
        late.append((yield t.finish()))     # the sleeper's return value
    elapsed = time.monotonic() - started

    late.sort()
    print("all %d tasks finished in %.3f s (longest sleep asked: %.3f s)"
          % (len(late), elapsed, max_sleep))
    print("wake-up lateness: median %.2f ms, 99th percentile %.2f ms, worst %.2f ms"
          % (1e3 * late[len(late) // 2], 1e3 * late[int(len(late) * 0.99)], 1e3 * late[-1]))
    early = [x for x in late if x < 0]
    print("tasks woken early: %d" % len(early))
    return len(late)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=10000)
    ap.add_argument("--max-sleep", type=float, default=1.0)
    args = ap.parse_args()

    done = pycos.Task(coordinator, args.tasks, args.max_sleep).value()
    pycos.Pycos().finish()
    if done != args.tasks:
        raise SystemExit("only %s of %d tasks finished" % (done, args.tasks))


if __name__ == "__main__":
    main()
