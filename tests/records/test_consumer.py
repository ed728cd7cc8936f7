"""The call-record consumer on real Redis and both stores: every call summarised is stored
exactly once, whatever dies when, and whatever is delivered twice.

A consumer is killed mid-batch for real: ``cc-core cdr consume`` in a subprocess, SIGKILLed
while it holds a batch. Where it stands is forced, not timed: the test holds the store's write
lock so the consumer reads its batch but cannot commit it (killed before the commit), or also
pauses Redis writes (``CLIENT PAUSE … WRITE``) so it commits but cannot acknowledge (killed
between the commit and the XACK).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis

from cc_core import keys
from records.consumer import CdrConsumer
from records.db import Database, open_database
from records.migrate import migrate
from tests.conftest import wait_for
from tests.records.helpers import abandoned_in_queue, append, append_raw, summary

REPO = Path(__file__).resolve().parents[2]
N = 20


def test_a_new_tenants_first_call_is_found_at_once_and_old_streams_by_a_scan(
        redis_url: str, store: Database) -> None:
    r = redis.Redis.from_url(redis_url)
    migrate(store)
    append_raw(r, summary("old-0", "legacy"))     # written before the tenants' set existed
    consumer = CdrConsumer(r, store, "c1", rescan_s=3600)
    assert _drain(consumer) == 1                  # the first step scans
    append(r, summary("new-0", "newcomer"))       # no scan due for an hour
    assert _drain(consumer) == 1
    assert [u for u, _ in _records(store.target)] == ["new-0", "old-0"]


def _records(target: str) -> list[tuple[str, str]]:
    with open_database(target) as db, db.transaction() as tx:
        return [(str(u), str(t)) for u, t in tx.execute(
            "SELECT call_uuid, tenant FROM call_records ORDER BY call_uuid").fetchall()]


def _pending(r: redis.Redis, tenant: str = "acme") -> dict[str, int]:
    try:
        info: Any = r.xpending(keys.calls_stream(tenant), keys.CDR_GROUP)
    except redis.ResponseError:             # no consumer made the group yet
        return {}
    return {(c["name"].decode() if isinstance(c["name"], bytes) else c["name"]): int(c["pending"])
            for c in info["consumers"]}


def _drain(consumer: CdrConsumer) -> int:
    stored = 0
    for _ in range(100):
        step = consumer.step()
        stored += step.stored
        if step.read == 0:
            return stored
    raise AssertionError("the consumer never ran out of entries")


def test_each_call_of_each_tenant_is_one_record_even_when_delivered_twice(
        redis_url: str, store: Database) -> None:
    r = redis.Redis.from_url(redis_url)
    migrate(store)
    for i in range(3):
        append(r, summary(f"acme-{i}"))
    append(r, summary("acme-1"))                  # the same call summarised twice
    append(r, abandoned_in_queue("beta-0", "beta"))
    append(r, abandoned_in_queue("beta-0", "beta"))
    r.xadd(keys.calls_stream("beta"), {"call": b"\xc1 not msgpack"})
    r.xadd(keys.calls_stream("beta"), {"other": b"x"})
    consumer = CdrConsumer(r, store, "c1", batch=3)
    assert _drain(consumer) == 4
    assert _records(store.target) == [("acme-0", "acme"), ("acme-1", "acme"),
                                      ("acme-2", "acme"), ("beta-0", "beta")]
    assert _pending(r, "acme") == {} and _pending(r, "beta") == {}
    # Later calls, and a consumer of the same group started afresh, add only what is new.
    append(r, summary("acme-3"))
    append(r, summary("acme-0"))
    assert _drain(CdrConsumer(r, store, "c2")) == 1
    assert len(_records(store.target)) == 5


@contextmanager
def _write_lock(target: str) -> Iterator[None]:
    """Holds the store's write lock: INSERTs into call_records wait, reads do not."""
    if target.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(target) as conn:
            conn.execute("LOCK TABLE call_records IN EXCLUSIVE MODE")
            try:
                yield
            finally:
                conn.rollback()
        return
    lite = sqlite3.connect(target, isolation_level=None)
    lite.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        lite.execute("ROLLBACK")
        lite.close()


