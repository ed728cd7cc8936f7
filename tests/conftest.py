"""Shared fixtures: a real private redis-server, the captures folder, a polling helper, a
gentle stop for the processes a test starts."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import gevent
import pytest

from cc_core.redis_server import PrivateRedis, PrivateRedisCluster

T_ = TypeVar("T_")

CAPTURES = Path(
    os.environ.get("CC_ESL_CAPTURES", Path(__file__).resolve().parent / "data" / "esl-captures")
).resolve()


@pytest.fixture(scope="session")
def captures_dir() -> Path:
    """The repository's copy of the captures (``tests/data/esl-captures``, or
    ``CC_ESL_CAPTURES``); a test that needs them fails loudly if they are missing."""
    if not (CAPTURES / "freeswitch-1.10.12").is_dir():
        pytest.fail(f"ESL captures not found at {CAPTURES}: they ship in tests/data/esl-captures; "
                    "unset CC_ESL_CAPTURES or point it at a copy")
    return CAPTURES


@pytest.fixture(scope="session")
def redis_server() -> Iterator[PrivateRedis]:
    """One real redis-server for the whole test session, on a free loopback port."""
    with PrivateRedis() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: PrivateRedis) -> Iterator[str]:
    """A clean database for each test (FLUSHALL after), on the session's server."""
    import redis

    yield redis_server.url
    redis.Redis.from_url(redis_server.url).flushall()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[PrivateRedisCluster]:
    """One private Redis Cluster (3 masters, no replicas) for the session, started on first
    use only: most tests never need it."""
    with PrivateRedisCluster(masters=3) as cluster:
        yield cluster


@pytest.fixture
def redis_cluster_url(redis_cluster: PrivateRedisCluster) -> Iterator[str]:
    """``redis+cluster://`` + the first master (``cc_core.redisconn.connect`` and a worker's
    ``redis_url`` take it as it is); every master is flushed after each test."""
    import redis

    yield redis_cluster.url
    for port in redis_cluster.ports:
        redis.Redis(host=redis_cluster.host, port=port).flushall()


def pytest_report_header() -> str:
    from tests.props import EXPLORE_SEED, REPLAY

    return f"hypothesis exploration seed: {EXPLORE_SEED} (replay: {REPLAY})"


def stop_gently(proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """SIGTERM, then SIGKILL after ``timeout`` s: what it started itself (a private
    redis-server, workers) is stopped by the process, not left behind."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for(predicate: Callable[[], object], timeout: float = 5.0, interval: float = 0.01,
             message: str = "condition") -> object:
    """Poll ``predicate`` until it returns something truthy or the deadline passes.

    Sleeps with gevent, which also works where nothing is monkey-patched: the hub keeps
    running, so greenlets under test (readers, servers) make progress while we wait."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        gevent.sleep(interval)


def turns_while(fn: Callable[[], T_]) -> tuple[T_, int]:
    """``fn()``'s result, and how many turns another greenlet got while it ran: what tells a
    long job that gives way (every ``gevent.sleep(0)``) from one that holds the loop."""
    turns = 0

    def other() -> None:
        nonlocal turns
        while True:
            turns += 1
            gevent.sleep(0)

    g = gevent.spawn(other)
    gevent.sleep(0)
    before = turns
    try:
        result = fn()
    finally:
        g.kill()
    return result, turns - before
