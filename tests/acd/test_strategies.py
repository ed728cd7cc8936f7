"""Each strategy picks agents in the order mod_callcenter's users expect; every expected order
is written out by hand (tier level first, then the strategy's own key, agent id last)."""

from __future__ import annotations

from typing import Any

import redis as redis_lib

from acd.store import Acd
from tests.acd.helpers import Clock, make_acd, picks, serve, tenant, tiers

T = "acme"


class FixedRandom:
    """The random numbers dispatch passes to the scripts, chosen by the test."""

    def __init__(self, *values: float) -> None:
        self.values = list(values)

    def random(self) -> float:
        return self.values.pop(0) if self.values else 0.0


def _q(strategy: str, tier_list: list[dict[str, Any]], **more: Any) -> dict[str, Any]:
    return {"strategy": strategy, "tiers": tier_list, **more}


def _agents(*ids: str, **cfg: Any) -> dict[str, dict[str, Any]]:
    return {a: {"wrap_up_s": 0, **cfg} for a in ids}


def test_top_down_rings_in_tier_position_order_and_always_restarts_from_the_top(
        redis_url: str) -> None:
    cfg = tenant(_agents("a1", "a2", "a3"),
                 {"q": _q("top-down", [{"agent": "a3", "position": 1},
                                       {"agent": "a1", "position": 2},
                                       {"agent": "a2", "position": 3}])})
    acd, clock = make_acd(redis_url, cfg)
    assert picks(acd, "q", 3) == ["a3", "a1", "a2"]
    assert acd.dispatch(T, "q") == []          # nobody is free
    # everyone free again: the next caller goes to the top again, and again
    for i in range(3):
        acd.leave(T, f"c{i}", "hangup")
    assert serve(acd, clock, "q", "x1") == "a3"
    assert serve(acd, clock, "q", "x2") == "a3"


def test_sequentially_by_agent_order_is_tier_level_then_position(redis_url: str) -> None:
    cfg = tenant(_agents("a1", "a2", "a3", "a4"), {"q": _q("sequentially-by-agent-order", [
        {"agent": "a1", "level": 2, "position": 1},
        {"agent": "a2", "level": 1, "position": 2},
        {"agent": "a3", "level": 1, "position": 1},
        {"agent": "a4", "level": 3, "position": 0}])})
    acd, _ = make_acd(redis_url, cfg)
    assert picks(acd, "q", 4) == ["a3", "a2", "a1", "a4"]


def test_round_robin_continues_after_the_last_agent_offered(redis_url: str) -> None:
    cfg = tenant(_agents("a1", "a2", "a3"), {"q": _q("round-robin", tiers("a2", "a3", "a1"))})
    acd, clock = make_acd(redis_url, cfg)
    got = [serve(acd, clock, "q", f"x{i}") for i in range(5)]
    assert got == ["a2", "a3", "a1", "a2", "a3"]


def test_longest_idle_agent_prefers_who_waited_longest_ties_by_id(redis_url: str) -> None:
    cfg = tenant(_agents("a1", "a2", "a3", "a4"),
                 {"q": _q("longest-idle-agent", tiers("a1", "a2", "a3", "a4"))})
    acd, clock = make_acd(redis_url, cfg, login=False)
    for a in ("a3", "a1"):           # logged in together: equally idle, a1 < a3 by id
        acd.login(T, a)
    clock.advance(1000)
    acd.login(T, "a4")
    clock.advance(1000)
    acd.login(T, "a2")
    assert picks(acd, "q", 4) == ["a1", "a3", "a4", "a2"]


def test_longest_idle_counts_from_the_end_of_the_last_call(redis_url: str) -> None:
    cfg = tenant(_agents("a1", "a2"),
                 {"q": _q("longest-idle-agent", tiers("a1", "a2")),
                  "solo": _q("top-down", tiers("a1"))})
    acd, clock = make_acd(redis_url, cfg)
    clock.advance(1000)
    serve(acd, clock, "solo", "warm")   # a1 just finished a call; a2 idle since login
    assert picks(acd, "q", 2) == ["a2", "a1"]


