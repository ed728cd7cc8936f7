"""Every captured reply, command by command, against the simulator.

Rows: every command of ``command_replies.json`` and of each scenario's ``replies.json``, one
row per distinct (command, reply) once channel and job UUIDs are set aside. Each row runs on
its own connection to a fresh simulator: a channel UUID in the command becomes a fresh
parked inbound call (``sim_inbound``), the bogus all-zero UUID stays bogus, and a row that
the capture ran after another command (``uuid_getvar`` after the ``set``) runs that one
first. The reply must then equal the capture's:

* ``exact``: the reply text (api body, or Reply-Text and the other reply headers), with the
  fresh UUIDs mapped back and the Job-UUID set aside; rows of ``command_replies.json`` whose
  captured bytes are one frame are compared byte for byte;
* ``keys``: replies whose values are the call's own (``show channels/calls as json`` with
  live calls, ``uuid_dump json``): the same JSON keys in the same order, and the same
  row_count for the same number of calls;
* ``status``: ``api status``, numbers set aside;
* ``NOT_MODELLED``: commands of modules the simulator does not implement, each with its
  reason; the simulator must answer them as FreeSWITCH answers an unknown command, so that
  the day one is implemented this table says its row must be compared.

The expected side is the capture (read with the standard library and tests/capreader.py).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.capreader import frames
from tests.conftest import CAPTURES, wait_for
from tests.sim.conftest import RawEsl, RawFrame, SimHandle

FS = CAPTURES / "freeswitch-1.10.12"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
BOGUS = "00000000-0000-0000-0000-000000000000"

NOT_MODELLED = {
    "callcenter_config": "mod_callcenter queues and agents: the product drives calls with "
                         "uuid_*/originate and never uses mod_callcenter",
}
# Simulator defects this table found, to be fixed in the file named (held by another change
# at the time of writing); strict, so the row fails the day the defect is fixed.
KNOWN_DEFECTS: dict[str, str] = {}
# Replies that depend on the calls' own values (names, times, addresses) or on uptime.
KEYS_ONLY = ("api show channels as json", "api show calls as json", "api uuid_dump ")
STATUS = "api status"
# A row the capture ran after another command: run that one first (its own row checks it).
BEFORE = {
    "uuid_getvar": "sendmsg {uuid}\ncall-command: execute\nexecute-app-name: set\n"
                   "execute-app-arg: esl_test_var=a b&c=d%20e\n\n",
}


@dataclass
class Row:
    ident: str
    command: str             # as captured (captured UUIDs)
    reply_text: str          # api body, or Reply-Text
    reply_headers: dict[str, str]
    raw: bytes | None        # the captured frame, when known to be exactly one frame

    @property
    def api_name(self) -> str:
        words = self.command.split()
        if words[0] in ("api", "bgapi") and len(words) > 1:
            return words[1]
        return words[0]


def _template(text: str) -> str:
    return UUID.sub(lambda m: m.group(0) if m.group(0) == BOGUS else "<uuid>", text)


def _reply_text(item: dict[str, Any]) -> str:
    headers = item.get("reply_headers", {})
    if headers.get("Content-Type") == "command/reply":
        return headers.get("Reply-Text", "")
    return item.get("reply_body", "")


def rows() -> list[Row]:
    if not FS.is_dir():
        return []
    out: list[Row] = []
    seen: set[tuple[str, str]] = set()
    raw = (FS / "esl_commands.raw").read_bytes()
    sources = [("commands", json.loads((FS / "command_replies.json").read_text()))]
    for scn in sorted((FS / "scenarios").iterdir()):
        sources.append((scn.name, json.loads((scn / "replies.json").read_text())))
    for source, items in sources:
        for index, item in enumerate(items):
            command = item["command"].rstrip("\n")
            if command.startswith(("auth ", "exit")):
                continue   # test_protocol holds auth and exit to the captured bytes
            text = _reply_text(item)
            dedupe = (_template(command), _template(text))
            if command.split()[1:2] == ["callcenter_config"]:
                dedupe = (_template(command), "not modelled")
            elif command.startswith(KEYS_ONLY) and text.startswith("{"):
                dedupe = (_template(command), str(json.loads(text).get("row_count")))
            if dedupe in seen:
                continue
            seen.add(dedupe)
            frame_raw = None
            if "raw_offsets_in_esl_commands_raw" in item:
                a, b = item["raw_offsets_in_esl_commands_raw"]
                found = frames(raw[a:b])
                if len(found) == 1 and found[0].raw == raw[a:b]:
                    frame_raw = raw[a:b]
            ident = item.get("label") or f"{source}#{index}"
            out.append(Row(f"{ident}:{_template(command).split(chr(10))[0][:48]}", command,
                           text, dict(item.get("reply_headers", {})), frame_raw))
    return out


ROWS = rows()


def test_the_table_covers_every_captured_command_name(captures_dir: Path) -> None:
    names = {r.api_name for r in ROWS}
    for expected in ("uuid_answer", "uuid_bridge", "uuid_kill", "uuid_record",
                     "uuid_send_dtmf", "uuid_getvar", "uuid_dump", "originate", "show",
                     "status", "sendmsg", "event", "foobar", "callcenter_config"):
        assert expected in names, expected
    assert len(ROWS) >= 35


def _fresh_call(c: RawEsl) -> str:
    reply = c.reply("api sim_inbound 4915550001 4005550100").body.decode()
    assert reply.startswith("+OK "), reply
    uid = reply.split()[1]
    c.next_event("CHANNEL_PARK", where=lambda f: f.event_header("Unique-ID") == uid)
    return uid


def _sent_and_got(frame: RawFrame) -> str:
    if frame.content_type == "api/response":
        return frame.body.decode()
    return frame.headers.get("Reply-Text", "")


def _keys(text: str) -> Any:
    """The JSON keys in order; a channel's variables (its own history) set aside."""
    obj = json.loads(text)
    if "rows" in obj:
        return obj["row_count"], [list(row) for row in obj["rows"]]
    return [k for k in obj if not k.startswith("variable_")]


