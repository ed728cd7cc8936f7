"""What a tenant pays for a cycle besides its calls: the yearly package fee, value-added
services outside the package, the monthly rent. Pure: an ``Account`` and the catalogue in,
dated lines of integer fen out; ``billing.bills`` adds the rated calls.

The contract year. It starts on the account's effective date (its first package row, the day
its first contract began) and on each anniversary of it; an effective date of 29 February
has its anniversaries on 28 February in common years. Included minutes are counted per
contract year (``billing_allowance_years``), and the yearly fee falls due on its first day.

Where each fee falls, so that a year's bill is exactly the sum of its twelve monthly bills
(every line has one day, and a cycle holds the lines of its days):

* yearly fee: the whole fee in force on the contract year's first day, on that day, so in
  the month or quarter that contains the anniversary. The fee in force is the package's list
  fee (``yearly_fee_fen``), or while a promotion runs (from the package row that carries it
  for its term of whole years) the promotion's fixed fee as signed;
* a change of the fee in force during a contract year (a package change, a promotion that
  begins or ends on another day than an anniversary): on the change's day, the difference
  between the new and the old fee for the days left of the contract year, prorated by days:
  ``(new - old) * days_left / days_in_year``, rounded to the nearest fen, halves up (toward
  +∞), in integers. A downgrade gives a negative line (a credit). From the next anniversary
  the new fee is charged whole;
* value-added services: the monthly fee (catalogue ``services``) of each service subscribed
  outside the package in force, for each calendar month in which it was so on any day (a
  started month is paid whole; no proration), on the month's first day;
* monthly rent: the account's rent, for each month of the cycle, on its first day.

Days are the account's time zone's: a fee falls on a day's midnight there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

from billing.errors import BadTerms
from provider.catalogue import Catalogue

if TYPE_CHECKING:
    from billing.accounts import Account


def anniversary(anchor: date, year: int) -> date:
    """``anchor``'s month and day in ``year`` (29 February: 28 February in a common year)."""
    try:
        return anchor.replace(year=year)
    except ValueError:
        return anchor.replace(year=year, day=28)


def contract_year(anchor: date, day: date) -> tuple[date, date]:
    """[first day, first day of the next) of the contract year holding ``day``."""
    start = anniversary(anchor, day.year)
    if start > day:
        start = anniversary(anchor, day.year - 1)
    return start, anniversary(anchor, start.year + 1)


def prorate(diff_fen: int, days_left: int, days: int) -> int:
    """``diff * days_left / days`` to the nearest fen, halves toward +∞."""
    return (2 * diff_fen * days_left + days) // (2 * days)


@dataclass(frozen=True)
class Line:
    kind: str            # yearly_fee, fee_change, service, rent
    day: date
    amount_fen: int
    detail: str


def yearly_fee_at(acc: Account, catalogue: Catalogue, day: date) -> tuple[int, str]:
    """(fen, what) of the yearly fee in force on ``day``."""
    row = acc.package_row_at(day)
    if row.promotion and row.promotion_until is not None and day < row.promotion_until:
        return int(row.promotion_fee_fen or 0), \
            f"{row.package} at promotion {row.promotion} until {row.promotion_until}"
    package = catalogue.packages.get(row.package)
    if package is None:
        raise BadTerms(f"tenant {acc.tenant}: package {row.package!r} is not in the catalogue "
                       "any more; put it back in provider/catalogue.yaml or move the account "
                       "to a package it sells (`cc-core billing package`)")
    return package.yearly_fee_fen, row.package


def _months(first: date, end: date) -> list[date]:
    out, d = [], first.replace(day=1)
    while d < end:
        out.append(d)
        d = date(d.year + d.month // 12, d.month % 12 + 1, 1)
    return out


def lines(acc: Account, catalogue: Catalogue, first: date, end: date) -> list[Line]:
    """The fee lines of the days [first, end): ``first`` a month's first day."""
    anchor = acc.anchor
    out: list[Line] = []
    # the fee in force changes only on a package row's day or where a promotion ends
    changes = {r.effective_on for r in acc.package_rows} | \
        {r.promotion_until for r in acc.package_rows if r.promotion_until is not None}
    year = anniversary(anchor, first.year - 1)
    while year < end:
        nxt = anniversary(anchor, year.year + 1)
        if year >= anchor and first <= year:
            fee, what = yearly_fee_at(acc, catalogue, year)
            out.append(Line("yearly_fee", year, fee,
                            f"yearly fee, {what}, contract year {year} to {nxt}"))
        for day in sorted(d for d in changes if year < d < nxt and first <= d < end
                          and d > anchor):
            new, what = yearly_fee_at(acc, catalogue, day)
            old, was = yearly_fee_at(acc, catalogue, day - timedelta(days=1))
            if new != old:
                left, days = (nxt - day).days, (nxt - year).days
                out.append(Line("fee_change", day, prorate(new - old, left, days),
                                f"yearly fee {was} -> {what}: ({new} - {old}) fen x "
                                f"{left}/{days} days left of contract year {year}"))
        year = nxt
    for month in _months(first, end):
        if month < anchor.replace(day=1):
            continue
        following = _months(month, month + timedelta(days=32))[1]
        for service in sorted(acc.services_ever()):
            if not any(_extra(acc, catalogue, service, d)
                       for d in _days(max(month, anchor), following)):
                continue
            priced = catalogue.services.get(service)
            if priced is None:
                raise BadTerms(f"tenant {acc.tenant} subscribes to {service} outside its "
                               "package, and the catalogue has no monthly fee for it: add it "
                               "under services: in provider/catalogue.yaml")
            out.append(Line("service", month, priced.monthly_fee_fen,
                            f"{service} ({priced.name}), not in the package, {month:%Y-%m}"))
        out.append(Line("rent", month, acc.monthly_rent_fen, f"monthly rent, {month:%Y-%m}"))
    return sorted(out, key=lambda x: (x.day, x.kind))


def _days(first: date, end: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((end - first).days)]


def _extra(acc: Account, catalogue: Catalogue, service: str, day: date) -> bool:
    """Subscribed on ``day`` and not included in the package in force then."""
    if service not in acc.services_at(day):
        return False
    package = catalogue.packages.get(acc.package_row_at(day).package)
    return package is None or service not in package.services
