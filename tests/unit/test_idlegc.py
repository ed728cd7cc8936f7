"""The worker's garbage collector: off the hot path, in idle moments, and never starved."""

from __future__ import annotations

import gc
import time
import weakref

import gevent
import pytest

from cc_core import idlegc
from cc_core.idlegc import IdleCollector


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def _cycles(n: int) -> list[weakref.ref[_Node]]:
    """n pairs of objects that point at each other: only a collection frees them."""
    refs = []
    for _ in range(n):
        a, b = _Node(), _Node()
        a.other, b.other = b, a
        refs.append(weakref.ref(a))
    return refs


@pytest.fixture
def collector():  # type: ignore[no-untyped-def]
    c = IdleCollector(young=200, max_wait_s=0.2)
    c.start()
    try:
        yield c
    finally:
        c.stop()
    assert gc.isenabled()


def test_the_automatic_collector_is_off_and_cycles_are_still_freed(collector) -> None:
    assert not gc.isenabled()
    refs = _cycles(500)
    deadline = time.monotonic() + 5
    while any(r() is not None for r in refs) and time.monotonic() < deadline:
        gevent.sleep(0.01)
    assert all(r() is None for r in refs)
    assert collector.passes[0] + collector.passes[1] >= 1 and collector.forced == 0


def test_a_due_pass_waits_for_the_loop_to_be_idle(collector) -> None:
    # A burst of work that keeps giving way (as the event handlers do): the pass waits
    # for the burst's end rather than cutting into it.
    collected_at: list[float] = []
    collect = collector._collect

    def timed() -> None:
        collected_at.append(time.monotonic())
        collect()

    collector._collect = timed  # type: ignore[method-assign]
    _cycles(300)
    busy_until = time.monotonic() + 0.15

    def burst() -> None:
        while time.monotonic() < busy_until:
            gevent.sleep(0)

    gevent.spawn(burst).join()
    gevent.sleep(idlegc.POLL_S * 3)
    assert collected_at and min(collected_at) >= busy_until
    assert collector.forced == 0


def test_a_loop_that_is_never_idle_is_collected_all_the_same(collector) -> None:
    refs = _cycles(300)
    busy_until = time.monotonic() + 1.0

    def saturated() -> None:
        while time.monotonic() < busy_until:
            gevent.sleep(0)

    gevent.spawn(saturated).join()
    assert collector.forced >= 1
    assert all(r() is None for r in refs)
