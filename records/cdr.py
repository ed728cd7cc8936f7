"""The call record (CDR): one row of ``call_records`` per call, built from the summary the
hang-up pipeline appends to the tenant's stream (``cc_core.flow.hangup.CallSummaryStream``).

Pure: ``from_summary`` reads a decoded summary and returns a ``CallRecord``; ``store`` writes
records, each once: a call UUID already stored is left as it is (``ON CONFLICT DO NOTHING``),
so a summary delivered twice, or re-delivered after a consumer died between its commit and its
acknowledgement, leaves exactly one record.

Durations are only taken between two stamps of one clock: the switch's (start, answer,
bridge, end: ``variable_*_uepoch``) or the worker's (queue join, agent answer, leaving the
queue, the summary's own ``ended_at_ms``).
"""

from __future__ import annotations

import enum
import json
import time
from dataclasses import astuple, dataclass, fields
from typing import Any

from records.db import Tx

DEFAULT_TIMEZONE = "Asia/Shanghai"


class Disposition(enum.Enum):
    """How the call ended, in the words of the product (issue 9)."""

    ANSWERED = "answered"                      # an agent took it
    TRANSFERRED = "transferred"                # an external number took it
    ABANDONED_IN_IVR = "abandoned_in_ivr"      # the caller hung up before any queue
    ABANDONED_IN_QUEUE = "abandoned_in_queue"  # the caller hung up waiting for an agent
    IVR_COMPLETED = "ivr_completed"            # the menu or an announcement ended it
    BLACKLISTED = "blacklisted"
    REGION_BLOCKED = "region_blocked"
    NOT_IN_SERVICE = "not_in_service"          # a reserved or suspended 400 number
    AFTER_HOURS = "after_hours"                # closed: the after-hours branch ended it
    VOICEMAIL = "voicemail"
    CALLBACK = "callback"                      # the caller left a number to be called back
    OVERFLOWED = "overflowed"                  # left the queue for its overflow, ended there
    NOT_ANSWERED = "not_answered"              # no agent and nowhere to overflow to
    REJECTED_NO_CREDIT = "rejected_no_credit"  # billing: the tenant's credit is exhausted
    REJECTED_OVER_CAP = "rejected_over_cap"    # the tenant's monthly cap is reached
    FAILED = "failed"                          # the platform could not handle it
    FALLBACK = "fallback"                      # the switch's own fallback took it

    @property
    def abandoned(self) -> bool:
        return self in (Disposition.ABANDONED_IN_IVR, Disposition.ABANDONED_IN_QUEUE)

    @property
    def answered(self) -> bool:
        return self in (Disposition.ANSWERED, Disposition.TRANSFERRED)


# The flow's outcome (cc_core.flow.machine.OUTCOMES) -> disposition; "caller_hung_up" and
# the after-hours branch depend on the path, see ``disposition``.
_BY_OUTCOME = {
    "answered_by_agent": Disposition.ANSWERED,
    "transferred": Disposition.TRANSFERRED,
    "abandoned_in_queue": Disposition.ABANDONED_IN_QUEUE,
    "queued": Disposition.ABANDONED_IN_QUEUE,
    "blacklisted": Disposition.BLACKLISTED,
    "region_blocked": Disposition.REGION_BLOCKED,
    "not_in_service": Disposition.NOT_IN_SERVICE,
    "voicemail": Disposition.VOICEMAIL,
    "callback_requested": Disposition.CALLBACK,
    "overflowed": Disposition.OVERFLOWED,
    "not_answered": Disposition.NOT_ANSWERED,
    "transfer_not_answered": Disposition.NOT_ANSWERED,
    "announced": Disposition.IVR_COMPLETED,
    "hung_up_by_menu": Disposition.IVR_COMPLETED,
    "no_credit": Disposition.REJECTED_NO_CREDIT,
    "over_cap": Disposition.REJECTED_OVER_CAP,
    "failed": Disposition.FAILED,
    "fallback": Disposition.FALLBACK,
}


def disposition(outcome: str, path: list[str]) -> Disposition:
    closed = any(p.startswith("after_hours:") for p in path)
    if outcome in ("", "caller_hung_up"):
        return Disposition.AFTER_HOURS if closed else Disposition.ABANDONED_IN_IVR
    found = _BY_OUTCOME.get(outcome, Disposition.FAILED)
    if closed and found is Disposition.IVR_COMPLETED:
        return Disposition.AFTER_HOURS
    return found


