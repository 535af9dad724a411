"""Run by embed.c: tasks on an embedded scheduler, one woken from a thread."""
import threading

import pycos

sched = pycos.Pycos(embedded=True)
results = []


def sleeper(n, task=None):
    yield task.sleep(0.01 * n)
    results.append("slept %d" % n)
    return n


def waiter(task=None):
    msg = yield task.receive(timeout=10, alarm_value="timed out")
    results.append("got %s" % msg)


def main(task=None):
    ts = [pycos.Task(sleeper, n) for n in (3, 1, 2)]
    w = pycos.Task(waiter)
    total = 0
    for t in ts:
        total += yield t.finish()
    results.append("total %d" % total)
    # Now the only timer is the waiter's 10 s timeout.  A plain thread sends
    # the message: unless the host is woken through fileno() (or run_once's
    # wait), the waiter reports "timed out" after 10 s.
    threading.Thread(target=w.send, args=("from a thread",)).start()
    yield w.finish()


pycos.Task(main)


def finished():
    return sched.statistics()["non_daemon"] == 0


def report():
    return "\n".join(results)
