"""Routes for agents' desks and supervisors, on top of ``acd.store.Acd``.

Agents: login, logout, status (Available / Available (On Demand)), break with a reason, one
agent, all agents. Queues: list, one queue live (waiting callers, agents and their states,
counters), its members; callbacks: list, and request one (a number to call back, queued).
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

from spectree import Response

from cc_core.api import models as m
from cc_core.api.errors import ErrorBody
from cc_core.api.spec import spec
from cc_core.api.tokens import Role

T = "/v1/tenants/{tenant}"
_ERRORS = {f"HTTP_{code}": ErrorBody for code in (401, 403, 404, 409)}


def _resp(model: type, **extra: Any) -> Response:
    return Response(HTTP_200=model, **_ERRORS, **extra)


# -- views of acd.store to API models (the one place that knows the store's view fields) -----

def _get(view: Any, *names: str, default: Any = None) -> Any:
    for name in names:
        value = getattr(view, name, None)
        if value is not None:
            return value
    return default


def _text(value: Any) -> str:
    return str(getattr(value, "value", value) or "")


def agent_out(view: Any) -> m.AgentOut:
    return m.AgentOut(
        agent=_text(_get(view, "agent", "id")), name=_text(_get(view, "name")),
        status=_text(_get(view, "status")), state=_text(_get(view, "state")),
        break_reason=_text(_get(view, "break_reason", "reason")),
        queues=[str(q) for q in _get(view, "queues", default=())],
        calls_answered=int(_get(view, "calls_answered", default=0)),
        talk_time_s=int(_get(view, "talk_time_s", default=0)),
        no_answer_count=int(_get(view, "no_answer_count", default=0)))


def member_out(view: Any) -> m.MemberOut:
    return m.MemberOut(
        call_uuid=_text(_get(view, "call_uuid", "uuid")), caller=_text(_get(view, "caller")),
        state=_text(_get(view, "state")), position=int(_get(view, "position", default=0)),
        priority=int(_get(view, "priority", default=0)),
        wait_s=int(_get(view, "wait_s", default=0)),
        callback=_text(_get(view, "callback")), agent=_text(_get(view, "agent")))


def queue_out(view: Any, members: list[Any] | None = None,
              estimated_wait_s: int | None = None) -> m.QueueOut:
    agents = [m.QueueAgentOut(agent=_text(_get(a, "agent", "id")), status=_text(_get(a, "status")),
                              state=_text(_get(a, "state")),
                              level=int(_get(a, "level", default=1)),
                              position=int(_get(a, "position", default=1)))
              for a in _get(view, "agents", default=())]
    return m.QueueOut(
        queue=_text(_get(view, "queue", "name")), strategy=_text(_get(view, "strategy")),
        waiting=int(_get(view, "waiting", default=0)),
        members=[member_out(x) for x in (members or [])], agents=agents,
        agents_available=int(_get(view, "agents_available", default=0)),
        calls_answered=int(_get(view, "calls_answered", default=0)),
        calls_abandoned=int(_get(view, "calls_abandoned", default=0)),
        estimated_wait_s=estimated_wait_s)


def _ok(resp: Any, model: Any) -> None:
    resp.media = model.model_dump(mode="json")


class _Resource:
    roles: ClassVar[dict[str, Role]] = {}

    def __init__(self, acd: Any) -> None:
        self.acd = acd


# -- agents ------------------------------------------------------------------------------------

class AgentList(_Resource):
    roles = {"GET": Role.SUPERVISOR}

    @spec.validate(resp=_resp(m.AgentList), tags=["agents"])
    def on_get(self, req: Any, resp: Any, tenant: str) -> None:
        """Every agent of the tenant, with status, state and today's counters."""
        _ok(resp, m.AgentList(agents=[agent_out(a) for a in self.acd.agents(tenant)]))


class AgentItem(_Resource):
    roles = {"GET": Role.AGENT}

    @spec.validate(resp=_resp(m.AgentOut), tags=["agents"])
    def on_get(self, req: Any, resp: Any, tenant: str, agent: str) -> None:
        """One agent: status, state, queues, today's counters."""
        _ok(resp, agent_out(self.acd.agent(tenant, agent)))


class AgentLogin(_Resource):
    roles = {"POST": Role.AGENT}

    @spec.validate(json=m.LoginIn, resp=_resp(m.AgentOut), tags=["agents"])
    def on_post(self, req: Any, resp: Any, tenant: str, agent: str) -> None:
        """Log the agent in: Available (or Available (On Demand)), Waiting for calls."""
        body: m.LoginIn = req.context.json
        _ok(resp, agent_out(self.acd.login(tenant, agent, on_demand=body.on_demand)))


class AgentLogout(_Resource):
    roles = {"POST": Role.AGENT}

    @spec.validate(resp=_resp(m.AgentOut), tags=["agents"])
    def on_post(self, req: Any, resp: Any, tenant: str, agent: str) -> None:
        """Log the agent out: no more offers."""
        _ok(resp, agent_out(self.acd.logout(tenant, agent)))


