"""Confined file paths for the files peers send and delete (netpycos).

A peer that calls ``send_file(location, file, dir=None, overwrite=False)`` or
``del_file(location, file, dir=None)`` names a directory relative to the
receiver's ``dest_path`` and a file basename.  Both strings are hostile input,
and the receiver guarantees that nothing is ever written, truncated,
chmod'ed, utime'd or deleted outside ``dest_path`` (the original library had
path traversal bugs here).  This module holds that guarantee, in two layers:

* :func:`check_name` validates the two strings alone, without touching the
  filesystem, and turns them into directory components and a basename.
* :class:`ConfinedDir` performs every filesystem operation relative to a
  descriptor of ``dest_path``, walking one component at a time with
  ``os.open(component, O_DIRECTORY | O_NOFOLLOW, dir_fd=parent)``.  A path
  string below ``dest_path`` is never handed to the kernel, so neither a
  symbolic link inside ``dest_path`` nor a directory swapped for one while
  we work can lead anywhere else: the kernel refuses to follow it.

Policies (the reasons are next to the code that carries them out):

* A symbolic link is never followed, at any component, the final one
  included, even when it points inside ``dest_path``.  A symlink (or any
  non-directory) where a directory component is expected is refused.
* Writing: a file arrives in a fresh temporary file ``.pycos-tmp-<random>``
  in the target directory (created with ``O_CREAT | O_EXCL``) and is renamed
  over the final name on :meth:`ConfinedWriter.commit`.  An existing file is
  therefore never opened, truncated or written through (a hard link to a file
  outside ``dest_path`` is harmless: its directory entry is replaced, the
  file it shares is left alone).  If the final name exists as a symbolic
  link, the write is refused whatever ``overwrite`` says; it is checked when
  the write starts and again just before the rename.  Should a symlink appear
  in the instant between that last check and the rename, the rename replaces
  the link entry itself (rename never follows a link), which stays inside
  ``dest_path``.  A directory or special file at the final name is refused
  too.  With ``overwrite`` false an existing file is refused, atomically
  where the filesystem has hard links (``link`` fails if the name exists).
* Deleting removes a regular file or a symbolic link entry (the link itself,
  not its target, so nothing outside is touched); anything else is refused.
  Directories it leaves empty stay.
* Times are integer nanoseconds (``st_mtime_ns``), so a value read on the
  sender goes through unchanged; a filesystem with coarser timestamps makes
  :meth:`ConfinedDir.existing_same` answer False, i.e. the file is sent again
  (safe).  Permission bits only are kept (``mode & 0o777``): setuid, setgid
  and sticky bits from a peer are dropped.
* The name prefix ``.pycos-tmp-`` is reserved: a peer may not send or delete
  such a name, so it cannot touch a transfer in progress.

:class:`PathRefused` (a ``ValueError``) is raised for every refusal, with a
message that says why; ordinary filesystem failures (no space, permission
denied...) surface as ``OSError``.  All operations are blocking system calls
on a local filesystem; the network layer decides where to run them.

Portability: this needs ``dir_fd`` support (POSIX; not Windows, where
:class:`ConfinedDir` raises ``NotImplementedError`` for now).  Where
``O_DIRECTORY`` or ``O_NOFOLLOW`` is missing, each component is checked with
``lstat`` before it is opened and compared by device and inode after, which
detects a swapped entry the same way.
"""

import errno
import operator
import os
import secrets
import stat

__all__ = [
    "PathRefused", "check_name", "ConfinedDir", "ConfinedWriter",
    "MAX_NAME_BYTES", "MAX_DEPTH", "TEMP_PREFIX",
]

#: Most bytes in one file name or directory component (NAME_MAX on Linux).
MAX_NAME_BYTES = 255
#: Most directory components below dest_path.
MAX_DEPTH = 32
#: Prefix of the temporary files; peers may not use it in a file name.
TEMP_PREFIX = ".pycos-tmp-"

