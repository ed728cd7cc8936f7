"""The call machine's records in Redis: claims are idempotent, takeovers and the sweep resume
the right calls from the right step, and nothing runs twice.

The switch is a ``RecordingLink`` that records commands and answers as FreeSWITCH does; the
tenant announces a greeting and hangs up (``entry: announce:greeting``), or runs a menu.
"""

from __future__ import annotations

from collections.abc import Callable

import msgpack
import redis

from cc_core import keys
from cc_core.flow import machine as flow_machine
from cc_core.flow.decide import Decider
from cc_core.flow.hangup import CallSummaryStream, ForgetLiveRecord, HangupPipeline
from cc_core.flow.machine import CallMachine
from cc_core.flow.record import STALL_MS, CallData, CallState, CallStore, now_ms
from cc_core.routing.region import RegionDirectory
from cc_core.tenants.model import Tenant
from cc_core.tenants.static import StaticTenants
from esl_handlers import keys as esl_keys
from esl_handlers.events import Event

UUID = "0c8296cc-d6cc-4ebf-82d6-baa8cb370996"
GREETING = "tone_stream://%(500,0,440)"
TENANT = Tenant.model_validate({
    "tenant": "t1", "entry": "announce:greeting", "numbers": {"4008001234": {}},
    "prompts": {"greeting": GREETING, "menu": "tone_stream://%(300,0,480)"},
    "menus": {"main": {"prompt": "menu", "options": {"1": "announce:greeting"}}}})
_REGIONS = RegionDirectory()


class RecordingLink:
    """Stands in for a NodeLink: records commands, answers as FreeSWITCH would."""

    class node:  # noqa: N801 - read as link.node.name, like NodeLink
        name = "fs1"

    def __init__(self, sendmsg_reply: str = "+OK") -> None:
        self.sent: list[tuple[str, object]] = []
        self.sendmsg_reply = sendmsg_reply
        self.variables = {"current_application": "park"}
        self.per_call: dict[str, dict[str, str]] = {}

    def api(self, cmd: str, timeout: float | None = None) -> str:
        self.sent.append(("api", cmd))
        if cmd.startswith("uuid_getvar "):
            # uuid_getvar answers the bare value, or _undef_ (command_replies.json).
            _, uuid, name = cmd.split()
            return self.per_call.get(uuid, {}).get(name) or self.variables.get(name, "_undef_")
        return "+OK\n"

    def sendmsg(self, uuid: str, headers: dict[str, str], timeout: float | None = None) -> str:
        self.sent.append(("sendmsg", headers))
        return self.sendmsg_reply

    def apps(self) -> list[str]:
        return [h["execute-app-name"] for k, h in self.sent  # type: ignore[index]
                if k == "sendmsg" and isinstance(h, dict) and "execute-app-name" in h]

    def answers(self) -> int:
        return sum(1 for k, c in self.sent if k == "api" and str(c).startswith("uuid_answer"))


HANGUP = ("sendmsg", {"call-command": "hangup", "hangup-cause": "NORMAL_CLEARING"})


