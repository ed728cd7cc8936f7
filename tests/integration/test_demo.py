"""`cc-core demo` end to end: real redis-server, simulator and worker processes."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def _row(text: str, label: str) -> str:
    m = re.search(rf"^\s*{re.escape(label)}\s+(.+)$", text, re.M)
    assert m, f"summary row {label!r} missing from:\n{text}"
    return m.group(1).strip()


def test_demo_plays_the_example_tenants_through_every_kind_of_outcome() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "cc_core.cli", "demo", "--duration", "6", "--rate", "10",
         "--workers", "2"], capture_output=True, text=True, timeout=180)
    out = res.stdout
    assert res.returncode == 0, out + res.stderr
    assert "owned by worker" in out and "applied as config version" in out
    assert re.search(r"\[\s*\d+s\] calls\s+\d+ active\s+\d+ answered", out), "no progress line"
    # The core's own delay per event is shown, apart from the switch clock's 20 ms steps.
    assert re.search(r"\| core p50 [\d.]+ p99 [\d.]+ ms \|", out), "no core delay on progress"
    core_p50, core_p99 = (float(v) for v in _row(out, "core delay per event p50/p99 ms").split(" / "))
    assert 0 < core_p50 <= core_p99
    assert re.fullmatch(r"[\d.]+ / [\d.]+", _row(out, "switch clock lag p50/p99 ms"))
    placed = int(_row(out, "calls placed"))
    assert placed == 60 and int(_row(out, "ended")) == placed
    assert int(_row(out, "still active")) == 0
    outcomes = {k: int(_row(out, k)) for k in ("answered_by_agent", "blacklisted",
                                               "unallocated", "not_in_service")}
    assert all(v > 0 for v in outcomes.values()), outcomes
    assert int(_row(out, "after hours")) > 0, "the generated tenant closed today"
    assert "selftest 4008001234 from 13705711234, keys 1,3,2: expecting queue:support" in out
    assert "result: reached queue:support" in out
    # Every call summarised is one call record, and the busiest tenant's report shows them.
    stored = re.fullmatch(r"(\d+) of (\d+) calls stored \(records.sqlite3\)",
                          _row(out, "call records"))
    assert stored and int(stored[1]) == int(stored[2]) > 0, _row(out, "call records")
    assert re.search(r"^call report: cc-core cdr report --db \S+ --tenant \w+", out, re.M)
    reported = re.search(r"^calls +(\d+)$", out.split("call report:")[-1], re.M)
    assert reported and int(reported[1]) > 0
    # ...and its bill of the month: rated calls, yearly fee, services, the month's rent.
    assert re.search(r"^bill: cc-core billing bill --db \S+ --tenant \w+ --period \d{4}-\d{2}$",
                     out, re.M)
    billed = out.split("bill: ")[-1]
    rated = re.search(r"calls rated +(\d+)$", billed, re.M)
    total = re.search(r"TOTAL \(元\) +([\d.]+)$", billed, re.M)
    assert rated and int(rated[1]) > 0 and total and float(total[1]) > 50.0, billed
    # the demo account's contract year starts this month (its yearly fee is due), and it
    # takes recording outside its package (a monthly service fee)
    assert re.search(r"^  yearly fee \(元\) +600\.00  \d{4}-\d{2}-01: yearly fee, micro",
                     billed, re.M), billed
    assert re.search(r"^  service \(元\) +50\.00  \d{4}-\d{2}-01: recording", billed,
                     re.M), billed
    parts = [float(m) for m in re.findall(
        r"^  (?:calls|yearly fees|value-added services|monthly rent) \(元\) +([\d.]+)$",
        billed, re.M)]
    assert len(parts) == 4 and round(sum(parts), 2) == float(total[1]), billed
    # Callers the flow refused are never answered: the ones the summary counts as such.
    refused = sum(outcomes[k] for k in ("blacklisted", "unallocated", "not_in_service"))
    assert int(_row(out, "never answered")) >= refused
    # Where to look: each worker's metrics, the wallboard, the one command for a Prometheus
    # whose config (written by the demo) Prometheus' own promtool accepts.
    workers, _, kpis = _row(out, "metrics").partition("KPIs")
    assert len(re.findall(r"http://127\.0\.0\.1:\d+/metrics", workers)) == 2
    assert re.fullmatch(r" http://127\.0\.0\.1:\d+/metrics", kpis), "the KPI exporter"
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/wallboard#token=cct\.acme\.\S+ .*",
                        _row(out, "wallboard"))
    prom = _row(out, "prometheus")
    assert prom.startswith("prometheus --config.file=") and "127.0.0.1:" in prom
    config = re.search(r"--config\.file=(\S+)", prom)
    assert config
    check = subprocess.run(["promtool", "check", "config", config.group(1)],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr


def test_past_the_machines_capacity_calls_slow_down_but_every_one_ends() -> None:
    # 1,000 new calls/s is past what one worker handles on this 2-core box (answers queue up
    # for seconds): handlers must wait for Redis connections and retry, never strand a call.
    res = subprocess.run(
        [sys.executable, "-m", "cc_core.cli", "demo", "--duration", "3", "--rate", "1000",
         "--workers", "1", "--mix", "announce", "--caller-hangup-ratio", "0"],
        capture_output=True, text=True, timeout=180,
    )
    out = res.stdout
    placed = int(_row(out, "calls placed"))
    assert placed == 3000, out
    assert int(_row(out, "ended")) == placed, out + res.stderr[-3000:]
    assert int(_row(out, "still active")) == 0
    assert res.returncode == 0
