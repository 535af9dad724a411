"""``pycos.logger`` in a program that configures no logging: warnings on
stderr only (Python's last resort), until the program sets pycos's level
as 4.x programs do -- then what 4.x printed (INFO and DEBUG on stdout as
``YYYY-mm-dd HH:MM:SS pycos - message``); nothing of its own once the
program configures logging.

Each case is a fresh interpreter: under pytest the root logger has
handlers, which is itself the "configured" case.
"""
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"

pytestmark = pytest.mark.timeout(60)


def _run(code):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([ROOT] + [p for p in [env.get("PYTHONPATH")] if p])
    p = subprocess.run([sys.executable, "-c", code], env=env, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=50)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout.splitlines(), p.stderr.splitlines()


def test_unconfigured_library_is_quiet_until_asked_then_prints_as_4x():
    """A program that says nothing about logging sees pycos's warnings only
    (a library's manners); one that sets the level, as 4.x programs do,
    sees 4.x's lines on stdout."""
    out, err = _run(
        "import pycos\n"
        "pycos.logger.info('not asked for')\n"
        "pycos.logger.warning('careful')\n"
        "pycos.logger.setLevel(pycos.Logger.INFO)\n"
        "pycos.logger.info('result %d', 1)\n"
        "pycos.logger.debug('hidden')\n"
        "pycos.logger.setLevel(pycos.logger.DEBUG)\n"     # 4.x's spelling
        "pycos.logger.debug('shown')\n"
        "pycos.logger.show_ms(True)\n"
        "pycos.logger.info('with ms')\n")
    assert len(out) == 3, out
    assert re.match(r"^%s pycos - result 1$" % STAMP, out[0]), out
    assert re.match(r"^%s pycos - shown$" % STAMP, out[1]), out
    assert re.match(r"^%s\.\d{3} pycos - with ms$" % STAMP, out[2]), out
    assert err == ["careful"], err


def test_configured_application_decides():
    out, err = _run(
        "import logging, sys, pycos\n"
        "logging.basicConfig(stream=sys.stdout, level=logging.INFO, format='APP %(message)s')\n"
        "pycos.logger.info('one')\n"
        "pycos.logger.warning('two')\n")
    assert out == ["APP one", "APP two"], out
    assert err == [], err


def test_a_handler_on_pycos_alone_silences_the_fallback():
    out, err = _run(
        "import logging, sys, pycos\n"
        "h = logging.StreamHandler(sys.stdout)\n"
        "h.setFormatter(logging.Formatter('MINE %(levelname)s %(message)s'))\n"
        "pycos.logger.addHandler(h)\n"
        "pycos.logger.setLevel(pycos.Logger.INFO)\n"
        "pycos.logger.info('one')\n"
        "pycos.logger.error('two')\n")
    assert out == ["MINE INFO one", "MINE ERROR two"], out
    assert err == [], err


def test_a_4x_debug_program_sees_the_scheduler_lines_4x_printed():
    """4.x printed, once a program set DEBUG: the start banner (version,
    Python, I/O notifier), "waiting for N tasks to terminate" when the
    program ended with tasks running, and "pycos terminated" -- each as a
    timestamped line on stdout."""
    # the task runs until the program, ending, says it waits for it (a
    # filter sees the record; filters are no handlers, so the fallback acts)
    out, err = _run(
        "import pycos\n"
        "pycos.logger.setLevel(pycos.Logger.DEBUG)\n"
        "def work(task=None):\n"
        "    msg = yield task.receive(timeout=10, alarm_value='no waiting line')\n"
        # (one write: between print's pieces -- the text, then its end --
        # the main thread's log line could come in)
        "    import sys; sys.stdout.write('work done: %s\\n' % msg); sys.stdout.flush()\n"
        "t = pycos.Task(work)\n"
        "def see(record):\n"
        "    if record.getMessage().startswith('waiting for'):\n"
        "        t.send('go')\n"
        "    return True\n"
        "pycos.logger.addFilter(see)\n")
    backend = os.environ.get("PYCOS_BACKEND") or _backends()[0]
    stamped = [line for line in out if re.match(r"^%s pycos - " % STAMP, line)]
    banner = r"^%s pycos - version \S+ \(Python [\d.]+\) with %s I/O notifier$" % (STAMP, backend)
    assert stamped and re.match(banner, stamped[0]), out
    waiting = [i for i, line in enumerate(out)
               if re.match(r"^%s pycos - waiting for 1 tasks to terminate$" % STAMP, line)]
    # (the task got its "go" from that very record: it was still running)
    assert len(waiting) == 1 and "work done: go" in out, out
    assert re.match(r"^%s pycos - pycos terminated$" % STAMP, out[-1]), out
    assert err == [], err


def test_the_scheduler_lines_stay_quiet_by_default():
    out, err = _run(
        "import pycos\n"
        "def work(task=None):\n"
        "    yield task.sleep(0.01)\n"
        "pycos.Task(work)\n")
    assert out == [] and err == [], (out, err)


def test_nolog_and_the_4x_logger_attributes():
    out, err = _run(
        "import io, pycos\n"
        "assert pycos.logger.nolog('x %s', 1) is None\n"
        "pycos.logger.setLevel(pycos.Logger.DEBUG)\n"
        "pycos.logger.debug = pycos.logger.nolog\n"      # 4.x's way to silence a level
        "pycos.logger.debug('silenced')\n"
        "pycos.logger.info('kept')\n"
        "buf = io.StringIO()\n"
        "log = pycos.Logger('mine', stream=buf, level=pycos.Logger.DEBUG)\n"
        "assert log.nolog('y %s', 2) is None and log.stream is buf and log.level == 10\n"
        "assert log.name == 'mine' and log.log_ms is False\n"
        "log.show_ms(True)\n"
        "assert log.log_ms is True\n"
        "log.warn = log.nolog\n"
        "log.warn('dropped')\n"
        "log.info('one %d', 1)\n"
        "log.shutdown()\n"
        "print(buf.getvalue(), end='')\n")
    assert len(out) == 2, out
    assert re.match(r"^%s pycos - kept$" % STAMP, out[0]), out
    assert re.match(r"^%s\.\d{3} mine - one 1$" % STAMP, out[1]), out
    assert err == [], err


def _backends():
    from pycos import reactor
    return reactor.backends()
