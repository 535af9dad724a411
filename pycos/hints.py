"""Type aliases for annotating pycos programs, and pycos's own API.

pycos ships type hints (the package has a ``py.typed`` marker), so mypy and
other checkers read its signatures.  A generator-based API needs a few names
of its own to say what its calls take and give; they live here, in a module
that imports nothing from pycos, so that any layer (and any program) can use
them.  docs/typing.md explains how to annotate a task.

* :data:`Yieldable` -- what a call marked ``[y]`` returns: an object for the
  task to ``yield``.  Its result is what the ``yield`` expression gives, and
  a checker cannot connect the two: ``x = yield task.receive()`` gives ``x``
  the generator's *send* type (``Any`` in :data:`TaskGenerator`).  It is
  ``object`` on purpose: using the return value of such a call *without*
  ``yield`` (``data = task.receive(); data.decode()``) is then a type error,
  as it is a mistake at run time.
* :data:`TaskGenerator` -- the generator a task runs
  (``Generator[Any, Any, Any]``); annotate a task's function as returning
  ``TaskGenerator`` or ``Generator[Any, Any, R]`` for its result type R.
* :data:`TaskTarget` -- a function ``Task(target, ...)`` accepts: one that
  returns a generator.
* :data:`Timeout` -- seconds as an int or float, or None for no limit.
"""

from typing import Any, Callable, Generator, Optional

__all__ = ["Yieldable", "TaskGenerator", "TaskTarget", "Timeout"]

#: What a call marked ``[y]`` returns: yield it (see the module docstring).
Yieldable = object

#: The generator a task runs: yields pycos calls and values, receives Any.
TaskGenerator = Generator[Any, Any, Any]

#: A task's target: a generator function (any arguments).
TaskTarget = Callable[..., Generator[Any, Any, Any]]

#: A timeout in seconds (int or float); None waits without limit.
Timeout = Optional[float]
