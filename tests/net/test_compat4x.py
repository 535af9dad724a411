"""Programs written the 4.x way, unchanged: ``import pycos.netpycos``, no
secret, peers found by discovery (loopback multicast for a secret-less
scheduler), names located without a location, RPS and a remote channel."""
import pytest

pytestmark = pytest.mark.timeout(60)

SERVER = r"""
import sys
import pycos
import pycos.netpycos

def server_task(task=None):
    task.set_daemon()
    while True:
        msg = yield task.receive()
        if isinstance(msg, tuple) and len(msg) == 2:
            client, n = msg
            client.send(n + 1)

def rps_server(a, b=1, task=None):
    yield task.sleep(0.01)
    if b == 0:
        raise Exception('invalid invocation')
    return a * b

if __name__ == '__main__':
    scheduler = pycos.Pycos(name='server')
    pycos.Task(server_task).register('server_task')
    rps = pycos.RPS(rps_server)
    rps.register()
    channel = pycos.Channel('updates')
    channel.register()
    print('READY', scheduler.location.addr, scheduler.location.port, flush=True)
    for line in sys.stdin:
        channel.send(line.strip())
"""

CLIENT = r"""
import pycos
import pycos.netpycos

def client_proc(task=None):
    server = yield pycos.Task.locate('server_task', timeout=20)
    server.send((task, 41))
    reply = yield task.receive(timeout=5)
    print('REPLY', reply, flush=True)
    rps = yield pycos.RPS.locate('rps_server', timeout=5)
    rtask = yield rps(6, b=7)
    print('RPS', (yield rtask.finish()), flush=True)
    bad = yield rps(1, b=0)
    st = yield bad.finish()
    print('FAILED', isinstance(st, pycos.MonitorStatus), flush=True)
    channel = yield pycos.Channel.locate('updates', timeout=5)
    yield channel.subscribe(task)
    print('SUBSCRIBED', flush=True)
    msg = yield task.receive(timeout=10)
    print('UPDATE', msg, flush=True)

pycos.Task(client_proc)
"""


def test_4x_programs_unchanged(spawn):
    server = spawn(SERVER, name="server", secret="")
    server.ready()
    client = spawn(CLIENT, name="client", secret="")
    client.expect(r"^REPLY 42$", 30)
    client.expect(r"^RPS 42$")
    client.expect(r"^FAILED True$")
    client.expect(r"^SUBSCRIBED$")
    server.send_line("news")
    client.expect(r"^UPDATE news$")
    assert client.stop() == 0
