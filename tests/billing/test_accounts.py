"""Accounts, rating of stored records exactly once, and bills, on both SQL stores."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from billing import accounts, bills
from billing.accounts import RatePeriod
from billing.errors import BadAmount, BadBillPeriod, BadRateTable, UnknownAccount
from provider import catalogue as catalogue_mod
from records import cdr
from records.db import Database
from records.migrate import migrate
from tests.records.helpers import T0, summary

CAT = catalogue_mod.load()
NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
# 2026-11-10 10:00 Asia/Shanghai
NOV = 1_794_276_000_000


@pytest.fixture
def db(store: Database) -> Database:
    migrate(store)
    return store


def _open(db: Database, tenant: str = "acme", **kw: object) -> None:
    args: dict = {"increment_s": 6, "monthly_rent_fen": 5000, "low_credit_fen": 1000,
                  "effective_on": "2025-01-01", "by": "ops"}
    args.update(kw)
    with db.transaction() as tx:
        accounts.open_account(tx, CAT, tenant, "micro", **args)


def _call(db: Database, uuid: str, *, start_ms: int, talk_s: float, kind: str = "mobile",
          mode: str = "ivr", tenant: str = "acme") -> None:
    end = start_ms + int(talk_s * 1000)
    s = summary(uuid, tenant, start_ms=start_ms, answer_ms=start_ms, end_ms=end,
                ended_at_ms=end, bridge_ms=start_ms, agent_answered_ms=start_ms,
                caller_kind=kind, answer_mode=mode, billsec=str(int(talk_s)))
    with db.transaction() as tx:
        cdr.store(tx, [cdr.from_summary(s)])


def _rate(db: Database, uuids: list[str]) -> list[accounts.Booked]:
    with db.transaction() as tx:
        return accounts.rate_calls(tx, CAT, uuids)


def _balance(db: Database, tenant: str = "acme") -> int:
    with db.transaction(write=False) as tx:
        return accounts.load(tx, tenant).balance_fen


def _row(db: Database, uuid: str) -> tuple:
    with db.transaction(write=False) as tx:
        return tx.execute("SELECT billed_fen, billing_result FROM call_records "
                          "WHERE call_uuid = ?", (uuid,)).fetchone() or ()


def test_topup_and_adjustment_keep_an_audit_trail(db: Database) -> None:
    _open(db)
    with db.transaction() as tx:
        accounts.topup(tx, "acme", 50_000, "alice", "bank transfer 2026-11-02")
        accounts.adjust(tx, "acme", -1_500, "bob", "goodwill reversed")
    assert _balance(db) == 48_500
    with db.transaction(write=False) as tx:
        trail = accounts.ledger(tx, "acme")
    assert [(e["kind"], e["amount_fen"], e["balance_fen"], e["by_whom"], e["reason"])
            for e in trail] == [("topup", 50_000, 50_000, "alice", "bank transfer 2026-11-02"),
                                ("adjustment", -1_500, 48_500, "bob", "goodwill reversed")]


def test_a_negative_topup_is_refused_and_writes_nothing(db: Database) -> None:
    _open(db)
    with pytest.raises(BadAmount, match="positive"), db.transaction() as tx:
        accounts.topup(tx, "acme", -100, "alice", "oops")
    assert _balance(db) == 0
    with db.transaction(write=False) as tx:
        assert accounts.ledger(tx, "acme") == []


def test_unknown_tenant_is_a_clear_error(db: Database) -> None:
    _open(db)
    with pytest.raises(UnknownAccount, match="'nobody' has no billing account.*acme"), \
            db.transaction() as tx:
        accounts.topup(tx, "nobody", 100, "alice", "x")


def test_a_call_rated_twice_changes_the_balance_once(db: Database) -> None:
    _open(db)
    with db.transaction() as tx:
        accounts.topup(tx, "acme", 10_000, "alice", "prepaid")
        # the package's 2000 included minutes of 2025 are used up
        tx.execute("INSERT INTO billing_allowance_years (tenant, year_from, used_s) VALUES (?, ?, ?)",
                   ("acme", "2025-01-01", 2000 * 60))
    _call(db, "c1", start_ms=T0, talk_s=61)
    first = _rate(db, ["c1"])
    again = _rate(db, ["c1"])
    assert [b.fen for b in first] == [28] and again == []   # 66 s at 25 fen/min = 27.5
    assert _balance(db) == 10_000 - 28
    assert _row(db, "c1")[0] == 28 and "charged_s=66" in _row(db, "c1")[1]


def test_included_minutes_are_used_first_then_prepaid_credit(db: Database) -> None:
    _open(db, increment_s=60)
    with db.transaction() as tx:
        tx.execute("INSERT INTO billing_allowance_years (tenant, year_from, used_s) VALUES (?, ?, ?)",
                   ("acme", "2025-01-01", 2000 * 60 - 120))          # 2 minutes left
    _call(db, "a", start_ms=T0, talk_s=150)               # 3 min: 2 included, 1 charged
    _call(db, "b", start_ms=T0 + 600_000, talk_s=30)      # all charged
    _rate(db, ["b", "a"])
    assert _row(db, "a")[0] == 25 and "included_s=120" in _row(db, "a")[1]
    assert _row(db, "b")[0] == 25
    assert _balance(db) == -50


def test_zero_second_and_unanswered_calls_cost_nothing(db: Database) -> None:
    _open(db)
    _call(db, "zero", start_ms=T0, talk_s=0)
    s = summary("missed", start_ms=T0, answer_ms=0, outcome="abandoned_in_queue", agent="",
                bridge_ms=0, agent_answered_ms=0)
    with db.transaction() as tx:
        cdr.store(tx, [cdr.from_summary(s)])
    _rate(db, ["zero", "missed"])
    assert _row(db, "zero")[0] == 0
    assert _row(db, "missed") == (0, "not_answered")
    assert _balance(db) == 0


def test_a_rate_change_at_midnight_rates_the_whole_call_at_the_answer(db: Database) -> None:
    _open(db, increment_s=60)
    with db.transaction() as tx:
        tx.execute("INSERT INTO billing_allowance_years (tenant, year_from, used_s) VALUES (?, ?, ?)",
                   ("acme", "2026-01-01", 2000 * 60))
        accounts.set_rates(tx, "acme", "mobile", [
            RatePeriod(date(2025, 1, 1), date(2026, 11, 11), 20),
            RatePeriod(date(2026, 11, 11), None, 10)])
    midnight = int(datetime(2026, 11, 11, tzinfo=accounts.DEFAULT_TZ).timestamp() * 1000)
    _call(db, "before", start_ms=midnight - 60_000, talk_s=300)   # 23:59 -> 00:04
    _call(db, "after", start_ms=midnight, talk_s=300)             # 00:00:00 exactly
    _rate(db, ["before", "after"])
    assert _row(db, "before")[0] == 5 * 20
    assert _row(db, "after")[0] == 5 * 10


@pytest.mark.parametrize(("periods", "error"), [
    ([RatePeriod(date(2026, 1, 1), date(2026, 6, 1), 20),
      RatePeriod(date(2026, 7, 1), None, 18)], "gap from 2026-06-01 to 2026-07-01"),
    ([RatePeriod(date(2026, 1, 1), date(2026, 8, 1), 20),
      RatePeriod(date(2026, 7, 1), None, 18)], "overlap"),
    ([RatePeriod(date(2026, 1, 1), None, 20),
      RatePeriod(date(2026, 7, 1), None, 18)], "overlap"),
])
def test_a_rate_table_with_a_gap_or_overlap_is_refused(db: Database, periods: list,
                                                       error: str) -> None:
    _open(db)
    with db.transaction() as tx:
        accounts.set_rates(tx, "acme", "mobile", [RatePeriod(date(2025, 1, 1), None, 22)])
    with pytest.raises(BadRateTable, match=error), db.transaction() as tx:
        accounts.set_rates(tx, "acme", "mobile", periods)
    with db.transaction(write=False) as tx:
        assert accounts.load(tx, "acme").rates["mobile"] == [
            RatePeriod(date(2025, 1, 1), None, 22)]


def test_a_package_change_takes_effect_at_its_date(db: Database) -> None:
    _open(db, increment_s=60)
    with db.transaction() as tx:
        accounts.set_package(tx, CAT, "acme", "popular", "2026-11-15", "sales")
        for year in (2026,):
            tx.execute("INSERT INTO billing_allowance_years (tenant, year_from, used_s) VALUES (?, ?, ?)",
                       ("acme", f"{year}-01-01", 10**7))
    _call(db, "old", start_ms=NOV, talk_s=60)                      # micro: 25 fen/min
    _call(db, "new", start_ms=NOV + 6 * 86_400_000, talk_s=60)     # popular: 15 fen/min
    _rate(db, ["old", "new"])
    assert (_row(db, "old")[0], _row(db, "new")[0]) == (25, 15)
    assert "package=popular" in _row(db, "new")[1]


def test_the_bill_total_is_its_rated_records_plus_rent(db: Database) -> None:
    _open(db)
    _open(db, tenant="other")
    with db.transaction() as tx:
        tx.execute("INSERT INTO billing_allowance_years (tenant, year_from, used_s) VALUES (?, ?, ?)",
                   ("acme", "2026-01-01", 2000 * 60 - 60))
        accounts.topup(tx, "acme", 20_000, "alice", "prepaid")
    uuids = []
    for i, (secs, kind) in enumerate([(61, "mobile"), (7, "landline"), (300, "mobile"),
                                      (0, "mobile"), (45, "landline")]):
        uuids.append(f"n{i}")
        _call(db, f"n{i}", start_ms=NOV + i * 3_600_000, talk_s=secs, kind=kind)
    _call(db, "oct", start_ms=NOV - 20 * 86_400_000, talk_s=100)   # another month
    _call(db, "x", start_ms=NOV, talk_s=100, tenant="other")        # another tenant
    _rate(db, [*uuids, "oct", "x"])
    b = bills.bill(db, "acme", "2026-11", now=NOW)
    with db.transaction(write=False) as tx:
        fen = [r[0] for r in tx.execute(
            "SELECT billed_fen FROM call_records WHERE call_uuid IN (?, ?, ?, ?, ?)",
            uuids).fetchall()]
    assert b.calls == 5 and b.rent_fen == 5000
    assert b.total_fen == sum(fen) + 5000 and b.calls_fen > 0
    assert b.included_s == 0      # the last included minute went to October's call
    csv_total = bills.as_csv(b).strip().splitlines()[-1].split(",")
    assert csv_total[0] == "total" and int(csv_total[4]) == b.total_fen
    quarter = bills.bill(db, "acme", "2026-Q4", now=NOW)
    assert quarter.rent_fen == 15_000 and quarter.calls == 6 and quarter.included_s == 60
    assert bills.bill(db, "acme", "2026", now=NOW).rent_fen == 60_000


def test_a_bill_for_a_future_period_or_unknown_tenant_is_a_clear_error(db: Database) -> None:
    _open(db)
    with pytest.raises(BadBillPeriod, match="has not begun"):
        bills.bill(db, "acme", "2026-12", now=NOW)
    with pytest.raises(BadBillPeriod, match="not a billing cycle"):
        bills.bill(db, "acme", "Nov 2026", now=NOW)
    with pytest.raises(UnknownAccount):
        bills.bill(db, "nobody", "2026-11", now=NOW)
