"""The simulator's wire protocol, held to real FreeSWITCH 1.10.12 traffic.

Replies are compared byte for byte with ``command_replies.json`` / ``esl_commands.raw``;
encoders are replayed over the 530 captured plain/json twin events; texts the captures lack
(wrong password, filter, myevents, ...) follow mod_event_socket.c:parse_command.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from esl_handlers.event_names import name_event
from fssim import wire
from fssim.clock import Clock
from fssim.switch import SimEvent, Switch, measure_time
from tests.sim.conftest import RawEsl, RawFrame, SimHandle

UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
DISCONNECT = (b"Content-Type: text/disconnect-notice\nContent-Length: 67\n\n"
              b"Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n")


# ------------------------------------------------------------------------------ capture helpers

def split_frames(data: bytes) -> list[RawFrame]:
    frames = []
    i = 0
    while i < len(data):
        end = data.index(b"\n\n", i)
        pairs = [(k, v) for k, _, v in
                 (x.partition(": ") for x in data[i:end].decode().split("\n"))]
        clen = int(dict(pairs).get("Content-Length", "0"))
        frames.append(RawFrame(pairs, data[end + 2:end + 2 + clen], data[i:end + 2 + clen]))
        i = end + 2 + clen
    return frames


def plain_parts(payload: bytes) -> tuple[list[tuple[str, str]], bytes]:
    """(encoded header pairs, body) of a plain event payload."""
    block, _, rest = payload.partition(b"\n\n")
    pairs = [tuple(x.split(": ", 1)) for x in block.decode().split("\n")]
    body = b""
    if pairs and pairs[-1][0] == "Content-Length":
        body = rest
        pairs = pairs[:-1]
    return pairs, body  # type: ignore[return-value]


def json_parts(payload: bytes) -> tuple[list[tuple[str, str]], str | None]:
    """(raw header pairs with ARRAY:: restored, body) of a json event payload."""
    pairs: list[tuple[str, Any]] = json.loads(payload, object_pairs_hook=lambda p: p)
    out = []
    body = None
    for k, v in pairs:
        if k == "_body":
            body = v
        elif k == "Content-Length":
            continue
        elif isinstance(v, list):
            out.append((k, "ARRAY::" + "|:".join(v)))
        else:
            out.append((k, v))
    return out, body


def twins(captures: Path) -> list[tuple[RawFrame, RawFrame]]:
    base = captures / "freeswitch-1.10.12"
    plain = [f for f in split_frames((base / "esl_plain.raw").read_bytes()) if f.is_event]
    js = [f for f in split_frames((base / "esl_json.raw").read_bytes()) if f.is_event]
    by_key = {}
    for f in js:
        d = dict(json_parts(f.body)[0])
        by_key[(d["Event-Sequence"], d["Event-Name"])] = f
    out = []
    for f in plain:
        pairs, _ = plain_parts(f.body)
        d = dict(pairs)
        out.append((f, by_key[(d["Event-Sequence"], d["Event-Name"])]))
    return out


def captured_replies(captures: Path) -> dict[str, bytes]:
    base = captures / "freeswitch-1.10.12"
    raw = (base / "esl_commands.raw").read_bytes()
    out: dict[str, bytes] = {}
    for item in json.loads((base / "command_replies.json").read_text()):
        a, b = item["raw_offsets_in_esl_commands_raw"]
        out.setdefault(item["label"], raw[a:b])
    return out


def captured_event(captures: Path, name: str, where: str = "") -> list[tuple[str, str]]:
    for f, _ in twins(captures):
        pairs, _ = plain_parts(f.body)
        d = dict(pairs)
        if d["Event-Name"] == name and where in f.body.decode():
            return pairs
    raise AssertionError(f"no captured {name}")


def names(pairs: list[tuple[str, str]]) -> list[str]:
    return [k for k, _ in pairs]


def fire_in(sim: SimHandle, name: str, headers: list[tuple[str, str]] = (),  # type: ignore[assignment]
            subclass: str | None = None, body: str | None = None) -> int:
    def go() -> int:
        ev = sim.switch.new_event(name, subclass)
        ev.extend(headers)
        ev.body = body
        sim.switch.fire(ev)
        return ev.sequence
    return sim.run(go)


# ------------------------------------------------------------------------------ auth & basics

def test_auth_and_replies_match_capture_bytes(sim: SimHandle, captures_dir: Path) -> None:
    cap = captured_replies(captures_dir)
    c = sim.client()
    assert c.read_frame().raw == b"Content-Type: auth/request\n\n"
    assert c.reply("auth ClueCon").raw == cap["auth"]
    assert c.reply("event plain BACKGROUND_JOB").raw == cap["event_subscribe_bgjob"]
    assert c.reply("foobar").raw == cap["bad_command"]
    assert c.reply("api foobar").raw == cap["bad_api_command"]
    assert c.reply("sendmsg 00000000-0000-0000-0000-000000000000\ncall-command: execute\n"
                   "execute-app-name: playback\nexecute-app-arg: tone_stream://%(500,0,600)\n\n"
                   ).raw == cap["sendmsg_nonexistent"]


def test_wrong_password_gets_invalid_then_disconnect_and_close(sim: SimHandle) -> None:
    c = sim.client()
    c.read_frame()
    c.send("auth nope")
    assert c.read_to_eof() == (b"Content-Type: command/reply\nReply-Text: -ERR invalid\n\n"
                               + DISCONNECT)


def test_commands_before_auth_are_not_found(sim: SimHandle) -> None:
    c = sim.client()
    c.read_frame()
    for cmd in ("event plain ALL", "api status", "bgapi status", "sendmsg x", "auth"):
        assert c.reply(cmd).headers["Reply-Text"] == "-ERR command not found", cmd
    assert c.reply("auth ClueCon").headers["Reply-Text"] == "+OK accepted"


def test_exit_says_bye_then_disconnect_notice_as_captured(sim: SimHandle,
                                                          captures_dir: Path) -> None:
    tail = (captures_dir / "freeswitch-1.10.12" / "esl_plain.raw").read_bytes()
    expected = b"Content-Type: command/reply\nReply-Text: +OK bye\n\n" + DISCONNECT
    assert tail.endswith(expected)
    c = sim.connect()
    c.send("exit")
    assert c.read_to_eof() == expected


def test_inbound_command_replies_from_source(sim_factory: Any) -> None:
    sim = sim_factory(engine=False)
    c = sim.connect()
    expect = [
        ("linger", "-ERR not controlling a session"),
        ("nolinger", "-ERR not controlling a session"),
        ("noevents", "-ERR not listening for events"),
        ("event plain", "-ERR no keywords supplied"),
        ("event plain NOT_AN_EVENT", "-ERR no keywords supplied"),
        ("nixevent", "-ERR no keywords supplied"),
        ("filter Unique-ID", "-ERR invalid syntax"),
        ("divert_events on", "-ERR not controlling a session."),
        ("sendmsg", "-ERR invalid session id []"),
        ("api", "-ERR command not found"),
        ("event json channel_create", "+OK event listener enabled json"),
        ("event SWITCH_EVENT_HEARTBEAT", "+OK event listener enabled json"),
        ("event plain ALL", "+OK event listener enabled plain"),
        ("nixevent HEARTBEAT", "+OK events nixed"),
        ("noevents", "+OK no longer listening for events"),
        ("log debug", "+OK log level debug [7]"),
        ("nolog", "+OK no longer logging"),
        ("myevents 11111111-1111-1111-1111-111111111111 plain", "-ERR invalid uuid"),
    ]
    sim.run(lambda: setattr(sim.switch, "session_exists", lambda u: False))
    for cmd, text in expect:
        assert c.reply(cmd).headers["Reply-Text"] == text, cmd


def test_api_empty_output_and_status_text(sim_factory: Any, captures_dir: Path) -> None:
    sim = sim_factory(engine=False, max_sessions=100)
    sim.run(lambda: sim.switch.register_api("sim_empty", lambda req: ""))
    c = sim.connect()
    assert c.reply("api sim_empty").raw == (
        b"Content-Type: api/response\nContent-Length: 14\n\n-ERR no reply\n")
    captured = json.loads((captures_dir / "freeswitch-1.10.12" / "command_replies.json")
                          .read_text())
    status = next(x for x in captured if x["label"] == "api_status")["reply_body"]
    def norm(text: str) -> str:  # numbers vary, and so does the plural of the unit
        text = re.sub(r"(\d+) (year|day|hour|minute|second|millisecond|microsecond)s?",
                      r"0 \2", text)
        return re.sub(r"\d+", "0", text)

    got = c.reply("api status").body.decode()
    assert norm(got) == norm(status), got
    assert "\n100 session(s) max\n" in got and "min idle cpu 0.00/" in got


def test_measure_time_plural_rule() -> None:
    us = ((2 * 60 + 1) * 1_000_000) + 1000 + 1
    assert measure_time(us) == ("0 years, 0 days, 0 hours, 2 minutes, 1 second, "
                                "1 millisecond, 1 microsecond")


# ------------------------------------------------------------------------------ bgapi

def test_bgapi_reply_and_background_job_shape(sim: SimHandle, captures_dir: Path) -> None:
    cap = captured_replies(captures_dir)
    c = sim.connect()
    c.reply("event plain BACKGROUND_JOB")
    reply = c.reply("bgapi status")
    job = reply.headers["Job-UUID"]
    assert UUID_RE.fullmatch(job)
    assert reply.raw == UUID_RE.sub(job, cap["bgapi_status"].decode()).encode()
    ev = c.next_event("BACKGROUND_JOB")
    pairs, body = plain_parts(ev.body)
    assert names(pairs) == names(captured_event(captures_dir, "BACKGROUND_JOB",
                                                "Job-Command: status"))
    assert dict(pairs)["Job-UUID"] == job and dict(pairs)["Job-Command"] == "status"
    assert body.startswith(b"UP ") and body.endswith(b"Current Stack Size/Max 240K/8192K\n")

    c.reply("bgapi foobar a b&c")
    ev = c.next_event("BACKGROUND_JOB")
    pairs, body = plain_parts(ev.body)
    assert names(pairs) == names(captured_event(captures_dir, "BACKGROUND_JOB", "Job-Command-Arg"))
    assert dict(pairs)["Job-Command-Arg"] == "a%20b%26c"
    assert body == b"-ERR foobar Command not found!\n"


def test_background_job_goes_to_every_subscriber_not_only_the_issuer(sim: SimHandle) -> None:
    issuer, watcher, deaf = sim.connect(), sim.connect(), sim.connect()
    issuer.reply("event plain BACKGROUND_JOB")
    watcher.reply("event json ALL")
    job = deaf.reply("bgapi status").headers["Job-UUID"]
    assert job in issuer.next_event("BACKGROUND_JOB").body.decode()
    assert f'"Job-UUID":"{job}"' in watcher.next_event("BACKGROUND_JOB").body.decode()
    assert deaf.no_more_data(0.3)       # not subscribed: the issuer gets nothing
    # a client-chosen Job-UUID is honoured (parse_command: the job-uuid header)
    mine = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
    assert issuer.reply(f"bgapi status\nJob-UUID: {mine}\n\n").headers["Job-UUID"] == mine
    assert mine in issuer.next_event("BACKGROUND_JOB").body.decode()


# ------------------------------------------------------------------------------ API event

def test_sync_reply_before_caused_events_and_api_event_last(sim_factory: Any,
                                                            captures_dir: Path) -> None:
    sim = sim_factory(engine=False)

    def busy_api(req: Any) -> str:
        for n in (1, 2):
            ev = sim.switch.new_event("CUSTOM", "sim::test")
            ev.add("N", str(n))
            sim.switch.fire(ev)
        return "+OK done\n"

    sim.run(lambda: sim.switch.register_api("sim_busy", busy_api))
    c = sim.connect()
    c.reply("event plain ALL")
    c.send("api sim_busy with args")
    frames = [c.read_frame() for _ in range(4)]
    assert frames[0].content_type == "api/response" and frames[0].body == b"+OK done\n"
    kinds = [dict(plain_parts(f.body)[0])["Event-Name"] for f in frames[1:]]
    assert kinds == ["CUSTOM", "CUSTOM", "API"]
    seqs = [int(dict(plain_parts(f.body)[0])["Event-Sequence"]) for f in frames[1:]]
    assert seqs[2] < seqs[0] < seqs[1]       # API numbered at start, delivered last
    api_pairs = plain_parts(frames[3].body)[0]
    assert dict(api_pairs)["API-Command-Argument"] == "with%20args"
    assert names(api_pairs) == names(captured_event(captures_dir, "API", "API-Command-Argument"))
    c.reply("api sim_busy")
    for _ in range(3):
        last = c.read_frame()
    assert names(plain_parts(last.body)[0]) == names(captured_event(captures_dir, "API",
                                                                    "API-Command: status\n"))


# ------------------------------------------------------------------------------ subscriptions

def test_event_names_custom_subclasses_and_adding_up(sim_factory: Any) -> None:
    sim = sim_factory(engine=False)
    c = sim.connect()
    c.reply("event plain custom callcenter::info")
    fire_in(sim, "HEARTBEAT")
    fire_in(sim, "CUSTOM", [("X", "other")], subclass="other::thing")
    fire_in(sim, "CUSTOM", [("X", "cc")], subclass="callcenter::info")
    ev = c.next_event()
    assert ev.event_header("Event-Subclass") == "callcenter%3A%3Ainfo"
    assert ev.event_pairs()[0][0] == "Event-Subclass"       # first, as captured
    assert c.no_more_data(0.2)
    c.reply("event plain HEARTBEAT")                        # subscriptions add up
    fire_in(sim, "HEARTBEAT")
    fire_in(sim, "CUSTOM", [("X", "cc")], subclass="callcenter::info")
    assert [_name(c.next_event()) for _ in range(2)] == ["HEARTBEAT", "CUSTOM"]
    c.reply("event plain ALL")                              # ALL includes every subclass
    fire_in(sim, "CUSTOM", [("X", "other")], subclass="other::thing")
    assert c.next_event().event_header("X") == "other"
    c.reply("nixevent CHANNEL_CREATE")                      # leaves ALL but the one nixed
    fire_in(sim, "CHANNEL_CREATE")
    fire_in(sim, "CHANNEL_ANSWER")
    assert _name(c.next_event()) == "CHANNEL_ANSWER"
    c.reply("noevents")
    fire_in(sim, "CHANNEL_ANSWER")
    assert c.no_more_data(0.2)


def _name(f: RawFrame) -> str | None:
    return f.event_header("Event-Name")


def test_filters_as_mod_event_socket_applies_them(sim_factory: Any) -> None:
    sim = sim_factory(engine=False)
    c = sim.connect()
    c.reply("event plain ALL")
    assert c.reply("filter Unique-ID aaa").headers["Reply-Text"] == \
        "+OK filter added. [Unique-ID]=[aaa]"
    assert c.reply("filter add Unique-ID bbb").headers["Reply-Text"] == \
        "+OK filter added. [Unique-ID]=[bbb]"
    for uid in ("zzz", "aaa", "bbb", "AAA"):                # strcasecmp
        fire_in(sim, "CHANNEL_ANSWER", [("Unique-ID", uid)])
    fire_in(sim, "HEARTBEAT")                               # no such header: filtered out
    got = [c.next_event().event_header("Unique-ID") for _ in range(3)]
    assert got == ["aaa", "bbb", "AAA"] and c.no_more_data(0.2)
    assert c.reply("filter delete Unique-ID aaa").headers["Reply-Text"] == \
        "+OK filter deleted. [Unique-ID][aaa]"
    assert c.reply("filter Event-Name -CHANNEL_ANSWER").headers["Reply-Text"] == \
        "+OK filter added. [Event-Name]=[-CHANNEL_ANSWER]"
    fire_in(sim, "CHANNEL_ANSWER", [("Unique-ID", "bbb")])  # negative filter wins
    fire_in(sim, "CHANNEL_HANGUP", [("Unique-ID", "bbb")])
    assert _name(c.next_event()) == "CHANNEL_HANGUP"
    assert c.reply("filter delete all").headers["Reply-Text"] == "+OK filter deleted. [all][]"
    c.reply("filter Caller-Caller-ID-Number /^400\\d+$/")  # regex form
    fire_in(sim, "CHANNEL_CREATE", [("Caller-Caller-ID-Number", "1234")])
    fire_in(sim, "CHANNEL_CREATE", [("Caller-Caller-ID-Number", "4001234")])
    assert c.next_event().event_header("Caller-Caller-ID-Number") == "4001234"
    assert c.no_more_data(0.2)


def test_myevents_ties_the_listener_to_one_channel(sim_factory: Any) -> None:
    sim = sim_factory(engine=False)
    mine = "11111111-2222-3333-4444-555555555555"
    sim.run(lambda: setattr(sim.switch, "session_exists", lambda u: u == mine))
    c = sim.connect()
    assert c.reply(f"myevents {mine}").headers["Reply-Text"] == "+OK Events Enabled"
    assert c.reply(f"myevents {mine}").headers["Reply-Text"] == "-ERR aready enabled."
    assert c.reply("linger 5").headers["Reply-Text"] == "+OK will linger 5 seconds"
    assert c.reply("nolinger").headers["Reply-Text"] == "+OK will not linger"
    fire_in(sim, "CHANNEL_ANSWER", [("Unique-ID", "someone-else")])
    fire_in(sim, "HEARTBEAT")                               # not in the myevents list
    fire_in(sim, "CHANNEL_ANSWER", [("Unique-ID", mine)])
    assert c.next_event().event_header("Unique-ID") == mine and c.no_more_data(0.2)
    # bgapi from a session-controlling listener carries Job-Owner-UUID
    c.reply("event plain BACKGROUND_JOB")
    c.reply("bgapi status")
    job = c.next_event("BACKGROUND_JOB")
    assert names(job.event_pairs())[13:16] == ["Job-UUID", "Job-Owner-UUID", "Job-Command"]
    assert job.event_header("Job-Owner-UUID") == mine
    # the channel going down closes the connection (read_packet: channel down, no linger)
    fire_in(sim, "CHANNEL_HANGUP_COMPLETE", [("Unique-ID", mine)])
    data = c.read_to_eof()
    assert data.endswith(
        b"Content-Type: text/disconnect-notice\nControlled-Session-UUID: " + mine.encode()
        + b"\nContent-Disposition: disconnect\nContent-Length: 67\n\n"
        + DISCONNECT.split(b"\n\n", 1)[1])


def test_sendmsg_parsing_reaches_the_channel_handler(sim_factory: Any) -> None:
    sim = sim_factory(engine=False)
    seen: list[Any] = []

    def handler(uuid: str, headers: list[tuple[str, str]], body: str | None) -> str:
        seen.append((uuid, headers, body))
        return "+OK"

    sim.run(lambda: setattr(sim.switch, "sendmsg_handler", handler))
    c = sim.connect()
    reply = c.reply("sendmsg abc\ncall-command: execute\nexecute-app-name: playback\n"
                    "execute-app-arg:   x y\nContent-Length: 5\n\nhello")
    assert reply.headers["Reply-Text"] == "+OK"
    uuid, headers, body = seen[0]
    assert uuid == "abc" and body == "hello"
    assert headers == [("call-command", "execute"), ("execute-app-name", "playback"),
                       ("execute-app-arg", "x y"), ("Content-Length", "5")]
    c.reply("sendmsg\nsession-id: from-header\ncall-command: hangup\n\n")
    assert seen[1][0] == "from-header"


# ------------------------------------------------------------------------------ encodings

def test_encoders_reproduce_every_captured_event_byte_for_byte(captures_dir: Path) -> None:
    pairs_checked = 0
    for plain, js in twins(captures_dir):
        pairs, body = json_parts(js.body)
        assert wire.serialize_json("", pairs, body) == js.body
        assert wire.serialize_plain("", pairs, body) == plain.body
        pairs_checked += len(pairs)
    assert pairs_checked > 50_000


def test_xml_encoder_reproduces_the_captured_xml_event(captures_dir: Path) -> None:
    data = (captures_dir / "public" / "freeswitch-clj" / "freeswitch_session.txt").read_bytes()
    start = data.index(b"<event>")
    end = data.index(b"</event>\n", start) + len(b"</event>\n")
    xml = data[start:end]
    heads = re.findall(rb"    <([^>]+)>([^<]*)</\1>\n", xml)
    body = re.search(rb"<body>(.*)</body>", xml, re.S).group(1)  # type: ignore[union-attr]
    pairs = [(k.decode(), unquote(v.decode())) for k, v in heads]
    assert wire.serialize_xml(pairs, body.decode().removesuffix("  ")) == xml
    assert wire.xml_text(b"a<b>&c\r") == b"a&lt;b&gt;&amp;c&#xD;"
    assert wire.xml_text("é".encode()) == b"&#xE9;"


def test_url_encoding_rules() -> None:
    assert wire.url_encode(" \"#%&+:;<=>?@[\\]^`{|}\r\n") == \
        "%20%22%23%25%26%2B%3A%3B%3C%3D%3E%3F%40%5B%5C%5D%5E%60%7B%7C%7D%0D%0A"
    assert wire.url_encode("a/b,c$d!e'f(g)h*i~j-k_l.m") == "a/b,c$d!e'f(g)h*i~j-k_l.m"
    assert wire.url_encode("café\t") == "caf%C3%A9%09"
    assert wire.url_encode("d%20e%2f%") == "d%20e%252f%25"     # only %XX upper-case is kept
    assert wire.plain_line("Empty", "") == "Empty: _undef_\n"


def test_plain_and_json_of_one_event_decode_to_equal_values(sim_factory: Any) -> None:
    sim = sim_factory(engine=False)
    p, j = sim.connect(), sim.connect()
    p.reply("event plain ALL")
    j.reply("event json ALL")
    values = [("Caller-Caller-ID-Name", "Jöhn \"Q\" <x>\nUnique-ID: forged"),
              ("variable_list", "ARRAY::a|:b c"), ("Other", "50%:100%"),
              ("Hangup-Cause", "NORMAL_CLEARING"), ("Hangup-Cause", "NORMAL_CLEARING")]
    fire_in(sim, "CHANNEL_HANGUP_COMPLETE", values, body="body\nwith lines ünï\n")
    pe, je = p.next_event(), j.next_event()
    ppairs, pbody = plain_parts(pe.body)
    jpairs, jbody = json_parts(je.body)
    assert [(k, unquote(v)) for k, v in ppairs] == jpairs
    assert pbody.decode() == jbody
    assert json.loads(je.body)["variable_list"] == ["a", "b c"]
    try:
        from esl_handlers.events import Event
        from esl_handlers.framing import FrameParser
    except ImportError:
        return
    parser = FrameParser()
    (fp,) = parser.feed(pe.raw)
    (fj,) = parser.feed(je.raw)
    ep, ej = Event.from_frame(fp), Event.from_frame(fj)
    assert ep.get("Unique-ID") is None and ej.get("Unique-ID") is None
    assert ep.get("Caller-Caller-ID-Name") == ej.get("Caller-Caller-ID-Name") == values[0][1]


def test_heartbeat_header_set_and_order_match_capture(sim_factory: Any,
                                                      captures_dir: Path) -> None:
    sim = sim_factory(engine=False, heartbeat_interval=0.2)
    c = sim.connect()
    c.reply("event plain HEARTBEAT")
    ev = c.next_event("HEARTBEAT", timeout=3)
    pairs = ev.event_pairs()
    assert names(pairs) == names(captured_event(captures_dir, "HEARTBEAT"))
    d = dict(pairs)
    assert d["Core-UUID"] == sim.switch.core_uuid
    assert re.fullmatch(r"\d{4}-\d\d-\d\d%20\d\d%3A\d\d%3A\d\d", d["Event-Date-Local"])
    assert re.fullmatch(r"[A-Z][a-z]{2},%20\d\d%20[A-Z][a-z]{2}%20\d{4}%20\d\d%3A\d\d%3A\d\d%20GMT",
                        d["Event-Date-GMT"])
    assert abs(int(d["Event-Date-Timestamp"]) - time.time() * 1e6) < 5e6
    assert d["Event-Info"] == "System%20Ready" and d["Max-Sessions"] == "1000"


def test_core_uuid_is_new_for_each_switch() -> None:
    assert Switch().core_uuid != Switch().core_uuid


def test_name_event_rules() -> None:
    assert name_event("channel_create") == "CHANNEL_CREATE"
    assert name_event("SWITCH_EVENT_HEARTBEAT") == "HEARTBEAT"
    assert name_event("NOPE") is None


def test_event_sequence_is_creation_order() -> None:
    sw = Switch()
    a, b = sw.new_event("API"), sw.new_event("CUSTOM", "x::y")
    assert b.sequence == a.sequence + 1
    assert isinstance(a, SimEvent) and b.all_headers()[0] == ("Event-Subclass", "x::y")


# ------------------------------------------------------------------------------ process & clock

def test_cli_prints_listening_first_and_heartbeats_at_interval(sim_process_factory: Any) -> None:
    # HEARTBEAT runs on wall-clock seconds whatever --time-scale (a client's watchdog times
    # it in real seconds): a fast simulated clock must not speed it up
    interval, scale = 0.2, 50
    proc = sim_process_factory("--heartbeat-interval", str(interval), "--password", "pw",
                               "--max-sessions", "7", "--time-scale", str(scale))
    assert proc.first_line == f"listening on 127.0.0.1:{proc.port}\n" and proc.port > 0
    c: RawEsl = proc.client()
    try:
        assert c.auth("pw").headers["Reply-Text"] == "+OK accepted"
        c.reply("event plain HEARTBEAT")
        stamps = []
        for _ in range(4):
            ev = c.next_event("HEARTBEAT", timeout=3)
            stamps.append(int(ev.event_header("Event-Date-Timestamp") or 0) / 1e6)
            assert ev.event_header("Max-Sessions") == "7"
        gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
        assert all(interval / 2 < g < interval * 2.5 for g in gaps), gaps
    finally:
        c.close()


def test_cli_stops_cleanly_on_sigterm(sim_process: Any) -> None:
    sim_process.proc.terminate()
    assert sim_process.proc.wait(10) == 0


def test_time_scale_makes_clock_sleep_shorter() -> None:
    import gevent

    scale, simulated = 50.0, 2.0
    clock = Clock(time_scale=scale)
    t0 = time.monotonic()
    gevent.spawn(clock.sleep, simulated).join(simulated)
    elapsed = time.monotonic() - t0
    # at least the scaled time (timer granularity aside), well under the unscaled time
    assert simulated / scale * 0.9 <= elapsed < simulated / 2
    assert clock.now() >= simulated
    with pytest.raises(ValueError):
        Clock(time_scale=0)
    from fssim.cli import build_parser
    args = build_parser().parse_args(["--time-scale", "10", "--listen", "127.0.0.1:0"])
    assert args.time_scale == 10 and args.listen == ("127.0.0.1", 0)
