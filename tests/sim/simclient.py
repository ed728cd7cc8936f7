"""A small raw ESL client for the simulator tests (gevent sockets, the project's parser).

It reads every frame in a background greenlet, keeps events in delivery order, and hands
command replies back in command order, as a real inbound client sees them.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any

import gevent
import gevent.event
import gevent.queue
from gevent import socket

from esl_handlers.events import Event
from esl_handlers.framing import Frame, FrameParser


@contextlib.contextmanager
def running_sim(*, time_scale: float = 10.0, max_sessions: int = 1000,
                heartbeat_interval: float = 0.0,
                db_lag_ms: float | None = None,
                rtp: Any = None) -> Iterator[tuple[str, int]]:
    """An in-process Switch with the channel engine, served over TCP on a free port
    (``rtp``: the far ends' audio, an ``fssim.rtpstats.RtpQuality``; default: clean)."""
    from fssim import engine
    from fssim.server import EslServer
    from fssim.switch import Switch

    lag = {} if db_lag_ms is None else {"db_lag_ms": db_lag_ms}
    switch = Switch(hostname="sim", time_scale=time_scale, max_sessions=max_sessions,
                    heartbeat_interval=heartbeat_interval, **lag)
    eng = engine.install(switch)
    if rtp is not None:
        eng.rtp_quality = rtp
    switch.start()
    server = EslServer(switch, "127.0.0.1", 0)
    host, port = server.start()
    try:
        yield host, port
    finally:
        server.stop()
        switch.stop()


class SimClient:
    def __init__(self, host: str, port: int, password: str = "ClueCon",
                 subscribe: str = "plain ALL", timeout: float = 10.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.timeout = timeout
        self.parser = FrameParser()
        self.events: list[Event] = []
        self.frames: list[Frame] = []
        self.received = bytearray()  # every byte read, for readers other than the product's
        self.replies: gevent.queue.Queue[Frame] = gevent.queue.Queue()
        self.changed = gevent.event.Event()
        self.closed = False
        self.reader = gevent.spawn(self._read)
        reply = self.send(f"auth {password}")
        assert reply.get("Reply-Text") == "+OK accepted", reply
        if subscribe:
            reply = self.send(f"event {subscribe}")
            assert (reply.get("Reply-Text") or "").startswith("+OK"), reply

    def __enter__(self) -> SimClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self.closed = True
        with contextlib.suppress(OSError):
            self.sock.close()
        self.reader.kill(block=False)

    def _read(self) -> None:
        while not self.closed:
            try:
                data = self.sock.recv(65536)
            except OSError:
                break
            if not data:
                break
            self.received += data
            for frame in self.parser.feed(data):
                if frame.is_event:
                    self.events.append(Event.from_frame(frame))
                elif frame.content_type in ("command/reply", "api/response"):
                    self.replies.put(frame)
                self.frames.append(frame)
            self.changed.set()
        self.closed = True
        self.changed.set()

    def send(self, command: str) -> Frame:
        self.sock.sendall(command.rstrip("\n").encode() + b"\n\n")
        return self.replies.get(timeout=self.timeout)

    def api(self, command: str) -> str:
        frame = self.send(f"api {command}")
        return frame.body.decode()

    def bgapi(self, command: str) -> str:
        """Run ``command`` as bgapi and return its BACKGROUND_JOB body."""
        frame = self.send(f"bgapi {command}")
        job = frame.get("Job-UUID") or ""
        found = self.wait(lambda: any(e.name == "BACKGROUND_JOB" and e.job_uuid == job
                                      for e in self.events), self.timeout)
        assert found, f"no BACKGROUND_JOB for {command!r}"
        return next(e.body for e in self.events
                    if e.name == "BACKGROUND_JOB" and e.job_uuid == job)

    def wait(self, predicate: Callable[[], object], timeout: float) -> bool:
        """Wait (cooperatively, woken by each received chunk) until ``predicate()``."""
        deadline = time.monotonic() + timeout
        while True:
            if predicate():
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.closed:
                return bool(predicate())
            self.changed.clear()
            self.changed.wait(min(remaining, 0.5))

    def leg_events(self, uid: str) -> list[Event]:
        return [e for e in self.events if e.unique_id == uid]

    def wait_event(self, uid: str | None, name: str, timeout: float | None = None,
                   **headers: str) -> Event:
        def find() -> Event | None:
            for ev in self.events:
                if ev.name == name and (uid is None or ev.unique_id == uid) and all(
                        ev.get(k.replace("_", "-")) == v for k, v in headers.items()):
                    return ev
            return None
        assert self.wait(find, timeout or self.timeout), f"no {name} for {uid} {headers}"
        ev = find()
        assert ev is not None
        return ev
