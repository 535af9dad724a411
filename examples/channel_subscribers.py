"""Publish/subscribe with a Channel: several subscribers, a filtering
transform on a child channel, and a subscriber that leaves early.

    prices ----> recorder          (every tick)
           ----> quitter           (three ticks, then unsubscribes)
           ----> big-moves ------> alerter   (only ticks that moved > 2 %,
                 (transform)                  reworded by the transform)

A publisher task waits with ``deliver(..., n=3)`` until all three direct
subscribers are in, then sends price ticks.  Subscribers are ordinary tasks
reading their message queue with ``yield task.receive()``.  The child
channel's transform gets ``(channel_name, message)`` and returns the message
to pass on, or None to drop it.

Run it with no arguments; it takes about half a second:

    python examples/channel_subscribers.py
"""
import random

import pycos

END = "end of day"


def big_moves_only(channel_name, msg):
    """Transform of the child channel: keep ticks that moved more than 2 %."""
    if msg == END:
        return msg
    symbol, old, new = msg
    change = 100.0 * (new - old) / old
    if abs(change) <= 2.0:
        return None                    # dropped: alerter never sees it
    return "%s: %s %+.1f%% to %.2f" % (channel_name, symbol, change, new)


def recorder(prices, task=None):
    yield prices.subscribe(task)
    count = 0
    while True:
        msg = yield task.receive()
        if msg == END:
            break
        count += 1
    print("recorder: recorded %d ticks" % count)
    return count


def quitter(prices, task=None):
    yield prices.subscribe(task)
    seen = []
    for _ in range(3):
        seen.append((yield task.receive()))
    yield prices.unsubscribe(task)
    print("quitter: saw %s, then unsubscribed" % [m[0] for m in seen])
    late = yield task.receive(timeout=0.3, alarm_value="nothing")
    print("quitter: after unsubscribing it received: %s" % (late,))
    return len(seen)


def alerter(big, task=None):
    yield big.subscribe(task)
    alerts = 0
    while True:
        msg = yield task.receive()
        if msg == END:
            break
        alerts += 1
        print("alerter: %s" % msg)
    print("alerter: %d alerts" % alerts)
    return alerts


def publisher(prices, ticks, task=None):
    rng = random.Random(7)
    last = {"ACME": 100.0, "INITECH": 50.0}
    sent = 0
    for i in range(ticks):
        symbol = rng.choice(sorted(last))
        new = round(last[symbol] * rng.uniform(0.96, 1.04), 2)
        msg = (symbol, last[symbol], new)
        last[symbol] = new
        if i == 0:
            # wait until the channel has 3 subscribers; returns how many
            # end tasks the message reached (the alerter only if it passed)
            reached = yield prices.deliver(msg, timeout=5, n=3)
            print("publisher: first tick reached %d subscriber task(s)" % reached)
        else:
            prices.send(msg)
        sent += 1
        yield task.sleep(0.01)
    prices.send(END)
    return sent


def main(task=None):
    prices = pycos.Channel("prices")
    big = pycos.Channel("big-moves", transform=big_moves_only)
    yield prices.subscribe(big)        # a channel can subscribe to a channel
    subscribers = [pycos.Task(recorder, prices), pycos.Task(quitter, prices),
                   pycos.Task(alerter, big)]
    pub = pycos.Task(publisher, prices, 30)
    sent = yield pub.finish()
    results = []
    for s in subscribers:
        results.append((yield s.finish()))
    prices.close()
    big.close()
    print("main: published %d ticks; recorder got %d, quitter %d, alerter %d"
          % (sent, results[0], results[1], results[2]))
    return sent == results[0] and results[1] == 3


if __name__ == "__main__":
    if not pycos.Task(main).value():
        raise SystemExit("subscribers did not get what was published")
