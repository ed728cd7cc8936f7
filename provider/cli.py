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


def _tenant_store(redis_url: str | None) -> Any:
    from cc_core.cli import _redis
    from cc_core.errors import ConfigError
    from cc_core.tenants.store import TenantStore

    if not redis_url:
        raise ConfigError("the number's routing lives in the applied tenant config: give "
                          "--redis-url redis://HOST:PORT/DB or CC_REDIS_URL")
    return TenantStore(_redis(redis_url))


_REDIS = click.option("--redis-url", envvar="CC_REDIS_URL", default=None, metavar="URL",
                      help="Redis holding the applied tenant config (default: $CC_REDIS_URL).")
# Workers pick up a new configuration version within their refresh interval (1 s).
SETTLE_S = 1.5


@numbers.command("activate")
@click.argument("number")
@click.option("--by", "actor", required=True, help="Who activates it (staff id).")
@click.option("--node", default=None, metavar="NAME|NAME=HOST:PORT",
              help="The node the test call goes through (default: the config's first).")
@click.option("--password", default=None, help="ESL password for a NAME=HOST:PORT --node.")
@click.option("--dtmf", default="", help="Keys the test call presses, e.g. 1,2.")
@click.option("--caller", default="13800138000", show_default=True,
              help="Caller ID of the test call.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(1, 600), default=30.0,
              show_default=True)
@_REDIS
@_DB
@_CONFIG
def numbers_activate(number: str, actor: str, node: str | None, password: str | None,
                     dtmf: str, caller: str, timeout_s: float, redis_url: str | None,
                     db: str | None, config_path: str | None) -> None:
    """Bind a contracted number to its tenant's routing, place the test call (拨测), and make
    it active only if the call reaches where the configuration says."""
    from gevent import monkey

    monkey.patch_all()
    import gevent

    from cc_core import config as config_mod
    from cc_core.cli import _redis, _run_overrides
    from cc_core.errors import DOMAIN_ERRORS, ConfigError
    from cc_core.routing.region import RegionDirectory
    from cc_core.selftest import run_selftest
    from cc_core.tenants.store import TenantDirectory
    from provider.activation import DialTest, activate

    try:
        tenants = _tenant_store(redis_url)
        overrides = _run_overrides(config_path, (node,) if node and "=" in node else (),
                                   password, redis_url, None, None)
        cfg = config_mod.load(config_path, overrides=overrides)
        chosen = [n for n in cfg.nodes if node is None or "=" in node or n.name == node]
        if not chosen:
            raise ConfigError(f"--node {node!r}: no such node in the config")
        keys_ = [k.strip() for k in dtmf.split(",") if k.strip()]

        def dial(n: str) -> DialTest:
            gevent.sleep(SETTLE_S)
            lines: list[str] = []

            def out(text: str) -> None:
                lines.append(text)
                click.echo(text)

            client = _redis(redis_url)
            code = run_selftest(chosen[0], client, TenantDirectory(client), RegionDirectory(),
                                n, keys_, caller, timeout_s=timeout_s, out=out)
            return DialTest(code == 0, "\n".join(lines))

        with _open(db, config_path) as store:
            result = activate(store, tenants, number, actor=actor, now_ms=_now_ms(),
                              dial_test=dial)
    except DOMAIN_ERRORS as exc:
        _fail(exc)
    click.echo(result.summary())
    sys.exit(0 if result.active else 1)


def _change(number: str, target: NumberState, actor: str, reason: str, redis_url: str | None,
            db: str | None, config_path: str | None) -> None:
    from cc_core.errors import DOMAIN_ERRORS
    from provider.activation import change

    try:
        tenants = _tenant_store(redis_url)
        with _open(db, config_path) as store:
            change(store, tenants, number, target, actor=actor, reason=reason,
                   now_ms=_now_ms())
    except DOMAIN_ERRORS as exc:
        _fail(exc)
    click.echo(f"{number} is {target.value}; its calls follow the change now")


