"""Prometheus metrics of node ownership (leases), one set per worker process.

``cccore_node_owner`` answers "which worker consumes node X right now" on a dashboard; the
counters explain hand-overs (acquired, lost by reason, renew failures, fenced events).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge


class LeaseMetrics:
    """Per-worker ownership metrics (each worker process has its own registry)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        kw: dict[str, Any] = {} if registry is None else {"registry": registry}
        self.owner = Gauge("cccore_node_owner",
                           "1 while this worker holds the node's lease and consumes its events",
                           ["node"], **kw)
        self.acquired = Counter("cccore_lease_acquired_total",
                                "Node leases this worker acquired", ["node"], **kw)
        self.lost = Counter("cccore_lease_lost_total",
                            "Node leases this worker stopped holding, by reason "
                            "(lapsed, other_owner, stale_token, margin, released, link_down)",
                            ["node", "reason"], **kw)
        self.renew_failures = Counter("cccore_lease_renew_failures_total",
                                      "Lease renewals that did not succeed (Redis error or "
                                      "refusal)", ["node"], **kw)
        self.fenced_events = Counter("cccore_lease_fenced_events_total",
                                     "Events dropped because this worker did not hold the "
                                     "node's lease when they arrived", ["node"], **kw)
        self.reconciles = Counter("cccore_node_reconciles_total",
                                  "Reconciliations of live calls after taking a node or a "
                                  "reconnect, by result (ok, error)", ["node", "result"], **kw)
