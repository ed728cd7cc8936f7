"""Call quality end to end: the simulator's RTP statistics at hang-up (its far ends' loss and
jitter set by ``sim_rtp``) reach the call record and the worker's per node and tenant
histograms."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.cluster import (
    FAILOVER_TTL_MS,
    NODE,
    START_TIMEOUT_S,
    Cluster,
    Observer,
    ended,
    greeting_tenant,
    running_cluster,
)

pytestmark = pytest.mark.slow

# One second of media: 50 packets of 20 ms from the caller.
GREETING = "tone_stream://%(1000,0,440);loops=1"
T = "default"


@pytest.fixture
def quality_cluster(tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
                    ) -> Iterator[tuple[Cluster, Observer]]:
    monkeypatch.setenv("CC_TENANTS", str(greeting_tenant(tmp_path, GREETING)))
    for cluster in running_cluster(tmp_path, redis_url, "--rtp-jitter-ms", "3"):
        cluster.start_workers(1, ttl_ms=FAILOVER_TTL_MS, app="cc_core.app:build")
        cluster.wait_owner(cluster.workers, timeout=START_TIMEOUT_S)
        obs = Observer(cluster.sim.port)
        try:
            yield cluster, obs
        finally:
            obs.close()


def _hist(cluster: Cluster, name: str, suffix: str, **labels: str) -> float | None:
    return cluster.workers[0].metric(f"cccore_call_{name}_{suffix}",
                                     {"node": NODE, "tenant": T, **labels})


def test_the_callers_audio_quality_lands_on_the_record_and_the_histograms(
        quality_cluster: tuple[Cluster, Observer]) -> None:
    cluster, obs = quality_cluster
    clean = obs.call("13800138000")
    clean_summary = ended(cluster, obs, T, clean, timeout=20)
    assert obs.conn.api("sim_rtp default loss=0.1 jitter_ms=12").startswith("+OK")
    lossy = obs.call("13800138001")
    lossy_summary = ended(cluster, obs, T, lossy, timeout=20)

    # sqrt of the variance's midpoint: the jitter the far end was given, in ms
    assert (clean_summary["mos"], clean_summary["jitter_ms"], clean_summary["packet_loss"]) \
        == (4.5, 3.0, 0.0)
    assert lossy_summary["jitter_ms"] == 12.0
    assert lossy_summary["packet_loss"] == pytest.approx(0.1, abs=0.02)
    assert 4.0 < lossy_summary["mos"] < 4.5

    assert _hist(cluster, "mos", "count") == 2
    assert _hist(cluster, "mos", "bucket", le="4.4") == 1           # the lossy one
    assert _hist(cluster, "jitter_seconds", "bucket", le="0.005") == 1
    assert _hist(cluster, "jitter_seconds", "bucket", le="0.02") == 2
    assert _hist(cluster, "packet_loss_ratio", "bucket", le="0.001") == 1
    assert _hist(cluster, "packet_loss_ratio", "bucket", le="0.2") == 2


def test_a_caller_who_sends_no_audio_gets_no_score(
        quality_cluster: tuple[Cluster, Observer]) -> None:
    # As the captures' SIPp callers: FreeSWITCH still writes MOS 4.50, over no packet.
    cluster, obs = quality_cluster
    assert obs.conn.api("sim_rtp default sending=0").startswith("+OK")
    uuid = obs.call("13800138002")
    summary = ended(cluster, obs, T, uuid, timeout=20)
    assert (summary["mos"], summary["jitter_ms"], summary["packet_loss"]) == (None, None, None)
    assert not _hist(cluster, "mos", "count")
