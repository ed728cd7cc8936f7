"""A tenant past its monthly call cap: the next caller hears the announcement in early media,
is refused (CALL_REJECTED) and never answered, and the call record says why."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.cluster import (
    FAILOVER_TTL_MS,
    START_TIMEOUT_S,
    Cluster,
    Observer,
    ended,
)

pytestmark = pytest.mark.slow

TENANT = """tenant: capped
entry: announce:hello
answer_mode: ivr
numbers: {"4008002222": {}}
prompts:
  hello: tone_stream://%(200,0,440);loops=1
  full: tone_stream://%(200,0,620);loops=1
caps: {monthly_calls: 2, announce: full}
"""


def test_calls_past_the_monthly_cap_are_refused_with_the_announcement(
        cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "capped.yaml"
    path.write_text(TENANT, encoding="utf-8")
    monkeypatch.setenv("CC_TENANTS", str(path))
    cluster.start_workers(1, ttl_ms=FAILOVER_TTL_MS, app="cc_core.app:build")
    cluster.wait_owner(cluster.workers, timeout=START_TIMEOUT_S)
    obs = Observer(cluster.sim.port)
    try:
        calls = [obs.call(f"1331111000{i}", "4008002222") for i in range(3)]
        outcomes = [ended(cluster, obs, "capped", u, 20) for u in calls]
        # Placed at once: which call the worker counted third is its own order.
        assert sorted(o["outcome"] for o in outcomes) == ["announced", "announced", "over_cap"]
        refused = next(u for u, o in zip(calls, outcomes, strict=True)
                       if o["outcome"] == "over_cap")
        assert obs.ended[refused] == "CALL_REJECTED"
        assert not obs.answered.get(refused)
        assert ("playback", "tone_stream://%(200,0,620);loops=1") in obs.apps[refused]
    finally:
        obs.close()
