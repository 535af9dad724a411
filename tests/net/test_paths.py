"""pycos.net.paths: files from peers stay inside dest_path.

Every test works in tmp_path with this layout: ``dest/`` is the destination,
``canary/`` an empty directory outside it and ``secret.txt`` a file outside
it; symlinks made inside ``dest/`` point at those.  After each attack the
tree outside ``dest/`` must be exactly as before and ``canary/`` empty.  An
autouse fixture checks that no test leaks a descriptor (``/proc/self/fd``).
"""
import os
import shutil
import stat
import tempfile
from types import SimpleNamespace

import pytest
from hypothesis import given, settings, strategies as st

from pycos.net import paths
from pycos.net.paths import ConfinedDir, PathRefused, check_name

pytestmark = [
    pytest.mark.timeout(30),
    pytest.mark.skipif(os.name != "posix", reason="dir_fd based, POSIX only for now"),
]

SECRET = b"outside, must never change\n"
MTIME_NS = 1_500_000_000_123_456_789


def fd_count():
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture(autouse=True)
def no_fd_leak():
    if not os.path.isdir("/proc/self/fd"):
        yield
        return
    before = fd_count()
    yield
    assert fd_count() == before, "descriptor leaked"


def tree(root, skip=None):
    """{relative path: (kind, content or link target)} of everything under
    root, symlinks not followed, the skip directory left out."""
    found = {}

    def visit(path):
        with os.scandir(path) as entries:
            for entry in entries:
                if skip is not None and entry.path == skip:
                    continue
                rel = os.path.relpath(entry.path, root)
                st_ = entry.stat(follow_symlinks=False)
                if stat.S_ISLNK(st_.st_mode):
                    found[rel] = ("link", os.readlink(entry.path))
                elif stat.S_ISDIR(st_.st_mode):
                    found[rel] = ("dir", None)
                    visit(entry.path)
                else:
                    with open(entry.path, "rb") as f:
                        found[rel] = ("file", f.read(), st_.st_mode, st_.st_mtime_ns)
    visit(root)
    return found


def make_layout(root):
    env = SimpleNamespace(root=str(root))
    env.dest = os.path.join(env.root, "dest")
    env.canary = os.path.join(env.root, "canary")
    env.secret = os.path.join(env.root, "secret.txt")
    os.mkdir(env.dest)
    os.mkdir(env.canary)
    with open(env.secret, "wb") as f:
        f.write(SECRET)
    env.outside = lambda: tree(env.root, skip=env.dest)
    env.inside = lambda: tree(env.dest)
    return env


@pytest.fixture
def env(tmp_path):
    env = make_layout(tmp_path)
    before = env.outside()
    yield env
    assert os.listdir(env.canary) == []
    assert env.outside() == before, "something changed outside dest_path"
    with open(env.secret, "rb") as f:
        assert f.read() == SECRET


@pytest.fixture
def cd(env):
    with ConfinedDir(env.dest) as confined:
        yield confined


def temp_files(root):
    return [os.path.join(d, n) for d, _, names in os.walk(root)
            for n in names if n.startswith(paths.TEMP_PREFIX)]


def read(path):
    with open(path, "rb") as f:
        return f.read()


def put(path, data=b"original"):
    with open(path, "wb") as f:
        f.write(data)


# -- check_name -----------------------------------------------------------


@pytest.mark.parametrize("dir, components", [
    (None, ()), ("", ()), (".", ()), ("./", ()), ("a", ("a",)),
    ("a/b/c", ("a", "b", "c")), ("a//b/./c/", ("a", "b", "c")),
    ("a\\b", ("a", "b")), ("./a", ("a",)), ("...", ("...",)),
    ("ab:c", ("ab:c",)), ("1:x", ("1:x",)), ("é/中", ("é", "中")),
    ("/".join("x" * 32), ("x",) * 32),
])
def test_check_name_accepts(dir, components):
    assert check_name(dir, "f.txt") == (components, "f.txt")


@pytest.mark.parametrize("name", ["f", "...", ".hidden", "x" * 255, "é" * 127, "a b:c"])
def test_check_name_accepts_names(name):
    assert check_name(None, name) == ((), name)


