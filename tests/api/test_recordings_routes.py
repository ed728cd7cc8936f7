"""Recordings through the API: a tenant finds and downloads its own recordings only; nothing a
request says is joined to the filesystem (traversal in the URL, a symlink out of the root in
the tree); on-demand start/stop needs a live call of the tenant."""

from __future__ import annotations

import uuid as uuidlib
from pathlib import Path
from typing import Any

import pytest
from falcon import testing

from cc_core.api.app import create_app
from recordings import index
from recordings.layout import relative_name
from recordings.wav import header
from records.db import open_database
from records.migrate import migrate
from tests.api.conftest import bearer

T0 = 1_796_000_000_000


def row(tenant: str, uuid: str) -> index.Recording:
    name = relative_name(tenant, uuid, T0, "Asia/Shanghai")
    return index.Recording(
        call_uuid=uuid, tenant=tenant, name=name, day=name.split("/", 1)[1][:10].replace(
            "/", "-"), agent="1001", caller="13311112222", dnis="4008001234", queue="support",
        channels=1, started_by="policy", started_ms=T0, stopped_ms=T0 + 1000,
        duration_ms=1000, size=16044, completion="success-silence", call_end_ms=T0 + 2000,
        stored_ms=T0 + 3000)


@pytest.fixture
def setup(acd: Any, tokens: Any, tmp_path: Path) -> dict[str, Any]:
    root = tmp_path / "rec"
    target = str(tmp_path / "records.sqlite3")
    ids = {k: str(uuidlib.uuid4()) for k in ("mine", "theirs", "linked", "lost")}
    rows = [row("acme", ids["mine"]), row("beta", ids["theirs"]), row("acme", ids["linked"]),
            row("acme", ids["lost"])]
    with open_database(target) as db:
        migrate(db)
        with db.transaction() as tx:
            index.store(tx, rows)
    audio = header(1, 8000, 8000) + b"\0" * 16000
    for r in rows[:2]:
        path = root / r.name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(audio)
    secret = tmp_path / "secret.wav"
    secret.write_bytes(b"RIFF-not-yours")
    (root / rows[2].name).symlink_to(secret)
    api = testing.TestClient(create_app(acd=acd, tokens=tokens, records=target,
                                        recordings_root=str(root)))
    return {"api": api, "ids": ids, "audio": audio}


def test_a_supervisor_downloads_the_tenants_recording(setup, issued) -> None:
    api, ids = setup["api"], setup["ids"]
    res = api.simulate_get(f"/v1/tenants/acme/recordings/{ids['mine']}/audio",
                           headers=bearer(issued["acme-supervisor"]))
    assert res.status_code == 200 and res.content == setup["audio"]
    assert res.headers["content-type"] == "audio/wav"
    listed = api.simulate_get("/v1/tenants/acme/recordings", params={"agent": "1001"},
                              headers=bearer(issued["acme-supervisor"])).json["recordings"]
    assert {r["call_uuid"] for r in listed} == {ids["mine"], ids["linked"], ids["lost"]}
    res = api.simulate_get(f"/v1/tenants/acme/recordings/{ids['mine']}/audio",
                           headers=bearer(issued["acme-1001"]))
    assert res.status_code == 403 and "supervisor" in res.json["message"]


def test_another_tenants_recording_is_not_found(setup, issued) -> None:
    api, ids = setup["api"], setup["ids"]
    for suffix in ("", "/audio"):
        res = api.simulate_get(f"/v1/tenants/acme/recordings/{ids['theirs']}{suffix}",
                               headers=bearer(issued["acme-supervisor"]))
        assert res.status_code == 404 and res.json["error"] == "recording_not_found"


@pytest.mark.parametrize("bad", [
    "..%2F..%2F..%2Fetc%2Fpasswd", "%2E%2E", "..", "acme%2F2026%2F11%2F30%2Fx.wav",
    "0c8296cc-d6cc-4ebf-82d6-baa8cb370996%00", "0c8296cc-d6cc-4ebf-82d6-baa8cb370996%0A"])
def test_path_traversal_in_the_url_finds_nothing(setup, issued, bad: str) -> None:
    res = setup["api"].simulate_get(f"/v1/tenants/acme/recordings/{bad}/audio",
                                    headers=bearer(issued["acme-supervisor"]))
    assert res.status_code == 404, res.text
    assert b"root:" not in res.content


def test_a_symlink_out_of_the_root_is_not_served(setup, issued) -> None:
    res = setup["api"].simulate_get(f"/v1/tenants/acme/recordings/{setup['ids']['linked']}/audio",
                                    headers=bearer(issued["acme-supervisor"]))
    assert res.status_code == 403 and res.json["error"] == "recording_outside_root"
    assert b"not-yours" not in res.content


def test_a_missing_file_says_how_to_find_the_others(setup, issued) -> None:
    res = setup["api"].simulate_get(f"/v1/tenants/acme/recordings/{setup['ids']['lost']}/audio",
                                    headers=bearer(issued["acme-supervisor"]))
    assert res.status_code == 404 and "cc-core recordings check" in res.json["message"]


def test_on_demand_needs_a_live_call_of_the_tenant(setup, issued) -> None:
    for action in ("start", "stop"):
        res = setup["api"].simulate_post(
            f"/v1/tenants/acme/calls/{setup['ids']['mine']}/recording/{action}",
            headers=bearer(issued["acme-1001"]))
        assert res.status_code == 404 and res.json["error"] == "call_not_found"
