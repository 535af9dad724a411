"""Small value objects shared by every layer.

Nothing here knows about the scheduler: these are the plain data types that
travel in messages (MonitorStatus), name places (Location), bag attributes
(Struct), make one-per-process classes (Singleton) and turn objects into
bytes (serialize).  Keeping them apart lets netpycos pickle them without
pulling in the kernel.
"""

from __future__ import annotations

import builtins
import inspect
import pickle
import socket
import threading
from typing import TYPE_CHECKING, Any, Dict, Optional, Tuple, Type, TypeVar

_T = TypeVar("_T")

__all__ = ["MonitorStatus", "HotSwapException", "Location", "Singleton", "Struct",
           "serialize", "deserialize", "unserialize"]


class MonitorStatus(object):
    """What a monitor receives when a task it observes ends.

    ``info`` is the task; ``type`` and ``value`` say how it ended:

    * normal exit: ``(StopIteration, return value)``;
    * uncaught exception: ``(exception class, traceback text)``;
    * terminated: ``(StopIteration, the task's current value)``.

    The same object is the value (``Task.value()``/``finish()``) of a task
    that died of an uncaught exception.  Then ``exception`` is the exception
    object itself (with its ``__traceback__``), and :meth:`reraise` raises
    it; otherwise ``exception`` is None.  A status that crossed processes
    (netpycos) carries the exception only if it survives pickling, without
    its traceback (the text in ``value`` has it).
    """

    __slots__ = ("info", "type", "value", "exception")

    info: Any
    type: Any
    value: Any
    exception: Optional[BaseException]

    def __init__(self, info: Any, type: Any, value: Any = None,
                 exception: Optional[BaseException] = None) -> None:
        self.info = info
        self.type = type
        self.value = value
        self.exception = exception

    def failed(self) -> bool:
        """True if the task died of an uncaught exception."""
        t = self.type
        return (isinstance(t, builtins.type) and issubclass(t, BaseException)
                and t is not StopIteration)

    def reraise(self) -> None:
        """Raise the task's exception here if the task failed; do nothing
        (return None) if it ended normally or was terminated::

            result = task.value()
            if isinstance(result, pycos.MonitorStatus):
                result.reraise()

        The exception raised is the task's own object, its traceback
        continued by this call; when the object did not come along (a
        status from another process whose exception does not pickle), a
        RuntimeError carrying the traceback text stands in for it."""
        if not self.failed():
            return None
        exc = self.exception
        if exc is None:
            raise RuntimeError("task %s failed with %s:\n%s" % (
                self.info, getattr(self.type, "__name__", self.type), self.value))
        raise exc

    def __repr__(self) -> str:
        name = getattr(self.type, "__name__", self.type)
        return "MonitorStatus(%r, %s, %r)" % (self.info, name, self.value)

    def __getstate__(self) -> Tuple[Any, ...]:
        exc = self.exception
        if exc is None:
            return (self.info, self.type, self.value)
        try:        # only an exception that comes back from pickle travels
            pickle.loads(pickle.dumps(exc))
        except Exception:
            return (self.info, self.type, self.value)
        return (self.info, self.type, self.value, exc)

    def __setstate__(self, state: Tuple[Any, ...]) -> None:
        self.info, self.type, self.value = state[:3]
        self.exception = state[3] if len(state) > 3 else None


class HotSwapException(Exception):
    """Thrown into a hot-swappable task at its yield: ``args[0]`` is the new
    generator.  Letting it propagate accepts the swap; catching it refuses."""


class Location(object):
    """Where a scheduler listens: ``addr`` (numeric IP) and ``port``."""

    __slots__ = ("addr", "port")

    addr: str
    port: int

    def __init__(self, host: str, tcp_port: int) -> None:
        if not isinstance(host, str) or not host:
            raise TypeError("host must be a non-empty str, not %r" % (host,))
        self.addr = self._numeric(host)
        self.port = int(tcp_port)

    @staticmethod
    def _numeric(host: str) -> str:
        for family in (socket.AF_INET, socket.AF_INET6):
            try:
                socket.inet_pton(family, host)
                return host
            except (OSError, ValueError):
                pass
        return str(socket.getaddrinfo(host, 0, 0, socket.SOCK_STREAM)[0][4][0])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Location) and self.port == other.port and self.addr == other.addr

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash((self.addr, self.port))

    def __repr__(self) -> str:
        return "%s:%s" % (self.addr, self.port)

    def __getstate__(self) -> Tuple[str, int]:
        return (self.addr, self.port)

    def __setstate__(self, state: Tuple[str, int]) -> None:
        self.addr, self.port = state


