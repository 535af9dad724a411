"""Asynchronous I/O on the reactor: sockets (with TLS) and files/pipes.

* :mod:`pycos.io.fdio` -- how a descriptor's operations park and wake tasks;
* :mod:`pycos.io.socket` -- :class:`AsyncSocket`;
* :mod:`pycos.io.tls` -- TLS on memory BIOs for AsyncSocket;
* :mod:`pycos.io.file` -- :class:`AsyncFile`, :class:`AsyncPipe`.
"""
from pycos.io.socket import AsyncSocket
from pycos.io.file import AsyncFile, AsyncPipe

__all__ = ["AsyncSocket", "AsyncFile", "AsyncPipe"]
