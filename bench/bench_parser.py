"""ESL parsing throughput: greenswitch 0.0.19's own reader vs ``esl_handlers`` (figures only).

Input: the event frames of the real capture ``esl_plain.raw`` (530 events, from after the
auth/subscribe replies to before ``+OK bye``), repeated to at least 100,000 events.

* greenswitch: ``ESLProtocol.receive_events`` reading that stream from an ``io.BytesIO`` as
  it reads its socket file: ``readline`` per header line, ``ESLEvent`` for the outer block,
  then ``handle_event`` reads the body and runs ``ESLEvent.parse_data`` on it. Only its queue
  is replaced (by a sink that reads Event-Name, Unique-ID and Event-Sequence), so all of its
  framing and parsing runs.
* ours: ``FrameParser.feed`` on 64 KiB reads, ``Event.from_frame`` for each frame, reading
  ``name``, ``unique_id``, ``sequence`` and the separated ``body_bytes`` of every event.

Run: ``python -m bench.bench_parser`` (``--quick`` for a smoke run). Best of 3 runs each.
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable
from typing import Any

from bench.captures import repeated_plain_events
from esl_handlers.events import Event
from esl_handlers.framing import FrameParser

TARGET_EVENTS = 100_000
TARGET_RATIO = 5.0
TARGET_RATE = 50_000
READ_SIZE = 65536


class _NullSocket:
    """Stands in for greenswitch's socket: it only ever calls close() on it here."""

    def close(self) -> None:
        return None


class _Sink:
    """Replaces greenswitch's event queue: reads the three headers a dispatcher would."""

    def __init__(self, keep: bool) -> None:
        self.count = 0
        self.keys: list[tuple[Any, Any, Any]] | None = [] if keep else None

    def put(self, event: Any) -> None:
        self.count += 1
        h = event.headers
        key = (h.get("Event-Name"), h.get("Unique-ID"), h.get("Event-Sequence"))
        if self.keys is not None:
            self.keys.append(key)


def run_greenswitch(stream: bytes, keep: bool = False) -> _Sink:
    from greenswitch.esl import ESLProtocol

    proto = ESLProtocol()
    proto.sock_file = io.BytesIO(stream)
    proto.sock = _NullSocket()
    proto.connected = True          # so EOF ends receive_events (it sets _run False)
    sink = _Sink(keep)
    proto._esl_event_queue = sink   # handle_event() puts each parsed event here
    proto.receive_events()
    return sink


def run_ours(stream: bytes, keep: bool = False) -> tuple[int, list[tuple[Any, Any, Any]] | None]:
    parser = FrameParser()
    from_frame = Event.from_frame
    count = 0
    body_bytes = 0
    keys: list[tuple[Any, Any, Any]] | None = [] if keep else None
    for start in range(0, len(stream), READ_SIZE):
        for frame in parser.feed(stream[start:start + READ_SIZE]):
            ev = from_frame(frame)
            name, uid, seq = ev.name, ev.unique_id, ev.sequence
            body_bytes += len(ev.body_bytes)
            count += 1
            if keys is not None:
                keys.append((name, uid, None if seq is None else str(seq)))
    if not parser.at_frame_boundary():
        raise AssertionError("the parser left bytes over: the stream was not fully framed")
    return count, keys


def _best_of(runs: int, fn: Callable[[], int]) -> tuple[float, int]:
    best = float("inf")
    count = 0
    for _ in range(runs):
        t0 = time.perf_counter()
        count = fn()
        best = min(best, time.perf_counter() - t0)
    return best, count


def run(quick: bool = False) -> list[dict[str, object]]:
    """Measure both parsers; rows for the table printed by ``python -m bench``."""
    min_events = 10_000 if quick else TARGET_EVENTS
    runs = 1 if quick else 3
    stream, expected = repeated_plain_events(min_events)

    # Not timed: both must see the same events (on this capture no value holds %0A, so
    # greenswitch's whole-block decoding reads these three headers right).
    one_copy, _ = repeated_plain_events(1)
    theirs = run_greenswitch(one_copy, keep=True).keys
    _, ours_keys = run_ours(one_copy, keep=True)
    if theirs != ours_keys:
        raise AssertionError("greenswitch and esl_handlers disagree on the capture's events")

    gs_time, gs_count = _best_of(runs, lambda: run_greenswitch(stream).count)
    our_time, our_count = _best_of(runs, lambda: run_ours(stream)[0])
    if gs_count != expected or our_count != expected:
        raise AssertionError(f"expected {expected} events, greenswitch saw {gs_count}, "
                             f"esl_handlers saw {our_count}")
    gs_rate = gs_count / gs_time
    our_rate = our_count / our_time
    ratio = our_rate / gs_rate
    mib = len(stream) / (1024 * 1024)
    return [
        {"parser": "greenswitch 0.0.19 receive_events", "events": gs_count,
         "MiB": f"{mib:.0f}", "best_s": f"{gs_time:.3f}", "events/s": f"{gs_rate:,.0f}",
         "ratio": "1.0x", "target": ""},
        {"parser": "esl_handlers FrameParser+Event", "events": our_count,
         "MiB": f"{mib:.0f}", "best_s": f"{our_time:.3f}", "events/s": f"{our_rate:,.0f}",
         "ratio": f"{ratio:.1f}x",
         "target": (f">= {TARGET_RATIO:.0f}x and >= {TARGET_RATE:,} ev/s: "
                    + ("met" if ratio >= TARGET_RATIO and our_rate >= TARGET_RATE else "NOT met"))},
    ]


def _print(rows: list[dict[str, object]]) -> None:
    cols = list(rows[0])
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in cols]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
    for r in rows:
        print("  ".join(str(r[c]).ljust(w) for c, w in zip(cols, widths, strict=True)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.bench_parser", description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="10,000 events, one run")
    args = ap.parse_args(argv)
    _print(run(quick=args.quick))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
