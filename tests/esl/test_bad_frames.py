"""Bytes that are not ESL frames: each is refused with a FrameError saying what was wrong (or,
when it cannot be told from a slow frame yet, kept buffered), and memory stays bounded."""

from __future__ import annotations

import random
import tracemalloc
from collections.abc import Iterator

import pytest

from cc_core.errors import FrameError
from esl_handlers.framing import FrameParser

AUTH_REQUEST = b"Content-Type: auth/request\n\n"
OK = b"Content-Type: command/reply\nReply-Text: +OK accepted\n\n"


def api_head(length: str) -> bytes:
    return b"Content-Type: api/response\nContent-Length: " + length.encode() + b"\n\n"


def test_missing_blank_line_between_headers_and_body() -> None:
    parser = FrameParser()
    with pytest.raises(FrameError, match=r"header line '\+OK' .* has no ': '"):
        parser.feed(b"Content-Type: api/response\nContent-Length: 4\n+OK\n\n")


def test_missing_blank_line_at_end_of_stream_stays_buffered_not_framed() -> None:
    parser = FrameParser()
    assert parser.feed(AUTH_REQUEST + b"Content-Type: command/reply\nReply-Text: +OK\n") != []
    assert not parser.at_frame_boundary()
    assert parser.buffered == len(b"Content-Type: command/reply\nReply-Text: +OK\n")


@pytest.mark.parametrize(("length", "message"), [
    ("-5", "Content-Length '-5' is negative"),
    ("abc", "Content-Length 'abc' is not a number"),
    ("", "Content-Length '' is not a number"),
    (" 12", "Content-Length ' 12' is not a number"),
    ("+12", "Content-Length '+12' is not a number"),
    ("1e3", "Content-Length '1e3' is not a number"),
    ("١٢", "is not a number"),       # Unicode digits are not ASCII digits
    ("20000000", "frame of 20000000 bytes exceeds the 16 MiB cap"),
    ("9" * 5000, "exceeds the 16 MiB cap"),
])
def test_bad_content_length(length: str, message: str) -> None:
    parser = FrameParser()
    with pytest.raises(FrameError, match=message.replace("+", r"\+")):
        parser.feed(api_head(length) + b"body")
    assert parser.buffered == 0


def test_conflicting_content_lengths() -> None:
    with pytest.raises(FrameError, match="two different Content-Length"):
        FrameParser().feed(b"Content-Type: api/response\nContent-Length: 3\nContent-Length: 4\n\n")


def test_truncated_body_waits_and_is_not_a_frame() -> None:
    parser = FrameParser()
    frames = parser.feed(AUTH_REQUEST + api_head("10") + b"+OK ")
    assert [f.content_type for f in frames] == ["auth/request"]
    assert not parser.at_frame_boundary() and parser.buffered == 4
    # The rest arrives: the frame completes, nothing is lost or duplicated.
    (frame,) = parser.feed(b"trunc\n")
    assert frame.body == b"+OK trunc\n"
    assert parser.at_frame_boundary()


def test_truncated_body_followed_by_a_new_frame_desyncs_into_an_error() -> None:
    # A body cut short swallows the next frame's first bytes ("Content-Type: co"); what is
    # left ("mmand/reply") is no header line, which is how the loss is noticed.
    parser = FrameParser()
    with pytest.raises(FrameError, match="'mmand/reply'"):
        parser.feed(api_head("20") + b"+OK\n" + OK + OK)


@pytest.mark.parametrize("garbage", [
    b"\x00\x01\x02\xff\xfe\n\n",
    b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<html>",
    b"GET / HTTP/1.0\n\n",
    b"\n\n",
    b"\n" + AUTH_REQUEST,
    b": \n\n" + b"\xff" * 3,
])
def test_garbage_bytes_are_a_frame_error(garbage: bytes) -> None:
    parser = FrameParser()
    with pytest.raises(FrameError) as info:
        parser.feed(garbage)
    assert str(info.value)          # says what was wrong
    with pytest.raises(FrameError, match="reset the connection"):
        parser.feed(AUTH_REQUEST)


def test_garbage_after_good_frames_keeps_the_good_frames() -> None:
    parser = FrameParser()
    assert len(parser.feed(AUTH_REQUEST + OK)) == 2
    with pytest.raises(FrameError) as info:
        parser.feed(OK + b"\x00garbage\n\n" + OK)
    assert [f.get("Reply-Text") for f in info.value.frames] == ["+OK accepted"]  # type: ignore[attr-defined]


def test_header_block_without_end_is_refused_at_the_cap() -> None:
    parser = FrameParser(max_frame_bytes=4096)
    parser.feed(b"Content-Type: command/reply\n")
    with pytest.raises(FrameError, match="without an empty line"):
        for _ in range(100):
            parser.feed(b"X-Filler: " + b"y" * 100 + b"\n")


def garbage(total: int, chunk: int, seed: int) -> Iterator[bytes]:
    """``total`` bytes of several kinds of garbage, ``chunk`` bytes at a time, made lazily."""
    rng = random.Random(seed)
    header_line = b"X-Header: " + b"v" * 100 + b"\n"
    kinds = [
        lambda: rng.randbytes(chunk),                                       # random bytes
        lambda: bytes([rng.choice(b"ab: \n")]) * chunk,                     # long runs
        lambda: (header_line * (chunk // len(header_line) + 1))[:chunk],    # endless header block
        lambda: api_head(str(16 * 1024 * 1024)).ljust(chunk, b"z"),        # body at the cap
    ]
    for i in range(total // chunk):
        yield kinds[(i // 300) % len(kinds)]()   # ~19 MiB of each: past every cap


def test_100_mib_of_garbage_keeps_memory_bounded() -> None:
    chunk = 64 * 1024
    total = 100 * 1024 * 1024
    tracemalloc.start()
    try:
        parser = FrameParser()
        errors = 0
        fed = 0
        for data in garbage(total, chunk, seed=7):
            fed += len(data)
            try:
                parser.feed(data)
            except FrameError:
                errors += 1
                parser = FrameParser()     # what the connection layer does after a reset
            del data
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert fed >= total
    assert errors > 0
    assert peak < 64 * 1024 * 1024, f"tracemalloc peak {peak / 2**20:.1f} MiB"


def test_outer_header_block_is_capped_at_1_mib_by_default() -> None:
    parser = FrameParser()
    line = b"X-Filler: " + b"y" * 1000 + b"\n"
    with pytest.raises(FrameError, match="exceeds the 1 MiB cap"):
        for _ in range(1100):
            parser.feed(line)
    assert parser.buffered == 0


def test_body_at_the_cap_in_many_reads_then_the_next_frame() -> None:
    parser = FrameParser(max_frame_bytes=1 << 20)
    body = bytes(range(256)) * 4096           # exactly 1 MiB
    stream = api_head(str(len(body))) + body + OK
    frames = []
    for i in range(0, len(stream), 4099):
        frames += parser.feed(stream[i:i + 4099])
    assert [f.content_type for f in frames] == ["api/response", "command/reply"]
    assert frames[0].body == body
    assert parser.at_frame_boundary()
