"""One inbound ESL connection to one FreeSWITCH node, on top of ``greenswitch.InboundESL``.

Kept from greenswitch 0.0.19: the socket setup in ``InboundESL.connect`` (connect with a
timeout, wait for ``auth/request``, authenticate) and its command/reply matching: each
command appends an ``AsyncResult`` to ``_commands_sent`` and each ``command/reply`` or
``api/response`` pops the oldest (FreeSWITCH answers in command order).

Replaced, because of its gaps (``../shared/docs/esl-protocol.md``):

* the reader: ``esl_handlers.framing.FrameParser`` + ``esl_handlers.events.Event`` (values
  decoded after the split, bodies separated, json events, non-UTF-8 kept, 16 MiB cap); a
  framing error is logged and counted and the connection is closed (the node link then
  reconnects and reconciles), never a dead reader;
* event processing: events go to ``on_event`` on the reader greenlet, which must not block
  except on purpose (the dispatcher's back-pressure); there is no unbounded queue here;
* ``send`` has a timeout (``CommandTimeout``) and is serialised, so two greenlets cannot
  interleave bytes or reorder ``_commands_sent``; every pending command fails at once with
  ``NotConnected`` when the connection goes;
* the auth wait is bounded by ``connect_timeout_s``; a wrong password is ``AuthFailed``;
* a reply nobody asked for is logged, counted and dropped (greenswitch: IndexError);
* the password is never logged: commands are logged by their first word only.

BACKGROUND_JOB (MES ``api_exec``): the bgapi reply carries the Job-UUID, and the job's
result is a BACKGROUND_JOB event fired with ``switch_event_fire``; MES ``event_handler``
hands every event to EVERY listener subscribed to its name (and passing its filters) — there
is no per-connection ownership. A connection that sent a bgapi but is not subscribed to
BACKGROUND_JOB never sees the result, and every subscribed connection sees everyone's jobs.
So: a connection that runs bgapi subscribes to BACKGROUND_JOB, registers the Job-UUID from
the reply (in the reader, before it reads the next frame, so the event cannot overtake the
registration), resolves its own jobs and ignores the others' silently.
"""

from __future__ import annotations

import logging
import re
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import gevent
import greenswitch
from gevent.event import AsyncResult
from gevent.event import Event as GEvent
from gevent.lock import Semaphore
from greenswitch.esl import NotConnectedError

from esl_handlers import commands
from esl_handlers.config import EslConfig, NodeConfig
from esl_handlers.errors import (
    AuthFailed,
    CommandTimeout,
    EslError,
    FrameError,
    NotConnected,
    UnsupportedEventFormat,
)
from esl_handlers.events import Event
from esl_handlers.framing import Frame, FrameParser
from metrics.esl import EslMetrics, command_label

log = logging.getLogger(__name__)

RECV_BYTES = 256 * 1024
# Control bytes a command may not hold (LF only separates a sendmsg's header lines).
_UNSAFE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")
#: A bgapi job (an originate, typically) may take far longer than a command's reply.
DEFAULT_JOB_TIMEOUT_S = 120.0
# `exit` on close is a courtesy; never wait long for it.
_EXIT_TIMEOUT_S = 1.0


class Reply:
    """A ``command/reply`` or ``api/response`` frame."""

    __slots__ = ("frame",)

    def __init__(self, frame: Frame) -> None:
        self.frame = frame

    @property
    def content_type(self) -> str:
        return self.frame.content_type

    @property
    def reply_text(self) -> str:
        return self.frame.get("Reply-Text") or ""

    @property
    def body(self) -> str:
        return self.frame.body.decode("utf-8", "replace")

    @property
    def text(self) -> str:
        """What the command answered: the api body, or the Reply-Text of a command/reply."""
        if self.frame.content_type == "api/response":
            return self.body
        return self.reply_text

    def get(self, name: str) -> str | None:
        return self.frame.get(name)

    def __repr__(self) -> str:
        return f"<Reply {self.content_type} {self.text[:60]!r}>"


class _Pending(AsyncResult):
    """greenswitch's AsyncResult in ``_commands_sent``, plus what the reader needs to know."""

    def __init__(self, label: str, on_reply: Callable[[Reply], None] | None = None) -> None:
        super().__init__()
        self.label = label
        self.on_reply = on_reply
        self.abandoned = False
        self.sent_at = time.monotonic()


