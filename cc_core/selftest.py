"""``cc-core selftest``: the test call (拨测) a provider places right after activating a number.

It originates ``loopback/<number>/default &park()`` on a node: mod_loopback makes a pair, the
``-b`` leg runs the dialplan and parks on the 400 number like any caller (the core takes it),
the ``-a`` leg stands for the caller's phone. At each menu prompt the next key of ``--dtmf`` is
sent out of the ``-a`` leg (it arrives on ``-b``, the loopback_selftest capture). Each step is
printed with its time; the call is ended once it reaches its destination (a queue is not left
ringing agents), and the exit code is 0 only when the flow's own record of the call (the
tenant's finished-calls stream) shows the destination the tenant's configuration predicts for
that number, caller and keys.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import gevent
import msgpack
from gevent.event import Event as GEvent

from cc_core import keys
from cc_core.flow.decide import Decider, Verdict
from cc_core.tenants.model import Destination, DestinationKind, Tenant
from esl_handlers import commands
from esl_handlers.config import EslConfig, NodeConfig
from esl_handlers.connection import EslConnection
from esl_handlers.errors import EslError
from esl_handlers.events import Event

EVENTS = ["CHANNEL_CREATE", "CHANNEL_PARK", "CHANNEL_ANSWER", "CHANNEL_PROGRESS_MEDIA",
          "CHANNEL_EXECUTE", "CHANNEL_HANGUP_COMPLETE", "BACKGROUND_JOB"]
# What ends a walk: these destinations are where the caller arrives.
_FINAL = {DestinationKind.QUEUE, DestinationKind.TRANSFER, DestinationKind.VOICEMAIL,
          DestinationKind.ANNOUNCE, DestinationKind.HANGUP}
# The application that shows a destination was reached, on the parked leg.
_REACHED_BY = {"bridge": (DestinationKind.QUEUE, DestinationKind.TRANSFER),
               "record": (DestinationKind.VOICEMAIL,)}
KEY_DELAY_S = 0.3


def expected_destination(tenant: Tenant, start: Destination, digits: list[str]) -> Destination:
    """Where the tenant's menus take a caller who keys ``digits``, one per prompt."""
    dest = start
    stack: list[str] = []
    keys_left = list(digits)
    for _ in range(64 + 4 * len(digits)):    # a menu that loops to itself ends the walk
        if dest.kind in _FINAL:
            return dest
        if dest.kind is DestinationKind.MENU:
            if not stack or stack[-1] != dest.target:
                stack.append(dest.target)
            menu = tenant.menus[dest.target]
            if not keys_left:
                return menu.default
            key = keys_left.pop(0)
            if key in menu.options:
                dest = menu.options[key]
            elif key == menu.back_key and len(stack) > 1:
                stack.pop()
                dest = Destination(kind=DestinationKind.MENU, target=stack[-1])
            elif key == "0" and menu.operator is not None:
                dest = menu.operator
            continue
        if dest.kind is DestinationKind.COLLECT:
            keys_left.pop(0) if keys_left else None
            dest = tenant.collects[dest.target].then
            continue
        if dest.kind is DestinationKind.INFO:
            dest = Destination(kind=DestinationKind.MENU, target=stack[-1]) if stack \
                else Destination(kind=DestinationKind.HANGUP)
    return dest


@dataclass
class Walk:
    number: str
    digits: list[str]
    started: float = field(default_factory=time.monotonic)
    b_leg: str = ""
    a_leg: str = ""
    reached: str = ""
    ended: GEvent = field(default_factory=GEvent)
    cause: str = ""
    lines: list[str] = field(default_factory=list)

    def say(self, text: str, out: Callable[[str], None]) -> None:
        line = f"+{time.monotonic() - self.started:7.3f}s  {text}"
        self.lines.append(line)
        out(line)


