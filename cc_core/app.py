"""Composition root: wires the call flow into a worker.

``cc_core.worker`` builds the process-wide pieces (config, Redis, node links, dispatcher,
metrics) and calls ``build(ctx)`` once; everything the handlers use arrives from here.
"""

from __future__ import annotations

import os
from typing import Any

from cc_core.callflow import GreetingFlow

# The demo greeting: a tone, so it needs no sound file on the switch. Production config
# will name a file per tenant/number (a later issue).
DEFAULT_GREETING = "tone_stream://%(2000,0,440);loops=1"


def build(ctx: Any) -> GreetingFlow:
    greeting = os.environ.get("CC_GREETING", DEFAULT_GREETING)
    flow = GreetingFlow(redis=ctx.redis, greeting=greeting,
                        is_draining=lambda: bool(ctx.draining))
    flow.register(ctx.dispatcher)

    def reconcile(node_name: str, channels: list[dict[str, Any]]) -> None:
        flow.reconcile(node_name, channels, ctx.links[node_name])

    ctx.reconcile = reconcile
    return flow
