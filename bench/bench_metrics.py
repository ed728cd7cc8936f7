"""Cost of the instrumentation on the hot paths (``python -m bench.bench_metrics``).

The worker's event path in this process: ``EslConnection`` reader -> ``Dispatcher`` (per-call
lanes, greenlet pool) -> the call flow (``CallMachine``: decision on CHANNEL_PARK, the example
tenant's menus, hang-up pipeline with the summary stream) against a private redis-server, for
calls placed on the simulator (its own process, fast clock, so its CPU is not counted here).

Two set-ups, side by side in the same run, in alternating rounds (so drift of the machine hits
both alike):

* **metrics**: everything a worker instruments on that path, registered on one registry as
  ``cc_core.worker``/``cc_core.app`` do: ``EslMetrics`` on the connections and the dispatcher
  (events, handling time, lag, queue depth), ``CallFlowMetrics`` (calls started, setup
  latency, outcomes, calls in progress, call-quality histograms at hang-up), and a scrape of
  the registry every ``SCRAPE_S`` (README's scrape config: 5 s);
* **none**: the same objects built with no metrics at all (each hook ``None``: the code's own
  no-metrics path), the quality step left out of the hang-up pipeline.

Figures: events per second handled while the calls run, and CPU of this process (user +
system) per call; the overhead is metrics / none - 1 on the median of the rounds. Target:
under 10 %. A second table times the ESL path alone (frame, decode, dispatch to a handler
that does nothing) on captured events, with and without ``EslMetrics``: the per-event cost of
the densest instrumentation with nothing to hide it.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROUNDS = 5
CALLS = 300
IN_FLIGHT = 40
TIME_SCALE = "50"
TARGET_OVERHEAD = 0.10
SCRAPE_S = 5.0
NUMBER = "4008001234"      # the example tenant's IVR: decision, menus, hang-up


def _round(sim_port: int, redis_url: str, decider: Any, with_metrics: bool,
           calls: int) -> dict[str, float]:
    import gevent
    import redis
    from prometheus_client import CollectorRegistry, generate_latest

    from cc_core.config import EslConfig, NodeConfig
    from cc_core.flow.hangup import (
        CallQualityMetrics,
        CallSummaryStream,
        ForgetLiveRecord,
        HangupPipeline,
    )
    from cc_core.flow.machine import CallMachine
    from cc_core.flow.record import CallStore
    from esl_handlers.connection import EslConnection
    from esl_handlers.dispatch import Dispatcher
    from metrics.callflow import CallFlowMetrics
    from metrics.esl import EslMetrics

    r = redis.Redis.from_url(redis_url)
    registry = CollectorRegistry() if with_metrics else None
    esl_m = EslMetrics(registry) if with_metrics else None
    flow_m = CallFlowMetrics(registry) if with_metrics else None
    steps: list[Any] = [CallSummaryStream(r)]
    if flow_m is not None:
        steps.append(CallQualityMetrics(flow_m.observe_quality))
    dispatcher = Dispatcher(queue_size=100_000, pool_size=256, metrics=esl_m)
    store = CallStore(r, "bench")
    machine = CallMachine(
        store=store, decider=decider, hangups=HangupPipeline(steps, ForgetLiveRecord(store)),
        is_draining=lambda: False,
        swept=flow_m.swept if flow_m else None, outcomes=flow_m.outcomes if flow_m else None,
        setup=flow_m.setup if flow_m else None, started=flow_m.started if flow_m else None)
    if flow_m is not None:
        flow_m.watch_live_calls(machine.live_calls)
    ended: list[int] = []
    machine.register(dispatcher)
    dispatcher.on("CHANNEL_HANGUP_COMPLETE", lambda ev, link: ended.append(1))
    events = [0]
    node = NodeConfig(name="bench", port=sim_port, password="ClueCon")
    esl = EslConfig(connect_timeout_s=3, command_timeout_s=5)
    commands = EslConnection(node, esl, metrics=esl_m)
    driver = EslConnection(node, esl)         # the callers: not the core, never measured apart

    def on_event(ev: Any) -> None:
        events[0] += 1
        dispatcher.submit(ev, commands)

    reader = EslConnection(node, esl, on_event=on_event, metrics=esl_m)
    scrapes = [0]

    def scraper() -> None:
        while True:
            gevent.sleep(SCRAPE_S)
            generate_latest(registry)
            scrapes[0] += 1

    commands.connect()
    driver.connect()
    reader.connect()
    reader.subscribe(list(esl.events))
    scraping = gevent.spawn(scraper) if registry is not None else None
    try:
        cpu0, t0 = time.process_time(), time.monotonic()
        placed = 0
        deadline = t0 + 120
        while len(ended) < calls:
            while placed < calls and placed - len(ended) < IN_FLIGHT:
                reply = driver.api(f"sim_inbound 1330161{placed % 10_000:04d} {NUMBER}")
                if not reply.startswith("+OK"):
                    raise AssertionError(f"sim_inbound refused: {reply!r}")
                placed += 1
            if time.monotonic() > deadline:
                raise AssertionError(f"only {len(ended)} of {calls} calls ended in 120 s")
            gevent.sleep(0.005)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - t0
    finally:
        if scraping is not None:
            scraping.kill()
        for conn in (reader, driver, commands):
            conn.close()
        dispatcher.stop(timeout=10)
    return {"events": events[0], "wall_s": wall, "cpu_s": cpu, "calls": len(ended)}


def _esl_path(events: int, with_metrics: bool) -> tuple[int, float]:
    """(events, CPU s): captured plain events framed, decoded, counted and dispatched (lanes,
    greenlet pool) to a handler that does nothing, as fast as they go: the part of the hot
    path where the metrics are densest (a counter, the lag and handling histograms, the queue
    depth, per event)."""
    from prometheus_client import CollectorRegistry

    from bench.captures import repeated_plain_events
    from cc_core.config import EslConfig
    from esl_handlers.dispatch import Dispatcher
    from esl_handlers.events import Event
    from esl_handlers.framing import FrameParser
    from metrics.esl import EslMetrics

    stream, expected = repeated_plain_events(events, frozenset([*EslConfig().events,
                                                                "HEARTBEAT"]))
    metrics = EslMetrics(CollectorRegistry()) if with_metrics else None
    dispatcher = Dispatcher(queue_size=1_000_000, pool_size=64, metrics=metrics)
    handled = [0]

    def count(ev: Any, link: Any) -> None:
        handled[0] += 1

    for name in EslConfig().events:
        dispatcher.on(name, count)

    class Link:
        class node:  # noqa: N801 - read as link.node.name, like NodeLink
            name = "bench"

    link = Link()
    cpu0 = time.process_time()
    parser = FrameParser()
    n = 0
    for frame in parser.feed(stream):
        if frame.content_type == "text/event-plain":
            ev = Event.from_frame(frame)
            ev.received_at = time.monotonic()
            dispatcher.submit(ev, link)
            n += 1
    dispatcher.stop(timeout=60)
    cpu = time.process_time() - cpu0
    if n != expected:
        raise AssertionError(f"expected {expected} events, dispatched {n}")
    return n, cpu


def run(quick: bool = False) -> dict[str, list[dict[str, object]]]:
    import gevent  # noqa: F401 - the connections are gevent's

    from cc_core.demo import _demo_tenants
    from cc_core.flow.decide import Decider
    from cc_core.redis_server import PrivateRedis
    from cc_core.routing.region import RegionDirectory
    from cc_core.tenants.loader import load_path
    from cc_core.tenants.static import StaticTenants
    from fssim.process import SimProcess

    rounds, calls = (2, 80) if quick else (ROUNDS, CALLS)
    loaded = load_path(_demo_tenants(Path(tempfile.mkdtemp(prefix="bench-tenants-"))))
    decider = Decider(StaticTenants(loaded.tenants.values(), loaded.global_config),
                      RegionDirectory())
    results: dict[bool, list[dict[str, float]]] = {True: [], False: []}
    sim = SimProcess.start("--time-scale", TIME_SCALE, "--heartbeat-interval", "0",
                           "--max-sessions", "5000")
    try:
        with PrivateRedis() as server:
            _round(sim.port, server.url, decider, True, min(calls, 40))      # warm-up
            for i in range(rounds):
                # Alternate which goes first: a slow start or a warm cache favours neither.
                order = (True, False) if i % 2 == 0 else (False, True)
                for with_metrics in order:
                    results[with_metrics].append(
                        _round(sim.port, server.url, decider, with_metrics, calls))
    finally:
        sim.stop()

    def med(with_metrics: bool, fn: Any) -> float:
        return statistics.median(fn(x) for x in results[with_metrics])

    rows: list[dict[str, object]] = []
    figures = {}
    for with_metrics in (False, True):
        ev_s = med(with_metrics, lambda x: x["events"] / x["wall_s"])
        cpu_call = med(with_metrics, lambda x: x["cpu_s"] / x["calls"] * 1000)
        cpu_event = med(with_metrics, lambda x: x["cpu_s"] / x["events"] * 1e6)
        figures[with_metrics] = (ev_s, cpu_call, cpu_event)
        rows.append({"set-up": "metrics" if with_metrics else "none",
                     "rounds": len(results[with_metrics]),
                     "calls/round": calls,
                     "events/round": int(med(with_metrics, lambda x: x["events"])),
                     "events/s": f"{ev_s:,.0f}",
                     "CPU ms/call": f"{cpu_call:.2f}",
                     "CPU us/event": f"{cpu_event:.1f}"})
    overhead = figures[True][1] / figures[False][1] - 1
    per_event = figures[True][2] / figures[False][2] - 1
    rows.append({"set-up": "overhead", "CPU ms/call": f"{overhead:+.1%}",
                 "CPU us/event": f"{per_event:+.1%}",
                 "events/s": f"{figures[True][0] / figures[False][0] - 1:+.1%}",
                 "rounds": f"target < {TARGET_OVERHEAD:.0%}: "
                           + ("met" if overhead < TARGET_OVERHEAD else "NOT met")})

    path: dict[bool, list[float]] = {True: [], False: []}
    n_events = 20_000 if quick else 100_000
    for i in range(rounds):
        for with_metrics in ((True, False) if i % 2 == 0 else (False, True)):
            n, cpu = _esl_path(n_events, with_metrics)
            path[with_metrics].append(n / cpu)
    esl_rows: list[dict[str, object]] = []
    for with_metrics in (False, True):
        rate = statistics.median(path[with_metrics])
        esl_rows.append({"set-up": "metrics" if with_metrics else "none",
                         "rounds": rounds, "events/round": n_events,
                         "events/s (CPU)": f"{rate:,.0f}",
                         "CPU us/event": f"{1e6 / rate:.2f}"})
    cost = statistics.median(path[False]) / statistics.median(path[True]) - 1
    esl_rows.append({"set-up": "overhead", "CPU us/event": f"{cost:+.1%}",
                     "rounds": "(no target: per-event cost with no handler work to hide it)"})
    return {f"Calls through the call flow ({NUMBER}, simulator at x{TIME_SCALE})": rows,
            "ESL path alone: frame, decode, dispatch to a no-op handler, as fast as it goes":
            esl_rows}


NOTES = (
    "events/s: events the core handled per second of wall time while the calls ran (bounded "
    "by the simulator's pace, so close in both); CPU per call/event is the cost that counts "
    "(it includes the sim_inbound command that places each call, alike in both).",
    "ESL path alone: events per CPU second of this process; its overhead is the most the "
    "metrics can cost per event, before any handler does real work.",
)


def main() -> int:
    from bench.__main__ import _table

    for caption, rows in run(quick="--quick" in sys.argv).items():
        print(f"{caption}\n{_table(rows)}\n")
    for note in NOTES:
        print(note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
