"""The call flow this foundation runs: answer a parked 400 call, play a greeting, hang up.

The full flow (IVR, lists, regions, queues) comes in later issues and replaces the body of
``on_park``; what stays is the shape: each step is driven by an event, claimed idempotently
in Redis (events can be seen twice after a reconnect or a failover), and a new owner of the
node resumes calls from ``show channels as json`` through ``reconcile``.

Why the hang-up after the greeting is queued on the switch, not sent on EXECUTE_COMPLETE:
after a failover the new owner cannot tell from ``show channels`` whether the greeting is
still playing. FreeSWITCH updates the ``application`` column on CHANNEL_EXECUTE only
(``switch_core_sqldb.c``: ``core_event_handler``), so once a sendmsg playback on a parked
channel has finished, the row still says ``playback`` until the next app runs; an
EXECUTE_COMPLETE that fell in the gap between owners would leave the caller parked in silence
for ever. So the greeting goes out with ``event-lock: true`` and the hang-up is queued right
behind it: FreeSWITCH itself hangs up when the playback ends, whoever is (or is not) watching.
``event-lock`` matters: without it ``switch_ivr_play_file`` runs queued private events while it
plays (``switch_ivr_parse_all_events`` in its loop), so the hang-up would cut the greeting
short; with it, ``switch_core_session_dequeue_private_event`` holds the queue until the app
returns (``CF_EVENT_LOCK``, set by ``switch_ivr_parse_event``).

The call's record (``cc_core.calls``) names the worker holding it and its stage; what a worker
that did not run the step does with each, when it finds the call alive (``take_over``: on
taking the node, after a reconnect, and in the periodic sweep):

* (none)      nobody claimed it: claim it and run the whole step, once it is confirmed parked;
* answering   claimed, greeting not confirmed queued: left to its holder while that worker is
              alive and the record is fresh; otherwise taken over (Lua, only if the holder is
              unchanged) and resumed: the whole step if the channel is still in ``park``, only
              the hang-up if its greeting already runs (never a second greeting);
* greeting    greeting queued, hang-up not confirmed: taken over the same way, hang-up queued;
* hangup      both queued: FreeSWITCH ends the call by itself; nothing to do.

Why a sweep as well as events and reconcile: a PARK that fired while no worker consumed the
node's events never comes again, and ``show channels`` (FreeSWITCH's core database, written
from a queue after the events) can miss a channel that parked a moment before the snapshot. A
standby therefore watches PARK and HANGUP_COMPLETE before it owns the node (``on_standby_event``)
and hands what it saw to its first reconcile; and the owner sweeps ``show channels`` every
``sweep_interval_s``, taking parked 400 calls nobody claimed for ``SWEEP_GRACE_S`` and calls whose
holder is gone. A non-zero ``cccore_calls_swept_total`` means something upstream lost a call.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import gevent
from redis.exceptions import RedisError

from cc_core.calls import NOT_OWNER as STAGE_NOT_OWNER
from cc_core.calls import STALL_MS, CallRecord, CallStore, Stage, now_ms
from cc_core.errors import EslError
from esl_handlers import commands

log = logging.getLogger(__name__)

NUMBER_400 = re.compile(r"^400\d{7}$")
DEFAULT_TENANT = "default"
GREETING_APP_PREFIX = "greet-"
HANGUP_CAUSE = "NORMAL_CLEARING"
# The sweep leaves a parked call nobody claimed this long to its own PARK event first.
SWEEP_GRACE_S = 1.0
# What a standby remembers of PARKs it saw, for its first reconcile as owner: a call parked
# longer ago than this was the previous owner's to take, and is the sweep's if it did not.
STANDBY_MEMORY_S = 30.0
STANDBY_MEMORY_MAX = 50_000
# A claim that hits a Redis error is tried this many times (the sweep takes what is left).
CLAIM_ATTEMPTS = 3
CLAIM_RETRY_S = 0.05
#: What a standby subscribes to before it owns a node (``on_standby_event``).
STANDBY_EVENTS = ("CHANNEL_PARK", "CHANNEL_HANGUP_COMPLETE")


class Link(Protocol):
    def api(self, cmd: str, timeout: float | None = None) -> str: ...
    def sendmsg(self, uuid: str, headers: dict[str, str], timeout: float | None = None) -> str: ...


class EventLike(Protocol):
    unique_id: str | None
    def get(self, name: str, default: str | None = None) -> str | None: ...


class SweepCounter(Protocol):
    def labels(self, *values: str) -> Any: ...


def _is_400_park(event: EventLike) -> bool:
    return (event.get("Call-Direction") == "inbound"
            and bool(NUMBER_400.match(event.get("Caller-Destination-Number") or "")))


class GreetingFlow:
    def __init__(self, *, redis: Any, greeting: str, is_draining: Callable[[], bool],
                 worker_id: str = "worker", tenant: str = DEFAULT_TENANT,
                 may_act: Callable[[Any], bool] | None = None,
                 swept: SweepCounter | None = None) -> None:
        self.redis = redis
        self.greeting = greeting
        self.is_draining = is_draining
        self.tenant = tenant
        self.worker_id = worker_id
        self.store = CallStore(redis, worker_id)
        # Whether this worker may still send commands for a call on that link's node: a
        # process that wakes from a pause after losing the node must not (fencing).
        self.may_act = may_act or (lambda link: True)
        self.swept = swept
        # Calls whose step runs in this process right now: a reconcile or sweep must not run
        # the same step a second time beside it.
        self._in_flight: dict[str, int] = {}
        # Sweep: parked calls seen unclaimed, and since when (monotonic).
        self._unclaimed_since: dict[str, float] = {}
        # Standby: PARKs seen per node before owning it: uuid -> (dnis, monotonic time).
        self._standby_seen: dict[str, dict[str, tuple[str, float]]] = {}

    def register(self, dispatcher: Any) -> None:
        dispatcher.on("CHANNEL_PARK", self.on_park)
        dispatcher.on("CHANNEL_EXECUTE_COMPLETE", self.on_execute_complete)
        dispatcher.on("CHANNEL_HANGUP_COMPLETE", self.on_hangup_complete)

    def _ctx(self, uuid: str) -> dict[str, str]:
        return {"call_uuid": uuid, "tenant": self.tenant}

    # ---- events -------------------------------------------------------------------------------
    def on_park(self, event: EventLike, link: Link) -> None:
        uuid = event.unique_id
        if not uuid or not _is_400_park(event):
            return
        self.start(uuid, event.get("Caller-Destination-Number") or "", link)

    def start(self, uuid: str, dnis: str, link: Link) -> bool:
        """Claim and run the call's step; False when it could not be claimed here."""
        if self.is_draining():
            # A draining worker has handed (or is handing) the node over; the new owner
            # watched this PARK as a standby and takes the call in its first reconcile.
            log.info("draining: leaving parked call to the next owner", extra=self._ctx(uuid))
            return False
        # In flight from before the claim: the Redis round trip below yields, and a reconcile
        # must not see "answering" and run the step beside us.
        with self._running(uuid):
            held = self._claim(uuid, dnis)
            if held is not None:
                return False
            self._unclaimed_since.pop(uuid, None)
            self._answer_and_greet(uuid, link)
            return True

    def _claim(self, uuid: str, dnis: str) -> CallRecord | None | bool:
        """None when claimed here; the holder's record, or False when Redis failed."""
        for attempt in range(CLAIM_ATTEMPTS):
            try:
                return self.store.claim(self.tenant, uuid, dnis)
            except RedisError as exc:
                if attempt + 1 == CLAIM_ATTEMPTS:
                    # Not lost: the owner's sweep takes parked calls nobody claimed.
                    log.warning("could not claim the call: %r; left to the sweep", exc,
                                extra=self._ctx(uuid))
                    return False
                gevent.sleep(CLAIM_RETRY_S * 2 ** attempt)
        return False

    @contextmanager
    def _running(self, uuid: str) -> Iterator[None]:
        # A count, not a set: reconcile and the call's lane may both be inside for a moment.
        self._in_flight[uuid] = self._in_flight.get(uuid, 0) + 1
        try:
            yield
        finally:
            left = self._in_flight[uuid] - 1
            if left:
                self._in_flight[uuid] = left
            else:
                del self._in_flight[uuid]

    def _answer_and_greet(self, uuid: str, link: Link) -> None:
        with self._running(uuid):
            try:
                if not self.may_act(link):
                    log.warning("lost the node before answering; left to its new owner",
                                extra=self._ctx(uuid))
                    return
                reply = link.api(commands.uuid_answer(uuid))
                if not reply.startswith("+OK"):
                    # The caller usually hung up between PARK and our answer (`-ERR No such
                    # channel!`): not an error.
                    log.info("answer refused", extra={**self._ctx(uuid), "reply": reply.strip()})
                    return
                if not self.may_act(link):
                    return
                reply = link.sendmsg(uuid, commands.execute_headers(
                    "playback", self.greeting, event_uuid=GREETING_APP_PREFIX + uuid,
                    event_lock=True))
                if not self._queued(uuid, reply, "greeting"):
                    return
                if self._advance(uuid, Stage.GREETING):
                    self._queue_hangup(uuid, link)
            except (EslError, RedisError) as exc:
                # The record stays at the stage reached; as the holder is this live worker,
                # the sweep resumes the call once the record is STALL_MS old.
                log.warning("could not start greeting: %r", exc, extra=self._ctx(uuid))

    def _queue_hangup(self, uuid: str, link: Link) -> None:
        reply = link.sendmsg(uuid, commands.hangup_headers(HANGUP_CAUSE))
        if self._queued(uuid, reply, "hangup"):
            self._advance(uuid, Stage.HANGUP)

    def _advance(self, uuid: str, stage: Stage) -> bool:
        res = self.store.advance(self.tenant, uuid, stage)
        if res == STAGE_NOT_OWNER:
            log.warning("call taken over by another worker; stopping here",
                        extra={**self._ctx(uuid), "stage": stage.value})
            return False
        # GONE: HANGUP_COMPLETE cleared the record meanwhile; the call is over.
        return res > 0

    def _queued(self, uuid: str, reply: str, what: str) -> bool:
        if reply.startswith("+OK"):
            return True
        # `-ERR invalid session id [<uuid>]` (command_replies.json, sendmsg_nonexistent): the
        # caller hung up meanwhile; HANGUP_COMPLETE clears the state.
        log.info("%s not queued", what, extra={**self._ctx(uuid), "reply": reply.strip()})
        return False

    def on_execute_complete(self, event: EventLike, link: Link) -> None:
        """Only reports: the hang-up that follows the greeting is already queued on the
        switch (see the module doc)."""
        uuid = event.unique_id
        if not uuid or event.get("Application-UUID") != GREETING_APP_PREFIX + uuid:
            return
        response = event.get("Application-Response") or ""
        if response == "FILE NOT FOUND":
            # playback_missing_file capture: the app returns at once, the call stays up; here
            # the queued hang-up then ends it without a greeting.
            log.warning("greeting file not found on the switch",
                        extra={**self._ctx(uuid), "greeting": self.greeting})

    def on_hangup_complete(self, event: EventLike, link: Link) -> None:
        uuid = event.unique_id
        if uuid:
            self._unclaimed_since.pop(uuid, None)
            self.store.forget(self.tenant, uuid)
            log.info("call ended", extra={**self._ctx(uuid), "cause": event.get("Hangup-Cause")})

    # ---- before owning a node -------------------------------------------------------------------
    def on_standby_event(self, node: str, event: EventLike) -> None:
        """What a standby's event stream brings (``STANDBY_EVENTS``): remember parked 400
        calls, so that a PARK that fires just before this worker takes the node is not missed
        when ``show channels`` has not caught up with it yet."""
        uuid = event.unique_id
        if not uuid:
            return
        seen = self._standby_seen.setdefault(node, {})
        if event.get("Event-Name") == "CHANNEL_PARK":
            if _is_400_park(event):
                if len(seen) >= STANDBY_MEMORY_MAX:
                    self._forget_old(seen, force=True)
                seen[uuid] = (event.get("Caller-Destination-Number") or "", time.monotonic())
        else:
            seen.pop(uuid, None)

    def _forget_old(self, seen: dict[str, tuple[str, float]], force: bool = False) -> None:
        horizon = time.monotonic() - STANDBY_MEMORY_S
        for uuid in [u for u, (_, t) in seen.items() if t < horizon]:
            del seen[uuid]
        if force and len(seen) >= STANDBY_MEMORY_MAX:
            for uuid in list(seen)[: len(seen) // 2]:
                del seen[uuid]

    # ---- taking over live calls -----------------------------------------------------------------
    def _is_parked(self, uuid: str, row: dict[str, Any], link: Link) -> bool:
        """Whether the dialplan has parked this call (its PARK may have fired before our
        subscription, so it will not come again).

        ``show channels`` reads the core database, which FreeSWITCH writes from a queue
        after the events (``switch_core_sqldb.c``): a call that parked a moment ago can
        still show the dialplan's previous app (``set``), or be missing. The channel's own
        ``current_application`` is set before CHANNEL_EXECUTE fires
        (``switch_core_session.c``: ``switch_core_session_exec``): ask it when the row is
        not already ``park``. Anything else still runs its dialplan, and its PARK will
        reach our (already subscribed) event stream."""
        if row.get("application") == "park":
            return True
        return self._current_application(uuid, link) == "park"

    @staticmethod
    def _current_application(uuid: str, link: Link) -> str:
        # uuid_getvar answers the bare value, no newline (command_replies.json, uuid_getvar).
        return link.api(commands.uuid_getvar(uuid, "current_application")).strip()

    def reconcile(self, node: str, channels: list[dict[str, Any]], link: Link) -> None:
        """Resume calls after (re)gaining a node's event stream, from ``show channels as
        json`` rows (fields as captured: uuid, direction, dest, application, callstate) and
        the PARKs this worker saw as a standby."""
        seen = self._standby_seen.pop(node, {})
        self._forget_old(seen)
        listed = {ch.get("uuid") for ch in channels}
        extra = [{"uuid": uuid, "direction": "inbound", "dest": dnis, "application": "",
                  "callstate": ""} for uuid, (dnis, _) in seen.items() if uuid not in listed]
        if extra:
            log.info("taking calls parked just before this worker owned the node",
                     extra={"node": node, "calls": len(extra)})
        self.take_over(node, [*channels, *extra], link, grace_s=0.0)

    def sweep(self, node: str, channels: list[dict[str, Any]], link: Link) -> None:
        """The owner's periodic safety net over ``show channels``: parked 400 calls nobody
        claimed for ``SWEEP_GRACE_S``, and claimed calls whose holder stopped, are taken."""
        self.take_over(node, channels, link, grace_s=SWEEP_GRACE_S)

    def take_over(self, node: str, channels: list[dict[str, Any]], link: Link, *,
                  grace_s: float) -> None:
        rows = {}
        for ch in channels:
            uuid = ch.get("uuid") or ""
            if (uuid and ch.get("direction") == "inbound"
                    and NUMBER_400.match(ch.get("dest") or "")
                    and ch.get("callstate") != "HANGUP" and uuid not in self._in_flight):
                rows[uuid] = ch
        if not rows:
            self._unclaimed_since.clear()
            return
        records = self.store.records(self.tenant, list(rows))
        holders = {r.owner for r in records.values() if r is not None and r.owner != self.worker_id}
        alive = self.store.live_workers(holders)
        now = time.monotonic()
        stamp = now_ms()
        self._unclaimed_since = {u: t for u, t in self._unclaimed_since.items() if u in rows}
        sweeping = grace_s > 0
        for uuid, row in rows.items():
            if uuid in self._in_flight:
                continue   # its own PARK reached us meanwhile
            rec = records[uuid]
            try:
                if rec is None:
                    since = self._unclaimed_since.setdefault(uuid, now)
                    if now - since < grace_s:
                        continue
                    if self._is_parked(uuid, row, link) and \
                            self.start(uuid, row.get("dest") or "", link) and sweeping:
                        self._count(node, "unclaimed")
                    continue
                if rec.stage is Stage.HANGUP:
                    continue
                idle = rec.idle_ms(stamp)
                if rec.owner == self.worker_id:
                    # Ours, not running here: the step failed (the link dropped, a timeout).
                    if sweeping and idle < grace_s * 1000:
                        continue
                elif rec.owner in alive and idle < STALL_MS:
                    continue   # its holder is alive and may be in the middle of the step
                self._resume(node, uuid, rec, link, counted=sweeping)
            except (EslError, RedisError) as exc:
                log.warning("taking over a call failed: %r", exc, extra=self._ctx(uuid))

    def _resume(self, node: str, uuid: str, rec: CallRecord, link: Link, *,
                counted: bool) -> None:
        if self.is_draining():
            return
        with self._running(uuid):
            stage: Stage | None = rec.stage
            if rec.owner != self.worker_id:
                stage = self.store.take_over(self.tenant, uuid, rec.owner)
                if stage is None:
                    return
            if counted:
                self._count(node, "stalled")
            log.info("resuming a call", extra={**self._ctx(uuid), "stage": rec.stage.value,
                                               "holder": rec.owner})
            if stage is Stage.ANSWERING:
                # Did the holder get the greeting out before it stopped? The channel knows:
                # a second greeting must never play.
                app = self._current_application(uuid, link)
                if app == "park":
                    self._answer_and_greet(uuid, link)
                    return
                if app == "playback" and self._advance(uuid, Stage.GREETING):
                    self._queue_hangup(uuid, link)
            elif stage is Stage.GREETING:
                self._queue_hangup(uuid, link)

    def _count(self, node: str, reason: str) -> None:
        if self.swept is not None:
            self.swept.labels(node, reason).inc()
