"""Every PromQL expression of the shipped dashboards and alert rules, evaluated by a real
Prometheus scraping a running stack (simulator, a worker, the ACD, the API) on loopback.

Each expression must parse and run; each whose metrics exist must return data; the figures
must be what the test made happen (calls placed, answered, callers left waiting; a tenant's
billing account, its call summaries not stored and then stored by a record consumer, files in
the recordings root). The queue and agent KPIs (``cccore_queue_*``, ``cccore_call_*``) and the
business metrics come from `cc-core metrics serve`; a name that is neither scraped nor one of
those fails the test (a typo in a board or a rule).
"""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from cc_core.prom_server import PrivateProm, PromQueryError
from cc_core.redis_server import free_port
from records.consumer import CdrConsumer
from records.db import Database, open_database
from records.migrate import migrate
from tests.conftest import wait_for
from tests.integration.cluster import REPO, Cluster
from tests.integration.promql import RULES, Expr, dashboard_exprs, defined_names, rule_exprs
from tests.integration.queue_scene import (
    ANSWERED_QUEUE,
    OVERFLOW_QUEUE,
    WAIT_QUEUE,
    ApiProcess,
    T,
    api_process,
    scene,
)

pytestmark = pytest.mark.slow

# The KPI names of the metrics contract (issue 10), served by one collector per deployment.
KPI_NAMES = {
    "cccore_queue_callers_waiting", "cccore_queue_oldest_wait_seconds",
    "cccore_queue_answered_today", "cccore_queue_answered_in_sl_today",
    "cccore_queue_abandoned_today", "cccore_queue_overflowed_today",
    "cccore_queue_service_level_ratio", "cccore_queue_abandon_ratio",
    "cccore_queue_asa_seconds", "cccore_queue_aht_seconds", "cccore_queue_callbacks_pending",
    "cccore_queue_agents", "cccore_queue_overflows_total",
    *(f"{h}_{s}" for h in ("cccore_call_mos", "cccore_call_jitter_seconds",
                           "cccore_call_packet_loss_ratio")
      for s in ("bucket", "sum", "count")),
}
# What `cc-core metrics serve` exports beside them (metrics/business.py): every expression
# reading these must get data here (the stack has all three).
BUSINESS_NAMES = {
    "cccore_records_backlog_entries", "cccore_records_backlog_oldest_age_seconds",
    "cccore_billing_credit_balance_fen", "cccore_billing_low_credit_threshold_fen",
    "cccore_billing_credit_low", "cccore_billing_low_credit_tenants",
    "cccore_recordings_disk_used_bytes", "cccore_recordings_files",
    "cccore_recordings_disk_walk_age_seconds", "cccore_recordings_filesystem_size_bytes",
    "cccore_recordings_filesystem_avail_bytes",
}
WORKERS_JOB, KPI_JOB = "cccore-workers", "cccore-kpi"
SCRAPE_TIMEOUT_S = 30.0


def _kpi_target(api: ApiProcess, redis_url: str, tmp_path: Path,
                recordings_root: Path) -> Iterator[str | None]:
    """Where the KPI collector is served: the API's /metrics, else `cc-core metrics serve`;
    None while neither exists on this tree."""
    try:
        with urllib.request.urlopen(f"{api.url}/metrics", timeout=2) as resp:
            if resp.status == 200 and b"cccore_queue_" in resp.read():
                yield api.url.removeprefix("http://")
                return
    except OSError:
        pass
    from cc_core.cli import cli

    group = getattr(cli, "commands", {}).get("metrics")
    if group is None or "serve" not in getattr(group, "commands", {}):
        yield None
        return
    port = free_port()
    with open(tmp_path / "kpi.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "cc_core.cli", "metrics", "serve",
                                 "--port", str(port), "--redis-url", redis_url,
                                 "--recordings-root", str(recordings_root)],
                                stdout=log, stderr=log, cwd=REPO)
    def serving() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1):
                return True
        except OSError:
            return proc.poll() is not None

    try:
        wait_for(serving, timeout=SCRAPE_TIMEOUT_S, message="cc-core metrics serve to listen")
        assert proc.poll() is None, ("cc-core metrics serve --port P --redis-url URL exited: "
                                     + (tmp_path / "kpi.log").read_text(errors="replace"))
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


