"""The ACD end to end, issue 8 (``python -m bench.bench_acd_flow``; ``--quick`` for a smoke run).

What the call-flow bench starts (``bench.bench_callflow._Rig``: a private redis-server, the
simulator as its own process, ``cc-core run --workers 1``), with a tenant of its own: an IVR
number whose menu sends key 1 to a longest-idle-agent queue of ``LINE_AGENTS`` agents, and a
number straight into a ring-all queue of ``RINGALL_AGENTS`` agents. The agents are simulated
phones that answer after a short ring and talk a little (``loadtest.mixes.SHIFT_BEHAVIOUR``),
wrap-up 0; the callers are this process (``loadtest.simdriver``).

1. **Capacity, longest-idle**: IVR -> key 1 -> queue -> agent answers -> talk -> the agent hangs
   up. The rate is ramped in steps of ``STEP_S`` seconds of placement each (the calls of a step
   are drained before the next), and the ramp stops at the first step that is not sustained:
   call-setup p99 (``cccore_call_setup_seconds``) under 50 ms, the rate reached, and every call
   placed answered by an agent and ended. Per step, read off the worker's /metrics as bucket
   differences: setup p50/p99, queue join -> originate handed to the switch's socket
   (``cccore_acd_join_to_originate_seconds``), and the worker's CPU per call (utime+stime over
   the step minus its idle rate measured before the ramp, divided by the calls that ended).
2. **The same with the core at a real-time priority**: a second rig whose worker runs under
   ``cc-core run --realtime-priority REALTIME_PRIORITY`` and whose private redis-server under the
   same SCHED_RR priority (``cc_core.realtime`` says why), stepped through ``RT_RAMP``; the
   simulator and the callers stay at the kernel's default. Not run, with the reason printed,
   where this process may not raise priorities.
3. **Ring-all**: ``RINGALL_RATE`` calls/s for ``RINGALL_S`` s at 10 agents who all answer after
   the same ring: one wins, the others lose the race. Callers wait at most 5 s, then hang up.
   Reported: calls answered by an agent, every agent leg seen on the switch (winners bridged,
   losers and how they ended, legs still up, ``show channels`` after the run), join -> answer
   (``cccore_acd_join_to_answer_seconds``), and every agent back to Waiting/Idle in Redis with
   no reservation or waiting caller left.

The reference figures are mod_callcenter's on a real FreeSWITCH on this machine (issue 8):
they are printed beside ours, not measured here.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from acd.registration import contact_key
from bench.bench_callflow import _peak_busy, _quantiles, _Rig
from cc_core import demo, realtime
from cc_core.config import EslConfig, NodeConfig
from cc_core.errors import EnvironmentProblem
from cc_core.tenants.model import WEEKDAYS
from esl_handlers.connection import EslConnection
from esl_handlers.events import Event
from loadtest.mixes import SHIFT_BEHAVIOUR
from loadtest.simdriver import CallerScript, TrafficGenerator, TrafficPlan, TrafficStats
from metrics.scrape import histogram_quantiles, port_url, samples

IDLE_SETTLE_S = 3.0
IDLE_SPAN_S = 4.0

TENANT = "bench"
IVR_NUMBER, RINGALL_NUMBER = "4008002000", "4008002001"
# Enough agents that the ramp's top step never waits for a free one: each is held for the
# ring + talk of SHIFT_BEHAVIOUR (about 2 s) and has no wrap-up.
LINE_AGENTS = 700
RINGALL_AGENTS = 10
RAMP = (25.0, 50.0, 100.0, 150.0, 200.0, 250.0, 300.0)
# With the core at a real-time priority: from the target up.
RT_RAMP = (200.0, 250.0, 300.0)
REALTIME_PRIORITY = 10
STEP_S = 8.0
RINGALL_RATE, RINGALL_S = 50.0, 10.0
RINGALL_MAX_WAIT_S = 5
TARGET_RATE = 200.0
TARGET_SETUP_P99_MS = 50.0
TARGET_ORIGINATE_P99_MS = 5.0
# A step counts as sustained only if the callers reached this share of its rate.
REACHED_SHARE = 0.95
# mod_callcenter on a real switch on this machine (issue 8), for comparison.
REF_JOIN_OFFER = "join -> offer p50 40-80 / p99 100-160 ms"
REF_CAPACITY = "about 60 calls/s"
REF_RINGALL = "about 5 calls/s"

SETUP = "cccore_call_setup_seconds"
ORIGINATE = "cccore_acd_join_to_originate_seconds"
OFFER = "cccore_acd_join_to_offer_seconds"
ANSWER = "cccore_acd_join_to_answer_seconds"
DISPATCH = "cccore_acd_dispatch_seconds"

IVR_CALLER = CallerScript("IVR, key 1 -> queue", IVR_NUMBER, "13705711234", ("1",))
RINGALL_CALLER = CallerScript("straight to ring-all", RINGALL_NUMBER, "13512345678", ())


def _line_agents() -> list[str]:
    return [f"b{i:03d}" for i in range(1, LINE_AGENTS + 1)]


def _ringall_agents() -> list[str]:
    return [f"r{i:02d}" for i in range(1, RINGALL_AGENTS + 1)]


def _contact(agent: str) -> str:
    return f"user/{agent}@bench"


def _tenants(workdir: Path) -> Path:
    """The bench's tenant, open around the clock, as a folder of one YAML file."""
    folder = workdir / "tenants"
    folder.mkdir()
    agents = {a: {"contact": _contact(a), "status": "Available", "wrap_up_s": 0}
              for a in _line_agents() + _ringall_agents()}
    tenant = {
        "tenant": TENANT, "answer_mode": "ivr", "entry": "menu:main",
        "numbers": {IVR_NUMBER: {}, RINGALL_NUMBER: {"entry": "queue:ringall"}},
        "prompts": {"menu": "tone_stream://%(300,100,480);loops=1"},
        "hours": {"official": False, "holidays": [],
                  "weekly": {day: ["00:00-23:59"] for day in WEEKDAYS}},
        "menus": {"main": {"prompt": "menu", "options": {"1": "queue:line"},
                           "default": "queue:line"}},
        "agents": agents,
        "queues": {
            "line": {"strategy": "longest-idle-agent", "max_wait_s": 30, "overflow": "hangup",
                     "tiers": [{"agent": a} for a in _line_agents()]},
            "ringall": {"strategy": "ring-all", "max_wait_s": RINGALL_MAX_WAIT_S,
                        "overflow": "hangup",
                        "tiers": [{"agent": a} for a in _ringall_agents()]}}}
    (folder / "bench.yaml").write_text(yaml.safe_dump(tenant, allow_unicode=True),
                                       encoding="utf-8")
    return folder


