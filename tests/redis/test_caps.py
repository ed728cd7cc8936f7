"""Monthly caps of a tenant: calls counted once per claimed call, the month in the tenant's
time zone, refuse or only alert, the cost cap read from what billing adds up."""

from __future__ import annotations

from datetime import UTC, datetime

import redis

from cc_core import keys
from cc_core.flow.caps import CallCaps
from cc_core.tenants.model import Tenant


class Counts:
    def __init__(self) -> None:
        self.seen: list[tuple[str, ...]] = []

    def labels(self, *values: str) -> Counts:
        self.seen.append(values)
        return self

    def inc(self) -> None:
        pass


def _tenant(**caps: object) -> Tenant:
    return Tenant.model_validate({"tenant": "acme", "entry": "hangup",
                                  "numbers": {"4008001234": {}},
                                  "prompts": {"full": "tone_stream://%(300,0,500)"},
                                  "caps": caps})


def test_calls_past_the_cap_are_refused_and_reported_once(redis_url: str) -> None:
    counts = Counts()
    caps = CallCaps(redis.Redis.from_url(redis_url), reached=counts)
    t = _tenant(monthly_calls=2, announce="full")
    at = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    assert [caps.admit(t, at) for _ in range(4)] == [None, None, "monthly_calls",
                                                     "monthly_calls"]
    assert counts.seen == [("acme", "monthly_calls")]


def test_the_month_is_the_tenant_s(redis_url: str) -> None:
    caps = CallCaps(redis.Redis.from_url(redis_url))
    t = _tenant(monthly_calls=1)
    # 16:30 UTC on 30 November is 00:30 on 1 December in Shanghai: a new month, a new count.
    assert caps.admit(t, datetime(2026, 11, 30, 15, 0, tzinfo=UTC)) is None
    assert caps.admit(t, datetime(2026, 11, 30, 16, 30, tzinfo=UTC)) is None
    assert caps.admit(t, datetime(2026, 11, 30, 17, 0, tzinfo=UTC)) == "monthly_calls"


def test_an_alert_tenant_s_calls_go_on_and_the_cost_cap_follows_billing(redis_url: str) -> None:
    r = redis.Redis.from_url(redis_url)
    counts = Counts()
    caps = CallCaps(r, reached=counts)
    at = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    alert = _tenant(monthly_calls=1, action="alert")
    assert [caps.admit(alert, at) for _ in range(3)] == [None, None, None]
    assert counts.seen == [("acme", "monthly_calls")]
    costly = _tenant(monthly_cost_fen=50_000)
    r.delete(keys.tenant_month_capped("acme", "202611"))
    assert caps.admit(costly, at) is None
    r.set(keys.tenant_month_cost("acme", "202611"), 50_000)
    assert caps.admit(costly, at) == "monthly_cost_fen"


def test_a_tenant_without_caps_costs_no_round_trip(redis_url: str) -> None:
    class NoRedis:
        def __getattr__(self, name: str) -> object:
            raise AssertionError(f"Redis used: {name}")

    assert CallCaps(NoRedis()).admit(_tenant(), datetime(2026, 11, 30, tzinfo=UTC)) is None
