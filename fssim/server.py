"""Inbound event socket: the TCP half of mod_event_socket.c (FreeSWITCH 1.10.12).

One greenlet reads and executes a connection's commands in order (read_packet +
parse_command), a second one writes. Replies are written in command order; events reach the
connection in firing order, except that events fired while one of the connection's own
commands runs are held and written right after that command's reply (in FreeSWITCH the
listener thread is busy inside the command and its event queue waits). That is why a sync
``api`` reply arrives before the events it causes and before its own API event, which was
numbered when the command started (captures README).
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

import gevent
from gevent.event import Event
from gevent.pool import Pool
from gevent.server import StreamServer

from esl_handlers.event_names import EVENT_NAMES, name_event
from fssim import wire
from fssim.switch import MYEVENTS_NAMES, SimEvent, Subscription, Switch

log = logging.getLogger(__name__)

AUTH_TIMEOUT = 25.0          # read_packet(listener, &event, 25) before the first command
MAX_PACKET = 10_485_760      # read_packet: max_len, a header block is cut there
MAX_QUEUE_LEN = 100_000      # mod_event_socket.c MAX_QUEUE_LEN (events waiting per listener)
MAX_MISSED = 500             # mod_event_socket.c MAX_MISSED: more lost events kill the listener
_BLOCK_END = re.compile(rb"\n\r*\n")   # read_packet: two LFs with only CRs between them
_ALL_TYPES = tuple(n for n in EVENT_NAMES if n != "ALL")

# switch_log.c:switch_log_str2level names, for the "log" command's reply.
_LOG_LEVELS = {"console": 0, "alert": 1, "crit": 2, "err": 3, "error": 3, "warning": 4,
               "notice": 5, "info": 6, "debug": 7}


def _atoi(text: str) -> int:
    m = re.match(r"\s*([+-]?\d+)", text)
    return int(m.group(1)) if m else 0


def _first_line(text: str) -> str:
    """mod_event_socket.c:strip_cr: cut at the first CR, else at the first LF."""
    cut = text.find("\r")
    if cut < 0:
        cut = text.find("\n")
    return text if cut < 0 else text[:cut]


class Connection:
    """One inbound ESL client (a mod_event_socket listener)."""

    def __init__(self, server: EslServer, sock: Any, address: tuple[str, int]) -> None:
        self.server = server
        self.switch: Switch = server.switch
        self.sock = sock
        self.address = address
        self.sub = Subscription()
        self.authed = False
        self.running = True
        self.linger: int | None = None      # None: no linger; -1: forever; else seconds
        self.logging = False
        self._buf = bytearray()
        self._out: list[bytes] = []
        self._pending_events = 0
        self._lost = 0
        self._held: list[bytes] | None = None   # not None while one of our commands runs
        self._wake = Event()
        self._closing = False
        self._closed = False
        self._session_down = False

    # ---------------------------------------------------------------- output

    def _write(self, data: bytes) -> None:
        if self._closed:
            return
        self._out.append(data)
        self._wake.set()

    def deliver(self, ev: SimEvent) -> None:
        """Called by Switch.fire for an event this listener's subscription accepts."""
        if self._closed or self._closing:
            return
        frame = ev.frame(self.sub.fmt)
        if self._held is not None:
            self._held.append(frame)
        elif self._pending_events >= MAX_QUEUE_LEN:
            self._lost += 1
            if self._lost > MAX_MISSED:  # kill_listener(l, NULL): no notice, just close
                log.warning("listener too slow, killed", extra={"peer": str(self.address)})
                self._abort()
            return
        else:
            self._pending_events += 1
            self._write(frame)
        if (self.sub.session is not None and ev.name == "CHANNEL_HANGUP_COMPLETE"
                and ev.get("Unique-ID") == self.sub.session):
            self._on_session_down(ev)

    def _begin_command(self) -> None:
        self._held = []

    def _end_command(self) -> None:
        held, self._held = self._held, None
        if held:
            self._pending_events += len(held)
            self._out.extend(held)
            self._wake.set()

    def _writer(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._out:
                chunks, self._out = self._out, []
                self._pending_events = 0
                try:
                    self.sock.sendall(b"".join(chunks))
                except OSError:
                    self._abort()
                    return
            if self._closing and not self._out:
                self._abort()
                return

    def _close_with_notice(self, notice: bytes = wire.DISCONNECT_NOTICE) -> None:
        """listener_run's exit path: disconnect notice, then close (queued events are dropped
        by flush_listener, but what we already wrote stays written)."""
        if self._closing or self._closed:
            return
        self.running = False
        self.switch.remove_listener(self)
        self._write(notice)
        self._closing = True
        self._wake.set()

    def _abort(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.running = False
        self.switch.remove_listener(self)
        try:
            self.sock.shutdown(2)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass
        self._wake.set()

    def _disconnect_notice(self) -> bytes:
        """mod_event_socket.c:send_disconnect; a listener controlling a session says which."""
        msg = wire.DISCONNECT_MESSAGE
        if self.sub.session is None:
            return wire.DISCONNECT_NOTICE
        head = (f"Content-Type: text/disconnect-notice\nControlled-Session-UUID: {self.sub.session}\n"
                f"Content-Disposition: disconnect\nContent-Length: {len(msg)}\n\n")
        return head.encode() + msg

    def _on_session_down(self, ev: SimEvent) -> None:
        # read_packet: when the controlled channel is down the listener closes, or with
        # "linger" first says so and keeps delivering until the linger time runs out.
        # (FreeSWITCH notices between two polls; the simulator waits for HANGUP_COMPLETE so
        # the client gets the whole hang-up record.)
        if self._session_down:
            return
        self._session_down = True
        if self.linger is None:
            self.switch.spawn(self._close_later)
            return
        notice = (f"Content-Type: text/disconnect-notice\nControlled-Session-UUID: {self.sub.session}\n"
                  f"Content-Disposition: linger\nChannel-Name: {ev.get('Channel-Name', '')}\n"
                  f"Linger-Time: {self.linger}\nContent-Length: 0\n\n")
        self._write(notice.encode("utf-8", "surrogateescape"))
        if self.linger >= 0:
            self.switch.spawn(self._close_later, float(self.linger))

    def _close_later(self, delay: float = 0.0) -> None:
        gevent.sleep(delay)
        self._close_with_notice(self._disconnect_notice())

    # ---------------------------------------------------------------- input

    def _recv(self, timeout: float | None) -> bool:
        try:
            if timeout is None:
                data = self.sock.recv(65536)
            else:
                with gevent.Timeout(timeout, False):
                    data = self.sock.recv(65536)
                    return self._got(data)
                return False
        except OSError:
            return False
        return self._got(data)

    def _got(self, data: bytes) -> bool:
        if not data:
            return False
        self._buf += data
        return True

    def read_packet(self, timeout: float | None = None) -> tuple[str, list[tuple[str, str]], str | None] | None:
        """mod_event_socket.c:read_packet: (command text, headers, body) or None at EOF."""
        deadline = None if timeout is None else gevent.get_hub().loop.now() + timeout
        while True:
            buf = self._buf
            skip = 0
            while skip < len(buf) and buf[skip] in (10, 13):   # leading blank lines ("bah")
                skip += 1
            if skip:
                del buf[:skip]
            m = _BLOCK_END.search(buf)
            end = m.end() if m else (MAX_PACKET if len(buf) >= MAX_PACKET else -1)
            if end >= 0:
                block = bytes(buf[:end]).decode("utf-8", "surrogateescape")
                lines = [x for x in re.split(r"[\r\n]+", block) if x]
                headers: list[tuple[str, str]] = []
                clen = 0
                for line in lines[1:]:
                    name, sep, value = line.partition(":")
                    if not sep or not name:
                        continue
                    value = value.lstrip(" ")
                    headers.append((name, value))
                    if name.lower() == "content-length":
                        clen = _atoi(value)
                while clen > 0 and len(buf) - end < clen:
                    if not self._recv(None):
                        return None
                    buf = self._buf
                body = None
                if clen > 0:
                    body = bytes(buf[end:end + clen]).decode("utf-8", "surrogateescape")
                    del buf[:end + clen]
                else:
                    del buf[:end]
                return block, headers, body
            remaining = None
            if deadline is not None:
                remaining = deadline - gevent.get_hub().loop.now()
                if remaining <= 0:
                    return None
            if not self._recv(remaining):
                return None

    # ---------------------------------------------------------------- main loop

    def run(self) -> None:
        self.switch.add_listener(self)
        writer = gevent.spawn(self._writer)
        try:
            self._write(wire.AUTH_REQUEST)
            first = True
            while self.running and not self._closed:
                pkt = self.read_packet(AUTH_TIMEOUT if first else None)
                first = False
                if pkt is None:
                    break
                block, headers, body = pkt
                reply = None
                self._begin_command()
                try:
                    reply = self.parse_command(block, headers, body)
                finally:
                    if reply is not None and not self._closed:
                        self._write(reply)
                    self._end_command()
            self._close_with_notice(self._disconnect_notice())
            writer.join(timeout=10)
        finally:
            if not writer.dead:
                writer.kill(block=False)
            self._abort()

    # ---------------------------------------------------------------- commands

    def parse_command(self, block: str, headers: list[tuple[str, str]],
                      body: str | None) -> bytes | None:
        """mod_event_socket.c:parse_command for an inbound listener: returns the bytes to write
        (command/reply or api/response) or None."""
        cmd = _first_line(block)
        low = cmd.lower()
        sw = self.switch

        if "unload" in block.lower() and "mod_event_socket" in block.lower():
            cmd, low = "api bgapi unload mod_event_socket", "api bgapi unload mod_event_socket"
        elif "reload" in block.lower() and "mod_event_socket" in block.lower():
            cmd, low = "api bgapi reload mod_event_socket", "api bgapi reload mod_event_socket"

        if low.startswith("exit") or low.startswith("..."):
            self.running = False
            return wire.command_reply("+OK bye")

        if not self.authed:
            if low.startswith("auth "):
                if cmd[5:] == sw.password:
                    self.authed = True
                    return wire.command_reply("+OK accepted")
                self.running = False
                return wire.command_reply("-ERR invalid")
            if low.startswith("userauth "):
                # the simulator has no directory, so switch_xml_locate_user always fails
                self.running = False
                return wire.command_reply("-ERR invalid")
            return wire.command_reply("-ERR command not found")

        if low.startswith("filter "):
            return wire.command_reply(self._filter(cmd[7:]))

        if self.sub.session is not None and low.startswith("resume"):
            return wire.command_reply("+OK")

        if self.sub.session is not None or low.startswith("myevents "):
            if self.sub.session is not None and low.startswith("getvar"):
                _, sep, var = cmd.partition(" ")
                val = ""
                if sep and sw.channel_getvar is not None:
                    val = sw.channel_getvar(self.sub.session, var) or ""
                return wire.command_reply(val) if val else wire.command_reply(
                    "-ERR command not found")
            if low.startswith("myevents"):
                return wire.command_reply(self._myevents(cmd))

        if low.startswith("divert_events"):
            if self.sub.session is None:
                return wire.command_reply("-ERR not controlling a session.")
            onoff = cmd[13:].lstrip(" ")
            if not onoff:
                return wire.command_reply("-ERR missing value.")
            return wire.command_reply(
                "+OK events diverted" if onoff.lower() == "on" else "+OK events not diverted")

        if low.startswith("sendmsg"):
            return wire.command_reply(self._sendmsg(cmd, headers, body))

        if low.startswith("api "):
            api_cmd = cmd[4:]
            name, sep, arg = api_cmd.partition(" ")
            out = sw.api_reply_body(name, arg if sep else None)
            return wire.api_response(out)

        if low.startswith("bgapi "):
            api_cmd = cmd[6:]
            name, sep, arg = api_cmd.partition(" ")
            job = next((v for k, v in headers if k.lower() == "job-uuid"), None)
            job_uuid = job[:36] if job else str(uuid.uuid4())
            reply = wire.command_reply_raw(
                f"Reply-Text: +OK Job-UUID: {job_uuid}\nJob-UUID: {job_uuid}\n\n")
            # write the reply before the job can fire anything
            self._write(reply)
            sw.run_bgapi(name, arg if sep else None, job_uuid, self.sub.session)
            return None

        if low.startswith("log"):
            level_s = cmd[3:]
            if level_s:
                level_s = level_s[1:]
            level = 7
            if level_s:
                level = int(level_s) if level_s.isdigit() and int(level_s) <= 7 else \
                    _LOG_LEVELS.get(level_s.lower(), -1)
            if level < 0:
                return wire.command_reply("-ERR invalid log level")
            self.logging = True   # no log/data is ever sent: the simulator has no log lines
            return wire.command_reply(f"+OK log level {level_s} [{level}]")

        if low.startswith("linger"):
            if self.sub.session is None:
                return wire.command_reply("-ERR not controlling a session")
            rest = cmd[6:]
            if rest.startswith(" ") and len(rest) > 1:
                self.linger = _atoi(rest[1:])
                return wire.command_reply(f"+OK will linger {self.linger} seconds")
            self.linger = -1
            return wire.command_reply("+OK will linger")

        if low.startswith("nolinger"):
            if self.sub.session is None:
                return wire.command_reply("-ERR not controlling a session")
            self.linger = None
            return wire.command_reply("+OK will not linger")

        if low.startswith("nolog"):
            if self.logging:
                self.logging = False
                return wire.command_reply("+OK no longer logging")
            return wire.command_reply("-ERR not loging")  # sic, parse_command

        if low.startswith("event"):
            return wire.command_reply(self._event(cmd))

        if low.startswith("nixevent"):
            return wire.command_reply(self._nixevent(cmd))

        if low.startswith("noevents"):
            sub = self.sub
            if sub.enabled:
                sub.enabled = False
                sub.names.clear()
                sub.all = False
                sub.subclasses.clear()
                return wire.command_reply("+OK no longer listening for events")
            return wire.command_reply("-ERR not listening for events")

        return wire.command_reply("-ERR command not found")

    def _event(self, cmd: str) -> str:
        sub = self.sub
        key_count = 0
        custom = False
        space = cmd.find(" ", 5)
        if space >= 0:
            for count, tok in enumerate(cmd[space + 1:].split(" ")):
                if count == 0 and tok.lower() in ("xml", "plain", "json"):
                    sub.fmt = tok.lower()
                    continue
                if custom:
                    sub.subclasses.add(tok)
                    continue
                name = name_event(tok)
                if name is None:
                    continue
                key_count += 1
                if name == "ALL":
                    sub.all = True
                    sub.names.update(n for n in _ALL_TYPES)
                else:
                    sub.names.add(name)
                if name == "CUSTOM":
                    custom = True
        if not key_count:
            return "-ERR no keywords supplied"
        sub.enabled = True
        return f"+OK event listener enabled {sub.fmt}"

    def _nixevent(self, cmd: str) -> str:
        sub = self.sub
        key_count = 0
        custom = False
        space = cmd.find(" ", 5)   # sic: FreeSWITCH starts looking at cmd + 5
        if space >= 0:
            for tok in cmd[space + 1:].split(" "):
                if custom:
                    sub.subclasses.discard(tok)
                    continue
                name = name_event(tok)
                if name is None:
                    continue
                key_count += 1
                if name == "CUSTOM":
                    custom = True
                elif name == "ALL":
                    sub.all = False
                    sub.names.clear()
                else:
                    if sub.all:
                        sub.all = False
                        sub.names.update(_ALL_TYPES)
                    sub.names.discard(name)
        if not key_count:
            return "-ERR no keywords supplied"
        sub.enabled = True
        return "+OK events nixed"

    def _filter(self, rest: str) -> str:
        sub = self.sub
        header_name = rest.lstrip(" ")
        header_name, sep, header_val = header_name.partition(" ")
        val: str | None = header_val if sep else None
        if sub.filters is None:
            sub.filters = []
        if header_name.lower() == "delete" and val is not None:
            header_name, sep, rest_val = val.partition(" ")
            dval: str | None = rest_val if sep else None
            if header_name.lower() == "all":
                sub.filters = []
            else:
                sub.filters = [
                    (k, v) for k, v in sub.filters
                    if not (k.lower() == header_name.lower() and (not dval or v == dval))
                ]
            return f"+OK filter deleted. [{header_name}][{dval or ''}]"
        if val is not None:
            if header_name.lower() == "add":
                header_name, sep, rest_val = val.partition(" ")
                val = rest_val if sep else None
            if val is not None:
                sub.filters.append((header_name, val))
            return f"+OK filter added. [{header_name}]=[{val if val is not None else '(null)'}]"
        return "-ERR invalid syntax"

    def _myevents(self, cmd: str) -> str:
        sub = self.sub
        if sub.myevents:
            return "-ERR aready enabled."   # sic, mod_event_socket.c:parse_command
        seen = cmd
        if sub.session is None:
            target, sep, _fmt = cmd[9:].partition(" ")
            # FreeSWITCH cuts the command at that space, so a format word after the uuid is
            # never seen (its own format branch tests the cut string: dead code).
            seen = cmd[:9] + target
            exists = bool(target) and (self.switch.session_exists is None
                                       or self.switch.session_exists(target))
            if exists:
                sub.session = target
            elif sep:
                return "-ERR invalid uuid"
            # unknown uuid and no format: FreeSWITCH goes on without a session, and then
            # passes every event that has a Unique-ID
        sub.names.update(MYEVENTS_NAMES)
        sub.myevents = True
        sub.enabled = True
        if "xml" in seen or "XML" in seen:
            sub.fmt = "xml"
        if "json" in seen or "JSON" in seen:
            sub.fmt = "json"
        return "+OK Events Enabled"

    def _sendmsg(self, cmd: str, headers: list[tuple[str, str]], body: str | None) -> str:
        target: str | None = cmd[7:].lstrip(" ") or None
        if not target:
            target = next((v for k, v in headers if k.lower() == "session-id"), None)
        if target and self.sub.session is not None and target == self.sub.session:
            target = None
        if not target and self.sub.session is not None:
            target = self.sub.session
        if not target:
            return "-ERR invalid session id []"   # switch_str_nil(NULL) is ""
        handler = self.switch.sendmsg_handler
        if handler is None:
            return f"-ERR invalid session id [{target}]"
        return handler(target, headers, body)




class EslServer:
    """Listens for inbound ESL clients on ``host:port`` (port 0 picks a free one)."""

    def __init__(self, switch: Switch, host: str = "127.0.0.1", port: int = 8021) -> None:
        self.switch = switch
        self._pool = Pool()
        self._server = StreamServer((host, port), self._handle, spawn=self._pool)
        self.connections: set[Connection] = set()

    def start(self) -> tuple[str, int]:
        self._server.start()
        return self.address

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.address[:2]
        return host, port

    def _handle(self, sock: Any, address: tuple[str, int]) -> None:
        conn = Connection(self, sock, address)
        self.connections.add(conn)
        try:
            conn.run()
        finally:
            self.connections.discard(conn)

    def stop(self) -> None:
        # mod_event_socket.c:kill_all_listeners says why before it closes.
        for conn in list(self.connections):
            conn._close_with_notice(
                b"Content-Type: text/disconnect-notice\nContent-Length: 31\n\n"
                b"The system is being shut down.\n")
        self._server.stop(timeout=1)
        self._pool.kill(block=True, timeout=1)
