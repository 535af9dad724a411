"""Helpers shared by the pycos.io tests (imported as ``iohelp``)."""
import os
import socket

from pycos.io import AsyncSocket


def _has_ipv6():
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


HAS_IPV6 = _has_ipv6()


def _under_wine():
    if os.name != "nt":
        return False
    import ctypes
    return hasattr(ctypes.WinDLL("ntdll"), "wine_get_version")


#: Windows emulated by Wine (make pytest-wine), not a real Windows
UNDER_WINE = _under_wine()
#: iocp: a cancelled overlapped send does not say how much of it went
SEND_CANCEL_COUNT = "iocp: a timed-out send counts only the bytes of the kernel calls that " \
    "completed; a cancelled overlapped send reports no count (0 bytes under Wine, none "\
    "documented on Windows)"

LOOPBACK = {socket.AF_INET: "127.0.0.1", socket.AF_INET6: "::1"}


def listener(family=socket.AF_INET, backlog=128, **kw):
    """A listening AsyncSocket on an ephemeral loopback port."""
    s = AsyncSocket(socket.socket(family, socket.SOCK_STREAM), **kw)
    try:
        s.bind((LOOPBACK[family], 0))
        s.listen(backlog)
    except BaseException:
        s.close()
        raise
    return s


def addr_of(sock):
    """The (host, port) to connect to for a listening socket."""
    return sock.getsockname()[:2]
