"""The simulator's bytes on the wire, held to the capture's own bytes for a sample of events.

test_header_sets compares decoded values; this compares what a parser never shows: for a
sample of events of every leg (the first of each name in ``SAMPLED``), read from the raw
socket bytes with ``tests/capreader.py`` (not the product's parser):

* the frame's outer lines: ``Content-Length: <n>`` then ``Content-Type: text/event-plain``,
  n being the exact length of what follows;
* every header line's name, in order (``variable_*`` lines as a set: FreeSWITCH writes them
  in its hash order);
* every value exactly as encoded (``%20``, ``%3A``, ``%2B``, upper-case hex, ``_undef_``...),
  UUIDs mapped back to the captured legs, except the per-run values named in
  test_header_sets and the values carrying a SIPp display name (see ``display_names``);
* the event's end: the empty line after the last header, and nothing after it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fssim.rtpstats import RtpQuality
from tests.capreader import CapEvent
from tests.capreader import events as read_events
from tests.sim.scenario_replay import Scenario, load
from tests.sim.simclient import SimClient, running_sim
from tests.sim.test_header_sets import _EXCLUDED, _PER_RUN, _racy_state_number, display_names
from tests.sim.test_scenarios import TIME_SCALE, Replay, scenario_dirs

SAMPLED = ("CHANNEL_CREATE", "CHANNEL_PARK", "CHANNEL_ANSWER", "CHANNEL_EXECUTE",
           "CHANNEL_EXECUTE_COMPLETE", "DTMF", "CHANNEL_BRIDGE", "CHANNEL_HANGUP",
           "CHANNEL_HANGUP_COMPLETE", "CHANNEL_DESTROY", "BACKGROUND_JOB")


@pytest.fixture
def sim_addr() -> Iterator[tuple[str, int]]:
    # The captures' SIPp far ends sent no audio (DTMF only): so do the replayed ones.
    with running_sim(time_scale=TIME_SCALE, rtp=RtpQuality(sending=False)) as addr:
        yield addr


def sample(evs: list[CapEvent], uid_of: dict[str, str],
           barrier: str | None = None) -> dict[tuple[str, str], CapEvent]:
    """(leg label or "job", event name) -> the first such event (the replay's closing
    ``barrier`` job left out)."""
    out: dict[tuple[str, str], CapEvent] = {}
    for ev in evs:
        if ev.name not in SAMPLED or (barrier and ev.job_uuid == barrier):
            continue
        owner = "job" if ev.name == "BACKGROUND_JOB" else uid_of.get(ev.unique_id or "")
        if owner is not None:
            out.setdefault((owner, ev.name or ""), ev)
    return out


def outer_ok(ev: CapEvent) -> list[str]:
    head, _, rest = ev.raw.partition(b"\n\n")
    lines = head.split(b"\n")
    problems = []
    if lines != [b"Content-Length: %d" % len(rest), b"Content-Type: text/event-plain"]:
        problems.append(f"outer lines {lines!r} for {len(rest)} bytes")
    block, sep, after = rest.partition(b"\n\n")
    if not sep or after != ev.body_bytes:
        problems.append(f"after the headers: {after[:60]!r} (body {ev.body_bytes[:60]!r})")
    return problems


@pytest.mark.parametrize("directory", scenario_dirs(), ids=lambda p: p.name)
def test_sampled_events_match_capture_bytes(directory: Path, captures_dir: Path,
                                            sim_addr: tuple[str, int]) -> None:
    scn: Scenario = load(directory)
    with SimClient(*sim_addr) as client:
        replay = Replay(scn, client)
        replay.run()
        received = bytes(client.received)
    want = sample(scn.events, scn.legs)
    have = sample(read_events(received), replay.sim_label, replay.barrier)
    assert set(have) == set(want), f"sampled events differ: {sorted(set(want) ^ set(have))}"
    names = display_names(scn)
    problems: list[str] = []
    for (owner, name), cap in sorted(want.items()):
        sim = have[(owner, name)]
        where = f"{scn.name} {owner} {name}"
        problems += [f"{where}: {p}" for p in outer_ok(sim)]
        plain = [k for k, _ in cap.wire if not k.startswith("variable_")]
        if [k for k, _ in sim.wire if not k.startswith("variable_")] != plain:
            problems.append(f"{where}: header order\n  capture {plain}\n  sim     "
                            f"{[k for k, _ in sim.wire if not k.startswith('variable_')]}")
        cap_vars = {k for k, _ in cap.wire if k.startswith("variable_") and not _EXCLUDED.match(k)}
        sim_vars = {k for k, _ in sim.wire if k.startswith("variable_") and not _EXCLUDED.match(k)}
        if cap_vars != sim_vars:
            problems.append(f"{where}: variables {sorted(cap_vars ^ sim_vars)}")
        sim_wire = dict(reversed(sim.wire))
        for header, value in cap.wire:
            if _PER_RUN.match(header) or _EXCLUDED.match(header) or header not in sim_wire \
                    or header == "Job-UUID":   # random per bgapi
                continue
            if header == "Channel-State-Number" and _racy_state_number(cap):  # type: ignore[arg-type]
                continue
            if any(display in cap.get(header, "") or "" for display in names):
                continue
            got = replay.to_captured(sim_wire[header].decode("ascii", "replace")).encode()
            if got != value:
                problems.append(f"{where}: {header}: {got!r} != {value!r}")
    assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems)


def test_capreader_agrees_with_the_json_twins(captures_dir: Path) -> None:
    """The tests' own reader, checked against a second encoding of the same 530 events
    (json, read with the standard library): every plain value it decodes equals its json
    twin, except the values holding a literal ``%XX`` that plain encoding leaves as is."""
    import json

    from tests.capreader import frames

    base = captures_dir / "freeswitch-1.10.12"
    plain = read_events((base / "esl_plain.raw").read_bytes())
    twins = {}
    for frame in frames((base / "esl_json.raw").read_bytes()):
        if frame.header("Content-Type") == "text/event-json":
            obj = json.loads(frame.body)
            twins[(obj["Event-Sequence"], obj["Event-Name"])] = obj
    assert len(plain) == 530 and len(twins) == 530
    assert len({ev.name for ev in plain}) == 27
    lossy = 0
    for ev in plain:
        obj = twins[(ev.get("Event-Sequence"), ev.name)]
        for header, value in ev.items():
            if header == "Content-Length":
                continue
            twin = obj[header]
            twin = twin if isinstance(twin, str) else None
            if twin is not None and twin != value:
                assert "%" in twin, (header, value, twin)
                lossy += 1
        assert ev.body == obj.get("_body", ""), ev.name
    assert lossy == 15     # the captures README: 15 such values, all from one test variable
