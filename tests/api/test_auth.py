"""Every route of the app, found by walking the app itself (a route added later is checked
too): no token -> 401, another tenant's token -> 403, and nothing in Redis changes; the
provider's back office takes only the provider's staff tokens."""

from __future__ import annotations

from typing import Any

import falcon.inspect
import pytest

from cc_core.api.app import OPENAPI_PATH, create_app
from cc_core.api.auth import is_public
from cc_core.api.tokens import TokenStore
from cc_core.api.wallboard import PAGE_PATH
from tests.api.conftest import bearer, needs_acd, snapshot

# The wallboard page is static (no figures in it); its figures need a supervisor token.
PUBLIC = {OPENAPI_PATH, PAGE_PATH}
# A body that validates, per method of each resource (so a refusal is not a 422).
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("AgentLogin", "POST"): {"on_demand": False},
    ("AgentLogout", "POST"): {},
    ("AgentStatus", "PUT"): {"status": "Available"},
    ("AgentBreak", "POST"): {"reason": "lunch"},
    ("Callbacks", "POST"): {"number": "13800138000"},
    ("ProviderImport", "POST"): {"numbers": ["4008661234"]},
    ("ProviderMoves", "POST"): {"state": "reserved", "reason": "test"},
    ("ProviderSuspension", "POST"): {"reason": "unpaid"},
    ("ProviderActivation", "POST"): {},
    ("ProviderResumption", "POST"): {"reason": "paid"},
    ("ProviderCancellation", "POST"): {"reason": "closed"},
    ("ProviderReview", "POST"): {"item": "id_card", "verdict": "accept"},
    ("ProviderDecision", "POST"): {"verdict": "accept"},
    ("ProviderContract", "POST"): {"package": "micro", "esign_ref": "e-1",
                                   "starts_on": "2026-12-01"},
    ("TenantReservation", "POST"): {},
    ("TenantApplications", "POST"): {"number": "4008661234", "kind": "enterprise",
                                     "name": "x"},
}


def _routes() -> list[tuple[str, str, str, Any]]:
    app = create_app(acd=None, tokens=TokenStore(None))
    out = []
    for route in falcon.inspect.inspect_routes(app):
        for method in route.methods:
            if not method.internal:
                out.append((route.path, method.method, route.class_name, route))
    return out


ROUTES = _routes()
BACK_OFFICE = [r for r in ROUTES if r[0].startswith("/v1/provider/")]
PRIVATE = [r for r in ROUTES if r[0] not in PUBLIC and r not in BACK_OFFICE]


def _url(path: str, tenant: str) -> str:
    return (path.replace("{tenant}", tenant).replace("{agent}", "1001")
            .replace("{queue}", "support").replace("{number}", "4008661234")
            .replace("{app_id}", "app-000000000000").replace("{item}", "id_card"))


def test_the_walk_finds_the_routes_and_only_the_openapi_document_and_wallboard_are_public(
        ) -> None:
    assert len(PRIVATE) >= 11 and len(BACK_OFFICE) >= 8
    assert {p for p, *_ in ROUTES} - {p for p, *_ in PRIVATE + BACK_OFFICE} == PUBLIC
    app = create_app(acd=None, tokens=TokenStore(None))
    for route in falcon.inspect.inspect_routes(app):
        resource = app._router.find(_url(route.path, "acme"))[0]
        assert is_public(resource) == (route.path in PUBLIC), route.path
        in_back_office = bool(getattr(resource, "provider", False))
        assert in_back_office == route.path.startswith("/v1/provider/"), route.path
        assert route.path in PUBLIC or in_back_office or "{tenant}" in route.path, route.path


def _call(api, method: str, url: str, token: str | None, body: Any) -> Any:
    headers = bearer(token) if token else {}
    return api.simulate_request(method, url, headers=headers,
                                json=body if method in ("POST", "PUT") else None)


@pytest.mark.parametrize(("path", "method", "cls", "route"), PRIVATE,
                         ids=[f"{m} {p}" for p, m, *_ in PRIVATE])