def _endpoints(port: int) -> None:
    conn = EslConnection(NodeConfig(name=demo.NODE, port=port, password=demo.SIM_PASSWORD),
                         EslConfig(connect_timeout_s=3, command_timeout_s=3))
    conn.connect()
    try:
        for agent in _line_agents() + _ringall_agents():
            contact = _contact(agent)
            conn.api(f"sim_endpoint {contact} {SHIFT_BEHAVIOUR}")
            key = contact_key(contact)
            if key is not None:
                # Registered phones, as the demo's: the worker skips agents whose phone is not.
                conn.api(f"sim_register {key} {demo.PHONE_EXPIRES_S}")
    finally:
        conn.close()


# ---- the worker's metrics, as differences between two scrapes ---------------------------------
Scrape = dict[tuple[str, str], float]


def _scrape(port: int) -> Scrape:
    """Every sample of the worker's /metrics, summed over labels except ``le`` and
    ``outcome`` (histogram bounds, call outcomes)."""
    found = samples(port_url(port), timeout=5)
    if found is None:
        raise RuntimeError(f"the worker's /metrics on port {port} did not answer")
    out: Scrape = {}
    for s in found:
        key = (s.name, s.labels.get("le") or s.labels.get("outcome") or "")
        out[key] = out.get(key, 0.0) + s.value
    return out


def _buckets(after: Scrape, before: Scrape, histogram: str) -> list[tuple[str, float]]:
    name = f"{histogram}_bucket"
    return [(le, v - before.get((n, le), 0.0)) for (n, le), v in after.items() if n == name]


def _delta(after: Scrape, before: Scrape, name: str, label: str = "") -> int:
    return int(after.get((name, label), 0.0) - before.get((name, label), 0.0))


def _p99_ms(buckets: list[tuple[str, float]]) -> float | None:
    """p99 in ms, or None when nothing was observed or it lies past the last finite bound."""
    shown = _quantiles(buckets)[1]
    if shown == "-" or shown.startswith(">"):
        return None
    return histogram_quantiles(buckets, (0.99,))[0]