def test_least_talk_time_today_first(redis_url: str) -> None:
    cfg = tenant(_agents("a1", "a2", "a3"), {
        "q": _q("agent-with-least-talk-time", tiers("a1", "a2", "a3")),
        **{f"solo{a}": _q("top-down", tiers(a)) for a in ("a1", "a2", "a3")}})
    acd, clock = make_acd(redis_url, cfg)
    serve(acd, clock, "soloa1", "w1", talk_ms=300_000)
    serve(acd, clock, "soloa2", "w2", talk_ms=100_000)
    serve(acd, clock, "soloa3", "w3", talk_ms=200_000)
    assert picks(acd, "q", 3) == ["a2", "a3", "a1"]


def test_fewest_calls_today_first(redis_url: str) -> None:
    cfg = tenant(_agents("a1", "a2", "a3"), {
        "q": _q("agent-with-fewest-calls", tiers("a1", "a2", "a3")),
        **{f"solo{a}": _q("top-down", tiers(a)) for a in ("a1", "a3")}})
    acd, clock = make_acd(redis_url, cfg)
    serve(acd, clock, "soloa1", "w1", talk_ms=1000)
    serve(acd, clock, "soloa1", "w2", talk_ms=1000)
    serve(acd, clock, "soloa3", "w3", talk_ms=1000)
    assert picks(acd, "q", 3) == ["a2", "a3", "a1"]


def test_ring_all_offers_every_free_agent_of_the_best_level_at_once(redis_url: str) -> None:
    cfg = tenant(_agents("a1", "a2", "a3", "a4"), {"q": _q("ring-all", [
        {"agent": "a3", "level": 1, "position": 2},
        {"agent": "a1", "level": 1, "position": 1},
        {"agent": "a2", "level": 2, "position": 1},
        {"agent": "a4", "level": 1, "position": 3}])})
    acd, _ = make_acd(redis_url, cfg)
    acd.set_break(T, "a4")
    acd.enqueue(T, "q", "c1", node="n1")
    offers = acd.dispatch(T, "q")
    assert [[a.agent for a in o.agents] for o in offers] == [["a1", "a3"]]
    assert all(a.delay_ms == 0 for a in offers[0].agents)


def test_ring_progressively_rings_all_in_tier_order_one_delay_apart(redis_url: str) -> None:
    cfg = tenant(_agents("a1", "a2", "a3"), {"q": _q("ring-progressively", [
        {"agent": "a1", "level": 2, "position": 1},
        {"agent": "a2", "level": 1, "position": 2},
        {"agent": "a3", "level": 1, "position": 1}], ring_progressively_delay_s=7)})
    acd, clock = make_acd(redis_url, cfg)
    acd.enqueue(T, "q", "c1", node="n1")
    (offer,) = acd.dispatch(T, "q")
    assert [(a.agent, a.delay_ms) for a in offer.agents] == [
        ("a3", 0), ("a2", 7000), ("a1", 14000)]
    # the last one can still be offered when its turn comes
    clock.advance(14_000)
    assert acd.offering(offer, "a1")


def test_random_uses_the_numbers_python_passes(redis_url: str) -> None:
    cfg = tenant(_agents("a1", "a2", "a3"), {"q": _q("random", tiers("a1", "a2", "a3"))})
    clock = Clock()
    acd = Acd(redis_lib.Redis.from_url(redis_url), clock_ms=clock,
              rng=FixedRandom(0.9, 0.1, 0.5))   # type: ignore[arg-type]
    acd.sync(cfg)
    for a in cfg.agents:
        acd.login(T, a)
    # [a1 a2 a3]: 0.9 -> 3rd; [a1 a2]: 0.1 -> 1st; [a2]: a2
    assert picks(acd, "q", 3) == ["a3", "a1", "a2"]


