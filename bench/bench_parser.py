"""ESL parsing throughput: greenswitch 0.0.19's own reader vs ``esl_handlers``, under three
access profiles (figures only).

Input: the event frames of the real capture ``esl_plain.raw`` (530 events, from after the
auth/subscribe replies to before ``+OK bye``) that a worker receives: those of the event
list it subscribes to (``EslConfig().events`` + HEARTBEAT: 185 of the 530), repeated to at
least 100,000 events. (Subscribed to ALL, most events would reach no handler and be read
for their name only, which flatters the lazy reader.)

How fast a reader is depends on what is read: greenswitch decodes every header of every
event up front, ``esl_handlers`` decodes a value when it is first read. So both run three
profiles, each reading on every event:

* ``dispatcher``: the headers the dispatcher itself reads (routing, lanes, lag metric);
* ``call flow``: the headers the product reads with its call flow registered: the
  dispatcher's plus the handlers' (``cc_core/flow/machine.py``);
* ``every header``: every header, decoded (``items()``; greenswitch's ``headers`` dict);

and, as an upper bound rather than a profile of the product, the call flow's names read on
every event (what handlers reading all of them everywhere would cost).

The first two sets are measured, not listed by hand: ``measure_profiles`` records every
header name read from ``PlainEvent`` while events go through a real ``Dispatcher`` with the
product's ``CallMachine`` registered (the example tenants, a private Redis): first the
captures' events (esl_plain.raw and every scenario's wire.raw, a stub link answering ``+OK``), then
calls the flow drives itself on an in-process simulator (so the greeting's own events, which
no capture holds, are read as well), the events arriving through the product's
``EslConnection`` subscribed to the configured event list. Each profile reads the union of
the names seen, on every event (a little more than the product does).

* greenswitch: ``ESLProtocol.receive_events`` reading that stream from an ``io.BytesIO`` as
  it reads its socket file: ``readline`` per header line, ``ESLEvent`` for the outer block,
  then ``handle_event`` reads the body and runs ``ESLEvent.parse_data`` on it. Only its queue
  is replaced (by a sink that reads the profile's headers), so all of its framing and
  parsing runs.
* ours: ``FrameParser.feed`` on 64 KiB reads, ``Event.from_frame`` for each frame, reading
  the profile's headers (and the separated ``body_bytes``) of every event.

Run: ``python -m bench.bench_parser`` (``--quick`` for a smoke run). Best of 3 runs each.
"""

from __future__ import annotations

import argparse
import functools
import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.captures import captures_dir, repeated_plain_events
from esl_handlers.events import Event
from esl_handlers.framing import FrameParser

TARGET_EVENTS = 100_000
TARGET_RATIO = 5.0
TARGET_RATE = 50_000
READ_SIZE = 65536
ALL = None   # the "every header" profile
# A profile: for each Event-Name, the other headers read on events of that name ("" for
# names not listed); None reads every header.
Profile = dict[str, tuple[str, ...]]
NOTES: list[str] = []   # printed under the table: the measured header sets


class _NullSocket:
    """Stands in for greenswitch's socket: it only ever calls close() on it here."""

    def close(self) -> None:
        return None


class _Sink:
    """Replaces greenswitch's event queue: reads the profile's headers of each event."""

    def __init__(self, profile: Profile | None, keep: bool) -> None:
        self.count = 0
        self.profile = profile
        self.keys: list[tuple[Any, ...]] | None = [] if keep else None

    def put(self, event: Any) -> None:
        self.count += 1
        h = event.headers
        profile = self.profile
        if profile is None:
            key = tuple(h.items())
        else:
            name = h.get("Event-Name")
            names = profile.get(name) or profile[""]
            key = (name, *[h.get(n) for n in names])
        if self.keys is not None:
            self.keys.append(key)


def run_greenswitch(stream: bytes, profile: Profile | None, keep: bool = False) -> _Sink:
    from greenswitch.esl import ESLProtocol

    proto = ESLProtocol()
    proto.sock_file = io.BytesIO(stream)
    proto.sock = _NullSocket()
    proto.connected = True          # so EOF ends receive_events (it sets _run False)
    sink = _Sink(profile, keep)
    proto._esl_event_queue = sink   # handle_event() puts each parsed event here
    proto.receive_events()
    return sink


