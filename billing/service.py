"""Billing's operations that span the SQL store and the Redis credit view.

Where rating runs: in the call-record consumer's transaction (``records.consumer``). The
record and its rating are then one commit: a call is never stored unrated nor rated
unstored, the balance moves in the same commit as ``billed_fen``, and the consumer's own
exactly-once machinery (ack after commit, ON CONFLICT, pending re-delivery) is the rating's
too. The call flow never waits on SQL; it reads the credit view, which the consumer publishes
right after its commit.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from redis.exceptions import RedisError

from billing import accounts
from billing.credit import CreditView, now_ms
from cc_core import keys as product_keys
from provider.catalogue import Catalogue
from provider.catalogue import load as load_catalogue
from records.db import Database, Tx

log = logging.getLogger(__name__)


class Rater:
    """The consumer's billing step: ``rate`` inside its transaction, ``published`` after."""

    def __init__(self, redis: Any | None, catalogue: Catalogue | None = None,
                 metrics: Any = None) -> None:
        self.catalogue = catalogue or load_catalogue()
        self.view = CreditView(redis) if redis is not None else None
        self.metrics = metrics

    def rate(self, tx: Tx, uuids: list[str]) -> list[accounts.Booked]:
        return accounts.rate_calls(tx, self.catalogue, uuids)

    def new_years(self, db: Database) -> int:
        """Opens the contract years begun since the last call (``accounts.open_contract_years``)
        and publishes those accounts, so that no live credit control goes on with a past
        year's included minutes. Run by the consumer at start and every ``YEAR_CHECK_S``."""
        with db.transaction(write=False) as tx:
            due = accounts.due_contract_years(tx, now_ms())
        if not due:
            return 0
        with db.transaction() as tx:
            opened = accounts.open_contract_years(tx, due)
        for tenant in opened:
            publish(db, self.view, self.catalogue, tenant, [], self.metrics)
        if opened:
            log.info("contract years opened", extra={"tenants": len(opened)})
        return len(opened)

    def published(self, db: Database, booked: list[accounts.Booked]) -> None:
        by_tenant: dict[str, list[str]] = {}
        for b in booked:
            by_tenant.setdefault(b.tenant, []).append(b.call_uuid)
        for tenant, uuids in by_tenant.items():
            publish(db, self.view, self.catalogue, tenant, uuids, self.metrics)


def publish(db: Database, view: CreditView | None, catalogue: Catalogue, tenant: str,
            rated: list[str] | None = None, metrics: Any = None) -> None:
    """The account as committed, into the credit view; a Redis fault is logged (the next
    publish, or `cc-core billing sync`, repairs it)."""
    if view is None:
        return
    at = now_ms()
    with db.transaction(write=False) as tx:
        snap = accounts.snapshot(tx, catalogue, tenant, at)
        month, spent = month_spend(tx, tenant, at)
    try:
        _, alert = view.publish(tenant, snap, rated or [], at)
        # What the tenant's calls cost this month, for its monthly cost cap (cc_core.flow.caps):
        # the total as committed, so a repeated publish cannot count a call twice.
        view.redis.set(product_keys.tenant_month_cost(tenant, month), spent,
                       ex=MONTH_COST_TTL_S)
    except RedisError as exc:
        log.warning("could not publish the credit view: %r", exc, extra={"tenant": tenant})
        return
    if alert == 1:
        log.warning("low credit", extra={"tenant": tenant, "balance_fen": snap["balance_fen"],
                                         "threshold_fen": snap["low_credit_fen"]})
        if metrics is not None:
            metrics.low_credit.labels(tenant).inc()


MONTH_COST_TTL_S = 40 * 86400


def month_spend(tx: Tx, tenant: str, at_ms: int) -> tuple[str, int]:
    """(YYYYMM, fen) the tenant's rated calls of the month of ``at_ms`` cost, the month in the
    account's time zone."""
    tz = accounts.load(tx, tenant).tz
    now = datetime.fromtimestamp(at_ms / 1000, tz)
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    row = tx.execute("SELECT COALESCE(SUM(billed_fen), 0) FROM call_records "
                     "WHERE tenant = ? AND start_ms >= ?",
                     (tenant, int(start.timestamp() * 1000))).fetchone()
    return now.strftime("%Y%m"), int(row[0] if row else 0)


def topup(db: Database, view: CreditView | None, catalogue: Catalogue, tenant: str,
          amount_fen: int, by: str, reason: str, adjustment: bool = False) -> int:
    with db.transaction() as tx:
        book = accounts.adjust if adjustment else accounts.topup
        balance, _ = book(tx, tenant, amount_fen, by, reason)
    log.info("credit booked", extra={"tenant": tenant, "amount_fen": amount_fen, "by": by,
                                     "kind": "adjustment" if adjustment else "topup"})
    # Published after the commit: the workers re-arm their calls' hard stops on it.
    publish(db, view, catalogue, tenant)
    return balance


def rate_unrated(db: Database, view: CreditView | None, tenant: str | None = None,
                 catalogue: Catalogue | None = None) -> int:
    """Rates the records of tenants with an account that no rating reached yet."""
    cat = catalogue or load_catalogue()
    with db.transaction(write=False) as tx:
        sql = ("SELECT r.call_uuid FROM call_records r JOIN billing_accounts a "
               "ON a.tenant = r.tenant WHERE r.billing_result IS NULL")
        args: tuple[str, ...] = ()
        if tenant:
            accounts.load(tx, tenant)
            sql += " AND r.tenant = ?"
            args = (tenant,)
        uuids = [str(r[0]) for r in tx.execute(sql, args).fetchall()]
    booked: list[accounts.Booked] = []
    for i in range(0, len(uuids), 500):
        with db.transaction() as tx:
            booked += accounts.rate_calls(tx, cat, uuids[i:i + 500])
    if view is not None:
        _publish_booked(db, view, cat, booked)
    return len(booked)


def _publish_booked(db: Database, view: CreditView, cat: Catalogue,
                    booked: list[accounts.Booked]) -> None:
    for tenant in sorted({b.tenant for b in booked}):
        publish(db, view, cat, tenant, [b.call_uuid for b in booked if b.tenant == tenant])


def sync(db: Database, view: CreditView, catalogue: Catalogue | None = None) -> int:
    """Every account republished; reservations of ended calls whose rating is stored are
    dropped with it (the lost publish that should have dropped them)."""
    cat = catalogue or load_catalogue()
    with db.transaction(write=False) as tx:
        tenants = [str(r[0]) for r in tx.execute(
            "SELECT tenant FROM billing_accounts ORDER BY tenant").fetchall()]
    for tenant in tenants:
        found = view.read(tenant)
        ended = [u for u, c in (found.live.items() if found else []) if c.end_ms]
        rated: list[str] = []
        if ended:
            with db.transaction(write=False) as tx:
                for i in range(0, len(ended), 500):
                    chunk = ended[i:i + 500]
                    rated += [str(r[0]) for r in tx.execute(
                        "SELECT call_uuid FROM call_records WHERE billing_result IS NOT NULL "
                        f"AND call_uuid IN ({', '.join('?' for _ in chunk)})", chunk).fetchall()]
        publish(db, view, cat, tenant, rated)
    return len(tenants)
