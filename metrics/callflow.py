"""Prometheus metrics of the call flow's safety nets, one set per worker process."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

# Sub-millisecond resolution where the target lives (p99 under 5 ms), coarse beyond.
SETUP_BUCKETS = (0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075,
                 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


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
        self.setup = Histogram(
            "cccore_call_setup_seconds",
            "From a parked call's CHANNEL_PARK read off the socket to the first command the "
            "core sends for it (all decisions taken in between); the switch's own delay is not "
            "in it", buckets=SETUP_BUCKETS, **kw)