BAD_DIRS = [
    "..", "../x", "a/../../x", "a/..", "../canary", "./../x", "a\\..\\..\\x",
    "/etc", "//etc", "/", "\\etc", "\\\\server\\share", "C:\\x", "C:", "c:/x",
    "a/C:x", "a\x00b", "x" * 256, "é" * 128, "/".join("x" * 33), "\ud800",
    "a/" * 9000,
]
BAD_NAMES = [
    "", ".", "..", "../x", "../secret.txt", "a/b", "a\\b", "/etc/passwd",
    "x\x00y", "\x00", "x" * 256, "é" * 128, "C:x", "c:", paths.TEMP_PREFIX + "abc",
    "\ud800", "\udcff",
]


@pytest.mark.parametrize("dir", BAD_DIRS)
def test_check_name_refuses_dir(dir):
    with pytest.raises(PathRefused):
        check_name(dir, "f")


@pytest.mark.parametrize("name", BAD_NAMES)
def test_check_name_refuses_name(name):
    with pytest.raises(PathRefused):
        check_name(None, name)
    with pytest.raises(PathRefused):
        check_name("a", name)


def test_check_name_types():
    for dir, name in [(None, b"f"), (None, None), (None, 5), (b"a", "f"), (5, "f")]:
        with pytest.raises(TypeError):
            check_name(dir, name)

    class Sneaky(str):
        def replace(self, *args):
            return "ok"

    with pytest.raises(PathRefused):
        check_name(Sneaky("a/../../x"), "f")
    comps, name = check_name(Sneaky("a\\b"), Sneaky("n"))
    assert comps == ("a", "b") and type(name) is str and type(comps[0]) is str


def test_refusal_message_is_precise_and_short():
    with pytest.raises(PathRefused, match=r"contains '\.\.'"):
        check_name("a/../..", "f")
    with pytest.raises(PathRefused, match="absolute"):
        check_name("/etc", "f")
    with pytest.raises(PathRefused, match="NUL"):
        check_name(None, "a\x00")
    with pytest.raises(PathRefused) as info:
        check_name(None, "y" * 100000)
    assert len(str(info.value)) < 300


# -- every operation refuses bad input, and touches nothing ----------------


@pytest.mark.parametrize("dir, name", [(d, "f") for d in BAD_DIRS]
                         + [(None, n) for n in BAD_NAMES]
                         + [("sub", n) for n in BAD_NAMES[:6]])
def test_operations_refuse_traversal(env, cd, dir, name):
    put(os.path.join(env.canary, "..", "x"), b"x outside")  # the target of '../x'
    before_out, before_in = env.outside(), env.inside()
    with pytest.raises(PathRefused):
        cd.open_for_write(dir, name, overwrite=True)
    with pytest.raises(PathRefused):
        cd.delete(dir, name)
    with pytest.raises(PathRefused):
        cd.existing_same(dir, name, 9, 0)
    with pytest.raises(PathRefused):
        cd.resolve_for_report(dir, name)
    assert env.outside() == before_out
    assert env.inside() == before_in == {}
    os.unlink(os.path.join(env.root, "x"))


# -- writing ---------------------------------------------------------------


def test_write_commit_keeps_mode_and_mtime(env, cd):
    w = cd.open_for_write(None, "f.txt", False)
    assert w.write(b"hello ") == 6
    assert w.write(bytearray(b"world")) == 5
    assert w.write(memoryview(b"!!")[:1]) == 1
    assert w.write(b"") == 0
    assert w.size == 12
    assert temp_files(env.dest)
    target = os.path.join(os.path.realpath(env.dest), "f.txt")
    assert w.commit(0o640, MTIME_NS) == target == w.path
    assert w.closed
    st_ = os.stat(target)  # before reading it updates the atime
    assert stat.S_IMODE(st_.st_mode) == 0o640
    assert st_.st_mtime_ns == MTIME_NS and st_.st_atime_ns == MTIME_NS
    assert read(target) == b"hello world!"
    assert temp_files(env.dest) == []
    w.abort()  # a no-op after commit
    assert read(target) == b"hello world!"
    with pytest.raises(ValueError):
        w.write(b"more")
    with pytest.raises(ValueError):
        w.commit()


