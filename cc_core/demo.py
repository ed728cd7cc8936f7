"""``cc-core demo``: the whole product on one machine, with nothing to configure.

Starts a private redis-server, the FreeSWITCH simulator and ``cc-core run --workers N`` as
real processes, then plays callers against the simulator at a steady rate and shows a live
progress line and a summary. This module is demo wiring: it may start the simulator; product
code never imports it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gevent
from prometheus_client.parser import text_string_to_metric_families

from cc_core.config import EslConfig, NodeConfig
from cc_core.errors import EnvironmentProblem
from cc_core.redis_server import PrivateRedis, free_port
from fssim.process import SimProcess
from loadtest.simdriver import TrafficGenerator, TrafficPlan, TrafficStats, percentile

SIM_PASSWORD = "demo-" + os.urandom(4).hex()
NODE = "fs1"
START_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class DemoOptions:
    duration: float = 60.0
    rate: float = 20.0
    workers: int = 2
    greeting_ms: int = 2000
    caller_hangup_ratio: float = 0.3
    seed: int = 400


def _free_port_block(n: int) -> int:
    """A base port with n consecutive free ports after it (worker i serves metrics on base+i)."""
    for _ in range(50):
        base = free_port()
        if base + n > 65535:
            continue
        ok = True
        for p in range(base, base + n):
            try:
                import socket

                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
            except OSError:
                ok = False
                break
        if ok:
            return base
    raise EnvironmentProblem("no block of free loopback ports for worker metrics")


class _Processes:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: list[tuple[str, subprocess.Popen[Any]]] = []

    def adopt(self, name: str, proc: subprocess.Popen[Any]) -> None:
        """Stop a process started elsewhere with the others (in reverse start order)."""
        self.procs.append((name, proc))

    def start(self, name: str, args: list[str], **kw: object) -> subprocess.Popen[bytes]:
        log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(args, stderr=log, **kw)  # type: ignore[call-overload]
        self.procs.append((name, proc))
        return proc

    def stop_all(self) -> None:
        # Newest first, each waited for: workers hand their leases over and close their
        # sockets before the simulator they talk to goes away.
        for _, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@dataclass
class _Scrape:
    owner: bool = False
    lag_buckets: list[tuple[str, float]] = field(default_factory=list)


def _scrape(port: int) -> _Scrape:
    out = _Scrape()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1) as resp:
            text = resp.read().decode()
    except OSError:
        return out
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == "cccore_node_owner" and s.labels.get("node") == NODE and s.value >= 1:
                out.owner = True
            if s.name.endswith("event_lag_seconds_bucket"):
                out.lag_buckets.append((s.labels.get("le", "+Inf"), s.value))
    return out


def _lag_quantiles(scrapes: list[_Scrape]) -> tuple[float | None, float | None]:
    """p50 and p99 event lag (ms) from the workers' histogram buckets, summed over workers."""
    buckets: dict[float, float] = {}
    for sc in scrapes:
        for le, value in sc.lag_buckets:
            bound = float("inf") if le in ("+Inf", "inf") else float(le)
            buckets[bound] = buckets.get(bound, 0.0) + value
    if not buckets or max(buckets.values()) == 0:
        return None, None
    ordered = sorted(buckets.items())
    total = ordered[-1][1]

    def q(frac: float) -> float:
        # Linear interpolation inside the bucket, as PromQL's histogram_quantile does.
        rank = frac * total
        prev_bound, prev_count = 0.0, 0.0
        for bound, count in ordered:
            if count >= rank:
                if bound == float("inf"):
                    return prev_bound * 1000
                span = count - prev_count
                inside = (rank - prev_count) / span if span else 1.0
                return (prev_bound + (bound - prev_bound) * inside) * 1000
            prev_bound, prev_count = bound, count
        return prev_bound * 1000

    return q(0.5), q(0.99)


def _fmt_ms(v: float | None) -> str:
    if v is None:
        return "-"
    return "inf" if v == float("inf") else f"{v:.1f}"


