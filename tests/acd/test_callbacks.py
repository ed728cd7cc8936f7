"""Queued callbacks (never busy): the caller who asks for one keeps their place, a callback the
caller does not answer is tried again later in that place, and every callback ends, by its
tries or by its give-up time. Kept in Redis timers, so a worker restart loses none."""

from __future__ import annotations

from acd import events
from acd.store import CALLBACK_PREFIX, CB_GAVE_UP, CB_IGNORED, CB_RETRY, Acd
from tests.acd.helpers import Clock, make_acd, tenant, tiers

T = "acme"
CB = f"{CALLBACK_PREFIX}c1"
NUMBER = "13311112222"


def _acd(redis_url: str, **callback: int) -> tuple[Acd, Clock]:
    cfg = tenant({"a1": {"wrap_up_s": 0}}, {"q": {
        "tiers": tiers("a1"),
        "callback": {"retries": 2, "retry_after_s": 60, "give_up_after_s": 3600, **callback}}})
    acd, clock = make_acd(redis_url, cfg, login=False)
    return acd, clock


def _callback(acd: Acd, place_of: str = "c1") -> None:
    acd.enqueue(T, "q", CB, node="n1", caller=NUMBER, callback=NUMBER, place_of=place_of)


def _attempt(acd: Acd, clock: Clock, leg: str) -> tuple[int, int, int]:
    """The agent takes the callback and dials the caller, who does not answer."""
    (offer,) = acd.dispatch(T, "q")
    assert offer.call_uuid == CB and offer.callback == NUMBER
    assert acd.offering(offer, "a1") and acd.answered(offer, "a1")
    clock.advance(20_000)
    result = acd.callback_failed(T, CB, leg)
    acd.call_ended(T, "a1", CB, 20_000)
    return result


def _waiting(acd: Acd) -> list[str]:
    return [m.call_uuid for m in acd.members(T, "q") if m.state == "Waiting"]


def test_the_caller_who_asks_for_a_callback_keeps_their_place(redis_url: str) -> None:
    acd, clock = _acd(redis_url)
    acd.enqueue(T, "q", "c1", node="n1", caller=NUMBER)
    clock.advance(30_000)
    acd.enqueue(T, "q", "c2", node="n1")           # joined after c1
    clock.advance(30_000)
    acd.leave(T, "c1", "exit_key")                 # c1 presses "call me back"
    clock.advance(1_000)
    _callback(acd)
    assert _waiting(acd) == [CB, "c2"], "the callback is ahead of who joined later"
    # Without a waiting caller behind it (an API request), a callback joins at the end.
    acd.enqueue(T, "q", f"{CALLBACK_PREFIX}api", node="", caller="1", callback="1")
    assert _waiting(acd) == [CB, "c2", f"{CALLBACK_PREFIX}api"]


def test_a_callback_the_caller_does_not_answer_is_tried_again_later_in_its_place(
        redis_url: str) -> None:
    acd, clock = _acd(redis_url)
    _callback(acd, place_of="")
    acd.login(T, "a1")
    clock.advance(5_000)
    acd.enqueue(T, "q", "later", node="n1")
    code, tries, due = _attempt(acd, clock, "leg-1")
    assert (code, tries, due) == (CB_RETRY, 1, clock.now_ms + 60_000)
    assert acd.callback_failed(T, CB, "leg-1") == (CB_IGNORED, 0, 0), "one attempt, counted once"
    assert acd.member(T, CB).state == "Scheduled"
    assert _waiting(acd) == ["later"], "not offered before its retry time"
    clock.advance(59_000)
    acd.tick(T)
    assert acd.member(T, CB).state == "Scheduled"
    clock.advance(1_000)
    assert acd.tick(T) == ["q"]
    assert _waiting(acd) == [CB, "later"], "back in line in the place it had"
    (offer,) = acd.dispatch(T, "q")
    assert acd.offering(offer, "a1") and acd.answered(offer, "a1")
    # The first attempt's hang-up heard again while the second is under way: not a new try.
    assert acd.callback_failed(T, CB, "leg-1") == (CB_IGNORED, 0, 0)
    assert acd.member(T, CB).state == "Answered"


def test_a_callback_is_given_up_after_its_retries(redis_url: str) -> None:
    acd, clock = _acd(redis_url, retries=1)
    _callback(acd, place_of="")
    acd.login(T, "a1")
    assert _attempt(acd, clock, "leg-1")[0] == CB_RETRY
    clock.advance(60_000)
    acd.tick(T)
    assert _attempt(acd, clock, "leg-2")[:2] == (CB_GAVE_UP, 2)
    assert acd.member(T, CB).state == "Abandoned"
    clock.advance(3_600_000)
    assert acd.tick(T) == [] and _waiting(acd) == []
    ends = [e for e in events.read(acd.redis, T) if e["CC-Action"] == "member-queue-end"
            and e.get("CC-Member-UUID") == CB]
    assert [e.get("CC-Callback-Tries") for e in ends] == ["2"]


def test_a_callback_nobody_serves_is_given_up_at_its_give_up_time(redis_url: str) -> None:
    acd, clock = _acd(redis_url, give_up_after_s=600)
    _callback(acd, place_of="")
    clock.advance(599_000)
    acd.tick(T)
    assert _waiting(acd) == [CB]
    clock.advance(1_000)
    acd.tick(T)
    assert _waiting(acd) == [] and acd.member(T, CB).state == "Abandoned"
    acd.login(T, "a1")
    assert acd.dispatch(T, "q") == [], "an expired callback is never offered"


def test_a_retry_that_would_fall_past_the_give_up_time_is_not_scheduled(redis_url: str) -> None:
    acd, clock = _acd(redis_url, give_up_after_s=120, retry_after_s=60)
    _callback(acd, place_of="")
    acd.login(T, "a1")
    clock.advance(50_000)
    # 50 s + 20 s ringing, then a retry due at 130 s: past the 120 s the tenant allows.
    assert _attempt(acd, clock, "leg-1")[0] == CB_GAVE_UP


def test_the_retry_survives_a_new_acd_client(redis_url: str) -> None:
    # A worker restart: the retry lives in Redis, not in the process that scheduled it.
    acd, clock = _acd(redis_url)
    _callback(acd, place_of="")
    acd.login(T, "a1")
    assert _attempt(acd, clock, "leg-1")[0] == CB_RETRY
    fresh = Acd(acd.redis, clock_ms=clock)
    clock.advance(60_000)
    assert fresh.tick(T) == ["q"]
    (offer,) = fresh.dispatch(T, "q")
    assert offer.call_uuid == CB