def _start_consumer(tmp_path: Path, target: str, redis_url: str, name: str
                    ) -> subprocess.Popen[bytes]:
    log = (tmp_path / f"{name}.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "cc_core.cli", "cdr", "consume", "--db", target,
         "--redis-url", redis_url, "--name", name, "--batch", "100",
         "--claim-idle-ms", "600000"],
        cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env={**os.environ})


def _kill(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)


def _seed(r: redis.Redis) -> set[str]:
    uuids = {f"call-{i:02d}" for i in range(N)}
    for uuid in sorted(uuids):
        append(r, summary(uuid))
    append(r, summary("call-07"))                 # delivered twice
    return uuids


@pytest.mark.slow
def test_a_consumer_killed_before_its_commit_loses_nothing(
        tmp_path: Path, redis_url: str, store_target: str) -> None:
    r = redis.Redis.from_url(redis_url)
    with open_database(store_target) as db:
        migrate(db)
    uuids = _seed(r)
    with _write_lock(store_target):
        victim = _start_consumer(tmp_path, store_target, redis_url, "victim")
        try:
            wait_for(lambda: _pending(r).get("victim") == N + 1, timeout=30,
                     message="the consumer to hold the whole batch")
        finally:
            _kill(victim)
    assert _records(store_target) == []
    with open_database(store_target) as db:
        heir = CdrConsumer(r, db, "heir", claim_idle_ms=1)
        assert _drain(heir) == N
    assert sorted(u for u, _ in _records(store_target)) == sorted(uuids)
    assert _pending(r) == {}


@pytest.mark.slow
def test_a_consumer_killed_between_its_commit_and_its_ack_duplicates_nothing(
        tmp_path: Path, redis_url: str, store_target: str) -> None:
    r = redis.Redis.from_url(redis_url)
    with open_database(store_target) as db:
        migrate(db)
    uuids = _seed(r)
    paused = False
    try:
        with _write_lock(store_target):
            victim = _start_consumer(tmp_path, store_target, redis_url, "victim")
            try:
                wait_for(lambda: _pending(r).get("victim") == N + 1, timeout=30,
                         message="the consumer to hold the whole batch")
            except BaseException:
                _kill(victim)
                raise
            # Its XACK will wait: writes are paused, reads (XPENDING below) are not.
            r.execute_command("CLIENT", "PAUSE", "60000", "WRITE")
            paused = True
        try:
            wait_for(lambda: len(_records(store_target)) == N, timeout=30,
                     message="the consumer's commit")
        finally:
            _kill(victim)
        r.execute_command("CLIENT", "UNPAUSE")
        paused = False
    finally:
        if paused:
            r.execute_command("CLIENT", "UNPAUSE")
    assert _pending(r) == {"victim": N + 1}       # stored, never acknowledged
    with open_database(store_target) as db:
        heir = CdrConsumer(r, db, "heir", claim_idle_ms=1)
        assert _drain(heir) == 0                  # all of it was already there
    assert sorted(u for u, _ in _records(store_target)) == sorted(uuids)
    assert _pending(r) == {}


def test_a_store_that_fails_keeps_the_batch_pending_for_the_next_step(
        tmp_path: Path, redis_url: str) -> None:
    r = redis.Redis.from_url(redis_url)
    target = str(tmp_path / "records.sqlite3")
    append(r, summary("u1"))
    with open_database(target) as db:            # not migrated: the insert fails
        consumer = CdrConsumer(r, db, "c1")
        with pytest.raises(sqlite3.OperationalError):
            consumer.step()
        assert _pending(r) == {"c1": 1}
        migrate(db)
        assert _drain(consumer) == 1
    assert _records(target) == [("u1", "acme")] and _pending(r) == {}
