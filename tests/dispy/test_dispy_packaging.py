"""pycos.dispy.packaging: each kind of component, what is refused and why,
load() on the server side, add_source() for jobs, and the digest.

(Named test_dispy_packaging.py: tests/test_packaging.py is the build's.)
"""
import functools
import importlib
import os
import pathlib
import pickle
import sys
import textwrap
import traceback

import pytest

import pycos
from pycos.dispy import packaging
from pycos.dispy.packaging import LoadError, Package, PackageFile, add_source, load, package


# ---- components (module level, so their source stands alone) ----------------------------

def plain_add(a, b):
    return a + b


def gen_job(n, task=None):
    import math                  # imports go inside: the source does not carry the file's
    yield task.sleep(0)
    return math.sqrt(n)


class Counter(object):
    """A class with methods; its instances are shipped as this source."""

    start = 10

    def __init__(self, n=0):
        self.n = n

    def bump(self):
        self.n += 1
        return self.n

    @staticmethod
    def twice(x):
        return 2 * x


def traced(fn):
    import functools as ft

    @ft.wraps(fn)
    def wrapper(*args, **kwargs):
        return ("traced", fn(*args, **kwargs))
    return wrapper


@traced
def decorated(x):
    return x * 3


def shout(fn):
    def wrapper(*args, **kwargs):
        return str(fn(*args, **kwargs)).upper()
    return wrapper


@shout
def shouted(name):
    return "hi " + name


if True:                            # defined in a block: its source is indented
    def indented(x):
        text = """first
  second: kept as written
third"""
        doc = f"""{x}
    {x + 1}"""
        return (x,
    text, doc)


class FakeTask(object):
    def sleep(self, t):
        return None


def run_gen(gen):
    """Drive a generator job without a scheduler: its return value."""
    try:
        value = None
        while True:
            value = gen.send(value)
    except StopIteration as stop:
        return stop.value


def outer():
    def inner():
        return 1
    return inner


# ---- helpers --------------------------------------------------------------------------

@pytest.fixture
def make_module(tmp_path, monkeypatch):
    """make_module(name, source) -> the module, imported from a file in tmp_path."""
    root = tmp_path / "mods"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    names = []

    def make(name, source):
        *pkgs, base = name.split(".")
        path = root
        for part in pkgs:               # each package level gets its __init__.py
            path = path / part
            path.mkdir(exist_ok=True)
            (path / "__init__.py").touch()
        path = path / (base + ".py")
        path.write_text(textwrap.dedent(source))
        importlib.invalidate_caches()
        names.append(name)
        return importlib.import_module(name)

    yield make
    for name in names:
        for mod in [m for m in sys.modules if m == name or m.startswith(name.split(".")[0])]:
            sys.modules.pop(mod, None)


def defs(pkg):
    return load(pkg.code)


# ---- each kind of component -----------------------------------------------------------

def test_functions_and_generators_round_trip():
    pkg = package([plain_add, gen_job])
    assert pkg.names == ("plain_add", "gen_job") and pkg.files == ()
    assert pkg.code.index("def plain_add") < pkg.code.index("def gen_job")
    ns = defs(pkg)
    assert ns["plain_add"](2, 3) == 5
    assert ns["plain_add"] is not plain_add
    assert run_gen(ns["gen_job"](16, task=FakeTask())) == 4.0


def test_a_single_component_need_not_be_in_a_list():
    assert package(plain_add).names == ("plain_add",)
    assert package((plain_add, Counter)).names == ("plain_add", "Counter")


def test_class_with_methods():
    ns = defs(package([Counter]))
    c = ns["Counter"](5)
    assert (c.bump(), c.bump(), c.start, ns["Counter"].twice(4)) == (6, 7, 10, 8)
    assert ns["Counter"].__doc__ == Counter.__doc__


def test_an_instance_ships_its_class_not_its_state():
    obj = Counter(41)
    pkg = package([obj, Counter(1), Counter])
    assert pkg.names == ("Counter",) and pkg.code.count("class Counter") == 1
    assert pkg.code == package([Counter]).code
    assert defs(pkg)["Counter"]().n == 0


def test_decorated_function_keeps_its_decorator():
    pkg = package([traced, decorated])
    assert "@traced\ndef decorated" in pkg.code
    ns = defs(pkg)
    assert ns["decorated"](2) == ("traced", 6)
    assert ns["decorated"].__name__ == "decorated"


def test_a_decorator_missing_on_the_server_is_a_load_error_naming_the_function():
    pkg = package([plain_add, decorated])            # traced not shipped
    ns = {}
    with pytest.raises(LoadError) as info:
        load(pkg.code, ns)
    assert info.value.component == "decorated"
    assert isinstance(info.value.error, NameError)
    assert isinstance(info.value.__cause__, NameError)
    assert "'decorated'" in str(info.value) and "NameError" in str(info.value)
    assert "plain_add" in ns                           # what came before stays defined


