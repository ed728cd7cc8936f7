"""Composition root: builds the call flow of one worker process from what the worker made.

``cc_core.worker`` builds the process-wide pieces (config, Redis, dispatcher, metrics registry)
into a ``WorkerContext`` and calls ``build(ctx)`` once, before it starts the node links; the
``CallFlowApp`` returned gives the node manager its hooks (reconcile, sweep, standby events).
What the app needs of the node manager (links, ownership) it reads from ``ctx`` when a call
arrives, after start-up.

Where tenants come from: ``CC_TENANTS`` (a YAML file or folder, read once at start) or, without
it, the configuration applied to Redis with ``cc-core config apply`` (picked up live).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cc_core.flow.decide import Decider, TenantSource
from cc_core.flow.hangup import CallSummaryStream, ForgetLiveRecord, HangupPipeline
from cc_core.flow.machine import STANDBY_EVENTS, CallMachine
from cc_core.flow.record import CallStore
from cc_core.routing.region import RegionDirectory
from metrics.callflow import CallFlowMetrics

if TYPE_CHECKING:
    from cc_core.worker import WorkerContext

DEFAULT_VOICEMAIL_DIR = "/var/lib/freeswitch/recordings/voicemail"


class CallFlowApp:
    """The hooks a worker's node manager calls, bound to one worker's call machine."""

    standby_events = STANDBY_EVENTS

    def __init__(self, ctx: WorkerContext, machine: CallMachine) -> None:
        self._ctx = ctx
        self.machine = machine

    def reconcile(self, node: str, rows: list[dict[str, Any]]) -> None:
        self.machine.reconcile(node, rows, self._ctx.links[node])

    def sweep(self, node: str, rows: list[dict[str, Any]]) -> None:
        self.machine.sweep(node, rows, self._ctx.links[node])

    def on_standby_event(self, node: str, event: Any) -> None:
        self.machine.on_standby_event(node, event)


def tenant_source(ctx: WorkerContext) -> TenantSource:
    path = os.environ.get("CC_TENANTS")
    if path:
        from cc_core.tenants.loader import load_path
        from cc_core.tenants.static import StaticTenants

        loaded = load_path(Path(path))
        return StaticTenants(loaded.tenants.values(), loaded.global_config)
    from cc_core.tenants.store import TenantDirectory

    return TenantDirectory(ctx.redis)


def build(ctx: WorkerContext) -> CallFlowApp:
    def may_act(link: Any) -> bool:
        # A draining worker finishes the steps it started (its successor waits for them);
        # any other worker acts only while it validly owns the call's node.
        return bool(ctx.draining) or (ctx.nodes is not None and ctx.nodes.owns(link.node.name))

    metrics = CallFlowMetrics(ctx.registry)
    store = CallStore(ctx.redis, ctx.worker_id)
    # Ordered: the call's summary is written before its live record is deleted.
    hangups = HangupPipeline([CallSummaryStream(ctx.redis)], cleanup=ForgetLiveRecord(store))
    machine = CallMachine(
        store=store, decider=Decider(tenant_source(ctx), RegionDirectory()), hangups=hangups,
        is_draining=lambda: bool(ctx.draining), may_act=may_act, swept=metrics.swept,
        outcomes=metrics.outcomes, setup=metrics.setup, started=metrics.started,
        voicemail_dir=os.environ.get("CC_VOICEMAIL_DIR", DEFAULT_VOICEMAIL_DIR))
    metrics.watch_live_calls(machine.live_calls)
    machine.register(ctx.dispatcher)
    return CallFlowApp(ctx, machine)
