"""The simulator's channel side as a client sees it over TCP: replies, endpoints, hostile
values, simulated durations, session limits."""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from esl_handlers import commands
from esl_handlers.events import Event
from tests.conftest import wait_for
from tests.sim.simclient import SimClient, running_sim

BOGUS = "00000000-0000-0000-0000-000000000000"
TIME_SCALE = 20.0


@pytest.fixture(scope="module")
def sim_addr() -> Iterator[tuple[str, int]]:
    with running_sim(time_scale=TIME_SCALE) as addr:
        yield addr


@pytest.fixture
def client(sim_addr: tuple[str, int]) -> Iterator[SimClient]:
    with SimClient(*sim_addr) as c:
        yield c


def parked_call(client: SimClient, caller: str = "4915550001", dnis: str = "4005550101",
                *params: str) -> str:
    reply = client.api(" ".join(["sim_inbound", caller, dnis, *params]))
    assert reply.startswith("+OK ") and reply.endswith("\n"), reply
    uid = reply.split()[1]
    client.wait_event(uid, "CHANNEL_PARK")
    return uid


def ended(client: SimClient, uid: str) -> Event:
    return client.wait_event(uid, "CHANNEL_HANGUP_COMPLETE")


# ---- replies to bogus uuids, usage and bad syntax (captured / mod_commands.c) ------------
@pytest.mark.parametrize(("command", "reply"), [
    ("uuid_kill", "-USAGE: <uuid> [cause]\n"),  # captured
    (f"uuid_kill {BOGUS}", "-ERR No such channel!\n"),  # captured
    (f"uuid_answer {BOGUS}", "-ERROR\n"),
    ("uuid_answer", "-ERROR\n"),
    ("uuid_bridge", "-USAGE: <uuid> <other_uuid>\n"),
    (f"uuid_bridge {BOGUS} {BOGUS}", "-ERR Invalid uuid\n"),
    ("uuid_getvar", "-USAGE: <uuid> <var>\n"),
    (f"uuid_getvar {BOGUS} x", "-ERR No such channel!\n"),
    (f"uuid_setvar {BOGUS} x y", "-ERR No such channel!\n"),
    (f"uuid_exists {BOGUS}", "false"),
    ("uuid_exists", "false"),
    (f"uuid_send_dtmf {BOGUS} 1", "-ERR Cannot locate session!\n"),
    ("uuid_send_dtmf", "-USAGE: <uuid> <dtmf_data>\n"),
    ("hupall NORMAL_CLEARING cc_queue support", "+OK hangup all channels matching "
                                                 "[cc_queue]=[support] with cause: "
                                                 "NORMAL_CLEARING\n"),
    ("uuid_setvar", "-USAGE: <uuid> <var> [value]\n"),
    (f"uuid_transfer {BOGUS} 4005550101", "-ERR No such channel!\n"),
    ("uuid_transfer", "-USAGE: <uuid> [-bleg|-both] <dest-exten> [<dialplan>] [<context>]\n"),
    (f"uuid_broadcast {BOGUS} tone_stream://%(100,0,440)", "-ERR invalid uuid\n"),
    (f"uuid_record {BOGUS} start /tmp/x.wav", "-ERR Cannot locate session!\n"),
    (f"uuid_break {BOGUS}", "-ERR No such channel!\n"),
    ("originate", "-USAGE: <call url> <exten>|&<application_name>(<app_args>) [<dialplan>] "
                  "[<context>] [<cid_name>] [<cid_num>] [<timeout_sec>]\n"),
    ("originate error/USER_BUSY &park", "-ERR USER_BUSY\n"),  # captured
    ("originate nosuchendpoint/foo &park", "-ERR CHAN_NOT_IMPLEMENTED\n"),  # captured
    ("originate loopback/no_such_ext/default &park", "-ERR NO_ROUTE_DESTINATION\n"),  # captured
    ("show channels as json", '{"row_count": 0}\n'),  # captured (idle switch)
    ("sim_inbound", "-USAGE: sim_inbound <caller> <dnis> [name=value ...]\n"),
    ("sim_inbound 4915550001 4005550101 novalue",
     "-USAGE: sim_inbound <caller> <dnis> [name=value ...]\n"),
    ("sim_dtmf", "-USAGE: sim_dtmf <uuid> <digits 0-9*#A-D>\n"),
    (f"sim_dtmf {BOGUS} 12x", "-USAGE: sim_dtmf <uuid> <digits 0-9*#A-D>\n"),
    (f"sim_dtmf {BOGUS} 1", "-ERR No such channel!\n"),
    ("sim_hangup", "-USAGE: sim_hangup <uuid> [cause]\n"),
    (f"sim_hangup {BOGUS} NOT_A_CAUSE", "-ERR unknown cause NOT_A_CAUSE\n"),
    (f"sim_hangup {BOGUS}", "-ERR No such channel!\n"),
    ("sim_endpoint", "-USAGE: sim_endpoint <contact> <answer|busy|noanswer|reject|"
                     "unregistered> [delay_ms] [talk_ms]\n"),
    ("sim_endpoint sofia/internal/x@h dance", "-USAGE: sim_endpoint <contact> <answer|busy|"
                                              "noanswer|reject|unregistered> [delay_ms] "
                                              "[talk_ms]\n"),
])
def test_api_reply_texts(command: str, reply: str) -> None:
    with running_sim(time_scale=TIME_SCALE) as addr, SimClient(*addr) as client:
        assert client.api(command) == reply


