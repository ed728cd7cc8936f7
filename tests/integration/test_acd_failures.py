"""The ACD when things go wrong, end to end: simulator(s) over TCP, real Redis, real workers.

The tenant is ``tests/data/tenants/acdfail.yaml``. What callers and agents would notice is read
from the switches' own events (agent legs rung, answered, hung up, when; callers answered and
bridged); where agents stand, from the ACD in Redis and its ``callcenter::info``-style stream.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from acd import events as acd_events
from acd.store import Acd
from cc_core import redisconn
from cc_core.config import Config
from fssim.process import SimProcess
from recordings.wav import read_info
from tests.conftest import wait_for
from tests.integration.cluster import (
    FAILOVER_TTL_MS,
    REPO,
    SIM_PASSWORD,
    START_TIMEOUT_S,
    Cluster,
    LegObserver,
    WorkerProc,
    start_sim,
    start_worker,
    stream_summaries,
)
from tests.integration.cluster import ended as wait_ended

pytestmark = pytest.mark.slow

TENANT = REPO / "tests" / "data" / "tenants" / "acdfail.yaml"
T = "acdfail"
CALLER = "13322223333"
# How each agent's phone behaves (sim_endpoint): answer after N ms, talk M ms. f1 talks until
# well after the survivor takes its caller over (up to the dead holder's 3 s heartbeat plus a
# 2 s sweep after the ring starts): with 1 s it hung up about when the bridge came, by chance.
PHONES = {"f1": "answer 2500 4000", "t1": "answer 200 8000", "g1": "answer 2500 500", "s1": "answer 300 700", "s2": "answer 300 700",
          "s3": "answer 300 700", "p1": "noanswer", "p2": "answer 2500 1000",
          "p3": "answer 300 1000", "m1": "answer 200 600",
          "o1": "answer 200 30000"}
NODES = ("fs1", "fs2")
# ring_progressively_delay_s of the queue, less a margin for the switch's clock stamps.
PROGRESSIVE_GAP_US = 900_000


def phones(obs: LegObserver) -> None:
    """The agents' phones, registered before the workers start (they ask sofia_contact)."""
    for agent, how in PHONES.items():
        reply = obs.conn.api(f"sim_endpoint user/{agent}@default {how}")
        assert reply.startswith("+OK"), reply
        reply = obs.conn.api(f"sim_register {agent}@default 3600")
        assert reply.startswith("+OK"), reply


def summaries(r: Any) -> dict[str, dict]:
    return stream_summaries(r, T)


def agent_legs_up(obs: LegObserver) -> list[str]:
    """The agent legs the switch lists (Receiving in the ACD is set just before the
    originate is sent: a worker killed then leaves no leg)."""
    rows = json.loads(obs.conn.api("show channels as json")).get("rows", [])
    return [row["uuid"] for row in rows if row.get("direction") == "outbound"]


def state(acd: Acd, agent: str) -> tuple[str, str]:
    view = acd.agent(T, agent)
    return view.status, view.state


def all_waiting(acd: Acd, agents: list[str]) -> bool:
    return all(state(acd, a) == ("Available", "Waiting") for a in agents)


@pytest.fixture
def acd_cluster(cluster: Cluster, monkeypatch: pytest.MonkeyPatch
                ) -> Iterator[tuple[Cluster, LegObserver, Acd]]:
    monkeypatch.setenv("CC_TENANTS", str(TENANT))
    obs = LegObserver(cluster.sim.port)
    phones(obs)
    acd = Acd(cluster.r)
    try:
        yield cluster, obs, acd
    finally:
        obs.close()


def start(cluster: Cluster, acd: Acd, n: int) -> None:
    cluster.start_workers(n, ttl_ms=FAILOVER_TTL_MS, app="cc_core.app:build")
    cluster.wait_owner(cluster.workers, timeout=START_TIMEOUT_S)
    wait_for(lambda: acd.agents(T), timeout=10, message="the workers to sync the agents")


