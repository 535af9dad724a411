"""Remote tasks, channels and RPS between real processes on loopback.

Each test starts peer programs (tests/net/peerlib.py) in their own processes
and talks to them from this process's netpycos scheduler (the ``net``
fixture): ordered messages, deliver, locate with and without a location,
monitor (normal end, exception, a peer killed with -9), throw/terminate,
channels with remote subscribers, RPS calls and their results.
"""
import time

import pytest

import pycos
import pycos.netpycos as netpycos
from netutil import run

pytestmark = pytest.mark.timeout(60)

ECHO = """
from peerlib import *
sched = start()
def echo(task=None):
    task.register("echo")
    while True:
        msg = yield task.receive()
        if msg == "quit":
            return "bye"
        who, m = msg
        who.send(("echo", m))
pycos.Task(echo)
serve()
"""


def test_ordered_messages_and_deliver(net, spawn):
    p = spawn(ECHO, name="echo")
    loc = p.ready()

    def client(task=None):
        echo = yield pycos.Task.locate("echo", loc, timeout=10)
        assert isinstance(echo, pycos.Task) and echo.location == loc
        n = 5000
        for i in range(n):
            assert echo.send((task, i)) == 0
        for i in range(n):
            m = yield task.receive(timeout=10)
            assert m == ("echo", i)
        r = yield echo.deliver((task, "d"), timeout=10)
        assert r == 1
        m = yield task.receive(timeout=10)
        assert m == ("echo", "d")
        # a reference to a task that has ended: -1, not a hang
        assert (yield echo.deliver("quit", timeout=10)) == 1
        for _ in range(100):
            r = yield echo.deliver((task, "late"), timeout=10)
            if r == -1:
                break
            yield task.sleep(0.01)
        return r
    assert run(client) == -1


COLLECT = """
from peerlib import *
sched = start()
def collect(task=None):
    task.register("collect")
    seen, bad = {}, []
    while True:
        msg = yield task.receive()
        if msg[0] == "check":
            msg[1].send((seen, bad))
            continue
        src, i = msg[:2]
        if i != seen.get(src, 0):
            bad.append((src, i, seen.get(src, 0)))
        seen[src] = i + 1
pycos.Task(collect)
serve()
"""


def test_order_kept_across_writers(net, spawn):
    """Frames queued by a task (written at its round's end, or by the writer
    when a round queues many), by a plain thread (always the writer) and as
    deliver requests, interleaved: each sender's messages arrive complete
    and in order."""
    import random
    import threading
    p = spawn(COLLECT, name="collect")
    loc = p.ready()
    seed = random.randrange(1 << 30)
    rnd = random.Random(seed)
    bursts = [rnd.randint(1, 40) for _ in range(300)]
    big = b"x" * 300000

    def client(task=None):
        sink = yield pycos.Task.locate("collect", loc, timeout=10)
        # a small send buffer: the writer's sendall often has to wait for
        # room, the case where another thread must not write meanwhile
        import socket
        conn = net._node._peers[loc].conn
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        thread_done = threading.Event()

        def plain():
            for i in range(3000):
                assert sink.send(("thread", i)) == 0
            thread_done.set()
        th = threading.Thread(target=plain)
        th.start()
        i = d = 0
        for _ in range(20):
            # a frame that cannot go out at once, then single frames, each
            # in a round of its own: they must wait behind it
            assert sink.send(("task", i, big)) == 0
            i += 1
            for _ in range(4):
                yield task.sleep(0)
                assert sink.send(("task", i)) == 0
                i += 1
        for k, n in enumerate(bursts):
            for _ in range(n):
                assert sink.send(("task", i)) == 0
                i += 1
            if k % 10 == 0:
                assert (yield sink.deliver(("deliver", d), timeout=10)) == 1
                d += 1
            else:
                yield task.sleep(0)
        th.join()
        assert thread_done.is_set()
        sink.send(("check", task))
        seen, bad = yield task.receive(timeout=10)
        return seen, bad, i, d
    seen, bad, i, d = run(client)
    assert bad == [], "seed %d" % seed
    assert seen == {"task": i, "thread": 3000, "deliver": d}, "seed %d" % seed