def run_ours(stream: bytes, profile: Profile | None,
             keep: bool = False) -> tuple[int, list[tuple[Any, ...]] | None]:
    parser = FrameParser()
    from_frame = Event.from_frame
    count = 0
    body_bytes = 0
    keys: list[tuple[Any, ...]] | None = [] if keep else None
    for start in range(0, len(stream), READ_SIZE):
        for frame in parser.feed(stream[start:start + READ_SIZE]):
            ev = from_frame(frame)
            key: tuple[Any, ...]
            if profile is None:
                key = tuple(ev.items())
            else:
                get = ev.get
                name = get("Event-Name")
                names = profile.get(name) or profile[""]   # type: ignore[arg-type]
                key = (name, *[get(n) for n in names])
            body_bytes += len(ev.body_bytes)
            count += 1
            if keys is not None:
                keys.append(key)
    if not parser.at_frame_boundary():
        raise AssertionError("the parser left bytes over: the stream was not fully framed")
    return count, keys


# ---- which headers the product reads (measured) -------------------------------------------
class _StubLink:
    class node:  # noqa: N801 - read as link.node.name, like NodeLink
        name = "bench"

    def api(self, cmd: str, timeout: float | None = None) -> str:
        return "+OK\n"

    def sendmsg(self, uuid: str, headers: dict[str, str], timeout: float | None = None) -> str:
        return "+OK"


def _capture_streams() -> list[bytes]:
    base = captures_dir() / "freeswitch-1.10.12"
    streams = [(base / "esl_plain.raw").read_bytes()]
    streams += [p.read_bytes() for p in sorted((base / "scenarios").glob("*/wire.raw"))]
    return streams


SIM_CALLS = 20


def _simulated_calls(dispatcher: Any, ended: list[int], flow: bool,
                     timeout: float = 30.0) -> None:
    """SIM_CALLS calls to a 400 number on an in-process simulator (fast clock), their
    events delivered by the product's EslConnection to ``dispatcher``; the call flow (when
    registered) ends them, else the caller hangs up. Returns once every call has ended
    (``ended`` grows on each CHANNEL_HANGUP_COMPLETE) or raises at the deadline."""
    import gevent

    from cc_core.config import EslConfig, NodeConfig
    from esl_handlers.connection import EslConnection
    from fssim import engine
    from fssim.server import EslServer
    from fssim.switch import Switch

    switch = Switch(hostname="bench", time_scale=100.0, heartbeat_interval=0.0)
    engine.install(switch)
    switch.start()
    server = EslServer(switch, "127.0.0.1", 0)
    _, port = server.start()
    node = NodeConfig(name="bench", port=port, password="ClueCon")
    esl = EslConfig(connect_timeout_s=3, command_timeout_s=3)
    commands_conn = EslConnection(node, esl)
    events_conn = EslConnection(node, esl,
                                on_event=lambda ev: dispatcher.submit(ev, commands_conn))
    try:
        commands_conn.connect()
        events_conn.connect()
        events_conn.subscribe(list(esl.events) + ["HEARTBEAT"])
        before = len(ended)
        for i in range(SIM_CALLS):
            # Shanghai mobiles: the example tenant's menus, not a regional queue.
            reply = commands_conn.api(f"sim_inbound 1330161{i:04d} 4008001234")
            if not reply.startswith("+OK"):
                raise AssertionError(f"sim_inbound refused: {reply!r}")
            if not flow:
                commands_conn.api(f"sim_hangup {reply.split()[1]}")
        deadline = time.monotonic() + timeout
        while len(ended) - before < SIM_CALLS:
            if time.monotonic() > deadline:
                raise AssertionError(f"only {len(ended) - before} of {SIM_CALLS} simulated "
                                     "calls ended: the call flow did not run")
            gevent.sleep(0.01)
    finally:
        events_conn.close()
        commands_conn.close()
        server.stop()
        switch.stop()


