"""The greeting flow's state in Redis: claims are idempotent, reconcile resumes the right calls."""

from __future__ import annotations

import redis

from cc_core import callflow, keys
from cc_core.callflow import GREETING_APP_PREFIX, GreetingFlow
from cc_core.calls import now_ms
from esl_handlers.events import Event

UUID = "0c8296cc-d6cc-4ebf-82d6-baa8cb370996"


class RecordingLink:
    """Stands in for a NodeLink: records commands, answers as FreeSWITCH would (or with the
    replies given, e.g. the `-ERR invalid session id [...]` of a channel that is gone)."""

    def __init__(self, sendmsg_reply: str = "+OK") -> None:
        self.sent: list[tuple[str, object]] = []
        self.sendmsg_reply = sendmsg_reply
        self.current_application = "park"

    def api(self, cmd: str, timeout: float | None = None) -> str:
        self.sent.append(("api", cmd))
        if cmd.startswith("uuid_getvar ") and cmd.endswith(" current_application"):
            return self.current_application
        return "+OK\n"

    def sendmsg(self, uuid: str, headers: dict[str, str], timeout: float | None = None) -> str:
        self.sent.append(("sendmsg", headers))
        return self.sendmsg_reply


HANGUP = ("sendmsg", {"call-command": "hangup", "hangup-cause": "NORMAL_CLEARING"})


def _park(dnis: str = "4008001234", direction: str = "inbound") -> Event:
    return Event.from_headers({"Event-Name": "CHANNEL_PARK", "Unique-ID": UUID,
                               "Call-Direction": direction, "Caller-Destination-Number": dnis})


def _flow(redis_url: str, draining: bool = False) -> tuple[GreetingFlow, redis.Redis]:
    r = redis.Redis.from_url(redis_url)
    return GreetingFlow(redis=r, greeting="tone_stream://%(500,0,440)",
                        is_draining=lambda: draining), r


def test_a_replayed_park_is_answered_once(redis_url: str) -> None:
    flow, r = _flow(redis_url)
    link = RecordingLink()
    flow.on_park(_park(), link)
    flow.on_park(_park(), link)  # seen again after a reconnect
    assert [c for c in link.sent if c[0] == "api"] == [("api", f"uuid_answer {UUID}")]
    playback = [c[1] for c in link.sent if c[0] == "sendmsg" and c != HANGUP]
    assert len(playback) == 1 and playback[0]["Event-UUID"] == GREETING_APP_PREFIX + UUID
    assert link.sent.count(HANGUP) == 1
    assert r.hget(keys.call("default", UUID), "stage") == b"hangup"
    assert 0 < r.ttl(keys.call("default", UUID)) <= keys.CALL_TTL_S


def test_non_400_and_outbound_legs_are_left_alone(redis_url: str) -> None:
    flow, _ = _flow(redis_url)
    link = RecordingLink()
    flow.on_park(_park(dnis="1000"), link)
    flow.on_park(_park(direction="outbound"), link)
    assert link.sent == []


def test_a_draining_worker_leaves_new_calls_to_the_next_owner(redis_url: str) -> None:
    flow, r = _flow(redis_url, draining=True)
    link = RecordingLink()
    flow.on_park(_park(), link)
    assert link.sent == [] and not r.exists(keys.call("default", UUID))


def test_the_hangup_is_queued_behind_an_event_locked_greeting(redis_url: str) -> None:
    # The switch, not a worker, ends the call after the greeting: nothing is lost when the
    # greeting's EXECUTE_COMPLETE reaches no owner (see cc_core.callflow's doc).
    flow, r = _flow(redis_url)
    link = RecordingLink()
    flow.on_park(_park(), link)
    assert link.sent == [
        ("api", f"uuid_answer {UUID}"),
        ("sendmsg", {"call-command": "execute", "execute-app-name": "playback",
                     "execute-app-arg": "tone_stream://%(500,0,440)", "event-lock": "true",
                     "Event-UUID": GREETING_APP_PREFIX + UUID}),
        HANGUP]
    assert r.hget(keys.call("default", UUID), "stage") == b"hangup"
    done = Event.from_headers({"Event-Name": "CHANNEL_EXECUTE_COMPLETE", "Unique-ID": UUID,
                               "Answer-State": "answered", "Application-Response": "_none_",
                               "Application-UUID": GREETING_APP_PREFIX + UUID})
    flow.on_execute_complete(done, link)
    assert len(link.sent) == 3, "EXECUTE_COMPLETE sends nothing: the hang-up is queued"
    flow.on_hangup_complete(Event.from_headers({"Event-Name": "CHANNEL_HANGUP_COMPLETE",
                                                "Unique-ID": UUID}), link)
    assert not r.exists(keys.call("default", UUID))


