"""Simulated time for the FreeSWITCH simulator.

Everything that FreeSWITCH would time (prompt lengths, ring delays, originate_timeout,
durations reported in ``variable_duration``/``billsec``) runs on simulated seconds, which
pass ``time_scale`` times faster than real ones. Event-Date-* headers stay wall clock, so a
client's lag metric (Event-Date-Timestamp -> handled) stays meaningful.
"""

from __future__ import annotations

import time

import gevent


class Clock:
    """Simulated monotonic seconds plus a wall clock in microseconds."""

    __slots__ = ("time_scale", "_t0")

    def __init__(self, time_scale: float = 1.0) -> None:
        if not time_scale > 0:
            raise ValueError(f"time_scale must be > 0, got {time_scale!r}")
        self.time_scale = float(time_scale)
        self._t0 = time.monotonic()

    def now(self) -> float:
        """Simulated seconds since this clock was made (monotonic)."""
        return (time.monotonic() - self._t0) * self.time_scale

    def real_seconds(self, sim_seconds: float) -> float:
        """How long ``sim_seconds`` of simulated time lasts in real time."""
        return max(0.0, sim_seconds) / self.time_scale

    def sleep(self, sim_seconds: float) -> None:
        """Cooperatively sleep ``sim_seconds`` of simulated time."""
        gevent.sleep(self.real_seconds(sim_seconds))

    @staticmethod
    def wall_us() -> int:
        """Wall clock in microseconds since the epoch (Event-Date-Timestamp's unit)."""
        return time.time_ns() // 1000
