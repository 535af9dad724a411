"""Shared test configuration.

Every test has a time limit (pytest-timeout, configured in pyproject.toml).
The reactor backend under test is chosen with the environment variable
PYCOS_BACKEND (``make pytest`` runs the whole suite once per backend).
"""
import os

import pytest


def pytest_report_header(config):
    try:
        from pycos import reactor
    except ImportError as exc:  # the suite will fail loudly on import anyway
        return "pycos.reactor: not importable (%s)" % exc
    return "pycos reactor backends compiled: %s; PYCOS_BACKEND=%s" % (
        ", ".join(reactor.backends()), os.environ.get("PYCOS_BACKEND", "(default)"))


@pytest.fixture
def backend_name():
    """The backend the suite runs on (PYCOS_BACKEND, else the default)."""
    from pycos import reactor
    return os.environ.get("PYCOS_BACKEND") or reactor.backends()[0]


_NET_TESTS = ("tests/net/", "tests/dispy/", "tests/web/")


def pytest_collectstart(collector):
    """The same for the names a test module binds when it is imported
    (``from pycos import Pycos``): pytest loads tests/net's conftest, which
    imports pycos.netpycos, before collecting anything when that directory
    is named on the command line with others -- then tests/core's modules
    bound the networked class and failed."""
    if not isinstance(collector, pytest.Module):
        return
    import sys
    net = sys.modules.get("pycos.netpycos")
    if net is None:
        return
    import pycos
    from pycos.core.scheduler import Pycos
    pycos.Pycos = net.Pycos if collector.nodeid.startswith(_NET_TESTS) else Pycos


@pytest.fixture(autouse=True)
def _plain_pycos_outside_net(request):
    """Importing pycos.netpycos (the tests in tests/net and tests/dispy do) makes the
    networked scheduler the default, as it does for 4.x programs; every other
    test gets the plain one back."""
    if request.node.nodeid.startswith(_NET_TESTS):
        yield
        return
    import pycos
    from pycos.core.scheduler import Pycos
    saved = Pycos._networked, pycos.Pycos
    Pycos._networked, pycos.Pycos = None, Pycos
    try:
        yield
    finally:
        Pycos._networked, pycos.Pycos = saved
