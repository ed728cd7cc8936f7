"""Which worker consumes which FreeSWITCH node's events: ownership by lease, in one worker.

Every worker keeps one command link per configured node (``consume_events=False``), so it can
send api/bgapi/sendmsg to any node at any time. For each node it also competes for the node's
lease (``esl_handlers.lease``). The winner flips its link to consuming the event stream,
reconciles the calls alive on the node (``show channels as json``) through the composition
root's callback, and renews the lease every TTL/3. On any sign of loss (a renew refused, the
local margin passed, Redis unreachable until that margin) it stops consuming at once. Standbys
poll and take over when the lease lapses, or at once when the owner released it (warm stop).

Two workers never consume one node at once: a successor can only acquire after Redis expired
or deleted the lease, which is after the former owner's local deadline; and an event that
reaches the dispatcher through a link whose lease is not locally valid (a paused process that
just woke up) is dropped by ``FencedDispatcher`` rather than handled.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import gevent
import gevent.event
import gevent.pool
from redis.exceptions import RedisError

from esl_handlers.config import EslConfig, NodeConfig
from esl_handlers.errors import EslError, LeaseLost
from esl_handlers.lease import LeaseScripts, NodeLease
from metrics.lease import LeaseMetrics

log = logging.getLogger(__name__)

# An owner whose own link to the node stays down this many TTLs hands the lease over, so that a
# worker that can still reach the node takes it (a partition between one worker and one node).
LINK_DOWN_TTLS = 3
# Standbys re-try at most this often while the lease is held, and just after it would lapse.
STANDBY_POLL_MAX_S = 0.5
LAPSE_SLACK_S = 0.01
# A sweep due while a reconcile or the previous pass still runs is tried again this soon.
SWEEP_BUSY_RETRY_S = 0.2

Reconcile = Callable[[str, list[dict[str, Any]]], None]
StandbyHook = Callable[[str, Any], None]


class NodesConfig(Protocol):
    """What the node manager reads of a configuration: the nodes and the ESL settings."""

    @property
    def nodes(self) -> Sequence[NodeConfig]: ...

    @property
    def esl(self) -> EslConfig: ...


class LinkLike(Protocol):
    """What this module uses of ``esl_handlers.link.NodeLink``."""

    node: NodeConfig

    @property
    def is_up(self) -> bool: ...

    def start(self) -> None: ...
    def stop(self, timeout: float = 5) -> None: ...
    def set_consume(self, consume: bool) -> None: ...
    def show_channels(self) -> list[dict[str, Any]]: ...


LinkFactory = Callable[..., LinkLike]


class FencedDispatcher:
    """Stands between a node's link and the shared dispatcher: passes events only while this
    worker validly owns the node (a link only ever calls ``submit``).

    No exception for BACKGROUND_JOB: a bgapi's result reaches the worker that sent it through
    its connection's job matching (``BackgroundJob.get``), before the dispatcher; the events a
    non-owner's link sees are everyone's jobs and are not its to handle."""

    def __init__(self, inner: Any, ownership: NodeOwnership) -> None:
        self._inner = inner
        self._ownership = ownership

    def submit(self, event: Any, link: Any) -> None:
        if self._ownership.is_owner():
            self._inner.submit(event, link)
        else:
            self._ownership.metrics.fenced_events.labels(self._ownership.node.name).inc()


class NodeOwnership:
    """One node, in one worker: compete for its lease, consume while owner, hand over."""

    def __init__(self, node: NodeConfig, lease: NodeLease, *, reconcile: Reconcile,
                 metrics: LeaseMetrics, group: gevent.pool.Group,
                 sweep: Reconcile | None = None, sweep_interval_s: float = 0.0) -> None:
        self.node = node
        self.lease = lease
        self.metrics = metrics
        self._reconcile_cb = reconcile
        self._sweep_cb = sweep
        self._sweep_interval_s = sweep_interval_s if sweep is not None else 0.0
        self._next_sweep = 0.0
        self._group = group
        self.link: LinkLike | None = None
        self._consuming = False
        self._stopping = False
        self._wake = gevent.event.Event()
        self._reconcile_pending = False
        self._reconciling: gevent.Greenlet | None = None
        self._link_down_since: float | None = None
        self._loop: gevent.Greenlet | None = None
        # Read at scrape time, not set on transitions: a process resumed after a pause reports
        # 0 from its first scrape, before its lease loop has even run.
        metrics.owner.labels(node.name).set_function(lambda: 1.0 if self.is_owner() else 0.0)

    # ---- state seen by others -------------------------------------------------------------
    @property
    def stopping(self) -> bool:
        return self._stopping

    def is_owner(self) -> bool:
        """True while this worker may consume and act on the node's events."""
        return self._consuming and self.lease.valid()

    # ---- link callbacks (called from the link's greenlets) -------------------------------
    def on_link_up(self, link: Any, restarted: bool) -> None:
        self._link_down_since = None
        if self._consuming:
            # Events were missed while the link was down (or the switch restarted): the
            # owner's picture of live calls must be rebuilt.
            log.info("node link up while owner; reconciling",
                     extra={"node": self.node.name, "restarted": restarted})
            self._reconcile_pending = True
        self._wake.set()

    def on_link_down(self, link: Any) -> None:
        if self._link_down_since is None:
            self._link_down_since = time.monotonic()
        self._wake.set()

    # ---- the loop --------------------------------------------------------------------------
    def start(self) -> None:
        self._loop = self._group.spawn(self._run)

    def _run(self) -> None:
        while not self._stopping:
            wait = self._step()
            self._wake.wait(timeout=wait)
            self._wake.clear()

    def _step(self) -> float:
        if self._consuming:
            return self._step_owner()
        return self._step_standby()

    def _step_owner(self) -> float:
        lease = self.lease
        if not lease.valid():
            # Paused past the local deadline (or the clock says so): whatever Redis holds, the
            # old token is dead; competing again yields a new one.
            lease.drop("margin")
            self._demote("margin")
            return 0
        if self._link_down_too_long():
            self._hand_over("link_down")
            return lease.renew_interval_s
        try:
            # Never let a slow Redis hold the loop past the local deadline.
            with gevent.Timeout(max(0.001, lease.remaining_s())):
                lease.renew()
        except LeaseLost:
            self.metrics.renew_failures.labels(self.node.name).inc()
            self._demote(lease.lost_reason)
            return 0
        except (RedisError, OSError, gevent.Timeout) as exc:
            self.metrics.renew_failures.labels(self.node.name).inc()
            log.warning("lease renew failed", extra={"node": self.node.name,
                                                     "error": repr(exc),
                                                     "remaining_s": lease.remaining_s()})
            if not lease.valid():
                lease.drop("redis_unreachable")
                self._demote("redis_unreachable")
                return 0
            return min(lease.renew_interval_s, max(lease.remaining_s(), 0.01)) / 2
        if self._reconcile_pending:
            self._start_reconcile()
        elif self._sweep_interval_s and time.monotonic() >= self._next_sweep:
            self._start_sweep()
        wait = min(lease.renew_interval_s, lease.remaining_s())
        if self._sweep_interval_s:
            wait = min(wait, max(0.0, self._next_sweep - time.monotonic()))
        return wait

    def _step_standby(self) -> float:
        lease = self.lease
        poll = min(lease.renew_interval_s, STANDBY_POLL_MAX_S)
        link = self.link
        if link is not None and not link.is_up:
            # A worker that cannot reach the node must not take its events; on_link_up wakes us.
            return poll
        try:
            with gevent.Timeout(max(poll, 0.1)):
                got = lease.try_acquire()
        except (RedisError, OSError, gevent.Timeout) as exc:
            log.debug("lease acquire failed", extra={"node": self.node.name, "error": repr(exc)})
            return poll
        if got:
            self._promote()
            return min(lease.renew_interval_s, lease.remaining_s())
        pttl = lease.seen_pttl_ms
        if pttl is not None and pttl >= 0:
            return min(poll, pttl / 1000.0 + LAPSE_SLACK_S)
        return poll

    # ---- transitions -----------------------------------------------------------------------
    def _promote(self) -> None:
        self._consuming = True
        self.metrics.acquired.labels(self.node.name).inc()
        log.info("consuming node events", extra={"node": self.node.name, "token": self.lease.token})
        link = self.link
        if link is not None:
            try:
                link.set_consume(True)
            except Exception as exc:  # noqa: BLE001 - the link reconnects; on_link_up reconciles
                log.warning("could not start consuming events",
                            extra={"node": self.node.name, "error": repr(exc)})
        # Snapshot after the event stream is on, so nothing falls between the two.
        self._reconcile_pending = True
        self._start_reconcile()

    def _demote(self, reason: str) -> None:
        if not self._consuming:
            return
        self._consuming = False
        self.metrics.lost.labels(self.node.name, reason or "unknown").inc()
        level = logging.INFO if reason in ("released", "stopped") else logging.WARNING
        log.log(level, "stopped consuming node events", extra={"node": self.node.name,
                                                                "reason": reason})
        link = self.link
        if link is not None:
            try:
                link.set_consume(False)
            except Exception as exc:  # noqa: BLE001 - FencedDispatcher drops what still arrives
                log.warning("could not stop consuming events",
                            extra={"node": self.node.name, "error": repr(exc)})

    def _hand_over(self, reason: str) -> None:
        """Stop consuming, then delete the lease so a standby takes over without the TTL."""
        was_owner = self._consuming
        self._demote(reason)
        if self.lease.token is None:
            return
        try:
            with gevent.Timeout(max(0.2, self.lease.renew_interval_s)):
                self.lease.release()
        except (RedisError, OSError, gevent.Timeout, LeaseLost) as exc:
            # Nothing lost: the lease lapses by itself after the TTL.
            self.lease.drop("release_failed")
            log.warning("lease release failed", extra={"node": self.node.name,
                                                       "error": repr(exc)})
        if was_owner:
            log.info("node lease handed over", extra={"node": self.node.name, "reason": reason})

    def _link_down_too_long(self) -> bool:
        since = self._link_down_since
        if since is None:
            return False
        return time.monotonic() - since > LINK_DOWN_TTLS * self.lease.ttl_ms / 1000

    def _start_reconcile(self) -> None:
        # A separate greenlet: `show channels` may take up to the command timeout, longer than
        # a TTL, and renewals must go on meanwhile.
        if self._reconciling is not None and not self._reconciling.dead:
            return
        link = self.link
        if link is None or not link.is_up:
            return  # on_link_up sets the flag again
        self._reconcile_pending = False
        self._reconciling = self._group.spawn(self._reconcile, link)

    def _start_sweep(self) -> None:
        # One pass at a time, never beside a reconcile (the same greenlet slot).
        if self._reconciling is not None and not self._reconciling.dead:
            self._next_sweep = time.monotonic() + min(self._sweep_interval_s, SWEEP_BUSY_RETRY_S)
            return
        link = self.link
        self._next_sweep = time.monotonic() + self._sweep_interval_s
        if link is None or not link.is_up or self._sweep_cb is None:
            return
        self._reconciling = self._group.spawn(self._sweep, link, self._sweep_cb)

    def _sweep(self, link: LinkLike, sweep: Reconcile) -> None:
        name = self.node.name
        try:
            channels = link.show_channels()
            if self.is_owner():
                sweep(name, channels)
        except Exception as exc:  # noqa: BLE001 - the next pass tries again
            log.warning("sweep failed", extra={"node": name, "error": repr(exc)},
                        exc_info=not isinstance(exc, (EslError, LeaseLost, OSError, RedisError)))

    def _reconcile(self, link: LinkLike) -> None:
        name = self.node.name
        try:
            channels = link.show_channels()
            if not self.is_owner():
                return
            self._reconcile_cb(name, channels)
        except Exception as exc:  # noqa: BLE001 - retried on the next tick while owner
            self._reconcile_pending = True
            self.metrics.reconciles.labels(name, "error").inc()
            log.warning("reconcile failed", extra={"node": name, "error": repr(exc)},
                        exc_info=not isinstance(exc, (EslError, LeaseLost, OSError, RedisError)))
            return
        self.metrics.reconciles.labels(name, "ok").inc()
        # The first sweep follows one interval later: it catches what the snapshot missed.
        self._next_sweep = time.monotonic() + self._sweep_interval_s
        log.info("node reconciled", extra={"node": name, "channels": len(channels)})

    # ---- stopping ---------------------------------------------------------------------------
    def stop(self, release: bool) -> None:
        """Stop competing. With ``release``, hand the lease over now (warm stop)."""
        self._stopping = True
        self._wake.set()
        if self._loop is not None and self._loop is not gevent.getcurrent():
            self._loop.join(timeout=max(1.0, self.lease.ttl_ms / 1000))
            if not self._loop.dead:
                self._loop.kill(block=False)
        if release:
            self._hand_over("released")
        else:
            self._demote("stopped")


