"""Builders for ACD tests: a tenant with agents and queues, an Acd on a hand-moved clock."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import redis as redis_lib

from acd.store import Acd
from cc_core.tenants.model import Tenant

# 2026-03-02T10:00:00+08:00 (Asia/Shanghai), a Monday
T0_MS = 1772416800000


class Clock:
    """A hand-moved clock in ms."""

    def __init__(self, now_ms: int = T0_MS) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, ms: int) -> None:
        self.now_ms += ms


def tenant(agents: Mapping[str, Mapping[str, Any]], queues: Mapping[str, Mapping[str, Any]],
           *, tenant_id: str = "acme", timezone: str = "Asia/Shanghai") -> Tenant:
    agent_cfg = {a: {"contact": f"user/{a}@acme", **cfg} for a, cfg in agents.items()}
    return Tenant.model_validate({
        "tenant": tenant_id, "timezone": timezone, "entry": "hangup",
        "numbers": {"4008001234": {}}, "agents": agent_cfg, "queues": dict(queues)})


def tiers(*agent_ids: str, level: int = 1) -> list[dict[str, Any]]:
    """Tiers in the given order: positions 1, 2, 3... at one level."""
    return [{"agent": a, "level": level, "position": i} for i, a in enumerate(agent_ids, 1)]


def make_acd(redis_url: str, cfg: Tenant, clock: Clock | None = None, *,
             login: bool = True) -> tuple[Acd, Clock]:
    clock = clock or Clock()
    acd = Acd(redis_lib.Redis.from_url(redis_url), clock_ms=clock)
    acd.sync(cfg)
    if login:
        for a in cfg.agents:
            acd.login(cfg.tenant, a)
    return acd, clock


def serve(acd: Acd, clock: Clock, queue: str, call_uuid: str, *, talk_ms: int = 60_000,
          tenant_id: str = "acme") -> str:
    """One whole queue call: join, dispatch, ring, answer, hang up. Returns the agent."""
    acd.enqueue(tenant_id, queue, call_uuid, node="n1")
    offers = acd.dispatch(tenant_id, queue)
    assert len(offers) == 1, offers
    agent = offers[0].agents[0].agent
    assert acd.offering(offers[0], agent)
    assert acd.answered(offers[0], agent)
    clock.advance(talk_ms)
    acd.call_ended(tenant_id, agent, call_uuid, talk_ms)
    return agent


def picks(acd: Acd, queue: str, n: int, tenant_id: str = "acme", prefix: str = "c") -> list[str]:
    """n callers join, one dispatch: the first agent of each offer, in caller order."""
    for i in range(n):
        acd.enqueue(tenant_id, queue, f"{prefix}{i}", node="n1")
    return [o.agents[0].agent for o in acd.dispatch(tenant_id, queue)]
