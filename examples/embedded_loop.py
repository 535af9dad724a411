"""Embedding: a host program's own poll() loop drives the pycos scheduler.

Programs that already own an event loop (a GUI toolkit, a game loop, a C
program embedding Python) cannot give pycos a thread of its own.  With
``Pycos(embedded=True)`` the scheduler starts no thread; the host

* puts ``sched.fileno()`` in its own poll set (readable when pycos has I/O
  or calls posted from other threads to handle),
* uses ``sched.next_deadline()`` as its poll timeout (0.0: work is ready,
  seconds: the next pycos timer, None: only the descriptor can bring work),
* and calls ``sched.run_once()`` after each wake-up.

Here the host also watches a descriptor of its own: a "device" thread writes
readings into a socket pair, and the host forwards each reading to a pycos
task with ``task.send``.  A second plain thread sends to the same task
directly (thread-safe; it makes ``fileno()`` readable).  A pycos heartbeat
task sleeps on timers.  The host counts what woke it each time.

The ``poll`` reactor backend has no pollable descriptor (``fileno()`` raises
OSError); the host then wakes at least every 10 ms to notice cross-thread
messages.  Run it with no arguments; it takes about a second:

    python examples/embedded_loop.py
    PYCOS_BACKEND=poll python examples/embedded_loop.py
"""
import select
import socket
import threading
import time

import pycos

READINGS = 10          # from the device, through the host loop
THREAD_MESSAGES = 5    # from a plain thread, straight to the task


def consumer(expected, task=None):
    """Receive every message; return (device readings, thread messages)."""
    device = threads = 0
    while device + threads < expected:
        msg = yield task.receive(timeout=5, alarm_value=None)
        if msg is None:
            raise RuntimeError("no message for 5 s")
        if msg.startswith("device"):
            device += 1
        else:
            threads += 1
    print("consumer: got %d device readings and %d thread messages" % (device, threads))
    return device, threads


def heartbeat(start, task=None):
    task.set_daemon()                  # does not keep finish() waiting
    sched = pycos.Pycos.instance()
    beats = 0
    while True:
        yield task.sleep(0.1)
        beats += 1
        print("heartbeat %d at t=%.2f s" % (beats, sched.now() - start))


def device(sock):
    """A plain thread standing in for hardware: a reading every 60 ms."""
    for i in range(READINGS):
        time.sleep(0.06)
        sock.sendall(b"device reading %d\n" % i)
    sock.close()


def chatter(target):
    """Another plain thread: Task.send is safe from any thread."""
    for i in range(THREAD_MESSAGES):
        time.sleep(0.1)
        target.send("thread message %d" % i)


def main():
    sched = pycos.Pycos(embedded=True)     # before any Task: no scheduler thread
    cons = pycos.Task(consumer, READINGS + THREAD_MESSAGES)
    pycos.Task(heartbeat, sched.now())

    host_end, device_end = socket.socketpair()
    poller = select.poll()
    poller.register(host_end, select.POLLIN)
    try:
        pycos_fd = sched.fileno()
        poller.register(pycos_fd, select.POLLIN)
        cap = None
        print("host: polling pycos descriptor %d (backend %s)" % (pycos_fd, sched.loop.backend))
    except OSError:
        pycos_fd = None
        cap = 0.01
        print("host: backend %s has no pollable descriptor; waking every 10 ms"
              % sched.loop.backend)

    threads = [threading.Thread(target=device, args=(device_end,)),
               threading.Thread(target=chatter, args=(cons,))]
    for t in threads:
        t.start()

    woken = {"pycos fd": 0, "device fd": 0, "timer/timeout": 0}
    pending = b""
    while cons.is_alive():
        timeout = sched.next_deadline()
        if cap is not None:
            timeout = cap if timeout is None else min(timeout, cap)
        events = poller.poll(None if timeout is None else timeout * 1000)
        if not events:
            woken["timer/timeout"] += 1
        for fd, _ in events:
            if fd == pycos_fd:
                woken["pycos fd"] += 1
            else:
                woken["device fd"] += 1
                data = host_end.recv(4096)
                if not data:                 # the device closed its end
                    poller.unregister(host_end)
                pending += data
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    cons.send(line.decode())  # we are the loop thread here
        sched.run_once(0)                     # run what is ready; never blocks

    for t in threads:
        t.join()
    host_end.close()
    device_readings, thread_messages = cons.value()
    print("host: woken by %s" % ", ".join("%s %d times" % kv for kv in woken.items()))
    sched.finish()                            # the daemon heartbeat is closed
    print("host: scheduler finished: %s" % (not sched.is_alive()))
    if (device_readings, thread_messages) != (READINGS, THREAD_MESSAGES):
        raise SystemExit("lost messages")


if __name__ == "__main__":
    main()
