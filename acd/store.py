"""The ACD's atomic core in Redis: agents, queues and waiting callers of a tenant, paired by
Lua scripts (``acd/lua/*.lua``) so two workers can never offer one agent twice.

Guarantees, each kept inside one script:

* an agent is offered for one caller at a time, across every queue it serves (its state is
  one field of one hash; the tenant's ``free`` set mirrors "Available, Waiting, registered");
* a reservation is a lease: its own token (``INCR acd:seq``) and deadline, checked by
  ``offering``/``answered``/``agent_failed``; a worker that stalled past the deadline gets
  False and must not ring or bridge; ``tick`` ends lapsed reservations (agents Waiting, the
  caller Waiting again with the same rank);
* every script is idempotent per call uuid (enqueue, answered, leave and call_ended twice
  change things once).

All times come from ``clock_ms`` (wall clock by default) and the tenant-local day from the
tenant's time zone: the scripts never read Redis' clock, so tests move time by hand. Every key
of a tenant carries ``{t:<tenant>}``: the scripts run unchanged on Redis Cluster.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

from acd.errors import (
    AcdError,
    AlreadyLoggedIn,
    AlreadyQueued,
    BadLeaveReason,
    UnknownAgent,
    UnknownMember,
    UnknownQueue,
)
from acd.events import LeaveReason, miss_kind
from cc_core import keys
from cc_core.redisconn import run_pipeline
from cc_core.tenants.model import AgentStatus, Queue, Tenant

DEFAULT_TZ = "Asia/Shanghai"
# How long a fresh reservation waits for offering(): the worker's time from dispatch to ring.
RESERVE_MS = 5_000
# Added to the ring timeout at offering(): the holder's time to report the outcome.
OFFER_MARGIN_MS = 5_000
# Waiting callers one dispatch pass looks at, at most (callers nobody free can serve are
# skipped, so this bounds the work of a pass over a long queue).
SCAN_CALLERS = 100
TICK_BATCH = 500
# Rank score: priority first (higher first), then the wait base in ms. Exact in a double:
# (PRIORITY_MAX + 1) * 10^13 < 2^53.
PRIORITY_MAX = 500
_PRIO_SPAN = 10**13

# Return codes of the scripts (see each file's header).
JOINED, ALREADY, UNKNOWN_QUEUE, IN_OTHER_QUEUE = 1, 2, -1, -3
CB_IGNORED, CB_RETRY, CB_GAVE_UP = 0, 1, 2
# Member ids of queued callbacks (a number to call back, not a live channel): the flow runs
# them in their own greenlet, and the API and the IVR's callback exit both name them so.
CALLBACK_PREFIX = "cb-"
OK, GONE, AGAIN, MAX_NO_ANSWER = 1, 0, 2, 2
UNKNOWN_AGENT, ALREADY_LOGGED_IN = -1, -2

_LEAVE_ALIASES = {"abandoned": "hangup", "break_out": "hangup", "caller_hangup": "hangup",
                  "max_wait": "timeout", "exit_with_key": "exit_key"}


@dataclass(frozen=True)
class OfferedAgent:
    agent: str
    contact: str
    type: str            # "callback" | "uuid-standby"
    delay_ms: int        # ring-progressively: when to start ringing this one (0 otherwise)


@dataclass(frozen=True)
class Offer:
    tenant: str
    queue: str
    call_uuid: str       # the waiting caller (member) this offer is for
    node: str            # the FreeSWITCH node the caller is on (from enqueue)
    token: str           # the reservation's token (one per offer, shared by its agents)
    deadline_ms: int
    agents: tuple[OfferedAgent, ...]   # one, or several for ring-all / ring-progressively
    callback: str = ""   # non-empty: a queued callback to this number, not a live caller
    # Its agents are Receiving already (the joining caller's own offer,
    # enqueue_dispatch(ring_now=True)): the holder originates them without offering().
    rung: bool = False


@dataclass(frozen=True)
class Joined:
    position: int        # 1-based; 0 when the caller is not waiting (offered or answered)
    waiting: int
    resumed: bool


@dataclass(frozen=True)
class AgentView:
    agent: str
    status: str
    state: str
    contact: str
    type: str
    registered: bool
    busy_until_ms: int
    no_answer_count: int       # consecutive no-answers (reset by an answer)
    calls_today: int
    talk_ms_today: int
    no_answers_today: int
    call_uuid: str             # the caller it is reserved for / talking to ("" none)
    queue: str
    # Per node, what its registrations say of the agent's phone (nodes that said nothing: absent
    # here; ``registered`` is the sum of them, or the one flag of a phone bound to no node).
    registered_on: Mapping[str, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class QueueView:
    queue: str
    strategy: str
    waiting: int
    answered_today: int
    abandoned_today: int
    overflowed_today: int
    agents_available: int
    agents_free: int
    avg_handle_ms: int | None
    estimated_wait_s: int | None
    # Service level of today (answered_today and abandoned_today include these):
    answered_in_sl_today: int = 0      # answered within the queue's service_level_s
    abandoned_short_today: int = 0     # hung up waiting less than the queue's short_abandon_s
    answer_wait_ms_today: int = 0      # the waits of the calls answered today, summed (ASA)


@dataclass(frozen=True)
class MemberView:
    call_uuid: str
    queue: str
    state: str                 # Waiting | Trying | Answered | Abandoned | Done |
    #                            Scheduled (a callback waiting for its retry)
    position: int              # 1-based while Waiting, else 0
    priority: int
    caller: str
    node: str
    joined_ms: int
    agents: tuple[str, ...]    # offered to (Trying) or talking to (Answered)
    callback: str


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else "" if value is None else str(value)


def _int(value: Any, default: int = 0) -> int:
    text = _text(value)
    try:
        return int(float(text)) if text else default
    except ValueError:
        return default


def _lua(name: str) -> str:
    return resources.files("acd").joinpath("lua", name).read_text(encoding="utf-8")


def _kv(mapping: Mapping[str, int]) -> str:
    return ",".join(f"{k}={int(v)}" for k, v in sorted(mapping.items()))


#: The queue hash's daily counters (reset by _lib.lua's roll_qday when the day changes).
DAILY_COUNTERS = ("answered", "abandoned", "overflowed", "answered_sl", "wait_ms",
                  "abandoned_short")


def today_counters(fields: Mapping[str, str], day: str) -> dict[str, int]:
    """A queue hash's daily counters as of ``day`` (tenant-local YYYYMMDD): all 0 when the
    last write was on another day (the scripts roll the day over on their next write only)."""
    fresh = fields.get("qday") == day
    return {name: _int(fields.get(name)) if fresh else 0 for name in DAILY_COUNTERS}


def rank_score(priority: int, base_ms: int) -> int:
    """A waiting caller's rank: higher priority first, then the earlier wait base."""
    p = min(max(int(priority), 0), PRIORITY_MAX)
    return (PRIORITY_MAX - p) * _PRIO_SPAN + max(0, int(base_ms))


