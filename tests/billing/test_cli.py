"""``cc-core billing open|topup|account|bill`` on both stores: bad input writes nothing."""

from __future__ import annotations

import csv
import io
import json

from click.testing import CliRunner, Result

from billing import accounts
from cc_core.cli import cli
from provider import catalogue as catalogue_mod
from records import cdr
from records.db import open_database
from tests.records.helpers import T0, summary


def _cc(target: str, *args: str) -> Result:
    return CliRunner().invoke(cli, ["billing", *args, "--db", target])


def _ledger(target: str) -> list[dict]:
    with open_database(target) as db, db.transaction(write=False) as tx:
        return accounts.ledger(tx, "acme")


def test_open_topup_account_and_bill(store_target: str) -> None:
    res = _cc(store_target, "open", "--tenant", "acme", "--package", "micro", "--from",
              "2025-01-01", "--increment-s", "60", "--rent-fen", "3000", "--by", "ops")
    assert res.exit_code == 0, res.output
    res = _cc(store_target, "topup", "--tenant", "acme", "--amount-fen", "-100", "--by",
              "alice", "--reason", "typo")
    assert res.exit_code == 2 and "positive amount of fen" in res.output
    assert _ledger(store_target) == []
    res = _cc(store_target, "topup", "--tenant", "acme", "--amount-fen", "10000", "--by",
              "alice", "--reason", "bank ref 42")
    assert res.exit_code == 0 and "balance 100.00 元" in res.output
    with open_database(store_target) as db:
        with db.transaction() as tx:
            tx.execute("INSERT INTO billing_allowance_years (tenant, year_from, used_s) VALUES (?, ?, ?)",
                       ("acme", "2025-01-01", 10**7))
            cdr.store(tx, [cdr.from_summary(summary("k1", start_ms=T0, end_ms=T0 + 90_000)),
                           cdr.from_summary(summary("k2", start_ms=T0 + 1,
                                                    end_ms=T0 + 30_001))])
        with db.transaction() as tx:
            accounts.rate_calls(tx, catalogue_mod.load(), ["k1", "k2"])
    res = _cc(store_target, "account", "--tenant", "acme")
    assert res.exit_code == 0 and "balance 99.25 元" in res.output    # 3 min at 25 fen
    assert "by alice: bank ref 42" in res.output
    res = _cc(store_target, "bill", "--tenant", "acme", "--period", "2025-11", "--format",
              "json")
    assert res.exit_code == 0, res.output
    b = json.loads(res.output)
    assert (b["calls_fen"], b["rent_fen"], b["total_fen"]) == (75, 3000, 3075)
    res = _cc(store_target, "bill", "--tenant", "acme", "--period", "2025-11", "--format",
              "csv")
    lines = list(csv.DictReader(io.StringIO(res.output)))
    assert sum(int(r["amount_fen"]) for r in lines if r["line"] != "total") == 3075
    assert "TOTAL (元)" in _cc(store_target, "bill", "--tenant", "acme", "--period",
                               "2025-Q4").output


def test_future_period_and_unknown_tenant_are_clear_errors(store_target: str) -> None:
    _cc(store_target, "open", "--tenant", "acme", "--package", "micro", "--from",
        "2025-01-01", "--by", "ops")
    res = _cc(store_target, "bill", "--tenant", "acme", "--period", "2999-01")
    assert res.exit_code == 2 and "has not begun" in res.output
    res = _cc(store_target, "bill", "--tenant", "ghost", "--period", "2025-11")
    assert res.exit_code == 2 and "'ghost' has no billing account" in res.output
    res = _cc(store_target, "topup", "--tenant", "ghost", "--amount-fen", "5", "--by", "a",
              "--reason", "r")
    assert res.exit_code == 2 and _ledger(store_target) == []


def test_rates_refuse_a_gap_and_records_from_before_the_account_are_rated_later(
        store_target: str) -> None:
    with open_database(store_target) as db:
        from records.migrate import migrate

        migrate(db)
        with db.transaction() as tx:
            cdr.store(tx, [cdr.from_summary(summary("early", start_ms=T0, end_ms=T0 + 60_000))])
    _cc(store_target, "open", "--tenant", "acme", "--package", "micro", "--from",
        "2025-01-01", "--by", "ops")
    res = _cc(store_target, "rates", "--tenant", "acme", "--kind", "mobile", "--period",
              "2025-01-01:2025-06-01:30", "--period", "2025-07-01::18")
    assert res.exit_code == 2 and "gap from 2025-06-01 to 2025-07-01" in res.output
    res = _cc(store_target, "rates", "--tenant", "acme", "--kind", "mobile", "--period",
              "2025-01-01:2025-06-01:30", "--period", "2025-06-01::18")
    assert res.exit_code == 0, res.output
    with open_database(store_target) as db, db.transaction() as tx:
        tx.execute("INSERT INTO billing_allowance_years (tenant, year_from, used_s) VALUES (?, ?, ?)",
                   ("acme", "2025-01-01", 10**7))
    res = _cc(store_target, "rate", "--tenant", "acme")
    assert res.exit_code == 0 and "rated 1 call record" in res.output
    assert [e["amount_fen"] for e in _ledger(store_target)] == [-18]
    assert "rated 0" in _cc(store_target, "rate").output


def test_services_and_promotion_from_the_cli_show_on_the_bill(store_target: str) -> None:
    res = _cc(store_target, "open", "--tenant", "acme", "--package", "popular", "--from",
              "2025-03-10", "--promotion", "popular-3y", "--rent-fen", "1000", "--by", "ops")
    assert res.exit_code == 0, res.output
    res = _cc(store_target, "services", "--tenant", "acme", "--add", "fax", "--from",
              "2025-04-01", "--by", "sales")
    assert res.exit_code == 2 and "unknown value-added services ['fax']" in res.output
    res = _cc(store_target, "open", "--tenant", "small", "--package", "small", "--from",
              "2025-03-10", "--promotion", "popular-3y", "--by", "ops")
    assert res.exit_code == 2 and "not one of package small's" in res.output
    res = _cc(store_target, "package", "--tenant", "acme", "--package", "micro", "--from",
              "2025-04-01", "--by", "sales")
    assert res.exit_code == 0, res.output
    res = _cc(store_target, "services", "--tenant", "acme", "--add", "recording", "--from",
              "2025-04-01", "--by", "sales")
    # the package's other services ended with it (popular -> micro); recording bought back
    assert res.exit_code == 0 and "services from 2025-04-01: ivr, recording\n" in res.output
    res = _cc(store_target, "account", "--tenant", "acme")
    assert "at promotion popular-3y (1000.00 元/year) until 2028-03-10" in res.output
    assert "service recording on from 2025-04-01 by sales" in res.output
    table = _cc(store_target, "bill", "--tenant", "acme", "--period", "2025-Q1").output
    assert "yearly fee, popular at promotion popular-3y" in table
    res = _cc(store_target, "bill", "--tenant", "acme", "--period", "2025-04", "--format",
              "csv")
    lines = list(csv.DictReader(io.StringIO(res.output)))
    kinds = {r["line"]: int(r["amount_fen"]) for r in lines}
    # micro (60000) from the promotion's 100000 with 343 of 365 days left: -37589.04
    assert kinds == {"fee_change": -37589, "service": 5000, "rent": 1000,
                     "total": -37589 + 5000 + 1000}
    with open_database(store_target) as db, db.transaction(write=False) as tx:
        assert tx.execute("SELECT COUNT(*) FROM billing_services WHERE tenant = 'small'"
                          ).fetchone() == (0,)
