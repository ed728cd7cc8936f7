"""Signals end to end: warm stop hands the node over at once, a second SIGTERM is a cold stop,
and the supervisor restarts a dead worker and forwards its own SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from cc_core.worker import EXIT_COLD
from esl_handlers import keys
from tests.conftest import wait_for
from tests.integration.cluster import (
    NODE,
    REPO,
    START_TIMEOUT_S,
    Cluster,
    OwnershipSampler,
    worker_config,
)

pytestmark = pytest.mark.slow

DEFAULT_TTL_MS = 5000


class _SlowStop:
    """An app whose own stop takes longer than the worker's warm-stop bound."""

    def stop(self) -> None:
        import gevent

        gevent.sleep(60)


def slow_stop_app(ctx: Any) -> _SlowStop:
    """Loaded by the worker process with ``--app``."""
    return _SlowStop()


def test_first_sigterm_hands_the_node_over_at_once(cluster: Cluster) -> None:
    workers = cluster.start_workers(2, ttl_ms=DEFAULT_TTL_MS)
    owner = cluster.wait_owner(workers, timeout=START_TIMEOUT_S)
    standby = next(w for w in workers if w is not owner)
    with OwnershipSampler(cluster) as sampler:
        wait_for(lambda: len(sampler.rounds) >= 3, timeout=5, message="sampling to start")
        sent = time.monotonic()
        owner.proc.send_signal(signal.SIGTERM)
        cluster.wait_owner([standby], timeout=DEFAULT_TTL_MS / 1000)
        took = time.monotonic() - sent
        code = owner.proc.wait(timeout=15)
        exited = time.monotonic() - sent
    print(f"\nwarm stop: standby owns {NODE} {took:.3f}s after SIGTERM (TTL "
          f"{DEFAULT_TTL_MS / 1000:.0f}s); owner exited {code} after {exited:.3f}s")
    assert code == 0, owner.log_tail()
    assert took < 1.5, "the lease is released, not left to lapse"
    assert not sampler.doubles, sampler.doubles[:5]
    assert not cluster.r.exists(keys.worker(owner.worker_id)), "heartbeat key removed"
    assert '"msg": "leases released"' in owner.log_tail(20000)


def test_second_sigterm_is_a_cold_stop(cluster: Cluster) -> None:
    (worker,) = cluster.start_workers(1, ttl_ms=DEFAULT_TTL_MS,
                                      app="tests.integration.test_worker_signals:slow_stop_app")
    cluster.wait_owner([worker], timeout=START_TIMEOUT_S)
    worker.proc.send_signal(signal.SIGTERM)
    # Warm stop under way: draining announced, lease handed back, app still stopping.
    wait_for(lambda: cluster.holder() is None, timeout=3, message="the lease to be released")
    wait_for(lambda: cluster.r.hget(keys.worker(worker.worker_id), "draining") == b"1",
             timeout=3, message="draining in the heartbeat")
    assert worker.alive, "the slow app keeps the warm stop going"
    sent = time.monotonic()
    worker.proc.send_signal(signal.SIGTERM)
    code = worker.proc.wait(timeout=5)
    took = time.monotonic() - sent
    print(f"\ncold stop: exited {code} {took:.3f}s after the second SIGTERM")
    assert code == EXIT_COLD
    assert took < 2


def _workers_in_redis(r: redis.Redis) -> dict[int, set[int]]:
    """index -> pids of the workers with a heartbeat (a SIGKILLed one's lingers until its TTL)."""
    out: dict[int, set[int]] = {}
    for key in r.scan_iter(match=keys.worker("*"), count=100):
        h = r.hgetall(key)
        if h.get(b"pid") and h.get(b"draining") == b"0":
            out.setdefault(int(h[b"index"]), set()).add(int(h[b"pid"]))
    return out