def test_a_worker_killed_while_an_agent_rings_the_survivor_connects_that_agent(
        acd_cluster) -> None:
    cluster, obs, acd = acd_cluster
    start(cluster, acd, 2)
    owner = cluster.by_id(cluster.holder())
    assert owner is not None
    standby = next(w for w in cluster.workers if w is not owner)
    uuid = obs.call(CALLER, "4003330001")
    wait_for(lambda: state(acd, "f1")[1] == "Receiving" and agent_legs_up(obs), timeout=10,
             message="the agent's phone ringing")
    # The worker holding the caller and the reservation dies while the agent's phone rings.
    # The agent answers 2.5 s after the ring starts: after the survivor took the switch's
    # events (lease TTL, 1.5 s), before it took the caller (the dead worker's heartbeat
    # expires at 3 s, then its sweep).
    os.kill(owner.proc.pid, signal.SIGKILL)
    cluster.wait_owner([standby], timeout=FAILOVER_TTL_MS / 1000 + 3)
    summary = wait_ended(cluster, obs, T, uuid, timeout=40)
    assert summary["outcome"] == "answered_by_agent" and summary["agent"] == "f1"
    # The caller was answered once and bridged once.
    assert obs.answered.get(uuid) == 1 and obs.bridges.get(uuid) == 1, (obs.answered,
                                                                        obs.bridges)
    wait_for(lambda: all(leg["cause"] for leg in obs.legs_of(uuid)), timeout=10,
             message="every agent leg ended")
    legs = obs.legs_of(uuid)
    # The agent picked up the phone the dead worker rang and talked to the caller: nobody
    # hung up on an agent who answered, and no phone rang on for nobody to its timeout.
    assert len(legs) == 1 and legs[0]["answered"], legs
    assert legs[0]["cause"] == "NORMAL_CLEARING", legs
    wait_for(lambda: all_waiting(acd, ["f1"]), timeout=10, message="the agent Waiting again")
    f1 = acd.agent(T, "f1")
    assert f1.calls_today == 1 and f1.no_answers_today == 0
    assert acd.queue_view(T, "failover").waiting == 0


def test_an_agent_talking_when_the_worker_dies_is_free_again_after_the_call(acd_cluster) -> None:
    cluster, obs, acd = acd_cluster
    start(cluster, acd, 2)
    owner = cluster.by_id(cluster.holder())
    assert owner is not None
    standby = next(w for w in cluster.workers if w is not owner)
    uuid = obs.call(CALLER, "4003330008")
    wait_for(lambda: obs.bridges.get(uuid), timeout=10, message="the caller bridged to t1")
    os.kill(owner.proc.pid, signal.SIGKILL)
    cluster.wait_owner([standby], timeout=FAILOVER_TTL_MS / 1000 + 3)
    # The agent talks 8 s, then hangs up: the survivor ends the call and frees the agent.
    summary = wait_ended(cluster, obs, T, uuid, timeout=30)
    assert summary["outcome"] == "answered_by_agent" and summary["agent"] == "t1"
    wait_for(lambda: all_waiting(acd, ["t1"]), timeout=10,
             message="the agent Waiting again after the call")
    assert acd.agent(T, "t1").calls_today == 1


