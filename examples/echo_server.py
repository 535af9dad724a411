"""A TCP echo server: one task per connection, optionally over TLS.

The listening task accepts connections and starts a task for each; that task
sends back every byte it receives until the client closes.  Nothing blocks
the scheduler: while one connection waits for data, the others are served.
With ``--certfile``/``--keyfile`` the server speaks TLS; each connection's
handshake happens in its own task, so a slow or hostile client never holds up
the others.

Run it, then talk to it with ``examples/echo_client.py``, ``nc`` or (with
TLS) ``openssl s_client``; stop it with Ctrl-C:

    python examples/echo_server.py --port 9801
    python examples/echo_client.py --port 9801 hello world

    python examples/echo_server.py --port 9801 --certfile server.pem --keyfile server.key
    openssl s_client -connect 127.0.0.1:9801 -CAfile ca.pem

``--port 0`` lets the system choose a free port (the first line printed says
which).  ``--selftest`` starts a few clients in the same process, checks that
every echo matches, prints a summary and exits (status 0 on success):

    python examples/echo_server.py --selftest
    python examples/echo_server.py --selftest --certfile server.pem --keyfile server.key \\
        --cafile ca.pem
"""
import argparse
import signal
import socket
import ssl
import sys

import pycos


def serve_client(conn, addr, quiet, task=None):
    """Echo everything from ``conn`` back to it, until end of stream."""
    total = 0
    try:
        while True:
            data = yield conn.recv(65536)
            if not data:
                break
            yield conn.sendall(data)
            total += len(data)
    except ssl.SSLError as exc:          # e.g. a plain-TCP client on a TLS port
        if not quiet:
            print("%s: TLS error: %s" % (fmt(addr), exc), flush=True)
    except OSError as exc:               # reset by the peer, timeout ...
        if not quiet:
            print("%s: %s" % (fmt(addr), exc), flush=True)
    finally:
        conn.close()
    if not quiet:
        print("%s: closed after echoing %d bytes" % (fmt(addr), total), flush=True)


def serve(listener, quiet, task=None):
    """Accept connections until ``listener`` is closed."""
    while True:
        try:
            conn, addr = yield listener.accept()
        except OSError:
            if listener.closed:          # closed by main(): time to stop
                break
            raise
        if not quiet:
            print("%s: connected" % fmt(addr), flush=True)
        pycos.Task(serve_client, conn, addr, quiet)


def fmt(addr):
    return "[%s]:%s" % addr[:2] if ":" in str(addr[0]) else "%s:%s" % addr[:2]


# -- self-test: clients in the same process -------------------------------

def selftest_client(n, family, address, cafile, task=None):
    """Connect, send a few messages of different sizes, check each echo."""
    sock = pycos.AsyncSocket(socket.socket(family, socket.SOCK_STREAM), certfile=cafile,
                             server_hostname=address[0] if cafile else None)
    sock.settimeout(10)
    try:
        yield sock.connect(address)
        for size in (1, 100, 10000, 200000):
            msg = bytes((n + i) % 256 for i in range(size))
            yield sock.sendall(msg)
            echo = yield sock.recvall(len(msg))
            if echo != msg:
                return "client %d: echo of %d bytes differs" % (n, size)
    finally:
        sock.close()
    return None


def selftest(family, address, cafile, clients, task=None):
    tasks = [pycos.Task(selftest_client, n, family, address, cafile) for n in range(clients)]
    failures = []
    for t in tasks:
        result = yield t.finish()
        if isinstance(result, pycos.MonitorStatus):     # the client raised
            failures.append("client failed: %s" % result.value.strip().splitlines()[-1])
        elif result:
            failures.append(result)
    return failures


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1", help="address to listen on (::1 for IPv6)")
    ap.add_argument("--port", type=int, default=9801, help="0: any free port")
    ap.add_argument("--certfile", help="server certificate (PEM): serve TLS")
    ap.add_argument("--keyfile", help="private key of --certfile, if not in it")
    ap.add_argument("--cafile", help="--selftest only: CA the test clients verify the "
                    "server against (default: --certfile itself)")
    ap.add_argument("--selftest", action="store_true",
                    help="run a few clients against the server, print a summary, exit")
    ap.add_argument("--clients", type=int, default=5, help="--selftest: how many clients")
    ap.add_argument("-q", "--quiet", action="store_true", help="do not log connections")
    args = ap.parse_args()
    if args.keyfile and not args.certfile:
        ap.error("--keyfile needs --certfile")

    info = socket.getaddrinfo(args.host, args.port, 0, socket.SOCK_STREAM)[0]
    family, address = info[0], info[4]
    raw = socket.socket(family, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    raw.bind(address)
    raw.listen(128)
    listener = pycos.AsyncSocket(raw, certfile=args.certfile, keyfile=args.keyfile)
    address = raw.getsockname()
    print("echo server listening on %s%s" % (fmt(address), " (TLS)" if args.certfile else ""),
          flush=True)

    # SIGTERM ends the server as cleanly as Ctrl-C does
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    server = pycos.Task(serve, listener, args.quiet or args.selftest)
    status = 0
    try:
        if args.selftest:
            cafile = (args.cafile or args.certfile) if args.certfile else None
            failures = pycos.Task(selftest, family, address, cafile, args.clients).value()
            for line in failures:
                print("FAIL:", line)
            print("selftest: %d clients, %d failures" % (args.clients, len(failures)))
            status = 1 if failures else 0
        else:
            server.value()
    except KeyboardInterrupt:
        print("stopping", flush=True)
    finally:
        listener.close()        # wakes the accepting task, which ends
        pycos.Pycos().terminate()
    sys.exit(status)


if __name__ == "__main__":
    main()
