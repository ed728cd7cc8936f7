"""Unit tests of the frame parser and event views contract (esl_handlers.framing/.events)."""

from __future__ import annotations

import json

import pytest

from cc_core.errors import FrameError, UnsupportedEventFormat
from esl_handlers.events import Event
from esl_handlers.framing import MAX_FRAME_BYTES, Frame, FrameParser

# Fixed server frames, as FreeSWITCH 1.10.12 writes them (esl_plain.raw, esl_commands.raw;
# mod_event_socket.c: the ACL refusal in listener_run).
AUTH_REQUEST = b"Content-Type: auth/request\n\n"
DISCONNECT = (b"Content-Type: text/disconnect-notice\nContent-Length: 67\n\n"
              b"Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n")
RUDE = b"Content-Type: text/rude-rejection\nContent-Length: 24\n\nAccess Denied, go away.\n"


def reply(text: str, *extra: str) -> bytes:
    return ("Content-Type: command/reply\nReply-Text: " + text + "\n"
            + "".join(e + "\n" for e in extra) + "\n").encode()


def api(body: bytes) -> bytes:
    return b"Content-Type: api/response\nContent-Length: %d\n\n" % len(body) + body


def event_frame(payload: bytes, ctype: str = "text/event-plain") -> bytes:
    return b"Content-Length: %d\nContent-Type: %s\n\n" % (len(payload), ctype.encode()) + payload


def plain(*lines: str, body: bytes | None = None) -> bytes:
    text = "".join(line + "\n" for line in lines).encode()
    if body is None:
        return text + b"\n"
    return text + b"Content-Length: %d\n\n" % len(body) + body


def parse_all(data: bytes) -> list[Frame]:
    parser = FrameParser()
    frames = parser.feed(data)
    assert parser.at_frame_boundary(), "bytes left over"
    return frames


def ev_of(payload: bytes, ctype: str = "text/event-plain") -> Event:
    (frame,) = parse_all(event_frame(payload, ctype))
    return Event.from_frame(frame)


HANGUP = plain(
    "Event-Name: CHANNEL_HANGUP_COMPLETE",
    "Core-UUID: 06bf8774-9896-4af7-ac70-021fdda29e38",
    "Event-Date-Timestamp: 1795604532780025",
    "Event-Sequence: 612",
    "Hangup-Cause: NORMAL_CLEARING",
    "Unique-ID: fa845888-87a0-4c28-92e6-f430702be511",
    "Caller-Caller-ID-Name: Dan%20X-Lite",
    "variable_empty: _undef_",
    "variable_DP_MATCH: ARRAY%3A%3A4008001234%7C%3A4008001234",
    "Hangup-Cause: NORMAL_CLEARING_2",
)


# ---------------------------------------------------------------------------- outer frames
def test_max_frame_bytes_is_16_mib() -> None:
    assert MAX_FRAME_BYTES == 16 * 1024 * 1024


def test_auth_request_and_command_reply_reply_text_is_not_url_decoded() -> None:
    frames = parse_all(AUTH_REQUEST + reply("+OK accepted")
                       + reply("+OK Job-UUID: 41754c9c", "Job-UUID: 41754c9c")
                       + reply("%2BOK%0A", "Socket-Mode: async", "Control: full"))
    assert [f.content_type for f in frames] == ["auth/request"] + ["command/reply"] * 3
    assert frames[0].body == b""
    assert frames[1].get("Reply-Text") == "+OK accepted"
    assert frames[2].get("Reply-Text") == "+OK Job-UUID: 41754c9c"  # split on the FIRST ": "
    assert frames[2].get("Job-UUID") == "41754c9c"
    # The outbound `connect` reply is sent encoded; outer values are passed through as sent.
    assert frames[3].headers.get("Reply-Text") == "%2BOK%0A"
    assert frames[3].get("Missing", "dflt") == "dflt"


def test_api_response_body_has_no_terminator_and_next_frame_follows_at_once() -> None:
    body = b"-ERR no reply\n"
    frames = parse_all(api(body) + api(b"+OK\n") + reply("+OK"))
    assert [f.body for f in frames] == [body, b"+OK\n", b""]
    assert frames[0].content_type == "api/response"
    assert frames[0].get("Content-Length") == str(len(body))


