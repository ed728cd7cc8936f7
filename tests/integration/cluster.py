"""Processes for end-to-end tests: a simulator, real worker processes, ownership sampling."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack

from cc_core import keys as product_keys
from cc_core import redisconn
from cc_core.config import Config, EslConfig, NodeConfig
from esl_handlers import keys
from esl_handlers.connection import EslConnection
from esl_handlers.events import Event
from esl_handlers.lease import lease_holder
from fssim.process import SimProcess
from tests.conftest import wait_for

REPO = Path(__file__).resolve().parents[2]
SIM_PASSWORD = "ClueCon"
NODE = "fs1"
FAILOVER_TTL_MS = 1500
START_TIMEOUT_S = 20.0
_OWNER_RE = re.compile(r'^cccore_node_owner\{node="(?P<node>[^"]+)"\} (?P<v>\S+)$', re.M)


# ---- processes --------------------------------------------------------------------------------
def start_sim(tmp_path: Path, *args: str, port: int = 0) -> SimProcess:
    """The simulator with ``args`` (CLI flags); ``port`` to come back on the same one."""
    return SimProcess.start(*args, password=SIM_PASSWORD, cwd=REPO,
                            stderr_path=tmp_path / f"sim-{time.monotonic_ns()}.log",
                            listen=f"127.0.0.1:{port}")


@dataclass
class WorkerProc:
    worker_id: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    port: int | None = None

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def metrics_port(self, r: Any) -> int | None:
        if self.port is None:
            value = r.hget(keys.worker(self.worker_id), "metrics_port")
            if value and int(value):
                self.port = int(value)
        return self.port

    def owner_gauge(self, node: str = NODE) -> float | None:
        """This worker's own ``cccore_node_owner{node}``; None when it does not answer."""
        if self.port is None or not self.alive:
            return None
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics",
                                        timeout=0.5) as resp:
                text = resp.read().decode()
        except OSError:
            return None
        for m in _OWNER_RE.finditer(text):
            if m.group("node") == node:
                return float(m.group("v"))
        return 0.0

    def metric(self, name: str, labels: dict[str, str]) -> float | None:
        from prometheus_client.parser import text_string_to_metric_families

        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=1) as resp:
            text = resp.read().decode()
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                    return float(s.value)
        return None

    def log_tail(self, n: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self, timeout: float = 20) -> None:
        if self.alive:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if self.proc.returncode is None:
            self.proc.wait(timeout=5)


def worker_config(sim_port: int, redis_url: str, ttl_ms: int,
                  esl: dict[str, object] | None = None,
                  records: dict[str, object] | None = None) -> Config:
    return Config.model_validate({
        "nodes": [{"name": NODE, "port": sim_port, "password": SIM_PASSWORD}],
        "esl": {"lease_ttl_ms": ttl_ms, "reconnect_min_s": 0.05, "reconnect_max_s": 0.5,
                "connect_timeout_s": 2, "command_timeout_s": 2, **(esl or {})},
        "redis_url": redis_url,
        **({"records": records} if records else {}),
    })


def start_worker(config: Config, index: int, tmp_path: Path, app: str = "") -> WorkerProc:
    worker_id = f"w{index}-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    log_path = tmp_path / f"worker{index}.log"
    log = open(log_path, "ab")  # noqa: SIM115 - the worker writes to it until it exits
    args = [sys.executable, "-m", "cc_core.worker", "--index", str(index), "--worker-id", worker_id]
    if app:
        args += ["--app", app]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stderr=log, cwd=REPO, env=env)
    assert proc.stdin is not None
    proc.stdin.write(config.model_dump_json().encode())
    proc.stdin.close()
    return WorkerProc(worker_id, proc, log_path)