def measure_profiles() -> tuple[Profile, Profile]:
    """(what the dispatcher reads, what dispatcher + call flow read), per Event-Name, as
    recorded while events go through a real Dispatcher, first with the call flow's event
    names registered to handlers that do nothing, then with the call flow itself."""
    import redis
    from prometheus_client import CollectorRegistry

    from cc_core.flow.decide import Decider
    from cc_core.flow.machine import CallMachine
    from cc_core.flow.record import CallStore
    from cc_core.redis_server import PrivateRedis
    from cc_core.routing.region import RegionDirectory
    from cc_core.tenants.loader import load_path
    from cc_core.tenants.static import StaticTenants
    from esl_handlers import events
    from esl_handlers.dispatch import Dispatcher
    from metrics.esl import EslMetrics

    read: dict[str, set[str]] = {}
    original = events.PlainEvent.wire

    def recording_wire(self: Any, name: str) -> bytes | None:
        event_name = (original(self, "Event-Name") or b"").decode()
        read.setdefault(event_name, set()).add(name)
        return original(self, name)

    import tempfile

    from cc_core.demo import _demo_tenants

    # The demo's copy of the example tenants: open around the clock, so the menus run
    # whatever the hour of the bench.
    loaded = load_path(_demo_tenants(Path(tempfile.mkdtemp(prefix="bench-tenants-"))))
    decider = Decider(StaticTenants(loaded.tenants.values(), loaded.global_config),
                      RegionDirectory())

    def run(with_flow: bool, redis_url: str) -> Profile:
        read.clear()
        dispatcher = Dispatcher(queue_size=100_000, pool_size=4,
                                metrics=EslMetrics(CollectorRegistry()))
        flow = CallMachine(store=CallStore(redis.Redis.from_url(redis_url), "bench"),
                           decider=decider, is_draining=lambda: False)
        ended: list[int] = []
        if with_flow:
            flow.register(dispatcher)
        else:
            for name in ("CHANNEL_PARK", "CHANNEL_EXECUTE_COMPLETE", "CHANNEL_HANGUP_COMPLETE"):
                dispatcher.on(name, lambda ev, link: None)
        dispatcher.on("CHANNEL_HANGUP_COMPLETE", lambda ev, link: ended.append(1))
        link = _StubLink()
        for stream in _capture_streams():
            parser = FrameParser()
            for frame in parser.feed(stream):
                if frame.content_type == "text/event-plain":
                    dispatcher.submit(Event.from_frame(frame), link)
        _simulated_calls(dispatcher, ended, with_flow)
        dispatcher.stop(timeout=30)
        profile = {name: tuple(sorted(names - {"Event-Name"})) for name, names in read.items()}
        # names never seen read what every event reads (the dispatcher's routing)
        profile[""] = tuple(sorted(set.intersection(*read.values()) - {"Event-Name"}))
        return profile

    events.PlainEvent.wire = recording_wire  # type: ignore[method-assign]
    try:
        with PrivateRedis() as server:
            return run(False, server.url), run(True, server.url)
    finally:
        events.PlainEvent.wire = original  # type: ignore[method-assign]


def _gs_count(stream: bytes, profile: Profile | None) -> int:
    return run_greenswitch(stream, profile).count


def _our_count(stream: bytes, profile: Profile | None) -> int:
    return run_ours(stream, profile)[0]


def _best_of(runs: int, fn: Callable[[], int]) -> tuple[float, int]:
    best = float("inf")
    count = 0
    for _ in range(runs):
        t0 = time.perf_counter()
        count = fn()
        best = min(best, time.perf_counter() - t0)
    return best, count


def _comparable(keys: list[tuple[Any, ...]] | None) -> list[dict[str, str]]:
    """Every header of each event, without the frame's own Content-Length/Content-Type
    (greenswitch merges the outer frame headers into the event's; a body's inner
    Content-Length then differs)."""
    return [{k: v for k, v in key if k not in ("Content-Length", "Content-Type")}
            for key in keys or []]


def _agree(theirs: list[dict[str, str]], ours: list[dict[str, str]]) -> bool:
    """Same events, and every value of ours equal in greenswitch's, except values holding a
    CR/LF (SDP bodies): greenswitch decodes the whole block before splitting its lines and
    cuts those (the module doc of esl_handlers/events.py)."""
    return len(theirs) == len(ours) and all(
        t.get(k) == v for t, o in zip(theirs, ours, strict=True) for k, v in o.items()
        if "\n" not in v and "\r" not in v)