class AgentStatus(_Resource):
    roles = {"PUT": Role.AGENT}

    @spec.validate(json=m.StatusIn, resp=_resp(m.AgentOut), tags=["agents"])
    def on_put(self, req: Any, resp: Any, tenant: str, agent: str) -> None:
        """Back to Available (or Available (On Demand)), e.g. after a break."""
        body: m.StatusIn = req.context.json
        _ok(resp, agent_out(self.acd.set_available(
            tenant, agent, on_demand=body.status == "Available (On Demand)")))


class AgentBreak(_Resource):
    roles = {"POST": Role.AGENT}

    @spec.validate(json=m.BreakIn, resp=_resp(m.AgentOut), tags=["agents"])
    def on_post(self, req: Any, resp: Any, tenant: str, agent: str) -> None:
        """On Break, with a reason: no offers until Available again."""
        body: m.BreakIn = req.context.json
        _ok(resp, agent_out(self.acd.set_break(tenant, agent, body.reason)))


# -- queues ------------------------------------------------------------------------------------

class QueueList(_Resource):
    roles = {"GET": Role.AGENT}

    @spec.validate(resp=_resp(m.QueueList), tags=["queues"])
    def on_get(self, req: Any, resp: Any, tenant: str) -> None:
        """Every queue of the tenant, live: waiting callers, agents, today's counters."""
        _ok(resp, m.QueueList(queues=[queue_out(q) for q in self.acd.queues(tenant)]))


class QueueItem(_Resource):
    roles = {"GET": Role.AGENT}

    @spec.validate(resp=_resp(m.QueueOut), tags=["queues"])
    def on_get(self, req: Any, resp: Any, tenant: str, queue: str) -> None:
        """One queue, live: its waiting callers in order, its agents and their states."""
        view = self.acd.queue_view(tenant, queue)
        members = self.acd.members(tenant, queue)
        _ok(resp, queue_out(view, members, self.acd.estimated_wait_s(tenant, queue)))


class QueueMembers(_Resource):
    roles = {"GET": Role.AGENT}

    @spec.validate(resp=_resp(m.MemberList), tags=["queues"])
    def on_get(self, req: Any, resp: Any, tenant: str, queue: str) -> None:
        """The queue's callers (and queued callbacks), in the order they will be served."""
        self.acd.queue_view(tenant, queue)    # unknown_queue rather than an empty list
        _ok(resp, m.MemberList(members=[member_out(x) for x in self.acd.members(tenant, queue)]))


class Callbacks(_Resource):
    roles = {"GET": Role.AGENT, "POST": Role.AGENT}

    @spec.validate(resp=_resp(m.CallbackList), tags=["callbacks"])
    def on_get(self, req: Any, resp: Any, tenant: str, queue: str) -> None:
        """The callbacks queued in this queue, in the order they will be served."""
        self.acd.queue_view(tenant, queue)
        _ok(resp, m.CallbackList(callbacks=[member_out(x) for x in
                                            self.acd.members(tenant, queue)
                                            if _text(_get(x, "callback"))]))

    @spec.validate(json=m.CallbackIn, resp=_resp(m.CallbackOut), tags=["callbacks"])
    def on_post(self, req: Any, resp: Any, tenant: str, queue: str) -> None:
        """Queue a callback to a number: when an agent is free, the agent is offered the call
        and, on answer, the number is dialled. Same request_id twice: queued once."""
        body: m.CallbackIn = req.context.json
        self.acd.queue_view(tenant, queue)
        call_uuid = f"callback-{body.request_id or uuid.uuid4()}"
        joined = self.acd.enqueue(tenant, queue, call_uuid, node="", caller=body.number,
                                  callback=body.number)
        _ok(resp, m.CallbackOut(call_uuid=call_uuid, queue=queue, number=body.number,
                                position=int(_get(joined, "position", default=0)),
                                waiting=int(_get(joined, "waiting", default=0))))


def add_routes(app: Any, acd: Any) -> None:
    app.add_route(f"{T}/agents", AgentList(acd))
    app.add_route(f"{T}/agents/{{agent}}", AgentItem(acd))
    app.add_route(f"{T}/agents/{{agent}}/login", AgentLogin(acd))
    app.add_route(f"{T}/agents/{{agent}}/logout", AgentLogout(acd))
    app.add_route(f"{T}/agents/{{agent}}/status", AgentStatus(acd))
    app.add_route(f"{T}/agents/{{agent}}/break", AgentBreak(acd))
    app.add_route(f"{T}/queues", QueueList(acd))
    app.add_route(f"{T}/queues/{{queue}}", QueueItem(acd))
    app.add_route(f"{T}/queues/{{queue}}/members", QueueMembers(acd))
    app.add_route(f"{T}/queues/{{queue}}/callbacks", Callbacks(acd))
