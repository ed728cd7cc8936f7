"""The wallboard's figures (supervisor token) and its page (public, no figures in it)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.api.conftest import bearer, needs_acd

pytestmark = needs_acd
W = "/v1/tenants/acme/wallboard"


def test_figures_per_queue_who_waits_how_long_and_the_agents(api, acd, client,
                                                              issued) -> None:
    from acd.store import Acd

    now_ms = int(time.time() * 1000)
    # Callers who joined 95 s and 5 s ago (the ACD's clock stamps joined_ms).
    Acd(client, clock_ms=lambda: now_ms - 95_000).enqueue(
        "acme", "support", "c-1", node="fs1", caller="13800000001")
    Acd(client, clock_ms=lambda: now_ms - 5_000).enqueue(
        "acme", "support", "c-2", node="fs1", caller="13800000002")
    acd.login("acme", "1001")
    res = api.simulate_get(W, headers=bearer(issued["acme-supervisor"]))
    assert res.status_code == 200, res.json
    assert res.headers["cache-control"] == "no-store"
    queues = {q["queue"]: q for q in res.json["queues"]}
    support = queues["support"]
    assert support["waiting"] == 2
    assert 95 <= support["longest_wait_s"] <= 95 + 30      # the first caller's wait
    assert support["agents_logged_in"] == 1
    assert support["agents_by_state"] == {"Waiting": 1}
    assert support["agents_by_status"] == {"Available": 1, "Logged Out": 1}
    assert support["answered_today"] == 0 and support["abandoned_today"] == 0
    assert support["service_level_pct"] is None             # no call answered or lost today
    sales = queues["sales"]
    assert sales["waiting"] == 0 and sales["longest_wait_s"] == 0
    assert sales["agents_logged_in"] == 0 and sales["agents_by_state"] == {}
    # The other tenant's identical queue is untouched.
    other = api.simulate_get("/v1/tenants/beta/wallboard", headers=bearer(
        issued["beta-supervisor"])).json
    assert {q["queue"]: q["waiting"] for q in other["queues"]} == {"sales": 0, "support": 0}


@pytest.mark.parametrize("who, status", [(None, 401), ("acme-agent", 403),
                                         ("beta-supervisor", 403)])
def test_figures_need_a_supervisor_token_of_the_tenant(api, issued, who, status) -> None:
    headers = bearer(issued[who]) if who else {}
    res = api.simulate_get(W, headers=headers)
    assert res.status_code == status, res.json
    assert "queues" not in res.json


def test_page_is_public_static_and_loads_nothing_from_elsewhere(api) -> None:
    res = api.simulate_get("/wallboard")
    assert res.status_code == 200
    assert res.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in res.headers["content-security-policy"]
    html = res.text
    assert "/wallboard" in html and "Authorization" in html
    assert "http://" not in html and "https://" not in html and "<link" not in html


def test_service_level_is_answered_in_threshold_over_answered_and_abandoned_unshort() -> None:
    from types import SimpleNamespace

    from cc_core.api.wallboard import abandoned, service_level_pct

    view: Any = SimpleNamespace(answered_today=8, abandoned_today=3, abandoned_short_today=1,
                                answered_in_sl_today=6)
    assert abandoned(view) == 2
    assert service_level_pct(view) == 60.0              # 6 / (8 + 2)
    # An ACD that does not count answers within the threshold: no SL, never a made-up one.
    assert service_level_pct(SimpleNamespace(answered_today=8, abandoned_today=3)) is None
    # Nothing answered or abandoned yet today (only short abandons): no SL yet.
    assert service_level_pct(SimpleNamespace(answered_today=0, abandoned_today=2,
                                             abandoned_short_today=2,
                                             answered_in_sl_today=0)) is None
