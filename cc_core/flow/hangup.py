"""What happens once a call is over: ordered consumers of its final state.

The order is fixed at construction and consumers are told apart by name, so later capabilities
plug in where they belong (call record, then billing, then clean-up) without reordering; the
clean-up (the live record's deletion) always runs last, after every consumer that reads it. A
consumer that fails is logged with the call's UUID and tenant; the ones after it still run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import msgpack

from cc_core import keys
from cc_core.flow import quality
from cc_core.flow.record import CallData, CallStore

log = logging.getLogger(__name__)

# Finished calls kept on a tenant's stream for the consumers that read it (records, reports).
CALLS_STREAM_MAXLEN = 100_000


class Ended(Protocol):
    uuid: str
    data: CallData
    cause: str
    event: Any
    node: str        # the configured name of the node the call was on (a metrics label)


class HangupConsumer(Protocol):
    name: str

    def on_hangup(self, ended: Ended) -> None: ...


class HangupPipeline:
    def __init__(self, consumers: Sequence[HangupConsumer], cleanup: HangupConsumer) -> None:
        names = [c.name for c in (*consumers, cleanup)]
        if len(set(names)) != len(names):
            raise ValueError(f"hang-up consumers need distinct names, got {names}")
        self.consumers = (*consumers, cleanup)

    def run(self, ended: Ended) -> None:
        for consumer in self.consumers:
            try:
                consumer.on_hangup(ended)
            except Exception:  # noqa: BLE001 - one consumer's fault must not skip the others
                log.exception("hang-up consumer %s failed", consumer.name,
                              extra={"call_uuid": ended.uuid, "tenant": ended.data.tenant})


class CallSummaryStream:
    """Appends each finished call's summary to its tenant's stream (``keys.calls_stream``), the
    source of call records and reports."""

    name = "call_summary"

    def __init__(self, redis: Any) -> None:
        self.redis = redis

    def on_hangup(self, ended: Ended) -> None:
        d = ended.data
        ev = ended.event
        summary = {
            "uuid": ended.uuid, "tenant": d.tenant, "dnis": d.dnis, "caller": d.caller,
            "caller_kind": d.caller_kind, "province": d.province, "city": d.city,
            "priority": d.priority, "answer_mode": d.answer_mode, "answered": d.answered,
            "path": d.path, "vars": d.vars, "outcome": d.outcome or "caller_hung_up",
            # Who took a queue call, from which queue (the CDR and billing read them).
            "queue": d.queue, "agent": d.agent,
            "hangup_cause": ended.cause, "ended_at_ms": int(time.time() * 1000),
            "billsec": ev.get("variable_billsec") or "0" if ev is not None else "0",
            # The call record's times. The switch's own clock for the channel's life (every
            # CHANNEL_HANGUP_COMPLETE carries them, 0 for what never happened); the worker's
            # for the queue, which the switch knows nothing of. Durations are only ever taken
            # between two stamps of one clock.
            "start_ms": epoch_ms(ev, "variable_start_uepoch"),
            "answer_ms": epoch_ms(ev, "variable_answer_uepoch"),
            "bridge_ms": epoch_ms(ev, "variable_bridge_uepoch"),
            "end_ms": epoch_ms(ev, "variable_end_uepoch"),
            "joined_ms": d.joined_ms, "agent_answered_ms": d.agent_answered_ms,
            "left_queue_ms": d.left_queue_ms, "waited_ms": d.waited_ms,
            "timezone": d.timezone,
            "hangup_side": _hangup_side(ev),
            # The call's recording as RECORD_START / RECORD_STOP described it (none when the
            # switch never started one): the recordings index and the record's path.
            "recording": d.recording if d.recording.get("started_ms") else {},
        }
        # The caller's audio as the switch received it (cc_core.flow.quality); None when it
        # kept no RTP statistics or no audio arrived.
        q = quality.from_hangup(ev)
        summary.update(q.as_summary() if q is not None else
                       {"mos": None, "jitter_ms": None, "packet_loss": None})
        append_summary(self.redis, summary)


def append_summary(redis: Any, summary: dict[str, Any]) -> None:
    """Puts a finished call's summary on its tenant's stream, and the tenant in the set of
    tenants with a stream (one round trip)."""
    pipe = redis.pipeline(transaction=False)
    pipe.xadd(keys.calls_stream(summary["tenant"]),
              {"call": msgpack.packb(summary, use_bin_type=True)},
              maxlen=CALLS_STREAM_MAXLEN, approximate=True)
    pipe.sadd(keys.calls_tenants(), summary["tenant"])
    pipe.execute()


def epoch_ms(event: Any, name: str) -> int:
    """A ``*_uepoch`` channel variable in milliseconds; 0 when absent or not a number."""
    value = event.get(name) if event is not None else None
    try:
        return max(0, int(value or 0) // 1000)
    except ValueError:
        return 0


def _hangup_side(event: Any) -> str:
    """Who ended the caller's leg, from sofia's ``sip_hangup_disposition`` (captures):
    ``recv_*`` the caller's side, ``send_*`` ours; "" when the switch did not say."""
    disposition = (event.get("variable_sip_hangup_disposition") or "") if event is not None else ""
    if disposition.startswith("recv_"):
        return "caller"
    if disposition.startswith("send_"):
        return "platform"
    return ""


class CallQualityMetrics:
    """Observes each call's audio quality (MOS, jitter, loss) per node and tenant."""

    name = "call_quality"

    def __init__(self, observe: Callable[[str, str, quality.CallQuality], None]) -> None:
        self.observe = observe

    def on_hangup(self, ended: Ended) -> None:
        q = quality.from_hangup(ended.event)
        if q is not None:
            self.observe(ended.node, ended.data.tenant, q)


class ForgetLiveRecord:
    name = "cleanup"

    def __init__(self, store: CallStore) -> None:
        self.store = store

    def on_hangup(self, ended: Ended) -> None:
        self.store.forget(ended.data.tenant, ended.uuid)
