"""Typed configuration: defaults < YAML file < environment (CC_*) < CLI flags.

Validated once at load; a bad value raises ``ConfigError`` naming the file, the path
inside it and what would be accepted.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cc_core.errors import ConfigError
from esl_handlers.event_names import EVENT_NAMES, name_event

# Lifecycle events a call handler may need; never `ALL` (it drags in every CUSTOM event
# of every module and makes back-pressure decisions meaningless).
DEFAULT_EVENTS = [
    "CHANNEL_CREATE", "CHANNEL_ANSWER", "CHANNEL_PARK", "CHANNEL_BRIDGE", "CHANNEL_UNBRIDGE",
    "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_DESTROY", "CHANNEL_EXECUTE",
    "CHANNEL_EXECUTE_COMPLETE", "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA",
    "CHANNEL_ORIGINATE", "DTMF", "RECORD_START", "RECORD_STOP", "PLAYBACK_START",
    "PLAYBACK_STOP", "BACKGROUND_JOB", "HEARTBEAT",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NodeConfig(_Model):
    """One FreeSWITCH node reached over inbound ESL."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    host: str = "127.0.0.1"
    port: int = Field(8021, ge=1, le=65535)
    password: str = Field("ClueCon", repr=False)


class EslConfig(_Model):
    events: list[str] = Field(default_factory=lambda: list(DEFAULT_EVENTS))
    # `filter <Header> <value>` pairs re-applied after every reconnect.
    filters: list[tuple[str, str]] = Field(default_factory=list)
    command_timeout_s: float = Field(5.0, gt=0)
    connect_timeout_s: float = Field(5.0, gt=0)
    # FreeSWITCH sends HEARTBEAT every 20 s by default; a node silent for
    # heartbeat_interval * heartbeat_misses is declared dead and the socket is reset.
    heartbeat_interval_s: float = Field(20.0, gt=0)
    heartbeat_misses: float = Field(2.5, ge=1)
    reconnect_min_s: float = Field(0.2, gt=0)
    reconnect_max_s: float = Field(10.0, gt=0)
    queue_size: int = Field(10_000, ge=10)
    handler_pool_size: int = Field(256, ge=1)
    lease_ttl_ms: int = Field(5000, ge=300)
    # The node owner lists `show channels` this often and takes parked calls nobody took (a
    # safety net; 0 turns it off). Each pass costs the switch one core-database query.
    sweep_interval_s: float = Field(2.0, ge=0)
    # Redis connections per worker: a handler waits for a free one (up to
    # redis_pool_timeout_s) instead of failing; sized above handler_pool_size by default.
    redis_pool_size: int | None = Field(None, ge=2)
    redis_pool_timeout_s: float = Field(10.0, gt=0)

    @field_validator("events")
    @classmethod
    def _no_all(cls, v: list[str]) -> list[str]:
        # Event names are case-insensitive, CUSTOM subclasses are not (callcenter::info).
        names = []
        for entry in v:
            words = entry.split()
            if not words:
                continue
            name = name_event(words[0])
            if name == "ALL":
                raise ValueError("subscribe to an explicit list of event names, not ALL")
            if name is None:
                # FreeSWITCH would ignore it without a word: refuse it here instead.
                close = difflib.get_close_matches(words[0].upper(), EVENT_NAMES, n=1)
                hint = f"; did you mean {close[0]}?" if close else ""
                raise ValueError(f"{words[0]!r} is not a FreeSWITCH event name{hint}")
            if words[1:] and name != "CUSTOM":
                raise ValueError(f"{entry!r}: only CUSTOM takes subclasses "
                                 "(e.g. 'CUSTOM callcenter::info')")
            names.append(" ".join([name, *words[1:]]))
        if not names:
            raise ValueError("list at least one event name, e.g. CHANNEL_PARK")
        return names


class Config(_Model):
    nodes: list[NodeConfig] = Field(default_factory=list)
    esl: EslConfig = Field(default_factory=EslConfig)
    redis_url: str | None = None  # None: start a private redis-server (tests, demo)
    metrics_port: int = Field(0, ge=0, le=65535)  # 0: a free port per worker
    metrics_host: str = "127.0.0.1"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    timezone: str = "Asia/Shanghai"

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
    data.update(_env_overrides(dict(os.environ if environ is None else environ)))
    for key, value in (overrides or {}).items():
        if value is not None:
            data[key] = value
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from exc
