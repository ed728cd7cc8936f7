"""A scripted raw ESL peer for tests: it plays FreeSWITCH's side of inbound ESL on a socket.

It speaks just enough of the protocol (texts as in ``tests/data/esl-captures`` and MES
``parse_command``) to authenticate a client, answer its commands, broadcast BACKGROUND_JOB
and HEARTBEAT events to subscribers, and — what a well-behaved simulator cannot do — push
arbitrary bytes (bad frames, replies nobody asked for), go silent, hold replies, die and come
back on the same port with a new Core-UUID. Everything runs on gevent, on 127.0.0.1:0.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from urllib.parse import quote

import gevent
from gevent.server import StreamServer

from tests.conftest import wait_for

# switch_url_encode leaves these unencoded (esl-protocol.md, "Plain event encoding").
_URL_SAFE = ",/-._~'()*!$"

Responder = Callable[[str, "PeerConn"], bytes | None]

DISCONNECT_NOTICE = (b"Content-Type: text/disconnect-notice\nContent-Length: 67\n\n"
                     b"Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n")
STATUS_BODY = ("UP 0 years, 0 days, 0 hours, 2 minutes, 12 seconds, 584 milliseconds, 529 "
               "microseconds\nFreeSWITCH (Version 1.10.12-release git a88d069 2024-08-02 "
               "21:02:27Z 64bit) is ready\n")


def gwait(predicate: Callable[[], object], timeout: float = 5.0, interval: float = 0.005,
          message: str = "condition") -> object:
    return wait_for(predicate, timeout=timeout, interval=interval, message=message)


def reply(text: str, extra: str = "") -> bytes:
    return f"Content-Type: command/reply\nReply-Text: {text}\n{extra}\n".encode()


def api_response(body: str | bytes) -> bytes:
    data = body.encode() if isinstance(body, str) else body
    return b"Content-Type: api/response\nContent-Length: %d\n\n" % len(data) + data


def plain_event(name: str, core_uuid: str, headers: dict[str, str] | None = None,
                body: str = "", seq: int = 1) -> bytes:
    """A ``text/event-plain`` frame; values URL-encoded as switch_url_encode does."""
    pairs = [("Event-Name", name), ("Core-UUID", core_uuid),
             ("FreeSWITCH-Hostname", "peer"), ("FreeSWITCH-Switchname", "peer"),
             ("Event-Date-Timestamp", str(int(time.time() * 1e6))),
             ("Event-Sequence", str(seq))]
    pairs += list((headers or {}).items())
    text = "".join(f"{k}: {quote(v, safe=_URL_SAFE)}\n" for k, v in pairs)
    if body:
        raw_body = body.encode()
        data = text.encode() + b"Content-Length: %d\n\n" % len(raw_body) + raw_body
    else:
        data = text.encode() + b"\n"
    return event_frame(data)


def event_frame(data: bytes, content_type: str = "text/event-plain") -> bytes:
    """Wrap an event body as MES writes it: Content-Length first, then Content-Type."""
    return b"Content-Length: %d\nContent-Type: %s\n\n" % (len(data), content_type.encode()) + data


def passes_filters(filters: list[tuple[str, str]], headers: dict[str, str]) -> bool:
    """MES ``event_handler`` (mod_event_socket.c): with no filter every event passes; once
    any filter is set an event passes only if SOME positive filter matches it (an OR, whatever
    the headers: ``Event-Name X`` and ``Unique-ID Y`` filters add up) and no ``-value`` filter
    matches it. A filter whose header the event lacks is skipped; values compare
    case-insensitively (``strcasecmp``); header names too (``switch_event_get_header``).
    ``/regex/`` values are not modelled here."""
    if not filters:
        return True
    send = False
    for name, value in filters:
        have = headers.get(name.lower())
        if have is None:
            continue
        positive, i = True, 0
        while i < len(value) and value[i] in "+- ":
            if value[i] != " ":
                positive = value[i] == "+"
            i += 1
        stripped = value[i:]
        if send and positive:
            continue
        if have.lower() == stripped.lower():
            if not positive:
                return False
            send = True
    return send


class PeerConn:
    def __init__(self, peer: ScriptedPeer, sock) -> None:
        self.peer = peer
        self.sock = sock
        self.commands: list[str] = []
        self.subscribed: set[str] = set()
        self.filters: list[tuple[str, str]] = []
        self.authed = False
        self.closed = False

    def send(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            self.sock.sendall(data)
        except OSError:
            self.closed = True

    def send_event(self, name: str, headers: dict[str, str] | None = None,
                   body: str = "") -> None:
        self.peer.seq += 1
        self.send(plain_event(name, self.peer.core_uuid, headers, body, self.peer.seq))

    def close(self) -> None:
        self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass


class ScriptedPeer:
    """``ScriptedPeer(password=...).start()``; ``port``; ``responders[prefix] = fn``."""

    def __init__(self, password: str = "ClueCon", heartbeat_interval: float | None = None,
                 job_delay: float = 0.0) -> None:
        self.password = password
        self.core_uuid = str(uuid.uuid4())
        self.heartbeat_interval = heartbeat_interval
        self.job_delay = job_delay
        self.responders: dict[str, Responder] = {}
        self.conns: list[PeerConn] = []
        self.seq = 0
        self.silent = False          # stop sending anything at all (watchdog tests)
        self.heartbeats_sent = 0     # HEARTBEATs broadcast so far (tests wait on it)
        self.hold_replies = False    # read commands, answer none (timeout tests)
        self.port = 0
        self._server: StreamServer | None = None
        self._hb: gevent.Greenlet | None = None

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> ScriptedPeer:
        self._server = StreamServer(("127.0.0.1", self.port), self._handle)
        self._server.start()
        self.port = self._server.server_port
        if self.heartbeat_interval:
            self._hb = gevent.spawn(self._heartbeats)
        return self

    def stop(self) -> None:
        """Die: close the listener and every connection (no disconnect notice)."""
        if self._hb is not None:
            self._hb.kill()
            self._hb = None
        if self._server is not None:
            self._server.close()
            self._server = None
        for conn in self.conns:
            conn.close()

    def restart(self, new_core: bool = True) -> None:
        """Come back on the same port, as a restarted FreeSWITCH (new Core-UUID)."""
        self.stop()
        if new_core:
            self.core_uuid = str(uuid.uuid4())
        self.start()

    def __enter__(self) -> ScriptedPeer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- inspection / scripting ------------------------------------------------------------
    @property
    def commands(self) -> list[str]:
        return [c for conn in self.conns for c in conn.commands]

    def live(self) -> list[PeerConn]:
        return [c for c in self.conns if not c.closed and c.authed]

    def latest(self) -> PeerConn:
        gwait(self.live, message="a live authenticated connection")
        return self.live()[-1]

    def push(self, data: bytes, conn: PeerConn | None = None) -> None:
        (conn or self.latest()).send(data)

    def broadcast_event(self, name: str, headers: dict[str, str] | None = None,
                        body: str = "") -> None:
        """As MES event_handler: to every listener subscribed to ``name`` whose filters
        let it through (see ``passes_filters``)."""
        seen = {"event-name": name, "core-uuid": self.core_uuid}
        seen.update((k.lower(), v) for k, v in (headers or {}).items())
        for conn in self.live():
            if name in conn.subscribed and passes_filters(conn.filters, seen):
                conn.send_event(name, headers, body)

    # --- the protocol ----------------------------------------------------------------------
    def _heartbeats(self) -> None:
        while True:
            gevent.sleep(self.heartbeat_interval or 1.0)
            if not self.silent:
                self.broadcast_event("HEARTBEAT", {"Event-Info": "System Ready"})
                self.heartbeats_sent += 1

    def _handle(self, sock, _addr) -> None:
        conn = PeerConn(self, sock)
        self.conns.append(conn)
        conn.send(b"Content-Type: auth/request\n\n")
        buf = b""
        try:
            while not conn.closed:
                data = sock.recv(65536)
                if not data:
                    break
                buf += data
                while b"\n\n" in buf:
                    raw, buf = buf.split(b"\n\n", 1)
                    self._command(conn, raw.decode("utf-8", "replace"))
        except OSError:
            pass
        finally:
            conn.close()

    def _command(self, conn: PeerConn, cmd: str) -> None:
        conn.commands.append(cmd)
        if self.silent or self.hold_replies:
            return
        for prefix, fn in self.responders.items():
            if cmd.startswith(prefix):
                out = fn(cmd, conn)
                if out:
                    conn.send(out)
                return
        first = cmd.split("\n", 1)[0]
        if not conn.authed:
            if first.startswith("auth "):
                if first[5:] == self.password:
                    conn.authed = True
                    conn.send(reply("+OK accepted"))
                else:
                    conn.send(reply("-ERR invalid"))
                    conn.send(DISCONNECT_NOTICE)
                    conn.close()
            else:
                conn.send(reply("-ERR command not found"))
            return
        if first == "exit":
            conn.send(reply("+OK bye"))
            conn.send(DISCONNECT_NOTICE)
            conn.close()
        elif first.startswith("event plain "):
            names = [w.upper() for w in first.split()[2:]]
            conn.subscribed.update(names)
            conn.send(reply("+OK event listener enabled plain"))
        elif first.startswith("filter "):
            _, header, value = first.split(" ", 2)
            conn.filters.append((header, value))
            conn.send(reply(f"+OK filter added. [{header}]=[{value}]"))
        elif first.startswith("bgapi "):
            job = str(uuid.uuid4())
            conn.send(reply(f"+OK Job-UUID: {job}", f"Job-UUID: {job}\n"))
            api_cmd, _, arg = first[6:].partition(" ")
            gevent.spawn_later(self.job_delay, self._finish_job, job, api_cmd, arg)
        elif first.startswith("api "):
            conn.send(api_response(self._api(first[4:])))
        elif first.startswith("sendmsg "):
            conn.send(reply("+OK"))
        else:
            conn.send(reply("-ERR command not found"))

    def _api(self, cmd: str) -> str:
        if cmd == "status":
            return STATUS_BODY
        if cmd == "show channels as json":
            return '{"row_count": 0}\n'
        return f"-ERR {cmd.split()[0]} Command not found!\n"

    def _finish_job(self, job: str, api_cmd: str, arg: str) -> None:
        headers = {"Job-UUID": job, "Job-Command": api_cmd}
        if arg:
            headers["Job-Command-Arg"] = arg
        self.broadcast_event("BACKGROUND_JOB", headers, self._api(f"{api_cmd} {arg}".strip()))
