"""The simulator reads originate variables as the real switch did (tests/data/originate_escaping.json).

Each recorded exchange is replayed on the simulator as it was sent to FreeSWITCH 1.10.12:
the originate (bgapi, with its ``origination_uuid``), ``uuid_getvar`` polled until the
a-leg exists, ``uuid_kill``, then the job's BACKGROUND_JOB body. Every reply must equal the
recorded one. This holds fssim/endpoints.py + fssim/fsstrings.py (the simulator's model of
how FreeSWITCH reads a dial string) to the switch itself, for ``{}``, ``[]`` and ``<>``
blocks and unescaped values.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.sim.simclient import SimClient, running_sim

CAPTURE = Path(__file__).resolve().parents[1] / "data" / "originate_escaping.json"
DATA: dict[str, Any] = json.loads(CAPTURE.read_text())
NO_CHANNEL = "-ERR No such channel!\n"

# Simulator defects this capture exposes (strict: fix them, then drop the mark).
KNOWN_DEFECTS: dict[tuple[str, str, str], str] = {}


@pytest.fixture(scope="module")
def client() -> Iterator[SimClient]:
    with running_sim(time_scale=10.0) as addr, SimClient(*addr,
                                                         subscribe="plain BACKGROUND_JOB") as cl:
        yield cl


def params() -> list[Any]:
    out = []
    for case in DATA["cases"]:
        key = (case["block"], case["escaping"], case["value"])
        marks = [pytest.mark.xfail(strict=True, reason=KNOWN_DEFECTS[key])] \
            if key in KNOWN_DEFECTS else []
        out.append(pytest.param(case, id=f"{case['block']}-{case['escaping']}-{case['value']!r}",
                                marks=marks))
    return out


@pytest.mark.parametrize("case", params())
def test_simulator_replies_as_the_switch_did(case: dict[str, Any], client: SimClient) -> None:
    originate, getvar, kill = case["exchanges"]
    frame = client.send(originate["request"])
    assert frame.get("Reply-Text") == originate["reply_text"].replace(
        originate["reply_text"][len("+OK Job-UUID: "):], frame.get("Job-UUID") or "")
    job = frame.get("Job-UUID")
    got = NO_CHANNEL
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        got = client.api(getvar["request"][len("api "):])
        done = any(e.name == "BACKGROUND_JOB" and e.job_uuid == job for e in client.events)
        if got != NO_CHANNEL or done:
            break
        client.wait(lambda: False, 0.02)    # let the simulator run: a bounded, polled wait
    assert got == getvar["response"]
    assert client.api(kill["request"][len("api "):]) == kill["response"]
    assert client.wait(lambda: any(e.name == "BACKGROUND_JOB" and e.job_uuid == job
                                   for e in client.events), 5)
    body = next(e.body for e in client.events if e.name == "BACKGROUND_JOB" and e.job_uuid == job)
    assert body == case["background_job"]
