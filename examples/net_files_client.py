"""A netpycos file client: sends a file to examples/net_files_server.py with
``send_file`` and shows the result codes -- 0 once it is in place, 0 again
when an identical file (same size and mtime) is there already, -1 for a
directory that would leave the server's ``dest_path`` ('../x') -- then
removes it with ``del_file`` (0; -1 once it is gone).

    python examples/net_files_client.py <server-port> [file]

The file defaults to this script.  The secret comes from $PYCOS_DEMO_SECRET
(default "demo-secret").
"""
import os
import sys

import pycos.netpycos as pycos

SECRET = os.environ.get("PYCOS_DEMO_SECRET", "demo-secret")


def client(sched, loc, path, task=None):
    name = os.path.basename(path)
    steps = [
        ("send_file(%r)" % name, 0, lambda: sched.send_file(loc, path, timeout=10)),
        ("send_file(%r) again, identical" % name, 0,
         lambda: sched.send_file(loc, path, timeout=10)),
        ("send_file(%r, dir='../x')" % name, -1,
         lambda: sched.send_file(loc, path, dir="../x", timeout=10)),
        ("del_file(%r)" % name, 0, lambda: sched.del_file(loc, name, timeout=10)),
        ("del_file(%r) again, gone" % name, -1, lambda: sched.del_file(loc, name, timeout=10)),
    ]
    rc = 0
    for what, expected, call in steps:
        got = yield call()
        print("client: %-48s -> %2d%s" % (what, got, "" if got == expected
                                          else "   (expected %d)" % expected))
        if got != expected:
            rc = 1
    return rc


def main():
    port = int(sys.argv[1])
    path = sys.argv[2] if len(sys.argv) > 2 else os.path.abspath(__file__)
    sched = pycos.Pycos(name="files-client", udp_port=0, host="127.0.0.1", secret=SECRET)
    sys.exit(pycos.Task(client, sched, pycos.Location("127.0.0.1", port), path).value())


if __name__ == "__main__":
    main()
