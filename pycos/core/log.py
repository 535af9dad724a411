"""The ``pycos`` logger.

``logger`` is a standard :class:`logging.Logger` named ``pycos``, so an
application that configures ``logging`` decides where its records go and
how they look (handlers, formats, levels), as with any library.

Programs written for pycos 4.x expect more: there, ``pycos.logger`` was a
home-made logger that printed every message at INFO and above on standard
output as ``YYYY-mm-dd HH:MM:SS name - message``, with nothing configured,
and many of them report their results with ``pycos.logger.info()``.  So:

- the logger's level is left unset, as a library's should be (so it is
  the root logger's, WARNING unless the application says otherwise): a
  program that uses pycos and says nothing about logging sees only
  warnings and errors.  4.x programs say: they call
  ``pycos.logger.setLevel(pycos.Logger.DEBUG)`` (or ``INFO``; the 4.x
  spelling ``pycos.logger.setLevel(pycos.logger.DEBUG)`` works too, the
  level names are attributes of the logger), and ``show_ms(flag)`` adds
  milliseconds to the time, as in 4.x.  The programs ``dispycosnode`` and
  ``dispycos`` set INFO for themselves, as 4.x's printed it;
- while the application has configured no handler (none on the root logger,
  none on ``pycos`` or on the logger a record came from), one fallback
  handler prints what 4.x printed: INFO and DEBUG records (those the level
  lets through) on standard output
  in 4.x's format; WARNING and above keep Python's own last-resort
  behaviour (the message on standard error), so problems stay on the error
  stream where tools look for them.  Once the application configures a
  handler that gets pycos's records (``logging.basicConfig()``, pytest's
  capture, a handler on ``pycos``), the fallback prints nothing and the records go only where the
  application sends them.

pycos's own INFO messages are few -- a node's clients and servers coming
and going, a peer lost (not one that said goodbye), a netpycos scheduler
listening on loopback only for want of a secret -- and the rest is DEBUG,
shown only to programs that ask for it.  (4.x renamed its logger to
``dispycos`` when that module was imported; records here keep the name of
the logger they come from.)

``Logger`` keeps programs that make their own 4.x logger working: it has the
old constructor ``Logger(name, stream=sys.stdout, level=None, log_ms=False)``,
attributes (``name``, ``stream``, ``level``, ``log_ms``) and methods
(``setLevel``, ``show_ms``, ``debug``...``critical``, ``log``, ``nolog``,
``flush``, ``shutdown``) but is only a thin face over a ``logging.Logger``
with one stream handler.  ``pycos.logger`` has 4.x's ``show_ms`` and
``nolog`` too.
"""

from __future__ import annotations

import logging
import sys
from typing import IO, TYPE_CHECKING, Any, Literal, Optional, cast

__all__ = ["logger", "Logger"]

#: 4.x's format, without and with milliseconds
_DATEFMT = "%Y-%m-%d %H:%M:%S"
_FMT = "%(asctime)s %(name)s - %(message)s"
_FMT_MS = "%(asctime)s.%(msecs)03d %(name)s - %(message)s"

_LEVELS = (("DEBUG", logging.DEBUG), ("INFO", logging.INFO), ("WARN", logging.WARNING),
           ("WARNING", logging.WARNING), ("ERROR", logging.ERROR),
           ("CRITICAL", logging.CRITICAL), ("FATAL", logging.CRITICAL))


class _Fallback(logging.Handler):
    """What a 4.x program saw, for as long as the application has configured
    no handler of its own (see the module docstring)."""

    pycos_fallback = True

    def __init__(self) -> None:
        logging.Handler.__init__(self)
        self.setFormatter(logging.Formatter(_FMT, _DATEFMT))

    def _others(self, record: logging.LogRecord) -> bool:
        """True when a handler other than this one gets ``record``."""
        c: Optional[logging.Logger]
        found = logging.Logger.manager.loggerDict.get(record.name)
        c = found if isinstance(found, logging.Logger) else logger
        while c is not None:
            if any(h is not self for h in c.handlers):
                return True
            if not c.propagate:
                return False
            c = c.parent
        return False

    def emit(self, record: logging.LogRecord) -> None:
        if self._others(record):
            return
        if record.levelno >= logging.WARNING:
            if logging.lastResort is not None:
                logging.lastResort.handle(record)
            return
        stream = sys.stdout              # (the one of the moment: redirections work)
        if stream is None:
            return
        try:
            stream.write(self.format(record) + "\n")
            stream.flush()
        except Exception:
            self.handleError(record)


