"""A netpycos file server: a scheduler whose ``dest_path`` receives the files
other processes send with ``send_file`` (and removes those they name with
``del_file``).  Nothing a peer sends can land outside that directory.

Run it, then the client in another terminal (same secret, loopback)::

    python examples/net_files_server.py [dest-dir]   # prints "READY <addr> <port>"
    python examples/net_files_client.py <port> [file]

Without ``dest-dir`` the files go to a fresh temporary directory, removed
when the server stops.  The secret comes from $PYCOS_DEMO_SECRET (default
"demo-secret").  The server stops when its standard input is closed
(Ctrl-D); it then lists what ``dest_path`` holds.
"""
import os
import shutil
import sys
import tempfile

import pycos.netpycos as pycos

SECRET = os.environ.get("PYCOS_DEMO_SECRET", "demo-secret")


def main():
    if len(sys.argv) > 1:
        dest, scratch = sys.argv[1], False
    else:
        dest, scratch = tempfile.mkdtemp(prefix="pycos-files-"), True
    try:
        sched = pycos.Pycos(name="files-server", udp_port=0, host="127.0.0.1", secret=SECRET,
                            dest_path=dest, max_file_size=16 << 20)
        print("READY", sched.location.addr, sched.location.port, flush=True)
        print("server: files go to", sched.dest_path, flush=True)
        sys.stdin.read()
        sched.terminate()
        held = sorted(os.path.relpath(os.path.join(d, f), dest)
                      for d, _, names in os.walk(dest) for f in names)
        print("server: %s holds %s" % (dest, held or "nothing"), flush=True)
    finally:
        if scratch:
            shutil.rmtree(dest, ignore_errors=True)


if __name__ == "__main__":
    main()