class _InitSignature(object):
    """``Cls.__signature__`` of the classes made by :class:`Singleton`, for
    :func:`inspect.signature` and ``help()``: the parameters of the class's
    ``__init__`` (which the metaclass's ``__call__`` passes its arguments
    on to), not that ``__call__``'s ``(*args, **kwargs)``."""

    def __get__(self, cls: Optional[type], metaclass: Optional[type] = None
                ) -> Optional[inspect.Signature]:
        if cls is None:         # (on the metaclass itself: none of its own)
            return None
        # (cls is a class: its __init__ is an attribute, not a bound method)
        sig = inspect.signature(getattr(cls, "__init__"))
        return sig.replace(parameters=list(sig.parameters.values())[1:])


class Singleton(type):
    """Metaclass: ``Cls()`` makes one instance and then keeps returning it.

    ``Cls.instance(*args)`` is the same as ``Cls(*args)``; ``Cls.discard()``
    forgets the instance so the next call makes a fresh one.  Arguments of
    later calls are passed to the instance's ``_singleton_check`` (if it has
    one), which may refuse them when they contradict how it was made.  Each class
    (subclasses included) has its own instance.  Creation is thread-safe.
    """

    _memo: Dict[type, Any] = {}
    _lock = threading.RLock()

    def __call__(cls, *args, **kwargs):
        inst = Singleton._memo.get(cls)
        if inst is None:
            with Singleton._lock:
                inst = Singleton._memo.get(cls)
                if inst is None:
                    inst = super(Singleton, cls).__call__(*args, **kwargs)
                    Singleton._memo[cls] = inst
                    return inst
        if args or kwargs:
            check = getattr(inst, "_singleton_check", None)
            if check is not None:
                check(*args, **kwargs)
        return inst

    def instance(cls: Type[_T], *args: Any, **kwargs: Any) -> _T:
        """The instance, made now (with these arguments) if there is none."""
        return cls(*args, **kwargs)

    def discard(cls, inst: Any = None) -> None:
        """Forget the instance (only if it is ``inst``, when given)."""
        with Singleton._lock:
            if inst is None or Singleton._memo.get(cls) is inst:
                Singleton._memo.pop(cls, None)

    def existing(cls: Type[_T]) -> Optional[_T]:
        """The instance if one exists, else None (never creates one)."""
        return Singleton._memo.get(cls)

    # the original's name for discard
    empty = discard

    __signature__ = _InitSignature()


class Struct(object):
    """An attribute bag: ``Struct(a=1, b=2).a == 1``."""

    def __init__(self, **kwargs: Any) -> None:
        self.__dict__.update(kwargs)

    def __setattr__(self, name: str, value: Any) -> None:
        self.__dict__[name] = value

    if TYPE_CHECKING:
        # for type checkers only: the attributes are whatever was given
        def __getattr__(self, name: str) -> Any: ...

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Struct) and self.__dict__ == other.__dict__

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None     # type: ignore[assignment]  # (mutable: unhashable, like dict)

    def __repr__(self) -> str:
        return "Struct(%s)" % ", ".join("%s=%r" % kv for kv in sorted(self.__dict__.items()))


def serialize(obj: Any) -> bytes:
    """Pickle ``obj`` with the protocol in ``pycos.config``."""
    from pycos import config
    return pickle.dumps(obj, config._pickle_protocol())


def deserialize(data: bytes) -> Any:
    """Inverse of :func:`serialize`.  Only for data from trusted peers."""
    return pickle.loads(data)


unserialize = deserialize
