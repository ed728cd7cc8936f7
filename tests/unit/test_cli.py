"""The console command: every subcommand answers --help; bad input gets a clear error."""

from __future__ import annotations

import subprocess
import sys

import pytest


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