def test_wrapper_without_functools_wraps_is_refused():
    with pytest.raises(ValueError, match=r"components\[0\].*'wrapper' is defined inside "
                                         r"'shout'.*functools.wraps"):
        package([shouted])


def test_indented_definition_is_dedented_but_strings_are_not():
    pkg = package([indented])
    assert pkg.code.startswith("def indented(x):\n    text")
    assert indented(1) == defs(pkg)["indented"](1)


def test_module_level_imports_are_not_carried(make_module):
    mod = make_module("dispy_uses_math", """
        import math

        def hyp(a, b):
            return math.hypot(a, b)

        def hyp_inside(a, b):
            import math
            return math.hypot(a, b)
        """)
    assert mod.hyp(3, 4) == 5.0
    ns = defs(package([mod.hyp, mod.hyp_inside]))
    assert ns["hyp_inside"](3, 4) == 5.0
    with pytest.raises(NameError, match="math"):
        ns["hyp"](3, 4)
    # shipping the module itself ships its file: import it inside the job
    assert package([mod]).files[0].name == "dispy_uses_math.py"


def test_module_files_are_placed_by_import_name(make_module):
    top = make_module("dispy_top", "X = 1\n")
    sub = make_module("dispy_pkg.inner.mod", "Y = 2\n")
    pkg = package([top, sub, sys.modules["dispy_pkg"], top])
    assert [(f.name, f.path) for f in pkg.files] == [
        ("dispy_top.py", top.__file__),
        ("dispy_pkg/inner/mod.py", sub.__file__),
        ("dispy_pkg/__init__.py", sys.modules["dispy_pkg"].__file__)]
    assert pkg.names == () and pkg.code == ""
    assert all(f.size == os.path.getsize(f.path) for f in pkg.files)


def test_stdlib_python_module_ships_and_compiled_modules_are_refused():
    import json
    assert package([json]).files[0].name == "json/__init__.py"
    with pytest.raises(ValueError, match=r"components\[0\].*'sys' has no file"):
        package([sys])
    from pycos import _reactor
    with pytest.raises(TypeError, match="is not Python source"):
        package([_reactor])


def test_file_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "in.txt").write_text("hello")
    outside = tmp_path.parent / ("dispy-outside-%s.bin" % tmp_path.name)
    outside.write_bytes(b"\0" * 10)
    try:
        pkg = package(["data/in.txt", pathlib.Path(str(outside)),
                       str(tmp_path / "data" / "in.txt")])
    finally:
        outside.unlink()
    assert pkg.files == (PackageFile(str(tmp_path / "data" / "in.txt"), "data/in.txt", 5),
                         PackageFile(str(outside), outside.name, 10))


# ---- what is refused ------------------------------------------------------------------

def _made_by_exec():
    ns = {}
    exec("def made(x):\n    return x\n", ns)
    return ns["made"]


def renamed():
    return 0


renamed.__name__ = "alias"


@pytest.mark.parametrize("comp, exc, why", [
    (lambda x: x, ValueError, "a lambda has no name"),
    (len, TypeError, "builtin has no Python source"),
    (print, TypeError, "builtin"),
    ([].append, TypeError, "builtin"),
    (Counter(1).bump, TypeError, "bound method"),
    (str.upper, TypeError, "builtin"),
    (outer(), ValueError, "'inner' is defined inside 'outer'"),
    (Counter.twice, ValueError, "'twice' is defined inside 'Counter'"),
    (_made_by_exec(), ValueError, "source of 'made' is not available"),
    (renamed, ValueError, "__name__ 'alias' is not the name it was defined with"),
    (5, TypeError, "instance of builtin type 'int'"),
    (None, TypeError, "instance of builtin type 'NoneType'"),
    ({"a": 1}, TypeError, "instance of builtin type 'dict'"),
    (gen_job(1), TypeError, "instance of builtin type 'generator'"),
    (int, TypeError, "builtin class 'int' has no Python source"),
    (functools.partial(plain_add, 1), TypeError, "functools.partial"),
    (b"data.txt", TypeError, "must be a str"),
    ("", ValueError, "empty file path"),
    ("/no/such/dispycos/file", ValueError, "no such file"),
    (os.path.dirname(__file__), ValueError, "is a directory"),
    ("/dev/null", ValueError, "not a regular file"),
])
def test_refused_components_say_which_and_why(comp, exc, why):
    with pytest.raises(exc, match=r"components\[1\] \(.*\): .*" + why.replace("(", r"\(")):
        package([plain_add, comp])


def test_two_components_with_one_name_are_refused(make_module):
    a = make_module("dispy_a", "def job():\n    return 'a'\n")
    b = make_module("dispy_b", "def job():\n    return 'b'\n")
    with pytest.raises(ValueError, match=r"components\[1\].*also called 'job' "
                                         r"\(dispy_a.job\)"):
        package([a.job, b.job])
    assert package([a.job, a.job]).names == ("job",)


