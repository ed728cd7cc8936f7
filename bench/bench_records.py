"""Call records: how fast the consumer stores them, and how long a call waits to be stored.

* throughput: N summaries already on the streams (10 tenants), drained by one consumer in
  batches of 500, into SQLite (WAL, a file in a temp dir) and PostgreSQL (a private server,
  ``records.pg_server``: fsync off, so this is the consumer's cost, not a disk's);
* lag: summaries appended at 200 calls/s (the issue's load) while one consumer runs; lag is
  the time from the append to the end of the step that committed and acknowledged it.
Target (issue 9): p99 lag under 1 s.
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import redis

from cc_core.flow.hangup import append_summary
from cc_core.redis_server import PrivateRedis
from records import cdr
from records.consumer import POLL_S, CdrConsumer
from records.db import open_database
from records.migrate import migrate
from records.pg_server import PrivatePostgres, server_bin_dir

NOTES = ["(records: PostgreSQL runs with fsync off; SQLite with synchronous=NORMAL in WAL)"]
LAG_RATE = 200.0


def _summary(uuid: str, tenant: str, now_ms: int) -> dict[str, Any]:
    return {"uuid": uuid, "tenant": tenant, "dnis": "4008001234", "caller": "13311112222",
            "caller_kind": "mobile", "province": "广东", "city": "深圳", "answer_mode": "ivr",
            "path": ["menu:main", "1", "queue:sales"], "outcome": "answered_by_agent",
            "queue": "sales", "agent": "a1", "hangup_cause": "NORMAL_CLEARING",
            "ended_at_ms": now_ms, "billsec": "60", "start_ms": now_ms - 90_000,
            "answer_ms": now_ms - 90_000, "bridge_ms": now_ms - 60_000, "end_ms": now_ms,
            "joined_ms": now_ms - 80_000, "agent_answered_ms": now_ms - 60_000,
            "timezone": "Asia/Shanghai", "hangup_side": "caller"}


def _append(r: Any, s: dict[str, Any]) -> None:
    append_summary(r, s)


def _throughput(url: str, target: str, n: int) -> dict[str, object]:
    r = redis.Redis.from_url(url)
    r.flushall()
    now = int(time.time() * 1000)
    for i in range(n):
        _append(r, _summary(f"u{i}", f"t{i % 10}", now))
    with open_database(target) as db:
        migrate(db)
        consumer = CdrConsumer(r, db, "bench", batch=500)
        t0 = time.perf_counter()
        stored = 0
        while True:
            step = consumer.step()
            stored += step.stored
            if step.read == 0:
                break
        dt = time.perf_counter() - t0
    return {"records": stored, "seconds": f"{dt:.2f}", "records/s": f"{stored / dt:.0f}"}


def _lag(url: str, target: str, seconds: float) -> dict[str, object]:
    r = redis.Redis.from_url(url)
    r.flushall()
    total = int(seconds * LAG_RATE)
    stop = threading.Event()

    def produce() -> None:
        producer = redis.Redis.from_url(url)
        t0 = time.monotonic()
        for i in range(total):
            delay = t0 + i / LAG_RATE - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            _append(producer, _summary(f"l{i}", f"t{i % 10}", int(time.time() * 1000)))
        stop.set()

    batch: list[cdr.CallRecord] = []
    real_store = cdr.store

    def spy(tx: Any, records: list[cdr.CallRecord]) -> int:
        batch.extend(records)
        return real_store(tx, records)

    lags: list[float] = []
    cdr.store = spy
    try:
        with open_database(target) as db:
            migrate(db)
            consumer = CdrConsumer(r, db, "bench-lag", batch=500)
            thread = threading.Thread(target=produce, daemon=True)
            thread.start()
            while len(lags) < total:
                batch.clear()
                step = consumer.step()
                done_ms = time.time() * 1000
                lags.extend(done_ms - rec.end_ms for rec in batch)
                if step.read < consumer.batch:
                    if stop.is_set() and len(lags) >= total:
                        break
                    time.sleep(POLL_S)   # as CdrConsumer.run: at once after a full batch only
            thread.join()
    finally:
        cdr.store = real_store
    lags.sort()
    return {"calls": len(lags), "rate/s": int(LAG_RATE),
            "lag p50 ms": f"{lags[len(lags) // 2]:.0f}",
            "lag p99 ms": f"{lags[int(len(lags) * 0.99) - 1]:.0f}",
            "lag max ms": f"{lags[-1]:.0f}"}


def run(quick: bool = False) -> list[dict[str, object]]:
    n = 2_000 if quick else 20_000
    seconds = 3.0 if quick else 20.0
    rows: list[dict[str, object]] = []
    with PrivateRedis() as rs, tempfile.TemporaryDirectory() as tmp:
        stores: list[tuple[str, Any]] = [("SQLite", lambda name: str(Path(tmp) / name))]
        pg = PrivatePostgres().start() if server_bin_dir() is not None else None
        try:
            if pg is not None:
                stores.append(("PostgreSQL", pg.create_database))
            for label, make in stores:
                rows.append({"store": label, "measure": "drain",
                             **_throughput(rs.url, make("drain"), n)})
                rows.append({"store": label, "measure": "lag",
                             **_lag(rs.url, make("lag"), seconds)})
        finally:
            if pg is not None:
                pg.stop()
    return rows