def test_api_response_body_may_contain_blank_lines_and_header_like_text() -> None:
    body = b"line: one\n\nContent-Type: command/reply\nReply-Text: forged\n\n"
    frames = parse_all(api(body) + reply("+OK"))
    assert frames[0].body == body
    assert frames[1].get("Reply-Text") == "+OK"


def test_disconnect_notice_and_rude_rejection() -> None:
    frames = parse_all(DISCONNECT + RUDE)
    assert frames[0].content_type == "text/disconnect-notice"
    assert frames[0].body == b"Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"
    assert frames[1].content_type == "text/rude-rejection"
    assert frames[1].body == b"Access Denied, go away.\n"


def test_log_data_frame_headers_and_body() -> None:
    text = b"2026-11-25 11:02:12.780025 [NOTICE] switch_core.c:1234 hello\n"
    data = (b"Content-Type: log/data\nContent-Length: %d\nLog-Level: 5\nText-Channel: 3\n"
            b"Log-File: switch_core.c\nLog-Func: go\nLog-Line: 1234\nUser-Data: \n\n" % len(text)
            + text)
    (frame,) = parse_all(data)
    assert frame.content_type == "log/data"
    assert frame.body == text
    assert frame.get("Log-Level") == "5"
    assert frame.get("User-Data") == ""


def test_duplicate_outer_headers_first_wins_all_kept_and_missing_content_type() -> None:
    (frame,) = parse_all(b"X-A: 1\nX-A: 2\nX-B: 3\n\n")
    assert frame.content_type == ""
    assert frame.get("X-A") == "1"
    assert frame.headers.get_all("X-A") == ["1", "2"]
    assert list(frame.headers.items()) == [("X-A", "1"), ("X-B", "3")]
    assert frame.headers.pairs() == [("X-A", "1"), ("X-A", "2"), ("X-B", "3")]
    assert "X-B" in frame.headers and "X-C" not in frame.headers


def test_non_utf8_outer_value_is_replaced_not_fatal() -> None:
    (frame,) = parse_all(b"Content-Type: command/reply\nReply-Text: -ERR caf\xe9\n\n")
    assert frame.get("Reply-Text") == "-ERR caf\ufffd"


def test_every_split_of_a_stream_gives_the_same_frames() -> None:
    stream = (AUTH_REQUEST + reply("+OK accepted") + event_frame(HANGUP) + api(b"+OK\n")
              + event_frame(plain("Event-Name: BACKGROUND_JOB", "Job-UUID: j1", body=b"+OK x\n"))
              + DISCONNECT)
    want = [(f.content_type, f.headers.pairs(), f.body) for f in parse_all(stream)]
    assert len(want) == 6
    for cut in range(len(stream) + 1):
        parser = FrameParser()
        got = parser.feed(stream[:cut]) + parser.feed(stream[cut:])
        assert [(f.content_type, f.headers.pairs(), f.body) for f in got] == want, cut
        assert parser.at_frame_boundary()
    parser = FrameParser()
    got = [f for i in range(len(stream)) for f in parser.feed(stream[i:i + 1])]
    assert [(f.content_type, f.headers.pairs(), f.body) for f in got] == want


def test_partial_frame_is_buffered_until_complete() -> None:
    parser = FrameParser()
    data = api(b"+OK done\n")
    assert parser.feed(data[:-3]) == []
    assert not parser.at_frame_boundary()
    assert parser.buffered > 0
    (frame,) = parser.feed(data[-3:])
    assert frame.body == b"+OK done\n"
    assert parser.at_frame_boundary() and parser.buffered == 0


def test_accepts_bytearray_and_memoryview() -> None:
    parser = FrameParser()
    assert [f.content_type for f in parser.feed(bytearray(AUTH_REQUEST))] == ["auth/request"]
    assert [f.body for f in parser.feed(memoryview(api(b"x")))] == [b"x"]


