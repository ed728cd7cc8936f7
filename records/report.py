"""Reading call records back: ``cc-core cdr export`` and ``cc-core cdr report`` (呼叫报表).

A period is given in the tenant's own time zone (the one its records carry, Asia/Shanghai
unless the tenant configures another): ``--from 2026-11-01 --to 2026-11-30`` is the whole of
both days; a time (``2026-11-01T09:00``) is taken as it is, ``--to`` excluded. A call belongs to
the period its start falls in.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from records.cdr import COLUMNS, DEFAULT_TIMEZONE, Disposition
from records.db import Database
from records.errors import BadPeriod, UnknownRecordsTenant

CHART_WIDTH = 40
_TIMES = ("start_ms", "answer_ms", "end_ms", "agent_answer_ms")
_DURATIONS = ("wait_ms", "talk_ms")
# What an export shows: times as ISO 8601 in the tenant's zone, durations in seconds.
EXPORT_COLUMNS = [
    {"start_ms": "start", "answer_ms": "answer", "end_ms": "end",
     "agent_answer_ms": "agent_answer", "wait_ms": "wait_s", "talk_ms": "talk_s"}.get(c, c)
    for c in COLUMNS if c not in ("stored_ms", "source_id")]


@dataclass(frozen=True)
class Period:
    tenant: str
    tz: ZoneInfo
    start: datetime      # aware, inclusive
    end: datetime        # aware, exclusive

    @property
    def start_ms(self) -> int:
        return int(self.start.timestamp() * 1000)

    @property
    def end_ms(self) -> int:
        return int(self.end.timestamp() * 1000)

    def describe(self) -> str:
        return (f"{self.start:%Y-%m-%d %H:%M} to {self.end:%Y-%m-%d %H:%M} "
                f"({self.tz.key}, end excluded)")


def tenant_timezone(db: Database, tenant: str) -> ZoneInfo:
    """The zone of the tenant's latest record; ``UnknownRecordsTenant`` when it has none."""
    with db.transaction(write=False) as tx:
        row = tx.execute("SELECT timezone FROM call_records WHERE tenant = ? "
                         "ORDER BY start_ms DESC LIMIT 1", (tenant,)).fetchone()
        if row is None:
            known = [r[0] for r in tx.execute(
                "SELECT DISTINCT tenant FROM call_records ORDER BY tenant LIMIT 20").fetchall()]
    if row is None:
        listed = ", ".join(known) if known else "none yet"
        raise UnknownRecordsTenant(
            f"unknown tenant {tenant!r}: the record store has no call of it (tenants with "
            f"records: {listed}); check the tenant id, or that `cc-core cdr consume` runs")
    return zone(str(row[0]))


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or DEFAULT_TIMEZONE)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise BadPeriod(f"unknown time zone {name!r}: give an IANA name such as "
                        "Asia/Shanghai") from exc


def _moment(text: str, tz: ZoneInfo, flag: str, end: bool) -> datetime:
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime(day.year, day.month, day.day, tzinfo=tz)
            return moment + timedelta(days=1) if end else moment
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise BadPeriod(f"{flag} {text!r}: expected a date (2026-11-01) or a date and time "
                        "(2026-11-01T09:30) in the tenant's time zone") from None
    if parsed.tzinfo is not None:
        raise BadPeriod(f"{flag} {text!r}: give the time without a zone; it is read in the "
                        f"tenant's ({tz.key})")
    return parsed.replace(tzinfo=tz)


def period(tenant: str, tz: ZoneInfo, start: str, end: str,
           now: datetime | None = None) -> Period:
    """The period ``--from start --to end``; ``BadPeriod`` says what is wrong with it."""
    first = _moment(start, tz, "--from", end=False)
    last = _moment(end, tz, "--to", end=True)
    if first >= last:
        raise BadPeriod(f"--from {start} is not before --to {end}: swap them, or widen the "
                        "period")
    current = now or datetime.now(UTC)
    if first > current:
        raise BadPeriod(f"--from {start} is in the future (now is "
                        f"{current.astimezone(tz):%Y-%m-%d %H:%M} {tz.key}): no call can have "
                        "started then")
    return Period(tenant, tz, first, last)


def rows(db: Database, p: Period) -> Iterator[dict[str, Any]]:
    """The tenant's records that started in the period, oldest first, as stored."""
    with db.transaction(write=False) as tx:
        tx.execute(f"SELECT {', '.join(COLUMNS)} FROM call_records WHERE tenant = ? "
                   "AND start_ms >= ? AND start_ms < ? ORDER BY start_ms, call_uuid",
                   (p.tenant, p.start_ms, p.end_ms))
        found = tx.fetchall()
    for row in found:
        yield dict(zip(COLUMNS, row, strict=True))


def _shown(row: dict[str, Any], tz: ZoneInfo) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if key in ("stored_ms", "source_id"):
            continue
        if key in _TIMES:
            out[key[:-3]] = (None if value is None else datetime.fromtimestamp(
                value / 1000, tz).isoformat(timespec="milliseconds"))
        elif key in _DURATIONS:
            out[key[:-3] + "_s"] = None if value is None else round(value / 1000, 3)
        elif key == "ivr_path":
            out[key] = json.loads(value or "[]")
        else:
            out[key] = value
    return out


