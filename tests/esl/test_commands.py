"""Command builders: exact texts, refusal of control bytes, originate variable escaping.

The escaping test runs the built command through the simulator's model of the three
FreeSWITCH parsers an originate variable crosses (``fssim.fsstrings``: src/switch_utils.c
separate_string_blank_delim, separate_string_char_delim, cleanup_separated_string;
src/switch_event.c switch_event_create_brackets).
"""

from __future__ import annotations

import pytest

from esl_handlers import commands as c
from fssim import fsstrings

U = "6b3b4c1e-52a4-4d4c-9a8e-3a3f0b1d2c3e"
U2 = "0f9e8d7c-6b5a-4c3d-2e1f-0a9b8c7d6e5f"

# --- FreeSWITCH's string splitting (the simulator's model of it) ---------------------------
fs_split_char = fsstrings.split_char
fs_split_blank = fsstrings.split_blank


def fs_originate_variables(api_line: str) -> tuple[dict[str, str], list[str]]:
    """Variables FreeSWITCH would set from ``originate {...}endpoint ...`` and the argv."""
    assert api_line.startswith("originate ")
    argv = fs_split_blank(api_line[len("originate "):])
    aleg = argv[0]
    assert aleg.startswith("{")
    depth, end = 0, -1
    for k, ch in enumerate(aleg):
        depth += ch == "{"
        depth -= ch == "}"
        if depth == 0:
            end = k
            break
    block = aleg[1:end]
    variables = {}
    for item in fs_split_char(block, ","):
        kv = fs_split_char(item, "=", 2)
        if len(kv) == 2:
            variables[kv[0]] = kv[1]
    return variables, [aleg[end + 1:], *argv[1:]]


# --- builders -----------------------------------------------------------------------------------
def test_builders_produce_freeswitch_command_texts():
    assert c.api("status") == "api status"
    assert c.bgapi(c.uuid_answer(U)) == f"bgapi uuid_answer {U}"
    assert c.uuid_answer(U) == f"uuid_answer {U}"
    assert c.uuid_kill(U) == f"uuid_kill {U}"
    assert c.uuid_kill(U, "CALL_REJECTED") == f"uuid_kill {U} CALL_REJECTED"
    assert c.uuid_bridge(U, U2) == f"uuid_bridge {U} {U2}"
    assert c.uuid_transfer(U, "1000", "XML", "default") == f"uuid_transfer {U} 1000 XML default"
    assert c.uuid_transfer(U, "1000", leg="-bleg") == f"uuid_transfer {U} -bleg 1000"
    assert (c.uuid_broadcast(U, "tone_stream://%(500,0,600)")
            == f"uuid_broadcast {U} tone_stream://%(500,0,600) aleg")
    assert (c.uuid_record(U, "start", "/rec/a.wav", 60)
            == f"uuid_record {U} start /rec/a.wav 60")
    assert c.uuid_record(U, "stop", "all") == f"uuid_record {U} stop all"
    # mod_commands.c takes recording variables as the fifth argument, after the limit
    assert (c.uuid_record(U, "start", "/rec/a.wav", variables={"RECORD_STEREO": "true"})
            == f"uuid_record {U} start /rec/a.wav 0 {{RECORD_STEREO=true}}")
    assert (c.uuid_record(U, "start", "/rec/a.wav", 60, {"a": "1", "b": "2"})
            == f"uuid_record {U} start /rec/a.wav 60 {{a=1,b=2}}")
    for bad in ({"a": "x,b=y"}, {"a b": "1"}, {"a": "}"}, {"a": "%0A"}, {"a": "1\n"}):
        with pytest.raises(ValueError):
            c.uuid_record(U, "start", "/rec/a.wav", variables=bad)
    with pytest.raises(ValueError):
        c.uuid_record(U, "stop", "/rec/a.wav", variables={"a": "1"})
    assert c.uuid_setvar(U, "cc_queue", "support line") == f"uuid_setvar {U} cc_queue support line"
    assert c.uuid_setvar(U, "cc_queue") == f"uuid_setvar {U} cc_queue"
    assert c.uuid_getvar(U, "cc_queue") == f"uuid_getvar {U} cc_queue"
    assert c.uuid_break(U) == f"uuid_break {U}" and c.uuid_break(U, True) == f"uuid_break {U} all"
    assert c.uuid_exists(U) == f"uuid_exists {U}"
    assert c.event_plain(["channel_park", "CUSTOM callcenter::info", "HEARTBEAT"]) == \
        "event plain CHANNEL_PARK HEARTBEAT CUSTOM callcenter::info"
    assert c.filter_add("Unique-ID", U) == f"filter Unique-ID {U}"
    assert c.filter_delete("Unique-ID", U) == f"filter delete Unique-ID {U}"
    assert c.originate("user/1000") == "originate user/1000 &park()"
    assert (c.originate("loopback/4001234567/default", app=None, extension="4001234567",
                        dialplan="XML", context="default")
            == "originate loopback/4001234567/default 4001234567 XML default")
    assert (c.originate("sofia/internal/1000@127.0.0.1:5070",
                        variables={"originate_timeout": "20", "cc_agent": "1000"})
            == "originate {originate_timeout=20,cc_agent=1000}sofia/internal/1000@127.0.0.1:5070"
               " &park()")


