"""Composition root: wires the call flow into a worker.

``cc_core.worker`` builds the process-wide pieces (config, Redis, dispatcher, metrics) and calls
``build(ctx)`` once, before it starts the node links; the ``GreetingApp`` returned gives the
node manager its hooks (reconcile, sweep, standby events). What the app needs of the node
manager (links, ownership) it reads from ``ctx`` when a call arrives.
"""

from __future__ import annotations

import os
from typing import Any

from cc_core.callflow import STANDBY_EVENTS, GreetingFlow
from metrics.callflow import CallFlowMetrics

# The demo greeting: a tone, so it needs no sound file on the switch. Production config
# will name a file per tenant/number (a later issue).
DEFAULT_GREETING = "tone_stream://%(2000,0,440);loops=1"


class GreetingApp:
    """The hooks a worker's node manager calls, bound to one worker's flow."""

    standby_events = STANDBY_EVENTS

    def __init__(self, ctx: Any, flow: GreetingFlow) -> None:
        self._ctx = ctx
        self.flow = flow

    def reconcile(self, node: str, rows: list[dict[str, Any]]) -> None:
        self.flow.reconcile(node, rows, self._ctx.links[node])

    def sweep(self, node: str, rows: list[dict[str, Any]]) -> None:
        self.flow.sweep(node, rows, self._ctx.links[node])

    def on_standby_event(self, node: str, event: Any) -> None:
        self.flow.on_standby_event(node, event)


def build(ctx: Any) -> GreetingApp:
    greeting = os.environ.get("CC_GREETING", DEFAULT_GREETING)

    def may_act(link: Any) -> bool:
        # A draining worker finishes the steps it started (its successor waits for them);
        # any other worker acts only while it validly owns the call's node.
        return bool(ctx.draining) or ctx.nodes.owns(link.node.name)

    flow = GreetingFlow(redis=ctx.redis, greeting=greeting, worker_id=ctx.worker_id,
                        is_draining=lambda: bool(ctx.draining), may_act=may_act,
                        swept=CallFlowMetrics(ctx.registry).swept)
    flow.register(ctx.dispatcher)
    return GreetingApp(ctx, flow)