def test_references_travel_and_come_home(net, spawn):
    """A local task sent to a peer and back is the same object again; a
    reference to a task carries name, id and location."""
    p = spawn("""
from peerlib import *
sched = start()
def bounce(task=None):
    task.register("bounce")
    while True:
        who, obj = yield task.receive()
        who.send(obj)
pycos.Task(bounce)
serve()
""")
    loc = p.ready()

    def client(task=None):
        b = yield pycos.Task.locate("bounce", loc, timeout=10)
        other = pycos.Task(idle)
        b.send((task, other))
        back = yield task.receive(timeout=10)
        assert back is other
        b.send((task, b))
        me = yield task.receive(timeout=10)
        assert me == b and me is not b and repr(me) == repr(b)
        other.terminate()
        return True

    def idle(task=None):
        yield task.receive()
    assert run(client)


def test_locate_without_location_waits_for_the_name(net, spawn):
    """locate() without a location is answered by the first peer that has the
    name -- even one registered after the question was asked."""
    p = spawn("""
from peerlib import *
sched = start()
def late(task=None):
    yield task.receive()
def trigger(task=None):
    task.register("trigger")
    yield task.receive()
    t = pycos.Task(late)
    t.register("late")
    say("REGISTERED")
pycos.Task(trigger)
serve()
""")
    loc = p.ready()

    def client(task=None):
        trigger = yield pycos.Task.locate("trigger", loc, timeout=10)
        # not there yet: a timeout, None
        assert (yield pycos.Task.locate("late", timeout=0.3)) is None
        finder = pycos.Task(find)
        yield task.sleep(0.1)
        trigger.send("go")
        found = yield finder.finish(timeout=10)
        assert isinstance(found, pycos.Task) and found.location == loc
        found.send("x")
        return True

    def find(task=None):
        t = yield pycos.Task.locate("late", timeout=10)
        return t
    assert run(client)
    p.expect("REGISTERED")


def test_monitor_remote_task(net, spawn):
    p = spawn("""
from peerlib import *
sched = start()
def worker(task=None):
    task.register("worker")
    msg = yield task.receive()
    if msg == "fail":
        raise ValueError("asked to fail")
    return msg * 2
def spawner(task=None):
    task.register("spawner")
    while True:
        who = yield task.receive()
        t = pycos.Task(worker2)
        who.send(t)
def worker2(task=None):
    msg = yield task.receive()
    if msg == "fail":
        raise ValueError("asked to fail")
    return msg * 2
pycos.Task(spawner)
serve()
""")
    loc = p.ready()

    def client(task=None):
        sp = yield pycos.Task.locate("spawner", loc, timeout=10)
        sp.send(task)
        w1 = yield task.receive(timeout=10)
        sp.send(task)
        w2 = yield task.receive(timeout=10)
        assert (yield task.monitor(w1)) == 0
        assert (yield task.monitor(w2)) == 0
        w1.send(21)
        st = yield task.receive(timeout=10)
        assert isinstance(st, pycos.MonitorStatus)
        assert st.info == w1 and st.type is StopIteration and st.value == 42
        w2.send("fail")
        st = yield task.receive(timeout=10)
        assert st.info == w2 and st.type is ValueError and "asked to fail" in st.value
        # both ends are known: nothing is left to report if the peer dies later
        assert not net._node._rmonitors.get(loc)
        # finish() of a remote task that has ended and is gone: None, no hang
        r = yield w1.finish(timeout=5)
        return r
    assert run(client) is None


def test_monitor_and_requests_end_when_peer_is_killed(net, spawn):
    """kill -9 a peer: monitors get a PeerOffline MonitorStatus, waiting
    delivers/finishes get their failure answer -- nothing waits forever."""
    p = spawn("""
from peerlib import *
sched = start()
def sleeper(task=None):
    task.register("sleeper")
    yield task.sleep(3600)
pycos.Task(sleeper)
serve()
""")
    loc = p.ready()

    def finisher(t, task=None):
        r = yield t.finish()
        return r

    def client(task=None):
        s = yield pycos.Task.locate("sleeper", loc, timeout=10)
        assert (yield task.monitor(s)) == 0
        f = pycos.Task(finisher, s)
        statuses = []
        net.peer_status(task)
        st = yield task.receive(timeout=5)
        assert isinstance(st, netpycos.PeerStatus) and st.status == netpycos.PeerStatus.Online
        start = time.monotonic()
        p.kill()
        while len(statuses) < 2:
            m = yield task.receive(timeout=15)
            assert m is not None, "no answer after kill -9"
            statuses.append(m)
        took = time.monotonic() - start
        kinds = {type(m) for m in statuses}
        assert kinds == {pycos.MonitorStatus, netpycos.PeerStatus}, statuses
        ms = [m for m in statuses if isinstance(m, pycos.MonitorStatus)][0]
        assert ms.info == s and ms.type is netpycos.PeerOffline
        ps = [m for m in statuses if isinstance(m, netpycos.PeerStatus)][0]
        assert ps.status == netpycos.PeerStatus.Offline and ps.location == loc
        assert (yield f.finish(timeout=5)) is None
        assert (yield s.deliver("x", timeout=5)) in (-1, 0)
        return took
    took = run(client, timeout=40)
    # PeerTimeout (2 s here) + PeerReconnectPeriod (2 s) at most, plus slack
    assert took < 8, took


