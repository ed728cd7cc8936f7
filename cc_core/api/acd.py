"""Routes for agents' desks and supervisors, on top of ``acd.store.Acd``.

Agents: login, logout, status (Available / Available (On Demand)), break with a reason, one
agent, all agents. Queues: list, one queue live (waiting callers, agents and their states,
counters), its members; callbacks: list, and request one (a number to call back, queued).
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

from spectree import Response

from acd.store import CALLBACK_PREFIX, Acd, AgentView, MemberView, QueueView
from cc_core import keys
from cc_core.api import models as m
from cc_core.api.errors import ErrorBody
from cc_core.api.spec import spec
from cc_core.api.tokens import Role

T = "/v1/tenants/{tenant}"
_ERRORS = {f"HTTP_{code}": ErrorBody for code in (401, 403, 404, 409)}


def _resp(model: type, **extra: Any) -> Response:
    return Response(HTTP_200=model, **_ERRORS, **extra)


# -- acd.store's views as API models ---------------------------------------------------------

def agent_out(v: AgentView) -> m.AgentOut:
    return m.AgentOut(
        agent=v.agent, status=v.status, state=v.state, type=v.type, contact=v.contact,
        registered=v.registered, registered_on=dict(v.registered_on), queue=v.queue,
        call_uuid=v.call_uuid,
        busy_until_ms=v.busy_until_ms, no_answer_count=v.no_answer_count,
        calls_today=v.calls_today, talk_s_today=v.talk_ms_today // 1000,
        no_answers_today=v.no_answers_today)


def member_out(v: MemberView) -> m.MemberOut:
    return m.MemberOut(call_uuid=v.call_uuid, state=v.state, position=v.position,
                       priority=v.priority, caller=v.caller, joined_ms=v.joined_ms,
                       agents=list(v.agents), callback=v.callback)


def queue_out(v: QueueView) -> m.QueueOut:
    return m.QueueOut(
        queue=v.queue, strategy=v.strategy, waiting=v.waiting,
        answered_today=v.answered_today, abandoned_today=v.abandoned_today,
        overflowed_today=v.overflowed_today, agents_available=v.agents_available,
        agents_free=v.agents_free,
        avg_handle_s=None if v.avg_handle_ms is None else round(v.avg_handle_ms / 1000),
        estimated_wait_s=v.estimated_wait_s)


def queue_agents(acd: Acd, tenant: str, queue: str) -> list[m.QueueAgentOut]:
    """The queue's tiers, best first, with each agent's live status and state.

    Acd has no method for this yet: the tiers are read from the zset Acd.sync writes
    (``keys.acd_queue_tiers``, score level*10^5+position)."""
    tiers = acd.redis.zrange(keys.acd_queue_tiers(tenant, queue), 0, -1, withscores=True)
    by_id = {a.agent: a for a in acd.agents(tenant)}
    out = []
    for raw, score in tiers:
        aid = raw.decode() if isinstance(raw, bytes) else str(raw)
        view = by_id.get(aid)
        level, position = divmod(int(score), 100_000)
        out.append(m.QueueAgentOut(agent=aid, level=level, position=position,
                                   status=view.status if view else "",
                                   state=view.state if view else ""))
    return out


def queue_detail(acd: Acd, tenant: str, queue: str) -> m.QueueDetail:
    base = queue_out(acd.queue_view(tenant, queue))
    return m.QueueDetail(**base.model_dump(), members=[
        member_out(x) for x in acd.members(tenant, queue)],
        agents=queue_agents(acd, tenant, queue))


def _ok(resp: Any, model: Any) -> None:
    resp.media = model.model_dump(mode="json")


class _Resource:
    roles: ClassVar[dict[str, Role]] = {}

    def __init__(self, acd: Acd) -> None:
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

    @spec.validate(resp=_resp(m.QueueDetail), tags=["queues"])
    def on_get(self, req: Any, resp: Any, tenant: str, queue: str) -> None:
        """One queue, live: counters, its waiting callers in order, its agents and states."""
        _ok(resp, queue_detail(self.acd, tenant, queue))


class QueueMembers(_Resource):
    roles = {"GET": Role.AGENT}

    @spec.validate(resp=_resp(m.MemberList), tags=["queues"])
    def on_get(self, req: Any, resp: Any, tenant: str, queue: str) -> None:
        """The queue's callers (and queued callbacks), in the order they will be served."""
        _ok(resp, m.MemberList(members=[member_out(x) for x in self.acd.members(tenant, queue)]))


class Callbacks(_Resource):
    roles = {"GET": Role.AGENT, "POST": Role.AGENT}

    @spec.validate(resp=_resp(m.CallbackList), tags=["callbacks"])
    def on_get(self, req: Any, resp: Any, tenant: str, queue: str) -> None:
        """The callbacks queued in this queue, in the order they will be served."""
        _ok(resp, m.CallbackList(callbacks=[member_out(x) for x in
                                            self.acd.members(tenant, queue) if x.callback]))

    @spec.validate(json=m.CallbackIn, resp=_resp(m.CallbackOut), tags=["callbacks"])
    def on_post(self, req: Any, resp: Any, tenant: str, queue: str) -> None:
        """Queue a callback to a number: when an agent is free, the agent is offered the call
        and, on answer, the number is dialled. Same request_id twice: queued once."""
        body: m.CallbackIn = req.context.json
        call_uuid = f"{CALLBACK_PREFIX}{body.request_id or uuid.uuid4()}"
        joined = self.acd.enqueue(tenant, queue, call_uuid, node="", caller=body.number,
                                  callback=body.number)
        _ok(resp, m.CallbackOut(call_uuid=call_uuid, queue=queue, number=body.number,
                                position=joined.position, waiting=joined.waiting))


def add_routes(app: Any, acd: Acd) -> None:
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
