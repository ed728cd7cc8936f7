"""The simulated switch core: events, subscriptions, api commands, HEARTBEAT, clock.

This is what ``switch_event.c``, ``switch_loadable_module.c:switch_api_execute``,
``switch_core.c:send_heartbeat`` and the event half of ``mod_event_socket.c`` do in
FreeSWITCH 1.10.12, reduced to what a contact centre's ESL client can observe.

Rules the channel engine (``fssim.engine``) relies on:

* ``new_event()`` numbers the event and stamps its date, as FreeSWITCH does when it creates
  an event (switch_event.c:switch_event_prep_for_delivery_detailed runs at creation), so an
  event's Event-Sequence is its creation order, not its delivery order. Add headers, then
  ``fire()`` it once; do not change it after firing (encodings are cached on it).
* Header values are strings; an empty value is sent as ``_undef_`` in plain (switch_event.c:
  switch_event_serialize) and ``""`` in json, so prefer leaving a header out.
* A value ``ARRAY::a|:b`` is a FreeSWITCH array header: sent as is in plain, as a json array.
* For CUSTOM events ``Event-Subclass`` comes FIRST, before Event-Name (as captured in
  esl_plain.raw: switch_event_create_subclass adds it before the standard block).
* An api handler returns the body text exactly as FreeSWITCH prints it, or raises
  ``ApiUsage(text)`` with that text (same effect; handy deep inside a parser).
* ``sendmsg_handler(uuid, headers, body)`` returns the Reply-Text (``+OK`` or
  ``-ERR invalid session id [<uuid>]``); ``session_counter()`` returns (current sessions,
  sessions since start); ``session_exists(uuid)`` (optional) answers ``myevents <uuid>``.

BACKGROUND_JOB delivery (mod_event_socket.c:event_handler): a fired event goes to EVERY
listener whose own subscription accepts it; there is no routing to the listener that issued
the bgapi. So a connection receives its BACKGROUND_JOBs only if it subscribed to
BACKGROUND_JOB (or ALL) and its filters let them through, and every other connection so
subscribed receives them as well (the captured `event plain ALL` connection got the jobs of
the command connection). Job-Owner-UUID is added only when the issuing listener controls a
session (after ``myevents <uuid>``); such a myevents listener then also receives BACKGROUND_JOBs
whose Job-Owner-UUID is its session, provided it subscribed to BACKGROUND_JOB.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import socket
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import gevent
from gevent.pool import Group

from fssim import wire
from fssim.clock import Clock

log = logging.getLogger(__name__)

# Versions as captured (command_replies.json api_status; esl_plain.raw HEARTBEAT).
VERSION_HUMAN = "1.10.12-release git a88d069 2024-08-02 21:02:27Z 64bit"
VERSION_FULL = "1.10.12-release+git~20240802T210227Z~a88d069d6f~64bit"

# Event-Calling-* of the events the core fires (captured values).
CALLING_API = ("switch_loadable_module.c", "switch_api_execute", 2954)
CALLING_BGJOB = ("mod_event_socket.c", "api_exec", 1572)
CALLING_HEARTBEAT = ("switch_core.c", "send_heartbeat", 95)
CALLING_DEFAULT = ("switch_event.c", "switch_event_fire_detailed", 0)

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def measure_time(us: int) -> str:
    """switch_core_measure_time + the plural rule of mod_commands.c:status_function and
    switch_core.c:send_heartbeat: "0 years, 0 days, 0 hours, 2 minutes, 1 second, ..."."""
    parts = (
        (us // 86_400_000_000 // 365, "year"),
        (us // 86_400_000_000 % 365, "day"),
        (us // 3_600_000_000 % 24, "hour"),
        (us // 60_000_000 % 60, "minute"),
        (us // 1_000_000 % 60, "second"),
        (us // 1000 % 1000, "millisecond"),
        (us % 1000, "microsecond"),
    )
    return ", ".join(f"{n} {unit}{'' if n == 1 else 's'}" for n, unit in parts)


class ApiUsage(Exception):
    """Raised by an api handler: ``str(exc)`` is the exact reply body (e.g. ``-USAGE: ...\\n``)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