def test_throw_terminate_resume(net, spawn):
    p = spawn("""
from peerlib import *
sched = start()
def target(task=None):
    task.register("target")
    try:
        yield task.sleep()
    except KeyError as e:
        say("CAUGHT", e.args[0])
    r = yield task.suspend()
    say("RESUMED", r)
    try:
        yield task.sleep()
    finally:
        say("TERMINATED")
pycos.Task(target)
serve()
""")
    loc = p.ready()

    def client(task=None):
        t = yield pycos.Task.locate("target", loc, timeout=10)
        assert t.throw(KeyError("k1")) == 0
        p.expect("CAUGHT k1")
        assert t.resume("hello") == 0
        p.expect("RESUMED hello")
        assert t.terminate() == 0
        p.expect("TERMINATED")
        return True
    assert run(client)


def test_rps_call_result_failure_and_monitor(net, spawn):
    p = spawn("""
from peerlib import *
sched = start()
def service(a, b=1, task=None):
    if b == 0:
        raise ZeroDivisionError("b is 0")
    yield task.sleep(0.01)
    return a / b
rps = pycos.RPS(service)
assert rps.register() == 0
serve()
""")
    loc = p.ready()

    def monitor(task=None):
        got = []
        while len(got) < 2:
            got.append((yield task.receive(timeout=10)))
        return got

    def client(task=None):
        rps = yield pycos.RPS.locate("service", loc, timeout=10)
        assert isinstance(rps, pycos.RPS) and rps.location == loc
        mon = pycos.Task(monitor)
        assert rps.monitor(mon) == 0
        t1 = yield rps(10, b=4)
        t2 = yield rps(1, b=0)
        assert isinstance(t1, pycos.Task) and t1.location == loc
        assert (yield t1.finish(timeout=10)) == 2.5
        st = yield t2.finish(timeout=10)
        assert isinstance(st, pycos.MonitorStatus) and st.type is ZeroDivisionError
        # finish long after the end still has the value
        yield task.sleep(0.05)
        assert (yield t1()) == 2.5
        got = yield mon.finish(timeout=10)
        assert {g.type for g in got} == {StopIteration, ZeroDivisionError}
        # an unknown name with a location: None
        assert (yield pycos.RPS.locate("nope", loc, timeout=5)) is None
        # bad arguments: the task cannot start, None
        assert (yield rps(1, 2, 3, 4)) is None
        return True
    assert run(client)


def test_reply_not_held_back_by_a_computing_task(net, spawn):
    """A reply queued on the owner's user thread leaves when the step that
    queued it ends, not when a busy round does: an RPS whose task computes
    for seconds (yielding sleep(0) between chunks) answers the call at once."""
    p = spawn("""
from peerlib import *
import time
sched = start()
def busy(seconds, task=None):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        chunk = time.monotonic() + 0.01      # 10 ms of work between yields:
        while time.monotonic() < chunk:      # fewer steps than a round has
            pass
        yield task.sleep(0)
    return "done"
rps = pycos.RPS(busy)
assert rps.register() == 0
serve()
""")
    loc = p.ready()

    def client(task=None):
        rps = yield pycos.RPS.locate("busy", loc, timeout=10)
        start = time.monotonic()
        first = yield rps(1.5)
        second = yield rps(0)        # while the first computes
        took = time.monotonic() - start
        assert (yield second.finish(timeout=10)) == "done"
        assert (yield first.finish(timeout=10)) == "done"
        return took
    took = run(client, timeout=30)
    assert took < 1.0, took


