"""dispycos progress: one live line on a terminal for a long run.

A dispycos client that runs thousands of jobs has no easy way to see how far
it got; a node daemon has no easy way to show what its servers do.  This
module turns what they already know into a single line that is rewritten in
place on the terminal:

* :class:`Progress` reads a client's status stream (the
  :class:`~pycos.dispy.status.DispycosStatus` messages and each job's
  :class:`~pycos.core.support.MonitorStatus`) and shows jobs done / running /
  failed, nodes and servers up, jobs per second and, when the number of jobs
  is known, the time left.  :meth:`Progress.task` makes a status task of it
  that can pass every message on to the program's own status task.
* :func:`node_line` is the line of a node daemon (``dispycosnode``): its
  client and the state of each of its servers.
* :class:`LiveLine` is the terminal part both use: it rewrites the line at
  most every ``interval`` seconds, ends it with a newline, prints other
  lines above it (:meth:`LiveLine.say`; :class:`LiveLogHandler` does so for
  log records), and writes nothing at all when the stream is not a terminal
  (output to a file or a pipe stays clean), unless forced -- then each
  redraw is a plain line of its own, readable in a log.

No threads of its own: the line is redrawn when a message comes in and the
interval has passed, and once more when it is closed (a lock keeps writes
from several threads whole).  Everything here is plain stdlib.
"""

import collections
import logging
import os
import sys
import threading
import time

from pycos.core.log import logger
from pycos.core.support import MonitorStatus
from pycos.core.task import Task
from pycos.dispy.status import DispycosStatus, DispycosTaskInfo, Status

__all__ = ["Progress", "LiveLine", "LiveLogHandler", "node_line"]

#: the width assumed when the stream's terminal size cannot be found
DEFAULT_WIDTH = 80

_CLEAR_EOL = "\x1b[K"

_NODE_UP = (Status.NodeInitialized,)
_NODE_DOWN = (Status.NodeClosed, Status.NodeDisconnected, Status.NodeAbandoned)
_SERVER_UP = (Status.ServerInitialized,)
_SERVER_DOWN = (Status.ServerClosed, Status.ServerDisconnected, Status.ServerAbandoned)


class LiveLine(object):
    """One line of text rewritten in place on ``stream``.

    ``stream`` (default ``sys.stderr``) gets ``"\\r" + text + ESC[K`` for
    each :meth:`show`; :meth:`tick` shows only when ``interval`` seconds (on
    ``clock``, default ``time.monotonic``) have passed since the last time;
    :meth:`say` prints a line above it; :meth:`close` ends the line with a
    newline.  When ``stream`` is not a terminal (its ``isatty()`` is false
    or missing) nothing is shown, unless ``force`` is true: then each
    :meth:`show` writes ``text`` as a plain line (no carriage return, no
    escape codes, not cut), as a log wants it.  ``width`` is the terminal's
    width in columns (default: asked of the stream's terminal, else 80); a
    line on a terminal never takes more than ``width - 1`` of them, so the
    terminal never wraps it.  Errors of the stream (closed, cannot encode)
    are ignored: a progress line must not stop the program it reports on.
    Its methods may be called from several threads.
    """

    def __init__(self, stream=None, interval=0.5, force=False, clock=None, width=None):
        if interval < 0:
            raise ValueError("LiveLine: interval must be >= 0, not %r" % (interval,))
        if width is not None and width < 2:
            raise ValueError("LiveLine: width must be at least 2, not %r" % (width,))
        self.stream = sys.stderr if stream is None else stream
        self.interval = interval
        self.clock = time.monotonic if clock is None else clock
        self._width = width
        #: whether the stream is a terminal (the line is rewritten in place)
        self.tty = _isatty(self.stream)
        #: whether anything is shown at all (a terminal, or ``force``)
        self.active = bool(force) or self.tty
        self._last = None          # clock when last shown
        self._text = None          # the text on the line (a terminal: a newline is due at close)
        #: held while the line is written; also hold it to change, from
        #: another thread, what the ``render`` of :meth:`tick` or :meth:`say` reads
        self.lock = threading.RLock()
        self.closed = False

    def width(self):
        """The terminal's width in columns (the ``width`` given, else the
        size of the stream's terminal, else 80)."""
        if self._width is not None:
            return self._width
        try:
            columns = os.get_terminal_size(self.stream.fileno()).columns
        except (AttributeError, OSError, ValueError, TypeError):
            return DEFAULT_WIDTH
        return columns if columns >= 2 else DEFAULT_WIDTH

    def fit(self, text):
        """``text`` cut to ``width() - 1`` characters."""
        return text[:self.width() - 1]

    def due(self):
        """True if a :meth:`tick` now would write: active, not closed, and
        nothing shown within the last ``interval`` seconds."""
        if not self.active or self.closed:
            return False
        return self._last is None or self.clock() - self._last >= self.interval

    def tick(self, render):
        """Show ``render()`` if :meth:`due` (``render`` is not called
        otherwise); True if it did."""
        with self.lock:
            if not self.due():
                return False
            self.show(render())
            return True

    def show(self, text):
        """Rewrite the line with ``text`` now (when active and not closed)."""
        with self.lock:
            if not self.active or self.closed:
                return
            self._last = self.clock()
            if self.tty:
                self._text = self.fit(text)
                self._write("\r" + self._text + _CLEAR_EOL)
            else:
                self._write(text + "\n")

    def say(self, text, render=None):
        """Print ``text`` as a line of its own -- always, terminal or not,
        active or not: it is the program's output, not the live line's.
        On a terminal the live line is cleared first and drawn again below
        it (as ``render()`` makes it, when given; else as it was), so the
        two never mix."""
        with self.lock:
            if self._text is not None and not self.closed:
                if render is not None:
                    self._text = self.fit(render())
                    self._last = self.clock()
                self._write("\r" + text + _CLEAR_EOL + "\n\r" + self._text + _CLEAR_EOL)
            else:
                self._write(text + "\n")

    def close(self, text=None):
        """End the line: rewrite it with ``text`` if given, then a newline
        (no newline when nothing was ever shown, nor after plain lines).
        Only the first call writes."""
        with self.lock:
            if self.closed:
                return
            if text is not None:
                self.show(text)
            self.closed = True
            if self._text is not None:
                self._write("\n")

    def _write(self, data):
        try:
            self.stream.write(data)
            self.stream.flush()
        except (OSError, ValueError):
            pass


