"""Prometheus metrics of the ACD as one worker sees it (dispatch and offer latency).

No label carries a caller's number, an agent id or a call UUID: ``tenant`` and ``queue`` come
from the tenants' configuration.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from metrics import NAMESPACE

# The targets live below 1 ms (dispatch) and 5 ms (join -> originate).
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005,
                   0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
# A caller's wait for an agent: the agent's ring time first (seconds), then a queue's wait.
ANSWER_BUCKETS = (0.1, 0.2, 0.3, 0.35, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0,
                  30.0, 60.0, 120.0, 300.0)


class AcdMetrics:
    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.dispatch = Histogram(
            "dispatch", "One dispatch script's round trip: waiting callers paired with free "
            "agents and reserved, as this worker measured it (when a caller joins, the "
            "round trip it shares with the caller's enqueue)", unit="seconds",
            buckets=LATENCY_BUCKETS, namespace=NAMESPACE, subsystem="acd", registry=registry)
        self.join_to_offer = Histogram(
            "join_to_offer", "From a caller joining a queue to the switch's reply to the "
            "originate of the first agent offered (callers who wait for a free agent "
            "included)", unit="seconds",
            buckets=LATENCY_BUCKETS + (2.5, 5.0, 10.0, 30.0, 60.0), namespace=NAMESPACE,
            subsystem="acd", registry=registry)
        self.join_to_originate = Histogram(
            "join_to_originate", "From a caller joining a queue to the moment this worker "
            "hands the originate of the first agent offered to the switch's socket (the "
            "switch's reply not awaited; callers who wait for a free agent included)",
            unit="seconds", buckets=LATENCY_BUCKETS + (2.5, 5.0, 10.0, 30.0, 60.0),
            namespace=NAMESPACE, subsystem="acd", registry=registry)
        self.join_to_answer = Histogram(
            "join_to_answer", "From a caller joining a queue to an agent's answer winning "
            "the call (the speed of answer: ringing and waiting for a free agent included)",
            unit="seconds", buckets=ANSWER_BUCKETS, namespace=NAMESPACE, subsystem="acd",
            registry=registry)
        # Counted by the worker that took the step, so sum() across workers is right (unlike
        # the queue gauges of metrics.queues, read from shared state by one process).
        self.overflows = Counter(
            "overflows", "Callers sent on from a queue by its overflow chain (max wait, no "
            "agent) or an exit key, by the kind of where they went (queue, voicemail, "
            "transfer, callback, announce, menu, ...; hangup: the chain was empty)",
            ["tenant", "queue", "target"], namespace=NAMESPACE, subsystem="queue",
            registry=registry)
