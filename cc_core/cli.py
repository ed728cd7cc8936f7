"""The ``cc-core`` command: one entry point, a subcommand per job.

Domain errors are mapped to exit codes here and nowhere else.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from cc_core import __version__, realtime
from cc_core.errors import DOMAIN_ERRORS, CcCoreError, ConfigError, EslError, LeaseLost


def _fail(exc: CcCoreError | EslError | LeaseLost) -> NoReturn:
    click.echo(f"cc-core: {exc} [{exc.error_id}]", err=True)
    sys.exit(exc.exit_code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cc-core")
def cli() -> None:
    """Contact-centre core for 400 numbers, driving FreeSWITCH over the Event Socket."""


@cli.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                      "help_option_names": []},
    add_help_option=False,
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def sim(args: tuple[str, ...]) -> None:
    """Run the FreeSWITCH ESL simulator (see `cc-core sim --help`)."""
    # The simulator is test/demo tooling: imported only when asked for, never by product code.
    from fssim.cli import main as sim_main

    sys.exit(sim_main(list(args), prog="cc-core sim"))


@cli.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="YAML config file (nodes, esl, redis_url, metrics_port).")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Worker processes, each one gevent hub.")
@click.option("--node", "nodes", multiple=True, metavar="NAME=HOST:PORT",
              help="A FreeSWITCH node (repeatable); password from --password or the config.")
@click.option("--password", default=None, help="ESL password for --node entries.")
@click.option("--redis-url", default=None, help="Redis URL; none: a private redis-server.")
@click.option("--metrics-port", type=int, default=None,
              help="First worker's /metrics port (worker i uses port+i); 0 picks free ports.")
@click.option("--lease-ttl-ms", type=int, default=None, help="Node lease TTL (default 5000).")
@click.option("--realtime-priority", type=click.IntRange(realtime.LOWEST, realtime.HIGHEST),
              default=None, metavar=f"{realtime.LOWEST}-{realtime.HIGHEST}",
              help="Run the workers (and a private redis-server) under SCHED_RR at this "
                   "priority; needs root or CAP_SYS_NICE.")
def run(config_path: str | None, workers: int, nodes: tuple[str, ...], password: str | None,
        redis_url: str | None, metrics_port: int | None, lease_ttl_ms: int | None,
        realtime_priority: int | None) -> None:
    """Run N worker processes that own FreeSWITCH nodes by lease and handle their calls."""
    from cc_core import config as config_mod

    try:
        cfg = config_mod.load(config_path, overrides={**_run_overrides(
            config_path, nodes, password, redis_url, metrics_port, lease_ttl_ms),
            "realtime_priority": realtime_priority})
        from cc_core import app, worker

        sys.exit(worker.run(cfg, workers, app_factory=app.build))
    except DOMAIN_ERRORS as exc:
        _fail(exc)


def _run_overrides(config_path: str | None, nodes: tuple[str, ...], password: str | None,
                   redis_url: str | None, metrics_port: int | None,
                   lease_ttl_ms: int | None) -> dict[str, Any]:
    from cc_core import config as config_mod
    from cc_core.errors import ConfigError

    out: dict[str, Any] = {"redis_url": redis_url, "metrics_port": metrics_port}
    if nodes:
        parsed = []
        for spec in nodes:
            name, sep, addr = spec.partition("=")
            host, sep2, port = addr.rpartition(":")
            if not (sep and sep2 and name and host and port.isdigit()):
                raise ConfigError(f"--node {spec!r}: expected NAME=HOST:PORT, e.g. fs1=127.0.0.1:8021")
            node: dict[str, Any] = {"name": name, "host": host, "port": int(port)}
            if password is not None:
                node["password"] = password
            parsed.append(node)
        out["nodes"] = parsed
    if lease_ttl_ms is not None:
        base = config_mod.load(config_path)
        out["esl"] = {**base.esl.model_dump(), "lease_ttl_ms": lease_ttl_ms}
    return out


@cli.command()
@click.option("--duration", type=click.FloatRange(1, 24 * 3600), default=60.0, show_default=True,
              help="Seconds of generated traffic.")
@click.option("--rate", type=click.FloatRange(0.1, 2000), default=20.0, show_default=True,
              help="New calls per second.")
@click.option("--workers", type=click.IntRange(1, 16), default=2, show_default=True)
@click.option("--mix", type=click.Choice(["full", "announce"]), default="full",
              show_default=True,
              help="full: callers taking every branch of the example tenants' call flow; "
                   "announce: every call hears the information line (the cheapest flow).")
@click.option("--caller-hangup-ratio", type=click.FloatRange(0, 1), default=0.1, show_default=True,
              help="Share of callers who hang up soon after being answered.")
@click.option("--seed", type=int, default=400, show_default=True)
def demo(duration: float, rate: float, workers: int, mix: str,
         caller_hangup_ratio: float, seed: int) -> None:
    """Private Redis + simulator + workers + a traffic generator, with live progress."""
    # The demo's traffic generator is a gevent program; `run`'s supervisor deliberately is not
    # (cc_core.worker), so only this command patches, before it imports anything network-bound.
    from gevent import monkey

    monkey.patch_all()
    from cc_core.demo import DemoOptions, run_demo

    try:
        sys.exit(run_demo(DemoOptions(duration=duration, rate=rate, workers=workers, mix=mix,
                                      caller_hangup_ratio=caller_hangup_ratio, seed=seed)))
    except DOMAIN_ERRORS as exc:
        _fail(exc)


@cli.group()
def config() -> None:
    """Tenant configuration: validate YAML, apply it to Redis as a new version, show it."""


_REDIS_URL = click.option(
    "--redis-url", envvar="CC_REDIS_URL", default=None, metavar="URL",
    help="Redis holding the applied config (default: $CC_REDIS_URL).")


def _summary(tenant: Any, source: Any) -> str:
    lists = tenant.lists
    def size(lst: Any) -> int:
        return len(lst.numbers) + len(lst.prefixes) + len(lst.area_codes)
    active = sum(1 for n in tenant.numbers.values() if n.status.value == "active")
    return (f"{tenant.tenant} ({source}): {len(tenant.numbers)} numbers ({active} active), "
            f"{len(tenant.menus)} menus, {len(tenant.queues)} queues, "
            f"{len(tenant.prompts)} prompts, blacklist {size(lists.blacklist)} entries, "
            f"whitelist {size(lists.whitelist)} entries")


@config.command()
@click.argument("path", type=click.Path(path_type=str))
def validate(path: str) -> None:
    """Check a tenant file or a folder of them; list every problem (exit 2) or each tenant."""
    from cc_core.tenants.loader import load_path

    try:
        loaded = load_path(path)
    except DOMAIN_ERRORS as exc:
        _fail(exc)
    for tid, tenant in sorted(loaded.tenants.items()):
        click.echo(_summary(tenant, loaded.sources[tid]))
    for warning in _calendar_warnings(loaded.tenants.values()):
        click.echo(f"warning: {warning}", err=True)
    if loaded.global_source is not None:
        click.echo(f"global ({loaded.global_source}): platform blacklist "
                   f"{len(loaded.global_config.blacklist.numbers)} numbers, "
                   f"{len(loaded.global_config.blacklist.prefixes)} prefixes")


# How far ahead validate looks for official holidays the calendar data does not hold yet.
CALENDAR_HORIZON_DAYS = 60


def _calendar_warnings(tenants: Any, today: Any = None) -> list[str]:
    """Tenants that route by China's official calendar, where the installed data stops before
    the next CALENDAR_HORIZON_DAYS: those days would count as ordinary weekdays."""
    from datetime import date, timedelta

    from cc_core.routing.calendar import WorkCalendar

    start = today or date.today()
    horizon = start + timedelta(days=CALENDAR_HORIZON_DAYS)
    calendar = WorkCalendar(hours={})
    if calendar.covers(horizon):
        return []
    uncovered = next(start + timedelta(days=d) for d in range(CALENDAR_HORIZON_DAYS + 1)
                     if not calendar.covers(start + timedelta(days=d)))
    names = sorted(t.tenant for t in tenants
                   if t.hours.official and t.hours.after_hours is not None)
    if not names:
        return []
    return [f"China's official holidays and make-up working days from {uncovered} on are not "
            f"in the installed chinesecalendar data; {', '.join(names)} would treat them as "
            "ordinary days: list them under hours.holidays and hours.workdays, or upgrade "
            "chinesecalendar once it publishes them"]


def _store(redis_url: str | None) -> Any:
    from cc_core.errors import ConfigError

    if not redis_url:
        raise ConfigError("no Redis to read or write the tenant config: pass --redis-url "
                          "redis://HOST:PORT/DB or set CC_REDIS_URL (config commands never "
                          "start a private Redis)")
    from cc_core.tenants.store import TenantStore

    return TenantStore(_redis(redis_url))


def _redis_down(exc: Exception, redis_url: str | None) -> CcCoreError:
    from cc_core.errors import EnvironmentProblem

    return EnvironmentProblem(f"cannot use Redis at {redis_url}: {exc}; check --redis-url / "
                              "CC_REDIS_URL and that the server is up (nothing was applied)")


@config.command()
@click.argument("path", type=click.Path(path_type=str))
@click.option("--dry-run", is_flag=True, help="Print what would change; write nothing.")
@_REDIS_URL
def apply(path: str, dry_run: bool, redis_url: str | None) -> None:
    """Apply a folder (the whole config) or one tenant file as a new version, atomically."""
    from redis.exceptions import RedisError

    from cc_core.tenants.loader import load_path

    try:
        loaded = load_path(path)
        store = _store(redis_url)
        try:
            result = store.apply(loaded, dry_run=dry_run)
        except RedisError as exc:
            raise _redis_down(exc, redis_url) from exc
    except DOMAIN_ERRORS as exc:
        _fail(exc)
    for text in result.diffs.values():
        click.echo(text, nl=False)
    def what(add: str, change: str, remove: str) -> str:
        return ", ".join(f"{verb} {' '.join(names)}" for verb, names in (
            (add, result.added), (change, result.changed), (remove, result.removed)) if names)

    if result.unchanged:
        click.echo(f"no change: version {result.version} already holds this configuration")
    elif result.dry_run:
        click.echo(f"dry run: would {what('add', 'change', 'remove')} "
                   f"(applied now: version {result.version}); nothing written")
    else:
        click.echo(f"applied version {result.version} (was {result.previous_version}): "
                   f"{what('added', 'changed', 'removed')}")


@config.command()
@click.argument("tenant")
@_REDIS_URL
def show(tenant: str, redis_url: str | None) -> None:
    """Print a tenant's applied config as canonical YAML (loadable again as a tenant file)."""
    from redis.exceptions import RedisError

    try:
        store = _store(redis_url)
        try:
            text = store.show(tenant)
        except RedisError as exc:
            raise _redis_down(exc, redis_url) from exc
    except DOMAIN_ERRORS as exc:
        _fail(exc)
    click.echo(text, nl=False)