class BackgroundJob:
    """The result of a ``bgapi``: ``get(timeout)`` returns the BACKGROUND_JOB body."""

    def __init__(self, command: str, owner: EslConnection) -> None:
        self.command = command
        self.job_uuid: str | None = None
        self.event: Event | None = None
        self._owner = owner
        self._result: AsyncResult = AsyncResult()

    def _resolve(self, event: Event) -> None:
        self.event = event
        self._result.set(event)

    def _fail(self, exc: BaseException) -> None:
        if not self._result.ready():
            self._result.set_exception(exc)

    def ready(self) -> bool:
        return self._result.ready()

    def wait_event(self, timeout: float | None = None) -> Event:
        timeout = DEFAULT_JOB_TIMEOUT_S if timeout is None else timeout
        try:
            ev: Event = self._result.get(timeout=timeout)
            return ev
        except gevent.Timeout:
            self._owner._forget_job(self)
            raise CommandTimeout(
                f"node {self._owner.node.name}: no BACKGROUND_JOB for job {self.job_uuid} "
                f"({command_label(self.command)}) within {timeout}s") from None

    def get(self, timeout: float | None = None) -> str:
        """The job's output (e.g. ``+OK <uuid>\\n`` or ``-ERR USER_BUSY\\n`` for originate)."""
        return self.wait_event(timeout).body

    def __repr__(self) -> str:
        return f"<BackgroundJob {command_label(self.command)} {self.job_uuid}>"


