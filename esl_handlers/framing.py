"""ESL framing: the byte stream from FreeSWITCH's event socket, cut into frames.

A frame is a header block of ``Name: value`` lines ended by an empty line, then, when the
block has ``Content-Length: N``, exactly N bytes of body with no terminator (MES
``mod_event_socket.c``: ``read_packet`` / the ``Content-Length: %ld\\nContent-Type: ...``
writers). Outer header values are NOT URL-encoded (``Reply-Text: +OK accepted``), so they are
only decoded from UTF-8 here; events (the bodies of ``text/event-*`` frames) are viewed by
``esl_handlers.events``.

Decisions, taken on purpose:

* Lines end in LF, as FreeSWITCH writes them. A CR in an outer header block is a
  :class:`FrameError` (a CRLF peer is not FreeSWITCH, and tolerating it would hide the bug);
  a CRLF block with no LF-LF is refused as soon as it is seen rather than buffered to the cap.
* An outer header line without ``": "`` (or with an empty name) is a :class:`FrameError`:
  FreeSWITCH never sends one, so seeing it means we lost the frame boundary. So is an empty
  header block (a stray blank line where a frame should start), a non-numeric or negative
  ``Content-Length``, two different ``Content-Length`` values, a body larger than
  ``max_frame_bytes`` and a header block larger than ``max_header_bytes``. A body over the
  cap is refused from its ``Content-Length`` alone, before a byte of it is buffered, so
  memory stays bounded whatever the peer sends.
* After a :class:`FrameError` the parser refuses all input: the connection must be reset.
  Frames completed earlier in the same ``feed`` call are on the exception, as ``exc.frames``.
* A truncated frame cannot be told from a slow one: it stays buffered (``buffered``,
  ``at_frame_boundary()``) until more bytes come or the connection ends.

Speed: the stream is split with ``bytes.find`` and slices only (no per-byte Python loop, no
regex). Bytes arriving while a frame is incomplete are kept as a list of chunks and joined
once, so a large frame arriving in small reads costs linear, not quadratic, time.
"""

from __future__ import annotations

from collections.abc import Iterator

from esl_handlers.errors import FrameError

__all__ = ["MAX_FRAME_BYTES", "MAX_HEADER_BYTES", "Frame", "FrameParser", "Headers"]

#: FreeSWITCH master refuses client bodies over 16 MiB; we cap what we accept the same way.
MAX_FRAME_BYTES = 16 * 1024 * 1024
#: Outer header blocks are small (a few KiB at most); see FrameParser.
MAX_HEADER_BYTES = 1024 * 1024

_SNIPPET = 60
_CACHE_BLOCK_BYTES = 128
_CACHE_ENTRIES = 4096


def _human(n: int) -> str:
    if n % (1024 * 1024) == 0:
        return f"{n // (1024 * 1024)} MiB"
    if n % 1024 == 0:
        return f"{n // 1024} KiB"
    return f"{n} bytes"


class Headers:
    """Outer frame headers in wire order; lookups return the first value of a name."""

    __slots__ = ("_pairs", "_first")

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = pairs
        # reversed() so that the FIRST occurrence of a repeated name wins, in C.
        self._first: dict[str, str] = dict(reversed(pairs)) if len(pairs) > 1 else dict(pairs)

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._first.get(name, default)

    def __getitem__(self, name: str) -> str:
        return self._first[name]

    def __contains__(self, name: object) -> bool:
        return name in self._first

    def __len__(self) -> int:
        return len(self._first)

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def keys(self) -> list[str]:
        return [name for name, _ in self.items()]

    def get_all(self, name: str) -> list[str]:
        return [v for n, v in self._pairs if n == name]

    def items(self) -> Iterator[tuple[str, str]]:
        """(name, first value), each name once, in wire order."""
        seen: set[str] = set()
        for name, _ in self._pairs:
            if name not in seen:
                seen.add(name)
                yield name, self._first[name]

    def pairs(self) -> list[tuple[str, str]]:
        """Every header line as (name, value), repeats included, in wire order."""
        return list(self._pairs)

    def __repr__(self) -> str:
        return f"Headers({self._pairs!r})"


