"""pycos.dispy.avail: a node's free CPU, memory, disk and swap -- measured
with psutil (installed by `make setup` through the `dispycos` extra), and
all None without it."""
import importlib
import os
import sys
import types

import pytest

from pycos.core.support import Location
from pycos.dispy import avail
from pycos.dispy.status import DispycosNodeAvailInfo

LOC = Location("127.0.0.1", 9706)


def test_with_psutil(tmp_path):
    import psutil                   # the dispycos extra: a missing install fails here
    assert avail.psutil is psutil
    info = avail.avail_info(LOC, str(tmp_path))
    assert isinstance(info, DispycosNodeAvailInfo) and info.location == LOC
    assert isinstance(info.cpu, float) and 0.0 <= info.cpu <= 100.0
    assert isinstance(info.swap, float) and 0.0 <= info.swap <= 100.0
    assert isinstance(info.memory, int) and 0 < info.memory <= psutil.virtual_memory().total
    assert isinstance(info.disk, int) and 0 < info.disk <= psutil.disk_usage(str(tmp_path)).total
    assert avail.avail_info(LOC, tmp_path).disk > 0          # os.PathLike too


def test_path_errors(tmp_path):
    with pytest.raises(TypeError, match="'path'"):
        avail.avail_info(LOC, None)
    with pytest.raises(OSError):
        avail.avail_info(LOC, str(tmp_path / "missing"))


def test_without_psutil_every_field_but_location_is_none(monkeypatch):
    monkeypatch.setattr(avail, "psutil", None)
    info = avail.avail_info(LOC, "/")
    assert info == DispycosNodeAvailInfo(LOC, None, None, None, None)


def test_module_imports_without_psutil(monkeypatch):
    monkeypatch.setitem(sys.modules, "psutil", None)      # `import psutil` raises ImportError
    try:
        importlib.reload(avail)
        assert avail.psutil is None
        assert avail.avail_info(LOC, os.getcwd()) == DispycosNodeAvailInfo(LOC, None, None,
                                                                           None, None)
    finally:
        monkeypatch.undo()
        importlib.reload(avail)


class FakePsutil(object):
    """The few psutil calls avail makes, with fixed answers."""

    def __init__(self, busy, swap_used):
        self.busy, self.swap_used, self.paths = busy, swap_used, []

    def cpu_percent(self, interval=None):
        assert interval is None                 # never blocks
        return self.busy

    def virtual_memory(self):
        return types.SimpleNamespace(available=3 << 30, total=8 << 30)

    def disk_usage(self, path):
        self.paths.append(path)
        return types.SimpleNamespace(free=5 << 30, total=9 << 30)

    def swap_memory(self):
        return types.SimpleNamespace(percent=self.swap_used)


@pytest.mark.parametrize("busy, swap_used, cpu, swap", [
    (25.0, 40.0, 75.0, 60.0),          # idle and unused percentages, as 4.x reports
    (0.0, 0.0, 100.0, 100.0),          # no swap configured: psutil says 0 % used
    (100.0, 100.0, 0.0, 0.0),
    (100.4, 100.2, 0.0, 0.0),          # rounding past 100 is clamped
])
def test_measurements(busy, swap_used, cpu, swap):
    ps = FakePsutil(busy, swap_used)
    info = avail._measure(ps, LOC, "/srv/dispycos")
    assert info == DispycosNodeAvailInfo(LOC, cpu, 3 << 30, 5 << 30, swap)
    assert ps.paths == ["/srv/dispycos"]