@dataclass
class ApiRequest:
    command: str          # the command, whitespace-stripped (switch_api_execute's cmd_used)
    args: str             # its argument, whitespace-stripped, "" when none
    bg: bool = False
    job_uuid: str | None = None
    owner_uuid: str | None = None   # session the issuing listener controls (myevents), if any


ApiHandler = Callable[[ApiRequest], str]


class SimEvent:
    """One event. ``headers`` are the event-specific ones, after the standard block."""

    __slots__ = ("name", "subclass", "_headers", "_build", "_known", "body", "sequence",
                 "timestamp_us", "calling", "_switch", "_frames", "_exact", "_lower")

    def __init__(self, switch: Switch, name: str, subclass: str | None, sequence: int,
                 timestamp_us: int, calling: tuple[str, str, int]) -> None:
        self.name = name
        self.subclass = subclass
        self._headers: list[tuple[str, str]] = []
        # A channel event's headers, built when first read (see ``build_later``).
        self._build: Callable[[], list[tuple[str, str]]] | None = None
        self._known: dict[str, str] = {}
        self.body: str | None = None
        self.sequence = sequence
        self.timestamp_us = timestamp_us
        self.calling = calling
        self._switch = switch
        self._frames: dict[str, bytes] = {}
        self._exact: dict[str, str] | None = None
        self._lower: dict[str, str] | None = None

    @property
    def headers(self) -> list[tuple[str, str]]:
        if self._build is not None:
            build, self._build = self._build, None
            self._headers.extend(build())
        return self._headers

    @property
    def built(self) -> bool:
        """Whether every header exists (always, unless ``build_later`` is still pending)."""
        return self._build is None

    def build_later(self, build: Callable[[], list[tuple[str, str]]],
                    known: dict[str, str]) -> None:
        """Headers that ``build()`` returns, appended when the event is first read: a channel
        event's ~170 headers cost more to build than anything else the simulator does, and
        most events are read by no listener. ``Switch.fire`` reads the event (or drops it)
        before it returns, while the channel is still in the state the event describes.
        ``known``: headers ``get`` may answer without building, each the first of its name
        in what ``build()`` returns (the core database's hook reads only those)."""
        self._build = build
        self._known = known

    def add(self, name: str, value: Any) -> SimEvent:
        """Append a header (repeats allowed, as FreeSWITCH allows them)."""
        self.headers.append((name, value if type(value) is str else str(value)))
        return self

    def extend(self, pairs: Iterable[tuple[str, str]]) -> SimEvent:
        for name, value in pairs:
            self.add(name, value)
        return self

    def standard_headers(self) -> list[tuple[str, str]]:
        return self._switch._standard_pairs(self)

    def all_headers(self) -> list[tuple[str, str]]:
        """Every header in wire order (standard block first)."""
        return self.standard_headers() + self.headers

    def get(self, name: str, default: str | None = None) -> str | None:
        """First value of a header, case-insensitively (switch_event_get_header)."""
        # Asked by its usual spelling nearly always: a dict built in C (reversed, so the first
        # of repeated headers wins) answers those; the case-folded index is built only for a
        # name spelt otherwise or absent. A channel event carries ~170 headers, and folding
        # every one of them was the simulator's largest cost under load.
        if self._build is not None:
            value = self._known.get(name)
            if value is not None:
                return value
        exact = self._exact
        if exact is None:
            exact = self._exact = dict(reversed(self.all_headers()))
        value = exact.get(name)
        if value is not None:
            return value
        lower = self._lower
        if lower is None:
            lower = {}
            for key, value in self.all_headers():
                lower.setdefault(key.lower(), value)
            self._lower = lower
        return lower.get(name.lower(), default)

    def payload(self, fmt: str) -> bytes:
        """The serialised event (without the outer frame) in ``plain``, ``json`` or ``xml``."""
        return self._switch._serialize(self, fmt)

    def frame(self, fmt: str) -> bytes:
        """The whole event frame for a listener in format ``fmt``; built once per format."""
        frame = self._frames.get(fmt)
        if frame is None:
            frame = wire.event_frame(self.payload(fmt), fmt)
            self._frames[fmt] = frame
        return frame

    def __repr__(self) -> str:
        sub = f" {self.subclass}" if self.subclass else ""
        return f"<SimEvent {self.name}{sub} #{self.sequence} {len(self.headers)} headers>"


