"""``cc-core db …`` and ``cc-core cdr …``: the record store's commands (added to ``cc_core.cli``,
which maps their domain errors to exit codes with every other command's)."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Any

import click


def _fail(exc: Any) -> Any:
    from cc_core.cli import _fail as fail

    return fail(exc)


def _target(db: str | None, config_path: str | None) -> str:
    if db:
        return db
    from cc_core import config as config_mod

    return config_mod.load(config_path).records.db


_DB = click.option("--db", envvar="CC_RECORDS_DB", default=None, metavar="PATH|DSN",
                   help="SQLite file or PostgreSQL DSN (default: records.db of --config, "
                        "$CC_RECORDS_DB).")
_CONFIG = click.option("--config", "config_path", type=click.Path(dir_okay=False),
                       help="YAML config file (its records.db).")
_TENANT = click.option("--tenant", required=True, metavar="ID", help="The tenant.")
_FROM = click.option("--from", "start", required=True, metavar="DATE[THH:MM]",
                     help="First day (or moment) of the period, in the tenant's time zone.")
_TO = click.option("--to", "end", required=True, metavar="DATE[THH:MM]",
                   help="Last day of the period (included), or a moment (excluded).")


@click.group()
def db() -> None:
    """The SQL store of business records (call records…): schema migrations."""


@db.command("migrate")
@_DB
@_CONFIG
def db_migrate(db: str | None, config_path: str | None) -> None:
    """Apply the schema migrations this store has not run yet (safe to run again)."""
    from cc_core.errors import DOMAIN_ERRORS
    from records.db import open_database
    from records.migrate import applied, migrate

    try:
        with open_database(_target(db, config_path)) as store:
            done = migrate(store)
            version = max(applied(store), default=0)
            for m in done:
                click.echo(f"applied {m.version:04d}_{m.name}")
            click.echo(f"{store!r}: schema at version {version}"
                       + ("" if done else " (nothing to do)"))
    except DOMAIN_ERRORS as exc:
        _fail(exc)


@click.group()
def cdr() -> None:
    """Call records: store them from the calls streams, export them, report on them."""


@cdr.command("consume")
@_DB
@_CONFIG
@click.option("--redis-url", envvar="CC_REDIS_URL", default=None, metavar="URL",
              help="Redis holding the calls streams (default: $CC_REDIS_URL).")
@click.option("--name", default=None, help="Consumer name in the group (default: host-pid).")
@click.option("--batch", type=click.IntRange(1, 10_000), default=500, show_default=True)
@click.option("--claim-idle-ms", type=click.IntRange(1, None), default=60_000,
              show_default=True,
              help="Take over entries another consumer left pending this long (it died).")
def cdr_consume(db: str | None, config_path: str | None, redis_url: str | None,
                name: str | None, batch: int, claim_idle_ms: int) -> None:
    """Store every finished call as one record, until SIGTERM or Ctrl-C."""
    from cc_core import logs
    from cc_core.cli import _redis
    from cc_core.errors import DOMAIN_ERRORS
    from records.consumer import CdrConsumer
    from records.db import open_database
    from records.migrate import migrate

    logs.setup()
    stop = {"now": False}

    def on_signal(signum: int, frame: Any) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        with open_database(_target(db, config_path)) as store:
            migrate(store)
            from billing.service import Rater

            r = _redis(redis_url)
            consumer = CdrConsumer(r, store, name, batch=batch, claim_idle_ms=claim_idle_ms,
                                   rater=Rater(r))
            consumer.run(lambda: stop["now"])
    except DOMAIN_ERRORS as exc:
        _fail(exc)


def _open_for_reading(db: str | None, config_path: str | None, tenant: str, start: str,
                      end: str) -> tuple[Any, Any]:
    """The store and the period, or a domain error; reading only, so bad input writes
    nothing."""
    from records.db import open_database
    from records.migrate import require_current
    from records.report import period, tenant_timezone

    store = open_database(_target(db, config_path), must_exist=True)
    try:
        require_current(store)
        tz = tenant_timezone(store, tenant)
        return store, period(tenant, tz, start, end)
    except BaseException:
        store.close()
        raise


@cdr.command("export")
@_TENANT
@_FROM
@_TO
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv",
              show_default=True)
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Write here instead of standard output.")
@_DB
@_CONFIG
def cdr_export(tenant: str, start: str, end: str, fmt: str, out_path: Path | None,
               db: str | None, config_path: str | None) -> None:
    """The tenant's call records of a period, one per call, oldest first."""
    from cc_core.errors import DOMAIN_ERRORS
    from records import report

    try:
        store, p = _open_for_reading(db, config_path, tenant, start, end)
        with store:
            found = list(report.rows(store, p))
        if out_path is None:
            report.export(found, p.tz, fmt, sys.stdout)
        else:
            with out_path.open("w", encoding="utf-8", newline="") as fh:
                n = report.export(found, p.tz, fmt, fh)
            click.echo(f"wrote {n} records of {tenant} ({p.describe()}) to {out_path}",
                       err=True)
    except DOMAIN_ERRORS as exc:
        _fail(exc)


@cdr.command("report")
@_TENANT
@_FROM
@_TO
@click.option("--csv", "as_csv", is_flag=True, help="CSV (metric,value) instead of a table.")
@_DB
@_CONFIG
def cdr_report(tenant: str, start: str, end: str, as_csv: bool, db: str | None,
               config_path: str | None) -> None:
    """Calls, answered, abandoned, average wait and talk, busiest hours (呼叫报表)."""
    from cc_core.errors import DOMAIN_ERRORS
    from records import report

    try:
        store, p = _open_for_reading(db, config_path, tenant, start, end)
        with store:
            result = report.report(report.rows(store, p), p)
        click.echo(report.as_csv(result) if as_csv else report.as_table(result), nl=False)
    except DOMAIN_ERRORS as exc:
        _fail(exc)
