"""What a supervisor's wallboard reads from the KPI collector: the ACD's state in Redis at
scrape time (waiting, oldest wait, service level, abandon rate, ASA, AHT, callbacks, agents by
status and state), and a scrape that survives Redis being down or hung.

The ACD runs on a hand-moved clock (tests/acd/helpers.py); every expected figure is worked out
by hand from the waits the test makes.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_lib
from prometheus_client import CollectorRegistry, generate_latest

from acd.store import Acd
from cc_core.redis_server import PrivateRedis
from cc_core.tenants.loader import LoadedConfig
from cc_core.tenants.model import GlobalConfig
from cc_core.tenants.store import TenantStore
from metrics.queues import KpiMetrics
from tests.acd.helpers import Clock, make_acd, tenant, tiers

T = "acme"
S = 1000
TZ = "Asia/Shanghai"


def _registry(url: str, clock: Clock | None = None, *, timeout_s: float = 2.0,
              tenants: list[tuple[str, str]] | None = None) -> CollectorRegistry:
    client = redis_lib.Redis.from_url(url, socket_timeout=timeout_s,
                                      socket_connect_timeout=timeout_s)
    reg = CollectorRegistry()
    KpiMetrics(reg, client, lambda: tenants or [(T, TZ)],
               **({"clock_ms": clock} if clock else {}))
    return reg


def _samples(reg: CollectorRegistry, prefix: str = "cccore_queue_") -> dict[tuple, float]:
    out = {}
    for fam in reg.collect():
        for s in fam.samples:
            if s.name.startswith(prefix):
                out[(s.name, *sorted(s.labels.items()))] = s.value
    return out


def _q(reg: CollectorRegistry, name: str, queue: str = "q") -> float | None:
    return reg.get_sample_value(f"cccore_queue_{name}", {"tenant": T, "queue": queue})


def _ring(acd: Acd, queue: str, agent: str) -> None:
    (offer,) = acd.dispatch(T, queue)
    assert offer.agents[0].agent == agent, offer
    assert acd.offering(offer, agent) and acd.answered(offer, agent)


def test_a_busy_queue_reads_as_a_supervisor_would_count_it(redis_url: str) -> None:
    cfg = tenant({"a1": {"wrap_up_s": 10}, "a2": {"wrap_up_s": 10}, "a3": {}},
                 {"q": {"strategy": "agent-with-least-talk-time", "tiers": tiers("a1", "a2",
                                                                                 "a3")},
                  "empty": {}})
    acd, clock = make_acd(redis_url, cfg)
    acd.set_break(T, "a3")
    reg = _registry(redis_url, clock)
    # Before any call: no ratio, no ASA, no AHT (no sample), zeros elsewhere.
    assert _q(reg, "service_level_ratio") is None and _q(reg, "asa_seconds") is None
    assert _q(reg, "aht_seconds") is None and _q(reg, "callers_waiting") == 0
    assert _q(reg, "oldest_wait_seconds") == 0

    acd.enqueue(T, "q", "c1", node="n1")
    clock.advance(10 * S)
    _ring(acd, "q", "a1")                       # waited 10 s: in SL
    acd.enqueue(T, "q", "c2", node="n1")
    clock.advance(30 * S)
    _ring(acd, "q", "a2")                       # waited 30 s: late
    clock.advance(60 * S)
    acd.call_ended(T, "a1", "c1", 100 * S)      # a1: talk 100 s + wrap 10 s = 110 s handled
    acd.enqueue(T, "q", "c3", node="n1")
    clock.advance(3 * S)
    acd.leave(T, "c3", "hangup")                # short abandon (3 s)
    acd.enqueue(T, "q", "c4", node="n1")
    clock.advance(12 * S)
    acd.leave(T, "c4", "hangup")                # abandon (12 s)
    acd.enqueue(T, "q", "c5", node="n1")
    acd.leave(T, "c5", "timeout")               # overflowed
    # a1 is in wrap-up (Idle) and a2 talking: three callers wait, the oldest at normal
    # priority behind a later one of higher priority (first in the queue's order).
    acd.enqueue(T, "q", "w1", node="n1")
    w1_joined = clock.now_ms
    clock.advance(7 * S)
    acd.enqueue(T, "q", "w2", node="n1", priority=5)
    clock.advance(2 * S)
    acd.enqueue(T, "q", "w3", node="n1")
    clock.advance(S)
    assert [m.call_uuid for m in acd.members(T, "q")] == ["w2", "w1", "w3"]

    reg = _registry(redis_url, clock)
    assert _q(reg, "callers_waiting") == 3
    assert _q(reg, "oldest_wait_seconds") == (clock.now_ms - w1_joined) / 1000 == 10
    assert _q(reg, "answered_today") == 2
    assert _q(reg, "answered_in_sl_today") == 1
    assert _q(reg, "abandoned_today") == 1          # the 3 s one is a short abandon
    assert _q(reg, "overflowed_today") == 1
    assert _q(reg, "service_level_ratio") == pytest.approx(1 / 3)   # 1 / (2 + 1)
    assert _q(reg, "abandon_ratio") == pytest.approx(1 / 3)
    assert _q(reg, "asa_seconds") == 20             # (10 + 30) / 2
    assert _q(reg, "aht_seconds") == 110
    assert _q(reg, "callbacks_pending") == 0

    def agents(status: str, state: str, queue: str = "q") -> float | None:
        return reg.get_sample_value("cccore_queue_agents", {
            "tenant": T, "queue": queue, "status": status, "state": state})
    assert agents("Available", "Idle") == 1                     # a1 wrapping up
    assert agents("Available", "In a queue call") == 1          # a2
    assert agents("On Break", "Waiting") == 1                   # a3
    assert agents("Available", "Waiting") == 0
    # a queue without agents reads 0 everywhere, not "no data"
    assert agents("Available", "Waiting", "empty") == 0
    # 4 statuses x 5 states per queue, whatever happens: a fixed set of series
    per_queue = [k for k in _samples(reg) if k[0] == "cccore_queue_agents"]
    assert len(per_queue) == 2 * 4 * 5


def test_callbacks_pending_counts_queued_and_scheduled_ones_not_reached_ones(
        redis_url: str) -> None:
    cfg = tenant({"a1": {"wrap_up_s": 0}},
                 {"q": {"tiers": tiers("a1"),
                        "callback": {"retries": 2, "retry_after_s": 60}}})
    acd, clock = make_acd(redis_url, cfg)
    acd.set_break(T, "a1")
    for i in range(3):
        acd.enqueue(T, "q", f"cb-{i}", node="", callback=f"1380013800{i}")
    reg = _registry(redis_url, clock)
    assert _q(reg, "callbacks_pending") == 3
    assert _q(reg, "callers_waiting") == 3          # a queued callback holds a place too
    acd.set_available(T, "a1")
    (offer,) = acd.dispatch(T, "q")
    assert acd.offering(offer, "a1") and acd.answered(offer, "a1")
    reached = offer.call_uuid
    assert _q(reg, "callbacks_pending") == 2        # reached: no longer pending
    acd.call_ended(T, "a1", reached, 0)
    assert acd.callback_failed(T, reached, "leg-1")[0] == 1    # not picked up: retry later
    assert _q(reg, "callbacks_pending") == 3        # scheduled again
    acd.leave(T, "cb-1" if reached != "cb-1" else "cb-2", "transfer")
    assert _q(reg, "callbacks_pending") == 2


def test_every_tenant_and_queue_is_read_each_on_its_own_day(redis_url: str) -> None:
    # 2026-03-02 10:00 in Shanghai is 02:00 UTC: 16 h later Shanghai is on the next day,
    # UTC still on the same one.
    clock = Clock()
    acme, _ = make_acd(redis_url, tenant({"a1": {"wrap_up_s": 0}},
                                         {"q": {"tiers": tiers("a1")}}), clock)
    other, _ = make_acd(redis_url, tenant({"b1": {"wrap_up_s": 0}},
                                          {"sales": {"tiers": tiers("b1")}},
                                          tenant_id="beta", timezone="UTC"), clock)
    for acd, tid, q, a in ((acme, T, "q", "a1"), (other, "beta", "sales", "b1")):
        acd.enqueue(tid, q, "x" + tid, node="n1")
        (offer,) = acd.dispatch(tid, q)
        assert acd.offering(offer, a) and acd.answered(offer, a)
    tenants = [(T, TZ), ("beta", "UTC")]
    reg = _registry(redis_url, clock, tenants=tenants)
    assert _q(reg, "answered_today") == 1
    assert reg.get_sample_value("cccore_queue_answered_today",
                                {"tenant": "beta", "queue": "sales"}) == 1
    clock.advance(16 * 3600 * S)
    reg = _registry(redis_url, clock, tenants=tenants)
    assert _q(reg, "answered_today") == 0
    assert reg.get_sample_value("cccore_queue_answered_today",
                                {"tenant": "beta", "queue": "sales"}) == 1


def test_redis_down_gives_a_scrape_without_the_kpis_and_an_error_counted(
        redis_url: str) -> None:
    with PrivateRedis() as server:
        url = server.url
        make_acd(url, tenant({"a1": {}}, {"q": {"tiers": tiers("a1")}}))
        reg = _registry(url, timeout_s=0.5)
        assert _q(reg, "callers_waiting") == 0
    text = generate_latest(reg).decode()            # the server is gone: no exception
    assert "cccore_queue_callers_waiting{" not in text
    assert "cccore_kpi_scrape_errors_total 1.0" in text       # counted in the same scrape
    assert "cccore_kpi_scrape_errors_total 2.0" in generate_latest(reg).decode()


@pytest.fixture
def hung_redis() -> Iterator[str]:
    """A server that accepts connections and never answers (a Redis stuck in a long
    script, a half-open network path)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                continue
    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield f"redis://127.0.0.1:{srv.getsockname()[1]}/0"
    stop.set()
    t.join()
    for c in held:
        c.close()
    srv.close()


