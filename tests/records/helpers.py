"""Call summaries as ``cc_core.flow.hangup.CallSummaryStream`` writes them."""

from __future__ import annotations

from typing import Any

import msgpack

from cc_core import keys
from cc_core.flow.hangup import CALLS_STREAM_MAXLEN, append_summary

# 2025-11-30 10:00:00 Asia/Shanghai (02:00:00 UTC), in ms: in the past, whatever the clock.
T0 = 1_764_468_000_000


def summary(uuid: str, tenant: str = "acme", *, start_ms: int = T0, **over: Any) -> dict:
    """An answered queue call unless told otherwise: 5 s in the IVR, 20 s waiting, 60 s of
    talk (switch clock for the channel, worker clock for the queue)."""
    s: dict[str, Any] = {
        "uuid": uuid, "tenant": tenant, "dnis": "4008001234", "caller": "13311112222",
        "caller_kind": "mobile", "province": "广东", "city": "深圳", "priority": 0,
        "answer_mode": "ivr", "answered": True, "path": ["menu:main", "1", "queue:sales"],
        "vars": {}, "outcome": "answered_by_agent", "queue": "sales", "agent": "a1",
        "hangup_cause": "NORMAL_CLEARING", "ended_at_ms": start_ms + 85_000, "billsec": "85",
        "start_ms": start_ms, "answer_ms": start_ms, "bridge_ms": start_ms + 25_000,
        "end_ms": start_ms + 85_000, "joined_ms": start_ms + 5_000,
        "agent_answered_ms": start_ms + 25_000, "left_queue_ms": 0,
        "timezone": "Asia/Shanghai", "hangup_side": "caller",
    }
    s.update(over)
    return s


def abandoned_in_queue(uuid: str, tenant: str = "acme", *, start_ms: int = T0,
                       waited_ms: int = 30_000) -> dict:
    end = start_ms + 5_000 + waited_ms
    return summary(uuid, tenant, start_ms=start_ms, outcome="abandoned_in_queue", agent="",
                   agent_answered_ms=0, bridge_ms=0, ended_at_ms=end, end_ms=end,
                   billsec=str((end - start_ms) // 1000))


def abandoned_in_ivr(uuid: str, tenant: str = "acme", *, start_ms: int = T0) -> dict:
    return summary(uuid, tenant, start_ms=start_ms, outcome="caller_hung_up", agent="",
                   queue="", path=["menu:main"], joined_ms=0, agent_answered_ms=0,
                   bridge_ms=0, ended_at_ms=start_ms + 8_000, end_ms=start_ms + 8_000,
                   billsec="8")


def append(r: Any, s: dict) -> None:
    append_summary(r, s)


def append_raw(r: Any, s: dict) -> bytes:
    """As a version of the flow before ``keys.calls_tenants`` did: the stream alone."""
    return r.xadd(keys.calls_stream(s["tenant"]),
                  {"call": msgpack.packb(s, use_bin_type=True)},
                  maxlen=CALLS_STREAM_MAXLEN, approximate=True)