def test_commit_atime_and_defaults(env, cd):
    with cd.open_for_write(None, "g", False, mode=0o604) as w:
        w.write(b"x" * 200000)
        w.commit(mtime=MTIME_NS, atime=MTIME_NS + 7, fsync=True)
    st_ = os.stat(os.path.join(env.dest, "g"))
    assert st_.st_size == 200000 and st_.st_atime_ns == MTIME_NS + 7
    assert stat.S_IMODE(st_.st_mode) & ~0o604 == 0  # creation mode, less umask
    with cd.open_for_write(None, "h", False) as w:
        w.commit()  # an empty file, times as written
    assert os.path.getsize(os.path.join(env.dest, "h")) == 0


def test_nested_dirs_created(env, cd):
    with cd.open_for_write("a//b/./c/", "f", False) as w:
        w.write(b"deep")
        path = w.commit(0o600, MTIME_NS)
    assert path == os.path.join(os.path.realpath(env.dest), "a", "b", "c", "f")
    assert read(path) == b"deep"
    for sub in ("a", "a/b", "a/b/c"):
        st_ = os.lstat(os.path.join(env.dest, sub))
        assert stat.S_ISDIR(st_.st_mode) and st_.st_mode & 0o077 == 0
    with cd.open_for_write("a\\b", "g", False) as w:  # existing dirs reused
        w.commit()
    assert os.path.isfile(os.path.join(env.dest, "a", "b", "g"))


def test_overwrite_false_refuses_existing(env, cd):
    target = os.path.join(env.dest, "f")
    put(target)
    with pytest.raises(PathRefused, match="exists"):
        cd.open_for_write(None, "f", False)
    assert read(target) == b"original"
    assert temp_files(env.dest) == []


def test_overwrite_false_refused_at_commit_if_file_appeared(env, cd):
    target = os.path.join(env.dest, "f")
    w = cd.open_for_write(None, "f", False)
    w.write(b"new")
    put(target)
    with pytest.raises(PathRefused, match="exists"):
        w.commit(0o644, MTIME_NS)
    assert read(target) == b"original"
    assert temp_files(env.dest) == [] and w.closed


def test_overwrite_false_without_hard_links(env, cd, monkeypatch):
    """A filesystem without link(): commit falls back to rename."""
    def no_link(*args, **kwargs):
        raise PermissionError(1, "Operation not permitted")
    monkeypatch.setattr(paths.os, "link", no_link)
    with cd.open_for_write(None, "f", False) as w:
        w.write(b"via rename")
        w.commit()
    assert read(os.path.join(env.dest, "f")) == b"via rename"
    assert temp_files(env.dest) == []


def test_overwrite_true_replaces(env, cd):
    target = os.path.join(env.dest, "f")
    put(target)
    old_ino = os.stat(target).st_ino
    reader = open(target, "rb")
    try:
        with cd.open_for_write(None, "f", True) as w:
            w.write(b"replacement")
            assert read(target) == b"original"  # untouched until commit
            w.commit(0o644, MTIME_NS)
        assert read(target) == b"replacement"
        assert os.stat(target).st_ino != old_ino
        assert reader.read() == b"original"  # replaced, not truncated
    finally:
        reader.close()
    assert temp_files(env.dest) == []


def test_existing_hard_link_to_outside_is_replaced_not_written(env, cd):
    link = os.path.join(env.dest, "hard")
    try:
        os.link(env.secret, link)
    except OSError:
        pytest.skip("no hard links here")
    with cd.open_for_write(None, "hard", True) as w:
        w.write(b"new")
        w.commit(0o777, MTIME_NS)
    assert read(link) == b"new"
    # (the env fixture checks secret.txt: content, mode and mtime unchanged)


@pytest.mark.parametrize("kind", ["dir", "fifo"])
def test_special_target_refused(env, cd, kind):
    target = os.path.join(env.dest, "t")
    os.mkdir(target) if kind == "dir" else os.mkfifo(target)
    for overwrite in (False, True):
        with pytest.raises(PathRefused, match="not a regular file"):
            cd.open_for_write(None, "t", overwrite)
    assert temp_files(env.dest) == []


def test_setuid_bits_stripped(env, cd):
    w = cd.open_for_write(None, "s", False, mode=0o6777)
    try:
        (tmp,) = temp_files(env.dest)
        assert os.stat(tmp).st_mode & 0o7000 == 0
    finally:
        w.commit(0o7755, MTIME_NS)
    assert stat.S_IMODE(os.stat(os.path.join(env.dest, "s")).st_mode) == 0o755


