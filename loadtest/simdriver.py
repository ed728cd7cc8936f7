"""Traffic generator that plays the callers' side against a FreeSWITCH simulator.

It stands where SIPp stands on a real switch: it places inbound calls on 400 numbers with
the simulator's ``sim_inbound`` control, hangs some callers up mid-greeting with
``sim_hangup``, and watches the switch's own events to measure what callers experience
(answered or not, how fast, who hung up). It talks ESL through the product's client, so it
works against any node that understands the ``sim_*`` controls.
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import gevent
from gevent.pool import Pool

from cc_core.config import EslConfig, NodeConfig
from cc_core.errors import EslError
from esl_handlers.connection import EslConnection
from esl_handlers.events import Event

log = logging.getLogger(__name__)

MAX_IN_FLIGHT_PLACEMENTS = 200


# What the traffic generator plays callers from: parks, answers, the IVR's prompts and the
# voicemail beep (CHANNEL_EXECUTE), hang-ups; bgapi results and the watchdog's pulse.
OBSERVED_EVENTS = ["CHANNEL_PARK", "CHANNEL_ANSWER", "CHANNEL_EXECUTE", "CHANNEL_HANGUP_COMPLETE",
                   "BACKGROUND_JOB", "HEARTBEAT"]


@dataclass(frozen=True)
class CallerScript:
    """One kind of caller: who calls which number and which keys they press, one entry per
    menu prompt (a key string such as "1" or "1234#"; nothing left: they stay silent)."""

    name: str
    dnis: str
    caller: str
    keys: tuple[str, ...] = ()
    weight: float = 1.0


@dataclass(frozen=True)
class TrafficPlan:
    rate: float = 20.0                 # new calls per second
    duration: float = 60.0             # seconds of call placement
    caller_hangup_ratio: float = 0.3   # share of callers hanging up during the greeting
    greeting_s: float = 2.0            # how long the product's greeting lasts
    answer_timeout_s: float = 5.0      # a call not answered by then counts as failed
    drain_timeout_s: float = 15.0      # after placement stops, wait this long for calls to end
    seed: int = 400
    numbers: tuple[str, ...] = ("4008001234", "4008005678", "4006660000")
    scripts: tuple[CallerScript, ...] = ()   # a mix of callers; empty: numbers in turn
    key_delay_s: float = 0.15                # a caller keys this long after a prompt starts
    message_s: float = 2.0                   # how long a voicemail message lasts
    max_active: int = 0                      # calls up at once at most (0: no limit)


@dataclass
class CallRecord:
    uuid: str
    placed_mono: float = 0.0
    park_us: int | None = None
    answer_us: int | None = None
    ended: bool = False
    cause: str | None = None
    hangup_by_caller: bool = False
    wants_caller_hangup: bool = False
    script: str = ""
    keys: list[str] = field(default_factory=list)


@dataclass
class TrafficStats:
    placed: int = 0
    place_errors: int = 0
    answered: int = 0
    ended: int = 0
    caller_hangups: int = 0
    events: int = 0
    causes: Counter[str] = field(default_factory=Counter)
    answer_ms: list[float] = field(default_factory=list)
    started_mono: float = field(default_factory=time.monotonic)

    @property
    def active(self) -> int:
        return self.placed - self.ended

    @property
    def system_hangups(self) -> int:
        return self.ended - self.caller_hangups


def percentile(values: list[float], pct: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[k]


class TrafficGenerator:
    # The events subscribed to; a subclass that watches more adds to it.
    observed: tuple[str, ...] = tuple(OBSERVED_EVENTS)

    def __init__(self, node: NodeConfig, plan: TrafficPlan, esl: EslConfig | None = None) -> None:
        self.node = node
        self.plan = plan
        self.esl = esl or EslConfig()
        self.stats = TrafficStats()
        self.calls: dict[str, CallRecord] = {}
        # Two streams: what each caller does is drawn in placement order alone, so a seed
        # always plays the same callers whatever the switch's timing; delays drawn when events
        # arrive come from their own stream.
        self.plan_rng = random.Random(plan.seed)
        self.rng = random.Random(plan.seed + 1)
        self._first_round: list[CallerScript] | None = None
        self.conn: EslConnection | None = None
        self._placing = 0      # placements sent, not yet answered by the switch

    # -- events from the switch ------------------------------------------------------------
    def _record(self, uuid: str) -> CallRecord:
        rec = self.calls.get(uuid)
        if rec is None:
            rec = self.calls[uuid] = CallRecord(uuid)
        return rec

    def _on_event(self, ev: Event) -> None:
        self.stats.events += 1
        uuid = ev.unique_id
        if not uuid or ev.get("Call-Direction") != "inbound":
            return
        name = ev.name
        if name == "CHANNEL_PARK":
            rec = self._record(uuid)
            rec.park_us = rec.park_us or ev.timestamp_us
        elif name == "CHANNEL_ANSWER":
            rec = self._record(uuid)
            if rec.answer_us is None:
                rec.answer_us = ev.timestamp_us
                self.stats.answered += 1
                if rec.park_us and rec.answer_us:
                    self.stats.answer_ms.append((rec.answer_us - rec.park_us) / 1000)
                if rec.wants_caller_hangup:
                    delay = self.plan.greeting_s * self.rng.uniform(0.2, 0.8)
                    gevent.spawn_later(delay, self._caller_hangs_up, rec)
        elif name == "CHANNEL_EXECUTE" and ev.get("Application") == "play_and_get_digits":
            rec = self._record(uuid)
            if rec.keys:
                gevent.spawn_later(self.plan.key_delay_s, self._press, rec, rec.keys.pop(0))
        elif name == "CHANNEL_EXECUTE" and ev.get("Application") == "record":
            # A caller at the voicemail beep leaves a short message, then hangs up.
            gevent.spawn_later(self.plan.message_s, self._caller_hangs_up, self._record(uuid))
        elif name == "CHANNEL_HANGUP_COMPLETE":
            rec = self._record(uuid)
            if not rec.ended:
                rec.ended = True
                rec.cause = ev.get("Hangup-Cause")
                self.stats.ended += 1
                self.stats.causes[rec.cause or "?"] += 1
                # Who ended the call, as the switch recorded it: sofia's recv_bye (recv_cancel
                # before an answer) when the caller did, send_* when we did (the captures,
                # e.g. ivr_then_agent). Our own sim_hangup bookkeeping could lose the race
                # with this event, and a sim_hangup can cross the call's own end.
                disposition = ev.get("variable_sip_hangup_disposition")
                if disposition in ("recv_bye", "recv_cancel"):
                    rec.hangup_by_caller = True
                    self.stats.caller_hangups += 1

    def _press(self, rec: CallRecord, keys: str) -> None:
        self._caller_does(rec, f"sim_dtmf {rec.uuid} {keys}")

    def _caller_hangs_up(self, rec: CallRecord) -> None:
        # The reply is not looked at: HANGUP_COMPLETE says who ended the call.
        self._caller_does(rec, f"sim_hangup {rec.uuid} NORMAL_CLEARING")

    def _caller_does(self, rec: CallRecord, control: str) -> None:
        """A caller's action on a call still up (a sim_* control of the simulator)."""
        if rec.ended or self.conn is None:
            return
        try:
            self.conn.api(control)
        except EslError as exc:
            log.warning("%s failed: %s", control.split()[0], exc, extra={"call_uuid": rec.uuid})

    # -- placing calls -----------------------------------------------------------------------
    def _next_script(self) -> CallerScript:
        """Every script once first (in a seeded order), so even a short run takes every branch
        of the mix; then by weight."""
        if self._first_round is None:
            self._first_round = list(self.plan.scripts)
            self.plan_rng.shuffle(self._first_round)
        if self._first_round:
            return self._first_round.pop()
        return self.plan_rng.choices(self.plan.scripts,
                                     weights=[sc.weight for sc in self.plan.scripts])[0]

    def _place_one(self, seq: int) -> None:
        assert self.conn is not None
        script: CallerScript | None = None
        if self.plan.scripts:
            script = self._next_script()
            caller, dnis = script.caller, script.dnis
        else:
            caller = f"1{3 + seq % 7}{seq % 100_000_000:09d}"  # mobile-looking 11-digit CLI
            dnis = self.plan.numbers[seq % len(self.plan.numbers)]
        wants_hangup = self.plan_rng.random() < self.plan.caller_hangup_ratio
        try:
            reply = self.conn.api(f"sim_inbound {caller} {dnis}")
        except EslError as exc:
            self.stats.place_errors += 1
            log.warning("sim_inbound failed: %s", exc)
            return
        if not reply.startswith("+OK "):
            self.stats.place_errors += 1
            log.warning("sim_inbound refused: %s", reply.strip())
            return
        rec = self._record(reply[4:].strip())
        rec.placed_mono = time.monotonic()
        rec.wants_caller_hangup = wants_hangup
        if script is not None:
            rec.script = script.name
            rec.keys = list(script.keys)
        self.stats.placed += 1

    def _placing_one(self, seq: int) -> None:
        try:
            self._place_one(seq)
        finally:
            self._placing -= 1

    def run(self, on_tick: Callable[[TrafficStats, float], None] | None = None,
            tick_s: float = 1.0) -> TrafficStats:
        self.conn = EslConnection(self.node, self.esl, on_event=self._on_event)
        self.conn.connect()
        self.conn.subscribe(list(self.observed))
        pool = Pool(MAX_IN_FLIGHT_PLACEMENTS)
        ticker = gevent.spawn(self._tick, on_tick, tick_s) if on_tick else None
        try:
            self.stats.started_mono = start = time.monotonic()
            total = int(self.plan.rate * self.plan.duration)
            for seq in range(total):
                # Scheduled against the start time so a slow reply does not lower the rate.
                gevent.sleep(max(0.0, start + seq / self.plan.rate - time.monotonic()))
                # At the concurrency bound (calls up, and placements not yet answered by the
                # switch) the next call waits.
                while (self.plan.max_active
                       and self.stats.active + self._placing >= self.plan.max_active):
                    gevent.sleep(0.005)
                self._placing += 1
                pool.spawn(self._placing_one, seq)
            pool.join(timeout=self.esl.command_timeout_s * 2)
            deadline = time.monotonic() + self.plan.greeting_s + self.plan.drain_timeout_s
            while self.stats.active > 0 and time.monotonic() < deadline:
                gevent.sleep(0.1)
        finally:
            if ticker is not None:
                ticker.kill()
            self.conn.close()
        return self.stats

    def _tick(self, on_tick: Callable[[TrafficStats, float], None], tick_s: float) -> None:
        last_events, last_t = 0, time.monotonic()
        while True:
            gevent.sleep(tick_s)
            now = time.monotonic()
            rate = (self.stats.events - last_events) / max(now - last_t, 1e-6)
            last_events, last_t = self.stats.events, now
            on_tick(self.stats, rate)

    def unanswered(self) -> int:
        """Calls placed that never reached CHANNEL_ANSWER (excluding caller hang-ups before it)."""
        return sum(1 for r in self.calls.values()
                   if r.placed_mono and r.answer_us is None and not r.hangup_by_caller)