class LiveLogHandler(logging.Handler):
    """A :mod:`logging` handler that prints each record above a live line
    (with :meth:`LiveLine.say`, drawing the line again as ``render()`` makes
    it, when given), so that log messages and the line never mix on a
    terminal.  Records look like pycos 4.x's: ``YYYY-mm-dd HH:MM:SS name -
    message`` (``setFormatter`` changes that).  Add it to the logger whose
    records should go there, e.g. ``logging.getLogger("pycos")``; records of
    every level it gets are printed, on the line's stream."""

    def __init__(self, live, render=None, level=logging.NOTSET):
        logging.Handler.__init__(self, level)
        self.live = live
        self.render = render
        self.setFormatter(logging.Formatter("%(asctime)s %(name)s - %(message)s",
                                            "%Y-%m-%d %H:%M:%S"))

    def emit(self, record):
        try:
            self.live.say(self.format(record), self.render)
        except Exception:
            self.handleError(record)


def _isatty(stream):
    try:
        return bool(stream.isatty())
    except (AttributeError, OSError, TypeError, ValueError):
        return False


def _duration(seconds):
    """``17s``, ``3m05s``, ``2h07m``."""
    s = int(round(seconds))
    if s < 60:
        return "%ds" % s
    if s < 3600:
        return "%dm%02ds" % divmod(s, 60)
    h, rest = divmod(s, 3600)
    return "%dh%02dm" % (h, rest // 60)


def _plural(n, word):
    return "%d %s%s" % (n, word, "" if n == 1 else "s")


def _fit_parts(parts, limit):
    """Join ``parts`` (text, priority) with `` | ``, leaving out the
    lowest-priority parts (the first part always stays) until the line is
    at most ``limit`` characters, then cut it there."""
    parts = list(parts)
    while True:
        text = " | ".join(p for p, _ in parts)
        if len(text) <= limit or len(parts) == 1:
            return text[:limit]
        drop = min(range(1, len(parts)), key=lambda i: parts[i][1])
        del parts[drop]


class Progress(object):
    """The progress of a dispycos client's jobs, as one live terminal line.

    Feed it every message of the client's status stream with :meth:`update`
    (or let :meth:`task` do so).  It counts jobs ``started``, ``running``,
    ``done`` and ``failed`` (a job failed when its MonitorStatus ``type`` is
    not StopIteration: it raised, or its server was lost -- PeerOffline),
    the ``nodes`` and ``servers`` that are up (initialized and not yet
    closed or disconnected), keeps the :attr:`rate` of jobs ended per second
    over the last ``window`` seconds and, when ``total`` (the number of jobs;
    may be set later) is known, the :attr:`eta` in seconds.

    The line (:meth:`line`) looks like ``dispycos: 1234/10000 done,
    8 running, 2 failed | 2 nodes, 4 servers | 512.3 jobs/s | ETA 17s``; it
    is redrawn on ``stream`` (default ``sys.stderr``) at most every
    ``interval`` seconds, from :meth:`update`, and :meth:`close` replaces it
    with a summary and a newline; while it is there, print other lines on
    that terminal with :meth:`say`.  On a stream that is not a terminal
    nothing is written unless ``force`` is true (then each redraw, and the
    summary, is a plain line).  ``clock`` (default
    ``time.monotonic``) and ``width`` (the terminal's columns) are for tests
    and special terminals; ``label`` starts the line.
    """

    def __init__(self, total=None, stream=None, interval=0.5, force=False, clock=None,
                 window=10.0, width=None, label="dispycos"):
        if not window > 0:
            raise ValueError("Progress: window must be > 0 seconds, not %r" % (window,))
        self.total = total
        self.label = label
        self.window = window
        self.live = LiveLine(stream, interval, force, clock, width)
        self.clock = self.live.clock
        self.started = 0
        self.done = 0
        self.failed = 0
        self.client_closed = False
        self._running = set()          # the tasks of the jobs running
        self._ended_early = set()      # jobs whose end came before their start
        self._nodes = collections.Counter()   # (name, addr) -> nodes up
        self._servers = set()          # Locations of the servers up
        self._ends = collections.deque()      # [clock, jobs ended] (oldest first)
        self._bucket = window / 50.0   # ends closer than this share an entry
        self._first = None             # clock at the first job's start (or end)
        self._last_end = None          # clock at the latest job's end
        self._broken = False

    # ---- counts --------------------------------------------------------------------------

    @property
    def total(self):
        """The number of jobs the run will have (None: not known)."""
        return self._total

    @total.setter
    def total(self, n):
        if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 0):
            raise ValueError("Progress: total must be an int >= 0 or None, not %r" % (n,))
        self._total = n

    @property
    def running(self):
        """Jobs started that have not ended."""
        return len(self._running)

    @property
    def ended(self):
        """Jobs that ended: ``done + failed``."""
        return self.done + self.failed

    @property
    def nodes(self):
        """Nodes initialized and not closed or gone."""
        return sum(self._nodes.values())

    @property
    def servers(self):
        """Servers initialized and not closed or gone."""
        return len(self._servers)

    # ---- the stream ----------------------------------------------------------------------

    def update(self, msg):
        """Account for one message of the status stream and redraw the line
        if ``interval`` has passed.  Messages of other kinds are ignored
        (they may still redraw the line)."""
        with self.live.lock:             # (say() may draw the line from another thread)
            now = self.clock()
            if isinstance(msg, MonitorStatus):
                self._job_end(msg, now)
            elif isinstance(msg, DispycosStatus):
                self._status(msg.status, msg.info, now)
            self.live.tick(self.line)

    def _status(self, status, info, now):
        if status == Status.TaskStarted:
            key = info.task if isinstance(info, DispycosTaskInfo) else info
            try:
                if key in self._ended_early:
                    self._ended_early.discard(key)    # counted when it ended
                    return
                if key in self._running:
                    return
                self._running.add(key)
            except TypeError:                         # not hashable: count it only
                pass
            self.started += 1
            if self._first is None:
                self._first = now
        elif status in _NODE_UP or status in _NODE_DOWN:
            key = (getattr(info, "name", None), getattr(info, "addr", None))
            if status in _NODE_UP:
                self._nodes[key] += 1
            elif self._nodes[key] > 0:
                self._nodes[key] -= 1
                if not self._nodes[key]:
                    del self._nodes[key]
        elif status in _SERVER_UP or status in _SERVER_DOWN:
            try:
                if status in _SERVER_UP:
                    self._servers.add(info)
                else:
                    self._servers.discard(info)
            except TypeError:
                pass
        elif status == Status.ClientClosed:
            self.client_closed = True

    def _job_end(self, msg, now):
        key = msg.info
        try:
            if key in self._running:
                self._running.discard(key)
            else:                       # its TaskStarted is still to come (or never)
                self.started += 1
                self._ended_early.add(key)
        except TypeError:
            self.started += 1
        if msg.type is StopIteration:
            self.done += 1
        else:
            self.failed += 1
        if self._first is None:
            self._first = now
        self._last_end = now
        ends = self._ends
        if ends and now - ends[-1][0] < self._bucket:
            ends[-1][1] += 1
        else:
            ends.append([now, 1])

    # ---- rate, ETA, the line --------------------------------------------------------------

    @property
    def rate(self):
        """Jobs ended per second over the last ``window`` seconds (over the
        time since the first job started, when that is shorter); None
        before any time has passed."""
        if self._first is None:
            return None
        now = self.clock()
        ends = self._ends
        while ends and ends[0][0] <= now - self.window:
            ends.popleft()
        span = min(self.window, now - self._first)
        if span <= 0:
            return None
        return sum(n for _, n in ends) / span

    @property
    def eta(self):
        """Seconds until every one of ``total`` jobs has ended at the
        current :attr:`rate`: 0 when they have, None when ``total`` is not
        known or there is no rate yet."""
        if self._total is None:
            return None
        left = self._total - self.ended
        if left <= 0:
            return 0.0
        rate = self.rate
        if not rate:
            return None
        return left / rate

    def _counts(self):
        if self._total is None:
            done = "%d done" % self.done
        else:
            done = "%d/%d done" % (self.done, self._total)
        return "%s: %s, %d running, %d failed" % (self.label, done, self.running, self.failed)

    def line(self, width=None):
        """The text of the live line, at most ``width - 1`` characters
        (``width`` default: the terminal's; no limit when the stream is not
        a terminal); what does not fit is left out, the cluster part first,
        then the rate, then the ETA."""
        if width is None and not self.live.tty:
            limit = 1 << 16                      # plain lines: nothing left out
        else:
            limit = (self.live.width() if width is None else width) - 1
        rate = self.rate
        parts = [(self._counts(), 9),
                 ("%s, %s" % (_plural(self.nodes, "node"), _plural(self.servers, "server")), 1),
                 ("-- jobs/s" if rate is None else "%.1f jobs/s" % rate, 2)]
        if self._total is not None:
            eta = self.eta
            parts.append(("ETA ?" if eta is None else "ETA %s" % _duration(eta), 3))
        return _fit_parts(parts, max(limit, 1))

    def summary(self):
        """The final line: counts, and how long the jobs took at what
        average rate (from the first start to the last end)."""
        text = self._counts()
        if self._first is not None and self._last_end is not None:
            took = self._last_end - self._first
            text += " | %s" % _duration(took)
            if took > 0:
                text += ", %.1f jobs/s" % (self.ended / took)
        return text

    def close(self):
        """End the line with :meth:`summary` and a newline (on a terminal,
        or with ``force``).  Later calls do nothing."""
        self.live.close(self.summary() if self.live.active else None)

    def say(self, text):
        """Print ``text`` on a line of its own on the progress stream, above
        the live line (see :meth:`LiveLine.say`): printing to the same
        terminal any other way mixes the two.  Any thread may call it."""
        self.live.say(text, self.line)

    def log_handler(self, level=logging.NOTSET):
        """A :class:`LiveLogHandler` for this line: ``logging.getLogger(
        "pycos").addHandler(progress.log_handler())`` prints pycos's log
        messages above the line instead of through it."""
        return LiveLogHandler(self.live, self.line, level)

    # ---- as a status task ----------------------------------------------------------------

    def task(self, forward=None):
        """A task to give as a client's ``status_task``: it updates this
        line with each message it receives, passes the message unchanged to
        ``forward`` (a task, when given), and after ``ClientClosed`` closes
        the line and ends.  ``Client([compute],
        status_task=Progress(total=1000).task(forward=my_status_task))``."""
        if forward is not None and not callable(getattr(forward, "send", None)):
            raise TypeError("Progress.task: forward must be a task, not %r" % (forward,))
        return Task(self._pump, forward)

    def _pump(self, forward, task=None):
        try:
            while True:
                msg = yield task.receive()
                if forward is not None:
                    forward.send(msg)
                try:
                    self.update(msg)
                except Exception as exc:          # the line fails; the messages still go on
                    if not self._broken:
                        self._broken = True
                        logger.warning("dispycos progress: %s: %s", type(exc).__name__, exc)
                if isinstance(msg, DispycosStatus) and msg.status == Status.ClientClosed:
                    break
        finally:
            self.close()


