"""A TCP echo client: several connections at once, each in its own task.

Each client task connects to an echo server (``examples/echo_server.py``, or
any other), sends every message given on the command line, reads the echo
back with ``recvall`` and checks it.  With ``--cafile`` it speaks TLS and
verifies the server's certificate against that CA, including the host name
(``--server-hostname``, default: ``--host``).

    python examples/echo_server.py --port 9801 &
    python examples/echo_client.py --port 9801 hello world
    python examples/echo_client.py --port 9801 --clients 50 --repeat 10

    python examples/echo_client.py --port 9801 --cafile ca.pem hello    # TLS

It prints each echo (or, with many clients, only a summary) and exits with
status 0 when every echo matched, 1 otherwise.
"""
import argparse
import socket
import sys
import time

import pycos


def client(n, family, address, args, task=None):
    """One connection; returns the number of messages echoed correctly."""
    tls = args.cafile is not None
    sock = pycos.AsyncSocket(socket.socket(family, socket.SOCK_STREAM),
                             certfile=args.cafile,
                             server_hostname=(args.server_hostname or args.host) if tls else None)
    sock.settimeout(args.timeout)       # per operation: connect, each send, each recv
    good = 0
    try:
        yield sock.connect(address)
        for i in range(args.repeat):
            for text in args.messages:
                msg = text.encode()
                yield sock.sendall(msg)
                echo = yield sock.recvall(len(msg))
                if echo == msg:
                    good += 1
                if args.clients == 1:
                    print("%s %r" % ("echo" if echo == msg else "WRONG ECHO", echo.decode()),
                          flush=True)
    finally:
        sock.close()
    return good


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("messages", nargs="*", default=["hello", "echo"],
                    help="messages to send (default: hello echo)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9801)
    ap.add_argument("--cafile", help="use TLS and verify the server against this CA (PEM)")
    ap.add_argument("--server-hostname", help="name the certificate must match "
                    "(default: --host)")
    ap.add_argument("--clients", type=int, default=1, help="concurrent connections")
    ap.add_argument("--repeat", type=int, default=1, help="send the messages this many times")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds per operation")
    args = ap.parse_args()
    args.messages = [m for m in args.messages if m]
    if not args.messages:
        ap.error("messages must not be empty")

    info = socket.getaddrinfo(args.host, args.port, 0, socket.SOCK_STREAM)[0]
    family, address = info[0], info[4]
    started = time.monotonic()
    tasks = [pycos.Task(client, n, family, address, args) for n in range(args.clients)]
    good = failed = 0
    for t in tasks:
        result = t.value()
        if isinstance(result, pycos.MonitorStatus):     # the task raised (logged already)
            failed += 1
        else:
            good += result
    pycos.Pycos().finish()
    expected = args.clients * args.repeat * len(args.messages)
    print("%d of %d echoes correct, %d connection(s) failed, %.3f s"
          % (good, expected, failed, time.monotonic() - started))
    sys.exit(0 if good == expected else 1)


if __name__ == "__main__":
    main()
