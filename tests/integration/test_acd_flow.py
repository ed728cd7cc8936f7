"""Callers in ACD queues end to end: simulator over TCP, real Redis, a real worker process.

The tenant is ``tests/data/tenants/acdtest.yaml`` (one 400 number per queue). What callers and
agents experience is read from the switch's own events: which agent legs were rung, answered,
hung up and with which cause, what the caller heard; what the flow decided, from the finished
calls' stream; where agents stand, from the ACD in Redis.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from acd.store import Acd
from cc_core import keys
from tests.conftest import wait_for
from tests.integration.cluster import (
    FAILOVER_TTL_MS,
    REPO,
    START_TIMEOUT_S,
    Cluster,
    LegObserver,
    Observer,
    WorkerProc,
)
from tests.integration.cluster import ended as wait_ended
from tests.integration.cluster import summaries as cluster_summaries

pytestmark = pytest.mark.slow

TENANT = REPO / "tests" / "data" / "tenants" / "acdtest.yaml"
T = "acdtest"
CALLER = "13311112222"


@pytest.fixture
def acd_flow(cluster: Cluster, monkeypatch: pytest.MonkeyPatch
             ) -> Iterator[tuple[Cluster, LegObserver, Acd]]:
    monkeypatch.setenv("CC_TENANTS", str(TENANT))
    obs = LegObserver(cluster.sim.port)
    for contact, how in (("a1", "answer 100 600"), ("a2", "answer 100 600"),
                         ("r1", "answer 300 800"), ("r2", "answer 100 800"),
                         ("r3", "answer 600 800"), ("busy", "busy"),
                         ("next", "answer 100 500"), ("slow", "noanswer"),
                         ("w1", "answer 100 5000"), ("late", "answer 100 500"),
                         ("hold", "noanswer")):
        reply = obs.conn.api(f"sim_endpoint user/{contact}@default {how}")
        assert reply.startswith("+OK"), reply
    assert obs.conn.api("sim_endpoint sofia/gateway/carrier/13311112222 answer 200 500"
                        ).startswith("+OK")
    # The agents' phones are registered before the worker starts (it asks sofia_contact).
    for agent in ("a1", "a2", "r1", "r2", "r3", "busy", "next", "slow", "w1", "late", "hold"):
        reply = obs.conn.api(f"sim_register {agent}@default 3600")
        assert reply.startswith("+OK"), reply
    cluster.start_workers(1, ttl_ms=FAILOVER_TTL_MS, app="cc_core.app:build")
    cluster.wait_owner(cluster.workers, timeout=START_TIMEOUT_S)
    acd = Acd(cluster.r)
    wait_for(lambda: acd.agents(T), timeout=10, message="the worker to sync the tenant's agents")
    try:
        yield cluster, obs, acd
    finally:
        obs.close()


def summaries(cluster: Cluster) -> dict[str, dict]:
    return cluster_summaries(cluster, T)


def ended(cluster: Cluster, obs: Observer, uuid: str, timeout: float = 20) -> dict:
    return wait_ended(cluster, obs, T, uuid, timeout)


def state(acd: Acd, agent: str) -> tuple[str, str]:
    view = acd.agent(T, agent)
    return view.status, view.state


def test_a_caller_is_offered_to_an_agent_bridged_and_the_agent_wraps_up(acd_flow) -> None:
    cluster, obs, acd = acd_flow
    uuid = obs.call(CALLER, "4002220001")
    summary = ended(cluster, obs, uuid)
    assert summary["outcome"] == "answered_by_agent"
    legs = obs.legs_of(uuid)
    assert len(legs) == 1 and legs[0]["answered"], legs
    agent = legs[0]["agent"]
    assert agent in ("a1", "a2") and summary["agent"] == agent
    # The agent sees the caller's number; the hold music played before the bridge.
    assert legs[0]["cid"] == CALLER
    assert obs.ran(uuid, "playback") >= 1
    # After the call: wrap-up (1 s), then Waiting again, with today's counter moved.
    wait_for(lambda: state(acd, agent) == ("Available", "Waiting"), timeout=10,
             message="the agent back to Waiting after wrap-up")
    assert acd.agent(T, agent).calls_today == 1
    # The worker's own view of the wait: one join -> originate, sent before the switch
    # replied to it; one join -> answer, which includes the agent's 100 ms of ringing.
    worker = cluster.workers[0]
    assert worker.metrics_port(cluster.r)

    def seen(name: str) -> tuple[float | None, float | None]:
        return (worker.metric(f"cccore_acd_{name}_seconds_count", {}),
                worker.metric(f"cccore_acd_{name}_seconds_sum", {}))

    (sent_n, sent_s), (reply_n, reply_s), (answer_n, answer_s) = (
        seen("join_to_originate"), seen("join_to_offer"), seen("join_to_answer"))
    assert sent_n == reply_n == answer_n == 1
    assert sent_s is not None and reply_s is not None and answer_s is not None
    assert sent_s <= reply_s and answer_s >= 0.1


def test_an_answered_queue_call_leaves_one_record_with_its_times(acd_flow, tmp_path) -> None:
    """The summary the worker writes carries what the call record needs (the switch's
    times, the queue's): stored by the consumer, a record a person can trust."""
    from records.consumer import CdrConsumer
    from records.db import open_database
    from records.migrate import migrate

    cluster, obs, _ = acd_flow
    uuid = obs.call(CALLER, "4002220001")
    ended(cluster, obs, uuid)
    with open_database(str(tmp_path / "records.sqlite3")) as db:
        migrate(db)
        CdrConsumer(cluster.r, db, "test").step()
        with db.transaction(write=False) as tx:
            tx.execute("SELECT call_uuid, disposition, queue, agent, start_ms, answer_ms, "
                       "end_ms, agent_answer_ms, wait_ms, talk_ms, timezone FROM call_records")
            rows = tx.fetchall()
    assert len(rows) == 1, rows
    (call, disposition, queue, agent, start, answer, end, agent_answer, wait, talk,
     tz) = rows[0]
    assert (call, disposition, tz) == (uuid, "answered", "Asia/Shanghai")
    assert queue and agent in ("a1", "a2")
    assert 0 < start <= answer <= end and agent_answer > 0
    # The agent answers 100 ms after being rung and the call lasts (simulated) 600 ms.
    assert wait is not None and wait >= 0 and talk is not None and 0 < talk <= end - start


def test_ring_all_bridges_the_first_to_answer_and_hangs_up_every_other_leg(acd_flow) -> None:
    cluster, obs, acd = acd_flow
    uuid = obs.call(CALLER, "4002220002")
    summary = ended(cluster, obs, uuid)
    assert summary["outcome"] == "answered_by_agent"
    wait_for(lambda: all(leg["cause"] for leg in obs.legs_of(uuid)) and
             len(obs.legs_of(uuid)) == 3, timeout=10, message="all three legs to end")
    legs = {leg["agent"]: leg for leg in obs.legs_of(uuid)}
    assert set(legs) == {"r1", "r2", "r3"}
    # r2 answers first (100 ms): it wins; r1 (300 ms) may have answered too: hung up at once.
    assert summary["queue"] == "ringall" and summary["agent"] == "r2"
    assert legs["r2"]["answered"] and legs["r2"]["cause"] == "NORMAL_CLEARING"
    assert legs["r1"]["cause"] == "LOSE_RACE" and legs["r3"]["cause"] == "LOSE_RACE"
    for agent in ("r1", "r2", "r3"):
        wait_for(lambda a=agent: state(acd, a) == ("Available", "Waiting"), timeout=10,
                 message=f"{agent} free again")


def test_a_busy_agent_gets_the_busy_delay_and_the_next_agent_answers(acd_flow) -> None:
    cluster, obs, acd = acd_flow
    uuid = obs.call(CALLER, "4002220003")
    summary = ended(cluster, obs, uuid)
    assert summary["outcome"] == "answered_by_agent"
    order = [leg["agent"] for leg in obs.legs_of(uuid)]
    assert order == ["busy", "next"], order
    busy = acd.agent(T, "busy")
    assert busy.state == "Idle" and busy.status == "Available"   # its 60 s busy delay


def test_the_callers_hang_up_frees_the_ringing_agent_at_once(acd_flow) -> None:
    cluster, obs, acd = acd_flow
    uuid = obs.call(CALLER, "4002220004")
    wait_for(lambda: state(acd, "slow")[1] == "Receiving", timeout=10,
             message="the agent rung (Receiving)")
    assert obs.conn.api(f"uuid_kill {uuid} NORMAL_CLEARING").startswith("+OK")
    wait_for(lambda: obs.legs_of(uuid) and obs.legs_of(uuid)[0]["cause"] is not None, timeout=5,
             message="the agent leg hung up")
    assert obs.legs_of(uuid)[0]["cause"] == "ORIGINATOR_CANCEL"
    wait_for(lambda: state(acd, "slow") == ("Available", "Waiting"), timeout=5,
             message="the agent Waiting again")
    assert acd.agent(T, "slow").no_answers_today == 0      # not the agent's miss
    assert ended(cluster, obs, uuid)["outcome"] == "abandoned_in_queue"


def test_max_wait_leads_along_the_overflow_chain_to_voicemail(acd_flow) -> None:
    cluster, obs, acd = acd_flow
    uuid = obs.call(CALLER, "4002220005")       # nobody logged in: wait 2 s, twice
    summary = ended(cluster, obs, uuid, timeout=30)
    assert summary["outcome"] == "voicemail" and obs.ran(uuid, "record") == 1
    path = summary["path"]
    assert path.index("queue:empty") < path.index("queue:empty2") < path.index(
        "voicemail:general"), path
    assert path.count("left_queue:timeout") == 2
    assert not obs.legs_of(uuid)
    # Its record's wait is both queues' 2 s (worker clock), not the last queue's alone.
    from records.cdr import from_summary

    record = from_summary(summary)
    assert record.disposition == "voicemail" and record.wait_ms is not None
    assert 4_000 <= record.wait_ms < 30_000, record.wait_ms
    # Each step counted once, by where it went from which queue (a kind, never a target).
    worker = cluster.workers[0]
    assert _overflows(worker, "empty", "queue") == 1
    assert _overflows(worker, "empty2", "voicemail") == 1
    assert _overflows(worker, "empty2", "queue") is None
    # The ACD's day counts both (each caller who left a queue by its max wait).
    assert acd.queue_view(T, "empty").overflowed_today == 1
    assert acd.queue_view(T, "empty2").overflowed_today == 1


def _overflows(worker: WorkerProc, queue: str, target: str) -> float | None:
    return worker.metric("cccore_queue_overflows_total",
                         {"tenant": T, "queue": queue, "target": target})


def test_an_exit_key_leaves_the_queue_for_voicemail(acd_flow) -> None:
    cluster, obs, acd = acd_flow
    uuid = obs.call(CALLER, "4002220006")
    wait_for(lambda: obs.ran(uuid, "playback") >= 1, timeout=10, message="hold music")
    assert obs.conn.api(f"sim_dtmf {uuid} 1") == "+OK\n"
    summary = ended(cluster, obs, uuid)
    assert "exit_key:1" in summary["path"] and summary["outcome"] == "voicemail"
    assert acd.queue_view(T, "exits").waiting == 0
    assert _overflows(cluster.workers[0], "exits", "voicemail") == 1


def test_a_queued_callback_rings_the_agent_then_dials_the_caller(acd_flow) -> None:
    cluster, obs, acd = acd_flow
    uuid = obs.call(CALLER, "4002220006")
    wait_for(lambda: obs.ran(uuid, "playback") >= 1, timeout=10, message="hold music")
    assert obs.conn.api(f"sim_dtmf {uuid} 2") == "+OK\n"
    summary = ended(cluster, obs, uuid)
    assert summary["outcome"] == "callback_requested"
    assert acd.queue_view(T, "exits").waiting == 1      # the callback keeps the place
    acd.login(T, "late")
    wait_for(lambda: any(leg["agent"] == "late" and leg["answered"]
                         for leg in obs.legs.values()), timeout=10,
             message="the agent rung for the callback")
    leg = next(leg for leg in obs.legs.values() if leg["agent"] == "late")
    assert leg["cid"] == CALLER     # the agent sees whom they call back
    wait_for(lambda: any(a == "bridge" and d.endswith("sofia/gateway/carrier/13311112222")
                         for apps in obs.apps.values() for a, d in apps), timeout=10,
             message="the caller dialled from the agent's leg")


def test_a_callback_the_caller_does_not_answer_is_tried_again_then_given_up(acd_flow) -> None:
    cluster, obs, acd = acd_flow
    caller = "13322223333"
    assert obs.conn.api(f"sim_endpoint sofia/gateway/carrier/{caller} busy").startswith("+OK")
    uuid = obs.call(caller, "4002220006")
    wait_for(lambda: obs.ran(uuid, "playback") >= 1, timeout=10, message="hold music")
    assert obs.conn.api(f"sim_dtmf {uuid} 2") == "+OK\n"
    ended(cluster, obs, uuid)
    member = f"cb-{uuid}"
    acd.login(T, "late")
    # retries: 1, retry_after_s: 5 (acdtest.yaml): the agent is rung twice, then it ends.
    wait_for(lambda: acd.member(T, member).state == "Abandoned", timeout=20,
             message="the callback given up after its retry")
    legs = obs.legs_of(member)
    assert len(legs) == 2 and all(leg["answered"] for leg in legs), legs
    dials = [d for apps in obs.apps.values() for a, d in apps
             if a == "bridge" and d.endswith(f"sofia/gateway/carrier/{caller}")]
    assert len(dials) == 2
    wait_for(lambda: acd.agent(T, "late").state == "Waiting", timeout=10,
             message="the agent free again")


def test_a_callback_asked_for_through_the_api_is_run_by_a_worker_that_owns_a_node(
        acd_flow) -> None:
    # POST /callbacks queues it with no node (no live channel): a node owner rings the agent,
    # who answers and is put through to the number.
    cluster, obs, acd = acd_flow
    member = "cb-api-request-1"
    acd.enqueue(T, "vip", member, node="", caller=CALLER, callback=CALLER)
    acd.login(T, "late")
    wait_for(lambda: any(leg["answered"] for leg in obs.legs_of(member)), timeout=10,
             message="the agent rung and answered for the callback")
    wait_for(lambda: any(a == "bridge" and d.endswith(f"sofia/gateway/carrier/{CALLER}")
                         for apps in obs.apps.values() for a, d in apps), timeout=10,
             message="the number dialled from the agent's leg")


def test_waiting_callers_hear_how_many_are_ahead_and_the_expected_wait(acd_flow) -> None:
    cluster, obs, acd = acd_flow
    # The queue's recent calls took 2 minutes each (talk + wrap-up); its one agent is busy
    # ringing for the first caller, so the next two wait.
    cluster.r.hset(keys.acd_queue(T, "announced"), mapping={"aht_ms": 120_000, "aht_n": 5})
    first = obs.call("13311110001", "4002220009")
    wait_for(lambda: acd.agent(T, "hold").state == "Receiving", timeout=10,
             message="the agent rung for the first caller")
    second = obs.call("13311110002", "4002220009")
    wait_for(lambda: acd.queue_view(T, "announced").waiting == 1, timeout=10,
             message="the second caller waiting")
    third = obs.call("13311110003", "4002220009")

    def heard(uuid: str) -> list[str]:
        return [d for a, d in obs.apps.get(uuid, []) if a == "playback"
                and d.startswith("file_string://")]

    wait_for(lambda: heard(second) and heard(third), timeout=15,
             message="an announcement to each waiting caller")
    tone = "tone_stream://%(100,0,{})".format
    ahead, wait, minutes = (f"tone_stream://%(200,0,{f})" for f in (700, 720, 730))
    # Second: nobody ahead, served after 1 call: 2 minutes. Third: one ahead, 4 minutes.
    assert heard(second)[0] == "file_string://" + "!".join([wait, tone(2), minutes])
    assert heard(third)[0] == "file_string://" + "!".join(
        [ahead, tone(1), wait, tone(4), minutes])
    for uuid in (first, second, third):
        obs.conn.api(f"uuid_kill {uuid}")


def test_the_agent_hears_the_whisper_before_the_bridge(acd_flow) -> None:
    cluster, obs, acd = acd_flow
    uuid = obs.call(CALLER, "4002220007")
    ended(cluster, obs, uuid)
    leg_uuid = next(u for u, leg in obs.legs.items() if leg["member"] == uuid)
    assert ("playback", "/sounds/whisper_400.wav") in obs.apps[leg_uuid]


def test_a_vip_overtakes_callers_who_waited_longer(acd_flow) -> None:
    cluster, obs, acd = acd_flow
    plain = [obs.call(f"1331111000{i}", "4002220008") for i in range(2)]
    wait_for(lambda: acd.queue_view(T, "vip").waiting == 2, timeout=10, message="two waiting")
    vip = obs.call("13900000001", "4002220008")
    wait_for(lambda: acd.queue_view(T, "vip").waiting == 3, timeout=10, message="VIP waiting")
    assert acd.position(T, vip)[0] == 1
    acd.login(T, "late")
    wait_for(lambda: obs.legs_of(vip), timeout=10, message="the VIP offered first")
    assert not obs.legs_of(plain[0]) and not obs.legs_of(plain[1])
    for uuid in plain:
        obs.conn.api(f"uuid_kill {uuid}")


def test_a_switch_restart_frees_the_queue_and_the_agent_of_calls_it_took_with_it(
        acd_flow) -> None:
    # The switch restarts: its calls vanish with no hang-up event. The waiting caller must
    # leave the queue, the agent in a call must be free again, and both calls leave their
    # summary (the call record), once the worker sees the switch no longer has them.
    from tests.integration.cluster import start_sim

    cluster, obs, acd = acd_flow
    talking = obs.call("13311110001", "4002220007")           # w1 answers, talks 5 s
    wait_for(lambda: acd.agent(T, "w1").state == "In a queue call", timeout=10,
             message="the agent in the call")
    waiting = obs.call("13311110002", "4002220006")           # exits: nobody logged in
    wait_for(lambda: acd.queue_view(T, "exits").waiting == 1, timeout=10,
             message="a caller waiting")
    port = cluster.sim.port
    obs.close()
    cluster.sim.stop()
    cluster.sim = start_sim(cluster.tmp_path, port=port)
    wait_for(lambda: acd.queue_view(T, "exits").waiting == 0, timeout=30,
             message="the vanished caller out of the queue")
    wait_for(lambda: acd.agent(T, "w1").state in ("Waiting", "Idle"), timeout=30,
             message="the agent free again")
    done = cluster_summaries(cluster, T)
    assert talking in done and waiting in done
