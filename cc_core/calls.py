"""Live calls' records in Redis: who holds each call and which stage it reached.

One hash per call (``cc_core.keys.call``), written only through the Lua files in
``cc_core/lua/`` (loaded once, called by SHA; each sets the TTL inside the script, so a record
never exists without one):

* ``call_claim.lua``: the first worker to claim a call holds it; later claims learn the holder;
* ``call_advance.lua``: the holder records a stage; refused once another worker took over;
* ``call_takeover.lua``: a worker takes a call over from a holder that stopped working on it,
  only if the record still names that holder.

A holder "stopped working on it" when its worker's heartbeat key (``esl_handlers.keys.worker``)
is gone, or when its record has not moved for ``STALL_MS``: no step waits that long on the
switch. That is how a call claimed by a worker that died, or whose step failed, is finished by
another without two workers ever running a step of one call at the same time.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from typing import Any

from cc_core import keys
from esl_handlers import keys as esl_keys

CLAIMED = 1
HELD = 0
OK = 1
GONE = 0
NOT_OWNER = -1
TAKEN = 1
CHANGED = 0
TAKEN_GONE = -1

# A record that has not moved for this long belongs to a step that is no longer running: longer
# than a step's command timeouts together, and than a warm stop's bound for in-flight handlers.
STALL_MS = 15_000


class Stage(enum.Enum):
    """How far the greeting flow got with a call."""

    ANSWERING = "answering"   # claimed; the greeting is not confirmed queued
    GREETING = "greeting"     # greeting queued; the hang-up behind it is not confirmed queued
    HANGUP = "hangup"         # both queued: the switch ends the call by itself


@dataclass(frozen=True)
class CallRecord:
    stage: Stage
    owner: str
    at_ms: int
    dnis: str = ""

    def idle_ms(self, now_ms: int) -> int:
        return now_ms - self.at_ms


def now_ms() -> int:
    # Wall clock: records are compared across worker processes and hosts.
    return int(time.time() * 1000)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _lua(name: str) -> str:
    return resources.files("cc_core").joinpath("lua", name).read_text(encoding="utf-8")


class CallStore:
    """One tenant's live-call records, as seen by one worker (``worker_id``)."""

    def __init__(self, redis: Any, worker_id: str, *, ttl_s: int = keys.CALL_TTL_S) -> None:
        self.redis = redis
        self.worker_id = worker_id
        self.ttl_s = ttl_s
        self._claim = redis.register_script(_lua("call_claim.lua"))
        self._advance = redis.register_script(_lua("call_advance.lua"))
        self._takeover = redis.register_script(_lua("call_takeover.lua"))

    def claim(self, tenant: str, uuid: str, dnis: str) -> CallRecord | None:
        """None when this worker now holds the call; otherwise the record that exists."""
        res = self._claim(keys=[keys.call(tenant, uuid)],
                          args=[self.worker_id, now_ms(), self.ttl_s, Stage.ANSWERING.value,
                                dnis])
        if int(res[0]) == CLAIMED:
            return None
        return CallRecord(Stage(_text(res[1])), _text(res[2]), int(_text(res[3]) or 0))

    def advance(self, tenant: str, uuid: str, stage: Stage) -> int:
        """OK, GONE (the call ended) or NOT_OWNER (taken over: stop)."""
        return int(self._advance(keys=[keys.call(tenant, uuid)],
                                 args=[self.worker_id, now_ms(), self.ttl_s, stage.value]))

    def take_over(self, tenant: str, uuid: str, holder: str) -> Stage | None:
        """The stage to resume from when taken over from ``holder``; None when the record
        changed meanwhile or the call ended."""
        res = self._takeover(keys=[keys.call(tenant, uuid)],
                             args=[holder, self.worker_id, now_ms(), self.ttl_s])
        return Stage(_text(res[1])) if int(res[0]) == TAKEN else None

    def records(self, tenant: str, uuids: list[str]) -> dict[str, CallRecord | None]:
        """Every listed call's record in one round trip (None: never claimed, or cleared)."""
        if not uuids:
            return {}
        pipe = self.redis.pipeline(transaction=False)
        for uuid in uuids:
            pipe.hmget(keys.call(tenant, uuid), "stage", "owner", "at", "dnis")
        out: dict[str, CallRecord | None] = {}
        for uuid, (stage, owner, at, dnis) in zip(uuids, pipe.execute(), strict=True):
            if stage is None:
                out[uuid] = None
                continue
            out[uuid] = CallRecord(Stage(_text(stage)), _text(owner or b""),
                                   int(_text(at or b"0") or 0), _text(dnis or b""))
        return out

    def live_workers(self, worker_ids: Iterable[str]) -> set[str]:
        """Which of these workers still have a heartbeat key (one round trip)."""
        ids = sorted(set(worker_ids))
        if not ids:
            return set()
        pipe = self.redis.pipeline(transaction=False)
        for wid in ids:
            pipe.exists(esl_keys.worker(wid))
        return {wid for wid, alive in zip(ids, pipe.execute(), strict=True) if alive}

    def forget(self, tenant: str, uuid: str) -> None:
        self.redis.delete(keys.call(tenant, uuid))
