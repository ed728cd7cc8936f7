"""Stores the finished calls' summaries as call records, each exactly once.

A Redis consumer group (``keys.CDR_GROUP``) over every tenant's calls stream
(``keys.calls_stream``, named by ``keys.calls_tenants``, so a tenant's first call needs no
set-up). Each step:

1. entries this consumer was handed earlier and has not acknowledged (a store that failed, or
   the same ``--name`` restarted): retried first;
2. entries a dead consumer left pending longer than ``claim_idle_ms``: taken over (XAUTOCLAIM);
3. new entries (XREADGROUP ``>``);

then one SQL transaction writes their records (``INSERT … ON CONFLICT (call_uuid) DO
NOTHING``), and only after its commit are the entries acknowledged (XACK). A consumer killed
before the commit leaves its entries pending, and another takes them over; killed between the
commit and the XACK, the records are already there and the second write changes nothing. A
summary appended twice is one record too. Entries that cannot be a record (undecodable) are
logged with their stream id and acknowledged: they would never become readable by waiting.

Where it runs: ``cc-core cdr consume`` (its own process: the call-handling workers never wait
on SQL, and the store can be down for hours with calls going on) and, for a one-box install
on SQLite, optionally inside each worker as one greenlet (``records.consume_in_worker``). Both
are members of the same group, so any mix of them stores each call once.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgpack
from redis.exceptions import RedisError, ResponseError

from cc_core import keys
from cc_core.errors import CcCoreError
from recordings import index as recordings_index
from records import cdr
from records.db import Database, driver_errors

log = logging.getLogger(__name__)

BATCH = 500
CLAIM_IDLE_MS = 60_000        # an entry pending this long belongs to a consumer that died
POLL_S = 0.2                  # nothing new anywhere: look again after this long
RESCAN_S = 60.0               # how often to SCAN for streams the tenants' set does not name
STORE_RETRY_S = 2.0           # the store failed: wait before trying the same entries again
# Contract years that begin (a tenant's included minutes renew) are opened and published this
# often: a live call is held to a past year's minutes for at most this long after midnight.
YEAR_CHECK_S = 60.0
DEAD_CONSUMER_IDLE_MS = 3_600_000  # a group member with nothing pending, idle this long: removed


def default_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass
class StepResult:
    read: int = 0          # entries handled (stored, already stored, or unreadable)
    stored: int = 0        # new records
    bad: int = 0           # entries that were no summary


def _tenant_of(stream: str) -> str:
    """The tenant of a ``keys.calls_stream`` key (``cc:{t:<tenant>}:calls``), for logs."""
    head, _, rest = stream.partition("{t:")
    return rest.partition("}")[0] if head else ""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class CallStreams:
    """Finds every tenant's calls stream: the set the hang-up pipeline adds each tenant to
    (read on each call: a new tenant's first call waits for no scan), and, every
    ``rescan_s``, a SCAN for streams written before that set existed. Read only: the record
    consumer and the backlog metrics (``metrics.business``) share it."""

    def __init__(self, redis: Any, clock: Callable[[], float] = time.monotonic,
                 rescan_s: float = RESCAN_S) -> None:
        self.redis = redis
        self.rescan_s = rescan_s
        self._clock = clock
        self._scanned: set[str] = set()
        self._scanned_at: float | None = None

    def find(self) -> tuple[set[str], bool]:
        """(the streams, whether this call rescanned)."""
        found = {keys.calls_stream(_text(t)) for t in self.redis.smembers(keys.calls_tenants())}
        now = self._clock()
        rescanned = self._scanned_at is None or now - self._scanned_at >= self.rescan_s
        if rescanned:
            self._scanned = {_text(k) for k in self.redis.scan_iter(
                match=keys.calls_stream_pattern(), count=1000, _type="STREAM")}
            self._scanned_at = now
        return found | self._scanned, rescanned


class CdrConsumer:
    def __init__(self, redis: Any, db: Database, name: str | None = None, *,
                 batch: int = BATCH, claim_idle_ms: int = CLAIM_IDLE_MS,
                 rescan_s: float = RESCAN_S, clock: Callable[[], float] = time.monotonic,
                 rater: Any = None) -> None:
        self.redis = redis
        # billing.service.Rater: rates the batch's calls in the same transaction (issue 9).
        self.rater = rater
        self.db = db
        self.name = name or default_name()
        self.batch = batch
        self.claim_idle_ms = claim_idle_ms
        self._clock = clock
        self._finder = CallStreams(redis, clock, rescan_s)
        self._streams: list[str] = []

    # ---- streams and the group --------------------------------------------------------------
    def streams(self) -> list[str]:
        """Every tenant's calls stream: the set the hang-up pipeline adds each tenant to (read
        each step: a new tenant's first call waits for no scan), and, every ``rescan_s``, a
        SCAN for streams written before that set existed."""
        found, rescanned = self._finder.find()
        if rescanned:
            self._forget_dead_consumers()
        known = set(self._streams)
        for stream in sorted(found - known):
            self._ensure_group(stream)
        if found != known:
            self._streams = sorted(found)
        return self._streams

    def _ensure_group(self, stream: str) -> None:
        try:
            # From the stream's first entry: summaries written before any consumer ran count.
            self.redis.xgroup_create(stream, keys.CDR_GROUP, id="0")
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _forget_dead_consumers(self) -> None:
        for stream in self._streams:
            try:
                members = self.redis.xinfo_consumers(stream, keys.CDR_GROUP)
            except ResponseError:
                continue
            for member in members:
                name = _text(member.get("name", ""))
                if (name != self.name and int(member.get("pending", 0)) == 0
                        and int(member.get("idle", 0)) > DEAD_CONSUMER_IDLE_MS):
                    self.redis.xgroup_delconsumer(stream, keys.CDR_GROUP, name)

    # ---- one batch ---------------------------------------------------------------------------
    def _read(self, streams: list[str]) -> list[tuple[str, str, Any]]:
        """Up to ``batch`` entries (stream, id, fields): ours first, then orphans, then new."""
        out: list[tuple[str, str, Any]] = []
        for stream in streams:
            room = self.batch - len(out)
            if room <= 0:
                return out
            for _, entries in self._group_read(stream, "0", room):
                out.extend((stream, _text(i), f) for i, f in entries)
        for stream in streams:
            room = self.batch - len(out)
            if room <= 0:
                return out
            reply = self.redis.xautoclaim(stream, keys.CDR_GROUP, self.name,
                                          min_idle_time=self.claim_idle_ms, start_id="0-0",
                                          count=room)
            claimed = reply[1]
            if len(reply) > 2 and reply[2]:
                # Trimmed off the stream (MAXLEN) before any consumer stored them.
                log.error("call summaries lost before they were stored: trimmed from the stream",
                          extra={"stream": stream, "ids": [_text(i) for i in reply[2]]})
            out.extend((stream, _text(i), f) for i, f in claimed)
        for stream in streams:
            room = self.batch - len(out)
            if room <= 0:
                return out
            for _, entries in self._group_read(stream, ">", room):
                out.extend((stream, _text(i), f) for i, f in entries)
        return out

    def _group_read(self, stream: str, start: str, count: int) -> list[Any]:
        try:
            return list(self.redis.xreadgroup(keys.CDR_GROUP, self.name, {stream: start},
                                              count=count) or [])
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            # The stream was deleted and made again since we scanned it.
            self._ensure_group(stream)
            return []

    def step(self) -> StepResult:
        """Reads, stores and acknowledges one batch; raises the store's or Redis's errors."""
        result = StepResult()
        entries = self._read(self.streams())
        if not entries:
            return result
        now_ms = int(time.time() * 1000)
        records: dict[str, cdr.CallRecord] = {}
        indexed: dict[str, recordings_index.Recording] = {}
        for stream, entry_id, fields in entries:
            try:
                raw = (fields or {}).get(b"call") or (fields or {}).get("call")
                if raw is None:
                    raise cdr.BadSummary("no 'call' field (trimmed or foreign entry)")
                summary = msgpack.unpackb(raw, raw=False)
                record = cdr.from_summary(summary, source_id=f"{stream}/{entry_id}",
                                          stored_ms=now_ms)
            except (cdr.BadSummary, ValueError, TypeError, msgpack.UnpackException) as exc:
                result.bad += 1
                log.error("stream entry is no call summary; acknowledged without a record: %s",
                          exc, extra={"stream": stream, "entry": entry_id,
                                      "tenant": _tenant_of(stream)})
                continue
            # The same call twice in one batch: the first is the one stored.
            if record.call_uuid not in records:
                records[record.call_uuid] = record
                row = recordings_index.from_summary(summary, record.end_ms, now_ms)
                if row is not None and row.name == record.recording_path:
                    indexed[row.call_uuid] = row
        booked: list[Any] = []
        with self.db.transaction() as tx:
            result.stored = cdr.store(tx, list(records.values()))
            # With its record, in one transaction: the index and recording_path agree.
            recordings_index.store(tx, list(indexed.values()))
            if self.rater is not None:
                # Every record of the batch, new or not: one stored by a consumer that died
                # before rating it is rated now; one rated already is left as it is.
                booked = self.rater.rate(tx, list(records))
        if booked:
            self.rater.published(self.db, booked)
        # Only now: a kill before this line leaves the entries pending for another consumer.
        by_stream: dict[str, list[str]] = {}
        for stream, entry_id, _ in entries:
            by_stream.setdefault(stream, []).append(entry_id)
        pipe = self.redis.pipeline(transaction=False)
        for stream, ids in by_stream.items():
            pipe.xack(stream, keys.CDR_GROUP, *ids)
        pipe.execute()
        result.read = len(entries)
        log.info("call records stored", extra={
            "consumer": self.name, "entries": result.read, "new_records": result.stored,
            "duplicates": len(entries) - result.bad - result.stored, "bad": result.bad})
        return result

    def run(self, stopping: Callable[[], bool], sleep: Callable[[float], None] = time.sleep,
            poll_s: float = POLL_S) -> None:
        """Steps until ``stopping()``; a failing store or Redis is retried, never fatal."""
        log.info("call-record consumer started",
                 extra={"consumer": self.name, "store": repr(self.db)})
        faults = driver_errors() + (RedisError, OSError)
        years_checked = float("-inf")
        while not stopping():
            try:
                if self.rater is not None and time.monotonic() - years_checked >= YEAR_CHECK_S:
                    years_checked = time.monotonic()
                    self.rater.new_years(self.db)
                done = self.step()
            except faults as exc:
                log.warning("could not store call records: %r; retrying in %.0f s",
                            exc, STORE_RETRY_S, extra={"consumer": self.name})
                # A broken connection is reopened on the next transaction.
                self.db.close()
                sleep(STORE_RETRY_S)
                continue
            if done.read < self.batch:
                sleep(poll_s)
        log.info("call-record consumer stopped", extra={"consumer": self.name})


def run_in_worker(redis: Any, target: str, name: str, stopping: Callable[[], bool],
                  sleep: Callable[[float], None]) -> None:
    """The consumer as one greenlet of a worker (``records.consume_in_worker``): opens and
    migrates the store, then steps until the worker drains. Never raises: a store that cannot
    be opened is retried, and calls go on meanwhile.

    A SQLite write holds the worker's hub for its duration (a batch: milliseconds); that is
    the price of a one-box install without a separate process."""
    from records.db import open_database
    from records.migrate import migrate

    faults = driver_errors() + (RedisError, OSError, CcCoreError)
    while not stopping():
        db = open_database(target)
        try:
            migrate(db)
            from billing.service import Rater

            CdrConsumer(redis, db, name, rater=Rater(redis)).run(stopping, sleep=sleep)
        except faults as exc:
            log.error("call-record consumer cannot use the store: %s; retrying in %.0f s",
                      exc, STORE_RETRY_S, extra={"consumer": name})
            sleep(STORE_RETRY_S)
        finally:
            db.close()
