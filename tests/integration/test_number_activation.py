"""A number from the inventory to a tested, active number that takes calls (issue 12): the
provider's `cc-core numbers` commands against the simulator, a worker and real Redis, on the
record store in a SQLite file."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from cc_core.tenants.loader import load_path
from cc_core.tenants.model import NumberStatus
from cc_core.tenants.store import TenantStore
from provider.activation import reports
from provider.inventory import get, history
from provider.lifecycle import NumberState
from records.db import open_database
from tests.integration.cluster import (
    FAILOVER_TTL_MS,
    REPO,
    SIM_PASSWORD,
    START_TIMEOUT_S,
    Cluster,
    Observer,
    ended,
)

pytestmark = pytest.mark.slow

TENANT = REPO / "tests" / "data" / "tenants" / "flowtest.yaml"
NEW = "4008660001"


def _cc(cluster: Cluster, db: Path, *args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cc_core.cli", "numbers", *args, "--db", str(db)],
                          capture_output=True, text=True, timeout=timeout, cwd=REPO,
                          env={"CC_REDIS_URL": cluster.redis_url, "PATH": "/usr/bin:/bin"})


def _cc_app(cluster: Cluster, db: Path, *args: str) -> str:
    res = subprocess.run([sys.executable, "-m", "cc_core.cli", "application", *args, "--db",
                          str(db)], capture_output=True, text=True, timeout=60, cwd=REPO,
                         env={"CC_REDIS_URL": cluster.redis_url, "PATH": "/usr/bin:/bin"})
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


def _contracted(cluster: Cluster, tmp_path: Path) -> Path:
    """The README's walk-through: inventory, reservation, application, audit, contract."""
    TenantStore(redis.Redis.from_url(cluster.redis_url)).apply(load_path(TENANT))
    db = tmp_path / "records.sqlite3"
    csv = tmp_path / "numbers.csv"
    csv.write_text(f"number\n{NEW}\n", encoding="utf-8")
    assert _cc(cluster, db, "import", str(csv)).returncode == 0
    assert _cc(cluster, db, "reserve", NEW, "--holder", "flowtest").returncode == 0
    out = _cc_app(cluster, db, "open", NEW, "--holder", "flowtest", "--tenant", "flowtest",
                  "--kind", "sole_trader", "--name", "流测餐馆")
    app_id = out.split(":")[0]
    scan = tmp_path / "scan.pdf"
    scan.write_bytes(b"%PDF-1.7\n%%EOF\n")
    root = str(tmp_path / "materials")
    for item in ("id_card", "business_licence", "application_form"):
        _cc_app(cluster, db, "material", app_id, item, str(scan), "--root", root)
    _cc_app(cluster, db, "submit", app_id, "--by", "flowtest")
    for item in ("id_card", "business_licence", "application_form"):
        _cc_app(cluster, db, "review", app_id, item, "accept", "--by", "auditor-1")
    _cc_app(cluster, db, "decide", app_id, "accept", "--by", "auditor-1")
    out = _cc_app(cluster, db, "sign", app_id, "--package", "growth", "--esign-ref", "esign-1",
                  "--starts-on", "2026-12-01", "--by", "sales-1")
    assert "1200.00 元/year" in out
    return db


def _activate(cluster: Cluster, db: Path, timeout: str) -> subprocess.CompletedProcess:
    return _cc(cluster, db, "activate", NEW, "--by", "staff-1", "--node",
               f"fs1=127.0.0.1:{cluster.sim.port}", "--password", SIM_PASSWORD,
               "--timeout", timeout)


def _routing(cluster: Cluster) -> NumberStatus | None:
    tenant = TenantStore(redis.Redis.from_url(cluster.redis_url)).applied_tenant("flowtest")
    cfg = tenant.numbers.get(NEW)
    return None if cfg is None else cfg.status


