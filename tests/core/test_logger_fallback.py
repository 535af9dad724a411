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
