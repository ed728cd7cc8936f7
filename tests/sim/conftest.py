"""Fixtures for the FreeSWITCH simulator: in-process (``sim``) and as a process (``sim_process``).

``sim`` runs a Switch + EslServer on 127.0.0.1:0 in a thread of its own (its own gevent hub),
so tests talk to it over a real TCP socket with plain blocking sockets, and greenswitch
clients in the test's own hub work too. ``sim.run(fn, *args)`` runs ``fn`` inside the
simulator's hub (in a greenlet) and returns its result: use it to touch ``sim.switch``.
"""

from __future__ import annotations

import os
import re
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from fssim.process import SimProcess as BaseSimProcess

REPO = Path(__file__).resolve().parents[2]


@dataclass
class RawFrame:
    """One frame as read off the socket: outer headers (in order), body and the exact bytes."""

    pairs: list[tuple[str, str]]
    body: bytes
    raw: bytes

    @property
    def headers(self) -> dict[str, str]:
        first: dict[str, str] = {}
        for k, v in self.pairs:
            first.setdefault(k, v)
        return first

    @property
    def content_type(self) -> str | None:
        return self.headers.get("Content-Type")

    @property
    def is_event(self) -> bool:
        return (self.content_type or "").startswith("text/event-")

    def event_pairs(self) -> list[tuple[str, str]]:
        """Header lines of a plain event body (values still URL-encoded)."""
        text = self.body.decode("utf-8", "surrogateescape")
        block = text.split("\n\n", 1)[0]
        return [tuple(line.split(": ", 1)) for line in block.split("\n") if line]  # type: ignore[misc]

    def event_header(self, name: str) -> str | None:
        for k, v in self.event_pairs():
            if k == name:
                return v
        return None


class RawEsl:
    """A deliberately dumb ESL client: exact bytes in, exact frames out, deadlines everywhere."""

    def __init__(self, host: str, port: int, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.timeout = timeout
        self.buf = b""
        self.events: list[RawFrame] = []
        self.closed = False

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, command: str) -> None:
        """Send one command; a block that doesn't end in an empty line gets one."""
        text = command if command.endswith("\n\n") else command.rstrip("\n") + "\n\n"
        self.sock.sendall(text.encode())

    def _fill(self, deadline: float) -> bool:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no data from the simulator before the deadline")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            raise TimeoutError("no data from the simulator before the deadline") from None
        if not data:
            self.closed = True
            return False
        self.buf += data
        return True

    def read_frame(self, timeout: float | None = None) -> RawFrame:
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            end = self.buf.find(b"\n\n")
            if end >= 0:
                block = self.buf[:end].decode()
                pairs = [tuple(line.split(": ", 1)) for line in block.split("\n")]
                clen = 0
                for k, v in pairs:
                    if k == "Content-Length":
                        clen = int(v)
                total = end + 2 + clen
                if len(self.buf) >= total:
                    raw, self.buf = self.buf[:total], self.buf[total:]
                    return RawFrame(pairs, raw[end + 2:], raw)  # type: ignore[arg-type]
            if not self._fill(deadline):
                raise EOFError(f"connection closed; {len(self.buf)} bytes left unparsed")

    def reply(self, command: str, timeout: float | None = None) -> RawFrame:
        """Send a command and return its reply; events read meanwhile go to ``self.events``."""
        self.send(command)
        return self.next_reply(timeout)

    def next_reply(self, timeout: float | None = None) -> RawFrame:
        while True:
            frame = self.read_frame(timeout)
            if frame.is_event:
                self.events.append(frame)
            else:
                return frame

    def next_event(self, name: str | None = None, timeout: float | None = None,
                   where: Callable[[RawFrame], bool] | None = None) -> RawFrame:
        """The next event (of ``name``), from those already read or from the socket."""
        def ok(f: RawFrame) -> bool:
            if name is not None and _event_name(f) != name:
                return False
            return where is None or where(f)

        for i, f in enumerate(self.events):
            if ok(f):
                return self.events.pop(i)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            frame = self.read_frame(max(0.001, deadline - time.monotonic()))
            if frame.is_event and ok(frame):
                return frame
            if frame.is_event:
                self.events.append(frame)

    def no_more_data(self, wait: float = 0.3) -> bool:
        """True when nothing arrives within ``wait`` seconds (used only to show absence)."""
        if self.buf:
            return False
        self.sock.settimeout(wait)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return True
        self.buf += data
        return False

    def read_to_eof(self, timeout: float = 5.0) -> bytes:
        deadline = time.monotonic() + timeout
        while self._fill(deadline):
            pass
        data, self.buf = self.buf, b""
        return data

    def auth(self, password: str = "ClueCon") -> RawFrame:
        first = self.read_frame()
        assert first.raw == b"Content-Type: auth/request\n\n"
        return self.reply(f"auth {password}")

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def _event_name(frame: RawFrame) -> str | None:
    ctype = frame.content_type
    if ctype == "text/event-plain":
        return frame.event_header("Event-Name")
    if ctype == "text/event-json":
        m = re.search(rb'"Event-Name":"([^"]*)"', frame.body)
        return m.group(1).decode() if m else None
    if ctype == "text/event-xml":
        m = re.search(rb"<Event-Name>([^<]*)</Event-Name>", frame.body)
        return m.group(1).decode() if m else None
    return None


