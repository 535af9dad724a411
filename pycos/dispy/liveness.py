"""Heartbeats: who has gone silent for too long.

dispycos nodes send the client's scheduler a pulse every ``pulse_interval``
seconds and the scheduler answers each one.  Both sides keep a
:class:`Watch`: the scheduler over its nodes, a node over the scheduler of
the client it serves.  Whoever has not been heard from for longer than
``zombie_period + pulse_interval`` is reported once to ``on_silent`` (the
scheduler then declares the node dead and ends its jobs; the node releases
the client).

Why ``zombie_period + pulse_interval``: the last pulse before a peer went
quiet left at most one interval before it did, so waiting that much longer
than ``zombie_period`` after the last pulse never declares a peer dead
sooner than ``zombie_period`` after it really went quiet; checking twice per
interval, it is declared within ``zombie_period + 2 * pulse_interval``
(RELIABILITY.md E3's bounds).

The watch runs as a task on its scheduler's clock (monotonic, or virtual in
tests), so an hour of pulses can be checked in a moment (RELIABILITY.md A1),
and a step of the wall clock cannot make anyone look silent (A4).
"""

from pycos.core.task import Task

__all__ = ["Watch"]


class Watch(object):
    """Report keys not :meth:`heard` from for ``period + interval`` seconds.

    ``on_silent(key, silent_for)`` is called (in the watch's task) once per
    key, which is then forgotten; :meth:`heard` again starts watching it
    anew.  ``period`` 0 or None: nobody is ever reported (the watch only
    keeps the times).
    """

    def __init__(self, period, interval, on_silent):
        if interval is None or not interval > 0:
            raise ValueError("interval must be a positive number of seconds, not %r"
                             % (interval,))
        if period is not None and period < 0:
            raise ValueError("period must be 0 or more seconds, not %r" % (period,))
        self.period = period or 0
        self.interval = interval
        self.on_silent = on_silent
        self.last = {}
        self.intervals = {}          # key -> its own interval, when longer
        self._stop = False
        self.task = Task(self._run)
        self._now = self.task._sched.now

    @property
    def limit(self):
        """Seconds of silence after which a key is reported."""
        return self.period + self.interval

    def heard(self, key, interval=None):
        """``key`` gave a sign of life now.  ``interval``: the key's own
        interval between signs, when it is longer than the watch's (a node
        that pulses less often than the client asked)."""
        self.last[key] = self._now()
        if interval is not None:
            if interval > self.interval:
                self.intervals[key] = interval
            else:
                self.intervals.pop(key, None)

    def forget(self, key):
        """Stop watching ``key``."""
        self.last.pop(key, None)
        self.intervals.pop(key, None)

    def silent_for(self, key):
        """Seconds since ``key`` was last heard, or None."""
        t = self.last.get(key)
        return None if t is None else self._now() - t

    def stop(self):
        """End the watch's task (at its next check)."""
        self._stop = True
        self.task.resume(None)

    def _run(self, task=None):
        task.set_daemon()
        tick = self.interval / 2.0
        while not self._stop:
            yield task.suspend(tick)
            if self._stop or not self.period:
                continue
            now = self._now()
            limit = self.limit
            longer = self.intervals
            for key, t in list(self.last.items()):
                silent = now - t
                if silent <= limit or (longer and silent <= self.period + longer.get(key, 0)):
                    continue
                if self.last.get(key) == t:
                    del self.last[key]
                    longer.pop(key, None)
                    try:
                        self.on_silent(key, now - t)
                    except Exception:
                        from pycos.core.log import logger
                        logger.exception("dispycos: on_silent(%r) failed", key)