def test_sendmsg_to_bogus_uuid(client: SimClient) -> None:
    frame = client.send(f"sendmsg {BOGUS}\ncall-command: execute\nexecute-app-name: playback\n"
                        "execute-app-arg: tone_stream://%(500,0,600)")
    assert frame.get("Reply-Text") == f"-ERR invalid session id [{BOGUS}]"  # captured


def test_sim_controls_fire_api_event_and_work_as_bgapi(client: SimClient) -> None:
    body = client.bgapi("sim_inbound 4915550002 4005550102")
    assert body.startswith("+OK ")
    uid = body.split()[1]
    client.wait_event(uid, "CHANNEL_PARK")
    assert client.wait(lambda: any(e.name == "API" and e.get("API-Command") == "sim_inbound"
                                   for e in client.events), 5)
    assert client.api(f"sim_dtmf {uid} 1") == "-ERR channel not answered\n"
    assert client.api(f"sim_hangup {uid}") == "+OK\n"
    assert ended(client, uid).get("Hangup-Cause") == "ORIGINATOR_CANCEL"


# ---- inbound calls and the dialplan -------------------------------------------------------
def test_inbound_call_parks_ringing_with_its_sets(client: SimClient) -> None:
    uid = parked_call(client, "4915550003", "4005550103", "cc_entry=esl_park", "a=b%0Ac")
    events = client.leg_events(uid)
    assert events[0].name == "CHANNEL_STATE" and events[0].get("Channel-State") == "CS_NEW"
    park = next(e for e in events if e.name == "CHANNEL_PARK")
    assert park.get("Answer-State") == "ringing"
    assert park.get("Channel-Name") == "sofia/internal/4915550003@127.0.0.1:5080"
    assert park.get("Caller-Caller-ID-Number") == "4915550003"
    assert park.get("Caller-Destination-Number") == "4005550103"
    assert park.get("variable_cc_entry") == "esl_park"
    # literal values: "%0A" arrives as sent, FreeSWITCH-encoded on the wire
    assert client.api(f"uuid_getvar {uid} a") == "a=b%0Ac".split("=", 1)[1]
    sets = [e.get("Application-Data") for e in events if e.name == "CHANNEL_EXECUTE"]
    # plain encoding leaves a literal %0A as is, so the event decodes it (README: lossy)
    assert sets == ["cc_entry=esl_park", "a=b\nc", None]
    assert not any(k.startswith("variable_") for k in events[0].keys())  # STATE is terse
    client.api(f"uuid_kill {uid}")
    ended(client, uid)


def test_non_400_number_fails_no_route(client: SimClient) -> None:
    uid = client.api("sim_inbound 4915550004 5551234").split()[1]
    done = ended(client, uid)
    assert done.get("Hangup-Cause") == "NO_ROUTE_DESTINATION"
    names = [e.name for e in client.leg_events(uid)]
    assert "CHANNEL_EXECUTE" not in names
    assert names[-3:] == ["CHANNEL_HANGUP_COMPLETE", "CHANNEL_DESTROY", "CHANNEL_STATE"]


def test_hostile_caller_values_stay_inside_their_header(client: SimClient) -> None:
    evil = "Evil%0AUnique-ID:%20forged-uuid%0AEvent-Name:%20CHANNEL_HANGUP"
    uid = parked_call(client, "4915550005", "4005550105", f"caller_id_name={evil}",
                      f"sip_h_X-Evil={evil}")
    park = client.wait_event(uid, "CHANNEL_PARK")
    assert park.unique_id == uid
    assert park.name == "CHANNEL_PARK"
    decoded = urllib.parse.unquote(evil)  # FreeSWITCH keeps "%0A" as is; it decodes to LF
    assert park.get("Caller-Caller-ID-Name") == decoded
    assert park.get("variable_sip_h_X-Evil") == decoded
    assert park.get_all("Unique-ID") == [uid]
    # the same bytes fool greenswitch 0.0.19's parser (whole-block unquote, then split)
    from greenswitch.esl import ESLEvent

    raw = next(f.body for f in client.frames if f.is_event
               and Event.from_frame(f).name == "CHANNEL_PARK"
               and Event.from_frame(f).unique_id == uid)
    assert b"forged-uuid" in raw and b"\nUnique-ID: forged-uuid" not in raw
    fooled = ESLEvent(raw.decode()).headers
    assert fooled["Unique-ID"] == "forged-uuid"
    assert fooled["Event-Name"] == "CHANNEL_HANGUP"
    client.api(f"uuid_kill {uid}")
    ended(client, uid)