@dataclass
class SimHandle:
    host: str
    port: int
    password: str
    switch: Any
    _runner: Callable[..., Any]
    _clients: list[RawEsl] = field(default_factory=list)

    def run(self, fn: Callable[..., Any], *args: Any, timeout: float = 10.0) -> Any:
        """Run ``fn(*args)`` in the simulator's hub and return its result."""
        return self._runner(fn, args, timeout)

    def client(self, timeout: float = 5.0) -> RawEsl:
        c = RawEsl(self.host, self.port, timeout)
        self._clients.append(c)
        return c

    def connect(self, timeout: float = 5.0) -> RawEsl:
        """A client that has read auth/request and authenticated."""
        c = self.client(timeout)
        reply = c.auth(self.password)
        assert reply.headers["Reply-Text"] == "+OK accepted"
        return c


class _SimThread:
    """A Switch + EslServer living in a thread with its own gevent hub."""

    def __init__(self, engine: bool, switch_kwargs: dict[str, Any]) -> None:
        self.engine = engine
        self.kwargs = switch_kwargs
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, name="fssim", daemon=True)
        self.switch: Any = None
        self.address: tuple[str, int] = ("", 0)

    def _main(self) -> None:
        import gevent
        from gevent.event import Event

        from fssim.server import EslServer
        from fssim.switch import Switch

        try:
            self.hub = gevent.get_hub()
            self.switch = Switch(**self.kwargs)
            if self.engine:
                try:
                    from fssim import engine
                except ModuleNotFoundError as exc:
                    if exc.name != "fssim.engine":
                        raise
                else:
                    engine.install(self.switch)
            self.server = EslServer(self.switch, "127.0.0.1", 0)
            self.address = self.server.start()
            self.switch.start()
            self.stop_event = Event()
        except Exception as exc:  # noqa: BLE001 - re-raised in the test thread by start()
            self.error = exc
            self.ready.set()
            return
        self.ready.set()
        self.stop_event.wait()
        self.server.stop()
        self.switch.stop()

    def start(self) -> None:
        self.thread.start()
        if not self.ready.wait(10):
            raise RuntimeError("simulator thread did not start within 10 s")
        if self.error is not None:
            raise self.error

    def run(self, fn: Callable[..., Any], args: tuple[Any, ...], timeout: float) -> Any:
        import gevent

        done = threading.Event()
        box: dict[str, Any] = {}

        def body() -> None:
            try:
                box["value"] = fn(*args)
            except Exception as exc:  # noqa: BLE001 - re-raised in the calling thread
                box["error"] = exc
            finally:
                done.set()

        self.hub.loop.run_callback_threadsafe(lambda: gevent.spawn(body))
        if not done.wait(timeout):
            raise TimeoutError(f"{fn!r} did not finish within {timeout} s in the simulator")
        if "error" in box:
            raise box["error"]
        return box.get("value")

    def stop(self) -> None:
        if self.error is None and self.thread.is_alive():
            self.hub.loop.run_callback_threadsafe(self.stop_event.set)
            self.thread.join(10)


@pytest.fixture
def sim_factory() -> Iterator[Callable[..., SimHandle]]:
    """``sim_factory(engine=True, **Switch kwargs)`` -> a started in-process simulator."""
    started: list[tuple[_SimThread, SimHandle]] = []

    def make(engine: bool = True, **kwargs: Any) -> SimHandle:
        kwargs.setdefault("heartbeat_interval", 20.0)
        t = _SimThread(engine, kwargs)
        t.start()
        handle = SimHandle("127.0.0.1", t.address[1], t.switch.password, t.switch, t.run)
        started.append((t, handle))
        return handle

    yield make
    for t, handle in started:
        for c in handle._clients:
            c.close()
        t.stop()


@pytest.fixture
def sim(sim_factory: Callable[..., SimHandle]) -> SimHandle:
    """An in-process simulator (channel engine installed when present) on 127.0.0.1:<free>."""
    return sim_factory()


class SimProcess(BaseSimProcess):
    def client(self, timeout: float = 5.0) -> RawEsl:
        return RawEsl(self.host, self.port, timeout)


def _start_process(args: list[str], tmpdir: str) -> SimProcess:
    password = args[args.index("--password") + 1] if "--password" in args else "ClueCon"
    rest = list(args)
    if "--password" in rest:
        i = rest.index("--password")
        del rest[i:i + 2]
    err_path = Path(tmpdir) / f"fssim-{len(os.listdir(tmpdir))}.stderr"
    return SimProcess.start(*rest, password=password, stderr_path=err_path, cwd=REPO)


def _stop_process(p: SimProcess) -> None:
    p.stop()


@pytest.fixture
def sim_process_factory() -> Iterator[Callable[..., SimProcess]]:
    """``sim_process_factory("--heartbeat-interval", "0.2", ...)`` -> a running ``python -m
    fssim`` (killed afterwards)."""
    procs: list[SimProcess] = []
    with tempfile.TemporaryDirectory(prefix="fssim-") as tmpdir:
        def make(*args: str) -> SimProcess:
            p = _start_process(list(args), tmpdir)
            procs.append(p)
            return p

        try:
            yield make
        finally:
            for p in procs:
                _stop_process(p)


@pytest.fixture
def sim_process(sim_process_factory: Callable[..., SimProcess]) -> SimProcess:
    """``python -m fssim --listen 127.0.0.1:0`` as a subprocess, port read from its first line."""
    return sim_process_factory()