# mod_event_socket.c:parse_command "myevents": the event types a myevents listener gets.
MYEVENTS_NAMES = frozenset({
    "CHANNEL_ANSWER", "CHANNEL_APPLICATION", "CHANNEL_BRIDGE", "CHANNEL_CREATE",
    "CHANNEL_DATA", "CHANNEL_DESTROY", "CHANNEL_EXECUTE", "CHANNEL_EXECUTE_COMPLETE",
    "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_ORIGINATE", "CHANNEL_UUID",
    "CHANNEL_OUTGOING", "CHANNEL_PARK", "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA",
    "CHANNEL_STATE", "CHANNEL_UNBRIDGE", "CHANNEL_UNPARK", "DETECTED_SPEECH", "DTMF",
    "NOTALK", "TALK",
})

_REGEX_CACHE: dict[str, re.Pattern[str] | None] = {}


def _regex_search(value: str, expression: str) -> bool:
    """switch_regex.c:switch_regex_perform: ``/re/flags`` (i, s) or a bare pattern, searched."""
    pattern = _REGEX_CACHE.get(expression)
    if expression not in _REGEX_CACHE:
        text: str | None = expression
        flags = 0
        if expression.startswith("/"):
            body, sep, opts = expression[1:].rpartition("/")
            if sep:
                text = body
                flags |= re.IGNORECASE if "i" in opts else 0
                flags |= re.DOTALL if "s" in opts else 0
            else:
                text = None  # no closing slash: FreeSWITCH fails the match
        try:
            pattern = re.compile(text, flags) if text is not None else None
        except re.error:
            pattern = None
        _REGEX_CACHE[expression] = pattern
    return bool(pattern and pattern.search(value))


class Subscription:
    """A listener's event state, as mod_event_socket.c keeps it per listener."""

    __slots__ = ("enabled", "fmt", "names", "all", "subclasses", "filters", "myevents",
                 "session")

    def __init__(self) -> None:
        self.enabled = False                      # LFLAG_EVENTS
        self.fmt = "plain"
        self.names: set[str] = set()              # event_list[type]
        self.all = False                          # event_list[SWITCH_EVENT_ALL]
        self.subclasses: set[str] = set()         # event_hash (case-sensitive core hash)
        self.filters: list[tuple[str, str]] | None = None
        self.myevents = False                     # LFLAG_MYEVENTS
        self.session: str | None = None           # listener->session (uuid)

    def accepts(self, ev: SimEvent) -> bool:
        """mod_event_socket.c:event_handler, for one listener."""
        if not self.enabled:
            return False
        if self.all:
            send = True
        elif ev.name in self.names:
            send = ev.name != "CUSTOM" or not ev.subclass or ev.subclass in self.subclasses
        else:
            return False
        if send and self.filters:
            send = self._filter(ev)
        if send and self.myevents:
            uid = ev.get("unique-id")
            if uid is None or (self.session is not None and uid != self.session):
                send = False
            if self.session is not None and ev.get("Job-Owner-UUID") == self.session:
                send = True
        return send

    def _filter(self, ev: SimEvent) -> bool:
        send = False
        for hname, raw in self.filters or ():
            hval = ev.get(hname)
            if hval is None:
                continue
            pos = True
            i = 0
            while i < len(raw):
                c = raw[i]
                if c == "+":
                    pos = True
                elif c == "-":
                    pos = False
                elif c != " ":
                    break
                i += 1
            comp_to = raw[i:]
            if send and pos:
                continue
            if raw.startswith("/"):
                cmp = _regex_search(hval, comp_to)
            else:
                cmp = hval.lower() == comp_to.lower()  # strcasecmp
            if cmp:
                if pos:
                    send = True
                else:
                    return False
        return send


class Listener(Protocol):
    """What the switch needs from an ESL connection (fssim.server.Connection)."""

    sub: Subscription

    def deliver(self, ev: SimEvent) -> None: ...


# The core database's default lag behind the events (fssim.coredb), wall-clock milliseconds.
# Measured on FreeSWITCH 1.10.12 (the lab switch, idle, 20 SIPp calls at 5/s): a parked
# channel's row said `park` 12 to 233 ms after its CHANNEL_PARK event, 92 ms at the median.
DEFAULT_DB_LAG_MS = 100.0


