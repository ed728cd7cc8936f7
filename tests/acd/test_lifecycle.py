"""An offer's life: reservation lease, ring-all races, leaving, lapses, misses and delays,
wrap-up, daily counters, resumes, idempotency and errors."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from acd import events
from acd.errors import (
    AcdError,
    AlreadyLoggedIn,
    AlreadyQueued,
    UnknownAgent,
    UnknownMember,
    UnknownQueue,
)
from acd.store import RESERVE_MS, Acd
from cc_core import keys
from tests.acd.helpers import Clock, make_acd, serve, tenant, tiers

T = "acme"


def _ring_all(redis_url: str, n: int = 3):  # type: ignore[no-untyped-def]
    ids = [f"a{i}" for i in range(1, n + 1)]
    cfg = tenant({a: {"wrap_up_s": 0} for a in ids},
                 {"q": {"strategy": "ring-all", "tiers": tiers(*ids), "ring_timeout_s": 20}})
    return make_acd(redis_url, cfg)


def _states(acd, *agents: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [acd.agent(T, a).state for a in agents]


def test_ring_all_first_answer_wins_others_released_second_answer_refused(
        redis_url: str) -> None:
    acd, _ = _ring_all(redis_url)
    acd.enqueue(T, "q", "c1", node="n1")
    (offer,) = acd.dispatch(T, "q")
    assert [a.agent for a in offer.agents] == ["a1", "a2", "a3"]
    for a in ("a1", "a2", "a3"):
        assert acd.offering(offer, a)
    assert _states(acd, "a1", "a2", "a3") == ["Receiving"] * 3
    assert acd.answered(offer, "a2")
    assert _states(acd, "a1", "a2", "a3") == ["Waiting", "In a queue call", "Waiting"]
    assert not acd.answered(offer, "a1")
    assert not acd.answered(offer, "a3")
    assert acd.answered(offer, "a2")          # the winner asking again: same answer, once
    assert acd.queue_view(T, "q").answered_today == 1
    # the released agents take the next caller at once, without a penalty
    acd.enqueue(T, "q", "c2", node="n1")
    (nxt,) = acd.dispatch(T, "q")
    assert [a.agent for a in nxt.agents] == ["a1", "a3"]


def test_caller_leaving_while_agents_ring_frees_them_at_once(redis_url: str) -> None:
    acd, _ = _ring_all(redis_url, 2)
    acd.enqueue(T, "q", "c1", node="n1", caller="13800138000")
    (offer,) = acd.dispatch(T, "q")
    acd.offering(offer, "a1")
    assert sorted(acd.leave(T, "c1", "hangup")) == ["a1", "a2"]
    assert _states(acd, "a1", "a2") == ["Waiting", "Waiting"]
    assert acd.leave(T, "c1", "hangup") == []          # twice = once
    assert not acd.answered(offer, "a1")
    view = acd.queue_view(T, "q")
    assert (view.waiting, view.abandoned_today, view.agents_free) == (0, 1, 2)
    ends = [e for e in events.read(acd.redis, T) if e["CC-Action"] == "member-queue-end"]
    assert [(e["CC-Cause"], e["CC-Cancel-Reason"]) for e in ends] == [("Cancel", "BREAK_OUT")]


def test_reservation_lapse_returns_agent_and_keeps_callers_place(redis_url: str) -> None:
    cfg = tenant({"a1": {}}, {"q": {"tiers": tiers("a1"), "ring_timeout_s": 20}})
    acd, clock = make_acd(redis_url, cfg)
    acd.enqueue(T, "q", "first", node="n1")
    clock.advance(1000)
    (offer,) = acd.dispatch(T, "q")
    acd.enqueue(T, "q", "second", node="n1")
    assert acd.position(T, "first") == (0, 1)          # being offered
    clock.advance(RESERVE_MS)                          # the worker stalled: lease over
    assert not acd.offering(offer, "a1")
    assert acd.tick(T) == ["q"]
    assert acd.agent(T, "a1").state == "Waiting"
    assert acd.position(T, "first") == (1, 2)          # same place, ahead of "second"
    assert not acd.answered(offer, "a1")               # late answer refused
    (again,) = acd.dispatch(T, "q")
    assert again.call_uuid == "first" and again.token != offer.token


def test_answer_after_the_ring_deadline_is_refused(redis_url: str) -> None:
    cfg = tenant({"a1": {}}, {"q": {"tiers": tiers("a1"), "ring_timeout_s": 20}})
    acd, clock = make_acd(redis_url, cfg)
    acd.enqueue(T, "q", "c1", node="n1")
    (offer,) = acd.dispatch(T, "q")
    clock.advance(4000)
    assert acd.offering(offer, "a1")                   # deadline: now + 20 s + margin
    clock.advance(20_000)
    assert acd.tick(T) == []                           # not due yet
    assert acd.answered(offer, "a1")


def test_one_agent_in_three_queues_is_never_offered_twice(redis_url: str) -> None:
    cfg = tenant({"a1": {"wrap_up_s": 0}}, {q: {"tiers": tiers("a1")} for q in "xyz"})
    acd, clock = make_acd(redis_url, cfg)
    for q in "xyz":
        acd.enqueue(T, q, f"c-{q}", node="n1")
        clock.advance(1000)
    got = [o for q in "xyz" for o in acd.dispatch(T, q)]
    assert [o.call_uuid for o in got] == ["c-x"]
    assert acd.dispatch_agent(T, "a1") == []
    acd.answered(got[0], "a1")
    assert [acd.dispatch(T, q) for q in "yz"] == [[], []]
    acd.call_ended(T, "a1", "c-x", 1000)
    # freed: the caller who waited longest among its queues is next
    (nxt,) = acd.dispatch_agent(T, "a1")
    assert nxt.call_uuid == "c-y"


def test_dispatch_agent_serves_the_queue_of_its_best_tier_level_first(redis_url: str) -> None:
    cfg = tenant({"a1": {}}, {"low": {"tiers": [{"agent": "a1", "level": 1}]},
                              "high": {"tiers": [{"agent": "a1", "level": 2}]}})
    acd, clock = make_acd(redis_url, cfg)
    acd.set_break(T, "a1")
    acd.enqueue(T, "high", "older", node="n1")
    clock.advance(5000)
    acd.enqueue(T, "low", "newer", node="n1")
    acd.set_available(T, "a1")
    assert [o.call_uuid for o in acd.dispatch_agent(T, "a1")] == ["newer"]


def test_wrap_up_keeps_the_agent_idle_until_tick(redis_url: str) -> None:
    cfg = tenant({"a1": {"wrap_up_s": 10}}, {"q": {"tiers": tiers("a1")}})
    acd, clock = make_acd(redis_url, cfg)
    serve(acd, clock, "q", "c1", talk_ms=30_000)
    assert acd.agent(T, "a1").state == "Idle"
    acd.enqueue(T, "q", "c2", node="n1")
    assert acd.dispatch(T, "q") == []
    clock.advance(9_999)
    assert acd.tick(T) == [] and acd.agent(T, "a1").state == "Idle"
    clock.advance(1)
    assert acd.tick(T) == ["q"]
    assert acd.agent(T, "a1").state == "Waiting"
    assert [o.call_uuid for o in acd.dispatch(T, "q")] == ["c2"]


@pytest.mark.parametrize(("cause", "delay_s"), [
    ("USER_BUSY", 7), ("CALL_REJECTED", 11), ("NO_ANSWER", 13), ("NO_USER_RESPONSE", 13),
    ("ALLOTTED_TIMEOUT", 13), ("USER_NOT_REGISTERED", 17), ("SUBSCRIBER_ABSENT", 17),
    ("LOSE_RACE", 0)])
def test_each_miss_applies_its_delay(redis_url: str, cause: str, delay_s: int) -> None:
    cfg = tenant({"a1": {"busy_delay_s": 7, "reject_delay_s": 11, "no_answer_delay_s": 13,
                         "not_registered_delay_s": 17, "max_no_answer": 0}},
                 {"q": {"tiers": tiers("a1")}})
    acd, clock = make_acd(redis_url, cfg)
    acd.enqueue(T, "q", "c1", node="n1")
    (offer,) = acd.dispatch(T, "q")
    acd.offering(offer, "a1")
    acd.agent_failed(offer, "a1", cause)
    assert acd.position(T, "c1") == (1, 1)             # the caller waits again, same place
    if delay_s == 0:
        assert acd.agent(T, "a1").state == "Waiting"
        return
    assert acd.agent(T, "a1").state == "Idle"
    assert acd.dispatch(T, "q") == []
    clock.advance(delay_s * 1000 - 1)
    acd.tick(T)
    assert acd.agent(T, "a1").state == "Idle"
    clock.advance(1)
    acd.tick(T)
    assert acd.agent(T, "a1").state == "Waiting"
    assert [o.call_uuid for o in acd.dispatch(T, "q")] == ["c1"]


def _miss(acd, clock, uuid: str) -> None:  # type: ignore[no-untyped-def]
    acd.enqueue(T, "q", uuid, node="n1")
    (offer,) = acd.dispatch(T, "q")
    acd.agent_failed(offer, "a1", "NO_ANSWER")
    acd.leave(T, uuid, "hangup")
    clock.advance(1000)
    acd.tick(T)


def test_max_no_answer_puts_the_agent_on_break_and_an_answer_resets_the_count(
        redis_url: str) -> None:
    cfg = tenant({"a1": {"max_no_answer": 2, "no_answer_delay_s": 1, "wrap_up_s": 0}},
                 {"q": {"tiers": tiers("a1")}})
    acd, clock = make_acd(redis_url, cfg)
    _miss(acd, clock, "m1")
    serve(acd, clock, "q", "ok")                       # an answer resets the streak
    _miss(acd, clock, "m2")
    assert acd.agent(T, "a1").status == "Available"
    _miss(acd, clock, "m3")                            # second in a row
    view = acd.agent(T, "a1")
    assert (view.status, view.no_answers_today, view.no_answer_count) == ("On Break", 3, 2)
    maxed = [e for e in events.read(acd.redis, T) if e["CC-Action"] == "agent-max-no-answer"]
    assert [(e["CC-Agent"], e["CC-Agent-No-Answer-Status"]) for e in maxed] == [
        ("a1", "On Break")]


def test_on_demand_agent_goes_on_break_after_a_call(redis_url: str) -> None:
    cfg = tenant({"a1": {"wrap_up_s": 0}}, {"q": {"tiers": tiers("a1")}})
    acd, clock = make_acd(redis_url, cfg, login=False)
    assert acd.login(T, "a1", on_demand=True).status == "Available (On Demand)"
    serve(acd, clock, "q", "c1")
    assert acd.agent(T, "a1").status == "On Break"
    acd.enqueue(T, "q", "c2", node="n1")
    assert acd.dispatch(T, "q") == []


def _shanghai_ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(
        tzinfo=ZoneInfo("Asia/Shanghai")).timestamp() * 1000)


def test_daily_counters_roll_at_local_midnight_not_at_login(redis_url: str) -> None:
    cfg = tenant({"a1": {"wrap_up_s": 0}}, {"q": {"tiers": tiers("a1")}})
    acd, clock = make_acd(redis_url, cfg, Clock(_shanghai_ms("2026-11-30T23:50:00")))
    serve(acd, clock, "q", "c1", talk_ms=60_000)
    clock.now_ms = _shanghai_ms("2026-11-30T23:58:00")
    serve(acd, clock, "q", "c2", talk_ms=60_000)       # ends 23:59 local
    acd.logout(T, "a1")
    acd.login(T, "a1")                                 # a new login keeps today's figures
    view = acd.agent(T, "a1")
    assert (view.calls_today, view.talk_ms_today) == (2, 120_000)
    assert acd.queue_view(T, "q").answered_today == 2
    clock.now_ms = _shanghai_ms("2026-12-01T00:01:00")  # 16:01 UTC: a new day in Shanghai
    assert acd.agent(T, "a1").calls_today == 0
    assert acd.queue_view(T, "q").answered_today == 0
    serve(acd, clock, "q", "c3", talk_ms=30_000)
    view = acd.agent(T, "a1")
    assert (view.calls_today, view.talk_ms_today) == (1, 30_000)


def test_the_local_day_turns_on_the_millisecond_of_midnight_in_any_offset(
        redis_url: str) -> None:
    # Kathmandu is UTC+05:45: its midnight is not on a UTC hour, only on a minute.
    for n, zone in enumerate(("Asia/Shanghai", "Asia/Kathmandu")):
        cfg = tenant({"a1": {}}, {"q": {"tiers": tiers("a1")}}, timezone=zone,
                     tenant_id=f"t{n}")
        acd, _ = make_acd(redis_url, cfg)
        t = cfg.tenant
        midnight = int(datetime(2026, 12, 1, tzinfo=ZoneInfo(zone)).timestamp() * 1000)
        assert [acd.day(t, midnight - 1), acd.day(t, midnight), acd.day(t, midnight - 1),
                acd.day(t, midnight + 59_999)] == ["20261130", "20261201", "20261130",
                                                   "20261201"], zone


def test_enqueue_is_idempotent_per_call(redis_url: str) -> None:
    cfg = tenant({"a1": {}}, {"q": {"tiers": tiers("a1")}})
    acd, clock = make_acd(redis_url, cfg)
    acd.set_break(T, "a1")
    first = acd.enqueue(T, "q", "c1", node="n1")
    clock.advance(1000)
    again = acd.enqueue(T, "q", "c1", node="n1")
    assert first == again and again.waiting == 1
    starts = [e for e in events.read(acd.redis, T) if e["CC-Action"] == "member-queue-start"]
    assert len(starts) == 1


def test_call_ended_twice_counts_once(redis_url: str) -> None:
    cfg = tenant({"a1": {"wrap_up_s": 0}}, {"q": {"tiers": tiers("a1")}})
    acd, clock = make_acd(redis_url, cfg)
    serve(acd, clock, "q", "c1", talk_ms=5000)
    acd.call_ended(T, "a1", "c1", 5000)
    view = acd.agent(T, "a1")
    assert (view.calls_today, view.talk_ms_today) == (1, 5000)


def test_abandoned_caller_calling_back_resumes_their_place(redis_url: str) -> None:
    cfg = tenant({"a1": {}}, {"q": {"tiers": tiers("a1"), "abandoned_resume_allowed": True,
                                    "discard_abandoned_after_s": 60}})
    acd, clock = make_acd(redis_url, cfg)
    acd.set_break(T, "a1")
    acd.enqueue(T, "q", "c1", node="n1", caller="13800000001")
    clock.advance(1000)
    acd.enqueue(T, "q", "c2", node="n1", caller="13800000002")
    clock.advance(5000)
    acd.leave(T, "c1", "hangup")
    clock.advance(20_000)
    back = acd.enqueue(T, "q", "c1-again", node="n1", caller="13800000001")
    assert (back.position, back.waiting, back.resumed) == (1, 2, True)
    actions = [e["CC-Action"] for e in events.read(acd.redis, T)]
    assert "member-queue-resume" in actions
    # too late: a new caller at the back
    acd.leave(T, "c2", "hangup")
    clock.advance(61_000)
    late = acd.enqueue(T, "q", "c2-again", node="n1", caller="13800000002")
    assert (late.position, late.resumed) == (2, False)


def test_no_resume_unless_the_queue_allows_it(redis_url: str) -> None:
    cfg = tenant({"a1": {}}, {"q": {"tiers": tiers("a1")}})
    acd, clock = make_acd(redis_url, cfg)
    acd.set_break(T, "a1")
    acd.enqueue(T, "q", "c1", node="n1", caller="1")
    clock.advance(1000)
    acd.enqueue(T, "q", "c2", node="n1", caller="2")
    acd.leave(T, "c1", "hangup")
    again = acd.enqueue(T, "q", "c3", node="n1", caller="1")
    assert (again.position, again.waiting, again.resumed) == (2, 2, False)


def test_queue_counters_and_estimated_wait(redis_url: str) -> None:
    cfg = tenant({"a1": {"wrap_up_s": 10}, "a2": {"wrap_up_s": 10}},
                 {"q": {"tiers": tiers("a1", "a2")}})
    acd, clock = make_acd(redis_url, cfg)
    assert acd.estimated_wait_s(T, "q") is None          # no handled call yet
    serve(acd, clock, "q", "c1", talk_ms=110_000)        # handle time 120 s
    for u, why in (("c2", "hangup"), ("c3", "timeout"), ("c4", "no_agent_timeout")):
        acd.set_break(T, "a1")
        acd.set_break(T, "a2")
        acd.enqueue(T, "q", u, node="n1")
        acd.leave(T, u, why)
    acd.set_available(T, "a1")
    acd.set_available(T, "a2")
    view = acd.queue_view(T, "q")
    assert (view.answered_today, view.abandoned_today, view.overflowed_today) == (1, 1, 2)
    # nobody waiting: (0 + 1) callers x 120 s / 2 agents Available
    assert acd.estimated_wait_s(T, "q") == 60
    acd.enqueue(T, "q", "c5", node="n1")
    acd.logout(T, "a2")
    acd.set_break(T, "a1")
    acd.enqueue(T, "q", "c6", node="n1")
    assert acd.queue_view(T, "q").waiting == 2
    assert acd.estimated_wait_s(T, "q") is None           # nobody Available to estimate by


def test_enqueue_dispatch_offers_a_joining_caller_a_free_agent_in_the_same_call(
        redis_url: str) -> None:
    cfg = tenant({"a1": {}, "a2": {}}, {"q": {"tiers": tiers("a1", "a2")},
                                        "p": {"tiers": tiers("a1")}})
    acd, _ = make_acd(redis_url, cfg)
    acd.set_break(T, "a2")
    acd.enqueue(T, "q", "c0", node="n1")      # waits since a1 was never dispatched
    joined, offers, _ = acd.enqueue_dispatch(T, "q", "c1", node="n1")
    assert joined.waiting == 2
    # The caller ahead is served first; the joining caller keeps its place behind.
    assert [(o.call_uuid, o.agents[0].agent) for o in offers] == [("c0", "a1")]
    assert acd.agent(T, "a1").state == "Reserved" and acd.position(T, "c1") == (1, 1)
    acd.set_available(T, "a2")
    _, offers, _ = acd.enqueue_dispatch(T, "q", "c1", node="n1")   # idempotent join
    assert [(o.call_uuid, o.agents[0].agent) for o in offers] == [("c1", "a2")]
    with pytest.raises(UnknownQueue):
        acd.enqueue_dispatch(T, "nope", "c2", node="n1")
    with pytest.raises(AlreadyQueued):
        acd.enqueue_dispatch(T, "p", "c1", node="n1")
    # The caller's own writes, queued ahead on the ACD's pipeline, share the round trip.
    pipe = acd.pipeline()
    pipe.set("before-the-join", "1")
    joined, _, leading = acd.enqueue_dispatch(T, "q", "c3", node="n1", pipe=pipe)
    assert leading == [True] and joined.position == 1
    assert acd.redis.get("before-the-join") == b"1" and acd.position(T, "c3") == (1, 1)


def test_a_joining_callers_own_offer_comes_back_ringing_and_no_one_elses(
        redis_url: str) -> None:
    cfg = tenant({"a1": {}, "a2": {}, "a3": {}, "a4": {}},
                 {"q": {"tiers": tiers("a1", "a2"), "ring_timeout_s": 20},
                  "prog": {"strategy": "ring-progressively", "tiers": tiers("a3", "a4"),
                           "ring_timeout_s": 20}})
    acd, clock = make_acd(redis_url, cfg)
    acd.enqueue(T, "q", "c0", node="n1", caller="1001")     # waits: nobody dispatched yet
    t0 = clock.now_ms
    _, offers, _ = acd.enqueue_dispatch(T, "q", "c1", node="n1", caller="1002", ring_now=True)
    by_caller = {o.call_uuid: o for o in offers}
    # The caller ahead is offered as before (its holder calls offering()); the joining
    # caller's own agent is Receiving already, rung for the ring timeout + margin.
    assert not by_caller["c0"].rung and by_caller["c1"].rung
    mine, other = by_caller["c1"].agents[0].agent, by_caller["c0"].agents[0].agent
    assert acd.agent(T, mine).state == "Receiving" and acd.agent(T, other).state == "Reserved"
    assert by_caller["c1"].deadline_ms >= t0 + 20_000
    clock.advance(RESERVE_MS)              # past a bare reservation: the ringing one holds
    assert acd.tick(T) == ["q"]
    assert acd.agent(T, mine).state == "Receiving" and acd.agent(T, other).state == "Waiting"
    assert acd.answered(by_caller["c1"], mine)
    offering = [e for e in events.read(acd.redis, T) if e["CC-Action"] == "agent-offering"]
    assert [(e["CC-Agent"], e["CC-Member-UUID"], e["CC-Member-CID-Number"])
            for e in offering] == [(mine, "c1", "1002")]
    # Ring-progressively rings its agents one after another: not rung by the dispatch.
    _, offers, _ = acd.enqueue_dispatch(T, "prog", "c2", node="n1", ring_now=True)
    assert [(o.call_uuid, o.rung) for o in offers] == [("c2", False)]
    assert _states(acd, "a3", "a4") == ["Reserved", "Reserved"]


def test_a_standby_agents_reservation_reads_back_with_its_parked_channel(
        redis_url: str) -> None:
    # A uuid-standby agent is bridged at once, never rung: a worker taking the caller over
    # finds its leg (the parked channel) from the reservation, not from a leg uuid.
    parked = "3a1b9f0e-8c2d-4e5f-9a6b-7c8d9e0f1a2b"
    cfg = tenant({"s1": {"type": "uuid-standby", "contact": parked}},
                 {"q": {"tiers": tiers("s1"), "ring_timeout_s": 20}})
    acd, _ = make_acd(redis_url, cfg)
    acd.enqueue(T, "q", "c1", node="n1")
    (offer,) = acd.dispatch(T, "q")
    live = acd.live_offer(T, "c1")
    assert live is not None and live.token == offer.token
    assert [(a.agent, a.contact, a.type) for a in live.agents] == [
        ("s1", parked, "uuid-standby")]


def test_a_calls_end_offers_the_freed_agent_the_next_caller_in_the_same_call(
        redis_url: str) -> None:
    cfg = tenant({"a1": {"wrap_up_s": 0}, "a2": {"wrap_up_s": 30}},
                 {"q": {"tiers": tiers("a1"), "ring_timeout_s": 20},
                  "p": {"tiers": tiers("a2"), "ring_timeout_s": 20}})
    acd, _ = make_acd(redis_url, cfg)
    for queue, agent, first, second in (("q", "a1", "c1", "c2"), ("p", "a2", "c3", "c4")):
        acd.enqueue(T, queue, first, node="n1")
        (offer,) = acd.dispatch(T, queue)
        assert acd.offering(offer, agent) and acd.answered(offer, agent)
        acd.enqueue(T, queue, second, node="n1")           # waits: the agent talks
    offers = acd.call_ended_dispatch(T, "a1", "c1", 5000)
    assert [(o.call_uuid, o.agents[0].agent) for o in offers] == [("c2", "a1")]
    a1 = acd.agent(T, "a1")
    assert (a1.calls_today, a1.talk_ms_today, a1.state) == (1, 5000, "Reserved")
    # A wrap-up keeps the agent Idle: counted, and nobody offered.
    assert acd.call_ended_dispatch(T, "a2", "c3", 7000) == []
    a2 = acd.agent(T, "a2")
    assert (a2.calls_today, a2.state) == (1, "Idle") and acd.position(T, "c4") == (1, 1)


def test_the_reservation_a_caller_holds_can_be_read_back(redis_url: str) -> None:
    acd, _ = _ring_all(redis_url, 2)
    acd.enqueue(T, "q", "c1", node="n1")
    assert acd.live_offer(T, "c1") is None                  # waiting: holds none
    (offer,) = acd.dispatch(T, "q")
    live = acd.live_offer(T, "c1")
    assert live is not None and (live.token, live.queue, live.deadline_ms) == (
        offer.token, "q", offer.deadline_ms)
    assert [(a.agent, a.contact, a.type) for a in live.agents] == [
        ("a1", "user/a1@acme", "callback"), ("a2", "user/a2@acme", "callback")]
    assert acd.answered(offer, "a2")
    live = acd.live_offer(T, "c1")
    assert live is not None and [a.agent for a in live.agents] == ["a2"]
    acd.leave(T, "c1", "hangup")
    assert acd.live_offer(T, "c1") is None
    assert acd.live_offer(T, "never-queued") is None


def test_errors_carry_stable_ids_and_say_how_to_fix(redis_url: str) -> None:
    cfg = tenant({"a1": {}}, {"q": {"tiers": tiers("a1")}, "p": {"tiers": tiers("a1")}})
    acd, _ = make_acd(redis_url, cfg)
    cases = [
        (lambda: acd.login(T, "ghost"), UnknownAgent, "unknown_agent"),
        (lambda: acd.agent(T, "ghost"), UnknownAgent, "unknown_agent"),
        (lambda: acd.login(T, "a1"), AlreadyLoggedIn, "already_logged_in"),
        (lambda: acd.enqueue(T, "nope", "u", node="n"), UnknownQueue, "unknown_queue"),
        (lambda: acd.queue_view(T, "nope"), UnknownQueue, "unknown_queue"),
        (lambda: acd.position(T, "nobody"), UnknownMember, "unknown_member"),
        (lambda: acd.leave(T, "u", "bored"), AcdError, "bad_leave_reason"),
    ]
    for call, cls, error_id in cases:
        with pytest.raises(cls) as info:
            call()
        assert info.value.error_id == error_id
        assert str(info.value)
    acd.set_break(T, "a1")
    acd.enqueue(T, "q", "u1", node="n1")
    with pytest.raises(AlreadyQueued) as moved:
        acd.enqueue(T, "p", "u1", node="n1")
    assert moved.value.error_id == "already_queued" and "leave" in str(moved.value)
    acd.leave(T, "u1", "overflow")
    assert acd.enqueue(T, "p", "u1", node="n1").position == 1   # overflow to another queue


def test_sync_keeps_live_state_and_logs_out_removed_agents(redis_url: str) -> None:
    cfg = tenant({"a1": {}, "a2": {}}, {"q": {"tiers": tiers("a1", "a2")}})
    acd, clock = make_acd(redis_url, cfg)
    serve(acd, clock, "q", "c1")
    acd.sync(tenant({"a1": {"contact": "user/new@acme"}}, {"q": {"tiers": tiers("a1")}}))
    kept = acd.agent(T, "a1")
    assert (kept.status, kept.contact) == ("Available", "user/new@acme")
    assert [v.agent for v in acd.agents(T)] == ["a1"]
    assert acd.queue_view(T, "q").agents_available == 1


def test_events_use_mod_callcenter_names(redis_url: str) -> None:
    acd, clock = _ring_all(redis_url, 2)
    acd.enqueue(T, "q", "c1", node="n1", caller="1001")
    (offer,) = acd.dispatch(T, "q")
    acd.offering(offer, "a1")
    acd.agent_failed(offer, "a1", "USER_BUSY")
    acd.answered(offer, "a2")
    acd.call_ended(T, "a2", "c1", 1000)
    captured = {"CC-Queue", "CC-Action", "CC-Agent", "CC-Agent-Status", "CC-Agent-State",
                "CC-Agent-Type", "CC-Agent-Contact", "CC-Member-UUID",
                "CC-Member-Session-UUID", "CC-Member-CID-Number", "CC-Count", "CC-Selection",
                "CC-Cause", "CC-Cancel-Reason", "CC-Hangup-Cause", "CC-Agent-Called-Time",
                "CC-Agent-Answered-Time", "CC-Agent-Aborted-Time", "CC-Member-Joined-Time",
                "CC-Member-Leaving-Time", "CC-Bridge-Terminated-Time", "CC-Agent-Bridged",
                "CC-Agent-No-Answer-Count", "CC-Agent-No-Answer-Status"}
    got = events.read(acd.redis, T)
    assert {k for e in got for k in e} <= captured
    assert [e["CC-Action"] for e in got if e["CC-Action"] not in (
        "agent-state-change", "agent-status-change")] == [
        "member-queue-start", "members-count", "agent-offering", "bridge-agent-fail",
        "bridge-agent-start", "bridge-agent-end", "member-queue-end"]
    assert {e["CC-Action"] for e in got} <= {a.value for a in events.Action}


def test_configured_status_is_given_once_even_when_two_workers_sync_the_same_new_agents(
        redis_url: str) -> None:
    cfg = tenant({"a": {"status": "Available"}, "b": {"status": "On Break"}, "c": {}},
                 {"q": {"tiers": tiers("a", "b", "c")}})
    first, _ = make_acd(redis_url, cfg, login=False)      # syncs cfg
    # A second worker read the agent list before the first one's sync landed: to it, the
    # agents are new, though the first already logged them in.
    second = Acd(first.redis)
    second.redis.delete(keys.acd_agents("acme"))
    second.sync(cfg)
    assert [(v.agent, v.status) for v in sorted(second.agents("acme"), key=lambda v: v.agent)] \
        == [("a", "Available"), ("b", "On Break"), ("c", "Logged Out")]
    # Later syncs leave what agents did since alone.
    first.logout("acme", "a")
    first.sync(cfg)
    assert first.agent("acme", "a").status == "Logged Out"


def test_a_queue_with_more_agents_than_lua_can_unpack_still_finds_the_free_one(
        redis_url: str) -> None:
    # Lua's unpack() fails near 8,000 values: a 9,000-agent queue once made every dispatch
    # an error ("too many results to unpack"), so nobody in it was ever offered.
    ids = [f"a{i:05d}" for i in range(9000)]
    cfg = tenant({a: {} for a in ids}, {"q": {
        "tiers": tiers(*ids), "tier_rules_apply": True, "tier_rule_no_agent_no_wait": True}})
    acd, _ = make_acd(redis_url, cfg, login=False)
    acd.login(T, ids[-1])
    acd.enqueue(T, "q", "c1", node="n1")
    (offer,) = acd.dispatch(T, "q")
    assert [a.agent for a in offer.agents] == [ids[-1]]


def test_a_failed_bridge_puts_the_caller_back_in_its_place_and_the_agent_wraps_up(
        redis_url: str) -> None:
    cfg = tenant({"a1": {"wrap_up_s": 10}, "a2": {"wrap_up_s": 0}},
                 {"q": {"strategy": "top-down", "tiers": tiers("a1", "a2")}})
    acd, clock = make_acd(redis_url, cfg)
    acd.enqueue(T, "q", "first", node="n1")
    clock.advance(1000)
    acd.enqueue(T, "q", "second", node="n1")
    offer = acd.dispatch(T, "q", max_offers=1)[0]
    assert offer.call_uuid == "first" and offer.agents[0].agent == "a1"
    assert acd.offering(offer, "a1") and acd.answered(offer, "a1")
    # a1's phone hung up before the bridge: "first" waits again, ahead of "second".
    assert acd.bridge_failed(offer, "a1")
    assert [m.call_uuid for m in acd.members(T, "q")] == ["first", "second"]
    view = acd.agent(T, "a1")
    assert (view.state, view.calls_today, view.call_uuid) == ("Idle", 0, "")
    assert acd.queue_view(T, "q").answered_today == 0
    # Twice: nothing more changes; and a2 (free) gets "first".
    assert not acd.bridge_failed(offer, "a1")
    offers = acd.dispatch(T, "q", max_offers=1)
    assert [(o.call_uuid, o.agents[0].agent) for o in offers] == [("first", "a2")]
    clock.advance(10_000)
    acd.tick(T)
    assert acd.agent(T, "a1").state == "Waiting"
    last = events.read(acd.redis, T)
    assert any(e.get("CC-Action") == "bridge-agent-end" and e.get("CC-Agent-Bridged") == "false"
               for e in last)