class Frame:
    """One ESL frame: outer headers (not URL-decoded) and the Content-Length body."""

    __slots__ = ("content_type", "headers", "body")

    def __init__(self, content_type: str, headers: Headers, body: bytes) -> None:
        self.content_type = content_type
        self.headers = headers
        self.body = body

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.headers._first.get(name, default)

    @property
    def is_event(self) -> bool:
        return self.content_type.startswith("text/event-")

    def __repr__(self) -> str:
        return (f"Frame(content_type={self.content_type!r}, headers={self.headers._pairs!r}, "
                f"body={self.body[:80]!r}{'...' if len(self.body) > 80 else ''})")


class FrameParser:
    """Incremental ESL frame parser: ``feed(bytes) -> [Frame, ...]``.

    Any split of the same byte stream into ``feed`` calls yields the same frames.
    ``max_frame_bytes`` caps a body; a header block is capped at ``max_header_bytes`` (1 MiB
    by default, never more than ``max_frame_bytes``): FreeSWITCH's largest outer header block,
    the outbound ``connect`` reply with the channel data, is a few KiB, and a header block is
    split into Python objects, which cost several times its size in memory.
    """

    def __init__(self, max_frame_bytes: int = MAX_FRAME_BYTES,
                 max_header_bytes: int = MAX_HEADER_BYTES) -> None:
        if max_frame_bytes < 1 or max_header_bytes < 1:
            raise ValueError("max_frame_bytes and max_header_bytes must be positive")
        self._max = max_frame_bytes
        self._max_head = min(max_header_bytes, max_frame_bytes)
        self._chunks: list[bytes] = []    # bytes of the incomplete frame (or header block)
        self._have = 0                    # sum of len(self._chunks)
        self._body_need = -1              # >= 0: body length awaited for self._held
        self._held: tuple[str, Headers] | None = None
        self._offset = 0                  # stream offset of self._chunks[0], for messages
        self._error: str | None = None
        # Header blocks repeat (every event frame is `Content-Length: N\nContent-Type: ...`):
        # their parse is memoised per parser. Headers objects are read-only, so sharing is safe.
        self._block_cache: dict[bytes, tuple[str, Headers, int]] = {}

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as part of a frame."""
        return self._have

    @property
    def failed(self) -> bool:
        return self._error is not None

    def at_frame_boundary(self) -> bool:
        """True when no partial frame is buffered (every byte fed so far is in a frame)."""
        return self._have == 0 and self._body_need < 0

    def _fail(self, message: str) -> FrameError:
        self._error = message
        # Drop what we hold at once: after a framing error it is garbage, and a caller that
        # keeps the parser around must not keep up to max_frame_bytes alive with it.
        self._chunks = []
        self._have = 0
        self._held = None
        self._body_need = -1
        return FrameError(message)

    def feed(self, data: bytes) -> list[Frame]:
        if self._error is not None:
            raise FrameError(f"ESL parser closed after a framing error ({self._error}); "
                             "reset the connection and start a new parser")
        if not data:
            return []
        if type(data) is not bytes:
            data = bytes(data)
        frames: list[Frame] = []
        chunks = self._chunks
        if self._body_need >= 0:
            # Awaiting a body: collect reads without copying until it is complete, then join
            # exactly the body (a second copy of a 16 MiB body would double the peak).
            chunks.append(data)
            have = self._have + len(data)
            need = self._body_need
            if have < need:
                self._have = have
                return frames
            extra = have - need
            if extra:
                chunks[-1] = data[:len(data) - extra]
                data = data[len(data) - extra:]
            body = b"".join(chunks) if len(chunks) > 1 else chunks[0]
            chunks.clear()
            held = self._held
            assert held is not None
            frames.append(Frame(held[0], held[1], body))
            del body
            self._held = None
            self._body_need = -1
            self._have = 0
            self._offset += need
            if not extra:
                return frames
            buf = data
        elif chunks:
            # An incomplete header block is pending: only look at the new bytes (and the one
            # before them) for its end, so a block arriving in small reads costs linear time.
            tail = chunks[-1][-3:]
            if not ((tail[-1:] == b"\n" and data[:1] == b"\n") or b"\n\n" in data):
                chunks.append(data)
                self._have += len(data)
                self._check_open_block(tail + data[:3], data)
                return frames
            chunks.append(data)
            buf = b"".join(chunks)
            chunks.clear()
            self._have = 0
        else:
            buf = data
        try:
            self._parse(buf, frames)
        except FrameError as exc:
            # Frames completed before the bad bytes are still good: hand them over on the
            # exception so the caller may dispatch them before resetting the connection.
            exc.frames = frames  # type: ignore[attr-defined]
            raise
        return frames

    def _check_open_block(self, seam: bytes, new: bytes) -> None:
        if self._have > self._max_head:
            raise self._fail(f"header block of over {self._have} bytes without an empty line "
                             f"at stream offset {self._offset} exceeds the "
                             f"{_human(self._max_head)} cap")
        if b"\r\n\r\n" in new or b"\r\n\r\n" in seam:
            raise self._fail(f"CRLF line endings in the header block at stream offset "
                             f"{self._offset}: FreeSWITCH ends ESL lines with LF only")

    def _parse(self, buf: bytes, frames: list[Frame]) -> None:
        """Frames from ``buf``, which starts at a frame boundary; keeps what is incomplete."""
        append = frames.append
        n = len(buf)
        pos = 0
        max_head = self._max_head
        base = self._offset
        find = buf.find
        cache = self._block_cache
        while pos < n:
            end = find(b"\n\n", pos, pos + max_head + 2)
            if end < 0:
                rest = n - pos
                self._offset = base + pos
                if rest > max_head:
                    raise self._fail(f"header block of over {rest} bytes without an empty line "
                                     f"at stream offset {base + pos} exceeds the "
                                     f"{_human(max_head)} cap")
                if find(b"\r\n\r\n", pos) >= 0:
                    raise self._fail(f"CRLF line endings in the header block at stream offset "
                                     f"{base + pos}: FreeSWITCH ends ESL lines with LF only")
                self._chunks = [buf[pos:] if pos else buf]
                self._have = rest
                return
            if end == pos:
                raise self._fail(f"empty line where a header block should start, at stream "
                                 f"offset {base + pos}")
            block = buf[pos:end]
            parsed = cache.get(block)
            if parsed is None:
                parsed = self._parse_block(block, base + pos)
                if end - pos <= _CACHE_BLOCK_BYTES:
                    if len(cache) >= _CACHE_ENTRIES:
                        cache.clear()
                    cache[block] = parsed
            content_type, headers, length = parsed
            pos = end + 2
            if length > 0:
                if n - pos < length:
                    self._offset = base + pos
                    self._held = (content_type, headers)
                    self._body_need = length
                    self._chunks = [buf[pos:]] if pos < n else []
                    self._have = n - pos
                    return
                append(Frame(content_type, headers, buf[pos:pos + length]))
                pos += length
            else:
                append(Frame(content_type, headers, b""))
        self._offset = base + n
        self._chunks = []
        self._have = 0

    def _parse_block(self, block: bytes, offset: int) -> tuple[str, Headers, int]:
        if b"\r" in block:
            raise self._fail(f"CR in the header block at stream offset {offset} "
                             f"(CRLF line endings?): FreeSWITCH ends ESL lines with LF only")
        content_type = ""
        length = -1
        pairs: list[tuple[str, str]] = []
        for line in block.decode("utf-8", "replace").split("\n"):
            name, sep, value = line.partition(": ")
            if not sep or not name:
                what = "has no ': '" if not sep else "has an empty name"
                raise self._fail(f"header line {line[:_SNIPPET]!r} at stream offset {offset} "
                                 f"{what} (lost frame boundary?)")
            if name == "Content-Length":
                cl = self._content_length(value, offset)
                if length >= 0 and cl != length:
                    raise self._fail(f"two different Content-Length values ({length} and {cl}) "
                                     f"in one header block at stream offset {offset}")
                length = cl
            elif name == "Content-Type" and not content_type:
                content_type = value
            pairs.append((name, value))
        return content_type, Headers(pairs), length

    def _content_length(self, value: str, offset: int) -> int:
        if value.isascii() and value.isdigit() and len(value) <= 15:
            cl = int(value)
        elif value[:1] == "-" and value[1:].isascii() and value[1:].isdigit():
            raise self._fail(f"Content-Length {value[:_SNIPPET]!r} is negative, at stream offset "
                             f"{offset}")
        elif value.isascii() and value.isdigit():
            cl = self._max + 1    # far too many digits: certainly over the cap
        else:
            raise self._fail(f"Content-Length {value[:_SNIPPET]!r} is not a number, at stream "
                             f"offset {offset}")
        if cl > self._max:
            raise self._fail(f"frame of {cl if len(value) <= 15 else value[:_SNIPPET]} bytes "
                             f"exceeds the {_human(self._max)} cap (Content-Length at stream "
                             f"offset {offset})")
        return cl
