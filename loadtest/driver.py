"""``cc-core loadtest``: load against a running core, on the simulator or on a real switch.

``--target sim`` drives a simulator that a running core owns (the demo's traffic generator,
``loadtest.simdriver``) at a rate, with at most ``--concurrency`` calls up at once. ``--target
sipp`` starts SIPp agent phones (answering instances, each registered on the switch's agents
profile) and SIPp callers (``loadtest/sipp/``, numbers from the injection file, blacklisted
rows sent to the scenario that expects the rejection) against a real FreeSWITCH, bounded in
calls and time, and stops them all at the end. Both print a progress line while they run and
the same summary table: offered, answered, abandoned, rejected, failed, setup latency
percentiles, and the core's dispatch latency when its /metrics are given.

Every SIPp process binds to 127.0.0.1 unless ``--bind`` says otherwise (``-i``, ``-mi``), has
its own SIP and media ports, a call count (``-m``) and a time bound (``-timeout``).
"""

from __future__ import annotations

import csv
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from loadtest.callers import Caller, read, write

SIPP_DIR = Path(__file__).resolve().parent / "sipp"
CALLERS = SIPP_DIR / "callers.csv"
AGENT_BASE_PORT = 15100      # agent phone i answers on AGENT_BASE_PORT + 2i, registers from +1
CALLER_PORT = 15060
BLACKLISTED_PORT = 15062
MEDIA_BASE_PORT = 16000
# SIPp binds audio RTP on -mp and video RTP on -mp + 2 (each with its RTCP port after it), and
# exits when either is taken: every instance gets a block of 4 ports of its own. Agent phone i
# answers with media from MEDIA_BASE_PORT + 100 + 8i and registers from the 4 after it.
MEDIA_BLOCK = 4
CONTROL_BASE_PORT = 17000    # SIPp's remote-control socket (-cp), one per process


