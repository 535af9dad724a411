"""dispycos packaging: a client's ``components`` as code and files to ship.

A Client is given a list of *components*; :func:`package` turns it into a
:class:`Package` -- one source text plus a list of files -- that servers on
other hosts load with :func:`load`.  Nothing here touches the network.

What each kind of component becomes (as in pycos 4.x):

* a function, generator function or class defined at module level: its
  source, dedented (a ``def`` inside ``if __name__ == '__main__':`` is fine),
  decorators included -- the decorator runs again on the server, so it must
  exist there: ship it too, earlier in the list;
* an instance: the source of its class.  The instance itself (its state) is
  *not* shipped: pass it to a job as an argument (it is pickled then);
* a module: its ``.py`` file, placed by its import name (``pkg.mod`` ->
  ``pkg/mod.py``, a package -> ``pkg/__init__.py``; the ``__main__`` script by
  its file name), so ``import pkg.mod`` works in the server's directory;
* a path (str or os.PathLike): that file, under its path relative to the
  current directory if it is below it (``data/in.txt`` stays
  ``data/in.txt``), else under its base name.

**Imports.**  A function's source does not carry the imports at the top of
its file.  As in 4.x, import inside the function (``def job(task=None):
import math ...``), ship your helper module as a component and import it
inside the function, or import in ``server_setup`` with ``global name``.
The server's namespace also holds the names it defines for jobs (``pycos``,
``dispycos_close_server`` ...).

**Namespace.**  :func:`load` executes the code in the namespace it is given
(the server passes its ``__main__`` module's dict) or in a fresh dict whose
``__name__`` is ``'__main__'``: the client's classes usually live in its
``__main__``, and an object pickled on one side as ``__main__.C`` must find
``C`` in ``__main__`` on the other.

Refused, each with a TypeError (not shippable at all) or ValueError (not
shippable as it is) that names the component and the reason: lambdas,
builtins, methods, nested functions and classes, anything without source
(defined interactively), instances of builtin types, compiled modules,
missing files, directories, and two different components with one name.
"""

import ast
import functools
import hashlib
import inspect
import io
import linecache
import os
import reprlib
import tokenize
import types
from collections import namedtuple

__all__ = ["Package", "PackageFile", "LoadError", "package", "add_source", "load"]

#: a file to send: absolute ``path`` here, relative ``name`` (always with
#: ``/``) under the server's directory there, and its ``size`` in bytes
PackageFile = namedtuple("PackageFile", "path name size")

_CHUNK = 1 << 20


class Package(object):
    """What :func:`package` makes: ``code`` (one source text), ``names``
    (the functions and classes it defines, in order), ``files`` (tuple of
    :class:`PackageFile`) and ``digest`` (hex sha256 over the code and the
    files' names and contents: equal digests, equal packages)."""

    def __init__(self, code, names, files, digest, origins):
        self.code = code
        self.names = tuple(names)
        self.files = tuple(files)
        self.digest = digest
        self._origins = origins      # name -> (module, qualname) of what was shipped
        self._extra = {}             # add_source(): name -> (origin, source)

    def __repr__(self):
        return "Package(names=%r, files=%r, digest=%r)" % (
            list(self.names), [f.name for f in self.files], self.digest[:16])


class LoadError(Exception):
    """Shipped code that does not load: ``component`` is the name of the
    function/class (or ``'line N'``) whose definition failed, ``error`` the
    exception it raised (also the ``__cause__``)."""

    def __init__(self, component, error):
        super().__init__(component, error)
        self.component = component
        self.error = error

    def __str__(self):
        return "component %r does not load: %s: %s" % (
            self.component, type(self.error).__name__, self.error)


# ---- sources --------------------------------------------------------------------------

def _label(index, comp):
    return "components[%d] (%s)" % (index, reprlib.repr(comp))


def _dedent(lines):
    """The source ``lines`` with the first line's indentation removed from
    every line, except lines that begin inside a multi-line string (their
    text is data) and lines indented less (they can only be continuations)."""
    first = lines[0]
    indent = first[:len(first) - len(first.lstrip())]
    text = "".join(lines)
    if not indent:
        return text
    inside = set()
    fstrings = []
    fs_start = getattr(tokenize, "FSTRING_START", None)      # Python >= 3.12
    fs_end = getattr(tokenize, "FSTRING_END", None)
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.STRING:
                inside.update(range(tok.start[0] + 1, tok.end[0] + 1))
            elif tok.type == fs_start:
                fstrings.append(tok.start[0])
            elif tok.type == fs_end and fstrings:
                inside.update(range(fstrings.pop() + 1, tok.end[0] + 1))
    except (tokenize.TokenError, SyntaxError):
        return text                  # the caller's parse reports it
    return "".join(line if n in inside or not line.startswith(indent) else line[len(indent):]
                   for n, line in enumerate(lines, 1))


