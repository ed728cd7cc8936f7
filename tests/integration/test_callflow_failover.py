"""The call flow survives losing the worker that owns the node.

A caller mid-greeting and callers who arrive while no worker owns the node are all answered,
greeted and hung up cleanly by the standby after it takes over (``reconcile`` from
``show channels as json``): a dead worker loses no call.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.conftest import wait_for
from tests.integration.cluster import (
    FAILOVER_TTL_MS,
    START_TIMEOUT_S,
    Cluster,
    Observer,
    greeting_tenant,
)

pytestmark = pytest.mark.slow

GREETING = "tone_stream://%(3000,0,440);loops=1"


def test_calls_are_finished_by_the_standby_after_the_owner_dies(
        cluster: Cluster, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CC_TENANTS", str(greeting_tenant(tmp_path, GREETING)))
    workers = cluster.start_workers(2, ttl_ms=FAILOVER_TTL_MS, app="cc_core.app:build")
    owner = cluster.wait_owner(workers, timeout=START_TIMEOUT_S)
    standby = next(w for w in workers if w is not owner)
    obs = Observer(cluster.sim.port)
    try:
        mid_greeting = obs.call("13800000001")
        wait_for(lambda: mid_greeting in obs.answered, timeout=5, message="the first answer")

        os.kill(owner.proc.pid, signal.SIGKILL)
        # Nobody consumes the node's events now: these callers wait, parked and unanswered.
        orphans = [obs.call("13800000002"), obs.call("13800000003")]
        assert not any(u in obs.answered for u in orphans)

        cluster.wait_owner([standby], timeout=FAILOVER_TTL_MS / 1000 + 2)
        in_progress = {"node": "fs1", "tenant": "default"}
        # A supervisor sees the new owner carrying the calls while their greetings play.
        wait_for(lambda: (standby.metric("cccore_calls_in_progress", in_progress) or 0) >= 2,
                 timeout=5, message="the standby's calls in progress")
        calls = [mid_greeting, *orphans]
        wait_for(lambda: all(u in obs.ended for u in calls), timeout=15,
                 message="every call to be greeted and hung up after the takeover")
        assert all(obs.answered.get(u) == 1 for u in calls), obs.answered
        assert [obs.ended[u] for u in calls] == ["NORMAL_CLEARING"] * 3
        wait_for(lambda: not standby.metric("cccore_calls_in_progress", in_progress),
                 timeout=5, message="no call left in progress once all ended")
        # The two that parked while nobody owned the node are new; the resumed one is not.
        assert standby.metric("cccore_calls_started_total", {"tenant": "default"}) == 2
    finally:
        obs.conn.close()


def test_a_greeting_that_ends_while_no_worker_owns_the_node_still_ends_the_call(
        cluster: Cluster, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The greeting is over long before the standby takes over, so its EXECUTE_COMPLETE reaches
    # nobody; `show channels` then still says application=playback (FreeSWITCH updates that
    # column on CHANNEL_EXECUTE only), which tells the new owner nothing. The caller must not
    # stay parked in silence.
    monkeypatch.setenv("CC_TENANTS", str(greeting_tenant(tmp_path, "tone_stream://%(300,0,440);loops=1")))
    workers = cluster.start_workers(2, ttl_ms=FAILOVER_TTL_MS, app="cc_core.app:build")
    owner = cluster.wait_owner(workers, timeout=START_TIMEOUT_S)
    standby = next(w for w in workers if w is not owner)
    obs = Observer(cluster.sim.port)
    try:
        call = obs.call("13800000004")
        wait_for(lambda: call in obs.greeting_started, timeout=5, message="the greeting")
        os.kill(owner.proc.pid, signal.SIGKILL)
        cluster.wait_owner([standby], timeout=FAILOVER_TTL_MS / 1000 + 2)
        wait_for(lambda: call in obs.ended, timeout=10,
                 message="the call to be hung up after its greeting")
        assert obs.ended[call] == "NORMAL_CLEARING" and obs.answered.get(call) == 1
    finally:
        obs.conn.close()
