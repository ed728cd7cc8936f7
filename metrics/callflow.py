"""Prometheus metrics of the call flow's safety nets, one set per worker process."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter


class CallFlowMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        kw: dict[str, Any] = {} if registry is None else {"registry": registry}
        self.swept = Counter(
            "cccore_calls_swept_total",
            "Live 400 calls the node owner's periodic sweep took because nothing else did, by "
            "reason (unclaimed: parked and never claimed; stalled: its holder stopped). Any "
            "increase means an event or a step was lost upstream.",
            ["node", "reason"], **kw)
        # Tenants come from configuration and outcomes from the flow's own list: bounded.
        self.outcomes = Counter(
            "cccore_calls_total",
            "Finished 400 calls by tenant and outcome (answered_by_agent, voicemail, "
            "blacklisted, unallocated, caller_hung_up, ...)", ["tenant", "outcome"], **kw)