_DISPATCH = ("dispatch", "dispatch_agent")
_SCRIPTS = ("enqueue", "dispatch", "dispatch_agent", "offering", "answered", "agent_failed",
            "bridge_failed", "leave", "call_ended", "tick", "agent_set", "callback_failed",
            "queue_reindex")


class AcdScripts:
    """The ACD scripts registered on one Redis client: loaded once, then called by SHA.
    Each is ``_lib.lua`` (+ ``_dispatch.lua`` for the two dispatch scripts) + its file."""

    def __init__(self, redis: Any) -> None:
        lib, dispatch = _lua("_lib.lua"), _lua("_dispatch.lua")
        self.by_name: dict[str, Any] = {}
        for name in _SCRIPTS:
            body = lib + "\n" + (dispatch + "\n" if name in _DISPATCH else "") + _lua(f"{name}.lua")
            self.by_name[name] = redis.register_script(body)

    def __getitem__(self, name: str) -> Any:
        return self.by_name[name]


class Acd:
    def __init__(self, redis: Any, *, clock_ms: Callable[[], int] | None = None,
                 scripts: AcdScripts | None = None, rng: random.Random | None = None) -> None:
        self.redis = redis
        self._clock = clock_ms or (lambda: int(time.time() * 1000))
        self.scripts = scripts or AcdScripts(redis)
        self._rng = rng or random.Random()
        self._tz: dict[str, ZoneInfo] = {}
        self._days: dict[str, tuple[int, str]] = {}    # tenant -> (minute, its local day)

    # -- helpers --------------------------------------------------------------------------

    def _zone(self, tenant: str) -> ZoneInfo:
        zone = self._tz.get(tenant)
        if zone is None:
            name = _text(self.redis.hget(keys.acd_tenant(tenant), "timezone")) or DEFAULT_TZ
            zone = self._tz[tenant] = ZoneInfo(name)
        return zone

    def day(self, tenant: str, now_ms: int | None = None) -> str:
        """The tenant-local day (YYYYMMDD) of ``now_ms`` (default: now)."""
        now_ms = self._clock() if now_ms is None else now_ms
        # Every script call passes the day: worked out once per tenant and minute (UTC
        # offsets are whole minutes, so a local midnight always starts a minute).
        minute = now_ms // 60_000
        hit = self._days.get(tenant)
        if hit is not None and hit[0] == minute:
            return hit[1]
        day = datetime.fromtimestamp(now_ms / 1000, self._zone(tenant)).strftime("%Y%m%d")
        self._days[tenant] = (minute, day)
        return day

    def _run(self, name: str, tenant: str, extra_keys: Sequence[str],
             extra_args: Sequence[Any], pipe: Any = None) -> Any:
        """Run one script now, or queue it on ``pipe`` (its reply then comes from
        ``pipe.execute()``)."""
        now = self._clock()
        common = [keys.acd_prefix(tenant), keys.acd_free(tenant), keys.acd_available(tenant),
                  keys.acd_timers(tenant), keys.acd_seq(tenant), keys.acd_events(tenant)]
        return self.scripts[name](keys=[*common, *extra_keys],
                                  args=[now, self.day(tenant, now), *extra_args],
                                  client=pipe)

    # -- configuration ----------------------------------------------------------------------

    def sync(self, tenant: Tenant) -> None:
        """Write agents' config, queues' settings and tiers; drop what is no longer
        configured (a removed agent is logged out). Live status/state/counters are kept."""
        t = tenant.tenant
        r = self.redis
        old_agents = {_text(a) for a in r.smembers(keys.acd_agents(t))}
        old_queues = {_text(q) for q in r.smembers(keys.acd_queues(t))}
        agent_queues: dict[str, list[tuple[str, int]]] = {a: [] for a in tenant.agents}
        for qname, q in tenant.queues.items():
            for tier in q.tiers:
                agent_queues[tier.agent].append((qname, tier.level * 100_000 + tier.position))
        pipe = r.pipeline(transaction=True)
        pipe.hset(keys.acd_tenant(t), mapping={"timezone": tenant.timezone})
        for aid, a in tenant.agents.items():
            ak = keys.acd_agent(t, aid)
            pipe.hset(ak, mapping={
                "contact": a.contact, "type": a.type.value, "max_na": a.max_no_answer,
                "na_status": a.no_answer_status.value, "wrap_s": a.wrap_up_s,
                "reject_s": a.reject_delay_s, "busy_s": a.busy_delay_s,
                "noans_s": a.no_answer_delay_s, "notreg_s": a.not_registered_delay_s,
                "skills": _kv(a.skills), "alevel": a.level, "grp": a.group or "",
                "weight": a.weight})
            pipe.hsetnx(ak, "status", AgentStatus.LOGGED_OUT.value)
            pipe.hsetnx(ak, "state", "Waiting")
            pipe.hsetnx(ak, "idle_since", 0)
            pipe.sadd(keys.acd_agents(t), aid)
            qk = keys.acd_agent_queues(t, aid)
            pipe.delete(qk)
            if agent_queues[aid]:
                pipe.zadd(qk, dict(agent_queues[aid]))
        for aid in old_agents - set(tenant.agents):
            pipe.delete(keys.acd_agent(t, aid), keys.acd_agent_queues(t, aid))
            pipe.srem(keys.acd_agents(t), aid)
            pipe.srem(keys.acd_free(t), aid)
            pipe.srem(keys.acd_available(t), aid)
            pipe.xadd(keys.acd_events(t), {"CC-Action": "agent-status-change", "CC-Agent": aid,
                                           "CC-Agent-Status": AgentStatus.LOGGED_OUT.value},
                      maxlen=100_000, approximate=True)
        for qname, q in tenant.queues.items():
            pipe.hset(keys.acd_queue(t, qname), mapping=self._queue_fields(q))
            pipe.sadd(keys.acd_queues(t), qname)
            tk = keys.acd_queue_tiers(t, qname)
            pipe.delete(tk)
            if q.tiers:
                pipe.zadd(tk, {tier.agent: tier.level * 100_000 + tier.position
                               for tier in q.tiers})
        for qname in old_queues - set(tenant.queues):
            pipe.delete(keys.acd_queue(t, qname), keys.acd_queue_tiers(t, qname),
                        keys.acd_queue_waiting(t, qname), keys.acd_queue_idle(t, qname),
                        keys.acd_queue_callbacks(t, qname))
            pipe.srem(keys.acd_queues(t), qname)
        pipe.execute()
        self._tz[t] = ZoneInfo(tenant.timezone)
        self._days.pop(t, None)
        for qname in tenant.queues:
            self._run("queue_reindex", t, [keys.acd_queue_tiers(t, qname)], [qname])
        # An agent new to the ACD starts with the status its config gives; after that only
        # logins, logouts and breaks change it (a re-sync keeps what they did).
        for aid in set(tenant.agents) - old_agents:
            status = tenant.agents[aid].status
            try:
                if status is AgentStatus.AVAILABLE:
                    self._agent_set(t, aid, "login", "0")
                elif status is AgentStatus.AVAILABLE_ON_DEMAND:
                    self._agent_set(t, aid, "login", "1")
                elif status is AgentStatus.ON_BREAK:
                    self._agent_set(t, aid, "break", "")
            except AlreadyLoggedIn:
                pass    # another worker syncing the same version logged them in first

    @staticmethod
    def _queue_fields(q: Queue) -> dict[str, Any]:
        relax = ",".join(f"{r.after_s}:{r.min_proficiency}"
                         for r in sorted(q.skills_relax, key=lambda r: r.after_s))
        return {"strategy": q.strategy.value, "ring_s": q.ring_timeout_s,
                "prog_s": q.ring_progressively_delay_s, "weights": _kv(q.weights),
                "skills": _kv(q.skills), "relax": relax, "tb": q.time_base_score,
                "tra": int(q.tier_rules_apply), "trw": q.tier_rule_wait_s,
                "trm": int(q.tier_rule_wait_multiply_level),
                "trn": int(q.tier_rule_no_agent_no_wait),
                "discard_s": q.discard_abandoned_after_s,
                "resume": int(q.abandoned_resume_allowed),
                "cb_retries": q.callback.retries, "cb_retry_s": q.callback.retry_after_s,
                "cb_give_up_s": q.callback.give_up_after_s,
                "sl_s": q.service_level_s, "short_s": q.short_abandon_s}

    # -- agents -------------------------------------------------------------------------------

    def _agent_set(self, tenant: str, agent: str, op: str, arg: str = "",
                   node: str = "") -> list[Any]:
        res = self._run("agent_set", tenant, [keys.acd_agent(tenant, agent)],
                        [agent, op, arg, node])
        code = int(res[0])
        if code == UNKNOWN_AGENT:
            raise UnknownAgent(tenant, agent)
        if code == ALREADY_LOGGED_IN:
            raise AlreadyLoggedIn(tenant, agent, _text(res[1]))
        return list(res)

    def login(self, tenant: str, agent: str, *, on_demand: bool = False) -> AgentView:
        self._agent_set(tenant, agent, "login", "1" if on_demand else "0")
        return self.agent(tenant, agent)

    def logout(self, tenant: str, agent: str) -> AgentView:
        self._agent_set(tenant, agent, "logout")
        return self.agent(tenant, agent)

    def set_break(self, tenant: str, agent: str, reason: str = "") -> AgentView:
        self._agent_set(tenant, agent, "break", reason)
        return self.agent(tenant, agent)

    def set_available(self, tenant: str, agent: str, *, on_demand: bool = False) -> AgentView:
        self._agent_set(tenant, agent, "available", "1" if on_demand else "0")
        return self.agent(tenant, agent)

    def set_registered(self, tenant: str, agent: str, registered: bool,
                       node: str = "") -> None:
        """Whether the agent's phone is registered: on ``node`` (its callers' offers skip the
        agent while that node says not; ``registered`` is true while any node says so), or
        everywhere with no node (a contact that dials no registration)."""
        self._agent_set(tenant, agent, "registered", "1" if registered else "0", node)

    def agent(self, tenant: str, agent: str) -> AgentView:
        raw = self.redis.hgetall(keys.acd_agent(tenant, agent))
        if not raw:
            raise UnknownAgent(tenant, agent)
        return self._agent_view(tenant, agent, raw)

    def agents(self, tenant: str) -> list[AgentView]:
        ids = sorted(_text(a) for a in self.redis.smembers(keys.acd_agents(tenant)))
        pipe = self.redis.pipeline(transaction=False)
        for aid in ids:
            pipe.hgetall(keys.acd_agent(tenant, aid))
        return [self._agent_view(tenant, aid, raw)
                for aid, raw in zip(ids, pipe.execute(), strict=True) if raw]

    def _agent_view(self, tenant: str, agent: str, raw: Mapping[Any, Any]) -> AgentView:
        f = {_text(k): _text(v) for k, v in raw.items()}
        today = f.get("day") == self.day(tenant)
        return AgentView(
            agent=agent, status=f.get("status", ""), state=f.get("state", ""),
            contact=f.get("contact", ""), type=f.get("type", ""),
            registered=f.get("reg") != "0", busy_until_ms=_int(f.get("busy_until")),
            no_answer_count=_int(f.get("noans_seq")),
            calls_today=_int(f.get("calls")) if today else 0,
            talk_ms_today=_int(f.get("talk_ms")) if today else 0,
            no_answers_today=_int(f.get("noans")) if today else 0,
            call_uuid=f.get("member", ""), queue=f.get("rq", ""),
            registered_on={k[4:]: v == "1" for k, v in f.items() if k.startswith("reg@")})

    # -- callers --------------------------------------------------------------------------------

    def enqueue(self, tenant: str, queue: str, call_uuid: str, *, node: str, priority: int = 0,
                skills: Mapping[str, int] = {}, caller: str = "", start_ms: int | None = None,
                callback: str = "", place_of: str = "", pipe: Any = None) -> Joined:
        """The caller joins ``queue`` (idempotent per call uuid). A callback (``callback``:
        the number to call) takes the place ``place_of`` (the caller who asked for it) had
        in this queue, and is given up after the queue's ``callback.give_up_after_s``. With
        ``pipe`` the script is only queued there: the result is a placeholder
        (``enqueue_dispatch`` reads both)."""
        now = self._clock()
        start = "" if start_ms is None else str(int(start_ms))
        start_score = "" if start_ms is None else str(rank_score(priority, int(start_ms)))
        res = self._run("enqueue", tenant, [
            keys.acd_queue(tenant, queue), keys.acd_queue_waiting(tenant, queue),
            keys.acd_member(tenant, call_uuid),
            keys.acd_abandoned(tenant, queue, caller or "-"),
            keys.acd_member(tenant, place_of or call_uuid)],
            [queue, call_uuid, node, int(priority), caller, _kv(skills), now,
             rank_score(priority, now), callback, start, start_score, place_of], pipe=pipe)
        if pipe is not None:
            return Joined(position=0, waiting=0, resumed=False)
        return self._joined(tenant, queue, call_uuid, res)

    def enqueue_dispatch(self, tenant: str, queue: str, call_uuid: str, *, node: str,
                         priority: int = 0, skills: Mapping[str, int] = {}, caller: str = "",
                         max_offers: int = 16, pipe: Any = None, ring_now: bool = False,
                         ) -> tuple[Joined, list[Offer], list[Any]]:
        """``enqueue`` then ``dispatch`` of the same queue in one round trip: a caller who
        joins is offered a free agent at once, without a second wait on Redis. A refused
        enqueue raises as ``enqueue`` does; the offers of that dispatch (other callers') are
        then not returned and lapse after ``RESERVE_MS``, their callers keeping their place.

        ``pipe`` (from ``Acd.pipeline()``) may carry the caller's own commands, queued
        before: they run first in the same round trip, and their replies come back as the
        third item (empty without ``pipe``). They must not need the enqueue's order
        (``run_pipeline``).

        ``ring_now``: the caller's own offer, when every agent of it rings at once (all but
        ring-progressively), is taken to Receiving as ``offering`` would and comes back
        ``rung``: its holder originates at once, one round trip to Redis between the join and
        the agent's phone ringing."""
        own = call_uuid if ring_now else ""
        if _is_cluster(self.redis):
            # redis-py's cluster pipeline takes no scripts: two round trips there.
            joined_ = self.enqueue(tenant, queue, call_uuid, node=node, priority=priority,
                                   skills=skills, caller=caller)
            return joined_, self._dispatch(tenant, queue, max_offers, own, None), []
        if pipe is None:
            pipe = self.redis.pipeline(transaction=False)
        self.enqueue(tenant, queue, call_uuid, node=node, priority=priority, skills=skills,
                     caller=caller, pipe=pipe)
        self._dispatch(tenant, queue, max_offers, own, pipe)
        *leading, joined, offers = run_pipeline(pipe)
        return (self._joined(tenant, queue, call_uuid, joined),
                self._offers(tenant, offers), leading)

    @staticmethod
    def _joined(tenant: str, queue: str, call_uuid: str, res: Any) -> Joined:
        code = int(res[0])
        if code == UNKNOWN_QUEUE:
            raise UnknownQueue(tenant, queue)
        if code == IN_OTHER_QUEUE:
            raise AlreadyQueued(tenant, call_uuid, _text(res[4]))
        return Joined(position=int(res[1]), waiting=int(res[2]), resumed=bool(int(res[3])))

    def _randoms(self, n: int) -> list[str]:
        return [repr(self._rng.random()) for _ in range(n)]

    def _offers(self, tenant: str, res: Any) -> list[Offer]:
        out = []
        for q, u, node, token, deadline, callback, agents, rung in res:
            out.append(Offer(
                tenant=tenant, queue=_text(q), call_uuid=_text(u), node=_text(node),
                token=_text(token), deadline_ms=_int(deadline), callback=_text(callback),
                agents=tuple(OfferedAgent(agent=_text(a), contact=_text(c), type=_text(t),
                                          delay_ms=_int(d)) for a, c, t, d in agents),
                rung=_text(rung) == "1"))
        return out

    def dispatch(self, tenant: str, queue: str, *, max_offers: int = 16,
                 pipe: Any = None) -> list[Offer]:
        """Callers in rank order, each paired with the free agent(s) the queue's strategy
        picks; those agents are reserved. An unknown queue has nothing to dispatch. With
        ``pipe`` the script is only queued there (returns [])."""
        return self._dispatch(tenant, queue, max_offers, "", pipe)

    def _dispatch(self, tenant: str, queue: str, max_offers: int, ring_now: str,
                  pipe: Any) -> list[Offer]:
        res = self._run("dispatch", tenant, [
            keys.acd_queue(tenant, queue), keys.acd_queue_tiers(tenant, queue),
            keys.acd_queue_waiting(tenant, queue)],
            [queue, max_offers, SCAN_CALLERS, RESERVE_MS, ring_now, OFFER_MARGIN_MS,
             *self._randoms(max_offers)],
            pipe=pipe)
        return [] if pipe is not None else self._offers(tenant, res)

    def dispatch_agent(self, tenant: str, agent: str, *, max_offers: int = 16) -> list[Offer]:
        """``agent`` became free: dispatch over its queues, best tier level first."""
        return self._offers(tenant, self._dispatch_agent(tenant, agent, max_offers, None))

    def _dispatch_agent(self, tenant: str, agent: str, max_offers: int, pipe: Any) -> Any:
        return self._run("dispatch_agent", tenant, [keys.acd_agent_queues(tenant, agent)],
                         [agent, max_offers, SCAN_CALLERS, RESERVE_MS,
                          *self._randoms(max_offers)], pipe=pipe)

    def _offer_keys(self, offer: Offer, agent: str) -> list[str]:
        return [keys.acd_member(offer.tenant, offer.call_uuid), keys.acd_agent(offer.tenant, agent),
                keys.acd_queue(offer.tenant, offer.queue)]

    def claim_offer(self, offer: Offer, worker: str) -> bool:
        """Whether ``worker`` is the one to run ``offer`` (first come; offers heard by several
        workers, such as published callbacks, must ring the agent once)."""
        return bool(self.redis.set(keys.acd_offer_claim(offer.tenant, offer.token), worker,
                                   nx=True, px=RESERVE_MS + OFFER_MARGIN_MS + 120_000))

    def offering(self, offer: Offer, agent: str, pipe: Any = None) -> bool:
        """About to ring ``agent``: Reserved -> Receiving, deadline pushed to ring timeout +
        margin. False: the reservation is gone (lapsed / caller left): do not ring. With
        ``pipe`` it is queued there (``offered(reply)`` reads its reply)."""
        res = self._run("offering", offer.tenant, self._offer_keys(offer, agent),
                        [offer.call_uuid, offer.token, agent, OFFER_MARGIN_MS], pipe=pipe)
        return pipe is not None or self.offered(res)

    @staticmethod
    def offered(reply: Any) -> bool:
        return int(reply) == OK

    def pipeline(self) -> Any:
        """A pipeline for scripts of this ACD and writes of the same Redis; None on a Redis
        Cluster (redis-py's cluster pipeline takes no scripts)."""
        return None if _is_cluster(self.redis) else self.redis.pipeline(transaction=False)

    def answered(self, offer: Offer, agent: str) -> bool:
        """``agent`` answered first. False: too late (lapsed, caller gone, or another agent of
        the offer won): hang that agent's leg up. Twice by the same agent: True, once."""
        res = self._run("answered", offer.tenant, self._offer_keys(offer, agent),
                        [offer.call_uuid, offer.token, agent])
        return int(res) in (OK, AGAIN)

    def bridge_failed(self, offer: Offer, agent: str) -> bool:
        """``agent`` answered and won, but the bridge failed (its leg was already gone): the
        caller waits again in its place, the agent wraps up. True: dispatch the queue; False:
        nothing changed (not this offer's answered caller and agent any more)."""
        res = self._run("bridge_failed", offer.tenant, self._offer_keys(offer, agent),
                        [offer.call_uuid, offer.token, agent])
        return int(res) == OK

    def agent_failed(self, offer: Offer, agent: str, cause: str) -> None:
        """Ringing ``agent`` failed with hang-up ``cause``: the agent's delay for it, misses
        counted; with no agent of the offer left the caller waits again in its place."""
        self._run("agent_failed", offer.tenant, self._offer_keys(offer, agent)[:2],
                  [offer.call_uuid, offer.token, agent, cause, miss_kind(cause).value])

    def call_ended(self, tenant: str, agent: str, call_uuid: str, talk_ms: int,
                   pipe: Any = None) -> None:
        self._run("call_ended", tenant, [keys.acd_agent(tenant, agent),
                                         keys.acd_member(tenant, call_uuid)],
                  [call_uuid, agent, max(0, int(talk_ms))], pipe=pipe)

    def call_ended_dispatch(self, tenant: str, agent: str, call_uuid: str, talk_ms: int, *,
                            max_offers: int = 16) -> list[Offer]:
        """``call_ended`` then ``dispatch_agent`` in one round trip: an agent with no wrap-up
        is offered the next waiting caller as the call's end is counted."""
        pipe = self.pipeline()
        if pipe is None:
            self.call_ended(tenant, agent, call_uuid, talk_ms)
            return self.dispatch_agent(tenant, agent, max_offers=max_offers)
        self.call_ended(tenant, agent, call_uuid, talk_ms, pipe=pipe)
        self._dispatch_agent(tenant, agent, max_offers, pipe)
        _, offers = run_pipeline(pipe)
        return self._offers(tenant, offers)

    def callback_failed(self, tenant: str, call_uuid: str, leg: str) -> tuple[int, int, int]:
        """The agent took callback ``call_uuid`` on leg ``leg`` but the caller was not
        reached: (CB_RETRY, tries, due ms) when it is tried again later in its place,
        (CB_GAVE_UP, tries, 0) when its tries or its time are used up, CB_IGNORED otherwise
        (and for the same attempt twice)."""
        res = self._run("callback_failed", tenant, [keys.acd_member(tenant, call_uuid)],
                        [call_uuid, leg])
        return int(res[0]), int(res[1]), int(res[2])

    def leave(self, tenant: str, call_uuid: str, reason: str) -> list[str]:
        """The caller left (``reason``: hangup, timeout, no_agent_timeout, exit_key, overflow,
        transfer): returns the agents released at once."""
        try:
            why = LeaveReason(_LEAVE_ALIASES.get(reason, reason))
        except ValueError:
            raise BadLeaveReason(reason, [r.value for r in LeaveReason]) from None
        res = self._run("leave", tenant, [keys.acd_member(tenant, call_uuid)],
                        [call_uuid, why.cancel_reason, why.counter])
        return [_text(a) for a in res]

    def tick(self, tenant: str) -> list[str]:
        """Run due timers; returns the queues worth a dispatch."""
        names: list[str] = []
        while True:
            res = self._run("tick", tenant, [], [TICK_BATCH])
            names.extend(_text(q) for q in res[0])
            if int(res[1]) < TICK_BATCH:
                return sorted(set(names))

    # -- views ------------------------------------------------------------------------------------

    def heads(self, tenant: str, queues: Sequence[str]) -> dict[str, float]:
        """The rank score (``rank_score``: lower is served first) of the first caller waiting
        in each of ``queues`` that has one; one round trip. A dispatch of several queues in
        this order gives a free agent to the best caller across them, as mod_callcenter
        ranks members across queues."""
        pipe = self.redis.pipeline(transaction=False)
        for q in queues:
            pipe.zrange(keys.acd_queue_waiting(tenant, q), 0, 0, withscores=True)
        return {q: float(head[0][1])
                for q, head in zip(queues, pipe.execute(), strict=True) if head}

    def _member(self, tenant: str, call_uuid: str) -> dict[str, str]:
        raw = self.redis.hgetall(keys.acd_member(tenant, call_uuid))
        if not raw:
            raise UnknownMember(tenant, call_uuid)
        return {_text(k): _text(v) for k, v in raw.items()}

    def position(self, tenant: str, call_uuid: str) -> tuple[int, int]:
        """(1-based position, callers waiting); position 0 while offered or answered."""
        m = self._member(tenant, call_uuid)
        wk = keys.acd_queue_waiting(tenant, m["queue"])
        pipe = self.redis.pipeline(transaction=False)
        pipe.zrank(wk, call_uuid)
        pipe.zcard(wk)
        rank, waiting = pipe.execute()
        return (0 if rank is None else int(rank) + 1, int(waiting))

    def _logged_in(self, tenant: str, queue: str) -> tuple[int, int]:
        tiers = [_text(a) for a in self.redis.zrange(keys.acd_queue_tiers(tenant, queue), 0, -1)]
        if not tiers:
            return 0, 0
        pipe = self.redis.pipeline(transaction=False)
        pipe.smismember(keys.acd_available(tenant), tiers)
        pipe.smismember(keys.acd_free(tenant), tiers)
        avail, free = pipe.execute()
        return sum(map(int, avail)), sum(map(int, free))

    def estimated_wait_s(self, tenant: str, queue: str) -> int | None:
        """A new caller's expected wait: callers ahead x average handle time (talk +
        wrap-up, moving average) / agents logged in. None: no handled call yet or nobody in."""
        return self.queue_view(tenant, queue).estimated_wait_s

    def queue_view(self, tenant: str, queue: str) -> QueueView:
        raw = self.redis.hgetall(keys.acd_queue(tenant, queue))
        if not raw:
            raise UnknownQueue(tenant, queue)
        f = {_text(k): _text(v) for k, v in raw.items()}
        today = today_counters(f, self.day(tenant))
        waiting = int(self.redis.zcard(keys.acd_queue_waiting(tenant, queue)))
        logged_in, free = self._logged_in(tenant, queue)
        aht = _int(f.get("aht_ms")) if _int(f.get("aht_n")) > 0 else None
        ewt = None
        if aht is not None and logged_in > 0:
            ewt = math.ceil((waiting + 1) * aht / 1000 / logged_in)
        return QueueView(
            queue=queue, strategy=f.get("strategy", ""), waiting=waiting,
            answered_today=today["answered"], abandoned_today=today["abandoned"],
            overflowed_today=today["overflowed"],
            agents_available=logged_in, agents_free=free, avg_handle_ms=aht,
            estimated_wait_s=ewt, answered_in_sl_today=today["answered_sl"],
            abandoned_short_today=today["abandoned_short"],
            answer_wait_ms_today=today["wait_ms"])

    def queues(self, tenant: str) -> list[QueueView]:
        return [self.queue_view(tenant, q)
                for q in sorted(_text(q) for q in self.redis.smembers(keys.acd_queues(tenant)))]

    def members(self, tenant: str, queue: str) -> list[MemberView]:
        """The queue's waiting callers in rank order (offered/answered ones are not listed)."""
        if not self.redis.exists(keys.acd_queue(tenant, queue)):
            raise UnknownQueue(tenant, queue)
        uuids = [_text(u) for u in self.redis.zrange(keys.acd_queue_waiting(tenant, queue), 0, -1)]
        pipe = self.redis.pipeline(transaction=False)
        for u in uuids:
            pipe.hgetall(keys.acd_member(tenant, u))
        out = []
        for pos, (u, raw) in enumerate(zip(uuids, pipe.execute(), strict=True), start=1):
            f = {_text(k): _text(v) for k, v in raw.items()}
            out.append(self._member_view(u, f, pos))
        return out

    def live_offer(self, tenant: str, call_uuid: str) -> Offer | None:
        """The reservation a caller holds (offered, or answered by one of its agents), as
        the member's hash keeps it, with each agent's contact and type as configured; None
        when it holds none."""
        f = {_text(k): _text(v) for k, v in self.redis.hgetall(
            keys.acd_member(tenant, call_uuid)).items()}
        if f.get("state") not in ("Trying", "Answered") or not f.get("token"):
            return None
        agents = [a for a in f.get("agents", "").split(",") if a]
        pipe = self.redis.pipeline(transaction=False)
        for a in agents:
            pipe.hmget(keys.acd_agent(tenant, a), "contact", "type")
        return Offer(tenant=tenant, queue=f.get("queue", ""), call_uuid=call_uuid,
                     node=f.get("node", ""), token=f["token"],
                     deadline_ms=_int(f.get("deadline")), callback=f.get("callback", ""),
                     agents=tuple(OfferedAgent(agent=a, contact=_text(c),
                                               type=_text(t) or "callback", delay_ms=0)
                                  for a, (c, t) in zip(agents, pipe.execute(), strict=True)))

    def member(self, tenant: str, call_uuid: str) -> MemberView:
        f = self._member(tenant, call_uuid)
        return self._member_view(call_uuid, f, self.position(tenant, call_uuid)[0])

    @staticmethod
    def _member_view(u: str, f: Mapping[str, str], pos: int) -> MemberView:
        return MemberView(
            call_uuid=u, queue=f.get("queue", ""), state=f.get("state", ""), position=pos,
            priority=_int(f.get("prio")), caller=f.get("caller", ""), node=f.get("node", ""),
            joined_ms=_int(f.get("joined_ms")),
            agents=tuple(a for a in f.get("agents", "").split(",") if a),
            callback=f.get("callback", ""))


__all__ = ["Acd", "AcdError", "AcdScripts", "AgentView", "Joined", "MemberView", "Offer",
           "OfferedAgent", "QueueView", "rank_score"]


def _is_cluster(client: Any) -> bool:
    from redis.cluster import RedisCluster

    return isinstance(client, RedisCluster)
