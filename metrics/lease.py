"""Prometheus metrics of node ownership (leases), one set per worker process.

``cccore_node_owner`` answers "which worker consumes node X right now" on a dashboard; the
counters explain hand-overs (acquired, lost by reason, renew failures, fenced events).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from metrics import NAMESPACE


class LeaseMetrics:
    """Per-worker ownership metrics, registered on ``registry`` (nowhere if None)."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        ns = NAMESPACE
        self.registry = registry
        self.owner = Gauge(
            "owner", "1 while this worker holds the node's lease and consumes its events",
            ["node"], namespace=ns, subsystem="node", registry=registry)
        self.acquired = Counter(
            "acquired", "Node leases this worker acquired", ["node"],
            namespace=ns, subsystem="lease", registry=registry)
        self.lost = Counter(
            "lost", "Node leases this worker stopped holding, by reason "
            "(lapsed, other_owner, stale_token, margin, released, link_down)",
            ["node", "reason"], namespace=ns, subsystem="lease", registry=registry)
        self.renew_failures = Counter(
            "renew_failures", "Lease renewals that did not succeed (Redis error or refusal)",
            ["node"], namespace=ns, subsystem="lease", registry=registry)
        self.fenced_events = Counter(
            "fenced_events", "Events dropped because this worker did not hold the node's "
            "lease when they arrived", ["node"], namespace=ns, subsystem="lease",
            registry=registry)
        self.reconciles = Counter(
            "reconciles", "Reconciliations of live calls after taking a node or a reconnect, "
            "by result (ok, error)", ["node", "result"], namespace=ns, subsystem="node",
            registry=registry)
