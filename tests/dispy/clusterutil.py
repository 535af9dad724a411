"""Helpers of the loopback dispycos tests (the ``cluster`` fixture is in
conftest.py): which processes work for a node, the status stream."""
import os

from pycos.dispycos import DispycosStatus, Scheduler


def _servers(node):
    """pids of the processes working in ``node``'s directory -- its servers
    and their parent (forked, they look like it in ``ps``) -- zombies
    excluded; orphans included, wherever they were reparented."""
    root = str(node.dest)
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            cwd = os.readlink("/proc/%s/cwd" % d)
        except OSError:
            continue
        if (cwd == root or cwd.startswith(root + os.sep)) and not _zombie(int(d)):
            pids.append(int(d))
    return pids



def _zombie(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True



def _statuses(task=None):
    got = []
    while True:
        msg = yield task.receive()
        got.append(msg)
        if isinstance(msg, DispycosStatus) and msg.status == Scheduler.ClientClosed:
            return got



def wait_idle(node, timeout=20):
    """Ask node (a netutil.Proc running dispycosnode) for its status until
    it says it is idle (it releases a client in the background)."""
    import time
    end = time.monotonic() + timeout
    while True:
        node.send_line("status")
        m = node.expect(r"dispycosnode .*: (idle|client)", timeout=10)
        if m.group(1) == "idle":
            return
        assert time.monotonic() < end, node.output()
        time.sleep(0.2)                      # (polls the node's state)
