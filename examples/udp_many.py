"""A UDP server and many UDP clients, each client a task with its own socket.

The server task answers every datagram with a numbered acknowledgement:
``ack <n> <the datagram>``.  Each client sends its requests one at a time
and waits for the matching answer with a timeout; UDP may lose datagrams, so
a request that gets no answer in time is sent again (up to ``--retries``
times), and answers to an earlier copy of a request are recognised and
ignored.  One task per client is all it takes: no threads, no callbacks.

By default the server and the clients run in this process, and the program
prints a summary and exits (status 0 when every request was answered):

    python examples/udp_many.py --clients 200 --messages 10
    python examples/udp_many.py --host ::1          # the same over IPv6

Or run them apart, the server until Ctrl-C:

    python examples/udp_many.py --serve --port 9803
    python examples/udp_many.py --connect --port 9803 --clients 50
"""
import argparse
import signal
import socket
import sys
import time

import pycos


def server(sock, counts, task=None):
    """Answer each datagram until ``sock`` is closed."""
    while True:
        try:
            data, addr = yield sock.recvfrom(2048)
        except OSError:
            if sock.closed:
                break
            raise
        if sock.closed:         # woken by close(): there was no datagram
            break
        counts["served"] += 1
        yield sock.sendto(b"ack %d %s" % (counts["served"], data), addr)


def client(n, family, address, messages, retries, timeout, task=None):
    """Send ``messages`` requests; returns (answered, resends)."""
    sock = pycos.AsyncSocket(socket.socket(family, socket.SOCK_DGRAM))
    sock.settimeout(timeout)
    answered = resends = 0
    try:
        for i in range(messages):
            request = b"client %d request %d" % (n, i)
            for attempt in range(retries + 1):
                if attempt:
                    resends += 1
                yield sock.sendto(request, address)
                got = False
                while True:
                    try:
                        reply, _ = yield sock.recvfrom(2048)
                    except socket.timeout:
                        break                       # lost: send it again
                    if reply.split(b" ", 2)[-1] == request:
                        got = True
                        break
                    # else: the late answer to an earlier request; keep waiting
                if got:
                    answered += 1
                    break
    finally:
        sock.close()
    return answered, resends


def run_clients(family, address, args, task=None):
    tasks = [pycos.Task(client, n, family, address, args.messages, args.retries,
                        args.timeout) for n in range(args.clients)]
    answered = resends = failed = 0
    for t in tasks:
        result = yield t.finish()
        if isinstance(result, pycos.MonitorStatus):     # the task raised
            failed += 1
        else:
            answered += result[0]
            resends += result[1]
    return answered, resends, failed


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1", help="server address (::1 for IPv6)")
    ap.add_argument("--port", type=int, default=0, help="server port (0: any free port)")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--serve", action="store_true", help="run only the server, until Ctrl-C")
    mode.add_argument("--connect", action="store_true",
                      help="run only the clients, against a server at --host/--port")
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--messages", type=int, default=10, help="requests per client")
    ap.add_argument("--retries", type=int, default=5, help="resends of an unanswered request")
    ap.add_argument("--timeout", type=float, default=0.5, help="seconds to wait for an answer")
    args = ap.parse_args()
    if args.connect and not args.port:
        ap.error("--connect needs the server's --port")

    info = socket.getaddrinfo(args.host, args.port, 0, socket.SOCK_DGRAM)[0]
    family, address = info[0], info[4]
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    counts = {"served": 0}
    sock = None
    if not args.connect:
        raw = socket.socket(family, socket.SOCK_DGRAM)
        raw.bind(address)
        sock = pycos.AsyncSocket(raw)
        address = raw.getsockname()
        print("UDP server on %s port %d" % address[:2], flush=True)
        srv = pycos.Task(server, sock, counts)
    status = 0
    try:
        if args.serve:
            srv.value()
        else:
            started = time.monotonic()
            answered, resends, failed = pycos.Task(run_clients, family, address, args).value()
            wanted = args.clients * args.messages
            print("%d clients x %d requests: %d answered, %d resent, %d client(s) failed, "
                  "%.3f s" % (args.clients, args.messages, answered, resends, failed,
                              time.monotonic() - started))
            if sock is not None:
                print("server answered %d datagrams" % counts["served"])
            status = 0 if answered == wanted else 1
    except KeyboardInterrupt:
        print("stopping", flush=True)
    finally:
        if sock is not None:
            sock.close()            # wakes the server task, which ends
        pycos.Pycos().finish()
    sys.exit(status)


if __name__ == "__main__":
    main()