def test_a_caller_gone_before_the_greeting_is_queued_is_left_quietly(redis_url: str) -> None:
    flow, r = _flow(redis_url)
    link = RecordingLink(sendmsg_reply=f"-ERR invalid session id [{UUID}]")
    flow.on_park(_park(), link)      # no exception, no hang-up sent after the refusal
    assert [c[0] for c in link.sent] == ["api", "sendmsg"]
    assert r.hget(keys.call("default", UUID), "stage") == b"answering"


def _seed(r: redis.Redis, uuid: str, stage: str, owner: str = "dead-worker",
          idle_ms: int = 0) -> None:
    """A call record as a worker left it (``cc_core/lua/call_claim.lua`` fields)."""
    r.hset(keys.call("default", uuid), mapping={
        "stage": stage, "owner": owner, "at": now_ms() - idle_ms, "dnis": "4008001234"})


def _row(uuid: str, application: str = "park", callstate: str = "RINGING",
         direction: str = "inbound", dest: str = "4008001234") -> dict[str, str]:
    # The fields of a `show channels as json` row that reconcile reads, as captured
    # (command_replies.json, show_channels_json_parked).
    return {"uuid": uuid, "direction": direction, "dest": dest, "application": application,
            "callstate": callstate, "state": "CS_EXECUTE"}


def test_reconcile_resumes_each_call_from_the_stage_it_reached(redis_url: str) -> None:
    flow, r = _flow(redis_url)
    link = RecordingLink()
    unclaimed, answering, greeting, ending, hanging = (
        f"{i}1111111-2222-3333-4444-555555555555" for i in range(5))
    for uuid, stage in ((answering, "answering"), (greeting, "greeting"), (ending, "hangup"),
                        (hanging, "answering")):
        _seed(r, uuid, stage)     # left by a worker that died (no heartbeat key)
    flow.reconcile("fs1", [
        _row(unclaimed),
        _row(answering, callstate="ACTIVE"),
        _row(greeting, application="playback", callstate="ACTIVE"),
        _row(ending, application="playback", callstate="ACTIVE"),
        _row(hanging, callstate="HANGUP"),
        _row("b-leg", direction="outbound", dest="agent1"),
    ], link)
    answered = [c[1] for c in link.sent if c[0] == "api" and c[1].startswith("uuid_answer")]
    assert answered == [f"uuid_answer {unclaimed}", f"uuid_answer {answering}"]
    # Before resuming "answering" the channel is asked whether its greeting already runs.
    assert ("api", f"uuid_getvar {answering} current_application") in link.sent
    assert link.sent.count(HANGUP) == 3     # unclaimed, answering (whole step), greeting (hang-up)
    assert len([c for c in link.sent if c[0] == "sendmsg" and c != HANGUP]) == 2
    for uuid in (unclaimed, answering, greeting, ending):
        assert r.hget(keys.call("default", uuid), "stage") == b"hangup"
    assert not any("b-leg" in str(c) or hanging in str(c) for c in link.sent)


def test_reconcile_leaves_a_call_whose_step_is_running_here_alone(redis_url: str) -> None:
    # A reconnect of our own link reconciles while a handler of ours still waits for the
    # switch's reply: the step must not run twice.
    flow, r = _flow(redis_url)
    reconciled = RecordingLink()

    class SlowLink(RecordingLink):
        def api(self, cmd: str, timeout: float | None = None) -> str:
            flow.reconcile("fs1", [_row(UUID, callstate="ACTIVE")], reconciled)
            return super().api(cmd, timeout)

    flow.on_park(_park(), SlowLink())
    assert reconciled.sent == []


