"""The desk and supervisor routes against the real Acd on real Redis."""

from __future__ import annotations

import pytest

from tests.api.conftest import bearer, needs_acd, snapshot

pytestmark = needs_acd
A = "/v1/tenants/acme"


@pytest.fixture
def sup(issued):
    return bearer(issued["acme-supervisor"])


@pytest.fixture
def desk(issued):
    return bearer(issued["acme-1001"])


def test_login_break_available_logout(api, desk) -> None:
    res = api.simulate_post(f"{A}/agents/1001/login", json={}, headers=desk)
    assert res.status_code == 200, res.text
    assert (res.json["agent"], res.json["status"], res.json["state"]) == (
        "1001", "Available", "Waiting")
    res = api.simulate_post(f"{A}/agents/1001/break", json={"reason": "lunch"}, headers=desk)
    assert res.status_code == 200 and res.json["status"] == "On Break"
    res = api.simulate_put(f"{A}/agents/1001/status",
                           json={"status": "Available (On Demand)"}, headers=desk)
    assert res.status_code == 200 and res.json["status"] == "Available (On Demand)"
    res = api.simulate_get(f"{A}/agents/1001", headers=desk)
    assert res.json["status"] == "Available (On Demand)"
    res = api.simulate_post(f"{A}/agents/1001/logout", headers=desk)
    assert res.status_code == 200 and res.json["status"] == "Logged Out"


def test_login_on_demand_and_twice(api, client, desk) -> None:
    res = api.simulate_post(f"{A}/agents/1001/login", json={"on_demand": True}, headers=desk)
    assert res.json["status"] == "Available (On Demand)"
    before = snapshot(client)
    res = api.simulate_post(f"{A}/agents/1001/login", json={}, headers=desk)
    assert res.status_code == 409 and res.json["error"] == "already_logged_in"
    assert "log out first" in res.json["message"]
    assert snapshot(client) == before


def test_unknown_agent_and_queue_are_404_and_change_nothing(api, client, sup) -> None:
    before = snapshot(client)
    for method, path, body in (("POST", "agents/9999/login", {}),
                               ("GET", "agents/9999", None),
                               ("POST", "agents/9999/break", {"reason": "x"}),
                               ("PUT", "agents/9999/status", {"status": "Available"})):
        res = api.simulate_request(method, f"{A}/{path}", json=body, headers=sup)
        assert res.status_code == 404 and res.json["error"] == "unknown_agent", res.text
        assert "'9999'" in res.json["message"]
    for method, path, body in (("GET", "queues/nope", None), ("GET", "queues/nope/members", None),
                               ("GET", "queues/nope/callbacks", None),
                               ("POST", "queues/nope/callbacks", {"number": "13800138000"})):
        res = api.simulate_request(method, f"{A}/{path}", json=body, headers=sup)
        assert res.status_code == 404 and res.json["error"] == "unknown_queue", res.text
    assert snapshot(client) == before


def test_agent_list_and_the_other_tenant_untouched(api, issued, sup) -> None:
    api.simulate_post(f"{A}/agents/1002/login", json={}, headers=sup)
    res = api.simulate_get(f"{A}/agents", headers=sup)
    got = {a["agent"]: a["status"] for a in res.json["agents"]}
    assert got == {"1001": "Logged Out", "1002": "Available"}
    res = api.simulate_get("/v1/tenants/beta/agents", headers=bearer(issued["beta-supervisor"]))
    assert {a["status"] for a in res.json["agents"]} == {"Logged Out"}


def test_queue_view_list_members_and_callbacks(api, acd, sup) -> None:
    api.simulate_post(f"{A}/agents/1002/login", json={}, headers=sup)
    acd.enqueue("acme", "support", "call-1", node="fs1", caller="13900000001")
    res = api.simulate_post(f"{A}/queues/support/callbacks",
                            json={"number": "13800138000", "request_id": "req-00000001"},
                            headers=sup)
    assert res.status_code == 200, res.text
    assert res.json == {"call_uuid": "cb-req-00000001", "queue": "support",
                        "number": "13800138000", "position": 2, "waiting": 2}
    again = api.simulate_post(f"{A}/queues/support/callbacks",
                              json={"number": "13800138000", "request_id": "req-00000001"},
                              headers=sup)
    assert again.json["waiting"] == 2                       # queued once
    res = api.simulate_get(f"{A}/queues/support", headers=sup)
    q = res.json
    assert (q["queue"], q["strategy"], q["waiting"]) == ("support", "longest-idle-agent", 2)
    assert [(m["call_uuid"], m["position"]) for m in q["members"]] == [
        ("call-1", 1), ("cb-req-00000001", 2)]
    assert [(a["agent"], a["level"], a["position"], a["status"]) for a in q["agents"]] == [
        ("1001", 1, 1, "Logged Out"), ("1002", 1, 2, "Available")]
    assert q["agents_available"] == 1
    res = api.simulate_get(f"{A}/queues", headers=sup)
    assert {x["queue"]: x["waiting"] for x in res.json["queues"]} == {"sales": 0, "support": 2}
    res = api.simulate_get(f"{A}/queues/support/members", headers=sup)
    assert [m["caller"] for m in res.json["members"]] == ["13900000001", "13800138000"]
    res = api.simulate_get(f"{A}/queues/support/callbacks", headers=sup)
    assert [m["callback"] for m in res.json["callbacks"]] == ["13800138000"]
    # Tenant beta's queue of the same name saw none of it.
    assert acd.queue_view("beta", "support").waiting == 0
