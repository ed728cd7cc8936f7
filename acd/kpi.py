"""Contact-centre KPIs of every queue, read from the ACD's state in Redis in a few pipelined
round trips (for the KPI collector, ``metrics.queues``, and anything else that shows them).

Read only: nothing here writes, so a scrape cannot disturb the ACD. Three round trips
whatever the number of tenants and queues: the queue names of every tenant; per queue its
hash, waiting count, tiers and listed callbacks, and per tenant one script for its queues'
oldest waits; then the tiered agents' status and state and the callbacks' states. (On a Redis
Cluster, whose client runs no script in a pipeline, the scripts are one call per tenant.)

What each figure means (``docs``: README "Observability", the metrics contract):

* today's counters are the tenant-local day's, as the scripts keep them (``roll_qday``);
  ``abandoned`` here leaves short abandons out, ``abandoned_short`` counts them;
* ``oldest_wait_s``: now minus the earliest wait base among the callers waiting now, the base
  the queue ranks them by: the join time (a resumed caller: its first call's; a queue with
  ``time_base_score: system``: the call's start);
* ``callbacks_pending``: queued callbacks not yet reached, waiting (offered included) or
  scheduled for a retry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from redis.cluster import RedisCluster

from acd.store import _PRIO_SPAN, DEFAULT_TZ, _int, _lua, _text, today_counters
from cc_core import keys
from cc_core.tenants.model import AgentState, AgentStatus

AGENT_STATUSES = tuple(s.value for s in AgentStatus)
AGENT_STATES = tuple(s.value for s in AgentState)
# A value the scripts never write (a hash edited by hand, a newer release): one bucket, so the
# label stays bounded whatever Redis holds.
OTHER = "other"
_PENDING = frozenset({"Waiting", "Trying", "Scheduled"})
# Callbacks looked at per queue per read, at most (a bound on one scrape's work).
MAX_CALLBACKS = 10_000


@dataclass(frozen=True)
class QueueKpi:
    tenant: str
    queue: str
    waiting: int
    oldest_wait_s: float
    answered: int
    answered_in_sl: int
    answer_wait_ms: int
    abandoned: int                 # short abandons excluded
    abandoned_short: int
    overflowed: int
    aht_s: float | None            # None: no call handled yet
    callbacks_pending: int
    service_level_s: int
    short_abandon_s: int
    agents: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (status, state)

    @property
    def service_level_ratio(self) -> float | None:
        offered = self.answered + self.abandoned
        return self.answered_in_sl / offered if offered else None

    @property
    def abandon_ratio(self) -> float | None:
        offered = self.answered + self.abandoned
        return self.abandoned / offered if offered else None

    @property
    def asa_s(self) -> float | None:
        return self.answer_wait_ms / 1000 / self.answered if self.answered else None


def _label(value: str, allowed: tuple[str, ...]) -> str:
    return value if value in allowed else OTHER


class KpiReader:
    """Reads :class:`QueueKpi` for tenants; its one script is registered on ``redis``."""

    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self._oldest = redis.register_script(_lua("oldest_base.lua"))
        self._cluster = isinstance(redis, RedisCluster)

    def read(self, tenants: Iterable[tuple[str, str]], now_ms: int) -> list[QueueKpi]:
        """KPIs of every queue of ``tenants`` ((tenant id, time zone) pairs), as of
        ``now_ms``; sorted by tenant and queue. Redis errors propagate."""
        tenants = list(dict(tenants).items())      # each tenant once, in the given order
        pipe = self.redis.pipeline(transaction=False)
        for tid, _tz in tenants:
            pipe.smembers(keys.acd_queues(tid))
        names = [sorted(_text(q) for q in qs) for qs in pipe.execute()]
        pairs = [(tid, tz, q) for (tid, tz), qs in zip(tenants, names, strict=True) for q in qs]
        if not pairs:
            return []

        pipe = self.redis.pipeline(transaction=False)
        for tid, _tz, q in pairs:
            pipe.hgetall(keys.acd_queue(tid, q))
            pipe.zcard(keys.acd_queue_waiting(tid, q))
            pipe.zrange(keys.acd_queue_tiers(tid, q), 0, -1)
            pipe.zrangebyscore(keys.acd_queue_callbacks(tid, q), now_ms, "+inf", start=0,
                               num=MAX_CALLBACKS)
        # The oldest waits: one script per tenant (its queues share its slot), in the same
        # pipeline on one server; a cluster client refuses scripts in a pipeline, so there
        # one call per tenant, each to the tenant's own master.
        by_tenant: dict[str, list[str]] = {}
        for tid, _tz, q in pairs:
            by_tenant.setdefault(tid, []).append(q)
        if self._cluster:
            raw = pipe.execute()
            bases = [self._oldest(keys=[keys.acd_queue_waiting(t, q) for q in qs],
                                  args=[_PRIO_SPAN]) for t, qs in by_tenant.items()]
        else:
            for t, qs in by_tenant.items():
                self._oldest(keys=[keys.acd_queue_waiting(t, q) for q in qs], args=[_PRIO_SPAN],
                             client=pipe)
            raw = pipe.execute()
            bases = raw[4 * len(pairs):]
        oldest = [b for per_tenant in bases for b in per_tenant]   # in pairs' order
        rows = [[*raw[4 * i:4 * i + 2], oldest[i], *raw[4 * i + 2:4 * i + 4]]
                for i in range(len(pairs))]

        # Each agent and callback once, however many queues name it.
        agent_keys: dict[tuple[str, str], int] = {}
        callback_keys: dict[tuple[str, str], int] = {}
        pipe = self.redis.pipeline(transaction=False)
        for (tid, _tz, _q), (_h, _n, _o, tiers, cbs) in zip(pairs, rows, strict=True):
            for a in map(_text, tiers):
                if (tid, a) not in agent_keys:
                    agent_keys[(tid, a)] = len(agent_keys) + len(callback_keys)
                    pipe.hmget(keys.acd_agent(tid, a), "status", "state")
            for u in map(_text, cbs):
                if (tid, u) not in callback_keys:
                    callback_keys[(tid, u)] = len(agent_keys) + len(callback_keys)
                    pipe.hget(keys.acd_member(tid, u), "state")
        found = pipe.execute() if agent_keys or callback_keys else []

        days: dict[str, str] = {}
        out = []
        for (tid, tz, q), (h, n, first, tiers, cbs) in zip(pairs, rows, strict=True):
            f = {_text(k): _text(v) for k, v in h.items()}
            if not f:
                continue    # removed by a sync between the two reads
            if tid not in days:
                days[tid] = _day(tz, now_ms)
            c = today_counters(f, days[tid])
            agents: dict[tuple[str, str], int] = {}
            for a in map(_text, tiers):
                status, state = found[agent_keys[(tid, a)]]
                if status is None:
                    continue    # a tier naming an agent removed meanwhile
                pair = (_label(_text(status), AGENT_STATUSES), _label(_text(state), AGENT_STATES))
                agents[pair] = agents.get(pair, 0) + 1
            pending = sum(1 for u in map(_text, cbs)
                          if _text(found[callback_keys[(tid, u)]]) in _PENDING)
            short = min(c["abandoned_short"], c["abandoned"])
            out.append(QueueKpi(
                tenant=tid, queue=q, waiting=int(n),
                oldest_wait_s=max(0.0, (now_ms - _int(first)) / 1000) if _text(first) else 0.0,
                answered=c["answered"], answered_in_sl=c["answered_sl"],
                answer_wait_ms=c["wait_ms"], abandoned=c["abandoned"] - short,
                abandoned_short=short, overflowed=c["overflowed"],
                aht_s=_int(f.get("aht_ms")) / 1000 if _int(f.get("aht_n")) > 0 else None,
                callbacks_pending=pending, service_level_s=_int(f.get("sl_s"), 20),
                short_abandon_s=_int(f.get("short_s"), 5), agents=agents))
        return out


def _day(tz: str, now_ms: int) -> str:
    try:
        zone = ZoneInfo(tz or DEFAULT_TZ)
    except (ValueError, KeyError):     # validated by the config model; never a failed scrape
        zone = ZoneInfo(DEFAULT_TZ)
    return datetime.fromtimestamp(now_ms / 1000, zone).strftime("%Y%m%d")
