"""Rating arithmetic: increments, included minutes, the answer each mode bills from."""

from __future__ import annotations

import pytest

from billing.rating import Terms, billable_ms, rate


def terms(inc: int = 6, rate_fen: int = 25, left_s: int = 0) -> Terms:
    return Terms(increment_s=inc, rate_fen_per_minute=rate_fen, included_left_s=left_s)


@pytest.mark.parametrize(("ms", "inc", "billable_s"), [
    (0, 6, 0), (1, 6, 6), (1_000, 6, 6), (6_000, 6, 6), (6_001, 6, 12),
    (0, 60, 0), (1_000, 60, 60), (60_000, 60, 60), (60_001, 60, 120),
    (3 * 3600 * 1000 + 1, 60, 3 * 3600 + 60),
])
def test_billable_time_is_rounded_up_to_whole_increments(ms: int, inc: int,
                                                         billable_s: int) -> None:
    assert rate(ms, terms(inc)).billable_s == billable_s


def test_zero_seconds_cost_nothing_and_one_second_costs_one_increment() -> None:
    assert rate(0, terms(6, 25)).fen == 0
    # 6 s at 25 fen/min = 2.5 fen: rounded up once per call
    assert rate(1_000, terms(6, 25)).fen == 3
    assert rate(1_000, terms(60, 25)).fen == 25


def test_a_long_call_is_charged_exactly_in_fen() -> None:
    r = rate(2 * 3600 * 1000, terms(6, 18))          # 120 minutes at 0.18 元
    assert (r.charged_s, r.fen) == (7200, 2160)


def test_included_minutes_running_out_in_the_middle_of_a_call() -> None:
    r = rate(150_000, terms(60, 20, left_s=120))     # 3 increments, 2 left included
    assert (r.billable_s, r.included_s, r.charged_s, r.fen) == (180, 120, 60, 20)
    r = rate(150_000, terms(6, 20, left_s=95))       # 25 increments; 15 whole ones included
    assert (r.billable_s, r.included_s, r.charged_s, r.fen) == (150, 90, 60, 20)


def test_ivr_mode_bills_from_the_callers_answer_greeting_mode_from_the_agents() -> None:
    assert billable_ms("ivr", answer_ms=1_000, end_ms=91_000, talk_ms=60_000) == 90_000
    assert billable_ms("greeting", answer_ms=1_000, end_ms=91_000, talk_ms=60_000) == 60_000
    # greeting mode, no agent, never answered: nothing to bill
    assert billable_ms("greeting", answer_ms=None, end_ms=91_000, talk_ms=None) == 0
    # greeting mode, answered by the platform (voicemail): from that answer
    assert billable_ms("greeting", answer_ms=31_000, end_ms=91_000, talk_ms=None) == 60_000
