"""dispycos node availability: what this machine has free, for the scheduler.

A node reports a :class:`~pycos.dispy.status.DispycosNodeAvailInfo` when it
is asked for its info and with its heartbeats; the scheduler and the
client's allocation rules (minimum memory/disk) and status task use it.
The numbers come from ``psutil``, an optional dependency (``pip install
pycos[dispycos]``); without it every field but ``location`` is None, as a
4.x node without psutil reports.

The CPU figure is the idle share since the previous call in this process
(psutil's non-blocking ``cpu_percent()``), so the first call measures from
the import of this module; nothing here ever sleeps.
"""

import os

try:
    import psutil
except ImportError:        # optional: the fields are None then
    psutil = None

from pycos.dispy.status import DispycosNodeAvailInfo

__all__ = ["avail_info", "psutil"]


def _clamp(percent):
    return min(max(float(percent), 0.0), 100.0)


def _measure(ps, location, path):
    """The availability measured with the psutil module ``ps`` (None: no
    measurement)."""
    if ps is None:
        return DispycosNodeAvailInfo(location, None, None, None, None)
    return DispycosNodeAvailInfo(location,
                                 _clamp(100.0 - ps.cpu_percent()),
                                 int(ps.virtual_memory().available),
                                 int(ps.disk_usage(path).free),
                                 _clamp(100.0 - ps.swap_memory().percent))


def avail_info(location, path):
    """This machine's :class:`DispycosNodeAvailInfo` for the node at
    ``location``: ``cpu`` idle CPU percent, ``memory`` bytes available,
    ``disk`` bytes free on the file system holding ``path`` (the node's
    working directory), ``swap`` percent of swap space not in use -- all None
    without psutil.  An OSError (e.g. ``path`` does not exist) propagates."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError("avail_info: 'path' must be a str or os.PathLike, not %s"
                        % type(path).__name__)
    return _measure(psutil, location, path)
