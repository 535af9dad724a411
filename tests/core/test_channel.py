"""Channel: subscribe/unsubscribe, transforms, hierarchies, deliver(n),
close, names; CategorizeMessages."""
import threading

import pytest

from pycos import CategorizeMessages, Channel, Task


def _sub(channel, n, task=None):
    """Subscribe, receive n messages, unsubscribe, return them."""
    assert (yield channel.subscribe(task)) == 0
    got = []
    for _ in range(n):
        got.append((yield task.receive()))
    assert (yield channel.unsubscribe(task)) == 0
    return got


def test_send_to_all_subscribers_in_order(run):
    def main(task=None):
        ch = Channel("news")
        subs = [Task(_sub, ch, 3) for _ in range(3)]
        yield
        for m in ("a", "b", "c"):
            assert ch.send(m) == 0
        out = []
        for s in subs:
            out.append((yield s.finish()))
        ch.close()
        return out

    assert run(main) == [["a", "b", "c"]] * 3


def test_transform_filters_and_rewrites(run):
    def upper_no_x(name, msg):
        assert name == "t"
        return None if msg == "x" else msg.upper()

    def main(task=None):
        ch = Channel("t", transform=upper_no_x)
        s = Task(_sub, ch, 2)
        yield
        for m in ("a", "x", "b"):
            ch.send(m)
        r = yield s.finish()
        assert ch.set_transform(lambda only_one: 1) == -1
        assert ch.set_transform(None) == 0
        ch.close()
        return r

    assert run(main) == ["A", "B"]


def test_bad_transform_and_name(sched):
    with pytest.raises(TypeError):
        Channel("c", transform=lambda a: a)
    with pytest.raises(TypeError):
        Channel("c", transform=42)
    with pytest.raises(TypeError):
        Channel("")


def test_transform_exception_drops_message(run):
    def bad(name, msg):
        if msg == "boom":
            raise ValueError(msg)
        return msg

    def main(task=None):
        ch = Channel("b", transform=bad)
        s = Task(_sub, ch, 1)
        yield
        ch.send("boom")
        ch.send("ok")
        r = yield s.finish()
        ch.close()
        return r

    assert run(main) == ["ok"]


def test_hierarchy_and_cycles(run):
    def main(task=None):
        top = Channel("top")
        mid = Channel("mid", transform=lambda n, m: "%s/%s" % (n, m))
        leaf = Channel("leaf")
        assert (yield top.subscribe(mid)) == 0
        assert (yield mid.subscribe(leaf)) == 0
        assert (yield leaf.subscribe(top)) == -1       # cycle refused
        assert (yield top.subscribe(top)) == -1
        assert (yield top.subscribe("nope")) == -1
        a = Task(_sub, top, 2)
        b = Task(_sub, mid, 2)
        c = Task(_sub, leaf, 2)
        yield
        n = yield top.deliver("m1")
        top.send("m2")
        out = []
        for t in (a, b, c):
            out.append((yield t.finish()))
        for ch in (top, mid, leaf):
            ch.close()
        return n, out

    n, out = run(main)
    assert n == 3
    assert out == [["m1", "m2"], ["mid/m1", "mid/m2"], ["mid/m1", "mid/m2"]]


def test_deliver_waits_for_n_subscribers(vrun):
    def late(ch, delay, task=None):
        yield task.sleep(delay)
        yield ch.subscribe(task)
        return (yield task.receive())

    def main(task=None):
        ch = Channel("d")
        assert (yield ch.deliver("early", timeout=1, n=1)) == 0   # nobody yet
        subs = [Task(late, ch, d) for d in (2, 4)]
        t0 = task._sched.now()
        n = yield ch.deliver("hello", timeout=10, n=2)
        waited = task._sched.now() - t0
        got = []
        for s in subs:
            got.append((yield s.finish()))
        assert (yield ch.deliver("x", n=-1)) == -1
        ch.close()
        assert ch.send("after close") == -1
        assert (yield ch.deliver("after close")) == -1
        return n, got, waited

    n, got, waited = vrun(main)
    assert n == 2 and got == ["hello", "hello"] and 4 <= waited < 4.01


def test_dead_subscriber_dropped_and_register_locate(run):
    def quick(ch, task=None):
        yield ch.subscribe(task)

    def main(task=None):
        ch = Channel("reg")
        assert ch.register() == 0
        assert (yield Channel.locate("reg")) is ch
        assert (yield Channel.locate("none")) is None
        q = Task(quick, ch)
        yield q.finish()
        assert ch.statistics()["subscribers"] == 1
        assert (yield ch.deliver("m")) == 0
        assert ch.statistics()["subscribers"] == 0
        assert (yield ch.unsubscribe(q)) == -1
        ch.close()
        assert (yield Channel.locate("reg")) is None
        return ch.name, repr(ch)

    assert run(main) == ("reg", "reg")


def test_send_from_threads_keeps_order(sched):
    ch = Channel("threads")
    ready = threading.Event()

    def receiver(n, task=None):
        yield ch.subscribe(task)
        ready.set()
        got = []
        for _ in range(n):
            got.append((yield task.receive()))
        yield ch.unsubscribe(task)
        return got

    r = Task(receiver, 400)
    assert ready.wait(5)

    def sender(k):
        for i in range(100):
            ch.send((k, i))

    ths = [threading.Thread(target=sender, args=(k,)) for k in range(4)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    got = r.value(10)
    for k in range(4):
        assert [i for s, i in got if s == k] == list(range(100))
    ch.close()


def test_categorize_messages(vrun):
    def main(task=None):
        cm = CategorizeMessages(task)
        cm.add(lambda m: "reply" if isinstance(m, tuple) and m[0] == "reply" else None)
        cm.add(lambda m: "num" if isinstance(m, int) else None)
        for m in (1, "plain", ("reply", 1), 2, ("reply", 2), "plain2"):
            task.send(m)
        r1 = yield cm.receive("reply")
        n1 = yield cm.receive("num")
        p1 = yield cm.receive()
        r2 = yield cm.receive("reply")
        n2 = yield cm.receive("num")
        p2 = yield cm.receive()
        t0 = task._sched.now()
        none = yield cm.receive("reply", timeout=3, alarm_value="late")
        waited = task._sched.now() - t0
        with pytest.raises(TypeError):
            cm.add(lambda a, b: 1)
        assert cm.remove(len) == -1
        return [r1, n1, p1, r2, n2, p2, none], waited

    got, waited = vrun(main)
    assert got == [("reply", 1), 1, "plain", ("reply", 2), 2, "plain2", "late"]
    assert 3 <= waited < 3.01