def test_abort_leaves_no_temp(env, cd):
    w = cd.open_for_write("sub", "f", False)
    w.write(b"partial")
    w.abort()
    w.abort()
    assert w.closed
    assert temp_files(env.dest) == []
    assert not os.path.exists(os.path.join(env.dest, "sub", "f"))
    with pytest.raises(RuntimeError):
        with cd.open_for_write("sub", "f", False) as w:
            w.write(b"partial")
            raise RuntimeError("transfer broke")
    with cd.open_for_write("sub", "f", False) as w:
        w.write(b"never committed")
    assert temp_files(env.dest) == []
    assert os.listdir(os.path.join(env.dest, "sub")) == []


@pytest.mark.parametrize("mtime, exc", [(2 ** 80, PathRefused), (-2 ** 70, PathRefused),
                                        (1.5e9, TypeError), ("0", TypeError)])
def test_bad_mtime_aborts(env, cd, mtime, exc):
    w = cd.open_for_write(None, "f", False)
    w.write(b"data")
    with pytest.raises(exc):
        w.commit(0o644, mtime)
    assert w.closed and env.inside() == {}


def test_bad_mode_refused(env, cd):
    with pytest.raises(TypeError):
        cd.open_for_write(None, "f", False, mode="rw")
    w = cd.open_for_write(None, "f", False)
    with pytest.raises(TypeError):
        w.commit(0.5)
    assert env.inside() == {}


# -- symlinks --------------------------------------------------------------


def test_symlink_dir_component_never_followed(env, cd):
    os.symlink(env.canary, os.path.join(env.dest, "link"))
    os.symlink(os.path.join("..", "canary"), os.path.join(env.dest, "rel"))
    put(os.path.join(env.root, "x"), b"x")
    for dir in ("link", "link/sub", "rel", "rel/deeper/still", "link/.."):
        for overwrite in (False, True):
            with pytest.raises(PathRefused):
                cd.open_for_write(dir, "f", overwrite)
        with pytest.raises(PathRefused):
            cd.existing_same(dir, "x", 1, 0)
        with pytest.raises(PathRefused):
            cd.delete(dir, "x")
    assert os.listdir(env.canary) == []
    os.unlink(os.path.join(env.root, "x"))


def test_symlink_component_message(env, cd):
    os.symlink(env.canary, os.path.join(env.dest, "link"))
    with pytest.raises(PathRefused, match="symbolic link"):
        cd.open_for_write("link", "f", True)
    put(os.path.join(env.dest, "file"))
    with pytest.raises(PathRefused, match="not a directory"):
        cd.open_for_write("file/sub", "f", True)


def test_symlink_inside_dest_also_refused(env, cd):
    """Policy: no symlink is followed, even one that stays inside."""
    os.mkdir(os.path.join(env.dest, "real"))
    os.symlink("real", os.path.join(env.dest, "alias"))
    with pytest.raises(PathRefused, match="symbolic link"):
        cd.open_for_write("alias", "f", False)
    assert os.listdir(os.path.join(env.dest, "real")) == []


@pytest.mark.parametrize("target", ["secret.txt", "canary/new", "missing"])
def test_symlink_final_name_never_followed(env, cd, target):
    link = os.path.join(env.dest, "f")
    os.symlink(os.path.join(env.root, target), link)
    for overwrite in (False, True):
        with pytest.raises(PathRefused, match="symbolic link"):
            cd.open_for_write(None, "f", overwrite)
    assert os.path.islink(link)
    assert not os.path.lexists(os.path.join(env.root, "missing"))
    assert temp_files(env.dest) == []


@pytest.mark.parametrize("overwrite", [False, True])
def test_symlink_appearing_at_final_name_before_commit(env, cd, overwrite):
    w = cd.open_for_write(None, "f", overwrite)
    w.write(b"payload")
    link = os.path.join(env.dest, "f")
    os.symlink(env.secret, link)
    with pytest.raises(PathRefused):
        w.commit(0o666, MTIME_NS)
    assert os.readlink(link) == env.secret
    assert temp_files(env.dest) == []


def test_symlink_appearing_after_last_check_is_replaced(env, cd, monkeypatch):
    """The race past the last lstat: the rename replaces the link entry."""
    w = cd.open_for_write(None, "f", True)
    w.write(b"payload")
    link = os.path.join(env.dest, "f")
    os.symlink(env.secret, link)
    monkeypatch.setattr(paths, "_lstat", lambda dir_fd, name: None)
    w.commit(0o666, MTIME_NS)
    assert not os.path.islink(link) and read(link) == b"payload"