@dataclass(frozen=True)
class SippPlan:
    switch: str                      # HOST:PORT of the carriers profile (400 calls in)
    agents_switch: str               # HOST:PORT of the agents profile (registrations)
    dnis: str
    rate: float
    calls: int
    agents: int
    hold_ms: int = 10_000
    agent_password: str = "agentpass"
    agent_passwords: Mapping[str, str] | None = None   # per user, over agent_password
    agent_first: int = 1001          # agent phones are users 1001, 1002...
    bind: str = "127.0.0.1"
    workdir: Path = Path(".")
    timeout_s: int = 600

    @property
    def blacklisted_calls(self) -> int:
        return max(1, self.calls // 20) if self.calls >= 20 else 0


def sipp_commands(plan: SippPlan) -> list[tuple[str, list[str]]]:
    """(name, argv) of every SIPp process of a run, in start order: each agent's answering
    instance, its registration, then the callers and the blacklisted callers. Each binds SIP,
    media and its control socket to ``plan.bind`` (``-i``, ``-mi``, ``-ci``), on ports of its
    own."""
    out: list[tuple[str, list[str]]] = []
    for name, argv in _sipp_commands(plan):
        control = CONTROL_BASE_PORT + len(out)
        out.append((name, [*argv[:1], "-ci", plan.bind, "-cp", str(control), *argv[1:]]))
    return out


def _sipp_commands(plan: SippPlan) -> list[tuple[str, list[str]]]:
    b = plan.bind
    out: list[tuple[str, list[str]]] = []
    shift_ms = (plan.calls / max(plan.rate, 0.001) + plan.hold_ms / 1000 + 60) * 1000
    for i in range(plan.agents):
        user = plan.agent_first + i
        port = AGENT_BASE_PORT + 2 * i
        media = MEDIA_BASE_PORT + 100 + 2 * MEDIA_BLOCK * i
        out.append((f"agent-{user}", [
            "sipp", "-sf", str(SIPP_DIR / "agent_answer.xml"), "-i", b, "-mi", b,
            "-p", str(port), "-mp", str(media), "-m", str(plan.calls), "-nostdin",
            "-timeout", f"{plan.timeout_s}s", "-trace_stat", "-stf",
            str(plan.workdir / f"agent-{user}.csv")]))
        out.append((f"register-{user}", [
            "sipp", "-sf", str(SIPP_DIR / "agent_register.xml"), "-inf",
            str(plan.workdir / f"agent-{user}.inf"), "-i", b, "-mi", b, "-p", str(port + 1),
            "-mp", str(media + MEDIA_BLOCK), "-m", "1", "-d", str(int(shift_ms)), "-nostdin",
            "-timeout", f"{plan.timeout_s}s", "-s", str(user), plan.agents_switch]))
    out.append(("callers", [
        "sipp", "-sf", str(SIPP_DIR / "caller_ivr_2833.xml"), "-inf",
        str(plan.workdir / "callers.inf"), "-i", b, "-mi", b, "-p", str(CALLER_PORT),
        "-mp", str(MEDIA_BASE_PORT), "-m", str(plan.calls - plan.blacklisted_calls),
        "-r", f"{plan.rate:g}", "-d", str(plan.hold_ms), "-nostdin",
        "-timeout", f"{plan.timeout_s}s", "-trace_stat", "-fd", "1", "-stf",
        str(plan.workdir / "callers.csv"), "-s", plan.dnis, plan.switch]))
    if plan.blacklisted_calls:
        out.append(("blacklisted", [
            "sipp", "-sf", str(SIPP_DIR / "caller_blacklisted.xml"), "-inf",
            str(plan.workdir / "blacklisted.inf"), "-i", b, "-mi", b,
            "-p", str(BLACKLISTED_PORT), "-mp", str(MEDIA_BASE_PORT + 50),
            "-m", str(plan.blacklisted_calls), "-r", "1", "-nostdin",
            "-timeout", f"{plan.timeout_s}s", "-trace_stat", "-stf",
            str(plan.workdir / "blacklisted.csv"), "-s", plan.dnis, plan.switch]))
    return out


def write_injection_files(plan: SippPlan, callers: Sequence[Caller]) -> None:
    """The callers' and the agents' injection files of a run, in ``plan.workdir``."""
    plain = [c for c in callers if c.kind != "blacklisted"] or list(callers)
    black = [c for c in callers if c.kind == "blacklisted"]
    write(plain, plan.workdir / "callers.inf")
    if black:
        write(black, plan.workdir / "blacklisted.inf")
    for i in range(plan.agents):
        user = plan.agent_first + i
        password = (plan.agent_passwords or {}).get(str(user), plan.agent_password)
        (plan.workdir / f"agent-{user}.inf").write_text(
            "SEQUENTIAL\n" + agent_row(str(user), password, AGENT_BASE_PORT + 2 * i) + "\n",
            encoding="ascii")


# What SIPp's injection file and its authentication keyword cannot carry: the field separator,
# the keyword's brackets, and the blanks that split its parameters.
_SIPP_UNSAFE = frozenset(";[]=") | frozenset(" \t\r\n")


class BadAgentCredential(ValueError):
    """An agent's user or password that SIPp's injection file cannot carry."""


def agent_row(user: str, password: str, port: int) -> str:
    """One line of an agent's injection file for ``agent_register.xml``: user, password, the
    port of its answering instance, and the authentication keyword built from the first two
    (SIPp does not expand fields inside the keyword, so the file carries it whole)."""
    for what, value in (("user", user), ("password", password)):
        bad = sorted({c for c in value if c in _SIPP_UNSAFE or not c.isascii()})
        if not value or bad:
            raise BadAgentCredential(
                f"agent {user!r}: its {what} cannot go into a SIPp injection file "
                f"({'empty' if not value else 'contains ' + ', '.join(map(repr, bad))}); "
                "give the agent a password of printable ASCII without ; [ ] = or blanks")
    return f"{user};{password};{port};[authentication username={user} password={password}]"


@dataclass
class Summary:
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    rejected: int = 0
    failed: int = 0
    setup_ms: list[float] = field(default_factory=list)
    dispatch_ms: tuple[float | None, float | None] = (None, None)

    def table(self) -> str:
        def pct(values: list[float], q: float) -> str:
            if not values:
                return "-"
            ordered = sorted(values)
            return f"{ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]:.1f}"

        def ms(v: float | None) -> str:
            return "-" if v is None else f"{v:.2f}"

        rows = [("offered", str(self.offered)), ("answered", str(self.answered)),
                ("abandoned (caller hung up first)", str(self.abandoned)),
                ("rejected (blacklist, unknown number...)", str(self.rejected)),
                ("failed", str(self.failed)),
                ("setup latency p50 / p95 / p99 ms",
                 " / ".join(pct(self.setup_ms, q) for q in (50, 95, 99))),
                ("core dispatch p50 / p99 ms",
                 f"{ms(self.dispatch_ms[0])} / {ms(self.dispatch_ms[1])}")]
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def sipp_counts(stat_csv: Path) -> tuple[int, int]:
    """(successful, failed) calls from the last line of SIPp's ``-trace_stat`` file."""
    if not stat_csv.exists():
        return 0, 0
    with stat_csv.open(newline="") as f:
        rows = list(csv.reader(f, delimiter=";"))
    if len(rows) < 2:
        return 0, 0
    head, last = rows[0], rows[-1]
    col = {name: i for i, name in enumerate(head)}
    return (int(last[col["SuccessfulCall(C)"]]), int(last[col["FailedCall(C)"]]))


def run_sipp(plan: SippPlan, out: Callable[[str], None] = print,
             callers: Path = CALLERS) -> Summary:
    plan.workdir.mkdir(parents=True, exist_ok=True)
    write_injection_files(plan, read(callers))
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []
    summary = Summary()
    try:
        for name, argv in sipp_commands(plan):
            log = (plan.workdir / f"{name}.log").open("wb")
            procs.append((name, subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                                 stdin=subprocess.DEVNULL, cwd=plan.workdir)))
            if name.startswith("register-"):
                time.sleep(0.05)
        callers_proc = dict(procs)["callers"]
        start = time.monotonic()
        while callers_proc.poll() is None and time.monotonic() - start < plan.timeout_s:
            ok, bad = sipp_counts(plan.workdir / "callers.csv")
            out(f"[{time.monotonic() - start:5.0f}s] callers: {ok} completed, {bad} failed "
                f"of {plan.calls - plan.blacklisted_calls}")
            time.sleep(1.0)
    finally:
        for _, p in procs:
            if p.poll() is None:
                p.terminate()
        for _, p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
    ok, bad = sipp_counts(plan.workdir / "callers.csv")
    rej_ok, rej_bad = sipp_counts(plan.workdir / "blacklisted.csv")
    summary.offered = plan.calls
    summary.answered = ok
    summary.rejected = rej_ok
    summary.failed = bad + rej_bad
    return summary


