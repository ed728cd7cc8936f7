"""Dispatch: events from a node's reader to the handlers registered per Event-Name.

What it guarantees:

* Per-call order. Each event goes to a lane keyed by its call (``Unique-ID``; ``Job-UUID``
  for BACKGROUND_JOB; one shared lane for everything else). A lane is worked by at most one
  greenlet at a time, so a call's events reach handlers in the order they were read.
* Calls in parallel. ``pool_size`` worker greenlets take lanes in turn (one event, then the
  lane goes to the back of the line), so a slow handler on call A never delays call B.
* A bounded queue. At most ``queue_size`` events wait in all lanes together. When full,
  low-value events (HEARTBEAT, PRESENCE_IN, CODEC, API) are shed first: a new one is dropped,
  or a waiting one is dropped to make room for a call event. When nothing can be shed,
  ``submit`` blocks: the reader stops reading, the socket buffers fill, TCP pushes back on
  FreeSWITCH. A call's lifecycle event is never dropped. (FreeSWITCH queues up to 100,000
  events per listener and drops the listener after 500 more, MES ``event_handler``: a
  handler stall longer than that ends in a reconnect and a reconcile, not silent loss.)
* A handler that raises is logged with the call UUID and counted; its lane carries on.
* Each event read off a socket (``received_at`` set) is timed from that read to the end of
  its handlers (``cccore_esl_handling_seconds``): the core's own delay, queueing included.

Everything runs on the gevent hub of the worker process; ``submit`` is called by the reader
greenlet only.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import gevent
from gevent.event import Event as GEvent
from gevent.queue import Queue

from esl_handlers.events import Event
from metrics.esl import EslMetrics, event_label

if TYPE_CHECKING:
    from esl_handlers.link import NodeLink

log = logging.getLogger(__name__)

Handler = Callable[[Event, Any], None]

#: Events worth less than a call's lifecycle: dropped first when the queue is full.
SHEDDABLE = frozenset({"HEARTBEAT", "PRESENCE_IN", "CODEC", "API"})
NON_CALL_LANE = "__non_call__"
CATCH_ALL = "*"
# How often a blocked submit re-checks whether the dispatcher is stopping.
_BLOCK_POLL_S = 0.5


class _Item:
    __slots__ = ("event", "link", "name", "handlers", "done")

    def __init__(self, event: Event, link: Any, name: str, handlers: list[Handler]) -> None:
        self.event = event
        self.link = link
        self.name = name
        # Looked up once, by submit (which needs them to decide whether to queue at all).
        self.handlers = handlers
        self.done = False     # handled or shed: a worker skips it


class _Posted:
    """Stands in for the event of a posted item (``Dispatcher.post``)."""

    __slots__ = ("unique_id",)
    timestamp_us = None
    received_at = None

    def __init__(self, key: str) -> None:
        self.unique_id = key


def lane_key(event: Event) -> str:
    uid = event.unique_id
    if uid:
        return uid
    if event.name == "BACKGROUND_JOB":
        job = event.job_uuid
        if job:
            return "job:" + job
    return NON_CALL_LANE


class Dispatcher:
    def __init__(self, *, queue_size: int, pool_size: int,
                 metrics: EslMetrics | None = None) -> None:
        if queue_size < 1 or pool_size < 1:
            raise ValueError("queue_size and pool_size must be positive")
        self.queue_size = queue_size
        self.pool_size = pool_size
        self.metrics = metrics
        # The events counter's child per (node, event name): labels() costs a lock and a
        # validation per event on the hottest path. Bounded: nodes x event names.
        self._counted: dict[tuple[str, str], Any] = {}
        self._handlers: dict[str, list[Handler]] = {}
        self._custom: dict[str, list[Handler]] = {}
        self._lanes: dict[str, deque[_Item]] = {}
        self._busy: set[str] = set()            # lanes queued for, or held by, a worker
        self._ready: Queue = Queue()            # lane keys waiting for a worker
        self._sheddable: deque[_Item] = deque()
        self._count = 0
        self._space = GEvent()
        self._space.set()
        self._idle = GEvent()
        self._idle.set()
        self._stopping = False
        if metrics is not None:
            # Read when scraped: setting it on every event cost two locks per event.
            metrics.queue_depth.set_function(lambda: self._count)
        self._workers = [gevent.spawn(self._work) for _ in range(pool_size)]
        self.shed_count = 0

    # --- registration ---------------------------------------------------------------------
    def on(self, event_name: str, handler: Handler) -> None:
        """Run ``handler(event, link)`` for each event of that Event-Name (``*``: every event)."""
        self._handlers.setdefault(event_name, []).append(handler)

    def on_custom(self, subclass: str, handler: Handler) -> None:
        """Run ``handler(event, link)`` for CUSTOM events of that Event-Subclass."""
        self._custom.setdefault(subclass, []).append(handler)

    def handled(self) -> set[str]:
        """Event-Names with a handler, and ``CUSTOM <subclass>`` entries: what a subscription
        needs (``*`` is never subscribed to)."""
        return ({n for n in self._handlers if n != CATCH_ALL}
                | {f"CUSTOM {sub}" for sub in self._custom})

    def _handlers_for(self, event: Event, name: str) -> list[Handler]:
        found: list[Handler] = []
        if name == "CUSTOM":
            sub = event.subclass
            if sub:
                found.extend(self._custom.get(sub, ()))
        found.extend(self._handlers.get(name, ()))
        found.extend(self._handlers.get(CATCH_ALL, ()))
        return found

    # --- the reader's side ----------------------------------------------------------------
    @property
    def depth(self) -> int:
        return self._count

    def submit(self, event: Event, link: NodeLink | Any) -> None:
        """Queue ``event``; may block (back-pressure) while the queue is full of call events."""
        name = event.name or ""
        m = self.metrics
        if m is not None:
            node = getattr(getattr(link, "node", None), "name", "?")
            labels = (node, event_label(name))
            child = self._counted.get(labels)
            if child is None:
                child = self._counted[labels] = m.events_total.labels(*labels)
            child.inc()
        if self._stopping:
            # Warm stop hands the node over first; what still trickles in is the next
            # owner's (it reconciles). Debug only: this can be many lines.
            log.debug("dispatcher stopping: event dropped", extra={
                "event": name, "call_uuid": event.unique_id})
            return
        handlers = self._handlers_for(event, name)
        if not handlers:
            return
        sheddable = name in SHEDDABLE
        if self._count >= self.queue_size:
            if sheddable:
                self._shed_one(name)
                return
            if not self._shed_waiting():
                self._wait_for_space()
                if self._stopping:
                    return
        item = _Item(event, link, name, handlers)
        key = lane_key(event)
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = deque()
        lane.append(item)
        if sheddable:
            shed = self._sheddable
            # Handled items are dropped from the left as we go; compact now and then so a
            # stuck head cannot make this index grow without bound.
            while shed and shed[0].done:
                shed.popleft()
            if len(shed) > 2 * self.queue_size:
                self._sheddable = shed = deque(i for i in shed if not i.done)
            shed.append(item)
        self._count += 1
        self._idle.clear()
        if self._count >= self.queue_size:
            self._space.clear()
        if key not in self._busy:
            self._busy.add(key)
            self._ready.put(key)

    def _shed_one(self, name: str) -> None:
        self.shed_count += 1
        if self.metrics is not None:
            self.metrics.shed_total.labels(event_label(name)).inc()

    def _shed_waiting(self) -> bool:
        """Drop the oldest waiting low-value event to make room; False if there is none."""
        while self._sheddable:
            item = self._sheddable.popleft()
            if not item.done:
                item.done = True
                self._release()
                self._shed_one(item.name)
                return True
        return False

    def _wait_for_space(self) -> None:
        t0 = time.monotonic()
        log.debug("dispatch queue full: reader blocked (back-pressure)",
                  extra={"depth": self._count})
        while self._count >= self.queue_size and not self._stopping:
            self._space.wait(_BLOCK_POLL_S)
        if self.metrics is not None:
            self.metrics.backpressure_seconds_total.inc(time.monotonic() - t0)

    def _release(self) -> None:
        self._count -= 1
        if self._count < self.queue_size:
            self._space.set()
        if self._count == 0:
            self._idle.set()

    def post(self, key: str, fn: Callable[[], None]) -> None:
        """Run ``fn()`` in lane ``key`` (a call's Unique-ID), in order with that call's events:
        how work that does not come as the call's own event (a timer, an offer found by another
        call's step, an event of another leg) is kept from racing the call's handlers. Never
        blocks and is never shed: what is posted is already bounded by the calls in progress."""
        if self._stopping:
            return
        # _Posted has what the lane's worker reads of an event (unique_id, timestamps).
        item = _Item(cast(Event, _Posted(key)), None, "POSTED", [lambda _event, _link: fn()])
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = deque()
        lane.append(item)
        self._count += 1
        self._idle.clear()
        if key not in self._busy:
            self._busy.add(key)
            self._ready.put(key)

    # --- workers --------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            key = self._ready.get()
            if key is None:
                return
            lane = self._lanes.get(key)
            item = None
            while lane:
                candidate = lane.popleft()
                if not candidate.done:
                    item = candidate
                    break
            if item is not None:
                self._run(item)
            if lane:
                # More events for this call: back of the line, so other calls get a turn.
                self._ready.put(key)
            else:
                self._busy.discard(key)
                self._lanes.pop(key, None)

    def _run(self, item: _Item) -> None:
        item.done = True
        event = item.event
        m = self.metrics
        if m is not None:
            ts = event.timestamp_us
            if ts:
                m.event_lag_seconds.observe(max(0.0, time.time() - ts / 1e6))
        try:
            for handler in item.handlers:
                try:
                    handler(event, item.link)
                except gevent.GreenletExit:
                    raise
                except Exception:
                    log.exception("event handler %s failed", getattr(handler, "__qualname__",
                                                                     handler), extra={
                        "call_uuid": event.unique_id, "event": item.name,
                        "node": getattr(getattr(item.link, "node", None), "name", None)})
                    if m is not None:
                        m.handler_errors_total.labels(event_label(item.name)).inc()
        finally:
            self._release()
            read_at = getattr(event, "received_at", None)   # unset on hand-built events
            if m is not None and read_at is not None:
                # After the handlers, not before: their time is most of the core's delay.
                m.handling_seconds.observe(time.monotonic() - read_at)

    # --- stopping -------------------------------------------------------------------------
    def stop(self, timeout: float = 5.0) -> None:
        """Refuse new events, let waiting ones drain for up to ``timeout`` s, then stop."""
        self._stopping = True
        self._space.set()
        if not self._idle.wait(timeout):
            log.warning("dispatcher stopped with events still queued",
                        extra={"depth": self._count})
        for _ in self._workers:
            self._ready.put(None)
        gevent.joinall(self._workers, timeout=max(0.1, min(timeout, 1.0)))
        gevent.killall([w for w in self._workers if not w.dead], timeout=1.0)
