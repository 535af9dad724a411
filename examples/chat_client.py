"""A chat client: the keyboard through a thread pool, the network in tasks.

Reading the terminal is a blocking call, and a blocking call inside a task
would stop every other task (including the one printing what others say).
So the task that reads the keyboard hands ``sys.stdin.readline`` to an
``AsyncThreadPool``: the call runs on a worker thread and the task waits
with ``yield``, while the scheduler goes on receiving messages.

    python examples/chat_server.py --port 9802 &
    python examples/chat_client.py --port 9802 --nick alice

Type lines to send them; ``/who`` lists who is online, ``/quit`` (or end of
input, Ctrl-D) leaves.  Messages are frames (``send_msg``/``recv_msg``),
see ``examples/chat_server.py``.  Input may also come from a pipe:

    printf 'hi all\\n/who\\n' | python examples/chat_client.py --port 9802 --nick bot
"""
import argparse
import socket
import sys

import pycos


def keyboard(sock, pool, task=None):
    """Send each line typed; at end of input (or /quit) say /quit."""
    while True:
        line = yield pool.async_task(sys.stdin.readline)    # runs on a pool thread
        if not line:                                        # end of input
            line = "/quit"
        line = line.rstrip("\r\n")
        if not line:
            continue
        yield sock.send_msg(line.encode("utf-8"))           # the only writer of sock
        if line == "/quit":
            break


def network(sock, task=None):
    """Print every frame from the server until it closes the connection."""
    while True:
        try:
            msg = yield sock.recv_msg()
        except OSError as exc:
            print("* connection lost: %s" % exc, flush=True)
            break
        if not msg:
            print("* disconnected", flush=True)
            break
        print(msg.decode("utf-8", "replace"), flush=True)


def session(address, nick, task=None):
    """Connect, introduce ourselves, then run the keyboard and the network
    tasks until the server closes the connection.  Returns an exit status."""
    sock = pycos.AsyncSocket(socket.socket(address[0], socket.SOCK_STREAM),
                             max_msg_size=1 << 20)
    pool = pycos.AsyncThreadPool(1)
    try:
        sock.settimeout(10)         # for connecting; then reads wait as long as needed
        try:
            yield sock.connect(address[1])
        except OSError as exc:
            print("cannot connect: %s" % exc, file=sys.stderr, flush=True)
            return 1
        sock.settimeout(None)
        # the nickname goes first, and keyboard() starts after it, so two
        # writes are never pending at once (one pending write per socket)
        yield sock.send_msg(nick.encode("utf-8"))
        typist = pycos.Task(keyboard, sock, pool)
        yield network(sock)         # a sub-call: returns when the server closes
        # If the keyboard task still waits for a line, its pool thread is
        # blocked in readline() and cannot be stopped: end the task (a late
        # line is dropped) and leave the thread, a daemon, to end with us.
        typist.terminate()
        return 0
    finally:
        sock.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9802)
    ap.add_argument("--nick", required=True, help="your nickname")
    args = ap.parse_args()

    info = socket.getaddrinfo(args.host, args.port, 0, socket.SOCK_STREAM)[0]
    try:
        status = pycos.Task(session, (info[0], info[4]), args.nick).value()
    except KeyboardInterrupt:
        pycos.Pycos().terminate()       # closes the tasks (and so the socket)
        sys.exit(130)
    pycos.Pycos().finish()
    sys.exit(status if isinstance(status, int) else 1)


if __name__ == "__main__":
    main()