def run_sim(host: str, port: int, password: str, *, rate: float, duration: float,
            concurrency: int, mix: str, seed: int, out: Callable[[str], None] = print,
            metrics: Sequence[str] = ()) -> Summary:
    from cc_core.config import EslConfig, NodeConfig
    from loadtest.mixes import MIXES
    from loadtest.simdriver import TrafficGenerator, TrafficPlan, TrafficStats

    plan = TrafficPlan(rate=rate, duration=duration, scripts=MIXES[mix], seed=seed,
                       max_active=concurrency)
    gen = TrafficGenerator(NodeConfig(name="fs1", host=host, port=port, password=password),
                           plan, EslConfig())

    def tick(stats: TrafficStats, ev_rate: float) -> None:
        out(f"[{time.monotonic() - stats.started_mono:5.0f}s] offered {stats.placed:6d} "
            f"up {stats.active:4d} answered {stats.answered:6d} ended {stats.ended:6d} | "
            f"{ev_rate:6.0f} ev/s")

    stats = gen.run(on_tick=tick)
    rejected = sum(n for cause, n in stats.causes.items()
                   if cause in ("CALL_REJECTED", "UNALLOCATED_NUMBER", "NO_USER_RESPONSE"))
    # Rejected calls are never answered, so they are among the unanswered.
    return Summary(offered=stats.placed, answered=stats.answered,
                   abandoned=stats.caller_hangups, rejected=rejected,
                   failed=stats.place_errors + max(0, gen.unanswered() - rejected),
                   setup_ms=list(stats.answer_ms), dispatch_ms=_dispatch(metrics))


def _dispatch(urls: Sequence[str]) -> tuple[float | None, float | None]:
    """p50/p99 of the core's ACD dispatch (ms) over the workers' /metrics, from buckets."""
    from metrics.scrape import buckets, histogram_quantiles, samples

    found = [b for url in urls
             for b in buckets(samples(url, timeout=2) or [], "cccore_acd_dispatch_seconds")]
    p50, p99 = histogram_quantiles(found, (0.5, 0.99))
    return p50, p99
