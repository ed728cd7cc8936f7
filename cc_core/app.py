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

import functools
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gevent
import msgpack
from redis.exceptions import RedisError

from acd.store import Acd
from cc_core import keys
from cc_core.flow.caps import CallCaps
from cc_core.flow.decide import Decider, TenantSource
from cc_core.flow.hangup import (
    CallQualityMetrics,
    CallSummaryStream,
    ForgetLiveRecord,
    HangupPipeline,
)
from cc_core.flow.machine import STANDBY_EVENTS, CallMachine
from cc_core.flow.queue import QueueFlow
from cc_core.flow.record import CallStore
from cc_core.flow.registrations import SUBSCRIPTION, AgentRegistrations
from cc_core.routing.region import RegionDirectory
from metrics.acd import AcdMetrics
from metrics.callflow import CallFlowMetrics
from metrics.recordings import RecordingMetrics
from recordings.layout import Root
from recordings.recorder import Recorder

if TYPE_CHECKING:
    from cc_core.worker import WorkerContext

log = logging.getLogger(__name__)

DEFAULT_VOICEMAIL_DIR = "/var/lib/freeswitch/recordings/voicemail"
# How often a worker runs the ACD's timers (wrap-ups, delays, lapsed reservations), and how
# often it dispatches every queue whatever happened (an agent logged in through the API).
ACD_TICK_S = 0.2
ACD_SWEEP_S = 1.0


class CallFlowApp:
    """The hooks a worker's node manager calls, bound to one worker's call machine."""

    standby_events = STANDBY_EVENTS
    # The owner of a node hears its agents' phones register and go.
    extra_events = (SUBSCRIPTION,)

    def __init__(self, ctx: WorkerContext, machine: CallMachine,
                 registrations: AgentRegistrations) -> None:
        self._ctx = ctx
        self.machine = machine
        self.registrations = registrations

    def reconcile(self, node: str, rows: list[dict[str, Any]]) -> None:
        self.machine.reconcile(node, rows, self._ctx.links[node])
        self.registrations.node_gained(node)

    def sweep(self, node: str, rows: list[dict[str, Any]]) -> None:
        self.machine.sweep(node, rows, self._ctx.links[node])
        self.registrations.still_in_doubt(node)

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
    from billing.credit import CreditView
    from billing.live import CreditControl
    from metrics.billing import BillingMetrics

    # Live credit control (issue 9): refuses calls of a tenant without credit, hard-stops
    # billed calls when it runs out; its hang-up step marks the call's reservation ended
    # before the summary is written (the rating of that summary drops the reservation).
    credit = CreditControl(CreditView(ctx.redis), BillingMetrics(ctx.registry))
    hangups = HangupPipeline([credit, CallSummaryStream(ctx.redis),
                              CallQualityMetrics(metrics.observe_quality)],
                             cleanup=ForgetLiveRecord(store))
    machine = CallMachine(
        store=store, decider=Decider(tenant_source(ctx), RegionDirectory()), hangups=hangups,
        is_draining=lambda: bool(ctx.draining), may_act=may_act, swept=metrics.swept,
        outcomes=metrics.outcomes, setup=metrics.setup, started=metrics.started,
        voicemail_dir=os.environ.get("CC_VOICEMAIL_DIR", DEFAULT_VOICEMAIL_DIR),
        recorder=Recorder(Root(ctx.config.recordings.root), RecordingMetrics(ctx.registry)),
        credit=credit)
    metrics.watch_live_calls(machine.live_calls)
    ctx.group.spawn(credit.run, lambda: bool(ctx.draining), gevent.sleep)
    acd = Acd(ctx.redis)
    acd_metrics = AcdMetrics(ctx.registry)
    source = machine.decider.tenants
    # An agent whose phone registers is offered a waiting caller at once (the queue flow,
    # built next, delivers the offers).
    registrations = AgentRegistrations(
        acd, source, link_for=lambda node: ctx.links.get(node),
        owns=lambda node: ctx.nodes is not None and ctx.nodes.owns(node),
        deliver=lambda offers: queues.deliver(offers))
    machine.caps = CallCaps(ctx.redis, reached=metrics.caps_reached)
    machine.queues = queues = QueueFlow(
        machine, acd, post=ctx.dispatcher.post,
        publish=lambda blob: ctx.redis.publish(keys.ACD_CHANNEL, blob),
        observe_dispatch=acd_metrics.dispatch.observe,
        observe_offer=acd_metrics.join_to_offer.observe,
        observe_originate=acd_metrics.join_to_originate.observe,
        observe_answer=acd_metrics.join_to_answer.observe,
        count_overflow=lambda t, q, kind: acd_metrics.overflows.labels(t, q, kind).inc(),
        link_for=lambda node: _owned_link(ctx, node),
        on_not_registered=registrations.not_registered)
    machine.register(ctx.dispatcher)
    registrations.register(ctx.dispatcher)
    ctx.group.spawn(_acd_loop, ctx, acd, queues, source, registrations)
    ctx.group.spawn(_orphans_loop, ctx, machine)
    from notify.notifier import MissedCallNotifier

    def webhook_of(tenant_id: str) -> Any:
        found = source.tenant(tenant_id)
        return found.missed_call_webhook if found is not None else None

    # Missed-call notices (issue 9): their own greenlet, off the call path.
    notifier = MissedCallNotifier(ctx.redis, webhook_of, ctx.worker_id)
    ctx.group.spawn(notifier.run, lambda: bool(ctx.draining))
    ctx.group.spawn(_offers_listener, ctx, queues)
    ctx.group.spawn(_recording_requests, ctx, machine)
    if ctx.config.records.consume_in_worker:
        from records.consumer import run_in_worker

        ctx.group.spawn(run_in_worker, ctx.redis, ctx.config.records.db, ctx.worker_id,
                        lambda: bool(ctx.draining), gevent.sleep)
    return CallFlowApp(ctx, machine, registrations)