def test_reconcile_asks_the_channel_when_show_channels_lags_behind_its_park(redis_url) -> None:
    # show channels reads FreeSWITCH's core db, written from a queue after the events: a call
    # parked just before we subscribed can still read application=set there.
    flow, _ = _flow(redis_url)
    link = RecordingLink()
    flow.reconcile("fs1", [_row(UUID, application="set")], link)
    assert link.sent[0] == ("api", f"uuid_getvar {UUID} current_application")
    assert ("api", f"uuid_answer {UUID}") in link.sent

    still_in_dialplan = RecordingLink()
    still_in_dialplan.current_application = "set"
    other = "99999999-2222-3333-4444-555555555555"
    flow.reconcile("fs1", [_row(other, application="set")], still_in_dialplan)
    assert still_in_dialplan.sent == [("api", f"uuid_getvar {other} current_application")]


def test_a_stage_written_after_the_call_ended_does_not_leak(redis_url) -> None:
    # Reconcile runs beside the call's lane: its write may follow HANGUP_COMPLETE's delete.
    flow, r = _flow(redis_url)
    key = keys.call("default", UUID)
    _seed(r, UUID, "greeting")

    class EndingLink(RecordingLink):
        def sendmsg(self, uuid: str, headers: dict[str, str], timeout: float | None = None) -> str:
            flow.on_hangup_complete(Event.from_headers({"Event-Name": "CHANNEL_HANGUP_COMPLETE",
                                                        "Unique-ID": UUID}), self)
            return super().sendmsg(uuid, headers, timeout)

    flow.reconcile("fs1", [_row(UUID, application="playback", callstate="ACTIVE")], EndingLink())
    assert not r.exists(key), "the record of an ended call is not written again"


def test_reconcile_during_the_claim_round_trip_does_not_run_the_step_twice(redis_url) -> None:
    # While the claim script runs the handler waits on Redis; a reconcile that runs then must
    # recognise the step as ours, still running.
    flow, r = _flow(redis_url)
    reconciled = RecordingLink()
    claim = flow.store.claim

    def claim_with_reconcile(*args):
        flow.reconcile("fs1", [_row(UUID)], reconciled)
        return claim(*args)

    flow.store.claim = claim_with_reconcile
    link = RecordingLink()
    flow.on_park(_park(), link)
    assert reconciled.sent == [] and link.sent.count(("api", f"uuid_answer {UUID}")) == 1