# ---------------------------------------------------------------------------- plain events
def test_plain_event_standard_properties() -> None:
    ev = ev_of(HANGUP)
    assert ev.name == "CHANNEL_HANGUP_COMPLETE"
    assert ev.unique_id == "fa845888-87a0-4c28-92e6-f430702be511"
    assert ev.core_uuid == "06bf8774-9896-4af7-ac70-021fdda29e38"
    assert ev.sequence == 612
    assert ev.timestamp_us == 1795604532780025
    assert ev.subclass is None and ev.job_uuid is None
    assert ev.body == "" and ev.body_bytes == b""


def test_plain_duplicate_headers_first_value_and_get_all() -> None:
    ev = ev_of(HANGUP)
    assert ev.get("Hangup-Cause") == "NORMAL_CLEARING"
    assert ev.get_all("Hangup-Cause") == ["NORMAL_CLEARING", "NORMAL_CLEARING_2"]
    assert ev.get_all("Nope") == []


def test_plain_values_are_url_decoded_undef_kept_array_as_sent() -> None:
    ev = ev_of(HANGUP)
    assert ev.get("Caller-Caller-ID-Name") == "Dan X-Lite"
    assert ev.get("variable_empty") == "_undef_"
    assert ev.get("variable_DP_MATCH") == "ARRAY::4008001234|:4008001234"
    assert ev.get("Missing") is None and ev.get("Missing", "d") == "d"
    assert "Unique-ID" in ev and "Missing" not in ev
    with pytest.raises(KeyError):
        ev["Missing"]


def test_plain_items_in_wire_order_with_first_values() -> None:
    ev = ev_of(HANGUP)
    items = list(ev.items())
    assert [n for n, _ in items] == ["Event-Name", "Core-UUID", "Event-Date-Timestamp",
                                     "Event-Sequence", "Hangup-Cause", "Unique-ID",
                                     "Caller-Caller-ID-Name", "variable_empty",
                                     "variable_DP_MATCH"]
    assert dict(items)["Hangup-Cause"] == "NORMAL_CLEARING"
    assert dict(items)["Caller-Caller-ID-Name"] == "Dan X-Lite"


def test_plain_decode_is_per_value_and_lazy() -> None:
    ev = ev_of(HANGUP)
    assert ev.unique_id
    # Only what was read has been decoded (decoding every value of every event is the cost
    # the lazy view avoids).
    assert set(ev._cache) == {"Unique-ID"}  # type: ignore[attr-defined]


def test_plain_plus_stays_plus_and_lenient_percent() -> None:
    ev = ev_of(plain("Event-Name: CUSTOM", "A: 1+1%3D2", "B: 100%", "C: %ZZ", "D: %e9t%C3%A9"))
    assert ev.get("A") == "1+1=2"
    assert ev.get("B") == "100%"
    assert ev.get("C") == "%ZZ"
    assert ev.get("D") == "\ufffdt\u00e9"


def test_plain_non_utf8_replaced_raw_bytes_reachable() -> None:
    ev = ev_of(b"Event-Name: CHANNEL_CREATE\nCaller-Caller-ID-Name: Caf%E9\nX-Raw: b\xffad\n\n")
    assert ev.get("Caller-Caller-ID-Name") == "Caf\ufffd"
    assert ev.raw("Caller-Caller-ID-Name") == b"Caf\xe9"
    assert ev.wire("Caller-Caller-ID-Name") == b"Caf%E9"  # type: ignore[attr-defined]
    assert ev.get("X-Raw") == "b\ufffdad"
    assert ev.raw("X-Raw") == b"b\xffad"
    assert ev.raw("Missing") is None
    fresh = ev_of(b"Event-Name: CHANNEL_CREATE\nCaller-Caller-ID-Name: Caf%E9\nX-Raw: b\xffad\n\n")
    assert dict(fresh.items()) == {"Event-Name": "CHANNEL_CREATE",
                                   "Caller-Caller-ID-Name": "Caf\ufffd", "X-Raw": "b\ufffdad"}