def export(records: Iterable[dict[str, Any]], tz: ZoneInfo, fmt: str, out: TextIO) -> int:
    """Writes the records as ``csv`` or ``jsonl``; how many."""
    count = 0
    writer = None
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
        writer.writeheader()
    for row in records:
        shown = _shown(row, tz)
        if writer is not None:
            shown["ivr_path"] = " > ".join(shown["ivr_path"])
            writer.writerow({k: "" if v is None else v for k, v in shown.items()})
        else:
            out.write(json.dumps(shown, ensure_ascii=False) + "\n")
        count += 1
    return count


@dataclass(frozen=True)
class Report:
    period: Period
    calls: int
    answered: int
    abandoned: int
    abandoned_in_ivr: int
    abandoned_in_queue: int
    average_wait_s: float | None   # over the calls that waited in a queue
    average_talk_s: float | None   # over the answered calls
    by_hour: dict[int, int]        # hour of day (tenant's zone) -> calls started
    busiest: list[tuple[int, int]]  # up to 3 (hour, calls), most calls first, then earliest


def report(records: Iterable[dict[str, Any]], p: Period) -> Report:
    calls = answered = in_ivr = in_queue = 0
    waits: list[int] = []
    talks: list[int] = []
    hours: Counter[int] = Counter()
    for row in records:
        calls += 1
        found = Disposition(row["disposition"])
        answered += found.answered
        in_ivr += found is Disposition.ABANDONED_IN_IVR
        in_queue += found is Disposition.ABANDONED_IN_QUEUE
        if row["wait_ms"] is not None:
            waits.append(int(row["wait_ms"]))
        if found.answered and row["talk_ms"] is not None:
            talks.append(int(row["talk_ms"]))
        hours[datetime.fromtimestamp(row["start_ms"] / 1000, p.tz).hour] += 1
    busiest = sorted(hours.items(), key=lambda hc: (-hc[1], hc[0]))[:3]
    return Report(p, calls, answered, in_ivr + in_queue, in_ivr, in_queue,
                  round(sum(waits) / len(waits) / 1000, 1) if waits else None,
                  round(sum(talks) / len(talks) / 1000, 1) if talks else None,
                  dict(sorted(hours.items())), busiest)


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    whole = int(round(seconds))
    return f"{whole // 60}:{whole % 60:02d}"


def _hour(h: int) -> str:
    return f"{h:02d}:00-{(h + 1) % 24:02d}:00"


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def as_table(r: Report) -> str:
    lines = [f"Calls of {r.period.tenant}, {r.period.describe()}", ""]
    body = [
        ("calls", str(r.calls), ""),
        ("answered", str(r.answered), _share(r.answered, r.calls)),
        ("abandoned", str(r.abandoned), _share(r.abandoned, r.calls)),
        ("  in IVR", str(r.abandoned_in_ivr), ""),
        ("  in queue", str(r.abandoned_in_queue), ""),
        ("average wait", _clock(r.average_wait_s), "m:ss, callers who queued"),
        ("average talk", _clock(r.average_talk_s), "m:ss, answered calls"),
    ]
    for i, (h, n) in enumerate(r.busiest):
        body.append(("busiest hours" if i == 0 else "", _hour(h),
                     f"{n} call" if n == 1 else f"{n} calls"))
    if not r.busiest:
        body.append(("busiest hours", "-", ""))
    width = max(len(b[0]) for b in body)
    lines += [f"{a:<{width}}  {b:>11}  {c}".rstrip() for a, b, c in body]
    if r.by_hour:
        # Where a person would rather look than read: calls started per hour of the day.
        lines += ["", "calls by hour"]
        top = max(r.by_hour.values())
        for h in range(min(r.by_hour), max(r.by_hour) + 1):
            n = r.by_hour.get(h, 0)
            bar = "#" * max(1 if n else 0, round(CHART_WIDTH * n / top))
            lines.append(f"  {h:02d}:00  {bar:<{CHART_WIDTH}}  {n}")
    return "\n".join(lines) + "\n"


def as_csv(r: Report) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["metric", "value"])
    w.writerow(["tenant", r.period.tenant])
    w.writerow(["from", r.period.start.isoformat()])
    w.writerow(["to", r.period.end.isoformat()])
    w.writerow(["calls", r.calls])
    w.writerow(["answered", r.answered])
    w.writerow(["abandoned", r.abandoned])
    w.writerow(["abandoned_in_ivr", r.abandoned_in_ivr])
    w.writerow(["abandoned_in_queue", r.abandoned_in_queue])
    w.writerow(["average_wait_s", "" if r.average_wait_s is None else r.average_wait_s])
    w.writerow(["average_talk_s", "" if r.average_talk_s is None else r.average_talk_s])
    for i, (h, n) in enumerate(r.busiest, 1):
        w.writerow([f"busiest_hour_{i}", _hour(h)])
        w.writerow([f"busiest_hour_{i}_calls", n])
    return buf.getvalue()
