"""A tiny HTTP/1.1 server: one task per connection, keep-alive, no threads.

It answers ``GET`` and ``HEAD`` for three paths and 404 for anything else:

* ``/``       -- a small HTML page;
* ``/hello``  -- ``hello from pycos`` as text/plain;
* ``/stats``  -- JSON counters (connections, requests), changed by every request.

HTTP/1.1 connections stay open for more requests (keep-alive) until the
client sends ``Connection: close``, stays idle longer than ``--idle``
seconds, or ``--no-keepalive`` is given; HTTP/1.0 ones close after one
answer unless the client asks for keep-alive.  Requests that are malformed
or too large get 400/413/431/501/505 and the connection is closed.  It is a
demonstration of tasks and sockets, not a web server to put on the internet.

    python examples/http_server.py --port 8080
    curl -i http://127.0.0.1:8080/hello
    curl -v http://127.0.0.1:8080/ http://127.0.0.1:8080/stats   # one connection, two requests

``--port 0`` picks a free port (printed on the first line).  ``--selftest``
runs a few requests from tasks in the same process (keep-alive, HEAD, 404,
HTTP/1.0, a bad request), checks the answers, prints them and exits.
"""
import argparse
import email.utils
import json
import signal
import socket
import sys
from urllib.parse import unquote, urlsplit

import pycos

MAX_HEAD = 16 * 1024          # request line + headers
MAX_BODY = 64 * 1024          # a body (ignored) we are willing to read past
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
           413: "Content Too Large", 431: "Request Header Fields Too Large",
           501: "Not Implemented", 505: "HTTP Version Not Supported"}
INDEX = b"""<!DOCTYPE html>
<html><head><title>pycos http example</title></head>
<body><h1>pycos</h1><p>Served by one pycos task per connection.</p>
<ul><li><a href="/hello">/hello</a></li><li><a href="/stats">/stats</a></li></ul>
</body></html>
"""

stats = {"connections": 0, "open": 0, "requests": 0}


class BadRequest(Exception):
    def __init__(self, status):
        Exception.__init__(self, status)
        self.status = status


def read_head(conn, buf):
    """Read until the blank line ending the request head.  Returns (head,
    rest): ``head`` is None at end of stream before any byte came."""
    while True:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            return buf[:end], buf[end + 4:]
        if len(buf) > MAX_HEAD:
            raise BadRequest(431)
        data = yield conn.recv(65536)
        if not data:
            if buf.strip():
                raise BadRequest(400)           # cut off in the middle of a request
            return None, b""
        buf += data


