"""The greeting flow's state in Redis: claims are idempotent, reconcile resumes the right calls."""

from __future__ import annotations

import redis

from cc_core import keys
from cc_core.callflow import GREETING_APP_PREFIX, GreetingFlow
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
        r.hset(keys.call("default", uuid), "stage", stage)
    flow.reconcile("fs1", [
        _row(unclaimed),
        _row(answering, callstate="ACTIVE"),
        _row(greeting, application="playback", callstate="ACTIVE"),
        _row(ending, application="playback", callstate="ACTIVE"),
        _row(hanging, callstate="HANGUP"),
        _row("b-leg", direction="outbound", dest="agent1"),
    ], link)
    answered = [c[1] for c in link.sent if c[0] == "api"]
    assert answered == [f"uuid_answer {unclaimed}", f"uuid_answer {answering}"]
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
    r.hset(key, "stage", "greeting")

    class EndingLink(RecordingLink):
        def sendmsg(self, uuid: str, headers: dict[str, str], timeout: float | None = None) -> str:
            flow.on_hangup_complete(Event.from_headers({"Event-Name": "CHANNEL_HANGUP_COMPLETE",
                                                        "Unique-ID": UUID}), self)
            return super().sendmsg(uuid, headers, timeout)

    flow.reconcile("fs1", [_row(UUID, application="playback", callstate="ACTIVE")], EndingLink())
    assert 0 < r.ttl(key) <= keys.CALL_TTL_S


def test_reconcile_during_the_claim_round_trips_does_not_run_the_step_twice(redis_url) -> None:
    # Between HSETNX and the answer the handler waits on Redis; a reconcile that runs then
    # sees "answering" and must recognise the step as ours, still running.
    flow, r = _flow(redis_url)
    reconciled = RecordingLink()

    class Hooked:
        def __getattr__(self, name: str):
            return getattr(r, name)

        def hset(self, *args, **kwargs):
            if "mapping" in kwargs:    # the claim's second write
                flow.reconcile("fs1", [_row(UUID)], reconciled)
            return r.hset(*args, **kwargs)

    flow.redis = Hooked()
    link = RecordingLink()
    flow.on_park(_park(), link)
    assert reconciled.sent == [] and link.sent.count(("api", f"uuid_answer {UUID}")) == 1