# ---- originate and endpoints --------------------------------------------------------------
@pytest.mark.parametrize(("contact", "behaviour", "body", "leg_cause"), [
    ("sofia/internal/busy@127.0.0.1:5070", "busy", "-ERR USER_BUSY\n", "USER_BUSY"),
    ("sofia/internal/rej@127.0.0.1:5070", "reject", "-ERR CALL_REJECTED\n", "CALL_REJECTED"),
    ("sofia/internal/ring@127.0.0.1:5070", "noanswer", "-ERR NO_ANSWER\n", "NO_ANSWER"),
    ("user/1001@default", "unregistered", "-ERR USER_NOT_REGISTERED\n", None),
    ("user/9999@default", None, "-ERR SUBSCRIBER_ABSENT\n", None),
    ("sofia/internal/nobody@127.0.0.1:5999", None, "-ERR NORMAL_TEMPORARY_FAILURE\n",
     "NORMAL_TEMPORARY_FAILURE"),
    ("error/NO_USER_RESPONSE", None, "-ERR NO_USER_RESPONSE\n", None),
])
def test_endpoint_behaviours(client: SimClient, contact: str, behaviour: str | None,
                             body: str, leg_cause: str | None) -> None:
    if behaviour:
        assert client.api(f"sim_endpoint {contact} {behaviour} 100").startswith("+OK")
    started = len(client.events)
    job = client.bgapi(f"originate {{originate_timeout=2}}{contact} &park()")
    assert job == body
    legs = {e.unique_id for e in client.events[started:] if e.name == "CHANNEL_OUTGOING"}
    if leg_cause is None:
        assert not legs
    else:
        (leg,) = legs
        assert ended(client, leg or "").get("Hangup-Cause") == leg_cause


def test_answer_endpoint_parks_and_talk_ms_hangs_up_in_simulated_time(
        client: SimClient) -> None:
    contact = "sofia/internal/agent9@127.0.0.1:5070"
    client.api(f"sim_endpoint {contact} answer 200 3000")
    wall = time.monotonic()
    job = client.bgapi(f"originate {{origination_caller_id_number=4915550009}}{contact} &park()")
    assert job.startswith("+OK ")
    uid = job.split()[1]
    client.wait_event(uid, "CHANNEL_PARK", Answer_State="answered")
    done = ended(client, uid)
    elapsed = time.monotonic() - wall
    assert done.get("Hangup-Cause") == "NORMAL_CLEARING"
    assert done.get("variable_billsec") == "3"
    assert 2900 <= int(done.get("variable_billmsec") or 0) <= 3300
    assert done.get("variable_duration") == "3"
    # switch_channel_flip_cid on answer: the dialled number becomes the caller id (captured)
    assert done.get("Caller-Orig-Caller-ID-Number") == "4915550009"
    assert done.get("Caller-Caller-ID-Number") == "agent9"
    assert done.get("Caller-Callee-ID-Number") == "4915550009"
    # 3 s of simulated talk: never shorter than 3 s / TIME_SCALE of wall time, and well
    # under the unscaled 3 s (bounds from the scale, not a fixed wall-clock window)
    talk = 3.0
    assert talk / TIME_SCALE <= elapsed < talk / 2


def test_ring_all_loser_gets_lose_race_before_the_job(client: SimClient) -> None:
    a, b = "sofia/internal/ra@127.0.0.1:5070", "sofia/internal/rb@127.0.0.1:5072"
    client.api(f"sim_endpoint {a} answer 100")
    client.api(f"sim_endpoint {b} noanswer")
    started = len(client.events)
    job = client.bgapi(f"originate {{ignore_early_media=true}}{a},{b} &park()")
    winner = job.split()[1]
    window = client.events[started:]
    legs = [e.unique_id for e in window if e.name == "CHANNEL_OUTGOING"]
    loser = next(u for u in legs if u != winner)
    hangup = next(i for i, e in enumerate(window)
                  if e.name == "CHANNEL_HANGUP" and e.unique_id == loser)
    job_at = next(i for i, e in enumerate(window) if e.name == "BACKGROUND_JOB")
    assert window[hangup].get("Hangup-Cause") == "LOSE_RACE" and hangup < job_at
    assert ended(client, loser or "").get("variable_hangup_cause_q850") == "16"
    client.api(f"uuid_kill {winner}")
    ended(client, winner)


def db_rows(client: SimClient, cmd: str, done: Callable[[dict[str, dict]], bool],
            timeout: float = 5.0) -> dict[str, dict]:
    """``show ... as json`` rows by uuid, polled until ``done(rows)``."""
    rows: dict[str, dict] = {}

    def ready() -> bool:
        nonlocal rows
        rows = {r["uuid"]: r for r in json.loads(client.api(cmd)).get("rows", [])}
        return done(rows)

    wait_for(ready, timeout=timeout, interval=0.01, message=f"{cmd} to catch up")
    return rows


def test_core_database_rows_trail_the_events() -> None:
    # FreeSWITCH writes `show channels` from a queue after the events (switch_core_sqldb.c):
    # a channel that just parked is not listed yet, and an ended one stays listed a while.
    lag_s = 0.5   # long enough that the checks below cannot outrun it on a loaded machine
    with running_sim(time_scale=TIME_SCALE, db_lag_ms=lag_s * 1000) as addr, \
            SimClient(*addr) as client:
        uid = parked_call(client, "4915550009", "4005550109")
        parked_at = time.monotonic()
        first = json.loads(client.api("show channels as json"))
        assert uid not in {r["uuid"] for r in first.get("rows", [])}, "listed with no lag"
        db_rows(client, "show channels as json",
                lambda rows: rows.get(uid, {}).get("application") == "park")
        assert time.monotonic() - parked_at >= lag_s * 0.9
        client.api(f"uuid_kill {uid}")
        client.wait_event(uid, "CHANNEL_DESTROY")
        assert uid in {r["uuid"] for r in json.loads(client.api("show channels as json"))["rows"]}
        db_rows(client, "show channels as json", lambda rows: uid not in rows)


