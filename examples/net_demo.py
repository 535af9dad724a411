"""Runs the netpycos example pairs: starts each server as a subprocess,
waits for its "READY <addr> <port>" line, runs the client against it, then
closes the server's standard input so it shuts down.  Exits non-zero if any
step fails.  Everything stays on loopback.

    python examples/net_demo.py
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PAIRS = [("net_echo_server.py", "net_echo_client.py"),
         ("net_rps_server.py", "net_rps_client.py"),
         ("net_channel_server.py", "net_channel_client.py"),
         ("net_files_server.py", "net_files_client.py")]


def run_pair(server, client):
    env = dict(os.environ)
    env.setdefault("PYCOS_DEMO_SECRET", "demo-secret")
    srv = subprocess.Popen([sys.executable, os.path.join(HERE, server)], env=env,
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert srv.stdin is not None and srv.stdout is not None     # (the pipes asked for)
    try:
        line = srv.stdout.readline().split()
        if not line or line[0] != "READY":
            print("net_demo: %s did not start" % server)
            return 1
        print("===== %s (port %s) / %s" % (server, line[2], client), flush=True)
        rc = subprocess.call([sys.executable, os.path.join(HERE, client), line[2]],
                             env=env, timeout=30)
    finally:
        srv.stdin.close()
        try:
            srv.wait(timeout=10)
        except subprocess.TimeoutExpired:
            srv.kill()
            srv.wait()
    if rc != 0 or srv.returncode != 0:
        print("net_demo: %s/%s failed (client %s, server %s)"
              % (server, client, rc, srv.returncode))
        return 1
    return 0


def main():
    failed = sum(run_pair(s, c) for s, c in PAIRS)
    print("net_demo: %d of %d pairs passed" % (len(PAIRS) - failed, len(PAIRS)))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
