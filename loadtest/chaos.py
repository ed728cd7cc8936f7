"""Break something under real SIP traffic and count the calls: ``python -m loadtest.chaos``.

Against a real FreeSWITCH (the lab switch, ``../shared/tools/freeswitch-lab``) whose dialplan
parks 400 numbers: starts a private Redis and two ``cc-core run`` processes (as on two hosts),
sends SIPp callers who wait for the switch's BYE after the greeting, applies one action in the
middle of the run, and prints how many calls were placed, completed and left parked.

Actions: ``kill-owner`` (SIGKILL the worker that owns the node), ``warm-stop`` (SIGTERM the
owner's ``cc-core run``), ``redis-restart`` (Redis stopped and started empty on the same port),
``switch-restart`` (runs ``--restart-cmd``), ``none``. Every process binds to 127.0.0.1, SIPp
is bounded by ``--calls`` and ``-timeout``, and everything started here is stopped at the end.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import gevent
import redis

from cc_core.config import EslConfig, NodeConfig
from cc_core.redis_server import PrivateRedis, free_port
from esl_handlers import keys
from esl_handlers.connection import EslConnection
from esl_handlers.lease import lease_holder

NODE = "fs1"
SCENARIO = Path(__file__).resolve().parent / "sipp" / "caller_wait_bye.xml"
DNIS = "4008001234"


def _addr(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


def esl_connect(host: str, port: int, password: str) -> EslConnection:
    conn = EslConnection(NodeConfig(name=NODE, host=host, port=port, password=password),
                         EslConfig(connect_timeout_s=3, command_timeout_s=10))
    conn.connect()
    return conn


def _live_400(conn: EslConnection) -> list[dict[str, str]]:
    data = json.loads(conn.api("show channels as json") or "{}")
    return [r for r in data.get("rows", []) if str(r.get("dest", "")).startswith("400")
            and r.get("callstate") != "HANGUP"]


def _left_parked(conn: EslConnection, work: Path, settle_s: float = 15.0) -> int:
    """400 calls still up once the core database has caught up (its rows trail the events,
    so a call that just ended can still be listed for a moment)."""
    deadline = time.monotonic() + settle_s
    rows = _live_400(conn)
    while rows and time.monotonic() < deadline:
        gevent.sleep(0.5)
        rows = [r for r in _live_400(conn)
                if conn.api(f"uuid_exists {r.get('uuid')}").strip() == "true"]
    (work / "left.json").write_text(json.dumps(rows, indent=1))
    return len(rows)


def _wait(proc: subprocess.Popen[bytes], timeout: float) -> int | None:
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        gevent.sleep(0.2)
    return proc.poll()


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        if _wait(proc, 30) is None:
            proc.kill()
            proc.wait()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m loadtest.chaos", description=__doc__.split("\n")[0])
    p.add_argument("--switch", default="127.0.0.1:5060", help="the switch's SIP HOST:PORT")
    p.add_argument("--esl", default="127.0.0.1:8021", help="the switch's ESL HOST:PORT")
    p.add_argument("--password", default="ClueCon")
    p.add_argument("--rate", type=float, default=20.0, help="new calls per second")
    p.add_argument("--calls", type=int, default=300, help="calls to place (bounded)")
    p.add_argument("--action", default="kill-owner",
                   choices=["kill-owner", "warm-stop", "redis-restart", "switch-restart", "none"])
    p.add_argument("--at", type=float, default=None, help="seconds into the run (default: middle)")
    p.add_argument("--lease-ttl-ms", type=int, default=3000)
    p.add_argument("--restart-cmd", default="", help="shell command restarting the switch")
    p.add_argument("--sipp-port", type=int, default=0, help="SIPp's SIP port (default: free)")
    args = p.parse_args(argv)
    esl_host, esl_port = _addr(args.esl)
    work = Path(tempfile.mkdtemp(prefix="cc-chaos-"))
    at = args.at if args.at is not None else args.calls / args.rate / 2
    procs: list[subprocess.Popen[bytes]] = []
    server = PrivateRedis().start()
    redis_port = server.port
    r = redis.Redis.from_url(server.url, socket_timeout=2)
    _apply_greeting_tenant(server.url, work)
    try:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        for i in range(2):
            log = open(work / f"run{i}.log", "wb")  # noqa: SIM115 - open while it runs
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "cc_core.cli", "run", "--workers", "1",
                 "--node", f"{NODE}={esl_host}:{esl_port}", "--password", args.password,
                 "--redis-url", server.url, "--lease-ttl-ms", str(args.lease_ttl_ms),
                 "--metrics-port", "0"], stderr=log, env=env))
        deadline = time.monotonic() + 30
        while lease_holder(r, NODE) is None and time.monotonic() < deadline:
            gevent.sleep(0.1)
        gevent.sleep(2)   # the standby's watch connection
        callers = work / "callers.csv"
        with callers.open("w") as f:
            f.write("SEQUENTIAL\n")
            f.writelines(f"1380{i:07d};\n" for i in range(max(args.calls, 1)))
        sport = args.sipp_port or free_port()
        sipp = subprocess.Popen(
            ["sipp", "-sf", str(SCENARIO), "-inf", str(callers), "-s", DNIS, args.switch,
             "-i", "127.0.0.1", "-mi", "127.0.0.1", "-ci", "127.0.0.1", "-p", str(sport),
             "-cp", str(free_port()), "-mp", str(free_port()), "-r", f"{args.rate:g}",
             "-m", str(args.calls), "-l", str(max(50, int(args.rate * 10))), "-nostdin",
             "-timeout", f"{int(args.calls / args.rate + 90)}s", "-trace_stat", "-stf",
             str(work / "stats.csv"), "-fd", "1", "-trace_err", "-error_file",
             str(work / "sipp-errors.log")],
            stdout=open(work / "sipp.out", "wb"), stderr=subprocess.STDOUT, cwd=work)  # noqa: SIM115
        started = time.monotonic()
        gevent.sleep(at)
        acted = _act(args, r, procs, redis_port, server)
        server = acted or server
        print(f"[{time.monotonic() - started:5.1f}s] {args.action} done", flush=True)
        _wait(sipp, args.calls / args.rate + 120)
        _stop(sipp)
        setup = _setup_figures(r)
        succ, fail = _sipp_counts(work / "stats.csv")
        conn = esl_connect(esl_host, esl_port, args.password)
        try:
            left = _left_parked(conn, work)
            conn.api("hupall NORMAL_CLEARING")
        finally:
            conn.close()
        print(f"action {args.action} at {at:.1f}s, {args.rate:g} calls/s: placed "
              f"{succ + fail}, completed {succ}, failed {fail}, left parked {left} "
              f"(logs {work})", flush=True)
        print(setup, flush=True)
        return 0 if fail == 0 and left == 0 else 1
    finally:
        for proc in procs:
            _stop(proc)
        server.stop()


def _setup_figures(r: redis.Redis) -> str:
    """The workers' own call-setup histogram (PARK read -> first command) and CPU so far."""
    from metrics.scrape import buckets, histogram_quantiles, port_url, samples

    setup: list[tuple[str, float]] = []
    cpu_s = 0.0
    for key in r.scan_iter(match=keys.worker("*")):
        info = {k.decode(): v.decode() for k, v in r.hgetall(key).items()}
        port, pid = int(info.get("metrics_port", 0)), int(info.get("pid", 0))
        found = samples(port_url(port), timeout=3)
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        if found is None:
            continue
        cpu_s += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        setup += buckets(found, "cccore_call_setup_seconds")
    count = max((v for le, v in setup if le == "+Inf"), default=0)
    p50, p99 = histogram_quantiles(setup, (0.5, 0.99))
    fmt = (lambda v: "-" if v is None else f"{v:.2f}")  # noqa: E731 - local formatting
    return (f"call setup (PARK read -> first command), {count:.0f} calls: p50 {fmt(p50)} ms, "
            f"p99 {fmt(p99)} ms; workers' CPU {cpu_s:.2f} s in all")


