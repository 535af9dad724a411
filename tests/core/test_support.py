"""Supporting objects: MonitorStatus, HotSwapException, Location, Singleton,
Struct, serialize/deserialize, ``pycos.config``, ``pycos.logger`` and the
``Logger`` compatibility shim."""
import io
import logging
import pickle
import threading

import pytest

import pycos
from pycos import (HotSwapException, Location, Logger, MonitorStatus, Singleton, Struct,
                   deserialize, serialize, unserialize)


# ---- MonitorStatus, HotSwapException -------------------------------------------------

def test_monitor_status_fields_repr_pickle():
    s = MonitorStatus("info", ValueError, "text")
    assert (s.info, s.type, s.value) == ("info", ValueError, "text")
    assert MonitorStatus("i", StopIteration).value is None
    assert repr(s) == "MonitorStatus('info', ValueError, 'text')"
    back = pickle.loads(pickle.dumps(s))
    assert isinstance(back, MonitorStatus)
    assert (back.info, back.type, back.value) == ("info", ValueError, "text")
    with pytest.raises(AttributeError):
        s.other = 1          # a fixed record, not a bag


def test_hot_swap_exception():
    def gen():
        yield

    g = gen()
    e = HotSwapException(g)
    assert isinstance(e, Exception) and e.args[0] is g
    g.close()


# ---- Location ---------------------------------------------------------------------------

def test_location_equality_hash_repr():
    a = Location("127.0.0.1", 9705)
    b = Location("127.0.0.1", "9705")
    assert a == b and not (a != b) and hash(a) == hash(b) and len({a, b}) == 1
    assert a.addr == "127.0.0.1" and a.port == 9705
    assert repr(a) == "127.0.0.1:9705" and str(a) == "127.0.0.1:9705"
    assert a != Location("127.0.0.1", 9706)
    assert a != Location("127.0.0.2", 9705)
    assert a != ("127.0.0.1", 9705)
    v6 = Location("::1", 1)
    assert v6.addr == "::1" and repr(v6) == "::1:1"
    assert Location("localhost", 5).addr in ("127.0.0.1", "::1")
    assert pickle.loads(pickle.dumps(a)) == a


def test_location_bad_input():
    with pytest.raises(TypeError):
        Location(None, 1)
    with pytest.raises(TypeError):
        Location("", 1)
    with pytest.raises(ValueError):
        Location("127.0.0.1", "port")


# ---- Singleton ----------------------------------------------------------------------------

def test_singleton_instance_discard_existing():
    class One(metaclass=Singleton):
        made = 0

        def __init__(self, x=0):
            One.made += 1
            self.x = x

    class Sub(One):
        pass

    try:
        assert One.existing() is None
        a = One(1)
        assert One() is a and One.instance() is a and One.existing() is a and a.x == 1
        assert Sub() is not a and isinstance(Sub(), Sub)        # each class its own
        One.discard(object())           # not the instance: kept
        assert One() is a
        One.discard()
        assert One.existing() is None
        b = One(2)
        assert b is not a and b.x == 2
        Singleton.empty(One)            # the original's spelling
        assert One.existing() is None
    finally:
        One.discard()
        Sub.discard()


