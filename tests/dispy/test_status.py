"""pycos.dispy.status: status numbers, the records a cluster reports (their
checks, equality and pickling) and DispycosNodeAllocate's matching rules."""
import logging
import pickle
import socket
import time

import pytest

from pycos.core.support import Location
from pycos.dispy import status as st
from pycos.dispy.status import (DispycosNodeAllocate, DispycosNodeAvailInfo, DispycosNodeInfo,
                                DispycosStatus, DispycosTaskInfo, Status, node_cpus,
                                status_name)

NUMBERS = {
    "NodeIgnore": 1, "NodeDiscovered": 2, "NodeInitialized": 3, "NodeSuspended": 4,
    "NodeResumed": 5, "NodeClosed": 6, "NodeDisconnected": 7, "NodeAbandoned": 8,
    "ServerDiscovered": 12, "ServerInitialized": 13, "ServerSuspended": 14,
    "ServerResumed": 15, "ServerClosed": 16, "ServerDisconnected": 17, "ServerAbandoned": 18,
    "TaskStarted": 21, "TaskFinished": 22, "TaskAbandoned": 23, "TaskTerminated": 24,
    "ClientScheduled": 31, "ClientClosed": 32,
}
PROTOCOLS = range(pickle.HIGHEST_PROTOCOL + 1)
LOC = Location("127.0.0.1", 9706)


# ---- numbers --------------------------------------------------------------------------

def test_status_numbers_are_those_of_4x():
    for name, number in NUMBERS.items():
        assert getattr(Status, name) == number, name
    assert Status.TaskCreated == Status.TaskStarted
    public = {k for k in vars(Status) if not k.startswith("_")}
    assert public == set(NUMBERS) | {"TaskCreated"}


def test_a_scheduler_class_inherits_the_numbers():
    class Scheduler(Status):
        pass
    assert Scheduler.NodeDiscovered == 2 and Scheduler.ClientClosed == 32
    assert Scheduler().TaskFinished == 22


def test_status_name():
    for name, number in NUMBERS.items():
        assert status_name(number) == name
    assert status_name(Status.TaskCreated) == "TaskStarted"
    assert status_name(99) == "Status(99)"
    assert status_name(True) == "Status(True)"
    assert status_name("x") == "Status('x')"


# ---- records --------------------------------------------------------------------------

def avail(**kw):
    args = dict(location=LOC, cpu=87.5, memory=2 << 30, disk=10 << 30, swap=100.0)
    args.update(kw)
    return DispycosNodeAvailInfo(**args)


def node_info(**kw):
    args = dict(name="n1", addr="127.0.0.1", cpus=4, platform="Linux-6.1-x86_64",
                avail_info=avail())
    args.update(kw)
    return DispycosNodeInfo(**args)


def test_constructors_keep_their_fields():
    s = DispycosStatus(Status.NodeDiscovered, "info")
    assert (s.status, s.info) == (2, "info")
    a = DispycosNodeAvailInfo(LOC, 50, 1, 2, 0.5)
    assert (a.location, a.cpu, a.memory, a.disk, a.swap) == (LOC, 50, 1, 2, 0.5)
    none = DispycosNodeAvailInfo(None, None, None, None, None)
    assert (none.cpu, none.memory, none.disk, none.swap) == (None,) * 4
    n = DispycosNodeInfo("n", "10.0.0.1", 8, "Linux", a)
    assert (n.name, n.addr, n.cpus, n.platform, n.avail_info) == ("n", "10.0.0.1", 8, "Linux", a)
    assert DispycosNodeInfo("n", "10.0.0.1", 0, "", None).avail_info is None


def test_task_info_start_time():
    before = time.time()
    info = DispycosTaskInfo("task", (1, 2), {"k": 3})
    assert before <= info.start_time <= time.time()
    assert (info.task, info.args, info.kwargs) == ("task", (1, 2), {"k": 3})
    info = DispycosTaskInfo("task", [1], None, start_time=12.5)
    assert (info.args, info.kwargs, info.start_time) == ((1,), {}, 12.5)


