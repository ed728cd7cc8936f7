"""Hostile callers cannot grow the metrics: calls with caller numbers built to look like label
syntax, control bytes, call UUIDs and long strings go through queues (answered by agents,
overflowed to voicemail, abandoned) on the simulator, with RTP statistics, in two rounds of
fresh callers and UUIDs. Every label value of a worker's /metrics and of the KPI collector (with
per-agent series enabled for the tenant, and the business metrics) must come from
configuration or a fixed vocabulary, none may be a UUID or anything a caller sent, and the
second round must add no series.
"""

from __future__ import annotations

import re
import uuid as uuid_mod
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from acd.store import Acd
from cc_core import keys
from cc_core.flow.machine import OUTCOMES
from cc_core.tenants.model import AgentState, AgentStatus, DestinationKind
from esl_handlers.event_names import EVENT_NAMES
from metrics.business import BusinessMetrics
from metrics.queues import KpiMetrics
from tests.conftest import wait_for
from tests.integration.cluster import (
    FAILOVER_TTL_MS,
    NODE,
    REPO,
    START_TIMEOUT_S,
    Cluster,
    Observer,
    running_cluster,
)

pytestmark = pytest.mark.slow

TENANT = REPO / "tests" / "data" / "tenants" / "acdtest.yaml"
T = "acdtest"
QUEUES = set(yaml.safe_load(TENANT.read_text(encoding="utf-8"))["queues"])
AGENTS = set(yaml.safe_load(TENANT.read_text(encoding="utf-8"))["agents"])
ANSWERED, OVERFLOWED, ABANDONED = "4002220001", "4002220005", "4002220008"
PER_ROUND = {ANSWERED: 4, OVERFLOWED: 3, ABANDONED: 3}
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
# Label name -> its allowed values: a set, or a pattern for FreeSWITCH command names
# (``metrics.esl.command_label``: a lower-case word without digits, so no number hides in it).
BOUNDED: dict[str, Any] = {
    "node": {NODE},
    "tenant": {T, ""},
    "queue": QUEUES,
    "agent": AGENTS,
    "group": {keys.CDR_GROUP},
    "target": {k.value for k in DestinationKind},
    "status": {s.value for s in AgentStatus} | {"other"},
    "state": {s.value for s in AgentState} | {"other"},
    "event": set(EVENT_NAMES) | {"other", "unknown"},
    "outcome": OUTCOMES | {"other"},
    "reason": {"unclaimed", "stalled", "lapsed", "other_owner", "stale_token", "margin",
               "released", "link_down", "timeout", "connection_lost", "unknown"},
    "result": {"ok", "error"},
    "command": re.compile(r"^[a-z_]{1,40}$"),
    "le": None,     # a histogram's own bucket bounds
}


def _hostile(round_no: int, i: int) -> str:
    """A caller number (no spaces: one sim_inbound argument) made to break a label."""
    shapes = [
        '{tenant="evil",queue="x"}', "queue=%22x%22", "%0Acccore_fake%201", "${uuid}",
        str(uuid_mod.uuid4()), "+86" + "9" * 120, "呼叫者", "'$(reboot)'", "a\\b", "",
    ]
    return f"{shapes[i % len(shapes)]}r{round_no}c{i}"


@pytest.fixture
def queues(tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
           ) -> Iterator[tuple[Cluster, Observer]]:
    monkeypatch.setenv("CC_TENANTS", str(TENANT))
    for cluster in running_cluster(tmp_path, redis_url, "--rtp-loss", "0.05",
                                   "--time-scale", "2"):
        obs = Observer(cluster.sim.port)
        for contact in ("a1", "a2"):
            assert obs.conn.api(f"sim_endpoint user/{contact}@default answer 100 400"
                                ).startswith("+OK")
            # registered before the worker starts (it asks sofia_contact), as agents' phones are
            assert obs.conn.api(f"sim_register {contact}@default 3600").startswith("+OK")
        cluster.start_workers(1, ttl_ms=FAILOVER_TTL_MS, app="cc_core.app:build")
        cluster.wait_owner(cluster.workers, timeout=START_TIMEOUT_S)
        acd = Acd(cluster.r)
        wait_for(lambda a=acd: a.agents(T), timeout=10, message="the tenant's agents synced")
        try:
            yield cluster, obs
        finally:
            obs.close()