def test_sendmsg_execute_and_hangup_with_event_uuid():
    h = c.execute_headers("playback", "tone_stream://%(2000,0,440);loops=1",
                          event_uuid="greet-" + U, event_lock=True)
    assert c.sendmsg(U, h) == (
        f"sendmsg {U}\ncall-command: execute\nexecute-app-name: playback\n"
        "execute-app-arg: tone_stream://%(2000,0,440);loops=1\nevent-lock: true\n"
        f"Event-UUID: greet-{U}")
    assert c.sendmsg(U, c.hangup_headers("USER_BUSY")) == (
        f"sendmsg {U}\ncall-command: hangup\nhangup-cause: USER_BUSY")
    assert c.execute_headers("play_and_get_digits", "1 1 3 5000 # a.wav b.wav d \\d 3000",
                             loops=2)["loops"] == "2"


HOSTILE = ["Bob\nEvent-Name: CHANNEL_HANGUP", "x\r\ny", "x\n\nauth ClueCon", "nul\x00",
           "tab\there", "del\x7f", "esc\x1b[0m"]


@pytest.mark.parametrize("bad", HOSTILE)
@pytest.mark.parametrize("build", [
    lambda b: c.api("status " + b),
    lambda b: c.uuid_answer(b),
    lambda b: c.uuid_kill(U, b),
    lambda b: c.uuid_bridge(U, b),
    lambda b: c.uuid_transfer(U, b),
    lambda b: c.uuid_broadcast(U, b),
    lambda b: c.uuid_record(U, "start", b),
    lambda b: c.uuid_setvar(U, "cid", b),
    lambda b: c.uuid_setvar(U, b, "v"),
    lambda b: c.uuid_getvar(U, b),
    lambda b: c.originate("user/1000", variables={"origination_caller_id_name": b}),
    lambda b: c.originate("user/1000", variables={b: "x"}),
    lambda b: c.originate(b),
    lambda b: c.originate("user/1000", app="playback", app_arg=b),
    lambda b: c.sendmsg(U, c.execute_headers("playback", b)),
    lambda b: c.sendmsg(U, {"call-command": "execute", "execute-app-name": "set",
                            "execute-app-arg": "x", b: "y"}),
    lambda b: c.sendmsg(U, c.execute_headers("playback", "a.wav", event_uuid=b)),
    lambda b: c.filter_add("Unique-ID", b),
    lambda b: c.event_plain(["CHANNEL_PARK", b]),
], ids=lambda f: "")
def test_no_argument_can_carry_a_control_byte(build, bad):
    with pytest.raises(ValueError):
        build(bad)


def test_error_messages_say_what_and_why():
    with pytest.raises(ValueError, match=r"variable origination_caller_id_name contains "
                                         r"control byte '\\n' at position 3.*inject"):
        c.originate("user/1000", variables={"origination_caller_id_name": "Bob\nUnique-ID: x"})
    with pytest.raises(ValueError, match="not a channel UUID"):
        c.uuid_kill("abc;def")
    with pytest.raises(ValueError, match="not ALL"):
        c.event_plain(["CHANNEL_PARK", "ALL"])
    with pytest.raises(ValueError, match="expand"):
        c.originate("user/1000", variables={"origination_caller_id_name": "${system(ls)}"})
    with pytest.raises(ValueError, match="cannot escape"):
        c.originate("user/1000", variables={"origination_caller_id_name": "a}b"})


VALUES = ["O'Brien, Jr", "a,b,c", "two words", " lead", "trail ", "back\\slash", 'say "hi"',
          "a=b=c", "\\,", "\\s", "''", "it's", "%0AEvent-Name: X", "Ünïcødé 名字", ",", "'",
          "\\", "x\\'y", "[brackets]<angle>", "|pipe|", "&park()"]


@pytest.mark.parametrize("value", VALUES)
def test_originate_variables_survive_freeswitchs_three_parsers(value):
    cmd = c.originate("sofia/internal/1000@127.0.0.1", variables={
        "origination_caller_id_name": value, "origination_caller_id_number": "4001234567",
        "cc_note": value})
    variables, rest = fs_originate_variables(cmd)
    assert variables == {"origination_caller_id_name": value,
                         "origination_caller_id_number": "4001234567", "cc_note": value}
    assert rest == ["sofia/internal/1000@127.0.0.1", "&park()"]


def test_the_model_reads_plain_fs_examples_like_freeswitch():
    # Sanity of the model itself on forms the FreeSWITCH docs use.
    variables, _ = fs_originate_variables(
        "originate {origination_caller_id_name='John Doe',a=b\\,c}user/1000 &park()")
    assert variables == {"origination_caller_id_name": "John Doe", "a": "b,c"}


def test_sofia_contact_builder() -> None:
    assert c.sofia_contact("1001@default") == "sofia_contact 1001@default"
    assert c.sofia_contact("1001@default", "internal") == \
        "sofia_contact internal/1001@default"
    for bad in ("1001", "1001@default/x", "a/1001@default", "1001@d~ua", "10 01@d",
                "1001@default\n\nexit", "1001@a@b", "1,2@default"):
        with pytest.raises(ValueError):
            c.sofia_contact(bad)
    with pytest.raises(ValueError, match="sofia profile"):
        c.sofia_contact("1001@default", "in/ternal")
