"""A new owner resumes a call from each stage a dead owner can leave in Redis.

For each state the call machine stores (``cc_core/flow/record.py``: state, holder, data), the
test plays the dead owner itself: it places a parked 400 call on the simulator, does on the
switch what that owner had done by then, writes the stage as the owner would have left it,
and only then starts a worker, which takes the node and reconciles from ``show channels``.
What is asserted is what the caller experiences, read from the simulator's own events (with
tests/capreader.py, not the product's parser):

* the call is answered exactly once;
* the greeting is played exactly once, to its end (its EXECUTE_COMPLETE before the hang-up);
* the switch ends the call with NORMAL_CLEARING (the queued hang-up: nobody kills it);
* the worker's reconcile (its ``show channels`` API event) happened while the call was up,
  so a stage left behind is really seen by the new owner.

States a dead owner of an announcement (``entry: announce:greeting``) can leave: ``None``
nothing stored (PARK never handled); ``new`` claimed, nothing sent, or answered only;
``announcing`` saved before its prompt was sent, after it was sent, and with the hang-up
queued behind it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from cc_core import keys
from cc_core.flow.record import CallData, now_ms
from tests.capreader import CapEvent
from tests.capreader import events as read_events
from tests.conftest import wait_for
from tests.integration.cluster import FAILOVER_TTL_MS, START_TIMEOUT_S, Cluster, greeting_tenant
from tests.sim.simclient import SimClient

pytestmark = pytest.mark.slow

# A greeting long enough to outlast a worker's start on a loaded 2-core machine, so the
# reconcile meets the call still up (asserted, not assumed).
GREETING_MS = 4000
GREETING = f"tone_stream://%({GREETING_MS},0,440);loops=1"
# what the dead owner had done on the switch by the time it stored each stage
STAGES = {
    None: (None, ()),
    "new": ("new", ()),
    "new-answered": ("new", ("answer",)),
    "announcing": ("announcing", ("answer",)),
    "announcing-playing": ("announcing", ("answer", "greeting")),
    "announcing-queued": ("announcing", ("answer", "greeting", "hangup")),
}


def seed(r: redis.Redis, uuid: str, state: str, answered: bool) -> None:
    """The record as the dead owner left it (a holder with no heartbeat key)."""
    data = CallData(tenant="default", dnis="4008001234", dest="announce:greeting",
                    path=["announce:greeting"], answered=answered,
                    hangup_cause="NORMAL_CLEARING" if state == "announcing" else "")
    r.hset(keys.call("default", uuid), mapping={
        "state": state, "owner": "w-dead", "at": now_ms(), "data": data.pack()})


def owner_did(client: SimClient, uuid: str, step: str) -> None:
    """What the dead owner sent (its own texts, as cc-core sends them on the wire)."""
    if step == "answer":
        assert client.api(f"uuid_answer {uuid}") == "+OK\n"
    elif step == "greeting":
        frame = client.send(f"sendmsg {uuid}\ncall-command: execute\n"
                            f"execute-app-name: playback\nexecute-app-arg: {GREETING}\n"
                            "event-lock: true")
        assert frame.get("Reply-Text") == "+OK"
    elif step == "hangup":
        frame = client.send(f"sendmsg {uuid}\ncall-command: hangup\n"
                            "hangup-cause: NORMAL_CLEARING")
        assert frame.get("Reply-Text") == "+OK"


def of_call(evs: list[CapEvent], uuid: str, name: str, **headers: str) -> list[int]:
    return [i for i, e in enumerate(evs) if e.unique_id == uuid and e.name == name
            and all(e.get(k.replace("_", "-")) == v for k, v in headers.items())]


@pytest.mark.parametrize("stage", list(STAGES), ids=lambda s: s or "none")
def test_a_new_owner_finishes_the_call_from_each_stage(
        stage: str | None, cluster: Cluster, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    monkeypatch.setenv("CC_TENANTS", str(greeting_tenant(tmp_path, GREETING)))
    state, steps = STAGES[stage]
    r = redis.Redis.from_url(cluster.redis_url, socket_timeout=2)
    with SimClient(cluster.sim.host, cluster.sim.port) as client:
        reply = client.api("sim_inbound 13800000009 4008001234")
        assert reply.startswith("+OK "), reply
        uuid = reply.split()[1]
        client.wait_event(uuid, "CHANNEL_PARK")
        for step in steps:
            owner_did(client, uuid, step)
        if state is not None:
            seed(r, uuid, state, answered="answer" in steps)

        workers = cluster.start_workers(1, ttl_ms=FAILOVER_TTL_MS, app="cc_core.app:build")
        cluster.wait_owner(workers, timeout=START_TIMEOUT_S)
        ended = client.wait(
            lambda: any(e.name == "CHANNEL_DESTROY" and e.unique_id == uuid
                        for e in client.events), GREETING_MS / 1000 + 15)
        assert ended, f"the call never ended (stage {stage})"
        evs = read_events(bytes(client.received))

    shows = [i for i, e in enumerate(evs) if e.name == "API" and e.get("API-Command") == "show"]
    hangup = of_call(evs, uuid, "CHANNEL_HANGUP")
    assert shows and hangup and shows[0] < hangup[0], \
        "the worker reconciled after the call had ended: this run proves nothing"
    assert len(of_call(evs, uuid, "CHANNEL_ANSWER")) == 1
    played = of_call(evs, uuid, "CHANNEL_EXECUTE", Application="playback")
    assert len(played) == 1, f"greeting played {len(played)} times"
    complete = of_call(evs, uuid, "CHANNEL_EXECUTE_COMPLETE", Application="playback")
    assert len(complete) == 1 and complete[0] < hangup[0]
    assert evs[complete[0]].get("Application-Response") == "FILE PLAYED"
    assert evs[hangup[0]].get("Hangup-Cause") == "NORMAL_CLEARING"
    kills = [e for e in evs if e.name == "API" and e.get("API-Command") in ("uuid_kill", "hupall")]
    assert not kills, "the call was killed, not ended by the queued hang-up"
    wait_for(lambda: not r.exists(keys.call("default", uuid)), timeout=5,
             message="the call's state to be cleared after its end")
