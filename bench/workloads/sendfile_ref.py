"""The ceiling of net-file: a plain blocking ``socket.sendfile()`` over loopback.

Not a framework: what the machine itself reaches when it sends the same file
the same way, into a reader that writes it to disk.  The client sends an
8-byte length and then the file with ``socket.sendfile`` (zero-copy
``sendfile(2)``); the server (another process) reads it with ``recv_into``
into a 1 MiB buffer, writes every piece to a file in ``--dest``, closes it,
and answers one byte; the time runs from the start of the send to that byte.
Only net-file.
"""

import os
import socket
import struct
import sys

import common
import netcommon

perf = netcommon.perf
CHUNK = 1 << 20


def serve(args):
    lsock = common.listen_socket(4)
    netcommon.ready(port=lsock.getsockname()[1])
    conn, _ = lsock.accept()
    lsock.close()
    with conn:
        head = b""
        while len(head) < 8:
            part = conn.recv(8 - len(head))
            if not part:
                sys.exit("sendfile_ref: the client went away")
            head += part
        size = struct.unpack("!Q", head)[0]
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        left = size
        with open(os.path.join(args.dest, os.path.basename(args.file)), "wb") as out:
            while left:
                got = conn.recv_into(view, min(CHUNK, left))
                if not got:
                    sys.exit("sendfile_ref: connection closed with %d bytes left" % left)
                out.write(view[:got])
                left -= got
        conn.sendall(b"k")
    netcommon.wait_for_eof()


def client(args, port, dest):
    size = os.path.getsize(args.file)
    with socket.create_connection(("127.0.0.1", port)) as sock, open(args.file, "rb") as f:
        t0 = perf()
        sock.sendall(struct.pack("!Q", size))
        sock.sendfile(f)
        ack = sock.recv(1)
        dt = perf() - t0
    if ack != b"k":
        sys.exit("sendfile_ref: no acknowledgement")
    netcommon.check_received(args.file, dest)
    netcommon.emit_file(size, dt)


def main():
    args = common.parse_args()
    if args.workload != "net-file":
        common.unavailable("the sendfile reference is only for net-file")
    if args.serve:
        serve(args)
        return
    dest = netcommon.dest_dir()
    try:
        with netcommon.Server("--dest", dest) as server:
            client(args, server.info["port"], dest)
    finally:
        netcommon.remove_dest(dest)


if __name__ == "__main__":
    main()
