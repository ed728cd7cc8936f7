"""``make acceptance``: the whole product on a real FreeSWITCH, with SIPp callers and agents.

``CC_FREESWITCH=HOST:ESLPORT:SIPPORT`` names a switch running the configuration rendered from
``examples/acceptance/`` (README, "Acceptance on a real switch"); without it this says so and
exits 0 (CI never runs it). It starts its own Redis, two workers and the call-record consumer,
registers five SIPp agent phones, and sends SIPp callers through the IVR (key 1 by RFC 2833)
into the queue, with the injection file's blacklisted callers expecting the 603:

1. steady traffic, the worker owning the node SIGKILLed in the middle: every call must
   complete (the standby takes the node over);
2. with ``CC_FREESWITCH_RESTART`` (a shell command that restarts the switch), the switch
   restarted in the middle of traffic: calls up or placed while it is down die with it and
   are counted as cut; then a new round of traffic, every call of which must complete.

First the switch itself: every module the rendered configuration names is loaded, and with
``CC_FREESWITCH_LOG`` (its log file) no error line was logged while it started.
Then: no agent is left stuck (all Available and Waiting, no reservation, nobody waiting);
every call summarised by the workers is stored as one call record; every call an agent
answered has its recording (the tenant records all calls), indexed, and ``cc-core recordings
check`` finds the switch's files whole; and ``cc-core billing bill`` of the tenant's account
(opened and topped up by this run, so the workers' live credit control is on) rates every
record, its lines adding up to its total. A summary table gives every call's fate and the
figures: calls/s, call-setup latency, the workers' CPU per call next to the switch's
(``CC_FREESWITCH_PID``, or the process listening on the ESL port). Exit 1 on any lost call,
stuck agent, missing record, missing or broken recording, or unrated call.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

from loadtest import driver
from metrics.scrape import buckets, histogram_quantiles, port_url, samples

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "acceptance"
TENANT = "accept"
DNIS = "4008660000"
AGENTS = ("1001", "1002", "1003", "1004", "1005")
CALLS = int(os.environ.get("CC_ACCEPTANCE_CALLS", "60"))
RATE = float(os.environ.get("CC_ACCEPTANCE_RATE", "3"))
# The caller holds this long after pressing 1: the agent phones ring 1 s, so a call talks for
# about 2 s and its recording has something to check.
HOLD_MS = 3000
IDLE_SPAN_S = 5.0
#: Prepaid credit of the acceptance tenant: enough that no call is refused, yet held by the
#: workers' live credit control (each billed call arms a hard stop).
CREDIT_FEN = 500_000
_TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Phase:
    name: str
    placed: int = 0
    completed: int = 0
    failed: int = 0
    blacklisted_ok: int = 0
    blacklisted_failed: int = 0
    cut_by_restart: int = 0
    note: str = ""

    @property
    def lost(self) -> int:
        return max(0, self.failed - self.cut_by_restart) + self.blacklisted_failed


def _cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK
    except (OSError, IndexError, ValueError):
        return 0.0


def _children(pid: int) -> list[int]:
    try:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    except OSError:
        return []
    return [int(x) for x in out.split()]


def _switch_pid(esl_port: int) -> int | None:
    if os.environ.get("CC_FREESWITCH_PID"):
        return int(os.environ["CC_FREESWITCH_PID"])
    out = subprocess.run(["pgrep", "-x", "freeswitch"], capture_output=True, text=True).stdout
    pids = [int(x) for x in out.split()]
    return pids[0] if pids else None


def _owner(ports: list[int]) -> int | None:
    for i, port in enumerate(ports):
        if any(s.name == "cccore_node_owner" and s.value >= 1
               for s in samples(port_url(port)) or []):
            return i
    return None


def _worker_pids(redis_url: str) -> dict[str, int]:
    import redis

    from esl_handlers import keys

    client = redis.Redis.from_url(redis_url)
    out = {}
    for key in client.scan_iter(match=keys.worker("*")):
        beat = client.hgetall(key)
        pid = beat.get(b"pid")
        if pid:
            out[key.decode()] = int(pid)
    return out


def _setup_ms(ports: list[int]) -> tuple[float | None, float | None]:
    found = [b for port in ports
             for b in buckets(samples(port_url(port)) or [], "cccore_call_setup_seconds")]
    p50, p99 = histogram_quantiles(found, (0.5, 0.99))
    return p50, p99


def _sipp_phase(plan: driver.SippPlan, name: str, action_at: float | None,
                action: object = None) -> Phase:
    phase = Phase(name)
    timer = None
    if action_at is not None and callable(action):
        timer = threading.Timer(action_at, action)
        timer.start()
    try:
        summary = driver.run_sipp(plan, out=lambda line: print(f"  {name}: {line}", flush=True))
    finally:
        if timer is not None:
            timer.cancel()
    phase.placed = plan.calls
    phase.completed = summary.answered
    ok, bad = driver.sipp_counts(plan.workdir / "callers.csv")
    phase.failed = bad + max(0, plan.calls - plan.blacklisted_calls - ok - bad)
    bok, bbad = driver.sipp_counts(plan.workdir / "blacklisted.csv")
    phase.blacklisted_ok = bok
    phase.blacklisted_failed = bbad + max(0, plan.blacklisted_calls - bok - bbad)
    return phase


def _wait_owned(ports: list[int], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while _owner(ports) is None and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(3)     # the agents' phones re-register, the worker reconciles


def main() -> int:
    spec = os.environ.get("CC_FREESWITCH", "")
    if not spec:
        print("make acceptance: CC_FREESWITCH=HOST:ESLPORT:SIPPORT is not set, so nothing was "
              "run. It needs a real FreeSWITCH started with the configuration rendered from "
              "examples/acceptance (README, 'Acceptance on a real switch').")
        return 0
    try:
        host, esl_port, sip_port = spec.split(":")
        int(esl_port), int(sip_port)
    except ValueError:
        print(f"CC_FREESWITCH={spec!r}: expected HOST:ESLPORT:SIPPORT, e.g. "
              "127.0.0.1:8031:5080", file=sys.stderr)
        return 2
    cfg = yaml.safe_load((EXAMPLE / "cc.yaml").read_text(encoding="utf-8"))
    password = os.environ.get("CC_ESL_PASSWORD") or cfg["nodes"][0]["password"]
    agent_port = cfg["freeswitch"]["agent_port"]
    passwords = {a["id"]: a["password"] for a in cfg["freeswitch"]["agents"]}

    from cc_core.demo import _free_port_block, _Processes
    from cc_core.redis_server import PrivateRedis

    work = Path(tempfile.mkdtemp(prefix="cc-acceptance-"))
    procs = _Processes(work)
    redis_srv = PrivateRedis().start()
    phases: list[Phase] = []
    ok = True
    try:
        env = {k: v for k, v in os.environ.items() if k not in ("CC_TENANTS",)}
        env["CC_VOICEMAIL_DIR"] = cfg["freeswitch"]["voicemail_dir"]
        env["CC_RECORDINGS_ROOT"] = recordings_root = cfg["recordings"]["root"]
        # The switch runs on this machine and writes both folders as the same user.
        for folder in (env["CC_VOICEMAIL_DIR"], recordings_root):
            Path(folder).mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "cc_core.cli", "config", "apply",
                        str(EXAMPLE / "tenants"), "--redis-url", redis_srv.url], check=True,
                       cwd=REPO, env=env, stdout=subprocess.DEVNULL)
        metrics = _free_port_block(2)
        ports = [metrics, metrics + 1]
        workers = procs.start("workers", [
            sys.executable, "-m", "cc_core.cli", "run", "--workers", "2",
            "--node", f"fs1={host}:{esl_port}", "--password", password,
            "--redis-url", redis_srv.url, "--metrics-port", str(metrics)], env=env)
        switch_problems = _switch_problems(host, int(esl_port), password)
        for line in switch_problems:
            print(f"  {line}")
        db = work / "records.sqlite3"
        _open_account(db, redis_srv.url, env)
        procs.start("records", [sys.executable, "-m", "cc_core.cli", "cdr", "consume", "--db",
                                str(db), "--redis-url", redis_srv.url], env=env)
        deadline = time.monotonic() + 30
        while _owner(ports) is None and time.monotonic() < deadline:
            time.sleep(0.2)
        if _owner(ports) is None:
            print("no worker took the node within 30 s: see the workers log in", work)
            return 1
        print(f"redis {redis_srv.url}  switch {host} ESL {esl_port} SIP {sip_port}  "
              f"work dir {work}", flush=True)
        plan = driver.SippPlan(
            switch=f"{host}:{sip_port}", agents_switch=f"{host}:{agent_port}", dnis=DNIS,
            rate=RATE, calls=CALLS, agents=len(AGENTS), hold_ms=HOLD_MS,
            agent_passwords=passwords, workdir=work / "phase1", timeout_s=300)
        switch_pid = _switch_pid(int(esl_port))
        cpu0 = {p: _cpu_s(p) for p in _children(workers.pid)}
        fs0 = _cpu_s(switch_pid) if switch_pid else 0.0
        t0 = time.monotonic()

        def kill_owner() -> None:
            i = _owner(ports)
            pids = _worker_pids(redis_srv.url)
            print(f"  SIGKILL the node's owner (worker {i}) of workers {sorted(pids.values())}",
                  flush=True)
            for key, pid in pids.items():
                # Worker i serves metrics on metrics + i; its id (the heartbeat key's
                # {w:<id>} tag) starts w<i>-.
                worker_id = key.partition("{w:")[2].partition("}")[0]
                if i is not None and worker_id.startswith(f"w{i}-"):
                    print(f"  killed {worker_id} (pid {pid})", flush=True)
                    os.kill(pid, signal.SIGKILL)

        phases.append(_sipp_phase(plan, "worker killed", CALLS / RATE * 0.4, kill_owner))
        elapsed = time.monotonic() - t0
        cpu_core = sum(_cpu_s(p) - cpu0.get(p, 0.0) for p in _children(workers.pid))
        cpu_fs = (_cpu_s(switch_pid) - fs0) if switch_pid else None
        restart = os.environ.get("CC_FREESWITCH_RESTART")
        steady: tuple[float, float | None, float, float] | None = None
        if restart:
            # Restarted in the middle of traffic: whatever was up or placed while it was down
            # dies with it, each counted as cut; then traffic again, which must all complete.
            plan2 = driver.SippPlan(**{**plan.__dict__, "workdir": work / "phase2"})

            def restart_switch() -> None:
                print("  restarting the switch:", restart, flush=True)
                subprocess.run(restart, shell=True, check=False)

            cut = _sipp_phase(plan2, "switch restarted", CALLS / RATE * 0.3, restart_switch)
            cut.cut_by_restart = cut.failed
            cut.note = "calls up or placed while the switch restarted are cut"
            phases.append(cut)
            _wait_owned(ports)
            plan3 = driver.SippPlan(**{**plan.__dict__, "workdir": work / "phase3"})
            # The steady figure: no worker starting (imports, a reconcile) inside the span.
            # First the workers' CPU with no call up (heartbeats, leases, sweeps), which a
            # per-call figure at a few calls/s carries too.
            idle0, idle_t = sum(_cpu_s(p) for p in _children(workers.pid)), time.monotonic()
            time.sleep(IDLE_SPAN_S)
            idle = ((sum(_cpu_s(p) for p in _children(workers.pid)) - idle0)
                    / (time.monotonic() - idle_t))
            pid3 = _switch_pid(int(esl_port))
            t3 = time.monotonic()
            cpu3 = {p: _cpu_s(p) for p in _children(workers.pid)}
            fs3 = _cpu_s(pid3) if pid3 else 0.0
            phases.append(_sipp_phase(plan3, "after the restart", None))
            switch_problems += [f"after the restart: {line}" for line in
                                _switch_problems(host, int(esl_port), password)]
            steady = (sum(_cpu_s(p) - cpu3.get(p, 0.0) for p in _children(workers.pid)),
                      (_cpu_s(pid3) - fs3) if pid3 else None, idle, time.monotonic() - t3)
        else:
            phases.append(Phase("switch restarted", note="skipped: CC_FREESWITCH_RESTART "
                                                        "not set"))
        stuck = _stuck_agents(redis_srv.url)
        summarised, stored = _records(redis_srv.url, db)
        setup = _setup_ms(ports)
        calls = sum(p.placed for p in phases[:1])
        print()
        print(f"{'phase':<18} {'placed':>6} {'completed':>9} {'failed':>6} {'cut':>4} "
              f"{'blacklist 603':>13} {'lost':>4}  note")
        for p in phases:
            print(f"{p.name:<18} {p.placed:>6} {p.completed:>9} {p.failed:>6} "
                  f"{p.cut_by_restart:>4} {p.blacklisted_ok:>13} {p.lost:>4}  {p.note}")
        print(f"agents stuck: {', '.join(stuck) or 'none'}")
        print(f"call records stored: {stored} of {summarised} summarised calls")
        rec_problems = _recordings(db, recordings_root, env)
        bill_problems = _bill(db, env)
        for line in rec_problems + bill_problems:
            print(f"  {line}")
        print(f"calls/s (phase 1): {calls / max(elapsed, 1e-6):.2f}")
        print("call setup p50 / p99 ms: "
              + " / ".join("-" if v is None else f"{v:.1f}" for v in setup))
        if calls:
            fs = "-" if cpu_fs is None else f"{1000 * cpu_fs / calls:.2f}"
            print(f"CPU per call ms (phase 1, a worker killed and restarted): core "
                  f"{1000 * cpu_core / calls:.2f}, switch {fs}")
        if steady is not None and phases[-1].placed:
            n = phases[-1].placed
            fs = "-" if steady[1] is None else f"{1000 * steady[1] / n:.2f}"
            core, _, idle, span = steady
            print(f"CPU per call ms (after the restart, steady): core {1000 * core / n:.2f} "
                  f"(of which idle work {1000 * idle * span / n:.2f}: {1000 * idle:.1f} ms/s "
                  f"with no call up), switch {fs}")
        ok = (not stuck and all(p.lost == 0 for p in phases) and stored == summarised
              and not rec_problems and not bill_problems and not switch_problems)
        print("ACCEPTANCE", "PASSED" if ok else "FAILED", flush=True)
        return 0 if ok else 1
    finally:
        procs.stop_all()
        redis_srv.stop()


def _stuck_agents(redis_url: str) -> list[str]:
    import redis

    from acd.store import Acd

    acd = Acd(redis.Redis.from_url(redis_url))
    deadline = time.monotonic() + 20
    while True:
        stuck = [f"{a.agent} ({a.status}/{a.state})" for a in acd.agents(TENANT)
                 if a.state not in ("Waiting", "Idle")]
        waiting = acd.queue_view(TENANT, "support").waiting
        if (not stuck and not waiting) or time.monotonic() > deadline:
            members = [f"{m.call_uuid} ({m.state}, joined {m.joined_ms}, node {m.node})"
                       for m in acd.members(TENANT, "support")]
            return stuck + ([f"{waiting} callers still waiting: {', '.join(members)}"]
                            if waiting else [])
        time.sleep(0.5)


def _switch_problems(host: str, esl_port: int, password: str) -> list[str]:
    """The rendered configuration as the switch took it: every module of ``fsconf render``
    loaded (``module_exists``), and, given ``CC_FREESWITCH_LOG``, no error line logged while
    the running switch process started."""
    from freeswitch_conf.render import MODULES
    from loadtest.chaos import esl_connect

    conn = esl_connect(host, esl_port, password)
    try:
        problems = [f"module {m} is not loaded" for m in MODULES
                    if conn.api(f"module_exists {m}").strip() != "true"]
    finally:
        conn.close()
    log_path = os.environ.get("CC_FREESWITCH_LOG")
    pid = _switch_pid(esl_port)
    if log_path and pid:
        problems += [f"at start: {line}" for line in _start_errors(Path(log_path), pid)]
    print(f"switch: {len(MODULES)} modules checked"
          + (f", start-up log {log_path} read" if log_path else
             " (set CC_FREESWITCH_LOG to read its start-up log too)")
          + f": {len(problems)} problems", flush=True)
    return problems


_LOG_STAMP = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) ")


def _start_errors(log: Path, pid: int) -> list[str]:
    """Error lines the switch process ``pid`` logged from its start to "FreeSWITCH Started"
    (its log is appended to across restarts; the previous process's shutdown is not its
    start). Log stamps are the switch's local time, as this machine's."""
    with open("/proc/stat", encoding="ascii") as f:
        boot = float(next(line.split()[1] for line in f if line.startswith("btime")))
    ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    began = boot + ticks / _TICK - 1.0
    out: list[str] = []
    inside = False
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        stamp = _LOG_STAMP.search(line)
        if not inside and stamp is not None:
            inside = datetime.strptime(stamp[1], "%Y-%m-%d %H:%M:%S.%f").timestamp() >= began
        if not inside:
            continue
        if "FreeSWITCH Started" in line:
            break
        if any(level in line for level in ("[ERR]", "[CRIT]", "[ALERT]")):
            out.append(line.strip())
    return out


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cc_core.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, check=False)


def _open_account(db: Path, redis_url: str, env: dict[str, str]) -> None:
    """The tenant's billing account as an operator opens it: a package with recording, 6 s
    increments, a rent; then prepaid credit published to the workers' credit view."""
    # From the first of this month: the contract year starts in the month billed, so the bill
    # carries the package's yearly fee beside its calls and rent.
    since = datetime.now(ZoneInfo("Asia/Shanghai")).date().replace(day=1).isoformat()
    for args in (["db", "migrate", "--db", str(db)],
                 ["billing", "open", "--tenant", TENANT, "--package", "growth", "--from", since,
                  "--increment-s", "6", "--rent-fen", "5000", "--low-credit-fen", "10000",
                  "--by", "acceptance", "--db", str(db)],
                 ["billing", "topup", "--tenant", TENANT, "--amount-fen", str(CREDIT_FEN),
                  "--by", "acceptance", "--reason", "acceptance run", "--redis-url", redis_url,
                  "--db", str(db)]):
        done = _cli(args, env)
        if done.returncode != 0:
            raise SystemExit(f"cc-core {' '.join(args[:2])} failed: {done.stderr.strip()}")


