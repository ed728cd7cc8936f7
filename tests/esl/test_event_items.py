"""``Event.items()`` of plain events: every header once, first value, decoded, in wire order.

items() has a fast path for ASCII sections (values holding a '%' decoded together, C-level
splits). It is held here to references that share no code with it:

* every event of every capture, against ``tests/capreader.py``;
* generated sections (odd lines, repeated names, ``%0A`` / lone ``%`` / ``%zz`` / ``\\``
  values, names holding ``%`` or ``:``), against the few lines of ``reference_items`` below.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import strategies as st

from esl_handlers.events import Event
from esl_handlers.framing import FrameParser
from tests.capreader import events as read_events
from tests.capreader import url_decode
from tests.props import twice


def plain(section: bytes) -> Event:
    body = section + b"\n"
    (frame,) = FrameParser().feed(b"Content-Length: %d\nContent-Type: text/event-plain\n\n%b"
                                  % (len(body), body))
    return Event.from_frame(frame)


def reference_items(section: bytes) -> list[tuple[str, str]]:
    """Each line split on its first ': ' (lines without one skipped), a name once with its
    first value, the value's %XX turned into bytes, read as UTF-8."""
    out: dict[str, str] = {}
    for line in section.split(b"\n"):
        name, sep, value = line.partition(b": ")
        if sep:
            out.setdefault(name.decode("utf-8", "replace"), url_decode(value))
    return list(out.items())


def test_every_captured_event_reads_as_the_independent_reader_reads_it(
        captures_dir: Path) -> None:
    fs = captures_dir / "freeswitch-1.10.12"
    streams = [fs / "esl_plain.raw", *sorted(fs.glob("scenarios/*/wire.raw"))]
    checked = 0
    for path in streams:
        data = path.read_bytes()
        ours = [Event.from_frame(f) for f in FrameParser().feed(data)
                if f.content_type == "text/event-plain"]
        theirs = read_events(data)
        assert len(ours) == len(theirs), path
        for mine, ref in zip(ours, theirs, strict=True):
            assert list(mine.items()) == ref.items(), (path.name, ref.name)
            checked += 1
    assert checked > 1000


def test_a_repeated_header_gives_its_first_value_at_its_first_place() -> None:
    ev = plain(b"Event-Name: X\nHangup-Cause: NORMAL_CLEARING\nA: %41\n"
               b"Hangup-Cause: USER_BUSY")
    assert list(ev.items()) == [("Event-Name", "X"), ("Hangup-Cause", "NORMAL_CLEARING"),
                                ("A", "A")]


def test_an_encoded_line_feed_stays_inside_its_value() -> None:
    ev = plain(b"Event-Name: X\nSDP: v=0%0D%0Ao=a%0Aa=x\nNext: %E4%BD%A0%zz%")
    assert list(ev.items()) == [("Event-Name", "X"), ("SDP", "v=0\r\no=a\na=x"),
                                ("Next", "\u4f60%zz%")]


_names = st.sampled_from(["Event-Name", "Unique-ID", "Hangup-Cause", "variable_x", "a%41",
                          "n:m", "", " x"])
_values = st.text(alphabet="ab %0AaFz:\\\u00e9\r", max_size=12) | st.sampled_from([
    "%0A", "%0a", "%", "%%41", "%zz", "%E4%BD%A0", "%E4%BD", "\\x41", "a: b", "_undef_"])
_lines = st.one_of(st.tuples(_names, _values).map(lambda nv: f"{nv[0]}: {nv[1]}"),
                   st.sampled_from(["no separator", "x:y", ": leading"]))


def _matches_reference(lines: list[str]) -> None:
    section = "\n".join(lines).encode("utf-8")
    if b"\n\n" in section or not section:
        return                       # an empty line ends the headers: not a section
    assert list(plain(section).items()) == reference_items(section)


(test_items_equal_the_reference_on_generated_sections,
 test_items_equal_the_reference_on_generated_sections_explored) = twice(
    300, lines=st.lists(_lines, min_size=1, max_size=12))(_matches_reference)
