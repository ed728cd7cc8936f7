"""``cc-core billing …``: accounts, top-ups, bills (added to ``cc_core.cli``, which maps the
domain errors to exit codes in one place). Bad input (a negative top-up, an unknown tenant, a
period in the future) is refused before anything is written."""

from __future__ import annotations

import sys
from typing import Any

import click

from records.cli import _CONFIG, _DB, _fail, _target

_TENANT = click.option("--tenant", required=True, metavar="ID", help="The tenant.")
_REDIS = click.option("--redis-url", envvar="CC_REDIS_URL", default=None, metavar="URL",
                      help="Redis of the workers' credit view (default: $CC_REDIS_URL; "
                           "without it the next rating publishes the change).")


def _store(db: str | None, config_path: str | None, must_exist: bool = True) -> Any:
    from records.db import open_database
    from records.migrate import migrate, require_current

    store = open_database(_target(db, config_path), must_exist=must_exist)
    if must_exist:
        require_current(store)
    else:
        migrate(store)
    return store


def _view(redis_url: str | None) -> Any:
    if not redis_url:
        return None
    import redis

    from billing.credit import CreditView

    return CreditView(redis.Redis.from_url(redis_url))


@click.group()
def billing() -> None:
    """400 cost sharing: accounts, prepaid credit, bills."""


_PROMOTION = click.option("--promotion", default="", help="A promotion of the package "
                          "(catalogue promotions): its fixed yearly fee for its term.")
_TERM = click.option("--term-years", type=click.IntRange(1, 10), default=None,
                     help="Contract term, years (at least the promotion's).")


@billing.command("open")
@_TENANT
@click.option("--package", required=True, help="A package of the catalogue (micro, small…).")
@click.option("--from", "effective_on", required=True, metavar="YYYY-MM-DD",
              help="The day the package takes effect (midnight, the tenant's zone).")
@click.option("--increment-s", type=click.Choice(["6", "60"]), default="60", show_default=True)
@click.option("--rent-fen", type=int, default=0, show_default=True, help="Monthly rent, fen.")
@click.option("--low-credit-fen", type=int, default=0, show_default=True,
              help="Alert when the prepaid credit falls to this.")
@click.option("--service", "services", multiple=True, help="Value-added service (repeat); "
              "default: the package's.")
@click.option("--timezone", default="Asia/Shanghai", show_default=True)
@_PROMOTION
@_TERM
@click.option("--by", required=True, help="Who opens it (the ledger keeps it).")
@_DB
@_CONFIG
def open_cmd(tenant: str, package: str, effective_on: str, increment_s: str, rent_fen: int,
             low_credit_fen: int, services: tuple[str, ...], timezone: str, promotion: str,
             term_years: int | None, by: str, db: str | None, config_path: str | None) -> None:
    """Open a tenant's billing account with a zero balance."""
    from billing import accounts
    from cc_core.errors import DOMAIN_ERRORS
    from provider.catalogue import load

    try:
        with _store(db, config_path, must_exist=False) as store, store.transaction() as tx:
            acc = accounts.open_account(
                tx, load(), tenant, package, increment_s=int(increment_s),
                monthly_rent_fen=rent_fen, services=list(services) or None,
                low_credit_fen=low_credit_fen, timezone=timezone, effective_on=effective_on,
                by=by, promotion=promotion, term_years=term_years)
        click.echo(f"opened {acc.tenant}: package {package} from {effective_on}")
    except DOMAIN_ERRORS as exc:
        _fail(exc)


@billing.command("package")
@_TENANT
@click.option("--package", required=True)
@click.option("--from", "effective_on", required=True, metavar="YYYY-MM-DD")
@_PROMOTION
@_TERM
@click.option("--by", required=True)
@_DB
@_CONFIG
def package_cmd(tenant: str, package: str, effective_on: str, promotion: str,
                term_years: int | None, by: str, db: str | None,
                config_path: str | None) -> None:
    """Change the package from a stated day on (calls answered before keep the old one; the
    yearly fee's difference is prorated over the days left of the contract year)."""
    from billing import accounts
    from cc_core.errors import DOMAIN_ERRORS
    from provider.catalogue import load

    try:
        with _store(db, config_path) as store, store.transaction() as tx:
            accounts.set_package(tx, load(), tenant, package, effective_on, by,
                                 promotion=promotion, term_years=term_years)
        click.echo(f"{tenant}: package {package} from {effective_on}")
    except DOMAIN_ERRORS as exc:
        _fail(exc)


