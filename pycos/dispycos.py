"""dispycos: run a client's jobs on the server processes of node daemons.

    import pycos.netpycos
    from pycos.dispycos import *

    def compute(n, task=None):
        yield task.sleep(n)
        return n * n

    def main(task=None):
        client = Client([compute])
        if (yield client.schedule()):
            raise Exception("no scheduler")
        rtask = yield client.rtask(compute, 2)
        print((yield rtask()))
        yield client.close()

Nodes run ``dispycosnode``.  The parts live in :mod:`pycos.dispy`
(client, scheduler, node, server, packaging, status); this module is the
public face, with the names 4.x programs import.  See docs/dispycos.md.

Run as a program (``dispycos``, or ``python -m pycos.dispycos``) it is the
shared scheduler, which serves client programs one at a time in order
(``yield client.schedule(location)``; options: ``dispycos --help``,
:mod:`pycos.dispy.sharedprog`).
"""

import sys

from pycos.config import MaxPulseInterval, MinPulseInterval
from pycos.dispy.client import Client, Computation
from pycos.dispy.progress import Progress
from pycos.dispy.scheduler import JobTimeout, Scheduler
from pycos.dispy.status import (DispycosNodeAllocate, DispycosNodeAvailInfo, DispycosNodeInfo,
                                DispycosStatus, DispycosTaskInfo)

__all__ = ["Client", "Computation", "Scheduler", "DispycosStatus", "DispycosTaskInfo",
           "DispycosNodeInfo", "DispycosNodeAvailInfo", "DispycosNodeAllocate",
           "MinPulseInterval", "MaxPulseInterval", "Progress", "JobTimeout"]


def main(argv=None):
    """Run the shared scheduler program (see :mod:`pycos.dispy.sharedprog`);
    its exit status."""
    from pycos.dispy.sharedprog import main as run
    return run(argv)


def _console_main():
    sys.exit(main())


if __name__ == "__main__":
    _console_main()
