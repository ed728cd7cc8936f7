"""Live credit control through the simulator: a worker (``cc_core.app:build``) hard-stops a
tenant's concurrent billed calls when their shared credit runs out (``sched_hangup``), moves
the stop when a top-up lands, and refuses new calls with the no-credit announcement.

The credit view is published here as the rating consumer publishes it after a SQL commit
(``billing.credit.CreditView.publish``); the consumer's side is in tests/billing/."""

from __future__ import annotations

from pathlib import Path

import pytest

from billing.credit import CreditView, spend
from tests.conftest import wait_for
from tests.integration.cluster import (
    FAILOVER_TTL_MS,
    START_TIMEOUT_S,
    Cluster,
    LegObserver,
    Observer,
    summaries,
)

pytestmark = pytest.mark.slow

TENANT = "default"
RATE = 60              # fen per minute: 6 fen an increment of 6 s
NO_CREDIT = "silence_stream://300"


def _tenant(tmp_path: Path) -> Path:
    path = tmp_path / "credit-tenant.yaml"
    path.write_text(
        f"tenant: {TENANT}\n"
        "entry: announce:long\n"
        "numbers: {'4008001234': {}}\n"
        f"prompts: {{long: 'silence_stream://120000', no_credit: '{NO_CREDIT}'}}\n",
        encoding="utf-8")
    return path


def _publish(view: CreditView, seq: int, balance: int, tenant: str = TENANT) -> None:
    view.publish(tenant, {"seq": seq, "balance_fen": balance, "included_left_s": 0,
                          "increment_s": 6, "rate_mobile": RATE, "rate_landline": RATE,
                          "low_credit_fen": 0}, [])


