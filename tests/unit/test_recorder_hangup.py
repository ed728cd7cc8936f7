"""What a recording's missed events leave unsaid is read from the file the switch wrote: a
RECORD_STOP sent while no worker owned the node, or a holder that died between ``uuid_record``
and saving the call (both seen on FreeSWITCH 1.10.12 with a worker SIGKILLed under traffic)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cc_core.flow.record import CallData
from cc_core.tenants.model import Tenant
from recordings.layout import Root, relative_name
from recordings.recorder import RECOVERED, Recorder
from recordings.wav import write_silence

UUID = "5f0c7a52-4c7e-4b55-9a51-8d3f2f7d0c11"
ANSWERED_MS = 1_796_000_000_000          # 2026-11-30 (Asia/Shanghai)
BASE: dict[str, Any] = {"tenant": "acme", "entry": "queue:support",
                        "numbers": {"4008001234": {}},
                        "agents": {"a1": {"contact": "user/a1@acme"}},
                        "queues": {"support": {"tiers": [{"agent": "a1"}]}}}


class _Call:
    def __init__(self, recording: dict[str, Any] | None = None) -> None:
        self.uuid = UUID
        self.data = CallData(tenant="acme", dnis="4008001234", agent="a1", queue="support",
                             agent_answered_ms=ANSWERED_MS)
        self.data.recording = recording or {}


def _tenant(mode: str = "all") -> Tenant:
    return Tenant.model_validate({**BASE, "recording": {"mode": mode}})


def _wav(root: Path, seconds: int) -> str:
    name = relative_name("acme", UUID, ANSWERED_MS, "Asia/Shanghai")
    path = root / name
    path.parent.mkdir(parents=True)
    with path.open("wb") as out:
        write_silence(out, 1, 8000, 8000 * seconds)
    return name


def test_a_recording_whose_stop_was_missed_is_completed_from_its_file(tmp_path: Path) -> None:
    name = _wav(tmp_path, 3)
    call = _Call({"name": name, "started_ms": ANSWERED_MS, "by": "policy"})
    Recorder(Root(tmp_path)).on_hangup(call, _tenant())
    rec = call.data.recording
    assert rec["ms"] == 3000 and rec["size"] == (tmp_path / name).stat().st_size
    assert rec["stopped_ms"] and rec["cause"] == RECOVERED and rec["started_ms"] == ANSWERED_MS


def test_a_recording_the_switch_reported_is_left_as_it_said(tmp_path: Path) -> None:
    name = _wav(tmp_path, 3)
    said = {"name": name, "started_ms": ANSWERED_MS, "stopped_ms": ANSWERED_MS + 2990,
            "ms": 2990, "size": 1, "cause": "success-silence"}
    call = _Call(dict(said))
    Recorder(Root(tmp_path)).on_hangup(call, _tenant())
    assert call.data.recording == said


def test_a_recording_started_by_a_holder_that_died_before_saving_it_is_found(
        tmp_path: Path) -> None:
    name = _wav(tmp_path, 2)
    call = _Call()
    Recorder(Root(tmp_path)).on_hangup(call, _tenant())
    rec = call.data.recording
    assert rec["name"] == name and rec["ms"] == 2000 and rec["by"] == "policy"
    assert rec["started_ms"] and rec["cause"] == RECOVERED


@pytest.mark.parametrize("case", ["no file", "empty file", "policy records nothing"])
def test_no_file_or_no_policy_means_no_recording(tmp_path: Path, case: str) -> None:
    if case != "no file":
        name = _wav(tmp_path, 2)
        if case == "empty file":
            (tmp_path / name).write_bytes(b"")
    call = _Call()
    Recorder(Root(tmp_path)).on_hangup(call, _tenant("none" if "policy" in case else "all"))
    assert call.data.recording == {}
