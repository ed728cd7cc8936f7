"""`cc-core loadtest --target sim`: it places the calls it says against a running core, within
its concurrency bound, and prints the summary table."""

from __future__ import annotations

import re
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


def _cc(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cc_core.cli", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO)


@pytest.mark.slow
def test_sim_target_places_its_calls_within_the_concurrency_bound(cluster: Cluster) -> None:
    TenantStore(redis.Redis.from_url(cluster.redis_url)).apply(
        load_path(REPO / "examples" / "tenants"))
    cluster.start_workers(1, ttl_ms=FAILOVER_TTL_MS, app="cc_core.app:build")
    cluster.wait_owner(cluster.workers, timeout=START_TIMEOUT_S)
    res = _cc("loadtest", "--target", "sim", "--node", f"127.0.0.1:{cluster.sim.port}",
              "--password", SIM_PASSWORD, "--rate", "20", "--duration", "2", "--mix",
              "announce", "--concurrency", "4")
    assert res.returncode == 0, res.stdout + res.stderr
    table = dict(re.split(r"\s{2,}", ln.strip(), maxsplit=1) for ln in res.stdout.splitlines()
                 if re.match(r"^\S.*\s{2,}\S", ln) and not ln.startswith("["))
    assert table["offered"] == "40" and table["answered"] == "40" and table["failed"] == "0"
    ups = [int(m.group(1)) for m in re.finditer(r" up +(\d+)", res.stdout)]
    assert ups and max(ups) <= 4