def _params() -> list[Any]:
    out = []
    for row in ROWS:
        label = row.ident.split(":")[0]
        marks = [pytest.mark.xfail(strict=True, reason=KNOWN_DEFECTS[label])] \
            if label in KNOWN_DEFECTS else []
        out.append(pytest.param(row, id=row.ident, marks=marks))
    return out


@pytest.mark.parametrize("row", _params())
def test_captured_reply(row: Row, sim: SimHandle, captures_dir: Path) -> None:
    c = sim.connect()
    c.reply("event plain CHANNEL_PARK")
    if row.api_name in NOT_MODELLED:
        got = c.reply(row.command.split("\n")[0])
        assert got.body.decode() == f"-ERR {row.api_name} Command not found!\n"
        return
    # captured channel UUIDs -> fresh calls, in order of appearance
    mapping: dict[str, str] = {}
    captured_rows = 0
    if row.command.startswith(("api show ", "api uuid_dump")):
        captured_rows = json.loads(row.reply_text).get("row_count", 1)
    for uid in UUID.findall(row.command):
        if uid != BOGUS and uid not in mapping:
            mapping[uid] = _fresh_call(c)
    while len(mapping) < captured_rows:
        mapping[f"extra-{len(mapping)}"] = _fresh_call(c)
    first = next(iter(mapping.values()), "")
    if row.command.startswith("api show ") and captured_rows:
        # `show` reads the core database, which trails the events (fssim/coredb.py, as on a
        # real switch): wait until it lists the fresh calls, as a client of a switch must.
        def listed() -> bool:
            text = c.reply("api show channels as json").body.decode()
            return json.loads(text).get("row_count", 0) >= len(mapping)

        wait_for(listed, timeout=5, message="the core database to list the fresh calls")
    if row.api_name in BEFORE:
        assert c.reply(BEFORE[row.api_name].format(uuid=first)).headers["Reply-Text"] == "+OK"
    command = UUID.sub(lambda m: mapping.get(m.group(0), m.group(0)), row.command)
    frame = c.reply(command)
    back = {v: k for k, v in mapping.items()}
    got = UUID.sub(lambda m: back.get(m.group(0), m.group(0)), _sent_and_got(frame))
    if row.command.startswith(KEYS_ONLY) and row.reply_text.startswith("{") \
            and row.reply_text != '{"row_count": 0}\n':
        assert _keys(got) == _keys(row.reply_text)
        return
    if row.command == STATUS:
        def norm(text: str) -> str:
            text = re.sub(r"(\d+) (year|day|hour|minute|second|millisecond|microsecond)s?",
                          r"0 \2", text)
            return re.sub(r"\d+(\.\d+)?", "0", text)
        assert norm(got) == norm(row.reply_text)
        return
    job = frame.headers.get("Job-UUID")
    want = row.reply_text
    if job is not None:
        got = got.replace(job, "<job>")
        want = want.replace(row.reply_headers.get("Job-UUID", "?"), "<job>")
    assert got == want
    if row.raw is not None:
        expected = row.raw
        if job is not None:
            expected = expected.replace(row.reply_headers["Job-UUID"].encode(), job.encode())
        assert UUID.sub(lambda m: back.get(m.group(0), m.group(0)), frame.raw.decode()).encode() \
            == expected
    else:
        # the reply's header names, in order, as captured (replies.json keeps the order)
        assert [k for k, _ in frame.pairs] == list(row.reply_headers)