@cli.command()
@click.argument("number")
@click.option("--dtmf", default="", metavar="KEYS",
              help="Keys to press, one entry per menu prompt, comma-separated (e.g. 1,2,1234#).")
@click.option("--caller", default="13800138000", show_default=True,
              help="Caller ID the test call presents (lists and regional rules apply to it).")
@click.option("--node", default=None, metavar="NAME|NAME=HOST:PORT",
              help="The node to call through: a name from --config, or NAME=HOST:PORT "
                   "(default: the config's first node).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="YAML config file (nodes, esl); the node's ESL password comes from it.")
@click.option("--password", default=None, help="ESL password for a NAME=HOST:PORT --node.")
@click.option("--redis-url", envvar="CC_REDIS_URL", default=None,
              help="Redis holding the applied tenant config and the calls' records "
                   "(default: CC_REDIS_URL).")
@click.option("--timeout", "timeout_s", type=click.FloatRange(1, 600), default=60.0,
              show_default=True, help="Give up (and hang up) after this many seconds.")
def selftest(number: str, dtmf: str, caller: str, node: str | None, config_path: str | None,
             password: str | None, redis_url: str | None, timeout_s: float) -> None:
    """Place a test call (拨测) to a 400 number through FreeSWITCH, walk its menus with --dtmf,
    print each step; exit 0 only if it reached the destination its configuration predicts."""
    from gevent import monkey

    monkey.patch_all()
    from cc_core import config as config_mod
    from cc_core.errors import ConfigError
    from cc_core.routing.region import RegionDirectory
    from cc_core.selftest import run_selftest
    from cc_core.tenants.store import TenantDirectory

    try:
        if not redis_url:
            raise ConfigError("selftest needs the Redis holding the applied tenant config: "
                              "--redis-url redis://HOST:PORT/DB or CC_REDIS_URL")
        overrides = _run_overrides(config_path, (node,) if node and "=" in node else (),
                                   password, redis_url, None, None)
        cfg = config_mod.load(config_path, overrides=overrides)
        chosen = [n for n in cfg.nodes if node is None or "=" in node or n.name == node]
        if not chosen:
            raise ConfigError(f"--node {node!r}: no such node in the config "
                              f"({', '.join(n.name for n in cfg.nodes) or 'none configured'})")
        client = _redis(redis_url)
        keys_ = [k.strip() for k in dtmf.split(",") if k.strip()]
        code = run_selftest(chosen[0], client, TenantDirectory(client), RegionDirectory(),
                            number, keys_, caller, timeout_s=timeout_s, out=click.echo)
    except DOMAIN_ERRORS as exc:
        _fail(exc)
    sys.exit(code)


@cli.group()
def fsconf() -> None:
    """FreeSWITCH configuration for a node run by this core."""


@fsconf.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), required=True,
              help="YAML config file: nodes (ESL address, password) and freeswitch: "
                   "(trunks, agents, addresses, fallback).")
