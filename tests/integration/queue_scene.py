"""A stack a supervisor would look at: the simulator, one worker running the ACD tenant
``tests/data/tenants/acdtest.yaml``, the HTTP API as its own process, one call answered by an
agent and callers left waiting in a queue nobody is logged in to.

Used by the wallboard's browser test and by the live Prometheus test, which both check that
what they show is what this scene made happen.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from acd.store import Acd
from cc_core.api.tokens import Role, TokenStore
from cc_core.redis_server import free_port
from tests.conftest import stop_gently, wait_for
from tests.integration.cluster import (
    FAILOVER_TTL_MS,
    REPO,
    START_TIMEOUT_S,
    Cluster,
    Observer,
    ended,
)

TENANT_FILE = REPO / "tests" / "data" / "tenants" / "acdtest.yaml"
T = "acdtest"
ANSWERED_QUEUE, ANSWERED_NUMBER = "basic", "4002220001"
# Its only agent ("late") is never logged in and it has no max_wait_s: callers stay.
WAIT_QUEUE, WAIT_NUMBER = "exits", "4002220006"
# max_wait_s 2, then the queue empty2 (2 s), then voicemail.
OVERFLOW_QUEUE, OVERFLOW_NUMBER = "empty", "4002220005"


@dataclass
class Scene:
    cluster: Cluster
    obs: Observer
    acd: Acd
    answered: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    overflowed: list[str] = field(default_factory=list)

    @property
    def placed(self) -> int:
        return len(self.answered) + len(self.waiting) + len(self.overflowed)

    def overflow_one(self) -> None:
        """A caller to a queue nobody staffs, handed on after its max wait (2 s) to a second
        such queue, then to voicemail: two overflow steps, a voicemail outcome."""
        uuid = self.obs.call("13311113333", OVERFLOW_NUMBER)
        summary = ended(self.cluster, self.obs, T, uuid, timeout=40)
        assert summary["outcome"] == "voicemail", summary
        self.overflowed.append(uuid)

    def answer_one(self) -> None:
        """A caller to the basic queue, answered by agent a1 or a2, then hung up."""
        uuid = self.obs.call("13311112222", ANSWERED_NUMBER)
        summary = ended(self.cluster, self.obs, T, uuid, timeout=20)
        assert summary["outcome"] == "answered_by_agent", summary
        self.answered.append(uuid)

    def leave_waiting(self, n: int) -> None:
        for i in range(n):
            self.waiting.append(self.obs.call(f"1390000{i:04d}", WAIT_NUMBER))
        wait_for(lambda: self.acd.queue_view(T, WAIT_QUEUE).waiting == len(self.waiting),
                 timeout=15, message=f"{len(self.waiting)} callers waiting in {WAIT_QUEUE}")


@contextmanager
def scene(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[Scene]:
    from cc_core.tenants.loader import load_path
    from cc_core.tenants.store import TenantStore

    # The worker reads the tenant from the file; whatever reads the applied configuration
    # (the KPI collector, `cc-core token create`) finds it in Redis, as in production.
    monkeypatch.setenv("CC_TENANTS", str(TENANT_FILE))
    TenantStore(cluster.r).apply(load_path(TENANT_FILE))
    obs = Observer(cluster.sim.port)
    try:
        for contact in ("a1", "a2"):
            reply = obs.conn.api(f"sim_endpoint user/{contact}@default answer 100 300")
            assert reply.startswith("+OK"), reply
            # Registered before the worker starts: the ACD offers calls to registered phones
            # only (it asks sofia_contact at start).
            reply = obs.conn.api(f"sim_register {contact}@default 3600")
            assert reply.startswith("+OK"), reply
        cluster.start_workers(1, ttl_ms=FAILOVER_TTL_MS, app="cc_core.app:build")
        cluster.wait_owner(cluster.workers, timeout=START_TIMEOUT_S)
        acd = Acd(cluster.r)
        wait_for(lambda: acd.agents(T), timeout=10,
                 message="the worker to sync the tenant's agents")
        yield Scene(cluster, obs, acd)
    finally:
        obs.close()


@dataclass
class ApiProcess:
    url: str
    token: str
    proc: subprocess.Popen[bytes]

    def get(self, path: str) -> tuple[int, dict]:
        req = urllib.request.Request(self.url + path,
                                     headers={"Authorization": f"Bearer {self.token}"})
        try:
            with urllib.request.urlopen(req, timeout=5) as res:
                return res.status, json.loads(res.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())


@contextmanager
def api_process(redis_url: str, tmp_path: Path) -> Iterator[ApiProcess]:
    """``cc-core api serve`` on a free loopback port, and a supervisor token of the tenant."""
    import redis

    client = redis.Redis.from_url(redis_url)
    token, _ = TokenStore(client).create(T, Role.SUPERVISOR, label="wallboard test")
    client.close()
    port = free_port()
    log = open(tmp_path / "api.log", "wb")  # noqa: SIM115 - closed below, after the process
    proc = subprocess.Popen([sys.executable, "-m", "cc_core.cli", "api", "serve", "--listen",
                             f"127.0.0.1:{port}", "--redis-url", redis_url],
                            stdout=log, stderr=log, cwd=REPO)
    api = ApiProcess(f"http://127.0.0.1:{port}", token, proc)

    def up() -> bool:
        try:
            with urllib.request.urlopen(f"{api.url}/v1/openapi.json", timeout=1) as res:
                return res.status == 200
        except OSError:
            return proc.poll() is not None

    try:
        wait_for(up, timeout=20, message="the API to listen")
        assert proc.poll() is None, (tmp_path / "api.log").read_text(errors="replace")
        yield api
    finally:
        stop_gently(proc, timeout=10)
        log.close()
