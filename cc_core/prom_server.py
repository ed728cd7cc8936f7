"""A private Prometheus on a free loopback port, for tests and the demo.

Debian's ``prometheus`` package (installed by ``make deps`` with its service kept from starting)
gives the binaries; this starts one in a temp dir with a generated scrape config that points at
loopback targets only, waits until it is ready, and stops it. Production runs its own
Prometheus with ``metrics/prometheus/prometheus.example.yml`` as a starting point.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cc_core.errors import ConfigError, EnvironmentProblem
from cc_core.redis_server import free_port

START_TIMEOUT_S = 30.0
SCRAPE_INTERVAL = "1s"


def _loopback(target: str) -> str:
    host, sep, port = target.rpartition(":")
    host = host.strip("[]")
    if not sep or not port.isdigit():
        raise ConfigError(f"scrape target {target!r}: expected HOST:PORT, e.g. 127.0.0.1:9100")
    try:
        ok = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        ok = False
    if not ok:
        raise ConfigError(f"scrape target {target!r} is not on the loopback: a private "
                          "Prometheus only scrapes this machine (127.0.0.1:PORT)")
    return target


def scrape_config(jobs: dict[str, list[str]], rule_files: list[Path] | None = None,
                  interval: str = SCRAPE_INTERVAL) -> str:
    """A prometheus.yml scraping ``jobs`` (job name -> HOST:PORT targets, loopback only)."""
    cfg: dict[str, Any] = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [_loopback(t) for t in targets]}]}
            for job, targets in jobs.items()],
    }
    if rule_files:
        cfg["rule_files"] = [str(p) for p in rule_files]
    return yaml.safe_dump(cfg, sort_keys=False)


def command(config: Path, data_dir: Path, port: int) -> list[str]:
    """The command line of a Prometheus on 127.0.0.1:``port`` (the demo prints it)."""
    return ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={data_dir}",
            f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]


class PromQueryError(Exception):
    """Prometheus answered a query with an error (bad_data: it does not parse)."""

    def __init__(self, expr: str, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message} in {expr!r}")
        self.error_type = error_type


@dataclass
class PrivateProm:
    """One ``prometheus`` process on 127.0.0.1 scraping ``jobs``, its data in a temp dir."""

    jobs: dict[str, list[str]]
    rule_files: list[Path] = field(default_factory=list)
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    workdir: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> PrivateProm:
        binary = shutil.which("prometheus")
        if binary is None:
            raise EnvironmentProblem(
                "prometheus is not installed; run `make deps` (it installs Debian's prometheus "
                "package without starting its service)")
        self.workdir = Path(tempfile.mkdtemp(prefix="cc-core-prom-"))
        config = self.workdir / "prometheus.yml"
        config.write_text(scrape_config(self.jobs, self.rule_files), encoding="utf-8")
        log_path = self.workdir / "prometheus.log"
        for _ in range(5):
            self.port = self.port or free_port()
            args = command(config, self.workdir / "data", self.port)
            args[0] = binary
            with open(log_path, "ab") as log:
                self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log)
            if self._wait_ready():
                return self
            self._terminate()
            self.port = 0
        tail = log_path.read_text(errors="replace")[-600:]
        self.stop()
        raise EnvironmentProblem(f"prometheus did not become ready on 127.0.0.1: {tail}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as resp:
                    if resp.status == 200:
                        return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def api(self, path: str, **params: str) -> Any:
        """``GET /api/v1/<path>``'s ``data``; PromQueryError when Prometheus says error."""
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                body = json.loads(resp.read())
        except urllib.error.HTTPError as err:
            body = json.loads(err.read() or b"{}")
        if body.get("status") != "success":
            raise PromQueryError(params.get("query", path), body.get("errorType", "?"),
                                 body.get("error", "no error text"))
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's result (vector samples, or one scalar as a one-item list)."""
        data = self.api("query", query=expr)
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        return list(data["result"])

    def targets_up(self) -> dict[str, str]:
        """scrapeUrl -> health (up, down, unknown) of every active target."""
        return {t["scrapeUrl"]: t["health"] for t in self.api("targets")["activeTargets"]}

    def _terminate(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        self._terminate()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __enter__(self) -> PrivateProm:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