# A dir string longer than this is refused before it is split (32 components
# of 255 bytes with some slack for the tolerated "//" and "/./").
_MAX_DIR_CHARS = 16384
_INT64 = 1 << 63

# Flags missing on a platform are 0.  Missing O_DIRECTORY / O_NOFOLLOW switch
# _open_subdir to its lstat-then-fstat check (read at call time, so the tests
# exercise that path too).  O_NONBLOCK keeps the open of a FIFO swapped in
# for a directory from blocking in that mode (and costs nothing on a
# directory).
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_BINARY = getattr(os, "O_BINARY", 0)  # Windows only

# errno values with which an open with O_NOFOLLOW refuses a symbolic link:
# ELOOP (POSIX), EMLINK (FreeBSD), ENOTDIR (Linux, with O_DIRECTORY).
_NOT_A_DIR_ERRNOS = frozenset(
    e for e in (errno.ELOOP, errno.ENOTDIR, getattr(errno, "EMLINK", None))
    if e is not None)
# errno values of a link() the filesystem does not support; commit then
# falls back to a rename after an lstat check.
_NO_LINK_ERRNOS = frozenset(
    e for e in (errno.EPERM, errno.ENOSYS, getattr(errno, "ENOTSUP", None),
                getattr(errno, "EOPNOTSUPP", None))
    if e is not None)


class PathRefused(ValueError):
    """A peer's directory or file name (or file attribute) was refused."""


def _show(text):
    """repr() of hostile text, shortened for a message."""
    if len(text) > 80:
        return repr(text[:60]) + "...(%d characters)" % len(text)
    return repr(text)


def _exact_str(value, what):
    if not isinstance(value, str):
        raise TypeError("%s must be str, not %s" % (what, type(value).__name__))
    # A str subclass could override methods; validate and use a plain copy.
    return value if type(value) is str else str.__str__(value)


def _check_component(part, what):
    """Checks shared by file names and directory components."""
    if "\0" in part:
        raise PathRefused("%s %s contains a NUL character" % (what, _show(part)))
    if len(part) >= 2 and part[1] == ":" and part[0].isascii() and part[0].isalpha():
        # "C:..." names a drive on Windows (os.path.join restarts there).
        raise PathRefused("%s %s starts with a drive letter" % (what, _show(part)))
    try:
        size = max(len(part.encode("utf-8")), len(os.fsencode(part)))
    except UnicodeError:  # lone surrogates, or not in the filesystem encoding
        raise PathRefused("%s %s cannot be encoded as a file name"
                          % (what, _show(part))) from None
    if size > MAX_NAME_BYTES:
        raise PathRefused("%s %s is longer than %d bytes"
                          % (what, _show(part), MAX_NAME_BYTES))


def check_name(dir, name):
    """Validate a peer's ``dir`` and file ``name``; no filesystem access.

    Returns ``(components, name)``: a tuple of directory components below the
    destination (empty for its root) and the basename.  ``dir`` None or ''
    means the root; otherwise it is a relative path split on '/' and '\\',
    where empty and '.' components are dropped and '..', an absolute path, a
    drive letter, NUL, a component over 255 bytes or more than 32 components
    are refused.  ``name`` must be a basename: not empty, '.' or '..', without
    '/', '\\' or NUL, at most 255 bytes, not starting with ``TEMP_PREFIX``.
    No component or name may start like a drive ("C:..."; harmless on POSIX,
    refused anyway so that the rule holds on Windows).  Text that cannot be
    encoded for the filesystem (lone surrogates) is refused.

    Raises PathRefused for a refused value and TypeError for a non-str one.
    """
    name = _exact_str(name, "file name")
    if dir is not None:
        dir = _exact_str(dir, "directory")
    if not name:
        raise PathRefused("file name is empty")
    if "/" in name or "\\" in name:
        raise PathRefused("file name %s contains a path separator" % _show(name))
    if name in (".", ".."):
        raise PathRefused("file name %s is not a file name" % _show(name))
    if name.startswith(TEMP_PREFIX):
        raise PathRefused("file name %s uses the reserved prefix %r"
                          % (_show(name), TEMP_PREFIX))
    _check_component(name, "file name")
    if not dir:
        return (), name
    if len(dir) > _MAX_DIR_CHARS:
        raise PathRefused("directory %s is too long" % _show(dir))
    if "\0" in dir:
        raise PathRefused("directory %s contains a NUL character" % _show(dir))
    if dir[0] in "/\\":
        raise PathRefused("directory %s is an absolute path" % _show(dir))
    components = []
    for part in dir.replace("\\", "/").split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            raise PathRefused("directory %s contains '..'" % _show(dir))
        _check_component(part, "directory component")
        components.append(part)
        if len(components) > MAX_DEPTH:
            raise PathRefused("directory %s is more than %d levels deep"
                              % (_show(dir), MAX_DEPTH))
    return tuple(components), name


