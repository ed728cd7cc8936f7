"""The shipped alert rules and example scrape config, checked by Prometheus' own promtool:
they load in a real Prometheus, and each alert fires (and stays quiet) as rules_test.yml says."""

from __future__ import annotations

import subprocess
import urllib.request
from pathlib import Path

import pytest
import yaml

from cc_core.errors import ConfigError
from cc_core.prom_server import PrivateProm, scrape_config
from tests.metrics.conftest import RULES_DIR


def _run(promtool: str, *args: str, cwd: Path = RULES_DIR) -> str:
    res = subprocess.run([promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    return out


def test_rules_load(promtool: str) -> None:
    out = _run(promtool, "check", "rules", "rules.yml")
    assert "SUCCESS" in out


def test_example_scrape_config_loads_with_its_rules(promtool: str) -> None:
    out = _run(promtool, "check", "config", "prometheus.example.yml")
    assert "1 rule files found" in out


def test_alerts_fire_as_their_unit_tests_say(promtool: str) -> None:
    _run(promtool, "test", "rules", "rules_test.yml")


def test_every_alert_has_a_runbook_a_summary_a_severity_and_a_unit_test() -> None:
    rules = yaml.safe_load((RULES_DIR / "rules.yml").read_text(encoding="utf-8"))
    tested = {t["alertname"] for case in yaml.safe_load(
        (RULES_DIR / "rules_test.yml").read_text(encoding="utf-8"))["tests"]
        for t in case.get("alert_rule_test", []) if t.get("exp_alerts")}
    alerts = [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
    assert alerts
    for rule in alerts:
        ann = rule.get("annotations", {})
        assert ann.get("runbook") and ann.get("summary"), rule["alert"]
        assert "\n" not in ann["runbook"].strip(), f"{rule['alert']}: one runbook line"
        assert rule.get("labels", {}).get("severity") in ("page", "ticket"), rule["alert"]
        assert rule["alert"] in tested, f"{rule['alert']} has no firing case in rules_test.yml"


def test_private_prometheus_is_ready_on_loopback_and_stops(tmp_path: Path) -> None:
    with PrivateProm({"self": ["127.0.0.1:1"]}, rule_files=[RULES_DIR / "rules.yml"]) as prom:
        with urllib.request.urlopen(f"{prom.url}/-/ready", timeout=5) as resp:
            assert resp.status == 200
        groups = prom.api("rules")["groups"]
        assert {g["name"] for g in groups} == {"cccore-nodes", "cccore-queues", "cccore-quality",
                                               "cccore-business"}
        workdir, proc = prom.workdir, prom.proc
    assert proc is not None and proc.poll() is not None
    assert workdir is not None and not workdir.exists()


def test_scrape_config_refuses_targets_off_the_loopback() -> None:
    with pytest.raises(ConfigError, match="not on the loopback"):
        scrape_config({"w": ["10.0.0.5:9100"]})
    text = scrape_config({"w": ["127.0.0.1:9101", "localhost:9102"]})
    assert yaml.safe_load(text)["scrape_configs"][0]["static_configs"][0]["targets"] == [
        "127.0.0.1:9101", "localhost:9102"]