def test_percentage_splits_by_agent_and_group_weights(redis_url: str) -> None:
    agents = {**_agents("a1", "a2", "a3"), **_agents("g1", "g2", group="night")}
    cfg = tenant(agents, {"q": _q("percentage", tiers("a1", "a2", "a3", "g1", "g2"),
                                  weights={"a1": 40, "a2": 20, "night": 40})})
    clock = Clock()
    # entities in tier order: a1 40, a2 20, night 40 (a3 unlisted: only when nobody else)
    # 0.5*100 = 50 -> a2 (40 <= 50 < 60); [a1, night] 0.6*80 = 48 -> night, g1 and g2 equally
    # idle -> g1; 0.9*80 = 72 -> night -> g2; [a1] -> a1; then a3 (fallback).
    acd = Acd(redis_lib.Redis.from_url(redis_url), clock_ms=clock,
              rng=FixedRandom(0.5, 0.6, 0.9, 0.3, 0.3))   # type: ignore[arg-type]
    acd.sync(cfg)
    for a in cfg.agents:
        acd.login(T, a)
    assert picks(acd, "q", 5) == ["a2", "g1", "g2", "a1", "a3"]


def test_agent_level_a_before_b_before_c_then_longest_idle(redis_url: str) -> None:
    cfg = tenant({"a1": {"level": "C"}, "a2": {"level": "A"}, "a3": {"level": "B"},
                  "a4": {"level": "A"}},
                 {"q": _q("agent-level", tiers("a1", "a2", "a3", "a4"))})
    acd, clock = make_acd(redis_url, cfg, login=False)
    for a in ("a1", "a3", "a4"):
        acd.login(T, a)
    clock.advance(5000)
    acd.login(T, "a2")              # a4 has been idle longer than a2
    assert picks(acd, "q", 4) == ["a4", "a2", "a3", "a1"]


def test_lower_tier_level_wins_whatever_the_strategy_key(redis_url: str) -> None:
    cfg = tenant(_agents("a1", "a2"), {"q": _q("longest-idle-agent", [
        {"agent": "a1", "level": 1}, {"agent": "a2", "level": 2}])})
    acd, clock = make_acd(redis_url, cfg, login=False)
    acd.login(T, "a2")              # a2 idle much longer, but on level 2
    clock.advance(60_000)
    acd.login(T, "a1")
    assert picks(acd, "q", 2) == ["a1", "a2"]


def test_longest_idle_reads_past_the_first_agents_without_skipping_any(redis_url: str) -> None:
    # The longest-idle dispatch walks its index a page at a time; an agent taken earlier in the
    # same pass must not make it skip the next one in line (here the longest-idle agent with
    # the skill the second caller needs).
    plain = [f"a{i:02d}" for i in range(1, 17)]   # exactly one page of them
    skilled = [f"x{i:02d}" for i in range(1, 4)]
    cfg = tenant({**{a: {} for a in plain}, **{x: {"skills": {"x": 5}} for x in skilled}},
                 {"q": {"tiers": tiers(*plain, *skilled)}})
    acd, clock = make_acd(redis_url, cfg, login=False)
    for a in [*plain, *skilled]:           # logged in one after the other: idle in this order
        acd.login(T, a)
        clock.advance(1000)
    acd.enqueue(T, "q", "c1", node="n1")
    acd.enqueue(T, "q", "c2", node="n1", skills={"x": 5})
    offers = acd.dispatch(T, "q")
    assert [(o.call_uuid, o.agents[0].agent) for o in offers] == [("c1", "a01"), ("c2", "x01")]


def test_an_agent_added_to_a_queue_while_free_is_offered_its_callers(redis_url: str) -> None:
    # The longest-idle index follows tier changes made by a sync, not only state changes.
    before = tenant({"a1": {}, "a2": {}}, {"q1": {"tiers": tiers("a1")},
                                         "q2": {"tiers": tiers("a2")}})
    acd, _ = make_acd(redis_url, before)
    acd.set_break(T, "a2")
    acd.enqueue(T, "q2", "c1", node="n1")
    assert acd.dispatch(T, "q2") == []
    acd.sync(tenant({"a1": {}, "a2": {}}, {"q1": {"tiers": tiers("a1")},
                                          "q2": {"tiers": tiers("a2", "a1")}}))
    (offer,) = acd.dispatch(T, "q2")
    assert offer.agents[0].agent == "a1"
    acd.sync(before)                       # and taken out again
    acd.leave(T, "c1", "hangup")
    acd.enqueue(T, "q2", "c2", node="n1")
    assert acd.dispatch(T, "q2") == []
