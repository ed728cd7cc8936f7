"""The ACD's event vocabulary: mod_callcenter's ``callcenter::info`` (CC-Action names and
``CC-*`` headers as the captures of FreeSWITCH 1.10.12 show them), written by the Lua scripts
to ``keys.acd_events(tenant)``, and how hang-up causes and leave reasons map onto
mod_callcenter's semantics."""

from __future__ import annotations

import enum
from typing import Any

from cc_core import keys


class Action(enum.Enum):
    AGENT_STATUS_CHANGE = "agent-status-change"
    AGENT_STATE_CHANGE = "agent-state-change"
    AGENT_OFFERING = "agent-offering"
    BRIDGE_AGENT_START = "bridge-agent-start"
    BRIDGE_AGENT_END = "bridge-agent-end"
    BRIDGE_AGENT_FAIL = "bridge-agent-fail"
    AGENT_MAX_NO_ANSWER = "agent-max-no-answer"
    MEMBER_QUEUE_START = "member-queue-start"
    MEMBER_QUEUE_RESUME = "member-queue-resume"
    MEMBER_QUEUE_END = "member-queue-end"
    MEMBERS_COUNT = "members-count"


class MissKind(enum.Enum):
    """Which of the agent's delays a failed offer applies (mod_callcenter's cases)."""

    CANCEL = "cancel"                  # we hung it up (ring-all race lost): no delay, no count
    BUSY = "busy"
    NO_ANSWER = "no_answer"            # also every cause not listed: counted as a no-answer
    REJECT = "reject"
    NOT_REGISTERED = "not_registered"


_CAUSES = {
    "LOSE_RACE": MissKind.CANCEL, "ORIGINATOR_CANCEL": MissKind.CANCEL,
    "USER_BUSY": MissKind.BUSY, "NORMAL_CIRCUIT_CONGESTION": MissKind.BUSY,
    "CALL_REJECTED": MissKind.REJECT,
    "USER_NOT_REGISTERED": MissKind.NOT_REGISTERED, "SUBSCRIBER_ABSENT": MissKind.NOT_REGISTERED,
}


def miss_kind(cause: str) -> MissKind:
    return _CAUSES.get(cause.strip().upper(), MissKind.NO_ANSWER)


class LeaveReason(enum.Enum):
    """Why a caller left a queue: (mod_callcenter cancel reason, queue counter)."""

    HANGUP = "hangup"                  # the caller hung up while waiting: abandoned
    TIMEOUT = "timeout"                # max_wait_s reached: overflowed
    NO_AGENT_TIMEOUT = "no_agent_timeout"
    EXIT_KEY = "exit_key"
    OVERFLOW = "overflow"              # sent on by the overflow chain
    TRANSFER = "transfer"              # moved elsewhere by the flow

    @property
    def cancel_reason(self) -> str:
        return {"hangup": "BREAK_OUT", "timeout": "TIMEOUT",
                "no_agent_timeout": "NO_AGENT_TIMEOUT", "exit_key": "EXIT_WITH_KEY",
                "overflow": "TIMEOUT", "transfer": "NONE"}[self.value]

    @property
    def counter(self) -> str:
        if self is LeaveReason.HANGUP:
            return "abandoned"
        if self in (LeaveReason.TIMEOUT, LeaveReason.NO_AGENT_TIMEOUT, LeaveReason.OVERFLOW):
            return "overflowed"
        return "none"


def read(redis: Any, tenant: str, count: int = 1000) -> list[dict[str, str]]:
    """The tenant's most recent events, oldest first, as header dicts (tests, supervisors)."""
    rows = redis.xrevrange(keys.acd_events(tenant), count=count)
    out = []
    for _id, fields in reversed(rows):
        out.append({(k.decode() if isinstance(k, bytes) else k):
                    (v.decode() if isinstance(v, bytes) else v) for k, v in fields.items()})
    return out
