"""Hot swapping: replace the code of a running task without losing its messages.

A worker task adds up the numbers sent to it.  While it runs, the main task
asks it to switch to a new version of its generator function with
``worker.hot_swap(new_function, *args)``.  What the example shows:

* a task opts in with ``task.hot_swappable(True)``;
* the swap arrives as ``HotSwapException`` at the task's ``yield``; letting
  it propagate accepts it (the old generator is closed, the new one starts,
  the task keeps its identity and its queued messages);
* a swap asked for while the task is inside a sub-call (a generator it
  yielded) waits until the task is back at its top level;
* catching the exception and carrying on refuses the swap.

State that must survive the swap lives outside the generator (here a
``pycos.Struct`` passed to each version).

Run it with no arguments; it takes a fraction of a second:

    python examples/hot_swap.py
"""
import pycos


def slow_add(state, n, notify, task=None):
    """A sub-call: tell ``notify`` we are inside, wait a little, add ``n``."""
    notify.send("in sub-call")
    yield task.sleep(0.1)
    state.total += n
    print("  [sub-call] added %d slowly" % n)


def worker_v1(state, task=None):
    task.hot_swappable(True)
    print("v1: started as %s" % task)
    while True:
        msg = yield task.receive()          # HotSwapException can arrive here...
        if isinstance(msg, tuple) and msg[0] == "slow":
            yield slow_add(state, msg[1], msg[2], task=task)   # ...or here, after the sub-call
        elif isinstance(msg, int):
            state.total += msg
            print("v1: added %d, total %d" % (msg, state.total))
    # v1 never catches HotSwapException, so every swap is accepted


def worker_v2(state, task=None):
    task.hot_swappable(True)
    print("v2: started as %s, total so far %d" % (task, state.total))
    while True:
        try:
            msg = yield task.receive()
        except pycos.HotSwapException as exc:
            new_gen = exc.args[0]
            print("v2: refusing hot swap to %s" % new_gen.__name__)
            new_gen.close()
            continue                        # caught and carried on: refused
        if isinstance(msg, int):
            state.total += 2 * msg          # v2 counts double
            print("v2: added 2 x %d, total %d" % (msg, state.total))
        elif msg[0] == "stop":
            msg[1].send(state.total)
            return state.total


def worker_v3(state, task=None):
    print("v3: this never runs")
    yield task.sleep(0)


def main(task=None):
    state = pycos.Struct(total=0)
    worker = pycos.Task(worker_v1, state)
    worker.send(1)
    worker.send(2)

    # Put the worker in a sub-call, then ask for the swap: it is deferred.
    worker.send(("slow", 3, task))
    yield task.receive()                    # "in sub-call"
    rc = worker.hot_swap(worker_v2, state)
    print("main: hot_swap to worker_v2 asked while the worker is in a sub-call (rc %d)" % rc)
    worker.send(10)                         # these wait in the queue and
    worker.send(20)                         # are handled by v2

    # wait until the swap has happened (the task's name follows its function)
    while worker.name != "worker_v2":
        yield task.sleep(0.01)
    # v2 refuses the next swap and keeps going
    print("main: the worker is now called %s" % worker.name)
    worker.hot_swap(worker_v3, state)
    worker.send(100)
    worker.send(("stop", task))
    reply = yield task.receive(timeout=5, alarm_value="no reply")
    result = yield worker.finish()
    print("main: worker %s finished with total %r (reply %r)" % (worker, result, reply))
    return result


if __name__ == "__main__":
    total = pycos.Task(main).value()
    expected = 1 + 2 + 3 + 2 * (10 + 20 + 100)
    if total != expected:
        raise SystemExit("total %r, expected %d" % (total, expected))