@pytest.mark.parametrize("make, exc, arg", [
    (lambda: DispycosStatus("2", None), TypeError, "status"),
    (lambda: DispycosStatus(None, None), TypeError, "status"),
    (lambda: DispycosStatus(True, None), TypeError, "status"),
    (lambda: DispycosTaskInfo("t", 5, {}), TypeError, "args"),
    (lambda: DispycosTaskInfo("t", (), []), TypeError, "kwargs"),
    (lambda: DispycosTaskInfo("t", (), {}, start_time="now"), TypeError, "start_time"),
    (lambda: avail(location="127.0.0.1:9706"), TypeError, "location"),
    (lambda: avail(cpu="50"), TypeError, "cpu"),
    (lambda: avail(cpu=100.5), ValueError, "cpu"),
    (lambda: avail(cpu=-1), ValueError, "cpu"),
    (lambda: avail(memory=1.5), TypeError, "memory"),
    (lambda: avail(memory=-1), ValueError, "memory"),
    (lambda: avail(disk="big"), TypeError, "disk"),
    (lambda: avail(disk=-5), ValueError, "disk"),
    (lambda: avail(swap=101), ValueError, "swap"),
    (lambda: avail(swap=True), TypeError, "swap"),
    (lambda: node_info(name=None), TypeError, "name"),
    (lambda: node_info(addr=("127.0.0.1", 1)), TypeError, "addr"),
    (lambda: node_info(cpus=-1), ValueError, "cpus"),
    (lambda: node_info(cpus=2.0), TypeError, "cpus"),
    (lambda: node_info(platform=None), TypeError, "platform"),
    (lambda: node_info(avail_info={"cpu": 1}), TypeError, "avail_info"),
])
def test_records_check_their_arguments(make, exc, arg):
    with pytest.raises(exc, match="'%s'" % arg):
        make()


def test_equality_repr_and_no_hash():
    assert avail() == avail() and avail() != avail(cpu=1.0)
    assert node_info() == node_info() and node_info() != node_info(avail_info=None)
    assert DispycosStatus(2, node_info()) == DispycosStatus(2, node_info())
    assert DispycosStatus(2, "x") != DispycosStatus(3, "x")
    assert DispycosTaskInfo("t", (1,), {}, 5.0) == DispycosTaskInfo("t", (1,), {}, 5.0)
    assert DispycosTaskInfo("t", (1,), {}, 5.0) != DispycosTaskInfo("t", (1,), {}, 6.0)
    assert avail() != "not a record" and not (avail() == node_info())
    r = repr(DispycosStatus(Status.NodeInitialized, node_info()))
    assert r.startswith("DispycosStatus(status=3, info=DispycosNodeInfo(name='n1'")
    assert "cpu=87.5" in r and "127.0.0.1:9706" in r
    with pytest.raises(TypeError):
        hash(avail())


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_records_pickle_with_every_protocol(protocol):
    records = [
        DispycosStatus(Status.NodeInitialized, node_info()),
        DispycosStatus(Status.ServerClosed, LOC),
        DispycosStatus(Status.TaskStarted, DispycosTaskInfo("task", (1, "a"), {"k": [2]})),
        DispycosNodeAvailInfo(LOC, None, None, None, None),
        avail(location=None),
    ]
    for rec in records:
        copy = pickle.loads(pickle.dumps(rec, protocol))
        assert type(copy) is type(rec) and copy == rec and copy is not rec
    copy = pickle.loads(pickle.dumps(records[0], protocol))
    assert copy.info.avail_info.location == LOC


def test_records_are_small():
    assert not hasattr(avail(), "__dict__")
    assert len(pickle.dumps(avail(), 4)) < 200


# ---- DispycosNodeAllocate -------------------------------------------------------------

@pytest.fixture
def no_dns(monkeypatch):
    """getaddrinfo without a resolver: a few fixed names, the rest unknown."""
    known = {"node-a.test": "10.1.2.3", "localhost": "127.0.0.1"}

    def getaddrinfo(host, port, *args, **kwargs):
        if host in known:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (known[host], port))]
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_allocate_fields_and_defaults(no_dns):
    a = DispycosNodeAllocate("*")
    assert (a.node, a.port, a.platform, a.cpus, a.memory, a.disk) == ("*", None, "", None, None,
                                                                      None)
    a = DispycosNodeAllocate("node-a.test", port=9706, platform="linux", cpus=2,
                             memory=1 << 20, disk=1 << 30)
    assert (a.node, a.port, a.platform, a.cpus, a.memory, a.disk) == (
        "node-a.test", 9706, "linux", 2, 1 << 20, 1 << 30)
    assert repr(a) == ("DispycosNodeAllocate('node-a.test', port=9706, platform='linux', "
                       "cpus=2, memory=1048576, disk=1073741824)")
    assert repr(DispycosNodeAllocate("*")) == "DispycosNodeAllocate('*')"


