"""KPI collector scrape time (``cc-core metrics serve``): one whole scrape of
``cccore_queue_*`` (three pipelined round trips to Redis, then the text format), for a small
deployment and for the ACD bench's big tenant (1,000 agents, 100 queues, each agent in 3).

Each queue has callers waiting (a fifth of them at a higher priority, so the oldest-wait walk
crosses two bands) and one day of counters. The server is a private ``redis-server`` on
loopback (cc_core.redis_server.PrivateRedis).

Run: ``python -m bench.bench_kpi`` (``--quick``: fewer scrapes).
"""

from __future__ import annotations

import sys
import time
from typing import Any

WAITING = 20
SHAPES = (
    # (caption, tenants, queues per tenant, agents per tenant, queues per agent)
    ("10 tenants x 20 queues, 60 agents each", 10, 20, 60, 2),
    ("1 tenant, 100 queues, 1,000 agents", 1, 100, 1000, 3),
)


def _tenant(tid: str, queues: int, agents: int, per_agent: int) -> Any:
    from cc_core.tenants.model import Tenant

    tiers: dict[str, list[dict[str, Any]]] = {f"q{i}": [] for i in range(queues)}
    for a in range(agents):
        for j in range(per_agent):
            tiers[f"q{(a + j * 7) % queues}"].append({"agent": f"a{a}", "level": 1 + j})
    return Tenant.model_validate({
        "tenant": tid, "entry": "hangup", "numbers": {},
        "agents": {f"a{a}": {"contact": f"user/{a}@bench"} for a in range(agents)},
        "queues": {q: {"tiers": t} for q, t in tiers.items()}})


def _pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(p / 100 * len(s)))]


def run(quick: bool = False) -> list[dict[str, object]]:
    import redis
    from prometheus_client import CollectorRegistry, generate_latest

    from acd.store import Acd
    from cc_core.redis_server import PrivateRedis
    from metrics.queues import KpiMetrics

    rows: list[dict[str, object]] = []
    scrapes = 5 if quick else 30
    for caption, n_tenants, n_queues, n_agents, per_agent in SHAPES:
        with PrivateRedis() as server:
            client = redis.Redis.from_url(server.url, socket_timeout=5)
            acd = Acd(client)
            tenants = []
            for t in range(n_tenants):
                cfg = _tenant(f"t{t}", n_queues, n_agents, per_agent)
                acd.sync(cfg)
                for a in range(0, n_agents, 2):
                    acd.login(cfg.tenant, f"a{a}")
                for q in cfg.queues:
                    for c in range(WAITING):
                        acd.enqueue(cfg.tenant, q, f"{q}-c{c}", node="n1",
                                    priority=5 if c % 5 == 0 else 0)
                tenants.append((cfg.tenant, cfg.timezone))
            reg = CollectorRegistry()
            KpiMetrics(reg, client, lambda ts=tenants: ts)
            times, size = [], 0
            for _ in range(scrapes):
                t0 = time.perf_counter()
                size = len(generate_latest(reg))
                times.append(time.perf_counter() - t0)
            # Redis' own time for one scrape (INFO commandstats): what the scrape costs the
            # ACD's server, which the call path shares.
            client.config_resetstat()
            generate_latest(reg)
            server_us = sum(v["usec"] for k, v in client.info("commandstats").items()
                            if "config" not in k)
            series = sum(len(f.samples) for f in reg.collect())
            rows.append({"deployment": caption, "queues": n_tenants * n_queues,
                         "series": series, "bytes": size,
                         "p50 ms": f"{_pct(times, 50) * 1000:.1f}",
                         "p99 ms": f"{_pct(times, 99) * 1000:.1f}",
                         "redis ms": f"{server_us / 1000:.1f}"})
    return rows


NOTES = ("A scrape reads Redis in three pipelined round trips whatever the size; 'redis ms' "
         "is the server's own time for it (no single command long: the longest is one queue's "
         "oldest-wait walk); the rest is the client parsing and formatting the samples.",)


if __name__ == "__main__":
    from bench.__main__ import _table

    print(_table(run(quick="--quick" in sys.argv)))
