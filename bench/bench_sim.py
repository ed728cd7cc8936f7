"""The FreeSWITCH simulator's own throughput (``python -m bench.bench_sim``).

The simulator runs as its own process (``python -m fssim``, fast simulated clock, no
HEARTBEAT) so its CPU is not shared with the load generator. A driver connection runs full
inbound calls (sim_inbound -> CHANNEL_PARK -> uuid_answer -> sendmsg playback of a 200 ms
tone -> sim_hangup after EXECUTE_COMPLETE), keeping a fixed number in flight; a second
connection subscribed with ``event plain ALL`` consumes every event, either just framing it
(what the simulator can emit), framing + ``Event.from_frame`` + a no-op handler (what a
client built on esl_handlers gets from the socket), or through the worker's own path:
``EslConnection`` reader -> ``Dispatcher`` (per-call lanes, greenlet pool) -> no-op handler.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Callable

from esl_handlers.events import Event
from esl_handlers.framing import FrameParser
from fssim.process import SimProcess

TIME_SCALE = 1000.0
PROMPT = "tone_stream://%(200,0,440);loops=1"


def _connect(addr: tuple[str, int], subscribe: str) -> tuple[socket.socket, FrameParser]:
    sock = socket.create_connection(addr, timeout=30)
    parser = FrameParser()
    sock.sendall(f"auth ClueCon\n\nevent plain {subscribe}\n\n".encode())
    replies = 0
    while replies < 2:
        for frame in parser.feed(sock.recv(65536)):
            if frame.content_type == "command/reply":
                replies += 1
    return sock, parser


class _WorkerPathSubscriber(threading.Thread):
    """The worker's path in a thread with its own gevent hub: EslConnection -> Dispatcher."""

    def __init__(self, addr: tuple[str, int]) -> None:
        super().__init__(daemon=True)
        self.addr = addr
        self.events = 0
        self.last_at = time.monotonic()
        self.stop_flag = False
        self.ready = threading.Event()

    def run(self) -> None:
        import gevent

        from cc_core.config import EslConfig, NodeConfig
        from esl_handlers.connection import EslConnection
        from esl_handlers.dispatch import Dispatcher

        esl = EslConfig()
        dispatcher = Dispatcher(queue_size=esl.queue_size, pool_size=esl.handler_pool_size)

        def handler(ev: Event, link: object) -> None:
            self.events += 1
            self.last_at = time.monotonic()

        dispatcher.on("*", handler)
        conn = EslConnection(NodeConfig(name="bench", host=self.addr[0], port=self.addr[1]), esl,
                             on_event=lambda ev: dispatcher.submit(ev, None))
        conn.connect()
        # ALL, like the other rows, so every row sees the same stream (the product's builder
        # refuses ALL on purpose; this is a measurement, not a worker).
        conn.send("event plain ALL")
        self.ready.set()
        while not self.stop_flag:
            gevent.sleep(0.05)
        conn.close()
        dispatcher.stop(1)


class _Subscriber(threading.Thread):
    """``event plain ALL`` consumer: counts events (optionally parsing each into an Event)."""

    def __init__(self, addr: tuple[str, int], parse: bool) -> None:
        super().__init__(daemon=True)
        self.sock, self.parser = _connect(addr, "ALL")
        self.parse = parse
        self.events = 0
        self.last_at = time.monotonic()
        self.stop_flag = False

    def run(self) -> None:
        handler: Callable[[Event], None] = lambda ev: None  # noqa: E731 - the no-op handler
        from_frame = Event.from_frame
        self.sock.settimeout(0.5)
        while not self.stop_flag:
            try:
                data = self.sock.recv(262144)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                break
            for frame in self.parser.feed(data):
                if frame.is_event:
                    if self.parse:
                        ev = from_frame(frame)
                        _ = (ev.name, ev.unique_id, ev.sequence)
                        handler(ev)
                    self.events += 1
            self.last_at = time.monotonic()


def _drive(addr: tuple[str, int], calls: int, concurrency: int, deadline: float) -> int:
    """Run ``calls`` full calls, ``concurrency`` at a time; returns the calls completed."""
    sock, parser = _connect(addr, "CHANNEL_PARK CHANNEL_EXECUTE_COMPLETE CHANNEL_HANGUP_COMPLETE")
    started = done = 0
    out: list[bytes] = []

    def start() -> None:
        nonlocal started
        started += 1
        out.append(f"api sim_inbound 49155{started:05d} 4005550100\n\n".encode())

    for _ in range(min(concurrency, calls)):
        start()
    sock.settimeout(10)
    while done < calls and time.monotonic() < deadline:
        if out:
            sock.sendall(b"".join(out))
            out.clear()
        data = sock.recv(262144)
        if not data:
            break
        for frame in parser.feed(data):
            if not frame.is_event:
                continue
            ev = Event.from_frame(frame)
            name, uid = ev.name, ev.unique_id
            if name == "CHANNEL_PARK":
                out.append(f"api uuid_answer {uid}\n\nsendmsg {uid}\ncall-command: execute\n"
                           f"execute-app-name: playback\nexecute-app-arg: {PROMPT}\n\n".encode())
            elif name == "CHANNEL_EXECUTE_COMPLETE" and ev.get("Application") == "playback":
                out.append(f"api sim_hangup {uid}\n\n".encode())
            elif name == "CHANNEL_HANGUP_COMPLETE":
                done += 1
                if started < calls:
                    start()
    sock.close()
    return done


def _measure(calls: int, concurrency: int, mode: str) -> dict[str, object]:
    proc = SimProcess.start("--time-scale", str(TIME_SCALE), "--heartbeat-interval", "0",
                            "--max-sessions", str(concurrency * 4), "--hostname", "bench")
    addr = (proc.host, proc.port)
    try:
        sub: _Subscriber | _WorkerPathSubscriber
        if mode == "worker":
            sub = _WorkerPathSubscriber(addr)
            sub.start()
            if not sub.ready.wait(10):
                raise RuntimeError("the worker-path subscriber did not connect")
        else:
            sub = _Subscriber(addr, parse=(mode == "event"))
            sub.start()
        t0 = time.monotonic()
        done = _drive(addr, calls, concurrency, t0 + 120)
        # the subscriber may still be reading the tail of the stream
        last, settle = -1, time.monotonic() + 5
        while sub.events != last and time.monotonic() < settle:
            last = sub.events
            time.sleep(0.2)
        elapsed = max(sub.last_at - t0, 1e-6)
        sub.stop_flag = True
        sub.join(2)
        return {"calls": done, "events": sub.events, "seconds": round(elapsed, 2),
                "calls_per_s": round(done / elapsed, 1),
                "events_per_s": round(sub.events / elapsed)}
    finally:
        proc.stop()


def run(quick: bool = False) -> list[dict[str, object]]:
    calls = 200 if quick else 2000
    concurrency = 50
    return [
        {"figure": "simulator -> one plain subscriber (framing only)",
         **_measure(calls, concurrency, "frame")},
        {"figure": "simulator socket -> FrameParser + Event + no-op handler",
         **_measure(calls, concurrency, "event")},
        {"figure": "simulator socket -> EslConnection + Dispatcher + no-op handler",
         **_measure(calls, concurrency, "worker")},
    ]


def main() -> int:
    quick = os.environ.get("BENCH_QUICK") == "1" or "--quick" in sys.argv
    rows = run(quick=quick)
    cols = ["figure", "calls", "events", "seconds", "calls_per_s", "events_per_s"]
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in cols]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
    for r in rows:
        print("  ".join(str(r[c]).ljust(w) for c, w in zip(cols, widths, strict=True)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
