"""Data moves of billing's schema migrations that portable SQL cannot make (run by
``records.migrate`` in the migration's own transaction: all of it or none).

0007 (``0007_billing_fees.sql``):

* included minutes per contract year: 0006 counted them per calendar year, which cannot be
  split by SQL alone (the year boundary is a day in the account's time zone). Every rated
  record carries what it took (``included_s=`` in ``billing_result``), so the seconds are
  summed again per contract year of each record's billable start, exactly as
  ``accounts.rate_calls`` will count from now on; the calendar-year table is then dropped.
* the account's service list (a JSON column) becomes subscriptions from its effective date,
  set by ``migration 0007``; the column is dropped.
* a contract signed with a promotion (``contracts.promotion``) puts the promotion, at the fee
  the contract fixed, on the account's package row of the contract's first day.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from billing import fees, rating

BY = "migration 0007"


def _included(result: str) -> int:
    for part in result.split()[1:]:
        key, _, value = part.partition("=")
        if key == "included_s" and value.isdigit():
            return int(value)
    return 0


def upgrade_0007(tx: Any) -> None:
    accounts = tx.execute(
        "SELECT a.tenant, a.timezone, a.services, a.created_ms, MIN(p.effective_on) "
        "FROM billing_accounts a JOIN billing_packages p ON p.tenant = a.tenant "
        "GROUP BY a.tenant, a.timezone, a.services, a.created_ms").fetchall()
    for tenant, zone, services, created_ms, first in accounts:
        anchor = date.fromisoformat(first)
        tz = ZoneInfo(zone)
        used: dict[date, int] = {}
        for mode, answer, end, talk, result in tx.execute(
                "SELECT answer_mode, answer_ms, end_ms, talk_ms, billing_result FROM "
                "call_records WHERE tenant = ? AND billing_result LIKE ?",
                (tenant, "rated %")).fetchall():
            seconds = _included(str(result))
            start = rating.billable_start_ms(str(mode), answer, int(end), talk)
            if not seconds or start is None:
                continue
            day = datetime.fromtimestamp(start / 1000, tz).date()
            year_from, _ = fees.contract_year(anchor, day)
            used[year_from] = used.get(year_from, 0) + seconds
        tx.executemany("INSERT INTO billing_allowance_years (tenant, year_from, used_s) "
                       "VALUES (?, ?, ?)",
                       [(tenant, y.isoformat(), s) for y, s in sorted(used.items())])
        tx.executemany("INSERT INTO billing_services (tenant, service, effective_on, "
                       "subscribed, set_by, set_ms) VALUES (?, ?, ?, 1, ?, ?)",
                       [(tenant, s, first, BY, int(created_ms))
                        for s in sorted(set(json.loads(services or "[]")))])
    for tenant, starts_on, package, promotion, fee, years in tx.execute(
            "SELECT tenant, starts_on, package, promotion, yearly_fee_fen, term_years FROM "
            "contracts WHERE promotion != ''").fetchall():
        begin = date.fromisoformat(starts_on)
        until = fees.anniversary(begin, begin.year + int(years))
        tx.execute("UPDATE billing_packages SET promotion = ?, promotion_fee_fen = ?, "
                   "promotion_until = ? WHERE tenant = ? AND effective_on = ? AND package = ?",
                   (promotion, int(fee), until.isoformat(), tenant, starts_on, package))
    tx.execute("DROP TABLE billing_allowance")
    tx.execute("ALTER TABLE billing_accounts DROP COLUMN services")
