"""Garbage collection in the worker's idle moments instead of in the middle of its work.

CPython's collector runs when allocations pass a threshold, and allocations happen while
events are handled: under load a collection lands inside a burst of call events, and every
step queued in that burst waits for the pass (1-3 ms each; at 200 calls/s a fifth of the
join -> originate samples above 4 ms sat right after one). Here the automatic collector is
off and ``IdleCollector`` runs the same passes the automatic one would (the young generation
after ``YOUNG`` new objects, the middle one every ``MIDDLE_EVERY`` young passes, a full pass
every ``FULL_EVERY`` middle ones but at most every ``full_min_s``, standing for CPython's rule
that a full pass waits for the older objects to grow by a quarter) at a moment when the event
loop has nothing else to run.
When no such moment comes within ``MAX_WAIT_S`` (the worker saturated) it collects anyway,
so garbage never piles up for longer than that.
"""

from __future__ import annotations

import gc
import time
from typing import Any

import gevent

# CPython's default thresholds (gc.get_threshold()), kept.
YOUNG = 700
MIDDLE_EVERY = 10
FULL_EVERY = 10
FULL_MIN_S = 30.0
# How often the young generation's size is looked at, and how long a due pass waits for the
# loop to be idle before it runs regardless.
POLL_S = 0.02
MAX_WAIT_S = 0.5


class IdleCollector:
    def __init__(self, *, young: int = YOUNG, max_wait_s: float = MAX_WAIT_S,
                 full_min_s: float = FULL_MIN_S) -> None:
        self.young = young
        self.max_wait_s = max_wait_s
        self.full_min_s = full_min_s
        self.passes = [0, 0, 0]        # collections run, per generation
        self.forced = 0                # run without waiting for an idle loop
        self._young_passes = 0
        self._middle_passes = 0
        self._last_full = time.monotonic()
        self._greenlet: Any = None

    def start(self) -> None:
        """Freeze what start-up built (it lives as long as the process: out of the
        collector's sight, a full pass walks only what calls create), turn the automatic
        collector off, and collect from now on in idle moments."""
        gc.collect()
        gc.freeze()
        gc.disable()
        self._greenlet = gevent.spawn(self._run)

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
            self._greenlet = None
        gc.enable()

    def _run(self) -> None:
        while True:
            gevent.sleep(POLL_S)
            if gc.get_count()[0] >= self.young:
                self.collect_when_idle()

    def collect_when_idle(self) -> None:
        idle = False
        with gevent.Timeout(self.max_wait_s, False):
            # Idle: nothing else pending in the loop, of any priority.
            gevent.idle(gevent.get_hub().loop.MINPRI)
            idle = True
        if not idle:
            self.forced += 1
        self._collect()

    def _collect(self) -> None:
        generation = 0
        self._young_passes += 1
        if self._young_passes >= MIDDLE_EVERY:
            self._young_passes = 0
            generation = 1
            self._middle_passes += 1
            now = time.monotonic()
            if self._middle_passes >= FULL_EVERY and now - self._last_full >= self.full_min_s:
                self._middle_passes = 0
                self._last_full = now
                generation = 2
        gc.collect(generation)
        self.passes[generation] += 1
