"""Real-time scheduling for the core's hot-path processes: the workers and a private Redis.

A queue join waits for one Redis round trip, then sends the agent's originate. On a box the
core shares with busy neighbours (the switch, SIP load, here the simulator and the bench's
callers on two cores), that wait is mostly the kernel's run queue, not the code: at 200
calls/s redis-server waited about 115 ms of every second for a core and the worker about 80
(``/proc/<pid>/schedstat``), and join -> originate p99 was 4.6-6.5 ms. With the worker and
redis-server at a real-time priority the same load gave 1.3-1.8 ms (bench/bench_acd_flow.py
measures both, side by side). It is FreeSWITCH's own answer for its media threads (``-rp``).

``SCHED_RR`` rather than ``SCHED_FIFO``: several workers share one priority and take turns.
``SCHED_RESET_ON_FORK``: whatever a worker starts (a converter, a shell) runs at the normal
policy. The kernel keeps a slice of every second for normal tasks
(``/proc/sys/kernel/sched_rt_runtime_us``), so a busy worker cannot lock the switch out.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from cc_core.errors import EnvironmentProblem

POLICY = os.SCHED_RR
LOWEST, HIGHEST = 1, 99

_HOW = ("run as root, give the binary CAP_SYS_NICE (`setcap cap_sys_nice+ep`), or raise "
        "RLIMIT_RTPRIO (systemd: LimitRTPRIO=, or CPUSchedulingPolicy=rr with "
        "CPUSchedulingPriority=); or leave realtime_priority unset")


@contextmanager
def raised(priority: int) -> Iterator[None]:
    """This process under ``SCHED_RR`` at ``priority`` for the block, its own policy after:
    ``EnvironmentProblem`` (saying how to fix it) when it may not."""
    if not LOWEST <= priority <= HIGHEST:
        raise EnvironmentProblem(f"realtime priority {priority} is out of range: "
                                 f"{LOWEST} (lowest) to {HIGHEST}")
    before = os.sched_getscheduler(0), os.sched_getparam(0)
    try:
        os.sched_setscheduler(0, POLICY, os.sched_param(priority))
    except PermissionError:
        raise EnvironmentProblem(
            f"may not set real-time priority {priority} (SCHED_RR): {_HOW}") from None
    try:
        yield
    finally:
        os.sched_setscheduler(0, *before)


def check(priority: int) -> None:
    """Fails as ``raised`` does when this process may not give its children ``priority``."""
    with raised(priority):
        pass


def apply(pid: int, priority: int) -> None:
    """Puts process ``pid`` under ``SCHED_RR`` at ``priority``; nothing when it is already
    gone (a child that died at once: its restart gets the priority)."""
    try:
        os.sched_setscheduler(pid, POLICY | os.SCHED_RESET_ON_FORK, os.sched_param(priority))
    except ProcessLookupError:
        pass
    except PermissionError:
        raise EnvironmentProblem(
            f"may not set real-time priority {priority} (SCHED_RR) on pid {pid}: {_HOW}") from None


def policy_of(pid: int) -> tuple[str, int]:
    """(policy name, priority) of ``pid``: what a test or an operator checks."""
    names = {os.SCHED_OTHER: "SCHED_OTHER", os.SCHED_FIFO: "SCHED_FIFO", os.SCHED_RR: "SCHED_RR",
             os.SCHED_BATCH: "SCHED_BATCH", os.SCHED_IDLE: "SCHED_IDLE"}
    policy = os.sched_getscheduler(pid) & ~os.SCHED_RESET_ON_FORK
    return names.get(policy, str(policy)), os.sched_getparam(pid).sched_priority
