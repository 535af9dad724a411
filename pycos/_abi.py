"""The reactor through cffi's ABI mode: how Windows loads it.

On Linux and the BSDs the reactor is the extension ``pycos._reactor``, which
cffi's API mode compiles against the Python headers.  The Windows package
carries it instead as a plain DLL, ``rx_reactor.dll`` (``csrc/`` built with
no Python headers at all, so one file serves every Python version), beside
this module, with ``_reactor_cdef.h``: the extension's declarations
(``csrc/_cdef.h``) with the constants that API mode would take from the
compiler filled in from ``csrc/reactor.h`` (:func:`filled_cdef`, run when
the package is built).  :func:`load` makes the same ``ffi``/``lib`` pair the
extension has, so nothing above ``pycos.reactor`` can tell them apart.

The difference the mode makes: cffi's ABI calls release the GIL around
every call, where the extension keeps it for calls that cannot block
(build_reactor.py); correct either way, a little slower.
"""

import os
import re
from typing import Any, Dict, Tuple

__all__ = ["filled_cdef", "load"]

DLL = "rx_reactor.dll"
CDEF = "_reactor_cdef.h"


def _constants(header: str) -> Dict[str, int]:
    """The RX_ integer constants #defined in reactor.h, by name."""
    values = {}
    pattern = re.compile(r"^#define (RX_\w+)\s+(\S[^/]*?)\s*(?:/\*.*)?$", re.M)
    for name, text in pattern.findall(header):
        text = text.replace("INT64_MAX", str(2 ** 63 - 1))
        if not re.fullmatch(r"[-+()0-9 ]+", text):
            raise ValueError("%s: not an integer constant: %r" % (name, text))
        values[name] = int(re.sub(r"[() ]", "", text))
    return values


def filled_cdef(cdef: str, reactor_h: str) -> str:
    """``cdef`` (csrc/_cdef.h) with each ``#define RX_X ...`` given its value
    from ``reactor_h`` (csrc/reactor.h)."""
    values = _constants(reactor_h)

    def fill(m):
        if m.group(1) not in values:
            raise ValueError("%s is declared in the cdef but not defined in reactor.h"
                             % m.group(1))
        return "#define %s %d" % (m.group(1), values[m.group(1)])

    return re.sub(r"#define (RX_\w+) \.\.\.", fill, cdef)


def load(dll: str, cdef: str) -> Tuple[Any, Any]:
    """``(ffi, lib)`` of the reactor DLL at ``dll`` declared by ``cdef`` (a
    filled cdef)."""
    import cffi
    ffi = cffi.FFI()
    ffi.cdef(cdef)
    return ffi, ffi.dlopen(dll)


def load_packaged() -> Tuple[Any, Any]:
    """The reactor the Windows package carries (beside this module)."""
    here = os.path.dirname(os.path.abspath(__file__))
    dll, cdef = os.path.join(here, DLL), os.path.join(here, CDEF)
    if not (os.path.exists(dll) and os.path.exists(cdef)):
        raise ImportError(
            "pycos: no reactor in %s: neither the extension pycos._reactor nor %s with %s "
            "(docs/installation.md says how pycos is built for each system)"
            % (here, DLL, CDEF))
    with open(cdef) as f:
        return load(dll, f.read())
