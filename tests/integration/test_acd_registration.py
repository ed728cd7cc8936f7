"""Registration-aware ACD end to end: an agent whose phone is not registered on the switch is
skipped, not rung. Simulator over TCP (its phones REGISTER with ``sim_register``), real Redis,
a real worker process.

The tenant is ``tests/data/tenants/acdreg.yaml``: queue ``topdown`` offers p1 first, p2 when p1
is not free, so whom a caller's offer rings shows whether p1 counts as registered. The
simulator runs 10x faster than real time so a registration that is not refreshed expires
(sofia's 60 s late margin and 30 s check) within seconds.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from acd.store import Acd
from tests.conftest import wait_for
from tests.integration.cluster import (
    FAILOVER_TTL_MS,
    REPO,
    START_TIMEOUT_S,
    Cluster,
    LegObserver,
    running_cluster,
)
from tests.integration.cluster import ended as wait_ended

pytestmark = pytest.mark.slow

TENANT = REPO / "tests" / "data" / "tenants" / "acdreg.yaml"
T = "acdreg"
CALLER = "13311112222"
TOPDOWN, FLASH, OUTSIDE, FLASH_WHISPER = "4003330001", "4003330002", "4003330003", "4003330004"
TIME_SCALE = "10"
LONG_S = 36_000     # a registration that outlives the test (simulated seconds)


@pytest.fixture
def reg_cluster(tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
                ) -> Iterator[tuple[Cluster, LegObserver, Acd]]:
    monkeypatch.setenv("CC_TENANTS", str(TENANT))
    for cluster in running_cluster(tmp_path, redis_url, "--time-scale", TIME_SCALE):
        obs = LegObserver(cluster.sim.port)
        try:
            for contact, how in (("user/p1@default", "answer 1000 3000"),
                                 ("user/p2@default", "answer 1000 3000"),
                                 ("user/flash@default", "answer 1000 0"),
                                 ("user/steady@default", "answer 1000 30000"),
                                 ("sofia/gateway/carrier/13900009999", "answer 1000 3000"),
                                 (f"sofia/gateway/carrier/{CALLER}", "answer 1000 3000")):
                api(obs, f"sim_endpoint {contact} {how}")
            yield cluster, obs, Acd(cluster.r)
        finally:
            obs.close()


def api(obs: LegObserver, cmd: str) -> str:
    reply = obs.conn.api(cmd)
    assert reply.startswith("+OK"), f"{cmd}: {reply}"
    return reply


def start_worker(cluster: Cluster, acd: Acd) -> None:
    cluster.start_workers(1, ttl_ms=FAILOVER_TTL_MS, app="cc_core.app:build")
    cluster.wait_owner(cluster.workers[-1:], timeout=START_TIMEOUT_S)
    wait_for(lambda: acd.agents(T), timeout=10, message="the worker to sync the tenant's agents")


def registered(acd: Acd, agent: str) -> bool:
    return acd.agent(T, agent).registered


def rung(cluster: Cluster, obs: LegObserver, dnis: str) -> list[str]:
    """Place a call to ``dnis``; the agents its offers rang, in order, once it ended."""
    uuid = obs.call(CALLER, dnis)
    summary = wait_ended(cluster, obs, T, uuid, 30)
    assert summary["outcome"] == "answered_by_agent", summary
    return [leg["agent"] for leg in obs.legs_of(uuid)]


def free(acd: Acd, *agents: str) -> None:
    for agent in agents:
        wait_for(lambda a=agent: acd.agent(T, a).state == "Waiting", timeout=15,  # type: ignore[misc]
                 message=f"{agent} Waiting again")


def test_an_unregistered_phone_is_skipped_until_it_registers_and_again_once_it_goes(
        reg_cluster) -> None:
    cluster, obs, acd = reg_cluster
    api(obs, f"sim_register p2@default {LONG_S}")
    start_worker(cluster, acd)
    # p1's phone never registered: the worker asked the switch, which said so.
    wait_for(lambda: not registered(acd, "p1"), timeout=10, message="p1 known as absent")
    assert rung(cluster, obs, TOPDOWN) == ["p2"]

    # The phone registers: p1 (first in the queue) is offered the next caller.
    api(obs, f"sim_register p1@default {LONG_S}")
    wait_for(lambda: registered(acd, "p1"), timeout=10, message="p1 registered")
    free(acd, "p1", "p2")
    assert rung(cluster, obs, TOPDOWN) == ["p1"]

    # It unregisters (REGISTER with Expires 0): skipped again.
    api(obs, "sim_unregister p1@default")
    wait_for(lambda: not registered(acd, "p1"), timeout=10, message="p1 unregistered")
    free(acd, "p1", "p2")
    assert rung(cluster, obs, TOPDOWN) == ["p2"]

    # It registers for 1 s and is never refreshed: sofia expires it, skipped again.
    api(obs, "sim_register p1@default 1")
    wait_for(lambda: registered(acd, "p1"), timeout=10, message="p1 registered again")
    wait_for(lambda: not registered(acd, "p1"), timeout=30, message="p1's registration expired")
    free(acd, "p1", "p2")
    assert rung(cluster, obs, TOPDOWN) == ["p2"]


def test_a_worker_started_after_the_phone_registered_still_rings_it(reg_cluster) -> None:
    cluster, obs, acd = reg_cluster
    api(obs, f"sim_register p2@default {LONG_S}")
    start_worker(cluster, acd)
    wait_for(lambda: not registered(acd, "p1"), timeout=10, message="p1 known as absent")
    # The worker stops; p1's phone registers while nobody listens; a new worker starts.
    first = cluster.workers[0]
    first.proc.send_signal(signal.SIGTERM)
    first.proc.wait(timeout=30)
    api(obs, f"sim_register p1@default {LONG_S}")
    start_worker(cluster, acd)
    wait_for(lambda: registered(acd, "p1"), timeout=10,
             message="the new worker to find p1's phone registered (sofia_contact)")
    assert rung(cluster, obs, TOPDOWN) == ["p1"]


def test_an_originate_refused_user_not_registered_marks_the_agent_absent(reg_cluster) -> None:
    cluster, obs, acd = reg_cluster
    api(obs, f"sim_register p1@default {LONG_S}")
    api(obs, f"sim_register p2@default {LONG_S}")
    start_worker(cluster, acd)
    wait_for(lambda: registered(acd, "p1") and registered(acd, "p2"), timeout=10,
             message="both phones known as registered")
    # The switch refuses p1 USER_NOT_REGISTERED although no event said the phone went.
    api(obs, "sim_endpoint user/p1@default unregistered")
    uuid = obs.call(CALLER, TOPDOWN)
    assert wait_ended(cluster, obs, T, uuid, 30)["outcome"] == "answered_by_agent"
    legs = obs.legs_of(uuid)
    assert [leg["agent"] for leg in legs] == ["p2"]     # no channel for p1: refused up front
    assert not registered(acd, "p1")
    # p1's not-registered delay is 0: still skipped, because its phone counts as absent.
    free(acd, "p1", "p2")
    assert rung(cluster, obs, TOPDOWN) == ["p2"]
    # The phone registers again (a refresh): p1 is back.
    api(obs, "sim_endpoint user/p1@default answer 1000 3000")
    api(obs, f"sim_register p1@default {LONG_S}")
    wait_for(lambda: registered(acd, "p1"), timeout=10, message="p1 registered again")
    free(acd, "p1", "p2")
    assert rung(cluster, obs, TOPDOWN) == ["p1"]


def test_a_contact_behind_a_gateway_is_rung_without_any_registration(reg_cluster) -> None:
    cluster, obs, acd = reg_cluster
    start_worker(cluster, acd)
    wait_for(lambda: not registered(acd, "p1") and not registered(acd, "p2"), timeout=10,
             message="the worker to resolve the phones")
    assert registered(acd, "mobile")
    assert rung(cluster, obs, OUTSIDE) == ["mobile"]


@pytest.mark.parametrize("dnis", [FLASH, FLASH_WHISPER], ids=["bridge", "whisper"])
def test_an_agent_who_answers_and_hangs_up_at_once_recovers(reg_cluster, dnis: str) -> None:
    cluster, obs, acd = reg_cluster
    api(obs, f"sim_register flash@default {LONG_S}")
    api(obs, f"sim_register steady@default {LONG_S}")
    start_worker(cluster, acd)
    uuid = obs.call(CALLER, dnis)
    summary = wait_ended(cluster, obs, T, uuid, 30)
    # flash's phone answers and hangs up before the bridge: the caller waits again, in its
    # place, and the next agent (flash is wrapping up) takes the call.
    legs = obs.legs_of(uuid)
    assert [(leg["agent"], leg["answered"]) for leg in legs] == [("flash", True),
                                                               ("steady", True)], legs
    assert summary["outcome"] == "answered_by_agent" and summary["agent"] == "steady", summary
    # flash: through wrap-up back to Waiting, not stuck In a queue call; no call counted.
    wait_for(lambda: (acd.agent(T, "flash").status, acd.agent(T, "flash").state)
             == ("Available", "Waiting"), timeout=15, message="flash Waiting after wrap-up")
    assert acd.agent(T, "flash").calls_today == 0
    queue = "flash" if dnis == FLASH else "flashwhisper"
    assert acd.queue_view(T, queue).answered_today == 1


def test_an_agent_whose_phone_never_hangs_up_is_free_again_when_the_caller_does(
        reg_cluster) -> None:
    cluster, obs, acd = reg_cluster
    api(obs, f"sim_register p1@default {LONG_S}")
    api(obs, "sim_endpoint user/p1@default answer 1000")     # never sends BYE by itself
    start_worker(cluster, acd)
    wait_for(lambda: registered(acd, "p1"), timeout=10, message="p1 known as registered")
    uuid = obs.call(CALLER, TOPDOWN)
    wait_for(lambda: uuid in obs.bridged, timeout=15, message="p1 talking to the caller")
    api(obs, f"uuid_kill {uuid} NORMAL_CLEARING")
    summary = wait_ended(cluster, obs, T, uuid, 30)
    assert summary["outcome"] == "answered_by_agent" and summary["agent"] == "p1", summary
    wait_for(lambda: [leg["cause"] for leg in obs.legs_of(uuid)] == ["NORMAL_CLEARING"],
             timeout=10, message="the switch to hang the agent's leg up after the bridge")
    wait_for(lambda: acd.agent(T, "p1").state == "Waiting", timeout=10,
             message="p1 Waiting again")
    assert acd.agent(T, "p1").calls_today == 1