def _round(cluster: Cluster, obs: Observer, round_no: int, callers: list[str],
           uuids: set[str]) -> None:
    acd = Acd(cluster.r)
    placed: dict[str, list[str]] = {dnis: [] for dnis in PER_ROUND}
    i = 0
    for dnis, n in PER_ROUND.items():
        for _ in range(n):
            caller = _hostile(round_no, i)
            i += 1
            callers.append(caller)
            placed[dnis].append(obs.call(caller, dnis))
    for uuid in placed[ABANDONED]:
        wait_for(lambda u=uuid: _waiting(acd, u), timeout=10, message="caller queued")
        assert obs.conn.api(f"uuid_kill {uuid} NORMAL_CLEARING").startswith("+OK")
    everyone = [u for us in placed.values() for u in us]
    wait_for(lambda: all(u in obs.ended for u in everyone), timeout=60,
             message="every call of the round to end")
    uuids.update(everyone)
    uuids.update(obs.cc_vars)       # agent legs too


def _waiting(acd: Acd, uuid: str) -> bool:
    try:
        return acd.member(T, uuid).state == "Waiting"
    except Exception:  # noqa: BLE001 - not queued yet
        return False


def _series(text: str) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    return {(s.name, tuple(sorted(s.labels.items())))
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def _scrape(cluster: Cluster, kpi: CollectorRegistry) -> set[tuple[str, tuple]]:
    import urllib.request

    port = cluster.workers[0].port
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        worker = resp.read().decode()
    return _series(worker) | _series(generate_latest(kpi).decode())


def _check_labels(series: set[tuple[str, tuple]], callers: list[str], uuids: set[str]
                  ) -> None:
    problems = []
    for name, labels in series:
        for key, value in labels:
            allowed = BOUNDED.get(key, "undeclared")
            if allowed == "undeclared":
                problems.append(f"{name}: label {key!r} is not declared bounded")
            elif isinstance(allowed, set) and value not in allowed:
                problems.append(f"{name}: {key}={value!r} is not a configured value")
            elif isinstance(allowed, re.Pattern) and not allowed.match(value):
                problems.append(f"{name}: {key}={value!r}")
            # Each caller string ends in a unique r<round>c<call>: found whole if it leaked.
            if UUID_RE.search(value) or value in uuids or any(c in value for c in callers):
                problems.append(f"{name}: {key}={value!r} comes from a call")
    assert not problems, "\n".join(sorted(set(problems)))


def test_hostile_callers_and_many_calls_add_no_label_value_and_no_series(
        queues: tuple[Cluster, Observer]) -> None:
    cluster, obs = queues
    kpi = CollectorRegistry()
    KpiMetrics(kpi, cluster.r, lambda: [(T, "Asia/Shanghai")],
               agent_tenants=lambda: [(T, "Asia/Shanghai")])
    BusinessMetrics(kpi, cluster.r, lambda: [T])
    callers: list[str] = []
    uuids: set[str] = set()

    _round(cluster, obs, 1, callers, uuids)
    first = _scrape(cluster, kpi)
    _check_labels(first, callers, uuids)
    # what the round did shows: overflows by kind, quality per node and tenant, the queues
    names = {n for n, _ in first}
    assert {"cccore_queue_overflows_total", "cccore_call_mos_count",
            "cccore_queue_callers_waiting", "cccore_queue_agents", "cccore_agent_status",
            "cccore_agent_offers_today", "cccore_records_backlog_entries"} <= names, names

    _round(cluster, obs, 2, callers, uuids)
    second = _scrape(cluster, kpi)
    _check_labels(second, callers, uuids)
    assert len(uuids) >= 2 * sum(PER_ROUND.values())
    assert second - first == set(), "new calls opened new series"
