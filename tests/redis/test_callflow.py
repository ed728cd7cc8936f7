"""The greeting flow's state in Redis: claims are idempotent, reconcile resumes the right calls."""

from __future__ import annotations

import redis

from cc_core import keys
from cc_core.callflow import GREETING_APP_PREFIX, GreetingFlow
from esl_handlers.events import Event

UUID = "0c8296cc-d6cc-4ebf-82d6-baa8cb370996"


class RecordingLink:
    """Stands in for a NodeLink: records commands, answers as FreeSWITCH would."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, object]] = []

    def api(self, cmd: str, timeout: float | None = None) -> str:
        self.sent.append(("api", cmd))
        return "+OK\n"

    def sendmsg(self, uuid: str, headers: dict[str, str], timeout: float | None = None) -> str:
        self.sent.append(("sendmsg", headers))
        return "+OK"


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
    playback = [c[1] for c in link.sent if c[0] == "sendmsg"]
    assert len(playback) == 1 and playback[0]["Event-UUID"] == GREETING_APP_PREFIX + UUID
    assert r.hget(keys.call("default", UUID), "stage") == b"greeting"
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


def test_greeting_end_hangs_up_and_hangup_complete_forgets_the_call(redis_url: str) -> None:
    flow, r = _flow(redis_url)
    link = RecordingLink()
    flow.on_park(_park(), link)
    done = Event.from_headers({"Event-Name": "CHANNEL_EXECUTE_COMPLETE", "Unique-ID": UUID,
                               "Answer-State": "answered",
                               "Application-UUID": GREETING_APP_PREFIX + UUID})
    flow.on_execute_complete(done, link)
    assert link.sent[-1] == ("sendmsg", {"call-command": "hangup",
                                         "hangup-cause": "NORMAL_CLEARING"})
    flow.on_hangup_complete(Event.from_headers({"Event-Name": "CHANNEL_HANGUP_COMPLETE",
                                                "Unique-ID": UUID}), link)
    assert not r.exists(keys.call("default", UUID))


def test_reconcile_starts_unclaimed_parked_calls_and_ends_interrupted_greetings(redis_url) -> None:
    flow, r = _flow(redis_url)
    link = RecordingLink()
    interrupted = "11111111-2222-3333-4444-555555555555"
    r.hset(keys.call("default", interrupted), "stage", "greeting")
    channels = [
        {"uuid": UUID, "direction": "inbound", "dest": "4008001234", "application": "park"},
        {"uuid": interrupted, "direction": "inbound", "dest": "4008001234",
         "application": "park"},
        {"uuid": "b-leg", "direction": "outbound", "dest": "agent1", "application": "park"},
    ]
    flow.reconcile("fs1", channels, link)
    assert ("api", f"uuid_answer {UUID}") in link.sent
    assert ("sendmsg", {"call-command": "hangup", "hangup-cause": "NORMAL_CLEARING"}) in link.sent
    assert not any("b-leg" in str(c) for c in link.sent)
