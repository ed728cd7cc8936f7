"""Recording policy in the tenant config: validated with errors that say how to fix it; the
queue's policy refines the tenant's; the percentage is stable per call and fair over calls."""

from __future__ import annotations

import uuid as uuidlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from cc_core.tenants.model import RecordingMode, Tenant
from recordings.layout import OutsideRoot, Root, check_name, relative_name
from recordings.policy import in_sample, plan

BASE: dict[str, Any] = {"tenant": "acme", "entry": "queue:support",
                        "numbers": {"4008001234": {}},
                        "prompts": {"notice": "/sounds/notice.wav"},
                        "agents": {"a1": {"contact": "user/a1@acme"}},
                        "queues": {"support": {"tiers": [{"agent": "a1"}]}}}


def tenant(recording: dict[str, Any] | None = None, queue: dict[str, Any] | None = None
           ) -> Tenant:
    data = {**BASE, "queues": {"support": {"tiers": [{"agent": "a1"}],
                                           **({"recording": queue} if queue else {})}}}
    if recording is not None:
        data["recording"] = recording
    return Tenant.model_validate(data)


@pytest.mark.parametrize(("recording", "queue", "message"), [
    ({"mode": "percent"}, None, "mode percent needs percent"),
    ({"mode": "all", "percent": 20}, None, "percent applies to mode percent only"),
    ({"mode": "percent", "percent": 100}, None, "less than or equal to 99"),
    ({"retention": 45}, None, "30, 90, 180 or 365 days, or write forever"),
    ({"retention": True}, None, "30, 90, 180 or 365 days"),
    ({"mode": "sometimes"}, None, "'all', 'none', 'percent' or 'on_demand'"),
    ({"channels": "quad"}, None, "'mono' or 'stereo'"),
    ({"announce": "nope"}, None, "prompt 'nope' is not in prompts"),
    (None, {"mode": "percent"}, "mode percent needs percent"),
    (None, {"announce": "nope"}, "prompt 'nope' is not in prompts"),
    ({"mode": "all", "colour": "red"}, None, "Extra inputs are not permitted"),
])
def test_bad_policies_are_refused_with_the_fix(recording: dict[str, Any] | None,
                                                queue: dict[str, Any] | None,
                                                message: str) -> None:
    with pytest.raises(ValidationError) as info:
        tenant(recording, queue)
    assert message in str(info.value)


def test_defaults_record_nothing_and_keep_90_days() -> None:
    t = tenant()
    assert t.recording.mode is RecordingMode.NONE and t.recording.retention_days == 90
    assert not plan(t, "support").records(str(uuidlib.uuid4()))


@pytest.mark.parametrize(("written", "days"), [(30, 30), ("180d", 180), ("365", 365),
                                               ("forever", None), ("Forever", None)])
def test_retention_is_one_of_the_products_choices(written: Any, days: int | None) -> None:
    assert tenant({"retention": written}).recording.retention_days == days


def test_the_queue_refines_the_tenants_policy() -> None:
    t = tenant({"mode": "all", "channels": "mono", "announce": "notice"},
               {"mode": "on_demand", "channels": "stereo"})
    tenant_wide, queue = plan(t), plan(t, "support")
    assert tenant_wide.mode is RecordingMode.ALL and not tenant_wide.stereo
    assert queue.mode is RecordingMode.ON_DEMAND and queue.stereo
    assert queue.announce == "/sounds/notice.wav"      # inherited, as a prompt path
    assert not queue.records(str(uuidlib.uuid4())) and queue.may_record


def test_a_percentage_is_stable_per_call_and_close_over_many() -> None:
    t = tenant({"mode": "percent", "percent": 20})
    calls = [str(uuidlib.UUID(int=i * 7919 + 1)) for i in range(2000)]
    chosen = [c for c in calls if plan(t).records(c)]
    assert 300 <= len(chosen) <= 500
    assert all(in_sample(c, 20) for c in chosen) and all(in_sample(c.upper(), 20)
                                                         for c in chosen)


def test_the_layout_uses_the_tenants_day() -> None:
    u = "0c8296cc-d6cc-4ebf-82d6-baa8cb370996"
    late_utc = int(datetime(2026, 11, 30, 17, 0, tzinfo=UTC).timestamp() * 1000)
    assert relative_name("acme", u, late_utc, "Asia/Shanghai") == f"acme/2026/12/01/{u}.wav"
    assert relative_name("acme", u, late_utc, "UTC") == f"acme/2026/11/30/{u}.wav"
    with pytest.raises(ValueError):
        relative_name("../x", u, late_utc, "UTC")


@pytest.mark.parametrize("name", [
    "../acme/2026/11/30/0c8296cc-d6cc-4ebf-82d6-baa8cb370996.wav",
    "/etc/passwd", "acme/2026/11/30/../../../../etc/passwd",
    "acme/2026/11/30/0c8296cc-d6cc-4ebf-82d6-baa8cb370996.wav/..",
    "acme/2026/11/30/0c8296cc-d6cc-4ebf-82d6-baa8cb370996.mp3",
    "acme//2026/11/30/0c8296cc-d6cc-4ebf-82d6-baa8cb370996.wav",
    "acme/2026/11/30/0c8296cc-d6cc-4ebf-82d6-baa8cb370996.wav\n",
])
def test_names_outside_the_layout_are_refused(name: str) -> None:
    with pytest.raises(OutsideRoot):
        check_name(name)


def test_resolve_follows_symlinks_and_refuses_leaving_the_root(tmp_path: Path) -> None:
    root = Root(tmp_path / "rec")
    u = "0c8296cc-d6cc-4ebf-82d6-baa8cb370996"
    name = f"acme/2026/11/30/{u}.wav"
    (tmp_path / "rec" / "acme" / "2026" / "11").mkdir(parents=True)
    (tmp_path / "secret").mkdir()
    (tmp_path / "rec" / "acme" / "2026" / "11" / "30").symlink_to(tmp_path / "secret")
    with pytest.raises(OutsideRoot):
        root.resolve(name)
    with pytest.raises(OutsideRoot):
        root.resolve(name.replace("acme", "beta"), "acme")