def parse_head(head):
    """(method, path, version, headers) of a request head; BadRequest if
    it is not HTTP."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise BadRequest(400)
    method, target, version = parts
    if version not in ("HTTP/1.0", "HTTP/1.1"):
        raise BadRequest(505)
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise BadRequest(400)
        headers[name.lower()] = value.strip()
    return method, unquote(urlsplit(target).path), version, headers


def route(method, path):
    """(status, content type, body, extra headers) for a request."""
    if method not in ("GET", "HEAD"):
        return 405, "text/plain", b"only GET and HEAD here\n", [("Allow", "GET, HEAD")]
    if path == "/":
        return 200, "text/html; charset=utf-8", INDEX, []
    if path == "/hello":
        return 200, "text/plain; charset=utf-8", b"hello from pycos\n", []
    if path == "/stats":
        return 200, "application/json", (json.dumps(stats) + "\n").encode(), []
    return 404, "text/plain; charset=utf-8", ("no such page: %s\n" % path).encode(), []


def response(status, ctype, body, extra, keep_alive, head_only=False):
    lines = ["HTTP/1.1 %d %s" % (status, REASONS[status]),
             "Date: " + email.utils.formatdate(usegmt=True),
             "Server: pycos-example",
             "Content-Type: " + ctype,
             "Content-Length: %d" % len(body),
             "Connection: " + ("keep-alive" if keep_alive else "close")]
    lines += ["%s: %s" % kv for kv in extra]
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return data if head_only else data + body


def serve_client(conn, addr, keepalive, log, task=None):
    stats["connections"] += 1
    stats["open"] += 1
    buf = b""
    try:
        while True:
            try:
                head, buf = yield read_head(conn, buf)
            except socket.timeout:
                break                             # idle keep-alive connection
            if head is None:
                break
            try:
                method, path, version, headers = parse_head(head)
                if "transfer-encoding" in headers:
                    raise BadRequest(501)         # no chunked request bodies here
                length = headers.get("content-length", "0")
                if not length.isdigit():
                    raise BadRequest(400)
                length = int(length)
                if length > MAX_BODY:
                    raise BadRequest(413)
                if len(buf) < length:             # read past a body we do not use
                    buf += yield conn.recvall(length - len(buf))
                    if len(buf) < length:
                        break
                buf = buf[length:]
            except BadRequest as exc:
                status = exc.status
                yield conn.sendall(response(status, "text/plain", (REASONS[status] + "\n")
                                            .encode(), [], False))
                if log:
                    print("%s:%s %d %s" % (addr[0], addr[1], status, REASONS[status]),
                          flush=True)
                break
            stats["requests"] += 1
            conn_hdr = headers.get("connection", "").lower()
            if version == "HTTP/1.1":
                keep = keepalive and conn_hdr != "close"
            else:
                keep = keepalive and conn_hdr == "keep-alive"
            status, ctype, body, extra = route(method, path)
            yield conn.sendall(response(status, ctype, body, extra, keep, method == "HEAD"))
            if log:
                print("%s:%s %s %s %d" % (addr[0], addr[1], method, path, status), flush=True)
            if not keep:
                break
    except OSError as exc:          # reset by the client, write timeout ...
        if log:
            print("%s:%s %s" % (addr[0], addr[1], exc), flush=True)
    finally:
        stats["open"] -= 1
        conn.close()


def serve(listener, keepalive, idle, log, task=None):
    while True:
        try:
            conn, addr = yield listener.accept()
        except OSError:
            if listener.closed:
                break
            raise
        conn.settimeout(idle)       # each read and write; an idle client is dropped
        pycos.Task(serve_client, conn, addr, keepalive, log)


# -- self-test: requests from tasks in this process -----------------------

def request(address, raw, count=1, task=None):
    """Send ``raw`` (one or more requests) on a new connection and read
    ``count`` responses; returns a list of (status line, headers, body),
    plus ("closed", {}, b"") when the server closed after a "Connection:
    close" answer."""
    sock = pycos.AsyncSocket(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    sock.settimeout(10)
    answers: list = []
    try:
        yield sock.connect(address)
        yield sock.sendall(raw)
        buf = b""
        for _ in range(count):
            while b"\r\n\r\n" not in buf:
                data = yield sock.recv(65536)
                if not data:
                    return answers
                buf += data
            head, buf = buf.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            headers = dict((k.lower(), v.strip()) for k, _, v in
                           (line.partition(":") for line in lines[1:]))
            n = 0 if raw.startswith(b"HEAD ") else int(headers["content-length"])
            while len(buf) < n:
                data = yield sock.recv(65536)
                if not data:
                    break
                buf += data
            answers.append((lines[0], headers, buf[:n]))
            buf = buf[n:]
        if headers.get("connection") == "close":
            rest = yield sock.recv(1)      # the server must close now
            answers.append(("closed" if rest == b"" else "NOT closed", {}, b""))
    finally:
        sock.close()
    return answers


def selftest(address, task=None):
    checks = [
        ("keep-alive: two requests on one connection",
         b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\nGET /stats HTTP/1.1\r\nHost: x\r\n"
         b"Connection: close\r\n\r\n", 2,
         lambda a: (a[0][0].endswith("200 OK") and a[0][2] == b"hello from pycos\n"
                    and a[1][0].endswith("200 OK") and json.loads(a[1][2])["requests"] >= 2
                    and a[2][0] == "closed")),
        ("HEAD has headers, no body",
         b"HEAD /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 1,
         lambda a: a[0][0].endswith("200 OK") and a[0][1]["content-length"] == "17"
         and a[0][2] == b""),
        ("unknown path is 404",
         b"GET /nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 1,
         lambda a: a[0][0].endswith("404 Not Found")),
        ("HTTP/1.0 closes after one answer",
         b"GET / HTTP/1.0\r\n\r\n", 1,
         lambda a: a[0][0].endswith("200 OK") and b"<h1>pycos</h1>" in a[0][2]
         and a[1][0] == "closed"),
        ("POST is refused", b"POST /hello HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", 1,
         lambda a: a[0][0].endswith("405 Method Not Allowed") and a[0][1]["allow"]),
        ("garbage is a bad request", b"HELLO\r\n\r\n", 1,
         lambda a: a[0][0].endswith("400 Bad Request") and a[1][0] == "closed"),
    ]
    failures = 0
    for name, raw, count, check in checks:
        answers = yield request(address, raw, count)
        try:
            ok = check(answers)
        except (IndexError, KeyError, ValueError):
            ok = False
        failures += not ok
        print("%-4s %s: %s" % ("ok" if ok else "FAIL", name,
                               "; ".join(a[0] for a in answers)), flush=True)
    return failures


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080, help="0: any free port")
    ap.add_argument("--no-keepalive", action="store_true", help="close after every answer")
    ap.add_argument("--idle", type=float, default=15.0,
                    help="seconds a connection may stay silent before it is closed")
    ap.add_argument("-q", "--quiet", action="store_true", help="do not log requests")
    ap.add_argument("--selftest", action="store_true",
                    help="send a few requests from this process, check them, exit")
    args = ap.parse_args()

    info = socket.getaddrinfo(args.host, args.port, 0, socket.SOCK_STREAM)[0]
    raw = socket.socket(info[0], socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    raw.bind(info[4])
    raw.listen(128)
    listener = pycos.AsyncSocket(raw)
    host, port = raw.getsockname()[:2]
    print("http server on http://%s:%d/" % ("[%s]" % host if ":" in host else host, port),
          flush=True)

    signal.signal(signal.SIGTERM, signal.default_int_handler)
    server = pycos.Task(serve, listener, not args.no_keepalive, args.idle,
                        not (args.quiet or args.selftest))
    status = 0
    try:
        if args.selftest:
            failures = pycos.Task(selftest, (host, port)).value()
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