def _recordings(db: Path, root: str, env: dict[str, str]) -> list[str]:
    """Problems with the recordings: an answered call without one, or a file that
    ``cc-core recordings check`` finds missing, empty or unlike its call."""
    from records.db import open_database

    with open_database(str(db)) as store, store.transaction(write=False) as tx:
        answered = {str(r[0]): r[1] for r in tx.execute(
            "SELECT call_uuid, recording_path FROM call_records WHERE tenant = ? "
            "AND disposition = 'answered'", (TENANT,)).fetchall()}
        indexed = {str(r[0]) for r in tx.execute(
            "SELECT call_uuid FROM recordings WHERE tenant = ?", (TENANT,)).fetchall()}
    with open_database(str(db)) as store, store.transaction(write=False) as tx:
        fates = tx.execute("SELECT disposition, COUNT(*) FROM call_records WHERE tenant = ? "
                           "GROUP BY disposition ORDER BY 2 DESC", (TENANT,)).fetchall()
    print("call records by disposition: " + ", ".join(f"{d} {n}" for d, n in fates))
    problems = [f"answered call {u} has no recording" for u, path in sorted(answered.items())
                if not path or u not in indexed]
    done = _cli(["recordings", "check", "--tenant", TENANT, "--root", root, "--db", str(db)],
                env)
    print(f"recordings: {len(indexed)} indexed for {len(answered)} answered calls; "
          f"check: {done.stdout.strip().splitlines()[0] if done.stdout.strip() else '-'}")
    if done.returncode != 0:
        problems.append("cc-core recordings check: "
                        + (done.stdout.strip() or done.stderr.strip()))
    if not answered:
        problems.append("no call was answered by an agent, so no recording was checked")
    return problems


