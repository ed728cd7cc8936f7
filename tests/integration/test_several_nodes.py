"""Several FreeSWITCH nodes from config: each node's events are consumed by exactly one
worker at a time, and a surviving worker takes over every node of a dead one."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from cc_core.config import Config
from esl_handlers.lease import lease_holder
from fssim.process import SimProcess
from tests.conftest import wait_for
from tests.integration.cluster import (
    FAILOVER_TTL_MS,
    SIM_PASSWORD,
    START_TIMEOUT_S,
    WorkerProc,
    start_sim,
    start_worker,
)

pytestmark = pytest.mark.slow

NODES = ("fs1", "fs2")


@pytest.fixture
def sims(tmp_path: Path) -> Iterator[dict[str, SimProcess]]:
    started: dict[str, SimProcess] = {}
    for name in NODES:
        (tmp_path / name).mkdir()  # each simulator keeps its own sim.log
        started[name] = start_sim(tmp_path / name)
    yield started
    for sim in started.values():
        sim.stop()


def test_each_node_has_one_owner_and_a_survivor_takes_all(
        sims: dict[str, SimProcess], redis_url: str, tmp_path: Path) -> None:
    cfg = Config.model_validate({
        "nodes": [{"name": n, "port": sims[n].port, "password": SIM_PASSWORD} for n in NODES],
        "esl": {"lease_ttl_ms": FAILOVER_TTL_MS, "reconnect_min_s": 0.05,
                "reconnect_max_s": 0.5, "connect_timeout_s": 2, "command_timeout_s": 2},
        "redis_url": redis_url,
    })
    r = redis.Redis.from_url(redis_url)
    workers: list[WorkerProc] = [start_worker(cfg, i, tmp_path) for i in range(2)]
    try:
        for w in workers:
            wait_for(lambda w=w: w.metrics_port(r), timeout=START_TIMEOUT_S,
                     message="worker metrics port")

        def owners(node: str) -> list[WorkerProc]:
            return [w for w in workers if w.owner_gauge(node) == 1]

        def settled() -> bool:
            return all(len(owners(n)) == 1 and lease_holder(r, n) == owners(n)[0].worker_id
                       for n in NODES)

        wait_for(settled, timeout=START_TIMEOUT_S, message="one owner per node")
        victim = owners("fs1")[0]
        survivor = next(w for w in workers if w is not victim)
        os.kill(victim.proc.pid, signal.SIGKILL)
        victim.proc.wait(timeout=5)
        wait_for(lambda: all(survivor.owner_gauge(n) == 1 for n in NODES),
                 timeout=FAILOVER_TTL_MS / 1000 + 2, message="the survivor to own every node")
        assert all(lease_holder(r, n) == survivor.worker_id for n in NODES)
    finally:
        for w in workers:
            w.stop()
        r.close()
