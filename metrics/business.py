"""Business metrics of the deployment, exported once by ``cc-core metrics serve`` (like the queue
KPIs of ``metrics.queues``): read from shared state when scraped, never summed across workers.

* **Call-record backlog** (``cccore_records_backlog_*``, labels ``tenant``, ``group``): per
  tenant's calls stream, the summaries the record consumer's group (``keys.CDR_GROUP``) has not
  stored yet, and the age of the oldest of them. Entries = the group's ``lag`` (XINFO GROUPS),
  plus its pending entries (handed to a consumer, not acknowledged: not committed); when Redis
  cannot tell the lag (an entry deleted inside the unread range), the unread entries are
  counted, up to ``MAX_COUNTED``. A stream no consumer has opened yet counts whole: the
  consumer creates its group from the stream's first entry. The age comes from the oldest
  unstored entry's stream id (its milliseconds are the time Redis appended it).
* **Prepaid credit** (``cccore_billing_*``, label ``tenant``): per configured tenant whose
  account billing published into the credit view (``billing.credit``), the committed balance
  and the low-credit threshold, in integer fen. Money is never a float in this code; a
  Prometheus sample is a float64, which holds every fen amount below 2**53 exactly, so the
  gauges carry fen (``_fen``) and the dashboards divide by 100 for display. "Low" is the flag
  billing's publish script keeps (``low``: balance at or under the threshold, set when it
  raises the ``low_credit`` event, cleared with ``credit_restored``): the alert and the
  dashboards say what the stream of events says, not a second rule.
* **Recordings disk** (``cccore_recordings_*``): bytes and files under the recordings root,
  summed by a walk of the tree in a native thread every ``walk_s`` (the scrape reads the cached
  total and its age), and the root's filesystem size and space available (``os.statvfs`` at
  each scrape, cheap). A walk rather than the recordings index' ``size`` column: the index
  learns a recording's size only when its call record is stored, so it undercounts exactly
  while the record backlog grows or the SQL store is down, and it never sees files the index
  does not name (a recording in progress, an orphan); the disk fills with what is on it.

Labels: tenants from the configuration (or the tenant tag of a stream key the hang-up pipeline
wrote for a configured tenant), the group name; never a call UUID nor a caller number.

A scrape that cannot read Redis carries none of the Redis-backed series and adds one to
``cccore_business_scrape_errors_total``; the disk series do not depend on Redis.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.exceptions import RedisError, ResponseError

from cc_core import keys
from metrics import NAMESPACE, full_name
from records.consumer import RESCAN_S, CallStreams

log = logging.getLogger(__name__)

MAX_COUNTED = 100_000      # unread entries counted one by one, at most, when Redis has no lag
WALK_S = 300.0             # the recordings tree is summed this often (bounded work per hour)

#: configured tenant ids, asked at each scrape.
TenantIds = Callable[[], Iterable[str]]


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _id_ms(stream_id: Any) -> int:
    return int(_text(stream_id).partition("-")[0])


def _tenant_of(stream: str) -> str:
    head, _, rest = stream.partition("{t:")
    return rest.partition("}")[0] if head else ""


@dataclass(frozen=True)
class Backlog:
    tenant: str
    group: str
    entries: int
    oldest_ms: int | None      # stream-id time of the oldest unstored entry; None: nothing


@dataclass(frozen=True)
class TenantCredit:
    tenant: str
    balance_fen: int
    low_credit_fen: int
    low: bool


class RecordsBacklogReader:
    """Read only (no group is created, no consumer removed): a scrape never changes what the
    record consumer sees."""

    def __init__(self, redis: Any, clock: Callable[[], float] = time.monotonic,
                 rescan_s: float = RESCAN_S) -> None:
        self.redis = redis
        self._clock = clock
        self._finder = CallStreams(redis, clock, rescan_s)

    def streams(self) -> list[str]:
        return sorted(self._finder.find()[0])

    def read(self) -> list[Backlog]:
        streams = self.streams()
        if not streams:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for s in streams:
            pipe.xinfo_groups(s)
            pipe.xrange(s, count=1)
        raw = pipe.execute(raise_on_error=False)
        out = []
        for i, stream in enumerate(streams):
            groups, first = raw[2 * i], raw[2 * i + 1]
            if isinstance(groups, ResponseError) or isinstance(first, ResponseError):
                continue            # the stream went away between the SCAN and this read
            if isinstance(groups, Exception):
                raise groups
            if isinstance(first, Exception):
                raise first
            group = next((g for g in groups if _text(g.get("name")) == keys.CDR_GROUP), None)
            out.append(self._backlog(stream, group, first))
        return out

    def _backlog(self, stream: str, group: dict[str, Any] | None, first: list[Any]
                 ) -> Backlog:
        tenant = _tenant_of(stream)
        if group is None:
            # No consumer has run yet: its group will start at the first entry.
            n = int(self.redis.xlen(stream))
            return Backlog(tenant, keys.CDR_GROUP, n, _id_ms(first[0][0]) if first else None)
        pending = int(group.get("pending") or 0)
        last = _text(group.get("last-delivered-id") or "0-0")
        lag = group.get("lag")
        unread = int(lag) if lag is not None else self._count_after(stream, last)
        oldest: int | None = None
        if pending:
            summary = self.redis.xpending(stream, keys.CDR_GROUP)
            if summary and summary.get("min"):
                oldest = _id_ms(summary["min"])
        if oldest is None and unread:
            after = self.redis.xrange(stream, min=f"({last}", count=1)
            oldest = _id_ms(after[0][0]) if after else None
        return Backlog(tenant, keys.CDR_GROUP, pending + unread, oldest)

    def _count_after(self, stream: str, last: str) -> int:
        """Entries after ``last``, counted by pages (Redis' lag is unknown)."""
        n, start = 0, f"({last}"
        while n < MAX_COUNTED:
            page = self.redis.xrange(stream, min=start, count=1000)
            n += len(page)
            if len(page) < 1000:
                break
            start = f"({_text(page[-1][0])}"
        return min(n, MAX_COUNTED)


def read_credit(redis: Any, tenants: Iterable[str]) -> list[TenantCredit]:
    """The published credit view of each tenant that has one (read only)."""
    ids = list(dict.fromkeys(tenants))
    if not ids:
        return []
    pipe = redis.pipeline(transaction=False)
    for t in ids:
        pipe.hmget(keys.credit(t), "seq", "balance_fen", "low_credit_fen", "low")
    out = []
    for t, (seq, balance, threshold, low) in zip(ids, pipe.execute(), strict=True):
        if seq is None or balance is None:
            continue            # no billing account published: its calls are not controlled
        out.append(TenantCredit(t, int(_text(balance)), int(_text(threshold or b"0")),
                                _text(low or b"0") == "1"))
    return out


@dataclass(frozen=True)
class DiskUsage:
    used_bytes: int
    files: int
    done_at: float          # time.time() the walk ended


class RecordingsDisk:
    """The recordings tree's size, summed in the background; the filesystem's, at once."""

    def __init__(self, root: str, walk_s: float = WALK_S) -> None:
        self.root = root
        self.walk_s = walk_s
        self.usage: DiskUsage | None = None
        self._stop = threading.Event()

    def refresh(self) -> DiskUsage | None:
        """One walk now (in the caller's thread)."""
        return self._record(self._measure())

    def _measure(self) -> DiskUsage | OSError:
        # Runs in a native thread under gevent: no logging here (its locks are the hub's).
        try:
            used, files = _walk(self.root)
        except OSError as exc:
            return exc
        return DiskUsage(used, files, time.time())

    def _record(self, found: DiskUsage | OSError) -> DiskUsage | None:
        if isinstance(found, OSError):
            log.warning("recordings disk usage not measured: cannot walk %s (%s); check "
                        "--recordings-root and that this process may read it", self.root, found)
            self.usage = None
            return None
        self.usage = found
        return found

    def start(self) -> None:
        """Walk every ``walk_s`` until ``stop()``: under gevent in the hub's native thread pool
        (os.scandir would otherwise hold every scrape for the walk's length), else in a
        thread."""
        from gevent import monkey

        if monkey.is_module_patched("threading"):
            import gevent

            def in_pool() -> None:
                while not self._stop.is_set():
                    self._record(gevent.get_hub().threadpool.apply(self._measure))
                    self._stop.wait(self.walk_s)

            gevent.spawn(in_pool)
        else:
            def loop() -> None:
                while not self._stop.is_set():
                    self.refresh()
                    self._stop.wait(self.walk_s)

            threading.Thread(target=loop, name="recordings-disk", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def filesystem(self) -> tuple[int, int] | None:
        """(size, available to this core) bytes of the root's filesystem; None if unreadable."""
        try:
            st = os.statvfs(self.root)
        except OSError:
            return None
        return st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize


def _walk(root: str) -> tuple[int, int]:
    used = files = 0
    stack = [root]
    os.stat(root)           # a missing root is an error, not 0 bytes
    while stack:
        try:
            it = os.scandir(stack.pop())
        except FileNotFoundError:
            continue        # removed by retention while we walked
        with it:
            for entry in it:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    elif entry.is_file(follow_symlinks=False):
                        # Blocks allocated, not the length: a sparse or preallocated file
                        # takes what the disk gives it.
                        used += entry.stat(follow_symlinks=False).st_blocks * 512
                        files += 1
                except FileNotFoundError:
                    continue
    return used, files


class BusinessCollector(Collector):
    def __init__(self, redis: Any, tenants: TenantIds, errors: Counter,
                 disk: RecordingsDisk | None = None,
                 clock_ms: Callable[[], int] = lambda: int(time.time() * 1000)) -> None:
        self.redis = redis
        self._tenants = tenants
        self._errors = errors
        self._backlog = RecordsBacklogReader(redis)
        self._disk = disk
        self._clock = clock_ms

    def describe(self) -> Iterator[Metric]:
        yield from self._redis_families()
        if self._disk is not None:
            yield from self._disk_families()

    def collect(self) -> Iterator[Metric]:
        yield from self._collect_redis()
        if self._disk is not None:
            yield from self._collect_disk(self._disk)

    def _collect_redis(self) -> Iterator[Metric]:
        try:
            backlog = self._backlog.read()
            credit = read_credit(self.redis, self._tenants())
        except RedisError as exc:
            self._errors.inc()
            log.warning("business metrics not exported this scrape: cannot read Redis "
                        "(%s: %s); check that Redis is up and reachable", type(exc).__name__,
                        exc)
            return
        except Exception:  # noqa: BLE001 - a bug here must not fail the whole scrape either
            self._errors.inc()
            log.exception("business metrics not exported this scrape: reading them failed")
            return
        entries, age, balance, threshold, low, low_n = self._redis_families()
        now = self._clock()
        for b in backlog:
            entries.add_metric([b.tenant, b.group], b.entries)
            age.add_metric([b.tenant, b.group],
                           max(0.0, (now - b.oldest_ms) / 1000) if b.oldest_ms else 0.0)
        for c in credit:
            balance.add_metric([c.tenant], c.balance_fen)
            threshold.add_metric([c.tenant], c.low_credit_fen)
            low.add_metric([c.tenant], 1 if c.low else 0)
        low_n.add_metric([], sum(1 for c in credit if c.low))
        yield from (entries, age, balance, threshold, low, low_n)

    @staticmethod
    def _redis_families() -> tuple[GaugeMetricFamily, ...]:
        tg = ["tenant", "group"]
        return (
            GaugeMetricFamily(
                full_name("records", "backlog_entries"), "Finished calls' summaries the call-"
                "record consumer group has not stored yet (unread + pending), per tenant's "
                "calls stream", labels=tg),
            GaugeMetricFamily(
                full_name("records", "backlog_oldest_age", "seconds"), "Age of the oldest "
                "summary not stored yet (from its stream id); 0 when none waits", labels=tg),
            GaugeMetricFamily(
                full_name("billing", "credit_balance_fen"), "Prepaid credit of the tenant's "
                "account as billing last published it (committed balance, live calls not "
                "deducted), in fen (integer; 100 fen = 1 yuan)", labels=["tenant"]),
            GaugeMetricFamily(
                full_name("billing", "low_credit_threshold_fen"), "The account's low-credit "
                "threshold, in fen", labels=["tenant"]),
            GaugeMetricFamily(
                full_name("billing", "credit_low"), "1 while the tenant's credit is at or under "
                "its low-credit threshold (billing's low_credit event raised, not yet "
                "restored), else 0", labels=["tenant"]),
            GaugeMetricFamily(
                full_name("billing", "low_credit_tenants"), "Tenants whose credit is at or "
                "under their low-credit threshold"),
        )

    def _collect_disk(self, disk: RecordingsDisk) -> Iterator[Metric]:
        used, files, age, size, avail = self._disk_families()
        usage = disk.usage
        if usage is not None:
            used.add_metric([], usage.used_bytes)
            files.add_metric([], usage.files)
            age.add_metric([], max(0.0, self._clock() / 1000 - usage.done_at))
        fs = disk.filesystem()
        if fs is not None:
            size.add_metric([], fs[0])
            avail.add_metric([], fs[1])
        yield from (used, files, age, size, avail)

    @staticmethod
    def _disk_families() -> tuple[GaugeMetricFamily, ...]:
        return (
            GaugeMetricFamily(full_name("recordings", "disk_used", "bytes"), "Bytes the files "
                              "under the recordings root take on disk, as of the last walk"),
            GaugeMetricFamily(full_name("recordings", "files"), "Files under the recordings "
                              "root, as of the last walk"),
            GaugeMetricFamily(full_name("recordings", "disk_walk_age", "seconds"), "Time "
                              "since the last walk of the recordings root ended"),
            GaugeMetricFamily(full_name("recordings", "filesystem_size", "bytes"), "Size of "
                              "the filesystem holding the recordings root"),
            GaugeMetricFamily(full_name("recordings", "filesystem_avail", "bytes"), "Bytes of "
                              "that filesystem available to unprivileged writers (the switch)"),
        )


class BusinessMetrics:
    """The business collector and its error counter, registered on ``registry``."""

    def __init__(self, registry: CollectorRegistry | None, redis: Any, tenants: TenantIds,
                 disk: RecordingsDisk | None = None, *,
                 clock_ms: Callable[[], int] | None = None) -> None:
        self.errors = Counter(
            "scrape_errors", "Scrapes whose business metrics (record backlog, credit) could "
            "not be read from Redis (those series are missing from that scrape)",
            namespace=NAMESPACE, subsystem="business", registry=None)
        extra = {} if clock_ms is None else {"clock_ms": clock_ms}
        self.collector = BusinessCollector(redis, tenants, self.errors, disk, **extra)
        if registry is not None:
            registry.register(self.collector)
            registry.register(self.errors)