def test_a_contracted_number_is_activated_by_a_passing_test_call_then_takes_calls(
        cluster: Cluster, tmp_path: Path) -> None:
    db = _contracted(cluster, tmp_path)
    cluster.start_workers(1, ttl_ms=FAILOVER_TTL_MS, app="cc_core.app:build")
    cluster.wait_owner(cluster.workers, timeout=START_TIMEOUT_S)
    res = _activate(cluster, db, "30")
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"{NEW} is active for flowtest" in res.stdout
    assert "result: reached menu:main" in res.stdout or "result: reached" in res.stdout
    with open_database(str(db)) as store:
        assert get(store, NEW).state is NumberState.ACTIVE
        (at, passed, report), = reports(store, NEW)
        assert passed and "expecting" in report
        assert history(store, NEW)[-1].reason == "activated: the test call (拨测) passed"
    assert _routing(cluster) is NumberStatus.ACTIVE
    obs = Observer(cluster.sim.port)
    try:
        uuid = obs.call("13311112222", NEW)
        assert ended(cluster, obs, "flowtest", uuid, 30)["path"][0] == "menu:main"
        # Suspended for an unpaid bill: the next caller is never answered.
        res = _cc(cluster, db, "suspend", NEW, "--by", "billing", "--reason", "unpaid")
        assert res.returncode == 0, res.stderr
        assert _routing(cluster) is NumberStatus.SUSPENDED
        time.sleep(1.1)      # workers look for a new configuration version every second
        uuid = obs.call("13311112222", NEW)
        summary = ended(cluster, obs, "flowtest", uuid, 30)
        assert not summary["answered"]
    finally:
        obs.close()


def test_a_failing_test_call_leaves_the_number_contracted_and_not_in_service(
        cluster: Cluster, tmp_path: Path) -> None:
    db = _contracted(cluster, tmp_path)
    res = _activate(cluster, db, "4")          # no worker runs: the test call is never taken
    assert res.returncode == 1, res.stdout + res.stderr
    assert f"{NEW} stays contracted for flowtest: the test call failed" in res.stdout
    with open_database(str(db)) as store:
        assert get(store, NEW).state is NumberState.CONTRACTED
        (_, passed, report), = reports(store, NEW)
        assert not passed and "no end within" in report
    assert _routing(cluster) is NumberStatus.RESERVED


def test_activation_before_the_contract_is_refused(cluster: Cluster, tmp_path: Path) -> None:
    TenantStore(redis.Redis.from_url(cluster.redis_url)).apply(load_path(TENANT))
    db = tmp_path / "records.sqlite3"
    csv = tmp_path / "numbers.csv"
    csv.write_text(f"{NEW}\n", encoding="utf-8")
    _cc(cluster, db, "import", str(csv))
    res = _activate(cluster, db, "4")
    assert res.returncode == 2
    assert "is available: activation needs an accepted audit and a signed contract" in res.stderr
    assert _routing(cluster) is None


def test_the_api_activates_a_contracted_number_with_its_test_call(
        cluster: Cluster, tmp_path: Path) -> None:
    from falcon import testing

    from acd.store import Acd
    from cc_core.api.app import create_app, selftest_dial
    from cc_core.api.tokens import PROVIDER, Role, TokenStore
    from cc_core.config import NodeConfig

    db = _contracted(cluster, tmp_path)
    cluster.start_workers(1, ttl_ms=FAILOVER_TTL_MS, app="cc_core.app:build")
    cluster.wait_owner(cluster.workers, timeout=START_TIMEOUT_S)
    r = redis.Redis.from_url(cluster.redis_url)
    node = NodeConfig(name="fs1", port=cluster.sim.port, password=SIM_PASSWORD)
    api = testing.TestClient(create_app(acd=Acd(r), tokens=TokenStore(r), records=str(db),
                                        dial=selftest_dial(node, r)))
    staff = TokenStore(r).create(PROVIDER, Role.STAFF)[0]
    res = api.simulate_post(f"/v1/provider/numbers/{NEW}/activation", json={},
                            headers={"Authorization": f"Bearer {staff}"})
    assert res.status_code == 200, res.text
    assert res.json["active"] is True and "result: reached" in res.json["report"]
    with open_database(str(db)) as store:
        assert get(store, NEW).state is NumberState.ACTIVE
    assert _routing(cluster) is NumberStatus.ACTIVE
