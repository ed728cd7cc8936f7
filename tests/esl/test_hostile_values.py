"""Caller-controlled values (SIP display name, custom SIP headers) cannot forge headers.

FreeSWITCH URL-encodes each plain header value on its own (esl-protocol.md, "Plain event
encoding"; switch_utils.c switch_url_encode_opt). A newline in a value travels as %0A, and a
literal "%0A" typed by the caller is sent unchanged (a '%' already followed by two upper-case
hex digits is copied). greenswitch 0.0.19 decodes the whole block before splitting it into
lines, so either form becomes a line break and the text after it becomes a header, later
lines overwriting earlier ones. We split first and decode each value: the value stays whole.
Each test shows both sides on the same bytes: we read the truth, greenswitch is fooled.
"""

from __future__ import annotations

import json
import string
from urllib.parse import unquote

import pytest
from greenswitch.esl import ESLEvent
from hypothesis import strategies as st

from esl_handlers.events import Event
from esl_handlers.framing import FrameParser
from tests.props import twice

TRUE_UID = "fa845888-87a0-4c28-92e6-f430702be511"
FORGED_UID = "00000000-dead-beef-0000-000000000000"

# Written from esl-protocol.md: these printable bytes are NOT encoded; every other byte
# (controls, > 0x7E, and `\r\n #%&+:;<=>?@[\]^`{|}"`) becomes %XX with upper-case hex,
# except a '%' that is already followed by two upper-case hex digits.
_SAFE = frozenset((string.ascii_letters + string.digits + ",/-._~'()*!$").encode())
_UPPER_HEX = frozenset(b"0123456789ABCDEF")


def fs_url_encode(value: str) -> str:
    raw = value.encode("utf-8", "surrogateescape")
    out: list[str] = []
    for i, byte in enumerate(raw):
        if byte in _SAFE:
            out.append(chr(byte))
        elif byte == 0x25 and raw[i + 1:i + 2] and raw[i + 1] in _UPPER_HEX \
                and raw[i + 2:i + 3] and raw[i + 2] in _UPPER_HEX:
            out.append("%")
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)


def plain_event(pairs: list[tuple[str, str]], body: str | None = None) -> bytes:
    text = "".join(f"{name}: {fs_url_encode(value) or '_undef_'}\n" for name, value in pairs)
    if body:
        raw = body.encode()
        return text.encode() + b"Content-Length: %d\n\n" % len(raw) + raw
    return text.encode() + b"\n"


def frame(payload: bytes, ctype: str = "text/event-plain") -> bytes:
    return b"Content-Length: %d\nContent-Type: %s\n\n" % (len(payload), ctype.encode()) + payload


def channel_create(caller_name: str, sip_header: str) -> list[tuple[str, str]]:
    # Standard headers in FreeSWITCH's order, then channel data; the caller's values come
    # after Unique-ID, as in every channel event (so a forged later line wins in greenswitch).
    return [
        ("Event-Name", "CHANNEL_CREATE"),
        ("Core-UUID", "06bf8774-9896-4af7-ac70-021fdda29e38"),
        ("FreeSWITCH-Hostname", "vm"),
        ("Event-Date-Timestamp", "1795604532780025"),
        ("Event-Sequence", "601"),
        ("Channel-State", "CS_INIT"),
        ("Channel-Name", "sofia/internal/1001@192.0.2.2"),
        ("Unique-ID", TRUE_UID),
        ("Answer-State", "ringing"),
        ("Caller-Caller-ID-Name", caller_name),
        ("Caller-Caller-ID-Number", "1001"),
        ("variable_sip_h_X-Foo", sip_header),
        ("variable_empty", ""),
    ]


def ours(payload: bytes) -> Event:
    parser = FrameParser()
    (f,) = parser.feed(frame(payload))
    assert parser.at_frame_boundary()
    return Event.from_frame(f)


def greenswitch(payload: bytes) -> dict[str, str]:
    # greenswitch's own event parser on the same event text (ESLProtocol.handle_event calls
    # parse_data on the body it read).
    return ESLEvent(payload.decode("utf-8")).headers


