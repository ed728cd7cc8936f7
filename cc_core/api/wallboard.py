"""The live wallboard: a JSON figure set per tenant and queue, and the page that shows it.

``GET /v1/tenants/{tenant}/wallboard`` (supervisor token) answers the figures, read from the
ACD in Redis at each request; ``GET /wallboard`` is a static page with no data in it (public,
like the OpenAPI document): its script takes the token from the URL fragment (``#token=...``,
never sent to the server or written to its logs), asks for the figures every second and draws
them big enough for a wall screen. No external script, font or style sheet is loaded.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from importlib import resources
from typing import Any

from acd.store import Acd, QueueView
from cc_core.api import models as m
from cc_core.api.acd import _resp, queue_agents
from cc_core.api.spec import spec
from cc_core.api.tokens import Role

LOGGED_OUT = "Logged Out"
PAGE_PATH = "/wallboard"


def abandoned(view: QueueView) -> int:
    """Today's abandons without the short ones (hung up within the queue's short-abandon
    threshold), as the KPI cccore_queue_abandoned_today counts them, once the ACD counts
    short abandons (``abandoned_short_today``); all of them before that."""
    return view.abandoned_today - int(getattr(view, "abandoned_short_today", 0))


def service_level_pct(view: QueueView) -> float | None:
    """Answered within the threshold / (answered + abandoned), today, in %: as the KPI
    cccore_queue_service_level_ratio. None before the ACD counts answers within the threshold
    (``answered_in_sl_today``) or before the day's first answered or abandoned call."""
    in_sl = getattr(view, "answered_in_sl_today", None)
    denominator = view.answered_today + abandoned(view)
    if in_sl is None or denominator <= 0:
        return None
    return round(100.0 * int(in_sl) / denominator, 1)


def wallboard(acd: Acd, tenant: str, now: Callable[[], float] = time.time) -> m.Wallboard:
    now_ms = int(now() * 1000)
    out = []
    for view in acd.queues(tenant):
        members = acd.members(tenant, view.queue)
        oldest = min((x.joined_ms for x in members if x.joined_ms), default=None)
        agents = queue_agents(acd, tenant, view.queue)
        logged_in = [a for a in agents if a.status and a.status != LOGGED_OUT]
        out.append(m.WallboardQueue(
            queue=view.queue, waiting=view.waiting,
            longest_wait_s=0 if oldest is None else max(0, (now_ms - oldest) // 1000),
            answered_today=view.answered_today, abandoned_today=abandoned(view),
            service_level_pct=service_level_pct(view), agents_logged_in=len(logged_in),
            agents_by_state=dict(sorted(Counter(a.state for a in logged_in).items())),
            agents_by_status=dict(sorted(Counter(a.status or LOGGED_OUT
                                                 for a in agents).items()))))
    return m.Wallboard(tenant=tenant, now_ms=now_ms, queues=out)


class WallboardFigures:
    roles = {"GET": Role.SUPERVISOR}

    def __init__(self, acd: Acd) -> None:
        self.acd = acd

    @spec.validate(resp=_resp(m.Wallboard), tags=["wallboard"])
    def on_get(self, req: Any, resp: Any, tenant: str) -> None:
        """The wallboard's figures: per queue, who waits and how long, today's answered and
        abandoned, service level, agents by state. The page at /wallboard asks every second."""
        resp.media = wallboard(self.acd, tenant).model_dump(mode="json")
        resp.set_header("Cache-Control", "no-store")


class WallboardPage:
    """The page itself: static, no figures in it, so public (the figures need a token)."""

    public = True

    def __init__(self) -> None:
        self._html = (resources.files("cc_core.api") / "static" / "wallboard.html").read_bytes()

    def on_get(self, req: Any, resp: Any) -> None:
        # Not in the OpenAPI document (spectree's strict mode lists validated routes only):
        # it is a page, not an API.
        resp.content_type = "text/html; charset=utf-8"
        resp.data = self._html
        resp.set_header("Cache-Control", "no-cache")
        # The page runs its own inline script and talks to this origin only.
        resp.set_header("Content-Security-Policy", "default-src 'none'; script-src "
                        "'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'")


def add_routes(app: Any, acd: Acd) -> None:
    app.add_route("/v1/tenants/{tenant}/wallboard", WallboardFigures(acd))
    app.add_route(PAGE_PATH, WallboardPage())
