"""NodeLink: a worker's lasting link to one FreeSWITCH node.

A link keeps up to two ESL connections to its node, each in its own supervisor greenlet:

* ``commands`` (always): api / bgapi / sendmsg. Subscribed to BACKGROUND_JOB (FreeSWITCH
  sends bgapi results only to listeners subscribed to it, see ``connection``) and HEARTBEAT
  (for the watchdog); its events are handled inside the reader, which never blocks.
* ``events`` (while ``consume_events``): the node's event stream, subscribed to the explicit
  list in ``EslConfig.events`` (never ALL) with ``EslConfig.filters``, fed to the Dispatcher.
  The dispatcher may block this reader on purpose (back-pressure); because commands travel on
  the other connection, a handler waiting for a command's reply can never deadlock behind it.

Each supervisor: connect + auth, subscribe, re-apply filters; then watch. A connection with no
frame at all for ``heartbeat_interval_s * heartbeat_misses`` (FreeSWITCH sends HEARTBEAT every
20 s unless its ``event-heartbeat-interval`` says otherwise) is probed with ``api status``; with
no reply within the command timeout it is declared dead, counted and reset. So a switch whose
HEARTBEAT period is longer than our window is not reset over and over, and a hung one still is.
Time our own events reader spends held by the dispatcher's back-pressure is not silence: the
switch queues our events meanwhile, and only it decides to drop a listener that falls too far
behind (MES ``event_handler``; its disconnect notice then says so). A lost connection is retried with exponential
backoff and full jitter between ``reconnect_min_s`` and ``reconnect_max_s``. After each
connect the commands connection learns the node's Core-UUID (``probe_core_uuid``); a new one
means FreeSWITCH restarted: logged, counted, and reported as ``on_up(link, restarted=True)``.

``on_up(link, restarted)`` fires each time the link becomes fully up (commands, plus events
when consuming) — after any loss events may have been missed, so the owner reconciles live
calls with ``show_channels()``. ``on_down(link)`` fires when it stops being up. Callbacks run
in order on one greenlet of their own, never on a reader.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import gevent
from gevent.event import Event as GEvent
from gevent.pool import Group
from gevent.queue import Queue

from esl_handlers import commands
from esl_handlers.config import EslConfig, NodeConfig
from esl_handlers.connection import BackgroundJob, EslConnection
from esl_handlers.errors import EslError, NotConnected
from esl_handlers.events import Event
from metrics.esl import EslMetrics

log = logging.getLogger(__name__)

COMMANDS = "commands"
EVENTS = "events"
#: What the commands connection listens to: its jobs' results and the switch's pulse.
COMMAND_EVENTS = ("BACKGROUND_JOB", "HEARTBEAT")
# The watchdog never sleeps longer than this between checks.
_WATCH_STEP_S = 1.0


class EventSink(Protocol):
    """Where a consuming link hands its events: the Dispatcher, or a fence in front of it."""

    def submit(self, event: Event, link: Any) -> None: ...


def backoff_delay(attempt: int, low: float, high: float, rng: random.Random) -> float:
    """Exponential backoff with full jitter: uniform in [low, min(high, low * 2**attempt)]."""
    cap = min(high, low * (2 ** min(attempt, 30)))
    return rng.uniform(low, max(low, cap))


class NodeLink:
    def __init__(self, node: NodeConfig, esl: EslConfig, *, consume_events: bool,
                 dispatcher: EventSink | None, metrics: EslMetrics | None = None,
                 on_up: Callable[[NodeLink, bool], None] | None = None,
                 on_down: Callable[[NodeLink], None] | None = None,
                 connection_factory: Callable[..., EslConnection] = EslConnection,
                 standby_events: Sequence[str] = (),
                 on_standby_event: Callable[[Event], None] | None = None,
                 extra_events: Sequence[str] = ()) -> None:
        self.node = node
        # Entries the app adds to the consuming subscription (e.g. ``CUSTOM sofia::register``)
        # on top of ``EslConfig.events``: what the app needs, not what the operator configures.
        self._extra_events = tuple(extra_events)
        # While not consuming, a link with standby events keeps its events connection,
        # subscribed to those only, and hands them to on_standby_event: a standby that takes
        # the node over then has no gap between what it watched and what it consumes.
        self._standby_events = tuple(standby_events) if on_standby_event is not None else ()
        self._on_standby_event = on_standby_event
        self.esl = esl
        self.dispatcher = dispatcher
        self.metrics = metrics
        if metrics is not None:
            # From the start: a node that never comes up must read 0, not be absent (an
            # alert on node_up == 0 would never see it).
            metrics.node_up.labels(node.name).set(0)
        self.on_up = on_up
        self.on_down = on_down
        self.core_uuid: str | None = None
        self._factory = connection_factory
        self._consume = consume_events
        self._conns: dict[str, EslConnection | None] = {COMMANDS: None, EVENTS: None}
        self._supervisors: dict[str, gevent.Greenlet | None] = {COMMANDS: None, EVENTS: None}
        self._cmd_ready = GEvent()
        self._group = Group()
        self._callbacks: Queue = Queue()
        self._running = False
        self._up = False
        self._restart_pending = False
        self._rng = random.Random()
        self._probe_warned: set[str] = set()

    def __repr__(self) -> str:
        return f"<NodeLink {self.node.name} up={self._up} consume={self._consume}>"

    @property
    def is_up(self) -> bool:
        return self._up

    @property
    def consuming(self) -> bool:
        return self._consume

    @property
    def _ctx(self) -> dict[str, Any]:
        return {"node": self.node.name}

    # --- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        if self._running:
            return
        self._running = True
        self._group.spawn(self._run_callbacks)
        self._spawn(COMMANDS)
        if self._consume or self._standby_events:
            self._spawn(EVENTS)

    def _spawn(self, role: str) -> None:
        current = self._supervisors[role]
        if current is not None and not current.dead:
            return
        self._supervisors[role] = self._group.spawn(self._supervise, role)

    def stop(self, timeout: float = 5) -> None:
        """Close both connections (saying ``exit``) and stop every greenlet of the link."""
        if not self._running:
            return
        self._running = False
        for role in (EVENTS, COMMANDS):
            conn = self._conns[role]
            if conn is not None:
                conn.close()
        self._callbacks.put(None)
        self._group.join(timeout=timeout)
        self._group.kill(timeout=1.0)
        self._up = False
        if self.metrics is not None:
            self.metrics.node_up.labels(self.node.name).set(0)
        log.info("node link stopped", extra=self._ctx)

    def set_consume(self, consume: bool) -> None:
        """Start or stop taking this node's event stream (lease gained / lost)."""
        if consume == self._consume:
            return
        self._consume = consume
        if not self._running:
            return
        if consume:
            conn = self._conns[EVENTS]
            if conn is not None and conn.connected:
                # The standby's stream is live: widen its subscription in place (FreeSWITCH
                # adds to it) so that no event falls between watching and consuming.
                try:
                    conn.subscribe(self._event_list(), ())
                    return
                except EslError as exc:
                    log.warning("could not widen the standby subscription (%s); reconnecting",
                                exc, extra=self._ctx)
                    conn.abort("subscription failed")
            self._spawn(EVENTS)
            # Nothing was lost: the link is just not complete until the event stream is on.
            # No on_down; on_up follows once the events connection is subscribed.
            if self._up:
                self._set_up(False, quiet=True)
            return
        sup = self._supervisors[EVENTS]
        conn = self._conns[EVENTS]
        if sup is not None:
            sup.kill(block=False)
            self._supervisors[EVENTS] = None
        if conn is not None:
            conn.abort("event consumption handed over", expected=True)
        self._conns[EVENTS] = None
        self._update_state()
        if self._standby_events:
            self._spawn(EVENTS)     # back to watching, on a fresh narrow subscription

    # --- supervision ---------------------------------------------------------------------
    def _wanted(self, role: str) -> bool:
        return self._running and (role == COMMANDS or self._consume or bool(self._standby_events))

    def _event_list(self) -> list[str]:
        events = list(self.esl.events)
        events += [e for e in self._extra_events if e not in events]
        if "HEARTBEAT" not in events:
            events.append("HEARTBEAT")      # the watchdog needs a pulse on every connection
        return events

    def _filter_list(self) -> list[tuple[str, str]]:
        filters = [(str(h), str(v)) for h, v in self.esl.filters]
        if filters:
            # With any filter set, MES event_handler sends only events matching one of them:
            # keep the watchdog's pulse and the bgapi results flowing.
            events = self._event_list()
            for name in ("HEARTBEAT", "BACKGROUND_JOB"):
                if name in events and ("Event-Name", name) not in filters:
                    filters.append(("Event-Name", name))
            # ... and what the app asked for on top of the configured events.
            for entry in self._extra_events:
                head, *subclasses = entry.split()
                wanted = ([("Event-Subclass", sub) for sub in subclasses]
                          if head.upper() == "CUSTOM" else [("Event-Name", head)])
                filters += [f for f in wanted if f not in filters]
        return filters

    def _connect(self, role: str) -> EslConnection:
        on_event = self._on_stream_event if role == EVENTS else None
        conn = self._factory(self.node, self.esl, on_event=on_event, metrics=self.metrics)
        try:
            conn.connect()
            if role == COMMANDS:
                conn.subscribe(list(COMMAND_EVENTS))
                self._note_core(conn.probe_core_uuid())
            elif self._consume:
                conn.subscribe(self._event_list(), self._filter_list())
            else:
                conn.subscribe([*self._standby_events, "HEARTBEAT"], self._filter_list())
        except BaseException:
            conn.abort("setup failed")
            raise
        return conn

    def _supervise(self, role: str) -> None:
        attempt = 0
        was_up = False
        while self._wanted(role):
            try:
                conn = self._connect(role)
            except Exception as exc:
                delay = backoff_delay(attempt, self.esl.reconnect_min_s,
                                      self.esl.reconnect_max_s, self._rng)
                attempt += 1
                level = logging.WARNING if isinstance(exc, (EslError, OSError)) else logging.ERROR
                log.log(level, "cannot set up %s connection (%s); retry in %.2fs", role, exc,
                        delay, extra={**self._ctx, "attempt": attempt},
                        exc_info=level == logging.ERROR)
                gevent.sleep(delay)
                continue
            if not self._wanted(role):
                conn.close()
                break
            attempt = 0
            if was_up and self.metrics is not None:
                self.metrics.reconnects_total.labels(self.node.name).inc()
            was_up = True
            self._conns[role] = conn
            if role == COMMANDS:
                self._cmd_ready.set()
            log.info("%s connection up", role, extra={**self._ctx, "core_uuid": self.core_uuid})
            self._update_state()
            try:
                self._watch(conn, role)
            finally:
                if self._conns[role] is conn:
                    self._conns[role] = None
                if role == COMMANDS:
                    self._cmd_ready.clear()
                self._update_state()
            if self._wanted(role):
                delay = backoff_delay(0, self.esl.reconnect_min_s, self.esl.reconnect_max_s,
                                      self._rng)
                log.warning("%s connection lost (%s); reconnecting in %.2fs", role,
                            conn.close_reason, delay, extra=self._ctx)
                gevent.sleep(delay)

    def _alive_on_probe(self, conn: EslConnection, role: str, silent: float,
                        window: float) -> bool:
        """Ask the node (``api status``) before declaring a silent connection dead.

        HEARTBEAT's period is the switch's own setting (``event-heartbeat-interval`` in
        switch.conf.xml, 20 s by default): a switch set to send it less often than our
        window, or an idle node's commands connection, is silent without being dead. A reply
        proves the switch and this socket work; a hung switch or a dead peer does not answer
        within the command timeout.
        """
        try:
            conn.api("status")
        except EslError:
            return False
        if role not in self._probe_warned:
            self._probe_warned.add(role)
            log.warning("no frame for %.1fs on the %s connection although the node answers: "
                        "FreeSWITCH's HEARTBEAT period (event-heartbeat-interval) is longer "
                        "than esl.heartbeat_interval_s x heartbeat_misses = %.1fs; the "
                        "watchdog probes with `api status` meanwhile", silent, role, window,
                        extra=self._ctx)
        return True

    def _watch(self, conn: EslConnection, role: str) -> None:
        window = self.esl.heartbeat_interval_s * self.esl.heartbeat_misses
        while self._wanted(role) and not conn.closed.is_set():
            if conn.delivering_since is not None:
                # Our reader is held by back-pressure, not starved by the switch.
                conn.closed.wait(min(window, _WATCH_STEP_S))
                continue
            silent = time.monotonic() - conn.last_frame_at
            if silent >= window:
                if self._alive_on_probe(conn, role, silent, window):
                    continue      # its reply refreshed last_frame_at
                if conn.closed.is_set():
                    break         # lost meanwhile: the supervisor reconnects
                silent = time.monotonic() - conn.last_frame_at
                log.error("no frame from the node for %.1fs (heartbeat window %.1fs) and no "
                          "reply to a probe: declared dead, resetting the %s connection",
                          silent, window, role, extra=self._ctx)
                if self.metrics is not None:
                    self.metrics.heartbeat_missed_total.labels(self.node.name).inc()
                conn.abort("heartbeat missed")
                return
            conn.closed.wait(min(window - silent, _WATCH_STEP_S))
        if not self._wanted(role) and not conn.closed.is_set():
            conn.close()

    def _note_core(self, core: str | None) -> None:
        if not core:
            return
        if self.core_uuid is not None and core != self.core_uuid:
            self._restart_pending = True
            log.warning("FreeSWITCH restarted: Core-UUID changed", extra={
                **self._ctx, "old_core_uuid": self.core_uuid, "core_uuid": core})
            if self.metrics is not None:
                self.metrics.node_restarts_total.labels(self.node.name).inc()
        self.core_uuid = core

    def _on_stream_event(self, event: Event) -> None:
        # Decided per event: set_consume(True) flips this at once, so each event goes to
        # exactly one of the two, in the order read.
        if self._consume:
            if self.dispatcher is not None:
                self.dispatcher.submit(event, self)
        elif self._on_standby_event is not None and event.name != "HEARTBEAT":
            self._on_standby_event(event)

    # --- up / down -----------------------------------------------------------------------
    def _update_state(self) -> None:
        if not self._running:
            return      # stop() settles the state itself, without callbacks
        up = (self._conns[COMMANDS] is not None
              and (not self._consume or self._conns[EVENTS] is not None))
        self._set_up(up)

    def _set_up(self, up: bool, *, quiet: bool = False) -> None:
        if up == self._up:
            return
        self._up = up
        if self.metrics is not None and not quiet:
            self.metrics.node_up.labels(self.node.name).set(1 if up else 0)
        if up:
            restarted, self._restart_pending = self._restart_pending, False
            log.info("node link up", extra={**self._ctx, "restarted": restarted,
                                              "consuming": self._consume})
            self._callbacks.put(("up", restarted))
        elif quiet:
            log.info("node link waiting for its event stream", extra=self._ctx)
        else:
            log.warning("node link down", extra=self._ctx)
            self._callbacks.put(("down", False))

    def _run_callbacks(self) -> None:
        while True:
            item = self._callbacks.get()
            if item is None:
                return
            kind, restarted = item
            try:
                if kind == "up" and self.on_up is not None:
                    self.on_up(self, restarted)
                elif kind == "down" and self.on_down is not None:
                    self.on_down(self)
            except gevent.GreenletExit:
                raise
            except Exception:
                log.exception("on_%s callback failed", kind, extra=self._ctx)

    # --- commands ------------------------------------------------------------------------
    def _command_conn(self, timeout: float | None) -> EslConnection:
        """The live commands connection, waiting up to the timeout for a reconnect.

        A connection that is going away (a disconnect notice seen, the socket not yet
        closed) is still registered for a moment and ``_cmd_ready`` still set until its
        supervisor notices: wait past it instead of handing it out to fail at once.
        """
        wait = self.esl.command_timeout_s if timeout is None else timeout
        deadline = time.monotonic() + wait
        while True:
            conn = self._conns[COMMANDS]
            if conn is not None and conn.connected:
                return conn
            remaining = deadline - time.monotonic()
            if not self._running or remaining <= 0:
                raise NotConnected(f"node {self.node.name}: no ESL connection within {wait}s")
            if conn is not None:
                # Its supervisor clears it right after its end; give that a moment.
                conn.closed.wait(min(remaining, _WATCH_STEP_S))
                gevent.sleep(min(0.005, remaining))
            else:
                self._cmd_ready.wait(remaining)

    def api(self, cmd: str, timeout: float | None = None) -> str:
        return self._command_conn(timeout).api(cmd, timeout)

    def bgapi(self, cmd: str, timeout: float | None = None) -> BackgroundJob:
        return self._command_conn(timeout).bgapi(cmd, timeout)

    def sendmsg(self, uuid: str, headers: Mapping[str, str],
                timeout: float | None = None) -> str:
        return self._command_conn(timeout).sendmsg(uuid, headers, timeout)

    def show_channels(self) -> list[dict[str, Any]]:
        """Live channels from ``show channels as json`` (``[]`` when there are none)."""
        text = self.api(commands.show_channels_json())
        if text.startswith("-ERR"):
            raise EslError(f"node {self.node.name}: show channels failed: {text.strip()!r}")
        rows = channel_rows(text)
        if rows is not None:
            return rows
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise EslError(f"node {self.node.name}: show channels returned no JSON: "
                           f"{text[:80]!r}") from exc
        # Captured reply when empty: {"row_count": 0} (command_replies.json,
        # show_channels_json_empty); otherwise "rows" holds one object per channel.
        found = data.get("rows") if isinstance(data, dict) else None
        return [r for r in found if isinstance(r, dict)] if isinstance(found, list) else []