@click.option("--tenants", "tenants_path", type=click.Path(), required=True,
              help="Tenant folder or file: the 400 numbers the node parks.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True,
              help="Folder to write (replaced whole); FreeSWITCH's -conf.")
@click.option("--node", default=None, metavar="NAME",
              help="Which node of the config (needed when it lists several).")
def render(config_path: str, tenants_path: str, out_dir: str, node: str | None) -> None:
    """Write the node's whole FreeSWITCH configuration into --out.

    The ESL password is the node's, or $CC_ESL_PASSWORD; files holding secrets are 0600."""
    from cc_core import config as config_mod
    from cc_core.tenants.loader import load_path
    from freeswitch_conf import render as fs

    try:
        cfg = config_mod.load(config_path)
        tenants = load_path(tenants_path)
        rendered = fs.render(cfg, tenants, node)
        target = fs.write(rendered, out_dir)
    except DOMAIN_ERRORS as exc:
        _fail(exc)
    sw = cfg.freeswitch
    click.echo(f"node {rendered.node}: {rendered.numbers} numbers of {rendered.tenants} tenants "
               f"park, {len(sw.trunks)} trunks, {len(sw.agents)} agents; fallback after "
               f"{sw.fallback.after_s} s; written to {target} "
               f"(secrets, mode 0600: {', '.join(sorted(rendered.secret))})")
    click.echo(f"on the switch: create {sw.voicemail_dir} (writable by FreeSWITCH) and give "
               "the workers the same CC_VOICEMAIL_DIR")


