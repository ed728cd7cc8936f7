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

Stages kept in the call's Redis hash, and what ``reconcile`` does with each when a worker that
did not run the step finds the call alive:

* (none)      PARK not handled yet: claim and run the whole step;
* answering   claimed, greeting not confirmed queued: run the step again (uuid_answer of an
              answered channel is ``+OK``; at worst the caller hears the greeting twice);
* greeting    greeting queued, hang-up not confirmed: queue the hang-up (it waits for the
              greeting, or runs at once if the greeting is over);
* hangup      both queued: FreeSWITCH ends the call by itself; nothing to do.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from cc_core import keys
from cc_core.errors import EslError
from esl_handlers import commands

log = logging.getLogger(__name__)

NUMBER_400 = re.compile(r"^400\d{7}$")
DEFAULT_TENANT = "default"
GREETING_APP_PREFIX = "greet-"
HANGUP_CAUSE = "NORMAL_CLEARING"


class Link(Protocol):
    def api(self, cmd: str, timeout: float | None = None) -> str: ...
    def sendmsg(self, uuid: str, headers: dict[str, str], timeout: float | None = None) -> str: ...


class EventLike(Protocol):
    unique_id: str | None
    def get(self, name: str, default: str | None = None) -> str | None: ...


class GreetingFlow:
    def __init__(self, *, redis: Any, greeting: str, is_draining: Callable[[], bool],
                 tenant: str = DEFAULT_TENANT) -> None:
        self.redis = redis
        self.greeting = greeting
        self.is_draining = is_draining
        self.tenant = tenant
        # Calls whose step runs in this process right now: a reconcile triggered by a
        # reconnect of our own link must not run the same step a second time beside it.
        self._in_flight: dict[str, int] = {}

    def register(self, dispatcher: Any) -> None:
        dispatcher.on("CHANNEL_PARK", self.on_park)
        dispatcher.on("CHANNEL_EXECUTE_COMPLETE", self.on_execute_complete)
        dispatcher.on("CHANNEL_HANGUP_COMPLETE", self.on_hangup_complete)

    def _ctx(self, uuid: str) -> dict[str, str]:
        return {"call_uuid": uuid, "tenant": self.tenant}

    def on_park(self, event: EventLike, link: Link) -> None:
        uuid = event.unique_id
        dnis = event.get("Caller-Destination-Number") or ""
        if not uuid or event.get("Call-Direction") != "inbound" or not NUMBER_400.match(dnis):
            return
        self.start(uuid, dnis, link)

    def start(self, uuid: str, dnis: str, link: Link) -> None:
        if self.is_draining():
            # A draining worker has handed (or is handing) the node over; the new owner
            # picks this call up from `show channels` when it reconciles.
            log.info("draining: leaving parked call to the next owner", extra=self._ctx(uuid))
            return
        key = keys.call(self.tenant, uuid)
        # In flight from before the claim: the Redis round trips below yield, and a reconcile
        # must not see "answering" and run the step beside us.
        with self._running(uuid):
            # HSETNX makes the claim idempotent: a PARK replayed after a reconnect does nothing.
            if not self.redis.hsetnx(key, "stage", "answering"):
                return
            self.redis.hset(key, mapping={"dnis": dnis})
            self.redis.expire(key, keys.CALL_TTL_S)
            self._answer_and_greet(uuid, link, key)

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

    def _answer_and_greet(self, uuid: str, link: Link, key: str) -> None:
        with self._running(uuid):
            try:
                reply = link.api(commands.uuid_answer(uuid))
                if not reply.startswith("+OK"):
                    # The caller usually hung up between PARK and our answer (`-ERR No such
                    # channel!`): not an error.
                    log.info("answer refused", extra={**self._ctx(uuid), "reply": reply.strip()})
                    return
                reply = link.sendmsg(uuid, commands.execute_headers(
                    "playback", self.greeting, event_uuid=GREETING_APP_PREFIX + uuid,
                    event_lock=True))
                if not self._queued(uuid, reply, "greeting"):
                    return
                self._set_stage(key, "greeting")
                self._queue_hangup(uuid, link, key)
            except EslError as exc:
                # The stage stays where it got to; the reconcile after the link is back resumes.
                log.warning("could not start greeting: %s", exc, extra=self._ctx(uuid))

    def _queue_hangup(self, uuid: str, link: Link, key: str) -> None:
        reply = link.sendmsg(uuid, commands.hangup_headers(HANGUP_CAUSE))
        if self._queued(uuid, reply, "hangup"):
            self._set_stage(key, "hangup")

    def _set_stage(self, key: str, stage: str) -> None:
        # With its TTL each time: a reconcile runs outside the call's dispatch lane, so its
        # write can land after HANGUP_COMPLETE deleted the hash; the re-created one expires.
        pipe = self.redis.pipeline()
        pipe.hset(key, "stage", stage)
        pipe.expire(key, keys.CALL_TTL_S)
        pipe.execute()

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
        if event.unique_id:
            self.redis.delete(keys.call(self.tenant, event.unique_id))
            log.info("call ended", extra={**self._ctx(event.unique_id),
                                          "cause": event.get("Hangup-Cause")})

    def _is_parked(self, uuid: str, row: dict[str, Any], link: Link) -> bool:
        """Whether the dialplan has parked this call (its PARK may have fired before our
        subscription, so it will not come again).

        ``show channels`` reads the core database, which FreeSWITCH writes from a queue
        after the events (``switch_core_sqldb.c``): a call that parked a moment ago can
        still show the dialplan's previous app (``set``). The channel's own
        ``current_application`` is set before CHANNEL_EXECUTE fires
        (``switch_core_session.c``: ``switch_core_session_exec``): ask it when the row is
        not already ``park``. Anything else still runs its dialplan, and its PARK will
        reach our (already subscribed) event stream."""
        if row.get("application") == "park":
            return True
        # uuid_getvar answers the bare value, no newline (command_replies.json, uuid_getvar).
        return link.api(commands.uuid_getvar(uuid, "current_application")).strip() == "park"

    def reconcile(self, node: str, channels: list[dict[str, Any]], link: Link) -> None:
        """Resume calls after (re)gaining a node's event stream, from ``show channels as
        json`` rows (fields as captured: uuid, direction, dest, application, callstate)."""
        for ch in channels:
            uuid = ch.get("uuid") or ""
            dnis = ch.get("dest") or ""
            if not uuid or ch.get("direction") != "inbound" or not NUMBER_400.match(dnis):
                continue
            if ch.get("callstate") == "HANGUP" or uuid in self._in_flight:
                continue
            key = keys.call(self.tenant, uuid)
            stage = self.redis.hget(key, "stage")
            try:
                if stage is None:
                    if self._is_parked(uuid, ch, link):
                        self.start(uuid, dnis, link)
                elif stage == b"answering":
                    if not self.is_draining():
                        self._answer_and_greet(uuid, link, key)
                elif stage == b"greeting":
                    self._queue_hangup(uuid, link, key)
            except EslError as exc:
                log.warning("reconcile of a call failed: %s", exc, extra=self._ctx(uuid))
