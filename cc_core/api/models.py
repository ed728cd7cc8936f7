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
    name: str = ""
    status: str = Field(description="Logged Out, Available, Available (On Demand), On Break")
    state: str = Field(description="Waiting, Reserved, Receiving, In a queue call, Idle")
    break_reason: str = ""
    queues: list[str] = Field(default_factory=list)
    calls_answered: int = Field(0, description="today, in the tenant's time zone")
    talk_time_s: int = Field(0, description="today, in the tenant's time zone")
    no_answer_count: int = 0


class AgentList(BaseModel):
    agents: list[AgentOut]


class MemberOut(BaseModel):
    call_uuid: str
    caller: str = ""
    state: str = Field(description="Waiting, Trying, Answered, ...")
    position: int = Field(0, description="1-based place among the waiting, 0 if not waiting")
    priority: int = 0
    wait_s: int = 0
    callback: str = Field("", description="a queued callback to this number")
    agent: str = Field("", description="the agent offered or talking to this caller")


class MemberList(BaseModel):
    members: list[MemberOut]


class QueueAgentOut(BaseModel):
    agent: str
    status: str
    state: str
    level: int = 1
    position: int = 1


class QueueOut(BaseModel):
    queue: str
    strategy: str = ""
    waiting: int = Field(0, description="callers waiting now")
    members: list[MemberOut] = Field(default_factory=list, description="waiting callers, "
                                     "in the order they will be served")
    agents: list[QueueAgentOut] = Field(default_factory=list)
    agents_available: int = 0
    calls_answered: int = Field(0, description="today")
    calls_abandoned: int = Field(0, description="today")
    estimated_wait_s: int | None = None


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
