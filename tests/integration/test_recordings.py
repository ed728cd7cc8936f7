"""Recordings end to end: simulator, a real worker, the record consumer and the recordings
root; what a tenant can find afterwards (the index, the call record, the file) must agree.

The tenant is ``tests/data/tenants/rectest.yaml``: one number per policy (everything recorded
in stereo, nothing, on demand, voicemail).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from recordings import index
from recordings.check import check
from recordings.layout import Root
from recordings.wav import read_info
from records.consumer import CdrConsumer
from records.db import open_database
from records.migrate import migrate
from tests.conftest import wait_for
from tests.integration.cluster import FAILOVER_TTL_MS, REPO, START_TIMEOUT_S, Cluster, Observer
from tests.integration.cluster import ended as wait_ended

pytestmark = pytest.mark.slow

TENANT = REPO / "tests" / "data" / "tenants" / "rectest.yaml"
T = "rectest"
CALLER = "13311112222"


def _start(cluster: Cluster, monkeypatch: pytest.MonkeyPatch, root: Path) -> Observer:
    monkeypatch.setenv("CC_TENANTS", str(TENANT))
    obs = Observer(cluster.sim.port)
    for contact in ("s1", "n1"):
        assert obs.conn.api(f"sim_endpoint user/{contact}@default answer 100 2000"
                            ).startswith("+OK")
    assert obs.conn.api("sim_endpoint user/d1@default answer 100 6000").startswith("+OK")
    # The ACD offers calls to registered phones only (it asks sofia_contact at start).
    for agent in ("s1", "n1", "d1"):
        assert obs.conn.api(f"sim_register {agent}@default 3600").startswith("+OK")
    cluster.start_workers(1, ttl_ms=FAILOVER_TTL_MS, app="cc_core.app:build",
                          recordings={"root": str(root)})
    cluster.wait_owner(cluster.workers, timeout=START_TIMEOUT_S)
    return obs


@pytest.fixture
def recorded(cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
             ) -> Iterator[tuple[Cluster, Observer, Path]]:
    root = tmp_path / "recordings"
    obs = _start(cluster, monkeypatch, root)
    try:
        yield cluster, obs, root
    finally:
        obs.close()


def store(cluster: Cluster, tmp_path: Path) -> Any:
    db = open_database(str(tmp_path / "records.sqlite3"))
    migrate(db)
    CdrConsumer(cluster.r, db, "test").step()
    return db


def record_path(db: Any, uuid: str) -> str | None:
    with db.transaction(write=False) as tx:
        tx.execute("SELECT recording_path FROM call_records WHERE call_uuid = ?", (uuid,))
        row = tx.fetchone()
    assert row is not None, f"no call record for {uuid}"
    return row[0]


def test_a_queue_call_is_recorded_from_the_agents_answer(recorded, tmp_path: Path) -> None:
    cluster, obs, root = recorded
    uuid = obs.call(CALLER, "4003330001")
    summary = wait_ended(cluster, obs, T, uuid, timeout=20)
    assert summary["outcome"] == "answered_by_agent" and summary["agent"] == "s1"
    # The caller heard "this call may be recorded" before the hold music.
    assert ("playback", "tone_stream://%(200,0,500)") in obs.apps[uuid]
    db = store(cluster, tmp_path)
    with db, db.transaction(write=False) as tx:
        row = index.get(tx, T, uuid)
        assert index.get(tx, "someone-else", uuid) is None      # tenant-scoped lookups
        by_agent = index.search(tx, T, agent="s1")
        by_caller = index.search(tx, T, caller=CALLER)
    assert row is not None and row.started_by == "policy" and row.channels == 2
    assert [r.call_uuid for r in by_agent] == [uuid] == [r.call_uuid for r in by_caller]
    # <root>/<tenant>/<yyyy>/<mm>/<dd>/<uuid>.wav, the day in the tenant's time zone
    day = datetime.fromtimestamp(row.started_ms / 1000, ZoneInfo("Asia/Shanghai"))
    assert row.name == f"{T}/{day:%Y/%m/%d}/{uuid}.wav" == record_path(db, uuid)
    info = read_info(str(root / row.name))
    assert (info.channels, info.rate) == (2, 8000)
    # The agent talked 2 s (simulated) after answering: that is what the file holds.
    assert row.duration_ms is not None and 1500 <= info.ms <= 2600, info
    assert abs(info.ms - row.duration_ms) <= 20 and info.size == row.size
    report = check(db, Root(root), T)
    assert report.checked == 1 and report.ok, report.table()


def test_a_queue_that_records_nothing_leaves_no_recording(recorded, tmp_path: Path) -> None:
    cluster, obs, root = recorded
    uuid = obs.call(CALLER, "4003330002")
    assert wait_ended(cluster, obs, T, uuid, timeout=20)["outcome"] == "answered_by_agent"
    db = store(cluster, tmp_path)
    with db:
        assert record_path(db, uuid) is None
        with db.transaction(write=False) as tx:
            assert index.get(tx, T, uuid) is None
    assert not list(root.rglob("*.wav"))


def test_voicemail_is_recorded_from_the_answer(recorded, tmp_path: Path) -> None:
    cluster, obs, root = recorded
    uuid = obs.call(CALLER, "4003330004")
    summary = wait_ended(cluster, obs, T, uuid, timeout=30)
    assert summary["outcome"] == "voicemail"
    apps = [a for a, _ in obs.apps[uuid]]
    # record_session first (at the answer), then the notice, the prompt and the message.
    assert apps.index("record_session") < apps.index("record")
    db = store(cluster, tmp_path)
    with db:
        with db.transaction(write=False) as tx:
            row = index.get(tx, T, uuid)
        assert row is not None and row.name == record_path(db, uuid)
        assert row.channels == 1
        info = read_info(str(root / row.name))
        # notice + prompt (0.4 s) and the 5 s message: the whole call after the answer.
        assert info.ms >= 5000 and abs(info.ms - (row.duration_ms or 0)) <= 20
        assert check(db, Root(root), T).ok


def test_an_unwritable_root_leaves_calls_unrecorded_counted_and_logged(
        cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the recordings root should be")
    obs = _start(cluster, monkeypatch, blocked)
    try:
        uuid = obs.call(CALLER, "4003330001")
        summary = wait_ended(cluster, obs, T, uuid, timeout=20)
    finally:
        obs.close()
    assert summary["outcome"] == "answered_by_agent" and summary["recording"] == {}
    worker = cluster.workers[0]
    wait_for(lambda: worker.metric("cccore_recordings_failed_total", {"reason": "refused"})
             == 1, timeout=5, message="the failed recording counted")
    assert "recording did not start" in worker.log_tail() and uuid in worker.log_tail()
    db = store(cluster, tmp_path)
    with db:
        assert record_path(db, uuid) is None


def test_on_demand_through_the_api_starts_stops_and_serves_the_recording(
        recorded, tmp_path: Path) -> None:
    from falcon import testing

    from acd.store import Acd
    from cc_core import keys
    from cc_core.api.app import create_app
    from cc_core.api.tokens import Role, TokenStore
    from cc_core.tenants.loader import load_path
    from cc_core.tenants.store import TenantStore

    cluster, obs, root = recorded
    TenantStore(cluster.r).apply(load_path(TENANT))
    tokens = TokenStore(cluster.r)
    supervisor = {"Authorization": f"Bearer {tokens.create(T, Role.SUPERVISOR)[0]}"}
    other_agent = {"Authorization": f"Bearer {tokens.create(T, Role.AGENT, agent='s1')[0]}"}
    db_path = str(tmp_path / "records.sqlite3")
    api = testing.TestClient(create_app(acd=Acd(cluster.r), tokens=tokens, records=db_path,
                                        recordings_root=str(root)))
    uuid = obs.call(CALLER, "4003330003")
    wait_for(lambda: cluster.r.hget(keys.call(T, uuid), "state") == b"connected", timeout=15,
             message="the caller connected to the agent")
    base = f"/v1/tenants/{T}/calls/{uuid}/recording"
    assert not list(root.rglob("*.wav"))                # on demand: nothing until asked
    res = api.simulate_post(f"{base}/start", headers=other_agent)
    assert res.status_code == 403 and "acts for agent 's1' only" in res.json["message"]
    res = api.simulate_post(f"{base}/start", headers=supervisor)
    assert res.status_code == 202, res.json
    wait_for(lambda: list(root.rglob(f"{uuid}.wav")), timeout=10,
             message="the switch to open the recording")
    res = api.simulate_post(f"{base}/stop", headers=supervisor)
    assert res.status_code == 202, res.json
    summary = wait_ended(cluster, obs, T, uuid, timeout=20)
    assert summary["recording"]["by"] == "supervisor:" and summary["recording"]["stopped_ms"]
    db = store(cluster, tmp_path)
    with db:
        with db.transaction(write=False) as tx:
            row = index.get(tx, T, uuid)
        assert row is not None and row.name == record_path(db, uuid)
        # Stopped before the agent's 6 s of talk were over: the file is that much shorter.
        assert row.duration_ms is not None and 0 < row.duration_ms < 5500
        assert check(db, Root(root), T).ok
    res = api.simulate_get(f"/v1/tenants/{T}/recordings/{uuid}/audio", headers=supervisor)
    assert res.status_code == 200 and res.headers["content-type"] == "audio/wav"
    assert res.content == (root / row.name).read_bytes()
    listed = api.simulate_get(f"/v1/tenants/{T}/recordings", params={"caller": CALLER},
                              headers=supervisor)
    assert [r["call_uuid"] for r in listed.json["recordings"]] == [uuid]
    # Another queue's policy decides alone: no on-demand start there.
    other = obs.call(CALLER, "4003330002")
    wait_for(lambda: cluster.r.hget(keys.call(T, other), "state") == b"connected", timeout=15,
             message="the second caller connected")
    res = api.simulate_post(f"/v1/tenants/{T}/calls/{other}/recording/start", headers=supervisor)
    assert res.status_code == 409 and "does not record on demand" in res.json["message"]


@contextmanager
def small_disk(where: Path, size_kb: int) -> Iterator[Path]:
    """A tmpfs of ``size_kb`` (mount needs root; skipped where it is not allowed)."""
    where.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs",
                          str(where)], capture_output=True, text=True, check=False)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill: {res.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(disk: Path, leave: int) -> None:
    """Fill ``disk`` until at most ``leave`` bytes are free."""
    with open(disk / "filler", "wb") as f:
        while True:
            free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
            if free <= leave:
                return
            try:
                f.write(b"\0" * min(4096, free - leave))
                f.flush()
            except OSError:
                return


def test_a_full_disk_leaves_calls_unrecorded_and_a_filling_one_is_reported(
        cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with small_disk(tmp_path / "disk", 256) as disk:
        obs = _start(cluster, monkeypatch, disk)
        try:
            # Full: the switch cannot even write the WAV header.
            fill(disk, 0)
            full = obs.call(CALLER, "4003330001")
            assert wait_ended(cluster, obs, T, full, timeout=20)["outcome"] == \
                "answered_by_agent"
            worker = cluster.workers[0]
            wait_for(lambda: worker.metric("cccore_recordings_failed_total",
                                           {"reason": "refused"}) == 1,
                     timeout=5, message="the refused recording counted")
            # Filling: the header fits, 2 s of stereo audio does not.
            (disk / "filler").unlink()
            fill(disk, 8192)
            filling = obs.call(CALLER, "4003330001")
            summary = wait_ended(cluster, obs, T, filling, timeout=20)
        finally:
            obs.close()
        assert summary["outcome"] == "answered_by_agent" and summary["recording"]["started_ms"]
        db = store(cluster, tmp_path)
        with db:
            assert record_path(db, full) is None
            report = check(db, Root(disk), T)
    assert [p.call_uuid for p in report.problems] == [filling], report.table()
    assert "the switch reported" in report.problems[0].what
