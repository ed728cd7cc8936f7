"""Typed, lazy views of FreeSWITCH events (``text/event-plain`` and ``text/event-json``).

Plain events (``switch_event_serialize`` in ``src/switch_event.c``) are ``Name: value`` lines,
each value URL-encoded on its own, an empty value sent as ``_undef_``; an event with a body
ends ``Content-Length: n`` + empty line + n bytes (BACKGROUND_JOB carries the api output that
way). Values are URL-decoded per value, AFTER the block is split into lines, so a ``%0A`` in a
caller-controlled value (SIP display name, custom SIP header) stays inside that value and can
never create a header. greenswitch 0.0.19 decodes the whole block first and is fooled.

Plain events are not split up front: ``get`` finds ``\\nName: `` with ``bytes.find`` inside the
header section (values are URL-encoded, so every LF there is a line end) and decodes that one
value on first read. ``get_all`` / ``items`` split the section once, when first asked.
Inside an event, a line without ``": "`` is skipped (FreeSWITCH never writes one; skipping it
keeps one odd line from costing the whole event, and it cannot forge a header either way).
The first empty line ends the headers; what follows is the event body when the last header
line is ``Content-Length: n`` (n bytes of it), and is ignored otherwise.

JSON events (``switch_event_serialize_json``) are one object of raw (not URL-encoded) strings,
arrays for ``ARRAY::`` values, the body in ``_body``. A repeated header (Hangup-Cause) is a
repeated key in the object; all of them are kept, and ``get`` returns the first.

``raw(name)`` returns the bytes of the first value before text decoding: for plain events
after URL-decoding (a non-UTF-8 caller name is recoverable there; ``get`` replaces bad bytes
with U+FFFD); ``wire(name)`` gives the plain value exactly as sent (still URL-encoded).
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterable, Iterator, Mapping
from itertools import compress, repeat
from operator import contains
from typing import Any
from urllib.parse import unquote, unquote_to_bytes

from esl_handlers.errors import FrameError, UnsupportedEventFormat
from esl_handlers.framing import Frame

__all__ = ["Event", "PLAIN", "JSON", "XML", "decode_plain_value"]

PLAIN = "text/event-plain"
JSON = "text/event-json"
XML = "text/event-xml"

_CL_LINE = b"\nContent-Length: "


def _needles(name: str) -> tuple[bytes, bytes] | None:
    """What a header line of ``name`` looks like: at the start, and after a LF."""
    if "\n" in name or ": " in name:
        return None    # could never be a header name once lines are split on the first ": "
    key = name.encode("utf-8", "surrogateescape") + b": "
    return key, b"\n" + key


# Precomputed for the headers read on every event (a constant, not state).
_NEEDLES: dict[str, tuple[bytes, bytes] | None] = {
    n: _needles(n) for n in (
        "Event-Name", "Event-Subclass", "Unique-ID", "Core-UUID", "Job-UUID", "Event-Sequence",
        "Event-Date-Timestamp", "Content-Length", "Channel-Call-State", "Answer-State",
        "Channel-State", "Hangup-Cause", "Application", "Application-Response",
        "Application-UUID", "DTMF-Digit", "Other-Leg-Unique-ID", "Caller-Caller-ID-Name",
        "Caller-Caller-ID-Number", "Caller-Destination-Number", "CC-Action",
    )
}


def _decode_many(values: list[str]) -> list[str]:
    """URL-decode each of ``values`` (ASCII text, as FreeSWITCH sends them) exactly as
    ``unquote`` decodes each alone, in a few C-level passes.

    The values are joined with LF (never raw in a value: FreeSWITCH encodes it), every
    ``%XX`` becomes a ``\\xXX`` escape for the ``unicode_escape`` codec (bytes as latin-1),
    the whole is read as UTF-8 (an LF byte never continues a UTF-8 sequence, so each value
    decodes as it would alone) and split on LF again; a value holding encoded LFs
    (``%0A``, SDP bodies) spans that many more parts, joined back. A malformed escape (a
    lone ``%``) makes the codec raise: then each value is decoded alone with ``unquote``."""
    joined = "\n".join(values)
    if "%" not in joined:
        return values
    try:
        escaped = joined.replace("\\", "\\\\") if "\\" in joined else joined
        text = codecs.decode(escaped.replace("%", "\\x"),
                             "unicode_escape").encode("latin-1").decode("utf-8", "replace")
    except UnicodeDecodeError:
        return [unquote(v) if "%" in v else v for v in values]
    parts = text.split("\n")
    if len(parts) == len(values):
        return parts
    # a value holding encoded LFs spans that many more parts: join them back
    out: list[str] = []
    i = 0
    for value in values:
        extra = value.count("%0A") + value.count("%0a") if "%0" in value else 0
        out.append("\n".join(parts[i:i + extra + 1]) if extra else parts[i])
        i += extra + 1
    if i != len(parts):     # cannot happen; decode each value alone rather than guess
        return [unquote(v) if "%" in v else v for v in values]
    return out


def decode_plain_value(raw: bytes) -> bytes:
    """URL-decode one plain-event value (``switch_url_decode``: ``%XX`` only, ``+`` stays)."""
    if b"%" in raw:
        return unquote_to_bytes(raw)
    return raw


def _text(raw: bytes) -> str:
    # decode_plain_value inlined: this runs for every value read, on the reader's hot path.
    if b"%" in raw:
        raw = unquote_to_bytes(raw)
    return raw.decode("utf-8", "replace")


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


class Event:
    """One FreeSWITCH event. Build with :meth:`from_frame` or :meth:`from_headers`.

    ``received_at`` is the monotonic time the connection read the event (None when built by
    hand): handlers measure their own delay from it, free of the switch's clock."""

    __slots__ = ("received_at",)
    received_at: float | None

    format: str = ""

    # --- construction ------------------------------------------------------------------
    @staticmethod
    def from_frame(frame: Frame) -> Event:
        """The event in a ``text/event-plain`` or ``text/event-json`` frame.

        Raises UnsupportedEventFormat for ``text/event-xml`` (and any non-event frame), and
        FrameError when a json body is not one JSON object (treat it as a framing error).
        Plain events never raise: they are read lazily and tolerantly.
        """
        ct = frame.content_type
        if ct == PLAIN:
            return PlainEvent(frame.body)
        if ct == JSON:
            return JsonEvent(frame.body)
        if ct == XML:
            raise UnsupportedEventFormat(
                "text/event-xml events are not supported: subscribe with `event plain ...` or "
                "`event json ...`")
        raise UnsupportedEventFormat(
            f"frame of Content-Type {ct!r} is not an event (expected {PLAIN} or {JSON})")

    @staticmethod
    def from_headers(headers: Mapping[str, Any] | Iterable[tuple[str, Any]],
                     body: str | bytes = "") -> Event:
        """An event built in code; a list value (or a repeated pair) gives a repeated header."""
        items = headers.items() if isinstance(headers, Mapping) else headers
        pairs: list[tuple[str, str]] = []
        for name, value in items:
            if value is None:
                continue
            if isinstance(value, (list, tuple)):
                pairs.extend((str(name), str(v)) for v in value)
            else:
                pairs.append((str(name), str(value)))
        return MappedEvent(pairs, body)

    # --- interface (subclasses implement get/get_all/raw/_names/body_bytes) --------------
    def get(self, name: str, default: str | None = None) -> str | None:
        raise NotImplementedError

    def get_all(self, name: str) -> list[str]:
        raise NotImplementedError

    def raw(self, name: str) -> bytes | None:
        raise NotImplementedError

    def _names(self) -> list[str]:
        """Header names, each once, in wire order."""
        raise NotImplementedError

    @property
    def body_bytes(self) -> bytes:
        raise NotImplementedError

    # --- shared conveniences -----------------------------------------------------------
    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.raw(name) is not None

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def items(self) -> Iterator[tuple[str, str]]:
        """(name, decoded first value) for each header name, in wire order."""
        for name in self._names():
            value = self.get(name)
            if value is not None:
                yield name, value

    def keys(self) -> list[str]:
        return self._names()

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    @property
    def body(self) -> str:
        return self.body_bytes.decode("utf-8", "replace")

    @property
    def name(self) -> str | None:
        return self.get("Event-Name")

    @property
    def subclass(self) -> str | None:
        return self.get("Event-Subclass")

    @property
    def unique_id(self) -> str | None:
        return self.get("Unique-ID")

    @property
    def core_uuid(self) -> str | None:
        return self.get("Core-UUID")

    @property
    def job_uuid(self) -> str | None:
        return self.get("Job-UUID")

    @property
    def sequence(self) -> int | None:
        return _int(self.get("Event-Sequence"))

    @property
    def timestamp_us(self) -> int | None:
        return _int(self.get("Event-Date-Timestamp"))

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {self.name} seq={self.get('Event-Sequence')} "
                f"uuid={self.unique_id}>")