@pytest.mark.parametrize("node, yes, no", [
    ("*", ["10.0.0.1", "::1", "192.168.1.200"], []),
    ("192.168.1.*", ["192.168.1.7", "192.168.1.200"], ["192.168.10.7", "10.192.168.1.1",
                                                       "192.168.2.1"]),
    ("10.*.1", ["10.0.0.1", "10.2.3.1"], ["10.0.0.12", "10.2.3.41", "11.0.0.1"]),
    ("127.0.0.1", ["127.0.0.1"], ["127.0.0.10", "127.0.0.1x", "127.0.0.2", "127a0.0.1"]),
    ("localhost", ["127.0.0.1"], ["127.0.0.11"]),
    ("node-a.test", ["10.1.2.3"], ["10.1.2.30", "node-a.test"]),
    ("0:0::1", ["::1"], ["::10", "0:0::1"]),
    ("fe80::*", ["fe80::1", "fe80::abcd:1"], ["fe81::1"]),
])
def test_allocate_matches_whole_addresses(no_dns, node, yes, no):
    a = DispycosNodeAllocate(node)
    assert [addr for addr in yes if a.matches(addr)] == yes
    assert [addr for addr in no if a.matches(addr)] == []
    assert not a.matches(None)


@pytest.mark.parametrize("kwargs, exc, arg", [
    (dict(node=None), TypeError, "node"),
    (dict(node=5), TypeError, "node"),
    (dict(node=""), ValueError, "node"),
    (dict(node="   "), ValueError, "node"),
    (dict(node="no-such-host.test"), ValueError, "node"),
    (dict(node="*", port="9706"), TypeError, "port"),
    (dict(node="*", port=True), TypeError, "port"),
    (dict(node="*", port=0), ValueError, "port"),
    (dict(node="*", port=65536), ValueError, "port"),
    (dict(node="*", platform=None), TypeError, "platform"),
    (dict(node="*", platform="linux("), ValueError, "platform"),
    (dict(node="*", cpus=1.5), TypeError, "cpus"),
    (dict(node="*", cpus="2"), TypeError, "cpus"),
    (dict(node="*", memory=-1), ValueError, "memory"),
    (dict(node="*", memory=1e9), TypeError, "memory"),
    (dict(node="*", disk="1G"), TypeError, "disk"),
    (dict(node="*", disk=-1), ValueError, "disk"),
])
def test_allocate_checks_its_arguments(no_dns, kwargs, exc, arg):
    with pytest.raises(exc, match="'%s'" % arg):
        DispycosNodeAllocate(**kwargs)


LINUX = "Linux-6.1.0-18-amd64-x86_64-with-glibc2.36"


@pytest.mark.parametrize("kwargs, node, expected", [
    # cpus: None all, n > 0 exactly n (or 0 if the node has fewer), 0 none, n < 0 all but -n
    (dict(), dict(cpus=8), 8),
    (dict(cpus=4), dict(cpus=8), 4),
    (dict(cpus=8), dict(cpus=8), 8),
    (dict(cpus=16), dict(cpus=8), 0),
    (dict(cpus=0), dict(cpus=8), 0),
    (dict(cpus=-2), dict(cpus=8), 6),
    (dict(cpus=-8), dict(cpus=8), 0),
    (dict(cpus=-10), dict(cpus=8), 0),
    # platform: a regular expression searched ignoring case; no match: -1 (next allocation)
    (dict(platform="linux.*x86_64"), dict(), 8),
    (dict(platform=r"Linux-\S+-amd64"), dict(), 8),
    (dict(platform="windows"), dict(), -1),
    (dict(platform="windows", cpus=0), dict(), -1),
    (dict(platform="linux"), dict(platform=None), -1),
    # memory, disk: minimum free; unknown (None) passes
    (dict(memory=1000), dict(memory=999), 0),
    (dict(memory=1000), dict(memory=1000), 8),
    (dict(memory=1000), dict(memory=None), 8),
    (dict(memory=1000), dict(memory=0), 0),
    (dict(disk=1 << 30), dict(disk=1 << 20), 0),
    (dict(disk=1 << 30), dict(disk=None), 8),
    (dict(disk=1 << 30, cpus=2), dict(disk=1 << 31), 2),
])
def test_allocate_rules(kwargs, node, expected):
    a = DispycosNodeAllocate("*", **kwargs)
    args = dict(ip_addr="10.0.0.1", name="n1", platform=LINUX, cpus=8, memory=1 << 30,
                disk=1 << 40)
    args.update(node)
    assert a.allocate(**args) == expected


