"""Metric names are a contract with dashboards and alert rules: one scheme, no surprises."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry

from esl_handlers.event_names import EVENT_NAMES
from metrics.acd import AcdMetrics
from metrics.business import BusinessMetrics, RecordingsDisk
from metrics.callflow import CallFlowMetrics
from metrics.esl import EslMetrics, event_label
from metrics.lease import LeaseMetrics
from metrics.queues import KpiMetrics

# What README "Observability", the demo, the bench, chaos.py and the integration tests read.
EXPORTED = {
    "cccore_esl_events_total", "cccore_esl_handling_seconds", "cccore_esl_event_lag_seconds",
    "cccore_esl_dispatch_queue_depth", "cccore_esl_shed_events_total",
    "cccore_esl_backpressure_seconds_total", "cccore_esl_handler_errors_total",
    "cccore_esl_reconnects_total", "cccore_esl_command_seconds",
    "cccore_esl_command_errors_total", "cccore_esl_heartbeat_missed_total",
    "cccore_esl_node_restarts_total", "cccore_esl_framing_errors_total",
    "cccore_esl_unsolicited_replies_total", "cccore_esl_node_up",
    "cccore_node_owner", "cccore_lease_acquired_total", "cccore_lease_lost_total",
    "cccore_lease_renew_failures_total", "cccore_lease_fenced_events_total",
    "cccore_node_reconciles_total",
    "cccore_calls_swept_total", "cccore_calls_total", "cccore_calls_started_total",
    "cccore_call_setup_seconds", "cccore_calls_in_progress",
    "cccore_acd_dispatch_seconds", "cccore_acd_join_to_offer_seconds",
    "cccore_acd_join_to_originate_seconds", "cccore_acd_join_to_answer_seconds",
    "cccore_queue_overflows_total", "cccore_tenant_caps_reached_total",
    "cccore_call_mos", "cccore_call_jitter_seconds", "cccore_call_packet_loss_ratio",
}
# What `cc-core metrics serve` exports once per deployment (metrics/queues.py): the names of
# the KPI contract (issue 10) that dashboards and alert rules are written against.
KPI_EXPORTED = {
    "cccore_queue_callers_waiting", "cccore_queue_oldest_wait_seconds",
    "cccore_queue_answered_today", "cccore_queue_answered_in_sl_today",
    "cccore_queue_abandoned_today", "cccore_queue_overflowed_today",
    "cccore_queue_service_level_ratio", "cccore_queue_abandon_ratio",
    "cccore_queue_asa_seconds", "cccore_queue_aht_seconds", "cccore_queue_callbacks_pending",
    "cccore_queue_agents", "cccore_kpi_scrape_errors_total",
    "cccore_kpi_scrape_duration_seconds",
}
# The business metrics `cc-core metrics serve` exports beside them (metrics/business.py), and the
# per-agent series of tenants that enable them (metrics.queues.AgentKpiCollector).
BUSINESS_EXPORTED = {
    "cccore_records_backlog_entries", "cccore_records_backlog_oldest_age_seconds",
    "cccore_billing_credit_balance_fen", "cccore_billing_low_credit_threshold_fen",
    "cccore_billing_credit_low", "cccore_billing_low_credit_tenants",
    "cccore_recordings_disk_used_bytes", "cccore_recordings_files",
    "cccore_recordings_disk_walk_age_seconds", "cccore_recordings_filesystem_size_bytes",
    "cccore_recordings_filesystem_avail_bytes", "cccore_business_scrape_errors_total",
}
AGENT_EXPORTED = {
    "cccore_agent_status", "cccore_agent_state", "cccore_agent_offers_today", "cccore_agent_calls_today",
    "cccore_agent_no_answers_today",
}
# Histograms of something other than a time: a score and a ratio, in their own units.
UNITLESS_HISTOGRAMS = {"cccore_call_mos", "cccore_call_packet_loss_ratio"}


def _worker_registry() -> CollectorRegistry:
    """What a worker process exports (cc_core.worker and cc_core.app build the same)."""
    reg = CollectorRegistry()
    EslMetrics(reg)
    LeaseMetrics(reg)
    CallFlowMetrics(reg).watch_live_calls(lambda: [("fs1", "t1")])
    AcdMetrics(reg)
    return reg


def _kpi_registry() -> CollectorRegistry:
    """What `cc-core metrics serve` exports (metrics.serve.build), against no Redis: the
    names come from describe(), a failed read only drops the samples."""
    reg = CollectorRegistry()
    KpiMetrics(reg, _DownRedis(), lambda: [("t1", "UTC")],
               agent_tenants=lambda: [("t1", "UTC")])
    BusinessMetrics(reg, _DownRedis(), lambda: ["t1"], RecordingsDisk("/"))
    return reg


class _DownRedis:
    """A Redis that cannot be reached (at once, without the client's retries)."""

    def register_script(self, body: str) -> None:
        return None

    def pipeline(self, transaction: bool = True) -> None:
        from redis.exceptions import ConnectionError as RedisDown

        raise RedisDown("Redis is down")

    smembers = pipeline


def _exported(reg: CollectorRegistry) -> dict[str, str]:
    """Exposed name (counters with their ``_total``) -> type."""
    out = {}
    for fam in reg.collect():
        name = fam.name + "_total" if fam.type == "counter" else fam.name
        out[name] = fam.type
    return out


def test_every_metric_a_worker_exports_keeps_its_contracted_name() -> None:
    assert set(_exported(_worker_registry())) == EXPORTED


def test_the_kpi_collector_keeps_the_contracted_names() -> None:
    reg = _kpi_registry()
    # Redis is unreachable here: the queue families are known from describe() (what the
    # registry learnt at registration), the collector's own counters from a scrape.
    described = {name for name in reg._names_to_collectors       # noqa: SLF001
                 if not name.endswith(("_errors", "_total", "_created"))}
    assert described | set(_exported(reg)) == KPI_EXPORTED | BUSINESS_EXPORTED | AGENT_EXPORTED


def test_names_carry_the_namespace_and_base_units() -> None:
    for name, kind in {**_exported(_worker_registry()), **_exported(_kpi_registry())}.items():
        assert name.startswith("cccore_"), name
        if kind == "counter":
            assert name.endswith("_total"), name
        if kind == "histogram" and name not in UNITLESS_HISTOGRAMS:
            # Every other histogram here measures a time, in seconds.
            assert name.endswith("_seconds"), name
        assert "_ms" not in name and "millis" not in name, name


def test_without_a_registry_nothing_is_registered_and_sets_can_be_built_again() -> None:
    before = {fam.name for fam in REGISTRY.collect()}
    for _ in range(2):      # a second set on a shared registry would raise "Duplicated"
        esl, lease, flow = EslMetrics(None), LeaseMetrics(None), CallFlowMetrics(None)
        lease.owner.labels("fs1").set(1)
        esl.events_total.labels("fs1", "CHANNEL_PARK").inc()
        flow.started.labels("t1").inc()
        flow.watch_live_calls(lambda: [])
    assert {fam.name for fam in REGISTRY.collect()} == before


def test_the_lag_help_says_it_is_the_switch_clock_not_the_core() -> None:
    helps = {fam.name: fam.documentation for fam in _worker_registry().collect()}
    assert "20 ms" in helps["cccore_esl_event_lag_seconds"]
    assert "cccore_esl_handling_seconds" in helps["cccore_esl_event_lag_seconds"]


def test_an_event_label_is_one_of_freeswitchs_names() -> None:
    assert event_label("CHANNEL_PARK") == "CHANNEL_PARK"
    assert event_label("CUSTOM") == "CUSTOM"
    assert event_label("") == event_label(None) == "unknown"
    # Shaped like an event name but not one: would open a series per distinct word.
    assert event_label("CHANNEL_PARK_0C8296CC") == "other"
    assert event_label("channel_park") == "other"
    assert {event_label(n) for n in EVENT_NAMES} <= set(EVENT_NAMES) | {"other"}
