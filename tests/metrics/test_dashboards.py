"""metrics/dashboards/ is what `cc-core dashboards write` generates: never stale; every board
has the variables and the figures a supervisor or an operator looks for."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import yaml
from click.testing import CliRunner

from cc_core.cli import cli
from metrics import grafana

COMMITTED = Path(__file__).resolve().parents[2] / "metrics" / "dashboards"


def test_committed_dashboards_equal_the_generated_ones(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["dashboards", "write", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    generated = sorted(p.name for p in tmp_path.iterdir())
    assert generated == sorted(p.name for p in COMMITTED.iterdir()), (
        "metrics/dashboards/ holds other files than the command writes: run "
        "cc-core dashboards write and commit the folder")
    for name in generated:
        assert (tmp_path / name).read_text(encoding="utf-8") == (COMMITTED / name).read_text(
            encoding="utf-8"), (f"metrics/dashboards/{name} is stale: run cc-core dashboards "
                                "write and commit it")


def test_generation_is_the_same_in_a_fresh_process(tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, "-m", "cc_core.cli", "dashboards", "write", "--out",
                          str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert {p.name: p.read_text(encoding="utf-8") for p in tmp_path.iterdir()} == grafana.render()


def test_boards_have_their_variables_unique_panel_ids_and_a_prometheus_source() -> None:
    wanted = {"cccore-wallboard.json": {"tenant", "queue"},
              "cccore-operations.json": {"node", "tenant"},
              "cccore-business.json": {"tenant", "node"}}
    for name, variables in wanted.items():
        board = json.loads((COMMITTED / name).read_text(encoding="utf-8"))
        names = {v["name"] for v in board["templating"]["list"]}
        assert names == variables | {"datasource"}, name
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), name
        for p in board["panels"]:
            for t in p.get("targets", []):
                assert t["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
                # Every variable a query uses is defined on the board.
                used = set(re.findall(r"\$(\w+)", t["expr"])) - {"__rate_interval", "__range"}
                assert used <= variables, (name, p["title"], used)


def test_wallboard_shows_what_a_supervisor_watches() -> None:
    board = grafana.wallboard()
    exprs = " ".join(e for _, e in grafana.expressions(board))
    for metric in ("cccore_queue_callers_waiting", "cccore_queue_oldest_wait_seconds",
                   "cccore_queue_service_level_ratio", "cccore_queue_abandon_ratio",
                   "cccore_queue_asa_seconds", "cccore_queue_agents",
                   "cccore_calls_in_progress"):
        assert metric in exprs, metric


def test_business_board_shows_credit_the_record_backlog_and_the_recordings_disk() -> None:
    board = grafana.business()
    exprs = " ".join(e for _, e in grafana.expressions(board))
    for metric in ("cccore_calls_total", "cccore_billing_credit_balance_fen",
                   "cccore_billing_low_credit_tenants", "cccore_billing_credit_low",
                   "cccore_records_backlog_entries", "cccore_records_backlog_oldest_age_seconds",
                   "cccore_recordings_disk_used_bytes", "cccore_recordings_filesystem_avail_bytes",
                   "cccore_recordings_filesystem_size_bytes"):
        assert metric in exprs, metric
    # Money is exported in fen; the board shows yuan.
    credit = [p for p in board["panels"] if p.get("title") == "Prepaid credit by tenant"]
    assert credit and credit[0]["fieldConfig"]["defaults"]["unit"] == "currencyCNY"
    assert credit[0]["targets"][0]["expr"].endswith("/ 100")


def test_provisioning_file_points_grafana_at_a_folder_of_dashboards() -> None:
    prov = yaml.safe_load((COMMITTED / "provisioning.yaml").read_text(encoding="utf-8"))
    (provider,) = prov["providers"]
    assert provider["type"] == "file" and provider["options"]["path"]
