"""What a bill charges besides calls (``billing.fees``) and included minutes per contract
year, on both stores: the yearly fee on each contract-year start, promotions, prorated package
changes, services outside the package, and the bill's arithmetic (a year is the sum of its
months; a total is the sum of its lines)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from billing import accounts, bills, fees
from billing.errors import BadTerms
from provider import catalogue as catalogue_mod
from records import cdr
from records.db import Database
from records.migrate import migrate
from tests.records.helpers import summary

CAT = catalogue_mod.load()
SH = ZoneInfo("Asia/Shanghai")
LATER = datetime(2028, 12, 1, tzinfo=UTC)       # every cycle of these tests has begun


@pytest.fixture
def db(store: Database) -> Database:
    migrate(store)
    return store


def _ms(day: str, hour: int = 10) -> int:
    d = date.fromisoformat(day)
    return int(datetime(d.year, d.month, d.day, hour, tzinfo=SH).timestamp() * 1000)


def _open(db: Database, effective_on: str, package: str = "micro", **kw: object) -> None:
    args: dict = {"increment_s": 60, "monthly_rent_fen": 5000, "effective_on": effective_on,
                  "by": "ops"}
    args.update(kw)
    with db.transaction() as tx:
        accounts.open_account(tx, CAT, "acme", package, **args)
        accounts.topup(tx, "acme", 10**7, "alice", "prepaid")


def _call(db: Database, uuid: str, start_ms: int, talk_s: int, kind: str = "mobile") -> None:
    end = start_ms + talk_s * 1000
    s = summary(uuid, start_ms=start_ms, answer_ms=start_ms, end_ms=end, ended_at_ms=end,
                bridge_ms=start_ms, agent_answered_ms=start_ms, caller_kind=kind,
                billsec=str(talk_s))
    with db.transaction() as tx:
        cdr.store(tx, [cdr.from_summary(s)])
        accounts.rate_calls(tx, CAT, [uuid])


def _row(db: Database, uuid: str) -> tuple[int, str]:
    with db.transaction(write=False) as tx:
        r = tx.execute("SELECT billed_fen, billing_result FROM call_records WHERE "
                       "call_uuid = ?", (uuid,)).fetchone()
    assert r is not None
    return int(r[0]), str(r[1])


def _used(db: Database) -> dict[str, int]:
    with db.transaction(write=False) as tx:
        return {str(a): int(b) for a, b in tx.execute(
            "SELECT year_from, used_s FROM billing_allowance_years WHERE tenant = ?",
            ("acme",)).fetchall()}


def _fees(b: bills.Bill, kind: str) -> list[tuple[str, int]]:
    return [(f["day"], f["amount_fen"]) for f in b.fees if f["kind"] == kind]


def test_contract_years_run_from_the_effective_date_to_its_anniversary() -> None:
    anchor = date(2024, 2, 29)
    assert fees.contract_year(anchor, date(2025, 2, 27)) == (date(2024, 2, 29),
                                                             date(2025, 2, 28))
    assert fees.contract_year(anchor, date(2025, 2, 28)) == (date(2025, 2, 28),
                                                             date(2026, 2, 28))
    assert fees.contract_year(anchor, date(2028, 3, 1)) == (date(2028, 2, 29),
                                                            date(2029, 2, 28))
    # halves up, toward +inf, in integers
    assert [fees.prorate(1, 1, 2), fees.prorate(-1, 1, 2), fees.prorate(3, 1, 4),
            fees.prorate(1, 1, 4), fees.prorate(-3, 1, 4)] == [1, 0, 1, 0, -1]


def test_the_yearly_fee_falls_in_the_cycle_holding_the_contract_year_start(
        db: Database) -> None:
    _open(db, "2025-03-15")
    assert _fees(bills.bill(db, "acme", "2025-03", now=LATER), "yearly_fee") == [
        ("2025-03-15", 60000)]
    assert _fees(bills.bill(db, "acme", "2026-02", now=LATER), "yearly_fee") == []
    march = bills.bill(db, "acme", "2026-03", now=LATER)
    assert _fees(march, "yearly_fee") == [("2026-03-15", 60000)]
    assert march.total_fen == 60000 + 5000 and march.yearly_fee_fen == 60000
    assert bills.bill(db, "acme", "2026-Q1", now=LATER).yearly_fee_fen == 60000
    assert bills.bill(db, "acme", "2026-Q2", now=LATER).yearly_fee_fen == 0
    # no rent nor fee before the account took effect
    assert bills.bill(db, "acme", "2025-02", now=LATER).total_fen == 0


def test_a_promotion_fixes_the_yearly_fee_for_its_term_then_the_list_fee_applies(
        db: Database) -> None:
    _open(db, "2024-06-01", package="popular", promotion="popular-3y")
    due = [_fees(bills.bill(db, "acme", f"{y}-06", now=LATER), "yearly_fee")
           for y in (2024, 2025, 2026, 2027)]
    assert due == [[("2024-06-01", 100000)], [("2025-06-01", 100000)],
                   [("2026-06-01", 100000)], [("2027-06-01", 180000)]]
    with db.transaction(write=False) as tx:
        row = accounts.load(tx, "acme").package_rows[0]
    assert (row.promotion, row.promotion_fee_fen, row.promotion_until) == (
        "popular-3y", 100000, date(2027, 6, 1))


def test_a_package_change_mid_year_charges_the_prorated_difference_then_the_new_fee(
        db: Database) -> None:
    _open(db, "2025-01-01")
    with db.transaction() as tx:
        accounts.set_package(tx, CAT, "acme", "popular", "2026-07-03", by="sales")
    july = bills.bill(db, "acme", "2026-07", now=LATER)
    # (180000 - 60000) x 182 days left / 365 = 59835.62 -> 59836
    assert _fees(july, "fee_change") == [("2026-07-03", 59836)]
    assert _fees(bills.bill(db, "acme", "2027-01", now=LATER), "yearly_fee") == [
        ("2027-01-01", 180000)]
    with db.transaction() as tx:      # back down from 2026-10-01: a credit for 92 days
        accounts.set_package(tx, CAT, "acme", "micro", "2026-10-01", by="sales")
    assert _fees(bills.bill(db, "acme", "2026-10", now=LATER), "fee_change") == [
        ("2026-10-01", -30247)]       # -120000 x 92 / 365 = -30246.58 -> -30247


def test_services_outside_the_package_cost_their_monthly_fee_while_subscribed(
        db: Database) -> None:
    _open(db, "2025-01-01")
    with db.transaction() as tx:
        accounts.set_services(tx, CAT, "acme", add=["recording"], effective_on="2026-03-20",
                              by="sales")
        accounts.set_services(tx, CAT, "acme", remove=["recording"],
                              effective_on="2026-05-01", by="sales")
    monthly = {m: _fees(bills.bill(db, "acme", f"2026-{m:02d}", now=LATER), "service")
               for m in (2, 3, 4, 5)}
    assert monthly == {2: [], 3: [("2026-03-01", 5000)], 4: [("2026-04-01", 5000)], 5: []}
    with db.transaction() as tx:      # growth brings recording with it: nothing more to pay
        accounts.set_package(tx, CAT, "acme", "growth", "2026-08-01", by="sales")
    assert _fees(bills.bill(db, "acme", "2026-08", now=LATER), "service") == []
    with db.transaction() as tx:      # back to micro: what growth brought ends with it
        accounts.set_package(tx, CAT, "acme", "micro", "2026-10-01", by="sales")
    assert _fees(bills.bill(db, "acme", "2026-10", now=LATER), "service") == []
    with db.transaction(write=False) as tx:
        trail = accounts.load(tx, "acme").subscriptions
    assert [(s.service, str(s.effective_on), s.subscribed, s.set_by) for s in trail] == [
        ("ivr", "2025-01-01", True, "ops"), ("recording", "2026-03-20", True, "sales"),
        ("recording", "2026-05-01", False, "sales"),
        ("call_reports", "2026-08-01", True, "sales"), ("recording", "2026-08-01", True, "sales"),
        ("voicemail", "2026-08-01", True, "sales"),
        ("call_reports", "2026-10-01", False, "sales"),
        ("recording", "2026-10-01", False, "sales"), ("voicemail", "2026-10-01", False, "sales")]


@pytest.mark.parametrize(("kw", "message"), [
    ({"add": ["fax"]}, "unknown value-added services"),
    ({"add": ["recording"], "remove": ["recording"]}, "both added and removed"),
    ({}, "name a service"),
    ({"add": ["recording"], "by": " "}, "who changes the services"),
    ({"add": ["recording"], "effective_on": "2026-13-01"}, "is not a date"),
])
def test_a_bad_service_change_is_a_clear_error_and_writes_nothing(
        db: Database, kw: dict, message: str) -> None:
    _open(db, "2025-01-01")
    args: dict = {"effective_on": "2026-03-01", "by": "sales", **kw}
    with pytest.raises(BadTerms, match=message), db.transaction() as tx:
        accounts.set_services(tx, CAT, "acme", **args)
    with db.transaction(write=False) as tx:
        assert [s.service for s in accounts.load(tx, "acme").subscriptions] == ["ivr"]


def test_a_service_without_a_price_outside_the_package_is_refused(db: Database) -> None:
    cheap = CAT.model_copy(update={"services": {}})
    with pytest.raises(BadTerms, match="no monthly fee"), db.transaction() as tx:
        accounts.open_account(tx, cheap, "acme", "micro", services=["ivr", "recording"],
                              effective_on="2025-01-01", by="ops")
    with db.transaction(write=False) as tx:
        assert tx.execute("SELECT COUNT(*) FROM billing_accounts").fetchone() == (0,)


def test_a_year_is_the_sum_of_its_months_and_a_total_the_sum_of_its_lines(
        db: Database) -> None:
    _open(db, "2024-05-10", promotion="", services=["ivr", "callback"])
    with db.transaction() as tx:
        accounts.set_package(tx, CAT, "acme", "small", "2026-09-17", by="sales")
        accounts.set_services(tx, CAT, "acme", add=["recording"], effective_on="2026-02-27",
                              by="sales")
        accounts.use_included(tx, "acme", date(2026, 5, 10), 2000 * 60 - 120)
    for i, (day, secs, kind) in enumerate([
            ("2026-01-31", 61, "mobile"), ("2026-03-01", 7, "landline"),
            ("2026-05-09", 300, "mobile"), ("2026-05-10", 150, "mobile"),
            ("2026-05-11", 200, "landline"), ("2026-09-16", 59, "mobile"),
            ("2026-09-17", 125, "mobile"), ("2026-12-31", 3600, "landline")]):
        _call(db, f"c{i}", _ms(day, 23 if day.endswith("31") else 10), secs, kind)
    year = bills.bill(db, "acme", "2026", now=LATER)
    months = [bills.bill(db, "acme", f"2026-{m:02d}", now=LATER) for m in range(1, 13)]
    quarters = [bills.bill(db, "acme", f"2026-Q{q}", now=LATER) for q in range(1, 5)]
    for field in ("total_fen", "calls_fen", "rent_fen", "yearly_fee_fen", "services_fen",
                  "calls"):
        assert getattr(year, field) == sum(getattr(m, field) for m in months), field
        assert getattr(year, field) == sum(getattr(q, field) for q in quarters), field
    assert year.fees == [f for m in months for f in m.fees]
    billed = [_row(db, f"c{i}")[0] for i in range(8)]
    assert year.calls == 8 and [r["billed_fen"] for r in year.records] == billed
    assert year.total_fen == sum(billed) + sum(f["amount_fen"] for f in year.fees)
    csv_lines = bills.as_csv(year).strip().splitlines()[1:]
    amounts = [int(line.split(",")[4]) for line in csv_lines]
    assert csv_lines[-1].startswith("total,") and amounts[-1] == sum(amounts[:-1])
    assert year.yearly_fee_fen == 60000 + fees.prorate(20000, 235, 365)
    assert year.services_fen == 12 * 2000 + 11 * 5000 and year.rent_fen == 12 * 5000


def test_included_minutes_are_per_contract_year_not_calendar_year(db: Database) -> None:
    _open(db, "2025-07-15")          # a contract starting mid-year
    with db.transaction() as tx:
        accounts.use_included(tx, "acme", date(2025, 7, 15), 2000 * 60)
    _call(db, "jan", _ms("2026-01-10"), 60)        # new calendar year, same contract year
    _call(db, "eve", _ms("2026-07-14", 23), 60)    # the day before the anniversary
    _call(db, "day", _ms("2026-07-15", 0), 60)     # the anniversary: fresh minutes
    assert _row(db, "jan")[0] == 25 and "included_s=0 " in _row(db, "jan")[1]
    assert _row(db, "eve")[0] == 25
    assert _row(db, "day") == (0, "rated package=micro billable_s=60 included_s=60 "
                                  "charged_s=0 rate=25")
    assert _used(db) == {"2025-07-15": 2000 * 60, "2026-07-15": 60}


def test_minutes_running_out_mid_call_split_within_the_contract_year(db: Database) -> None:
    _open(db, "2025-07-15")
    with db.transaction() as tx:
        accounts.use_included(tx, "acme", date(2026, 7, 15), 2000 * 60 - 120)
    _call(db, "a", _ms("2027-03-01"), 150)         # 3 minutes: 2 included, 1 charged
    assert _row(db, "a") == (25, "rated package=micro billable_s=180 included_s=120 "
                                 "charged_s=60 rate=25")
    _call(db, "b", _ms("2027-03-02"), 10)
    assert _row(db, "b")[0] == 25
    assert _used(db) == {"2026-07-15": 2000 * 60}
