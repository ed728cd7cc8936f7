"""Failover end to end: the simulator, a real Redis and real worker processes.

The owner of the node is SIGKILLed; a standby must own the node within TTL + 2 s, and at no
sampled moment may two workers consume the node's events.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.conftest import wait_for
from tests.integration.cluster import (
    FAILOVER_TTL_MS,
    NODE,
    START_TIMEOUT_S,
    Cluster,
    OwnershipSampler,
    ids,
    place_calls,
)

pytestmark = pytest.mark.slow


def test_standby_takes_over_after_owner_is_killed(cluster: Cluster) -> None:
    workers = cluster.start_workers(3, ttl_ms=FAILOVER_TTL_MS)
    owner = cluster.wait_owner(workers, timeout=START_TIMEOUT_S)
    standbys = [w for w in workers if w is not owner]
    for w in standbys:
        assert w.owner_gauge() == 0
    # The first owner reconciled the node's live calls once it consumed events.
    wait_for(lambda: (owner.metric("cccore_node_reconciles_total",
                                   {"node": NODE, "result": "ok"}) or 0) >= 1,
             timeout=5, message="the owner's reconcile")

    with OwnershipSampler(cluster) as sampler:
        wait_for(lambda: len(sampler.rounds) >= 3, timeout=5, message="sampling to start")
        killed_at = time.monotonic()
        os.kill(owner.proc.pid, signal.SIGKILL)
        owner.proc.wait(timeout=5)
        new_owner = cluster.wait_owner(standbys, timeout=FAILOVER_TTL_MS / 1000 + 2)
        took = time.monotonic() - killed_at
        # Keep sampling a little after the hand-over to catch a late double claim.
        n = len(sampler.rounds)
        wait_for(lambda: len(sampler.rounds) >= n + 10, timeout=5, message="more samples")

    print(f"\nfailover: {owner.worker_id} killed, {new_owner.worker_id} owns {NODE} after "
          f"{took:.3f}s (TTL {FAILOVER_TTL_MS} ms), {len(sampler.rounds)} ownership samples")
    assert took <= FAILOVER_TTL_MS / 1000 + 2
    assert not sampler.doubles, f"two workers consumed {NODE} at once: {sampler.doubles[:5]}"
    holders = {h for _, h, _ in sampler.rounds if h is not None}
    assert holders <= set(ids(workers)), holders
    # Exactly one standby took it; the other is still a standby.
    others = [w for w in standbys if w is not new_owner]
    assert all(w.owner_gauge() == 0 for w in others)
    wait_for(lambda: (new_owner.metric("cccore_node_reconciles_total",
                                       {"node": NODE, "result": "ok"}) or 0) >= 1,
             timeout=5, message="the new owner's reconcile")


def test_owner_keeps_the_node_while_alive(cluster: Cluster) -> None:
    """Renewals hold the lease across many TTLs: no flapping between healthy workers."""
    workers = cluster.start_workers(2, ttl_ms=600)
    owner = cluster.wait_owner(workers, timeout=START_TIMEOUT_S)
    with OwnershipSampler(cluster) as sampler:
        # About five TTLs, measured by samples rather than slept.
        started = time.monotonic()
        wait_for(lambda: time.monotonic() - started > 3.0 and len(sampler.rounds) > 20,
                 timeout=10, message="3 s of samples")
    assert not sampler.doubles
    assert {h for _, h, _ in sampler.rounds} == {owner.worker_id}
    lost = owner.metric("cccore_lease_lost_total", {"node": NODE})
    assert not lost



def test_paused_owner_cannot_act_when_it_wakes(cluster: Cluster) -> None:
    """SIGSTOP the owner (a GC pause, a stalled VM): a standby takes over after the TTL; on
    SIGCONT the former owner reports itself not owner from its first scrape and drops the events
    that piled up in its socket instead of handling them."""
    workers = cluster.start_workers(2, ttl_ms=FAILOVER_TTL_MS)
    owner = cluster.wait_owner(workers, timeout=START_TIMEOUT_S)
    standby = next(w for w in workers if w is not owner)
    with OwnershipSampler(cluster) as sampler:
        os.kill(owner.proc.pid, signal.SIGSTOP)
        try:
            paused_at = time.monotonic()
            cluster.wait_owner([standby], timeout=FAILOVER_TTL_MS / 1000 + 2)
            took = time.monotonic() - paused_at
            # Its reconcile runs once its event stream is up: no call can slip in before.
            wait_for(lambda: (standby.metric("cccore_node_reconciles_total",
                                             {"node": NODE, "result": "ok"}) or 0) >= 1,
                     timeout=5, message="the new owner's event stream and reconcile")
            # Traffic while the former owner sleeps: its event socket fills up.
            place_calls(cluster.sim.port, 3)
        finally:
            os.kill(owner.proc.pid, signal.SIGCONT)
        wait_for(lambda: owner.owner_gauge() == 0, timeout=5, message="the woken owner's gauge")
        wait_for(lambda: owner.metric("cccore_lease_lost_total",
                                      {"node": NODE, "reason": "margin"}) == 1,
                 timeout=5, message="the woken owner to give the node up by its margin")
        n = len(sampler.rounds)
        wait_for(lambda: len(sampler.rounds) >= n + 10, timeout=10, message="more samples")
    # Whether its reader or its lease loop ran first after SIGCONT, none of the events that
    # piled up reached the old owner's handlers: they were fenced, or their socket was closed.
    stale = owner.metric("cccore_esl_events_total", {"node": NODE, "event": "CHANNEL_CREATE"})
    fresh = standby.metric("cccore_esl_events_total", {"node": NODE, "event": "CHANNEL_CREATE"})
    fenced = owner.metric("cccore_lease_fenced_events_total", {"node": NODE})
    print(f"\npause: standby owns {NODE} {took:.3f}s after SIGSTOP of the owner; calls created "
          f"while paused handled by old/new owner: {stale or 0:.0f}/{fresh or 0:.0f}; "
          f"fenced on wake: {fenced or 0:.0f}")
    assert not stale
    assert fresh == 3
    assert not sampler.doubles, sampler.doubles[:5]
    assert cluster.holder() == standby.worker_id and standby.owner_gauge() == 1
