"""A private ``redis-server`` on a free loopback port, for tests, the demo and bench.

Production points at its own Redis through config; this is only used when none is configured.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

import redis

from cc_core import realtime
from cc_core.errors import EnvironmentProblem

START_TIMEOUT_S = 10.0


CLUSTER_BUS_OFFSET = 10000  # a cluster node also listens on its port + 10000 (the bus)


def _bindable(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1", also_free_at: int = 0) -> int:
    """A free port; with ``also_free_at``, one whose ``port + also_free_at`` is free too (a
    cluster node's bus port)."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
        if not also_free_at or (port + also_free_at <= 65535
                                and _bindable(host, port + also_free_at)):
            return port
    raise EnvironmentProblem(f"no free port pair (port, port+{also_free_at}) on {host}; "
                             "free some ephemeral ports or narrow what else listens there")


@dataclass
class PrivateRedis:
    """One ``redis-server`` process bound to 127.0.0.1, with its data in a temp dir."""

    host: str = "127.0.0.1"
    port: int = 0
    extra_args: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None
    workdir: str = ""
    parent_dir: str | None = None  # where the temp dir goes (None: the system's temp dir)
    bus_offset: int = 0            # cluster nodes: keep port + bus_offset free as well
    realtime_priority: int | None = None   # SCHED_RR priority (cc_core.realtime); None: normal

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def start(self) -> PrivateRedis:
        binary = shutil.which("redis-server")
        if binary is None:
            raise EnvironmentProblem(
                "redis-server is not installed; run `make deps` (it installs the Debian "
                "package redis-server without starting its service) or set CC_REDIS_URL"
            )
        self.workdir = tempfile.mkdtemp(prefix="cc-core-redis-", dir=self.parent_dir)
        last_error = ""
        for _ in range(5):
            self.port = self.port or free_port(self.host, self.bus_offset)
            args = [
                binary, "--bind", self.host, "--port", str(self.port), "--save", "",
                "--appendonly", "no", "--dir", self.workdir, "--protected-mode", "yes",
                "--logfile", os.path.join(self.workdir, "redis.log"), *self.extra_args,
            ]
            self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            if self.realtime_priority is not None:
                realtime.apply(self.proc.pid, self.realtime_priority)
            if self._wait_ready():
                return self
            last_error = self._log_tail()
            self.stop()
            self.port = 0
        raise EnvironmentProblem(f"redis-server did not start on {self.host}: {last_error}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return True
            except OSError:
                pass
            time.sleep(0.02)
        return False

    def _log_tail(self) -> str:
        try:
            with open(os.path.join(self.workdir, "redis.log"), encoding="utf-8", errors="replace") as f:
                return f.read()[-400:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = ""

    def __enter__(self) -> PrivateRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


CLUSTER_SLOTS = 16384


@dataclass
class PrivateRedisCluster:
    """A private Redis Cluster: ``masters`` cluster-enabled ``redis-server`` processes on free
    loopback ports, no replicas, the 16384 slots split evenly between them.

    Proves the product's keys and scripts run on a cluster (every key of a script in one slot),
    so tests and bench can run against one without an operator setting it up. ``url`` names the
    first master; a cluster client learns the others from it."""

    masters: int = 3     # at least 3
    host: str = "127.0.0.1"
    nodes: list[PrivateRedis] = field(default_factory=list)
    workdir: str = ""

    @property
    def url(self) -> str:
        """The product's URL for it (``cc_core.redisconn``): any node, here the first."""
        return f"redis+cluster://{self.host}:{self.nodes[0].port}"

    @property
    def ports(self) -> list[int]:
        return [n.port for n in self.nodes]

    def start(self) -> PrivateRedisCluster:
        if self.masters < 3:
            # What redis-cli --cluster create accepts; fewer masters is no cluster to test on.
            raise ValueError(f"a private cluster needs at least 3 masters, not {self.masters}")
        self.workdir = tempfile.mkdtemp(prefix="cc-core-cluster-")
        try:
            for i in range(self.masters):
                # Each node keeps its own nodes.conf in its own temp dir (PrivateRedis makes
                # one); a name relative to that dir, so two nodes never share a file.
                node = PrivateRedis(host=self.host, parent_dir=self.workdir,
                                    bus_offset=CLUSTER_BUS_OFFSET, extra_args=[
                    "--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{i}.conf",
                    "--cluster-node-timeout", "5000"])
                self.nodes.append(node.start())
            self._create()
            self._wait_ok()
        except BaseException:
            self.stop()
            raise
        return self

    def _create(self) -> None:
        cli = shutil.which("redis-cli")
        if cli is not None:
            cmd = [cli, "--cluster", "create",
                   *(f"{self.host}:{p}" for p in self.ports),
                   "--cluster-replicas", "0", "--cluster-yes"]
            done = subprocess.run(cmd, capture_output=True, timeout=60, check=False)
            if done.returncode != 0:
                raise EnvironmentProblem(
                    f"redis-cli --cluster create failed (exit {done.returncode}): "
                    f"{(done.stdout + done.stderr).decode(errors='replace')[-600:]}")
            return
        self._create_by_hand()

    def _create_by_hand(self) -> None:
        """What ``redis-cli --cluster create`` does, for a machine without redis-tools:
        an even slot range per master, then every node meets the first."""
        per = CLUSTER_SLOTS // len(self.nodes)
        for i, node in enumerate(self.nodes):
            first = i * per
            last = CLUSTER_SLOTS - 1 if i == len(self.nodes) - 1 else first + per - 1
            client = redis.Redis(host=self.host, port=node.port, socket_timeout=5)
            try:
                client.execute_command("CLUSTER ADDSLOTSRANGE", first, last)
                client.execute_command("CLUSTER SET-CONFIG-EPOCH", i + 1)
                if i > 0:
                    client.execute_command("CLUSTER MEET", self.host, self.nodes[0].port)
            finally:
                client.close()

    def _info(self, node: PrivateRedis) -> dict[str, str]:
        client = redis.Redis(host=self.host, port=node.port, socket_timeout=2)
        try:
            raw = client.execute_command("CLUSTER INFO")
        finally:
            client.close()
        if isinstance(raw, dict):   # redis-py parses CLUSTER INFO itself
            return {str(k): str(v) for k, v in raw.items()}
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)

    def _wait_ok(self) -> None:
        """Until every node says ``cluster_state:ok`` and knows every other one: only then
        does a client that asks any of them for the slot map get the whole of it."""
        deadline = time.monotonic() + START_TIMEOUT_S * 3
        last: dict[str, str] = {}
        while time.monotonic() < deadline:
            try:
                infos = [self._info(n) for n in self.nodes]
            except (OSError, redis.RedisError):
                infos = []
            if infos and all(i.get("cluster_state") == "ok"
                             and i.get("cluster_known_nodes") == str(len(self.nodes))
                             and i.get("cluster_slots_assigned") == str(CLUSTER_SLOTS)
                             for i in infos):
                return
            last = infos[0] if infos else last
            time.sleep(0.05)
        raise EnvironmentProblem(
            f"the private Redis Cluster on ports {self.ports} did not reach cluster_state:ok "
            f"(first node says {last}); last lines of its log: {self.nodes[0]._log_tail()}")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        self.nodes = []
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = ""

    def __enter__(self) -> PrivateRedisCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