def _source(obj, label):
    """(name, dedented source) of a module-level function or class."""
    name = obj.__name__
    if name == "<lambda>":
        raise ValueError("%s: a lambda has no name to call it by on a server; "
                         "define it with def" % label)
    qualname = getattr(obj, "__qualname__", name)
    if qualname != name and "." not in qualname:
        raise ValueError("%s: its __name__ %r is not the name it was defined with (%r)"
                         % (label, name, qualname))
    if qualname != name:
        where = qualname.rsplit(".", 1)[0].replace(".<locals>", "")
        hint = (" (a decorator's wrapper without functools.wraps?)"
                if "<locals>" in qualname else "")
        raise ValueError("%s: %r is defined inside %r%s; only module-level functions and "
                         "classes can be shipped, as their source must stand alone"
                         % (label, name, where, hint))
    try:
        lines, _ = inspect.getsourcelines(obj)
    except (OSError, TypeError) as exc:
        raise ValueError("%s: the source of %r is not available (defined interactively, "
                         "or its file is gone): %s" % (label, name, exc)) from None
    text = _dedent(lines)
    if not text.endswith("\n"):
        text += "\n"
    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        raise ValueError("%s: the source found for %r does not parse: %s"
                         % (label, name, exc)) from None
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    if len(tree.body) != 1 or not isinstance(tree.body[0], kinds) or tree.body[0].name != name:
        raise ValueError("%s: the source found for %r is not its definition (was its file "
                         "changed after it was imported, or was it renamed?)" % (label, name))
    return name, text


def _python_code(func):
    """True if ``func`` (or a method's function) runs Python bytecode (PyPy's
    builtins are functions too, but with a builtin code object)."""
    func = getattr(func, "__func__", func)
    return isinstance(getattr(func, "__code__", None), types.CodeType)


def _origin(obj):
    return (getattr(obj, "__module__", None), getattr(obj, "__qualname__", obj.__name__))


# ---- files ----------------------------------------------------------------------------

def _module_file(mod, label):
    """(absolute path, name on the node) of a module's source file."""
    path = getattr(mod, "__file__", None)
    if not path:
        raise ValueError("%s: module %r has no file (a builtin module or a namespace "
                         "package)" % (label, mod.__name__))
    if path.endswith(".pyc") and os.path.isfile(path[:-1]):
        path = path[:-1]
    if not path.endswith(".py"):
        raise TypeError("%s: module %r is not Python source (%s); only .py modules can be "
                        "shipped" % (label, mod.__name__, path))
    spec = getattr(mod, "__spec__", None)
    modname = spec.name if spec is not None else mod.__name__
    if modname == "__main__":
        name = os.path.basename(path)
    elif os.path.basename(path) == "__init__.py":
        name = modname.replace(".", "/") + "/__init__.py"
    else:
        name = modname.replace(".", "/") + ".py"
    return os.path.abspath(path), name


def _path_file(comp, label):
    """(absolute path, name on the node) of a file given by path."""
    path = os.fspath(comp)
    if not isinstance(path, str):
        raise TypeError("%s: a file path must be a str, not %s" % (label, type(path).__name__))
    if not path:
        raise ValueError("%s: an empty file path" % label)
    path = os.path.abspath(path)
    if not os.path.exists(path):
        raise ValueError("%s: no such file: %s" % (label, path))
    if os.path.isdir(path):
        raise ValueError("%s: %s is a directory; ship its files one by one" % (label, path))
    if not os.path.isfile(path):
        raise ValueError("%s: %s is not a regular file" % (label, path))
    if not os.access(path, os.R_OK):
        raise ValueError("%s: %s is not readable" % (label, path))
    cwd = os.getcwd()
    if os.path.commonpath([cwd, path]) == cwd:
        name = os.path.relpath(path, cwd).replace(os.sep, "/")
    else:
        name = os.path.basename(path)
    return path, name


# ---- package --------------------------------------------------------------------------