@cli.group()
def queue() -> None:
    """The ACD's queues: import a mod_callcenter config; list, show and see who is waiting."""


@queue.command("import")
@click.argument("xml_path", metavar="CALLCENTER_CONF_XML",
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--tenant", default=None, metavar="ID",
              help="Tenant id (default: the @domain every queue name shares).")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Write the tenant YAML here (default: standard output).")
def import_(xml_path: Path, tenant: str | None, out_path: Path | None) -> None:
    """Convert mod_callcenter's callcenter.conf.xml into a tenant YAML file (agents, queues,
    tiers); everything not imported is printed as a warning saying what cc-core does instead."""
    from acd.importer import convert

    try:
        try:
            raw = xml_path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{xml_path}: cannot read the file ({exc.strerror})") from exc
        result = convert(raw, tenant=tenant, source=xml_path.name)
    except DOMAIN_ERRORS as exc:
        _fail(exc)
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    if out_path is None:
        click.echo(result.text, nl=False)
        return
    out_path.write_text(result.text, encoding="utf-8")
    t = result.tenant
    click.echo(f"wrote tenant {t.tenant} to {out_path}: {len(t.agents)} agents, "
               f"{len(t.queues)} queues, {sum(len(q.tiers) for q in t.queues.values())} tiers "
               f"({len(result.warnings)} warnings)")


def _redis(redis_url: str | None) -> Any:
    if not redis_url:
        raise ConfigError("no Redis to use: pass --redis-url redis://HOST:PORT/DB or set "
                          "CC_REDIS_URL")
    from redis.exceptions import RedisError

    from cc_core import redisconn

    try:
        return redisconn.connect(redis_url, socket_timeout=10, socket_connect_timeout=5)
    except ValueError as exc:
        raise ConfigError(f"--redis-url {redis_url!r}: {exc}") from exc
    except RedisError as exc:   # a cluster client asks a node for the slot map at once
        raise _redis_down(exc, redis_url) from exc