def test_supervisor_restarts_a_dead_worker_and_forwards_sigterm(cluster: Cluster,
                                                               tmp_path: Path) -> None:
    cfg = worker_config(cluster.sim.port, cluster.redis_url, 1500)
    log = open(tmp_path / "supervisor.log", "wb")  # noqa: SIM115 - closed below
    sup = subprocess.Popen(
        [sys.executable, "-c", "import sys; from cc_core.config import Config; "
         "from cc_core.worker import run; "
         "sys.exit(run(Config.model_validate_json(sys.stdin.read()), 2))"],
        stdin=subprocess.PIPE, stderr=log, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert sup.stdin is not None
        sup.stdin.write(cfg.model_dump_json().encode())
        sup.stdin.close()
        first = wait_for(lambda: (w := _workers_in_redis(cluster.r)) and len(w) == 2 and w,
                         timeout=START_TIMEOUT_S, message="two workers' heartbeats")
        assert isinstance(first, dict)
        wait_for(cluster.holder, timeout=START_TIMEOUT_S, message="a node owner")

        (killed,) = first[0]
        os.kill(killed, signal.SIGKILL)
        t0 = time.monotonic()
        wait_for(lambda: _workers_in_redis(cluster.r).get(0, set()) - {killed},
                 timeout=15, message="worker 0 restarted with a new pid")
        print(f"\nsupervisor: worker 0 restarted {time.monotonic() - t0:.3f}s after SIGKILL")
        # A SIGKILLed owner's lease lingers for its TTL; wait until a live worker holds it.
        wait_for(lambda: (h := cluster.holder()) and not h.endswith(f"-{killed}"),
                 timeout=5, message="a live worker to own the node")

        sup.send_signal(signal.SIGTERM)
        code = sup.wait(timeout=30)
        assert code == 0, (tmp_path / "supervisor.log").read_text(errors="replace")[-3000:]
        assert cluster.holder() is None, "the last worker released the lease on its way out"
        # Only the SIGKILLed worker's heartbeat may linger (until its TTL): the others removed
        # theirs on their warm stop.
        left = set().union(*_workers_in_redis(cluster.r).values())
        assert left <= {killed}, left
    finally:
        if sup.poll() is None:
            sup.kill()
            sup.wait()
        log.close()


def test_workers_stop_when_the_supervisor_is_killed(cluster: Cluster, tmp_path: Path) -> None:
    """SIGKILL of the supervisor forwards nothing; its workers notice they are orphans and
    warm-stop on their own, releasing the node's lease."""
    cfg = worker_config(cluster.sim.port, cluster.redis_url, DEFAULT_TTL_MS)
    log = open(tmp_path / "supervisor.log", "wb")  # noqa: SIM115 - closed below
    sup = subprocess.Popen(
        [sys.executable, "-c", "import sys; from cc_core.config import Config; "
         "from cc_core.worker import run; "
         "sys.exit(run(Config.model_validate_json(sys.stdin.read()), 2))"],
        stdin=subprocess.PIPE, stderr=log, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    pids: set[int] = set()
    try:
        assert sup.stdin is not None
        sup.stdin.write(cfg.model_dump_json().encode())
        sup.stdin.close()
        wait_for(lambda: len(_workers_in_redis(cluster.r)) == 2, timeout=START_TIMEOUT_S,
                 message="two workers' heartbeats")
        wait_for(cluster.holder, timeout=START_TIMEOUT_S, message="a node owner")
        pids = set().union(*_workers_in_redis(cluster.r).values())
        sup.kill()
        sup.wait(timeout=5)
        killed_at = time.monotonic()
        wait_for(lambda: not any(_alive(p) for p in pids), timeout=10,
                 message="the orphaned workers to exit")
        took = time.monotonic() - killed_at
        print(f"\norphans: workers exited {took:.3f}s after the supervisor was SIGKILLed")
        assert cluster.holder() is None, "the orphaned owner released the lease"
    finally:
        for pid in pids:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        log.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # An exited child of the dead supervisor is reaped by init; until then it is a zombie.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_a_worker_whose_supervisor_died_before_it_started_watching_stops(
        cluster: Cluster, tmp_path: Path) -> None:
    """The supervisor SIGKILLed while its worker was still starting: by the time the worker
    watches for it, the worker's parent is already init. It goes by the pid the supervisor
    gave it and stops as any orphan does (a test run that killed its supervisor early left
    such workers running for good)."""
    gone = subprocess.Popen(["true"])
    gone.wait()                 # a supervisor pid that no longer exists
    cfg = worker_config(cluster.sim.port, cluster.redis_url, DEFAULT_TTL_MS)
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cc_core.worker", "--index", "0",
             "--supervisor-pid", str(gone.pid)],
            stdin=subprocess.PIPE, stderr=log, cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)})
        assert proc.stdin is not None
        proc.stdin.write(cfg.model_dump_json().encode())
        proc.stdin.close()
        try:
            code = proc.wait(timeout=START_TIMEOUT_S + 15)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    text = log_path.read_text(errors="replace")
    assert code == 0, text[-3000:]
    assert '"msg": "supervisor gone; warm stop"' in text and f'"parent_pid": {gone.pid}' in text