def test_the_default_simulator_lags_like_a_switch() -> None:
    from fssim.switch import DEFAULT_DB_LAG_MS, Switch

    assert Switch().db_lag_ms == DEFAULT_DB_LAG_MS > 0


def test_sim_hangup_of_a_bridged_agent_ends_the_caller(client: SimClient) -> None:
    contact = "sofia/internal/agent7@127.0.0.1:5070"
    client.api(f"sim_endpoint {contact} answer 100")
    a = parked_call(client, "4915550007", "4005550107")
    assert client.api(f"uuid_answer {a}") == "+OK\n"
    b = client.bgapi(f"originate {contact} &park()").split()[1]
    assert client.api(f"uuid_bridge {a} {b}") == f"+OK {b}\n"
    client.wait_event(a, "CHANNEL_BRIDGE")
    # The core database trails the events (fssim.coredb): poll, as a client of a real switch
    # must.
    calls = db_rows(client, "show calls as json", lambda rows: a in rows and b in {
        r["b_uuid"] for r in rows.values()})
    assert calls[a]["b_uuid"] == b
    # as captured (show_channels_json_queue_busy): the agent row keeps the caller's id,
    # callee fields name the dialled contact, call_uuid is the caller leg's on both rows
    chans = db_rows(client, "show channels as json",
                    lambda rows: rows.get(b, {}).get("call_uuid") == a)
    assert (chans[b]["cid_num"], chans[b]["callee_name"], chans[b]["callee_num"]) == (
        "0000000000", "Outbound Call", "agent7")  # no origination_caller_id_number
    assert chans[a]["call_uuid"] == chans[b]["call_uuid"] == a
    assert (chans[a]["state"], chans[b]["state"]) == ("CS_SOFT_EXECUTE", "CS_EXCHANGE_MEDIA")
    assert client.api(f"sim_hangup {b}") == "+OK\n"
    assert ended(client, b).get("Hangup-Cause") == "NORMAL_CLEARING"
    done = ended(client, a)
    assert done.get("Hangup-Cause") == "NORMAL_CLEARING"
    assert done.get("variable_bridge_hangup_cause") == "NORMAL_CLEARING"
    names = [e.name for e in client.leg_events(a)]
    assert names.index("CHANNEL_UNBRIDGE") < names.index("CHANNEL_HANGUP")


def test_show_channels_getvar_setvar_and_hupall(client: SimClient) -> None:
    uid = parked_call(client, "4915550008", "4005550108", "cc_entry=esl_park")
    row = db_rows(client, "show channels as json",
                  lambda rows: rows.get(uid, {}).get("application") == "park")[uid]
    assert (row["state"], row["callstate"], row["dest"], row["application"]) == (
        "CS_EXECUTE", "RINGING", "4005550108", "park")
    assert client.api(f"uuid_exists {uid}") == "true"
    assert client.api(f"uuid_getvar {uid} cc_entry") == "esl_park"
    assert client.api(f"uuid_getvar {uid} nothing") == "_undef_"
    assert client.api(f"uuid_setvar {uid} x a b") == "+OK\n"
    assert client.api(f"uuid_getvar {uid} x") == "a b"
    assert client.api("hupall MANAGER_REQUEST") == \
        "+OK hangup all channels with cause MANAGER_REQUEST\n"
    assert ended(client, uid).get("Hangup-Cause") == "MANAGER_REQUEST"


def test_playback_pagd_and_record_through_sendmsg(client: SimClient, tmp_path: Path) -> None:
    uid = parked_call(client, "4915550010", "4005550110")
    client.api(f"uuid_answer {uid}")
    frame = client.send(f"sendmsg {uid}\ncall-command: execute\nexecute-app-name: "
                        "play_and_get_digits\nexecute-app-arg: 4 8 1 5000 # "
                        "tone_stream://%(1000,0,440);loops=1 silence_stream://250 acct ^\\d+$ "
                        "3000\nEvent-UUID: pagd-1")
    assert frame.get("Reply-Text") == "+OK"
    client.wait_event(uid, "PLAYBACK_STOP")
    assert client.api(f"sim_dtmf {uid} 1234#") == "+OK\n"
    done = client.wait_event(uid, "CHANNEL_EXECUTE_COMPLETE", Application="play_and_get_digits")
    assert done.get("Application-UUID") == "pagd-1"
    assert done.get("Application-Response") == "_none_"
    assert done.get("variable_acct") == "1234"
    assert done.get("variable_read_terminator_used") == "#"
    assert [e.get("DTMF-Digit") for e in client.leg_events(uid) if e.name == "DTMF"] == \
        list("1234#")
    client.send(f"sendmsg {uid}\ncall-command: execute\nexecute-app-name: playback\n"
                "execute-app-arg: /sounds/no_such_prompt.wav")
    missing = client.wait_event(uid, "CHANNEL_EXECUTE_COMPLETE", Application="playback")
    assert missing.get("Application-Response") == "FILE NOT FOUND"
    wav = tmp_path / "r.wav"
    assert client.api(f"uuid_record {uid} start {wav}") == "+OK Success\n"
    client.wait_event(uid, "RECORD_START")
    assert client.api(f"uuid_record {uid} stop {wav}") == "+OK Success\n"
    client.wait_event(uid, "RECORD_STOP")
    client.send(f"sendmsg {uid}\ncall-command: hangup\nhangup-cause: CALL_REJECTED")
    assert ended(client, uid).get("Hangup-Cause") == "CALL_REJECTED"