#: the order of the states in a node's line (others follow, as they come)
_NODE_STATES = ("busy", "idle", "starting")


def node_line(name, servers, client=None):
    """The line of a node daemon: ``node n1: client abc | 3 servers: 1
    busy, 1 idle, 1 starting, 2 jobs | 0 busy(2) 1 idle(0) 2 starting``.
    ``servers`` is a list of ``(index, state, jobs)``: ``state`` a short
    word (busy, idle, starting, closing...), ``jobs`` the number it runs
    (None: not known); shown in index order after how many are in each
    state (busy, idle and starting first) and the jobs in all.  ``client``
    is the client served (None: no client)."""
    head = "node %s: %s" % (name, "no client" if client is None else "client %s" % (client,))
    items = sorted(servers, key=lambda s: s[0])
    counts = collections.Counter(state for _, state, _ in items)
    order = [s for s in _NODE_STATES if s in counts]
    order += [s for s in dict.fromkeys(state for _, state, _ in items) if s not in order]
    text = "%s | %s" % (head, _plural(len(items), "server"))
    if not items:
        return text
    summary = ["%d %s" % (counts[s], s) for s in order]
    jobs = [n for _, _, n in items if n is not None]
    if jobs:
        summary.append(_plural(sum(jobs), "job"))
    each = " ".join("%s %s" % (i, state) if n is None else "%s %s(%d)" % (i, state, n)
                    for i, state, n in items)
    return "%s: %s | %s" % (text, ", ".join(summary), each)