def _apply_greeting_tenant(redis_url: str, work: Path) -> None:
    """The callers' number answers, plays a 2 s greeting and hangs up (as a real tenant's
    information line would): each call then has the same, short life."""
    from cc_core.tenants.loader import load_path
    from cc_core.tenants.store import TenantStore

    path = work / "chaos.yaml"
    path.write_text("tenant: chaos\nentry: announce:greeting\n"
                    f"numbers: {{'{DNIS}': {{}}}}\n"
                    "prompts: {greeting: 'tone_stream://%(2000,0,440);loops=1'}\n",
                    encoding="utf-8")
    client = redis.Redis.from_url(redis_url)
    try:
        TenantStore(client).apply(load_path(path))
    finally:
        client.close()


def _act(args: argparse.Namespace, r: redis.Redis, procs: list[subprocess.Popen[bytes]],
         redis_port: int, server: PrivateRedis) -> PrivateRedis | None:
    if args.action in ("kill-owner", "warm-stop"):
        holder = lease_holder(r, NODE)
        pid = int(r.hget(keys.worker(holder), "pid") or 0) if holder else 0
        if args.action == "kill-owner":
            os.kill(pid, signal.SIGKILL)
        else:
            # The owner's `cc-core run` is the parent of the owning worker.
            parent = int(Path(f"/proc/{pid}/stat").read_text().split()[3])
            os.kill(parent, signal.SIGTERM)
    elif args.action == "redis-restart":
        server.stop()
        gevent.sleep(3)
        fresh = PrivateRedis(port=redis_port).start()
        # An empty Redis lost the tenant config too: the operator applies it again (workers
        # keep routing by the version they hold meanwhile).
        _apply_greeting_tenant(fresh.url, Path(tempfile.mkdtemp(prefix="cc-chaos-")))
        return fresh
    elif args.action == "switch-restart" and args.restart_cmd:
        subprocess.run(args.restart_cmd, shell=True, check=False)  # noqa: S602 - the user's own
    return None


def _sipp_counts(stats: Path) -> tuple[int, int]:
    try:
        rows = list(csv.reader(stats.open(), delimiter=";"))
    except OSError:
        return 0, 0
    head, last = rows[0], rows[-1]
    return (int(last[head.index("SuccessfulCall(C)")]), int(last[head.index("FailedCall(C)")]))


if __name__ == "__main__":
    sys.exit(main())