def _acd_call(redis_url: str | None, work: Any) -> Any:
    """Run ``work(acd)`` against the ACD in Redis; domain errors exit with their code."""
    from redis.exceptions import RedisError

    try:
        from acd.store import Acd

        try:
            return work(Acd(_redis(redis_url)))
        except RedisError as exc:
            raise _redis_down(exc, redis_url) from exc
    except DOMAIN_ERRORS as exc:   # acd.errors are CcCoreErrors too
        _fail(exc)


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    widths = {c: max([len(c)] + [len(str(r.get(c, ""))) for r in rows]) for c in columns}
    lines = ["  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip()]
    lines += ["  ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns).rstrip()
              for r in rows]
    return "\n".join(lines)


def _emit(data: Any, as_json: bool, rows: list[dict[str, Any]], columns: list[str]) -> None:
    import json as json_lib

    if as_json:
        click.echo(json_lib.dumps(data, indent=2, ensure_ascii=False, sort_keys=True))
    elif rows:
        click.echo(_table(rows, columns))
    else:
        click.echo("(none)")


_TENANT = click.option("--tenant", required=True, metavar="ID", help="The tenant.")
_JSON = click.option("--json", "as_json", is_flag=True, help="JSON for scripts, not a table.")
_AGENT_COLUMNS = ["agent", "status", "state", "queue", "calls_today", "talk_s_today",
                  "no_answers_today", "registered"]


@cli.group()
def agent() -> None:
    """An agent's status in the ACD: log in and out, Available or On Break, list."""


def _agent_result(view: Any, as_json: bool) -> None:
    from cc_core.api.acd import agent_out

    out = agent_out(view).model_dump(mode="json")
    _emit(out, as_json, [out], _AGENT_COLUMNS)


@agent.command("login")
@_TENANT
@click.argument("agent_id", metavar="AGENT")
@click.option("--on-demand", is_flag=True, help="Available (On Demand): one call, then a break.")
@_REDIS_URL
@_JSON
def agent_login(tenant: str, agent_id: str, on_demand: bool, redis_url: str | None,
                as_json: bool) -> None:
    """Log AGENT in (Available, or Available (On Demand))."""
    _agent_result(_acd_call(redis_url, lambda acd: acd.login(tenant, agent_id,
                                                             on_demand=on_demand)), as_json)


@agent.command("logout")
@_TENANT
@click.argument("agent_id", metavar="AGENT")
@_REDIS_URL
@_JSON
def agent_logout(tenant: str, agent_id: str, redis_url: str | None, as_json: bool) -> None:
    """Log AGENT out."""
    _agent_result(_acd_call(redis_url, lambda acd: acd.logout(tenant, agent_id)), as_json)


@agent.command("status")
@_TENANT
@click.argument("agent_id", metavar="AGENT")
@click.argument("status", required=False,
                type=click.Choice(["available", "on-demand", "break"]))
@click.option("--reason", default="", help="With break: why (shown to supervisors).")
@_REDIS_URL
@_JSON
def agent_status(tenant: str, agent_id: str, status: str | None, reason: str,
                 redis_url: str | None, as_json: bool) -> None:
    """Show AGENT, or set it: available, on-demand (Available (On Demand)) or break."""
    def work(acd: Any) -> Any:
        if status is None:
            return acd.agent(tenant, agent_id)
        if status == "break":
            return acd.set_break(tenant, agent_id, reason)
        return acd.set_available(tenant, agent_id, on_demand=status == "on-demand")

    _agent_result(_acd_call(redis_url, work), as_json)


@agent.command("list")
@_TENANT
@_REDIS_URL
@_JSON
def agent_list(tenant: str, redis_url: str | None, as_json: bool) -> None:
    """Every agent of the tenant: status, state, today's counters."""
    from cc_core.api.acd import agent_out

    rows = [agent_out(a).model_dump(mode="json")
            for a in _acd_call(redis_url, lambda acd: acd.agents(tenant))]
    _emit(rows, as_json, rows, _AGENT_COLUMNS)


_QUEUE_COLUMNS = ["queue", "strategy", "waiting", "agents_available", "agents_free",
                  "answered_today", "abandoned_today", "estimated_wait_s"]
_MEMBER_COLUMNS = ["position", "call_uuid", "caller", "state", "priority", "callback"]


@queue.command("list")
@_TENANT
@_REDIS_URL
@_JSON
def queue_list(tenant: str, redis_url: str | None, as_json: bool) -> None:
    """Every queue of the tenant, live."""
    from cc_core.api.acd import queue_out

    rows = [queue_out(q).model_dump(mode="json")
            for q in _acd_call(redis_url, lambda acd: acd.queues(tenant))]
    _emit(rows, as_json, rows, _QUEUE_COLUMNS)


@queue.command("show")
@_TENANT
@click.argument("name", metavar="QUEUE")
@_REDIS_URL
@_JSON
def queue_show(tenant: str, name: str, redis_url: str | None, as_json: bool) -> None:
    """One queue, live: counters, its agents and their states, the waiting callers."""
    from cc_core.api.acd import queue_detail

    out = _acd_call(redis_url, lambda acd: queue_detail(acd, tenant, name)).model_dump(
        mode="json")
    if as_json:
        _emit(out, True, [], [])
        return
    click.echo(_table([out], _QUEUE_COLUMNS))
    click.echo("\nagents:")
    _emit(None, False, out["agents"], ["agent", "status", "state", "level", "position"])
    click.echo("\nwaiting:")
    _emit(None, False, out["members"], _MEMBER_COLUMNS)


@queue.command("members")
@_TENANT
@click.argument("name", metavar="QUEUE")
@_REDIS_URL
@_JSON
def queue_members(tenant: str, name: str, redis_url: str | None, as_json: bool) -> None:
    """The queue's callers and queued callbacks, in the order they will be served."""
    from cc_core.api.acd import member_out

    rows = [member_out(x).model_dump(mode="json")
            for x in _acd_call(redis_url, lambda acd: acd.members(tenant, name))]
    _emit(rows, as_json, rows, _MEMBER_COLUMNS)


@cli.group()
def token() -> None:
    """API tokens of a tenant (only their SHA-256 is stored)."""


def _tokens(redis_url: str | None) -> Any:
    from cc_core.api.tokens import TokenStore

    return TokenStore(_redis(redis_url))


@token.command("create")
@click.option("--tenant", default=None, metavar="ID", help="The tenant.")
@click.option("--provider", is_flag=True,
              help="A token of the provider's staff (the back office, every tenant).")
@click.option("--role", type=click.Choice(["agent", "supervisor"]), default="agent",
              show_default=True)
@click.option("--agent", "agent_id", default=None, metavar="AGENT",
              help="An agent token acting for this agent only.")
@click.option("--label", default="", help="What the token is for (shown by list).")
@_REDIS_URL
def token_create(tenant: str | None, provider: bool, role: str, agent_id: str | None,
                 label: str, redis_url: str | None) -> None:
    """Create a token for the tenant (or the provider's staff); it is printed once and cannot
    be shown again."""
    from redis.exceptions import RedisError

    from cc_core.api.tokens import PROVIDER, Role
    from cc_core.errors import UnknownTenant
    from cc_core.tenants.store import TenantDirectory

    if provider:
        if tenant or agent_id:
            _fail(ConfigError("--provider makes a staff token: drop --tenant and --agent"))
        try:
            secret, info = _tokens(redis_url).create(PROVIDER, Role.STAFF, label=label)
        except RedisError as exc:
            _fail(_redis_down(exc, redis_url))
        click.echo(secret)
        click.echo(f"token {info.id}: the provider's staff; keep it secret, it is not shown "
                   "again", err=True)
        return
    if not tenant:
        _fail(ConfigError("give --tenant ID (or --provider for a staff token)"))
    try:
        if agent_id is not None and role != "agent":
            raise ConfigError("--agent binds an agent token; drop it or use --role agent")
        client = _redis(redis_url)
        try:
            applied = TenantDirectory(client).tenant(tenant)
            if applied is None:
                raise UnknownTenant(f"tenant {tenant!r} is not in the applied configuration; "
                                    "apply it first: cc-core config apply PATH")
            if agent_id is not None and agent_id not in applied.agents:
                raise ConfigError(f"--agent {agent_id!r} is not an agent of {tenant!r} "
                                  f"(agents: {', '.join(sorted(applied.agents)) or 'none'})")
            secret, info = _tokens(redis_url).create(tenant, Role(role), agent=agent_id,
                                                     label=label)
        except RedisError as exc:
            raise _redis_down(exc, redis_url) from exc
    except DOMAIN_ERRORS as exc:
        _fail(exc)
    click.echo(secret)
    click.echo(f"token {info.id}: {role} of tenant {tenant}"
               + (f" acting for agent {agent_id}" if agent_id else "")
               + "; keep it secret, it is not shown again", err=True)


@token.command("list")
@_TENANT
@_REDIS_URL
@_JSON
def token_list(tenant: str, redis_url: str | None, as_json: bool) -> None:
    """The tenant's tokens (ids, roles; never the tokens themselves)."""
    try:
        infos = _tokens(redis_url).list(tenant)
    except DOMAIN_ERRORS as exc:
        _fail(exc)
    rows = [{"id": i.id, "role": i.role.value, "agent": i.agent or "", "label": i.label,
             "created_ms": i.created_ms} for i in infos]
    _emit(rows, as_json, rows, ["id", "role", "agent", "label", "created_ms"])


@token.command("revoke")
@_TENANT
@click.argument("token_id", metavar="ID")
@_REDIS_URL
def token_revoke(tenant: str, token_id: str, redis_url: str | None) -> None:
    """Revoke a token by its id (from list); it stops working at once."""
    try:
        info = _tokens(redis_url).revoke(tenant, token_id)
    except DOMAIN_ERRORS as exc:
        _fail(exc)
    click.echo(f"revoked token {info.id} ({info.role.value} of tenant {tenant})")


@cli.group()
def dashboards() -> None:
    """Grafana dashboards of cc-core, generated as code (metrics/grafana.py)."""


@dashboards.command("write")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Folder to write into (default: metrics/dashboards of the "
                                 "source tree, the committed copy).")
def dashboards_write(out_dir: Path | None) -> None:
    """Write the dashboards' JSON and a Grafana provisioning YAML beside them."""
    from metrics import grafana

    target = out_dir or grafana.DEFAULT_OUT
    try:
        written = grafana.write(target)
    except OSError as exc:
        _fail(ConfigError(f"--out {target}: cannot write there ({exc.strerror}); pick a "
                          "writable folder"))
    click.echo(f"wrote {len(written)} files to {target}: "
               f"{', '.join(p.name for p in written)}")


@cli.group()
def api() -> None:
    """The HTTP JSON API for agents' desks and supervisors."""


@api.command("serve")
@click.option("--listen", default="127.0.0.1:8080", show_default=True, metavar="HOST:PORT")
@_REDIS_URL
@click.option("--db", envvar="CC_RECORDS_DB", default=None, metavar="PATH|DSN",
              help="The record store, for the number business' routes ($CC_RECORDS_DB).")
@click.option("--materials-root", envvar="CC_MATERIALS_ROOT", default=None, metavar="DIR",
              help="Where applicants' material scans are kept ($CC_MATERIALS_ROOT).")
@click.option("--recordings-root", envvar="CC_RECORDINGS_ROOT", default=None, metavar="DIR",
              help="The recordings root, for downloads ($CC_RECORDINGS_ROOT).")
@click.option("--node", default=None, metavar="NAME=HOST:PORT",
              help="The switch activations place their test call (拨测) through.")
@click.option("--password", default=None, help="ESL password of --node.")
def api_serve(listen: str, redis_url: str | None, db: str | None,
              materials_root: str | None, recordings_root: str | None, node: str | None,
              password: str | None) -> None:
    """Serve the API (gevent WSGIServer) until SIGTERM."""
    from gevent import monkey

    monkey.patch_all()
    from cc_core.api.app import serve
    from cc_core.config import NodeConfig

    try:
        if not redis_url:
            _redis(redis_url)
        esl_node = None
        if node:
            name, _, address = node.partition("=")
            host, _, port = address.rpartition(":")
            if not (name and host and port.isdigit()):
                raise ConfigError(f"--node {node!r}: NAME=HOST:PORT, e.g. fs1=10.0.0.11:8021")
            esl_node = NodeConfig(name=name, host=host, port=int(port),
                                  password=password or "")
        serve(listen, str(redis_url), records=db, materials_root=materials_root,
              recordings_root=recordings_root, node=esl_node)
    except DOMAIN_ERRORS as exc:
        _fail(exc)


@cli.group()
def metrics() -> None:
    """Prometheus metrics served once per deployment (workers serve their own)."""


@metrics.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (loopback unless a scraper elsewhere needs it).")
@click.option("--port", type=click.IntRange(0, 65535), default=9390, show_default=True,
              help="Port of /metrics; 0 picks a free one (logged).")
@click.option("--timeout", "timeout_s", type=click.FloatRange(0.1, 30), default=2.0,
              show_default=True, help="Seconds a Redis read may take before the scrape goes "
              "without the KPIs (and cccore_kpi_scrape_errors_total counts it).")
@_REDIS_URL
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="YAML config file: its recordings.root (and redis_url when --redis-url is "
                   "not given) are used.")
