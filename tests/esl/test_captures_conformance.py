"""Every capture in tests/data/esl-captures replayed through the frame parser and event views.

About public/: both folders were inspected byte by byte before writing this. They hold only
what the server sent (no client lines interleaved), with LF line endings and exact
Content-Lengths, so they are replayed like the 1.10.12 captures:
- neventsocket/Example*.txt are outbound-socket sessions; their first frame is the `connect`
  reply, a serialised channel event whose header block carries the channel data, then
  `Content-Type: command/reply` and `Reply-Text: %2BOK%0A` (sent encoded; outer headers are
  not decoded, so it stays so).
- freeswitch-clj/freeswitch_session.txt is an inbound session of FreeSWITCH 1.6.19 with one
  text/event-xml event, which the project refuses (subscribe plain or json).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from cc_core.errors import UnsupportedEventFormat
from esl_handlers.events import Event
from esl_handlers.framing import Frame, FrameParser
from tests.conftest import CAPTURES

FS = "freeswitch-1.10.12"
EVENT_TYPES = ("text/event-plain", "text/event-json")


def _capture_names() -> list[str]:
    if not (CAPTURES / FS).is_dir():
        return ["(captures absent)"]
    files = sorted((CAPTURES / FS).glob("*.raw"))
    files += sorted((CAPTURES / FS / "scenarios").glob("*/wire.raw"))
    files += sorted(p for p in (CAPTURES / "public").glob("*/*") if p.is_file())
    return [str(p.relative_to(CAPTURES)) for p in files]


CAPTURE_NAMES = _capture_names()


def parse_file(path: Path) -> list[Frame]:
    parser = FrameParser()
    frames = parser.feed(path.read_bytes())
    assert parser.at_frame_boundary(), f"{path.name}: {parser.buffered} bytes not framed"
    return frames


def events_of(frames: list[Frame]) -> Iterator[Event]:
    for frame in frames:
        if frame.content_type in EVENT_TYPES:
            yield Event.from_frame(frame)


def reserialise(frame: Frame) -> bytes:
    head = "".join(f"{n}: {v}\n" for n, v in frame.headers.pairs()).encode()
    return head + b"\n" + frame.body


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_framing_consumes_every_byte_and_separates_bodies(captures_dir: Path, name: str) -> None:
    path = captures_dir / name
    data = path.read_bytes()
    frames = parse_file(path)
    assert frames
    # Every byte is in exactly one frame, in order: the frames written back are the file.
    assert b"".join(reserialise(f) for f in frames) == data
    events = 0
    for frame in frames:
        assert frame.content_type, f"{name}: a frame without Content-Type"
        if frame.get("Content-Length") is not None:
            assert int(frame.get("Content-Length") or 0) == len(frame.body)
        if frame.content_type == "text/event-xml":
            with pytest.raises(UnsupportedEventFormat, match="event plain"):
                Event.from_frame(frame)
            continue
        if frame.content_type not in EVENT_TYPES:
            continue
        # Events carry Content-Length FIRST (mod_event_socket.c writes it before the type).
        assert frame.headers.pairs()[0][0] == "Content-Length"
        ev = Event.from_frame(frame)
        events += 1
        assert ev.name, f"{name}: event without Event-Name"
        assert ev.core_uuid and ev.sequence is not None and ev.timestamp_us is not None
        inner_length = ev.get("Content-Length")
        if inner_length is None:
            assert ev.body_bytes == b""
            if frame.content_type == "text/event-plain":
                assert frame.body.endswith(b"\n\n")
        else:
            # The event's own body, out of its headers and exactly as long as it says.
            assert len(ev.body_bytes) == int(inner_length) > 0
            assert frame.body.endswith(ev.body_bytes) or frame.content_type != "text/event-plain"
        if ev.name == "BACKGROUND_JOB":
            assert ev.job_uuid and ev.body_bytes, f"{name}: BACKGROUND_JOB without its output"
            assert not any(n.startswith(("+OK", "-ERR", "UP ")) for n in ev.keys())
    assert events > 0


def _twins(captures_dir: Path) -> tuple[list[Event], dict[tuple[str | None, str | None], Event]]:
    plain = list(events_of(parse_file(captures_dir / FS / "esl_plain.raw")))
    jsons = list(events_of(parse_file(captures_dir / FS / "esl_json.raw")))
    by_key = {(e.get("Event-Sequence"), e.name): e for e in jsons}
    assert len(plain) == len(jsons) == len(by_key) == 530
    return plain, by_key


def test_plain_events_equal_their_json_twins_except_literal_percent_values(
        captures_dir: Path) -> None:
    plain, by_key = _twins(captures_dir)
    exceptions: list[tuple[str, str, str, str]] = []
    for p in plain:
        j = by_key[(p.get("Event-Sequence"), p.name)]
        assert p.keys() == j.keys(), f"{p.name} {p.sequence}: header names or order differ"
        assert p.body_bytes == j.body_bytes
        for name in p.keys():
            pv, jv = p.get_all(name), j.get_all(name)
            if len(pv) == 1 and pv[0].startswith("ARRAY::") and len(jv) > 1:
                # Plain sends a multi-value variable as one ARRAY::a|:b value, json as a list.
                jv = ["ARRAY::" + "|:".join(jv)]
            if pv != jv:
                wire = p.wire(name)  # type: ignore[attr-defined]
                exceptions.append((p.name or "", name, (wire or b"").decode(), jv[0]))
    # Plain encoding is lossy: a literal %XX (upper-case hex) is sent unchanged, so it decodes
    # differently. The README counts 15 such values, all from the test variable `a b&c=d%20e`.
    assert len(exceptions) == 15, exceptions
    for _, _, wire, json_value in exceptions:
        assert "a b&c=d%20e" in json_value and "a%20b%26c%3Dd%20e" in wire
    assert Counter(name for _, name, _, _ in exceptions) == {
        "variable_esl_test_var": 10, "variable_current_application_data": 2,
        "Application-Data": 2, "execute-app-arg": 1}


def test_first_value_lookups_agree_between_twins(captures_dir: Path) -> None:
    plain, by_key = _twins(captures_dir)
    repeated = 0
    for p in plain:
        j = by_key[(p.get("Event-Sequence"), p.name)]
        for prop in ("name", "subclass", "unique_id", "core_uuid", "job_uuid", "sequence",
                     "timestamp_us"):
            assert getattr(p, prop) == getattr(j, prop)
        if len(p.get_all("Hangup-Cause")) > 1:
            repeated += 1
            assert p.get("Hangup-Cause") == j.get("Hangup-Cause") == p.get_all("Hangup-Cause")[0]
    assert repeated > 0, "the capture has CHANNEL_HANGUP_COMPLETE with Hangup-Cause twice"


@pytest.mark.parametrize("name", ["esl_plain.raw", "esl_json.raw"])
def test_items_agree_with_get_all(captures_dir: Path, name: str) -> None:
    frames = parse_file(captures_dir / FS / name)
    for frame in frames:
        if frame.content_type in EVENT_TYPES:
            # Two views of the same frame, so no value is served from the other's cache.
            whole, single = Event.from_frame(frame), Event.from_frame(frame)
            items = list(whole.items())
            assert [n for n, _ in items] == single.keys()
            assert items == [(n, single.get_all(n)[0]) for n, _ in items]
            assert all(single.get(n) == v for n, v in items)


def _replies(captures_dir: Path) -> list[dict[str, object]]:
    replies: list[dict[str, object]] = json.loads(
        (captures_dir / FS / "command_replies.json").read_text())
    assert len(replies) == 83
    return replies


def test_command_replies_match_their_labels(captures_dir: Path) -> None:
    raw = (captures_dir / FS / "esl_commands.raw").read_bytes()
    bg_jobs = 0
    for entry in _replies(captures_dir):
        start, end = entry["raw_offsets_in_esl_commands_raw"]  # type: ignore[misc]
        parser = FrameParser()
        (frame,) = parser.feed(raw[start:end])
        assert parser.at_frame_boundary()
        assert frame.headers.pairs() == list(entry["reply_headers"].items()), entry["label"]  # type: ignore[attr-defined]
        if "reply_body" in entry:
            assert frame.body.decode() == entry["reply_body"], entry["label"]
        job = entry.get("background_job_event")
        if job:
            bg_jobs += 1
            jstart, jend = job["raw_offsets_in_esl_commands_raw"]  # type: ignore[index]
            (jframe,) = FrameParser().feed(raw[jstart:jend])
            assert jframe.headers.pairs() == list(job["outer_headers"].items())  # type: ignore[index]
            assert jframe.body.decode() == job["body"]  # type: ignore[index]
            ev = Event.from_frame(jframe)
            assert ev.name == "BACKGROUND_JOB"
            assert ev.job_uuid == frame.get("Job-UUID")
            assert frame.get("Reply-Text") == f"+OK Job-UUID: {ev.job_uuid}"
            assert job["body"].endswith(ev.body)  # type: ignore[index]
            assert ev.body.startswith(("UP ", "-ERR USER_BUSY\n"))
    assert bg_jobs == 2


def test_whole_command_stream_ends_with_bye_and_disconnect_notice(captures_dir: Path) -> None:
    frames = parse_file(captures_dir / FS / "esl_commands.raw")
    assert frames[0].content_type == "auth/request"
    assert frames[-2].get("Reply-Text") == "+OK bye"
    assert frames[-1].content_type == "text/disconnect-notice"
    assert frames[-1].body == (b"Disconnected, goodbye.\n"
                               b"See you at ClueCon! http://www.cluecon.com/\n")
    # 83 labelled replies + 2 BACKGROUND_JOB events + auth/request + exit's reply and notice.
    assert len(frames) == 83 + 2 + 1 + 2


def test_outbound_connect_reply_in_public_capture(captures_dir: Path) -> None:
    frames = parse_file(captures_dir / "public" / "neventsocket" / "Example1.txt")
    connect = frames[0]
    assert connect.content_type == "command/reply"
    assert connect.get("Reply-Text") == "%2BOK%0A"
    assert connect.get("Socket-Mode") == "async" and connect.get("Control") == "full"
    assert connect.get("Event-Name") == "CHANNEL_DATA"
    assert connect.get("Unique-ID") == "78b86350-4fb8-4d2b-a629-1eeafd7d2f74"


def test_public_inbound_session_bgapi_plain_and_json(captures_dir: Path) -> None:
    frames = parse_file(captures_dir / "public" / "freeswitch-clj" / "freeswitch_session.txt")
    types = [f.content_type for f in frames]
    assert "text/event-xml" in types
    jobs = [e for e in events_of(frames) if e.name == "BACKGROUND_JOB"]
    assert [e.format for e in jobs] == ["plain", "json"]  # type: ignore[attr-defined]
    for ev in jobs:
        assert ev.body.startswith("UP 0 years") and ev.get("Content-Length") == str(len(ev.body_bytes))
    assert any(e.name == "HEARTBEAT" and e.format == "json" for e in events_of(frames))  # type: ignore[attr-defined]