@pytest.mark.parametrize(("lock", "plays_ms"), [("", None), ("event-lock: true\n", 2000)])
def test_a_queued_hangup_waits_only_behind_an_event_locked_playback(
        client: SimClient, lock: str, plays_ms: int | None) -> None:
    """Without event-lock the playback's media loop runs the queued hang-up at once, cutting
    the prompt short; with it the hang-up waits until the prompt has played."""
    uid = parked_call(client, "4915550012", "4005550112")
    client.api(f"uuid_answer {uid}")
    client.send(f"sendmsg {uid}\ncall-command: execute\nexecute-app-name: playback\n"
                f"execute-app-arg: tone_stream://%(2000,0,440);loops=1\n{lock}"
                "Event-UUID: greet-1")
    client.wait_event(uid, "PLAYBACK_START")
    client.send(f"sendmsg {uid}\ncall-command: hangup\nhangup-cause: NORMAL_CLEARING")
    stop = client.wait_event(uid, "PLAYBACK_STOP")
    assert ended(client, uid).get("Hangup-Cause") == "NORMAL_CLEARING"
    played = int(stop.get("variable_playback_ms") or 0)
    if plays_ms is None:
        assert played < 2000
    else:
        assert played == plays_ms


def test_max_sessions_refuses_new_channels() -> None:
    with running_sim(time_scale=TIME_SCALE, max_sessions=1) as addr, SimClient(*addr) as client:
        uid = parked_call(client, "4915550011", "4005550111")
        # sofia.c: 503 "Maximum Calls In Progress" when sess_count >= sess_max
        assert client.api("sim_inbound 4915550012 4005550112") == \
            "-ERR Maximum Calls In Progress\n"
        client.api("sim_endpoint sofia/internal/x@127.0.0.1:5070 answer")
        assert client.api("originate sofia/internal/x@127.0.0.1:5070 &park()") == \
            "-ERR DESTINATION_OUT_OF_ORDER\n"
        client.api(f"uuid_kill {uid}")
        client.wait_event(uid, "CHANNEL_DESTROY")
        assert client.api("sim_inbound 4915550012 4005550112").startswith("+OK ")


def _names(client: SimClient, uid: str, start: int = 0) -> list[str]:
    out = []
    for ev in client.leg_events(uid)[start:]:
        name = ev.name or ""
        if name == "CHANNEL_STATE":
            name += "/" + (ev.get("Channel-State") or "")
        elif name in ("CHANNEL_EXECUTE", "CHANNEL_EXECUTE_COMPLETE"):
            name += "/" + (ev.get("Application") or "")
        out.append(name)
    return out


def test_uuid_transfer_reroutes_a_parked_call(client: SimClient) -> None:
    uid = parked_call(client, "4915550020", "4005550120")
    mark = len(client.leg_events(uid))
    assert client.api(f"uuid_transfer {uid} 4005550199") == "+OK\n"
    client.wait(lambda: _names(client, uid, mark).count("CHANNEL_PARK") == 1, 5)
    assert _names(client, uid, mark) == [
        "CHANNEL_UNPARK", "CHANNEL_EXECUTE_COMPLETE/park", "CHANNEL_STATE/CS_ROUTING",
        "CHANNEL_STATE/CS_EXECUTE", "CHANNEL_EXECUTE/set", "CHANNEL_EXECUTE_COMPLETE/set",
        "CHANNEL_EXECUTE/set", "CHANNEL_EXECUTE_COMPLETE/set", "CHANNEL_EXECUTE/park",
        "CHANNEL_PARK"]
    park = client.leg_events(uid)[-1]
    assert park.get("Caller-Destination-Number") == "4005550199"
    client.api(f"uuid_kill {uid}")
    ended(client, uid)


def test_uuid_break_and_broadcast(client: SimClient) -> None:
    uid = parked_call(client, "4915550021", "4005550121")
    client.api(f"uuid_answer {uid}")
    client.send(f"sendmsg {uid}\ncall-command: execute\nexecute-app-name: playback\n"
                "execute-app-arg: local_stream://moh")
    client.wait_event(uid, "PLAYBACK_START")
    assert client.api(f"uuid_break {uid}") == "+OK\n"
    stop = client.wait_event(uid, "PLAYBACK_STOP")
    assert stop.get("Playback-Status") == "break"
    done = client.wait_event(uid, "CHANNEL_EXECUTE_COMPLETE", Application="playback")
    assert done.get("Application-Response") == "FILE PLAYED"
    assert client.api(f"uuid_broadcast {uid} tone_stream://%(300,0,440) aleg") == \
        "+OK Message sent\n"
    assert client.wait(lambda: sum(1 for e in client.leg_events(uid)
                                   if e.name == "PLAYBACK_STOP") == 2, 5)
    client.api(f"sim_hangup {uid}")
    assert ended(client, uid).get("Hangup-Cause") == "NORMAL_CLEARING"