def run_selftest(node: NodeConfig, redis: Any, tenants: Any, regions: Any, number: str,
                 digits: list[str], caller: str, *, timeout_s: float = 60.0,
                 out: Callable[[str], None] = print) -> int:
    decision = Decider(tenants, regions).decide(number, caller, datetime.now(UTC))
    if decision.verdict is not Verdict.ROUTE or decision.tenant is None \
            or decision.destination is None:
        # Refused before any destination: the flow records the verdict as its outcome.
        expected = decision.verdict.value
        why = f"rejected as {expected} ({decision.reason or decision.cause})"
        tenant = decision.tenant
    else:
        tenant = decision.tenant
        expected = why = str(expected_destination(tenant, decision.destination, digits))
    out(f"selftest {number} from {caller}, keys {','.join(digits) or '-'}: expecting {why}")
    walk = Walk(number, list(digits))
    conn = EslConnection(node, EslConfig(connect_timeout_s=5, command_timeout_s=10),
                         on_event=lambda ev: _on_event(ev, walk, conn, out))
    conn.connect()
    try:
        conn.subscribe(EVENTS)
        job = conn.bgapi(commands.originate(
            f"loopback/{number}/default", app="park",
            variables={"origination_caller_id_number": caller, "cc_selftest": "true"}))
        walk.say(f"originate loopback/{number}/default (job {job.job_uuid})", out)
        if not walk.ended.wait(timeout_s):
            walk.say(f"no end within {timeout_s:.0f}s: hanging up", out)
            if walk.b_leg:
                conn.api(commands.uuid_kill(walk.b_leg))
            return 1
    finally:
        conn.close()
    summary = _summary(redis, tenant, walk.b_leg) if tenant is not None else None
    if summary is None:
        # No tenant, so no record: an unknown number is refused before anything is kept.
        reached = "unallocated" if walk.cause == "UNALLOCATED_NUMBER" else "nothing recorded"
        out(f"result: {reached} ({walk.cause}); expected {expected}")
        return 0 if reached == expected else 1
    kinds = {k.value for k in DestinationKind}
    dests = [p for p in summary["path"] if p.split(":", 1)[0] in kinds]
    reached = dests[-1] if dests else summary["outcome"]
    out(f"path: {' > '.join(summary['path'])}")
    out(f"result: reached {reached} (outcome {summary['outcome']}, {walk.cause}); "
        f"expected {expected}")
    return 0 if reached == expected else 1


def _summary(redis: Any, tenant: Tenant, uuid: str, wait_s: float = 10.0) -> dict | None:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        for _, fields in reversed(redis.xrevrange(keys.calls_stream(tenant.tenant), count=200)):
            call = msgpack.unpackb(fields[b"call"], raw=False)
            if call["uuid"] == uuid:
                return call
        gevent.sleep(0.2)
    return None


def _on_event(ev: Event, walk: Walk, conn: EslConnection, out: Callable[[str], None]) -> None:
    uuid = ev.unique_id or ""
    name = ev.name
    channel = ev.get("Channel-Name") or ""
    if name == "CHANNEL_CREATE" and channel == f"loopback/{walk.number}-b" and not walk.b_leg:
        walk.b_leg = uuid
        walk.a_leg = ev.get("variable_other_loopback_leg_uuid") or ""
        return
    if not walk.b_leg or uuid != walk.b_leg:
        if name == "BACKGROUND_JOB" and (ev.body or "").startswith("-ERR") and not walk.b_leg:
            walk.say(f"originate failed: {(ev.body or '').strip()}", out)
            walk.ended.set()
        return
    if not walk.a_leg:
        walk.a_leg = ev.get("variable_other_loopback_leg_uuid") or ""
    if name == "CHANNEL_PARK":
        walk.say(f"parked on {walk.number} ({channel})", out)
    elif name == "CHANNEL_PROGRESS_MEDIA":
        walk.say("early media", out)
    elif name == "CHANNEL_ANSWER":
        walk.say("answered", out)
    elif name == "CHANNEL_EXECUTE":
        app = ev.get("Application") or ""
        if app == "play_and_get_digits":
            key = walk.digits.pop(0) if walk.digits else ""
            walk.say(f"prompt ({app}); keying {key or 'nothing'}", out)
            if key and walk.a_leg:
                gevent.spawn_later(KEY_DELAY_S, _send, conn, walk.a_leg, key)
        elif app == "playback" and (ev.get("Application-UUID") or "").startswith("queued."):
            # The queue's hold music (the flow's QUEUED step): the caller is in the queue.
            walk.say(f"queued, hold music {ev.get('Application-Data') or ''}", out)
            gevent.spawn_later(0.2, _kill, conn, walk.b_leg)
        elif app in ("playback", "pre_answer"):
            walk.say(app, out)
        elif app in _REACHED_BY:
            walk.say(f"{app} {ev.get('Application-Data') or ''}", out)
            # Arrived: do not leave agents ringing for a test call.
            gevent.spawn_later(0.2, _kill, conn, walk.b_leg)
    elif name == "CHANNEL_HANGUP_COMPLETE":
        walk.cause = ev.get("Hangup-Cause") or ""
        walk.say(f"ended: {walk.cause}", out)
        walk.ended.set()


def _kill(conn: EslConnection, uuid: str) -> None:
    try:
        conn.api(commands.uuid_kill(uuid))
    except EslError:
        pass  # the call, or the test, is over already


def _send(conn: EslConnection, a_leg: str, key: str) -> None:
    conn.api(commands.uuid_send_dtmf(a_leg, key))
