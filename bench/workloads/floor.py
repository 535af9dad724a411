"""The floor of a task switch: a bare generator ``send()`` loop, no scheduler.

One round trip is one ``send()`` into a generator that yields the value
back: the least a generator-based framework can spend to pass a message to
another task and get an answer.  Only the ``switch`` workload exists here.
"""

import time

import common

perf = time.perf_counter


def _pong():
    msg = yield
    while True:
        msg = yield msg


def switch(n):
    pong = _pong()
    next(pong)
    send = pong.send
    t0 = perf()
    for i in range(n):
        send(i)
    dt = perf() - t0
    pong.close()
    common.emit(n=n, seconds=dt, round_trips_per_s=n / dt, us_per_round_trip=dt / n * 1e6)


if __name__ == "__main__":
    args = common.parse_args()
    if args.workload != "switch":
        common.unavailable("the generator floor only measures switch")
    switch(args.n)
