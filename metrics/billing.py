"""Prometheus metrics of billing: the low-credit alerts the rating consumer raised, and the
calls the live credit control stopped or refused. ``tenant`` comes from the accounts."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from metrics import NAMESPACE


class BillingMetrics:
    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.low_credit = Counter(
            "low_credit_alerts", "Times a tenant's prepaid credit fell to its low-credit "
            "threshold (one per crossing; a top-up above it re-arms the alert)", ["tenant"],
            namespace=NAMESPACE, subsystem="billing", registry=registry)
        self.refused = Counter(
            "refused_no_credit", "New calls refused because the tenant's credit was "
            "exhausted (the caller heard the no-credit announcement)", ["tenant"],
            namespace=NAMESPACE, subsystem="billing", registry=registry)
        self.stops_armed = Counter(
            "hard_stops_armed", "sched_hangup hard stops armed or re-armed on billed calls",
            ["tenant"], namespace=NAMESPACE, subsystem="billing", registry=registry)
