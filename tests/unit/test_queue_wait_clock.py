"""The queue wait clock: one greenlet for every waiting caller of a worker, and one question
to Redis per queue and second, however many wait; each caller's max waits end its wait."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import gevent

from cc_core.flow.queue import STAFFED_FOR_S, QueueFlow
from cc_core.tenants.model import Queue


class _Acd:
    """Answers queue_view with ``available`` agents Available; counts the questions."""

    def __init__(self, available: dict[str, int]) -> None:
        self.available = available
        self.asked: list[tuple[str, str, float]] = []

    def queue_view(self, tenant: str, queue: str) -> Any:
        self.asked.append((tenant, queue, time.monotonic()))
        return SimpleNamespace(agents_available=self.available[queue])


def _caller(uuid: str, queue: str) -> Any:
    return SimpleNamespace(uuid=uuid, data=SimpleNamespace(tenant="t1", queue=queue))


def test_hundreds_of_waiting_callers_share_one_clock_and_one_question_per_queue() -> None:
    acd = _Acd({"empty": 0, "staffed": 3})
    ended: dict[str, tuple[str, float]] = {}
    flow = QueueFlow(SimpleNamespace(_calls={}), acd,  # type: ignore[arg-type]
                     post=lambda uuid, fn: fn())
    flow._timed_out = lambda uuid, reason: ended.setdefault(  # type: ignore[method-assign]
        uuid, (reason, time.monotonic()))
    no_agent = Queue.model_validate({"max_wait_no_agent_s": 1, "max_wait_no_agent_reached_s": 1})
    capped = Queue.model_validate({"max_wait_s": 1})
    before = gevent.getcurrent()
    t0 = time.monotonic()
    for i in range(300):
        flow._arm(_caller(f"e{i}", "empty"), no_agent)
        flow._arm(_caller(f"s{i}", "staffed"), capped)
    flow._arm(_caller("left", "empty"), no_agent)
    flow._disarm("left")                     # answered before its wait ran out
    assert flow._wait_clock is not None and flow._wait_clock is not before
    gevent.sleep(1.6)

    assert {u for u, (r, _) in ended.items() if r == "no_agent_timeout"} == \
        {f"e{i}" for i in range(300)}
    assert {u for u, (r, _) in ended.items() if r == "timeout"} == {f"s{i}" for i in range(300)}
    assert "left" not in ended
    # Each wait ran out about when it should: after its second, within a tick or so.
    assert all(1.0 <= at - t0 < 1.5 for _, at in ended.values())
    # Only the queue whose no-agent limit matters was asked, once per STAFFED_FOR_S, not once
    # per caller and second.
    assert {q for _, q, _ in acd.asked} == {"empty"}
    assert len(acd.asked) <= 1.6 / STAFFED_FOR_S + 1
    # Nobody waits any more: the clock has stopped.
    gevent.sleep(0.4)
    assert flow._wait_clock.dead