class Counts:
    """A stand-in for a labelled counter: counts per label values."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, ...], int] = {}

    def labels(self, *values: str) -> Counts:
        self._key = values
        return self

    def inc(self) -> None:
        self.counts[self._key] = self.counts.get(self._key, 0) + 1


def _park(dnis: str = "4008001234", direction: str = "inbound") -> Event:
    return Event.from_headers({"Event-Name": "CHANNEL_PARK", "Unique-ID": UUID,
                               "Call-Direction": direction, "Caller-Destination-Number": dnis,
                               "Caller-Caller-ID-Number": "13311112222"})


def _machine(redis_url: str, worker_id: str = "w-me", draining: bool = False,
             tenant: Tenant = TENANT, may_act: Callable[[object], bool] | None = None,
             ) -> tuple[CallMachine, Counts, redis.Redis]:
    r = redis.Redis.from_url(redis_url)
    store = CallStore(r, worker_id)
    swept = Counts()
    m = CallMachine(store=store, decider=Decider(StaticTenants([tenant]), _REGIONS),
                    hangups=HangupPipeline([CallSummaryStream(r)], ForgetLiveRecord(store)),
                    is_draining=lambda: draining, swept=swept, may_act=may_act)
    return m, swept, r


def _seed(r: redis.Redis, uuid: str, state: str, owner: str = "dead-worker",
          idle_ms: int = 0, **data: object) -> None:
    """A call record as a worker left it (``cc_core/lua/call_claim.lua`` fields)."""
    blob = CallData(tenant="t1", dnis="4008001234", **data).pack()  # type: ignore[arg-type]
    r.hset(keys.call("t1", uuid), mapping={"state": state, "owner": owner,
                                           "at": now_ms() - idle_ms, "data": blob})


def _row(uuid: str, application: str = "park", callstate: str = "RINGING",
         direction: str = "inbound", dest: str = "4008001234") -> dict[str, str]:
    # The fields of a `show channels as json` row that the machine reads, as captured
    # (command_replies.json, show_channels_json_parked).
    return {"uuid": uuid, "direction": direction, "dest": dest, "application": application,
            "callstate": callstate, "state": "CS_EXECUTE", "cid_num": "13311112222"}


def _state(r: redis.Redis, uuid: str = UUID) -> bytes | None:
    return r.hget(keys.call("t1", uuid), "state")  # type: ignore[return-value]


# ---- claims -------------------------------------------------------------------------------------
def test_a_replayed_park_is_answered_and_greeted_once(redis_url: str) -> None:
    m, _, r = _machine(redis_url)
    link = RecordingLink()
    m.on_park(_park(), link)
    m.on_park(_park(), link)  # seen again after a reconnect
    assert link.answers() == 1 and link.apps() == ["playback"]
    assert link.sent.count(HANGUP) == 1
    assert _state(r) == b"announcing"
    assert 0 < r.ttl(keys.call("t1", UUID)) <= keys.CALL_TTL_S


def test_the_hangup_is_queued_behind_an_event_locked_announcement(redis_url: str) -> None:
    # The switch, not a worker, ends the call after the prompt: nothing is lost when no
    # worker watches any more (the prompt's EXECUTE_COMPLETE may reach nobody).
    m, _, r = _machine(redis_url)
    link = RecordingLink()
    m.on_park(_park(), link)
    assert link.sent == [
        ("api", f"uuid_answer {UUID}"),
        ("sendmsg", {"call-command": "execute", "execute-app-name": "playback",
                     "execute-app-arg": GREETING, "event-lock": "true"}),
        HANGUP]


def test_non_400_outbound_and_unknown_numbers(redis_url: str) -> None:
    m, _, r = _machine(redis_url)
    link = RecordingLink()
    m.on_park(_park(dnis="1000"), link)
    m.on_park(_park(direction="outbound"), link)
    assert link.sent == []
    m.on_park(_park(dnis="4009999999"), link)
    assert link.sent == [("api", f"uuid_kill {UUID} UNALLOCATED_NUMBER")], "never answered"


def test_a_draining_worker_leaves_new_calls_to_the_next_owner(redis_url: str) -> None:
    m, _, r = _machine(redis_url, draining=True)
    link = RecordingLink()
    m.on_park(_park(), link)
    assert link.sent == [] and not r.exists(keys.call("t1", UUID))


def test_a_caller_gone_before_the_prompt_is_queued_is_left_quietly(redis_url: str) -> None:
    m, _, r = _machine(redis_url)
    link = RecordingLink(sendmsg_reply=f"-ERR invalid session id [{UUID}]")
    m.on_park(_park(), link)      # no exception, no hang-up sent after the refusal
    assert [c[0] for c in link.sent] == ["api", "sendmsg"]


def test_the_hangup_pipeline_summarises_then_forgets_the_call(redis_url: str) -> None:
    m, _, r = _machine(redis_url)
    link = RecordingLink()
    m.on_park(_park(), link)
    # The channel's times as CHANNEL_HANGUP_COMPLETE carries them (captures: *_uepoch, 0 for
    # what never happened), and sofia's word on who hung up.
    m.on_hangup_complete(Event.from_headers({
        "Event-Name": "CHANNEL_HANGUP_COMPLETE", "Unique-ID": UUID,
        "Hangup-Cause": "NORMAL_CLEARING", "variable_billsec": "3",
        "variable_start_uepoch": "1764468000123456", "variable_answer_uepoch": "1764468000500000",
        "variable_bridge_uepoch": "0", "variable_end_uepoch": "1764468003600000",
        "variable_sip_hangup_disposition": "recv_bye"}), link)
    entries = r.xrange(keys.calls_stream("t1"))
    assert len(entries) == 1 and not r.exists(keys.call("t1", UUID))
    import msgpack

    summary = msgpack.unpackb(entries[0][1][b"call"], raw=False)
    assert (summary["outcome"], summary["path"], summary["hangup_cause"]) == (
        "announced", ["announce:greeting"], "NORMAL_CLEARING")
    assert (summary["start_ms"], summary["answer_ms"], summary["bridge_ms"],
            summary["end_ms"]) == (1764468000123, 1764468000500, 0, 1764468003600)
    assert (summary["timezone"], summary["hangup_side"], summary["joined_ms"]) == (
        "Asia/Shanghai", "caller", 0)


# ---- reconcile, sweep, takeover ----------------------------------------------------------------
def test_reconcile_resumes_each_call_from_the_state_it_reached(redis_url: str) -> None:
    m, _, r = _machine(redis_url)
    link = RecordingLink()
    unclaimed, new, announcing, hanging = (f"{i}1111111-2222-3333-4444-555555555555"
                                           for i in range(4))
    _seed(r, new, "new")                        # claimed, nothing sent: the whole step
    _seed(r, announcing, "announcing", hangup_cause="NORMAL_CLEARING",
          dest="announce:greeting")
    link.per_call[announcing] = {"current_application": "playback"}   # its prompt runs
    _seed(r, hanging, "new")
    m.reconcile("fs1", [_row(unclaimed), _row(new), _row(announcing, application="playback"),
                        _row(hanging, callstate="HANGUP"),
                        _row("b-leg", direction="outbound", dest="agent1")], link)
    answered = [c for k, c in link.sent if k == "api" and str(c).startswith("uuid_answer")]
    assert answered == [f"uuid_answer {unclaimed}", f"uuid_answer {new}"]
    assert link.apps() == ["playback", "playback"]
    assert link.sent.count(HANGUP) == 3   # unclaimed, new (whole step), announcing (hang-up)
    assert not any("b-leg" in str(c) or hanging in str(c) for c in link.sent)


def test_reconcile_leaves_a_call_whose_step_is_running_here_alone(redis_url: str) -> None:
    m, _, r = _machine(redis_url)
    reconciled = RecordingLink()

    class SlowLink(RecordingLink):
        def api(self, cmd: str, timeout: float | None = None) -> str:
            m.reconcile("fs1", [_row(UUID, callstate="ACTIVE")], reconciled)
            return super().api(cmd, timeout)

    m.on_park(_park(), SlowLink())
    assert reconciled.sent == []


def test_reconcile_asks_the_channel_when_show_channels_lags_behind_its_park(redis_url) -> None:
    m, _, _ = _machine(redis_url)
    link = RecordingLink()
    m.reconcile("fs1", [_row(UUID, application="set")], link)
    assert link.sent[0] == ("api", f"uuid_getvar {UUID} current_application")
    assert ("api", f"uuid_answer {UUID}") in link.sent
    still = RecordingLink()
    still.variables["current_application"] = "set"
    other = "99999999-2222-3333-4444-555555555555"
    m.reconcile("fs1", [_row(other, application="set")], still)
    assert still.sent == [("api", f"uuid_getvar {other} current_application")]


def test_the_sweep_takes_a_parked_call_nobody_claimed_after_its_grace_only(redis_url) -> None:
    m, swept, _ = _machine(redis_url)
    link = RecordingLink()
    m.sweep("fs1", [_row(UUID)], link)
    assert link.sent == [], "a call that just parked is left to its own PARK first"
    m._unclaimed_since[UUID] -= flow_machine.SWEEP_GRACE_S   # the grace has passed
    m.sweep("fs1", [_row(UUID)], link)
    assert link.answers() == 1 and link.sent.count(HANGUP) == 1
    assert swept.counts == {("fs1", "unclaimed"): 1}
    m.on_park(_park(), link)          # its PARK arrives late: nothing happens twice
    assert link.answers() == 1 and link.sent.count(HANGUP) == 1


def test_a_live_holder_keeps_its_call_a_dead_or_stalled_one_loses_it(redis_url) -> None:
    m, swept, r = _machine(redis_url)
    live, dead, stalled = (f"{i}2222222-2222-3333-4444-555555555555" for i in range(3))
    r.set(esl_keys.worker("w-live"), "1")
    r.set(esl_keys.worker("w-stuck"), "1")
    for uuid, owner, idle in ((live, "w-live", 1000), (dead, "w-dead", 1000),
                              (stalled, "w-stuck", STALL_MS + 1000)):
        _seed(r, uuid, "new", owner=owner, idle_ms=idle)
    link = RecordingLink()
    m.sweep("fs1", [_row(u) for u in (live, dead, stalled)], link)
    assert link.answers() == 2, "the dead and the stalled holders' calls"
    assert swept.counts == {("fs1", "stalled"): 2}
    assert r.hget(keys.call("t1", live), "owner") == b"w-live"
    assert r.hget(keys.call("t1", dead), "owner") == b"w-me"


def test_a_menu_resumed_while_its_prompt_runs_waits_for_its_result(redis_url) -> None:
    m, _, r = _machine(redis_url)
    _seed(r, UUID, "menu", menu_stack=["main"], pending=f"menu.1.{UUID}",
          pending_var="cc_in_1", path=["menu:main"])
    link = RecordingLink()
    link.variables["current_application"] = "play_and_get_digits"
    m.reconcile("fs1", [_row(UUID, application="play_and_get_digits")], link)
    assert link.apps() == [] and link.answers() == 0, "nothing replayed while it runs"
    # Its result reaches the new owner as an event, and the flow goes on from there.
    m.on_execute_complete(Event.from_headers({
        "Event-Name": "CHANNEL_EXECUTE_COMPLETE", "Unique-ID": UUID,
        "Application": "play_and_get_digits", "Application-UUID": f"menu.1.{UUID}",
        "variable_cc_in_1": "1"}), link)
    assert link.apps() == ["playback"] and link.sent.count(HANGUP) == 1


def test_a_menu_whose_result_nobody_saw_is_taken_from_the_channel(redis_url) -> None:
    m, _, r = _machine(redis_url)
    _seed(r, UUID, "menu", menu_stack=["main"], pending=f"menu.1.{UUID}",
          pending_var="cc_in_1", path=["menu:main"])
    link = RecordingLink()
    link.variables.update({"current_application": "play_and_get_digits",
                           "read_result": "success", "cc_in_1": "1"})
    m.reconcile("fs1", [_row(UUID, application="play_and_get_digits")], link)
    assert link.apps() == ["playback"], "key 1 acted on, the menu not replayed"


def test_a_holder_that_was_taken_over_stops_at_its_next_save(redis_url) -> None:
    old, _, r = _machine(redis_url, worker_id="w-old")
    new, _, _ = _machine(redis_url, worker_id="w-new")

    class PausedLink(RecordingLink):
        def api(self, cmd: str, timeout: float | None = None) -> str:
            reply = super().api(cmd, timeout)
            if cmd.startswith("uuid_answer"):
                new.reconcile("fs1", [_row(UUID, callstate="ACTIVE")], taker)
            return reply

    taker = RecordingLink()
    paused = PausedLink()
    old.on_park(_park(), paused)
    assert taker.sent.count(HANGUP) == 1 and paused.sent.count(HANGUP) == 0
    assert paused.apps() == [], "the old holder's save is refused before it sends anything"
    assert r.hget(keys.call("t1", UUID), "owner") == b"w-new"


def test_a_park_seen_as_standby_is_taken_when_show_channels_has_not_caught_up(redis_url) -> None:
    m, _, _ = _machine(redis_url)
    m.on_standby_event("fs1", _park())
    link = RecordingLink()
    m.reconcile("fs1", [], link)      # the core database does not list it yet
    # Taken without its PARK event, so whether a fallback is armed is unknown: cancelled
    # anyway (`+OK Deleted: 0` when there was none).
    assert link.sent[:3] == [("api", f"uuid_getvar {UUID} current_application"),
                             ("api", f"sched_del {UUID}"), ("api", f"uuid_answer {UUID}")]
    m.on_standby_event("fs1", _park())
    m.on_standby_event("fs1", Event.from_headers({
        "Event-Name": "CHANNEL_HANGUP_COMPLETE", "Unique-ID": UUID}))
    later = RecordingLink()
    m.reconcile("fs1", [], later)
    assert later.sent == []


def test_the_sweep_counts_only_calls_that_needed_more_than_their_queued_hangup(redis_url) -> None:
    # A dead holder's announcement still playing needs nothing but the hang-up it queued
    # (queued again, harmlessly): not a lost call, so not counted; its unanswered twin is.
    m, swept, r = _machine(redis_url)
    playing, stuck = (f"{i}3333333-2222-3333-4444-555555555555" for i in range(2))
    _seed(r, playing, "announcing", owner="w-dead", hangup_cause="NORMAL_CLEARING",
          dest="announce:greeting")
    _seed(r, stuck, "new", owner="w-dead")
    link = RecordingLink()
    link.per_call[playing] = {"current_application": "playback"}
    m.sweep("fs1", [_row(playing, application="playback", callstate="ACTIVE"), _row(stuck)],
            link)
    assert link.sent.count(HANGUP) == 2 and link.answers() == 1
    assert swept.counts == {("fs1", "stalled"): 1}


class _LapsingLink(RecordingLink):
    """The node's lease lapses right after the call's answer: ``owning[0]`` turns False."""

    def __init__(self, owning: list[bool]) -> None:
        super().__init__()
        self.owning = owning

    def api(self, cmd: str, timeout: float | None = None) -> str:
        if cmd.startswith("uuid_answer"):
            self.owning[0] = False
        return super().api(cmd, timeout)


def test_a_call_dropped_when_the_node_lapsed_mid_step_is_taken_again_when_it_is_regained(
        redis_url) -> None:
    # Redis restarted under traffic: the lease lapsed after the greeting's state was saved
    # (a state the switch finishes by itself) but before its prompt was sent. Still this
    # worker's record, no longer in its hands: when the node is owned again, the call is
    # resumed, not left parked in silence for ever.
    owning = [True]
    m, _, r = _machine(redis_url, may_act=lambda link: owning[0])
    lapsing = _LapsingLink(owning)
    m.on_park(_park(), lapsing)
    assert lapsing.answers() == 1 and lapsing.apps() == [] and _state(r) == b"announcing"
    assert UUID not in m._calls
    owning[0] = True
    link = RecordingLink()
    m.reconcile("fs1", [_row(UUID, application="park")], link)
    assert link.apps() == ["playback"] and link.sent.count(HANGUP) == 1
    m.sweep("fs1", [_row(UUID, application="playback")], link)
    assert link.apps() == ["playback"], "resumed once"


def test_a_call_still_held_in_its_record_but_no_longer_tracked_is_resumed_with_its_data(
        redis_url) -> None:
    # As above, but the record still names this worker (a step dropped without the record
    # being let go): the sweep reads only state and holder of every listed call, so the
    # call's own data must be read again before it is resumed, or its prompt is unknown.
    owning = [True]
    m, _, r = _machine(redis_url, may_act=lambda link: owning[0])
    m.on_park(_park(), _LapsingLink(owning))
    assert UUID not in m._calls and _state(r) == b"announcing"
    r.hset(keys.call("t1", UUID), "owner", m.worker_id)
    owning[0] = True
    link = RecordingLink()
    m.sweep("fs1", [_row(UUID, application="park")], link)
    assert link.apps() == ["playback"], link.sent
    assert r.hget(keys.call("t1", UUID), "owner") == m.worker_id.encode()


def test_the_sweep_reads_no_record_of_a_held_call_waiting_on_a_person(redis_url) -> None:
    # A busy switch lists thousands of calls every sweep; those this worker holds in the
    # queue or in talk need nothing from it, and reading all their records held the worker's
    # event loop for milliseconds. A held call in a short step is still checked for a stall.
    m, _, r = _machine(redis_url)
    asked: list[str] = []
    records = m.store.records

    def counting(pairs, **kw):  # type: ignore[no-untyped-def]
        asked.extend(u for _, u in pairs)
        return records(pairs, **kw)

    m.store.records = counting  # type: ignore[method-assign]
    link = RecordingLink()
    for state in (CallState.QUEUED, CallState.CONNECTED):
        _seed(r, UUID, state.value, owner=m.worker_id, idle_ms=10 * STALL_MS)
        data = CallData(tenant="t1", dnis="4008001234")
        m._calls[UUID] = flow_machine.Call(UUID, state, data, link, node="fs1")
        m.sweep("fs1", [_row(UUID, application="playback", callstate="ACTIVE")], link)
        assert asked == [] and link.sent == []
    m._calls[UUID].state = CallState.MENU
    _seed(r, UUID, "menu", owner=m.worker_id)
    m.sweep("fs1", [_row(UUID, application="playback", callstate="ACTIVE")], link)
    assert asked == [UUID] and link.sent == []          # read, and not stalled


def test_a_call_dropped_because_its_node_moved_is_taken_by_the_new_owner_at_once(
        redis_url) -> None:
    # The old holder lives on (its heartbeat is fresh) but lost the node: it hands the call
    # back, so the node's new owner resumes it now, not after the 15 s stall rule.
    owning = [True]
    old, _, r = _machine(redis_url, worker_id="w-old", may_act=lambda link: owning[0])
    new, _, _ = _machine(redis_url, worker_id="w-new")
    r.set(esl_keys.worker("w-old"), "1")

    class LapsingLink(RecordingLink):
        def api(self, cmd: str, timeout: float | None = None) -> str:
            if cmd.startswith("uuid_answer"):
                owning[0] = False
            return super().api(cmd, timeout)

    old.on_park(_park(), LapsingLink())
    assert r.hget(keys.call("t1", UUID), "owner") == b""
    link = RecordingLink()
    new.sweep("fs1", [_row(UUID, application="park")], link)
    assert link.apps() == ["playback"] and link.sent.count(HANGUP) == 1
    assert r.hget(keys.call("t1", UUID), "owner") == b"w-new"


def test_a_call_that_ended_while_nobody_owned_its_node_is_ended_by_the_next_owner(
        redis_url) -> None:
    # Its holder died holding it; the caller hung up before the standby took the node. The
    # standby saw the hang-up: once owner, it writes the call's summary and drops the record
    # (and would free its queue place), which no one else will ever do.
    m, _, r = _machine(redis_url)
    _seed(r, UUID, "menu", owner="w-dead", menu_stack=["main"], path=["menu:main"])
    m.on_standby_event("fs1", _park())
    m.on_standby_event("fs1", Event.from_headers({
        "Event-Name": "CHANNEL_HANGUP_COMPLETE", "Unique-ID": UUID, "Call-Direction": "inbound",
        "Caller-Destination-Number": "4008001234", "Hangup-Cause": "NORMAL_CLEARING"}))
    m.reconcile("fs1", [], RecordingLink())
    assert _state(r) is None, "the record is gone"
    (summary,) = [msgpack.unpackb(f[b"call"], raw=False)
                  for _, f in r.xrange(keys.calls_stream("t1"))]
    assert summary["uuid"] == UUID and summary["hangup_cause"] == "NORMAL_CLEARING"


def test_a_standby_ends_a_dead_holder_s_call_it_saw_end_even_if_it_never_owns_the_node(
        redis_url) -> None:
    m, _, r = _machine(redis_url)
    _seed(r, UUID, "menu", owner="w-dead", menu_stack=["main"], path=["menu:main"])
    m.on_standby_event("fs1", Event.from_headers({
        "Event-Name": "CHANNEL_HANGUP_COMPLETE", "Unique-ID": UUID, "Call-Direction": "inbound",
        "Caller-Destination-Number": "4008001234", "Hangup-Cause": "NORMAL_CLEARING"}))
    m.end_orphans_seen(lambda node: RecordingLink())
    assert _state(r) == b"menu", "too early: its holder's heartbeat may not have expired"
    for ended in m._standby_ended.values():
        for uuid, (event, seen_at) in list(ended.items()):
            ended[uuid] = (event, seen_at - flow_machine.ORPHAN_AFTER_S)
    m.end_orphans_seen(lambda node: RecordingLink())
    assert _state(r) is None
    assert r.xlen(keys.calls_stream("t1")) == 1


def test_a_call_whose_end_event_was_lost_is_forgotten_once_the_switch_no_longer_lists_it(
        redis_url) -> None:
    m, _, _ = _machine(redis_url)
    link = RecordingLink()
    m.on_park(_park(), link)
    assert UUID in m._calls
    m.sweep("fs1", [], link)                   # just parked: the core db may lag
    assert UUID in m._calls
    m._calls[UUID].known_since -= flow_machine.GONE_AFTER_S + 1
    m.sweep("fs1", [_row(UUID)], link)         # still listed: kept
    assert UUID in m._calls
    m.sweep("fs1", [], link)                   # gone from the switch: forgotten
    assert UUID not in m._calls


# ---- the switch's own fallback (freeswitch_conf: sched_transfer into cc_fallback) -------------
def _park_with_fallback() -> Event:
    return Event.from_headers({"Event-Name": "CHANNEL_PARK", "Unique-ID": UUID,
                               "Call-Direction": "inbound",
                               "Caller-Destination-Number": "4008001234",
                               "Caller-Caller-ID-Number": "13311112222",
                               "variable_cc_fallback_s": "8"})


def test_a_call_with_a_fallback_armed_cancels_it_before_anything_else(redis_url) -> None:
    m, _, r = _machine(redis_url)

    class Switch(RecordingLink):
        def api(self, cmd: str, timeout: float | None = None) -> str:
            if cmd.startswith("sched_del "):
                self.sent.append(("api", cmd))
                return "+OK Deleted: 1\n"          # mod_commands.c sched_del_function
            return super().api(cmd, timeout)

    link = Switch()
    m.on_park(_park_with_fallback(), link)
    assert link.sent[:2] == [("api", f"sched_del {UUID}"), ("api", f"uuid_answer {UUID}")]
    plain = RecordingLink()
    m.on_hangup_complete(Event.from_headers({"Event-Name": "CHANNEL_HANGUP_COMPLETE",
                                             "Unique-ID": UUID}), plain)
    m.on_park(_park(), plain)                  # no fallback armed: nothing to cancel
    assert not any(str(c).startswith("sched_del") for _, c in plain.sent)


def test_a_call_the_fallback_already_took_is_left_to_the_switch(redis_url) -> None:
    m, _, r = _machine(redis_url)

    class Switch(RecordingLink):
        def api(self, cmd: str, timeout: float | None = None) -> str:
            if cmd.startswith("sched_del "):
                self.sent.append(("api", cmd))
                return "+OK Deleted: 0\n"
            return super().api(cmd, timeout)

    link = Switch()
    link.variables["cc_fallback"] = "taken"
    m.on_park(_park_with_fallback(), link)
    assert link.answers() == 0 and link.apps() == [], "never answered twice, nothing played"
    assert not r.exists(keys.call("t1", UUID)) and UUID not in m._calls
