"""The ACD, the call records and the node leases on a real Redis Cluster (3 masters): every
script touches the keys of one tenant (or one node) only, so it runs unchanged there.

Two tenants whose hash tags land on different masters go through a whole queue life cycle side
by side; a script or pipeline that reached across tenants, or a key without the tenant's tag,
fails here with CROSSSLOT / "non local key" instead of passing on a single server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis.cluster import RedisCluster

from acd import events
from acd.store import RESERVE_MS, Acd
from cc_core import keys, redisconn
from cc_core.flow.record import GONE, NOT_OWNER, OK, CallData, CallState, CallStore
from esl_handlers import keys as esl_keys
from esl_handlers.errors import LeaseLost
from esl_handlers.lease import NodeLease
from tests.acd.helpers import Clock, tenant, tiers
from tests.conftest import wait_for

# Tenant ids tried in this order; the test takes "acme" and the first one served by another
# master, so the two tenants' scripts run on different processes.
CANDIDATES = ("acme", "globex", "initech", "umbrella", "hooli", "soylent", "wayne", "stark")


@pytest.fixture
def rc(redis_cluster_url: str) -> Iterator[RedisCluster]:
    client = redisconn.connect(redis_cluster_url)     # what a worker configured so gets
    assert isinstance(client, RedisCluster)
    yield client
    client.close()


def _master(rc: RedisCluster, key: str) -> str:
    return str(rc.get_node_from_key(key).name)


def _two_tenants(rc: RedisCluster) -> tuple[str, str]:
    first = CANDIDATES[0]
    for other in CANDIDATES[1:]:
        if _master(rc, keys.acd_agents(other)) != _master(rc, keys.acd_agents(first)):
            return first, other
    raise AssertionError(f"no candidate tenant lands on a master other than {first}'s")


def _config(tid: str):  # type: ignore[no-untyped-def]
    return tenant({"a1": {"wrap_up_s": 10}, "a2": {"wrap_up_s": 10}, "a3": {"wrap_up_s": 0}},
                  {"sales": {"strategy": "longest-idle-agent", "tiers": tiers("a1", "a2"),
                             "ring_timeout_s": 20},
                   "vip": {"strategy": "ring-all", "tiers": tiers("a3", "a1", level=2),
                           "ring_timeout_s": 20}},
                  tenant_id=tid)


def test_two_tenants_on_different_masters_run_the_whole_queue_life_cycle(
        rc: RedisCluster) -> None:
    t1, t2 = _two_tenants(rc)
    # Each tenant's keys all hash to one slot (its tag), and the two slots are served by
    # different masters: a script mixing them would fail with CROSSSLOT.
    for t in (t1, t2):
        assert len({rc.keyslot(k) for k in (keys.acd_agent(t, "a1"), keys.acd_queue(t, "sales"),
                                             keys.acd_member(t, "c"), keys.acd_timers(t),
                                             keys.acd_prefix(t), keys.call(t, "c"))}) == 1
    assert _master(rc, keys.acd_prefix(t1)) != _master(rc, keys.acd_prefix(t2))

    clock = Clock()
    acd = Acd(rc, clock_ms=clock)
    for t in (t1, t2):
        acd.sync(_config(t))
        for a in ("a1", "a2", "a3"):
            assert acd.login(t, a).status == "Available"
        assert [v.agent for v in acd.agents(t)] == ["a1", "a2", "a3"]

    # Callers join both tenants' queues, interleaved.
    for t in (t1, t2):
        assert acd.enqueue(t, "sales", f"{t}-c1", node="n1", caller="13800138001").position == 1
        clock.advance(1000)
        assert acd.enqueue(t, "sales", f"{t}-c2", node="n1").position == 2
        clock.advance(1000)
        acd.enqueue(t, "sales", f"{t}-c3", node="n1")
    for t in (t1, t2):
        assert acd.position(t, f"{t}-c2") == (2, 3)
        assert [m.call_uuid for m in acd.members(t, "sales")] == [f"{t}-c1", f"{t}-c2",
                                                                    f"{t}-c3"]
        assert acd.queue_view(t, "sales").waiting == 3
        # The sweep's read: the rank of the first caller of each queue somebody waits in.
        assert list(acd.heads(t, ["sales", "vip"])) == ["sales"]

    # Two agents serve sales: c1 and c2 are offered, c3 keeps waiting.
    offers = {t: acd.dispatch(t, "sales") for t in (t1, t2)}
    for t in (t1, t2):
        assert [o.call_uuid for o in offers[t]] == [f"{t}-c1", f"{t}-c2"]
        assert acd.position(t, f"{t}-c3") == (1, 1)
        assert acd.queue_view(t, "sales").agents_free == 0
    # c1's agent rings and answers; c2's agent does not answer in time.
    for t in (t1, t2):
        o1, o2 = offers[t]
        a1, a2 = o1.agents[0].agent, o2.agents[0].agent
        assert acd.offering(o1, a1)
        assert acd.answered(o1, a1)
        assert acd.agent(t, a1).state == "In a queue call"
        assert acd.agent(t, a2).state == "Reserved"
    clock.advance(RESERVE_MS + 1)
    for t in (t1, t2):
        assert acd.tick(t) == ["sales"]           # c2's reservation lapsed
        o2 = offers[t][1]
        assert not acd.offering(o2, o2.agents[0].agent)
        assert acd.position(t, f"{t}-c2") == (1, 2)   # back in its place, ahead of c3
        assert acd.agent(t, o2.agents[0].agent).state == "Waiting"

    # c2's agent is free again: dispatch_agent pairs it with c2; it rings, fails, c2 waits.
    for t in (t1, t2):
        free = offers[t][1].agents[0].agent
        (again,) = acd.dispatch_agent(t, free)
        assert again.call_uuid == f"{t}-c2"
        assert acd.offering(again, free)
        acd.agent_failed(again, free, "NO_ANSWER")
        assert acd.position(t, f"{t}-c2")[0] == 1

    # c3 hangs up while waiting; c1's call ends, its agent wraps up, then takes c2.
    for t in (t1, t2):
        assert acd.leave(t, f"{t}-c3", "hangup") == []
        a1 = offers[t][0].agents[0].agent
        clock.advance(30_000)
        acd.call_ended(t, a1, f"{t}-c1", 30_000)
        assert acd.agent(t, a1).state == "Idle"
        assert acd.agent(t, a1).calls_today == 1
    clock.advance(10_001)
    nxt_agent: dict[str, str] = {}
    for t in (t1, t2):
        assert "sales" in acd.tick(t)
        (nxt,) = acd.dispatch(t, "sales")
        assert nxt.call_uuid == f"{t}-c2"
        assert acd.offering(nxt, nxt.agents[0].agent)
        assert acd.answered(nxt, nxt.agents[0].agent)
        nxt_agent[t] = nxt.agents[0].agent
        view = acd.queue_view(t, "sales")
        assert (view.waiting, view.answered_today, view.abandoned_today) == (0, 2, 1)
        assert view.avg_handle_ms is not None

    # Ring-all on the second queue, and a caller leaving while agents ring.
    for t in (t1, t2):
        acd.enqueue(t, "vip", f"{t}-v1", node="n2", priority=5)
        busy = nxt_agent[t]     # talking to c2; the other vip agents ring together
        (ring,) = acd.dispatch(t, "vip")
        ringing = [a.agent for a in ring.agents]
        assert ringing == [a for a in ("a3", "a1") if a != busy]
        for a in ringing:
            assert acd.offering(ring, a)
        assert sorted(acd.leave(t, f"{t}-v1", "hangup")) == sorted(ringing)
        assert [acd.agent(t, a).state for a in ringing] == ["Waiting"] * len(ringing)
        assert [q.queue for q in acd.queues(t)] == ["sales", "vip"]
        assert acd.set_break(t, "a3").status == "On Break"
        assert acd.logout(t, "a3").status == "Logged Out"
        assert acd.queue_view(t, "vip").agents_available == 1     # a1, talking or not

    # Every tenant's events went to its own stream, in its own slot.
    for t in (t1, t2):
        actions = [e["CC-Action"] for e in events.read(rc, t)]
        assert "bridge-agent-start" in actions and "member-queue-end" in actions
        assert all(rc.keyslot(k.decode()) == rc.keyslot(keys.acd_prefix(t))
                   for k in rc.keys(f"cc:{{t:{t}}}:*", target_nodes=RedisCluster.ALL_NODES))
    # Nothing of the ACD was written without a tenant tag.
    stray = [k for k in rc.keys("*", target_nodes=RedisCluster.ALL_NODES)
             if not k.decode().startswith(("cc:{t:", "cc:{g}", "cc:{n:", "cc:{w:"))]
    assert stray == []


def test_call_records_of_two_tenants_claim_advance_take_over_on_cluster(
        rc: RedisCluster) -> None:
    t1, t2 = _two_tenants(rc)
    one, two = CallStore(rc, "w1"), CallStore(rc, "w2")
    for t in (t1, t2):
        assert one.claim(t, f"{t}-u", CallData(tenant=t, dnis="4008001234")) is None
        held = two.claim(t, f"{t}-u", CallData(tenant=t, dnis="4008001234"))
        assert held is not None and held.owner == "w1"
        assert one.save(t, f"{t}-u", CallState.MENU, CallData(tenant=t, dnis="4008001234",
                                                               caller="1380")) == OK
    # A sweep reads records of both tenants (different masters) in one cluster pipeline.
    recs = one.records([(t1, f"{t1}-u"), (t2, f"{t2}-u"), (t2, "never")])
    assert {u: r.state if r else None for u, r in recs.items()} == {
        f"{t1}-u": CallState.MENU, f"{t2}-u": CallState.MENU, "never": None}
    rc.hset(esl_keys.worker("w2"), "pid", 1)
    assert one.live_workers(["w1", "w2", "w3"]) == {"w2"}
    for t in (t1, t2):
        taken = two.take_over(t, f"{t}-u", "w1")
        assert taken is not None and taken.state is CallState.MENU
        assert one.save(t, f"{t}-u", CallState.QUEUED, None) == NOT_OWNER
        two.forget(t, f"{t}-u")
        assert two.save(t, f"{t}-u", CallState.ENDING, None) == GONE


def test_node_leases_on_different_masters_acquire_renew_fence_release(
        rc: RedisCluster) -> None:
    nodes = ["fs1", "fs2", "fs3", "fs4", "fs5", "fs6"]
    masters = {_master(rc, esl_keys.node_lease(n)) for n in nodes}
    assert len(masters) > 1
    for n in nodes:
        lease = NodeLease(rc, n, "w1", 5_000)
        other = NodeLease(rc, n, "w2", 5_000)
        assert lease.try_acquire()
        assert not other.try_acquire()
        lease.renew()
        token = lease.check()
        lease.fenced_set(esl_keys.node_scoped(n, "state"), "x")
        assert lease.release()
        assert other.try_acquire()
        with pytest.raises(LeaseLost):   # the former owner's late write is refused
            lease.fenced_set(esl_keys.node_scoped(n, "state"), "y", token=token)
        assert rc.get(esl_keys.node_scoped(n, "state")) == b"x"


def test_an_offer_published_by_a_worker_on_any_master_reaches_the_holders_subscription(
        rc: RedisCluster) -> None:
    """The offers channel (``keys.ACD_CHANNEL``) is not a key: the cluster carries a PUBLISH
    to every node, so the holder hears it whichever master each side talks to."""
    sub = rc.pubsub(ignore_subscribe_messages=True)
    sub.subscribe(keys.ACD_CHANNEL)
    try:
        for node in rc.get_primaries():
            rc.publish(keys.ACD_CHANNEL, node.name.encode(), target_nodes=node)
        want = {n.name.encode() for n in rc.get_primaries()}
        got: set[bytes] = set()

        def heard_all() -> bool:
            message = sub.get_message(timeout=0.1)
            if message:
                got.add(message["data"])
            return got == want

        wait_for(heard_all, message=f"an offer from every master (heard {got})")
    finally:
        sub.close()