HOSTILE = [
    pytest.param(f"Mallory\nUnique-ID: {FORGED_UID}\nEvent-Name: CHANNEL_HANGUP_COMPLETE",
                 id="newline-in-value"),
    pytest.param(f"Mallory%0AUnique-ID%3A%20{FORGED_UID}%0AEvent-Name%3A%20CHANNEL_HANGUP_COMPLETE",
                 id="literal-%0A-sent-unchanged"),
]


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_caller_name_and_sip_header_cannot_forge_headers(hostile: str) -> None:
    payload = plain_event(channel_create(hostile, hostile + "\nAnswer-State: answered"))
    assert b"\nUnique-ID: " + FORGED_UID.encode() not in payload  # encoded on the wire
    ev = ours(payload)
    # The truth, read by us.
    assert ev.name == "CHANNEL_CREATE"
    assert ev.unique_id == TRUE_UID
    assert ev.get("Answer-State") == "ringing"
    assert ev.get_all("Unique-ID") == [TRUE_UID]
    assert ev.get_all("Event-Name") == ["CHANNEL_CREATE"]
    assert [n for n, _ in ev.items()] == [n for n, _ in channel_create("", "")]
    # The hostile values themselves, decoded whole (as FreeSWITCH's own decoder reads them:
    # a literal upper-case %XX was sent unchanged, so it decodes too).
    expected = unquote(fs_url_encode(hostile))
    assert "\n" in expected and f"Unique-ID: {FORGED_UID}" in expected
    assert ev.get("Caller-Caller-ID-Name") == expected
    assert ev.get("variable_sip_h_X-Foo") == unquote(fs_url_encode(hostile + "\nAnswer-State: answered"))
    assert ev.get("variable_empty") == "_undef_"

    # The gap we close: greenswitch 0.0.19 on the same bytes is fooled.
    gs = greenswitch(payload)
    assert gs["Unique-ID"] == FORGED_UID
    assert gs["Event-Name"] == "CHANNEL_HANGUP_COMPLETE"
    assert gs["Answer-State"] == "answered"
    assert gs["Caller-Caller-ID-Name"] == "Mallory"


def test_forged_lines_in_a_background_job_body_stay_in_the_body() -> None:
    out = f"+OK {TRUE_UID}\nUnique-ID: {FORGED_UID}\nEvent-Name: CHANNEL_ANSWER\n"
    payload = plain_event([("Event-Name", "BACKGROUND_JOB"), ("Job-UUID", "j-1"),
                           ("Job-Command", "originate")], body=out)
    ev = ours(payload)
    assert ev.name == "BACKGROUND_JOB" and ev.job_uuid == "j-1"
    assert ev.unique_id is None
    assert ev.body == out
    gs = greenswitch(payload)
    # greenswitch leaves the body inside its Content-Length value and reads body lines as headers.
    assert gs["Event-Name"] == "CHANNEL_ANSWER"
    assert gs["Unique-ID"] == FORGED_UID
    assert gs["Content-Length"].startswith(str(len(out.encode())))


def test_hostile_json_value_is_a_plain_string() -> None:
    hostile = f"Mallory\nUnique-ID: {FORGED_UID}\nEvent-Name: CHANNEL_HANGUP_COMPLETE"
    obj = dict(channel_create(hostile, hostile))
    payload = json.dumps(obj, separators=(",", ":")).encode()
    (f,) = FrameParser().feed(frame(payload, "text/event-json"))
    ev = Event.from_frame(f)
    assert ev.name == "CHANNEL_CREATE" and ev.unique_id == TRUE_UID
    assert ev.get("Caller-Caller-ID-Name") == hostile


values = st.text(alphabet=st.characters(codec="utf-8"), max_size=60) | st.sampled_from([
    "%0A", "%0AUnique-ID%3A%20x", ": ", "\n\n", "Event-Name: X", "%", "%%41", "%0a", "a+b",
    "_undef_", "\r\nUnique-ID: y",
])


def _round_trip(name_value: str, header_value: str) -> None:
    pairs = channel_create(name_value, header_value)
    ev = ours(plain_event(pairs))
    assert ev.unique_id == TRUE_UID and ev.name == "CHANNEL_CREATE"
    assert [n for n, _ in ev.items()] == [n for n, _ in pairs]
    for value, header in ((name_value, "Caller-Caller-ID-Name"),
                          (header_value, "variable_sip_h_X-Foo")):
        assert ev.get(header) == (unquote(fs_url_encode(value)) or "_undef_")
        if "%" not in value:    # lossless unless the value holds a literal %XX
            assert ev.get(header) == (value or "_undef_")


(test_any_value_round_trips_without_touching_other_headers,
 test_any_value_round_trips_without_touching_other_headers_explored) = twice(
    200, name_value=values, header_value=values)(_round_trip)


def _encoder_agrees(value: str) -> None:
    wire = pytest.importorskip("fssim.wire")
    encode = getattr(wire, "url_encode", None)
    if encode is None:
        pytest.skip("fssim.wire has no url_encode")
    assert encode(value) == fs_url_encode(value)


(test_simulator_encoder_agrees_with_the_documented_encoding,
 test_simulator_encoder_agrees_with_the_documented_encoding_explored) = twice(
    200, value=values)(_encoder_agrees)
