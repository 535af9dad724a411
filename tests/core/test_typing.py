"""The API's introspection and type hints are true.

* ``inspect.signature`` (and so ``help()``) shows what the classes and
  functions really take -- not the ``(*args, **kwargs)`` of a metaclass's
  ``__call__`` or of a constructor that parses its own arguments;
* every public function and method of the exported classes is fully
  annotated, and the installed package says so (``py.typed``);
* mypy (when installed: the ``dev`` extra, on CPython) accepts a correctly
  typed user program -- the one docs/typing.md shows -- and rejects one with
  type errors, for the reasons expected;
* the docs pages that docstrings point to (``docs/tasks.md``...) exist.
"""
import ast
import inspect
import os
import re
import socket
import subprocess
import sys

import pytest

import pycos
import pycos.aio
import pycos.asyncfile

pytestmark = pytest.mark.timeout(120)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
P = inspect.Parameter


def _net():
    """pycos.netpycos, imported in the test that needs it, never when this
    module is collected: importing it makes ``pycos.Pycos`` the networked
    scheduler, which the modules collected after this one would then take
    for ``pycos.Pycos`` (the suite's conftest undoes it after each test)."""
    import pycos.netpycos
    return pycos.netpycos


def _params(obj):
    return [(p.name, p.kind, p.default) for p in inspect.signature(obj).parameters.values()]


# ---- (a) signatures -------------------------------------------------------------


def test_task_signature_is_target_then_its_arguments():
    assert _params(pycos.Task) == [("target", P.POSITIONAL_ONLY, P.empty),
                                   ("args", P.VAR_POSITIONAL, P.empty),
                                   ("kwargs", P.VAR_KEYWORD, P.empty)]
    # a subclass (netpycos's SysTask) shows the same
    assert _params(_net().SysTask) == _params(pycos.Task)
    # and help() says it
    import pydoc
    text = pydoc.render_doc(pycos.Task, renderer=pydoc.plaintext)
    assert re.search(r"^ \|  Task\(target\b[^\n]*/, \*args", text, re.M), text[:500]


def test_task_instance_signature_is_finish():
    # a Task is callable (``yield task()`` is ``yield task.finish()``): the
    # class's signature must not leak onto instances
    def f(task=None):
        yield task.sleep(0)
        return 7
    t = pycos.Task(f)
    assert _params(t) == [("timeout", P.POSITIONAL_OR_KEYWORD, None)]
    assert t.value(10) == 7


def test_pycos_signature_is_its_constructors():
    assert _params(pycos.core.scheduler.Pycos) == [
        ("embedded", P.POSITIONAL_OR_KEYWORD, False),
        ("virtual_time", P.POSITIONAL_OR_KEYWORD, False),
        ("backend", P.POSITIONAL_OR_KEYWORD, None),
        ("name", P.POSITIONAL_OR_KEYWORD, "")]
    netpycos = _net()
    net = _params(netpycos.Pycos)
    names = [n for n, _, _ in net]
    assert names[:3] == ["udp_port", "tcp_port", "host"], names
    for name in ("secret", "certfile", "keyfile", "dest_path", "max_file_size", "insecure",
                 "embedded", "virtual_time", "backend"):
        assert name in names, name
    assert dict((n, d) for n, _, d in net)["secret"] == ""
    # the classes with the Singleton metaclass follow their own __init__
    for cls in (pycos.core.scheduler.Pycos, netpycos.Pycos):
        init = list(inspect.signature(cls.__init__).parameters.values())[1:]
        assert list(inspect.signature(cls).parameters.values()) == init


def test_constructor_signatures():
    netpycos = _net()
    expect = {
        pycos.Channel: ["name", "transform"],
        pycos.AsyncSocket: ["sock", "blocking", "keyfile", "certfile", "ssl_version",
                            "ssl_context", "server_hostname", "max_msg_size",
                            "handshake_timeout"],
        pycos.asyncfile.AsyncFile: ["fd_or_fileobj", "mode", "share"],
        pycos.asyncfile.AsyncPipe: ["first", "last"],
        pycos.Lock: [], pycos.RLock: [], pycos.Event: [],
        pycos.Condition: ["lock"],
        pycos.Semaphore: ["value"], pycos.BoundedSemaphore: ["value"],
        pycos.CategorizeMessages: ["task"],
        pycos.AsyncThreadPool: ["num_threads"],
        pycos.AsyncDBCursor: ["pool", "cursor"],
        pycos.MonitorStatus: ["info", "type", "value", "exception"],
        pycos.Location: ["host", "tcp_port"],
        pycos.Logger: ["name", "stream", "level", "log_ms"],
        netpycos.RPS: ["method", "name"],
        netpycos.PeerStatus: ["location", "name", "status"],
    }
    for cls, names in expect.items():
        assert [n for n, _, _ in _params(cls)] == names, cls


