"""Who may serve whom: tier levels and tier rules, skills and their relaxation, priority."""

from __future__ import annotations

from typing import Any

import pytest

from tests.acd.helpers import make_acd, picks, tenant, tiers

T = "acme"


def _levels(**more: Any) -> dict[str, Any]:
    return {"strategy": "top-down", "tier_rules_apply": True, "tier_rule_wait_s": 10,
            "tiers": [{"agent": "a1", "level": 1}, {"agent": "a2", "level": 2},
                      {"agent": "a3", "level": 3}], **more}


def _offered(acd: Any, queue: str = "q") -> list[str]:
    return [a.agent for o in acd.dispatch(T, queue) for a in o.agents]


def test_tier_rules_make_the_caller_wait_level_times_the_wait(redis_url: str) -> None:
    cfg = tenant({a: {} for a in ("a1", "a2", "a3")},
                 {"q": _levels(tier_rule_wait_multiply_level=True)})
    acd, clock = make_acd(redis_url, cfg)
    acd.set_break(T, "a1")              # level 1 has a logged-in agent, but not free
    acd.enqueue(T, "q", "c1", node="n1")
    assert _offered(acd) == []
    clock.advance(19_999)               # level 2 needs 2 x 10 s
    assert _offered(acd) == []
    clock.advance(1)
    assert _offered(acd) == ["a2"]


def test_tier_rules_without_multiply_open_every_level_after_one_wait(redis_url: str) -> None:
    cfg = tenant({a: {} for a in ("a1", "a2", "a3")},
                 {"q": _levels(tier_rule_wait_multiply_level=False)})
    acd, clock = make_acd(redis_url, cfg)
    acd.set_break(T, "a1")
    acd.set_break(T, "a2")
    acd.enqueue(T, "q", "c1", node="n1")
    clock.advance(9_999)
    assert _offered(acd) == []
    clock.advance(1)
    assert _offered(acd) == ["a3"]


def test_no_agent_no_wait_skips_a_level_with_nobody_logged_in(redis_url: str) -> None:
    agents = {a: {} for a in ("a1", "a2", "a3")}
    cfg = tenant(agents, {"q": _levels(tier_rule_no_agent_no_wait=True),
                          "p": _levels(tier_rule_no_agent_no_wait=False)})
    acd, _ = make_acd(redis_url, cfg)
    acd.logout(T, "a1")
    acd.enqueue(T, "p", "c0", node="n1")
    assert _offered(acd, "p") == []          # without the rule: level 2 waits 20 s
    acd.enqueue(T, "q", "c1", node="n1")
    assert _offered(acd, "q") == ["a2"]      # with it: level 1 is empty, level 2 at once


def test_no_agent_no_wait_still_waits_when_the_level_has_a_logged_in_agent(
        redis_url: str) -> None:
    cfg = tenant({a: {} for a in ("a1", "a2", "a3")},
                 {"q": _levels(tier_rule_no_agent_no_wait=True)})
    acd, _ = make_acd(redis_url, cfg)
    acd.set_break(T, "a1")                   # On Break: logged in, so level 1 is not empty
    acd.logout(T, "a1")
    acd.login(T, "a1")
    acd.enqueue(T, "q", "c0", node="n1")
    assert _offered(acd) == ["a1"]
    acd.enqueue(T, "q", "c1", node="n1")
    assert _offered(acd) == []               # a1 busy but logged in: level 2 must wait


def test_skills_pick_a_proficient_agent_and_an_unservable_caller_does_not_block(
        redis_url: str) -> None:
    cfg = tenant({"a1": {"skills": {"english": 3}}, "a2": {"skills": {"english": 6}}},
                 {"q": {"strategy": "top-down", "tiers": tiers("a1", "a2")}})
    acd, clock = make_acd(redis_url, cfg)
    for uuid, skills in (("french", {"french": 1}), ("english", {"english": 5}),
                         ("anyone", {})):
        acd.enqueue(T, "q", uuid, node="n1", skills=skills)
        clock.advance(1000)
    offers = acd.dispatch(T, "q")
    assert [(o.call_uuid, o.agents[0].agent) for o in offers] == [
        ("english", "a2"), ("anyone", "a1")]
    assert acd.position(T, "french") == (1, 1)


def test_queue_skills_and_caller_skills_are_both_required(redis_url: str) -> None:
    cfg = tenant({"a1": {"skills": {"english": 9}}, "a2": {"skills": {"billing": 9}},
                  "a3": {"skills": {"billing": 4, "english": 5}}},
                 {"q": {"strategy": "top-down", "skills": {"billing": 4},
                        "tiers": tiers("a1", "a2", "a3")}})
    acd, _ = make_acd(redis_url, cfg)
    acd.enqueue(T, "q", "c1", node="n1", skills={"english": 5})
    assert _offered(acd) == ["a3"]


def test_skills_relax_with_time_in_queue(redis_url: str) -> None:
    cfg = tenant({"a1": {"skills": {"english": 3}}, "a2": {}},
                 {"q": {"strategy": "top-down", "tiers": tiers("a2", "a1"),
                        "skills_relax": [{"after_s": 60, "min_proficiency": 0},
                                         {"after_s": 30, "min_proficiency": 3}]}})
    acd, clock = make_acd(redis_url, cfg)
    acd.enqueue(T, "q", "c1", node="n1", skills={"english": 8})
    assert _offered(acd) == []
    clock.advance(30_000)                     # english 8 -> 3: a1 qualifies, a2 not yet
    assert _offered(acd) == ["a1"]
    acd.enqueue(T, "q", "c2", node="n1", skills={"english": 8})
    clock.advance(59_999)
    assert _offered(acd) == []                # a2 has no english at all
    clock.advance(1)                          # 60 s: skills ignored
    assert _offered(acd) == ["a2"]


