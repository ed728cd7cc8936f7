"""What a supervisor's dashboard reads from a worker: calls in progress per node and tenant,
new calls per tenant, and a registry whose series stay bounded whatever callers send.

Calls run through the real dispatcher and call machine against real Redis; the switch is a
``RecordingLink`` (tests/redis/test_callflow.py) named like a configured node.
"""

from __future__ import annotations

import random
import time
import uuid as uuid_mod
from types import SimpleNamespace

import redis
from prometheus_client import CollectorRegistry

from cc_core.flow.decide import Decider
from cc_core.flow.hangup import CallSummaryStream, ForgetLiveRecord, HangupPipeline
from cc_core.flow.machine import OUTCOMES, CallMachine
from cc_core.flow.record import CallStore
from cc_core.routing.region import RegionDirectory
from cc_core.tenants.model import Tenant
from cc_core.tenants.static import StaticTenants
from esl_handlers.dispatch import Dispatcher
from esl_handlers.event_names import EVENT_NAMES
from esl_handlers.events import Event
from metrics.callflow import CallFlowMetrics
from metrics.esl import EslMetrics
from tests.esl.peer import gwait
from tests.redis.test_callflow import RecordingLink, _seed

PROMPT = "tone_stream://%(500,0,440)"
# t1 holds its callers in a menu (the call stays in progress); t2 announces and hangs up.
TENANTS = [
    Tenant.model_validate({
        "tenant": "t1", "entry": "menu:main", "numbers": {"4008001234": {}},
        "prompts": {"menu": PROMPT, "bye": PROMPT},
        "menus": {"main": {"prompt": "menu", "options": {"1": "announce:bye"}}}}),
    Tenant.model_validate({
        "tenant": "t2", "entry": "announce:hello", "numbers": {"4008005678": {}},
        "prompts": {"hello": PROMPT}}),
]
NODE = "fs1"
# What each label may take: configuration, FreeSWITCH's list, the flow's own words.
BOUNDED = {
    "node": {NODE},
    "tenant": {"t1", "t2", ""},
    "event": set(EVENT_NAMES) | {"other", "unknown"},
    "outcome": OUTCOMES | {"other"},
    "reason": {"unclaimed", "stalled", "lapsed", "other_owner", "stale_token", "margin",
               "released", "link_down", "timeout", "connection_lost", "unknown"},
    "result": {"ok", "error"},
    "command": {"uuid_answer", "uuid_kill", "uuid_getvar", "uuid_setvar", "sendmsg", "other"},
    "le": None,     # a histogram's own bucket bounds
}


class NodeLink(RecordingLink):
    """A recording switch that, like a NodeLink, knows its configured node name."""

    node = SimpleNamespace(name=NODE)


