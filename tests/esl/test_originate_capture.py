"""Originate escaping held to the real switch: ``tests/data/originate_escaping.json``.

That capture (tests/data/README.md) holds, for hostile values, the originate commands sent
to FreeSWITCH 1.10.12 and what ``uuid_getvar`` read back from the channel. The builders are
held to it, not to the simulator's model of FreeSWITCH's parsers (fssim/fsstrings.py):

* for every value of a ``{}`` row, ``commands.originate`` must build exactly the command that
  was sent, and the switch must have read the value back unchanged; a value the builder
  refuses must be one the switch did not read back (refusing a value that works is a bug
  too);
* for every value the switch mangled when sent unescaped, the builder must not send it as is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from esl_handlers import commands as c

CAPTURE = Path(__file__).resolve().parents[1] / "data" / "originate_escaping.json"
DATA: dict[str, Any] = json.loads(CAPTURE.read_text())

# Product defects the capture exposes, each with its reason (strict: the row must fail
# until the builder is fixed, then the mark must go). ':_:' is refused since.
KNOWN_DEFECTS: dict[str, str] = {}


def rows(block: str, escaping: str) -> list[Any]:
    out = []
    for case in DATA["cases"]:
        if case["block"] == block and case["escaping"] == escaping:
            marks = [pytest.mark.xfail(strict=True, reason=KNOWN_DEFECTS[case["value"]])] \
                if case["value"] in KNOWN_DEFECTS and escaping == "builder" else []
            out.append(pytest.param(case, id=repr(case["value"]), marks=marks))
    return out


def read_back(case: dict[str, Any]) -> str:
    request, response = case["exchanges"][1]["request"], case["exchanges"][1]["response"]
    assert request.startswith("api uuid_getvar ")
    return response


def test_the_capture_is_from_the_real_switch() -> None:
    assert DATA["switch"].startswith("FreeSWITCH Version 1.10.12-release")
    assert DATA["dial"].startswith("loopback/")
    assert {c["block"] for c in DATA["cases"]} == {"{}", "[]", "<>"}
    assert len([c for c in DATA["cases"] if c["escaping"] == "builder"]) >= 40


@pytest.mark.parametrize("case", rows("{}", "builder"))
def test_builder_sends_what_the_switch_reads_back_unchanged(case: dict[str, Any]) -> None:
    sent = case["exchanges"][0]["request"]
    assert sent.startswith("bgapi ")
    try:
        built = c.originate(DATA["dial"], variables=case["builder_variables"])
    except ValueError:
        assert read_back(case) != case["value"], \
            "the builder refuses a value the real switch reads back unchanged"
        return
    assert built == sent[len("bgapi "):]
    assert read_back(case) == case["value"]


@pytest.mark.parametrize("case", rows("{}", "raw"))
def test_builder_never_sends_a_value_the_switch_mangles_as_is(case: dict[str, Any]) -> None:
    assert read_back(case) != case["value"]        # what the capture shows for raw values
    variables = {"origination_uuid": case["uuid"], DATA["variable"]: case["value"]}
    assert c.originate(DATA["dial"], variables=variables) != case["exchanges"][0]["request"][6:]
