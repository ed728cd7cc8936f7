"""A FreeSWITCH node's lease in Redis: one owner at a time, fenced by a token.

The owner of a node's lease is the one worker that consumes that node's event stream.
Acquisition is ``SET NX PX`` plus an ``INCR`` of the node's fencing counter in one script;
the resulting token travels with every action taken under the lease, and Redis refuses an
action whose token is no longer the current one (``check``/``fenced_set``), so a former owner
that was paused (GC, SIGSTOP, a stalled VM) and wakes up after a successor took over cannot act:
it gets ``LeaseLost``.

Redis' own expiry is not enough on the owner's side: a paused process does not know time has
passed. So the owner also keeps a local deadline on the monotonic clock, measured from when it
*sent* the last successful acquire/renew, minus a safety margin; past it, ``valid()`` is false
and the owner must stop consuming even before Redis says anything. The margin absorbs clock-rate
differences between hosts and the time between a ``valid()`` check and the action it guards.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from importlib import resources
from typing import Any

from esl_handlers import keys
from esl_handlers.errors import LeaseLost

log = logging.getLogger(__name__)

# Renew three times per TTL: two renewals may fail (a Redis blip) before the lease lapses.
RENEWS_PER_TTL = 3
# The local margin: a fifth of the TTL, at least this much.
MARGIN_FRACTION = 0.2
MIN_MARGIN_MS = 100

# Return codes shared by renew/release/check/fenced_set (see the headers of esl_handlers/lua/).
OK = 1
LAPSED = 0
OTHER_OWNER = -1
STALE_TOKEN = -2
_REASONS = {LAPSED: "lapsed", OTHER_OWNER: "other_owner", STALE_TOKEN: "stale_token"}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _lua(name: str) -> str:
    return resources.files("esl_handlers").joinpath("lua", name).read_text(encoding="utf-8")


class LeaseScripts:
    """The lease scripts registered on one Redis client: loaded once, then called by SHA.

    redis-py's ``Script`` sends EVALSHA and loads the body only on NOSCRIPT (first use, or
    after Redis restarted and lost its script cache). Build one per Redis client and share it.
    """

    def __init__(self, redis: Any) -> None:
        self.acquire = redis.register_script(_lua("acquire.lua"))
        self.renew = redis.register_script(_lua("renew.lua"))
        self.release = redis.register_script(_lua("release.lua"))
        self.check = redis.register_script(_lua("check.lua"))
        self.fenced_set = redis.register_script(_lua("fenced_set.lua"))


class NodeLease:
    """This worker's view of one node's lease.

    Not thread-safe by design: one greenlet (the node's ownership loop) acquires, renews and
    releases; handlers only call ``valid()``, ``check()`` and ``fenced_set()``.
    """

    def __init__(self, redis: Any, node: str, owner: str, ttl_ms: int, *,
                 scripts: LeaseScripts | None = None, margin_ms: int | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if margin_ms is None:
            margin_ms = max(MIN_MARGIN_MS, int(ttl_ms * MARGIN_FRACTION))
        if not 0 <= margin_ms < ttl_ms:
            raise ValueError(f"lease margin {margin_ms} ms must be below the TTL {ttl_ms} ms")
        self.redis = redis
        self.node = node
        self.owner = owner
        self.ttl_ms = ttl_ms
        self.margin_ms = margin_ms
        self.scripts = scripts or LeaseScripts(redis)
        self._clock = clock
        self._keys = [keys.node_lease(node), keys.node_fence(node)]
        self.token: int | None = None
        self._deadline = 0.0
        self.lost_reason = ""
        # What the last refused acquire saw, so a standby can retry right when the lease lapses.
        self.seen_holder: str | None = None
        self.seen_pttl_ms: int | None = None

    @property
    def renew_interval_s(self) -> float:
        return self.ttl_ms / RENEWS_PER_TTL / 1000.0

    def valid(self) -> bool:
        """True while this worker may act as owner: it holds a token and its local deadline,
        ``ttl - margin`` after the last successful acquire/renew was sent, has not passed."""
        return self.token is not None and self._clock() < self._deadline

    @property
    def deadline(self) -> float:
        """The local deadline on ``clock`` (meaningful only while a token is held)."""
        return self._deadline

    def remaining_s(self) -> float:
        return max(0.0, self._deadline - self._clock()) if self.token is not None else 0.0

    def try_acquire(self) -> bool:
        """Take the lease if it is free (or already ours). True: we own it with a new token."""
        sent = self._clock()
        res = self.scripts.acquire(keys=self._keys, args=[self.owner, self.ttl_ms])
        if int(res[0]) != 1:
            self.token = None
            self.seen_holder = _text(res[1])
            self.seen_pttl_ms = int(res[2])
            return False
        self.seen_holder, self.seen_pttl_ms = self.owner, self.ttl_ms
        self.token = int(_text(res[1]))
        self._deadline = sent + (self.ttl_ms - self.margin_ms) / 1000.0
        self.lost_reason = ""
        log.info("node lease acquired", extra={"node": self.node, "owner": self.owner,
                                                "token": self.token})
        return True

    def renew(self) -> None:
        """Extend the lease. Raises ``LeaseLost`` (and forgets the token) when the local deadline
        has passed or Redis says another token is current; Redis errors propagate unchanged and
        leave the lease held until its local deadline."""
        if self.token is None:
            raise LeaseLost(f"node {self.node}: no lease held; acquire it first")
        sent = self._clock()
        if sent >= self._deadline:
            self._lose("margin")
        code = int(self.scripts.renew(keys=self._keys,
                                      args=[self.owner, self.token, self.ttl_ms]))
        if code != OK:
            self._lose(_REASONS.get(code, f"code {code}"))
        # The reply can arrive after the old deadline (slow Redis); what counts is when the
        # request left, since Redis restarted the TTL no earlier than that.
        self._deadline = sent + (self.ttl_ms - self.margin_ms) / 1000.0

    def release(self) -> bool:
        """Give the lease up now so a standby takes over without waiting for the TTL.
        True when Redis deleted it; False when it was no longer ours. Forgets the token."""
        token, self.token = self.token, None
        self.lost_reason = "released"
        if token is None:
            return False
        code = int(self.scripts.release(keys=self._keys, args=[self.owner, token]))
        log.info("node lease released", extra={"node": self.node, "owner": self.owner,
                                                "token": token, "released": code == OK})
        return code == OK

    def drop(self, reason: str) -> None:
        """Forget the lease locally (no Redis call), e.g. when Redis is unreachable."""
        if self.token is not None:
            log.warning("node lease dropped", extra={"node": self.node, "reason": reason,
                                                     "token": self.token})
        self.token = None
        self.lost_reason = reason

    def check(self, token: int | None = None) -> int:
        """Raise ``LeaseLost`` unless ``token`` (default: ours) is the node's current lease,
        by the local deadline first and then by Redis. Returns the token checked."""
        token = self.token if token is None else token
        if token is None or (token == self.token and not self.valid()):
            raise LeaseLost(f"node {self.node}: this worker does not hold the lease")
        code = int(self.scripts.check(keys=self._keys, args=[self.owner, token]))
        if code != OK:
            raise LeaseLost(f"node {self.node}: token {token} refused "
                            f"({_REASONS.get(code, code)})")
        return token

    def fenced_set(self, key: str, value: str | bytes, px_ms: int = 0,
                   token: int | None = None) -> None:
        """``SET key value`` only while ``token`` (default: ours) is current; ``key`` must be in
        the node's slot (``keys.node_scoped``). Raises ``LeaseLost`` when refused."""
        token = self.token if token is None else token
        if token is None:
            raise LeaseLost(f"node {self.node}: this worker does not hold the lease")
        code = int(self.scripts.fenced_set(keys=[*self._keys, key],
                                           args=[self.owner, token, value, px_ms]))
        if code != OK:
            raise LeaseLost(f"node {self.node}: write to {key} with token {token} refused "
                            f"({_REASONS.get(code, code)})")

    def holder(self) -> str | None:
        """Who holds the lease according to Redis (None: nobody)."""
        value = self.redis.get(self._keys[0])
        return None if value is None else _text(value)

    def _lose(self, reason: str) -> None:
        token = self.token
        self.token = None
        self.lost_reason = reason
        log.warning("node lease lost", extra={"node": self.node, "owner": self.owner,
                                               "token": token, "reason": reason})
        raise LeaseLost(f"node {self.node}: lease lost ({reason})")


def lease_holder(redis: Any, node: str) -> str | None:
    """Who consumes ``node``'s events according to Redis (None: nobody right now)."""
    value = redis.get(keys.node_lease(node))
    return None if value is None else _text(value)
