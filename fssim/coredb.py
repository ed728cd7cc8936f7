"""The ``channels`` table of FreeSWITCH's core database, which ``show channels`` reads.

FreeSWITCH does not answer ``show channels`` from its live sessions: ``core_event_handler``
(``switch_core_sqldb.c``) turns each channel event into SQL and pushes it on a queue that a
separate thread commits in batches (``switch_sql_queue_manager_push`` / ``do_trans``). So a row
appears, changes and disappears some time *after* the event that caused it, and a client that
takes a snapshot right after subscribing can miss a channel that already fired its last event
before the subscription. This module keeps that table the same way: each event's change is
computed when the event fires, queued, and applied ``lag_s`` later, in order.

What each event writes (the columns ``core_event_handler`` names for it):

* CHANNEL_CREATE: inserts uuid, direction, created, created_epoch, name, state, callstate,
  dialplan, context, hostname and the ``initial_*`` columns; every other column is NULL, which
  ``show ... as json`` prints as "" (dest and cid_* only come with the ROUTING state);
* CHANNEL_ANSWER, CHANNEL_PROGRESS_MEDIA, CODEC: the codec columns;
* CHANNEL_EXECUTE, CHANNEL_HOLD, CHANNEL_UNHOLD: application and application_data from the
  event, presence and accountcode (so ``application`` keeps naming a finished app until the next
  one starts);
* CHANNEL_ORIGINATE: presence, accountcode, call_uuid;
* CALL_UPDATE: the callee columns and cid_*;
* CHANNEL_CALLSTATE: callstate, except for DOWN and HANGUP;
* CHANNEL_STATE: state, except NEW, INIT, HANGUP, REPORTING and DESTROY; ROUTING also writes
  cid_*, callee_*, ip_addr, dest, dialplan, context, presence and accountcode;
* CHANNEL_BRIDGE: call_uuid of both legs; CHANNEL_UNBRIDGE: call_uuid back to the row's uuid;
* CHANNEL_DESTROY: deletes the row.

Column values other than application(_data) come from the simulator's row builder at the moment
the event fires, so a row says what the switch said then, never what the channel says now.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

import gevent
from gevent.event import Event as GEvent

from fssim.switch import SimEvent, Switch

Row = dict[str, str]
RowOf = Callable[[str], "Row | None"]
# (due monotonic time, uuid, kind, columns or None)
_Change = tuple[float, str, str, "Row | None"]

_INSERTED = ("uuid", "direction", "created", "created_epoch", "name", "state", "callstate",
             "dialplan", "context", "hostname", "initial_cid_name", "initial_cid_num",
             "initial_ip_addr", "initial_dest", "initial_dialplan", "initial_context")
_CODEC = ("read_codec", "read_rate", "read_bit_rate", "write_codec", "write_rate",
          "write_bit_rate")
_PRESENCE = ("presence_id", "presence_data", "accountcode")
_ROUTING = ("state", "cid_name", "cid_num", "callee_name", "callee_num", "sent_callee_name",
            "sent_callee_num", "ip_addr", "dest", "dialplan", "context", *_PRESENCE)
_UPDATED: dict[str, tuple[str, ...]] = {
    "CHANNEL_ANSWER": _CODEC, "CHANNEL_PROGRESS_MEDIA": _CODEC, "CODEC": _CODEC,
    "CHANNEL_ORIGINATE": (*_PRESENCE, "call_uuid"),
    "CALL_UPDATE": ("callee_name", "callee_num", "sent_callee_name", "sent_callee_num",
                    "callee_direction", "cid_name", "cid_num"),
}
_APP_EVENTS = frozenset({"CHANNEL_EXECUTE", "CHANNEL_HOLD", "CHANNEL_UNHOLD"})
_STATE_SKIPPED = frozenset({"CS_NEW", "CS_INIT", "CS_HANGUP", "CS_REPORTING", "CS_DESTROY"})
_CALLSTATE_SKIPPED = frozenset({"DOWN", "HANGUP"})


class CoreDb:
    """The lagging ``channels`` table; ``rows()`` is what ``show channels`` lists."""

    def __init__(self, switch: Switch, row_of: RowOf, lag_s: float) -> None:
        self.lag_s = max(0.0, lag_s)
        self._row_of = row_of
        self._rows: dict[str, Row] = {}
        self._queue: deque[_Change] = deque()
        self._pending = GEvent()
        self._writer: gevent.Greenlet | None = None
        self._switch = switch
        switch.bind(self._on_event)

    def rows(self) -> list[Row]:
        return list(self._rows.values())

    def has(self, uuid: str) -> bool:
        return uuid in self._rows

    # ---- events -> queued changes -----------------------------------------------------------
    def _on_event(self, ev: SimEvent) -> None:
        change = self._change(ev)
        if change is None:
            return
        if self.lag_s <= 0:
            self._apply(*change)
            return
        self._queue.append((time.monotonic() + self.lag_s, *change))
        self._pending.set()
        if self._writer is None or self._writer.dead:
            self._writer = self._switch.spawn(self._write_loop)

    def _change(self, ev: SimEvent) -> tuple[str, str, Row | None] | None:
        name = ev.name
        uuid = ev.get("Unique-ID")
        if not uuid:
            return None
        if name == "CHANNEL_DESTROY":
            return uuid, "delete", None
        if name == "CHANNEL_UNBRIDGE":
            return uuid, "unbridge", {"call_uuid": ev.get("Channel-Call-UUID") or ""}
        if name in _APP_EVENTS:
            app = {"application": ev.get("Application") or "",
                   "application_data": ev.get("Application-Data") or ""}
            return uuid, "update", {**self._columns(uuid, _PRESENCE), **app}
        if name == "CHANNEL_CREATE":
            row = self._row_of(uuid) or {}
            return uuid, "insert", {n: (v if n in _INSERTED else "") for n, v in row.items()}
        if name == "CHANNEL_CALLSTATE":
            if (ev.get("Channel-Call-State") or "DOWN") in _CALLSTATE_SKIPPED:
                return None
            return uuid, "update", self._columns(uuid, ("callstate",))
        if name == "CHANNEL_STATE":
            state = ev.get("Channel-State") or "CS_DESTROY"
            if state in _STATE_SKIPPED:
                return None
            return uuid, "update", self._columns(uuid, _ROUTING if state == "CS_ROUTING"
                                                 else ("state",))
        if name == "CHANNEL_BRIDGE":
            a = ev.get("Bridge-A-Unique-ID") or ev.get("Caller-Unique-ID") or ""
            b = ev.get("Bridge-B-Unique-ID") or ev.get("Other-Leg-Unique-ID") or ""
            return uuid, "bridge", {"a": a, "b": b,
                                    "call_uuid": ev.get("Channel-Call-UUID") or ""}
        columns = _UPDATED.get(name)
        if columns is None:
            return None
        return uuid, "update", self._columns(uuid, columns)

    def _columns(self, uuid: str, names: tuple[str, ...]) -> Row:
        row = self._row_of(uuid) or {}
        return {n: row.get(n, "") for n in names}

    # ---- the writer: applies changes in order once they are due ------------------------------
    def _write_loop(self) -> None:
        while True:
            if not self._queue:
                self._pending.clear()
                self._pending.wait()
                continue
            due = self._queue[0][0]
            wait = due - time.monotonic()
            if wait > 0:
                gevent.sleep(wait)
                continue
            _, uuid, kind, cols = self._queue.popleft()
            self._apply(uuid, kind, cols)

    def _apply(self, uuid: str, kind: str, cols: Row | None) -> None:
        rows = self._rows
        if kind == "insert":
            assert cols is not None
            rows[uuid] = dict(cols)
        elif kind == "delete":
            rows.pop(uuid, None)
        elif kind == "update":
            row = rows.get(uuid)
            if row is not None and cols:
                row.update(cols)
        elif kind == "bridge":
            assert cols is not None
            for leg in (cols["a"], cols["b"]):
                row = rows.get(leg)
                if row is not None:
                    row["call_uuid"] = cols["call_uuid"]
        elif kind == "unbridge":
            assert cols is not None
            for key, row in rows.items():
                if cols["call_uuid"] and row.get("call_uuid") == cols["call_uuid"]:
                    row["call_uuid"] = key