class Switch:
    """The simulated FreeSWITCH core. One per process; ``start()`` gives a new Core-UUID."""

    def __init__(self, *, hostname: str | None = None, password: str = "ClueCon",
                 heartbeat_interval: float = 20.0, time_scale: float = 1.0,
                 max_sessions: int = 1000, sessions_per_second: int = 30,
                 ipv4: str = "127.0.0.1", ipv6: str = "::1",
                 db_lag_ms: float = DEFAULT_DB_LAG_MS) -> None:
        self.hostname = hostname or socket.gethostname()
        self.switchname = self.hostname
        self.password = password
        self.heartbeat_interval = float(heartbeat_interval)
        self.clock = Clock(time_scale)
        self.max_sessions = int(max_sessions)
        self.sessions_per_second = int(sessions_per_second)
        # How long the core database (``show channels``) trails the events: see fssim.coredb.
        self.db_lag_ms = float(db_lag_ms)
        self.ipv4 = ipv4
        self.ipv6 = ipv6
        self.core_uuid = str(uuid.uuid4())
        self.started_us = Clock.wall_us()
        self.running = False
        self._started_once = False

        self.sendmsg_handler: Callable[[str, list[tuple[str, str]], str | None], str] | None = None
        self.session_counter: Callable[[], tuple[int, int]] | None = None
        self.session_exists: Callable[[str], bool] | None = None
        self.channel_getvar: Callable[[str, str], str | None] | None = None

        self._apis: dict[str, ApiHandler] = {}
        self._listeners: tuple[Listener, ...] = ()
        self._hooks: tuple[Callable[[SimEvent], None], ...] = ()
        self._seq = itertools.count(1)
        self._group = Group()
        self._std_cache: dict[tuple[str, str | None], tuple[str, str]] = {}
        self._date_cache: tuple[int, str, str, str] = (-1, "", "", "")
        self._calling_cache: dict[tuple[str, str, int], tuple[str, str]] = {}
        self._stats = _SessionStats()
        self._register_core_apis()

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        if self.running:
            return
        if self._started_once:  # restarted: FreeSWITCH gets a new Core-UUID on each start
            self.core_uuid = str(uuid.uuid4())
            self._std_cache.clear()
        self._started_once = True
        self.started_us = Clock.wall_us()
        self._stats = _SessionStats()
        self.running = True
        self.spawn(self._sampler)
        if self.heartbeat_interval > 0:
            self.spawn(self._heartbeat_loop)
        log.info("switch started", extra={"core_uuid": self.core_uuid, "node": self.hostname})

    def stop(self) -> None:
        self.running = False
        self._group.kill(block=True, timeout=2)

    def spawn(self, fn: Callable[..., Any], *args: Any) -> gevent.Greenlet:
        """Run ``fn`` in the switch's Group; errors are logged, ``stop()`` kills it."""
        g = self._group.spawn(fn, *args)
        g.link_exception(_log_greenlet_error)
        return g

    # ---------------------------------------------------------------- listeners & events

    def add_listener(self, listener: Listener) -> None:
        self._listeners = (*self._listeners, listener)

    def remove_listener(self, listener: Listener) -> None:
        self._listeners = tuple(x for x in self._listeners if x is not listener)

    def bind(self, hook: Callable[[SimEvent], None]) -> None:
        """Call ``hook(ev)`` for every fired event (an in-process module binding)."""
        self._hooks = (*self._hooks, hook)

    def new_event(self, name: str, subclass: str | None = None, *,
                  calling: tuple[str, str, int] = CALLING_DEFAULT) -> SimEvent:
        """Create and number an event (FreeSWITCH numbers and dates it at creation)."""
        if subclass is not None and name != "CUSTOM":
            raise ValueError("only CUSTOM events have a subclass")
        return SimEvent(self, name, subclass, next(self._seq), Clock.wall_us(), calling)

    def fire(self, ev: SimEvent) -> None:
        """Deliver ``ev`` to every listener whose subscription accepts it."""
        for hook in self._hooks:
            try:
                hook(ev)
            except Exception:  # a module's bug must not stop delivery
                log.exception("event hook failed", extra={"event_name": ev.name})
        for listener in self._listeners:
            if listener.sub.accepts(ev):
                # Built now, as the switch does: the listener's writer reads the event later,
                # when the channel may have moved on.
                ev.headers  # noqa: B018
                listener.deliver(ev)

    # ---------------------------------------------------------------- serialisation

    def _dates(self, ts_us: int) -> tuple[str, str, str]:
        sec = ts_us // 1_000_000
        cached = self._date_cache
        if cached[0] == sec:
            return cached[1], cached[2], cached[3]
        lt = time.localtime(sec)
        gm = time.gmtime(sec)
        local = time.strftime("%Y-%m-%d %H:%M:%S", lt)
        # switch_apr.c:switch_rfc822_date, English names whatever the locale
        gmt = (f"{_DAYS[gm.tm_wday]}, {gm.tm_mday:02d} {_MONTHS[gm.tm_mon - 1]} {gm.tm_year:04d} "
               f"{gm.tm_hour:02d}:{gm.tm_min:02d}:{gm.tm_sec:02d} GMT")
        plain = wire.plain_line("Event-Date-Local", local) + wire.plain_line("Event-Date-GMT", gmt)
        self._date_cache = (sec, local, gmt, plain)
        return local, gmt, plain

    def _std_const(self, ev: SimEvent) -> tuple[str, str]:
        key = (ev.name, ev.subclass)
        hit = self._std_cache.get(key)
        if hit is None:
            pairs = self._const_pairs(ev.name, ev.subclass)
            plain = "".join(wire.plain_line(k, v) for k, v in pairs)
            js = ",".join(wire.json_pair(k, v) for k, v in pairs)
            hit = (plain, js)
            self._std_cache[key] = hit
        return hit

    def _const_pairs(self, name: str, subclass: str | None) -> list[tuple[str, str]]:
        # switch_event.c: Event-Subclass is added when a CUSTOM event is created, before
        # prep_for_delivery adds the standard block, so it comes FIRST (esl_plain.raw).
        pairs = [("Event-Subclass", subclass)] if subclass is not None else []
        pairs += [
            ("Event-Name", name),
            ("Core-UUID", self.core_uuid),
            ("FreeSWITCH-Hostname", self.hostname),
            ("FreeSWITCH-Switchname", self.switchname),
            ("FreeSWITCH-IPv4", self.ipv4),
            ("FreeSWITCH-IPv6", self.ipv6),
        ]
        return pairs

    def _standard_pairs(self, ev: SimEvent) -> list[tuple[str, str]]:
        local, gmt, _ = self._dates(ev.timestamp_us)
        file, func, line = ev.calling
        return self._const_pairs(ev.name, ev.subclass) + [
            ("Event-Date-Local", local),
            ("Event-Date-GMT", gmt),
            ("Event-Date-Timestamp", str(ev.timestamp_us)),
            ("Event-Calling-File", file),
            ("Event-Calling-Function", func),
            ("Event-Calling-Line-Number", str(line)),
            ("Event-Sequence", str(ev.sequence)),
        ]

    def _calling(self, calling: tuple[str, str, int]) -> tuple[str, str]:
        hit = self._calling_cache.get(calling)
        if hit is None:
            file, func, line = calling
            pairs = (("Event-Calling-File", file), ("Event-Calling-Function", func),
                     ("Event-Calling-Line-Number", str(line)))
            hit = ("".join(wire.plain_line(k, v) for k, v in pairs),
                   ",".join(wire.json_pair(k, v) for k, v in pairs))
            self._calling_cache[calling] = hit
        return hit

    def _serialize(self, ev: SimEvent, fmt: str) -> bytes:
        if fmt == "plain":
            const, _ = self._std_const(ev)
            _, _, dates = self._dates(ev.timestamp_us)
            calling, _ = self._calling(ev.calling)
            prefix = (f"{const}{dates}Event-Date-Timestamp: {ev.timestamp_us}\n{calling}"
                      f"Event-Sequence: {ev.sequence}\n")
            return wire.serialize_plain(prefix, ev.headers, ev.body)
        if fmt == "json":
            _, const = self._std_const(ev)
            local, gmt, _ = self._dates(ev.timestamp_us)
            _, calling = self._calling(ev.calling)
            prefix = (f"{const},{wire.json_pair('Event-Date-Local', local)},"
                      f"{wire.json_pair('Event-Date-GMT', gmt)},"
                      f'"Event-Date-Timestamp":"{ev.timestamp_us}",{calling},'
                      f'"Event-Sequence":"{ev.sequence}"')
            return wire.serialize_json(prefix, ev.headers, ev.body)
        if fmt == "xml":
            return wire.serialize_xml(ev.all_headers(), ev.body)
        raise ValueError(f"unknown event format {fmt!r}")

    # ---------------------------------------------------------------- api

    def register_api(self, name: str, handler: ApiHandler) -> None:
        """Make ``name`` an api/bgapi command (names are case-sensitive, like FreeSWITCH's
        api hash)."""
        self._apis[name] = handler

    def execute_api(self, cmd: str, arg: str | None, *, bg: bool = False,
                    job_uuid: str | None = None, owner_uuid: str | None = None) -> str | None:
        """switch_loadable_module.c:switch_api_execute as mod_event_socket.c:api_exec calls it.

        Fires the API event (numbered now, delivered after whatever the command fired) and
        returns the command's output, or None when no such command exists.
        """
        cmd_used = cmd.strip()
        arg_used = arg.strip() if arg is not None else None
        api_ev = self.new_event("API", calling=CALLING_API)
        if cmd_used:
            api_ev.add("API-Command", cmd_used)
        if arg_used:
            api_ev.add("API-Command-Argument", arg_used)
        handler = self._apis.get(cmd_used)
        out: str | None
        if handler is None:
            out = None
        else:
            req = ApiRequest(cmd_used, arg_used or "", bg, job_uuid, owner_uuid)
            try:
                out = handler(req)
            except ApiUsage as exc:
                out = exc.text
            except gevent.GreenletExit:
                raise
            except Exception as exc:
                log.exception("api handler failed", extra={"api_command": cmd_used})
                out = f"-ERR {exc}\n"
            if out is None:
                out = ""
        self.fire(api_ev)
        return out

    def api_reply_body(self, cmd: str, arg: str | None) -> str:
        """Body of a sync ``api`` reply (mod_event_socket.c:api_exec, bg == 0)."""
        out = self.execute_api(cmd, arg)
        if out is None:
            return f"-ERR {cmd} Command not found!\n"
        return out or "-ERR no reply\n"

    def run_bgapi(self, cmd: str, arg: str | None, job_uuid: str,
                  owner_uuid: str | None = None) -> gevent.Greenlet:
        """Run a bgapi job: output goes out as BACKGROUND_JOB (mod_event_socket.c:api_exec)."""
        return self.spawn(self._bgapi_job, cmd, arg, job_uuid, owner_uuid)

    def _bgapi_job(self, cmd: str, arg: str | None, job_uuid: str, owner: str | None) -> None:
        out = self.execute_api(cmd, arg, bg=True, job_uuid=job_uuid, owner_uuid=owner)
        if out is None:
            out = f"-ERR {cmd} Command not found!\n"
        ev = self.new_event("BACKGROUND_JOB", calling=CALLING_BGJOB)
        ev.add("Job-UUID", job_uuid)
        if owner:
            ev.add("Job-Owner-UUID", owner)
        ev.add("Job-Command", cmd)
        if arg is not None:
            ev.add("Job-Command-Arg", arg)
        ev.body = out
        self.fire(ev)

    # ---------------------------------------------------------------- core api commands

    def _register_core_apis(self) -> None:
        self.register_api("status", self._api_status)
        self.register_api("hostname", lambda req: self.hostname)
        self.register_api("global_getvar", self._api_global_getvar)

    def sessions(self) -> tuple[int, int]:
        if self.session_counter is None:
            return 0, 0
        return self.session_counter()

    def uptime_us(self) -> int:
        return max(0, Clock.wall_us() - self.started_us)

    def _api_status(self, req: ApiRequest) -> str:
        """mod_commands.c:status_function (1.10), text as captured (api_status)."""
        cur, since = self.sessions()
        st = self._stats
        st.observe(cur)
        return (
            f"UP {measure_time(self.uptime_us())}\n"
            f"FreeSWITCH (Version {VERSION_HUMAN}) is ready\n"
            f"{since} session(s) since startup\n"
            f"{cur} session(s) - peak {st.peak}, last 5min {st.peak_5min()} \n"
            f"{st.last_sps} session(s) per Sec out of max {self.sessions_per_second}, "
            f"peak {st.sps_peak}, last 5min {st.sps_peak_5min()} \n"
            f"{self.max_sessions} session(s) max\n"
            f"min idle cpu 0.00/{st.idle_cpu:.2f}\n"
            "Current Stack Size/Max 240K/8192K\n"
        )

    def global_vars(self) -> dict[str, str]:
        return {
            "hostname": self.hostname,
            "switchname": self.switchname,
            "local_ip_v4": self.ipv4,
            "local_ip_v6": self.ipv6,
            "core_uuid": self.core_uuid,
        }

    def _api_global_getvar(self, req: ApiRequest) -> str:
        gv = self.global_vars()
        if req.args:
            return gv.get(req.args, "")
        return "".join(f"{k}={v}\n" for k, v in gv.items())

    # ---------------------------------------------------------------- background loops

    def heartbeat_event(self) -> SimEvent:
        """switch_core.c:send_heartbeat; header set and order as captured (esl_plain.raw)."""
        cur, since = self.sessions()
        st = self._stats
        st.observe(cur)
        up = self.uptime_us()
        ev = self.new_event("HEARTBEAT", calling=CALLING_HEARTBEAT)
        ev.add("Event-Info", "System Ready")
        ev.add("Up-Time", measure_time(up))
        ev.add("FreeSWITCH-Version", VERSION_FULL)
        ev.add("Uptime-msec", str(up // 1000))
        ev.add("Session-Count", str(cur))
        ev.add("Max-Sessions", str(self.max_sessions))
        ev.add("Session-Per-Sec", str(self.sessions_per_second))
        ev.add("Session-Per-Sec-Last", str(st.last_sps))
        ev.add("Session-Per-Sec-Max", str(st.sps_peak))
        ev.add("Session-Per-Sec-FiveMin", str(st.sps_peak_5min()))
        ev.add("Session-Since-Startup", str(since))
        ev.add("Session-Peak-Max", str(st.peak))
        ev.add("Session-Peak-FiveMin", str(st.peak_5min()))
        ev.add("Idle-CPU", f"{st.idle_cpu:f}")
        return ev

    def _heartbeat_loop(self) -> None:
        # Wall-clock interval, not simulated time: HEARTBEAT is the liveness signal a client's
        # watchdog times in real seconds.
        interval = self.heartbeat_interval
        next_at = time.monotonic() + interval
        while self.running:
            gevent.sleep(max(0.0, next_at - time.monotonic()))
            next_at += interval
            self.fire(self.heartbeat_event())

    def _sampler(self) -> None:
        while self.running:
            gevent.sleep(1.0)
            cur, since = self.sessions()
            self._stats.tick(cur, since)


class _SessionStats:
    """Per-second session figures behind status and HEARTBEAT (switch_core_session.c)."""

    def __init__(self) -> None:
        self.peak = 0
        self.last_sps = 0
        self.sps_peak = 0
        self.idle_cpu = 99.0
        self._last_since = 0
        self._window: deque[tuple[float, int, int]] = deque()  # (t, sessions, sps)
        self._cpu = (time.monotonic(), os.times())

    def observe(self, cur: int) -> None:
        self.peak = max(self.peak, cur)

    def tick(self, cur: int, since: int) -> None:
        now = time.monotonic()
        self.observe(cur)
        self.last_sps = max(0, since - self._last_since)
        self._last_since = since
        self.sps_peak = max(self.sps_peak, self.last_sps)
        self._window.append((now, cur, self.last_sps))
        while self._window and now - self._window[0][0] > 300:
            self._window.popleft()
        t0, times0 = self._cpu
        times1 = os.times()
        wall = now - t0
        if wall > 0:
            busy = (times1.user + times1.system - times0.user - times0.system) / wall
            self.idle_cpu = max(0.0, min(100.0, 100.0 * (1.0 - busy)))
        self._cpu = (now, times1)

    def peak_5min(self) -> int:
        return max((s for _, s, _ in self._window), default=self.peak)

    def sps_peak_5min(self) -> int:
        return max((r for _, _, r in self._window), default=self.last_sps)


def _log_greenlet_error(g: gevent.Greenlet) -> None:
    log.error("simulator greenlet died", exc_info=g.exc_info)