def test_background_job_body_is_separated_from_headers() -> None:
    out = b"+OK 7f4de4bc-17d7-11dd-b7a0-db4edd065621\nUnique-ID: forged\n\nEvent-Name: X\n"
    ev = ev_of(plain("Event-Name: BACKGROUND_JOB", "Job-UUID: 41754c9c", "Job-Command: originate",
                     body=out))
    assert ev.name == "BACKGROUND_JOB"
    assert ev.job_uuid == "41754c9c"
    assert ev.body_bytes == out
    assert ev.body == out.decode()
    assert ev.get("Content-Length") == str(len(out))
    # Text in the body is not a header, whatever it looks like.
    assert ev.unique_id is None
    assert ev.get_all("Event-Name") == ["BACKGROUND_JOB"]
    assert "Unique-ID" not in ev


def test_event_line_without_colon_space_is_skipped() -> None:
    ev = ev_of(b"Event-Name: HEARTBEAT\nthis line is broken\nUp-Time: 0%20years\n\n")
    assert ev.name == "HEARTBEAT"
    assert ev.get("Up-Time") == "0 years"
    assert [n for n, _ in ev.items()] == ["Event-Name", "Up-Time"]


def test_custom_event_subclass() -> None:
    ev = ev_of(plain("Event-Subclass: callcenter%3A%3Ainfo", "Event-Name: CUSTOM",
                     "CC-Action: agent-offering"))
    assert ev.name == "CUSTOM"
    assert ev.subclass == "callcenter::info"


def test_bad_numbers_give_none() -> None:
    ev = ev_of(plain("Event-Name: X", "Event-Sequence: abc", "Event-Date-Timestamp: _undef_"))
    assert ev.sequence is None and ev.timestamp_us is None


# ---------------------------------------------------------------------------- json events
JSON_EVENT = (
    b'{"Event-Name":"CHANNEL_HANGUP_COMPLETE","Core-UUID":"c1","Event-Sequence":"77",'
    b'"Event-Date-Timestamp":"1795604532780025","Unique-ID":"u1",'
    b'"Hangup-Cause":"NORMAL_CLEARING","Caller-Caller-ID-Name":"a b&c=d%20e",'
    b'"variable_DP_MATCH":["4008001234","4008001235"],"variable_empty":"_undef_",'
    b'"Hangup-Cause":"SECOND"}'
)


def test_json_event_first_values_arrays_and_repeated_keys() -> None:
    ev = ev_of(JSON_EVENT, "text/event-json")
    assert ev.name == "CHANNEL_HANGUP_COMPLETE"
    assert ev.unique_id == "u1" and ev.core_uuid == "c1"
    assert ev.sequence == 77 and ev.timestamp_us == 1795604532780025
    assert ev.get("Caller-Caller-ID-Name") == "a b&c=d%20e"   # json values are not encoded
    assert ev.get("variable_DP_MATCH") == "4008001234"
    assert ev.get_all("variable_DP_MATCH") == ["4008001234", "4008001235"]
    assert ev.get("Hangup-Cause") == "NORMAL_CLEARING"
    assert ev.get_all("Hangup-Cause") == ["NORMAL_CLEARING", "SECOND"]
    assert ev.get("variable_empty") == "_undef_"
    assert [n for n, _ in ev.items()][:3] == ["Event-Name", "Core-UUID", "Event-Sequence"]
    assert ev.body_bytes == b""


def test_json_body_is_separated() -> None:
    obj = {"Event-Name": "BACKGROUND_JOB", "Job-UUID": "j9", "Content-Length": "15",
           "_body": "-ERR USER_BUSY\n"}
    ev = ev_of(json.dumps(obj, separators=(",", ":")).encode(), "text/event-json")
    assert ev.job_uuid == "j9"
    assert ev.body == "-ERR USER_BUSY\n"
    assert ev.get("_body") is None and "_body" not in ev
    assert ev.get("Content-Length") == "15"


def test_json_non_utf8_replaced_raw_bytes_reachable() -> None:
    ev = ev_of(b'{"Event-Name":"CHANNEL_CREATE","Caller-Caller-ID-Name":"Caf\xe9"}',
               "text/event-json")
    assert ev.get("Caller-Caller-ID-Name") == "Caf\ufffd"
    assert ev.raw("Caller-Caller-ID-Name") == b"Caf\xe9"