class EslConnection(greenswitch.InboundESL):
    """An authenticated inbound ESL connection with bounded waits; see the module doc.

    Single use: once closed it stays closed (``closed`` is set, ``close_reason`` says why);
    ``NodeLink`` builds a new one for each reconnect.
    """

    def __init__(self, node: NodeConfig, esl: EslConfig, *,
                 on_event: Callable[[Event], None] | None = None,
                 metrics: EslMetrics | None = None) -> None:
        super().__init__(node.host, node.port, node.password, timeout=esl.connect_timeout_s)
        # greenswitch's reply matching list, typed here: replies pop the oldest entry.
        self._commands_sent: list[_Pending] = []
        self.node = node
        self.esl = esl
        self.on_event = on_event
        self.metrics = metrics
        self.core_uuid: str | None = None
        self.last_frame_at = time.monotonic()
        self.close_reason: str | None = None
        self.framing_error: str | None = None
        self.rejected = False
        #: Set while the reader is inside ``on_event``; the node link's watchdog does not
        #: count that time as the switch's silence. FreeSWITCH keeps queueing our events
        #: meanwhile (and drops this listener itself if its queue overflows, MES
        #: ``event_handler``); resetting the socket here would throw that backlog away.
        self.delivering_since: float | None = None
        self.closed = GEvent()
        self._parser = FrameParser()
        self._send_lock = Semaphore()
        self._jobs: dict[str, BackgroundJob] = {}
        self._reader: gevent.Greenlet | None = None
        self._closing = False

    def __repr__(self) -> str:
        # greenswitch keeps the password in self.password: never let it reach a repr.
        return (f"<EslConnection node={self.node.name} {self.node.host}:{self.node.port} "
                f"connected={self.connected}>")

    @property
    def _ctx(self) -> dict[str, Any]:
        return {"node": self.node.name}

    # --- connect / auth ------------------------------------------------------------------
    def connect(self) -> None:
        """Connect and authenticate within ``connect_timeout_s``.

        Raises ``AuthFailed`` (wrong password, ACL refusal) or ``NotConnected``.
        """
        limit = self.esl.connect_timeout_s
        timer = gevent.Timeout(limit)
        timer.start()
        try:
            super().connect()     # greenswitch: socket, reader start, auth/request, auth
        except gevent.Timeout as exc:
            if exc is not timer:
                raise
            self._close(f"no auth/request within {limit}s")
            raise NotConnected(f"node {self.node.name}: {self.node.host}:{self.node.port} "
                               f"did not complete the ESL handshake within {limit}s") from None
        except (NotConnectedError, OSError) as exc:
            self._close(f"connect failed: {exc}")
            if self.rejected:
                raise AuthFailed(f"node {self.node.name}: FreeSWITCH refused this client by "
                                 "ACL (text/rude-rejection); allow our address in "
                                 "event_socket.conf.xml") from None
            raise NotConnected(f"node {self.node.name}: cannot connect to "
                               f"{self.node.host}:{self.node.port}: {exc}") from None
        except (AuthFailed, NotConnected, CommandTimeout):
            self._close("handshake failed")
            raise
        finally:
            timer.close()
        log.info("ESL connected", extra=self._ctx)

    def start_event_handlers(self) -> None:
        # Called by greenswitch's connect(): our reader instead of its two greenlets.
        self.last_frame_at = time.monotonic()
        self._reader = gevent.spawn(self._read_loop)

    def authenticate(self) -> None:
        # greenswitch's authenticate would raise ValueError and wait forever; the command
        # label is "auth": the password itself is never logged (see send()).
        reply = self.send(f"auth {self.password}")
        if reply.reply_text != "+OK accepted":
            raise AuthFailed(f"node {self.node.name}: FreeSWITCH refused the ESL password "
                             f"(reply {reply.reply_text!r}); check nodes[].password")

    # --- commands ------------------------------------------------------------------------
    def send(self, data: str, timeout: float | None = None, *,
             on_reply: Callable[[Reply], None] | None = None) -> Reply:
        """Send one command and wait for its reply (``CommandTimeout`` after ``timeout``).

        ``data`` is a whole command as the builders in ``esl_handlers.commands`` make it:
        one line, or a command line plus ``Name: value`` lines (sendmsg).
        """
        label = command_label(data)
        if "\n\n" in data or _UNSAFE.search(data) or not data.strip():
            # Defence in depth behind the builders; never echo data (it may be `auth <pw>`).
            raise ValueError(f"refusing to send a {label} command holding an empty line or "
                             "a control byte other than the LF between header lines")
        if not self.connected:
            raise NotConnected(f"node {self.node.name}: not connected ({label} not sent)")
        timeout = self.esl.command_timeout_s if timeout is None else timeout
        pending = _Pending(label, on_reply)
        raw = (data + "\n\n").encode("utf-8")
        with self._send_lock:
            if not self.connected:
                raise NotConnected(f"node {self.node.name}: not connected ({label} not sent)")
            self._commands_sent.append(pending)
            try:
                with gevent.Timeout(timeout):
                    self.sock.sendall(raw)
            except gevent.Timeout:
                # Part of the command may be on the wire: the stream is no longer usable.
                self._close(f"sending {label} timed out")
                self._count_error(label, "timeout")
                raise CommandTimeout(f"node {self.node.name}: could not send {label} within "
                                     f"{timeout}s (FreeSWITCH not reading)") from None
            except OSError as exc:
                self._close(f"send failed: {exc}")
                self._count_error(label, "disconnected")
                raise NotConnected(f"node {self.node.name}: connection lost sending "
                                   f"{label}: {exc}") from None
        try:
            reply: Reply = pending.get(timeout=max(0.0, timeout - (time.monotonic()
                                                                     - pending.sent_at)))
        except gevent.Timeout:
            # Left in _commands_sent so later replies still pair with the right command.
            pending.abandoned = True
            self._count_error(label, "timeout")
            raise CommandTimeout(f"node {self.node.name}: no reply to {label} within "
                                 f"{timeout}s") from None
        except NotConnected:
            self._count_error(label, "disconnected")
            raise
        if self.metrics is not None:
            self.metrics.command_seconds.labels(label).observe(time.monotonic()
                                                               - pending.sent_at)
        return reply

    def _count_error(self, label: str, reason: str) -> None:
        if self.metrics is not None:
            self.metrics.command_errors_total.labels(label, reason).inc()

    def api(self, cmd: str, timeout: float | None = None) -> str:
        """``api <cmd>``: the response body (``-ERR ...`` texts are returned, not raised)."""
        return self.send(commands.api(cmd), timeout).text

    def bgapi(self, cmd: str, timeout: float | None = None) -> BackgroundJob:
        """``bgapi <cmd>``; the connection must be subscribed to BACKGROUND_JOB."""
        job = BackgroundJob(cmd, self)

        def register(reply: Reply) -> None:
            # Runs in the reader, before the next frame is read (see the module doc).
            # MES parse_command answers bgapi with a Job-UUID header beside the Reply-Text
            # (esl_commands.raw), so the Reply-Text is not parsed for it.
            uuid = reply.get("Job-UUID")
            if reply.reply_text.startswith("+OK") and uuid:
                job.job_uuid = uuid
                self._jobs[uuid] = job

        reply = self.send(commands.bgapi(cmd), timeout, on_reply=register)
        if job.job_uuid is None:
            raise EslError(f"node {self.node.name}: bgapi {command_label(cmd)} refused: "
                           f"{reply.text!r}")
        return job

    def _forget_job(self, job: BackgroundJob) -> None:
        if job.job_uuid:
            self._jobs.pop(job.job_uuid, None)

    def sendmsg(self, uuid: str, headers: Mapping[str, str],
                timeout: float | None = None) -> str:
        """``sendmsg <uuid>`` with headers; returns the Reply-Text (``+OK`` = queued)."""
        return self.send(commands.sendmsg(uuid, headers), timeout).reply_text

    def subscribe(self, events: Iterable[str],
                  filters: Iterable[tuple[str, str]] = ()) -> None:
        """``event plain <names>`` then one ``filter`` per pair; ``EslError`` if refused."""
        cmd = commands.event_plain(events)
        reply = self.send(cmd)
        if not reply.reply_text.startswith("+OK"):
            raise EslError(f"node {self.node.name}: subscription refused: {reply.reply_text!r}")
        for header, value in filters:
            reply = self.send(commands.filter_add(header, value))
            if not reply.reply_text.startswith("+OK"):
                raise EslError(f"node {self.node.name}: filter {header} refused: "
                               f"{reply.reply_text!r}")

    def probe_core_uuid(self, timeout: float | None = None) -> str | None:
        """Learn the node's Core-UUID from a ``bgapi status`` job's event (needs the
        BACKGROUND_JOB subscription; works on any FreeSWITCH and on the simulator)."""
        timeout = self.esl.command_timeout_s if timeout is None else timeout
        event = self.bgapi("status", timeout).wait_event(timeout)
        core = event.core_uuid
        if core:
            self.core_uuid = core
        return core

    # --- the reader ----------------------------------------------------------------------
    def _read_loop(self) -> None:
        reason = "connection closed by FreeSWITCH"
        sock = self.sock
        parser = self._parser
        try:
            while True:
                data = sock.recv(RECV_BYTES)
                if not data:
                    break
                try:
                    frames = parser.feed(data)
                    error = None
                except FrameError as exc:
                    # Frames completed before the bad bytes are sound: handle them first.
                    frames = getattr(exc, "frames", [])
                    error = exc
                if frames:
                    # Once per read: a delivery that blocks refreshes it itself when done.
                    self.last_frame_at = time.monotonic()
                for frame in frames:
                    if self.closed.is_set():
                        break
                    self._handle_frame(frame)
                if error is not None:
                    self._framing_error("ESL framing error", error)
                    reason = "framing error"
                    break
                if self.closed.is_set():
                    break
        except gevent.GreenletExit:
            reason = self.close_reason or "closed"
        except OSError as exc:
            reason = self.close_reason or f"socket error: {exc}"
        finally:
            self._close(reason, from_reader=True)

    def _handle_frame(self, frame: Frame) -> None:
        ct = frame.content_type
        try:
            if ct in ("command/reply", "api/response"):
                self._on_reply(frame)
            elif ct.startswith("text/event-"):
                self._on_event_frame(frame)
            elif ct == "auth/request":
                self._auth_request_event.set()
            elif ct == "text/disconnect-notice":
                self._on_disconnect_notice(frame)
            elif ct in ("text/rude-rejection", "rude/rejection"):
                # ACL refusal (MES listener_run); the socket closes right after.
                self.rejected = True
                self.connected = False
                log.error("FreeSWITCH refused this client by ACL", extra=self._ctx)
                self._auth_request_event.set()
            elif ct == "log/data":
                pass
            else:
                log.warning("dropped a frame of unexpected Content-Type %r", ct[:60],
                            extra=self._ctx)
        except gevent.GreenletExit:
            raise
        except Exception:
            # A bug in one frame's handling must not kill the reader (greenswitch's did).
            log.exception("failed to handle a %r frame; dropped", ct[:60], extra=self._ctx)

    def _on_disconnect_notice(self, frame: Frame) -> None:
        """FreeSWITCH is closing this socket; its body says why.

        After ``exit`` (or a refused ``auth``) the body is the goodbye of MES ``listener_run``
        (``Disconnected, goodbye.`` ...). MES ``kill_listener`` sends its own reason instead,
        e.g. ``killed listener because of lost events`` when this listener's event queue
        overflowed (a reader too slow for the node's event rate). Either way no reply can
        follow: stop sending at once and keep the reason for the logs and the link.
        Inbound sockets never linger (``Content-Disposition: linger`` is for outbound
        sessions), so the socket's end follows; the reader then closes us.
        """
        body = frame.body.decode("utf-8", "replace").strip()
        first = body.splitlines()[0] if body else ""
        self.connected = False
        if first.startswith("Disconnected, goodbye."):
            log.info("FreeSWITCH said goodbye (disconnect notice)", extra=self._ctx)
            return
        self.close_reason = self.close_reason or f"disconnected by FreeSWITCH: {first[:120]}"
        log.warning("FreeSWITCH disconnected this client: %s", first[:120] or "(no reason)",
                    extra={**self._ctx, "expected": self._closing})

    def _on_reply(self, frame: Frame) -> None:
        if not self._commands_sent:
            log.warning("dropped a %s nobody asked for", frame.content_type,
                        extra={**self._ctx, "reply": (frame.get("Reply-Text") or "")[:80]})
            if self.metrics is not None:
                self.metrics.unsolicited_replies_total.labels(self.node.name).inc()
            return
        pending: _Pending = self._commands_sent.pop(0)
        reply = Reply(frame)
        if pending.on_reply is not None:
            pending.on_reply(reply)
        pending.set(reply)
        if pending.abandoned:
            log.info("late reply to %s after its timeout; dropped", pending.label,
                     extra=self._ctx)
            return
        # FreeSWITCH writes a command's reply before the events it causes (captures README);
        # let the waiting caller run now, so it also sees its reply before we hand those
        # events (already read, in the same chunk) to on_event.
        gevent.sleep(0)

    def _on_event_frame(self, frame: Frame) -> None:
        try:
            event = Event.from_frame(frame)
        except UnsupportedEventFormat as exc:
            log.warning("dropped an event: %s", exc, extra=self._ctx)
            return
        except FrameError as exc:
            # A well-framed event whose body is not an event (broken json): the stream can no
            # longer be trusted, and dropping it could lose a call's lifecycle event, so reset
            # like any framing error; the owner reconciles live calls on reconnect.
            self._framing_error("ESL framing error (event body unreadable)", exc)
            self.abort("framing error")
            return
        event.received_at = self.last_frame_at   # stamped when its bytes were read
        if self.core_uuid is None:
            self.core_uuid = event.core_uuid
        if self._jobs and event.name == "BACKGROUND_JOB":
            job = self._jobs.pop(event.job_uuid or "", None)
            if job is not None:
                job._resolve(event)
        if self.on_event is not None:
            # on_event may block on purpose (the dispatcher's back-pressure): meanwhile we read
            # nothing, so silence is ours, not the switch's (see ``delivering_since``).
            self.delivering_since = time.monotonic()
            try:
                self.on_event(event)
            except gevent.GreenletExit:
                raise
            except Exception:
                log.exception("on_event failed", extra={**self._ctx,
                                                        "call_uuid": event.unique_id})
            finally:
                self.delivering_since = None
                self.last_frame_at = time.monotonic()

    def _framing_error(self, what: str, exc: FrameError) -> None:
        self.framing_error = str(exc)
        log.error("%s, resetting the connection: %s", what, exc, extra=self._ctx)
        if self.metrics is not None:
            self.metrics.framing_errors_total.labels(self.node.name).inc()

    # --- closing -------------------------------------------------------------------------
    def _close(self, reason: str, *, from_reader: bool = False) -> None:
        """Tear down once: socket closed, every pending command and job failed at once."""
        if self.closed.is_set():
            return
        self.close_reason = self.close_reason or reason
        self.connected = False
        sock = getattr(self, "sock", None)
        if sock is not None:
            # greenswitch made a file of the socket: the descriptor stays open until both
            # are closed, so shut the connection down first (the peer sees it at once).
            for step in (lambda: sock.shutdown(socket.SHUT_RDWR), sock.close,
                         getattr(self, "sock_file", None) and self.sock_file.close):
                if step:
                    try:
                        step()
                    except OSError:
                        pass
        err = f"node {self.node.name}: connection lost ({self.close_reason})"
        pending: list[_Pending] = self._commands_sent
        self._commands_sent = []
        for p in pending:
            if not p.ready():
                p.set_exception(NotConnected(err))
        jobs, self._jobs = self._jobs, {}
        for job in jobs.values():
            job._fail(NotConnected(err))
        self._auth_request_event.set()     # a connect() still waiting for auth/request
        self.closed.set()
        level = logging.INFO if self._closing else logging.WARNING
        log.log(level, "ESL connection closed: %s", self.close_reason,
                extra={**self._ctx, "pending_failed": len(pending), "jobs_failed": len(jobs)})
        reader = self._reader
        if (not from_reader and reader is not None and not reader.dead
                and gevent.getcurrent() is not reader):
            reader.kill(block=False)

    def close(self) -> None:
        """Say ``exit`` if we can (briefly), then close; safe to call more than once."""
        if self.closed.is_set():
            return
        self._closing = True
        if self.connected:
            try:
                self.send("exit", timeout=min(_EXIT_TIMEOUT_S, self.esl.command_timeout_s))
            except EslError:
                pass
        self._close("closed by cc-core")

    def abort(self, reason: str, *, expected: bool = False) -> None:
        """Close at once without ``exit`` (a dead or misbehaving peer, or a hand-over)."""
        if expected:
            self._closing = True
        self._close(reason)

    def stop(self) -> None:
        # greenswitch's stop() waits without a timeout; ours does not.
        self.close()
