"""The ``pycos`` logger.

``logger`` is a standard :class:`logging.Logger` named ``pycos``, so the
application decides where records go and how they look (``logging`` config,
handlers, levels).  pycos installs no handler: with no configuration at all,
warnings and errors (for instance an uncaught exception in a task) still
reach stderr through ``logging.lastResort``, and nothing below WARNING is
printed.

``Logger`` keeps programs written for the original working: it has the old
constructor ``Logger(name, stream=sys.stdout, level=None, log_ms=False)`` and
methods (``setLevel``, ``show_ms``, ``debug``...``critical``, ``flush``,
``shutdown``) but is only a thin face over a ``logging.Logger`` with one
stream handler.
"""

import logging
import sys

__all__ = ["logger", "Logger"]

logger = logging.getLogger("pycos")


class Logger(object):
    """Compatibility shim: the original pycos ``Logger`` on top of ``logging``."""

    DEBUG = logging.DEBUG
    INFO = logging.INFO
    WARN = WARNING = logging.WARNING
    ERROR = logging.ERROR
    CRITICAL = FATAL = logging.CRITICAL

    def __init__(self, name, stream=None, level=None, log_ms=False):
        self.name = name
        self._logger = logging.getLogger(name)
        self._handler = logging.StreamHandler(stream if stream is not None else sys.stdout)
        self._logger.addHandler(self._handler)
        self._logger.propagate = False
        self.show_ms(log_ms)
        self.setLevel(level if level else logging.INFO)

    @property
    def level(self):
        return self._logger.level

    def setLevel(self, level):
        self._logger.setLevel(level)

    def show_ms(self, flag):
        datefmt = "%Y-%m-%d %H:%M:%S"
        fmt = "%(asctime)s.%(msecs)03d %(name)s - %(message)s" if flag else \
            "%(asctime)s %(name)s - %(message)s"
        self._handler.setFormatter(logging.Formatter(fmt, datefmt))

    def debug(self, msg, *args):
        self._logger.debug(msg, *args)

    def info(self, msg, *args):
        self._logger.info(msg, *args)

    def warning(self, msg, *args):
        self._logger.warning(msg, *args)

    warn = warning

    def error(self, msg, *args):
        self._logger.error(msg, *args)

    def critical(self, msg, *args):
        self._logger.critical(msg, *args)

    fatal = critical

    def log(self, msg, *args):
        self._logger.log(max(self._logger.level, logging.INFO), msg, *args)

    def flush(self):
        self._handler.flush()

    def shutdown(self):
        self.flush()
        self._logger.removeHandler(self._handler)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.shutdown()
        return False