def test_a_call_that_ends_while_no_worker_owns_the_node_frees_its_agent_and_keeps_its_recording(
        acd_cluster, tmp_path: Path) -> None:
    # Seen on FreeSWITCH 1.10.12 with SIPp: callers who hung up while the node had no owner
    # left their agents "In a queue call" for good, and their recordings unindexed (the
    # RECORD_STOP went to nobody) though the switch had written the files.
    cluster, obs, acd = acd_cluster
    root = tmp_path / "recordings"
    cluster.start_workers(2, ttl_ms=FAILOVER_TTL_MS, app="cc_core.app:build",
                          recordings={"root": str(root)})
    cluster.wait_owner(cluster.workers, timeout=START_TIMEOUT_S)
    wait_for(lambda: acd.agents(T), timeout=10, message="the workers to sync the agents")
    owner = cluster.by_id(cluster.holder())
    assert owner is not None
    standby = next(w for w in cluster.workers if w is not owner)
    uuid = obs.call(CALLER, "4003330009")
    wait_for(lambda: obs.bridges.get(uuid), timeout=10, message="the caller bridged to o1")
    wait_for(lambda: list(root.rglob(f"{uuid}.wav")), timeout=5,
             message="the switch writing the recording")
    os.kill(owner.proc.pid, signal.SIGKILL)
    # The caller hangs up at once: the bridge ends both legs before the standby owns the node.
    assert obs.conn.api(f"uuid_kill {uuid} NORMAL_CLEARING").startswith("+OK")
    cluster.wait_owner([standby], timeout=FAILOVER_TTL_MS / 1000 + 3)
    summary = wait_ended(cluster, obs, T, uuid, timeout=30)
    assert summary["outcome"] == "answered_by_agent" and summary["agent"] == "o1"
    wait_for(lambda: all_waiting(acd, ["o1"]), timeout=15,
             message="the agent Waiting again, not left In a queue call")
    assert acd.agent(T, "o1").calls_today == 1
    rec = summary["recording"]
    (path,) = root.rglob(f"{uuid}.wav")
    assert rec["name"] == str(path.relative_to(root))
    assert rec.get("stopped_ms") and rec["size"] == path.stat().st_size, rec
    assert rec["ms"] == read_info(str(path)).ms


def test_an_agent_who_declines_during_the_failover_is_rung_again_for_the_first_caller(
        acd_cluster) -> None:
    cluster, obs, acd = acd_cluster
    start(cluster, acd, 2)
    owner = cluster.by_id(cluster.holder())
    assert owner is not None
    standby = next(w for w in cluster.workers if w is not owner)
    first = obs.call(CALLER, "4003330007")
    wait_for(lambda: state(acd, "g1")[1] == "Receiving", timeout=10,
             message="the agent's phone ringing (Receiving)")
    (leg,) = wait_for(lambda: agent_legs_up(obs), timeout=5,
                      message="the agent's leg listed by the switch")
    os.kill(owner.proc.pid, signal.SIGKILL)
    # While no worker owns the switch: the agent declines the ringing call (the dead worker's
    # leg ends, and nobody hears of it), and a second caller arrives.
    assert obs.conn.api(f"sim_hangup {leg} CALL_REJECTED").startswith("+OK")
    second = obs.call("13322224444", "4003330007")
    cluster.wait_owner([standby], timeout=FAILOVER_TTL_MS / 1000 + 3)
    for uuid in (first, second):
        summary = wait_ended(cluster, obs, T, uuid, timeout=40)
        assert summary["outcome"] == "answered_by_agent" and summary["agent"] == "g1"
        assert obs.answered.get(uuid) == 1 and obs.bridges.get(uuid) == 1
    wait_for(lambda: all(leg["cause"] for leg in obs.legs.values()), timeout=10,
             message="every agent leg ended")
    declined, again = sorted(obs.legs_of(first), key=lambda leg: leg["start_us"])
    assert declined["cause"] == "CALL_REJECTED" and not declined["answered"]
    assert again["answered"] and again["cause"] == "NORMAL_CLEARING"
    # The first caller kept their place: rung again before the caller who came later.
    (later,) = obs.legs_of(second)
    assert again["start_us"] < later["start_us"]
    wait_for(lambda: all_waiting(acd, ["g1"]), timeout=10, message="the agent Waiting again")
    assert acd.agent(T, "g1").calls_today == 2


