"""A tenant's configuration: its 400 numbers, lists, regions, hours, prompts and menus.

Written by people in YAML (``cc_core.tenants.loader``), validated once: every model is frozen and
refuses unknown keys, and every cross-reference (a menu option naming a menu, a prompt name, a
queue) is checked when the tenant is built, so a worker never meets a dangling name mid-call.

Where a call goes is a *destination*, written ``kind:target`` (``menu:main``, ``queue:support``,
``transfer:13800138000``, ``voicemail:general``, ``info:hours``, ``collect:order``,
``announce:closed``, ``callback:support``, ``hangup``), parsed into ``Destination``.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from datetime import date, time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

TENANT_ID = r"^[a-z0-9][a-z0-9_-]{0,31}$"
NUMBER_400 = re.compile(r"^400\d{7}$")
NAME = r"^[A-Za-z0-9_.-]{1,64}$"
DTMF_KEY = re.compile(r"^[0-9*#]$")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DestinationKind(enum.Enum):
    MENU = "menu"            # an IVR menu of this tenant
    QUEUE = "queue"          # a queue of the tenant's ACD
    TRANSFER = "transfer"    # an external number, through the tenant's gateway
    VOICEMAIL = "voicemail"  # record a message into one of the tenant's boxes
    INFO = "info"            # play a prompt, then back to the menu the caller came from
    COLLECT = "collect"      # collect digits into a call variable, then go on
    ANNOUNCE = "announce"    # play a prompt, then hang up
    HANGUP = "hangup"
    CALLBACK = "callback"    # leave the number to be called back by a queue's agent


_TARGETLESS = {DestinationKind.HANGUP}


class Destination(_Model):
    kind: DestinationKind
    target: str = ""

    @classmethod
    def parse(cls, text: str) -> Destination:
        kind_text, _, target = str(text).partition(":")
        try:
            kind = DestinationKind(kind_text.strip())
        except ValueError:
            kinds = ", ".join(k.value for k in DestinationKind)
            raise ValueError(f"{text!r} is not a destination: write kind:target with kind one "
                             f"of {kinds} (e.g. menu:main, queue:support)") from None
        target = target.strip()
        if kind in _TARGETLESS:
            if target:
                raise ValueError(f"{text!r}: {kind.value} takes no target; write {kind.value}")
        elif not target:
            raise ValueError(f"{text!r}: {kind.value} needs a target, e.g. {kind.value}:name")
        return cls(kind=kind, target=target)

    def __str__(self) -> str:
        return self.kind.value if not self.target else f"{self.kind.value}:{self.target}"


def _destination(value: Any) -> Any:
    if isinstance(value, str):
        return Destination.parse(value)
    return value


Dest = Annotated[Destination, Field(json_schema_extra={"format": "kind:target"})]


class NumberStatus(enum.Enum):
    RESERVED = "reserved"      # not yet in service: announcement in early media, never answered
    ACTIVE = "active"
    SUSPENDED = "suspended"    # e.g. unpaid: announcement in early media, never answered
    CANCELLED = "cancelled"    # no longer the tenant's: treated as unallocated


class AnswerMode(enum.Enum):
    IVR = "ivr"            # answered before the first prompt (billing starts there)
    GREETING = "greeting"  # ringback/greeting in early media, answered when an agent answers


class NumberConfig(_Model):
    status: NumberStatus = NumberStatus.ACTIVE
    entry: Dest | None = None          # where its calls start (default: the tenant's entry)
    answer_mode: AnswerMode | None = None
    # Played in early media to callers of a reserved or suspended number (never answered).
    announce: str | None = None

    _parse = field_validator("entry", mode="before")(lambda cls, v: _destination(v))


class ListConfig(_Model):
    """Numbers matched by exact number, prefix (号段) or area code; optionally anonymous and
    withheld callers, or numbers that do not parse."""

    numbers: list[str] = Field(default_factory=list)
    prefixes: list[str] = Field(default_factory=list)
    area_codes: list[str] = Field(default_factory=list)
    anonymous: bool = False
    invalid: bool = False


class BlacklistConfig(ListConfig):
    # What a blocked caller hears: nothing (rejected with CALL_REJECTED) or a prompt in early
    # media before the rejection; never answered, never queued.
    announce: str | None = None


class WhitelistConfig(ListConfig):
    priority: int = Field(10, ge=1, le=100)   # VIP callers' queue priority


class Lists(_Model):
    blacklist: BlacklistConfig = Field(default_factory=BlacklistConfig)
    whitelist: WhitelistConfig = Field(default_factory=WhitelistConfig)
    use_global_blacklist: bool = True


class RegionMatch(_Model):
    province: str | None = None
    city: str | None = None
    area_code: str | None = None

    @model_validator(mode="after")
    def _one(self) -> RegionMatch:
        if not (self.province or self.city or self.area_code):
            raise ValueError("a region rule needs province, city or area_code")
        return self


class RegionRule(_Model):
    match: RegionMatch
    to: Dest

    _parse = field_validator("to", mode="before")(lambda cls, v: _destination(v))


class Regions(_Model):
    rules: list[RegionRule] = Field(default_factory=list)
    blocked: list[RegionMatch] = Field(default_factory=list)
    blocked_announce: str | None = None


def _interval(text: str) -> tuple[time, time]:
    start, sep, end = str(text).partition("-")
    try:
        a, b = time.fromisoformat(start.strip()), time.fromisoformat(end.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not an interval: write HH:MM-HH:MM, e.g. 09:00-18:00") \
            from None
    if not sep or not a < b:
        raise ValueError(f"{text!r}: the start must come before the end on the same day "
                         "(split an interval that crosses midnight in two)")
    return a, b


class Hours(_Model):
    weekly: dict[str, list[str]] = Field(default_factory=lambda: {
        d: ["09:00-18:00"] for d in WEEKDAYS[:5]})
    holidays: list[date] = Field(default_factory=list)
    workdays: list[date] = Field(default_factory=list)
    official: bool = True                  # China's official holidays and make-up days
    after_hours: Dest | None = None        # None: no time routing

    _parse = field_validator("after_hours", mode="before")(lambda cls, v: _destination(v))

    @field_validator("weekly")
    @classmethod
    def _days(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for day, intervals in v.items():
            if day not in WEEKDAYS:
                raise ValueError(f"{day!r} is not a weekday: use {', '.join(WEEKDAYS)}")
            for text in intervals:
                _interval(text)
        return v

    def intervals(self) -> dict[int, list[tuple[time, time]]]:
        return {WEEKDAYS.index(d): [_interval(t) for t in ivs] for d, ivs in self.weekly.items()}


class Menu(_Model):
    prompt: list[str]                      # prompt names, played in order
    options: dict[str, Dest]
    timeout_ms: int = Field(5000, ge=500, le=60_000)
    retries: int = Field(3, ge=1, le=10)
    invalid_prompt: str | None = None
    timeout_prompt: str | None = None
    default: Dest = Field(default_factory=lambda: Destination(kind=DestinationKind.HANGUP))
    back_key: str | None = "*"             # to the menu the caller came from
    repeat_key: str | None = "#"
    operator: Dest | None = None           # key 0 when configured
    # What an option tells the queue it leads to: the caller's required skills and priority
    # (e.g. "2" -> {english: 5} for an English-speaking agent, VIP keys a higher priority).
    skills: dict[str, dict[str, int]] = Field(default_factory=dict)
    priority: dict[str, int] = Field(default_factory=dict)

    @field_validator("prompt", mode="before")
    @classmethod
    def _prompts(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("options", mode="before")
    @classmethod
    def _options(cls, v: Any) -> Any:
        if isinstance(v, dict):
            out = {}
            for key, dest in v.items():
                key = str(key)
                if not DTMF_KEY.match(key):
                    raise ValueError(f"option key {key!r} must be one DTMF key: 0-9, * or #")
                out[key] = _destination(dest)
            return out
        return v

    _parse = field_validator("default", "operator", mode="before")(
        lambda cls, v: _destination(v))

    @field_validator("skills", mode="before")
    @classmethod
    def _option_skills(cls, v: Any) -> Any:
        return {str(k): _skills(s) for k, s in v.items()} if isinstance(v, dict) else v

    @model_validator(mode="after")
    def _keys(self) -> Menu:
        stray = sorted((set(self.skills) | set(self.priority)) - set(self.options))
        if stray:
            raise ValueError(f"skills/priority name keys {', '.join(stray)} that are not "
                             "options of this menu")
        reserved = {k for k in (self.back_key, self.repeat_key) if k}
        reserved |= {"0"} if self.operator is not None else set()
        clash = sorted(reserved & set(self.options))
        if clash:
            raise ValueError(f"keys {', '.join(clash)} are the menu's back/repeat/operator "
                             "keys and cannot also be options")
        return self


class Collect(_Model):
    prompt: list[str]
    variable: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    min_digits: int = Field(1, ge=1, le=32)
    max_digits: int = Field(12, ge=1, le=32)
    terminator: str = "#"
    timeout_ms: int = Field(8000, ge=500, le=60_000)
    retries: int = Field(2, ge=1, le=10)
    invalid_prompt: str | None = None
    then: Dest

    _prompts = field_validator("prompt", mode="before")(
        lambda cls, v: [v] if isinstance(v, str) else v)
    _parse = field_validator("then", mode="before")(lambda cls, v: _destination(v))


class Strategy(enum.Enum):
    """How a queue picks among its free agents (mod_callcenter's names, plus two of ours).

    Every strategy orders by tier level first (lower level first), as mod_callcenter does."""

    RING_ALL = "ring-all"
    RING_PROGRESSIVELY = "ring-progressively"
    LONGEST_IDLE_AGENT = "longest-idle-agent"
    ROUND_ROBIN = "round-robin"
    TOP_DOWN = "top-down"
    LEAST_TALK_TIME = "agent-with-least-talk-time"
    FEWEST_CALLS = "agent-with-fewest-calls"
    SEQUENTIALLY_BY_AGENT_ORDER = "sequentially-by-agent-order"
    RANDOM = "random"
    PERCENTAGE = "percentage"          # 按百分比: weights per agent or agent group
    AGENT_LEVEL = "agent-level"        # A before B before C, longest idle among equals


class AgentType(enum.Enum):
    CALLBACK = "callback"              # the contact is dialled for each offer
    UUID_STANDBY = "uuid-standby"      # the contact is a parked channel's uuid, bridged to


class AgentStatus(enum.Enum):
    LOGGED_OUT = "Logged Out"
    AVAILABLE = "Available"
    AVAILABLE_ON_DEMAND = "Available (On Demand)"
    ON_BREAK = "On Break"


class AgentState(enum.Enum):
    WAITING = "Waiting"
    RECEIVING = "Receiving"
    IN_A_QUEUE_CALL = "In a queue call"
    IDLE = "Idle"                      # wrap-up, or a delay after busy/no answer/reject
    RESERVED = "Reserved"


AGENT_ID = r"^[A-Za-z0-9_.@-]{1,64}$"
SKILL = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


def _skills(value: Any) -> Any:
    """``{billing: 8}`` or ``[billing]`` (proficiency 1: any agent with the skill)."""
    if isinstance(value, (list, tuple)):
        value = {str(s): 1 for s in value}
    if isinstance(value, dict):
        for skill, level in value.items():
            if not SKILL.match(str(skill)):
                raise ValueError(f"skill {skill!r} must be lower-case letters, digits, _ or -, "
                                 "starting with a letter (e.g. billing, english)")
            if not isinstance(level, int) or isinstance(level, bool) or not 1 <= level <= 10:
                raise ValueError(f"skill {skill!r}: proficiency {level!r} must be a whole "
                                 "number from 1 to 10")
    return value


class Agent(_Model):
    """One agent of the tenant: how to reach them and how the ACD treats their misses."""

    name: str = ""
    contact: str = Field(min_length=1, description="dial string (user/1001@domain, "
                         "sofia/gateway/gw/138..., ...) or, for uuid-standby, the parked uuid")
    type: AgentType = AgentType.CALLBACK
    max_no_answer: int = Field(3, ge=0, le=100)         # 0: never put On Break
    no_answer_status: AgentStatus = AgentStatus.ON_BREAK
    wrap_up_s: int = Field(10, ge=0, le=3600)
    reject_delay_s: int = Field(10, ge=0, le=3600)
    busy_delay_s: int = Field(30, ge=0, le=3600)
    no_answer_delay_s: int = Field(15, ge=0, le=3600)
    not_registered_delay_s: int = Field(30, ge=0, le=3600)
    skills: dict[str, int] = Field(default_factory=dict)  # skill -> proficiency 1..10
    level: str = Field("B", pattern=r"^[ABC]$")          # agent-level strategy: A > B > C
    group: str | None = Field(None, pattern=NAME)        # percentage split by group
    weight: int = Field(1, ge=0, le=1000)                # percentage split by agent
    # The status an agent gets when the ACD first learns of them (a new agent in the config);
    # after that only logins, logouts and breaks change it.
    status: AgentStatus = AgentStatus.LOGGED_OUT

    _skills = field_validator("skills", mode="before")(lambda cls, v: _skills(v))

    @field_validator("contact")
    @classmethod
    def _contact(cls, v: str) -> str:
        if any(c in v for c in "\r\n\t ") or v.count("{") != v.count("}"):
            raise ValueError(f"contact {v!r} is not a dial string: no spaces or line breaks, "
                             "balanced {...}; e.g. user/1001@default or "
                             "sofia/gateway/carrier/13800138000")
        return v


class Tier(_Model):
    agent: str = Field(pattern=AGENT_ID)
    level: int = Field(1, ge=0, le=100)       # lower levels are offered first
    position: int = Field(1, ge=0, le=10_000)  # order inside a level (top-down, sequential)


class SkillRelax(_Model):
    """After ``after_s`` in the queue, a caller's required proficiencies drop to
    ``min_proficiency`` (``0``: any agent, skills ignored)."""

    after_s: int = Field(ge=1, le=86_400)
    min_proficiency: int = Field(0, ge=0, le=10)


class Announce(_Model):
    """What a waiting caller hears every ``every_s``: ``prompt``, then how many callers are
    ahead ("您前面还有 N 位", between ``position_intro`` and ``position_outro``; nothing when
    none is), then the expected wait in minutes (between ``wait_intro`` and ``wait_outro``;
    nothing until the queue has handled a call). Numbers are read the Chinese way (十二,
    一百零五) from recordings of single numerals: ``digits`` is their folder (``0.wav`` ...
    ``9.wav``, ``10.wav``, ``100.wav``, ``1000.wav``, ``10000.wav``) or a path with ``{n}``."""

    prompt: str | None = None          # a periodic prompt, every ``every_s``
    every_s: int = Field(30, ge=5, le=3600)
    position: bool = False             # callers ahead of this one
    wait: bool = False                 # the expected wait, in minutes
    digits: str | None = Field(None, min_length=1, max_length=256)
    position_intro: str | None = None  # prompt names (``prompts:``)
    position_outro: str | None = None
    wait_intro: str | None = None
    wait_outro: str | None = None

    @model_validator(mode="after")
    def _digits_for_numbers(self) -> Announce:
        if (self.position or self.wait) and not self.digits:
            raise ValueError(
                "announce: position and wait speak numbers, so they need digits: the folder "
                "of the numeral recordings (0.wav ... 9.wav, 10.wav, 100.wav, 1000.wav, "
                "10000.wav), e.g. digits: /usr/share/cc-core/sounds/zh/digits")
        return self

    def prompts(self) -> list[str]:
        return [p for p in (self.prompt, self.position_intro, self.position_outro,
                            self.wait_intro, self.wait_outro) if p]


class Callback(_Model):
    """Queued callback: the caller hangs up and keeps their place; when an agent is free the
    agent is offered the call and, on answer, the caller is dialled."""

    retries: int = Field(2, ge=0, le=10)
    retry_after_s: int = Field(60, ge=5, le=86_400)
    give_up_after_s: int = Field(4 * 3600, ge=60, le=7 * 86_400)
    confirm_prompt: str | None = None  # played to the caller before hanging up


class RecordingMode(enum.Enum):
    ALL = "all"              # every call the policy covers
    NONE = "none"
    PERCENT = "percent"      # a share of calls, chosen by the call's UUID (stable on resume)
    ON_DEMAND = "on_demand"  # an agent or supervisor starts and stops it through the API


RETENTION_DAYS = (30, 90, 180, 365)


def _mode_percent(mode: RecordingMode | None, percent: int | None, where: str) -> None:
    if mode is RecordingMode.PERCENT and percent is None:
        raise ValueError(f"{where}: mode percent needs percent: a whole number from 1 to 99, "
                         "e.g. percent: 20")
    if percent is not None and mode is not RecordingMode.PERCENT:
        raise ValueError(f"{where}: percent applies to mode percent only; remove it or set "
                         "mode: percent")


class QueueRecording(_Model):
    """A queue's own recording policy; what it leaves out comes from the tenant's."""

    mode: RecordingMode | None = None
    percent: int | None = Field(None, ge=1, le=99)
    # mono: both sides mixed; stereo: the caller on the left channel, the agent on the right.
    channels: Literal["mono", "stereo"] | None = None
    announce: str | None = None       # prompt name: "this call may be recorded"

    @model_validator(mode="after")
    def _percent(self) -> QueueRecording:
        _mode_percent(self.mode, self.percent, "recording")
        return self


class TenantRecording(_Model):
    """Call recording (通话录音): what is recorded, how, and for how long it is kept."""

    mode: RecordingMode = RecordingMode.NONE
    percent: int | None = Field(None, ge=1, le=99)
    channels: Literal["mono", "stereo"] = "mono"
    announce: str | None = None
    # Days a recording is kept (30, 90, 180 or 365) or "forever".
    retention: int | str = 90

    @field_validator("retention", mode="before")
    @classmethod
    def _retention(cls, v: Any) -> Any:
        text = str(v).strip().lower()
        if text == "forever":
            return "forever"
        if text.endswith("d"):
            text = text[:-1]
        if text.isdigit() and int(text) in RETENTION_DAYS and not isinstance(v, bool):
            return int(text)
        raise ValueError(f"retention {v!r}: keep recordings 30, 90, 180 or 365 days, or "
                         "write forever")

    @model_validator(mode="after")
    def _percent(self) -> TenantRecording:
        _mode_percent(self.mode, self.percent, "recording")
        return self

    @property
    def retention_days(self) -> int | None:
        """None: kept forever."""
        return None if self.retention == "forever" else int(self.retention)


class Queue(_Model):
    """A queue in the style of mod_callcenter (``esl-protocol.md``, last section)."""

    strategy: Strategy = Strategy.LONGEST_IDLE_AGENT
    tiers: list[Tier] = Field(default_factory=list)
    ring_timeout_s: int = Field(20, ge=5, le=120)     # per offer to one agent
    ring_progressively_delay_s: int = Field(10, ge=1, le=120)
    weights: dict[str, int] = Field(default_factory=dict)  # percentage: agent or group -> %
    skills: dict[str, int] = Field(default_factory=dict)   # every caller's required skills
    skills_relax: list[SkillRelax] = Field(default_factory=list)
    moh: str = "local_stream://moh"
    announce: Announce = Field(default_factory=Announce)
    whisper: str | None = None          # prompt played to the agent before the bridge
    caller_id: str = Field("caller", pattern=r"^(caller|number)$")  # or the 400 number
    exit_keys: dict[str, Dest] = Field(default_factory=dict)
    max_wait_s: int = Field(0, ge=0, le=86_400)              # 0: no limit
    max_wait_no_agent_s: int = Field(0, ge=0, le=86_400)     # 0: wait even with no agent
    max_wait_no_agent_reached_s: int = Field(5, ge=0, le=3600)
    time_base_score: str = Field("queue", pattern=r"^(queue|system)$")
    tier_rules_apply: bool = False
    tier_rule_wait_s: int = Field(30, ge=0, le=3600)
    tier_rule_wait_multiply_level: bool = True
    tier_rule_no_agent_no_wait: bool = False
    discard_abandoned_after_s: int = Field(60, ge=0, le=86_400)
    abandoned_resume_allowed: bool = False
    overflow: list[Dest] = Field(default_factory=list)  # tried in order after a max wait
    callback: Callback = Field(default_factory=Callback)
    # Service level: a call answered within this wait counts as answered in SL; a caller who
    # hangs up waiting less than short_abandon_s is a short abandon, left out of the SL and
    # abandon figures (misdials, callers who hear the queue and hang up at once).
    service_level_s: int = Field(20, ge=1, le=3600)
    short_abandon_s: int = Field(5, ge=0, le=600)
    recording: QueueRecording = Field(default_factory=QueueRecording)

    _skills = field_validator("skills", mode="before")(lambda cls, v: _skills(v))

    @field_validator("overflow", mode="before")
    @classmethod
    def _overflow(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = [v]
        return [_destination(d) for d in v] if isinstance(v, list) else v

    @field_validator("exit_keys", mode="before")
    @classmethod
    def _exit_keys(cls, v: Any) -> Any:
        if isinstance(v, dict):
            out = {}
            for key, dest in v.items():
                if not DTMF_KEY.match(str(key)):
                    raise ValueError(f"exit key {key!r} must be one DTMF key: 0-9, * or #")
                out[str(key)] = _destination(dest)
            return out
        return v

    @model_validator(mode="after")
    def _tiers(self) -> Queue:
        seen = [t.agent for t in self.tiers]
        twice = sorted({a for a in seen if seen.count(a) > 1})
        if twice:
            raise ValueError(f"agents {', '.join(twice)} have two tiers in this queue: "
                             "keep one (level and position) per agent")
        return self


class Voicemail(_Model):
    prompt: list[str] = Field(default_factory=list)
    max_s: int = Field(120, ge=5, le=600)

    _prompts = field_validator("prompt", mode="before")(
        lambda cls, v: [v] if isinstance(v, str) else v)


class Caps(_Model):
    """Monthly limits of a tenant (the month in its time zone): calls started, and what its
    calls cost (fen, as billing counts it). Past a cap new calls are refused with the
    ``announce`` prompt in early media (never answered), or, with ``action: alert``, only
    reported (log and metric) once a month."""

    monthly_calls: int | None = Field(None, ge=1)
    monthly_cost_fen: int | None = Field(None, ge=1)
    action: str = Field("refuse", pattern=r"^(refuse|alert)$")
    announce: str | None = None


class MissedCallWebhook(_Model):
    """漏电提醒: an HTTP POST for each call that ended unanswered (``notify/``), its body
    signed with HMAC-SHA256 of ``secret``; retried with backoff up to ``max_attempts``."""

    url: str = Field(pattern=r"^https?://[^\s]+$", max_length=2000)
    secret: str = Field(min_length=16, max_length=200)
    max_attempts: int = Field(6, ge=1, le=20)


class TenantMetrics(_Model):
    """What ``cc-core metrics serve`` exports of the tenant beyond its queues' figures."""

    # Series per agent (cccore_agent_*, label agent): status, offers, no-answers. Off by
    # default: every agent multiplies the series a Prometheus keeps.
    per_agent: bool = False


class Tenant(_Model):
    tenant: str = Field(pattern=TENANT_ID)
    name: str = ""
    timezone: str = "Asia/Shanghai"
    answer_mode: AnswerMode = AnswerMode.IVR
    entry: Dest
    gateway: str = Field("sofia/gateway/carrier", description="dial prefix for transfers")
    numbers: dict[str, NumberConfig]
    greeting: list[str] = Field(default_factory=list)   # greeting mode: early-media prompts
    lists: Lists = Field(default_factory=Lists)
    caps: Caps = Field(default_factory=Caps)
    regions: Regions = Field(default_factory=Regions)
    hours: Hours = Field(default_factory=Hours)
    prompts: dict[str, str] = Field(default_factory=dict)
    menus: dict[str, Menu] = Field(default_factory=dict)
    collects: dict[str, Collect] = Field(default_factory=dict)
    agents: dict[str, Agent] = Field(default_factory=dict)
    queues: dict[str, Queue] = Field(default_factory=dict)
    voicemail: dict[str, Voicemail] = Field(default_factory=dict)
    recording: TenantRecording = Field(default_factory=TenantRecording)
    missed_call_webhook: MissedCallWebhook | None = None
    metrics: TenantMetrics = Field(default_factory=TenantMetrics)

    _parse = field_validator("entry", mode="before")(lambda cls, v: _destination(v))
    _greeting = field_validator("greeting", mode="before")(
        lambda cls, v: [v] if isinstance(v, str) else v)

    @field_validator("numbers", mode="before")
    @classmethod
    def _numbers(cls, v: Any) -> Any:
        if isinstance(v, dict):
            for number in v:
                if not NUMBER_400.match(str(number)):
                    raise ValueError(f"{number!r} is not a 400 number: 400 and 7 digits, "
                                     "written as a quoted string, e.g. \"4008001234\"")
        return {str(k): ({} if val is None else val) for k, val in v.items()} \
            if isinstance(v, dict) else v

    @field_validator("agents", mode="before")
    @classmethod
    def _agents(cls, v: Any) -> Any:
        if isinstance(v, dict):
            for agent in v:
                if not re.match(AGENT_ID, str(agent)):
                    raise ValueError(f"agent id {agent!r}: use 1-64 letters, digits, _ . @ -")
            return {str(k): val for k, val in v.items()}
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{v!r} is not an IANA time zone, e.g. Asia/Shanghai") from None
        return v

    @model_validator(mode="after")
    def _references(self) -> Tenant:
        problems = list(self.dangling())
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def destinations(self) -> list[tuple[str, Destination]]:
        """Every destination in the config, with where it is written (for checks)."""
        out: list[tuple[str, Destination]] = [("entry", self.entry)]
        for num, cfg in self.numbers.items():
            if cfg.entry is not None:
                out.append((f"numbers.{num}.entry", cfg.entry))
        for i, rule in enumerate(self.regions.rules):
            out.append((f"regions.rules.{i}.to", rule.to))
        if self.hours.after_hours is not None:
            out.append(("hours.after_hours", self.hours.after_hours))
        for name, menu in self.menus.items():
            for key, dest in menu.options.items():
                out.append((f"menus.{name}.options.{key}", dest))
            out.append((f"menus.{name}.default", menu.default))
            if menu.operator is not None:
                out.append((f"menus.{name}.operator", menu.operator))
        for name, col in self.collects.items():
            out.append((f"collects.{name}.then", col.then))
        for name, q in self.queues.items():
            for i, dest in enumerate(q.overflow):
                out.append((f"queues.{name}.overflow.{i}", dest))
            for key, dest in q.exit_keys.items():
                out.append((f"queues.{name}.exit_keys.{key}", dest))
        return out

    def dangling(self) -> list[str]:
        tables: dict[DestinationKind, Mapping[str, object]] = {
                  DestinationKind.MENU: self.menus, DestinationKind.QUEUE: self.queues,
                  DestinationKind.CALLBACK: self.queues,
                  DestinationKind.VOICEMAIL: self.voicemail,
                  DestinationKind.COLLECT: self.collects,
                  DestinationKind.INFO: self.prompts, DestinationKind.ANNOUNCE: self.prompts}
        problems = []
        for where, dest in self.destinations():
            table = tables.get(dest.kind)
            if table is not None and dest.target not in table:
                known = ", ".join(sorted(table)) or "none defined"
                problems.append(f"{where}: {dest} names no {dest.kind.value} "
                                f"(defined: {known})")
            if dest.kind is DestinationKind.TRANSFER and not re.fullmatch(r"\+?\d{3,20}",
                                                                         dest.target):
                problems.append(f"{where}: transfer target {dest.target!r} must be digits")
        for name, q in self.queues.items():
            for i, tier in enumerate(q.tiers):
                if tier.agent not in self.agents:
                    problems.append(f"queues.{name}.tiers.{i}: agent {tier.agent!r} is not in "
                                    f"agents (defined: {', '.join(sorted(self.agents)) or 'none'})")
            groups = {a.group for a in self.agents.values() if a.group}
            for who in q.weights:
                if who not in self.agents and who not in groups:
                    problems.append(f"queues.{name}.weights: {who!r} is neither an agent nor "
                                    "an agent group")
        for where, names in self._prompt_uses():
            for name in names:
                if name not in self.prompts:
                    problems.append(f"{where}: prompt {name!r} is not in prompts "
                                    f"(defined: {', '.join(sorted(self.prompts)) or 'none'})")
        return problems

    def _prompt_uses(self) -> list[tuple[str, list[str]]]:
        uses: list[tuple[str, list[str]]] = [("greeting", self.greeting)]
        for name, menu in self.menus.items():
            extra = [p for p in (menu.invalid_prompt, menu.timeout_prompt) if p]
            uses.append((f"menus.{name}", [*menu.prompt, *extra]))
        for name, col in self.collects.items():
            uses.append((f"collects.{name}", [*col.prompt, *(
                [col.invalid_prompt] if col.invalid_prompt else [])]))
        for name, vm in self.voicemail.items():
            uses.append((f"voicemail.{name}", vm.prompt))
        for name, q in self.queues.items():
            uses.append((f"queues.{name}", [*q.announce.prompts(), *(p for p in (
                q.whisper, q.callback.confirm_prompt, q.recording.announce) if p)]))
        ann = [p for p in (self.lists.blacklist.announce, self.regions.blocked_announce,
                           self.caps.announce,
                           self.recording.announce,
                           *(n.announce for n in self.numbers.values())) if p]
        uses.append(("announcements", ann))
        return uses

    def number(self, dnis: str) -> NumberConfig | None:
        return self.numbers.get(dnis)


class GlobalConfig(_Model):
    """What applies to every tenant: the platform's own blacklist."""

    blacklist: ListConfig = Field(default_factory=ListConfig)