# ---- the callers, and the agent legs they see on the switch -----------------------------------
@dataclass
class _Leg:
    cause: str | None = None
    answered: bool = False


class _Callers(TrafficGenerator):
    """The callers, plus every agent leg the ACD rings (outbound, ``cc_member`` set)."""

    # Agent legs' answers (CHANNEL_ANSWER is the callers' too) and the bridges of the winners.
    observed = (*TrafficGenerator.observed, "CHANNEL_BRIDGE")

    def __init__(self, node: NodeConfig, plan: TrafficPlan) -> None:
        super().__init__(node, plan, EslConfig())
        self.legs: dict[str, _Leg] = {}
        self.bridged: set[str] = set()

    def _on_event(self, ev: Event) -> None:
        uuid = ev.unique_id
        if uuid and ev.get("Call-Direction") == "outbound" and ev.get("variable_cc_member"):
            leg = self.legs.setdefault(uuid, _Leg())
            if ev.name == "CHANNEL_ANSWER":
                leg.answered = True
            elif ev.name == "CHANNEL_HANGUP_COMPLETE":
                leg.cause = ev.get("Hangup-Cause") or "?"
        if ev.name == "CHANNEL_BRIDGE":
            self.bridged.update(u for u in (uuid, ev.get("Other-Leg-Unique-ID"),
                                            ev.get("Bridge-B-Unique-ID")) if u)
        super()._on_event(ev)


def _play(rig: _Rig, script: CallerScript, rate: float, seconds: float,
          on_tick: Callable[[TrafficStats, float], None] | None = None,
          ) -> tuple[_Callers, TrafficStats, float]:
    assert rig.sim is not None
    plan = TrafficPlan(rate=rate, duration=seconds, caller_hangup_ratio=0.0, scripts=(script,),
                       drain_timeout_s=RINGALL_MAX_WAIT_S + 10)
    callers = _Callers(NodeConfig(name=demo.NODE, port=rig.sim.port,
                                  password=demo.SIM_PASSWORD), plan)
    stats = callers.run(on_tick=on_tick)
    placed_at = [r.placed_mono for r in callers.calls.values() if r.placed_mono]
    span = max(placed_at, default=stats.started_mono) - stats.started_mono
    reached = (len(placed_at) - 1) / span if span > 0 else 0.0
    return callers, stats, reached


def _settle(rig: _Rig) -> None:
    """Hang-up pipelines (summary, ACD call_ended) run after a call's last event."""
    time.sleep(0.5)


# ---- 1. capacity ramp ---------------------------------------------------------------------
def _step(rig: _Rig, rate: float, seconds: float, idle_cpu_per_s: float) -> dict[str, Any]:
    load = os.getloadavg()[0]
    before = _scrape(rig.metrics_port)
    samples = [(time.monotonic(), rig.cpu())]
    t0 = samples[0][0]

    def tick(stats: TrafficStats, ev_rate: float) -> None:
        samples.append((time.monotonic(), rig.cpu()))

    _, stats, reached = _play(rig, IVR_CALLER, rate, seconds, on_tick=tick)
    _settle(rig)
    wall, cpu = time.monotonic() - t0, rig.cpu()
    samples.append((time.monotonic(), cpu))
    after = _scrape(rig.metrics_port)
    setup = _buckets(after, before, SETUP)
    orig = _buckets(after, before, ORIGINATE)
    agent = _delta(after, before, "cccore_calls_total", "answered_by_agent")
    worker_cpu = cpu["cc-core worker"] - samples[0][1]["cc-core worker"]
    per_call = 1000 * (worker_cpu - idle_cpu_per_s * wall) / max(stats.ended, 1)
    setup_p99 = _p99_ms(setup)
    setup_ok = setup_p99 is not None and setup_p99 < TARGET_SETUP_P99_MS
    reached_ok = reached >= REACHED_SHARE * rate
    all_ok = stats.placed > 0 and agent == stats.placed == stats.ended
    why = [w for w, ok in (("setup p99", setup_ok), ("rate not reached", reached_ok),
                           ("calls not answered/ended", all_ok)) if not ok]
    s50, s99 = _quantiles(setup)
    o50, o99 = _quantiles(orig)
    return {
        "rate /s": f"{rate:g}", "reached /s": f"{reached:.0f}", "placed": stats.placed,
        "answered by agent": agent, "ended": stats.ended,
        "setup p50 / p99 ms": f"{s50} / {s99}",
        "join->originate p50 / p99 ms": f"{o50} / {o99}",
        "join->orig. reply p99 ms": _quantiles(_buckets(after, before, OFFER))[1],
        # Where the join -> originate time goes: the dispatch script scans the queue's free
        # agents in Redis.
        "dispatch p50 / p99 ms": " / ".join(_quantiles(_buckets(after, before, DISPATCH))),
        "worker cpu/call ms": f"{per_call:.2f}",
        "worker busiest 1 s": _peak_busy(samples, "cc-core worker"),
        "simulator busiest 1 s": _peak_busy(samples, "simulator"),
        "redis busiest 1 s": _peak_busy(samples, "redis-server"),
        # The 2 cores are shared with other work: how busy the machine was.
        "load avg at start": f"{load:.2f}",
        "sustained?": "yes" if not why else "NO: " + ", ".join(why),
        # for the summary, not printed
        "_ok": not why, "_orig": orig, "_orig_p99": _p99_ms(orig), "_cpu": per_call,
        "_rate": rate}