def test_caller_hangs_up_during_prompt(client: SimClient) -> None:
    uid = parked_call(client, "4915550022", "4005550122")
    client.api(f"uuid_answer {uid}")
    client.send(f"sendmsg {uid}\ncall-command: execute\nexecute-app-name: play_and_get_digits\n"
                "execute-app-arg: 1 1 3 5000 # local_stream://moh silence_stream://250 d \\d")
    client.wait_event(uid, "PLAYBACK_START")
    mark = len(client.leg_events(uid))
    client.api(f"sim_hangup {uid}")
    ended(client, uid)
    assert _names(client, uid, mark)[:5] == [
        "CHANNEL_HANGUP", "PLAYBACK_STOP", "CHANNEL_EXECUTE_COMPLETE/play_and_get_digits",
        "CHANNEL_UNPARK", "CHANNEL_EXECUTE_COMPLETE/park"]


def test_originate_to_an_extension_and_sync_api(client: SimClient) -> None:
    contact = "sofia/internal/ext@127.0.0.1:5070"
    client.api(f"sim_endpoint {contact} answer 100")
    reply = client.api(f"originate {contact} 4005550198 XML default")
    assert reply.startswith("+OK ")
    uid = reply.split()[1]
    park = client.wait_event(uid, "CHANNEL_PARK")
    assert park.get("Caller-Destination-Number") == "4005550198"
    assert park.get("variable_cc_dnis") == "4005550198"
    assert client.api(f"originate {contact} 5551234").startswith("+OK ")
    inline = client.api(f"originate {contact} park inline").split()[1]
    assert client.wait_event(inline, "CHANNEL_PARK").get("Caller-Dialplan") == "inline"
    client.api("hupall")
    ended(client, uid)


def test_a_failed_bridge_app_hangs_the_caller_up_unless_continue_on_fail(
        client: SimClient) -> None:
    # switch_channel_handle_cause: a busy contact ends the caller with USER_BUSY (seen on the
    # lab switch with an unreachable contact: NORMAL_TEMPORARY_FAILURE) ...
    contact = "sofia/internal/busy2@127.0.0.1:5070"
    client.api(f"sim_endpoint {contact} busy 100")
    gone = parked_call(client, "4915550024", "4005550124")
    client.api(f"uuid_answer {gone}")
    client.send(f"sendmsg {gone}\ncall-command: execute\nexecute-app-name: bridge\n"
                f"execute-app-arg: {contact}")
    assert ended(client, gone).get("Hangup-Cause") == "USER_BUSY"
    # ... and keeps it with continue_on_fail=true, where the controller decides what follows.
    uid = parked_call(client, "4915550023", "4005550123")
    client.api(f"uuid_answer {uid}")
    assert client.api(f"uuid_setvar {uid} continue_on_fail true") == "+OK\n"
    client.send(f"sendmsg {uid}\ncall-command: execute\nexecute-app-name: bridge\n"
                f"execute-app-arg: {contact}")
    done = client.wait_event(uid, "CHANNEL_EXECUTE_COMPLETE", Application="bridge")
    assert done.get("variable_originate_disposition") == "USER_BUSY"
    assert done.get("variable_DIALSTATUS") == "BUSY"
    assert client.api(f"uuid_exists {uid}") == "true"
    # the caller gives up while the next agent rings: the agent leg is cancelled
    ring = "sofia/internal/ring2@127.0.0.1:5070"
    client.api(f"sim_endpoint {ring} noanswer")
    client.send(f"sendmsg {uid}\ncall-command: execute\nexecute-app-name: bridge\n"
                f"execute-app-arg: {ring}")
    out = client.wait_event(None, "CHANNEL_PROGRESS", Channel_Name=ring)
    client.api(f"sim_hangup {uid}")
    assert ended(client, out.unique_id or "").get("Hangup-Cause") == "ORIGINATOR_CANCEL"
    ended(client, uid)


def test_bridge_app_agent_hangs_up_first_caller_stays(client: SimClient) -> None:
    contact = "sofia/internal/app3@127.0.0.1:5070"
    client.api(f"sim_endpoint {contact} answer 100 1000")
    uid = parked_call(client, "4915550024", "4005550124")
    client.api(f"uuid_answer {uid}")
    client.send(f"sendmsg {uid}\ncall-command: execute\nexecute-app-name: bridge\n"
                f"execute-app-arg: {contact}")
    done = client.wait_event(uid, "CHANNEL_EXECUTE_COMPLETE", Application="bridge")
    assert done.get("variable_bridge_hangup_cause") == "NORMAL_CLEARING"
    assert done.get("Answer-State") == "answered"
    assert client.api(f"uuid_exists {uid}") == "true"
    client.api(f"uuid_kill {uid}")
    ended(client, uid)