@click.option("--recordings-root", envvar="CC_RECORDINGS_ROOT", default=None, metavar="DIR",
              help="The recordings root, for its disk usage ($CC_RECORDINGS_ROOT; default: "
                   "the config's recordings.root with --config, else not measured).")
@click.option("--disk-walk", "walk_s", type=click.FloatRange(10, 86400), default=300.0,
              show_default=True, help="Seconds between two walks of the recordings tree "
              "(each scrape reads the last total).")
def metrics_serve(host: str, port: int, timeout_s: float, redis_url: str | None,
                  config_path: str | None, recordings_root: str | None, walk_s: float) -> None:
    """Serve the queue and agent KPIs (cccore_queue_*, cccore_agent_* for tenants that enable
    them) and the business metrics (record backlog, credit, recordings disk), read at each
    scrape: run ONE per deployment (the figures describe shared state)."""
    from gevent import monkey

    monkey.patch_all()
    from redis.exceptions import RedisError

    from cc_core import config as config_mod
    from cc_core import logs
    from metrics.serve import serve

    try:
        if config_path is not None:
            cfg = config_mod.load(config_path, overrides={"redis_url": redis_url})
            redis_url = cfg.redis_url
            recordings_root = recordings_root or cfg.recordings.root
        if recordings_root is not None:
            # The config's rule (absolute, no spaces) and its message.
            config_mod.load(None, overrides={"recordings": {"root": recordings_root}},
                            environ={})
        _redis(redis_url)        # checks the URL (a cluster client connects at once)
        logs.setup()
        try:
            serve(host, port, str(redis_url), timeout_s, recordings_root, walk_s)
        except RedisError as exc:
            raise _redis_down(exc, redis_url) from exc
    except DOMAIN_ERRORS as exc:
        _fail(exc)
    except OSError as exc:
        _fail(ConfigError(f"cannot listen on {host}:{port}: {exc}; pick a free port with "
                          "--port (0: any free port)"))


