"""Virtual time: long sleeps and timeouts take simulated time only."""
import time

from pycos import Pycos, Semaphore, Task


def test_hours_of_simulated_time_in_well_under_a_second(vrun):
    def sleeper(hours, task=None):
        t0 = task._sched.now()
        for _ in range(60):
            yield task.sleep(hours * 60)       # 60 x hours minutes
        return task._sched.now() - t0

    def main(task=None):
        ts = [Task(sleeper, h) for h in (1, 2, 3)]
        out = []
        for t in ts:
            out.append((yield t.finish()))
        return out

    start = time.monotonic()
    out = vrun(main)
    assert time.monotonic() - start < 1.0
    assert [round(x) for x in out] == [3600, 7200, 10800]


def test_timeouts_fire_in_deadline_order(vrun):
    order = []

    def waiter(sem, timeout, task=None):
        ok = yield sem.acquire(timeout=timeout)
        order.append((timeout, ok, round(task._sched.now())))

    def main(task=None):
        sem = Semaphore(0)
        ws = [Task(waiter, sem, t) for t in (300, 100, 200, 100)]
        for w in ws:
            yield w.finish()
        return order

    assert vrun(main) == [(100, False, 100), (100, False, 100), (200, False, 200),
                          (300, False, 300)]


def test_clock_does_not_jump_while_thread_pool_works(vsched):
    import threading
    from pycos import AsyncThreadPool
    pool = AsyncThreadPool(1)
    gate = threading.Event()

    def slow():
        gate.wait(10)
        return "done"

    def timer(task=None):
        return (yield task.sleep(1000, alarm_value="alarm"))

    def main(task=None):
        t = Task(timer)
        r = yield pool.async_task(slow)
        return r, t.is_alive()

    m = Task(main)
    # while the pool works, virtual time stands still: the 1000 s timer waits
    assert m.value(0.2) is None
    gate.set()
    assert m.value(10) == ("done", True)
    pool.terminate()
    assert vsched.join(timeout=10)


def test_virtual_flag(vsched):
    assert vsched.virtual_time and not Pycos().embedded