@pytest.mark.parametrize("payload", [b"{not json", b"[1, 2]", b"", b"[" * 100_000])
def test_bad_json_event_is_a_frame_error(payload: bytes) -> None:
    (frame,) = parse_all(event_frame(payload, "text/event-json")) if payload else [
        Frame("text/event-json", parse_all(AUTH_REQUEST)[0].headers, b"")]
    with pytest.raises(FrameError, match="text/event-json"):
        Event.from_frame(frame)


def test_xml_events_are_refused_with_a_clear_message() -> None:
    (frame,) = parse_all(event_frame(b"<event><headers></headers></event>", "text/event-xml"))
    with pytest.raises(UnsupportedEventFormat, match=r"event plain.*event json"):
        Event.from_frame(frame)


def test_non_event_frame_is_not_an_event() -> None:
    (frame,) = parse_all(api(b"+OK\n"))
    with pytest.raises(UnsupportedEventFormat, match="api/response"):
        Event.from_frame(frame)


# ---------------------------------------------------------------------------- built in code
def test_from_headers_mapping_pairs_and_lists() -> None:
    ev = Event.from_headers({"Event-Name": "CHANNEL_ANSWER", "Unique-ID": "u",
                             "Event-Sequence": 5, "Hangup-Cause": ["A", "B"]}, body="hi")
    assert ev.name == "CHANNEL_ANSWER" and ev.unique_id == "u" and ev.sequence == 5
    assert ev.get_all("Hangup-Cause") == ["A", "B"] and ev.get("Hangup-Cause") == "A"
    assert ev.body == "hi" and ev.body_bytes == b"hi"
    ev2 = Event.from_headers([("Event-Name", "X"), ("H", "1"), ("H", "2")])
    assert ev2.get("H") == "1" and ev2.get_all("H") == ["1", "2"]
    assert list(ev2.items()) == [("Event-Name", "X"), ("H", "1")]
    assert "H" in ev2 and ev2.raw("H") == b"1"


# ---------------------------------------------------------------------------- errors
def test_after_a_frame_error_the_parser_refuses_input() -> None:
    parser = FrameParser()
    with pytest.raises(FrameError, match="has no ': '"):
        parser.feed(b"garbage line\n\n")
    assert parser.failed
    with pytest.raises(FrameError, match="reset the connection"):
        parser.feed(AUTH_REQUEST)


def test_frames_before_the_error_travel_on_the_exception() -> None:
    parser = FrameParser()
    with pytest.raises(FrameError) as info:
        parser.feed(AUTH_REQUEST + reply("+OK accepted") + b"oops\n\n")
    assert [f.content_type for f in info.value.frames] == ["auth/request", "command/reply"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("data", [
    b"Content-Type: auth/request\r\n\r\n",
    b"Content-Type: command/reply\r\nReply-Text: +OK\n\n",
])
def test_crlf_is_refused_clearly(data: bytes) -> None:
    with pytest.raises(FrameError, match="LF"):
        FrameParser().feed(data)


def test_header_block_cap_refuses_before_buffering_more() -> None:
    parser = FrameParser(max_frame_bytes=1000)
    parser.feed(b"Content-Type: x\nX: " + b"a" * 500)
    with pytest.raises(FrameError, match="exceeds the 1000 bytes cap"):
        parser.feed(b"a" * 600)
    assert parser.buffered == 0


def test_body_cap_refused_from_content_length_alone() -> None:
    parser = FrameParser()
    with pytest.raises(FrameError, match="frame of 20000000 bytes exceeds the 16 MiB cap"):
        parser.feed(b"Content-Type: api/response\nContent-Length: 20000000\n\n")
    assert parser.buffered == 0


def test_body_exactly_at_cap_is_accepted() -> None:
    parser = FrameParser(max_frame_bytes=64)
    (frame,) = parser.feed(b"Content-Type: api/response\nContent-Length: 64\n\n" + b"x" * 64)
    assert frame.body == b"x" * 64
