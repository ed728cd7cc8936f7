"""Queue and agent KPIs (``cccore_queue_*``), read from the ACD's Redis state at scrape time.

Served once per deployment (``cc-core metrics serve``), never by the workers: the figures
describe shared state, and N workers exporting them would make every sum() N times too big.

Labels: ``tenant`` and ``queue`` from the tenants' configuration, ``status`` and ``state`` from
the ACD's fixed lists (anything else becomes ``other``). Nothing a caller sends reaches a label.

A scrape that cannot read Redis (down, slow past the client's socket timeout) carries none of
these series and adds one to ``cccore_kpi_scrape_errors_total``: a gap on the dashboards and a
counter to alert on, never an HTTP 500 that would hide the rest of the process' metrics.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from acd.kpi import AGENT_STATES, AGENT_STATUSES, OTHER, KpiReader, QueueKpi
from acd.store import DEFAULT_TZ
from cc_core import keys
from metrics import NAMESPACE, full_name

log = logging.getLogger(__name__)

#: (tenant id, time zone) of every tenant to report, asked at each scrape.
Tenants = Callable[[], Iterable[tuple[str, str]]]

_TQ = ["tenant", "queue"]

# (name, unit, help, value of a QueueKpi; None = no sample)
_GAUGES: tuple[tuple[str, str, str, Callable[[QueueKpi], float | None]], ...] = (
    ("callers_waiting", "", "Callers waiting in the queue now (not being offered)",
     lambda k: k.waiting),
    ("oldest_wait", "seconds", "Longest current wait in the queue (0 when nobody waits), "
     "from the base the queue ranks callers by: their join time (a resumed caller's first "
     "call; time_base_score system: the call's start)", lambda k: k.oldest_wait_s),
    ("answered_today", "", "Calls answered by an agent today (tenant-local day)",
     lambda k: k.answered),
    ("answered_in_sl_today", "", "Calls answered today within the queue's service-level "
     "threshold (service_level_s, default 20 s; waited at most that long)",
     lambda k: k.answered_in_sl),
    ("abandoned_today", "", "Callers who hung up waiting today, short abandons excluded "
     "(waited less than the queue's short_abandon_s, default 5 s)", lambda k: k.abandoned),
    ("overflowed_today", "", "Callers who left the queue along its overflow chain today "
     "(max wait, no agent, overflow)", lambda k: k.overflowed),
    ("service_level_ratio", "", "answered_in_sl / (answered + abandoned) today, short "
     "abandons excluded; no sample while the denominator is 0",
     lambda k: k.service_level_ratio),
    ("abandon_ratio", "", "abandoned / (answered + abandoned) today, short abandons "
     "excluded; no sample while the denominator is 0", lambda k: k.abandon_ratio),
    ("asa", "seconds", "Average speed of answer today: mean wait in the queue of the calls "
     "answered; no sample before the first", lambda k: k.asa_s),
    ("aht", "seconds", "Average handle time (talk + wrap-up), a moving average of recent "
     "calls (each new call weighs 20%); no sample before the first", lambda k: k.aht_s),
    ("callbacks_pending", "", "Queued callbacks not yet reached: waiting (being offered "
     "included) or scheduled for a retry", lambda k: k.callbacks_pending),
)


class QueueKpiCollector(Collector):
    """Exports every queue's KPIs, read from Redis when scraped.

    ``redis`` must carry a socket timeout: it is what bounds a scrape's time when Redis
    hangs. ``errors`` counts failed reads."""

    def __init__(self, redis: object, tenants: Tenants, errors: Counter,
                 duration: Gauge | None = None,
                 clock_ms: Callable[[], int] = lambda: int(time.time() * 1000)) -> None:
        self._reader = KpiReader(redis)
        self._tenants = tenants
        self._errors = errors
        self._duration = duration
        self._clock = clock_ms

    def describe(self) -> Iterator[Metric]:
        # Names known without a Redis read: registering must not scrape.
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        started = time.monotonic()
        try:
            kpis = self._reader.read(self._tenants(), self._clock())
        except RedisError as exc:
            self._errors.inc()
            log.warning("queue KPIs not exported this scrape: cannot read the ACD in Redis "
                        "(%s: %s); check that Redis is up and reachable", type(exc).__name__,
                        exc)
            return
        except Exception:  # noqa: BLE001 - a bug here must not fail the whole scrape either
            self._errors.inc()
            log.exception("queue KPIs not exported this scrape: reading them failed")
            return
        finally:
            if self._duration is not None:
                self._duration.set(time.monotonic() - started)
        families = self._families()
        by_name = {f.name: f for f in families}
        for k in kpis:
            for (_n, _u, _h, value), fam in zip(_GAUGES, families[:len(_GAUGES)], strict=True):
                v = value(k)
                if v is not None:
                    fam.add_metric([k.tenant, k.queue], float(v))
            agents = by_name[full_name("queue", "agents")]
            # Every (status, state) pair, zeros included: a queue with nobody logged in reads
            # 0, not "no data", and the series set is the same at every scrape.
            for status in AGENT_STATUSES:
                for state in AGENT_STATES:
                    agents.add_metric([k.tenant, k.queue, status, state],
                                      k.agents.get((status, state), 0))
            for (status, state), n in sorted(k.agents.items()):
                if status not in AGENT_STATUSES or state not in AGENT_STATES:
                    agents.add_metric([k.tenant, k.queue, status, state], n)
        yield from families

    @staticmethod
    def _families() -> list[GaugeMetricFamily]:
        out = [GaugeMetricFamily(full_name("queue", name, unit), text, labels=_TQ)
               for name, unit, text, _v in _GAUGES]
        out.append(GaugeMetricFamily(
            full_name("queue", "agents"), "Agents with a tier in the queue, by status (Logged "
            "Out, Available, Available (On Demand), On Break) and state (Waiting, Receiving, "
            "In a queue call, Idle, Reserved); an agent of several queues counts in each",
            labels=[*_TQ, "status", "state"]))
        return out


@dataclass(frozen=True)
class AgentKpi:
    tenant: str
    agent: str
    status: str
    state: str
    calls: int             # queue calls handled (ended) today
    no_answers: int        # offers not answered today


def read_agents(redis: Any, tenants: Iterable[tuple[str, str]], now_ms: int) -> list[AgentKpi]:
    """Every agent of ``tenants`` ((id, time zone)), in two pipelined round trips; read only.
    Agent ids come from the ACD's agent set, which the configuration sync writes."""
    tenants = list(dict(tenants).items())
    if not tenants:
        return []
    pipe = redis.pipeline(transaction=False)
    for tid, _tz in tenants:
        pipe.smembers(keys.acd_agents(tid))
    ids = [sorted(_text(a) for a in found) for found in pipe.execute()]
    pairs = [(tid, tz, a) for (tid, tz), agents in zip(tenants, ids, strict=True) for a in agents]
    if not pairs:
        return []
    pipe = redis.pipeline(transaction=False)
    for tid, _tz, a in pairs:
        pipe.hmget(keys.acd_agent(tid, a), "status", "state", "day", "calls", "noans")
    days: dict[str, str] = {}
    out = []
    for (tid, tz, a), (status, state, day, calls, noans) in zip(pairs, pipe.execute(),
                                                                 strict=True):
        if status is None:
            continue            # removed by a sync between the two reads
        if tid not in days:
            days[tid] = _day(tz, now_ms)
        today = _text(day or b"") == days[tid]
        out.append(AgentKpi(
            tid, a, _bounded(_text(status), AGENT_STATUSES),
            _bounded(_text(state or b""), AGENT_STATES),
            int(_text(calls or b"0")) if today else 0,
            int(_text(noans or b"0")) if today else 0))
    return out


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _bounded(value: str, allowed: tuple[str, ...]) -> str:
    return value if value in allowed else OTHER