def _ramp(rig: _Rig, rates: tuple[float, ...], seconds: float) -> list[dict[str, Any]]:
    # The worker's own cost with no calls (heartbeats, lease renewals, ACD timers), once its
    # start-up work is over: measured at once it took in the reconcile and the agents' first
    # registration checks, and the 25/s step came out below zero per call.
    time.sleep(IDLE_SETTLE_S)
    c0, t0 = rig.cpu()["cc-core worker"], time.monotonic()
    time.sleep(IDLE_SPAN_S)
    idle = (rig.cpu()["cc-core worker"] - c0) / (time.monotonic() - t0)
    rows = []
    for rate in rates:
        rows.append(_step(rig, rate, seconds, idle))
        if not rows[-1]["_ok"]:
            break
    return rows


# ---- 2. ring-all --------------------------------------------------------------------------
def _agents_settled(rig: _Rig, agents: list[str], timeout: float) -> dict[str, Any]:
    """Wait until every agent is Waiting/Idle with no caller and nobody waits; what is left."""
    import redis

    from acd.store import Acd
    from cc_core import keys

    client = redis.Redis.from_url(rig.redis.url)
    acd = Acd(client)
    try:
        deadline = time.monotonic() + timeout
        while True:
            views = {v.agent: v for v in acd.agents(TENANT) if v.agent in agents}
            stuck = sorted(a for a in agents if a not in views
                           or views[a].state not in ("Waiting", "Idle") or views[a].call_uuid
                           or views[a].status != "Available")
            members = acd.members(TENANT, "ringall")
            reservations = [t for t in (x.decode() for x in client.zrange(
                keys.acd_timers(TENANT), 0, -1)) if t.startswith("r|")]
            if (not stuck and not members and not reservations) or time.monotonic() > deadline:
                return {"stuck": stuck, "states": Counter(
                    f"{v.status}/{v.state}" for v in views.values()),
                        "members": len(members), "reservations": len(reservations)}
            time.sleep(0.2)
    finally:
        client.close()


def _channels_up(rig: _Rig) -> int:
    assert rig.sim is not None
    conn = EslConnection(NodeConfig(name=demo.NODE, port=rig.sim.port,
                                    password=demo.SIM_PASSWORD), EslConfig())
    conn.connect()
    try:
        return int(json.loads(conn.api("show channels count as json"))["row_count"])
    finally:
        conn.close()


