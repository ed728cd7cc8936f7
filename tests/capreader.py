"""An independent reader of ESL bytes, for the tests' expected side only.

The product parses with ``esl_handlers.framing`` / ``esl_handlers.events``; when the tests
read the captures with that same code, a parser bug that affects the capture and the
simulator's output alike cannot be seen. This reader shares nothing with ``esl_handlers``
and is deliberately plain: it is written from the wire format as the captures show it.

* A frame is a block of ``Name: value`` lines ended by an empty line; when the block has a
  ``Content-Length`` header, that many bytes of body follow.
* An event frame (``Content-Type: text/event-plain``) has as body another block of
  ``Name: value`` lines (each value URL-encoded on its own), an empty line, then, when that
  inner block has ``Content-Length``, the event's own body.
* A value is decoded by turning every ``%XX`` (two hex digits) into that byte, nothing
  else, then reading the bytes as UTF-8.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_PERCENT = re.compile(rb"%([0-9A-Fa-f]{2})")


def url_decode(value: bytes) -> str:
    return _PERCENT.sub(lambda m: bytes([int(m.group(1), 16)]), value).decode("utf-8", "replace")


def _lines(block: bytes) -> list[tuple[str, bytes]]:
    out = []
    for line in block.split(b"\n"):
        if not line:
            continue
        name, sep, value = line.partition(b": ")
        assert sep, f"a header line without ': ' in a capture: {line!r}"
        out.append((name.decode("ascii"), value))
    return out


@dataclass
class CapFrame:
    headers: list[tuple[str, str]]   # outer headers, as written (never URL-encoded)
    body: bytes
    raw: bytes                        # the frame's exact bytes
    end: int                          # offset just past the frame in the stream

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name), None)

    @property
    def is_event(self) -> bool:
        return self.header("Content-Type") == "text/event-plain"


def frames(data: bytes) -> list[CapFrame]:
    """Every complete frame of ``data``, in order (a trailing partial frame is left out)."""
    out: list[CapFrame] = []
    pos = 0
    while True:
        blank = data.find(b"\n\n", pos)
        if blank < 0:
            return out
        head = [(k, v.decode("utf-8")) for k, v in _lines(data[pos:blank])]
        start = blank + 2
        length = next((int(v) for k, v in head if k == "Content-Length"), 0)
        if start + length > len(data):
            return out
        out.append(CapFrame(head, data[start:start + length], data[pos:start + length],
                            start + length))
        pos = start + length


@dataclass
class CapEvent:
    """A plain event: its header lines (values as sent, and decoded) and its body."""

    wire: list[tuple[str, bytes]]     # (name, value still URL-encoded), in order
    body_bytes: bytes
    raw: bytes                        # the whole frame as received
    decoded: list[tuple[str, str]] = field(init=False)

    def __post_init__(self) -> None:
        self.decoded = [(k, url_decode(v)) for k, v in self.wire]

    @classmethod
    def from_frame(cls, frame: CapFrame) -> CapEvent:
        block, _, rest = frame.body.partition(b"\n\n")
        wire = _lines(block)
        length = next((int(v) for k, v in wire if k == "Content-Length"), 0)
        return cls(wire, rest[:length], frame.raw)

    def get(self, name: str, default: str | None = None) -> str | None:
        return next((v for k, v in self.decoded if k == name), default)

    def get_all(self, name: str) -> list[str]:
        return [v for k, v in self.decoded if k == name]

    def __contains__(self, name: object) -> bool:
        return any(k == name for k, _ in self.wire)

    def items(self) -> list[tuple[str, str]]:
        """(name, first decoded value) per header name, in wire order."""
        seen: set[str] = set()
        out = []
        for k, v in self.decoded:
            if k not in seen:
                seen.add(k)
                out.append((k, v))
        return out

    @property
    def name(self) -> str | None:
        return self.get("Event-Name")

    @property
    def unique_id(self) -> str | None:
        return self.get("Unique-ID")

    @property
    def job_uuid(self) -> str | None:
        return self.get("Job-UUID")

    @property
    def body(self) -> str:
        return self.body_bytes.decode("utf-8", "replace")


def events(data: bytes) -> list[CapEvent]:
    return [CapEvent.from_frame(f) for f in frames(data) if f.is_event]
