"""Migration 0007 on a store that ran 0006 with billing data in it (both stores): included
minutes moved from calendar years to contract years, exactly, from the rated records; the
service list into dated subscriptions; a signed promotion onto its package row."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from billing import accounts
from records import cdr
from records.db import Database, Tx
from records.migrate import available, migrate
from tests.records.helpers import summary

SH = ZoneInfo("Asia/Shanghai")


def _ms(day: str, hour: int) -> int:
    d = date.fromisoformat(day)
    return int(datetime(d.year, d.month, d.day, hour, tzinfo=SH).timestamp() * 1000)


def _rated(tx: Tx, uuid: str, tenant: str, start_ms: int, included_s: int) -> None:
    end = start_ms + 60_000
    rec = cdr.from_summary(summary(uuid, tenant, start_ms=start_ms, answer_ms=start_ms,
                                   end_ms=end, ended_at_ms=end))
    cdr.store(tx, [rec])
    tx.execute("UPDATE call_records SET billed_fen = 0, billing_result = ? WHERE call_uuid = ?",
               (f"rated package=micro billable_s=60 included_s={included_s} charged_s=0 "
                "rate=25", uuid))


def test_0007_moves_calendar_year_allowance_services_and_promotions(store: Database) -> None:
    migrate(store, available(store.dialect)[:6])
    with store.transaction() as tx:
        for tenant, since in (("acme", "2025-07-15"), ("promo", "2026-03-01")):
            tx.execute("INSERT INTO billing_accounts (tenant, timezone, increment_s, "
                       "monthly_rent_fen, services, balance_fen, low_credit_fen, seq, "
                       "created_ms) VALUES (?, 'Asia/Shanghai', 60, 0, ?, 0, 0, 0, 5)",
                       (tenant, '["ivr", "recording"]' if tenant == "acme" else "[]"))
            tx.execute("INSERT INTO billing_packages (tenant, effective_on, package, set_by, "
                       "set_ms) VALUES (?, ?, ?, 'ops', 5)",
                       (tenant, since, "micro" if tenant == "acme" else "popular"))
        # 2026 in calendar years: one call before the 2026-07-15 anniversary, one after
        _rated(tx, "a1", "acme", _ms("2025-12-31", 23), 60)
        _rated(tx, "a2", "acme", _ms("2026-07-14", 23), 60)
        _rated(tx, "a3", "acme", _ms("2026-07-15", 0), 60)
        tx.execute("INSERT INTO billing_allowance (tenant, year, used_s) VALUES "
                   "('acme', 2025, 60)")
        tx.execute("INSERT INTO billing_allowance (tenant, year, used_s) VALUES "
                   "('acme', 2026, 120)")
        tx.execute("INSERT INTO contracts (application_id, tenant, number, package, promotion, "
                   "term_years, auto_renew, yearly_fee_fen, sla, esign_ref, starts_on, "
                   "signed_ms, signed_by) VALUES ('app1', 'promo', '4008888888', 'popular', "
                   "'popular-3y', 3, 1, 100000, 'sla', 'e-1', '2026-03-01', 5, 'sales')")
    done = migrate(store)
    assert [m.version for m in done] == [7]
    with store.transaction(write=False) as tx:
        used = tx.execute("SELECT tenant, year_from, used_s FROM billing_allowance_years "
                          "ORDER BY tenant, year_from").fetchall()
        acme = accounts.load(tx, "acme")
        promo = accounts.load(tx, "promo")
        tables = tx.execute("SELECT COUNT(*) FROM call_records").fetchone()
    assert [tuple(r) for r in used] == [("acme", "2025-07-15", 120), ("acme", "2026-07-15", 60)]
    assert acme.services_at(date(2025, 7, 15)) == {"ivr", "recording"}
    assert acme.services_at(date(2025, 7, 14)) == set()
    assert {s.set_by for s in acme.subscriptions} == {"migration 0007"}
    row = promo.package_rows[0]
    assert (row.promotion, row.promotion_fee_fen, row.promotion_until) == (
        "popular-3y", 100000, date(2029, 3, 1))
    assert tables == (3,)