def test_symlink_as_dest_path_is_resolved_once(env):
    alias = os.path.join(env.root, "alias")
    os.symlink(env.dest, alias)
    try:
        with ConfinedDir(alias) as confined:
            assert confined.path == os.path.realpath(env.dest)
            with confined.open_for_write(None, "f", False) as w:
                w.commit()
        assert os.path.isfile(os.path.join(env.dest, "f"))
    finally:
        os.unlink(alias)


# -- races -----------------------------------------------------------------


def test_dir_component_swapped_for_symlink_before_open(env, cd):
    sub = os.path.join(env.dest, "a", "b")
    os.makedirs(sub)
    assert check_name("a/b", "f") == (("a", "b"), "f")
    os.rename(sub, os.path.join(env.dest, "a", "b-old"))
    os.symlink(env.canary, sub)
    with pytest.raises(PathRefused, match="symbolic link"):
        cd.open_for_write("a/b", "f", True)
    with pytest.raises(PathRefused):
        cd.delete("a/b", "f")


def test_dir_swapped_after_open_keeps_writing_in_original(env, cd):
    os.mkdir(os.path.join(env.dest, "a"))
    w = cd.open_for_write("a", "f", False)
    w.write(b"data")
    os.rename(os.path.join(env.dest, "a"), os.path.join(env.dest, "moved"))
    os.symlink(env.canary, os.path.join(env.dest, "a"))
    w.commit(0o644, MTIME_NS)
    assert read(os.path.join(env.dest, "moved", "f")) == b"data"


@pytest.fixture
def no_safe_flags(monkeypatch):
    """Pretend O_DIRECTORY and O_NOFOLLOW are missing (the lstat/fstat path)."""
    monkeypatch.setattr(paths, "_O_DIRECTORY", 0)
    monkeypatch.setattr(paths, "_O_NOFOLLOW", 0)


def test_without_o_nofollow_symlinks_still_refused(env, cd, no_safe_flags):
    os.symlink(env.canary, os.path.join(env.dest, "link"))
    put(os.path.join(env.dest, "file"))
    with pytest.raises(PathRefused, match="symbolic link"):
        cd.open_for_write("link", "f", True)
    with pytest.raises(PathRefused, match="not a directory"):
        cd.open_for_write("file", "f", True)
    with cd.open_for_write("x/y", "f", False) as w:
        w.commit()
    assert os.path.isfile(os.path.join(env.dest, "x", "y", "f"))


def test_without_o_nofollow_swap_between_lstat_and_open(env, cd, no_safe_flags,
                                                        monkeypatch):
    os.mkdir(os.path.join(env.dest, "a"))
    real_open = os.open

    def swapping_open(path, flags, *args, dir_fd=None, **kwargs):
        if path == "a" and dir_fd is not None:  # after the lstat of "a"
            os.rename(os.path.join(env.dest, "a"), os.path.join(env.dest, "a-old"))
            os.symlink(env.canary, os.path.join(env.dest, "a"))
        return real_open(path, flags, *args, dir_fd=dir_fd, **kwargs)

    monkeypatch.setattr(paths.os, "open", swapping_open)
    with pytest.raises(PathRefused, match="changed"):
        cd.open_for_write("a", "f", True)


# -- delete ----------------------------------------------------------------


def test_delete_normal_file(env, cd):
    os.makedirs(os.path.join(env.dest, "a", "b"))
    target = os.path.join(env.dest, "a", "b", "f")
    put(target)
    assert cd.delete("a/b", "f") == os.path.join(os.path.realpath(env.dest), "a", "b", "f")
    assert not os.path.lexists(target)
    assert os.path.isdir(os.path.join(env.dest, "a", "b"))  # dirs stay
    with pytest.raises(PathRefused, match="no such file"):
        cd.delete("a/b", "f")
    with pytest.raises(PathRefused, match="no such file"):
        cd.delete("nowhere", "f")