def _nolog(*args: Any, **kwargs: Any) -> None:
    """4.x's ``nolog``: takes a message and its arguments, prints nothing
    (4.x programs assign it to silence a level: ``logger.debug = logger.nolog``)."""
    return None


def _show_ms(flag: bool) -> None:
    """4.x's ``pycos.logger.show_ms(flag)``: milliseconds in the time of
    what the fallback prints."""
    _FALLBACK.setFormatter(logging.Formatter(_FMT_MS if flag else _FMT, _DATEFMT))


if TYPE_CHECKING:
    class _PycosLogger(logging.Logger):
        """For type checkers: what ``pycos.logger`` is -- the standard
        logger named ``pycos``, with 4.x's extra attributes set on it below."""

        DEBUG: int
        INFO: int
        WARN: int
        WARNING: int
        ERROR: int
        CRITICAL: int
        FATAL: int

        def show_ms(self, flag: bool) -> None: ...

        def nolog(self, *args: Any, **kwargs: Any) -> None: ...


#: The ``pycos`` logger: a standard :class:`logging.Logger` (see the module
#: docstring), with 4.x's level names as attributes, ``show_ms`` and ``nolog``.
logger = cast("_PycosLogger", logging.getLogger("pycos"))
for _name, _level in _LEVELS:
    setattr(logger, _name, _level)
for _h in list(logger.handlers):      # (this module imported afresh: one fallback)
    if getattr(_h, "pycos_fallback", False):
        logger.removeHandler(_h)
_FALLBACK = _Fallback()
logger.addHandler(_FALLBACK)
setattr(logger, "show_ms", _show_ms)
setattr(logger, "nolog", _nolog)


class Logger(object):
    """Compatibility shim: the original pycos ``Logger`` on top of ``logging``."""

    DEBUG = logging.DEBUG
    INFO = logging.INFO
    WARN = WARNING = logging.WARNING
    ERROR = logging.ERROR
    CRITICAL = FATAL = logging.CRITICAL

    def __init__(self, name: str, stream: Optional[IO[str]] = None, level: Optional[int] = None,
                 log_ms: bool = False) -> None:
        self.name = name
        self._logger = logging.getLogger(name)
        self._handler = logging.StreamHandler(stream if stream is not None else sys.stdout)
        self._logger.addHandler(self._handler)
        self._logger.propagate = False
        self.log_ms = False
        self.show_ms(log_ms)
        self.setLevel(level if level else logging.INFO)

    @property
    def level(self) -> int:
        return self._logger.level

    @property
    def stream(self) -> IO[str]:
        """Where the records go (4.x's attribute)."""
        return self._handler.stream

    def setLevel(self, level: int) -> None:
        self._logger.setLevel(level)

    def show_ms(self, flag: bool) -> None:
        self.log_ms = bool(flag)
        self._handler.setFormatter(logging.Formatter(_FMT_MS if flag else _FMT, _DATEFMT))

    def nolog(self, msg: Any, *args: Any) -> None:
        """Print nothing (4.x: what a level below the logger's did; programs
        assign it to silence a level, ``log.debug = log.nolog``)."""
        return None

    def debug(self, msg: Any, *args: Any) -> None:
        self._logger.debug(msg, *args)

    def info(self, msg: Any, *args: Any) -> None:
        self._logger.info(msg, *args)

    def warning(self, msg: Any, *args: Any) -> None:
        self._logger.warning(msg, *args)

    warn = warning

    def error(self, msg: Any, *args: Any) -> None:
        self._logger.error(msg, *args)

    def critical(self, msg: Any, *args: Any) -> None:
        self._logger.critical(msg, *args)

    fatal = critical

    def log(self, msg: Any, *args: Any) -> None:
        self._logger.log(max(self._logger.level, logging.INFO), msg, *args)

    def flush(self) -> None:
        self._handler.flush()

    def shutdown(self) -> None:
        self.flush()
        self._logger.removeHandler(self._handler)

    def __enter__(self) -> Logger:
        return self

    def __exit__(self, *exc: Any) -> Literal[False]:
        self.shutdown()
        return False
