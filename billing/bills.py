"""Bills per cycle: a month (``2026-11``), a quarter (``2026-Q4``) or a year (``2026``), in the
account's time zone. Read only: a bill writes nothing, so a bad period or tenant leaves the
store as it was.

A bill's calls are the tenant's records that started in the period (the same choice as
``cc-core cdr export``, so a bill reconciles with the export of its period), each at the
``billed_fen`` its rating wrote. The other lines are ``billing.fees``: the yearly package fee
on the first day of each contract year (the anniversary of the account's effective date) in
the cycle, at the promotion's fixed fee while one runs; a prorated difference where the
yearly fee changes within a contract year (package change); value-added services outside the
package, per month; the monthly rent, per month. Every line has one day, so a quarter's or a
year's bill is exactly the sum of its months' bills. The total is the sum of all the lines.
Top-ups and adjustments are listed beside it: they move the prepaid balance, not what the
cycle cost.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from billing import accounts, fees
from billing.errors import BadBillPeriod
from provider.catalogue import Catalogue
from provider.catalogue import load as load_catalogue
from records.db import Database

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER = re.compile(r"^(\d{4})-[Qq]([1-4])$")
_YEAR = re.compile(r"^(\d{4})$")


@dataclass(frozen=True)
class Cycle:
    label: str
    kind: str            # month, quarter, year
    year: int
    first_month: int
    months: int


def cycle(text: str) -> Cycle:
    if m := _MONTH.match(text):
        month = int(m[2])
        if not 1 <= month <= 12:
            raise BadBillPeriod(f"period {text!r}: month {month} does not exist; write "
                                "YYYY-MM (e.g. 2026-11)")
        return Cycle(text, "month", int(m[1]), month, 1)
    if m := _QUARTER.match(text):
        return Cycle(text.upper(), "quarter", int(m[1]), 3 * int(m[2]) - 2, 3)
    if m := _YEAR.match(text):
        return Cycle(text, "year", int(m[1]), 1, 12)
    raise BadBillPeriod(f"period {text!r} is not a billing cycle: write a month 2026-11, a "
                        "quarter 2026-Q4 or a year 2026")


@dataclass
class Bill:
    tenant: str
    period: str
    timezone: str
    start: str
    end: str
    complete: bool                  # the cycle has ended
    calls: int = 0
    billable_s: int = 0
    included_s: int = 0
    charged_s: int = 0
    calls_fen: int = 0
    rent_fen: int = 0
    yearly_fee_fen: int = 0         # yearly fees due in the cycle and prorated changes
    services_fen: int = 0
    total_fen: int = 0
    unrated: int = 0                # records of the period not rated yet
    by_kind: dict[str, int] = field(default_factory=dict)
    payments: list[dict[str, Any]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    fees: list[dict[str, Any]] = field(default_factory=list)   # kind, day, amount_fen, detail


def _fields(result: str) -> dict[str, str]:
    return dict(p.split("=", 1) for p in result.split()[1:] if "=" in p)


def bill(db: Database, tenant: str, period: str, now: datetime | None = None,
         catalogue: Catalogue | None = None) -> Bill:
    c = cycle(period)
    cat = catalogue or load_catalogue()
    with db.transaction(write=False) as tx:
        acc = accounts.load(tx, tenant)
        tz = acc.tz
        start = datetime(c.year, c.first_month, 1, tzinfo=tz)
        last = c.first_month + c.months
        end = datetime(c.year + (last - 1) // 12, (last - 1) % 12 + 1, 1, tzinfo=tz)
        current = now or datetime.now(UTC)
        if start > current:
            raise BadBillPeriod(
                f"period {period} has not begun (now is {current.astimezone(tz):%Y-%m-%d %H:%M}"
                f" {tz.key}): a bill covers a cycle that started")
        s_ms, e_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
        rows = tx.execute(
            "SELECT call_uuid, start_ms, caller_kind, billed_fen, billing_result "
            "FROM call_records WHERE tenant = ? AND start_ms >= ? AND start_ms < ? "
            "ORDER BY start_ms, call_uuid", (tenant, s_ms, e_ms)).fetchall()
        payments = [p for p in accounts.ledger(tx, tenant, s_ms, e_ms) if p["kind"] != "call"]
    due = fees.lines(acc, cat, start.date(), end.date())
    out = Bill(tenant, c.label, tz.key, start.isoformat(), end.isoformat(), end <= current,
               payments=payments,
               fees=[{"kind": f.kind, "day": f.day.isoformat(), "amount_fen": f.amount_fen,
                      "detail": f.detail} for f in due])
    for f in due:
        if f.kind == "rent":
            out.rent_fen += f.amount_fen
        elif f.kind == "service":
            out.services_fen += f.amount_fen
        else:
            out.yearly_fee_fen += f.amount_fen
    for uuid, started, kind, fen, result in rows:
        if result is None:
            out.unrated += 1
            continue
        out.calls += 1
        info = _fields(str(result))
        out.billable_s += int(info.get("billable_s", 0))
        out.included_s += int(info.get("included_s", 0))
        out.charged_s += int(info.get("charged_s", 0))
        out.calls_fen += int(fen or 0)
        k = accounts.rate_kind(str(kind))
        out.by_kind[k] = out.by_kind.get(k, 0) + int(fen or 0)
        out.records.append({"call_uuid": uuid,
                            "start": datetime.fromtimestamp(started / 1000, tz).isoformat(),
                            "caller_kind": kind, "billed_fen": int(fen or 0),
                            "billing_result": result})
    out.total_fen = out.calls_fen + sum(f.amount_fen for f in due)
    return out


def yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def as_table(b: Bill) -> str:
    lines = [f"Bill {b.period} for {b.tenant} ({b.start} to {b.end}, {b.timezone})"
             + ("" if b.complete else "  [cycle in progress]"),
             f"  {'calls rated':<28}{b.calls:>14}",
             f"  {'billable minutes':<28}{b.billable_s / 60:>14.1f}",
             f"  {'  of which included':<28}{b.included_s / 60:>14.1f}",
             f"  {'  of which charged':<28}{b.charged_s / 60:>14.1f}"]
    for kind, fen in sorted(b.by_kind.items()):
        lines.append(f"  {'calls, ' + kind + ' (元)':<28}{yuan(fen):>14}")
    lines.append(f"  {'calls (元)':<28}{yuan(b.calls_fen):>14}")
    labels = {"yearly_fee": "yearly fee", "fee_change": "yearly fee change",
              "service": "service"}
    for f in b.fees:
        if f["kind"] in labels:
            lines.append(f"  {labels[f['kind']] + ' (元)':<28}"
                         f"{yuan(int(f['amount_fen'])):>14}  {f['day']}: {f['detail']}")
    lines += [f"  {'yearly fees (元)':<28}{yuan(b.yearly_fee_fen):>14}",
              f"  {'value-added services (元)':<28}{yuan(b.services_fen):>14}",
              f"  {'monthly rent (元)':<28}{yuan(b.rent_fen):>14}",
              f"  {'TOTAL (元)':<28}{yuan(b.total_fen):>14}"]
    if b.unrated:
        lines.append(f"  note: {b.unrated} record(s) of the period not rated yet")
    for p in b.payments:
        lines.append(f"  {p['kind']} {yuan(int(p['amount_fen']))} 元 by {p['by_whom']}: "
                     f"{p['reason']}")
    return "\n".join(lines) + "\n"


SUMMARY = ["tenant", "period", "timezone", "start", "end", "complete", "calls", "billable_s",
           "included_s", "charged_s", "calls_fen", "yearly_fee_fen", "services_fen",
           "rent_fen", "total_fen", "unrated"]


def as_csv(b: Bill) -> str:
    """One line per rated call, one per fee (yearly fee, fee change, service, rent), then the
    total, which is the sum of the lines above it (amounts in fen)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["line", "call_uuid", "start", "caller_kind", "amount_fen", "detail"])
    for r in b.records:
        w.writerow(["call", r["call_uuid"], r["start"], r["caller_kind"], r["billed_fen"],
                    r["billing_result"]])
    for f in b.fees:
        w.writerow([f["kind"], "", f["day"], "", f["amount_fen"], f["detail"]])
    w.writerow(["total", "", b.start, "", b.total_fen, f"{b.tenant} {b.period}"])
    return buf.getvalue()


def as_json(b: Bill) -> str:
    return json.dumps(asdict(b), ensure_ascii=False, indent=2) + "\n"
