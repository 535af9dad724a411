"""A helper scheduler's rounds, run by its host's thread while that idles.

netpycos has two schedulers per process: the user's (the *host*) and the
system one (the *helper*), each in its own thread, so the network keeps
moving while a user task computes.  The price is a thread crossing on every
reply: the helper's thread reads it, then wakes the host's thread, and on a
virtual machine each wake costs tens of microseconds -- a third of a remote
round trip.

A :class:`Lend` removes that crossing whenever the host has nothing to do:

* **Lent.**  The helper's thread parks, and the host's thread watches the
  helper's loop descriptor (a one-shot readiness watch on its own loop) and
  its next timer.  When either fires, the host's thread runs the helper's
  rounds itself (under :attr:`Lend.runner`, with the thread's identity
  switched to the helper's, so ``Task.cur_task()`` and the helper's
  ``_on_loop()`` are right), then goes on with its own tasks: a reply for a
  host task is read by the host's thread, and no thread is woken.
* **Taken back.**  The parked helper thread looks every :attr:`period`
  seconds: when the host has been busy for that long (a task computing, or
  any long step), or idle for :attr:`idle_limit` seconds, it takes the
  helper back and polls its loop as before.  So while a task computes,
  replies and heartbeats are late by at most :attr:`period` -- never
  stopped.
* **Asked for.**  The host asks for the lend when it is about to idle after
  a round that used the network (:attr:`hinted`), by waking the helper's
  thread once; the helper hands over at the end of its round and wakes the
  host so it takes the helper's timers into account.

Only for a threaded host on a real clock, over a backend whose loop has a
pollable descriptor (epoll, kqueue); elsewhere the two threads work as
before.
"""

import threading
import time

from pycos import reactor
from pycos.core.log import logger

__all__ = ["Lend"]

_SYS, _LENT = 0, 1


class Lend(object):
    """``helper``'s rounds lent to ``host``'s thread (see the module
    docstring).  Made by the owner of both (netpycos's Node) after both
    started; :meth:`end` before either stops."""

    #: seconds a parked helper thread waits between looks at the host
    period = 0.02
    #: seconds the host may idle before the helper's thread takes it back
    idle_limit = 1.0

    def __init__(self, host, helper):
        from pycos.core.scheduler import _by_thread, _get_ident
        self._by_thread = _by_thread
        self._get_ident = _get_ident
        self.host = host
        self.helper = helper
        self.fd = helper.loop.fileno()      # OSError on backends without one
        self.runner = threading.Lock()      # held by whoever runs helper rounds
        self.state = _SYS
        self.wanted = False                 # the host asked; the helper hands over
        # set by the host's thread (netpycos: a frame written at the end of
        # a round, so a reply may come): ask for the lend at the next wait
        self.hinted = False
        self.ended = False
        self.busy_since = 0.0               # host: left its wait at (0: waiting)
        self.idle_since = 0.0
        self._wake = threading.Event()      # for the parked helper thread
        self._armed = False                 # the host's watch on self.fd is pending
        self._tok = host._new_token()       # its handler is in place only while armed

    # ---- the host's thread ---------------------------------------------------------

    def idle(self, wait_ns):
        """Host thread, about to wait up to ``wait_ns`` (< 0: no limit):
        run the helper's due rounds, watch its loop, and return how long
        the wait may be."""
        if self.ended:
            self._disarm()
            return wait_ns
        if self.state != _LENT:
            if self.hinted and not self.wanted:
                self.hinted = False
                self.wanted = True
                self.helper.loop.wakeup()       # it hands over after its round
            if self.wanted:
                self._arm()
            else:
                self._disarm()                  # taken back: its thread watches
            return wait_ns
        helper = self.helper
        if helper.next_deadline() == 0.0:
            self.run()
        self._arm()                     # (runs its rounds if there is I/O already)
        left = helper.next_deadline()
        self.busy_since = 0.0
        self.idle_since = time.monotonic()
        if left is None:
            return wait_ns
        if left == 0.0:
            return 0
        ns = int(left * 1e9) + 1
        return ns if wait_ns < 0 or ns < wait_ns else wait_ns

    def awake(self):
        """Host thread: its wait is over."""
        self.busy_since = time.monotonic()
        if self.state == _LENT and self.helper.next_deadline() == 0.0:
            self.run()

    def _arm(self):
        handlers = self.host._handlers
        for _ in range(3):
            if self._armed:
                return
            try:
                r = self.host.loop.watch(self.fd, reactor.READ, self._tok)
            except OSError:
                return                  # the helper's loop is closed: ended
            if r == reactor.PENDING:
                self._armed = True
                handlers[self._tok] = self._fired
                return
            self.run()                  # readable already: its rounds, then again
        # still readable: the helper's own thread has it (it wakes the host
        # when it hands over)

    def _disarm(self):
        if self._armed:
            self._armed = False
            self.host._handlers.pop(self._tok, None)
            try:
                self.host.loop.cancel(self.fd, reactor.READ)
            except OSError:
                pass

    def _fired(self, kind, aux, result):
        if kind != reactor.EV_READY:
            return                      # (a cancelled watch's end)
        self._armed = False
        self.host._handlers.pop(self._tok, None)
        self.run()

    def run(self):
        """Host thread: run the helper's rounds while it has work ready (a
        bounded number of them), if the helper is lent."""
        if self.state != _LENT or not self.runner.acquire(False):
            return
        helper = self.helper
        ident = self._get_ident()
        by_thread = self._by_thread
        host = by_thread.get(ident)
        own = helper._thread_ident
        try:
            if self.state != _LENT:
                return
            helper._thread_ident = ident
            by_thread[ident] = helper
            for _ in range(8):
                helper._round(0)
                helper._sleeping = True
                if not (helper._ready or helper._inbox or helper._round_end):
                    break
        except Exception:
            logger.exception("pycos: a lent round of %r failed", helper)
        finally:
            helper._sleeping = True
            helper._thread_ident = own
            if host is not None:
                by_thread[ident] = host
            self.runner.release()

    # ---- the helper's thread --------------------------------------------------------

    def helper_round(self):
        """Helper thread: one round of its own -- or, when the host asked,
        hand over and park until taken back."""
        helper = self.helper
        if self.wanted and not self.ended:
            self.wanted = False
            with self.runner:
                helper._sleeping = True
                if helper.next_deadline() == 0.0:
                    helper._round(0)        # work of its own first
                    self.wanted = True
                    return
                self.busy_since = 0.0
                self.idle_since = time.monotonic()
                self.state = _LENT
            self.host.loop.wakeup()             # the host now minds the helper's timers
            self._park()
            return
        with self.runner:
            helper._round(-1)

    def _park(self):
        wake = self._wake
        while not self.ended:
            wake.wait(self.period)
            wake.clear()
            if self.ended or self.helper._quit:
                break
            busy = self.busy_since
            now = time.monotonic()
            if busy:
                if now - busy >= self.period:
                    break
            elif now - self.idle_since >= self.idle_limit:
                break
        self.state = _SYS
        self.helper._sleeping = False

    # ---- either ---------------------------------------------------------------------

    def end(self):
        """Any thread: the helper is its own thread's again, for good (and
        the host drops its watch)."""
        self.ended = True
        self.state = _SYS
        self._wake.set()
        host = self.host
        if host._on_loop():
            self._disarm()
        else:
            host._post(self._disarm)