class Worker:
    """The call flow of one worker process, wired as cc_core.app.build wires it."""

    def __init__(self, redis_url: str, worker_id: str = "w-me") -> None:
        self.registry = CollectorRegistry()
        self.owns = True
        esl = EslMetrics(self.registry)
        flow = CallFlowMetrics(self.registry)
        store = CallStore(redis.Redis.from_url(redis_url), worker_id)
        self.machine = CallMachine(
            store=store, decider=Decider(StaticTenants(TENANTS), RegionDirectory()),
            hangups=HangupPipeline([CallSummaryStream(store.redis)], ForgetLiveRecord(store)),
            is_draining=lambda: False, may_act=lambda link: self.owns, swept=flow.swept,
            outcomes=flow.outcomes, setup=flow.setup, started=flow.started)
        flow.watch_live_calls(self.machine.live_calls)
        self.dispatcher = Dispatcher(queue_size=1000, pool_size=8, metrics=esl)
        self.machine.register(self.dispatcher)
        self.link = NodeLink()

    def value(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    def in_progress(self) -> dict[tuple[str, str], float]:
        return {(s.labels["node"], s.labels["tenant"]): s.value
                for fam in self.registry.collect() for s in fam.samples
                if s.name == "cccore_calls_in_progress"}

    def submit(self, headers: dict[str, str]) -> None:
        event = Event.from_headers(headers)
        event.received_at = time.monotonic()    # as the connection stamps what it reads
        self.dispatcher.submit(event, self.link)

    def settle(self) -> None:
        gwait(lambda: self.dispatcher.depth == 0, message="dispatcher drained")


def _park(uuid: str, dnis: str, caller: str = "13311112222", name: str = "") -> dict[str, str]:
    return {"Event-Name": "CHANNEL_PARK", "Unique-ID": uuid, "Call-Direction": "inbound",
            "Caller-Destination-Number": dnis, "Caller-Caller-ID-Number": caller,
            "Caller-Caller-ID-Name": name}


def _hangup(uuid: str) -> dict[str, str]:
    return {"Event-Name": "CHANNEL_HANGUP_COMPLETE", "Unique-ID": uuid,
            "Hangup-Cause": "NORMAL_CLEARING"}


def test_calls_in_progress_follow_claims_hangups_and_a_lost_node(redis_url) -> None:
    w = Worker(redis_url)
    calls = [str(uuid_mod.uuid4()) for _ in range(3)]
    for c in calls:
        w.submit(_park(c, "4008001234"))
    w.submit(_park(calls[0], "4008001234"))       # replayed after a reconnect: not new
    w.settle()
    assert w.in_progress() == {(NODE, "t1"): 3}
    assert w.value("cccore_calls_started_total", tenant="t1") == 3
    w.submit(_hangup(calls[0]))
    w.settle()
    assert w.in_progress() == {(NODE, "t1"): 2}
    assert w.value("cccore_calls_total", tenant="t1", outcome="caller_hung_up") == 1
    # The lease is lost: the calls are the next owner's from now, before any event says so.
    w.owns = False
    assert w.in_progress() == {}
    w.dispatcher.stop(1)


def test_after_a_failover_the_new_owner_counts_the_calls_it_resumed_and_none_as_new(
        redis_url) -> None:
    old, new = Worker(redis_url, "w-old"), Worker(redis_url, "w-new")
    calls = [str(uuid_mod.uuid4()) for _ in range(2)]
    for c in calls:
        old.submit(_park(c, "4008001234"))
    old.settle()
    old.owns = False        # w-old stops (no heartbeat key: not alive); w-new reconciles
    rows = [{"uuid": c, "direction": "inbound", "dest": "4008001234", "cid_num": "1",
             "application": "play_and_get_digits", "callstate": "ACTIVE"} for c in calls]
    new.link.variables["current_application"] = "play_and_get_digits"
    new.machine.reconcile(NODE, rows, new.link)
    assert new.in_progress() == {(NODE, "t1"): 2} and old.in_progress() == {}
    assert new.value("cccore_calls_started_total", tenant="t1") == 0, "resumed, not new"
    assert old.value("cccore_calls_started_total", tenant="t1") == 2
    # Their ends reach the old owner only as a standby: it forgets them for good.
    for c in calls:
        old.machine.on_standby_event(NODE, Event.from_headers(_hangup(c)))
    old.owns = True         # owning the node again later must not revive them
    assert old.in_progress() == {}
    old.dispatcher.stop(1)
    new.dispatcher.stop(1)


def test_every_outcome_the_flow_records_is_a_label_value_it_declares() -> None:
    # A new outcome missing from OUTCOMES would show on dashboards as "other".
    import inspect
    import re

    from cc_core.flow import machine

    written = set(re.findall(r'outcome = (?:\(?"(\w+)"|call\.data\.outcome or "(\w+)")',
                             inspect.getsource(machine)))
    found = {a or b for a, b in written} | set(re.findall(
        r'else "(\w+)"\)?\n', inspect.getsource(machine.CallMachine.on_hangup_complete)))
    assert found and found <= OUTCOMES, found - OUTCOMES


def test_an_outcome_from_a_record_another_version_wrote_is_counted_as_other(redis_url) -> None:
    w = Worker(redis_url)
    uuid = str(uuid_mod.uuid4())
    _seed(redis.Redis.from_url(redis_url), uuid, "menu", outcome="newer_version_outcome",
          menu_stack=["main"], pending=f"menu.1.{uuid}", pending_var="cc_in_1")
    w.link.variables["current_application"] = "play_and_get_digits"
    w.machine.reconcile(NODE, [{"uuid": uuid, "direction": "inbound", "dest": "4008001234",
                                "application": "play_and_get_digits", "callstate": "ACTIVE"}],
                        w.link)
    assert w.in_progress() == {(NODE, "t1"): 1}
    w.submit(_hangup(uuid))
    w.settle()
    assert w.value("cccore_calls_total", tenant="t1", outcome="other") == 1
    w.dispatcher.stop(1)


def test_calls_that_ended_under_another_owner_are_not_counted_when_the_node_comes_back(
        redis_url) -> None:
    a, b = Worker(redis_url, "w-a"), Worker(redis_url, "w-b")
    ended, fresh = str(uuid_mod.uuid4()), str(uuid_mod.uuid4())
    a.submit(_park(ended, "4008001234"))
    a.settle()
    a.owns = False          # a's link to the node drops: it hears nothing more of it
    b.link.variables["current_application"] = "play_and_get_digits"
    b.machine.reconcile(NODE, [{"uuid": ended, "direction": "inbound", "dest": "4008001234",
                                "application": "play_and_get_digits", "callstate": "ACTIVE"}],
                        b.link)
    b.submit(_hangup(ended))    # the caller hangs up while b owns the node
    b.settle()
    assert b.in_progress() == {}
    a.owns = True           # b dies; a owns the node again and takes a new call at once
    a.submit(_park(fresh, "4008001234"))
    a.settle()
    assert a.in_progress() == {(NODE, "t1"): 2}, "a ghost until the switch is asked"
    a.machine.reconcile(NODE, [], a.link)   # show channels lists neither yet
    assert a.in_progress() == {(NODE, "t1"): 1}, "the ghost goes, the fresh call stays"
    a.dispatcher.stop(1)
    b.dispatcher.stop(1)


_HOSTILE = ['"} 1\ncccore_pwned 1', "{node=\"x\"}", "\\", "嘉兴市", "%0A%00", "'; DROP",
            "+8613" + "9" * 40, "", "anonymous", "\u202e4008001234"]


def _drive(w: Worker, rng: random.Random, n: int) -> None:
    """``n`` calls from distinct, hostile caller numbers and names, to known, unknown and
    malformed numbers; half hang up, half stay; now and then a broken peer's events."""
    for i in range(n):
        c = str(uuid_mod.uuid4())
        caller = rng.choice(_HOSTILE) + str(rng.randrange(10**12))
        name = rng.choice(_HOSTILE) + uuid_mod.uuid4().hex
        dnis = rng.choice(["4008001234", "4008005678", f"400{rng.randrange(10**7):07d}",
                           "4008001234\n", rng.choice(_HOSTILE)])
        w.submit(_park(c, dnis, caller, name))
        w.submit({"Event-Name": "CHANNEL_EXECUTE_COMPLETE", "Unique-ID": c,
                  "Application-UUID": f"menu.1.{c}", "variable_cc_in_1": caller[:1]})
        if i % 2:
            w.submit(_hangup(c))
        if i % 7 == 0:
            w.submit({"Event-Name": "CUSTOM", "Event-Subclass": "x::" + caller, "Unique-ID": c})
            w.submit({"Event-Name": "CHANNEL_" + uuid_mod.uuid4().hex.upper()})
    w.settle()


def _series(w: Worker) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    return {(s.name, tuple(sorted(s.labels.items())))
            for fam in w.registry.collect() for s in fam.samples}


def test_no_label_takes_a_value_a_caller_controls_and_series_stay_flat(redis_url) -> None:
    w = Worker(redis_url)
    rng = random.Random(10)
    _drive(w, rng, 60)
    first = _series(w)
    _drive(w, rng, 240)
    after = _series(w)
    assert w.value("cccore_esl_events_total", node=NODE, event="CHANNEL_PARK") == 300
    assert sum(v for (_, t), v in w.in_progress().items() if t) > 0
    # Every label value is from a bounded set.
    for name, labels in after:
        for key, value in labels:
            assert key in BOUNDED, f"{name} has an unexpected label {key}"
            allowed = BOUNDED[key]
            assert allowed is None or value in allowed, f"{name}{{{key}={value!r}}}"
    # 4x the calls, the same series: nothing grows with traffic.
    assert after == first, sorted(after ^ first)[:10]
    w.dispatcher.stop(1)