def test_uuid_dump_json_and_plain(client: SimClient) -> None:
    uid = parked_call(client, "4915550025", "4005550125", "cc_entry=esl_park")
    data = json.loads(client.api(f"uuid_dump {uid} json"))
    assert data["Event-Name"] == "CHANNEL_DATA"
    assert data["Unique-ID"] == uid and data["variable_cc_entry"] == "esl_park"
    plain = client.api(f"uuid_dump {uid}")
    assert f"Unique-ID: {uid}\n" in plain and "Channel-Name: sofia/internal/4915550025%40" in plain
    client.api(f"uuid_kill {uid}")
    ended(client, uid)


@pytest.mark.parametrize(("answer", "how", "cause", "disposition"), [
    (False, "sim_hangup", "ORIGINATOR_CANCEL", "recv_cancel"),
    (True, "sim_hangup", "NORMAL_CLEARING", "recv_bye"),
    (False, "uuid_kill", "CALL_REJECTED", "send_refuse"),
    (True, "uuid_kill", "NORMAL_CLEARING", "send_bye"),
])
def test_who_hung_up_is_in_sip_hangup_disposition(client: SimClient, answer: bool, how: str,
                                                   cause: str, disposition: str) -> None:
    """As captured: caller_cancels_while_parked, ivr_then_agent, blacklisted_reject."""
    uid = parked_call(client, "4915550030", "4005550130")
    if answer:
        client.api(f"uuid_answer {uid}")
    arg = " CALL_REJECTED" if how == "uuid_kill" and not answer else ""
    assert client.api(f"{how} {uid}{arg}") == "+OK\n"
    done = ended(client, uid)
    assert done.get("Hangup-Cause") == cause
    assert done.get("variable_sip_hangup_disposition") == disposition


def test_uuid_bridge_to_another_agent_while_bridged(client: SimClient) -> None:
    one, two = "sofia/internal/rb1@127.0.0.1:5070", "sofia/internal/rb2@127.0.0.1:5071"
    client.api(f"sim_endpoint {one} answer 100")
    client.api(f"sim_endpoint {two} answer 100")
    a = parked_call(client, "4915550031", "4005550131")
    client.api(f"uuid_answer {a}")
    b1 = client.bgapi(f"originate {one} &park()").split()[1]
    b2 = client.bgapi(f"originate {two} &park()").split()[1]
    assert client.api(f"uuid_bridge {a} {b1}") == f"+OK {b1}\n"
    client.wait_event(a, "CHANNEL_BRIDGE", Other_Leg_Unique_ID=b1)
    assert client.api(f"uuid_bridge {a} {b2}") == f"+OK {b2}\n"
    client.wait_event(a, "CHANNEL_BRIDGE", Other_Leg_Unique_ID=b2)
    # the first agent, left alone without park_after_bridge, is hung up
    assert ended(client, b1).get("Hangup-Cause") == "NORMAL_CLEARING"
    assert client.api(f"uuid_exists {a}") == "true"
    client.api(f"sim_hangup {a}")
    ended(client, a)
    assert ended(client, b2).get("Hangup-Cause") == "NORMAL_CLEARING"


def test_sendmsg_apps_answer_set_export_sleep_loops(client: SimClient) -> None:
    uid = parked_call(client, "4915550040", "4005550140")

    def execute(app: str, arg: str = "", uuid_header: str = "", loops: int = 0) -> None:
        text = f"sendmsg {uid}\ncall-command: execute\nexecute-app-name: {app}"
        if arg:
            text += f"\nexecute-app-arg: {arg}"
        if uuid_header:
            text += f"\nEvent-UUID: {uuid_header}"
        if loops:
            text += f"\nloops: {loops}"
        assert client.send(text).get("Reply-Text") == "+OK"

    execute("ring_ready", uuid_header="rr-1")
    done = client.wait_event(uid, "CHANNEL_EXECUTE_COMPLETE", Application_UUID="rr-1")
    assert done.get("Answer-State") == "ringing"
    execute("pre_answer")
    client.wait_event(uid, "CHANNEL_PROGRESS_MEDIA")
    execute("answer")
    answer = client.wait_event(uid, "CHANNEL_ANSWER")
    assert answer.get("Channel-Call-State") == "EARLY"  # README: ANSWER before CALLSTATE ACTIVE
    execute("set", "queue=support")
    execute("export", "cc_skill=billing")
    execute("sleep", "1000", uuid_header="sl-1", loops=2)
    client.wait(lambda: sum(1 for e in client.leg_events(uid)
                            if e.get("Application-UUID") == "sl-1"
                            and e.name == "CHANNEL_EXECUTE_COMPLETE") == 2, 5)
    assert client.api(f"uuid_getvar {uid} queue") == "support"
    assert client.api(f"uuid_getvar {uid} export_vars") == "cc_skill"
    execute("no_such_application")
    # switch_core_session.c: an invalid application hangs the channel up
    assert ended(client, uid).get("Hangup-Cause") == "DESTINATION_OUT_OF_ORDER"