def test_a_hung_redis_gives_a_scrape_without_the_kpis_not_a_stuck_one(hung_redis: str) -> None:
    reg = _registry(hung_redis, timeout_s=0.3)
    text = generate_latest(reg).decode()
    assert "cccore_queue_callers_waiting{" not in text
    assert "cccore_kpi_scrape_errors_total 1.0" in text


def _serve(redis_url: str, tmp_path: Path) -> tuple[subprocess.Popen[bytes], int, Path]:
    log = tmp_path / "metrics-serve.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cc_core.cli", "metrics", "serve", "--port", "0",
         "--timeout", "0.5", "--redis-url", redis_url],
        stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    from tests.esl.peer import gwait

    def port() -> int | None:
        for line in log.read_text().splitlines():
            rec = json.loads(line)
            if "metrics_port" in rec:
                return int(rec["metrics_port"])
        assert proc.poll() is None, log.read_text()
        return None
    gwait(lambda: port() is not None, timeout=20)
    return proc, int(port() or 0), log


def _scrape(port: int) -> tuple[int, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        return resp.status, resp.read().decode()


def test_cc_core_metrics_serve_exports_every_applied_tenant_and_survives_redis_loss(
        tmp_path: Path) -> None:
    with PrivateRedis() as server:
        cfg = tenant({"a1": {}}, {"q": {"tiers": tiers("a1")}})
        TenantStore(redis_lib.Redis.from_url(server.url)).apply(
            LoadedConfig(tenants={T: cfg}, global_config=GlobalConfig(), sources={},
                         complete=False))
        acd, _ = make_acd(server.url, cfg, Clock(_now_ms()))
        acd.set_break(T, "a1")
        for i in range(3):
            acd.enqueue(T, "q", f"c{i}", node="n1")
        proc, port, log = _serve(server.url, tmp_path)
        try:
            status, text = _scrape(port)
            assert status == 200
            assert 'cccore_queue_callers_waiting{queue="q",tenant="acme"} 3.0' in text
            assert ('cccore_queue_agents{queue="q",state="Waiting",status="On Break",'
                    'tenant="acme"} 1.0') in text
            server.stop()
            status, text = _scrape(port)
            assert status == 200, text
            assert "cccore_queue_callers_waiting{" not in text
            assert "cccore_kpi_scrape_errors_total 1.0" in text
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    assert "cannot read the ACD in Redis" in log.read_text()


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)


def test_on_a_redis_cluster_every_tenant_is_read_from_its_own_master(
        redis_cluster_url: str) -> None:
    from cc_core import keys as product_keys
    from cc_core.redisconn import connect

    client = connect(redis_cluster_url, socket_timeout=2)
    names = [f"t{i}" for i in range(6)]
    slots = {client.keyslot(product_keys.acd_queues(t)) for t in names}
    assert len(slots) > 1           # spread over the masters, not all in one slot
    for i, tid in enumerate(names):
        cfg = tenant({"a1": {"wrap_up_s": 0}}, {"q": {"tiers": tiers("a1")}}, tenant_id=tid)
        acd = Acd(client, clock_ms=Clock())
        acd.sync(cfg)
        for c in range(i + 1):
            acd.enqueue(tid, "q", f"{tid}-c{c}", node="n1")
    reg = CollectorRegistry()
    KpiMetrics(reg, client, lambda: [(t, TZ) for t in names], clock_ms=Clock())
    for i, tid in enumerate(names):
        assert reg.get_sample_value("cccore_queue_callers_waiting",
                                    {"tenant": tid, "queue": "q"}) == i + 1
    assert reg.get_sample_value("cccore_kpi_scrape_errors_total") == 0