def test_ring_progressively_rings_agents_one_after_another_and_the_first_to_answer_wins(
        acd_cluster) -> None:
    cluster, obs, acd = acd_cluster
    start(cluster, acd, 1)
    uuid = obs.call(CALLER, "4003330003")
    summary = wait_ended(cluster, obs, T, uuid, timeout=30)
    wait_for(lambda: len(obs.legs_of(uuid)) == 3 and
             all(leg["cause"] for leg in obs.legs_of(uuid)), timeout=15,
             message="the three agents' legs to end")
    legs = {leg["agent"]: leg for leg in obs.legs_of(uuid)}
    # Rung one after another, in tier order, each earlier leg still ringing when the next
    # starts; p3 (rung last, answers fast) beats p2 (rung earlier, answers later).
    assert legs["p1"]["start_us"] < legs["p2"]["start_us"] < legs["p3"]["start_us"]
    # ... the queue's ring_progressively_delay_s (1 s) apart: not all at once.
    assert legs["p2"]["start_us"] - legs["p1"]["start_us"] >= PROGRESSIVE_GAP_US
    assert legs["p3"]["start_us"] - legs["p2"]["start_us"] >= PROGRESSIVE_GAP_US
    assert legs["p1"]["end_us"] > legs["p3"]["start_us"] < legs["p2"]["end_us"]
    assert summary["outcome"] == "answered_by_agent" and summary["agent"] == "p3"
    assert legs["p3"]["answered"] and legs["p3"]["cause"] == "NORMAL_CLEARING"
    assert legs["p1"]["cause"] == "LOSE_RACE" and legs["p2"]["cause"] == "LOSE_RACE"
    assert obs.bridges.get(uuid) == 1
    wait_for(lambda: all_waiting(acd, ["p1", "p2", "p3"]), timeout=10,
             message="every agent Waiting again")
    assert all(acd.agent(T, a).no_answers_today == 0 for a in ("p1", "p2"))
    assert acd.agent(T, "p3").calls_today == 1


@pytest.fixture
def two_switches(tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
                 ) -> Iterator[tuple[dict[str, LegObserver], list[WorkerProc], Any]]:
    """Two simulators (fs1, fs2), each owned by its own worker: callers on one switch are
    offered agents freed on the other, through the ACD's offers channel."""
    monkeypatch.setenv("CC_TENANTS", str(TENANT))
    sims: dict[str, SimProcess] = {}
    observers: dict[str, LegObserver] = {}
    workers: list[WorkerProc] = []
    r = redisconn.connect(redis_url, socket_timeout=2)
    try:
        for i, name in enumerate(NODES):
            (tmp_path / name).mkdir()
            sims[name] = start_sim(tmp_path / name)
            observers[name] = LegObserver(sims[name].port)
            phones(observers[name])
            cfg = Config.model_validate({
                "nodes": [{"name": name, "port": sims[name].port, "password": SIM_PASSWORD}],
                "esl": {"lease_ttl_ms": FAILOVER_TTL_MS, "reconnect_min_s": 0.05,
                        "reconnect_max_s": 0.5, "connect_timeout_s": 2, "command_timeout_s": 2},
                "redis_url": redis_url})
            workers.append(start_worker(cfg, i, tmp_path, app="cc_core.app:build"))
        for w, name in zip(workers, NODES, strict=True):
            wait_for(lambda w=w: w.metrics_port(r), timeout=START_TIMEOUT_S,
                     message="worker metrics port")
            wait_for(lambda w=w, n=name: w.owner_gauge(n) == 1, timeout=START_TIMEOUT_S,
                     message=f"a worker to own {name}")
        yield observers, workers, r
    finally:
        for w in workers:
            w.stop()
        for obs in observers.values():
            obs.close()
        for sim in sims.values():
            sim.stop()
        r.close()