@dataclass
class Cluster:
    """A simulator, and workers started on demand; everything is stopped at the end."""

    tmp_path: Path
    redis_url: str
    sim: SimProcess
    workers: list[WorkerProc] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.r = redisconn.connect(self.redis_url, socket_timeout=2)

    def start_workers(self, n: int, ttl_ms: int, app: str = "",
                      esl: dict[str, object] | None = None,
                      records: dict[str, object] | None = None) -> list[WorkerProc]:
        cfg = worker_config(self.sim.port, self.redis_url, ttl_ms, esl, records)
        new = [start_worker(cfg, len(self.workers) + i, self.tmp_path, app) for i in range(n)]
        self.workers += new
        for w in new:
            def started(w: WorkerProc = w) -> bool:
                return bool(w.metrics_port(self.r)) or not w.alive

            wait_for(started, timeout=START_TIMEOUT_S,
                     message=f"worker {w.worker_id} to publish its metrics port")
            assert w.alive, f"worker exited at start:\n{w.log_tail()}"
        return new

    def holder(self) -> str | None:
        return lease_holder(self.r, NODE)

    def by_id(self, worker_id: str | None) -> WorkerProc | None:
        return next((w for w in self.workers if w.worker_id == worker_id), None)

    def wait_owner(self, candidates: list[WorkerProc], timeout: float) -> WorkerProc:
        """Wait until Redis names one of ``candidates`` and that worker's gauge says 1."""
        def owner() -> WorkerProc | None:
            w = self.by_id(self.holder())
            return w if w in candidates and w.owner_gauge() == 1 else None

        found = wait_for(owner, timeout=timeout, interval=0.01, message="a worker to own the node")
        assert isinstance(found, WorkerProc)
        return found

    def close(self) -> None:
        for w in self.workers:
            if w.alive:
                w.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for w in self.workers:
            try:
                w.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                w.proc.kill()
                w.proc.wait(timeout=5)
        self.sim.stop()
        self.r.close()


def running_cluster(tmp_path: Path, redis_url: str, *sim_args: str) -> Iterator[Cluster]:
    c = Cluster(tmp_path, redis_url, start_sim(tmp_path, *sim_args))
    try:
        yield c
    finally:
        c.close()