def _book(tenant: str, amount_fen: int, by: str, reason: str, db: str | None,
          config_path: str | None, redis_url: str | None, adjustment: bool) -> None:
    from billing import service
    from billing.bills import yuan
    from cc_core.errors import DOMAIN_ERRORS
    from provider.catalogue import load

    try:
        with _store(db, config_path) as store:
            balance = service.topup(store, _view(redis_url), load(), tenant, amount_fen, by,
                                    reason, adjustment=adjustment)
        click.echo(f"{tenant}: {'adjusted' if adjustment else 'topped up'} {yuan(amount_fen)} "
                   f"元; balance {yuan(balance)} 元")
    except DOMAIN_ERRORS as exc:
        _fail(exc)


@billing.command("topup")
@_TENANT
@click.option("--amount-fen", required=True, type=int, help="Positive, in fen (100 = 1 元).")
@click.option("--by", required=True, help="Who books it.")
@click.option("--reason", required=True, help="Why (a payment reference).")
@_REDIS
@_DB
@_CONFIG
def topup_cmd(tenant: str, amount_fen: int, by: str, reason: str, redis_url: str | None,
              db: str | None, config_path: str | None) -> None:
    """Add prepaid credit (预存话费); running calls get their hard stop moved."""
    _book(tenant, amount_fen, by, reason, db, config_path, redis_url, adjustment=False)


@billing.command("adjust")
@_TENANT
@click.option("--amount-fen", required=True, type=int, help="Positive adds, negative takes.")
@click.option("--by", required=True)
@click.option("--reason", required=True)
@_REDIS
@_DB
@_CONFIG
def adjust_cmd(tenant: str, amount_fen: int, by: str, reason: str, redis_url: str | None,
               db: str | None, config_path: str | None) -> None:
    """Correct the balance either way, with who and why in the ledger."""
    _book(tenant, amount_fen, by, reason, db, config_path, redis_url, adjustment=True)


@billing.command("account")
@_TENANT
@_DB
@_CONFIG
def account_cmd(tenant: str, db: str | None, config_path: str | None) -> None:
    """The account: package history, rates, balance, last ledger entries."""
    from billing import accounts
    from billing.bills import yuan
    from cc_core.errors import DOMAIN_ERRORS

    try:
        with _store(db, config_path) as store, store.transaction(write=False) as tx:
            acc = accounts.load(tx, tenant)
            trail = accounts.ledger(tx, tenant)[-10:]
    except DOMAIN_ERRORS as exc:
        _fail(exc)
    click.echo(f"tenant {acc.tenant} ({acc.timezone})")
    for row in acc.package_rows:
        promo = f" at promotion {row.promotion} ({yuan(row.promotion_fee_fen or 0)} 元/year) " \
            f"until {row.promotion_until}" if row.promotion else ""
        click.echo(f"  package {row.package} from {row.effective_on}{promo}")
    click.echo(f"  contract years from {acc.anchor} (its anniversaries)")
    click.echo(f"  increment {acc.increment_s} s, monthly rent {yuan(acc.monthly_rent_fen)} 元")
    for sub in acc.subscriptions:
        click.echo(f"  service {sub.service} {'on' if sub.subscribed else 'off'} from "
                   f"{sub.effective_on} by {sub.set_by}")
    for kind, periods in sorted(acc.rates.items()):
        for p in periods:
            click.echo(f"  rate {kind} {p.fen_per_minute} fen/min from {p.valid_from} to "
                       f"{p.valid_to or 'open'}")
    click.echo(f"  balance {yuan(acc.balance_fen)} 元 (low-credit alert at "
               f"{yuan(acc.low_credit_fen)} 元)")
    for e in trail:
        click.echo(f"  #{e['seq']} {e['kind']} {yuan(int(e['amount_fen']))} -> "
                   f"{yuan(int(e['balance_fen']))} by {e['by_whom']}: {e['reason']}")


@billing.command("bill")
@_TENANT
@click.option("--period", required=True, metavar="2026-11|2026-Q4|2026")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True)
@_DB
@_CONFIG
def bill_cmd(tenant: str, period: str, fmt: str, db: str | None,
             config_path: str | None) -> None:
    """The bill of a month, quarter or year: rated calls, yearly fee, services, rent."""
    from billing import bills
    from cc_core.errors import DOMAIN_ERRORS

    try:
        with _store(db, config_path) as store:
            b = bills.bill(store, tenant, period)
    except DOMAIN_ERRORS as exc:
        _fail(exc)
    out = {"table": bills.as_table, "csv": bills.as_csv, "json": bills.as_json}[fmt](b)
    sys.stdout.write(out)


