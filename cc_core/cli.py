"""The ``cc-core`` command: one entry point, a subcommand per job.

Domain errors are mapped to exit codes here and nowhere else.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from cc_core import __version__
from cc_core.errors import CcCoreError


def _fail(exc: CcCoreError) -> None:
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
def run(config_path: str | None, workers: int, nodes: tuple[str, ...], password: str | None,
        redis_url: str | None, metrics_port: int | None, lease_ttl_ms: int | None) -> None:
    """Run N worker processes that own FreeSWITCH nodes by lease and handle their calls."""
    from cc_core import config as config_mod

    try:
        cfg = config_mod.load(config_path, overrides=_run_overrides(
            config_path, nodes, password, redis_url, metrics_port, lease_ttl_ms))
        from cc_core import app, worker

        sys.exit(worker.run(cfg, workers, app_factory=app.build))
    except CcCoreError as exc:
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
@click.option("--greeting-ms", type=click.IntRange(100, 60_000), default=2000, show_default=True,
              help="Length of the greeting tone played to each caller.")
@click.option("--caller-hangup-ratio", type=click.FloatRange(0, 1), default=0.3, show_default=True,
              help="Share of callers who hang up during the greeting.")
@click.option("--seed", type=int, default=400, show_default=True)
def demo(duration: float, rate: float, workers: int, greeting_ms: int,
         caller_hangup_ratio: float, seed: int) -> None:
    """Private Redis + simulator + workers + a traffic generator, with live progress."""
    # The demo's traffic generator is a gevent program; `run`'s supervisor deliberately is not
    # (cc_core.worker), so only this command patches, before it imports anything network-bound.
    from gevent import monkey

    monkey.patch_all()
    from cc_core.demo import DemoOptions, run_demo

    try:
        sys.exit(run_demo(DemoOptions(duration=duration, rate=rate, workers=workers,
                                      greeting_ms=greeting_ms,
                                      caller_hangup_ratio=caller_hangup_ratio, seed=seed)))
    except CcCoreError as exc:
        _fail(exc)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
