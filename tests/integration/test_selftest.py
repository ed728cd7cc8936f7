"""`cc-core selftest` (拨测): a loopback call walks the menus and reports where it arrived."""

from __future__ import annotations

import subprocess
import sys

import pytest
import redis

from cc_core.tenants.loader import load_path
from cc_core.tenants.store import TenantStore
from tests.integration.cluster import (
    FAILOVER_TTL_MS,
    REPO,
    SIM_PASSWORD,
    START_TIMEOUT_S,
    Cluster,
)

pytestmark = pytest.mark.slow

TENANT = REPO / "tests" / "data" / "tenants" / "flowtest.yaml"


def _selftest(cluster: Cluster, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cc_core.cli", "selftest", *args,
         "--node", f"fs1=127.0.0.1:{cluster.sim.port}", "--password", SIM_PASSWORD,
         "--redis-url", cluster.redis_url], capture_output=True, text=True, timeout=timeout,
        cwd=REPO)


@pytest.fixture
def applied(cluster: Cluster) -> Cluster:
    TenantStore(redis.Redis.from_url(cluster.redis_url)).apply(load_path(TENANT))
    return cluster


def test_selftest_walks_a_three_level_menu_to_its_queue(applied: Cluster) -> None:
    applied.start_workers(1, ttl_ms=FAILOVER_TTL_MS, app="cc_core.app:build")
    applied.wait_owner(applied.workers, timeout=START_TIMEOUT_S)
    res = _selftest(applied, "4001110001", "--dtmf", "1,2,4", "--caller", "13311112222")
    out = res.stdout
    assert res.returncode == 0, out + res.stderr
    assert "expecting queue:support" in out
    assert out.count("prompt (play_and_get_digits)") == 3
    assert "path: menu:main > key:1 > menu:level2 > key:2 > menu:level3 > key:4 > queue:support" \
        in out
    assert "result: reached queue:support" in out


def test_selftest_of_a_rejected_caller_and_of_a_dead_core(applied: Cluster) -> None:
    applied.start_workers(1, ttl_ms=FAILOVER_TTL_MS, app="cc_core.app:build")
    applied.wait_owner(applied.workers, timeout=START_TIMEOUT_S)
    res = _selftest(applied, "4001110001", "--caller", "13900000666")   # blacklisted
    assert res.returncode == 0, res.stdout + res.stderr
    assert "expecting rejected as blacklisted" in res.stdout and "CALL_REJECTED" in res.stdout
    res = _selftest(applied, "4009999999")                               # not a number we own
    assert res.returncode == 0, res.stdout + res.stderr
    assert "result: unallocated (UNALLOCATED_NUMBER)" in res.stdout
    for w in applied.workers:
        w.stop()
    res = _selftest(applied, "4001110001", "--dtmf", "9", "--timeout", "3")
    assert res.returncode == 1, "no core took the call: the test call fails"
    assert "no end within 3s" in res.stdout
