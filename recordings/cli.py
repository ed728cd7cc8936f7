"""``cc-core recordings purge|check``: retention and consistency of the recordings root
(added to ``cc_core.cli``, which maps domain errors to exit codes with every other command's).

Both read the record store (``--db``/``--config``, as ``cc-core cdr``), the recordings root
(``--root``, ``$CC_RECORDINGS_ROOT`` or ``recordings.root`` of ``--config``) and, for purge,
each tenant's retention: from a tenants YAML file or folder (``--tenants``, ``$CC_TENANTS``)
or from the applied config in Redis (``--redis-url``, ``$CC_REDIS_URL``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from records.cli import _CONFIG, _DB, _fail, _target

_ROOT = click.option("--root", envvar="CC_RECORDINGS_ROOT", default=None, metavar="DIR",
                     help="The recordings root (default: recordings.root of --config).")


def _root(root: str | None, config_path: str | None) -> Any:
    from cc_core import config as config_mod
    from recordings.layout import Root

    return Root(root or config_mod.load(config_path).recordings.root)


def _open(db: str | None, config_path: str | None) -> Any:
    from records.db import open_database
    from records.migrate import migrate

    store = open_database(_target(db, config_path))
    migrate(store)
    return store


def _tenants(tenants_path: str | None, redis_url: str | None) -> list[Any]:
    from cc_core.errors import ConfigError

    if tenants_path:
        from cc_core.tenants.loader import load_path

        return list(load_path(Path(tenants_path)).tenants.values())
    if redis_url:
        from cc_core import redisconn
        from cc_core.tenants.store import TenantDirectory

        return TenantDirectory(redisconn.connect(redis_url, socket_timeout=10)).all_tenants()
    raise ConfigError("purge needs each tenant's retention: pass --tenants FILE|DIR (or "
                      "CC_TENANTS) or --redis-url URL (or CC_REDIS_URL) for the applied config")


@click.group()
def recordings() -> None:
    """Call recordings: retention purge and consistency check."""


@recordings.command("purge")
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
@_ROOT
@click.option("--tenants", "tenants_path", envvar="CC_TENANTS", default=None,
              metavar="FILE|DIR", help="Tenants YAML (their recording.retention).")
@click.option("--redis-url", envvar="CC_REDIS_URL", default=None, metavar="URL",
              help="Read the applied tenant config from Redis instead of --tenants.")
@_DB
@_CONFIG
def recordings_purge(dry_run: bool, root: str | None, tenants_path: str | None,
                     redis_url: str | None, db: str | None, config_path: str | None) -> None:
    """Delete recordings older than their tenant's retention, and their index rows."""
    from cc_core.errors import DOMAIN_ERRORS
    from recordings.retention import TenantRetention, purge

    try:
        rules = {t.tenant: TenantRetention(t.recording.retention_days, t.timezone)
                 for t in _tenants(tenants_path, redis_url)}
        where = _root(root, config_path)
        with _open(db, config_path) as store, click.progressbar(
                length=1, label=f"purging {where.path}", file=sys.stderr) as bar:
            done = [0]

            def progress(i: int, n: int) -> None:
                bar.length = n
                bar.update(i - done[0])
                done[0] = i

            summary = purge(store, where, rules.get, now_ms=int(time.time() * 1000),
                            dry_run=dry_run, progress=progress)
    except DOMAIN_ERRORS as exc:
        _fail(exc)
    if dry_run:
        click.echo("dry run: nothing was deleted")
    click.echo(summary.table())


@recordings.command("check")
@click.option("--tenant", default=None, metavar="ID", help="Only this tenant's recordings.")
@_ROOT
@_DB
@_CONFIG
def recordings_check(tenant: str | None, root: str | None, db: str | None,
                     config_path: str | None) -> None:
    """Report recordings whose file is missing, empty, or does not fit its call."""
    from cc_core.errors import DOMAIN_ERRORS
    from recordings.check import check

    try:
        with _open(db, config_path) as store:
            report = check(store, _root(root, config_path), tenant)
    except DOMAIN_ERRORS as exc:
        _fail(exc)
    click.echo(report.table())
    if not report.ok:
        sys.exit(1)
