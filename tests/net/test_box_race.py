"""The result box of a remote task (an RPS call's, which dispycos jobs are)
is settled by the system thread while a user task may be asking for it: in
every interleaving the waiter gets the value, never None (a lost completion,
seen once in CI: the box said done before it held its value)."""
import threading

import pytest

import pycos
from pycos.net import refs

pytestmark = pytest.mark.timeout(30)


class _PausingBox(refs._Box):
    """A box whose setter (the system thread) stops right after the box says
    'done', until the user side has looked at it."""

    __slots__ = ("_done", "announced", "looked")

    def __init__(self):
        self.announced = threading.Event()
        self.looked = threading.Event()
        super().__init__()

    @property
    def done(self):
        return self._done

    @done.setter
    def done(self, flag):
        self._done = flag
        if flag:
            self.announced.set()
            assert self.looked.wait(10), "the user side never looked"


@pytest.mark.parametrize("parked", [False, True], ids=["done-before-wait", "while-parked"])
def test_box_value_is_there_once_it_says_done(net, parked):
    node = refs._node
    box = _PausingBox()
    setter = threading.Thread(target=node._box_set, args=(box, 42))

    def waiter(task=None):
        if parked:                      # parked first, then the setter runs
            r = node._box_wait(box, 10)
            setter.start()
            assert box.announced.wait(10)
            box.looked.set()
            return (yield r)
        setter.start()                  # the setter is stopped inside, 'done' said
        assert box.announced.wait(10)
        try:
            return (yield node._box_wait(box, 10))
        finally:
            box.looked.set()

    assert pycos.Task(waiter).value(timeout=20) == 42
    setter.join(10)
    assert not setter.is_alive()
