"""Job options beyond the original: ``job_retries`` and ``job_timeout``.

Both schedulers -- the in-process one (:mod:`pycos.dispy.scheduler`) and a
client of the shared one (:mod:`pycos.dispy.shared_client`) -- keep a
:class:`Job` per job submitted with options (what it takes to run it again,
and the remote task the client has, which reports its end however many
times it ran), and enforce time limits with :class:`TimeLimits`.
"""

import heapq
import itertools

import pycos.netpycos as netpycos
from pycos.core.log import logger
from pycos.core.support import MonitorStatus
from pycos.net import refs
from pycos.dispy.status import JobTimeout

__all__ = ["Job", "TimeLimits"]


class Job(object):
    """A job submitted with options: what it takes to run it again."""

    __slots__ = ("where", "cpu", "name", "code", "args", "kwargs", "retries", "timeout",
                 "origin", "held")

    def __init__(self, where, cpu, name, code, args, kwargs, retries, timeout):
        self.where, self.cpu, self.name, self.code = where, cpu, name, code
        self.args, self.kwargs = args, kwargs
        self.retries = retries       # runs left after a lost one
        self.timeout = timeout
        self.origin = None           # its first remote task: the one the client has
        self.held = False            # its result is settled by the scheduler when lost

    def retry(self, status):
        """Whether a run that ended with ``status`` is run again (and one
        retry less is left; the retry is logged)."""
        if status.type is netpycos.PeerOffline and self.retries > 0 and self.held:
            self.retries -= 1
            logger.info("dispycos: job %s lost with its server (%s); it runs again (%d more "
                        "times at most)", self.origin, status.value, self.retries)
            return True
        return False

    def ended(self, status):
        """A run ended with ``status`` for good -- it is not run again, or
        no server took it again: the job's end, as the remote task the
        client has (``origin``), whose held result is settled with it."""
        if status.info is not self.origin:
            status = MonitorStatus(self.origin, status.type, status.value)
        if self.held:
            refs.settle(self.origin, status.value if status.type is StopIteration else status)
        return status


class TimeLimits(object):
    """Throws :class:`JobTimeout` into each job still running (``running(
    rtask)``) at its time limit, on the clock ``now`` (the scheduler's:
    virtual time works).  One task, while there are limits to watch."""

    def __init__(self, running, now):
        self.running = running
        self.now = now
        self.heap = []               # (time limit, seq, remote task, seconds)
        self.seq = itertools.count()
        self.task = None
        self.stopped = False

    def add(self, rtask, seconds):
        """Job ``rtask`` may run ``seconds`` from now."""
        if self.stopped:
            return
        heapq.heappush(self.heap, (self.now() + seconds, next(self.seq), rtask, seconds))
        if self.task is None:
            self.task = netpycos.Task(self._run)
        elif self.heap[0][2] is rtask:
            self.task.send("sooner")

    def stop(self):
        """No more limits (the scheduler closes)."""
        self.stopped = True
        self.heap.clear()
        if self.task is not None:
            self.task.send("stop")

    def _run(self, task=None):
        while self.heap and not self.stopped:
            end, _, rtask, seconds = self.heap[0]
            left = end - self.now()
            if left > 0:
                yield task.receive(timeout=left)
                continue
            heapq.heappop(self.heap)
            if self.running(rtask):
                rtask.throw(JobTimeout, JobTimeout("job %s ran longer than its time limit "
                                                   "(%ss)" % (rtask, seconds)))
        self.task = None