def run_demo(opts: DemoOptions) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="cc-core-demo-"))
    procs = _Processes(workdir)
    out = sys.stdout
    is_tty = out.isatty()
    print(f"cc-core demo: {opts.duration:.0f}s at {opts.rate:g} calls/s, {opts.workers} workers "
          f"(logs in {workdir})", flush=True)
    with PrivateRedis() as redis_srv:
        try:
            try:
                sim = SimProcess.start("--max-sessions", "100000", password=SIM_PASSWORD,
                                       stderr_path=workdir / "simulator.log")
            except RuntimeError as exc:
                raise EnvironmentProblem(str(exc)) from exc
            procs.adopt("simulator", sim.proc)
            sim_port = sim.port
            metrics_base = _free_port_block(opts.workers)
            env = {**os.environ, "CC_GREETING": f"tone_stream://%({opts.greeting_ms},0,440);loops=1"}
            procs.start("workers", [
                sys.executable, "-m", "cc_core.cli", "run", "--workers", str(opts.workers),
                "--node", f"{NODE}=127.0.0.1:{sim_port}", "--password", SIM_PASSWORD,
                "--redis-url", redis_srv.url, "--metrics-port", str(metrics_base),
            ], env=env)
            ports = [metrics_base + i for i in range(opts.workers)]
            owner = _wait_for_owner(ports)
            print(f"redis {redis_srv.url}  simulator 127.0.0.1:{sim_port}  "
                  f"node {NODE} owned by worker {owner}  metrics :{ports[0]}..:{ports[-1]}",
                  flush=True)

            def tick(stats: TrafficStats, ev_rate: float) -> None:
                scrapes = [_scrape(p) for p in ports]
                p50, p99 = _lag_quantiles(scrapes)
                owners = [str(i) for i, sc in enumerate(scrapes) if sc.owner]
                line = (f"[{time.monotonic() - stats.started_mono:5.0f}s] calls {stats.placed:6d} "
                        f"active {stats.active:4d} answered {stats.answered:6d} "
                        f"ended {stats.ended:6d} | {ev_rate:7.0f} ev/s | lag p50 {_fmt_ms(p50)} "
                        f"p99 {_fmt_ms(p99)} ms | owner {','.join(owners) or '-'}")
                # On a terminal, rewrite one line in place (ESC[K clears what a longer previous
                # line left); elsewhere (CI logs, pipes) print a line per tick.
                print(f"\r{line}\x1b[K" if is_tty else line, end="" if is_tty else "\n",
                      flush=True)

            plan = TrafficPlan(rate=opts.rate, duration=opts.duration,
                               caller_hangup_ratio=opts.caller_hangup_ratio,
                               greeting_s=opts.greeting_ms / 1000, seed=opts.seed)
            gen = TrafficGenerator(NodeConfig(name=NODE, port=sim_port, password=SIM_PASSWORD),
                                   plan, EslConfig())
            stats = gen.run(on_tick=tick)
            if is_tty:
                print(flush=True)
            final = [_scrape(p) for p in ports]
            _print_summary(stats, gen.unanswered(), _lag_quantiles(final), workdir)
            ok = stats.placed > 0 and stats.ended == stats.placed and gen.unanswered() == 0
            return 0 if ok else 1
        finally:
            procs.stop_all()


def _wait_for_owner(ports: list[int]) -> int:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        for i, p in enumerate(ports):
            if _scrape(p).owner:
                return i
        gevent.sleep(0.1)
    raise EnvironmentProblem("no worker took ownership of the simulated node within "
                             f"{START_TIMEOUT_S:.0f}s; see the workers.log in the demo log folder")


def _print_summary(stats: TrafficStats, unanswered: int, lag: tuple[float | None, float | None],
                   workdir: Path) -> None:
    elapsed = time.monotonic() - stats.started_mono
    placed = max(stats.placed, 1)
    rows = [
        ("calls placed", f"{stats.placed}"),
        ("placement errors", f"{stats.place_errors}"),
        ("answered", f"{stats.answered} ({100 * stats.answered / placed:.1f}%)"),
        ("never answered", f"{unanswered}"),
        ("ended", f"{stats.ended}"),
        ("  hung up by caller", f"{stats.caller_hangups}"),
        ("  hung up by cc-core", f"{stats.system_hangups}"),
        ("still active", f"{stats.active}"),
        ("answer latency p50/p95/p99 ms",
         " / ".join(_fmt_ms(percentile(stats.answer_ms, q)) for q in (50, 95, 99))),
        ("worker event lag p50/p99 ms", f"{_fmt_ms(lag[0])} / {_fmt_ms(lag[1])}"),
        ("events seen", f"{stats.events} ({stats.events / max(elapsed, 1e-6):.0f}/s avg)"),
        ("hang-up causes", ", ".join(f"{k} {v}" for k, v in stats.causes.most_common()) or "-"),
        ("logs", str(workdir)),
    ]
    width = max(len(k) for k, _ in rows)
    print("\nsummary")
    print("-" * (width + 40))
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    print("-" * (width + 40), flush=True)