def _shown_path(components, name=None):
    """The relative path for messages."""
    parts = list(components) if name is None else list(components) + [name]
    return _show("/".join(parts)) if parts else "(destination root)"


def _lstat(dir_fd, name):
    """lstat of name in dir_fd, None if there is no such entry."""
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _check_target(st, shown, overwrite):
    """Refuse to put a file where lstat result st is, unless allowed."""
    if st is None:
        return
    if stat.S_ISLNK(st.st_mode):
        raise PathRefused("%s is a symbolic link; it is never replaced" % shown)
    if not stat.S_ISREG(st.st_mode):
        raise PathRefused("%s exists and is not a regular file" % shown)
    if not overwrite:
        raise PathRefused("%s exists and overwrite is not allowed" % shown)


def _perm(mode):
    """Permission bits only: a peer never sets setuid, setgid or sticky."""
    return operator.index(mode) & 0o777


def _ns(value, what):
    value = operator.index(value)
    if not -_INT64 <= value < _INT64:
        raise PathRefused("%s %d ns is out of range" % (what, value))
    return value


def _require_dir_fd_support():
    needed = (os.open, os.mkdir, os.stat, os.unlink, os.rename)
    # (os.replace takes src_dir_fd like os.rename but is not listed in
    # os.supports_dir_fd; os.link is optional, see ConfinedWriter._install.)
    if not all(func in os.supports_dir_fd for func in needed):
        raise NotImplementedError(
            "confined file access needs dir_fd support, which this platform lacks")