def _exported():
    """(qualified name, object) of everything the public modules export."""
    seen = set()
    for mod in (pycos, _net(), pycos.asyncfile, pycos.aio):
        for name in mod.__all__:
            obj = getattr(mod, name)
            if id(obj) not in seen and callable(obj):
                seen.add(id(obj))
                yield "%s.%s" % (mod.__name__, name), obj


def _public_methods(cls):
    """(name, function) of the public methods of ``cls`` (inherited ones
    too) defined by pycos itself -- not the socket methods an AsyncSocket
    passes through, whose docstrings name them, nor what a class has from
    the standard library (Windows' asyncfile.Popen is a subprocess.Popen)."""
    for name, value in inspect.getmembers(cls):
        if name.startswith("_") and name != "__call__":
            continue
        raw = inspect.getattr_static(cls, name)
        if (getattr(raw, "__doc__", None) or "").startswith("``socket.socket."):
            continue
        if isinstance(raw, property):
            value = raw.fget
        elif isinstance(raw, (staticmethod, classmethod)):
            value = raw.__func__
        if inspect.isfunction(value) and value.__module__.startswith("pycos"):
            yield name, value


def test_no_exported_callable_hides_its_signature_behind_star_args():
    lies = []
    for qual, obj in _exported():
        if inspect.isclass(obj) and issubclass(obj, BaseException):
            continue        # exceptions take what BaseException takes
        if obj is pycos.Singleton:
            continue        # a metaclass
        params = list(inspect.signature(obj).parameters.values())
        kinds = [p.kind for p in params]
        if kinds == [P.VAR_POSITIONAL, P.VAR_KEYWORD]:
            lies.append(qual)
        if inspect.isclass(obj):
            for name, fn in _public_methods(obj):
                kinds = [p.kind for p in inspect.signature(fn).parameters.values()][1:]
                if kinds == [P.VAR_POSITIONAL, P.VAR_KEYWORD] and name != "__call__":
                    lies.append("%s.%s" % (qual, name))
    assert not lies, lies


def test_socket_pass_throughs_say_what_they_take():
    for name in ("bind", "listen", "getsockname", "setsockopt", "shutdown", "makefile",
                 "sendfile"):
        try:
            own = _params(getattr(socket.socket, name))
        except (TypeError, ValueError):
            # no signature known (a C method, CPython): the docstring gives it
            assert "%s(" % name in getattr(pycos.AsyncSocket, name).__doc__, name
        else:
            # the pass-through shows the socket method's own signature
            assert _params(getattr(pycos.AsyncSocket, name)) == own, name


def test_public_api_is_fully_annotated():
    missing = []
    for qual, obj in _exported():
        if inspect.isclass(obj):
            if issubclass(obj, BaseException) or obj is pycos.Singleton:
                continue
            fns = list(_public_methods(obj))
            if obj.__init__ is not object.__init__:
                fns.append(("__init__", obj.__init__))
        else:
            fns = [("", obj)]
        for name, fn in fns:
            sig = inspect.signature(fn)
            params = list(sig.parameters.values())
            if params and params[0].name in ("self", "cls"):
                params = params[1:]
            bare = [p.name for p in params if p.annotation is P.empty]
            if bare or sig.return_annotation is inspect.Signature.empty:
                missing.append("%s%s%s" % (qual, "." if name else "", name))
    assert not missing, "not fully annotated: %s" % missing


def test_yieldable_calls_are_annotated_as_such():
    # a [y] call's docstring and its annotation agree
    for fn in (pycos.Task.sleep, pycos.Task.receive, pycos.Task.finish, pycos.Lock.acquire,
               pycos.Condition.wait, pycos.Event.wait, pycos.Channel.deliver,
               pycos.AsyncThreadPool.async_task, pycos.aio.wait,
               pycos.asyncfile.AsyncFile.read):
        assert fn.__doc__.startswith("[y]"), fn
        assert inspect.signature(fn).return_annotation == "Yieldable", fn


# ---- (b) py.typed ----------------------------------------------------------------


def test_package_is_marked_typed():
    # the package imported (the installed one) carries the PEP 561 marker ...
    marker = os.path.join(os.path.dirname(pycos.__file__), "py.typed")
    assert os.path.isfile(marker), marker
    # ... and the packaging declares it, so that a wheel has it too
    with open(os.path.join(ROOT, "pyproject.toml")) as f:
        text = f.read()
    assert re.search(r'^"pycos" = \[[^]]*"py\.typed"', text, re.M), \
        "pyproject.toml: [tool.setuptools.package-data] must list py.typed for pycos"