class GpuNodes(DispycosNodeAllocate):
    """A user's allocation: 2 servers on nodes named gpu*, none elsewhere."""

    def __init__(self, node, label="gpu"):
        super().__init__(node)
        self.label = label

    def allocate(self, ip_addr, name, platform, cpus, memory, disk):
        return min(2, cpus) if name.startswith(self.label) else 0


def test_allocate_overridden_in_a_subclass():
    a = GpuNodes("10.0.*")
    assert a.allocate("10.0.0.1", "gpu7", LINUX, 8, None, None) == 2
    assert a.allocate("10.0.0.1", "cpu1", LINUX, 8, None, None) == 0
    assert node_cpus([a], "10.0.0.1", "gpu7", LINUX, 1) == 1
    assert node_cpus([a], "10.1.0.1", "gpu7", LINUX, 8) == 8      # does not match: all
    assert repr(a) == "GpuNodes('10.0.*')"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_allocate_pickles(no_dns, protocol):
    a = DispycosNodeAllocate("node-a.test", port=9706, platform="linux", cpus=-1, memory=5)
    b = pickle.loads(pickle.dumps(a, protocol))
    assert vars(b) == vars(a) and b.matches("10.1.2.3") and not b.matches("10.1.2.4")
    g = pickle.loads(pickle.dumps(GpuNodes("10.*", label="tpu"), protocol))
    assert type(g) is GpuNodes and g.label == "tpu"
    assert g.allocate("10.0.0.1", "tpu1", LINUX, 8, None, None) == 2


def test_node_cpus_applies_the_first_allocation_that_applies():
    allocs = [DispycosNodeAllocate("10.0.0.1", cpus=0),                 # never this node
              DispycosNodeAllocate("10.0.*", platform="windows", cpus=1),  # -1: next
              DispycosNodeAllocate("10.0.*", cpus=-1),
              DispycosNodeAllocate("*", cpus=3)]
    assert node_cpus(allocs, "10.0.0.1", "n", LINUX, 8) == 0
    assert node_cpus(allocs, "10.0.0.2", "n", LINUX, 8) == 7
    assert node_cpus(allocs, "10.0.0.2", "n", "Windows-10", 8) == 1
    assert node_cpus(allocs, "10.9.0.2", "n", LINUX, 8) == 3
    assert node_cpus(allocs, "10.9.0.2", "n", LINUX, 2) == 0          # fewer than 3 CPUs
    assert node_cpus([], "10.9.0.2", "n", LINUX, 4) == 4


class Broken(DispycosNodeAllocate):
    def allocate(self, ip_addr, name, platform, cpus, memory, disk):
        if name == "raise":
            raise RuntimeError("boom")
        return {"none": None, "float": 2.0, "bool": True, "neg": -5, "many": 100}[name]


def test_node_cpus_survives_a_bad_allocate(caplog):
    allocs = [Broken("*"), DispycosNodeAllocate("*", cpus=1)]
    with caplog.at_level(logging.WARNING, logger="pycos"):
        assert node_cpus(allocs, "10.0.0.1", "raise", LINUX, 8) == 0
        assert node_cpus(allocs, "10.0.0.1", "none", LINUX, 8) == 0
        assert node_cpus(allocs, "10.0.0.1", "float", LINUX, 8) == 0
        assert node_cpus(allocs, "10.0.0.1", "bool", LINUX, 8) == 0
    assert node_cpus(allocs, "10.0.0.1", "neg", LINUX, 8) == 1        # negative: next one
    assert node_cpus(allocs, "10.0.0.1", "many", LINUX, 8) == 8       # capped at the node's
    text = caplog.text
    assert "RuntimeError: boom" in text and "returned None" in text and "returned 2.0" in text


def test_module_exports():
    assert set(st.__all__) == {"Status", "status_name", "DispycosStatus", "DispycosTaskInfo",
                               "DispycosNodeInfo", "DispycosNodeAvailInfo",
                               "DispycosNodeAllocate", "node_cpus", "JobTimeout"}