def test_every_route_refuses_other_tenants_and_missing_tokens(
        api, client, issued, path, method, cls, route) -> None:
    body = BODIES.get((cls, method), {})
    before = snapshot(client)
    for token in (None, "", "cct.acme.not-a-token", issued["beta-supervisor"].replace(
            "cct.beta.", "cct.acme.")):
        res = _call(api, method, _url(path, "acme"), token, body)
        assert res.status_code == 401, (token, res.json)
        assert res.json["error"] == "unauthorized" and "token" in res.json["message"]
        assert res.headers["WWW-Authenticate"] == "Bearer"
    for mine, theirs in (("acme", "beta"), ("beta", "acme")):
        for role in ("supervisor", "agent", "1001"):
            for sent in (body, {"junk": [1, 2]}):   # a bad body is still a 403, not a 422
                res = _call(api, method, _url(path, theirs), issued[f"{mine}-{role}"], sent)
                assert res.status_code == 403, (mine, role, res.json)
                assert res.json["error"] == "forbidden"
                assert f"belongs to tenant {mine!r}, not {theirs!r}" in res.json["message"]
    assert snapshot(client) == before


def test_an_agent_token_cannot_use_supervisor_routes_nor_act_for_another_agent(
        api, client, issued) -> None:
    before = snapshot(client)
    res = api.simulate_get("/v1/tenants/acme/agents", headers=bearer(issued["acme-agent"]))
    assert res.status_code == 403 and "needs a supervisor token" in res.json["message"]
    res = api.simulate_post("/v1/tenants/acme/agents/1002/login", json={},
                            headers=bearer(issued["acme-1001"]))
    assert res.status_code == 403 and "acts for agent '1001' only" in res.json["message"]
    assert snapshot(client) == before


def test_unknown_routes_and_methods_answer_in_the_error_shape(api, issued) -> None:
    res = api.simulate_get("/v1/nowhere", headers=bearer(issued["acme-supervisor"]))
    assert res.status_code == 404 and res.json["error"] == "not_found"
    res = api.simulate_delete("/v1/tenants/acme/agents", headers=bearer(
        issued["acme-supervisor"]))
    assert res.status_code == 405 and res.json["error"] == "method_not_allowed"


def test_the_openapi_document_needs_no_token(api) -> None:
    res = api.simulate_get(OPENAPI_PATH)
    assert res.status_code == 200 and res.json["components"]["securitySchemes"]["bearer"]


@needs_acd
@pytest.mark.parametrize(("path", "method", "cls", "route"), PRIVATE,
                         ids=[f"{m} {p}" for p, m, *_ in PRIVATE])
def test_every_route_serves_its_own_tenants_supervisor(api, issued, path, method, cls,
                                                       route) -> None:
    res = _call(api, method, _url(path, "acme"), issued["acme-supervisor"],
                BODIES.get((cls, method), {}))
    assert res.status_code < 400 or res.json["error"] not in ("unauthorized", "forbidden"), \
        res.json
    assert res.status_code < 500, res.text


@pytest.mark.parametrize(("path", "method", "cls", "route"), BACK_OFFICE,
                         ids=[f"{m} {p}" for p, m, *_ in BACK_OFFICE])
def test_the_back_office_takes_only_staff_tokens(api, client, issued, staff, path, method,
                                                 cls, route) -> None:
    body = BODIES.get((cls, method), {})
    before = snapshot(client)
    assert _call(api, method, _url(path, "acme"), None, body).status_code == 401
    for token in ("acme-supervisor", "beta-agent", "acme-1001"):
        res = _call(api, method, _url(path, "acme"), issued[token], body)
        assert res.status_code == 403, (token, res.json)
        assert "the provider's back office: it needs a staff token" in res.json["message"]
    assert snapshot(client) == before
    res = _call(api, method, _url(path, "acme"), staff, body)
    assert res.status_code < 500, res.text
    assert res.status_code < 400 or res.json["error"] not in ("unauthorized", "forbidden")


def test_a_staff_token_serves_every_tenant(api, staff) -> None:
    for tenant in ("acme", "beta"):
        res = api.simulate_get(f"/v1/tenants/{tenant}/numbers", headers=bearer(staff))
        assert res.status_code == 200, res.json


@needs_acd
@pytest.mark.parametrize(("path", "method", "cls", "route"), PRIVATE,
                         ids=[f"{m} {p}" for p, m, *_ in PRIVATE])
def test_every_tenant_route_serves_the_provider_s_staff(api, staff, path, method, cls,
                                                        route) -> None:
    res = _call(api, method, _url(path, "acme"), staff, BODIES.get((cls, method), {}))
    assert res.status_code < 400 or res.json["error"] not in ("unauthorized", "forbidden"), \
        res.json
    assert res.status_code < 500, res.text