def package(components):
    """A :class:`Package` of ``components`` (a list, or one component); see
    the module docstring for what each kind becomes and what is refused."""
    if not isinstance(components, (list, tuple)):
        components = [components]
    parts, names, origins = [], [], {}
    files, by_path, by_name = [], set(), {}

    def add_file(path, name, label):
        if path in by_path:
            return
        if name in by_name:
            raise ValueError("%s: %s and %s would both be %r on the node"
                             % (label, by_name[name], path, name))
        by_path.add(path)
        by_name[name] = path
        files.append(PackageFile(path, name, os.path.getsize(path)))

    for index, comp in enumerate(components):
        label = _label(index, comp)
        if isinstance(comp, (str, bytes, os.PathLike)):
            add_file(*_path_file(comp, label), label)
            continue
        if inspect.ismodule(comp):
            add_file(*_module_file(comp, label), label)
            continue
        if isinstance(comp, functools.partial):
            raise TypeError("%s: a functools.partial can not be shipped; ship the function "
                            "and give the arguments to the job" % label)
        if inspect.ismethod(comp) and _python_code(comp):
            raise TypeError("%s: a bound method can not be shipped; ship its class"
                            % label)
        if inspect.isroutine(comp) and not (inspect.isfunction(comp) and _python_code(comp)):
            raise TypeError("%s: a builtin has no Python source to ship" % label)
        if not (inspect.isfunction(comp) or inspect.isclass(comp)):
            cls = type(comp)
            if cls.__module__ == "builtins":
                raise TypeError("%s: an instance of builtin type %r can not be shipped; "
                                "pass data to jobs as arguments" % (label, cls.__name__))
            comp = cls                 # an instance: its class's source
        elif inspect.isclass(comp) and comp.__module__ == "builtins":
            raise TypeError("%s: builtin class %r has no Python source to ship"
                            % (label, comp.__name__))
        origin = _origin(comp)
        if comp.__name__ in origins:
            if origins[comp.__name__] == origin:
                continue
            raise ValueError("%s: another component is also called %r (%s.%s)"
                             % (label, comp.__name__, *origins[comp.__name__]))
        name, text = _source(comp, label)
        origins[name] = origin
        names.append(name)
        parts.append(text)
    code = "\n".join(parts)
    return Package(code, names, files, _digest(code, files), origins)


def _digest(code, files):
    h = hashlib.sha256(b"dispycos package 1\0")
    data = code.encode("utf-8")
    h.update(b"%d\0" % len(data))
    h.update(data)
    for f in files:
        name = f.name.encode("utf-8")
        h.update(b"%d\0%s\0%d\0" % (len(name), name, f.size))
        with open(f.path, "rb") as fd:
            left = f.size
            while left > 0:
                chunk = fd.read(min(_CHUNK, left))
                if not chunk:
                    raise ValueError("file %s shrank while it was being packaged" % f.path)
                h.update(chunk)
                left -= len(chunk)
    return h.hexdigest()


def add_source(pkg, func):
    """The source to send with a job of ``func`` that ``pkg`` does not hold,
    or None if ``pkg`` ships ``func`` already (the server has it).  The
    package's code and digest stay as they are (they describe what servers
    were given); the source is kept in ``pkg`` for the next job of ``func``.
    ValueError if ``func`` cannot be shipped (see :func:`package`) or if
    ``pkg`` ships a different object under its name."""
    if not isinstance(pkg, Package):
        raise TypeError("add_source: 'pkg' must be a Package, not %s" % type(pkg).__name__)
    if not (inspect.isfunction(func) and _python_code(func)):
        raise TypeError("add_source: 'func' must be a Python function, not %s"
                        % type(func).__name__)
    name, origin = func.__name__, _origin(func)
    shipped = pkg._origins.get(name)
    if shipped is not None:
        if shipped == origin:
            return None
        raise ValueError("add_source: %s.%s is not the %r the package ships (%s.%s); "
                         "rename one of them" % (origin + (name,) + shipped))
    cached = pkg._extra.get(name)
    if cached is not None and cached[0] == origin:
        return cached[1]
    name, text = _source(func, "add_source(%s)" % reprlib.repr(func))
    pkg._extra[name] = (origin, text)
    return text


# ---- load (server side) ---------------------------------------------------------------

def _stmt_name(node):
    return getattr(node, "name", None) or "line %d" % node.lineno


def _name_at(code, lineno):
    """The name of the last top-level def/class starting at or before
    ``lineno`` (for a syntax error, when there is no tree)."""
    found = "line %s" % lineno
    for n, line in enumerate(code.splitlines()[:lineno or 0], 1):
        for kw in ("def ", "async def ", "class "):
            if line.startswith(kw):
                found = line[len(kw):].split("(")[0].split(":")[0].strip()
    return found


def load(code, namespace=None):
    """Execute shipped ``code`` (from :func:`package` or :func:`add_source`)
    in ``namespace`` (a dict; None: a fresh one named ``'__main__'``, see the
    module docstring) and return the namespace.  The source is registered
    with linecache, so tracebacks of jobs show their lines.  A definition
    that fails raises :class:`LoadError` naming it; the ones before it stay
    defined."""
    if not isinstance(code, str):
        raise TypeError("load: 'code' must be a str, not %s" % type(code).__name__)
    if namespace is None:
        namespace = {}
    elif not isinstance(namespace, dict):
        raise TypeError("load: 'namespace' must be a dict, not %s" % type(namespace).__name__)
    namespace.setdefault("__name__", "__main__")
    filename = "<dispycos-%s>" % hashlib.sha256(code.encode("utf-8")).hexdigest()[:12]
    try:
        tree = ast.parse(code, filename)
    except SyntaxError as exc:
        raise LoadError(_name_at(code, exc.lineno), exc) from exc
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    for node in tree.body:
        try:
            exec(compile(ast.Module(body=[node], type_ignores=[]), filename, "exec"), namespace)
        except Exception as exc:
            raise LoadError(_stmt_name(node), exc) from exc
    return namespace