def _day(tz: str, now_ms: int) -> str:
    try:
        zone = ZoneInfo(tz or DEFAULT_TZ)
    except (ValueError, KeyError):
        zone = ZoneInfo(DEFAULT_TZ)
    return datetime.fromtimestamp(now_ms / 1000, zone).strftime("%Y%m%d")


class AgentKpiCollector(Collector):
    """Per-agent series (label ``agent``), only for the tenants whose configuration enables
    them (``metrics.per_agent``): an agent id is configuration, but a big tenant's agents
    multiply every series, so a tenant asks for them."""

    def __init__(self, redis: object, tenants: Tenants, errors: Counter,
                 clock_ms: Callable[[], int] = lambda: int(time.time() * 1000)) -> None:
        self._redis = redis
        self._tenants = tenants
        self._errors = errors
        self._clock = clock_ms

    def describe(self) -> Iterator[Metric]:
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        try:
            agents = read_agents(self._redis, self._tenants(), self._clock())
        except RedisError as exc:
            self._errors.inc()
            log.warning("per-agent KPIs not exported this scrape: cannot read the ACD in "
                        "Redis (%s: %s)", type(exc).__name__, exc)
            return
        except Exception:  # noqa: BLE001 - a bug here must not fail the whole scrape either
            self._errors.inc()
            log.exception("per-agent KPIs not exported this scrape: reading them failed")
            return
        status, state, offers, answered, missed = self._families()
        for a in agents:
            # A state set (one series per value, 1 for the current one): the series an agent
            # has stay the same whatever it does, so a busy day adds none.
            for value in (*AGENT_STATUSES, *((OTHER,) if a.status == OTHER else ())):
                status.add_metric([a.tenant, a.agent, value], 1 if value == a.status else 0)
            for value in (*AGENT_STATES, *((OTHER,) if a.state == OTHER else ())):
                state.add_metric([a.tenant, a.agent, value], 1 if value == a.state else 0)
            offers.add_metric([a.tenant, a.agent], a.calls + a.no_answers)
            answered.add_metric([a.tenant, a.agent], a.calls)
            missed.add_metric([a.tenant, a.agent], a.no_answers)
        yield from (status, state, offers, answered, missed)

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, ...]:
        ta = ["tenant", "agent"]
        return (
            GaugeMetricFamily(full_name("agent", "status"), "1 for the agent's current "
                              "status (Logged Out, Available, Available (On Demand), On "
                              "Break), 0 for the others", labels=[*ta, "status"]),
            GaugeMetricFamily(full_name("agent", "state"), "1 for the agent's current state "
                              "(Waiting, Receiving, In a queue call, Idle, Reserved), 0 for "
                              "the others", labels=[*ta, "state"]),
            GaugeMetricFamily(full_name("agent", "offers_today"), "Queue calls offered to the "
                              "agent today that ended: answered and handled, or not answered "
                              "(the one ringing now not included)", labels=ta),
            GaugeMetricFamily(full_name("agent", "calls_today"), "Queue calls the agent "
                              "answered and finished today", labels=ta),
            GaugeMetricFamily(full_name("agent", "no_answers_today"), "Offers the agent did "
                              "not answer today (rang out, rejected, unreachable)", labels=ta),
        )