class OwnershipSampler:
    """Samples, in a thread, who owns the node: Redis' lease holder and each worker's own gauge.

    Workers are scraped twice per round (all in order, then again); a worker counts as owner in
    a round only if both its scrapes said so, which makes a double claim in one round a real
    overlap and not an artefact of scraping one after the other during a hand-over.
    """

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.rounds: list[tuple[float, str | None, list[str]]] = []
        self.doubles: list[tuple[float, list[str]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> OwnershipSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        r = redisconn.connect(self.cluster.redis_url, socket_timeout=1)
        deadline = time.monotonic() + 60
        while not self._stop.is_set() and time.monotonic() < deadline:
            workers = list(self.cluster.workers)
            first = [w.owner_gauge() for w in workers]
            holder = lease_holder(r, NODE)
            second = [w.owner_gauge() for w in workers]
            owners = [w.worker_id for w, a, b in zip(workers, first, second, strict=True)
                      if a == 1 and b == 1]
            now = time.monotonic()
            self.rounds.append((now, holder, owners))
            if len(owners) > 1:
                self.doubles.append((now, owners))
        r.close()


def ids(ws: list[WorkerProc]) -> list[str]:
    return [w.worker_id for w in ws]


def place_calls(sim_port: int, n: int) -> None:
    """``sim_inbound`` calls on a 400 number, from a connection of the test's own."""
    from esl_handlers.connection import EslConnection

    conn = EslConnection(NodeConfig.model_validate({"name": "test", "port": sim_port,
                                                    "password": SIM_PASSWORD}),
                         EslConfig.model_validate({"connect_timeout_s": 3,
                                                   "command_timeout_s": 3}))
    conn.connect()
    try:
        for i in range(n):
            reply = conn.api(f"sim_inbound 1380000{i:04d} 4001234567")
            assert reply.startswith("+OK"), reply
    finally:
        conn.close()


class Observer:
    """A test's own ESL connection: places calls and records what happens to them."""

    def __init__(self, port: int) -> None:
        self.answered: dict[str, int] = {}
        self.bridges: dict[str, int] = {}      # caller uuid -> CHANNEL_BRIDGE events
        self.greeting_started: set[str] = set()
        self.greetings: dict[str, int] = {}
        self.apps: dict[str, list[tuple[str, str]]] = {}
        self.early_media: set[str] = set()
        self.ended: dict[str, str | None] = {}
        self.cc_vars: dict[str, dict[str, str]] = {}
        self.conn = EslConnection(
            NodeConfig(name="observer", port=port, password=SIM_PASSWORD),
            EslConfig(connect_timeout_s=3, command_timeout_s=3), on_event=self._on_event)
        self.conn.connect()
        self.conn.subscribe(["CHANNEL_ANSWER", "CHANNEL_EXECUTE", "CHANNEL_HANGUP_COMPLETE",
                             "CHANNEL_PROGRESS_MEDIA", "CHANNEL_BRIDGE"])

    def _on_event(self, ev: Event) -> None:
        uuid = ev.unique_id or ""
        if ev.name == "CHANNEL_ANSWER":
            self.answered[uuid] = self.answered.get(uuid, 0) + 1
        elif ev.name == "CHANNEL_PROGRESS_MEDIA":
            self.early_media.add(uuid)
        elif ev.name == "CHANNEL_BRIDGE":
            self.bridges[uuid] = self.bridges.get(uuid, 0) + 1
        elif ev.name == "CHANNEL_EXECUTE":
            app = ev.get("Application") or ""
            self.apps.setdefault(uuid, []).append((app, ev.get("Application-Data") or ""))
            if app == "playback":
                self.greeting_started.add(uuid)
                self.greetings[uuid] = self.greetings.get(uuid, 0) + 1
        elif ev.name == "CHANNEL_HANGUP_COMPLETE":
            self.ended[uuid] = ev.get("Hangup-Cause")
            # The project's own channel variables (cc_*), e.g. what an agent leg carried.
            self.cc_vars[uuid] = {k[9:]: v for k, v in ev.items()
                                  if k.startswith("variable_cc_")}

    def close(self) -> None:
        self.conn.close()

    def ran(self, uuid: str, app: str) -> int:
        """How many times ``app`` started on the call."""
        return sum(1 for a, _ in self.apps.get(uuid, []) if a == app)

    def call(self, caller: str, dnis: str = "4008001234") -> str:
        reply = self.conn.api(f"sim_inbound {caller} {dnis}")
        assert reply.startswith("+OK "), reply
        return reply[4:].strip()


class LegObserver(Observer):
    """Also records each agent leg: which caller it was for, its agent, how it ended, and
    when (the switch's own wall-clock stamps, microseconds) it started, answered and ended."""

    def __init__(self, port: int) -> None:
        self.legs: dict[str, dict[str, Any]] = {}
        self.bridged: set[str] = set()      # channels the switch reported bridged
        super().__init__(port)

    def _on_event(self, ev: Event) -> None:
        super()._on_event(ev)
        if ev.name == "CHANNEL_BRIDGE":
            self.bridged.add(ev.unique_id or "")
        member = ev.get("variable_cc_member")
        if not member or ev.unique_id == member:
            return
        leg = self.legs.setdefault(ev.unique_id or "", {
            "member": member, "agent": ev.get("variable_cc_agent"), "answered": False,
            "cause": None, "cid": ev.get("Caller-Caller-ID-Number"), "start_us": 0,
            "answer_us": 0, "end_us": 0})
        if ev.name == "CHANNEL_ANSWER":
            leg["answered"] = True
        elif ev.name == "CHANNEL_HANGUP_COMPLETE":
            leg["cause"] = ev.get("Hangup-Cause")
            for name in ("start", "answer", "end"):
                leg[f"{name}_us"] = int(ev.get(f"variable_{name}_uepoch") or 0)

    def legs_of(self, member: str) -> list[dict[str, Any]]:
        return [leg for leg in self.legs.values() if leg["member"] == member]

    def agent_legs(self, agent: str) -> list[dict[str, Any]]:
        return [leg for leg in self.legs.values() if leg["agent"] == agent]


def summaries(cluster: Cluster, tenant: str) -> dict[str, dict]:
    """The tenant's finished calls as the flow summarised them, by call UUID."""
    return stream_summaries(cluster.r, tenant)


def stream_summaries(r: Any, tenant: str) -> dict[str, dict]:
    """``summaries`` read through any Redis client (tests with several switches)."""
    out = {}
    for _, fields in r.xrange(product_keys.calls_stream(tenant)):
        call = msgpack.unpackb(fields[b"call"], raw=False)
        out[call["uuid"]] = call
    return out


def ended(cluster: Cluster, obs: Observer, tenant: str, uuid: str, timeout: float) -> dict:
    """Wait until the switch ended the call and the flow summarised it; the summary."""
    wait_for(lambda: uuid in obs.ended and uuid in summaries(cluster, tenant), timeout=timeout,
             message=f"call {uuid} to end and be summarised")
    return summaries(cluster, tenant)[uuid]


def greeting_tenant(tmp_path: Path, greeting: str) -> Path:
    """A tenant whose 400 numbers answer, play ``greeting`` and hang up (``CC_TENANTS``)."""
    path = tmp_path / "greeting-tenant.yaml"
    path.write_text(
        "tenant: default\n"
        "entry: announce:greeting\n"
        "numbers: {'4008001234': {}, '4001234567': {}}\n"
        f"prompts: {{greeting: '{greeting}'}}\n", encoding="utf-8")
    return path
