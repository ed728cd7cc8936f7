"""Prometheus metrics of the ESL stack (connection, node link, dispatch).

All names carry the ``cccore_`` namespace and base units; every label takes values from a
bounded set: node names come from config, event names from FreeSWITCH's fixed list (CUSTOM
events are counted as ``CUSTOM``, not per subclass), command labels are reduced to the api
command's first word and anything unexpected becomes ``other``. The registry is passed in so
each test (and each worker) builds its own; the composition root builds one per process.
"""

from __future__ import annotations

import re

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

NAMESPACE = "cccore"

# Lag from Event-Date-Timestamp (set by FreeSWITCH) to the moment a handler ran: ms to s.
_LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_CMD_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

_COMMAND_WORD = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_EVENT_WORD = re.compile(r"^[A-Z][A-Z0-9_]{0,47}$")


def command_label(command: str) -> str:
    """``api uuid_answer <uuid>`` -> ``uuid_answer``; ``bgapi originate ...`` -> ``originate``.

    The label set stays bounded: a word that does not look like a FreeSWITCH command name is
    reported as ``other``, and the arguments (UUIDs, dial strings) never reach a label.
    """
    words = command.split(None, 2)
    if not words:
        return "other"
    first = words[0].lower()
    if first in ("api", "bgapi"):
        if len(words) < 2:
            return "other"
        first = words[1].lower()
    return first if _COMMAND_WORD.match(first) else "other"


def event_label(name: str | None) -> str:
    if not name:
        return "unknown"
    return name if _EVENT_WORD.match(name) else "other"


class EslMetrics:
    """The ESL metric objects, registered on ``registry`` (the global default if None)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        reg = REGISTRY if registry is None else registry
        ns = NAMESPACE
        self.registry = reg
        self.events_total = Counter(
            "esl_events", "Events received from FreeSWITCH, per node and Event-Name",
            ["node", "event"], namespace=ns, registry=reg)
        self.event_lag_seconds = Histogram(
            "esl_event_lag_seconds",
            "Event-Date-Timestamp to the start of its handler (includes queueing)",
            namespace=ns, registry=reg, buckets=_LAG_BUCKETS)
        self.queue_depth = Gauge(
            "esl_dispatch_queue_depth", "Events waiting in the dispatcher (all lanes)",
            namespace=ns, registry=reg)
        self.shed_total = Counter(
            "esl_shed_events", "Low-value events dropped because the dispatch queue was full",
            ["event"], namespace=ns, registry=reg)
        self.backpressure_seconds_total = Counter(
            "esl_backpressure_seconds",
            "Time the reader spent blocked on a full dispatch queue (TCP pushes back)",
            namespace=ns, registry=reg)
        self.handler_errors_total = Counter(
            "esl_handler_errors", "Event handlers that raised", ["event"],
            namespace=ns, registry=reg)
        self.reconnects_total = Counter(
            "esl_reconnects", "Connections re-established after a loss", ["node"],
            namespace=ns, registry=reg)
        self.command_seconds = Histogram(
            "esl_command_seconds", "Command sent to its reply received", ["command"],
            namespace=ns, registry=reg, buckets=_CMD_BUCKETS)
        self.command_errors_total = Counter(
            "esl_command_errors", "Commands that timed out or lost their connection",
            ["command", "reason"], namespace=ns, registry=reg)
        self.heartbeat_missed_total = Counter(
            "esl_heartbeat_missed",
            "Connections declared dead: no frame within the heartbeat window, no reply to a probe",
            ["node"], namespace=ns, registry=reg)
        self.node_restarts_total = Counter(
            "esl_node_restarts", "FreeSWITCH restarts seen as a Core-UUID change", ["node"],
            namespace=ns, registry=reg)
        self.framing_errors_total = Counter(
            "esl_framing_errors", "Byte streams that broke ESL framing (connection reset)",
            ["node"], namespace=ns, registry=reg)
        self.unsolicited_replies_total = Counter(
            "esl_unsolicited_replies", "Replies that arrived with no command pending (dropped)",
            ["node"], namespace=ns, registry=reg)
        self.node_up = Gauge(
            "esl_node_up", "1 while the node link is up (authenticated and subscribed)",
            ["node"], namespace=ns, registry=reg)