def _ringall(rig: _Rig, rate: float, seconds: float) -> dict[str, Any]:
    before = _scrape(rig.metrics_port)
    callers, stats, reached = _play(rig, RINGALL_CALLER, rate, seconds)
    _settle(rig)
    after = _scrape(rig.metrics_port)
    settled = _agents_settled(rig, _ringall_agents(), timeout=5.0)
    legs = callers.legs
    winners = [u for u in legs if u in callers.bridged]
    losers = [leg for u, leg in legs.items() if u not in callers.bridged]
    return {"rate": rate, "seconds": seconds, "reached": reached, "stats": stats,
            "agent": _delta(after, before, "cccore_calls_total", "answered_by_agent"),
            "outcomes": {k[1]: _delta(after, before, *k) for k in after
                         if k[0] == "cccore_calls_total"},
            "legs": len(legs), "winners": len(winners), "losers": len(losers),
            "losers_answered": sum(1 for leg in losers if leg.answered),
            "losers_ended": sum(1 for leg in losers if leg.cause),
            "loser_causes": Counter(leg.cause or "still up" for leg in losers),
            "legs_up": sum(1 for leg in legs.values() if leg.cause is None),
            "channels_up": _channels_up(rig), "settled": settled,
            "answer": _buckets(after, before, ANSWER),
            "orig": _buckets(after, before, ORIGINATE)}


def _ringall_rows(r: dict[str, Any]) -> list[dict[str, object]]:
    s: TrafficStats = r["stats"]
    settled = r["settled"]
    a50, a99 = _quantiles(r["answer"])
    o50, o99 = _quantiles(r["orig"])
    ok_losers = r["losers_ended"] == r["losers"] and r["legs_up"] == 0 \
        and r["channels_up"] == 0
    ok_agents = not settled["stuck"] and not settled["members"] and not settled["reservations"]
    others = ", ".join(f"{k} {v}" for k, v in sorted(r["outcomes"].items()) if v)
    return [
        {"figure": "calls placed / reached rate", "value":
            f"{s.placed} at {r['reached']:.0f}/s (of {r['rate']:g}/s)", "expected": "",
         "ok?": ""},
        {"figure": "calls answered by an agent", "value": r["agent"],
         "expected": "every free agent rings for one caller at a time: the others wait "
                     f"{RINGALL_MAX_WAIT_S} s and hang up", "ok?": ""},
        {"figure": "calls by outcome", "value": others, "expected": "", "ok?": ""},
        {"figure": "calls ended (switch)", "value": f"{s.ended} of {s.placed}",
         "expected": "all", "ok?": "yes" if s.ended == s.placed else "NO"},
        {"figure": "agent legs rung / bridged (winners)", "value":
            f"{r['legs']} / {r['winners']}", "expected": "winners = answered",
         "ok?": "yes" if r["winners"] == r["agent"] else "NO"},
        {"figure": "losing legs ended / all losing legs", "value":
            f"{r['losers_ended']} / {r['losers']} (answered then lost: "
            f"{r['losers_answered']})", "expected": "all", "ok?": "yes" if ok_losers else "NO"},
        {"figure": "losing legs by cause", "value": ", ".join(
            f"{k} {v}" for k, v in r["loser_causes"].most_common()), "expected": "", "ok?": ""},
        {"figure": "legs still up / switch channels after the run", "value":
            f"{r['legs_up']} / {r['channels_up']}", "expected": "0 / 0",
         "ok?": "yes" if ok_losers else "NO"},
        {"figure": "agents (status/state in Redis) after the run", "value": ", ".join(
            f"{k} {v}" for k, v in sorted(settled["states"].items())),
         "expected": "all Available/Waiting or Idle", "ok?": "yes" if not settled["stuck"]
         else f"NO: stuck {', '.join(settled['stuck'])}"},
        {"figure": "reservations / waiting callers left", "value":
            f"{settled['reservations']} / {settled['members']}", "expected": "0 / 0",
         "ok?": "yes" if ok_agents else "NO"},
        {"figure": "join -> answer p50 / p99 ms", "value": f"{a50} / {a99}",
         "expected": "ring 300 ms + waiting for a free agent", "ok?": ""},
        {"figure": "join -> originate p50 / p99 ms", "value": f"{o50} / {o99}",
         "expected": "", "ok?": ""},
    ]


def _at(steps: list[dict[str, Any]], rate: float) -> dict[str, Any] | None:
    return next((s for s in steps if s["_rate"] == rate), None)


