"""``cc-core numbers …``: the provider's number inventory (added to ``cc_core.cli``, which
maps domain errors to exit codes with every other command's)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from provider.grading import Grade
from provider.lifecycle import NumberState
from records.cli import _CONFIG, _DB, _fail, _target

_DURATION = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _now_ms() -> int:
    return int(time.time() * 1000)


def _seconds(text: str) -> int:
    unit = text[-1:].lower()
    if unit in _DURATION and text[:-1].isdigit():
        return int(text[:-1]) * _DURATION[unit]
    if text.isdigit():
        return int(text)
    raise click.BadParameter(f"{text!r}: a duration such as 90m, 72h or 7d")


def _open(db: str | None, config_path: str | None) -> Any:
    from records.db import open_database
    from records.migrate import migrate

    store = open_database(_target(db, config_path))
    migrate(store)
    return store


def _table(rows: list[Any]) -> None:
    click.echo(f"{'number':<12} {'carrier':<8} {'grade':<5} {'points':>6}  {'state':<11} "
               "holder/tenant")
    for r in rows:
        who = r.tenant or r.holder
        click.echo(f"{r.number:<12} {r.carrier:<8} {r.grade:<5} {r.points:>6}  "
                   f"{r.state.value:<11} {who}")


@click.group()
def numbers() -> None:
    """The 400-number inventory: import, grade, search, reserve, move through the life cycle."""


@numbers.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_DB
@_CONFIG
def numbers_import(file: Path, db: str | None, config_path: str | None) -> None:
    """Add the numbers of a CSV (first column; UTF-8, with or without BOM, or GBK)."""
    from cc_core.errors import DOMAIN_ERRORS
    from provider.inventory import import_numbers, read_csv

    try:
        total = len(read_csv(file))
        with _open(db, config_path) as store, click.progressbar(
                length=total, label=f"importing {file.name}", file=sys.stderr) as bar:
            done = [0]

            def progress(i: int, n: int) -> None:
                bar.update(i - done[0])
                done[0] = i

            summary = import_numbers(store, file, now_ms=_now_ms(), progress=progress)
    except DOMAIN_ERRORS as exc:
        _fail(exc)
    click.echo(summary.table())


@numbers.command("grade")
@click.argument("number")
def numbers_grade(number: str) -> None:
    """Explain a number's vanity grade, rule by rule."""
    from provider.grading import NumberError, grade

    try:
        g = grade(number)
    except NumberError as exc:
        raise click.BadParameter(str(exc), param_hint="NUMBER") from None
    click.echo(g.explain())
    if g.hints:
        click.echo("trade hints: " + ", ".join(g.hints))


@numbers.command("search")
@click.option("--carrier", type=click.Choice(["telecom", "mobile", "unicom"]), default=None)
@click.option("--pattern", default=None, metavar="GLOB",
              help="Digits with * (any digits) and ? (one digit), e.g. '*8888'.")
@click.option("--grade", "grades", type=click.Choice([g.value for g in Grade]), multiple=True)
@click.option("--state", type=click.Choice([s.value for s in NumberState]),
              default=NumberState.AVAILABLE.value, show_default=True)
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@_DB
@_CONFIG
def numbers_search(carrier: str | None, pattern: str | None, grades: tuple[str, ...],
                   state: str, limit: int, db: str | None, config_path: str | None) -> None:
    """Numbers on offer, best grade first."""
    from cc_core.errors import DOMAIN_ERRORS
    from provider.inventory import search

    try:
        with _open(db, config_path) as store:
            rows = search(store, carrier=carrier, pattern=pattern,
                          grades=[Grade(g) for g in grades], state=NumberState(state),
                          limit=limit)
    except DOMAIN_ERRORS as exc:
        _fail(exc)
    _table(rows)


@numbers.command("reserve")
@click.argument("number")
@click.option("--holder", required=True, help="Who holds it (the applicant).")
@click.option("--for", "ttl", default="72h", show_default=True, help="How long, e.g. 72h.")
@_DB
@_CONFIG
def numbers_reserve(number: str, holder: str, ttl: str, db: str | None,
                    config_path: str | None) -> None:
    """Hold an available number for an applicant (refused if another holds it)."""
    from cc_core.errors import DOMAIN_ERRORS
    from provider.inventory import reserve

    try:
        with _open(db, config_path) as store:
            row = reserve(store, number, holder=holder, ttl_s=_seconds(ttl), now_ms=_now_ms())
    except DOMAIN_ERRORS as exc:
        _fail(exc)
    _table([row])


@numbers.command("move")
@click.argument("number")
@click.argument("state", type=click.Choice([s.value for s in NumberState]))
@click.option("--by", "actor", required=True, help="Who makes the move (staff id).")
@click.option("--reason", required=True, help="Why: kept in the number's history.")
@click.option("--tenant", default=None, help="The tenant it goes to (contracted).")
@_DB
@_CONFIG
def numbers_move(number: str, state: str, actor: str, reason: str, tenant: str | None,
                 db: str | None, config_path: str | None) -> None:
    """Move a number along its life cycle (illegal moves are refused, saying which are not)."""
    from cc_core.errors import DOMAIN_ERRORS
    from provider.inventory import move

    try:
        with _open(db, config_path) as store:
            row = move(store, number, NumberState(state), actor=actor, reason=reason,
                       now_ms=_now_ms(), tenant=tenant)
    except DOMAIN_ERRORS as exc:
        _fail(exc)
    _table([row])


@numbers.command("show")
@click.argument("number")
@_DB
@_CONFIG
def numbers_show(number: str, db: str | None, config_path: str | None) -> None:
    """A number's state and every move it made (who, when, why)."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from cc_core.errors import DOMAIN_ERRORS
    from provider.inventory import get, history

    try:
        with _open(db, config_path) as store:
            row, events = get(store, number), history(store, number)
    except DOMAIN_ERRORS as exc:
        _fail(exc)
    _table([row])
    tz = ZoneInfo("Asia/Shanghai")
    for e in events:
        at = datetime.fromtimestamp(e.at_ms / 1000, UTC).astimezone(tz)
        click.echo(f"  {at:%Y-%m-%d %H:%M:%S%z}  {e.from_state or '-':>11} -> {e.to_state:<11} "
                   f"by {e.actor}: {e.reason}")
