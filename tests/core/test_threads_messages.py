"""Thread safety and message order.

Plain threads create tasks and call send/resume/throw/terminate/value; many
at once must lose nothing and keep each sender's order.  A hypothesis test
interleaves task senders (yielding at random points) and thread senders.
"""
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pycos
from pycos import Task


def _collector(n, task=None):
    got = []
    for _ in range(n):
        got.append((yield task.receive()))
    return got


def _check_order(got, senders, per_sender):
    by_sender = {}
    for s, i in got:
        by_sender.setdefault(s, []).append(i)
    assert sorted(by_sender) == sorted(senders)
    for s in senders:
        assert by_sender[s] == list(range(per_sender)), "sender %r out of order" % (s,)


@pytest.mark.timeout(120)
def test_many_threads_send_no_loss_per_sender_order(sched):
    nthreads, per = 16, 2000
    c = Task(_collector, nthreads * per)
    barrier = threading.Barrier(nthreads)

    def sender(k):
        barrier.wait()
        for i in range(per):
            assert c.send((k, i)) == 0

    threads = [threading.Thread(target=sender, args=(k,)) for k in range(nthreads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = c.value(60)
    assert len(got) == nthreads * per
    _check_order(got, range(nthreads), per)


def test_tasks_created_from_many_threads(sched):
    results = []
    lock = threading.Lock()

    def body(k, task=None):
        yield
        return k * k

    def creator(base):
        tasks = [Task(body, base + i) for i in range(200)]
        vals = [t.value(30) for t in tasks]
        with lock:
            results.extend(vals)

    threads = [threading.Thread(target=creator, args=(b * 1000,)) for b in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == sorted((b * 1000 + i) ** 2 for b in range(8) for i in range(200))
    assert sched.join(timeout=10)


def test_throw_and_terminate_from_threads(sched):
    started = threading.Barrier(2)

    def victim(task=None):
        started.wait()
        try:
            while True:
                yield task.sleep(0.01)
        except KeyError:
            return "thrown"

    v = Task(victim)
    started.wait()
    assert v.throw(KeyError("k")) == 0
    assert v.value(10) == "thrown"


# a plan: one entry per sender, ("task" or "thread", [pause after message i?])
PLANS = st.lists(st.tuples(st.sampled_from(["task", "thread"]),
                           st.lists(st.booleans(), min_size=1, max_size=30)),
                 min_size=1, max_size=6)


@settings(max_examples=40, deadline=None)
@given(plan=PLANS)
def test_message_order_random_interleavings(plan):
    check_interleaving(plan)


def check_interleaving(plan):
    # one scheduler per example; the autouse fixture checks the last one
    sched = pycos.Pycos()
    total = sum(len(p) for _, p in plan)
    c = Task(_collector, total)
    go = threading.Event()

    def task_sender(k, pattern, task=None):
        for i, pause in enumerate(pattern):
            c.send((k, i))
            if pause:
                yield
        yield

    def thread_sender(k, pattern):
        go.wait()
        for i, pause in enumerate(pattern):
            c.send((k, i))

    threads = []
    for k, (kind, pattern) in enumerate(plan):
        if kind == "task":
            Task(task_sender, k, pattern)
        else:
            th = threading.Thread(target=thread_sender, args=(k, pattern))
            th.start()
            threads.append(th)
    go.set()
    for th in threads:
        th.join()
    got = c.value(30)
    assert got is not None and len(got) == total
    by_sender = {}
    for s, i in got:
        by_sender.setdefault(s, []).append(i)
    for k, (_, pattern) in enumerate(plan):
        assert by_sender[k] == list(range(len(pattern)))
    assert sched.join(timeout=10)
    sched.finish()


def test_round_end_calls_run_once_per_key_before_the_scheduler_sleeps(sched):
    """Scheduler._at_round_end (netpycos writes a round's frames with it):
    asked for many times in a round, a key's call runs once, after the
    round's tasks stepped; asked for from a posted call, it still runs
    before the scheduler waits for events (nothing else would wake it)."""
    calls = []
    done = threading.Event()

    def hook(tag):
        calls.append(tag)

    def asker(task=None):
        for i in range(5):
            sched._at_round_end("k", lambda i=i: (hook(("task", i)), done.set()))
        calls.append("stepped")
        yield task.sleep(0)

    Task(asker)
    assert done.wait(10)
    assert calls == ["stepped", ("task", 4)]
    done.clear()
    del calls[:]

    def from_post():
        sched._at_round_end("p", lambda: (hook("posted"), done.set()))
    assert sched._post(from_post)
    assert done.wait(10)
    assert calls == ["posted"]