def test_netpycos_spells_out_the_whole_pycos_api_for_type_checkers():
    # netpycos star-imports pycos at run time but lists the names for type
    # checkers (so that its own Pycos wins): the list must keep up with pycos
    with open(os.path.join(ROOT, "pycos", "netpycos.py")) as f:
        tree = ast.parse(f.read())
    names = set()
    for node in tree.body:
        body = node.body if (isinstance(node, ast.If) and isinstance(node.test, ast.Name)
                             and node.test.id == "TYPE_CHECKING") else [node]
        for stmt in body:
            if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                names.update((a.asname or a.name).split(".")[0] for a in stmt.names)
            elif isinstance(stmt, (ast.ClassDef, ast.FunctionDef)):
                names.add(stmt.name)
    missing = sorted(set(pycos.__all__) - names)
    assert not missing, "pycos/netpycos.py's TYPE_CHECKING import lacks %s" % missing


# ---- (c) mypy on user programs ------------------------------------------------------


def _typing_page_program():
    with open(os.path.join(ROOT, "docs", "typing.md")) as f:
        blocks = re.findall(r"^```python\n(.*?)^```", f.read(), re.DOTALL | re.MULTILINE)
    assert blocks, "docs/typing.md has no ```python program"
    return blocks[0]


_BAD = '''\
from typing import Any, Generator, Optional

import pycos


def echo(task: Optional[pycos.Task] = None) -> Generator[Any, Any, None]:
    assert task is not None
    msg = yield task.receive()
    reply = task.receive()                  # 'yield' forgotten
    print(msg, reply.decode())


def not_a_generator(n: int) -> int:
    return n


pycos.Task(echo)
pycos.Task(not_a_generator, 1)
pycos.Channel("news").send()
pycos.Lock().acquire(timeout="soon")
sched = pycos.Pycos(embeded=True)
location: pycos.Location = sched.location
'''

# (line of _BAD, what mypy's message must say)
_BAD_EXPECTED = [
    (10, r'"object" has no attribute "decode"'),
    (18, r'Argument 1 to "Task" has incompatible type "Callable\[\[int\], int\]"'),
    (19, r'Missing positional argument "message" in call to "send" of "Channel"'),
    (20, r'Argument "timeout" to "acquire" of "Lock" has incompatible type "str"'),
    (21, r'Unexpected keyword argument "embeded" for "Pycos"'),
    (22, r'Incompatible types in assignment \(expression has type "Location \| None"'),
]


def test_mypy_accepts_a_typed_program_and_rejects_type_errors(tmp_path):
    try:
        import mypy.api as _api  # noqa: F401
    except ImportError:
        pytest.skip("mypy is not installed (the dev extra installs it, on CPython)")
    good = tmp_path / "good.py"
    good.write_text(_typing_page_program())
    bad = tmp_path / "bad.py"
    bad.write_text(_BAD)
    # a config of its own (no user's or project's settings apply), and the
    # pycos this test imports found as an installed package would be: on
    # the interpreter's path, with its py.typed
    (tmp_path / "mypy.ini").write_text("[mypy]\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(os.path.abspath(pycos.__file__)))]
        + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.pop("MYPYPATH", None)

    def run_mypy(*files):
        proc = subprocess.run(
            [sys.executable, "-m", "mypy", "--strict", "--no-error-summary",
             "--cache-dir", str(tmp_path / "cache"), "--python-executable", sys.executable]
            + [str(f) for f in files],
            cwd=str(tmp_path), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            universal_newlines=True, timeout=100)
        return proc.returncode, proc.stdout + proc.stderr

    rc, out = run_mypy(good, bad)
    lines = out.splitlines()
    good_errors = [line for line in lines if line.startswith("good.py:")]
    assert not good_errors, out
    assert rc == 1, out
    for lineno, message in _BAD_EXPECTED:
        assert any(line.startswith("bad.py:%d: error:" % lineno) and re.search(message, line)
                   for line in lines), "no error %r on line %d:\n%s" % (message, lineno, out)
    # the errors are those, nothing about pycos itself
    errors = [line for line in lines if ": error:" in line]
    assert all(line.startswith("bad.py:") for line in errors), out
    assert len(errors) == len(_BAD_EXPECTED), out


def test_the_typing_page_program_runs():
    proc = subprocess.run([sys.executable, "-c", _typing_page_program()],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "sum of squares: 14\n", proc.stdout + proc.stderr


# ---- docs the docstrings point to ---------------------------------------------------


def test_docs_pages_named_in_the_package_exist():
    named = set()
    for top, dirs, files in os.walk(os.path.join(ROOT, "pycos")):
        for name in files:
            if name.endswith(".py"):
                with open(os.path.join(top, name)) as f:
                    named.update(re.findall(r"\bdocs/([A-Za-z0-9_.-]+\.md)\b", f.read()))
    assert {"tasks.md", "index.md"} <= named, named
    missing = sorted(p for p in named if not os.path.isfile(os.path.join(ROOT, "docs", p)))
    assert not missing, "docstrings point to docs pages that do not exist: %s" % missing