def run(quick: bool = False) -> list[dict[str, object]]:
    """Measure both parsers under each profile; rows for the table printed by ``python -m bench``."""
    min_events = 10_000 if quick else TARGET_EVENTS
    runs = 1 if quick else 3
    from cc_core.config import EslConfig

    subscribed = frozenset([*EslConfig().events, "HEARTBEAT"])
    stream, expected = repeated_plain_events(min_events, subscribed)
    dispatcher_profile, flow_profile = measure_profiles()
    every_name = tuple(sorted({n for ns in flow_profile.values() for n in ns}))
    profiles: list[tuple[str, Profile | None, bool]] = [
        ("dispatcher", dispatcher_profile, False),
        ("call flow", flow_profile, True),     # what the product reads: its target counts
        ("every header (items)", ALL, False),
        # not a profile of the product: the call flow's names read on EVERY event, an upper
        # bound for handlers that would read them all everywhere
        ("upper bound: call flow names on every event", {"": every_name}, False),
    ]
    one_copy, _ = repeated_plain_events(1, subscribed)
    mib = len(stream) / (1024 * 1024)
    rows: list[dict[str, object]] = []
    for label, names, product in profiles:
        if names is not None:
            union = {"Event-Name", *(n for ns in names.values() for n in ns)}
            per_event = run_ours(one_copy, names, keep=True)[1] or []
            label += (f" ({len(union)} names, "
                      f"{sum(len(k) for k in per_event) / len(per_event):.1f} read/event)")
        # Not timed: both must read the same values (on this capture no value holds %0A, so
        # greenswitch's whole-block decoding reads them right; a repeated header is compared
        # by its first value, which is what both return).
        theirs = run_greenswitch(one_copy, names, keep=True).keys
        _, ours = run_ours(one_copy, names, keep=True)
        if names is not None and theirs != ours:
            raise AssertionError(f"greenswitch and esl_handlers disagree ({label})")
        if names is None and not _agree(_comparable(theirs), _comparable(ours)):
            raise AssertionError("greenswitch and esl_handlers disagree (every header)")
        gs_time, gs_count = _best_of(runs, functools.partial(_gs_count, stream, names))
        our_time, our_count = _best_of(runs, functools.partial(_our_count, stream, names))
        if gs_count != expected or our_count != expected:
            raise AssertionError(f"expected {expected} events, greenswitch saw {gs_count}, "
                                 f"esl_handlers saw {our_count}")
        gs_rate, our_rate = gs_count / gs_time, our_count / our_time
        ratio = our_rate / gs_rate
        if product:
            target = (f">= {TARGET_RATIO:.0f}x and >= {TARGET_RATE:,} ev/s: "
                      + ("met" if ratio >= TARGET_RATIO and our_rate >= TARGET_RATE
                         else "NOT met"))
        else:
            target = ">= 1.0x (never slower): " + ("met" if ratio >= 1.0 else "NOT met")
        rows.append({"profile": label, "events": our_count, "MiB": f"{mib:.0f}",
                     "greenswitch ev/s": f"{gs_rate:,.0f}", "esl_handlers ev/s": f"{our_rate:,.0f}",
                     "ratio": f"{ratio:.1f}x", "target": target})
    def describe(profile: Profile) -> str:
        every = ["Event-Name", *profile[""]]
        extra = {name: [n for n in ns if n not in every] for name, ns in profile.items() if name}
        return (", ".join(every) + " on every event; then " + "; ".join(
            f"{name}: {', '.join(ns)}" for name, ns in sorted(extra.items()) if ns))

    NOTES[:] = ["measured reads, dispatcher: " + describe(dispatcher_profile),
                "measured reads, call flow: " + describe(flow_profile),
                "the call flow profile is what the product reads: its target is the headline"]
    return rows


def _print(rows: list[dict[str, object]]) -> None:
    cols = list(rows[0])
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in cols]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
    for r in rows:
        print("  ".join(str(r[c]).ljust(w) for c, w in zip(cols, widths, strict=True)))
    for note in NOTES:
        print(note)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.bench_parser", description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="10,000 events, one run")
    args = ap.parse_args(argv)
    _print(run(quick=args.quick))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
