"""The call flow this foundation runs: answer a parked 400 call, play a greeting, hang up.

The full flow (IVR, lists, regions, queues) comes in later issues and replaces the body of
``on_park``; what stays is the shape: each step is driven by an event, claimed idempotently
in Redis (events can be seen twice after a reconnect or a failover), and a new owner of the
node resumes calls from ``show channels as json`` through ``reconcile``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any, Protocol

from cc_core import keys
from cc_core.errors import EslError

log = logging.getLogger(__name__)

NUMBER_400 = re.compile(r"^400\d{7}$")
DEFAULT_TENANT = "default"
GREETING_APP_PREFIX = "greet-"


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
        # HSETNX makes the claim idempotent: a PARK replayed after a reconnect does nothing.
        if not self.redis.hsetnx(key, "stage", "answering"):
            return
        self.redis.hset(key, mapping={"dnis": dnis})
        self.redis.expire(key, keys.CALL_TTL_S)
        self._answer_and_greet(uuid, link, key)

    def _answer_and_greet(self, uuid: str, link: Link, key: str) -> None:
        try:
            reply = link.api(f"uuid_answer {uuid}")
            if not reply.startswith("+OK"):
                # The caller usually hung up between PARK and our answer: not an error.
                log.info("answer refused", extra={**self._ctx(uuid), "reply": reply.strip()})
                return
            self.redis.hset(key, "stage", "greeting")
            link.sendmsg(uuid, {
                "call-command": "execute",
                "execute-app-name": "playback",
                "execute-app-arg": self.greeting,
                "Event-UUID": GREETING_APP_PREFIX + uuid,
            })
        except EslError as exc:
            log.warning("could not start greeting: %s", exc, extra=self._ctx(uuid))

    def on_execute_complete(self, event: EventLike, link: Link) -> None:
        uuid = event.unique_id
        if not uuid or event.get("Application-UUID") != GREETING_APP_PREFIX + uuid:
            return
        if event.get("Answer-State") == "hangup":
            return
        self.redis.hset(keys.call(self.tenant, uuid), "stage", "hangup")
        try:
            link.sendmsg(uuid, {"call-command": "hangup", "hangup-cause": "NORMAL_CLEARING"})
        except EslError as exc:
            log.warning("could not hang up after greeting: %s", exc, extra=self._ctx(uuid))

    def on_hangup_complete(self, event: EventLike, link: Link) -> None:
        if event.unique_id:
            self.redis.delete(keys.call(self.tenant, event.unique_id))
            log.info("call ended", extra={**self._ctx(event.unique_id),
                                          "cause": event.get("Hangup-Cause")})

    def reconcile(self, node: str, channels: list[dict[str, Any]], link: Link) -> None:
        """Resume calls after taking a node over: parked 400 calls nobody answered yet are
        started; calls whose greeting was interrupted by the failover are hung up cleanly."""
        for ch in channels:
            uuid = ch.get("uuid") or ""
            dnis = ch.get("dest") or ""
            if not uuid or ch.get("direction") != "inbound" or not NUMBER_400.match(dnis):
                continue
            stage = self.redis.hget(keys.call(self.tenant, uuid), "stage")
            if stage is None and ch.get("application") == "park":
                self.start(uuid, dnis, link)
            elif stage in (b"greeting", b"hangup") and ch.get("application") != "playback":
                try:
                    link.sendmsg(uuid, {"call-command": "hangup", "hangup-cause": "NORMAL_CLEARING"})
                except EslError as exc:
                    log.warning("reconcile hangup failed: %s", exc, extra=self._ctx(uuid))
