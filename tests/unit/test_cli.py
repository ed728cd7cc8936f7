"""The console command: every subcommand answers --help; bad input gets a clear error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cc_core.cli import cli


def cc(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cc_core.cli", *args], capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.parametrize("sub", ["run", "demo", "sim"])
def test_each_subcommand_has_help(sub: str) -> None:
    res = cc(sub, "--help")
    assert res.returncode == 0, res.stderr
    assert "usage" in res.stdout.lower()


def test_top_level_help_lists_subcommands() -> None:
    res = cc("--help")
    assert res.returncode == 0
    for sub in ("run", "sim", "demo"):
        assert sub in res.stdout


def test_bad_node_spec_is_explained() -> None:
    res = cc("run", "--node", "fs1-127.0.0.1")
    assert res.returncode == 2
    assert "NAME=HOST:PORT" in res.stderr and "config.invalid" in res.stderr


def test_missing_config_file_is_explained(tmp_path) -> None:
    res = cc("run", "--config", str(tmp_path / "nope.yaml"))
    assert res.returncode == 2
    assert "nope.yaml" in res.stderr and "cannot read" in res.stderr


# -- cc-core config validate (in-process, with click's CliRunner) ------------------------------

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "tenants"


def test_config_validate_summarises_each_tenant_and_exits_0() -> None:
    res = CliRunner().invoke(cli, ["config", "validate", str(EXAMPLES)])
    assert res.exit_code == 0, res.output
    assert res.stdout == (f"acme ({EXAMPLES / 'acme.yaml'}): 5 numbers (3 active), 4 menus, "
                          "4 queues, 18 prompts, blacklist 3 entries, whitelist 1 entries\n")


def test_config_validate_lists_every_problem_and_exits_2(tmp_path: Path) -> None:
    (tmp_path / "beta.yaml").write_text(
        "tenant: beta\nentry: menu:main\nnumbers: {'4001': {}}\nmenus: {}\n")
    (tmp_path / "gamma.yaml").write_text("tenant: gamma\nentry: hangup\nnumbers: {}\ncolour: 1\n")
    res = CliRunner().invoke(cli, ["config", "validate", str(tmp_path)])
    assert res.exit_code == 2
    assert f"cc-core: 2 problems in {tmp_path}; nothing was loaded:" in res.output
    assert f"{tmp_path / 'beta.yaml'}: at numbers.4001: '4001' is not a 400 number" in res.output
    assert f"{tmp_path / 'gamma.yaml'}: at colour: unknown key 'colour'" in res.output
    assert res.output.rstrip().endswith("[config.invalid]")


def test_config_validate_of_a_missing_path_exits_2() -> None:
    res = CliRunner().invoke(cli, ["config", "validate", "/nonexistent/tenants"])
    assert res.exit_code == 2 and "no such file or folder" in res.output


def test_config_subcommands_have_help() -> None:
    for sub in ("validate", "apply", "show"):
        res = CliRunner().invoke(cli, ["config", sub, "--help"])
        assert res.exit_code == 0 and "Usage" in res.output
    assert "--dry-run" in CliRunner().invoke(cli, ["config", "apply", "--help"]).output


def test_validate_warns_when_official_holidays_run_out_within_sixty_days() -> None:
    from datetime import date

    from cc_core.cli import _calendar_warnings
    from cc_core.tenants.loader import load_path

    tenants = load_path(EXAMPLES).tenants.values()   # acme: official calendar, after hours
    late = _calendar_warnings(tenants, today=date(2026, 11, 30))
    assert len(late) == 1 and "from 2027-01-01 on" in late[0] and "acme" in late[0]
    assert _calendar_warnings(tenants, today=date(2026, 6, 1)) == []


def test_a_refused_realtime_priority_is_explained_before_anything_starts(monkeypatch) -> None:
    from cc_core import redis_server

    def refused(pid: int, policy: int, param: object) -> None:
        raise PermissionError(1, "Operation not permitted")   # what the kernel answers

    def must_not_start(self: object) -> object:
        raise AssertionError("the private redis-server was started before the check")

    monkeypatch.setattr("os.sched_setscheduler", refused)
    monkeypatch.setattr(redis_server.PrivateRedis, "start", must_not_start)
    res = CliRunner().invoke(cli, ["run", "--realtime-priority", "7",
                                   "--node", "fs1=127.0.0.1:8021"])
    assert res.exit_code == 3, res.output
    assert "real-time priority 7" in res.output and "CAP_SYS_NICE" in res.output
    assert "realtime_priority unset" in res.output and "environment.missing" in res.output