@dataclass(frozen=True)
class CallRecord:
    """One row of ``call_records``; field order is column order."""

    call_uuid: str
    tenant: str
    dnis: str
    caller: str
    caller_kind: str
    caller_province: str
    caller_city: str
    timezone: str
    start_ms: int
    answer_ms: int | None
    end_ms: int
    answer_mode: str
    ivr_path: str           # JSON list: what the caller went through
    queue: str
    wait_ms: int | None
    agent: str
    agent_answer_ms: int | None
    talk_ms: int | None
    billsec: int
    hangup_cause: str
    hangup_side: str
    disposition: str
    outcome: str
    recording_path: str | None
    billed_fen: int | None
    billing_result: str | None
    source_id: str          # the stream entry it came from
    stored_ms: int


COLUMNS = [f.name for f in fields(CallRecord)]
_INSERT = (f"INSERT INTO call_records ({', '.join(COLUMNS)}) "
           f"VALUES ({', '.join('?' for _ in COLUMNS)}) ON CONFLICT (call_uuid) DO NOTHING")


class BadSummary(ValueError):
    """A stream entry that is not a call summary this version can read."""


def _int(summary: dict[str, Any], key: str) -> int:
    value = summary.get(key)
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        raise BadSummary(f"{key} is not a number: {value!r}") from None


def from_summary(summary: dict[str, Any], source_id: str = "",
                 stored_ms: int | None = None) -> CallRecord:
    """The record of one call; raises ``BadSummary`` when a required fact is missing."""
    if not isinstance(summary, dict):
        raise BadSummary(f"not a mapping: {type(summary).__name__}")
    uuid, tenant = summary.get("uuid"), summary.get("tenant")
    if not uuid or not isinstance(uuid, str) or not tenant or not isinstance(tenant, str):
        raise BadSummary("uuid and tenant are required")
    ended_ms = _int(summary, "ended_at_ms")          # worker clock
    end_ms = _int(summary, "end_ms") or ended_ms     # switch clock
    start_ms = _int(summary, "start_ms") or end_ms
    answer_ms = _int(summary, "answer_ms") or None
    bridge_ms = _int(summary, "bridge_ms")
    joined, agent_answered = _int(summary, "joined_ms"), _int(summary, "agent_answered_ms")
    left = _int(summary, "left_queue_ms")
    path = summary.get("path") or []
    outcome = str(summary.get("outcome") or "")
    found = disposition(outcome, [str(p) for p in path])
    agent = str(summary.get("agent") or "")   # set by the flow only when an agent answered
    wait_ms = None
    if joined:
        # Queues left before (overflow, exit key) are in waited_ms, the last one included
        # when the caller left it too; otherwise the last one ran to the answer or hang-up.
        wait_ms = _int(summary, "waited_ms")
        if not left:
            wait_ms += max(0, (agent_answered or ended_ms or joined) - joined)
    talk_ms = None
    if found.answered:
        if bridge_ms and end_ms:
            talk_ms = max(0, end_ms - bridge_ms)
        elif agent_answered and ended_ms:
            talk_ms = max(0, ended_ms - agent_answered)
    return CallRecord(
        call_uuid=uuid, tenant=tenant, dnis=str(summary.get("dnis") or ""),
        caller=str(summary.get("caller") or ""),
        caller_kind=str(summary.get("caller_kind") or ""),
        caller_province=str(summary.get("province") or ""),
        caller_city=str(summary.get("city") or ""),
        timezone=str(summary.get("timezone") or DEFAULT_TIMEZONE),
        start_ms=start_ms, answer_ms=answer_ms, end_ms=end_ms,
        answer_mode=str(summary.get("answer_mode") or ""),
        ivr_path=json.dumps([str(p) for p in path], ensure_ascii=False),
        queue=str(summary.get("queue") or ""), wait_ms=wait_ms, agent=agent,
        agent_answer_ms=agent_answered or None, talk_ms=talk_ms,
        billsec=_int(summary, "billsec"), hangup_cause=str(summary.get("hangup_cause") or ""),
        hangup_side=str(summary.get("hangup_side") or ""), disposition=found.value,
        outcome=outcome, recording_path=_recording_name(summary), billed_fen=None, billing_result=None,
        source_id=source_id,
        stored_ms=stored_ms if stored_ms is not None else int(time.time() * 1000))


def _recording_name(summary: dict[str, Any]) -> str | None:
    """The recording's name under the recordings root, when the switch started one (the
    recordings index has its row, written in the same transaction)."""
    rec = summary.get("recording")
    if isinstance(rec, dict) and rec.get("started_ms") and rec.get("name"):
        return str(rec["name"])
    return None


def store(tx: Tx, records: list[CallRecord]) -> int:
    """Writes the records not stored yet, in the caller's transaction; how many were new."""
    return tx.executemany(_INSERT, [astuple(r) for r in records])