def _start(cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Observer:
    monkeypatch.setenv("CC_TENANTS", str(_tenant(tmp_path)))
    cluster.start_workers(1, ttl_ms=FAILOVER_TTL_MS, app="cc_core.app:build")
    cluster.wait_owner(cluster.workers, timeout=START_TIMEOUT_S)
    return Observer(cluster.sim.port)


def test_concurrent_calls_stop_when_their_shared_credit_runs_out_and_new_ones_are_refused(
        cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    view = CreditView(cluster.r)
    balance = 20          # three calls: one increment each (18 fen) fits, the second does not
    _publish(view, 1, balance)
    obs = _start(cluster, tmp_path, monkeypatch)
    try:
        calls = [obs.call(f"1331111222{i}") for i in range(3)]
        wait_for(lambda: all(u in obs.ended for u in calls), timeout=30,
                 message="the three calls to be stopped")
        assert [obs.ended[u] for u in calls] == ["ALLOTTED_TIMEOUT"] * 3
        # the worker marks each reservation ended once it hears the hang-up
        wait_for(lambda: (c := view.read(TENANT)) is not None and set(c.live) == set(calls)
                 and all(x.end_ms for x in c.live.values()), timeout=10,
                 message="the three reservations marked ended")
        credit = view.read(TENANT)
        assert credit is not None
        spent, _ = spend(credit, 2**62)
        # never below zero by more than one increment of one call
        assert spent - balance <= 6
        # credit gone: a new call hears the announcement unanswered and is not connected
        late = obs.call("13311112229")
        wait_for(lambda: late in obs.ended, timeout=20, message="the refused call to end")
        assert obs.ended[late] == "CALL_REJECTED"
        assert ("playback", NO_CREDIT) in obs.apps[late]
        assert late not in obs.answered and late in obs.early_media
    finally:
        obs.close()


def test_a_top_up_moves_the_hard_stop_of_a_running_call(
        cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    view = CreditView(cluster.r)
    _publish(view, 1, 6)                    # one increment: stopped within 6 s
    obs = _start(cluster, tmp_path, monkeypatch)
    try:
        uuid = obs.call("13311113333")
        wait_for(lambda: uuid in obs.answered, timeout=10, message="the call to be answered")
        _publish(view, 2, 100_000)          # the top-up lands (as `billing topup` publishes)
        # past the first stop, still talking: the stop was taken back
        for _ in range(2):
            with pytest.raises(AssertionError):
                wait_for(lambda: uuid in obs.ended, timeout=4.5, message="no stop")
        assert uuid not in obs.ended
        obs.conn.api(f"uuid_kill {uuid}")
        wait_for(lambda: uuid in obs.ended, timeout=10, message="the call to end")
    finally:
        obs.close()


GREETING = "greet"
AGENTS = ("g1", "g2", "g3")
AGENT_ANSWER_MS = 2500     # the callers hear the greeting and wait this long, not billed


def _greeting_tenant(tmp_path: Path) -> Path:
    path = tmp_path / "greeting-credit-tenant.yaml"
    agents = "".join(f"  {a}: {{contact: 'sofia/internal/{a}@127.0.0.1', status: Available, "
                     "wrap_up_s: 0}\n" for a in AGENTS)
    path.write_text(
        f"tenant: {GREETING}\n"
        "answer_mode: greeting\n"
        "entry: queue:sales\n"
        "numbers: {'4008001234': {}}\n"
        "greeting: [ring]\n"
        f"prompts: {{ring: 'silence_stream://200', no_credit: '{NO_CREDIT}'}}\n"
        f"agents:\n{agents}"
        "queues:\n"
        f"  sales: {{tiers: [{', '.join(f'{{agent: {a}}}' for a in AGENTS)}], "
        "ring_timeout_s: 10}\n", encoding="utf-8")
    return path


def test_greeting_mode_bills_and_hard_stops_from_the_agents_answer(
        cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Greeting mode: the callers are in early media until an agent answers, and only then
    does billing start, so each reservation and the shared hard stop count from the agent's
    answer; three concurrent calls of one tenant are all stopped, the credit overdrawn by at
    most one increment per call, and a new call is refused."""
    view = CreditView(cluster.r)
    balance = 20          # one increment of each of the three calls (18 fen), not two
    _publish(view, 1, balance, GREETING)
    monkeypatch.setenv("CC_TENANTS", str(_greeting_tenant(tmp_path)))
    cluster.start_workers(1, ttl_ms=FAILOVER_TTL_MS, app="cc_core.app:build")
    cluster.wait_owner(cluster.workers, timeout=START_TIMEOUT_S)
    obs = LegObserver(cluster.sim.port)
    try:
        for agent in AGENTS:     # answer after a while, then talk until the switch ends it
            assert obs.conn.api(f"sim_endpoint sofia/internal/{agent}@127.0.0.1 answer "
                                f"{AGENT_ANSWER_MS}").startswith("+OK")
        calls = [obs.call(f"1331111222{i}") for i in range(3)]
        wait_for(lambda: all(u in obs.ended for u in calls), timeout=40,
                 message="the three calls to be stopped")
        assert [obs.ended[u] for u in calls] == ["ALLOTTED_TIMEOUT"] * 3
        assert all(u in obs.early_media for u in calls)
        wait_for(lambda: (c := view.read(GREETING)) is not None and set(c.live) == set(calls)
                 and all(x.end_ms for x in c.live.values()), timeout=10,
                 message="the three reservations marked ended")
        credit = view.read(GREETING)
        assert credit is not None
        done = summaries(cluster, GREETING)
        for uuid in calls:
            legs = [leg for leg in obs.legs_of(uuid) if leg["answered"]]
            assert len(legs) == 1, obs.legs_of(uuid)
            agent_answer_ms = legs[0]["answer_us"] // 1000
            reserved = credit.live[uuid]
            # billing started at the agent's answer, not when the caller arrived
            assert reserved.start_ms >= agent_answer_ms
            assert reserved.start_ms - done[uuid]["start_ms"] >= AGENT_ANSWER_MS
            assert done[uuid]["answer_mode"] == "greeting"
        spent, _ = spend(credit, 2**62)
        # stopped once one more increment of every call would not fit, not sooner ...
        assert spent + 6 * len(calls) > balance
        # ... and never below zero by more than one increment per call
        assert spent - balance <= 6 * len(calls)
        late = obs.call("13311112229")
        wait_for(lambda: late in obs.ended, timeout=20, message="the refused call to end")
        assert obs.ended[late] == "CALL_REJECTED"
        assert ("playback", NO_CREDIT) in obs.apps[late] and late not in obs.answered
    finally:
        obs.close()