def test_singleton_creation_is_thread_safe():
    class Slow(metaclass=Singleton):
        def __init__(self):
            gate.wait(5)

    gate = threading.Event()
    got = []
    threads = [threading.Thread(target=lambda: got.append(Slow())) for _ in range(8)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join()
    try:
        assert len(got) == 8 and all(g is got[0] for g in got)
    finally:
        Slow.discard()


def test_pycos_singleton_refuses_contradicting_arguments(sched):
    with pytest.raises(RuntimeError, match="already exists"):
        pycos.Pycos(embedded=True)
    with pytest.raises(RuntimeError, match="already exists"):
        pycos.Pycos(virtual_time=True)
    assert pycos.Pycos(embedded=False) is sched


# ---- Struct, serialize ----------------------------------------------------------------------

def test_struct():
    s = Struct(a=1, b="x")
    assert s.a == 1 and s.b == "x"
    s.c = [1]
    assert s.c == [1]
    assert s == Struct(a=1, b="x", c=[1]) and s != Struct(a=1)
    assert repr(Struct(b=2, a=1)) == "Struct(a=1, b=2)"
    with pytest.raises(AttributeError):
        s.missing
    with pytest.raises(TypeError):
        hash(s)
    assert pickle.loads(pickle.dumps(s)) == s


def test_serialize_round_trip():
    obj = {"a": [1, 2.5, "s", None], "b": (b"bytes", Struct(x=1)),
           "loc": Location("127.0.0.1", 1), "st": MonitorStatus(None, KeyError, "t")}
    data = serialize(obj)
    assert isinstance(data, bytes)
    back = deserialize(data)
    assert back["a"] == obj["a"] and back["b"] == obj["b"] and back["loc"] == obj["loc"]
    assert back["st"].type is KeyError
    assert unserialize is deserialize
    with pytest.raises(Exception):
        deserialize(b"not a pickle")


def test_serialize_uses_config_protocol(monkeypatch):
    monkeypatch.setattr(pycos.config, "PickleProtocolVersion", 2)
    data = serialize([1])
    assert data[:2] == b"\x80\x02"


# ---- config ------------------------------------------------------------------------------

def test_config_plain_values():
    cfg = pycos.config
    assert cfg.MsgTimeout == 10 and cfg.MaxConnectionErrors == 10
    assert cfg.NetPort == 9705 and cfg.DispycosSchedulerPort == 9705
    assert cfg.DispycosNodePort == 9706
    assert cfg.MinPulseInterval == 10 and cfg.MaxPulseInterval == 100
    assert isinstance(cfg.PickleProtocolVersion, int)
    assert 2 <= cfg.PickleProtocolVersion <= pickle.HIGHEST_PROTOCOL
    assert isinstance(cfg.IPV4_MULTICAST_GROUP, str) and isinstance(cfg.IPV6_MULTICAST_GROUP, str)
    import ipaddress
    assert ipaddress.ip_address(cfg.IPV4_MULTICAST_GROUP).is_multicast
    assert ipaddress.ip_address(cfg.IPV6_MULTICAST_GROUP).is_multicast
    for name in dir(cfg):
        if not name.startswith("_"):
            value = getattr(cfg, name)
            assert not callable(value), name


# ---- logging -------------------------------------------------------------------------------

def test_logger_is_standard_logging_logger(caplog):
    assert isinstance(pycos.logger, logging.Logger)
    assert pycos.logger.name == "pycos" and pycos.logger is logging.getLogger("pycos")
    assert not any(type(h) is logging.StreamHandler for h in pycos.logger.handlers)
    with caplog.at_level(logging.INFO, logger="pycos"):
        pycos.logger.info("hello %s", "there")
    assert [r.getMessage() for r in caplog.records] == ["hello there"]


def test_logger_shim_writes_and_filters():
    stream = io.StringIO()
    log = Logger("pycos_test_shim", stream=stream)
    try:
        assert log.level == Logger.INFO == logging.INFO
        assert (Logger.DEBUG, Logger.WARN, Logger.WARNING, Logger.ERROR, Logger.CRITICAL,
                Logger.FATAL) == (10, 30, 30, 40, 50, 50)
        log.debug("hidden")
        log.info("shown %d", 1)
        log.setLevel(Logger.DEBUG)
        log.debug("now shown")
        log.setLevel(Logger.ERROR)
        log.warning("hidden too")
        log.error("err %s", "x")
        log.show_ms(True)
        log.critical("crit")
        log.flush()
        lines = stream.getvalue().splitlines()
        assert [line.split(" pycos_test_shim - ")[1] for line in lines] == \
            ["shown 1", "now shown", "err x", "crit"]
        assert " pycos_test_shim - " in lines[0]
        # with milliseconds: "YYYY-mm-dd HH:MM:SS.mmm name - msg"
        assert lines[-1].split(" ")[1].count(".") == 1
    finally:
        log.shutdown()
    with Logger("pycos_test_shim2", stream=io.StringIO(), level=Logger.WARNING) as log2:
        assert log2.level == logging.WARNING


def test_pycos_logger_set_level_like_the_original():
    # programs written for the original do pycos.logger.setLevel(pycos.Logger.DEBUG)
    old = pycos.logger.level
    try:
        pycos.logger.setLevel(pycos.Logger.DEBUG)
        assert pycos.logger.isEnabledFor(logging.DEBUG)
    finally:
        pycos.logger.setLevel(old)


def test_public_names():
    for name in pycos.__all__:
        assert hasattr(pycos, name), name
    for name in ("Pycos", "Task", "Lock", "RLock", "Condition", "Event", "Semaphore",
                 "BoundedSemaphore", "Channel", "CategorizeMessages", "AsyncThreadPool",
                 "AsyncDBCursor", "MonitorStatus", "HotSwapException", "Location", "Singleton",
                 "Struct", "serialize", "deserialize", "unserialize", "logger", "Logger",
                 "config"):
        assert name in pycos.__all__, name
