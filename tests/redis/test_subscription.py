"""The node owner's subscription is exactly what the call flow handles: an event it needs and
does not subscribe to never arrives (a call would hang), and one it subscribes to without a
handler is read, framed and decoded for nothing on every call (on a real switch most of a
call's events were such)."""

from __future__ import annotations

from pathlib import Path

import gevent.pool
import pytest
import redis
from prometheus_client import CollectorRegistry

from cc_core import config as config_mod
from cc_core.app import build
from cc_core.worker import WorkerContext
from esl_handlers.dispatch import Dispatcher

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "tenants"
# Read by the connection and the link themselves, not by a dispatcher handler.
PLUMBING = {"BACKGROUND_JOB", "HEARTBEAT"}


def test_the_owner_subscribes_to_what_the_call_flow_handles_and_nothing_else(
        redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CC_TENANTS", str(EXAMPLES))
    cfg = config_mod.load(None, overrides={"redis_url": redis_url}, environ={})
    dispatcher = Dispatcher(queue_size=10, pool_size=1)
    group = gevent.pool.Group()
    ctx = WorkerContext(config=cfg, redis=redis.Redis.from_url(redis_url), worker_id="w-sub",
                        index=0, dispatcher=dispatcher, registry=CollectorRegistry(),
                        group=group)
    try:
        app = build(ctx)
        subscribed = set(cfg.esl.events) | set(app.extra_events)
        custom = {e for e in subscribed if e.startswith("CUSTOM ")}
        subscribed |= {f"CUSTOM {sub}" for e in custom for sub in e.split()[1:]}
        handled = dispatcher.handled()
        assert handled <= subscribed, f"handled, never subscribed: {handled - subscribed}"
        assert set(cfg.esl.events) - PLUMBING <= handled, (
            f"subscribed, never handled: {set(cfg.esl.events) - PLUMBING - handled}")
    finally:
        group.kill()
        dispatcher.stop(timeout=1)