kpi_target = contextmanager(_kpi_target)


def _value(prom: PrivateProm, expr: str) -> dict[tuple[str, ...], float]:
    """label values (in label-name order) -> value, of an instant query."""
    out = {}
    for s in prom.query(expr):
        key = tuple(v for _, v in sorted(s["metric"].items()))
        out[key] = float(s["value"][1])
    return out


def _settles(prom: PrivateProm, expr: str, expected: dict[tuple[str, ...], float]) -> None:
    """Wait until Prometheus has scraped what the test made happen: ``expr`` == expected."""
    seen: list[dict[tuple[str, ...], float]] = []

    def ok() -> bool:
        seen.append(_value(prom, expr))
        return seen[-1] == expected

    try:
        wait_for(ok, timeout=SCRAPE_TIMEOUT_S, interval=0.2, message=expr)
    except AssertionError:
        raise AssertionError(f"{expr}: expected {expected}, Prometheus says {seen[-1]}") from None


def _billing_account(db: Database, r: Any, balance_fen: int, threshold_fen: int) -> None:
    """The scene's tenant gets a prepaid account, published into the credit view as billing
    does after each commit."""
    from billing import accounts
    from billing.credit import CreditView
    from billing.service import topup
    from provider import catalogue

    cat = catalogue.load()
    with db.transaction() as tx:
        accounts.open_account(tx, cat, T, "micro", increment_s=60, low_credit_fen=threshold_fen,
                              effective_on="2025-01-01", by="ops")
    topup(db, CreditView(r), cat, T, balance_fen, "ops", "prepaid")


