"""Live credit control on a worker: admit new calls, hard-stop billed calls in time.

* ``admit``: a tenant whose credit view shows no credit left (prepaid fen and included
  seconds, minus what its live calls have spent) gets its new calls refused; the flow plays
  the announcement (``cc_core.flow.decide.no_credit``). A tenant without a published account
  is not controlled. Redis unreadable: admitted (the flow itself needs Redis for the call, and
  the rating still bills it; a blocked tenant on a Redis blip is the worse failure).
* ``billable``: when a call's billable time starts (IVR mode: the worker's answer; greeting
  mode: the agent's answer) it takes a reservation in the view, and every call of the tenant
  that this worker runs gets ``sched_hangup`` at the shared deadline (``credit.deadline_ms``).
  The switch holds the timer: a worker that dies does not take it along.
* ``run``: every ``REARM_S``, for the tenants it has billed calls of, compare the view's
  ``version``: a call started or ended on any worker, a rating or a top-up published, and the
  deadline is computed again and the calls re-armed (``sched_del`` then ``sched_hangup``).
* ``on_hangup`` (a hang-up pipeline consumer, before the call summary): the reservation is
  marked ended and kept until the rating that includes it is published.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from redis.exceptions import RedisError

from billing.credit import (
    CreditView,
    Head,
    deadline_ms,
    has_credit,
    now_ms,
    surely_admits,
    surely_lasts,
)
from esl_handlers import commands

log = logging.getLogger(__name__)

REARM_S = 0.25
HARD_STOP_CAUSE = "ALLOTTED_TIMEOUT"
REARM_EPSILON_MS = 1000       # a deadline that moved less than this is left armed
UNKNOWN_ARM = -1              # armed by another worker, at a time not known here
RECHECK_MS = 10 * 60 * 1000   # a tenant whose view did not change is checked again this often


class CreditControl:
    name = "credit"

    def __init__(self, view: CreditView, metrics: Any = None,
                 clock: Callable[[], int] = now_ms) -> None:
        self.view = view
        self.metrics = metrics
        self.clock = clock
        self._calls: dict[str, tuple[str, Any]] = {}     # uuid -> (tenant, link)
        self._armed: dict[str, int] = {}                 # uuid -> deadline ms armed
        self._versions: dict[str, int] = {}
        self._checked: dict[str, int] = {}

    def admit(self, tenant: str) -> bool:
        now = self.clock()
        try:
            head = self.view.head(tenant)
            if head is None or surely_admits(head, now):
                return True
            credit = self.view.read(tenant)
        except RedisError as exc:
            log.warning("credit view unreadable: call admitted: %r", exc,
                        extra={"tenant": tenant})
            return True
        if credit is None or has_credit(credit, now):
            return True
        if self.metrics is not None:
            self.metrics.refused.labels(tenant).inc()
        return False

    def billable(self, uuid: str, tenant: str, caller_kind: str, link: Any) -> None:
        if uuid in self._calls:
            return          # answered, then bridged: billed from the first
        try:
            head = self.view.start(tenant, uuid, caller_kind, self.clock())
            if head is None:
                return
            self._calls[uuid] = (tenant, link)
            self.arm(tenant, head)
        except RedisError as exc:
            log.warning("could not reserve credit for the call: %r", exc,
                        extra={"call_uuid": uuid, "tenant": tenant})

    def adopt(self, uuid: str, tenant: str, link: Any) -> None:
        """A billed call taken over from another worker (failover): its reservation stays,
        and this worker re-arms it from now on; what its old holder armed is taken back
        first (``sched_del``), since its deadline is not known here."""
        try:
            found = self.view.read(tenant)
        except RedisError:
            return
        live = found.live.get(uuid) if found is not None else None
        if live is None or live.end_ms or uuid in self._calls:
            return
        self._calls[uuid] = (tenant, link)
        self._armed[uuid] = UNKNOWN_ARM
        self.arm(tenant)

    def on_hangup(self, ended: Any) -> None:
        found = self._calls.pop(ended.uuid, None)
        self._armed.pop(ended.uuid, None)
        if found is None:
            return
        event = ended.event
        end_us = event.get("variable_end_uepoch") if event is not None else None
        try:
            end = int(end_us) // 1000 if end_us and str(end_us).isdigit() and int(end_us) \
                else self.clock()
        except ValueError:
            end = self.clock()
        self.view.end(found[0], ended.uuid, end)

    def arm(self, tenant: str, head: Head | None = None) -> None:
        """Computes the tenant's deadline and (re-)arms this worker's calls of it."""
        now = self.clock()
        head = head or self.view.head(tenant)
        if head is None:
            return
        self._versions[tenant] = head.version
        self._checked[tenant] = now
        mine = [u for u, (t, _) in self._calls.items() if t == tenant]
        if surely_lasts(head, now) and not any(u in self._armed for u in mine):
            return      # nothing armed, nothing to arm: the reservations are not read
        credit = self.view.read(tenant)
        if credit is None:
            return
        stop = deadline_ms(credit, now)
        for uuid, (t, link) in list(self._calls.items()):
            if t != tenant:
                continue
            armed = self._armed.get(uuid)
            if stop is None:
                if armed is not None:
                    link.api(commands.sched_del(uuid))
                    del self._armed[uuid]
                continue
            if armed is not None and abs(armed - stop) < REARM_EPSILON_MS:
                continue
            if armed is not None:
                link.api(commands.sched_del(uuid))
            # Whole seconds, rounded down: the switch's timer is by the second, and early is
            # the side that keeps the credit from going below zero.
            seconds = max(0, (stop - now) // 1000)
            reply = link.api(commands.sched_hangup(uuid, seconds, HARD_STOP_CAUSE))
            self._armed[uuid] = stop
            log.info("hard stop armed", extra={"call_uuid": uuid, "tenant": tenant,
                                               "in_s": seconds, "reply": reply.strip(),
                                               "live_calls": len(credit.live)})
            if self.metrics is not None:
                self.metrics.stops_armed.labels(tenant).inc()

    def tick(self) -> None:
        now = self.clock()
        for tenant in {t for t, _ in self._calls.values()}:
            stale = now - self._checked.get(tenant, 0) >= RECHECK_MS
            if stale or self.view.version(tenant) != self._versions.get(tenant):
                self.arm(tenant)

    def run(self, stopping: Callable[[], bool], sleep: Callable[[float], None] = time.sleep
            ) -> None:
        while not stopping():
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - logged; the next tick tries again
                log.exception("credit control tick failed")
            sleep(REARM_S)
