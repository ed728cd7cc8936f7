"""Bad bodies: 422 validation_error with pydantic's details, and nothing changes."""

from __future__ import annotations

import pytest

from tests.api.conftest import bearer, snapshot


@pytest.mark.parametrize(("method", "path", "body", "loc"), [
    ("PUT", "agents/1001/status", {"status": "On Break"}, ["status"]),
    ("PUT", "agents/1001/status", {}, ["status"]),
    ("POST", "agents/1001/break", {"reason": "a\nb"}, ["reason"]),
    ("POST", "agents/1001/break", {"reason": "x" * 101}, ["reason"]),
    ("POST", "agents/1001/login", {"on_demand": "perhaps"}, ["on_demand"]),
    ("POST", "agents/1001/login", {"colour": 1}, ["colour"]),
    ("POST", "queues/support/callbacks", {"number": "12ab"}, ["number"]),
    ("POST", "queues/support/callbacks", {"number": "138", "request_id": "a b"},
     ["request_id"]),
])
def test_bad_body_is_a_422_naming_the_field(api, client, issued, method, path, body,
                                            loc) -> None:
    before = snapshot(client)
    res = api.simulate_request(method, f"/v1/tenants/acme/{path}", json=body,
                               headers=bearer(issued["acme-supervisor"]))
    assert res.status_code == 422, res.text
    assert res.json["error"] == "validation_error"
    assert [d["loc"] for d in res.json["details"]] == [loc]
    assert ".".join(loc) in res.json["message"]
    assert snapshot(client) == before


def test_body_that_is_not_json(api, client, issued) -> None:
    before = snapshot(client)
    res = api.simulate_post("/v1/tenants/acme/agents/1001/break", body=b"{nope",
                            headers={**bearer(issued["acme-supervisor"]),
                                     "Content-Type": "application/json"})
    assert res.status_code == 400 and res.json["error"] == "invalid_json"
    res = api.simulate_post("/v1/tenants/acme/agents/1001/break", body=b"x" * 70_000,
                            headers={**bearer(issued["acme-supervisor"]),
                                     "Content-Type": "application/json"})
    assert res.status_code == 400 and res.json["error"] == "body_too_large"
    assert snapshot(client) == before