def test_delete_refuses_traversal_and_keeps_outside(env, cd):
    put(os.path.join(env.canary, "c"), b"c")
    put(os.path.join(env.root, "x"), b"x")
    for dir, name in [("..", "x"), ("..", "secret.txt"), ("../canary", "c"),
                      (None, "../x"), ("a/../..", "x"), ("/" + env.root, "x"),
                      (env.canary, "c"), (None, env.secret), ("..\\canary", "c")]:
        with pytest.raises(PathRefused):
            cd.delete(dir, name)
    assert read(os.path.join(env.canary, "c")) == b"c"
    assert read(os.path.join(env.root, "x")) == b"x"
    os.unlink(os.path.join(env.canary, "c"))
    os.unlink(os.path.join(env.root, "x"))


def test_delete_symlink_removes_only_the_link(env, cd):
    link = os.path.join(env.dest, "ln")
    os.symlink(env.secret, link)
    cd.delete(None, "ln")
    assert not os.path.lexists(link)
    dlink = os.path.join(env.dest, "dln")
    os.symlink(env.canary, dlink)
    cd.delete(None, "dln")
    assert not os.path.lexists(dlink) and os.path.isdir(env.canary)


@pytest.mark.parametrize("kind", ["dir", "fifo"])
def test_delete_refuses_non_files(env, cd, kind):
    target = os.path.join(env.dest, "t")
    os.mkdir(target) if kind == "dir" else os.mkfifo(target)
    with pytest.raises(PathRefused, match="not a regular file"):
        cd.delete(None, "t")
    assert os.path.lexists(target)


# -- existing_same ---------------------------------------------------------


def test_existing_same(env, cd):
    with cd.open_for_write("d", "f", False) as w:
        w.write(b"12345")
        w.commit(0o644, MTIME_NS)
    assert cd.existing_same("d", "f", 5, MTIME_NS)
    assert cd.existing_same("./d/", "f", 5, MTIME_NS)
    assert not cd.existing_same("d", "f", 4, MTIME_NS)
    assert not cd.existing_same("d", "f", 5, MTIME_NS + 1)
    assert not cd.existing_same("d", "f", 5, MTIME_NS // 10 ** 9)  # seconds are not ns
    assert not cd.existing_same("d", "g", 5, MTIME_NS)
    assert not cd.existing_same("e/f", "f", 5, MTIME_NS)
    os.symlink("f", os.path.join(env.dest, "d", "ln"))
    assert not cd.existing_same("d", "ln", 5, MTIME_NS)  # a symlink is not the file
    assert not cd.existing_same(None, "d", os.stat(os.path.join(env.dest, "d")).st_size,
                                os.stat(os.path.join(env.dest, "d")).st_mtime_ns)
    with pytest.raises(TypeError):
        cd.existing_same("d", "f", "5", MTIME_NS)
    with pytest.raises(TypeError):
        cd.existing_same("d", "f", 5, float(MTIME_NS))


# -- ConfinedDir itself ----------------------------------------------------


def test_resolve_for_report(env):
    with ConfinedDir(env.dest) as confined:
        pass
    real = os.path.realpath(env.dest)
    assert confined.resolve_for_report("a//b/.", "f") == os.path.join(real, "a", "b", "f")
    assert confined.resolve_for_report(None, "f") == os.path.join(real, "f")
    assert env.inside() == {}


def test_confined_dir_open_close(env, tmp_path):
    confined = ConfinedDir(env.dest)
    assert not confined.closed and "dest" in repr(confined)
    confined.close()
    confined.close()
    assert confined.closed
    for call in (lambda: confined.open_for_write(None, "f", False),
                 lambda: confined.delete(None, "f"),
                 lambda: confined.existing_same(None, "f", 0, 0)):
        with pytest.raises(ValueError, match="closed"):
            call()
    with pytest.raises(FileNotFoundError):
        ConfinedDir(tmp_path / "missing")
    with pytest.raises(NotADirectoryError):
        ConfinedDir(env.secret)
    made = tmp_path / "made" / "here"
    with ConfinedDir(made, create=True) as confined:
        assert confined.path == os.path.realpath(made)
    assert made.is_dir()
    shutil.rmtree(tmp_path / "made")


def test_writer_outlives_confined_dir(env):
    with ConfinedDir(env.dest) as confined:
        w = confined.open_for_write("a", "f", False)
    w.write(b"late")
    w.commit()
    assert read(os.path.join(env.dest, "a", "f")) == b"late"


def test_no_descriptor_leak(env, cd):
    """Many operations, successful and refused; the descriptor count holds."""
    os.symlink(env.canary, os.path.join(env.dest, "link"))
    before = fd_count()
    for i in range(50):
        with cd.open_for_write("a/b", "f%d" % (i % 5), True) as w:
            w.write(b"x" * i)
            w.commit(0o644, MTIME_NS)
        cd.existing_same("a/b", "f0", 0, MTIME_NS)
        cd.existing_same("nowhere/deep", "f0", 0, MTIME_NS)
        for bad in (lambda: cd.open_for_write("link", "f", True),
                    lambda: cd.open_for_write("a/b", "f0", False),
                    lambda: cd.delete("a/b", "missing"),
                    lambda: cd.delete("a/link", "f"),
                    lambda: cd.open_for_write("..", "f", True)):
            with pytest.raises(PathRefused):
                bad()
        w = cd.open_for_write("a", "g", False)
        w.abort()
        w = cd.open_for_write("a", "g", False)
        with pytest.raises(PathRefused):
            w.commit(0o644, 2 ** 90)
    assert fd_count() == before


# -- property: nothing ever lands outside ----------------------------------


FRAGMENTS = ["", ".", "..", "/", "\\", "a", "b", "f", "link", "dang", "C:", "z:",
             "\x00", "é", "中", "\U0001F600", "\ud800", "\udc80", paths.TEMP_PREFIX,
             " ", ":", "~", "canary", "secret.txt", "x" * 130]
# names of the layout below, so that paths often run into its symlinks
LAYOUT = ["a", "f", "link", "b", "dang", "new", "canary", "secret.txt"]
component = st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=8))
hostile = st.one_of(
    st.text(max_size=40),
    st.lists(st.sampled_from(FRAGMENTS), max_size=12).map("".join),
    st.lists(component, max_size=6).map("/".join),
    st.lists(component, max_size=6).map("\\".join),
    st.text(alphabet="./\\abf\x00:C", max_size=30),
)
# path-like: layout names, '.', '..' and '' joined by either separator
path_like = st.builds(
    lambda lead, parts, sep: lead + sep.join(parts),
    st.sampled_from(["", "", "", "", "", "/", "\\", "./", "C:"]),
    st.lists(st.sampled_from(LAYOUT + [".", "..", ""]), min_size=1, max_size=4),
    st.sampled_from(["/", "\\", "//"]))
