"""Request and response bodies of the API; the OpenAPI document is generated from these."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- requests ----------------------------------------------------------------------------------

class LoginIn(_In):
    on_demand: bool = Field(False, description="log in as Available (On Demand): one call, "
                            "then On Break")


class StatusIn(_In):
    status: Literal["Available", "Available (On Demand)"]


class BreakIn(_In):
    reason: str = Field("", max_length=100, description="why (shown to supervisors)")

    @field_validator("reason")
    @classmethod
    def _printable(cls, v: str) -> str:
        if any(ord(c) < 32 or ord(c) == 127 for c in v):
            raise ValueError("the reason must be one line of text, without control characters")
        return v


class CallbackIn(_In):
    number: str = Field(description="the number to call back: digits, optionally a leading +",
                        examples=["13800138000"])
    request_id: str | None = Field(
        None, pattern=r"^[A-Za-z0-9-]{8,64}$",
        description="client-chosen id: sending the same request twice queues one callback")

    @field_validator("number")
    @classmethod
    def _number(cls, v: str) -> str:
        if not re.fullmatch(r"\+?\d{3,20}", v):
            raise ValueError(f"{v!r} is not a phone number: write 3 to 20 digits, optionally "
                             "after a +, e.g. 13800138000")
        return v


# -- responses ---------------------------------------------------------------------------------

class AgentOut(BaseModel):
    agent: str
    status: str = Field(description="Logged Out, Available, Available (On Demand), On Break")
    state: str = Field(description="Waiting, Reserved, Receiving, In a queue call, Idle")
    type: str = Field(description="callback or uuid-standby")
    contact: str
    registered: bool = Field(description="the phone is registered on a switch at least (or "
                                         "its contact dials no registration)")
    registered_on: dict[str, bool] = Field(
        default_factory=dict, description="per switch node, whether its registrations have "
        "the phone: callers on a node that says not are not offered this agent")
    queue: str = Field("", description="the queue of the call it is reserved for or on")
    call_uuid: str = Field("", description="the caller it is reserved for or talking to")
    busy_until_ms: int = Field(0, description="end of a wrap-up or delay (ms since epoch)")
    no_answer_count: int = Field(0, description="no-answers in a row")
    calls_today: int = Field(0, description="today, in the tenant's time zone")
    talk_s_today: int = 0
    no_answers_today: int = 0


class AgentList(BaseModel):
    agents: list[AgentOut]


class MemberOut(BaseModel):
    call_uuid: str
    state: str = Field(description="Waiting, Trying, Answered, Abandoned, Done")
    position: int = Field(description="1-based place among the waiting")
    priority: int = 0
    caller: str = ""
    joined_ms: int = 0
    agents: list[str] = Field(default_factory=list, description="offered to or talking to")
    callback: str = Field("", description="a queued callback to this number")


class MemberList(BaseModel):
    members: list[MemberOut]


class QueueAgentOut(BaseModel):
    agent: str
    level: int
    position: int
    status: str
    state: str


class QueueOut(BaseModel):
    queue: str
    strategy: str
    waiting: int = Field(description="callers waiting now")
    answered_today: int
    abandoned_today: int
    overflowed_today: int
    agents_available: int = Field(description="tier agents whose status is Available or Available (On Demand)")
    agents_free: int
    avg_handle_s: int | None = Field(None, description="talk + wrap-up, moving average")
    estimated_wait_s: int | None = Field(None, description="for a caller joining now")


class QueueDetail(QueueOut):
    members: list[MemberOut] = Field(description="waiting callers, in the order served")
    agents: list[QueueAgentOut] = Field(description="the queue's tiers, best first")


class QueueList(BaseModel):
    queues: list[QueueOut]


class CallbackOut(BaseModel):
    call_uuid: str
    queue: str
    number: str
    position: int
    waiting: int


class CallbackList(BaseModel):
    callbacks: list[MemberOut]


class WallboardQueue(BaseModel):
    queue: str
    waiting: int = Field(description="callers (and queued callbacks) waiting now")
    longest_wait_s: int = Field(description="the longest current wait; 0 when nobody waits")
    answered_today: int
    abandoned_today: int = Field(description="callers who hung up waiting today, short "
                                 "abandons (under the queue's threshold) excluded once the "
                                 "ACD counts them")
    service_level_pct: float | None = Field(
        None, description="answered within the queue's threshold over answered + abandoned, "
        "today; null until the ACD counts answers within the threshold, or before the day's "
        "first answered or abandoned call")
    agents_logged_in: int
    agents_by_state: dict[str, int] = Field(
        description="logged-in agents of the queue's tiers by state (Waiting, Receiving, "
        "In a queue call, Idle, Reserved)")
    agents_by_status: dict[str, int] = Field(
        description="every agent of the queue's tiers by status (Logged Out included)")


class Wallboard(BaseModel):
    tenant: str
    now_ms: int = Field(description="when the figures were read (ms since epoch)")
    queues: list[WallboardQueue]
