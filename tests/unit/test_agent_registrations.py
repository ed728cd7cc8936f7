"""Which agents a phone's registration events reach (cc_core.flow.registrations): by the
user@domain their contact dials, across tenants and nodes; contacts that dial no
registration are never marked absent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gevent

from acd.errors import UnknownAgent
from cc_core.errors import EslError
from cc_core.flow.registrations import AgentRegistrations
from cc_core.tenants.model import Tenant
from cc_core.tenants.static import StaticTenants
from tests.conftest import wait_for


def _tenant(tenant_id: str, contacts: dict[str, str]) -> Tenant:
    return Tenant.model_validate({
        "tenant": tenant_id, "entry": "hangup", "numbers": {f"400800{len(tenant_id):04d}": {}},
        "agents": {a: {"contact": c} for a, c in contacts.items()}})


@dataclass
class _View:
    agent: str
    registered: bool
    registered_on: dict[str, bool]


class FakeAcd:
    """The ACD's registered flags (per node, and the agent's sum of them, as
    ``acd/lua/agent_set.lua`` keeps them), and who was offered a caller after registering."""

    def __init__(self, tenants: list[Tenant]) -> None:
        self.flags = {(t.tenant, a): True for t in tenants for a in t.agents}
        self.on: dict[tuple[str, str], dict[str, bool]] = {}
        self.writes: list[tuple[str, str, bool]] = []
        self.nodes: list[str] = []           # the node of each write ("" every node)
        self.dispatched: list[tuple[str, str]] = []

    def set_registered(self, tenant: str, agent: str, registered: bool,
                       node: str = "") -> None:
        if (tenant, agent) not in self.flags:
            raise UnknownAgent(tenant, agent)
        if node:
            on = self.on.setdefault((tenant, agent), {})
            on[node] = registered
            self.flags[(tenant, agent)] = any(on.values())
        else:
            self.flags[(tenant, agent)] = registered
        self.writes.append((tenant, agent, registered))
        self.nodes.append(node)

    def agents(self, tenant: str) -> list[_View]:
        return [_View(a, r, dict(self.on.get((t, a), {})))
                for (t, a), r in sorted(self.flags.items()) if t == tenant]

    def dispatch_agent(self, tenant: str, agent: str) -> list[Any]:
        self.dispatched.append((tenant, agent))
        return []


class _Node:
    def __init__(self, name: str) -> None:
        self.name = name


class _Link:
    def __init__(self, name: str) -> None:
        self.node = _Node(name)


def _event(subclass: str, user: str, host: str, contact: str = "sip:x@10.0.0.1") -> dict[str, str]:
    if subclass == "sofia::expire":
        return {"Event-Name": "CUSTOM", "Event-Subclass": subclass, "user": user, "host": host,
                "contact": contact}
    return {"Event-Name": "CUSTOM", "Event-Subclass": subclass, "from-user": user,
            "from-host": host, "contact": contact}


ACME = _tenant("acme", {"a1": "user/1001@default", "a2": "{x=1}user/1002@default",
                        "gw": "sofia/gateway/carrier/13800138000",
                        "direct": "sofia/internal/1003@10.0.0.9"})
BETA = _tenant("beta", {"b1": "sofia/agents/1001%default"})   # the same phone as acme's a1


def _regs(*tenants: Tenant) -> tuple[AgentRegistrations, FakeAcd]:
    acd = FakeAcd(list(tenants))
    regs = AgentRegistrations(acd, StaticTenants(tenants),  # type: ignore[arg-type]
                              link_for=lambda node: None, owns=lambda node: True,
                              deliver=lambda offers: None)
    return regs, acd


def test_a_phone_reaches_every_agent_who_dials_it_in_every_tenant() -> None:
    regs, acd = _regs(ACME, BETA)
    regs.on_event(_event("sofia::unregister", "1001", "default"), _Link("fs1"))
    assert sorted(acd.writes) == [("acme", "a1", False), ("beta", "b1", False)]
    acd.writes.clear()
    regs.on_event(_event("sofia::register", "1001", "default"), _Link("fs1"))
    assert sorted(acd.writes) == [("acme", "a1", True), ("beta", "b1", True)]
    # registered: offered a waiting caller at once
    assert sorted(acd.dispatched) == [("acme", "a1"), ("beta", "b1")]


def test_a_phone_nobody_dials_writes_nothing() -> None:
    regs, acd = _regs(ACME)
    regs.on_event(_event("sofia::register", "2001", "default"), _Link("fs1"))
    regs.on_event(_event("sofia::expire", "2001", "default"), _Link("fs1"))
    regs.on_event(_event("sofia::register", "1001", "elsewhere"), _Link("fs1"))
    assert acd.writes == []


def test_each_node_says_where_the_phone_is_and_the_agent_is_reachable_while_one_does() -> None:
    regs, acd = _regs(ACME)
    regs.on_event(_event("sofia::register", "1002", "default"), _Link("fs2"))
    regs.on_event(_event("sofia::expire", "1002", "default"), _Link("fs1"))
    assert acd.flags[("acme", "a2")] is True
    assert acd.on[("acme", "a2")] == {"fs2": True, "fs1": False}   # fs1's callers skip a2
    regs.on_event(_event("sofia::unregister", "1002", "default"), _Link("fs2"))
    assert acd.flags[("acme", "a2")] is False
    assert acd.on[("acme", "a2")] == {"fs2": False, "fs1": False}


def test_an_originate_refused_not_registered_marks_only_registration_bound_contacts() -> None:
    regs, acd = _regs(ACME, BETA)
    regs.not_registered("fs1", "acme", "gw")
    regs.not_registered("fs1", "acme", "direct")
    regs.not_registered("fs1", "acme", "nobody")
    assert acd.writes == []
    regs.not_registered("fs1", "acme", "a1")
    assert acd.flags[("acme", "a1")] is False and acd.flags[("beta", "b1")] is False
    assert set(acd.nodes) == {"fs1"}       # fs1 said so; what other nodes said stands
    # the phone's next REGISTER (a refresh) brings them back
    regs.on_event(_event("sofia::register", "1001", "default"), _Link("fs1"))
    assert acd.flags[("acme", "a1")] is True and acd.flags[("beta", "b1")] is True


def test_a_sync_gives_known_states_frees_unbound_contacts_and_leaves_doubts() -> None:
    regs, acd = _regs(ACME)
    for agent in ("a1", "a2", "gw"):
        acd.flags[("acme", agent)] = False          # what an earlier worker left
    regs.on_event(_event("sofia::register", "1001", "default"), _Link("fs1"))
    acd.writes.clear()
    regs.synced([ACME])
    assert acd.flags == {("acme", "a1"): True, ("acme", "a2"): False,   # a2: in doubt
                         ("acme", "gw"): True, ("acme", "direct"): True}
    assert ("acme", "gw", True) in acd.writes


class _Switch:
    """A node's commands link answering sofia_contact from a set of registered users; down
    (every command fails) until ``up``."""

    def __init__(self, registered: set[str]) -> None:
        self.registered = registered
        self.up = False
        self.asked: list[str] = []

    def api(self, cmd: str, timeout: float | None = None) -> str:
        self.asked.append(cmd)
        if not self.up:
            raise EslError("node fs1: not connected")
        user = cmd.split()[-1]
        return ("sofia/internal/sip:" + user + "@10.0.0.1:5060" if user in self.registered
                else "error/user_not_registered")


def test_gaining_a_node_asks_about_every_phone_and_the_sweep_retries_the_unanswered() -> None:
    switch = _Switch({"1002@default"})
    acd = FakeAcd([ACME])
    regs = AgentRegistrations(acd, StaticTenants([ACME]),  # type: ignore[arg-type]
                              link_for=lambda node: switch, owns=lambda node: True)
    regs.node_gained("fs1")
    wait_for(lambda: len(switch.asked) == 2, message="both phones asked about")
    gevent.sleep(0.01)
    assert acd.writes == []                     # the switch did not answer: nothing decided
    switch.up = True
    regs.still_in_doubt("fs1")
    wait_for(lambda: len(acd.writes) == 2, message="both phones resolved")
    assert sorted(acd.writes) == [("acme", "a1", False), ("acme", "a2", True)]
    asked = len(switch.asked)
    regs.still_in_doubt("fs1")                  # nothing left in doubt: the switch is not asked
    gevent.sleep(0.01)
    assert len(switch.asked) == asked


def test_a_sync_writes_each_node_s_word_the_acd_lacks() -> None:
    regs, acd = _regs(ACME)
    regs.on_event(_event("sofia::register", "1001", "default"), _Link("fs1"))
    regs.on_event(_event("sofia::expire", "1001", "default"), _Link("fs2"))
    acd.on.clear()                      # an ACD that lost what the nodes said (a new Redis)
    acd.writes.clear()
    acd.nodes.clear()
    regs.synced([ACME])
    assert acd.on[("acme", "a1")] == {"fs1": True, "fs2": False}
    assert acd.flags[("acme", "a1")] is True
    acd.writes.clear()
    regs.synced([ACME])                 # nothing new: nothing written
    assert [w for w in acd.writes if w[1] == "a1"] == []


def test_a_sync_writes_only_the_nodes_this_worker_owns_now() -> None:
    acd = FakeAcd([ACME])
    owned = {"fs1", "fs2"}
    regs = AgentRegistrations(acd, StaticTenants([ACME]),  # type: ignore[arg-type]
                              link_for=lambda node: None, owns=lambda node: node in owned,
                              deliver=lambda offers: None)
    regs.on_event(_event("sofia::register", "1001", "default"), _Link("fs1"))
    regs.on_event(_event("sofia::expire", "1001", "default"), _Link("fs2"))
    owned.discard("fs2")                # fs2 went to another worker: what we heard is stale
    acd.on.clear()
    acd.nodes.clear()
    regs.synced([ACME])
    assert acd.on[("acme", "a1")] == {"fs1": True}
    assert "fs2" not in acd.nodes