def test_every_dashboard_and_rule_expression_against_a_live_stack(
        cluster: Cluster, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        record_property: Callable[[str, object], None]) -> None:
    recordings = tmp_path / "recordings"
    (recordings / T).mkdir(parents=True)
    (recordings / T / "one.wav").write_bytes(b"\0" * 64_000)
    db = open_database(str(tmp_path / "records.sqlite3"))
    migrate(db)
    _billing_account(db, cluster.r, 12_345, threshold_fen=1_000)
    with scene(cluster, monkeypatch) as s, api_process(redis_url, tmp_path) as api, \
            kpi_target(api, redis_url, tmp_path, recordings) as kpi:
        ports = [w.metrics_port(cluster.r) for w in cluster.workers]
        jobs = {WORKERS_JOB: [f"127.0.0.1:{p}" for p in ports]}
        if kpi is not None:
            jobs[KPI_JOB] = [kpi]
        with PrivateProm(jobs, rule_files=[RULES]) as prom:
            s.answer_one()
            s.overflow_one()
            s.leave_waiting(3)

            # What the test made happen, as Prometheus scraped it.
            _settles(prom, f'sum(cccore_calls_started_total{{tenant="{T}"}})',
                     {(): float(s.placed)})
            _settles(prom, f'sum by (outcome) (cccore_calls_total{{tenant="{T}"}})',
                     {("answered_by_agent",): 1.0, ("voicemail",): 1.0})
            _settles(prom, f'sum(cccore_calls_in_progress{{tenant="{T}"}})',
                     {(): float(len(s.waiting))})
            _settles(prom, "max by (node) (cccore_esl_node_up)", {("fs1",): 1.0})
            _settles(prom, "sum by (node) (cccore_node_owner)", {("fs1",): 1.0})
            _settles(prom, f'sum(up{{job="{WORKERS_JOB}"}})', {(): float(len(ports))})
            if kpi is not None:
                _settles(prom, f'sum(cccore_queue_callers_waiting{{tenant="{T}", '
                               f'queue="{WAIT_QUEUE}"}})', {(): float(len(s.waiting))})
                _settles(prom, f'sum(cccore_queue_answered_today{{tenant="{T}", '
                               f'queue="{ANSWERED_QUEUE}"}})', {(): float(len(s.answered))})
                _settles(prom, f'sum(cccore_queue_agents{{tenant="{T}", queue="{WAIT_QUEUE}", '
                               'status="Logged Out"})', {(): 1.0})
                _settles(prom, f'sum by (queue, target) (cccore_queue_overflows_total'
                               f'{{tenant="{T}"}})', {(OVERFLOW_QUEUE, "queue"): 1.0,
                                                     ("empty2", "voicemail"): 1.0})
            # Business: the account as billing published it; the two ended calls' summaries
            # wait for a record consumer (none runs yet), then one stores them; the
            # recordings root holds one file.
            _settles(prom, f'sum(cccore_billing_credit_balance_fen{{tenant="{T}"}})',
                     {(): 12_345.0})
            _settles(prom, "sum(cccore_billing_low_credit_tenants)", {(): 0.0})
            _settles(prom, f'sum(cccore_records_backlog_entries{{tenant="{T}"}})',
                     {(): float(len(s.answered) + len(s.overflowed))})
            consumer = CdrConsumer(cluster.r, db, "live-test")
            while consumer.step().read:
                pass
            _settles(prom, f'sum(cccore_records_backlog_entries{{tenant="{T}"}})', {(): 0.0})
            _settles(prom, "sum(cccore_recordings_files)", {(): 1.0})
            # Past the first rate() window's two samples of every series.
            wait_for(lambda: _value(prom, "sum(rate(cccore_esl_events_total[1m]))"),
                     timeout=SCRAPE_TIMEOUT_S, message="two scrapes of the worker")

            scraped = set(prom.api("label/__name__/values"))
            known = defined_names() | KPI_NAMES | BUSINESS_NAMES
            exprs: list[Expr] = dashboard_exprs() + rule_exprs()
            problems, pending, checked = [], [], 0
            for e in exprs:
                unknown = e.names - scraped - known
                if unknown:
                    problems.append(f"{e.where}: {sorted(unknown)} is no metric of cc-core "
                                    f"(README Observability, the KPI contract): {e.promql}")
                try:
                    prom.query(e.promql)
                    result = prom.query(e.signal)
                except PromQueryError as exc:
                    problems.append(f"{e.where}: {exc}")
                    continue
                missing = e.signal_names - scraped
                if missing:
                    why = ("needs the KPI collector" if kpi is None and missing <= KPI_NAMES
                           else "no such event in this run")
                    pending.append(f"{e.where}: {sorted(missing)} ({why})")
                    continue
                checked += 1
                if not result:
                    problems.append(f"{e.where}: no data from {e.signal}")
            # Every rule loaded and evaluated without error (no many-to-many match, ...).
            def evaluated() -> list[dict]:
                rules = [r for g in prom.api("rules")["groups"] for r in g["rules"]]
                return rules if all(not r["lastEvaluation"].startswith("0001")
                                    for r in rules) else []

            rules = wait_for(evaluated, timeout=SCRAPE_TIMEOUT_S, message="a rule evaluation")
            assert isinstance(rules, list)
            problems += [f"rule {r['name']}: {r.get('lastError')}" for r in rules
                         if r["health"] != "ok"]
            # Nothing is wrong in this stack: no alert fires (those with a `for:` can only be
            # pending this soon; a latency one may be, on a loaded machine, and that is fine).
            firing = {a["labels"]["alertname"] for a in prom.api("alerts")["alerts"]
                      if a["state"] == "firing"}
            assert not firing, firing

            record_property("expressions", len(exprs))
            record_property("checked_with_data", checked)
            record_property("pending_kpi", "; ".join(pending))
            print(f"{len(exprs)} expressions; {checked} returned data; {len(pending)} read "
                  "series this run has not made:\n  " + "\n  ".join(pending))
            assert not problems, "\n".join(problems)
            assert checked >= 25
            if kpi is not None:
                # With the collector, only series that need an event this stack has not made
                # (a reconnect, an overflow, a swept call, ...) may be missing.
                assert not [p for p in pending if "cccore_queue_callers_waiting" in p], pending
            # The business figures exist in this stack: each of their expressions had data.
            assert not [p for p in pending if any(n in p for n in BUSINESS_NAMES)], pending
            business = [e for e in exprs if e.names & BUSINESS_NAMES]
            assert len(business) >= 10, [e.where for e in business]
