"""CreditControl on a real Redis with a recording link: what it sends the switch."""

from __future__ import annotations

from typing import Any

import redis

from billing.credit import CreditView
from billing.live import CreditControl

UUID_A = "0bd4d5fa-0000-4000-8000-00000000000a"
UUID_B = "0bd4d5fa-0000-4000-8000-00000000000b"


class Link:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def api(self, cmd: str, timeout: float | None = None) -> str:
        self.sent.append(cmd)
        return "+OK\n"


def _publish(view: CreditView, seq: int, balance: int) -> None:
    view.publish("acme", {"seq": seq, "balance_fen": balance, "included_left_s": 0,
                          "increment_s": 6, "rate_mobile": 60, "rate_landline": 30,
                          "low_credit_fen": 0}, [])


def test_arms_moves_and_takes_back_the_hard_stop(redis_url: str) -> None:
    view = CreditView(redis.Redis.from_url(redis_url))
    now = [1_000_000]
    control = CreditControl(view, clock=lambda: now[0])
    _publish(view, 1, 12)                  # 2 increments of 6 fen at 60 fen/min
    link = Link()
    control.billable(UUID_A, "acme", "mobile", link)
    assert link.sent == [f"sched_hangup +11 {UUID_A} ALLOTTED_TIMEOUT"]
    control.billable(UUID_A, "acme", "mobile", link)        # answered, then bridged
    assert len(link.sent) == 1
    # a second call: both stop after one increment
    control.billable(UUID_B, "acme", "mobile", link)
    assert link.sent[1:] == [f"sched_del {UUID_A}",
                             f"sched_hangup +5 {UUID_A} ALLOTTED_TIMEOUT",
                             f"sched_hangup +5 {UUID_B} ALLOTTED_TIMEOUT"]
    # a top-up lands: the stops are taken back
    link.sent.clear()
    _publish(view, 2, 10**9)
    control.tick()
    assert sorted(link.sent) == [f"sched_del {UUID_A}", f"sched_del {UUID_B}"]
    control.tick()
    assert len(link.sent) == 2                               # nothing changed: nothing sent


def test_a_tenant_without_a_published_account_is_not_controlled(redis_url: str) -> None:
    view = CreditView(redis.Redis.from_url(redis_url))
    control = CreditControl(view)
    link = Link()
    assert control.admit("acme")
    control.billable(UUID_A, "acme", "mobile", link)
    assert link.sent == []


def test_a_call_taken_over_is_re_armed_by_its_new_worker(redis_url: str) -> None:
    view = CreditView(redis.Redis.from_url(redis_url))
    now = [1_000_000]
    _publish(view, 1, 12)
    old = CreditControl(view, clock=lambda: now[0])
    old.billable(UUID_A, "acme", "mobile", Link())
    new = CreditControl(view, clock=lambda: now[0] + 3_000)
    link: Any = Link()
    new.adopt(UUID_A, "acme", link)
    assert link.sent == [f"sched_del {UUID_A}", f"sched_hangup +8 {UUID_A} ALLOTTED_TIMEOUT"]