def test_vip_priority_overtakes_earlier_callers(redis_url: str) -> None:
    cfg = tenant({"a1": {}}, {"q": {"tiers": tiers("a1")}})
    acd, clock = make_acd(redis_url, cfg)
    acd.set_break(T, "a1")
    acd.enqueue(T, "q", "early", node="n1")
    clock.advance(1000)
    acd.enqueue(T, "q", "later", node="n1")
    clock.advance(1000)
    joined = acd.enqueue(T, "q", "vip", node="n1", priority=10)
    assert (joined.position, joined.waiting) == (1, 3)
    assert [m.call_uuid for m in acd.members(T, "q")] == ["vip", "early", "later"]
    acd.set_available(T, "a1")
    assert [o.call_uuid for o in acd.dispatch(T, "q")] == ["vip"]


def test_heads_rank_the_first_callers_of_several_queues_the_vip_first(redis_url: str) -> None:
    cfg = tenant({"a1": {}}, {q: {"tiers": tiers("a1")} for q in ("q1", "q2", "q3", "q4")})
    acd, clock = make_acd(redis_url, cfg)
    acd.set_break(T, "a1")
    acd.enqueue(T, "q1", "early", node="n1")
    clock.advance(1000)
    acd.enqueue(T, "q3", "later", node="n1")
    clock.advance(1000)
    acd.enqueue(T, "q2", "vip", node="n1", priority=10)
    heads = acd.heads(T, ["q1", "q2", "q3", "q4"])
    assert sorted(heads, key=heads.__getitem__) == ["q2", "q1", "q3"]     # q4: nobody waits


def test_time_base_system_ranks_by_the_calls_start(redis_url: str) -> None:
    cfg = tenant({"a1": {}}, {"q": {"tiers": tiers("a1"), "time_base_score": "system"}})
    acd, clock = make_acd(redis_url, cfg)
    acd.set_break(T, "a1")
    acd.enqueue(T, "q", "joined-first", node="n1", start_ms=clock.now_ms - 1000)
    acd.enqueue(T, "q", "called-first", node="n1", start_ms=clock.now_ms - 90_000)
    assert [m.call_uuid for m in acd.members(T, "q")] == ["called-first", "joined-first"]


def _offered_by_node(acd: Any, clock: Any, queue: str, callers: list[tuple[str, str]]
             ) -> dict[str, list[str]]:
    """(caller, node) join in this order, a second apart; one dispatch: caller -> the agents
    offered."""
    for caller, node in callers:
        acd.enqueue(T, queue, caller, node=node)
        clock.advance(1000)
    return {o.call_uuid: [a.agent for a in o.agents] for o in acd.dispatch(T, queue)}


@pytest.mark.parametrize("strategy", ["longest-idle-agent", "top-down", "ring-all"])
def test_a_phone_registered_on_one_switch_is_offered_only_that_switch_s_callers(
        redis_url: str, strategy: str) -> None:
    cfg = tenant({"a1": {}, "a2": {}}, {"q": {"strategy": strategy,
                                              "tiers": tiers("a1", "a2")}})
    acd, clock = make_acd(redis_url, cfg)
    acd.set_registered(T, "a1", True, node="fs1")
    acd.set_registered(T, "a1", False, node="fs2")   # fs2 does not know the phone
    # The caller on fs2 comes first, yet a1 (first in every order) goes to fs1's caller.
    offered = _offered_by_node(acd, clock, "q", [("c-fs2", "fs2"), ("c-fs1", "fs1")])
    assert offered == {"c-fs2": ["a2"], "c-fs1": ["a1"]}
    view = acd.agent(T, "a1")
    assert view.registered and dict(view.registered_on) == {"fs1": True, "fs2": False}


def test_a_phone_absent_from_one_switch_still_serves_the_others_until_every_one_says_so(
        redis_url: str) -> None:
    cfg = tenant({"a1": {}}, {"q": {"strategy": "longest-idle-agent", "tiers": tiers("a1")}})
    acd, clock = make_acd(redis_url, cfg)
    acd.set_registered(T, "a1", True, node="fs1")
    # A call on fs2 failed USER_NOT_REGISTERED: fs2's callers wait, fs1's are offered a1.
    acd.set_registered(T, "a1", False, node="fs2")
    assert _offered_by_node(acd, clock, "q", [("c1", "fs2")]) == {}
    assert _offered_by_node(acd, clock, "q", [("c2", "fs1")]) == {"c2": ["a1"]}
    acd.leave(T, "c2", "hangup")      # hung up while a1 rang: a1 free again
    acd.leave(T, "c1", "hangup")
    acd.set_registered(T, "a1", False, node="fs1")
    assert not acd.agent(T, "a1").registered
    assert _offered_by_node(acd, clock, "q", [("c3", "fs1")]) == {}
    acd.set_registered(T, "a1", True, node="fs2")     # the phone moved to fs2
    assert acd.agent(T, "a1").registered
    assert _offered_by_node(acd, clock, "q", [("c4", "fs2")]) == {"c4": ["a1"]}


def test_unregistered_agent_is_not_offered(redis_url: str) -> None:
    cfg = tenant({"a1": {}, "a2": {}}, {"q": {"strategy": "top-down",
                                              "tiers": tiers("a1", "a2")}})
    acd, _ = make_acd(redis_url, cfg)
    acd.set_registered(T, "a1", False)
    assert picks(acd, "q", 2) == ["a2"]
    acd.set_registered(T, "a1", True)
    assert [o.agents[0].agent for o in acd.dispatch(T, "q")] == ["a1"]