dirs = st.one_of(st.none(), path_like, path_like, hostile)
names = st.one_of(st.sampled_from(LAYOUT + ["..", ".", ""]), hostile)


@settings(max_examples=400, deadline=None)
@given(dir=dirs, name=names, overwrite=st.booleans())
def test_property_never_outside(dir, name, overwrite):
    with tempfile.TemporaryDirectory() as root:
        env = make_layout(root)
        os.mkdir(os.path.join(env.dest, "a"))
        put(os.path.join(env.dest, "f"), b"inside")
        os.symlink(env.canary, os.path.join(env.dest, "link"))   # dir symlink out
        os.symlink(env.secret, os.path.join(env.dest, "b"))      # file symlink out
        os.symlink(os.path.join(root, "none"), os.path.join(env.dest, "dang"))
        real = os.path.realpath(env.dest)
        outside = env.outside()
        try:
            components, base = check_name(dir, name)
        except (PathRefused, TypeError):
            components = None
        else:
            joined = os.path.join(real, *components, base)
            assert os.path.commonpath([real, joined]) == real
            # (commonpath does not resolve '..': check the normalized path too)
            assert os.path.commonpath([real, os.path.normpath(joined)]) == real
            assert os.path.normpath(joined) == joined != real
        inside = env.inside()
        with ConfinedDir(env.dest) as confined:
            try:
                with confined.open_for_write(dir, name, overwrite) as w:
                    w.write(b"data")
                    written = w.commit(0o6777, MTIME_NS)
            except PathRefused:
                written = None
            else:
                assert components is not None
                assert written == os.path.join(real, *components, base)
                st_ = os.lstat(written)
                assert stat.S_ISREG(st_.st_mode) and stat.S_IMODE(st_.st_mode) == 0o777
                assert read(written) == b"data"
                assert env.outside() == outside and os.listdir(env.canary) == []
                assert confined.existing_same(dir, name, 4, MTIME_NS)
                assert confined.delete(dir, name) == written
        if components is None:
            assert env.inside() == inside
        assert env.outside() == outside
        assert os.listdir(env.canary) == []
        assert read(env.secret) == SECRET
        assert temp_files(env.dest) == []
