"""Random splits and corruptions of real captures (hypothesis, bounded; each property runs
with fixed examples and again with new ones, seed printed: tests/props.py).

Splits: however the bytes of a capture are cut into reads, the frames and events are the
same. Corruptions (flipped bytes, deletions, truncations, garbage inserted): the parser gives
frames or raises FrameError, nothing else, quickly; and cutting the corrupted bytes into reads
changes nothing either.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event
from hypothesis import strategies as st

from cc_core.errors import FrameError
from esl_handlers.events import Event
from esl_handlers.framing import Frame, FrameParser
from tests.props import twice

EVENT_TYPES = ("text/event-plain", "text/event-json")
FUZZ = twice(200, data=st.data())


@dataclass(frozen=True)
class Capture:
    name: str
    data: bytes
    frames: list[tuple[Any, ...]]
    bounds: list[int]          # frame starts and body starts: where reads split awkwardly


def summary(frames: list[Frame]) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for f in frames:
        item: tuple[Any, ...] = (f.content_type, tuple(f.headers.pairs()), f.body)
        if f.content_type in EVENT_TYPES:
            ev = Event.from_frame(f)
            item += (ev.name, ev.unique_id, ev.sequence, ev.body_bytes, tuple(ev.items()))
        out.append(item)
    return out


@pytest.fixture(scope="session")
def corpus(captures_dir: Path) -> list[Capture]:
    fs = captures_dir / "freeswitch-1.10.12"
    # The scenario streams, the command stream and the public ones: every frame kind, all
    # real, small enough for hundreds of examples (the 2 MB whole-run streams add nothing new).
    paths = sorted(fs.glob("scenarios/*/wire.raw")) + [fs / "esl_commands.raw"]
    paths += sorted(p for p in (captures_dir / "public").glob("*/*") if p.is_file())
    out = []
    for path in paths:
        data = path.read_bytes()
        frames = FrameParser().feed(data)
        bounds, pos = [], 0
        for f in frames:
            head = len("".join(f"{n}: {v}\n" for n, v in f.headers.pairs()).encode()) + 1
            bounds += [pos, pos + head]
            pos += head + len(f.body)
        assert pos == len(data)
        out.append(Capture(str(path.relative_to(captures_dir)), data, summary(frames), bounds))
    return out


def cut_points(data: st.DataObject, cap: Capture, size: int) -> list[int]:
    near = st.builds(lambda b, d: min(max(b + d, 0), size),
                     st.sampled_from(cap.bounds), st.integers(-3, 3))
    return sorted(set(data.draw(st.lists(near | st.integers(0, size), max_size=40),
                                label="cuts")))


def feed_in_pieces(blob: bytes, cuts: list[int]) -> tuple[list[Frame], FrameParser]:
    parser = FrameParser()
    frames: list[Frame] = []
    prev = 0
    for cut in [*cuts, len(blob)]:
        frames += parser.feed(blob[prev:cut])
        prev = cut
    return frames, parser


def _random_splits(corpus: list[Capture], data: st.DataObject) -> None:
    cap = data.draw(st.sampled_from(corpus), label="capture")
    frames, parser = feed_in_pieces(cap.data, cut_points(data, cap, len(cap.data)))
    assert parser.at_frame_boundary()
    assert summary(frames) == cap.frames


(test_random_splits_give_identical_frames_and_events,
 test_random_splits_give_identical_frames_and_events_explored) = FUZZ(_random_splits)


def test_one_byte_reads_of_a_whole_scenario(corpus: list[Capture]) -> None:
    cap = next(c for c in corpus if c.name.endswith("blacklisted_reject/wire.raw"))
    parser = FrameParser()
    frames = [f for i in range(len(cap.data)) for f in parser.feed(cap.data[i:i + 1])]
    assert summary(frames) == cap.frames


GARBAGE = st.binary(max_size=64) | st.sampled_from(
    [b"\n", b"\n\n", b": ", b"\r\n", b"Content-Length: ", b"99999999", b"-1", b"%0A", b"\xff",
     b"Content-Type: text/event-json\n", b"{", b"\x00"])


def corrupt(data: st.DataObject, cap: Capture) -> bytes:
    # A run of whole frames (1 to 12 of them), then damage to it.
    starts = cap.bounds[::2] + [len(cap.data)]
    first = data.draw(st.integers(0, len(starts) - 2), label="first frame")
    count = data.draw(st.integers(1, 12), label="frames")
    start, end = starts[first], starts[min(first + count, len(starts) - 1)]
    blob = bytearray(cap.data[start:end])

    def spot() -> int:
        # Mostly near a frame start (header lines, Content-Length digits), sometimes anywhere.
        near = [b - start for b in cap.bounds if start <= b < start + len(blob)] or [0]
        where = data.draw(st.sampled_from(near) | st.just(-1), label="near")
        if where < 0:
            return data.draw(st.integers(0, max(len(blob) - 1, 0)), label="anywhere")
        return min(max(where + data.draw(st.integers(-8, 60), label="offset"), 0),
                   max(len(blob) - 1, 0))

    for op in data.draw(st.lists(st.sampled_from(["flip", "delete", "insert", "truncate"]),
                                 min_size=1, max_size=6), label="ops"):
        if not blob:
            break
        at = spot()
        if op == "flip":
            blob[at] ^= data.draw(st.integers(1, 255), label="mask")
        elif op == "delete":
            del blob[at:at + data.draw(st.integers(1, 20), label="span")]
        elif op == "insert":
            blob[at:at] = data.draw(GARBAGE, label="garbage")
        else:
            del blob[at:]
    return bytes(blob)


def outcome(blob: bytes, cuts: list[int]) -> tuple[list[Frame], bool, FrameParser]:
    parser = FrameParser()
    frames: list[Frame] = []
    prev = 0
    try:
        for cut in [*cuts, len(blob)]:
            frames += parser.feed(blob[prev:cut])
            prev = cut
    except FrameError as exc:
        frames += exc.frames  # type: ignore[attr-defined]
        return frames, True, parser
    return frames, False, parser


def touch_events(frames: list[Frame]) -> None:
    for frame in frames:
        if frame.content_type in EVENT_TYPES:
            try:
                ev = Event.from_frame(frame)
            except FrameError:
                continue    # e.g. a json body that no longer parses
            ev.name, ev.subclass, ev.unique_id, ev.core_uuid, ev.job_uuid  # noqa: B018
            ev.sequence, ev.timestamp_us, ev.body, ev.body_bytes  # noqa: B018
            list(ev.items())
            ev.get_all("Hangup-Cause")
            ev.raw("Unique-ID")
            "Event-Name" in ev  # noqa: B015


def _corruptions(corpus: list[Capture], data: st.DataObject) -> None:
    cap = data.draw(st.sampled_from(corpus), label="capture")
    blob = corrupt(data, cap)
    t0 = time.monotonic()
    # Any exception but FrameError fails the test by propagating.
    whole, whole_failed, _ = outcome(blob, [])
    touch_events(whole)
    cuts = sorted(set(data.draw(st.lists(st.integers(0, len(blob)), max_size=20), label="cuts")))
    split, split_failed, split_parser = outcome(blob, cuts)
    event(f"whole_failed={whole_failed} split_failed={split_failed} frames={min(len(whole), 3)}")
    assert time.monotonic() - t0 < 5.0
    # Reads change nothing: the same frames up to where the bytes stop being ESL.
    assert summary_safe(split) == summary_safe(whole)
    if split_failed:
        assert whole_failed
    elif whole_failed:
        # Only a CRLF block cut into tiny reads is seen later, and then no frame follows it.
        assert not split_parser.at_frame_boundary()


(test_corruptions_parse_or_raise_frame_error_and_never_hang,
 test_corruptions_parse_or_raise_frame_error_and_never_hang_explored) = FUZZ(_corruptions)


def summary_safe(frames: list[Frame]) -> list[tuple[Any, ...]]:
    return [(f.content_type, tuple(f.headers.pairs()), f.body) for f in frames]
