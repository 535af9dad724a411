"""A chat server: framed messages (send_msg/recv_msg), one reader and one
writer task per client.

Every message on the wire is one frame (``send_msg``/``recv_msg``: a 4-byte
length, then UTF-8 text), so neither side has to find line ends in a byte
stream.  The first frame a client sends is its nickname; after that each
frame is a line of chat, which the server forwards to everybody else as
``nick: text``.  ``/who`` lists who is online, ``/quit`` leaves.

Why a writer task per client: a socket allows one pending write at a time.
Many readers forward to the same client, so they do not write to its socket
themselves; they ``send()`` the text to that client's writer task, which
writes frames one after the other.  A client that reads slowly only delays
its own writer, never the others.

    python examples/chat_server.py --port 9802
    python examples/chat_client.py --port 9802 --nick alice     # in two terminals
    python examples/chat_client.py --port 9802 --nick bob

``--port 0`` picks a free port (printed on the first line).  ``--selftest``
connects three clients from this process, has each say something, checks
that the others heard it, prints the conversation and exits.
"""
import argparse
import signal
import socket
import sys

import pycos

MAX_FRAME = 64 * 1024       # a hostile length prefix cannot make us allocate more

clients: dict = {}          # nickname -> that client's writer task


def broadcast(text, exclude=None):
    for nick, writer in list(clients.items()):
        if nick != exclude:
            writer.send(text)


def writer(conn, task=None):
    """Write the texts this task receives to ``conn``; None ends it."""
    try:
        while True:
            text = yield task.receive()
            if text is None:
                break
            yield conn.send_msg(text.encode("utf-8"))
    except OSError:
        pass                # the client is gone; its reader will notice too
    finally:
        conn.close()


def client(conn, addr, log, task=None):
    """Read one client's frames; the first is its nickname."""
    try:
        nick = (yield conn.recv_msg()).decode("utf-8", "replace").strip()
    except OSError:
        conn.close()
        return
    if not nick or len(nick) > 32 or nick in clients or nick.startswith("*"):
        try:
            yield conn.send_msg(("* nickname %r is not available" % nick).encode("utf-8"))
        except OSError:
            pass
        conn.close()
        return
    out = pycos.Task(writer, conn)
    out.send("* welcome %s; online: %s" % (nick, ", ".join(sorted(clients) + [nick])))
    broadcast("* %s joined" % nick)
    clients[nick] = out
    if log:
        print("%s joined from %s:%s" % (nick, addr[0], addr[1]), flush=True)
    try:
        while True:
            msg = yield conn.recv_msg()
            if not msg:                             # end of stream
                break
            text = msg.decode("utf-8", "replace")
            if text == "/quit":
                break
            if text == "/who":
                out.send("* online: " + ", ".join(sorted(clients)))
            else:
                broadcast("%s: %s" % (nick, text), exclude=nick)
    except OSError as exc:                          # reset, or a frame over MAX_FRAME
        if log:
            print("%s: %s" % (nick, exc), flush=True)
    finally:
        del clients[nick]
        out.send(None)                              # the writer closes the socket
        broadcast("* %s left" % nick)
        if log:
            print("%s left" % nick, flush=True)


def serve(listener, log, task=None):
    while True:
        try:
            conn, addr = yield listener.accept()
        except OSError:
            if listener.closed:
                break
            raise
        pycos.Task(client, conn, addr, log)


# -- self-test: three clients in this process -----------------------------

def test_client(nick, address, joined, said, task=None):
    """Join, wait until everybody has, say one line, collect what the
    others said, then quit.  Returns the frames received."""
    sock = pycos.AsyncSocket(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    sock.settimeout(10)
    heard = []
    try:
        yield sock.connect(address)
        yield sock.send_msg(nick.encode())
        heard.append((yield sock.recv_msg()).decode())          # the welcome
        joined.release()
        yield said.acquire()        # go when everyone has joined (see selftest)
        yield sock.send_msg(("hello from %s" % nick).encode())
        while sum(t.startswith(("alice:", "bob:", "carol:")) for t in heard) < 2:
            msg = yield sock.recv_msg()
            if not msg:
                break
            heard.append(msg.decode())
        yield sock.send_msg(b"/quit")
        while (yield sock.recv_msg()):      # until the server closes
            pass
    finally:
        sock.close()
    return heard


def selftest(address, task=None):
    nicks = ["alice", "bob", "carol"]
    joined = pycos.Semaphore(0)
    said = pycos.Semaphore(0)
    tasks = []
    for nick in nicks:              # join one after the other: a known order
        tasks.append(pycos.Task(test_client, nick, address, joined, said))
        yield joined.acquire()
    for _ in nicks:
        said.release()
    failures = 0
    for nick, t in zip(nicks, tasks):
        heard = yield t.finish()
        if isinstance(heard, pycos.MonitorStatus):
            print("FAIL %s: %s" % (nick, heard.value.strip().splitlines()[-1]))
            failures += 1
            continue
        for line in heard:
            print("%-6s| %s" % (nick, line))
        want = {"%s: hello from %s" % (o, o) for o in nicks if o != nick}
        if not want <= set(heard) or not heard[0].startswith("* welcome " + nick):
            print("FAIL %s did not hear %s" % (nick, sorted(want - set(heard))))
            failures += 1
    return failures


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9802, help="0: any free port")
    ap.add_argument("-q", "--quiet", action="store_true", help="do not log joins and leaves")
    ap.add_argument("--selftest", action="store_true",
                    help="chat between three clients in this process, check, exit")
    args = ap.parse_args()

    info = socket.getaddrinfo(args.host, args.port, 0, socket.SOCK_STREAM)[0]
    raw = socket.socket(info[0], socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    raw.bind(info[4])
    raw.listen(128)
    # every accepted connection inherits max_msg_size: recv_msg refuses
    # (OSError EMSGSIZE) a frame announcing more than MAX_FRAME bytes
    listener = pycos.AsyncSocket(raw, max_msg_size=MAX_FRAME)
    address = raw.getsockname()[:2]
    print("chat server on %s:%d" % address, flush=True)

    signal.signal(signal.SIGTERM, signal.default_int_handler)
    server = pycos.Task(serve, listener, not (args.quiet or args.selftest))
    status = 0
    try:
        if args.selftest:
            failures = pycos.Task(selftest, address).value()
            print("selftest: %d failure(s)" % failures)
            status = 1 if failures else 0
        else:
            server.value()
    except KeyboardInterrupt:
        print("stopping", flush=True)
    finally:
        listener.close()
        pycos.Pycos().terminate()
    sys.exit(status)


if __name__ == "__main__":
    main()