ORPHANS_EVERY_S = 2.0


def _owned_link(ctx: WorkerContext, node: str) -> Any:
    """The link to run a queued callback on: its caller's node when this worker owns it, else
    any node it owns (a callback asked for through the API has no node), else None."""
    if ctx.nodes is None:
        return None
    if node and ctx.nodes.owns(node):
        return ctx.links.get(node)
    if node in ctx.links:
        return None         # another worker owns that node: the offer goes to it
    owned = ctx.nodes.owned()
    return ctx.links.get(owned[0]) if owned else None


def _orphans_loop(ctx: WorkerContext, machine: CallMachine) -> None:
    """Calls seen ending while their holder was dead: ended once nobody else did."""
    while not ctx.draining:
        gevent.sleep(ORPHANS_EVERY_S)
        try:
            machine.end_orphans_seen(lambda node: ctx.links.get(node))
        except (RedisError, OSError) as exc:
            log.warning("ending orphaned calls failed: %r", exc)
        except Exception:  # noqa: BLE001 - logged; the next pass tries again
            log.exception("ending orphaned calls crashed")


def _acd_loop(ctx: WorkerContext, acd: Acd, queues: QueueFlow, source: TenantSource,
              registrations: AgentRegistrations) -> None:
    """Keep the ACD's Redis copy of each tenant's agents and queues in step with the applied
    configuration, run its timers, and dispatch: never raises (it would stop the worker)."""
    synced: dict[str, int] = {}
    last_sweep = 0.0
    while not ctx.draining:
        try:
            tenants = [t for t in source.all_tenants() if t.queues or t.agents]
            fresh = []
            for tenant in tenants:
                if synced.get(tenant.tenant) != id(tenant):
                    acd.sync(tenant)
                    synced[tenant.tenant] = id(tenant)
                    fresh.append(tenant)
            if fresh:
                registrations.synced(fresh)
            now = time.monotonic()
            sweep = now - last_sweep >= ACD_SWEEP_S
            if sweep:
                last_sweep = now
            for tenant in tenants:
                due = set(acd.tick(tenant.tenant))
                if sweep:
                    # Agents logged in through the API free no timer: whoever waits is
                    # offered to them here, within a second.
                    due |= set(tenant.queues)
                if not due:
                    continue
                # Best waiting caller first: an agent in several queues, free after a
                # wrap-up or a login, goes to the VIP or the longest waiting of them all,
                # not to whichever queue a set happened to list first.
                heads = acd.heads(tenant.tenant, sorted(due))
                for name in sorted(heads, key=lambda q: (heads[q], q)):
                    queues.dispatch(tenant.tenant, name)
        except (RedisError, OSError) as exc:
            log.warning("ACD tick failed: %r", exc)
        except Exception:  # noqa: BLE001 - logged; the next tick tries again
            log.exception("ACD tick crashed")
        gevent.sleep(ACD_TICK_S)


def _recording_requests(ctx: WorkerContext, machine: CallMachine) -> None:
    """On-demand recording starts and stops (``cc_core.api.recordings``): every worker hears
    them, the one holding the call acts, in the call's lane."""
    def on_request(blob: bytes) -> None:
        try:
            req = msgpack.unpackb(blob, raw=False)
            tenant, call, action = str(req["tenant"]), str(req["call"]), req["action"]
            by = str(req.get("by") or "api")
        except (ValueError, KeyError, TypeError, msgpack.UnpackException):
            log.warning("not a recording request; ignored")
            return
        if action in ("start", "stop"):
            ctx.dispatcher.post(call, functools.partial(
                machine.on_demand_recording, tenant, call, str(action), by))

    _listen(ctx, keys.RECORDING_CHANNEL, on_request, "recording requests")


def _offers_listener(ctx: WorkerContext, queues: QueueFlow) -> None:
    """Offers other workers found for callers this worker may hold."""
    _listen(ctx, keys.ACD_CHANNEL, queues.on_published, "ACD offers")


def _listen(ctx: WorkerContext, channel: str, on_message: Callable[[bytes], None],
            what: str) -> None:
    """Every message of a pub/sub ``channel`` to ``on_message`` until the worker drains; a
    lost subscription is taken again after a second."""
    while not ctx.draining:
        pubsub = ctx.redis.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(channel)
            while not ctx.draining:
                msg = pubsub.get_message(timeout=1.0)
                if msg and isinstance(msg.get("data"), bytes):
                    on_message(msg["data"])
        except (RedisError, OSError) as exc:
            log.warning("%s channel lost: %r; resubscribing", what, exc)
            gevent.sleep(1.0)
        finally:
            try:
                pubsub.close()
            except (RedisError, OSError):
                pass
