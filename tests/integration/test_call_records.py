"""Call records end to end: simulator, a worker whose own greenlet stores the records
(``records.consume_in_worker``), a SQLite store; what is stored is one row per call."""

from __future__ import annotations

from pathlib import Path

import pytest

from records.db import open_database
from tests.conftest import wait_for
from tests.integration.cluster import (
    FAILOVER_TTL_MS,
    START_TIMEOUT_S,
    Cluster,
    Observer,
    greeting_tenant,
)
from tests.integration.cluster import ended as wait_ended

pytestmark = pytest.mark.slow

GREETING = "tone_stream://%(300,0,440);loops=1"


def _records(target: str) -> list[tuple]:
    if not Path(target).exists():
        return []
    with open_database(target) as db, db.transaction(write=False) as tx:
        try:
            return tx.execute("SELECT call_uuid, tenant, disposition, caller, dnis, billsec "
                              "FROM call_records ORDER BY call_uuid").fetchall()
        except Exception:  # noqa: BLE001 - not migrated yet: nothing stored
            return []


def test_a_worker_with_the_consumer_on_stores_each_call_once(
        cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CC_TENANTS", str(greeting_tenant(tmp_path, GREETING)))
    target = str(tmp_path / "records.sqlite3")
    cluster.start_workers(1, ttl_ms=FAILOVER_TTL_MS, app="cc_core.app:build",
                          records={"db": target, "consume_in_worker": True})
    cluster.wait_owner(cluster.workers, timeout=START_TIMEOUT_S)
    obs = Observer(cluster.sim.port)
    try:
        uuids = sorted(obs.call(f"1331111222{i}") for i in range(3))
        for uuid in uuids:
            wait_ended(cluster, obs, "default", uuid, timeout=20)
        wait_for(lambda: len(_records(target)) == 3, timeout=20,
                 message="the worker's consumer to store the three calls")
    finally:
        obs.close()
    rows = _records(target)
    assert [r[0] for r in rows] == uuids
    assert {(r[1], r[2], r[4]) for r in rows} == {("default", "ivr_completed", "4008001234")}
    assert sorted(r[3] for r in rows) == [f"1331111222{i}" for i in range(3)]