def test_ring_progressively_carries_on_after_the_worker_ringing_the_agents_dies(
        acd_cluster) -> None:
    cluster, obs, acd = acd_cluster
    start(cluster, acd, 2)
    owner = cluster.by_id(cluster.holder())
    assert owner is not None
    standby = next(w for w in cluster.workers if w is not owner)
    uuid = obs.call(CALLER, "4003330003")
    wait_for(lambda: state(acd, "p1")[1] == "Receiving" and agent_legs_up(obs), timeout=10,
             message="the first agent's phone ringing")
    # p2 and p3 were to be rung 1 s and 2 s later by the worker that dies now.
    os.kill(owner.proc.pid, signal.SIGKILL)
    cluster.wait_owner([standby], timeout=FAILOVER_TTL_MS / 1000 + 3)
    summary = wait_ended(cluster, obs, T, uuid, timeout=40)
    wait_for(lambda: all(leg["cause"] for leg in obs.legs_of(uuid)), timeout=15,
             message="every agent leg ended")
    legs = {leg["agent"]: leg for leg in obs.legs_of(uuid)}
    # The survivor rang the two others; p3 answered first and was connected; p1's phone,
    # rung by the dead worker, stopped then rather than ringing out as a missed call.
    assert sorted(legs) == ["p1", "p2", "p3"] and len(obs.legs_of(uuid)) == 3, legs
    assert summary["outcome"] == "answered_by_agent" and summary["agent"] == "p3"
    assert legs["p1"]["cause"] == "LOSE_RACE" and legs["p2"]["cause"] == "LOSE_RACE"
    assert obs.answered.get(uuid) == 1 and obs.bridges.get(uuid) == 1
    wait_for(lambda: all_waiting(acd, ["p1", "p2", "p3"]), timeout=10,
             message="every agent Waiting again")
    assert all(acd.agent(T, a).no_answers_today == 0 for a in ("p1", "p2"))


def test_callers_on_two_switches_share_agents_without_one_agent_rung_twice(
        two_switches) -> None:
    observers, workers, r = two_switches
    acd = Acd(r)
    wait_for(lambda: acd.agents(T), timeout=10, message="the workers to sync the agents")
    agents = ["s1", "s2", "s3"]
    # Four callers on each switch for three agents: most wait for an agent the other
    # switch's worker frees.
    calls = {name: [] for name in NODES}
    for i in range(4):
        for name in NODES:
            calls[name].append(observers[name].call(f"1332222{i:04d}", "4003330002"))
    for name in NODES:
        for uuid in calls[name]:
            wait_for(lambda u=uuid, n=name: u in observers[n].ended and u in summaries(r),
                     timeout=40, message=f"call {uuid} on {name} to end and be summarised")
    done = summaries(r)
    for name in NODES:
        obs = observers[name]
        for uuid in calls[name]:
            assert done[uuid]["outcome"] == "answered_by_agent", done[uuid]
            assert obs.answered.get(uuid) == 1 and obs.bridges.get(uuid) == 1
    wait_for(lambda: all(leg["cause"] for obs in observers.values()
                         for leg in obs.legs.values()), timeout=10,
             message="every agent leg ended")
    # An agent's phone never rang (or talked) for two callers at once, on either switch.
    for agent in agents:
        spans = sorted((leg["start_us"], leg["end_us"]) for obs in observers.values()
                       for leg in obs.agent_legs(agent))
        assert all(a_end <= b_start for (_, a_end), (b_start, _) in pairwise(spans)), \
            (agent, spans)
    # ... nor did the ACD offer one: between two offers to an agent, it was free again.
    for agent in agents:
        seen = []
        for ev in acd_events.read(r, T):
            if ev.get("CC-Agent") != agent:
                continue
            if ev["CC-Action"] == "agent-offering":
                seen.append("offer")
            elif ev["CC-Action"] == "agent-state-change" and ev["CC-Agent-State"] in (
                    "Waiting", "Idle"):
                seen.append("free")
        assert "offer,offer" not in ",".join(seen), (agent, seen)
    wait_for(lambda: all_waiting(acd, agents), timeout=10, message="every agent Waiting again")
    assert sum(acd.agent(T, a).calls_today for a in agents) == 8
    assert all(w.alive for w in workers)