def test_two_files_with_one_name_on_the_node_are_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    for d in ("x", "y"):
        (tmp_path / d / "same.txt").write_text(d)
    monkeypatch.chdir(tmp_path / "x")
    with pytest.raises(ValueError, match="would both be 'same.txt' on the node"):
        package(["same.txt", str(tmp_path / "y" / "same.txt")])


def test_source_changed_after_import_is_refused(make_module):
    mod = make_module("dispy_changes", "def job():\n    return 1\n")
    with open(mod.__file__, "w") as f:
        f.write("x = 1\n\n\nclass Other:\n    pass\n")
    import linecache
    linecache.checkcache(mod.__file__)
    with pytest.raises(ValueError, match="is not its definition"):
        package([mod.job])


# ---- load -----------------------------------------------------------------------------

def test_load_fresh_namespace_is_main():
    ns = load(package([Counter]).code)
    assert ns["__name__"] == "__main__"
    assert ns["Counter"].__module__ == "__main__"


def test_load_into_a_given_namespace_sees_its_names():
    ns = {"__name__": "srv", "pycos": pycos}
    code = "def uses_seeded():\n    return pycos.Task\n"
    assert load(code, ns) is ns and ns["uses_seeded"]() is pycos.Task
    assert ns["__name__"] == "srv"


def test_load_syntax_error_names_the_component():
    code = "def ok():\n    pass\n\n\ndef broken(:\n    pass\n"
    with pytest.raises(LoadError) as info:
        load(code, {})
    assert info.value.component == "broken"
    assert isinstance(info.value.error, SyntaxError)


def test_load_error_in_a_statement_without_a_name():
    with pytest.raises(LoadError, match="'line 2'.*ZeroDivisionError"):
        load("x = 1\n1 / 0\n", {})


def test_load_error_pickles():
    err = LoadError("job", NameError("name 'np' is not defined"))
    copy = pickle.loads(pickle.dumps(err))
    assert str(copy) == str(err) and copy.component == "job"


def test_load_tracebacks_show_the_shipped_lines():
    ns = load("def fails(x):\n    return x.missing_attribute\n")
    try:
        ns["fails"](1)
    except AttributeError:
        text = traceback.format_exc()
    assert "<dispycos-" in text and "return x.missing_attribute" in text


def test_load_checks_its_arguments():
    with pytest.raises(TypeError, match="'code'"):
        load(b"x = 1")
    with pytest.raises(TypeError, match="'namespace'"):
        load("x = 1", [])


# ---- add_source -----------------------------------------------------------------------

def test_add_source_for_a_job_not_in_the_package():
    pkg = package([plain_add])
    code, digest = pkg.code, pkg.digest
    assert add_source(pkg, plain_add) is None
    src = add_source(pkg, gen_job)
    assert src.startswith("def gen_job(n, task=None):")
    assert add_source(pkg, gen_job) is src                 # kept for the next job
    assert (pkg.code, pkg.digest, pkg.names) == (code, digest, ("plain_add",))
    ns = load(pkg.code)
    load(src, ns)
    assert run_gen(ns["gen_job"](9, task=FakeTask())) == 3.0


def test_add_source_refuses(make_module):
    pkg = package([plain_add])
    other = make_module("dispy_other", "def plain_add(a, b):\n    return a - b\n")
    with pytest.raises(ValueError, match="dispy_other.plain_add is not the 'plain_add'"):
        add_source(pkg, other.plain_add)
    with pytest.raises(ValueError, match="lambda"):
        add_source(pkg, lambda: 0)
    with pytest.raises(ValueError, match="defined inside"):
        add_source(pkg, outer())
    with pytest.raises(TypeError, match="'func'"):
        add_source(pkg, Counter)
    with pytest.raises(TypeError, match="'pkg'"):
        add_source(pkg.code, plain_add)


# ---- digest and the package object ----------------------------------------------------

def test_digest_is_stable_and_follows_the_content(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.txt").write_text("one")
    first = package([plain_add, "a.txt"]).digest
    assert len(first) == 64 and int(first, 16) >= 0
    assert package([plain_add, "a.txt"]).digest == first
    assert package(["a.txt", plain_add]).digest == first       # code and files apart
    assert package([gen_job, plain_add, "a.txt"]).digest != first
    assert package([plain_add]).digest != first
    (tmp_path / "a.txt").write_text("two")
    assert package([plain_add, "a.txt"]).digest != first
    (tmp_path / "b.txt").write_text("two")
    assert package([plain_add, "b.txt"]).digest != package([plain_add, "a.txt"]).digest


def test_package_pickles_and_reprs():
    pkg = package([plain_add, Counter])
    copy = pickle.loads(pickle.dumps(pkg))
    assert (copy.code, copy.names, copy.files, copy.digest) == (
        pkg.code, pkg.names, pkg.files, pkg.digest)
    assert add_source(copy, plain_add) is None
    assert repr(pkg).startswith("Package(names=['plain_add', 'Counter'], files=[], digest='")
    assert isinstance(pkg, Package)


def test_module_exports():
    assert set(packaging.__all__) == {"Package", "PackageFile", "LoadError", "package",
                                      "add_source", "load"}