def test_rps_monitor_and_results_when_owner_is_killed(net, spawn):
    """kill -9 the owner of an RPS while calls run: the RPS monitor gets a
    PeerOffline MonitorStatus for each running call, and finish() on each
    gives that status -- dispycos's jobs rely on both."""
    p = spawn("""
from peerlib import *
sched = start()
def slow(task=None):
    yield task.sleep(3600)
rps = pycos.RPS(slow)
assert rps.register() == 0
serve()
""")
    loc = p.ready()

    def client(task=None):
        rps = yield pycos.RPS.locate("slow", loc, timeout=10)
        assert rps.monitor(task) == 0
        calls = []
        for _ in range(3):
            calls.append((yield rps()))
        assert all(isinstance(c, pycos.Task) for c in calls)
        p.kill()
        got = []
        while len(got) < 3:
            m = yield task.receive(timeout=15)
            assert isinstance(m, pycos.MonitorStatus), m
            got.append(m)
        assert {m.info for m in got} == set(calls)
        assert all(m.type is netpycos.PeerOffline for m in got)
        for c in calls:
            st = yield c.finish(timeout=5)
            assert isinstance(st, pycos.MonitorStatus) and st.type is netpycos.PeerOffline
        return True
    assert run(client, timeout=40)


def test_remote_channel_subscribe_send_deliver(net, spawn):
    p = spawn("""
from peerlib import *
sched = start()
ch = pycos.Channel("news")
assert ch.register() == 0
def sub(task=None):
    task.register("sub")
    yield ch.subscribe(task)
    while True:
        msg = yield task.receive()
        say("SUB", msg)
pycos.Task(sub)
serve()
""")
    loc = p.ready()

    def listener(task=None):
        got = []
        while len(got) < 3:
            got.append((yield task.receive(timeout=10)))
        return got

    def client(task=None):
        ch = yield pycos.Channel.locate("news", loc, timeout=10)
        assert isinstance(ch, pycos.Channel) and ch.location == loc
        lst = pycos.Task(listener)
        assert (yield ch.subscribe(lst)) == 0
        assert ch.send("m1") == 0
        p.expect("SUB m1")
        n = yield ch.deliver("m2", timeout=10, n=2)
        assert n == 2
        p.expect("SUB m2")
        # a local channel with a remote channel as sub-channel
        local = pycos.Channel("local-news")
        assert (yield local.subscribe(ch)) == 0
        assert local.send("m3") == 0
        p.expect("SUB m3")
        got = yield lst.finish(timeout=10)
        assert got == ["m1", "m2", "m3"]
        assert (yield ch.unsubscribe(lst)) == 0
        local.close()
        return True
    assert run(client)


def test_peer_locate_by_name_and_peers(net, spawn):
    p = spawn("""
from peerlib import *
sched = start(name="named-peer")
serve()
""", name="named")
    loc = p.ready()

    def client(task=None):
        assert (yield net.peer(loc)) == 0
        found = yield net.locate("named-peer", timeout=10)
        assert found == loc
        assert loc in net.peers()
        assert (yield net.locate("nobody", timeout=0.2)) is None
        assert (yield net.close_peer(loc)) == 0
        return True
    assert run(client)


def test_unreachable_peer_fails_fast(net):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    loc = pycos.Location("127.0.0.1", port)

    def client(task=None):
        start = time.monotonic()
        r = yield net.peer(loc)
        assert r == -1
        t = yield pycos.Task.locate("x", loc, timeout=10)
        assert t is None
        return time.monotonic() - start
    assert run(client) < 5


def _has_ipv6():
    import socket
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _has_ipv6(), reason="no IPv6 loopback on this machine")
def test_ipv6_peers(secret, spawn):
    netpycos.Pycos(name="v6", udp_port=0, secret=secret, host="::1")
    p = spawn("""
from peerlib import *
sched = start(host="::1")
def echo(task=None):
    task.register("echo")
    who, m = yield task.receive()
    who.send(m)
pycos.Task(echo)
serve()
""")
    loc = p.ready()
    assert loc.addr == "::1"

    def client(task=None):
        e = yield pycos.Task.locate("echo", loc, timeout=10)
        e.send((task, "over v6"))
        return (yield task.receive(timeout=10))
    assert run(client) == "over v6"
