"""The 400 call flow end to end: simulator over TCP, real Redis, real worker processes.

The tenant is ``tests/data/tenants/flowtest.yaml``. What a caller experiences is read from the
switch's own events (answered or not, early media, which applications ran, the hang-up cause);
what the flow decided is read from the tenant's finished-calls stream.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from tests.conftest import wait_for
from tests.integration.cluster import (
    FAILOVER_TTL_MS,
    REPO,
    START_TIMEOUT_S,
    Cluster,
    Observer,
    WorkerProc,
)
from tests.integration.cluster import (
    ended as wait_ended,
)
from tests.integration.cluster import (
    summaries as cluster_summaries,
)

pytestmark = pytest.mark.slow

TENANT = REPO / "tests" / "data" / "tenants" / "flowtest.yaml"
IVR = "4001110001"
GREETING_NUMBER = "4001110002"
CALLER = "13311112222"


@pytest.fixture
def flow(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Cluster, Observer]]:
    monkeypatch.setenv("CC_TENANTS", str(TENANT))
    cluster.start_workers(1, ttl_ms=FAILOVER_TTL_MS, app="cc_core.app:build")
    cluster.wait_owner(cluster.workers, timeout=START_TIMEOUT_S)
    obs = Observer(cluster.sim.port)
    for agent, how in (("agent1", "answer 100 400"), ("agent2", "answer 100 400"),
                       ("agent3", "noanswer")):
        assert obs.conn.api(f"sim_endpoint sofia/internal/{agent}@127.0.0.1 {how}").startswith("+OK")
    try:
        yield cluster, obs
    finally:
        obs.close()


def summaries(cluster: Cluster) -> dict[str, dict]:
    return cluster_summaries(cluster, "flowtest")


def ended(cluster: Cluster, obs: Observer, uuid: str, timeout: float = 15) -> dict:
    return wait_ended(cluster, obs, "flowtest", uuid, timeout)


def reading(obs: Observer, uuid: str, n: int, timeout: float = 10) -> str:
    """Wait for the n-th play_and_get_digits on the call; its prompt (Application-Data)."""
    wait_for(lambda: obs.ran(uuid, "play_and_get_digits") >= n, timeout=timeout,
             message=f"menu prompt #{n}")
    return [d for a, d in obs.apps[uuid] if a == "play_and_get_digits"][n - 1]


def press(obs: Observer, uuid: str, digits: str) -> None:
    assert obs.conn.api(f"sim_dtmf {uuid} {digits}") == "+OK\n"


# ---- decisions at the start of a call -----------------------------------------------------------
@pytest.mark.parametrize("dnis", ["4009999999", "4001110005"])
def test_unknown_and_cancelled_numbers_are_rejected_unanswered(flow, dnis: str) -> None:
    cluster, obs = flow
    uuid = obs.call(CALLER, dnis)
    wait_for(lambda: uuid in obs.ended, timeout=10, message="the rejection")
    assert obs.ended[uuid] == "UNALLOCATED_NUMBER"
    assert uuid not in obs.answered and uuid not in obs.early_media


def test_a_suspended_number_announces_in_early_media_and_is_never_answered(flow) -> None:
    cluster, obs = flow
    uuid = obs.call(CALLER, "4001110003")
    summary = ended(cluster, obs, uuid)
    assert obs.ended[uuid] == "NO_USER_RESPONSE"
    assert uuid in obs.early_media and uuid not in obs.answered
    assert obs.ran(uuid, "playback") == 1
    assert summary["outcome"] == "not_in_service"


def test_blacklisted_callers_are_never_answered_nor_queued_under_load(flow) -> None:
    cluster, obs = flow
    callers = ["13900000666", "anonymous"] + [f"170{i:08d}" for i in range(198)]
    blocked = [obs.call(c, IVR) for c in callers]
    allowed = obs.call(CALLER, IVR)
    wait_for(lambda: all(u in obs.ended for u in blocked), timeout=30,
             message="200 blacklisted callers to be rejected")
    assert {obs.ended[u] for u in blocked} == {"CALL_REJECTED"}
    assert not any(u in obs.answered for u in blocked)
    assert not any(obs.ran(u, "bridge") or obs.ran(u, "play_and_get_digits") for u in blocked)
    assert all(u in obs.early_media for u in blocked), "the announcement plays in early media"
    reading(obs, allowed, 1)      # a caller not on the list reaches the menu meanwhile
    outcomes = {summaries(cluster)[u]["outcome"] for u in blocked}
    assert outcomes == {"blacklisted"}


def test_a_vip_caller_carries_the_whitelist_priority(flow) -> None:
    cluster, obs = flow
    vip = obs.call("+8613800138000", IVR)          # the whitelist writes 13800138000
    plain = obs.call(CALLER, IVR)
    for uuid in (vip, plain):
        reading(obs, uuid, 1)
        press(obs, uuid, "9")
    assert ended(cluster, obs, vip)["priority"] == 20
    assert ended(cluster, obs, plain)["priority"] == 0


def test_regional_answering_routes_and_blocks_by_the_callers_region(flow) -> None:
    cluster, obs = flow
    shenzhen = obs.call("075512345678", IVR)   # a Guangdong landline: the south queue
    lhasa = obs.call("13989001234", IVR)       # a Tibet mobile: the region is blocked
    assert ended(cluster, obs, lhasa)["outcome"] == "region_blocked"
    assert obs.ended[lhasa] == "CALL_REJECTED" and lhasa not in obs.answered
    south = ended(cluster, obs, shenzhen, timeout=20)
    assert south["province"] == "广东"
    # The south queue's only agent never answers: past its max wait, the overflow takes the
    # caller to voicemail.
    assert south["outcome"] == "voicemail" and obs.ran(shenzhen, "record") == 1
    path = south["path"]
    assert path.index("queue:south") < path.index("left_queue:timeout") < path.index(
        "voicemail:general"), path


# ---- the IVR --------------------------------------------------------------------------------------
def test_a_three_level_menu_reaches_the_queue_and_an_agent(flow) -> None:
    cluster, obs = flow
    uuid = obs.call(CALLER, IVR)
    assert "440" in reading(obs, uuid, 1)
    assert obs.answered.get(uuid) == 1, "IVR mode: answered before the first prompt"
    press(obs, uuid, "1")
    assert "480" in reading(obs, uuid, 2)
    press(obs, uuid, "2")
    assert "520" in reading(obs, uuid, 3)
    press(obs, uuid, "4")
    summary = ended(cluster, obs, uuid, timeout=20)
    assert summary["path"] == ["menu:main", "key:1", "menu:level2", "key:2", "menu:level3",
                               "key:4", "queue:support"]
    assert summary["outcome"] == "answered_by_agent"
    assert obs.ended[uuid] == "NORMAL_CLEARING" and obs.answered[uuid] == 1


def test_timeout_invalid_back_and_repeat_keys(flow) -> None:
    cluster, obs = flow
    uuid = obs.call(CALLER, IVR)
    reading(obs, uuid, 1)                              # no key: the timeout prompt first
    assert "350" in reading(obs, uuid, 2) and "440" in reading(obs, uuid, 2)
    press(obs, uuid, "7")                              # not an option: the invalid prompt
    assert "300" in reading(obs, uuid, 3)
    press(obs, uuid, "1")
    assert "480" in reading(obs, uuid, 4)
    press(obs, uuid, "*")                              # back to the main menu
    assert "440" in reading(obs, uuid, 5)
    press(obs, uuid, "#")                              # repeat it
    assert "440" in reading(obs, uuid, 6)
    press(obs, uuid, "9")
    summary = ended(cluster, obs, uuid)
    assert summary["path"] == ["menu:main", "timeout", "key:7", "key:1", "menu:level2", "key:*",
                               "menu:main", "key:#", "key:9", "hangup"]
    assert obs.ended[uuid] == "NORMAL_CLEARING"


def test_retries_exhausted_take_the_menu_default(flow) -> None:
    cluster, obs = flow
    uuid = obs.call(CALLER, IVR)
    summary = ended(cluster, obs, uuid, timeout=20)    # never presses a key
    assert obs.ran(uuid, "play_and_get_digits") == 3
    assert summary["path"][-2:] == ["retries_exhausted", "voicemail:general"]
    assert summary["outcome"] == "voicemail" and obs.ran(uuid, "record") == 1


def test_info_returns_to_the_menu_and_collected_digits_reach_the_agent(flow) -> None:
    cluster, obs = flow
    uuid = obs.call(CALLER, IVR)
    reading(obs, uuid, 1)
    press(obs, uuid, "3")                              # information, then back
    reading(obs, uuid, 2)
    assert obs.ran(uuid, "playback") == 1
    press(obs, uuid, "5")                              # collect an order number
    assert "660" in reading(obs, uuid, 3)
    press(obs, uuid, "1234#")
    summary = ended(cluster, obs, uuid, timeout=20)
    assert summary["vars"] == {"order_no": "1234"}
    wait_for(lambda: any(v.get("cc_member") == uuid for v in obs.cc_vars.values()),
             timeout=10, message="the agent leg to end")
    agent_leg = next(v for v in obs.cc_vars.values() if v.get("cc_member") == uuid)
    assert agent_leg["cc_var_order_no"] == "1234"
    assert summary["outcome"] == "answered_by_agent"


def test_greeting_mode_plays_in_early_media_and_answers_with_the_agent(flow) -> None:
    cluster, obs = flow
    uuid = obs.call(CALLER, GREETING_NUMBER)
    wait_for(lambda: obs.ran(uuid, "playback") == 2, timeout=10, message="the queue's music")
    assert uuid in obs.early_media and uuid not in obs.answered
    summary = ended(cluster, obs, uuid, timeout=20)
    assert summary["answer_mode"] == "greeting" and summary["outcome"] == "answered_by_agent"
    # Answered once, when the agent answered: the enterprise pays from there.
    assert obs.answered.get(uuid) == 1


# ---- failover in the middle of a menu ----------------------------------------------------------
def test_a_standby_resumes_a_call_in_the_middle_of_a_menu(cluster: Cluster,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CC_TENANTS", str(TENANT))
    workers = cluster.start_workers(2, ttl_ms=FAILOVER_TTL_MS, app="cc_core.app:build")
    owner: WorkerProc = cluster.wait_owner(workers, timeout=START_TIMEOUT_S)
    standby = next(w for w in workers if w is not owner)
    obs = Observer(cluster.sim.port)
    try:
        assert obs.conn.api("sim_endpoint sofia/internal/agent1@127.0.0.1 answer 100 300") \
            .startswith("+OK")
        uuid = obs.call(CALLER, IVR)
        reading(obs, uuid, 1)
        press(obs, uuid, "1")
        reading(obs, uuid, 2)                          # in level 2 when the owner dies
        os.kill(owner.proc.pid, signal.SIGKILL)
        # The caller keys 2 while no worker watches: the menu ends on the switch with nobody
        # to hear it; the standby reads the result off the channel and goes on from there.
        press(obs, uuid, "2")
        cluster.wait_owner([standby], timeout=FAILOVER_TTL_MS / 1000 + 5)
        assert "520" in reading(obs, uuid, 3, timeout=15)
        press(obs, uuid, "4")
        summary = ended(cluster, obs, uuid, timeout=20)
        assert summary["path"][-4:] == ["key:2", "menu:level3", "key:4", "queue:support"]
        assert obs.answered[uuid] == 1
    finally:
        obs.close()



# ---- configuration applied while calls flow ------------------------------------------------------
def test_a_new_config_version_reaches_running_workers_during_traffic(
        cluster: Cluster, tmp_path) -> None:
    import redis as redis_lib

    from cc_core.tenants.loader import load_path
    from cc_core.tenants.store import TenantStore

    store = TenantStore(redis_lib.Redis.from_url(cluster.redis_url))
    store.apply(load_path(TENANT))
    cluster.start_workers(1, ttl_ms=FAILOVER_TTL_MS, app="cc_core.app:build")   # from Redis
    cluster.wait_owner(cluster.workers, timeout=START_TIMEOUT_S)
    obs = Observer(cluster.sim.port)
    try:
        before = [obs.call(CALLER, "4001110006") for _ in range(5)]   # announce:closed
        changed = TENANT.read_text(encoding="utf-8").replace(
            '"4001110006": {entry: "announce:closed"}', '"4001110006": {entry: "hangup"}')
        assert changed != TENANT.read_text(encoding="utf-8")
        (tmp_path / "flowtest.yaml").write_text(changed, encoding="utf-8")
        version = store.apply(load_path(tmp_path / "flowtest.yaml")).version
        # Within the directory's refresh period (1 s) the worker routes by the new version.
        wait_for(lambda: _routes_to_hangup(cluster, obs), timeout=10,
                 message=f"config version {version} to take effect")
        for uuid in before:
            assert ended(cluster, obs, uuid)["path"] == ["announce:closed"]
        assert cluster.workers[0].alive, "no restart"
    finally:
        obs.close()


def _routes_to_hangup(cluster: Cluster, obs: Observer) -> bool:
    uuid = obs.call(CALLER, "4001110006")
    return ended(cluster, obs, uuid)["path"] == ["hangup"]


# ---- bad input --------------------------------------------------------------------------------
def test_a_dtmf_storm_a_missing_prompt_and_a_caller_gone_mid_step_end_cleanly(flow) -> None:
    cluster, obs = flow
    storm = obs.call(CALLER, IVR)
    reading(obs, storm, 1)
    press(obs, storm, "7*#*#7777777777*#1")          # keys beyond the menu's one digit
    gone = obs.call(CALLER, IVR)
    reading(obs, gone, 1)
    assert obs.conn.api(f"sim_hangup {gone}") == "+OK\n"   # mid-prompt
    wait_for(lambda: storm in obs.ended or obs.ran(storm, "play_and_get_digits") >= 2,
             timeout=10, message="the storm to be read as one key at a time")
    for uuid in (storm, gone):
        obs.conn.api(f"uuid_kill {uuid}")
        ended(cluster, obs, uuid)
    missing = obs.call(CALLER, IVR)
    reading(obs, missing, 1)
    press(obs, missing, "4")                          # information whose file is missing:
    reading(obs, missing, 2)                          # FILE NOT FOUND, back to the menu
    press(obs, missing, "9")
    assert ended(cluster, obs, missing)["path"][-3:] == ["menu:main", "key:9", "hangup"]
    fine = obs.call(CALLER, IVR)                      # the worker still serves every call
    reading(obs, fine, 1)
    press(obs, fine, "9")
    assert ended(cluster, obs, fine)["outcome"] == "hung_up_by_menu"
    assert "Traceback" not in cluster.workers[0].log_tail(200_000)


# ---- what the metrics may say about callers -----------------------------------------------------
def _scrape(worker: WorkerProc) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{worker.port}/metrics", timeout=2) as resp:
        text = resp.read().decode()
    return {(s.name, tuple(sorted(s.labels.items())))
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def _hostile_calls(obs: Observer, start: int, n: int) -> list[str]:
    """Calls from distinct callers whose numbers and SIP names carry label syntax, to the IVR,
    an announcement, a suspended and unknown numbers; each caller hangs up or is ended."""
    numbers = (IVR, "4001110006", "4001110003", "4009999999")
    uuids = []
    for i in range(start, start + n):
        caller = ['"}evil{', "x\\\\y", "%0A#", "嘉兴", "'or'1"][i % 5] + f"{i:011d}"
        extra = f' caller_id_name={{node="x{i}"}}\\n' if i % 2 else ""
        reply = obs.conn.api(f"sim_inbound {caller} {numbers[i % 4]}{extra}")
        assert reply.startswith("+OK "), reply
        uuids.append(reply[4:].strip())
    return uuids


def test_hostile_callers_leave_no_trace_in_metric_labels_and_series_stay_flat(flow) -> None:
    from esl_handlers.event_names import EVENT_NAMES

    cluster, obs = flow
    worker = cluster.workers[0]

    def settle(uuids: list[str]) -> None:
        for u in uuids:
            if u not in obs.ended:
                obs.conn.api(f"sim_hangup {u}")
        wait_for(lambda: all(u in obs.ended for u in uuids), timeout=20,
                 message="every hostile call to end")
        # The worker sees each hang-up after the observer does.
        wait_for(lambda: not [s for s in _scrape(worker) if s[0] == "cccore_calls_in_progress"
                              and dict(s[1]).get("tenant")], timeout=5,
                 message="no call left in progress")

    settle(_hostile_calls(obs, 0, 12))
    first = _scrape(worker)
    settle(_hostile_calls(obs, 12, 36))
    after = _scrape(worker)
    values: dict[str, set[str]] = {}
    for _, labels in after:
        for k, v in labels:
            values.setdefault(k, set()).add(v)
    assert values["node"] == {"fs1"}
    assert values["tenant"] <= {"flowtest", ""}
    assert values["event"] <= set(EVENT_NAMES) | {"other", "unknown"}
    leaked = {v for vs in values.values() for v in vs if any(
        bit in v for bit in ("evil", "嘉兴", "#", "'", "x1", "000000000"))}
    assert not leaked, leaked
    assert ("cccore_calls_started_total", (("tenant", "flowtest"),)) in after
    # Four times the callers, the same series (counters and buckets move, none is added).
    assert after == first, sorted(after ^ first)[:10]
