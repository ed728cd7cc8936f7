"""Billing accounts in the SQL store (``records``): terms, balance, the ledger (audit trail),
rate tables, and the rating of stored call records, each exactly once.

Every change of a balance is one ledger row in the same transaction as the balance itself
(who, when, why, how much, the balance after), numbered by the account's ``seq``. A call is
rated once: its ``billing_result`` is set only where it is still NULL, and the balance moves
only when that update changed the row (the ledger's unique ``call_uuid`` would refuse a
second booking anyway), so a record rated twice changes the balance once.

Included minutes are the package's per contract year (``billing.fees.contract_year``: from
the account's effective date to its anniversary), counted in ``billing_allowance_years``.
Value-added services are dated subscriptions with who set them (``billing_services``,
append-only); what they and the yearly fee cost per cycle is ``billing.fees``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from billing import fees, rating
from billing.errors import BadAmount, BadRateTable, BadTerms, UnknownAccount
from provider.catalogue import SERVICES, Catalogue
from records.db import Tx

DEFAULT_TIMEZONE = "Asia/Shanghai"
DEFAULT_TZ = ZoneInfo(DEFAULT_TIMEZONE)
CALLER_KINDS = ("mobile", "landline")
MAX_FEN = 10**11                 # 10 亿元: anything larger is a typo
MAX_RATE_FEN_PER_MINUTE = 1000   # 10 元/min


def now_ms() -> int:
    return int(time.time() * 1000)


def rate_kind(caller_kind: str) -> str:
    """The catalogue prices mobile and landline callers; every other kind (anonymous, service,
    international) pays the landline share."""
    return "mobile" if caller_kind == "mobile" else "landline"


@dataclass(frozen=True)
class RatePeriod:
    valid_from: date
    valid_to: date | None        # excluded; None: open
    fen_per_minute: int


@dataclass(frozen=True)
class PackageRow:
    effective_on: date
    package: str
    promotion: str = ""
    promotion_fee_fen: int | None = None
    promotion_until: date | None = None      # excluded


@dataclass(frozen=True)
class Subscription:
    service: str
    effective_on: date
    subscribed: bool
    set_by: str
    set_ms: int


@dataclass(frozen=True)
class Account:
    tenant: str
    timezone: str
    increment_s: int
    monthly_rent_fen: int
    balance_fen: int
    low_credit_fen: int
    seq: int
    package_rows: list[PackageRow]             # oldest first
    rates: dict[str, list[RatePeriod]]
    subscriptions: list[Subscription]          # by (effective_on, set_ms)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def packages(self) -> list[tuple[str, str]]:
        """(effective_on, package), oldest first."""
        return [(r.effective_on.isoformat(), r.package) for r in self.package_rows]

    @property
    def anchor(self) -> date:
        """The account's effective date: its contract years start on its anniversaries."""
        return self.package_rows[0].effective_on

    def package_row_at(self, day: date) -> PackageRow:
        found = self.package_rows[0]
        for row in self.package_rows:
            if row.effective_on <= day:
                found = row
        return found

    def package_at(self, day: date) -> str:
        return self.package_row_at(day).package

    def services_at(self, day: date) -> set[str]:
        on: dict[str, bool] = {}
        for sub in self.subscriptions:
            if sub.effective_on <= day:
                on[sub.service] = sub.subscribed
        return {s for s, yes in on.items() if yes}

    def services_ever(self) -> set[str]:
        return {s.service for s in self.subscriptions if s.subscribed}

    def own_rate_at(self, kind: str, day: date) -> int | None:
        for p in self.rates.get(kind, []):
            if p.valid_from <= day and (p.valid_to is None or day < p.valid_to):
                return p.fen_per_minute
        return None


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadTerms(f"unknown time zone {name!r}: give an IANA name such as "
                       "Asia/Shanghai") from None
    return name