def test_transfer_bridged_agent_to_park_inline(client: SimClient) -> None:
    contact = "sofia/internal/tr1@127.0.0.1:5070"
    client.api(f"sim_endpoint {contact} answer 100")
    a = parked_call(client, "4915550050", "4005550150")
    client.api(f"uuid_answer {a}")
    b = client.bgapi(f"originate {contact} &park()").split()[1]
    client.api(f"uuid_bridge {a} {b}")
    client.wait_event(a, "CHANNEL_BRIDGE")
    assert client.api(f"uuid_setvar {a} park_after_bridge true") == "+OK\n"
    mark_a, mark_b = len(client.leg_events(a)), len(client.leg_events(b))
    assert client.api(f"uuid_transfer {a} -bleg park inline") == "+OK\n"
    assert client.wait(lambda: _names(client, b, mark_b)[-1:] == ["CHANNEL_PARK"]
                       and _names(client, a, mark_a)[-1:] == ["CHANNEL_PARK"], 5)
    assert _names(client, b, mark_b) == ["CHANNEL_STATE/CS_ROUTING", "CHANNEL_STATE/CS_EXECUTE",
                                         "CHANNEL_EXECUTE/park", "CHANNEL_PARK"]
    assert _names(client, a, mark_a) == ["CHANNEL_UNBRIDGE", "CHANNEL_STATE/CS_EXECUTE",
                                         "CHANNEL_EXECUTE/park", "CHANNEL_PARK"]
    assert client.leg_events(b)[-1].get("Caller-Dialplan") == "inline"
    client.api("hupall")
    ended(client, a)
    ended(client, b)


def test_originate_reads_its_arguments_as_freeswitch_does(client: SimClient) -> None:
    contact = "sofia/internal/agent12@127.0.0.1:5070"
    client.api(f"sim_endpoint {contact} answer 0 100")
    # What the product builds for a caller-controlled value arrives unchanged...
    value = "Zhang San, Jr. 'x=y'"
    job = client.bgapi(commands.originate(contact, variables={"cc_note": value}))
    assert job.startswith("+OK "), job
    done = ended(client, job.split()[1])
    assert done.get("variable_cc_note") == value
    # ...while a raw space inside {...} splits the command, as switch_separate_string does
    # (braces protect nothing): the dial string is cut at the space.
    job = client.bgapi(f"originate {{cc_note=a b}}{contact} &park()")
    assert not job.startswith("+OK "), job


def test_sched_transfer_fires_unless_sched_del_removes_it_first(client: SimClient) -> None:
    # mod_dptools sched_transfer schedules a task in the channel's uuid group;
    # mod_commands sched_del deletes by group and says how many (freeswitch_conf's fallback).
    kept = parked_call(client, "4915550031", "4005550131")
    frame = client.send(f"sendmsg {kept}\ncall-command: execute\nexecute-app-name: "
                        "sched_transfer\nexecute-app-arg: +2 9999 XML default")
    assert frame.get("Reply-Text") == "+OK"
    client.wait_event(kept, "CHANNEL_EXECUTE_COMPLETE", Application="sched_transfer")
    assert client.api(f"sched_del {kept}") == "+OK Deleted: 1\n"
    assert client.api(f"sched_del {kept}") == "+OK Deleted: 0\n"
    assert client.api("sched_del") == "-ERR Invalid syntax\n"
    moved = parked_call(client, "4915550032", "4005550132")
    client.send(f"sendmsg {moved}\ncall-command: execute\nexecute-app-name: sched_transfer\n"
                "execute-app-arg: +1 9999 XML default")
    # 9999 routes nowhere in the simulator's dialplan: the transfer shows as that hang-up.
    assert ended(client, moved).get("Hangup-Cause") == "NO_ROUTE_DESTINATION"
    assert client.api(f"uuid_exists {kept}") == "true"
    client.api(f"uuid_kill {kept}")
    ended(client, kept)


def test_sched_hangup_ends_the_call_when_due_and_sched_del_takes_it_back(
        client: SimClient) -> None:
    # mod_commands.c:sched_hangup_function: the channel must exist, the reply is "+OK";
    # switch_ivr_schedule_hangup puts the task in the channel's uuid group.
    assert client.api("sched_hangup") == "-USAGE: [+]<time> <uuid> [<cause>]\n"
    assert client.api("sched_hangup +5") == "-ERR No such channel!\n"
    assert client.api("sched_hangup +5 0bd4d5fa-0000-4000-8000-000000000000") == \
        "-ERR No such channel!\n"
    stopped = parked_call(client, "4915550033", "4005550133")
    client.api(f"uuid_answer {stopped}")
    assert client.api(f"sched_hangup +1 {stopped}") == "+OK\n"    # the default cause
    assert ended(client, stopped).get("Hangup-Cause") == "ALLOTTED_TIMEOUT"
    rearmed = parked_call(client, "4915550034", "4005550134")
    assert client.api(commands.sched_hangup(rearmed, 1, "CALL_REJECTED")) == "+OK\n"
    assert client.api(f"sched_del {rearmed}") == "+OK Deleted: 1\n"
    assert client.api(commands.sched_hangup(rearmed, 3600, "CALL_REJECTED")) == "+OK\n"
    # +0 hangs up at once, with the cause given
    now = parked_call(client, "4915550035", "4005550135")
    assert client.api(commands.sched_hangup(now, 0, "OUTGOING_CALL_BARRED")) == "+OK\n"
    assert ended(client, now).get("Hangup-Cause") == "OUTGOING_CALL_BARRED"
    assert client.api(f"uuid_exists {rearmed}") == "true"
    assert client.api(f"sched_del {rearmed}") == "+OK Deleted: 1\n"
    client.api(f"uuid_kill {rearmed}")
    ended(client, rearmed)