class ConfinedDir:
    """The destination directory of files from peers, and every operation in it.

    ``ConfinedDir(dest_path)`` resolves ``dest_path`` once with
    ``os.path.realpath`` (a symlink there is the operator's configuration, so
    it is trusted) and opens a descriptor of it; with ``create=True`` the
    directory is made first (mode 0o700) if it is missing.  Every method takes
    the peer's ``dir`` and ``name`` as they arrived and validates them with
    :func:`check_name`.  Use as a context manager, or call :meth:`close`;
    writers already returned keep working after close (they hold their own
    descriptors).  Methods may be called from several threads.
    """

    def __init__(self, dest_path, create=False):
        _require_dir_fd_support()
        path = os.path.realpath(os.fsdecode(os.fspath(dest_path)))
        if create:
            os.makedirs(path, mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_RDONLY | _O_DIRECTORY | _O_NONBLOCK)
        try:
            if not stat.S_ISDIR(os.fstat(fd).st_mode):  # no O_DIRECTORY here
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
        except BaseException:
            os.close(fd)
            raise
        #: The absolute, resolved destination path (a str).
        self.path = path
        self._fd = fd

    def __repr__(self):
        return "<ConfinedDir %r%s>" % (self.path, " closed" if self._fd is None else "")

    def close(self):
        """Close the descriptor of the destination (idempotent)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    @property
    def closed(self):
        return self._fd is None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
        return False

    # -- walking -----------------------------------------------------------

    def _open_subdir(self, dir_fd, part, components, create):
        """Open directory part in dir_fd without following a symlink.

        With create, a missing directory is made (mode 0o700).  Raises
        PathRefused if part is a symlink or not a directory, and
        FileNotFoundError if it is missing and not to be created.
        """
        flags = os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW | _O_NONBLOCK
        checked_open = not (_O_DIRECTORY and _O_NOFOLLOW)
        for attempt in (1, 2):
            try:
                before = None
                if checked_open:
                    before = os.stat(part, dir_fd=dir_fd, follow_symlinks=False)
                    if not stat.S_ISDIR(before.st_mode):
                        raise self._not_a_dir(before, components)
                fd = os.open(part, flags, dir_fd=dir_fd)
            except FileNotFoundError:
                if not create or attempt == 2:
                    raise
                try:
                    os.mkdir(part, 0o700, dir_fd=dir_fd)
                except FileExistsError:
                    pass  # made meanwhile, or a symlink: the next open decides
                continue
            except OSError as exc:
                if exc.errno not in _NOT_A_DIR_ERRNOS:
                    raise
                raise self._not_a_dir(_lstat(dir_fd, part), components) from None
            try:
                after = os.fstat(fd)
                if not stat.S_ISDIR(after.st_mode):
                    raise self._not_a_dir(after, components)
                if before is not None and (before.st_dev, before.st_ino) != (
                        after.st_dev, after.st_ino):
                    raise PathRefused("directory %s changed while it was opened"
                                      % _shown_path(components))
            except BaseException:
                os.close(fd)
                raise
            return fd
        raise AssertionError("unreachable")

    @staticmethod
    def _not_a_dir(st, components):
        shown = _shown_path(components)
        if st is not None and stat.S_ISLNK(st.st_mode):
            return PathRefused("directory %s is a symbolic link; it is never followed"
                               % shown)
        return PathRefused("%s is not a directory" % shown)

    def _walk(self, components, create):
        """A new descriptor of the directory components name; caller closes it."""
        if self._fd is None:
            raise ValueError("I/O operation on a closed ConfinedDir")
        fd = os.dup(self._fd)
        try:
            for depth in range(len(components)):
                nxt = self._open_subdir(fd, components[depth],
                                        components[:depth + 1], create)
                fd, old = nxt, fd
                os.close(old)
        except BaseException:
            os.close(fd)
            raise
        return fd

    # -- operations --------------------------------------------------------

    def resolve_for_report(self, dir, name):
        """The absolute path the file has, for logs and replies.

        Computed from the resolved destination and the validated components;
        no filesystem access.  Raises PathRefused like :func:`check_name`.
        """
        components, name = check_name(dir, name)
        return os.path.join(self.path, *components, name)

    def open_for_write(self, dir, name, overwrite, mode=0o600):
        """Start writing file ``name`` in ``dir``; returns a :class:`ConfinedWriter`.

        Missing directories are created (mode 0o700, less the umask).  The
        data goes to a new temporary file in the target directory, created
        with permission bits ``mode & 0o777`` (less the umask) while it is
        written; :meth:`ConfinedWriter.commit` renames it into place.  Refuses
        at once (PathRefused) when the final name is a symbolic link, a
        directory or a special file, or an existing file and ``overwrite`` is
        false, so the caller can answer before any data is sent.
        """
        components, name = check_name(dir, name)
        perm = _perm(mode)
        shown = _shown_path(components, name)
        dir_fd = self._walk(components, create=True)
        try:
            _check_target(_lstat(dir_fd, name), shown, overwrite)
            # O_CREAT | O_EXCL never follows a symlink (POSIX: EEXIST), and
            # O_NOFOLLOW says so again where it exists.
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_BINARY
            for attempt in range(16):
                tmp = TEMP_PREFIX + secrets.token_hex(8)
                try:
                    fd = os.open(tmp, flags, perm, dir_fd=dir_fd)
                    break
                except FileExistsError:
                    continue
            else:
                raise FileExistsError(errno.EEXIST, "no free temporary file name",
                                      os.path.join(self.path, *components))
        except BaseException:
            os.close(dir_fd)
            raise
        return ConfinedWriter(dir_fd, fd, tmp, name, bool(overwrite), shown,
                              os.path.join(self.path, *components, name))

    def existing_same(self, dir, name, size, mtime):
        """True if a regular file (not a symlink) ``name`` is in ``dir`` with
        this size (bytes) and mtime (integer nanoseconds, ``st_mtime_ns``).

        A missing directory or file, or an entry of another type, answers
        False; a directory component that is a symlink or not a directory is
        refused (PathRefused), as a write there would be.
        """
        components, name = check_name(dir, name)
        size = operator.index(size)
        mtime = operator.index(mtime)
        try:
            dir_fd = self._walk(components, create=False)
        except FileNotFoundError:
            return False
        try:
            st = _lstat(dir_fd, name)
        finally:
            os.close(dir_fd)
        return (st is not None and stat.S_ISREG(st.st_mode)
                and st.st_size == size and st.st_mtime_ns == mtime)

    def delete(self, dir, name):
        """Remove file ``name`` in ``dir``; returns its path for reports.

        Removes a regular file, or a symbolic link entry itself (its target,
        wherever it is, is not touched).  Refuses (PathRefused) a missing
        file or directory, a directory component that is a symlink, and any
        other kind of entry.  Directories are left in place, empty or not.
        """
        components, name = check_name(dir, name)
        shown = _shown_path(components, name)
        try:
            dir_fd = self._walk(components, create=False)
        except FileNotFoundError:
            raise PathRefused("%s: no such file" % shown) from None
        try:
            st = _lstat(dir_fd, name)
            if st is None:
                raise PathRefused("%s: no such file" % shown)
            if not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
                raise PathRefused("%s is not a regular file" % shown)
            # unlink never follows a symlink and fails on a directory, so an
            # entry swapped since the lstat is at worst another entry here.
            try:
                os.unlink(name, dir_fd=dir_fd)
            except FileNotFoundError:
                raise PathRefused("%s: no such file" % shown) from None
            except IsADirectoryError:
                raise PathRefused("%s is not a regular file" % shown) from None
        finally:
            os.close(dir_fd)
        return os.path.join(self.path, *components, name)


class ConfinedWriter:
    """A file being received: data goes to a temporary file until commit.

    Returned by :meth:`ConfinedDir.open_for_write`.  :meth:`write` is
    unbuffered: each call writes all its bytes with ``os.write`` before it
    returns (so stream in chunks of, say, 64 KiB).  :meth:`commit` installs
    the file under its name, :meth:`abort` removes the temporary file; one
    of them must be called, or the writer used as a context manager, which
    aborts when the block is left without a commit (by an exception or not).

    Attributes: ``path``, the absolute path the file gets (for reports), and
    ``size``, the bytes written so far (for the caller's size limit).
    """

    def __init__(self, dir_fd, fd, tmp, name, overwrite, shown, path):
        self.path = path
        self.size = 0
        self._dir_fd = dir_fd
        self._fd = fd
        self._tmp = tmp
        self._name = name
        self._overwrite = overwrite
        self._shown = shown

    def __repr__(self):
        state = "open" if self._fd is not None else "closed"
        return "<ConfinedWriter %r %s, %d bytes>" % (self.path, state, self.size)

    @property
    def closed(self):
        """True once committed or aborted."""
        return self._fd is None

    def fileno(self):
        """The descriptor of the temporary file."""
        if self._fd is None:
            raise ValueError("I/O operation on a closed ConfinedWriter")
        return self._fd

    def write(self, data):
        """Write all of the bytes-like ``data``; returns its length."""
        fd = self.fileno()
        with memoryview(data) as view, view.cast("B") as raw:
            total = len(raw)
            done = os.write(fd, raw) if total else 0
            while done < total:
                with raw[done:] as rest:
                    count = os.write(fd, rest)
                if not count:
                    raise OSError(errno.EIO, "write wrote nothing", self.path)
                done += count
        self.size += total
        return total

    def commit(self, mode=None, mtime=None, atime=None, fsync=False):
        """Give the file its attributes and install it under its name.

        ``mode``: permission bits to set (``mode & 0o777``; None keeps the
        creation mode).  ``mtime`` and ``atime``: integer nanoseconds since
        the epoch (None leaves mtime as written; atime defaults to mtime).
        Both are set through the descriptor, never through a path.

        The rename is atomic for other processes (they see the old file or
        the new one, never a partial one) but nothing is flushed to disk
        unless ``fsync`` is true (then the file and its directory are), so a
        power loss may lose a committed file.  Raises PathRefused if the
        target became a symlink, a directory or special file, or (with
        overwrite false) a file since :meth:`ConfinedDir.open_for_write`;
        on any failure the temporary file is removed.  Returns ``path``.
        """
        fd = self.fileno()
        try:
            if mode is not None:
                os.chmod(fd, _perm(mode))
            if mtime is not None:
                mtime = _ns(mtime, "mtime")
                atime = mtime if atime is None else _ns(atime, "atime")
                os.utime(fd, ns=(atime, mtime))
            elif atime is not None:
                raise TypeError("atime given without mtime")
            if fsync:
                os.fsync(fd)
            self._fd = None
            os.close(fd)
            self._install()
            if fsync:
                os.fsync(self._dir_fd)
        except BaseException:
            self.abort()
            raise
        self._close_dir()
        return self.path

    def _install(self):
        """Rename the temporary file to its name in the target directory."""
        dir_fd, tmp, name = self._dir_fd, self._tmp, self._name
        _check_target(_lstat(dir_fd, name), self._shown, self._overwrite)
        if self._overwrite:
            try:
                os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            except IsADirectoryError:  # made since the check above
                raise PathRefused("%s exists and is not a regular file"
                                  % self._shown) from None
            self._tmp = None
            return
        # Without overwrite, link() installs the file only if the name is
        # free, atomically (it fails on any existing entry, symlinks
        # included); the temporary name is then removed.
        try:
            try:
                os.link(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd,
                        follow_symlinks=False)
            except OSError as exc:
                # PyPy 3.9 (7.3.11) hands linkat() AT_SYMLINK_NOFOLLOW, which
                # Linux rejects with EINVAL.  Link again following the source
                # then: it is our own temporary file, and even if someone
                # swapped it for a symlink, only a new name inside dest_path
                # would appear, nothing would be written through it.
                if exc.errno != errno.EINVAL:
                    raise
                os.link(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except FileExistsError:
            raise PathRefused("%s exists and overwrite is not allowed"
                              % self._shown) from None
        except (OSError, NotImplementedError) as exc:
            if isinstance(exc, OSError) and exc.errno not in _NO_LINK_ERRNOS:
                raise
            # No hard links on this filesystem: rename after the check above.
            # An entry made in between would be replaced: it is inside
            # dest_path, and a symlink is replaced, not followed.
            os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            self._tmp = None
            return
        self._tmp = None
        try:
            os.unlink(tmp, dir_fd=dir_fd)
        except OSError:
            pass  # the file is installed; a stray second name is all that is left

    def abort(self):
        """Drop the file: close and remove the temporary file (idempotent)."""
        fd, self._fd = self._fd, None
        try:
            if fd is not None:
                os.close(fd)
        finally:
            tmp, self._tmp = self._tmp, None
            try:
                if tmp is not None and self._dir_fd is not None:
                    try:
                        os.unlink(tmp, dir_fd=self._dir_fd)
                    except FileNotFoundError:
                        pass
            finally:
                self._close_dir()

    def _close_dir(self):
        dir_fd, self._dir_fd = self._dir_fd, None
        if dir_fd is not None:
            os.close(dir_fd)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.abort()  # a no-op after commit
        return False
