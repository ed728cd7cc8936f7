"""Prometheus metrics of the ESL stack (connection, node link, dispatch).

Names follow ``metrics``' scheme (``cccore_esl_...``). Every label takes values from a bounded
set: node names come from config, event names from FreeSWITCH's fixed list
(``esl_handlers.event_names``; CUSTOM events are counted as ``CUSTOM``, not per subclass, and a
name outside the list becomes ``other``), command labels are reduced to the api command's first
word and anything unexpected becomes ``other``.

Two delays, kept apart on purpose:

* ``cccore_esl_handling_seconds``: the core's own delay, from the event's bytes read off the
  socket (``Event.received_at``, monotonic) to the end of its handlers, queueing included.
* ``cccore_esl_event_lag_seconds``: from the switch's Event-Date-Timestamp to the start of the
  handler. FreeSWITCH 1.10.12 stamps it from a clock that advances in 20 ms steps, so it reads
  0-20 ms (10-50 ms seen on the lab switch) even when the core takes well under 1 ms.
"""

from __future__ import annotations

import re
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from esl_handlers.event_names import EVENT_NAMES
from metrics import NAMESPACE

# Switch clock to handler: the 20 ms quantum dominates, so nothing finer than 5 ms is useful.
_LAG_BUCKETS = (0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Socket read to handler end: tens of microseconds when healthy, so sub-millisecond buckets;
# the coarse tail shows a backlog (queueing in the dispatcher, Redis waits).
HANDLING_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                    0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_CMD_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

_COMMAND_WORD = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_EVENT_NAMES = frozenset(EVENT_NAMES) - {"ALL"}


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
    """The Event-Name as a label: one of FreeSWITCH's own names, ``unknown`` or ``other``.

    A shape check would not do: any upper-case word (a peer speaking ESL badly, a module of
    our own) would open a new series."""
    if not name:
        return "unknown"
    return name if name in _EVENT_NAMES else "other"


class EslMetrics:
    """The ESL metric objects, registered on ``registry`` (nowhere if None)."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        reg = registry
        kw: dict[str, Any] = {"namespace": NAMESPACE, "subsystem": "esl", "registry": reg}
        self.registry = reg
        self.events_total = Counter(
            "events", "Events received from FreeSWITCH, per node and Event-Name",
            ["node", "event"], **kw)
        self.handling_seconds = Histogram(
            "handling", "The core's own delay per event: its bytes read off the socket to the "
            "end of its handlers (dispatch queueing included); free of the switch's clock",
            unit="seconds", buckets=HANDLING_BUCKETS, **kw)
        self.event_lag_seconds = Histogram(
            "event_lag", "The switch's Event-Date-Timestamp to the start of the handler. "
            "FreeSWITCH 1.10 stamps it from a clock that advances in 20 ms steps: 0-20 ms of "
            "it is that quantum, not the core (its own delay: cccore_esl_handling_seconds)",
            unit="seconds", buckets=_LAG_BUCKETS, **kw)
        self.queue_depth = Gauge(
            "dispatch_queue_depth", "Events waiting in the dispatcher (all lanes)", **kw)
        self.shed_total = Counter(
            "shed_events", "Low-value events dropped because the dispatch queue was full",
            ["event"], **kw)
        self.backpressure_seconds_total = Counter(
            "backpressure", "Time the reader spent blocked on a full dispatch queue (TCP "
            "pushes back)", unit="seconds", **kw)
        self.handler_errors_total = Counter(
            "handler_errors", "Event handlers that raised", ["event"], **kw)
        self.reconnects_total = Counter(
            "reconnects", "Connections re-established after a loss", ["node"], **kw)
        self.command_seconds = Histogram(
            "command", "Command sent to its reply received", ["command"], unit="seconds",
            buckets=_CMD_BUCKETS, **kw)
        self.command_errors_total = Counter(
            "command_errors", "Commands that timed out or lost their connection",
            ["command", "reason"], **kw)
        self.heartbeat_missed_total = Counter(
            "heartbeat_missed", "Connections declared dead: no frame within the heartbeat "
            "window, no reply to a probe", ["node"], **kw)
        self.node_restarts_total = Counter(
            "node_restarts", "FreeSWITCH restarts seen as a Core-UUID change", ["node"], **kw)
        self.framing_errors_total = Counter(
            "framing_errors", "Byte streams that broke ESL framing (connection reset)",
            ["node"], **kw)
        self.unsolicited_replies_total = Counter(
            "unsolicited_replies", "Replies that arrived with no command pending (dropped)",
            ["node"], **kw)
        self.node_up = Gauge(
            "node_up", "1 while the node link is up (authenticated and subscribed)", ["node"],
            **kw)