def _bill(db: Path, env: dict[str, str]) -> list[str]:
    """Problems with this month's bill: unrated records, records left out, or lines that do
    not add up to the total."""
    from records.db import open_database

    period = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
    base = ["billing", "bill", "--tenant", TENANT, "--period", period, "--db", str(db)]
    as_json, as_csv = _cli([*base, "--format", "json"], env), _cli([*base, "--format", "csv"],
                                                                   env)
    if as_json.returncode or as_csv.returncode:
        return [f"cc-core billing bill failed: {(as_json.stderr or as_csv.stderr).strip()}"]
    bill = json.loads(as_json.stdout)
    lines = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    total = [int(r["amount_fen"]) for r in lines if r["line"] == "total"]
    parts = sum(int(r["amount_fen"]) for r in lines if r["line"] != "total")
    with open_database(str(db)) as store, store.transaction(write=False) as tx:
        row = tx.execute("SELECT COUNT(*) FROM call_records WHERE tenant = ?",
                         (TENANT,)).fetchone()
    stored = int(row[0]) if row else 0
    print(f"bill {period}: {bill['calls']} calls rated, {bill['billable_s']} s billable "
          f"({bill['included_s']} s included, {bill['charged_s']} s charged), "
          f"total {bill['total_fen']} fen")
    problems = []
    if bill["unrated"]:
        problems.append(f"bill: {bill['unrated']} call records not rated")
    if bill["calls"] + bill["unrated"] != stored:
        problems.append(f"bill: {bill['calls'] + bill['unrated']} calls of {stored} records")
    if total != [bill["total_fen"]] or parts != bill["total_fen"]:
        problems.append(f"bill: lines add up to {parts} fen, total says {total}")
    if bill["billable_s"] != bill["included_s"] + bill["charged_s"] or not bill["billable_s"]:
        problems.append(f"bill: billable {bill['billable_s']} s is not included "
                        f"{bill['included_s']} s + charged {bill['charged_s']} s")
    return problems


def _records(redis_url: str, db: Path) -> tuple[int, int]:
    import redis

    from cc_core import keys
    from records.db import open_database

    client = redis.Redis.from_url(redis_url)
    summarised = client.xlen(keys.calls_stream(TENANT))
    deadline = time.monotonic() + 30
    stored = 0
    while time.monotonic() < deadline:
        with open_database(str(db)) as store, store.transaction(write=False) as tx:
            row = tx.execute("SELECT COUNT(*) FROM call_records WHERE tenant = ?",
                             (TENANT,)).fetchone()
        stored = int(row[0]) if row else 0
        if stored >= summarised:
            break
        time.sleep(0.5)
    return summarised, stored


if __name__ == "__main__":
    raise SystemExit(main())
