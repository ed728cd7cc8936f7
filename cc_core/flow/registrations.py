"""Agents whose phone is not registered on the switch are skipped, not rung.

What the worker does with sofia's registration events (``acd.registration``):

* the owner of a node subscribes to ``CUSTOM sofia::register sofia::unregister sofia::expire``
  (``SUBSCRIPTION``, added to the node's subscription by the app) and feeds them to that
  node's ``RegistrationTracker``; a change of a user's state sets ``registered`` in the ACD
  (``Acd.set_registered``) for every agent, of every tenant, whose contact dials that user
  (``contact_key``). Contacts that dial no registration (gateways, external numbers,
  ``sofia/<profile>/<user>@<host>``) are always reachable.
* when in doubt, the switch is asked: each time this worker gains a node (its reconcile, at
  start-up too) the node's tracker starts afresh (events may have been missed) and every
  registration-bound contact is resolved with ``sofia_contact``, in a greenlet of its own, a
  few at a time, each reply bounded by ``RESOLVE_TIMEOUT_S`` and the pass by
  ``RESOLVE_PASS_S``: a phone registered before the worker started is rung, an absent one is
  not. Until a user is resolved its agents keep the flag they had; users left unanswered are
  asked again at the node's next sweep.
* an originate that fails ``USER_NOT_REGISTERED`` is the switch saying so too
  (``not_registered``): the agents dialling that user are marked absent at once; the next
  ``sofia::register`` brings them back.

Several nodes: a phone registers on one switch, and ``user/...`` dials it only through that
one. So the state is written per node (``Acd.set_registered(..., node=)``): a caller on a node
whose registrations say the phone is absent is not offered that agent, while the callers of
the node it is registered on are; the agent counts as logged-in-and-reachable while any node
says so. Each worker writes the nodes it owns, so two workers owning different nodes never
overwrite each other's word.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import gevent
import gevent.pool
from redis.exceptions import RedisError

from acd.errors import UnknownAgent
from acd.registration import SUBCLASSES, SUBSCRIPTION, RegistrationTracker, contact_key
from acd.store import Acd, Offer
from cc_core.errors import EslError
from cc_core.flow.decide import TenantSource
from cc_core.tenants.model import Tenant

log = logging.getLogger(__name__)

__all__ = ["SUBSCRIPTION", "AgentRegistrations"]

# One sofia_contact may take this long; a pass over every agent of a node this long in all.
RESOLVE_TIMEOUT_S = 3.0
RESOLVE_PASS_S = 30.0
# sofia_contact commands in flight at once during a pass (each is one api on the node's
# commands connection; the calls' own commands share it).
RESOLVE_CONCURRENCY = 8

LinkFor = Callable[[str], Any]


class AgentRegistrations:
    """Registration trackers of one worker (one per node it has owned), mapped onto agents."""

    def __init__(self, acd: Acd, tenants: TenantSource, *, link_for: LinkFor,
                 owns: Callable[[str], bool],
                 deliver: Callable[[list[Offer]], None] | None = None) -> None:
        self.acd = acd
        self._tenants = tenants
        self._link_for = link_for
        self._owns = owns
        self._deliver = deliver
        self._trackers: dict[str, RegistrationTracker] = {}
        self._index: dict[str, list[tuple[str, str]]] = {}   # user@domain -> (tenant, agent)
        self._indexed: tuple[int, ...] | None = None
        self._passes: dict[str, gevent.Greenlet] = {}

    def register(self, dispatcher: Any) -> None:
        for subclass in SUBCLASSES:
            dispatcher.on_custom(subclass, self.on_event)

    # ---- the node's events ---------------------------------------------------------------
    def on_event(self, event: Any, link: Any) -> None:
        node = link.node.name
        try:
            self.tracker(node).handle(event)
        except (EslError, ValueError) as exc:
            # An unregister leaving another contact asks sofia_contact: the state stays as it
            # was; the next event or gain of the node settles it.
            log.warning("registration event left in doubt: %r", exc,
                        extra={"node": node, "subclass": event.get("Event-Subclass")})

    def tracker(self, node: str) -> RegistrationTracker:
        tracker = self._trackers.get(node)
        if tracker is None:
            tracker = self._trackers[node] = self._new_tracker(node)
        return tracker

    def _new_tracker(self, node: str) -> RegistrationTracker:
        return RegistrationTracker(lambda key, registered: self._changed(node, key, registered),
                                   api=lambda cmd: self._api(node, cmd))

    def _api(self, node: str, cmd: str) -> str:
        link = self._link_for(node)
        if link is None:
            raise EslError(f"no link to node {node!r}: cannot ask it {cmd!r}")
        reply: str = link.api(cmd, timeout=RESOLVE_TIMEOUT_S)
        return reply

    def _changed(self, node: str, key: str, registered: bool) -> None:
        agents = self._agents_for(key)
        log.info("agent phone %s", "registered" if registered else "not registered",
                 extra={"node": node, "user": key, "agents": [a for _, a in agents]})
        for tenant, agent in agents:
            self._apply(tenant, agent, registered, node)

    def _apply(self, tenant: str, agent: str, registered: bool, node: str = "") -> None:
        try:
            self.acd.set_registered(tenant, agent, registered, node=node)
        except UnknownAgent:
            return      # not in the ACD yet: its first sync applies the state (synced())
        if registered and self._deliver is not None:
            # Whoever waits for this agent's queues is offered to them now, not at the sweep.
            self._deliver(self.acd.dispatch_agent(tenant, agent))

    # ---- which agents dial which user ------------------------------------------------------
    def _agents_for(self, key: str) -> list[tuple[str, str]]:
        self._refresh_index(self._tenants.all_tenants())
        return self._index.get(key, [])

    def _refresh_index(self, tenants: list[Tenant]) -> None:
        ident = tuple(id(t) for t in tenants)
        if ident == self._indexed:
            return
        index: dict[str, list[tuple[str, str]]] = {}
        for tenant in tenants:
            for aid, cfg in tenant.agents.items():
                key = contact_key(cfg.contact)
                if key is not None:
                    index.setdefault(key, []).append((tenant.tenant, aid))
        self._index, self._indexed = index, ident

    def synced(self, tenants: list[Tenant]) -> None:
        """The ACD has just written these tenants' agents: give each the state known for its
        contact (a contact that dials no registration: reachable), and ask the switch about
        the ones nobody knows yet."""
        self._refresh_index(self._tenants.all_tenants())
        doubt = False
        for tenant in tenants:
            for view in self.acd.agents(tenant.tenant):
                cfg = tenant.agents.get(view.agent)
                if cfg is None:
                    continue
                key = contact_key(cfg.contact)
                if key is None:
                    if not view.registered:
                        self._apply(tenant.tenant, view.agent, True)
                    continue
                for node, tracker in list(self._trackers.items()):
                    if not self._owns(node):
                        continue    # its owner's word, not what this worker heard before
                    want = tracker.registered(key)
                    if want is None:
                        doubt = True
                    elif want != view.registered_on.get(node):
                        self._apply(tenant.tenant, view.agent, want, node)
        if doubt:
            for node in list(self._trackers):
                if self._owns(node):
                    self.resolve(node, fresh=False)

    # ---- asking the switch --------------------------------------------------------------
    def node_gained(self, node: str) -> None:
        """This worker (re)gained the node: what its tracker heard may be stale (events missed
        while it was not ours), so it starts afresh and every contact is asked about."""
        self.resolve(node, fresh=True)

    def still_in_doubt(self, node: str) -> None:
        """The node's periodic sweep: ask again about users the last pass left unanswered
        (a slow switch, a pass cut short), or new in the configuration."""
        if node in self._trackers:
            self.resolve(node, fresh=False)

    def resolve(self, node: str, *, fresh: bool) -> None:
        running = self._passes.get(node)
        if running is not None and not running.dead:
            if not fresh:
                return      # the pass under way asks about every user it does not know
            running.kill(block=False)
        if fresh:
            self._trackers[node] = self._new_tracker(node)
        self._passes[node] = gevent.spawn(self._guarded_pass, node)

    def _guarded_pass(self, node: str) -> None:
        # Not in the worker's escalating group: a Redis blip here must not stop the worker;
        # what is left in doubt is asked again at the next sweep.
        try:
            self._resolve_pass(node)
        except (RedisError, OSError) as exc:
            log.warning("agent phones check cut short: %r", exc, extra={"node": node})
        except Exception:  # noqa: BLE001 - logged; the next sweep tries again
            log.exception("agent phones check crashed", extra={"node": node})

    def _resolve_pass(self, node: str) -> None:
        tracker = self.tracker(node)
        self._refresh_index(self._tenants.all_tenants())
        doubts = [key for key in self._index if tracker.registered(key) is None]
        if not doubts:
            return
        started = time.monotonic()
        done: list[str] = []
        failed: list[str] = []

        def ask(key: str) -> None:
            if not self._owns(node):
                return
            try:
                answer = tracker.resolve(key)
            except (EslError, ValueError, RedisError) as exc:
                log.debug("sofia_contact failed: %r", exc, extra={"node": node, "user": key})
                answer = None
            (done if answer is not None else failed).append(key)

        pool = gevent.pool.Pool(RESOLVE_CONCURRENCY)
        try:
            with gevent.Timeout(RESOLVE_PASS_S, False):
                for key in doubts:
                    pool.spawn(ask, key)
                pool.join()
        finally:
            pool.kill(block=False)      # also when a fresh pass replaces this one
        left = len(doubts) - len(done)
        log.log(logging.WARNING if left else logging.INFO,
                "agent phones checked with sofia_contact", extra={
                    "node": node, "users": len(doubts), "answered": len(done),
                    "unanswered": left, "elapsed_s": round(time.monotonic() - started, 3)})

    # ---- an originate's answer -----------------------------------------------------------
    def not_registered(self, node: str, tenant: str, agent: str) -> None:
        """Ringing ``agent`` on ``node`` failed USER_NOT_REGISTERED: the switch says the phone
        is absent, stronger than what any other node reported."""
        cfg_tenant = self._tenants.tenant(tenant)
        cfg = cfg_tenant.agents.get(agent) if cfg_tenant is not None else None
        key = contact_key(cfg.contact) if cfg is not None else None
        if key is None:
            return      # not registration-bound: nothing will ever say it is back
        self.tracker(node).absent(key)
        for t, a in self._agents_for(key):
            self._apply(t, a, False, node)
