"""Typed configuration: defaults < YAML file < environment (CC_*) < CLI flags.

Validated once at load; a bad value raises ``ConfigError`` naming the file, the path
inside it and what would be accepted.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cc_core import realtime
from cc_core.errors import ConfigError
from cc_core.redisconn import check_url
from esl_handlers.config import DEFAULT_EVENTS, EslConfig, NodeConfig
from freeswitch_conf.model import SwitchConfig

__all__ = ["DEFAULT_EVENTS", "Config", "EslConfig", "NodeConfig", "load"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RecordsConfig(_Model):
    """The SQL store of business records (``records/``)."""

    # A SQLite file (relative: to the working directory) or a PostgreSQL DSN
    # (postgresql://user@host/db); CC_RECORDS_DB overrides.
    db: str = "records.sqlite3"
    # Each worker also runs one call-record consumer greenlet: for a one-box install on SQLite.
    # Elsewhere run `cc-core cdr consume` (records.consumer says why).
    consume_in_worker: bool = False


class RecordingsConfig(_Model):
    """Call recordings (``recordings/``): the folder under which the switch writes them and
    this core reads them (the same path on both: shared storage); CC_RECORDINGS_ROOT
    overrides."""

    root: str = Field("/var/lib/cc-core/recordings", min_length=1)

    @field_validator("root")
    @classmethod
    def _absolute(cls, v: str) -> str:
        if not v.startswith("/") or any(c in v for c in " \t\r\n"):
            raise ValueError(f"recordings root {v!r} must be an absolute path without spaces "
                             "(the switch is given paths under it), e.g. "
                             "/var/lib/cc-core/recordings")
        return v.rstrip("/") or "/"


class Config(_Model):
    nodes: list[NodeConfig] = Field(default_factory=list)
    esl: EslConfig = Field(default_factory=EslConfig)
    # None: start a private redis-server (tests, demo). redis://HOST:PORT/DB for one server,
    # redis+cluster://HOST:PORT (any node) for a Redis Cluster: see cc_core.redisconn.
    redis_url: str | None = None
    metrics_port: int = Field(0, ge=0, le=65535)  # 0: a free port per worker
    metrics_host: str = "127.0.0.1"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # The workers' (and a private redis-server's) real-time priority, SCHED_RR 1-99, for a box
    # shared with busy neighbours (cc_core.realtime says why); None: the kernel's default.
    realtime_priority: int | None = Field(None, ge=realtime.LOWEST, le=realtime.HIGHEST)
    timezone: str = "Asia/Shanghai"
    # What `cc-core fsconf render` needs beyond the nodes: trunks, agents, addresses, fallback.
    freeswitch: SwitchConfig = Field(default_factory=SwitchConfig)
    records: RecordsConfig = Field(default_factory=RecordsConfig)
    recordings: RecordingsConfig = Field(default_factory=RecordingsConfig)

    @field_validator("redis_url")
    @classmethod
    def _known_scheme(cls, v: str | None) -> str | None:
        return v if v is None else check_url(v)

    @field_validator("nodes")
    @classmethod
    def _unique_names(cls, v: list[NodeConfig]) -> list[NodeConfig]:
        names = [n.name for n in v]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"node names must be unique; repeated: {', '.join(dupes)}")
        return v


def _describe(err: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid"]
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "(top level)"
        lines.append(f"  at {where}: {e['msg']} (got {e.get('input')!r})")
    return "\n".join(lines)


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if environ.get("CC_REDIS_URL"):
        out["redis_url"] = environ["CC_REDIS_URL"]
    if environ.get("CC_LOG_LEVEL"):
        out["log_level"] = environ["CC_LOG_LEVEL"].upper()
    if environ.get("CC_METRICS_PORT"):
        out["metrics_port"] = environ["CC_METRICS_PORT"]
    if environ.get("CC_RECORDS_DB"):
        out["records"] = {"db": environ["CC_RECORDS_DB"]}
    if environ.get("CC_RECORDINGS_ROOT"):
        out["recordings"] = {"root": environ["CC_RECORDINGS_ROOT"]}
    if environ.get("CC_REALTIME_PRIORITY"):
        out["realtime_priority"] = environ["CC_REALTIME_PRIORITY"]
    return out


def load(path: str | Path | None = None, overrides: dict[str, Any] | None = None,
         environ: dict[str, str] | None = None) -> Config:
    """Build the one validated ``Config``; raises ``ConfigError`` with a readable message."""
    data: dict[str, Any] = {}
    source = "configuration (defaults, CC_* environment, command-line flags)"
    if path is not None:
        source = f"{path} (with CC_* environment and command-line flags on top)"
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the config file ({exc.strerror})") from exc
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping (key: value), "
                              f"got {type(loaded).__name__}")
        data.update(loaded)
    for key, value in _env_overrides(dict(os.environ if environ is None else environ)).items():
        # A section named in the environment keeps the file's other keys of that section.
        base = data.get(key)
        data[key] = {**base, **value} if isinstance(base, dict) and isinstance(value, dict) \
            else value
    for key, value in (overrides or {}).items():
        if value is not None:
            data[key] = value
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from exc