def _summary(steps: list[dict[str, Any]], rt_steps: list[dict[str, Any]],
             ring: dict[str, Any]) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    ref = "mod_callcenter (real switch, reference)"
    for label, run_steps, ramp in (("", steps, RAMP),
                                   (f", core at SCHED_RR {REALTIME_PRIORITY}", rt_steps,
                                    RT_RAMP)):
        if not run_steps:
            continue
        ok = [s for s in run_steps if s["_ok"]]
        best = ok[-1] if ok else None
        cap = best["_rate"] if best else 0.0
        capped = best is not None and best is run_steps[-1] and len(run_steps) == len(ramp)
        at = _at(ok, TARGET_RATE)
        o50, o99 = _quantiles(at["_orig"]) if at else ("-", "-")
        o99v = at["_orig_p99"] if at else None
        rows += [
            {"figure": "highest sustained calls/s, setup p99 < 50 ms (IVR -> queue -> agent, "
                       f"longest-idle, one worker{label})",
             "cc-core": f"{cap:g}" + (" (ramp's top step)" if capped else ""),
             "target": f">= {TARGET_RATE:g}", "met?": "yes" if cap >= TARGET_RATE else "NO",
             ref: REF_CAPACITY},
            {"figure": f"join -> originate sent p50 / p99 ms, at {TARGET_RATE:g}/s{label}",
             "cc-core": f"{o50} / {o99}", "target": f"p99 < {TARGET_ORIGINATE_P99_MS:g} ms",
             "met?": "yes" if o99v is not None and o99v < TARGET_ORIGINATE_P99_MS else "NO",
             ref: REF_JOIN_OFFER},
            {"figure": f"worker CPU per call ms, at {TARGET_RATE:g}/s{label}",
             "cc-core": f"{at['_cpu']:.2f}" if at else "-", "target": "", "met?": "", ref: ""}]
    a50, a99 = _quantiles(ring["answer"])
    return rows + [
        {"figure": f"ring-all, 10 agents, {ring['rate']:g} calls/s for the run: answered",
         "cc-core": f"{ring['agent']} in {ring['seconds']:g} s", "target": "", "met?": "",
         ref: REF_RINGALL},
        {"figure": "ring-all: join -> answer p50 / p99 ms", "cc-core": f"{a50} / {a99}",
         "target": "", "met?": "", ref: ""},
    ]


def run(quick: bool = False) -> dict[str, list[dict[str, object]]]:
    rates, step_s = ((10.0, 25.0), 3.0) if quick else (RAMP, STEP_S)
    rt_rates = (25.0,) if quick else RT_RAMP
    ring_s = 3.0 if quick else RINGALL_S
    with _Rig(tenants=_tenants, endpoints=_endpoints) as rig:
        steps = _ramp(rig, rates, step_s)
        ring = _ringall(rig, RINGALL_RATE, ring_s)
    # The same flow again with the core's two processes at a real-time priority
    # (cc_core.realtime): the kernel's run queue is most of the join's tail on these 2 cores.
    try:
        realtime.check(REALTIME_PRIORITY)
    except EnvironmentProblem as exc:
        rt_steps, rt_note = [], f"not run: {exc}"
    else:
        with _Rig(tenants=_tenants, endpoints=_endpoints,
                  realtime_priority=REALTIME_PRIORITY) as rig:
            rt_steps = _ramp(rig, rt_rates, step_s)
        rt_note = ""
    shown = [{k: v for k, v in s.items() if not k.startswith("_")} for s in steps]
    rt_shown = [{k: v for k, v in s.items() if not k.startswith("_")} for s in rt_steps] \
        or [{"result": rt_note}]
    return {
        f"capacity ramp: IVR -> key 1 -> longest-idle queue ({LINE_AGENTS} agents) -> answer "
        f"-> talk -> hang-up, one worker, {step_s:g} s per step, stop at the first step not "
        "sustained; every process at the kernel's default scheduling": shown,
        f"the same from {rt_rates[0]:g}/s, with the worker and redis-server under SCHED_RR "
        f"{REALTIME_PRIORITY} (`cc-core run --realtime-priority {REALTIME_PRIORITY}`; the "
        "simulator and the callers at the default)": rt_shown,
        f"ring-all: 10 agents answering after the same ring, {RINGALL_RATE:g} calls/s for "
        f"{ring_s:g} s, callers wait up to {RINGALL_MAX_WAIT_S} s": _ringall_rows(ring),
        "summary (targets from issue 8; mod_callcenter figures measured on a real switch on "
        "this machine, not in this run)": _summary(steps, rt_steps, ring),
    }


def main() -> int:
    from bench.__main__ import _table

    quick = os.environ.get("BENCH_QUICK") == "1" or "--quick" in sys.argv
    for title, rows in run(quick=quick).items():
        print(f"\n{title}\n{_table(rows)}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

