"""Build the cffi extension ``pycos._reactor`` (out-of-line API mode).

The C reactor in ``csrc/`` is compiled into the extension as ordinary source
files; the declarations cffi binds live in ``csrc/_cdef.h`` (the public part
of ``csrc/reactor.h`` in the C subset cffi's parser accepts).

Used by setuptools through ``setup.py`` (``cffi_modules``).  Also a script:

    python build_reactor.py                   compile in place (pycos/_reactor.*.so)
                                              for quick work on the C code
    python build_reactor.py --remove-inplace  remove the running interpreter's
                                              in-place builds (``make setup``
                                              does this before reinstalling)

Every path is taken from this file's location, never from the current
directory.
"""
import glob
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CSRC = os.path.join(HERE, "csrc")


def remove_inplace_builds():
    """Remove this interpreter's in-place builds of the extension (made by this
    script or by an editable install; CPython's are named .cpython-3XY-*.so or
    .abi3.so), so that the newest build is the one imported."""
    from importlib.machinery import EXTENSION_SUFFIXES
    for suffix in EXTENSION_SUFFIXES:
        for path in glob.glob(os.path.join(HERE, "pycos", "_reactor" + suffix)):
            os.unlink(path)


if __name__ == "__main__":
    if sys.argv[1:] == ["--remove-inplace"]:  # needs no cffi: runs in a bare venv
        remove_inplace_builds()
        sys.exit(0)
    # In-place build: work from the project root so the generated
    # pycos/_reactor.c, the objects and the .so land inside it (all ignored
    # by git) and the source paths below can be relative.
    os.chdir(HERE)

import cffi  # noqa: E402  (after the option that must work without it)


def _rel(path):
    # setuptools wants source paths relative to the project (absolute ones end
    # up as build/temp*/<absolute path>.o); the build runs in HERE, and when it
    # does not (a script run elsewhere) an absolute path still works.
    if os.path.abspath(os.getcwd()) == HERE:
        return os.path.relpath(path, HERE)
    return path


SOURCES = sorted(_rel(p) for p in glob.glob(os.path.join(CSRC, "*.c")))
HEADERS = sorted(_rel(p) for p in glob.glob(os.path.join(CSRC, "*.h")))

if sys.platform == "win32":
    # (never built here: the Windows package is the wheel of `make wheel-win`,
    # with the reactor as a DLL; these are the libraries that DLL links)
    EXTRA_COMPILE_ARGS = []
    LIBRARIES = ["ws2_32", "mswsock"]
else:
    EXTRA_COMPILE_ARGS = ["-O2", "-std=c11", "-Wall", "-Wextra", "-D_GNU_SOURCE"]
    LIBRARIES = []

with open(os.path.join(CSRC, "_cdef.h")) as f:
    CDEF = f.read()

# Put after cffi's own definitions in the generated module.  On CPython, cffi
# wraps every call in Py_BEGIN/END_ALLOW_THREADS and saves and restores errno
# around it.  The reactor needs neither: its calls do not block (descriptors
# are non-blocking; a regular file's read is the one that may wait on the
# disk) and they report errors as negative results, not in errno.  Dropping
# the GIL and taking it back is nearly half of what cffi adds to a call, so
# the GIL is kept, except around an rx_poll that may wait (docs/design.md).
# PyPy does not use these wrappers.
GLUE = r"""
#include "reactor.h"
#ifndef PYPY_VERSION
static int pycos_rx_poll(rx_loop *loop, int64_t timeout_ns, rx_event *events, int max)
{
    int n;
    if (timeout_ns == 0)
        return rx_poll(loop, 0, events, max);
    Py_BEGIN_ALLOW_THREADS
    n = rx_poll(loop, timeout_ns, events, max);
    Py_END_ALLOW_THREADS
    return n;
}
#define rx_poll pycos_rx_poll
#undef Py_BEGIN_ALLOW_THREADS
#undef Py_END_ALLOW_THREADS
#define Py_BEGIN_ALLOW_THREADS {
#define Py_END_ALLOW_THREADS }
#undef _cffi_restore_errno
#undef _cffi_save_errno
#define _cffi_restore_errno() ((void)0)
#define _cffi_save_errno() ((void)0)
#endif
"""

ffibuilder = cffi.FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source(
    "pycos._reactor",
    GLUE,
    sources=SOURCES,
    depends=HEADERS,  # a changed header rebuilds the extension
    include_dirs=[_rel(CSRC)],
    extra_compile_args=EXTRA_COMPILE_ARGS,
    libraries=LIBRARIES,
)

if __name__ == "__main__":
    remove_inplace_builds()
    ffibuilder.compile(tmpdir=HERE, verbose=True)
