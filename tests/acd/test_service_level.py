"""Service-level facts of a queue's day, counted by the scripts: answered within the queue's
threshold, the waits of answered calls (ASA), short abandons; on a hand-moved clock, each
expectation computed by hand from the waits the test makes."""

from __future__ import annotations

from acd.store import Acd
from cc_core import keys
from tests.acd.helpers import Clock, make_acd, tenant, tiers

T = "acme"
S = 1000  # ms


def _answer_after(acd: Acd, clock: Clock, queue: str, uuid: str, wait_ms: int,
                  caller: str = "") -> None:
    """``uuid`` joins, waits ``wait_ms``, is answered and hung up at once (no wrap-up)."""
    acd.enqueue(T, queue, uuid, node="n1", caller=caller)
    clock.advance(wait_ms)
    (offer,) = acd.dispatch(T, queue)
    agent = offer.agents[0].agent
    assert acd.offering(offer, agent)
    assert acd.answered(offer, agent)
    acd.call_ended(T, agent, uuid, 0)


def _hang_up_after(acd: Acd, clock: Clock, queue: str, uuid: str, wait_ms: int,
                   reason: str = "hangup", caller: str = "") -> None:
    acd.enqueue(T, queue, uuid, node="n1", caller=caller)
    clock.advance(wait_ms)
    acd.leave(T, uuid, reason)


def _sl(acd: Acd, queue: str = "q") -> tuple[int, int, int, int, int, int]:
    v = acd.queue_view(T, queue)
    return (v.answered_today, v.answered_in_sl_today, v.answer_wait_ms_today,
            v.abandoned_today, v.abandoned_short_today, v.overflowed_today)


def _one_agent(redis_url: str, **queue: object) -> tuple[Acd, Clock]:
    cfg = tenant({"a1": {"wrap_up_s": 0}}, {"q": {"tiers": tiers("a1"), **queue}})
    return make_acd(redis_url, cfg)


def test_default_thresholds_20s_answered_in_sl_and_5s_short_abandon(redis_url: str) -> None:
    acd, clock = _one_agent(redis_url)
    _answer_after(acd, clock, "q", "c1", 10 * S)     # in SL
    _answer_after(acd, clock, "q", "c2", 25 * S)     # late
    _answer_after(acd, clock, "q", "c3", 20 * S)     # exactly the threshold: in SL
    _hang_up_after(acd, clock, "q", "c4", 3 * S)     # short abandon
    _hang_up_after(acd, clock, "q", "c5", 5 * S)     # not under 5 s: a real abandon
    _hang_up_after(acd, clock, "q", "c6", 40 * S)    # abandon
    _hang_up_after(acd, clock, "q", "c7", 2 * S, reason="timeout")   # overflow, not abandon
    # answered 3, of which 2 in SL; waits 10+25+20 s; abandoned 3 (one short); overflowed 1
    assert _sl(acd) == (3, 2, 55 * S, 3, 1, 1)


def test_thresholds_come_from_the_queue_config(redis_url: str) -> None:
    acd, clock = _one_agent(redis_url, service_level_s=30, short_abandon_s=0)
    _answer_after(acd, clock, "q", "c1", 25 * S)     # within 30 s
    _answer_after(acd, clock, "q", "c2", 31 * S)
    _hang_up_after(acd, clock, "q", "c3", 1 * S)     # no short abandons at 0 s
    assert _sl(acd) == (2, 1, 56 * S, 1, 0, 0)
    fields = acd.redis.hmget(keys.acd_queue(T, "q"), "sl_s", "short_s")
    assert fields == [b"30", b"0"]


def test_queue_hash_written_before_the_fields_uses_the_defaults(redis_url: str) -> None:
    acd, clock = _one_agent(redis_url, service_level_s=60, short_abandon_s=30)
    acd.redis.hdel(keys.acd_queue(T, "q"), "sl_s", "short_s")
    _answer_after(acd, clock, "q", "c1", 21 * S)     # over the default 20 s
    _hang_up_after(acd, clock, "q", "c2", 4 * S)     # under the default 5 s
    assert _sl(acd) == (1, 0, 21 * S, 1, 1, 0)


def test_wait_is_this_stay_in_the_queue_not_a_resumed_place(redis_url: str) -> None:
    # The resumed caller keeps its place (rank) from the first call, but the service level
    # judges the wait of this call: 5 s, in SL, and 5 s of ASA.
    acd, clock = _one_agent(redis_url, abandoned_resume_allowed=True,
                            discard_abandoned_after_s=120)
    acd.set_break(T, "a1")
    _hang_up_after(acd, clock, "q", "first", 30 * S, caller="13800138000")
    acd.set_available(T, "a1")
    clock.advance(10 * S)
    acd.enqueue(T, "q", "again", node="n1", caller="13800138000")
    assert acd.member(T, "again").joined_ms == clock.now_ms
    clock.advance(5 * S)
    (offer,) = acd.dispatch(T, "q")
    assert acd.offering(offer, "a1") and acd.answered(offer, "a1")
    assert _sl(acd) == (1, 1, 5 * S, 1, 0, 0)


def test_a_new_tenant_local_day_starts_every_counter_at_zero(redis_url: str) -> None:
    acd, clock = _one_agent(redis_url)
    _answer_after(acd, clock, "q", "c1", 10 * S)
    _hang_up_after(acd, clock, "q", "c2", 2 * S)
    assert _sl(acd) == (1, 1, 10 * S, 1, 1, 0)
    # T0 is 10:00 in Shanghai: 13 h 59 min 50 s later it is 23:59:50 there.
    clock.advance((13 * 3600 + 59 * 60 + 50) * S - 12 * S)
    acd.enqueue(T, "q", "c3", node="n1")
    clock.advance(25 * S)                         # answered at 00:00:15, the next day
    (offer,) = acd.dispatch(T, "q")
    assert acd.offering(offer, "a1") and acd.answered(offer, "a1")
    assert _sl(acd) == (1, 0, 25 * S, 0, 0, 0)
    # and a day without a write reads as zero, not as yesterday's figures
    clock.advance(24 * 3600 * S)
    assert _sl(acd) == (0, 0, 0, 0, 0, 0)


def test_answered_twice_and_left_twice_count_once(redis_url: str) -> None:
    acd, clock = _one_agent(redis_url)
    acd.enqueue(T, "q", "c1", node="n1")
    clock.advance(7 * S)
    (offer,) = acd.dispatch(T, "q")
    assert acd.offering(offer, "a1")
    assert acd.answered(offer, "a1") and acd.answered(offer, "a1")
    acd.call_ended(T, "a1", "c1", 0)
    acd.enqueue(T, "q", "c2", node="n1")
    clock.advance(S)
    acd.leave(T, "c2", "hangup")
    acd.leave(T, "c2", "hangup")
    assert _sl(acd) == (1, 1, 7 * S, 1, 1, 0)