class KpiMetrics:
    """The KPI collector and its own health metrics, registered on ``registry``."""

    def __init__(self, registry: CollectorRegistry | None, redis: object,
                 tenants: Tenants, *, clock_ms: Callable[[], int] | None = None,
                 agent_tenants: Tenants | None = None) -> None:
        self.errors = Counter(
            "scrape_errors", "Scrapes whose queue KPIs could not be read from Redis (those "
            "series are missing from that scrape)", namespace=NAMESPACE, subsystem="kpi",
            registry=None)
        self.duration = Gauge(
            "scrape_duration", "Time the last read of the queue KPIs from Redis took",
            unit="seconds", namespace=NAMESPACE, subsystem="kpi", registry=None)
        extra = {} if clock_ms is None else {"clock_ms": clock_ms}
        self.collector = QueueKpiCollector(redis, tenants, self.errors, self.duration, **extra)
        # Only the tenants that enabled them (``metrics.per_agent``); none: no agent series.
        self.agents = (AgentKpiCollector(redis, agent_tenants, self.errors, **extra)
                       if agent_tenants is not None else None)
        if registry is not None:
            # The registry collects in this order: the read first, so the error it counts
            # and the time it took are in the same scrape.
            registry.register(self.collector)
            if self.agents is not None:
                registry.register(self.agents)
            registry.register(self.errors)
            registry.register(self.duration)