for _name, _target_state, _doc in (
        ("suspend", NumberState.SUSPENDED, "Suspend a number (e.g. unpaid): callers hear the "
                                          "suspension announcement, unanswered."),
        ("resume", NumberState.ACTIVE, "Put a suspended number back in service."),
        ("cancel", NumberState.CANCELLED, "Cancel a number: it no longer routes.")):
    def _make(target: NumberState = _target_state) -> Any:
        def command(number: str, actor: str, reason: str, redis_url: str | None,
                    db: str | None, config_path: str | None) -> None:
            _change(number, target, actor, reason, redis_url, db, config_path)
        return command

    cmd = _make()
    cmd.__doc__ = _doc
    for deco in (_CONFIG, _DB, _REDIS,
                 click.option("--reason", required=True, help="Why: kept in its history."),
                 click.option("--by", "actor", required=True, help="Staff id."),
                 click.argument("number")):
        cmd = deco(cmd)
    numbers.command(_name)(cmd)


# ---- applications and contracts ---------------------------------------------------------------
def _app_table(app: Any) -> None:
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    due = ""
    if app.due_ms:
        when = datetime.fromtimestamp(app.due_ms / 1000, UTC).astimezone(ZoneInfo(
            "Asia/Shanghai"))
        due = f", audit due {when:%Y-%m-%d %H:%M}"
    click.echo(f"{app.id}: {app.number} for {app.tenant} ({app.applicant_kind}, "
               f"{app.applicant_name}): {app.state}{due}")
    for item, (status, why) in app.materials.items():
        click.echo(f"  {item:<24} {status.value:<9} {why}")


@click.group()
def application() -> None:
    """Applications for a reserved 400 number: materials, audit, decision."""


@application.command("open")
@click.argument("number")
@click.option("--holder", required=True, help="Who reserved the number.")
@click.option("--tenant", required=True, help="The account the number will belong to.")
@click.option("--kind", type=click.Choice(["enterprise", "sole_trader"]), required=True)
@click.option("--name", required=True, help="The applicant's registered name.")
@_DB
@_CONFIG
def application_open(number: str, holder: str, tenant: str, kind: str, name: str,
                     db: str | None, config_path: str | None) -> None:
    """Open an application for a number the holder reserved (it becomes applied)."""
    from cc_core.errors import DOMAIN_ERRORS
    from provider.applications import ApplicantKind, open_application

    try:
        with _open(db, config_path) as store:
            app = open_application(store, number, holder=holder, tenant=tenant,
                                   kind=ApplicantKind(kind), name=name, now_ms=_now_ms())
    except DOMAIN_ERRORS as exc:
        _fail(exc)
    _app_table(app)


@application.command("material")
@click.argument("app_id")
@click.argument("item")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), required=True,
              envvar="CC_MATERIALS_ROOT", help="Where materials are kept ($CC_MATERIALS_ROOT).")
@_DB
@_CONFIG
def application_material(app_id: str, item: str, file: Path, root: Path, db: str | None,
                         config_path: str | None) -> None:
    """Add one material (a PDF, JPEG or PNG scan) to a draft or returned application."""
    from cc_core.errors import DOMAIN_ERRORS
    from provider.applications import add_material

    try:
        with _open(db, config_path) as store:
            path = add_material(store, app_id, item, file.read_bytes(),
                                claimed=file.suffix or "?", root=root, now_ms=_now_ms())
    except DOMAIN_ERRORS as exc:
        _fail(exc)
    click.echo(f"stored {item} as {path}")


@application.command("submit")
@click.argument("app_id")
@click.option("--by", "actor", required=True)
@_DB
@_CONFIG
def application_submit(app_id: str, actor: str, db: str | None, config_path: str | None) -> None:
    """Send the application to audit (its clock starts: 3 working days)."""
    from cc_core.errors import DOMAIN_ERRORS
    from provider.applications import submit

    try:
        with _open(db, config_path) as store:
            app = submit(store, app_id, actor=actor, now_ms=_now_ms())
    except DOMAIN_ERRORS as exc:
        _fail(exc)
    _app_table(app)