@billing.command("terms")
@_TENANT
@click.option("--increment-s", type=click.Choice(["6", "60"]), default=None)
@click.option("--rent-fen", type=int, default=None, help="Monthly rent, fen.")
@click.option("--low-credit-fen", type=int, default=None)
@_DB
@_CONFIG
def terms_cmd(tenant: str, increment_s: str | None, rent_fen: int | None,
              low_credit_fen: int | None, db: str | None,
              config_path: str | None) -> None:
    """Change the increment, monthly rent or low-credit threshold (services: `billing
    services`)."""
    from billing import accounts
    from cc_core.errors import DOMAIN_ERRORS
    from provider.catalogue import load

    try:
        with _store(db, config_path) as store, store.transaction() as tx:
            accounts.set_terms(tx, load(), tenant,
                               increment_s=int(increment_s) if increment_s else None,
                               monthly_rent_fen=rent_fen, low_credit_fen=low_credit_fen)
        click.echo(f"{tenant}: terms changed")
    except DOMAIN_ERRORS as exc:
        _fail(exc)


@billing.command("services")
@_TENANT
@click.option("--add", "add", multiple=True, help="Subscribe to a value-added service "
              "(repeat); outside the package it costs its monthly fee.")
@click.option("--remove", "remove", multiple=True, help="End a subscription (repeat).")
@click.option("--from", "effective_on", required=True, metavar="YYYY-MM-DD")
@click.option("--by", required=True, help="Who changes it (the trail keeps it).")
@_DB
@_CONFIG
def services_cmd(tenant: str, add: tuple[str, ...], remove: tuple[str, ...],
                 effective_on: str, by: str, db: str | None, config_path: str | None) -> None:
    """Subscribe to or end value-added services from a stated day on."""
    from billing import accounts
    from cc_core.errors import DOMAIN_ERRORS
    from provider.catalogue import load

    try:
        with _store(db, config_path) as store, store.transaction() as tx:
            acc = accounts.set_services(tx, load(), tenant, add=list(add),
                                        remove=list(remove), effective_on=effective_on, by=by)
            day = acc.subscriptions[-1].effective_on
        click.echo(f"{tenant}: services from {effective_on}: "
                   f"{', '.join(sorted(acc.services_at(day))) or 'none'}")
    except DOMAIN_ERRORS as exc:
        _fail(exc)


def _periods(texts: tuple[str, ...]) -> list[Any]:
    from datetime import date

    from billing.accounts import RatePeriod
    from billing.errors import BadRateTable

    out = []
    for text in texts:
        parts = text.split(":")
        try:
            start, end, fen = parts
            out.append(RatePeriod(date.fromisoformat(start),
                                  date.fromisoformat(end) if end else None, int(fen)))
        except ValueError:
            raise BadRateTable(f"--period {text!r}: write FROM:TO:FEN_PER_MINUTE with dates "
                               "YYYY-MM-DD (TO empty for the open last period), e.g. "
                               "2026-01-01:2026-12-01:20") from None
    return out


@billing.command("rates")
@_TENANT
@click.option("--kind", required=True, type=click.Choice(["mobile", "landline"]))
@click.option("--period", "periods", multiple=True, metavar="FROM:TO:FEN",
              help="One validity period (repeat); none: back to the package's rate.")
@_DB
@_CONFIG
def rates_cmd(tenant: str, kind: str, periods: tuple[str, ...], db: str | None,
              config_path: str | None) -> None:
    """Replace the account's own rate table of one caller kind (no gap, no overlap)."""
    from billing import accounts
    from cc_core.errors import DOMAIN_ERRORS

    try:
        table = _periods(periods)
        with _store(db, config_path) as store, store.transaction() as tx:
            accounts.set_rates(tx, tenant, kind, table)
        click.echo(f"{tenant}: {len(table)} {kind} rate period(s)")
    except DOMAIN_ERRORS as exc:
        _fail(exc)


@billing.command("rate")
@click.option("--tenant", default=None, metavar="ID", help="Only this tenant.")
@_REDIS
@_DB
@_CONFIG
def rate_cmd(tenant: str | None, redis_url: str | None, db: str | None,
             config_path: str | None) -> None:
    """Rate the stored records not rated yet (e.g. calls from before the account opened)."""
    from billing import service
    from cc_core.errors import DOMAIN_ERRORS

    try:
        with _store(db, config_path) as store:
            n = service.rate_unrated(store, _view(redis_url), tenant)
        click.echo(f"rated {n} call record(s)")
    except DOMAIN_ERRORS as exc:
        _fail(exc)


@billing.command("sync")
@_REDIS
@_DB
@_CONFIG
def sync_cmd(redis_url: str | None, db: str | None, config_path: str | None) -> None:
    """Publish every account into the workers' credit view again, and drop the reservations
    of calls already rated (after a Redis restart or a lost publish)."""
    from billing import service
    from cc_core.errors import DOMAIN_ERRORS

    view = _view(redis_url)
    if view is None:
        raise click.UsageError("give --redis-url (or $CC_REDIS_URL): the view to repair")
    try:
        with _store(db, config_path) as store:
            n = service.sync(store, view)
        click.echo(f"published {n} account(s)")
    except DOMAIN_ERRORS as exc:
        _fail(exc)
