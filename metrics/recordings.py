"""Recording metrics: started and failed recordings (labels bounded by construction)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from metrics import NAMESPACE

# Why a recording did not happen; nothing else is ever used as a label value.
FAILURE_REASONS = ("refused", "command_error")


class RecordingMetrics:
    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.started = Counter(
            "started", "Recordings the switch started (RECORD_START seen for the call's own file)",
            namespace=NAMESPACE, subsystem="recordings", registry=registry)
        self.failed = Counter(
            "failed", "Recordings that could not start, by reason (refused: the switch could "
            "not open the file, e.g. a full disk or an unwritable recordings root; "
            "command_error: no reply). The call goes on unrecorded.", ["reason"],
            namespace=NAMESPACE, subsystem="recordings", registry=registry)

    def fail(self, reason: str) -> None:
        self.failed.labels(reason if reason in FAILURE_REASONS else "command_error").inc()
