"""The fast credit view in Redis: what the call flow reads instead of the SQL store.

Consistency with SQL, which stays the truth:

* the SQL store publishes, never Redis adds: after each commit that changes a balance (the
  rating consumer's batch, a top-up, an adjustment) the committer reads the account back and
  writes the absolute figures with the account's ``seq`` (``lua/publish.lua``); an older seq
  never overwrites a newer one, so racing publishers converge on the newest state, and a
  lost publish is repaired by the next one (or ``cc-core billing sync``);
* a live call's spend is not in SQL until it ends and is rated: each billed call holds a
  reservation in ``credit:live`` from its billable start (``start``) through its end
  (``end`` keeps it, with the end time) until the rating consumer publishes the balance that
  includes it, and drops it in that same script. So between a call's end and its rating the
  money is counted once, as a reservation, never zero times nor twice;
* available credit = balance - spend of the reservations so far; included seconds likewise.

Cost per call: the head of the view also keeps running totals (``live_n``, the sum of the
live calls' start times, ``pending_fen`` of ended calls not rated yet), kept by the same
writes as the reservations, so a bound on what the live calls can spend is read in O(1);
only a tenant whose credit could run out within ``HORIZON_MS`` by that bound has its
reservations read one by one (``read``) and a deadline computed.

The hard stop: every billed call of a tenant is cut at the same moment, the last one at which
the spend of all its live calls (each increment counted in full as soon as it starts, the
dearest live rate for the charged part) still fits in the credit. A call cut there has paid
for the increment it is in, so the credit does not go below zero beyond the switch's
one-second timer granularity; every change (a call starts or ends, a publish) bumps
``version`` and the workers re-arm their calls of that tenant.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from importlib import resources
from typing import Any

from cc_core import keys

HORIZON_MS = 3600 * 1000     # credit lasting longer than this: no stop armed yet (checked
                             # again by the worker well before it could run out)


def now_ms() -> int:
    return int(time.time() * 1000)


def _lua(name: str) -> str:
    return resources.files("billing").joinpath("lua", name).read_text(encoding="utf-8")


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


@dataclass(frozen=True)
class Live:
    start_ms: int
    rate: int
    end_ms: int          # 0 while talking


@dataclass(frozen=True)
class Credit:
    balance_fen: int
    included_left_s: int
    increment_s: int
    rates: dict[str, int]
    low_credit_fen: int
    version: int
    live: dict[str, Live]


@dataclass(frozen=True)
class Head:
    """The credit hash alone (no reservations): enough for the O(1) bounds."""

    balance_fen: int
    increment_s: int
    dearest: int
    version: int
    live_n: int
    live_start_sum: int
    pending_fen: int


def bound_fen(head: Head, at_ms: int, horizon_ms: int = 0) -> int:
    """At least what the tenant's reservations will have cost ``horizon_ms`` after ``at_ms``
    (each live call one increment more, at the dearest rate; included seconds not counted)."""
    elapsed_ms = max(0, head.live_n * at_ms - head.live_start_sum)
    seconds = -(-elapsed_ms // 1000) + head.live_n * (horizon_ms // 1000 + head.increment_s)
    return -(-seconds * head.dearest // 60) + max(0, head.pending_fen)


def surely_lasts(head: Head, at_ms: int) -> bool:
    return bound_fen(head, at_ms, HORIZON_MS) <= head.balance_fen


def surely_admits(head: Head, at_ms: int) -> bool:
    one = -(-head.increment_s * head.dearest // 60)
    return head.balance_fen - bound_fen(head, at_ms) >= max(1, one)


def ended_cost(start_ms: int, end_ms: int, increment_s: int, rate: int) -> int:
    step = increment_s * 1000
    units = -(-max(0, end_ms - start_ms) // step)
    return -(-units * increment_s * rate // 60)


def spend(credit: Credit, at_ms: int) -> tuple[int, int]:
    """(fen, included seconds) the live calls will have cost at ``at_ms``: each increment in
    full from its first millisecond."""
    step = credit.increment_s * 1000
    used_s = 0
    dearest = 0
    for c in credit.live.values():
        until = min(at_ms, c.end_ms) if c.end_ms else at_ms
        if until > c.start_ms:
            used_s += -(-(until - c.start_ms) // step) * credit.increment_s
        dearest = max(dearest, c.rate)
    included = min(used_s, credit.included_left_s)
    return -(-(used_s - included) * dearest // 60), included


def available(credit: Credit, at_ms: int) -> tuple[int, int]:
    fen, included = spend(credit, at_ms)
    return credit.balance_fen - fen, credit.included_left_s - included


def has_credit(credit: Credit, at_ms: int) -> bool:
    """Whether a new call could be billed one increment: included seconds for it, or the fen
    of one increment at the tenant's dearest rate (a call admitted with less would be cut as
    soon as it is answered)."""
    fen, included_s = available(credit, at_ms)
    one = -(-credit.increment_s * max(credit.rates.values(), default=0) // 60)
    return included_s >= credit.increment_s or fen >= max(1, one)


def deadline_ms(credit: Credit, at_ms: int) -> int | None:
    """The last moment every live call of the tenant may go on, or None when the credit lasts
    past ``HORIZON_MS`` (or no call is billed)."""
    if not any(c.end_ms == 0 for c in credit.live.values()):
        return None

    def fits(t: int) -> bool:
        # +1: a call cut at t has begun the increment that starts at t
        return spend(credit, t + 1)[0] <= credit.balance_fen

    if not fits(at_ms):
        return at_ms
    if fits(at_ms + HORIZON_MS):
        return None
    low, high = at_ms, at_ms + HORIZON_MS
    while high - low > 1:
        mid = (low + high) // 2
        if fits(mid):
            low = mid
        else:
            high = mid
    return low


class CreditView:
    """One Redis client's view of the tenants' credit (workers, consumer, CLI)."""

    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self._publish = redis.register_script(_lua("publish.lua"))

    def head(self, tenant: str) -> Head | None:
        """The credit hash alone; None when the tenant has no published account."""
        return _head(self.redis.hgetall(keys.credit(tenant)))

    def read(self, tenant: str) -> Credit | None:
        """The view with every reservation; None when the tenant has no published account
        (its calls are not controlled)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(keys.credit(tenant))
        pipe.hgetall(keys.credit_live(tenant))
        head, live = pipe.execute()
        if not head or b"seq" not in head and "seq" not in head:
            return None
        h = {_text(k): _text(v) for k, v in head.items()}
        calls = {}
        for uuid, value in live.items():
            start, rate, end = (int(x) for x in _text(value).split()[:3])
            calls[_text(uuid)] = Live(start, rate, end)
        return Credit(int(h["balance_fen"]), int(h["included_left_s"]), int(h["increment_s"]),
                      {"mobile": int(h["rate_mobile"]), "landline": int(h["rate_landline"])},
                      int(h["low_credit_fen"]), int(h.get("version", 0)), calls)

    def version(self, tenant: str) -> int:
        return int(self.redis.hget(keys.credit(tenant), "version") or 0)

    def start(self, tenant: str, uuid: str, caller_kind: str, start_ms: int) -> Head | None:
        """A call's billable time begins: its reservation; the head it joins (None: the
        tenant is not controlled)."""
        head = self.head(tenant)
        if head is None:
            return None
        found = self.redis.hmget(keys.credit(tenant), "rate_mobile", "rate_landline")
        rate = int(found[0] if caller_kind == "mobile" else found[1])
        pipe = self.redis.pipeline(transaction=True)
        pipe.hsetnx(keys.credit_live(tenant), uuid, f"{start_ms} {rate} 0")
        pipe.hincrby(keys.credit(tenant), "live_n", 1)
        pipe.hincrby(keys.credit(tenant), "live_start_sum", start_ms)
        pipe.hincrby(keys.credit(tenant), "version", 1)
        pipe.hgetall(keys.credit(tenant))
        added, *_, after = pipe.execute()
        if not added:        # already reserved (another worker's take-over raced): undo
            pipe = self.redis.pipeline(transaction=True)
            pipe.hincrby(keys.credit(tenant), "live_n", -1)
            pipe.hincrby(keys.credit(tenant), "live_start_sum", -start_ms)
            pipe.execute()
        return _head(after)

    def end(self, tenant: str, uuid: str, end_ms: int) -> None:
        """Keeps the reservation, ended, with what it cost at the dearest rate, until the
        rating that includes it is published."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hget(keys.credit_live(tenant), uuid)
        pipe.hgetall(keys.credit(tenant))
        found, raw = pipe.execute()
        head = _head(raw)
        if found is None or head is None:
            return
        start, rate, end = (int(x) for x in _text(found).split()[:3])
        if end:
            return
        cost = ended_cost(start, end_ms, head.increment_s, head.dearest)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(keys.credit_live(tenant), uuid, f"{start} {rate} {end_ms} {cost}")
        pipe.hincrby(keys.credit(tenant), "live_n", -1)
        pipe.hincrby(keys.credit(tenant), "live_start_sum", -start)
        pipe.hincrby(keys.credit(tenant), "pending_fen", cost)
        pipe.hincrby(keys.credit(tenant), "version", 1)
        pipe.execute()

    def publish(self, tenant: str, snapshot: dict[str, int], rated: list[str],
                at_ms: int | None = None) -> tuple[bool, int]:
        """(applied, alert: 0 none, 1 low credit raised, 2 restored)."""
        args = [snapshot["seq"], snapshot["balance_fen"], snapshot["included_left_s"],
                snapshot["increment_s"], snapshot["rate_mobile"], snapshot["rate_landline"],
                snapshot["low_credit_fen"], at_ms if at_ms is not None else now_ms(),
                keys.BILLING_EVENTS_MAXLEN, *rated]
        applied, alert = self._publish(
            keys=[keys.credit(tenant), keys.credit_live(tenant), keys.billing_events(tenant)], args=args)
        return bool(applied), int(alert)


def _head(raw: Any) -> Head | None:
    if not raw:
        return None
    h = {_text(k): _text(v) for k, v in raw.items()}
    if "seq" not in h:
        return None
    return Head(int(h["balance_fen"]), int(h["increment_s"]),
                max(int(h["rate_mobile"]), int(h["rate_landline"])), int(h.get("version", 0)),
                int(h.get("live_n", 0)), int(h.get("live_start_sum", 0)),
                int(h.get("pending_fen", 0)))