class PlainEvent(Event):
    """A ``text/event-plain`` event over its bytes; values decoded when first read.

    The header section ends at the first empty line; an event body follows it only when the
    section's last line is ``Content-Length: n`` (how ``switch_event_serialize`` writes one).
    """

    __slots__ = ("_data", "_hend", "_clean", "_body", "_cache", "_pairs")

    format = "plain"

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._cache: dict[str, str] = {}
        self._pairs: list[tuple[str, bytes]] | None = None
        # A body needs a Content-Length line. When there is none anywhere (nearly every event),
        # the end of the header section is left to be found lazily, only as far as a lookup
        # needs (finding b"\n\n" costs more than any lookup: every line ends in LF).
        if data.rfind(_CL_LINE) < 0 and not data.startswith(b"Content-Length: "):
            self._hend = -1     # unknown yet
            self._clean = 0     # data[:_clean] holds no empty line
            self._body = b""
            return
        end = data.find(b"\n\n")
        if end < 0:
            # No empty line: all headers, no body (FreeSWITCH always ends with one; tolerate).
            self._hend = self._clean = len(data)
            self._body = b""
            return
        self._hend = self._clean = end + 1    # the section keeps the LF of its last line
        last = data.rfind(b"\n", 0, end) + 1
        self._body = b""
        if data.startswith(b"Content-Length: ", last):
            digits = data[last + 16:end]
            if digits.isdigit():
                self._body = data[end + 2:end + 2 + int(digits)]

    @property
    def body_bytes(self) -> bytes:
        return self._body

    def _header_end(self) -> int:
        hend = self._hend
        if hend < 0:
            data = self._data
            end = data.find(b"\n\n", max(self._clean - 1, 0))
            hend = self._hend = self._clean = end + 1 if end >= 0 else len(data)
        return hend

    def wire(self, name: str) -> bytes | None:
        """The first value of ``name`` exactly as sent (still URL-encoded)."""
        needles = _NEEDLES.get(name) or _needles(name)
        if needles is None:
            return None
        data = self._data
        first, inner = needles
        if data.startswith(first):
            i = len(first)
        else:
            hend = self._hend
            i = data.find(inner, 0, hend) if hend >= 0 else data.find(inner)
            if i < 0:
                return None
            if i >= self._clean and hend < 0:
                # Make sure no empty line comes before the match (it would be in the body).
                blank = data.find(b"\n\n", max(self._clean - 1, 0), i + 1)
                if blank >= 0:
                    self._hend = self._clean = blank + 1
                    return None
                self._clean = i + 1
            i += len(inner)
        j = data.find(b"\n", i)
        return data[i:j] if j >= 0 else data[i:]

    def raw(self, name: str) -> bytes | None:
        value = self.wire(name)
        return None if value is None else decode_plain_value(value)

    def get(self, name: str, default: str | None = None) -> str | None:
        cache = self._cache
        value = cache.get(name)
        if value is not None:
            return value
        wire = self.wire(name)
        if wire is None:
            return default
        value = cache[name] = _text(wire)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self._cache or self.wire(name) is not None)

    def _split(self) -> list[tuple[str, bytes]]:
        pairs = self._pairs
        if pairs is None:
            pairs = []
            for line in self._data[:self._header_end()].split(b"\n"):
                name, sep, value = line.partition(b": ")
                if sep:
                    pairs.append((name.decode("utf-8", "replace"), value))
            self._pairs = pairs
        return pairs

    def get_all(self, name: str) -> list[str]:
        return [_text(v) for n, v in self._split() if n == name]

    def items(self) -> Iterator[tuple[str, str]]:
        section = self._data[:self._header_end()]
        if not section.isascii():
            return self._items_bytes()
        # What FreeSWITCH sends (it encodes every byte > 0x7E): lines split as str, the
        # values holding a '%' decoded together (_decode_many), the first value of a
        # repeated name kept at its first place; what _items_bytes gives, in C loops.
        lines = section.decode("ascii").split("\n")
        if not lines[-1]:
            lines.pop()     # the section ends with the LF of its last line
        if not lines:
            return iter(())
        # each line split on its first ": " (all in C); lines without one are skipped
        names, seps, values = zip(*map(str.partition, lines, repeat(": ")), strict=True)
        if "" in seps:
            kept = [p for p in zip(names, seps, values, strict=True) if p[1]]
            if not kept:
                return iter(())
            names, seps, values = zip(*kept, strict=True)
        # Only values holding a '%' need decoding (about one in six in a channel event).
        decoded: list[str] = list(values)
        flags = list(map(contains, decoded, repeat("%")))
        if any(flags):
            for index, text_value in zip(compress(range(len(flags)), flags),
                                         _decode_many(list(compress(decoded, flags))),
                                         strict=True):
                decoded[index] = text_value
        firsts = dict(zip(names, decoded, strict=True))
        if len(firsts) != len(names):
            # a repeated name (Hangup-Cause): its first value, at its first place
            earliest = dict(zip(reversed(names), reversed(decoded), strict=True))
            firsts = dict(zip(firsts, map(earliest.__getitem__, firsts), strict=True))
        if self._cache:
            self._cache.update(firsts)      # the same values get() decoded
        else:
            self._cache = firsts
        return iter(firsts.items())

    def _items_bytes(self) -> Iterator[tuple[str, str]]:
        # One pass over the lines (get() per name would search the block each time).
        cache = self._cache
        seen: set[str] = set()
        for name, wire in self._split():
            if name not in seen:
                seen.add(name)
                decoded = cache.get(name)
                if decoded is None:
                    decoded = cache[name] = _text(wire)
                yield name, decoded

    def _names(self) -> list[str]:
        return list(dict.fromkeys(n for n, _ in self._split()))


