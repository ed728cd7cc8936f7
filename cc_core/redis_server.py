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

from cc_core.errors import EnvironmentProblem

START_TIMEOUT_S = 10.0


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class PrivateRedis:
    """One ``redis-server`` process bound to 127.0.0.1, with its data in a temp dir."""

    host: str = "127.0.0.1"
    port: int = 0
    extra_args: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None
    workdir: str = ""

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
        self.workdir = tempfile.mkdtemp(prefix="cc-core-redis-")
        last_error = ""
        for _ in range(5):
            self.port = self.port or free_port(self.host)
            args = [
                binary, "--bind", self.host, "--port", str(self.port), "--save", "",
                "--appendonly", "no", "--dir", self.workdir, "--protected-mode", "yes",
                "--logfile", os.path.join(self.workdir, "redis.log"), *self.extra_args,
            ]
            self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
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