@api.command("openapi")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Write here (default: standard output).")
def api_openapi(out_path: Path | None) -> None:
    """The OpenAPI document, generated from the API's request and response models."""
    from cc_core.api.app import openapi_json

    text = openapi_json()
    if out_path is None:
        click.echo(text, nl=False)
    else:
        out_path.write_text(text, encoding="utf-8")
        click.echo(f"wrote {out_path}")


def _add_records_commands() -> None:
    # The record store's commands live with it (records/cli.py); their errors come back here.
    from records.cli import cdr, db

    cli.add_command(db)
    cli.add_command(cdr)
    # The provider's number inventory lives with it (provider/cli.py), on the same store.
    from provider.cli import application, numbers

    cli.add_command(numbers)
    cli.add_command(application)
    # Recordings' retention and checks live with them (recordings/cli.py), on the same store.
    from recordings.cli import recordings

    cli.add_command(recordings)

    # Billing lives with it (billing/cli.py), on the same store.
    from billing.cli import billing

    cli.add_command(billing)


_add_records_commands()


@cli.command()
@click.option("--target", type=click.Choice(["sim", "sipp"]), required=True,
              help="sim: a simulator a running core owns; sipp: a real FreeSWITCH.")
@click.option("--node", default="127.0.0.1:8021", show_default=True, metavar="HOST:PORT",
              help="sim: the simulator's ESL address.")
