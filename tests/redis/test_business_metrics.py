"""The business figures an operator watches, as `cc-core metrics serve` exports them: the call
records not stored yet (and how old the oldest is), each tenant's prepaid credit and whether it
is low (billing's own notion), the recordings' disk; and per-agent series only for a tenant
that enables them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import redis as redis_lib
from prometheus_client import CollectorRegistry, generate_latest

from billing import accounts
from billing.credit import CreditView
from billing.service import topup
from cc_core import keys
from metrics.business import BusinessMetrics, RecordingsDisk
from metrics.queues import KpiMetrics
from provider import catalogue as catalogue_mod
from records.consumer import CdrConsumer
from records.db import Database, open_database
from records.migrate import migrate
from tests.acd.helpers import Clock, make_acd, serve, tenant, tiers
from tests.records.helpers import T0, append, summary

CAT = catalogue_mod.load()
NOW = T0 + 600_000          # ten minutes after the first summary's stream id


def _registry(r: redis_lib.Redis, tenants: list[str], disk: RecordingsDisk | None = None,
              now_ms: int = NOW) -> CollectorRegistry:
    reg = CollectorRegistry()
    BusinessMetrics(reg, r, lambda: tenants, disk, clock_ms=lambda: now_ms)
    return reg


def _backlog(reg: CollectorRegistry, tenant: str) -> tuple[float | None, float | None]:
    labels = {"tenant": tenant, "group": keys.CDR_GROUP}
    return (reg.get_sample_value("cccore_records_backlog_entries", labels),
            reg.get_sample_value("cccore_records_backlog_oldest_age_seconds", labels))


def _append_at(r: redis_lib.Redis, uuid: str, tenant: str, at_ms: int) -> None:
    # The stream id carries the time Redis appended the summary; here it is set by hand.
    import msgpack

    r.sadd(keys.calls_tenants(), tenant)
    r.xadd(keys.calls_stream(tenant), {"call": msgpack.packb(summary(uuid, tenant),
                                                             use_bin_type=True)},
           id=f"{at_ms}-0")


@pytest.fixture
def db(tmp_path: Path) -> Database:
    store = open_database(str(tmp_path / "records.sqlite3"))
    migrate(store)
    return store


def test_the_record_backlog_counts_what_is_not_stored_and_ages_by_the_oldest(
        redis_url: str, db: Database) -> None:
    r = redis_lib.Redis.from_url(redis_url)
    for i in range(3):
        _append_at(r, f"c{i}", "acme", T0 + i * 60_000)
    _append_at(r, "b0", "beta", T0 + 300_000)
    reg = _registry(r, ["acme", "beta"])
    # No consumer has run: every summary waits, the oldest appended ten minutes ago.
    assert _backlog(reg, "acme") == (3.0, 600.0)
    assert _backlog(reg, "beta") == (1.0, 300.0)

    # A consumer that took two summaries and died before its commit: still not stored.
    consumer = CdrConsumer(r, db, "dead", batch=2)
    consumer.streams()
    r.xreadgroup(keys.CDR_GROUP, "dead", {keys.calls_stream("acme"): ">"}, count=2)
    assert _backlog(reg, "acme") == (3.0, 600.0)

    # Redis loses count of the group's lag when an unread entry is deleted: counted by hand.
    r.xdel(keys.calls_stream("acme"), f"{T0 + 120_000}-0")
    assert r.xinfo_groups(keys.calls_stream("acme"))[0]["lag"] is None
    assert _backlog(reg, "acme") == (2.0, 600.0)

    # Everything stored (the dead consumer's entries taken over): nothing waits.
    alive = CdrConsumer(r, db, "alive", claim_idle_ms=0)
    while alive.step().read:
        pass
    assert _backlog(reg, "acme") == (0.0, 0.0)
    assert _backlog(reg, "beta") == (0.0, 0.0)
    with db.transaction(write=False) as tx:
        stored = tx.execute("SELECT COUNT(*) FROM call_records").fetchone()
    assert stored == (3,)
    # A summary appended now waits again, as old as it is.
    append(r, summary("c9", "acme"))
    entries, age = _backlog(_registry(r, ["acme"], now_ms=_now_ms() + 5_000), "acme")
    assert entries == 1.0 and age is not None and 4.0 <= age < 60.0


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)


def _open(db: Database, tenant: str, balance: int, threshold: int) -> None:
    with db.transaction() as tx:
        accounts.open_account(tx, CAT, tenant, "micro", increment_s=60,
                              low_credit_fen=threshold, effective_on="2025-01-01", by="ops")
        accounts.topup(tx, tenant, balance, "alice", "prepaid")


def test_credit_per_tenant_in_fen_and_low_as_billing_raises_it(
        redis_url: str, db: Database) -> None:
    r = redis_lib.Redis.from_url(redis_url)
    view = CreditView(r)
    _open(db, "acme", 1_000, threshold=900)
    _open(db, "beta", 50_000, threshold=1_000)
    topup(db, view, CAT, "acme", 1, "alice", "publish")       # 1001: above its threshold
    topup(db, view, CAT, "beta", 1, "alice", "publish")
    reg = _registry(r, ["acme", "beta", "nobill"])

    def credit(t: str) -> tuple[float | None, float | None, float | None]:
        return (reg.get_sample_value("cccore_billing_credit_balance_fen", {"tenant": t}),
                reg.get_sample_value("cccore_billing_low_credit_threshold_fen", {"tenant": t}),
                reg.get_sample_value("cccore_billing_credit_low", {"tenant": t}))

    assert credit("acme") == (1001.0, 900.0, 0.0)
    assert credit("beta") == (50001.0, 1000.0, 0.0)
    assert credit("nobill") == (None, None, None)      # no account: its calls are not billed
    assert reg.get_sample_value("cccore_billing_low_credit_tenants") == 0.0

    # An adjustment down to the threshold: billing raises low_credit, the gauges say so.
    topup(db, view, CAT, "acme", -101, "alice", "refund", adjustment=True)
    events = r.xrange(keys.billing_events("acme"))
    assert [e[1][b"event"] for e in events] == [b"low_credit"]
    assert credit("acme") == (900.0, 900.0, 1.0)
    assert reg.get_sample_value("cccore_billing_low_credit_tenants") == 1.0
    # A top-up above it: billing says credit_restored, the alert's series goes back to 0.
    topup(db, view, CAT, "acme", 5_000, "alice", "bank transfer")
    assert credit("acme") == (5900.0, 900.0, 0.0)
    assert reg.get_sample_value("cccore_billing_low_credit_tenants") == 0.0


def test_recordings_disk_usage_from_the_last_walk_and_the_filesystem_now(
        redis_url: str, tmp_path: Path) -> None:
    root = tmp_path / "recordings"
    (root / "acme" / "2026" / "11").mkdir(parents=True)
    for i, size in enumerate((40_000, 120_000)):
        (root / "acme" / "2026" / "11" / f"r{i}.wav").write_bytes(b"\1" * size)
    disk = RecordingsDisk(str(root), walk_s=3600)
    reg = _registry(redis_lib.Redis.from_url(redis_url), [], disk, now_ms=_now_ms())
    # Not walked yet: the filesystem is known, the tree's total is not (no sample, not 0).
    assert reg.get_sample_value("cccore_recordings_disk_used_bytes") is None
    st = os.statvfs(root)
    assert reg.get_sample_value("cccore_recordings_filesystem_size_bytes") == \
        st.f_blocks * st.f_frsize
    assert reg.get_sample_value("cccore_recordings_filesystem_avail_bytes") > 0

    disk.refresh()
    used = reg.get_sample_value("cccore_recordings_disk_used_bytes")
    assert used is not None and 160_000 <= used < 160_000 + 2 * 65_536
    assert reg.get_sample_value("cccore_recordings_files") == 2.0
    # A scrape reads the cached total: a new file shows at the next walk, not before.
    (root / "acme" / "r2.wav").write_bytes(b"\1" * 1_000_000)
    assert reg.get_sample_value("cccore_recordings_disk_used_bytes") == used
    disk.refresh()
    assert reg.get_sample_value("cccore_recordings_disk_used_bytes") >= used + 1_000_000
    assert reg.get_sample_value("cccore_recordings_files") == 3.0

    # A root that is not there: no total (a gap to see), not "0 bytes used".
    gone = RecordingsDisk(str(tmp_path / "missing"))
    gone.refresh()
    text = generate_latest(_registry(redis_lib.Redis.from_url(redis_url), [], gone)).decode()
    assert "\ncccore_recordings_disk_used_bytes " not in text
    assert "\ncccore_recordings_filesystem_size_bytes " not in text


def test_redis_down_drops_the_business_series_and_counts_an_error(tmp_path: Path) -> None:
    r = redis_lib.Redis(host="127.0.0.1", port=1, socket_timeout=0.5,
                        socket_connect_timeout=0.5)
    root = tmp_path / "rec"
    root.mkdir()
    disk = RecordingsDisk(str(root))
    disk.refresh()
    text = generate_latest(_registry(r, ["acme"], disk)).decode()
    assert "cccore_records_backlog_entries{" not in text
    assert "\ncccore_billing_low_credit_tenants " not in text
    assert "cccore_business_scrape_errors_total 1.0" in text
    assert "cccore_recordings_disk_used_bytes 0.0" in text        # the disk needs no Redis


def test_per_agent_series_only_for_the_tenant_that_enables_them(redis_url: str) -> None:
    clock = Clock(_now_ms())
    acd, _ = make_acd(redis_url, tenant({"a1": {}, "a2": {}}, {"q": {"tiers": tiers("a1", "a2")}}),
                      clock)
    make_acd(redis_url, tenant({"a1": {}, "b1": {}}, {"q": {"tiers": tiers("a1", "b1")}},
                               tenant_id="quiet"), clock)
    who = serve(acd, clock, "q", "c1")            # one queue call answered and ended
    client = redis_lib.Redis.from_url(redis_url)
    both = [("acme", "Asia/Shanghai"), ("quiet", "Asia/Shanghai")]

    def scrape(enabled: list[tuple[str, str]] | None) -> CollectorRegistry:
        reg = CollectorRegistry()
        KpiMetrics(reg, client, lambda: both, clock_ms=clock,
                   agent_tenants=None if enabled is None else lambda: enabled)
        return reg

    def agent_series(reg: CollectorRegistry) -> set[tuple[str, str, str]]:
        return {(s.name, s.labels["tenant"], s.labels["agent"])
                for fam in reg.collect() for s in fam.samples if "agent" in s.labels}

    assert agent_series(scrape(None)) == set()     # default: no agent label anywhere
    assert agent_series(scrape([])) == set()       # no tenant enabled it
    reg = scrape([("acme", "Asia/Shanghai")])
    found = agent_series(reg)
    assert {(t, a) for _, t, a in found} == {("acme", "a1"), ("acme", "a2")}
    assert {n for n, _, _ in found} == {"cccore_agent_status", "cccore_agent_state",
                                        "cccore_agent_offers_today",
                                        "cccore_agent_calls_today",
                                        "cccore_agent_no_answers_today"}
    one = {"tenant": "acme", "agent": who}
    assert reg.get_sample_value("cccore_agent_calls_today", one) == 1.0
    assert reg.get_sample_value("cccore_agent_offers_today", one) == 1.0
    assert reg.get_sample_value("cccore_agent_no_answers_today", one) == 0.0
    other = "a2" if who == "a1" else "a1"
    acd.set_break("acme", other)
    reg = scrape([("acme", "Asia/Shanghai")])
    status = {s.labels["status"]: s.value for fam in reg.collect() for s in fam.samples
              if s.name == "cccore_agent_status" and s.labels["agent"] == other}
    assert status == {"Logged Out": 0.0, "Available": 0.0, "Available (On Demand)": 0.0,
                      "On Break": 1.0}
    # Every state listed, the current one 1: an agent's series are the same all day.
    assert agent_series(reg) == found


def test_the_served_registry_follows_each_tenants_metrics_per_agent_flag(
        redis_url: str) -> None:
    from pydantic import ValidationError

    from cc_core.tenants.loader import LoadedConfig
    from cc_core.tenants.model import GlobalConfig, Tenant
    from cc_core.tenants.store import TenantStore
    from metrics.serve import build

    on = Tenant.model_validate({**tenant({"a1": {}}, {"q": {"tiers": tiers("a1")}}).model_dump(
        mode="json", exclude_defaults=True), "metrics": {"per_agent": True}})
    off = tenant({"b1": {}}, {"q": {"tiers": tiers("b1")}}, tenant_id="quiet")
    assert on.metrics.per_agent and not off.metrics.per_agent        # off unless asked
    with pytest.raises(ValidationError, match="per_agnet"):
        Tenant.model_validate({**off.model_dump(mode="json", exclude_defaults=True),
                               "metrics": {"per_agnet": True}})
    client = redis_lib.Redis.from_url(redis_url)
    TenantStore(client).apply(LoadedConfig(tenants={"acme": on, "quiet": off},
                                           global_config=GlobalConfig(), sources={},
                                           complete=False))
    clock = Clock(_now_ms())
    make_acd(redis_url, on, clock)
    make_acd(redis_url, off, clock)
    registry, _ = build(client)
    agents = {(s.labels["tenant"], s.labels["agent"]) for fam in registry.collect()
              for s in fam.samples if "agent" in s.labels}
    assert agents == {("acme", "a1")}


def test_metrics_serve_takes_the_recordings_root_from_its_config_or_refuses_a_bad_one(
        redis_url: str, tmp_path: Path) -> None:
    import json
    import subprocess
    import sys
    import urllib.request

    from tests.esl.peer import gwait

    bad = subprocess.run([sys.executable, "-m", "cc_core.cli", "metrics", "serve", "--port",
                          "0", "--redis-url", redis_url, "--recordings-root", "recordings"],
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode != 0 and "must be an absolute path" in bad.stderr, bad.stderr

    root = tmp_path / "rec"
    root.mkdir()
    (root / "x.wav").write_bytes(b"\1" * 10_000)
    cfg = tmp_path / "cc.yaml"
    cfg.write_text(f"redis_url: {redis_url}\nrecordings: {{root: {root}}}\n", encoding="utf-8")
    log = tmp_path / "serve.log"
    proc = subprocess.Popen([sys.executable, "-m", "cc_core.cli", "metrics", "serve", "--port",
                             "0", "--config", str(cfg)], stdout=subprocess.DEVNULL,
                            stderr=log.open("wb"))

    def port() -> int | None:
        for line in log.read_text().splitlines():
            rec = json.loads(line)
            if "metrics_port" in rec:
                return int(rec["metrics_port"])
        assert proc.poll() is None, log.read_text()
        return None

    def scrape() -> str:
        url = f"http://127.0.0.1:{port()}/metrics"
        with urllib.request.urlopen(url, timeout=10) as resp:
            return str(resp.read().decode())

    try:
        gwait(lambda: port() is not None, timeout=20)
        # The first walk runs in the background as the server starts.
        gwait(lambda: "\ncccore_recordings_files 1.0" in scrape(), timeout=20)
        assert "\ncccore_billing_low_credit_tenants 0.0" in scrape()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
