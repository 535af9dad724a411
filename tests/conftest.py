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
