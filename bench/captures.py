"""Locate and load the real FreeSWITCH captures for benchmarks (tests use ``captures_dir``)."""

from __future__ import annotations

import os
from pathlib import Path

from cc_core.errors import EnvironmentProblem

_REPO = Path(__file__).resolve().parents[1]


def captures_dir() -> Path:
    """``$CC_ESL_CAPTURES`` or the repository's copy, ``tests/data/esl-captures``."""
    root = Path(os.environ.get("CC_ESL_CAPTURES",
                               _REPO / "tests" / "data" / "esl-captures")).resolve()
    if not (root / "freeswitch-1.10.12").is_dir():
        raise EnvironmentProblem(
            f"ESL captures not found at {root}: they ship in tests/data/esl-captures; unset "
            "CC_ESL_CAPTURES or point it at a copy")
    return root


def plain_capture() -> bytes:
    """``freeswitch-1.10.12/esl_plain.raw``: 530 events subscribed with ``event plain ALL``."""
    return (captures_dir() / "freeswitch-1.10.12" / "esl_plain.raw").read_bytes()


def plain_event_frames() -> tuple[bytes, int]:
    """The event frames of ``esl_plain.raw`` (after the auth and subscribe replies, before the
    ``+OK bye`` reply and disconnect notice), and how many events they hold."""
    data = plain_capture()
    # Command replies and auth/request carry no Content-Length; events start with it.
    start = data.index(b"\n\nContent-Length: ") + 2
    end = data.rindex(b"Content-Type: command/reply\nReply-Text: +OK bye\n")
    segment = data[start:end]
    if not segment.startswith(b"Content-Length: ") or not segment.endswith(b"\n\n"):
        raise EnvironmentProblem("esl_plain.raw does not have the expected layout "
                                 "(replies, then events, then +OK bye)")
    return segment, segment.count(b"\nContent-Type: text/event-plain\n\n")


def only_events(segment: bytes, names: frozenset[str]) -> tuple[bytes, int]:
    """The frames of ``segment`` whose Event-Name is in ``names`` (what a client subscribed
    to those names receives), and how many."""
    out: list[bytes] = []
    pos = 0
    while pos < len(segment):
        head_end = segment.index(b"\n\n", pos) + 2
        length = int(segment[pos:head_end].split(b"\n", 1)[0].split(b": ", 1)[1])
        frame = segment[pos:head_end + length]
        name_at = frame.index(b"Event-Name: ") + len(b"Event-Name: ")
        if frame[name_at:frame.index(b"\n", name_at)].decode() in names:
            out.append(frame)
        pos = head_end + length
    return b"".join(out), len(out)


def repeated_plain_events(min_events: int,
                          names: frozenset[str] | None = None) -> tuple[bytes, int]:
    """The plain event frames (only those named in ``names`` when given) repeated until at
    least ``min_events`` events; (stream, count)."""
    segment, per_copy = plain_event_frames()
    if names is not None:
        segment, per_copy = only_events(segment, names)
    copies = -(-min_events // per_copy)
    return segment * copies, per_copy * copies
