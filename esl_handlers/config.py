"""Configuration types of the ESL library: the nodes it reaches and how it talks to them.

Frozen models that refuse unknown keys and say how to fix a value; the product's own
configuration (``cc_core.config``) embeds them.
"""

from __future__ import annotations

import difflib

from pydantic import BaseModel, ConfigDict, Field, field_validator

from esl_handlers.event_names import EVENT_NAMES, name_event

# The events the call flow handles, and no more; never `ALL` (it drags in every CUSTOM event
# of every module and makes back-pressure decisions meaningless). Every event subscribed to
# is read, framed and decoded by the node's owner whether a handler wants it or not: on a
# real switch an IVR-and-queue call sends as many CHANNEL_EXECUTE as EXECUTE_COMPLETE, a
# PLAYBACK_START/STOP per prompt, BRIDGE/UNBRIDGE, HANGUP and DESTROY per leg, none of which
# the core acts on. BACKGROUND_JOB carries bgapi results; HEARTBEAT is the watchdog's pulse.
# tests/redis/test_subscription.py holds this list to the handlers the app registers.
DEFAULT_EVENTS = [
    "CHANNEL_CREATE", "CHANNEL_ANSWER", "CHANNEL_PARK", "CHANNEL_HANGUP_COMPLETE",
    "CHANNEL_EXECUTE_COMPLETE", "DTMF", "RECORD_START", "RECORD_STOP", "BACKGROUND_JOB",
    "HEARTBEAT",
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
