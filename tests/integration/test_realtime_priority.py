"""``cc-core run --realtime-priority N``: the workers, a restarted worker and the private
redis-server run under SCHED_RR at N, the supervisor itself does not (a refusal by the kernel
is tested in tests/unit/test_cli.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cc_core import realtime
from cc_core.errors import EnvironmentProblem
from tests.conftest import stop_gently, wait_for
from tests.integration.cluster import NODE, REPO, SIM_PASSWORD, START_TIMEOUT_S, Cluster

pytestmark = pytest.mark.slow

PRIORITY = 7


def _children(pid: int) -> dict[int, str]:
    """pid -> command line of the direct children of ``pid``."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        # The command in stat may hold spaces and parentheses: fields follow the last ")".
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out[int(entry.name)] = cmd
    return out


def _run_args(sim_port: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "cc_core.cli", "run", "--workers", "2",
            "--node", f"{NODE}=127.0.0.1:{sim_port}", "--password", SIM_PASSWORD, *extra]


def test_workers_and_the_private_redis_run_at_the_priority_given(cluster: Cluster,
                                                                tmp_path: Path) -> None:
    try:
        realtime.check(PRIORITY)
    except EnvironmentProblem as exc:
        pytest.skip(f"this machine refuses real-time priorities to the test run: {exc}")
    log = open(tmp_path / "supervisor.log", "wb")  # noqa: SIM115 - closed below
    # No --redis-url: the supervisor starts its own redis-server, which serves the hot path too.
    sup = subprocess.Popen(_run_args(cluster.sim.port, "--realtime-priority", str(PRIORITY)),
                           stdout=log, stderr=log, cwd=REPO,
                           env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        def started() -> dict[int, str] | None:
            kids = _children(sup.pid)
            workers = [p for p, cmd in kids.items() if "cc_core.worker" in cmd]
            redis = [p for p, cmd in kids.items() if "redis-server" in cmd]
            return kids if len(workers) == 2 and len(redis) == 1 else None

        kids = wait_for(started, timeout=START_TIMEOUT_S, message="two workers and a redis-server")
        assert isinstance(kids, dict)
        for pid, cmd in kids.items():
            assert realtime.policy_of(pid) == ("SCHED_RR", PRIORITY), cmd
        # The probe made on the supervisor itself was undone.
        assert realtime.policy_of(sup.pid) == ("SCHED_OTHER", 0)

        # A worker that dies is restarted at the same priority.
        worker = min(p for p, cmd in kids.items() if "cc_core.worker" in cmd)
        os.kill(worker, signal.SIGKILL)

        def restarted() -> int | None:
            now = [p for p, cmd in _children(sup.pid).items() if "cc_core.worker" in cmd]
            fresh = [p for p in now if p not in kids]
            return fresh[0] if len(now) == 2 and fresh else None

        fresh = wait_for(restarted, timeout=15, message="the killed worker to be restarted")
        assert isinstance(fresh, int)
        assert realtime.policy_of(fresh) == ("SCHED_RR", PRIORITY)
        # Stopped once it runs (a worker stopped mid-start exits as a failure).
        def running() -> bool:
            lines = (tmp_path / "supervisor.log").read_text(errors="replace").splitlines()
            return any('"msg": "worker running"' in line and f'"pid": {fresh}' in line
                       for line in lines)

        wait_for(running, timeout=START_TIMEOUT_S, message="the restarted worker to run")

        sup.send_signal(signal.SIGTERM)
        assert sup.wait(timeout=30) == 0, (tmp_path / "supervisor.log").read_text()[-3000:]
    finally:
        stop_gently(sup)
        log.close()


def test_a_worker_whose_priority_is_refused_later_still_runs(redis_url: str, monkeypatch,
                                                             caplog) -> None:
    """Allowed at start but refused for a restarted worker (the capability taken away
    meanwhile): the worker runs at the default policy and the supervisor says so."""
    from cc_core.config import Config
    from cc_core.worker import _Child, _Supervisor

    def refused(pid: int, policy: int, param: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr("os.sched_setscheduler", refused)
    sup = _Supervisor(Config.model_validate({"redis_url": redis_url,
                                             "realtime_priority": PRIORITY}), 1, "")
    child = _Child(0)
    with caplog.at_level("ERROR", logger="cc_core.worker"):
        sup._spawn(child)
    try:
        assert child.proc is not None and child.proc.poll() is None
        assert realtime.policy_of(child.proc.pid) == ("SCHED_OTHER", 0)
        assert any("default scheduling" in r.getMessage() and "CAP_SYS_NICE" in r.getMessage()
                   for r in caplog.records), caplog.text
    finally:
        if child.proc is not None:
            child.proc.terminate()
            child.proc.wait(timeout=30)
