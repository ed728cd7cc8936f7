"""Live calls' records in Redis: who holds each call, its state, and what the flow knows of it.

One hash per call (``cc_core.keys.call``: state, owner, at, data), written only through the Lua
files in ``cc_core/lua/`` (loaded once, called by SHA; each sets the TTL inside the script, so a
record never exists without one):

* ``call_claim.lua``: the first worker to claim a call holds it; later claims learn the holder;
* ``call_advance.lua``: the holder saves a new state and its data; refused once another worker
  took over, and never re-creates the record of a call that ended;
* ``call_takeover.lua``: a worker takes a call over from a holder that stopped working on it,
  only if the record still names that holder.

A holder "stopped working on it" when its worker's heartbeat key (``esl_handlers.keys.worker``)
is gone, or when its record has not moved for ``STALL_MS``: no step waits that long on the switch
without a state change. A step saves its state *before* it sends the commands that start it
(write-ahead), so whoever resumes it knows which application to look for on the channel.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from importlib import resources
from typing import Any

import msgpack

from cc_core import keys
from esl_handlers import keys as esl_keys

CLAIMED = 1
OK = 1
GONE = 0
NOT_OWNER = -1
TAKEN = 1

# A record that has not moved for this long belongs to a step that is no longer running: longer
# than a step's command timeouts together, and than a warm stop's bound for in-flight handlers.
# States that legitimately wait longer (a menu prompt, a bridged call) are resumed by asking the
# channel what it runs, never by repeating what it may still be doing.
STALL_MS = 15_000


class CallState(enum.Enum):
    """Where a call is in the flow; each state has one step that runs and resumes it."""

    NEW = "new"                # claimed; nothing sent yet
    REJECTING = "rejecting"    # refused: announcement in early media, hang-up queued behind it
    GREETING = "greeting"      # greeting mode: early-media prompts before the destination
    MENU = "menu"              # an IVR menu's play_and_get_digits runs
    COLLECTING = "collecting"  # digits collected into a variable
    INFO = "info"              # a prompt, then back to the menu
    BRIDGING = "bridging"      # ringing an external number (the bridge app)
    QUEUED = "queued"          # waiting in an ACD queue: music on hold, agents maybe ringing
    CONNECTED = "connected"    # bridged to the agent who answered
    VOICEMAIL = "voicemail"    # a message being recorded, hang-up queued behind it
    ANNOUNCING = "announcing"  # a prompt with the hang-up queued behind it
    ENDING = "ending"          # hang-up queued: the switch ends the call by itself

    @property
    def waits_long(self) -> bool:
        """A state that may rightly stay unchanged for minutes while its holder lives."""
        return self in (CallState.QUEUED, CallState.CONNECTED)

    @property
    def done(self) -> bool:
        """The switch ends the call by itself from here; nothing is left to resume."""
        return self in _SELF_ENDING


_SELF_ENDING = {CallState.REJECTING, CallState.ANNOUNCING, CallState.ENDING,
                CallState.VOICEMAIL}


@dataclass
class CallData:
    """What the flow keeps on a call (msgpack in the record's ``data``)."""

    tenant: str
    dnis: str
    caller: str = ""
    caller_kind: str = ""
    province: str = ""
    city: str = ""
    priority: int = 0                 # VIP whitelist priority (0: none), for the ACD
    answer_mode: str = "ivr"
    answered: bool = False
    dest: str = ""                    # the destination being served
    menu_stack: list[str] = field(default_factory=list)
    retries: int = 0
    pending: str = ""                 # Application-UUID of the app the step waits for
    pending_var: str = ""             # where that app leaves its input (play_and_get_digits)
    seq: int = 0
    path: list[str] = field(default_factory=list)   # what the caller went through
    vars: dict[str, str] = field(default_factory=dict)
    fallback: bool = False            # the dialplan armed the switch's fallback: cancel it
    outcome: str = ""                 # how the flow ended the call (summary and demo counts)
    hangup_cause: str = ""            # the cause the flow asked for, if it hung up
    skills: dict[str, int] = field(default_factory=dict)  # required of the agent (IVR)
    queue: str = ""                   # the ACD queue the caller waits in, or waited in last
    offer: dict[str, Any] = field(default_factory=dict)   # the offer ringing agents now
    agent: str = ""                   # the agent who answered
    chain: list[str] = field(default_factory=list)         # overflow steps still to try
    joined_ms: int = 0                # when the caller joined the queue
    # What the call record needs beyond the switch's own timestamps (worker wall clock, ms):
    # the wait in the current queue runs from ``joined_ms`` to the agent's answer, to leaving
    # the queue or to the hang-up; ``waited_ms`` adds the queues left before (overflows).
    agent_answered_ms: int = 0        # when the agent who took the call answered
    left_queue_ms: int = 0            # when the caller stopped waiting (overflow, exit key)
    waited_ms: int = 0                # time spent in the queues the caller has left
    timezone: str = ""                # the tenant's, for showing the record's times
    # The call's recording (recordings.recorder): its name under the recordings root, and what
    # RECORD_START / RECORD_STOP said of it (started_ms, stopped_ms, ms, size, cause).
    recording: dict[str, Any] = field(default_factory=dict)

    def pack(self) -> bytes:
        # Every save packs the call: the fields as they are (msgpack walks the lists and
        # dicts itself), not dataclasses.asdict's deep copy, which cost more than the save's
        # round trip to Redis.
        return msgpack.packb({name: getattr(self, name) for name in _CALL_FIELDS},
                             use_bin_type=True)

    @classmethod
    def unpack(cls, blob: bytes | str | None, tenant: str, dnis: str) -> CallData:
        if not blob:
            return cls(tenant=tenant, dnis=dnis)
        raw = msgpack.unpackb(blob if isinstance(blob, bytes) else blob.encode(), raw=False)
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in raw.items() if k in known})