class JsonEvent(Event):
    """A ``text/event-json`` event."""

    __slots__ = ("_pairs", "_first", "_body", "_escaped")

    format = "json"

    def __init__(self, data: bytes) -> None:
        try:
            text = data.decode("utf-8")
            escaped = False
        except UnicodeDecodeError:
            # Keep non-UTF-8 bytes reachable through raw(); get() replaces them.
            text = data.decode("utf-8", "surrogateescape")
            escaped = True
        try:
            # object_pairs_hook keeps repeated keys (Hangup-Cause twice), which dict drops.
            pairs = json.loads(text, object_pairs_hook=_pairs_hook)
        except (ValueError, RecursionError) as exc:
            raise FrameError(f"text/event-json body is not valid JSON: {exc}") from None
        if not isinstance(pairs, _Pairs):
            raise FrameError(f"text/event-json body is a JSON {type(pairs).__name__}, "
                             "not an object")
        first: dict[str, Any] = dict(reversed(pairs))
        body: Any = ""
        if "_body" in first:
            body = first.pop("_body")
            pairs = _Pairs((k, v) for k, v in pairs if k != "_body")
        self._pairs = pairs
        self._first = first
        self._escaped = escaped
        if not isinstance(body, str):
            body = json.dumps(body) if not isinstance(body, _Pairs) else ""
        self._body = body.encode("utf-8", "surrogateescape") if escaped else body.encode()

    def _clean(self, value: str) -> str:
        if self._escaped:
            return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        return value

    def _values(self, value: Any) -> list[str]:
        if isinstance(value, list):
            return [self._clean(_scalar(v)) for v in value]
        return [self._clean(_scalar(value))]

    def get(self, name: str, default: str | None = None) -> str | None:
        value = self._first.get(name)
        if value is None:
            return default
        if type(value) is str:
            return self._clean(value) if self._escaped else value
        values = self._values(value)
        return values[0] if values else default

    def get_all(self, name: str) -> list[str]:
        out: list[str] = []
        for k, v in self._pairs:
            if k == name:
                out.extend(self._values(v))
        return out

    def raw(self, name: str) -> bytes | None:
        value = self._first.get(name)
        if value is None:
            return None
        if isinstance(value, list):
            if not value:
                return None
            value = value[0]
        return _scalar(value).encode("utf-8", "surrogateescape")

    def __contains__(self, name: object) -> bool:
        return name in self._first

    def _names(self) -> list[str]:
        return list(dict.fromkeys(k for k, _ in self._pairs))

    @property
    def body_bytes(self) -> bytes:
        return self._body


class _Pairs(list):
    """A decoded JSON object as its (key, value) pairs (distinct from a JSON array)."""

    __slots__ = ()


def _pairs_hook(pairs: list[tuple[str, Any]]) -> _Pairs:
    return _Pairs(pairs)


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, _Pairs):
        return json.dumps(dict(value))
    return json.dumps(value)


class MappedEvent(Event):
    """An event built in code from (name, value) pairs (tests, reconciliation)."""

    __slots__ = ("_pairs", "_first", "_body")

    format = "mapped"

    def __init__(self, pairs: list[tuple[str, str]], body: str | bytes = "") -> None:
        self._pairs = pairs
        self._first = dict(reversed(pairs))
        self._body = body.encode() if isinstance(body, str) else bytes(body)

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._first.get(name, default)

    def get_all(self, name: str) -> list[str]:
        return [v for n, v in self._pairs if n == name]

    def raw(self, name: str) -> bytes | None:
        value = self._first.get(name)
        return None if value is None else value.encode("utf-8", "surrogateescape")

    def __contains__(self, name: object) -> bool:
        return name in self._first

    def _names(self) -> list[str]:
        return list(dict.fromkeys(n for n, _ in self._pairs))

    @property
    def body_bytes(self) -> bytes:
        return self._body