@application.command("review")
@click.argument("app_id")
@click.argument("item")
@click.argument("verdict", type=click.Choice(["accept", "reject"]))
@click.option("--by", "actor", required=True)
@click.option("--reason", default="")
@_DB
@_CONFIG
def application_review(app_id: str, item: str, verdict: str, actor: str, reason: str,
                       db: str | None, config_path: str | None) -> None:
    """The auditor's verdict on one material."""
    from cc_core.errors import DOMAIN_ERRORS
    from provider.applications import review

    try:
        with _open(db, config_path) as store:
            app = review(store, app_id, item, accept=verdict == "accept", reason=reason,
                         actor=actor, now_ms=_now_ms())
    except DOMAIN_ERRORS as exc:
        _fail(exc)
    _app_table(app)


@application.command("decide")
@click.argument("app_id")
@click.argument("verdict", type=click.Choice(["accept", "return", "reject"]))
@click.option("--by", "actor", required=True)
@click.option("--reason", default="")
@_DB
@_CONFIG
def application_decide(app_id: str, verdict: str, actor: str, reason: str, db: str | None,
                       config_path: str | None) -> None:
    """The audit's outcome."""
    from cc_core.errors import DOMAIN_ERRORS
    from provider.applications import decide

    try:
        with _open(db, config_path) as store:
            app = decide(store, app_id, verdict, actor=actor, reason=reason, now_ms=_now_ms())
    except DOMAIN_ERRORS as exc:
        _fail(exc)
    _app_table(app)


@application.command("overdue")
@_DB
@_CONFIG
def application_overdue(db: str | None, config_path: str | None) -> None:
    """Applications whose audit is past its working-day deadline."""
    from cc_core.errors import DOMAIN_ERRORS
    from provider.applications import overdue

    try:
        with _open(db, config_path) as store:
            late = overdue(store, _now_ms())
    except DOMAIN_ERRORS as exc:
        _fail(exc)
    for app in late:
        _app_table(app)
    click.echo(f"{len(late)} overdue")


@application.command("sign")
@click.argument("app_id")
@click.option("--package", required=True)
@click.option("--promotion", default="")
@click.option("--term-years", type=click.IntRange(1, 10), default=1, show_default=True)
@click.option("--auto-renew/--no-auto-renew", default=True, show_default=True)
@click.option("--sla", "sla_text", default="99.9% monthly availability", show_default=True)
@click.option("--esign-ref", required=True, help="The e-signature service's document id.")
@click.option("--starts-on", required=True, metavar="YYYY-MM-DD")
@click.option("--by", "actor", required=True)
@_DB
@_CONFIG
def application_sign(app_id: str, package: str, promotion: str, term_years: int,
                     auto_renew: bool, sla_text: str, esign_ref: str, starts_on: str,
                     actor: str, db: str | None, config_path: str | None) -> None:
    """Record the signed contract of an accepted application (the number becomes contracted)."""
    from cc_core.errors import DOMAIN_ERRORS
    from provider.applications import sign
    from provider.catalogue import load

    try:
        with _open(db, config_path) as store:
            c = sign(store, app_id, catalogue=load(), package=package, promotion=promotion,
                     term_years=term_years, auto_renew=auto_renew, sla_text=sla_text,
                     esign_ref=esign_ref, starts_on=starts_on, actor=actor, now_ms=_now_ms())
    except DOMAIN_ERRORS as exc:
        _fail(exc)
    click.echo(f"contract {c.esign_ref}: {c.number} for {c.tenant}, package {c.package}"
               f"{' (' + c.promotion + ')' if c.promotion else ''}, "
               f"{c.yearly_fee_fen // 100}.{c.yearly_fee_fen % 100:02d} "
               f"元/year for {c.term_years} year(s), from {c.starts_on}"
               f"{', auto-renewing' if c.auto_renew else ''}")
