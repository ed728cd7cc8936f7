"""Turn a captured scenario (``scenarios/<name>/``) into a script for the simulator.

From ``wire.raw`` (read with ``tests/capreader.py``, which shares nothing with the product's
parser, so a parser bug cannot hide by affecting both sides), ``sent.log`` and
``replies.json`` this builds:

* the per-leg event sequences to compare (leaving out API, CODEC, HEARTBEAT, RE_SCHEDULE,
  PRESENCE_IN, CALL_UPDATE, PRIVATE_COMMAND, MEDIA_BUG_*), each event reduced to its name
  and key headers;
* a timeline of actions: the controller's commands (with the leg UUIDs to substitute) and
  the ``sim_*`` controls standing in for what SIPp did (steps.md): ``sim_inbound`` for each
  SIP caller, ``sim_endpoint`` for each agent contact (its behaviour read from what its leg
  did), ``sim_dtmf`` for each RFC 2833 digit and ``sim_hangup`` for the far end that hung
  up first. Each action carries, per leg, how many compared events that leg had shown when
  it happened in the capture, so a replay can wait for the same point before acting.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from tests.capreader import CapEvent, CapFrame
from tests.capreader import frames as read_frames

EXCLUDED = frozenset({"API", "CODEC", "HEARTBEAT", "RE_SCHEDULE", "PRESENCE_IN", "CALL_UPDATE",
                      "PRIVATE_COMMAND"})
KEY_HEADERS = ("Channel-Call-State", "Answer-State", "Application", "Application-Response",
               "Hangup-Cause", "DTMF-Digit", "Playback-Status")
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# commands after which the next CHANNEL_HANGUP is the command's doing, not a far end's
HANGUP_COMMANDS = re.compile(r"^(api|bgapi) (uuid_kill|hupall)\b|call-command: hangup|"
                             r"execute-app-name: hangup\b", re.M)
ENDPOINT_FAILURES = {"USER_BUSY": "busy", "CALL_REJECTED": "reject", "LOSE_RACE": "noanswer",
                     "NO_ANSWER": "noanswer"}


class EventLike(Protocol):
    """What this module reads of an event: the capture's (CapEvent) or the simulator's."""

    @property
    def name(self) -> str | None: ...
    def get(self, name: str, default: str | None = None) -> str | None: ...
    def __contains__(self, name: object) -> bool: ...


def compared(ev: EventLike) -> bool:
    name = ev.name or ""
    return name not in EXCLUDED and not name.startswith("MEDIA_BUG_")


# Events without a channel that a replay cannot reproduce in number or place: timers.
UNCOMPARED_OTHERS = frozenset({"HEARTBEAT", "RE_SCHEDULE"})


def other_compared(ev: EventLike) -> bool:
    """An event without a Unique-ID that the replay compares (BACKGROUND_JOB, API, CUSTOM):
    every one but the timers, and the API events of the simulator's own ``sim_*`` controls
    (they stand in for SIPp, which sent nothing on the event socket)."""
    if ev.name in UNCOMPARED_OTHERS:
        return False
    return not (ev.name == "API" and (ev.get("API-Command") or "").startswith("sim_"))


def other_key(ev: EventLike, body: str) -> tuple[str, ...]:
    """A channel-less event reduced to what is compared; ``body`` with UUIDs mapped."""
    return (ev.name or "", ev.get("Event-Subclass") or "",
            ev.get("API-Command") or ev.get("Job-Command") or "", body)


def key(ev: EventLike) -> tuple[str, ...]:
    """An event reduced to what the scenario tests compare."""
    return (ev.name or "",) + tuple(f"{h}={ev.get(h)}" for h in KEY_HEADERS if h in ev)


@dataclass
class Command:
    text: str  # as sent, without the terminating blank line
    label: str
    position: int  # index in the timeline (frames received before it was sent)


@dataclass
class Action:
    kind: str  # command | inbound | endpoint | dtmf | hangup
    counts: dict[str, int]  # leg label -> compared events seen before acting
    text: str = ""  # command text (captured UUIDs)
    leg: str = ""  # leg label the control applies to
    args: list[str] = field(default_factory=list)
    expected_reply: str | None = None  # reply body / Reply-Text, captured UUIDs
    order: int = 0


@dataclass
class Scenario:
    name: str
    legs: dict[str, str]  # captured uuid -> label (A, B, B2 ...)
    first_seen: list[str]  # labels in order of first event
    sequences: dict[str, list[tuple[str, ...]]]  # label -> compared keys
    events: list[CapEvent]  # every captured event, in delivery order
    actions: list[Action]
    jobs: list[str]  # BACKGROUND_JOB bodies in order (captured UUIDs)
    others: list[tuple[str, ...]]  # other_key of each compared channel-less event, in order

    def label_of(self, uid: str | None) -> str | None:
        return self.legs.get(uid or "")


def _parse_sent_log(text: str, frames_before: list[int]) -> list[tuple[str, str, int]]:
    out = []
    for block in re.split(r"^### ", text, flags=re.M)[1:]:
        head, _, body = block.partition("\n")
        offset = int(re.search(r"rx_offset=(\d+)", head).group(1))  # type: ignore[union-attr]
        label_match = re.search(r"label=(.*)$", head)
        out.append((body.strip("\n"), label_match.group(1) if label_match else "", offset))
    return out


def load(directory: Path) -> Scenario:
    raw = (directory / "wire.raw").read_bytes()
    legs: dict[str, str] = json.loads((directory / "legs.json").read_text())
    sent = (directory / "sent.log").read_text()
    replies = json.loads((directory / "replies.json").read_text())

    offsets = sorted({int(m) for m in re.findall(r"rx_offset=(\d+)", sent)})
    frames: list[CapFrame] = read_frames(raw)
    assert frames and frames[-1].end == len(raw), f"{directory}: wire.raw is not whole frames"
    count_at = {off: sum(1 for f in frames if f.end <= off) for off in offsets + [len(raw)]}
    commands: list[Command] = []
    for text, label, off in _parse_sent_log(sent, []):
        commands.append(Command(text, label, count_at[off]))

    events: list[CapEvent] = []
    event_pos: list[int] = []  # frame index of each event
    for index, frame in enumerate(frames):
        if frame.is_event:
            events.append(CapEvent.from_frame(frame))
            event_pos.append(index)

    # per-leg compared sequences and counts at each frame position
    sequences: dict[str, list[tuple[str, ...]]] = {label: [] for label in legs.values()}
    first_seen: list[str] = []
    counts_before_frame: list[dict[str, int]] = []
    running = {label: 0 for label in legs.values()}
    ev_iter = iter(zip(event_pos, events, strict=True))
    pending = next(ev_iter, None)
    for index in range(len(frames) + 1):
        counts_before_frame.append(dict(running))
        if pending is not None and pending[0] == index:
            ev = pending[1]
            leg = legs.get(ev.unique_id or "")
            if leg is not None and compared(ev):
                sequences[leg].append(key(ev))
                running[leg] += 1
                if leg not in first_seen:
                    first_seen.append(leg)
            pending = next(ev_iter, None)

    reply_by_command: dict[str, list[str]] = {}
    for item in replies:
        headers = item.get("reply_headers", {})
        body = headers.get("Reply-Text") if headers.get("Content-Type") == "command/reply" \
            else item.get("reply_body", "")
        reply_by_command.setdefault(item["command"].strip(), []).append(body)

    positioned: list[tuple[int, Action]] = []
    seq = 0

    def add(action: Action, position: int) -> None:
        nonlocal seq
        action.counts = counts_before_frame[position]
        action.order = seq
        seq += 1
        positioned.append((position, action))

    # controls derived from the events
    hangup_pending = False
    cmd_iter = iter(sorted(commands, key=lambda c: c.position))
    next_cmd = next(cmd_iter, None)
    hung: set[str] = set()
    first_inbound: set[str] = set()
    endpoint_done: set[str] = set()
    for ev, frame_index in zip(events, event_pos, strict=True):
        while next_cmd is not None and next_cmd.position <= frame_index:
            text = next_cmd.text
            if next_cmd.label not in ("auth", "subscribe", "exit"):
                for contact, behaviour in _endpoints_for(text, events, legs):
                    if contact not in endpoint_done:
                        endpoint_done.add(contact)
                        add(Action("endpoint", {}, args=[contact, behaviour, "100"]),
                            next_cmd.position)
                expected = reply_by_command.get(text.strip(), [None]).pop(0) \
                    if reply_by_command.get(text.strip()) else None
                add(Action("command", {}, text=text, expected_reply=expected),
                    next_cmd.position)
                if HANGUP_COMMANDS.search(text):
                    hangup_pending = True
            next_cmd = next(cmd_iter, None)
        found = legs.get(ev.unique_id or "")
        if found is None:
            continue
        label = found
        name = ev.name
        if label not in first_inbound and ev.get("Call-Direction") == "inbound" and \
                (ev.get("Channel-Name") or "").startswith("sofia/") and name == "CHANNEL_STATE":
            first_inbound.add(label)
            create = next(e for e in events if e.unique_id == ev.unique_id
                          and e.name == "CHANNEL_CREATE")
            sets = [e.get("Application-Data") or "" for e in events
                    if e.unique_id == ev.unique_id and e.name == "CHANNEL_EXECUTE"
                    and e.get("Application") == "set"]
            park_index = next(i for i, e in enumerate(events) if e.unique_id == ev.unique_id
                              and e.name == "CHANNEL_PARK")
            sets = [e.get("Application-Data") or "" for e in events[:park_index]
                    if e.unique_id == ev.unique_id and e.name == "CHANNEL_EXECUTE"
                    and e.get("Application") == "set"]
            add(Action("inbound", {}, leg=label,
                       args=[create.get("Caller-Caller-ID-Number") or "",
                             create.get("Caller-Destination-Number") or ""] + sets),
                frame_index)
        elif name == "DTMF" and ev.get("DTMF-Source") == "RTP":
            add(Action("dtmf", {}, leg=label, args=[ev.get("DTMF-Digit") or ""]), frame_index)
        elif name == "CHANNEL_HANGUP":
            cause = ev.get("Hangup-Cause") or ""
            if hangup_pending:
                hangup_pending = False
            elif cause in ("NORMAL_CLEARING", "ORIGINATOR_CANCEL") and not hung:
                add(Action("hangup", {}, leg=label), frame_index)
            if cause in ("NORMAL_CLEARING", "ORIGINATOR_CANCEL"):
                hung.add(label)
    while next_cmd is not None:
        if next_cmd.label not in ("auth", "subscribe", "exit"):
            expected = reply_by_command.get(next_cmd.text.strip(), [None]).pop(0) \
                if reply_by_command.get(next_cmd.text.strip()) else None
            add(Action("command", {}, text=next_cmd.text, expected_reply=expected),
                next_cmd.position)
        next_cmd = next(cmd_iter, None)

    ordered = [a for _, a in sorted(positioned, key=lambda pa: (pa[0], pa[1].order))]
    jobs = [ev.body for ev in events if ev.name == "BACKGROUND_JOB"]
    others = [other_key(ev, ev.get("API-Command-Argument") or ev.body) for ev in events
              if not ev.unique_id and other_compared(ev)]
    return Scenario(directory.name, legs, first_seen, sequences, events, ordered, jobs, others)


def _endpoints_for(text: str, events: list[CapEvent], legs: dict[str, str]) -> list[tuple[str, str]]:
    """Agent contacts in an originate / bridge command and what their legs did."""
    from fssim.endpoints import parse_dial_string

    dial = None
    match = re.match(r"^(?:api|bgapi) originate (\S+)", text)
    if match:
        dial = match.group(1)
    match = re.search(r"execute-app-name: bridge\nexecute-app-arg: (\S+)", text)
    if match:
        dial = match.group(1)
    if dial is None:
        return []
    _, groups = parse_dial_string(dial)
    out = []
    for group in groups:
        for _, contact in group:
            if not contact.startswith("sofia/"):
                continue
            leg_events = [e for e in events if e.get("Channel-Name") == contact
                          and (e.unique_id or "") in legs]
            behaviour = "answer"
            for ev in leg_events:
                if ev.name == "CHANNEL_HANGUP" and not any(
                        e.name == "CHANNEL_ANSWER" for e in leg_events):
                    behaviour = ENDPOINT_FAILURES.get(ev.get("Hangup-Cause") or "", "busy")
                    break
            out.append((contact, behaviour))
    return out


def substitute(text: str, mapping: dict[str, str]) -> str:
    """Replace every UUID found in ``mapping`` (either direction is the caller's choice)."""
    return UUID_RE.sub(lambda m: mapping.get(m.group(0), m.group(0)), text)


def normalise_reply(text: str) -> str:
    """Job UUIDs differ on every run."""
    return re.sub(r"(Job-UUID: )" + UUID_RE.pattern, r"\1<job>", text)