# ---- the sweep, takeovers and the standby's memory -------------------------------------------
class Swept:
    """A stand-in for the swept-calls counter: counts per (node, reason)."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, ...], int] = {}

    def labels(self, *values: str) -> Swept:
        self._key = values
        return self

    def inc(self) -> None:
        self.counts[self._key] = self.counts.get(self._key, 0) + 1


def _sweeping_flow(redis_url: str, worker_id: str = "w-me") -> tuple[GreetingFlow, Swept,
                                                                      redis.Redis]:
    r = redis.Redis.from_url(redis_url)
    swept = Swept()
    return GreetingFlow(redis=r, greeting="tone_stream://%(500,0,440)", is_draining=lambda: False,
                        worker_id=worker_id, swept=swept), swept, r


def test_the_sweep_takes_a_parked_call_nobody_claimed_after_its_grace_only(redis_url) -> None:
    flow, swept, r = _sweeping_flow(redis_url)
    link = RecordingLink()
    flow.sweep("fs1", [_row(UUID)], link)
    assert link.sent == [], "a call that just parked is left to its own PARK first"
    flow._unclaimed_since[UUID] -= callflow.SWEEP_GRACE_S   # the grace has passed
    flow.sweep("fs1", [_row(UUID)], link)
    assert ("api", f"uuid_answer {UUID}") in link.sent and link.sent.count(HANGUP) == 1
    assert swept.counts == {("fs1", "unclaimed"): 1}
    # Its PARK arrives late (a slow lane): nothing is answered or played a second time.
    flow.on_park(_park(), link)
    assert link.sent.count(("api", f"uuid_answer {UUID}")) == 1 and link.sent.count(HANGUP) == 1


def test_a_call_whose_park_event_came_first_is_left_alone_by_the_sweep(redis_url) -> None:
    flow, swept, r = _sweeping_flow(redis_url)
    link = RecordingLink()
    flow.on_park(_park(), link)
    before = list(link.sent)
    flow._unclaimed_since[UUID] = 0.0
    flow.sweep("fs1", [_row(UUID, application="playback", callstate="ACTIVE")], link)
    assert link.sent == before and swept.counts == {}


def test_a_live_holder_keeps_its_call_a_dead_or_stalled_one_loses_it(redis_url) -> None:
    from cc_core.calls import STALL_MS
    from esl_handlers import keys as esl_keys

    flow, swept, r = _sweeping_flow(redis_url)
    live, dead, stalled = (f"{i}2222222-2222-3333-4444-555555555555" for i in range(3))
    r.set(esl_keys.worker("w-live"), "1")
    _seed(r, live, "greeting", owner="w-live", idle_ms=1000)
    _seed(r, dead, "greeting", owner="w-dead", idle_ms=1000)
    r.set(esl_keys.worker("w-stuck"), "1")
    _seed(r, stalled, "greeting", owner="w-stuck", idle_ms=STALL_MS + 1000)
    link = RecordingLink()
    rows = [_row(u, application="playback", callstate="ACTIVE") for u in (live, dead, stalled)]
    flow.sweep("fs1", rows, link)
    assert link.sent == [HANGUP, HANGUP], "the dead and the stalled holders' calls"
    assert swept.counts == {("fs1", "stalled"): 2}
    assert r.hget(keys.call("default", live), "owner") == b"w-live"
    assert r.hget(keys.call("default", dead), "owner") == b"w-me"
    assert r.hget(keys.call("default", dead), "stage") == b"hangup"


def test_resuming_a_call_whose_greeting_already_plays_never_plays_it_twice(redis_url) -> None:
    flow, _, r = _sweeping_flow(redis_url)
    _seed(r, UUID, "answering")      # the holder died after the greeting went out
    link = RecordingLink()
    link.current_application = "playback"
    flow.reconcile("fs1", [_row(UUID, callstate="ACTIVE")], link)
    assert link.sent == [("api", f"uuid_getvar {UUID} current_application"), HANGUP]
    assert r.hget(keys.call("default", UUID), "stage") == b"hangup"


def test_a_holder_that_was_taken_over_stops_at_its_next_stage(redis_url) -> None:
    # A worker paused in the middle of a step (SIGSTOP, a stalled VM) wakes after another took
    # the call over: its stage write is refused and it sends nothing more.
    old, _, r = _sweeping_flow(redis_url, worker_id="w-old")
    new, _, _ = _sweeping_flow(redis_url, worker_id="w-new")

    class PausedLink(RecordingLink):
        def api(self, cmd: str, timeout: float | None = None) -> str:
            reply = super().api(cmd, timeout)
            if cmd.startswith("uuid_answer"):
                new.reconcile("fs1", [_row(UUID, callstate="ACTIVE")], taker)
            return reply

    taker = RecordingLink()
    paused = PausedLink()
    old.on_park(_park(), paused)
    # The taker resumed the whole step (the channel was still in park); the old holder's
    # greeting went out before it could know, but its hang-up and stage writes did not.
    assert taker.sent.count(HANGUP) == 1 and paused.sent.count(HANGUP) == 0
    assert r.hget(keys.call("default", UUID), "owner") == b"w-new"


def test_a_park_seen_as_standby_is_taken_when_show_channels_has_not_caught_up(redis_url) -> None:
    flow, _, r = _sweeping_flow(redis_url)
    flow.on_standby_event("fs1", _park())
    link = RecordingLink()
    flow.reconcile("fs1", [], link)      # the core database does not list it yet
    assert link.sent[:2] == [("api", f"uuid_getvar {UUID} current_application"),
                             ("api", f"uuid_answer {UUID}")]
    assert link.sent.count(HANGUP) == 1
    # One that hung up before the takeover is forgotten, not asked about.
    flow.on_standby_event("fs1", _park())
    flow.on_standby_event("fs1", Event.from_headers({
        "Event-Name": "CHANNEL_HANGUP_COMPLETE", "Unique-ID": UUID}))
    later = RecordingLink()
    flow.reconcile("fs1", [], later)
    assert later.sent == []