def _day(text: str, what: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadTerms(f"{what} {text!r} is not a date: write YYYY-MM-DD") from None


def _check_terms(catalogue: Catalogue, package: str, increment_s: int, rent: int,
                 low_credit_fen: int) -> None:
    if package not in catalogue.packages:
        raise BadTerms(f"unknown package {package!r}: the catalogue sells "
                       f"{', '.join(sorted(catalogue.packages))}")
    if increment_s not in rating.INCREMENTS_S:
        raise BadTerms(f"increment {increment_s} s: billing rounds up to 6 s or 60 s")
    if not 0 <= rent <= MAX_FEN or not 0 <= low_credit_fen <= MAX_FEN:
        raise BadTerms("monthly rent and low-credit threshold are fen from 0 to "
                       f"{MAX_FEN}")


def _check_services(catalogue: Catalogue, package: str, services: list[str]) -> None:
    unknown = sorted(set(services) - set(SERVICES))
    if unknown:
        raise BadTerms(f"unknown value-added services {unknown}: use {', '.join(SERVICES)}")
    included = set(catalogue.packages[package].services) if package in catalogue.packages \
        else set()
    unpriced = sorted(set(services) - included - set(catalogue.services))
    if unpriced:
        raise BadTerms(f"services {unpriced} are not in package {package} and the catalogue "
                       "has no monthly fee for them: add them under services: in "
                       "provider/catalogue.yaml, or choose a package that includes them")


def _promotion(catalogue: Catalogue, package: str, promotion: str, effective_on: date,
               term_years: int | None) -> tuple[int | None, str | None]:
    """(fixed fee, first day after its term) of a promotion on a package row."""
    if not promotion:
        return None, None
    promo = catalogue.promotions.get(promotion)
    if promo is None or promo.package != package:
        offered = [p for p, x in catalogue.promotions.items() if x.package == package]
        raise BadTerms(f"promotion {promotion!r} is not one of package {package}'s "
                       f"({', '.join(offered) or 'none'}): check the name in "
                       "provider/catalogue.yaml")
    years = max(term_years or 0, promo.term_years)
    until = fees.anniversary(effective_on, effective_on.year + years)
    return promo.yearly_fee_fen, until.isoformat()


def _insert_package(tx: Tx, catalogue: Catalogue, tenant: str, package: str,
                    effective_on: str, promotion: str, term_years: int | None, by: str,
                    stamp: int) -> None:
    fee, until = _promotion(catalogue, package, promotion, _day(effective_on, "--from"),
                            term_years)
    tx.execute("DELETE FROM billing_packages WHERE tenant = ? AND effective_on = ?",
               (tenant, effective_on))
    tx.execute("INSERT INTO billing_packages (tenant, effective_on, package, set_by, set_ms, "
               "promotion, promotion_fee_fen, promotion_until) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
               (tenant, effective_on, package, by, stamp, promotion, fee, until))


def open_account(tx: Tx, catalogue: Catalogue, tenant: str, package: str, *,
                 increment_s: int = 60, monthly_rent_fen: int = 0,
                 services: list[str] | None = None, low_credit_fen: int = 0,
                 timezone: str = DEFAULT_TIMEZONE, effective_on: str, by: str,
                 promotion: str = "", term_years: int | None = None,
                 at_ms: int | None = None) -> Account:
    """A new account with a zero balance; the package (at a promotion's fixed fee for its
    term, if any) and the services (default: the package's) in force from ``effective_on``,
    the account's effective date: its contract years start on its anniversaries."""
    chosen = list(services) if services is not None else \
        list(catalogue.packages[package].services) if package in catalogue.packages else []
    _check_terms(catalogue, package, increment_s, monthly_rent_fen, low_credit_fen)
    _check_services(catalogue, package, chosen)
    _promotion(catalogue, package, promotion, _day(effective_on, "--from"), term_years)
    if not tenant or not by:
        raise BadTerms("an account needs a tenant and who opens it (--by)")
    stamp = at_ms if at_ms is not None else now_ms()
    tx.execute("SELECT tenant FROM billing_accounts WHERE tenant = ?", (tenant,))
    if tx.fetchone() is not None:
        raise BadTerms(f"tenant {tenant!r} has an account already: change its package with "
                       "`cc-core billing package`, its terms with `cc-core billing terms`")
    tx.execute("INSERT INTO billing_accounts (tenant, timezone, increment_s, monthly_rent_fen,"
               " balance_fen, low_credit_fen, seq, created_ms) "
               "VALUES (?, ?, ?, ?, 0, ?, 0, ?)",
               (tenant, _zone(timezone), increment_s, monthly_rent_fen, low_credit_fen, stamp))
    _insert_package(tx, catalogue, tenant, package, effective_on, promotion, term_years, by,
                    stamp)
    tx.executemany("INSERT INTO billing_services (tenant, service, effective_on, subscribed, "
                   "set_by, set_ms) VALUES (?, ?, ?, 1, ?, ?)",
                   [(tenant, svc, effective_on, by, stamp) for svc in sorted(set(chosen))])
    return load(tx, tenant)


def set_terms(tx: Tx, catalogue: Catalogue, tenant: str, *, increment_s: int | None = None,
              monthly_rent_fen: int | None = None,
              low_credit_fen: int | None = None) -> Account:
    acc = load(tx, tenant)
    inc = acc.increment_s if increment_s is None else increment_s
    rent = acc.monthly_rent_fen if monthly_rent_fen is None else monthly_rent_fen
    low = acc.low_credit_fen if low_credit_fen is None else low_credit_fen
    _check_terms(catalogue, acc.packages[-1][1], inc, rent, low)
    tx.execute("UPDATE billing_accounts SET increment_s = ?, monthly_rent_fen = ?, "
               "low_credit_fen = ? WHERE tenant = ?", (inc, rent, low, tenant))
    return load(tx, tenant)


def set_services(tx: Tx, catalogue: Catalogue, tenant: str, *, add: list[str] | None = None,
                 remove: list[str] | None = None, effective_on: str, by: str,
                 at_ms: int | None = None) -> Account:
    """Subscribes to ``add`` and ends ``remove`` from ``effective_on`` on (one trail row each,
    who and when); a service outside the package is charged its monthly fee (``fees``)."""
    acc = load(tx, tenant)
    on, off = sorted(set(add or [])), sorted(set(remove or []))
    if not by.strip():
        raise BadTerms("say who changes the services (--by): the trail keeps it")
    if not on and not off:
        raise BadTerms("name a service to add (--add) or to end (--remove)")
    if set(on) & set(off):
        raise BadTerms(f"{sorted(set(on) & set(off))} both added and removed: give each once")
    day = _day(effective_on, "--from")
    _check_services(catalogue, acc.package_at(day), on)
    unknown = sorted(set(off) - set(SERVICES))
    if unknown:
        raise BadTerms(f"unknown value-added services {unknown}: use {', '.join(SERVICES)}")
    stamp = at_ms if at_ms is not None else now_ms()
    tx.executemany("INSERT INTO billing_services (tenant, service, effective_on, subscribed, "
                   "set_by, set_ms) VALUES (?, ?, ?, ?, ?, ?)",
                   [(tenant, s, effective_on, 1, by, stamp) for s in on]
                   + [(tenant, s, effective_on, 0, by, stamp) for s in off])
    return load(tx, tenant)


def set_package(tx: Tx, catalogue: Catalogue, tenant: str, package: str, effective_on: str,
                by: str, at_ms: int | None = None, *, promotion: str = "",
                term_years: int | None = None) -> Account:
    """The package in force from ``effective_on`` (midnight, the account's zone) on, at a
    promotion's fixed yearly fee for its term if one is given (``billing.fees`` prorates a
    change of the yearly fee within a contract year).

    Services come and go with their package, on the same day and in the trail: the new
    package's are subscribed, and those the old one included that the new one does not are
    ended (a downgrade must not start charging for what came with the old package; a tenant
    who wants one kept adds it again with ``set_services``)."""
    acc = load(tx, tenant)
    if package not in catalogue.packages:
        raise BadTerms(f"unknown package {package!r}: the catalogue sells "
                       f"{', '.join(sorted(catalogue.packages))}")
    stamp = at_ms if at_ms is not None else now_ms()
    _insert_package(tx, catalogue, tenant, package, effective_on, promotion, term_years, by,
                    stamp)
    day = date.fromisoformat(effective_on)
    before = catalogue.packages.get(acc.package_at(day - timedelta(days=1)))
    came = set(before.services) if before is not None else set()
    brings = set(catalogue.packages[package].services)
    subscribed = acc.services_at(day)
    tx.executemany("INSERT INTO billing_services (tenant, service, effective_on, subscribed, "
                   "set_by, set_ms) VALUES (?, ?, ?, ?, ?, ?)",
                   [(tenant, s, effective_on, 1, by, stamp) for s in sorted(brings - subscribed)]
                   + [(tenant, s, effective_on, 0, by, stamp)
                      for s in sorted((came - brings) & subscribed)])
    return load(tx, acc.tenant)


def check_rate_table(kind: str, periods: list[RatePeriod]) -> list[RatePeriod]:
    """The periods sorted; ``BadRateTable`` for a gap, an overlap, an empty or reversed period
    or a rate out of range."""
    if kind not in CALLER_KINDS:
        raise BadRateTable(f"caller kind {kind!r}: rates are per {', '.join(CALLER_KINDS)}")
    ordered = sorted(periods, key=lambda p: p.valid_from)
    for i, p in enumerate(ordered):
        if not 0 <= p.fen_per_minute <= MAX_RATE_FEN_PER_MINUTE:
            raise BadRateTable(f"{kind} rate {p.fen_per_minute} fen/min from {p.valid_from}: "
                               f"give 0 to {MAX_RATE_FEN_PER_MINUTE} fen per minute")
        if p.valid_to is not None and p.valid_to <= p.valid_from:
            raise BadRateTable(f"{kind} period {p.valid_from} to {p.valid_to} ends before it "
                               "starts: swap or fix the dates")
        if i + 1 < len(ordered):
            nxt = ordered[i + 1]
            if p.valid_to is None or p.valid_to > nxt.valid_from:
                raise BadRateTable(
                    f"{kind} periods overlap: {p.valid_from} to {p.valid_to or 'open'} and "
                    f"{nxt.valid_from} onwards; end the first where the next begins")
            if p.valid_to < nxt.valid_from:
                raise BadRateTable(
                    f"{kind} periods leave a gap from {p.valid_to} to {nxt.valid_from}: no "
                    "rate would apply then; end the first where the next begins")
    return ordered


def set_rates(tx: Tx, tenant: str, kind: str, periods: list[RatePeriod]) -> Account:
    """Replaces the account's rate table of one caller kind (checked first: a bad table writes
    nothing); an empty table returns the kind to the package's rate."""
    ordered = check_rate_table(kind, periods)
    load(tx, tenant)
    tx.execute("DELETE FROM billing_rates WHERE tenant = ? AND caller_kind = ?", (tenant, kind))
    tx.executemany("INSERT INTO billing_rates (tenant, caller_kind, valid_from, valid_to, "
                   "fen_per_minute) VALUES (?, ?, ?, ?, ?)",
                   [(tenant, kind, p.valid_from.isoformat(),
                     p.valid_to.isoformat() if p.valid_to else None, p.fen_per_minute)
                    for p in ordered])
    return load(tx, tenant)


def load(tx: Tx, tenant: str) -> Account:
    row = tx.execute("SELECT tenant, timezone, increment_s, monthly_rent_fen, "
                     "balance_fen, low_credit_fen, seq FROM billing_accounts WHERE tenant = ?",
                     (tenant,)).fetchone()
    if row is None:
        known = [r[0] for r in tx.execute(
            "SELECT tenant FROM billing_accounts ORDER BY tenant LIMIT 20").fetchall()]
        raise UnknownAccount(
            f"tenant {tenant!r} has no billing account (accounts: "
            f"{', '.join(known) if known else 'none yet'}); check the tenant id, or open one "
            "with `cc-core billing open`")
    packages = [PackageRow(date.fromisoformat(on), str(p), str(promo or ""),
                           None if fee is None else int(fee),
                           date.fromisoformat(until) if until else None)
                for on, p, promo, fee, until in tx.execute(
        "SELECT effective_on, package, promotion, promotion_fee_fen, promotion_until "
        "FROM billing_packages WHERE tenant = ? ORDER BY effective_on", (tenant,)).fetchall()]
    subs = [Subscription(str(s), date.fromisoformat(on), bool(yes), str(by), int(ms))
            for s, on, yes, by, ms in tx.execute(
        "SELECT service, effective_on, subscribed, set_by, set_ms FROM billing_services "
        "WHERE tenant = ? ORDER BY effective_on, set_ms, service", (tenant,)).fetchall()]
    rates: dict[str, list[RatePeriod]] = {}
    for kind, start, end, fen in tx.execute(
            "SELECT caller_kind, valid_from, valid_to, fen_per_minute FROM billing_rates "
            "WHERE tenant = ? ORDER BY caller_kind, valid_from", (tenant,)).fetchall():
        rates.setdefault(str(kind), []).append(RatePeriod(
            date.fromisoformat(start), date.fromisoformat(end) if end else None, int(fen)))
    return Account(str(row[0]), str(row[1]), int(row[2]), int(row[3]), int(row[4]),
                   int(row[5]), int(row[6]), packages, rates, subs)


def book(tx: Tx, tenant: str, kind: str, amount_fen: int, by: str, reason: str,
         call_uuid: str | None = None, at_ms: int | None = None) -> tuple[int, int]:
    """One change of the balance and its ledger row; (balance after, seq)."""
    row = tx.execute("UPDATE billing_accounts SET balance_fen = balance_fen + ?, seq = seq + 1 "
                     "WHERE tenant = ? RETURNING balance_fen, seq",
                     (amount_fen, tenant)).fetchone()
    if row is None:
        load(tx, tenant)   # raises UnknownAccount with the list of accounts
        raise UnknownAccount(f"tenant {tenant!r} has no billing account")
    balance, seq = int(row[0]), int(row[1])
    tx.execute("INSERT INTO billing_ledger (tenant, seq, at_ms, kind, amount_fen, balance_fen, "
               "by_whom, reason, call_uuid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
               (tenant, seq, at_ms if at_ms is not None else now_ms(), kind, amount_fen,
                balance, by, reason, call_uuid))
    return balance, seq


def _check_money(amount_fen: int, by: str, reason: str) -> None:
    if not by.strip() or not reason.strip():
        raise BadAmount("say who books it (--by) and why (--reason): the ledger keeps both")
    if abs(amount_fen) > MAX_FEN:
        raise BadAmount(f"{amount_fen} fen is more than {MAX_FEN} fen: check the amount "
                        "(it is in fen, 1 元 = 100 fen)")


def topup(tx: Tx, tenant: str, amount_fen: int, by: str, reason: str,
          at_ms: int | None = None) -> tuple[int, int]:
    """Prepaid credit paid in; a negative or zero amount is refused (that is an adjustment)."""
    if amount_fen <= 0:
        raise BadAmount(f"a top-up must be a positive amount of fen, got {amount_fen}; to take "
                        "credit back, book an adjustment (`cc-core billing adjust`)")
    _check_money(amount_fen, by, reason)
    return book(tx, tenant, "topup", amount_fen, by, reason, at_ms=at_ms)


def adjust(tx: Tx, tenant: str, amount_fen: int, by: str, reason: str,
           at_ms: int | None = None) -> tuple[int, int]:
    """A correction either way (a refund, a goodwill credit, a charge taken back)."""
    if amount_fen == 0:
        raise BadAmount("an adjustment of 0 fen changes nothing: give the amount to add "
                        "(positive) or take (negative)")
    _check_money(amount_fen, by, reason)
    return book(tx, tenant, "adjustment", amount_fen, by, reason, at_ms=at_ms)


def ledger(tx: Tx, tenant: str, start_ms: int = 0, end_ms: int = 2**62) -> list[dict[str, Any]]:
    tx.execute("SELECT seq, at_ms, kind, amount_fen, balance_fen, by_whom, reason, call_uuid "
               "FROM billing_ledger WHERE tenant = ? AND at_ms >= ? AND at_ms < ? "
               "ORDER BY seq", (tenant, start_ms, end_ms))
    cols = tx.columns
    return [dict(zip(cols, r, strict=True)) for r in tx.fetchall()]


def included_used_s(tx: Tx, tenant: str, year_from: date) -> int:
    """Included seconds used in the contract year that starts on ``year_from``."""
    row = tx.execute("SELECT used_s FROM billing_allowance_years WHERE tenant = ? AND "
                     "year_from = ?", (tenant, year_from.isoformat())).fetchone()
    return int(row[0]) if row else 0


def use_included(tx: Tx, tenant: str, year_from: date, seconds: int) -> None:
    tx.execute("INSERT INTO billing_allowance_years (tenant, year_from, used_s) "
               "VALUES (?, ?, ?) ON CONFLICT (tenant, year_from) DO UPDATE SET "
               "used_s = billing_allowance_years.used_s + excluded.used_s",
               (tenant, year_from.isoformat(), seconds))


def due_contract_years(tx: Tx, at_ms: int) -> list[tuple[str, date]]:
    """(tenant, first day) of each contract year running at ``at_ms`` that its account has
    not opened yet (no allowance row). Read only: a busy store delays nobody for nothing."""
    rows = tx.execute(
        "SELECT a.tenant, a.timezone, MIN(p.effective_on), "
        "(SELECT MAX(y.year_from) FROM billing_allowance_years y WHERE y.tenant = a.tenant) "
        "FROM billing_accounts a JOIN billing_packages p ON p.tenant = a.tenant "
        "GROUP BY a.tenant, a.timezone ORDER BY a.tenant").fetchall()
    due = []
    for tenant, zone, anchor, last in rows:
        today = datetime.fromtimestamp(at_ms / 1000, ZoneInfo(str(zone))).date()
        anchor_day = date.fromisoformat(str(anchor))
        if anchor_day > today:
            continue        # the account's first contract year has not begun
        year_from, _ = fees.contract_year(anchor_day, today)
        if last is None or date.fromisoformat(str(last)) < year_from:
            due.append((str(tenant), year_from))
    return due


def open_contract_years(tx: Tx, due: list[tuple[str, date]]) -> list[str]:
    """Opens each contract year of ``due_contract_years``: its allowance row (0 s used) and
    a new ``seq``. The tenants returned must be published: their included minutes changed
    with the year (the old year's left-over expired, the new year's came), a change of the
    account that no balance write made, and the credit view takes only a newer ``seq``."""
    opened = []
    for tenant, year_from in due:
        tx.execute("INSERT INTO billing_allowance_years (tenant, year_from, used_s) "
                   "VALUES (?, ?, 0) ON CONFLICT (tenant, year_from) DO NOTHING",
                   (tenant, year_from.isoformat()))
        if tx.rowcount:
            tx.execute("UPDATE billing_accounts SET seq = seq + 1 WHERE tenant = ?", (tenant,))
            opened.append(tenant)
    return opened


def terms_at(tx: Tx, catalogue: Catalogue, acc: Account, at_ms: int,
             caller_kind: str) -> tuple[rating.Terms, date]:
    """The terms in force at ``at_ms`` (the account's zone) and the first day of its
    contract year (whose included minutes the call uses)."""
    local = datetime.fromtimestamp(at_ms / 1000, acc.tz)
    day = local.date()
    package_name = acc.package_at(day)
    package = catalogue.packages.get(package_name)
    kind = rate_kind(caller_kind)
    own = acc.own_rate_at(kind, day)
    if own is None:
        if package is None:
            raise BadTerms(f"tenant {acc.tenant}: package {package_name!r} is not in the "
                           "catalogue any more; give the account its own rates or a package")
        own = package.rate_fen_per_minute[kind]
    included = package.included_minutes * 60 if package is not None else 0
    year_from, _ = fees.contract_year(acc.anchor, day)
    left = max(0, included - included_used_s(tx, acc.tenant, year_from))
    return rating.Terms(acc.increment_s, own, left, package_name), year_from


@dataclass(frozen=True)
class Booked:
    tenant: str
    call_uuid: str
    fen: int
    balance_fen: int
    seq: int
    low_credit_fen: int


def rate_calls(tx: Tx, catalogue: Catalogue, uuids: list[str],
               at_ms: int | None = None) -> list[Booked]:
    """Rates the stored records among ``uuids`` not rated yet, oldest answer first (the
    included minutes go in the order the calls used them), in the caller's transaction."""
    if not uuids:
        return []
    found: list[tuple[Any, ...]] = []
    for i in range(0, len(uuids), 500):
        chunk = uuids[i:i + 500]
        tx.execute("SELECT call_uuid, tenant, caller_kind, answer_mode, answer_ms, end_ms, "
                   "talk_ms FROM call_records WHERE billing_result IS NULL AND call_uuid IN "
                   f"({', '.join('?' for _ in chunk)})", chunk)
        found.extend(tx.fetchall())
    keyed = []
    for row in found:
        uuid, tenant, kind, mode, answer, end, talk = row
        start = rating.billable_start_ms(str(mode), answer, int(end), talk)
        keyed.append((start if start is not None else int(end), row, start))
    keyed.sort(key=lambda k: (k[0], k[1][0]))
    accounts: dict[str, Account | None] = {}
    booked: list[Booked] = []
    for _, (uuid, tenant, kind, _mode, _answer, end, _talk), start in keyed:
        if tenant not in accounts:
            try:
                accounts[tenant] = load(tx, tenant)
            except UnknownAccount:
                accounts[tenant] = None
        acc = accounts[tenant]
        if acc is None:
            # Left unrated: an account opened later rates it (`cc-core billing rate`).
            continue
        if start is None:
            _mark(tx, uuid, 0, rating.NOT_ANSWERED.result())
            continue
        terms, year = terms_at(tx, catalogue, acc, start, str(kind))
        rated = rating.rate(int(end) - start, terms)
        if not _mark(tx, uuid, rated.fen, rated.result()):
            continue
        if rated.included_s:
            use_included(tx, tenant, year, rated.included_s)
        balance, seq = book(tx, tenant, "call", -rated.fen, "rating", rated.result(),
                            call_uuid=uuid, at_ms=at_ms)
        booked.append(Booked(tenant, uuid, rated.fen, balance, seq, acc.low_credit_fen))
    return booked


def _mark(tx: Tx, uuid: str, fen: int | None, result: str) -> bool:
    tx.execute("UPDATE call_records SET billed_fen = ?, billing_result = ? "
               "WHERE call_uuid = ? AND billing_result IS NULL", (fen, result, uuid))
    return tx.rowcount == 1


def snapshot(tx: Tx, catalogue: Catalogue, tenant: str, at_ms: int) -> dict[str, int]:
    """What the Redis credit view holds of the account (``billing.credit``), as of ``at_ms``."""
    acc = load(tx, tenant)
    mobile, _ = terms_at(tx, catalogue, acc, at_ms, "mobile")
    landline, _ = terms_at(tx, catalogue, acc, at_ms, "landline")
    return {"seq": acc.seq, "balance_fen": acc.balance_fen,
            "included_left_s": mobile.included_left_s, "increment_s": acc.increment_s,
            "rate_mobile": mobile.rate_fen_per_minute,
            "rate_landline": landline.rate_fen_per_minute,
            "low_credit_fen": acc.low_credit_fen}