_CALL_FIELDS = tuple(f.name for f in fields(CallData))


@dataclass(frozen=True)
class CallRecord:
    state: CallState
    owner: str
    at_ms: int
    data: bytes = b""

    def idle_ms(self, now_ms: int) -> int:
        return now_ms - self.at_ms


def now_ms() -> int:
    # Wall clock: records are compared across worker processes and hosts.
    return int(time.time() * 1000)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _bytes(value: Any) -> bytes:
    if value is None:
        return b""
    return value if isinstance(value, bytes) else str(value).encode()


def _lua(name: str) -> str:
    return resources.files("cc_core").joinpath("lua", name).read_text(encoding="utf-8")


class CallStore:
    """Live-call records, as seen by one worker (``worker_id``)."""

    def __init__(self, redis: Any, worker_id: str, *, ttl_s: int = keys.CALL_TTL_S) -> None:
        self.redis = redis
        self.worker_id = worker_id
        self.ttl_s = ttl_s
        self._claim = redis.register_script(_lua("call_claim.lua"))
        self._advance = redis.register_script(_lua("call_advance.lua"))
        self._takeover = redis.register_script(_lua("call_takeover.lua"))

    def claim(self, tenant: str, uuid: str, data: CallData) -> CallRecord | None:
        """None when this worker now holds the call; otherwise the record that exists."""
        res = self._claim(keys=[keys.call(tenant, uuid)],
                          args=[self.worker_id, now_ms(), self.ttl_s, CallState.NEW.value,
                                data.pack()])
        if int(res[0]) == CLAIMED:
            return None
        return CallRecord(CallState(_text(res[1])), _text(res[2]), int(_text(res[3]) or 0),
                          _bytes(res[4]))

    def save(self, tenant: str, uuid: str, state: CallState, data: CallData | None,
             pipe: Any = None) -> int:
        """OK, GONE (the call ended) or NOT_OWNER (taken over: stop). With ``pipe`` the save
        is queued on it (0 returned; its code comes from ``pipe.execute()``)."""
        res = self._advance(keys=[keys.call(tenant, uuid)],
                            args=[self.worker_id, now_ms(), self.ttl_s, state.value,
                                  data.pack() if data is not None else b""], client=pipe)
        return 0 if pipe is not None else int(res)

    def take_over(self, tenant: str, uuid: str, holder: str) -> CallRecord | None:
        """The record to resume from when taken over from ``holder``; None when it changed
        meanwhile or the call ended."""
        res = self._takeover(keys=[keys.call(tenant, uuid)],
                             args=[holder, self.worker_id, now_ms(), self.ttl_s])
        if int(res[0]) != TAKEN:
            return None
        return CallRecord(CallState(_text(res[1])), self.worker_id, now_ms(), _bytes(res[2]))

    def release(self, tenant: str, uuid: str) -> bool:
        """Let go of a call this worker can no longer act on (it lost the call's node): the
        record names no holder, so whoever owns the node now resumes it at once instead of
        waiting for this worker to stall. True when the record was this worker's."""
        res = self._takeover(keys=[keys.call(tenant, uuid)],
                             args=[self.worker_id, "", now_ms(), self.ttl_s])
        return int(res[0]) == TAKEN

    def records(self, pairs: list[tuple[str, str]], *,
                with_data: bool = True) -> dict[str, CallRecord | None]:
        """Records of (tenant, uuid) pairs in one round trip (None: never claimed, or ended).
        Without ``with_data`` only their state, holder and time come back (``data`` empty):
        what a sweep over every call of a switch needs, at a fraction of the bytes."""
        if not pairs:
            return {}
        fields = ("state", "owner", "at", "data") if with_data else ("state", "owner", "at")
        pipe = self.redis.pipeline(transaction=False)
        for tenant, uuid in pairs:
            pipe.hmget(keys.call(tenant, uuid), *fields)
        out: dict[str, CallRecord | None] = {}
        for (_, uuid), got in zip(pairs, pipe.execute(), strict=True):
            state, owner, at = got[0], got[1], got[2]
            out[uuid] = None if state is None else CallRecord(
                CallState(_text(state)), _text(owner or b""), int(_text(at or b"0") or 0),
                _bytes(got[3]) if with_data else b"")
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