# A busy switch lists a thousand channels in about a megabyte: decoded in one go that holds the
# worker's event loop for several milliseconds (every caller's next step waits behind it), so
# the rows are decoded one at a time, giving way to other greenlets every ROWS_PER_TURN.
ROWS_PER_TURN = 100
_ROWS_HEAD = re.compile(r'\{"row_count":\s*\d+,\s*"rows":\s*\[')
_DECODER = json.JSONDecoder()


def channel_rows(text: str) -> list[dict[str, Any]] | None:
    """The rows of a ``show channels as json`` reply as the switch writes it
    (``{"row_count":N,"rows":[{...},...]}``, command_replies.json), decoded row by row;
    None when the text is not laid out so (the caller decodes it whole)."""
    head = _ROWS_HEAD.match(text)
    if head is None:
        return None
    rows: list[dict[str, Any]] = []
    at, end, seen = head.end(), len(text), 0
    try:
        while True:
            while at < end and text[at] in " \t\r\n,":
                at += 1
            if at < end and text[at] == "]":
                return rows
            row, at = _DECODER.raw_decode(text, at)
            if isinstance(row, dict):
                rows.append(row)
            seen += 1
            if seen % ROWS_PER_TURN == 0:
                gevent.sleep(0)
    except ValueError:
        return None
