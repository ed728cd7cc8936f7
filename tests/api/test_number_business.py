"""The number business through the HTTP API: the provider's staff stock and audit, a tenant
reserves, applies and sends its scans, the staff decide and sign; each tenant sees only its
own applications and contracts."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import bearer

PDF = b"%PDF-1.7\n%%EOF\n"


def _json(res: Any) -> Any:
    assert res.status_code == 200, res.text
    return res.json


def test_a_number_from_the_shelf_to_a_contract_through_the_api(api, issued, staff) -> None:
    acme = bearer(issued["acme-supervisor"])
    out = _json(api.simulate_post("/v1/provider/numbers/import", headers=bearer(staff),
                                  json={"numbers": ["4008-661-234", "4008661234", "400"]}))
    assert (out["accepted"], out["duplicate"], [r["value"] for r in out["invalid"]]) == (
        1, 1, ["400"])
    found = _json(api.simulate_get("/v1/provider/numbers", headers=bearer(staff),
                                   params={"pattern": "*1234", "carrier": "telecom"}))
    assert [n["number"] for n in found["numbers"]] == ["4008661234"]
    row = _json(api.simulate_post("/v1/tenants/acme/numbers/4008661234/reservation",
                                  headers=acme, json={"ttl_s": 3600}))
    assert (row["state"], row["holder"]) == ("reserved", "acme")
    res = api.simulate_post("/v1/tenants/beta/numbers/4008661234/reservation",
                            headers=bearer(issued["beta-supervisor"]), json={})
    assert res.status_code == 409 and "reserved by acme" in res.json["message"]
    app = _json(api.simulate_post("/v1/tenants/acme/applications", headers=acme, json={
        "number": "4008661234", "kind": "sole_trader", "name": "阿克米小吃"}))
    app_id = app["id"]
    url = f"/v1/tenants/acme/applications/{app_id}"
    res = api.simulate_put(f"{url}/materials/id_card", body=b"<html>not a scan</html>",
                           headers={**acme, "Content-Type": "application/pdf"})
    assert res.status_code == 400 and "claims to be pdf" in res.json["message"]
    for item in ("id_card", "business_licence", "application_form"):
        _json(api.simulate_put(f"{url}/materials/{item}", body=PDF,
                               headers={**acme, "Content-Type": "application/pdf"}))
    assert _json(api.simulate_post(f"{url}/submission", headers=acme))["state"] == "under_audit"
    # Another tenant does not learn the application exists.
    res = api.simulate_get(f"/v1/tenants/beta/applications/{app_id}",
                           headers=bearer(issued["beta-supervisor"]))
    assert res.status_code == 404
    for item in ("id_card", "business_licence", "application_form"):
        _json(api.simulate_post(f"/v1/provider/applications/{app_id}/reviews",
                                headers=bearer(staff), json={"item": item, "verdict": "accept"}))
    _json(api.simulate_post(f"/v1/provider/applications/{app_id}/decision",
                            headers=bearer(staff), json={"verdict": "accept"}))
    contract = _json(api.simulate_post(f"/v1/provider/applications/{app_id}/contract",
                                       headers=bearer(staff), json={
                                           "package": "growth", "esign_ref": "ES-1",
                                           "starts_on": "2026-12-01"}))
    assert contract["yearly_fee_fen"] == 120000
    mine = _json(api.simulate_get("/v1/tenants/acme/contracts", headers=acme))["contracts"]
    assert [c["number"] for c in mine] == ["4008661234"]
    theirs = _json(api.simulate_get("/v1/tenants/beta/contracts",
                                    headers=bearer(issued["beta-supervisor"])))["contracts"]
    assert theirs == []
    detail = _json(api.simulate_get("/v1/provider/numbers/4008661234", headers=bearer(staff)))
    assert [e["to_state"] for e in detail["history"]] == [
        "available", "reserved", "applied", "under_audit", "contracted"]


def test_an_illegal_move_is_a_conflict_that_names_the_allowed_moves(api, staff) -> None:
    _json(api.simulate_post("/v1/provider/numbers/import", headers=bearer(staff),
                            json={"numbers": ["4008661234"]}))
    res = api.simulate_post("/v1/provider/numbers/4008661234/moves", headers=bearer(staff),
                            json={"state": "active", "reason": "shortcut"})
    assert res.status_code == 409
    assert "from available it can become: reserved" in res.json["message"]
    res = api.simulate_get("/v1/provider/numbers/4008000000", headers=bearer(staff))
    assert res.status_code == 404


def test_a_scan_over_ten_megabytes_is_refused_before_it_is_read(api, issued) -> None:
    res = api.simulate_put("/v1/tenants/acme/applications/app-x/materials/id_card",
                           body=b"%PDF-" + b"0" * (10 * 1024 * 1024),
                           headers={**bearer(issued["acme-supervisor"]),
                                    "Content-Type": "application/pdf"})
    assert res.status_code == 400 and res.json["error"] == "body_too_large"


def test_suspension_moves_the_inventory_and_the_tenant_s_routing(api, staff, client) -> None:
    from cc_core.tenants.model import NumberStatus
    from cc_core.tenants.store import TenantStore
    from provider.lifecycle import NumberState

    # acme's applied number 4008001234 as an active number of the inventory.
    _json(api.simulate_post("/v1/provider/numbers/import", headers=bearer(staff),
                            json={"numbers": ["4008001234"]}))
    for state, tenant in ((NumberState.RESERVED, None), (NumberState.APPLIED, None),
                          (NumberState.UNDER_AUDIT, None), (NumberState.CONTRACTED, "acme"),
                          (NumberState.ACTIVE, None)):
        body = {"state": state.value, "reason": "setup", **({"tenant": tenant} if tenant else {})}
        _json(api.simulate_post("/v1/provider/numbers/4008001234/moves",
                                headers=bearer(staff), json=body))
    row = _json(api.simulate_post("/v1/provider/numbers/4008001234/suspension",
                                  headers=bearer(staff), json={"reason": "unpaid"}))
    assert row["state"] == "suspended"
    acme = TenantStore(client).applied_tenant("acme")
    assert acme.numbers["4008001234"].status is NumberStatus.SUSPENDED
    _json(api.simulate_post("/v1/provider/numbers/4008001234/resumption",
                            headers=bearer(staff), json={"reason": "paid"}))
    assert TenantStore(client).applied_tenant("acme").numbers[
        "4008001234"].status is NumberStatus.ACTIVE
