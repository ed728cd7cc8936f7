"""Collects unanswered calls from the calls streams and delivers their notices.

``collect``: new summaries (consumer group ``notify``, from the group's creation on: history
is not notified), each unanswered call of a tenant with a webhook becomes a delivery (the
pending hash and the due zset, in the same MULTI as the XACK: a crash between them loses
nothing and sends nothing twice).

``deliver``: the due deliveries, claimed one by one (``lua/claim.lua``), POSTed in a pool of
``POOL`` greenlets with ``TIMEOUT_S`` each: 2xx is done; anything else (an error status, a
refused connection, a timeout) is due again after ``backoff(attempts)`` (1 s, 2 s, 4 s…, at
most ``MAX_BACKOFF_S``) until the tenant's ``max_attempts``, then logged and dropped.

The body is JSON; ``X-CC-Signature: sha256=<hex>`` is HMAC-SHA256 of ``<timestamp>.<body>``
with the tenant's secret and ``X-CC-Timestamp`` the send time in seconds, so a receiver can
refuse a replayed body; ``X-CC-Delivery`` is the same on every retry of one notice.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from importlib import resources
from typing import Any

import gevent
import gevent.pool
import msgpack
from redis.exceptions import RedisError, ResponseError

from cc_core import keys as product_keys
from notify import keys
from records.cdr import Disposition, disposition

log = logging.getLogger(__name__)

POOL = 20
TIMEOUT_S = 3.0
CLAIM_S = 30.0             # longer than TIMEOUT_S: a claimed notice is not sent twice
MAX_BACKOFF_S = 300.0
BATCH = 100
POLL_S = 0.5
#: Refusals the tenant chose (its blacklist, a blocked region): not missed calls.
NOT_MISSED = frozenset({Disposition.BLACKLISTED, Disposition.REGION_BLOCKED})

Post = Callable[[str, bytes, dict[str, str], float], int]


def backoff(attempts: int) -> float:
    return float(min(MAX_BACKOFF_S, 2 ** max(0, attempts - 1)))


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def http_post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """The status of a POST; raises OSError for no answer (refused, timeout)."""
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as res:  # noqa: S310 - http(s) only
            return int(res.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def notice(summary: dict[str, Any]) -> dict[str, Any] | None:
    """The notice of a finished call, or None when it was answered (or refused on purpose)."""
    path = [str(p) for p in summary.get("path") or []]
    found = disposition(str(summary.get("outcome") or ""), path)
    if found.answered or found in NOT_MISSED:
        return None
    return {"event": "missed_call", "call_uuid": summary.get("uuid"),
            "tenant": summary.get("tenant"), "number_400": summary.get("dnis"),
            "caller": summary.get("caller"), "disposition": found.value,
            "start_ms": summary.get("start_ms") or None,
            "end_ms": summary.get("end_ms") or summary.get("ended_at_ms") or None,
            "queue": summary.get("queue") or None}


class MissedCallNotifier:
    def __init__(self, redis: Any, webhook_of: Callable[[str], Any], name: str, *,
                 post: Post = http_post, clock: Callable[[], float] = time.time,
                 timeout_s: float = TIMEOUT_S, metrics: Any = None) -> None:
        self.redis = redis
        self.webhook_of = webhook_of      # tenant -> MissedCallWebhook | None
        self.name = name
        self.post = post
        self.clock = clock
        self.timeout_s = timeout_s
        self.metrics = metrics
        self._claim = redis.register_script(
            resources.files("notify").joinpath("lua/claim.lua").read_text(encoding="utf-8"))
        self._groups: set[str] = set()
        self._pool = gevent.pool.Pool(POOL)

    # ---- collecting ---------------------------------------------------------------------------
    def _streams(self) -> list[str]:
        # Only tenants with a webhook: the others cost the notifier nothing.
        streams = sorted(product_keys.calls_stream(_text(t))
                         for t in self.redis.smembers(product_keys.calls_tenants())
                         if self.webhook_of(_text(t)) is not None)
        for s in streams:
            if s not in self._groups:
                try:
                    self.redis.xgroup_create(s, keys.NOTIFY_GROUP, id="$", mkstream=True)
                except ResponseError as exc:
                    if "BUSYGROUP" not in str(exc):
                        raise
                self._groups.add(s)
        return streams

    def collect(self) -> int:
        """New deliveries from the summaries appended since the last call; how many. Entries
        this notifier read and did not acknowledge (it stopped in between) come first."""
        streams = self._streams()
        if not streams:
            return 0
        made = 0
        # One stream per command: each tenant's stream is in its own Cluster slot.
        for stream in streams:
            for start in ("0", ">"):
                read = self.redis.xreadgroup(keys.NOTIFY_GROUP, self.name, {stream: start},
                                             count=BATCH) or []
                for _, entries in read:
                    made += self._enqueue(stream, entries)
        return made

    def _enqueue(self, stream: str, entries: list[Any]) -> int:
        now_ms = int(self.clock() * 1000)
        # The delivery keys share {g}, the stream its tenant's tag: two steps, so it runs on
        # a Redis Cluster too. Stopped between them, the entry is read again ("0" above):
        # HSETNX and ZADD NX make that a no-op unless the notice was already delivered.
        pipe = self.redis.pipeline(transaction=True)
        made = 0
        for _, fields in entries:
            try:
                summary = msgpack.unpackb(fields[b"call"], raw=False)
                body = notice(summary)
            except (KeyError, ValueError, TypeError, msgpack.UnpackException):
                body = None
            if body is not None and self.webhook_of(str(body["tenant"])) is not None:
                delivery = str(body["call_uuid"])
                pipe.hsetnx(keys.pending(), delivery, msgpack.packb(
                    {"tenant": body["tenant"], "body": body, "attempts": 0}))
                pipe.zadd(keys.due(), {delivery: now_ms}, nx=True)
                made += 1
        if made:
            pipe.execute()
        if entries:
            self.redis.xack(stream, keys.NOTIFY_GROUP, *[e[0] for e in entries])
        return made

    # ---- delivering -----------------------------------------------------------------------------
    def deliver(self) -> int:
        """Sends every due notice (in parallel) and waits for them; how many were sent OK."""
        now = self.clock()
        now_ms = int(now * 1000)
        ids = [_text(i) for i in self.redis.zrangebyscore(keys.due(), "-inf", now_ms,
                                                          start=0, num=BATCH)]
        jobs = []
        for delivery in ids:
            if self._claim(keys=[keys.due()], args=[delivery, now_ms,
                                                    now_ms + int(CLAIM_S * 1000)]):
                jobs.append(self._pool.spawn(self._send, delivery))
        gevent.joinall(jobs)
        return sum(1 for j in jobs if j.value)

    def _send(self, delivery: str) -> bool:
        raw = self.redis.hget(keys.pending(), delivery)
        if raw is None:
            self.redis.zrem(keys.due(), delivery)
            return False
        item = msgpack.unpackb(raw, raw=False)
        tenant = item["tenant"]
        hook = self.webhook_of(tenant)
        if hook is None:          # the tenant removed its webhook meanwhile
            self._done(delivery)
            return False
        body = json.dumps(item["body"], ensure_ascii=False, separators=(",", ":")).encode()
        stamp = str(int(self.clock()))
        headers = {"Content-Type": "application/json", "X-CC-Timestamp": stamp,
                   "X-CC-Delivery": delivery, "X-CC-Signature": sign(hook.secret, stamp, body)}
        attempts = int(item["attempts"]) + 1
        try:
            status = self.post(hook.url, body, headers, self.timeout_s)
            error = "" if 200 <= status < 300 else f"HTTP {status}"
        except (OSError, ValueError) as exc:   # refused, timed out, unreachable
            error = repr(exc)
        ctx = {"tenant": tenant, "call_uuid": delivery, "attempt": attempts}
        if not error:
            self._done(delivery)
            log.info("missed-call notice delivered", extra=ctx)
            return True
        if attempts >= hook.max_attempts:
            self._done(delivery)
            log.error("missed-call notice dropped after %d attempts: %s", attempts, error,
                      extra=ctx)
            return False
        wait = backoff(attempts)
        item["attempts"] = attempts
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(keys.pending(), delivery, msgpack.packb(item))
        pipe.zadd(keys.due(), {delivery: int((self.clock() + wait) * 1000)})
        pipe.execute()
        log.warning("missed-call notice failed: %s; retry in %.0f s", error, wait, extra=ctx)
        return False

    def _done(self, delivery: str) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.zrem(keys.due(), delivery)
        pipe.hdel(keys.pending(), delivery)
        pipe.execute()

    def run(self, stopping: Callable[[], bool], sleep: Callable[[float], None] = gevent.sleep
            ) -> None:
        while not stopping():
            try:
                self.collect()
                self.deliver()
            except RedisError as exc:
                log.warning("missed-call notices: Redis failed: %r", exc)
            except Exception:  # noqa: BLE001 - logged; the next round tries again
                log.exception("missed-call notices crashed a round")
            sleep(POLL_S)