def test_a_phone_registered_on_one_switch_is_rung_only_for_that_switch_s_callers(
        two_switches) -> None:
    observers, workers, r = two_switches
    acd = Acd(r)
    wait_for(lambda: acd.agents(T), timeout=10, message="the workers to sync the agents")
    # Each worker asks its switch about the phones when it gains it (sofia_contact).
    wait_for(lambda: acd.agent(T, "s1").registered_on == {"fs1": True, "fs2": True},
             timeout=10, message="both switches' word on s1's phone in the ACD")
    # s1's phone leaves fs2 (it stays registered on fs1): fs2's owner hears it.
    reply = observers["fs2"].conn.api("sim_unregister s1@default")
    assert reply.startswith("+OK"), reply
    wait_for(lambda: acd.agent(T, "s1").registered_on.get("fs2") is False, timeout=10,
             message="fs2's word on s1's phone in the ACD")
    assert acd.agent(T, "s1").registered      # still registered on fs1
    # Four callers on fs2 and two on fs1 for three agents: fs2's wait for s2 and s3 only.
    calls = {"fs2": [observers["fs2"].call(f"1332223{i:04d}", "4003330002") for i in range(4)],
             "fs1": [observers["fs1"].call(f"1332224{i:04d}", "4003330002") for i in range(2)]}
    for name, uuids in calls.items():
        for uuid in uuids:
            wait_for(lambda u=uuid, n=name: u in observers[n].ended and u in summaries(r),
                     timeout=40, message=f"call {uuid} on {name} to end and be summarised")
    done = summaries(r)
    assert [done[u]["outcome"] for us in calls.values() for u in us] == \
        ["answered_by_agent"] * 6
    wait_for(lambda: all(leg["cause"] for obs in observers.values()
                         for leg in obs.legs.values()), timeout=10,
             message="every agent leg ended")
    # s1 was never rung through fs2 (no USER_NOT_REGISTERED to learn it from), and took
    # fs1's callers while s2 and s3 served fs2's.
    assert observers["fs2"].agent_legs("s1") == []
    assert len(observers["fs1"].agent_legs("s1")) >= 1
    causes = [leg["cause"] for obs in observers.values() for leg in obs.legs.values()]
    assert "USER_NOT_REGISTERED" not in causes, causes
    assert acd.agent(T, "s1").registered_on == {"fs1": True, "fs2": False}
    assert all(w.alive for w in workers)


def test_an_agent_in_three_queues_takes_one_caller_at_a_time_the_vip_first(
        acd_cluster) -> None:
    cluster, obs, acd = acd_cluster
    start(cluster, acd, 1)
    # m1 (logged out) serves three queues; a caller waits in the first, one in the third,
    # then a VIP (whitelisted, priority 50) joins the second, last.
    first = obs.call("13311110001", "4003330004")
    wait_for(lambda: acd.queue_view(T, "multi1").waiting == 1, timeout=10,
             message="the first caller waiting")
    third = obs.call("13311110003", "4003330006")
    wait_for(lambda: acd.queue_view(T, "multi3").waiting == 1, timeout=10,
             message="the second caller waiting")
    vip = obs.call("13900000001", "4003330005")
    wait_for(lambda: acd.queue_view(T, "multi2").waiting == 1, timeout=10,
             message="the VIP waiting")
    acd.login(T, "m1")
    for uuid in (first, third, vip):
        summary = wait_ended(cluster, obs, T, uuid, timeout=30)
        assert summary["outcome"] == "answered_by_agent" and summary["agent"] == "m1"
        assert obs.bridges.get(uuid) == 1
    wait_for(lambda: all(leg["cause"] for leg in obs.legs.values()), timeout=10,
             message="every agent leg ended")
    legs = sorted(obs.agent_legs("m1"), key=lambda leg: leg["start_us"])
    # One ring per caller, the VIP first, then in the order the others came; never two at
    # once (each leg ended before the next started).
    assert [leg["member"] for leg in legs] == [vip, first, third], legs
    assert all(a["end_us"] <= b["start_us"] for a, b in pairwise(legs)), legs
    assert acd.agent(T, "m1").calls_today == 3
    wait_for(lambda: all_waiting(acd, ["m1"]), timeout=10, message="m1 Waiting again")
