"""No parked 400 call is left behind, whatever happens to the workers, Redis or the switch.

Each test runs steady traffic (a new caller every 1/RATE s, each greeted and hung up by the
core) against a simulator whose core database trails its events by ``DB_LAG_MS`` (as
FreeSWITCH's does under load, ``fssim.coredb``), breaks something in the middle, and then
requires every call to end with NORMAL_CLEARING, answered once and greeted once, within
``BOUND_S`` of the traffic's end. Without the standby's watch, the sweep and the blocking
Redis pool, calls that parked just before a new owner's snapshot stayed parked for ever.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import gevent
import pytest

from cc_core.redis_server import PrivateRedis
from fssim.process import SimProcess
from tests.conftest import wait_for
from tests.integration.cluster import (
    START_TIMEOUT_S,
    Cluster,
    Observer,
    WorkerProc,
    greeting_tenant,
    running_cluster,
    start_sim,
)

pytestmark = pytest.mark.slow

RATE = 40            # new calls per second
DURATION_S = 4.0
DB_LAG_MS = 300      # how far `show channels` trails the events
TTL_MS = 1500
# Every call must have ended this long after the last one was placed: the greeting, plus a
# lease TTL, plus the worker heartbeat's expiry, plus two sweep intervals.
BOUND_S = 12.0
GREETING = "tone_stream://%(300,0,440);loops=1"


def _sim(tmp_path: Path, port: int = 0) -> SimProcess:
    return start_sim(tmp_path, "--db-lag-ms", str(DB_LAG_MS), port=port)


@pytest.fixture
def lagging(tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cluster]:
    monkeypatch.setenv("CC_TENANTS", str(greeting_tenant(tmp_path, GREETING)))
    yield from running_cluster(tmp_path, redis_url, "--db-lag-ms", str(DB_LAG_MS))


class Traffic:
    """Places calls at RATE for DURATION_S in a greenlet; ``at(t, fn)`` breaks something t s in."""

    def __init__(self, cluster: Cluster) -> None:
        self.obs = Observer(cluster.sim.port)
        self.placed: list[str] = []

    def run(self, at: float, action: Callable[[], None]) -> None:
        start = time.monotonic()
        acted = False
        for i in range(int(RATE * DURATION_S)):
            due = start + i / RATE
            if not acted and time.monotonic() - start >= at:
                acted = True
                gevent.spawn(action)
            gevent.sleep(max(0.0, due - time.monotonic()))
            self.placed.append(self.obs.call(f"1380{i:07d}"))

    def assert_none_left(self, workers: list[WorkerProc]) -> None:
        def all_ended() -> bool:
            return all(u in self.obs.ended for u in self.placed)

        try:
            wait_for(all_ended, timeout=BOUND_S, interval=0.05,
                     message="every placed call to end")
        except AssertionError:
            left = [u for u in self.placed if u not in self.obs.ended]
            logs = "\n".join(w.log_tail(3000) for w in workers)
            raise AssertionError(f"{len(left)} of {len(self.placed)} calls left parked: "
                                 f"{left[:5]}\n{logs}") from None
        causes = {self.obs.ended[u] for u in self.placed}
        assert causes == {"NORMAL_CLEARING"}, causes
        assert all(self.obs.answered.get(u) == 1 for u in self.placed), "answered once"
        twice = [u for u in self.placed if self.obs.greetings.get(u, 0) != 1]
        assert not twice, f"greeted other than once: {twice[:5]}"


def _two_workers(cluster: Cluster, **esl: object) -> tuple[WorkerProc, WorkerProc]:
    workers = cluster.start_workers(2, ttl_ms=TTL_MS, app="cc_core.app:build", esl=esl)
    owner = cluster.wait_owner(workers, timeout=START_TIMEOUT_S)
    standby = next(w for w in workers if w is not owner)
    # A standby that watches PARKs before it owns the node says so; give it time to (a core
    # without that watch fails below, on the calls it leaves, not here).
    deadline = time.monotonic() + 5
    while "events connection up" not in standby.log_tail(20000) and time.monotonic() < deadline:
        gevent.sleep(0.05)
    return owner, standby


def test_no_call_is_left_when_the_owner_is_killed_under_traffic(lagging: Cluster) -> None:
    owner, standby = _two_workers(lagging)
    traffic = Traffic(lagging)
    try:
        traffic.run(at=1.5, action=lambda: os.kill(owner.proc.pid, signal.SIGKILL))
        traffic.assert_none_left([standby])
    finally:
        traffic.obs.close()


def test_a_warm_hand_over_under_traffic_loses_no_call(lagging: Cluster) -> None:
    owner, standby = _two_workers(lagging)
    traffic = Traffic(lagging)
    try:
        traffic.run(at=1.5, action=lambda: owner.proc.send_signal(signal.SIGTERM))
        traffic.assert_none_left([owner, standby])
        assert owner.proc.wait(timeout=20) == 0
        # Nothing was lost on the way, so the safety net took nothing: its counter stays an
        # alarm worth raising, not the noise of every rolling deploy.
        assert _swept(standby) == 0
    finally:
        traffic.obs.close()


def _swept(worker: WorkerProc) -> float:
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{worker.port}/metrics", timeout=2) as resp:
        text = resp.read().decode()
    return sum(s.value for fam in text_string_to_metric_families(text) for s in fam.samples
               if s.name == "cccore_calls_swept_total")


def test_a_warm_hand_over_needs_no_sweep_to_lose_no_call(lagging: Cluster) -> None:
    # The successor watched PARKs before the lease passed: with the safety net off, calls that
    # parked in the hand-over's gap are still all taken, and at once.
    owner, standby = _two_workers(lagging, sweep_interval_s=0)
    traffic = Traffic(lagging)
    try:
        traffic.run(at=1.5, action=lambda: owner.proc.send_signal(signal.SIGTERM))
        traffic.assert_none_left([owner, standby])
    finally:
        traffic.obs.close()


def test_redis_restarted_empty_under_traffic_loses_no_call(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CC_TENANTS", str(greeting_tenant(tmp_path, GREETING)))
    server = PrivateRedis().start()
    port = server.port
    cluster = Cluster(tmp_path, server.url, _sim(tmp_path))
    state = {"server": server}

    def restart_redis() -> None:
        state["server"].stop()        # SIGTERM then wait; --save "" so it comes back empty
        gevent.sleep(1.0)
        state["server"] = PrivateRedis(port=port).start()

    try:
        _, standby = _two_workers(cluster)
        traffic = Traffic(cluster)
        try:
            traffic.run(at=1.0, action=restart_redis)
            traffic.assert_none_left(cluster.workers)
        finally:
            traffic.obs.close()
    finally:
        cluster.close()
        state["server"].stop()


def test_calls_placed_while_the_switch_restarts_are_all_taken(lagging: Cluster) -> None:
    # Calls of the old switch die with it; the new one starts taking calls while the workers
    # are still reconnecting, and the owner's snapshot after the reconnect lags those PARKs.
    _two_workers(lagging)
    port = lagging.sim.port
    lagging.sim.stop()
    lagging.sim = _sim(lagging.tmp_path, port)
    traffic = Traffic(lagging)
    try:
        traffic.run(at=DURATION_S + 1, action=lambda: None)
        traffic.assert_none_left(lagging.workers)
    finally:
        traffic.obs.close()