class NodeManager:
    """All configured nodes, in one worker process: links for commands, leases for events."""

    def __init__(self, config: NodesConfig, redis: Any, *, owner_id: str, dispatcher: Any,
                 reconcile: Reconcile, metrics: LeaseMetrics, esl_metrics: Any = None,
                 link_factory: LinkFactory | None = None,
                 group: gevent.pool.Group | None = None, sweep: Reconcile | None = None,
                 standby_events: Sequence[str] = (),
                 on_standby_event: StandbyHook | None = None,
                 extra_events: Sequence[str] = ()) -> None:
        self.config = config
        self.owner_id = owner_id
        self.group = group if group is not None else gevent.pool.Group()
        self.metrics = metrics
        scripts = LeaseScripts(redis)
        factory = link_factory or _default_link_factory
        self.ownerships: dict[str, NodeOwnership] = {}
        self.links: dict[str, LinkLike] = {}
        for node in config.nodes:
            lease = NodeLease(redis, node.name, owner_id, config.esl.lease_ttl_ms, scripts=scripts)
            own = NodeOwnership(node, lease, reconcile=reconcile, metrics=metrics,
                                group=self.group, sweep=sweep,
                                sweep_interval_s=config.esl.sweep_interval_s)
            watch: dict[str, Any] = {}
            if on_standby_event is not None and standby_events:
                watch = {"standby_events": tuple(standby_events),
                         "on_standby_event": _standby_forwarder(on_standby_event, node.name)}
            if extra_events:
                # Consumed by the owner only, like EslConfig.events (see NodeLink).
                watch["extra_events"] = tuple(extra_events)
            link = factory(node, config.esl, consume_events=False,
                           dispatcher=FencedDispatcher(dispatcher, own),
                           metrics=esl_metrics, on_up=own.on_link_up, on_down=own.on_link_down,
                           **watch)
            own.link = link
            self.ownerships[node.name] = own
            self.links[node.name] = link

    def start(self) -> None:
        for name, link in self.links.items():
            link.start()
            self.ownerships[name].start()

    def owns(self, node: str) -> bool:
        own = self.ownerships.get(node)
        return own is not None and own.is_owner()

    def owned(self) -> list[str]:
        return [name for name, own in self.ownerships.items() if own.is_owner()]

    def lease(self, node: str) -> NodeLease:
        """The node's lease, for fenced actions: ``lease.check()`` or ``lease.fenced_set()``."""
        return self.ownerships[node].lease

    def release_all(self) -> None:
        """Warm stop: stop consuming every node and delete our leases so standbys take over
        now; links stay up so in-flight handlers can still send commands."""
        greenlets = [gevent.spawn(own.stop, True) for own in self.ownerships.values()]
        gevent.joinall(greenlets, timeout=max(2.0, self.config.esl.lease_ttl_ms / 1000 * 2))

    def stop(self, timeout: float = 5.0) -> None:
        """Stop competing (without release unless ``release_all`` ran) and close the links."""
        for own in self.ownerships.values():
            if not own.stopping:
                own.stop(release=False)
        greenlets = [gevent.spawn(link.stop, timeout) for link in self.links.values()]
        gevent.joinall(greenlets, timeout=timeout + 1)


def _standby_forwarder(hook: StandbyHook, node: str) -> Callable[[Any], None]:
    def forward(event: Any) -> None:
        try:
            hook(node, event)
        except Exception:  # noqa: BLE001 - a standby's notes must never break its reader
            log.exception("standby event hook failed", extra={"node": node})
    return forward


def _default_link_factory(node: NodeConfig, esl: EslConfig, **kw: Any) -> LinkLike:
    from esl_handlers.link import NodeLink

    link: LinkLike = NodeLink(node, esl, **kw)
    return link

