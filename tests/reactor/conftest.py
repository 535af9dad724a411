"""Fixtures for the reactor binding tests: a loop that must be left clean,
and a check that no descriptor or thread outlives its test."""
import os
import threading
import time

import pytest

from pycos import reactor


def _open_fds():
    try:
        return set(os.listdir("/proc/self/fd"))
    except OSError:  # no /proc: nothing to compare
        return set()


@pytest.fixture(autouse=True)
def nothing_left_behind():
    """Fail a test that leaves descriptors or threads behind."""
    fds = _open_fds()
    threads = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5
    # threads a test started must have been joined; give a finishing one a
    # bounded moment to leave the thread table (join is the real wait)
    for t in set(threading.enumerate()) - threads:
        t.join(max(0.0, deadline - time.monotonic()))
    leaked_threads = [t for t in set(threading.enumerate()) - threads if t.is_alive()]
    assert not leaked_threads, "threads left running: %r" % leaked_threads
    leaked = _open_fds() - fds
    assert not leaked, "descriptors left open: %s" % sorted(leaked)


@pytest.fixture
def loop():
    """A reactor loop on the backend under test; the test fails if it leaves
    pending operations, registrations, timers or undelivered events."""
    lp = reactor.Loop()
    yield lp
    stats = lp.statistics()
    lp.close()
    left = {k: stats[k] for k in ("pending_ops", "registered_fds", "known_fds", "timers",
                                  "queued_events") if stats[k]}
    assert not left, "reactor loop left with %r" % left


@pytest.fixture
def vloop():
    """A loop on a manual clock starting at 0 (virtual time)."""
    lp = reactor.Loop(manual_clock=True)
    yield lp
    stats = lp.statistics()
    lp.close()
    assert stats["timers"] == 0 and stats["pending_ops"] == 0, stats


def _collect(lp, count, timeout=5.0):
    """Poll until `count` events have arrived (or fail after `timeout`)."""
    events = []
    deadline = time.monotonic() + timeout
    while len(events) < count:
        left = deadline - time.monotonic()
        if left <= 0:
            pytest.fail("expected %d events, got %r" % (count, events))
        events.extend(lp.poll(left))
    return events


@pytest.fixture
def collect():
    """collect(loop, count, timeout=5.0) -> the next `count` events."""
    return _collect