@click.option("--password", default="ClueCon", show_default=True, help="sim: ESL password.")
@click.option("--rate", type=click.FloatRange(0.1, 5000), default=10.0, show_default=True,
              help="New calls per second.")
@click.option("--duration", type=click.FloatRange(1, 3600), default=30.0, show_default=True,
              help="sim: seconds of call placement.")
@click.option("--concurrency", type=click.IntRange(0, 100_000), default=0, show_default=True,
              help="sim: calls up at once at most (0: no limit).")
@click.option("--mix", default="full", show_default=True, help="sim: the caller mix "
              "(loadtest.mixes: full, announce, ivr, ivr_to_agent).")
@click.option("--seed", type=int, default=400, show_default=True)
@click.option("--metrics", multiple=True, metavar="URL",
              help="The workers' /metrics, for the core's dispatch latency.")
@click.option("--switch", default=None, metavar="HOST:PORT",
              help="sipp: the switch's carriers profile (400 calls in).")
@click.option("--agents-switch", default=None, metavar="HOST:PORT",
              help="sipp: the switch's agents profile (default: --switch's host, port 5070).")
@click.option("--dnis", default="4008001234", show_default=True, help="sipp: the 400 number.")
@click.option("--calls", type=click.IntRange(1, 1_000_000), default=100, show_default=True,
              help="sipp: calls to place in all.")
@click.option("--agents", type=click.IntRange(0, 500), default=5, show_default=True,
              help="sipp: SIPp agent phones (users 1001, 1002...).")
@click.option("--agent-password", default="agentpass", show_default=True)
@click.option("--hold-ms", type=click.IntRange(0, 3_600_000), default=10_000, show_default=True,
              help="sipp: how long a caller stays after the IVR.")
@click.option("--bind", default="127.0.0.1", show_default=True,
              help="sipp: the address every SIPp process binds to.")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="sipp: where injection files, SIPp logs and statistics go.")
@click.option("--print-commands", is_flag=True, help="sipp: print the SIPp command lines, "
              "run nothing.")
def loadtest(target: str, node: str, password: str, rate: float, duration: float,
             concurrency: int, mix: str, seed: int, metrics: tuple[str, ...],
             switch: str | None, agents_switch: str | None, dnis: str, calls: int,
             agents: int, agent_password: str, hold_ms: int, bind: str,
             workdir: Path | None, print_commands: bool) -> None:
    """Load a running core: simulated callers on the simulator, or SIPp callers and agent
    phones on a real switch; a progress line, then a summary table."""
    import shlex
    import tempfile

    from loadtest import driver

    if target == "sim":
        from gevent import monkey

        monkey.patch_all()
        from loadtest.mixes import MIXES

        if mix not in MIXES:
            _fail(ConfigError(f"--mix {mix!r}: one of {', '.join(MIXES)}"))
        host, _, port = node.rpartition(":")
        if not port.isdigit():
            _fail(ConfigError(f"--node {node!r}: HOST:PORT of the simulator's ESL"))
        try:
            summary = driver.run_sim(host or "127.0.0.1", int(port), password, rate=rate,
                                     duration=duration, concurrency=concurrency, mix=mix,
                                     seed=seed, out=click.echo, metrics=metrics)
        except DOMAIN_ERRORS as exc:
            _fail(exc)
    else:
        if not switch:
            _fail(ConfigError("--target sipp needs --switch HOST:PORT (the carriers profile)"))
        agents_at = agents_switch or f"{switch.rpartition(':')[0]}:5070"
        plan = driver.SippPlan(switch=switch, agents_switch=agents_at, dnis=dnis, rate=rate,
                               calls=calls, agents=agents, hold_ms=hold_ms,
                               agent_password=agent_password, bind=bind,
                               workdir=workdir or Path(tempfile.mkdtemp(prefix="cc-loadtest-")))
        if print_commands:
            for _, argv in driver.sipp_commands(plan):
                click.echo(shlex.join(argv))
            return
        try:
            summary = driver.run_sipp(plan, out=click.echo)
        except driver.BadAgentCredential as exc:
            raise click.UsageError(str(exc)) from exc
        click.echo(f"SIPp logs and statistics: {plan.workdir}")
    click.echo(summary.table())
    sys.exit(0 if summary.failed == 0 and summary.offered > 0 else 1)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
