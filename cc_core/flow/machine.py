"""The per-call state machine: every call that parks on a 400 number, from PARK to its end.

Each call has one record in Redis (``cc_core.flow.record``: state, holder, data). Each state has
one step: ``run`` starts it (its state saved first, then its commands sent), ``complete`` takes
the EXECUTE_COMPLETE of the application it started, and ``resume`` continues it on a worker that
did not start it (after a failover, a reconnect, or a step that failed): the new owner asks the
channel what it runs (``current_application``) and picks up from there, so a prompt is never
played twice and a call is never answered twice. Events reach a call's step by Unique-ID, and
the Application-UUID of what a step starts (``<state>.<seq>.<uuid>``) names the call and the
step, so a late completion of an earlier step is recognised and ignored.

How calls that no event brings are still taken (a PARK that fired while no worker consumed the
node, a snapshot that lagged): see ``take_over`` and README "No call left behind".
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import gevent
from redis.exceptions import RedisError

from cc_core.errors import EslError
from cc_core.flow.decide import Decider, Decision, Verdict, no_credit
from cc_core.flow.hangup import HangupPipeline, epoch_ms
from cc_core.flow.record import (
    NOT_OWNER,
    STALL_MS,
    CallData,
    CallRecord,
    CallState,
    CallStore,
    now_ms,
)
from cc_core.tenants.model import AnswerMode, Destination, DestinationKind, Tenant
from esl_handlers import commands
from recordings.policy import plan as recording_plan

log = logging.getLogger(__name__)

NUMBER_400 = re.compile(r"^400\d{7}$")
# The sweep leaves a parked call nobody claimed this long to its own PARK event first.
SWEEP_GRACE_S = 1.0
# What a standby remembers of PARKs it saw, for its first reconcile as owner.
STANDBY_MEMORY_S = 30.0
# A call seen ending by a standby is ended by it this long after, if its holder is dead by
# then (past the heartbeat's expiry) and nobody else ended it.
ORPHAN_AFTER_S = 10.0
STANDBY_MEMORY_MAX = 50_000
# A followed call missing from `show channels` this long is gone (longer than the core
# database's lag behind a new channel).
GONE_AFTER_S = 10.0
CLAIM_ATTEMPTS = 3
CLAIM_RETRY_S = 0.05
#: What a standby subscribes to before it owns a node (``on_standby_event``).
STANDBY_EVENTS = ("CHANNEL_PARK", "CHANNEL_HANGUP_COMPLETE")
#: How a call can end, as the flow records it (summary, cccore_calls_total's outcome label):
#: refusals by verdict, then where the flow left the call. The label is bounded by this list.
OUTCOMES = frozenset({v.value for v in Verdict if v is not Verdict.ROUTE} | {
    "answered_by_agent", "abandoned_in_queue", "transferred", "transfer_not_answered",
    "queued", "overflowed", "not_answered", "voicemail", "announced", "hung_up_by_menu",
    "failed", "caller_hung_up", "fallback", "callback_requested"})
UNDEF = "_undef_"            # uuid_getvar of an unset variable (command_replies.json)
SILENCE = "silence_stream://250"


class Link(Protocol):
    def api(self, cmd: str, timeout: float | None = None) -> str: ...
    def bgapi(self, cmd: str, timeout: float | None = None) -> Any: ...
    def sendmsg(self, uuid: str, headers: dict[str, str], timeout: float | None = None) -> str: ...


class EventLike(Protocol):
    unique_id: str | None
    def get(self, name: str, default: str | None = None) -> str | None: ...


class Counter(Protocol):
    def labels(self, *values: str) -> Any: ...


class CreditGate(Protocol):
    """Live credit control (``billing.live.CreditControl``)."""

    def admit(self, tenant: str) -> bool: ...
    def billable(self, uuid: str, tenant: str, caller_kind: str, link: Any) -> None: ...
    def adopt(self, uuid: str, tenant: str, link: Any) -> None: ...


@dataclass
class Call:
    uuid: str
    state: CallState
    data: CallData
    link: Link
    node: str = ""                     # the node's configured name (a metrics label)
    setup_from: float | None = None    # when its PARK was read, until the first command
    known_since: float = field(default_factory=time.monotonic)


@dataclass
class _Ended:
    uuid: str
    data: CallData
    cause: str
    event: Any
    node: str = ""


class StepLost(Exception):
    """This worker may no longer act on the call (taken over, or the node was lost)."""


class NodeLost(StepLost):
    """The call's node is no longer this worker's: whoever owns it now takes the call on."""


def _prompt_path(tenant: Tenant, names: list[str]) -> str:
    files = [tenant.prompts[n] for n in names if n in tenant.prompts]
    if not files:
        return SILENCE
    # mod_dptools' file_string:// plays each '!'-separated file in turn.
    return files[0] if len(files) == 1 else "file_string://" + "!".join(files)


def _node_name(link: Any) -> str:
    node = getattr(link, "node", None)
    return str(getattr(node, "name", "") or "")


class CallMachine:
    def __init__(self, *, store: CallStore, decider: Decider,
                 hangups: HangupPipeline | None = None, is_draining: Callable[[], bool],
                 may_act: Callable[[Any], bool] | None = None, swept: Counter | None = None,
                 outcomes: Counter | None = None, setup: Any = None,
                 started: Counter | None = None,
                 voicemail_dir: str = "voicemail", recorder: Any = None,
                 credit: CreditGate | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.store = store
        self.worker_id = store.worker_id
        self.decider = decider
        self.hangups = hangups
        self.is_draining = is_draining
        self.may_act = may_act or (lambda link: True)
        self.swept = swept
        self.outcomes = outcomes
        self.setup = setup      # a histogram: PARK read -> first command (seconds)
        self.started = started  # new calls by tenant, counted where first claimed
        self.voicemail_dir = voicemail_dir.rstrip("/")
        self.recorder = recorder    # recordings.recorder.Recorder, when recording is wired in
        self.clock = clock
        self.credit = credit
        self._calls: dict[str, Call] = {}
        self._in_flight: dict[str, int] = {}
        self._unclaimed_since: dict[str, float] = {}
        self._standby_seen: dict[str, dict[str, tuple[str, str, float]]] = {}
        self._standby_ended: dict[str, dict[str, tuple[EventLike, float]]] = {}
        self.queues: Any = None     # cc_core.flow.queue.QueueFlow, when the ACD is wired in
        self.caps: Any = None       # cc_core.flow.caps.CallCaps: monthly caps, when wired in

    def register(self, dispatcher: Any) -> None:
        dispatcher.on("CHANNEL_PARK", self.on_park)
        dispatcher.on("CHANNEL_EXECUTE_COMPLETE", self.on_execute_complete)
        dispatcher.on("CHANNEL_HANGUP_COMPLETE", self.on_hangup_complete)
        dispatcher.on("DTMF", self.on_dtmf)
        if self.recorder is not None:
            dispatcher.on("RECORD_START", self.on_record)
            dispatcher.on("RECORD_STOP", self.on_record)
        if self.queues is not None:
            self.queues.register(dispatcher)

    @staticmethod
    def _ctx(uuid: str, tenant: str = "") -> dict[str, str]:
        return {"call_uuid": uuid, "tenant": tenant}

    def live_calls(self) -> Iterator[tuple[str, str]]:
        """(node, tenant) of each call this worker runs and may still act on: a call on a
        node whose lease it lost is its successor's now, even before any event says so."""
        for call in list(self._calls.values()):
            if self.may_act(call.link):
                yield call.node, call.data.tenant

    def _started(self, tenant: str) -> None:
        if self.started is not None:
            self.started.labels(tenant).inc()

    # ==== events ================================================================================
    def on_park(self, event: EventLike, link: Link) -> None:
        uuid = event.unique_id
        if not uuid or event.get("Call-Direction") != "inbound":
            return
        dnis = event.get("Caller-Destination-Number") or ""
        if not NUMBER_400.match(dnis) or uuid in self._calls:
            return
        self.start(uuid, dnis, event.get("Caller-Caller-ID-Number") or "", link,
                   received_at=getattr(event, "received_at", None),
                   fallback=bool(event.get("variable_cc_fallback_s")))

    def on_execute_complete(self, event: EventLike, link: Link) -> None:
        uuid = event.unique_id
        app_uuid = event.get("Application-UUID") or ""
        if not uuid or uuid not in app_uuid:
            return
        call = self._calls.get(uuid)
        if call is None or call.data.pending != app_uuid:
            return          # not ours, or a late completion of a step already left
        with self._running(uuid):
            self._guarded(call, lambda: self._complete(call, event))

    def on_hangup_complete(self, event: EventLike, link: Link) -> None:
        uuid = event.unique_id
        if not uuid:
            return
        self._unclaimed_since.pop(uuid, None)
        call = self._calls.pop(uuid, None)
        if call is None:
            return
        self._ended(call, event.get("Hangup-Cause") or "", event)

    def _ended(self, call: Call, cause: str, event: EventLike | None) -> None:
        """The caller's channel is gone: its queue place and agent, its outcome, its summary.
        ``event`` is None for a call whose end the switch never told (it restarted)."""
        uuid = call.uuid
        if call.state.waits_long and self.queues is not None:
            try:
                if event is None:
                    self.queues.call_lost(call)
                self.queues.caller_gone(call, cause)
            except (EslError, RedisError) as exc:
                # The ACD's own expiry frees what this could not (reservation deadlines).
                log.warning("could not release the caller's queue place: %r", exc,
                            extra=self._ctx(uuid, call.data.tenant))
        if call.state is CallState.BRIDGING:
            # The bridge app's EXECUTE_COMPLETE comes only after the hang-up (captures), so
            # this may be the first word of how the bridge went: the channel's own variable.
            connected = event is not None and event.get("variable_DIALSTATUS") == "SUCCESS"
            if call.data.outcome == "queued":
                call.data.outcome = "answered_by_agent" if connected else "abandoned_in_queue"
            elif call.data.outcome == "transferred" and not connected:
                call.data.outcome = "transfer_not_answered"
        log.info("call ended", extra={**self._ctx(uuid, call.data.tenant), "cause": cause,
                                      "outcome": call.data.outcome or "caller_hung_up",
                                      "path": call.data.path})
        if self.outcomes is not None:
            outcome = call.data.outcome or "caller_hung_up"
            # A record resumed from Redis may come from another version of the flow.
            self.outcomes.labels(call.data.tenant,
                                 outcome if outcome in OUTCOMES else "other").inc()
        if self.recorder is not None:
            self.recorder.on_hangup(call, self.decider.tenants.tenant(call.data.tenant))
        if self.hangups is not None:
            self.hangups.run(_Ended(uuid, call.data, cause, event, call.node))

    def on_record(self, event: EventLike, link: Link) -> None:
        """RECORD_START / RECORD_STOP: what the switch wrote for the call's recording, kept
        on the call for its summary (RECORD_STOP comes before CHANNEL_HANGUP_COMPLETE)."""
        call = self._calls.get(event.unique_id or "")
        if call is None or self.recorder is None or not self.recorder.on_event(call, event):
            return
        try:
            self._save(call, call.state)
        except StepLost:
            pass     # the call's new holder, or its summary, learns it from the same events

    def on_demand_recording(self, tenant: str, call_uuid: str, action: str, by: str) -> None:
        """An agent's or supervisor's start/stop (through the API) for a call this worker
        holds; nothing when it is not held here (the worker holding it acts)."""
        call = self._calls.get(call_uuid)
        if call is None or call.data.tenant != tenant or self.recorder is None:
            return

        def step() -> None:
            if call.state is not CallState.CONNECTED:
                return
            if action == "start":
                self._act(call)
                self.recorder.start(call, self._tenant(call), by=by)
                self._save(call, call.state)
            elif action == "stop":
                self._act(call)
                self.recorder.stop(call)

        with self._running(call.uuid):
            self._guarded(call, step)

    def on_dtmf(self, event: EventLike, link: Link) -> None:
        uuid = event.unique_id
        call = self._calls.get(uuid or "")
        if call is None or call.state is not CallState.QUEUED or self.queues is None:
            return
        digit = event.get("DTMF-Digit") or ""
        with self._running(call.uuid):
            self._guarded(call, lambda: self.queues.exit_key(call, digit))

    # ==== claiming a call ===========================================================================
    def start(self, uuid: str, dnis: str, caller: str, link: Link,
              received_at: float | None = None, fallback: bool = True) -> bool:
        """Decide, claim and run the call's first step; False when it is not ours to run."""
        if self.is_draining():
            log.info("draining: leaving parked call to the next owner", extra=self._ctx(uuid))
            return False
        with self._running(uuid):
            decision = self.decider.decide(dnis, caller, self.clock())
            if (decision.verdict is Verdict.ROUTE and decision.tenant is not None
                    and self.credit is not None
                    and not self.credit.admit(decision.tenant.tenant)):
                decision = no_credit(decision)
            if decision.tenant is None:
                # No tenant, so no record: killing twice is harmless. Never answered.
                log.info("unknown 400 number: rejected", extra={
                    **self._ctx(uuid), "dnis": dnis, "reason": decision.reason})
                if received_at is not None and self.setup is not None:
                    self.setup.observe(time.monotonic() - received_at)
                link.api(commands.uuid_kill(uuid, decision.cause))
                self._started("")
                if self.outcomes is not None:
                    self.outcomes.labels("", "unallocated").inc()
                return True
            data = self._data(decision, dnis, caller)
            data.fallback = fallback
            held = self._claim(data.tenant, uuid, data)
            if held is not None:
                return False
            self._unclaimed_since.pop(uuid, None)
            self._started(data.tenant)
            decision = self._within_caps(decision, uuid)
            call = Call(uuid, CallState.NEW, data, link, setup_from=received_at,
                        node=_node_name(link))
            self._calls[uuid] = call
            self._guarded(call, lambda: self._take_from_switch(call, decision))
            return True

    def _within_caps(self, d: Decision, uuid: str) -> Decision:
        """The decision, or a refusal when the tenant is past a monthly cap it enforces."""
        if d.verdict is not Verdict.ROUTE or d.tenant is None or self.caps is None:
            return d
        try:
            over = self.caps.admit(d.tenant, self.clock())
        except RedisError as exc:
            # A cap is a business limit, not a reason to lose a caller: the call goes on.
            log.warning("monthly caps not checked: %r", exc, extra=self._ctx(uuid))
            return d
        if over is None:
            return d
        return dataclasses.replace(d, verdict=Verdict.OVER_CAP, cause="CALL_REJECTED",
                                   announce=d.tenant.caps.announce, reason=over)

    def _take_from_switch(self, call: Call, decision: Decision) -> None:
        """Cancel the fallback the dialplan armed (freeswitch_conf: sched_transfer into
        cc_fallback when no worker takes the call in time), then run the first step; a call
        the fallback already took is the switch's, and left to it."""
        if call.data.fallback:
            self._act(call)
            reply = call.link.api(commands.sched_del(call.uuid))
            if reply.startswith("+OK Deleted: 0") and self._getvar(call, "cc_fallback") == "taken":
                log.warning("the switch's fallback took the call before this worker did",
                            extra=self._ctx(call.uuid, call.data.tenant))
                call.data.outcome = "fallback"
                self._calls.pop(call.uuid, None)
                self.store.forget(call.data.tenant, call.uuid)
                return
            call.data.fallback = False
        self._begin(call, decision)

    def _data(self, d: Decision, dnis: str, caller: str) -> CallData:
        assert d.tenant is not None
        return CallData(tenant=d.tenant.tenant, dnis=dnis, caller=caller,
                        caller_kind=d.caller.kind.value if d.caller else "",
                        province=d.region.province if d.region else "",
                        city=d.region.city if d.region else "", priority=d.priority,
                        answer_mode=d.answer_mode.value, timezone=d.tenant.timezone)

    def _claim(self, tenant: str, uuid: str, data: CallData) -> CallRecord | None | bool:
        for attempt in range(CLAIM_ATTEMPTS):
            try:
                return self.store.claim(tenant, uuid, data)
            except RedisError as exc:
                if attempt + 1 == CLAIM_ATTEMPTS:
                    log.warning("could not claim the call: %r; left to the sweep", exc,
                                extra=self._ctx(uuid, tenant))
                    return False
                gevent.sleep(CLAIM_RETRY_S * 2 ** attempt)
        return False

    @contextmanager
    def _running(self, uuid: str) -> Iterator[None]:
        self._in_flight[uuid] = self._in_flight.get(uuid, 0) + 1
        try:
            yield
        finally:
            left = self._in_flight[uuid] - 1
            if left:
                self._in_flight[uuid] = left
            else:
                del self._in_flight[uuid]

    def _guarded(self, call: Call, step: Callable[[], None]) -> None:
        try:
            step()
        except StepLost as exc:
            log.warning("stopped working on the call: %s", exc,
                        extra=self._ctx(call.uuid, call.data.tenant))
            self._calls.pop(call.uuid, None)
            if isinstance(exc, NodeLost):
                # Handed back at once: the node's owner (another worker, or this one once it
                # owns the node again) resumes it without waiting for a stall to show.
                try:
                    self.store.release(call.data.tenant, call.uuid)
                except RedisError:
                    pass    # then the stall rule applies: the owner resumes it after STALL_MS
        except (EslError, RedisError) as exc:
            # The record stays at the state reached, held by this live worker: the sweep
            # resumes the call (``take_over``) after its grace.
            log.warning("step failed: %r; left to the sweep", exc,
                        extra={**self._ctx(call.uuid, call.data.tenant),
                               "state": call.state.value})
        except Exception:  # noqa: BLE001 - a bug must not leave a caller in silence for ever
            log.exception("step crashed; ending the call",
                          extra={**self._ctx(call.uuid, call.data.tenant),
                                 "state": call.state.value})
            call.data.outcome = "failed"
            try:
                call.link.api(commands.uuid_kill(call.uuid, "NORMAL_TEMPORARY_FAILURE"))
            except EslError:
                pass  # the sweep tries again

    # ==== the first step: decisions ===================================================================
    def _begin(self, call: Call, d: Decision) -> None:
        if d.verdict is not Verdict.ROUTE:
            call.data.outcome = d.verdict.value
            call.data.path.append(f"{d.verdict.value}:{d.reason}")
            self._reject(call, d.cause, d.announce)
            return
        assert d.tenant is not None and d.destination is not None
        if d.priority:
            call.data.path.append(f"vip:{d.priority}")
        if d.after_hours:
            call.data.path.append(f"after_hours:{d.reason}")
        elif d.reason == "region" and d.region is not None:
            call.data.path.append(f"region:{d.region.province}")
        tenant = d.tenant
        if d.answer_mode is AnswerMode.GREETING and tenant.greeting:
            call.data.dest = str(d.destination)
            self._media(call, answer=False)
            self._play(call, CallState.GREETING, _prompt_path(tenant, tenant.greeting))
            return
        self.goto(call, d.destination)

    def _tenant(self, call: Call) -> Tenant:
        found = self.decider.tenants.lookup(call.data.dnis)
        if found is None or found[0].tenant != call.data.tenant:
            raise StepLost(f"number {call.data.dnis} no longer routes to {call.data.tenant}")
        return found[0]

    # ==== commands ===================================================================================
    def _save(self, call: Call, state: CallState) -> None:
        self._saved(call, state, self.store.save(call.data.tenant, call.uuid, state, call.data))

    def _saved(self, call: Call, state: CallState, res: int) -> None:
        """What the call's save answered (``_save``, or a save sent in a pipeline)."""
        if res == NOT_OWNER:
            raise StepLost("taken over by another worker")
        if res <= 0:
            raise StepLost("the call ended")
        call.state = state

    def _act(self, call: Call) -> None:
        """Called before every command sent for the call (fencing, and setup latency)."""
        if not self.may_act(call.link):
            raise NodeLost("this worker no longer owns the call's node")
        if call.setup_from is not None:
            if self.setup is not None:
                self.setup.observe(time.monotonic() - call.setup_from)
            call.setup_from = None

    def _app_uuid(self, call: Call, state: CallState) -> str:
        call.data.seq += 1
        return f"{state.value}.{call.data.seq}.{call.uuid}"

    def _sendmsg(self, call: Call, headers: dict[str, str]) -> bool:
        self._act(call)
        reply = call.link.sendmsg(call.uuid, headers)
        if reply.startswith("+OK"):
            return True
        # `-ERR invalid session id [<uuid>]`: the caller hung up meanwhile.
        log.info("not queued", extra={**self._ctx(call.uuid, call.data.tenant),
                                      "reply": reply.strip()})
        return False

    def _media(self, call: Call, *, answer: bool) -> None:
        """Answer (IVR mode: billing starts) or open early media (greeting mode)."""
        if call.data.answered:
            return
        if answer or call.data.answer_mode == AnswerMode.IVR.value:
            self._act(call)
            reply = call.link.api(commands.uuid_answer(call.uuid))
            if not reply.startswith("+OK"):
                raise StepLost(f"answer refused: {reply.strip()}")
            call.data.answered = True
            self.billable(call)
        else:
            self._sendmsg(call, commands.execute_headers("pre_answer"))

    def billable(self, call: Call) -> None:
        """The call's billable time starts now (IVR mode: answered here; greeting mode: an
        agent answered): the credit control reserves and arms its hard stop."""
        if self.credit is not None:
            self.credit.billable(call.uuid, call.data.tenant, call.data.caller_kind, call.link)

    def _play(self, call: Call, state: CallState, path: str) -> None:
        """Play ``path`` as the step of ``state``; its completion moves the call on."""
        call.data.pending = self._app_uuid(call, state)
        call.data.pending_var = ""
        self._save(call, state)
        self._sendmsg(call, commands.execute_headers("playback", path,
                                                     event_uuid=call.data.pending))

    def _then_hang_up(self, call: Call, state: CallState, apps: list[tuple[str, str]],
                      cause: str = "NORMAL_CLEARING") -> None:
        """Queue ``apps`` (event-locked, so none runs inside another) and the hang-up behind
        them: the switch finishes the call even if no worker watches any more."""
        call.data.pending = ""
        call.data.hangup_cause = cause
        self._save(call, state)
        for app, arg in apps:
            if not self._sendmsg(call, commands.execute_headers(app, arg or None,
                                                                event_lock=True)):
                return
        self._sendmsg(call, commands.hangup_headers(cause))

    def _reject(self, call: Call, cause: str, announce: str | None) -> None:
        tenant = self._tenant(call)
        if announce and announce in tenant.prompts:
            # Early media only: the caller hears why, and is never answered (nor billed).
            self._then_hang_up(call, CallState.REJECTING,
                               [("pre_answer", ""), ("playback", tenant.prompts[announce])],
                               cause)
            return
        call.data.pending = ""
        call.data.hangup_cause = cause
        self._save(call, CallState.REJECTING)
        self._act(call)
        call.link.api(commands.uuid_kill(call.uuid, cause))

    # ==== destinations ===============================================================================
    def goto(self, call: Call, dest: Destination) -> None:
        tenant = self._tenant(call)
        call.data.dest = str(dest)
        call.data.path.append(str(dest))
        call.data.retries = 0
        kind = dest.kind
        if kind is DestinationKind.MENU:
            stack = call.data.menu_stack
            if not stack or stack[-1] != dest.target:
                stack.append(dest.target)
            self._menu(call, tenant)
        elif kind is DestinationKind.COLLECT:
            self._collect(call, tenant)
        elif kind is DestinationKind.INFO:
            self._media(call, answer=False)
            self._play(call, CallState.INFO, tenant.prompts[dest.target])
        elif kind is DestinationKind.QUEUE and self.queues is not None:
            self.queues.join(call, tenant, dest.target)
        elif kind is DestinationKind.CALLBACK and self.queues is not None:
            self.queues.callback(call, tenant, dest.target)
        elif kind in (DestinationKind.QUEUE, DestinationKind.TRANSFER):
            self._bridge(call, tenant, dest)
        elif kind is DestinationKind.VOICEMAIL:
            self._voicemail(call, tenant, dest.target)
        elif kind is DestinationKind.ANNOUNCE:
            call.data.outcome = call.data.outcome or "announced"
            self._media(call, answer=False)
            self._then_hang_up(call, CallState.ANNOUNCING,
                               [("playback", tenant.prompts[dest.target])])
        else:
            call.data.outcome = call.data.outcome or "hung_up_by_menu"
            self._then_hang_up(call, CallState.ENDING, [])

    def _menu(self, call: Call, tenant: Tenant, prefix: str | None = None) -> None:
        menu = tenant.menus[call.data.menu_stack[-1]]
        self._media(call, answer=False)
        names = ([prefix] if prefix else []) + menu.prompt
        self._read(call, CallState.MENU, _prompt_path(tenant, names), 1, 1, menu.timeout_ms,
                   "none", r"^[0-9*#]$")

    def _collect(self, call: Call, tenant: Tenant, prefix: str | None = None) -> None:
        col = tenant.collects[call.data.dest.partition(":")[2]]
        self._media(call, answer=False)
        names = ([prefix] if prefix else []) + col.prompt
        self._read(call, CallState.COLLECTING, _prompt_path(tenant, names), col.min_digits,
                   col.max_digits, col.timeout_ms, col.terminator or "none", r"^\d+$")

    def _read(self, call: Call, state: CallState, path: str, low: int, high: int,
              timeout_ms: int, terminators: str, regexp: str) -> None:
        call.data.pending = self._app_uuid(call, state)
        call.data.pending_var = f"cc_in_{call.data.seq}"
        self._save(call, state)
        # One try per run: retries, and the prompts that say why, are the flow's own.
        arg = (f"{low} {high} 1 {timeout_ms} {terminators} {path} {SILENCE} "
               f"{call.data.pending_var} {regexp} {timeout_ms}")
        self._sendmsg(call, commands.execute_headers("play_and_get_digits", arg,
                                                     event_uuid=call.data.pending))

    def _bridge(self, call: Call, tenant: Tenant, dest: Destination) -> None:
        caller = re.sub(r"[^0-9+]", "", call.data.caller)[:32] or call.data.dnis
        common = {"origination_caller_id_number": caller, "cc_tenant": tenant.tenant,
                  "cc_400_number": call.data.dnis}
        if dest.kind is DestinationKind.QUEUE:
            queue = tenant.queues[dest.target]
            # '|': one contact after the other, each rung for originate_timeout.
            common["originate_timeout"] = str(queue.ring_timeout_s)
            agents = sorted(queue.tiers, key=lambda t: (t.level, t.position))
            dial = "|".join(tenant.agents[t.agent].contact for t in agents)
            call.data.outcome = "queued"
        else:
            dial = f"{tenant.gateway}/{dest.target}"
            call.data.outcome = "transferred"
        common.update({f"cc_var_{name}": value for name, value in call.data.vars.items()})
        # Values can come from a caller (their number, keys): escaped for the switch's parser.
        variables = ",".join(f"{k}={commands.escape_originate_value(v, k)}"
                             for k, v in common.items())
        call.data.pending = self._app_uuid(call, CallState.BRIDGING)
        self._save(call, CallState.BRIDGING)
        self._act(call)
        # Without it a busy or failed contact hangs the caller up with that cause
        # (switch_channel_handle_cause): the flow decides what a failed bridge leads to.
        call.link.api(commands.uuid_setvar(call.uuid, "continue_on_fail", "true"))
        self._sendmsg(call, commands.execute_headers(
            "bridge", "{" + variables + "}" + dial, event_uuid=call.data.pending))

    def _voicemail(self, call: Call, tenant: Tenant, box: str) -> None:
        vm = tenant.voicemail[box]
        call.data.outcome = "voicemail"
        self._media(call, answer=True)     # a message is a service: answered
        apps: list[tuple[str, str]] = []
        if self.recorder is not None:
            # The call's recording starts at the answer, ahead of everything queued behind it.
            session = self.recorder.voicemail_app(call, tenant)
            if session is not None:
                apps.append(session)
                notice = recording_plan(tenant)
                if notice.announce:
                    apps.append(("playback", notice.announce))
        if vm.prompt:
            apps.append(("playback", _prompt_path(tenant, vm.prompt)))
        # One flat folder: FreeSWITCH's record does not create directories, so the folder
        # must exist on the switch (freeswitch_conf), and nothing below it is assumed.
        path = f"{self.voicemail_dir}/{tenant.tenant}-{box}-{call.uuid}.wav"
        apps.append(("record", f"{path} {vm.max_s}"))
        call.data.vars["voicemail_file"] = path
        self._then_hang_up(call, CallState.VOICEMAIL, apps)

    # ==== completions ===============================================================================
    def _complete(self, call: Call, event: EventLike) -> None:
        state = call.state
        tenant = self._tenant(call)
        if state is CallState.GREETING:
            self.goto(call, Destination.parse(call.data.dest))
        elif state is CallState.INFO:
            self._back_to_menu(call, tenant)
        elif state is CallState.MENU:
            var = call.data.pending_var
            self._menu_input(call, tenant, event.get(f"variable_{var}"),
                             event.get(f"variable_{var}_invalid"))
        elif state is CallState.COLLECTING:
            self._collect_input(call, tenant, event.get(f"variable_{call.data.pending_var}"))
        elif state is CallState.BRIDGING:
            self._bridge_done(call, tenant, event.get("variable_DIALSTATUS") or "",
                              event.get("variable_originate_disposition") or "")
        elif state is CallState.QUEUED and self.queues is not None:
            self.queues.moh_ended(call)

    def _back_to_menu(self, call: Call, tenant: Tenant) -> None:
        if call.data.menu_stack:
            self.goto(call, Destination(kind=DestinationKind.MENU,
                                        target=call.data.menu_stack[-1]))
        else:
            self.goto(call, Destination(kind=DestinationKind.HANGUP))

    def _menu_input(self, call: Call, tenant: Tenant, digit: str | None,
                    invalid: str | None) -> None:
        menu = tenant.menus[call.data.menu_stack[-1]]
        if digit:
            call.data.path.append(f"key:{digit}")
            if digit in menu.options:
                # What the option tells a queue about the caller (skills, priority).
                call.data.skills.update(menu.skills.get(digit, {}))
                call.data.priority = max(call.data.priority, menu.priority.get(digit, 0))
                self.goto(call, menu.options[digit])
                return
            if digit == menu.back_key and len(call.data.menu_stack) > 1:
                call.data.menu_stack.pop()
                self.goto(call, Destination(kind=DestinationKind.MENU,
                                            target=call.data.menu_stack[-1]))
                return
            if digit == menu.repeat_key:
                self._menu(call, tenant)
                return
            if digit == "0" and menu.operator is not None:
                self.goto(call, menu.operator)
                return
        else:
            call.data.path.append("timeout" if not invalid else f"invalid:{invalid}")
        call.data.retries += 1
        if call.data.retries >= menu.retries:
            call.data.path.append("retries_exhausted")
            self.goto(call, menu.default)
            return
        prefix = menu.timeout_prompt if not digit and not invalid else menu.invalid_prompt
        self._menu(call, tenant, prefix)

    def _collect_input(self, call: Call, tenant: Tenant, value: str | None) -> None:
        col = tenant.collects[call.data.dest.partition(":")[2]]
        if value:
            call.data.vars[col.variable] = value
            call.data.path.append(f"collected:{col.variable}")
            self._act(call)
            # On the channel too: an agent's desk and the call record read it from there.
            call.link.api(commands.uuid_setvar(call.uuid, f"cc_{col.variable}", value))
            self.goto(call, col.then)
            return
        call.data.retries += 1
        if call.data.retries >= col.retries:
            call.data.path.append("collect_failed")
            self.goto(call, col.then)
            return
        self._collect(call, tenant, col.invalid_prompt)

    def _bridge_done(self, call: Call, tenant: Tenant, dialstatus: str, disposition: str) -> None:
        if dialstatus == "SUCCESS":
            call.data.outcome = ("answered_by_agent" if call.data.outcome == "queued"
                                 else "transferred")
            self._then_hang_up(call, CallState.ENDING, [])
            return
        call.data.path.append(f"no_answer:{disposition or dialstatus}")
        dest = Destination.parse(call.data.dest)
        chain = tenant.queues[dest.target].overflow \
            if dest.kind is DestinationKind.QUEUE else []
        overflow = chain[0] if chain else None
        if overflow is not None:
            call.data.outcome = "overflowed"
            self.goto(call, overflow)
            return
        call.data.outcome = "not_answered"
        self._then_hang_up(call, CallState.ENDING, [], "NORMAL_CLEARING")

    # ==== before owning a node ===================================================================
    def on_standby_event(self, node: str, event: EventLike) -> None:
        uuid = event.unique_id
        if not uuid:
            return
        seen = self._standby_seen.setdefault(node, {})
        if event.get("Event-Name") == "CHANNEL_PARK":
            dnis = event.get("Caller-Destination-Number") or ""
            if event.get("Call-Direction") == "inbound" and NUMBER_400.match(dnis):
                if len(seen) >= STANDBY_MEMORY_MAX:
                    self._forget_old(seen, force=True)
                seen[uuid] = (dnis, event.get("Caller-Caller-ID-Number") or "",
                              time.monotonic())
        else:
            seen.pop(uuid, None)
            # A call of ours that ended after the node was handed over: no longer ours to
            # count, and not to be resumed if this worker owns the node again.
            self._calls.pop(uuid, None)
            dnis = event.get("Caller-Destination-Number") or ""
            if event.get("Call-Direction") == "inbound" and NUMBER_400.match(dnis):
                # Remembered for this worker's first reconcile as owner: a call that ended
                # while nobody owned the node (its holder died) is ended then (its queue
                # place, its record); its holder will never see this event again.
                ended = self._standby_ended.setdefault(node, {})
                if len(ended) >= STANDBY_MEMORY_MAX:
                    for old in list(ended)[: len(ended) // 2]:
                        del ended[old]
                ended[uuid] = (event, time.monotonic())

    def _forget_old(self, seen: dict[str, tuple[str, str, float]], force: bool = False) -> None:
        horizon = time.monotonic() - STANDBY_MEMORY_S
        for uuid in [u for u, v in seen.items() if v[2] < horizon]:
            del seen[uuid]
        if force and len(seen) >= STANDBY_MEMORY_MAX:
            for uuid in list(seen)[: len(seen) // 2]:
                del seen[uuid]

    # ==== taking over live calls ==================================================================
    @staticmethod
    def _current_application(uuid: str, link: Link) -> str:
        # uuid_getvar answers the bare value, no newline (command_replies.json, uuid_getvar).
        return link.api(commands.uuid_getvar(uuid, "current_application")).strip()

    def _is_parked(self, uuid: str, row: dict[str, Any], link: Link) -> bool:
        """Whether the dialplan has parked this call. ``show channels`` trails the events
        (``switch_core_sqldb.c``), so a row may still show the dialplan's previous app or be
        missing; the channel's ``current_application`` is set before CHANNEL_EXECUTE fires."""
        if row.get("application") == "park":
            return True
        return self._current_application(uuid, link) == "park"

    def _forget_gone(self, node: str, listed: set[Any]) -> None:
        """Drop calls of this node that the switch no longer lists: at once when their record
        has ended or is another worker's (their hang-up reached a successor while this worker
        was not listening: left in place they would count as in progress, and be resumed,
        when this worker owns the node again); past the core database's lag when the record
        is still ours (their HANGUP_COMPLETE was lost in a reconnect; the record expires with
        its TTL). A call claimed here that ``show channels`` does not list yet is kept."""
        gone = [c for u, c in self._calls.items()
                if c.node == node and u not in listed and u not in self._in_flight]
        if not gone:
            return
        records = self.store.records([(c.data.tenant, c.uuid) for c in gone])
        horizon = time.monotonic() - GONE_AFTER_S
        for call in gone:
            rec = records.get(call.uuid)
            if rec is None or rec.owner != self.worker_id or call.known_since < horizon:
                self._calls.pop(call.uuid, None)
                log.info("call gone from the switch without its end event here",
                         extra={**self._ctx(call.uuid, call.data.tenant),
                                "state": call.state.value})
                if rec is not None and rec.owner == self.worker_id:
                    # Still ours and nobody ended it (the switch restarted, its events were
                    # lost): end it here, or its queue place, its agent and its record would
                    # wait for ever.
                    self._ended(call, "", None)

    def reconcile(self, node: str, channels: list[dict[str, Any]], link: Link) -> None:
        """After (re)gaining a node's event stream: ``show channels`` rows plus the PARKs
        this worker saw as a standby (the snapshot may not list those yet)."""
        seen = self._standby_seen.pop(node, {})
        self._forget_old(seen)
        listed = {ch.get("uuid") for ch in channels}
        extra = [{"uuid": uuid, "direction": "inbound", "dest": dnis, "cid_num": caller,
                  "application": "", "callstate": ""}
                 for uuid, (dnis, caller, _) in seen.items() if uuid not in listed]
        if extra:
            log.info("taking calls parked just before this worker owned the node",
                     extra={"node": node, "calls": len(extra)})
        self.take_over(node, [*channels, *extra], link, grace_s=0.0)
        self._end_orphans(node, self._standby_ended.pop(node, {}), listed, link)

    def end_orphans_seen(self, link_for: Callable[[str], Any]) -> None:
        """Run periodically (every worker): calls this worker saw end as a standby whose
        holder died before it could hear the end. Once the holder's heartbeat has had time to
        expire (``ORPHAN_AFTER_S``) they are ended here, whichever worker owns the node now
        (the new owner may have started too late to see the hang-up)."""
        cutoff = time.monotonic() - ORPHAN_AFTER_S
        for node, ended in list(self._standby_ended.items()):
            due = {u: v for u, v in ended.items() if v[1] <= cutoff}
            if not due:
                continue
            for uuid in due:
                ended.pop(uuid, None)
            link = link_for(node)
            if link is not None:
                self._end_orphans(node, due, set(), link)

    def _end_orphans(self, node: str, ended: dict[str, tuple[EventLike, float]],
                     listed: set[Any], link: Link) -> None:
        """Calls that ended while no worker owned the node: their holder (dead, or without
        the node) never heard their end, so nobody would free their queue place or write
        their summary. This worker saw the end as a standby and does both now."""
        horizon = time.monotonic() - STANDBY_MEMORY_S
        pairs: list[tuple[str, str]] = []
        events: dict[str, EventLike] = {}
        for uuid, (event, seen_at) in ended.items():
            found = self.decider.tenants.lookup(event.get("Caller-Destination-Number") or "")
            if seen_at < horizon or uuid in listed or uuid in self._calls or found is None:
                continue
            pairs.append((found[0].tenant, uuid))
            events[uuid] = event
        if not pairs:
            return
        records = self.store.records(pairs)
        holders = {r.owner for r in records.values()
                   if r is not None and r.owner not in ("", self.worker_id)}
        alive = self.store.live_workers(holders)
        for tenant, uuid in pairs:
            rec = records.get(uuid)
            if rec is None:
                continue     # ended by its holder
            if rec.owner in alive:
                # A live holder, or a dead one whose heartbeat has not expired yet (the node
                # is taken over within the lease TTL, sooner than that): asked again by
                # end_orphans_seen once ORPHAN_AFTER_S has passed, until STANDBY_MEMORY_S.
                self._standby_ended.setdefault(node, {})[uuid] = ended[uuid]
                continue
            taken = rec if rec.owner == self.worker_id else self.store.take_over(
                tenant, uuid, rec.owner)
            if taken is None:
                continue
            call = Call(uuid, taken.state, CallData.unpack(taken.data, tenant, ""), link,
                        node=node)
            log.info("ending a call that ended while no worker owned its node",
                     extra={**self._ctx(uuid, tenant), "state": taken.state.value})
            try:
                self._ended(call, events[uuid].get("Hangup-Cause") or "", events[uuid])
                if self.queues is not None:
                    self.queues.orphaned(
                        call, epoch_ms(events[uuid], "variable_end_uepoch") or now_ms())
            except (EslError, RedisError) as exc:
                log.warning("could not end an orphaned call: %r", exc,
                            extra=self._ctx(uuid, tenant))

    def sweep(self, node: str, channels: list[dict[str, Any]], link: Link) -> None:
        """The owner's periodic safety net over ``show channels``."""
        self.take_over(node, channels, link, grace_s=SWEEP_GRACE_S)

    def take_over(self, node: str, channels: list[dict[str, Any]], link: Link, *,
                  grace_s: float) -> None:
        self._forget_gone(node, {ch.get("uuid") for ch in channels})
        rows: dict[str, dict[str, Any]] = {}
        tenants: dict[str, str] = {}
        for ch in channels:
            uuid = ch.get("uuid") or ""
            dnis = ch.get("dest") or ""
            if (not uuid or ch.get("direction") != "inbound" or not NUMBER_400.match(dnis)
                    or ch.get("callstate") == "HANGUP" or uuid in self._in_flight):
                continue
            held = self._calls.get(uuid)
            if held is not None and held.state.waits_long:
                # Ours and waiting on a person (hold music, talk): nothing for a sweep to
                # resume, so its record is not read (a call another worker took from this
                # one leaves _calls at its next step here, StepLost).
                continue
            rows[uuid] = ch
            found = self.decider.tenants.lookup(dnis)
            if found is not None:
                tenants[uuid] = found[0].tenant
        self._unclaimed_since = {u: t for u, t in self._unclaimed_since.items() if u in rows}
        if not rows:
            return
        # Most rows are calls in progress that need nothing: their data is read only for
        # the few resumed (``_resume``).
        records = self.store.records([(t, u) for u, t in tenants.items()], with_data=False)
        holders = {r.owner for r in records.values() if r is not None and r.owner != self.worker_id}
        alive = self.store.live_workers(holders)
        now = time.monotonic()
        stamp = now_ms()
        sweeping = grace_s > 0
        for uuid, row in rows.items():
            if uuid in self._in_flight:
                continue
            rec = records.get(uuid)
            try:
                if rec is None:
                    since = self._unclaimed_since.setdefault(uuid, now)
                    if now - since < grace_s:
                        continue
                    if self._is_parked(uuid, row, link) and self.start(
                            uuid, row.get("dest") or "", row.get("cid_num") or "", link) \
                            and sweeping:
                        self._count(node, "unclaimed")
                    continue
                idle = rec.idle_ms(stamp)
                if rec.owner == self.worker_id:
                    # A call of ours that this worker no longer tracks was dropped mid-step
                    # (the node's lease lapsed, say while Redis restarted): whatever its
                    # state, its next command may never have reached the switch.
                    if uuid in self._calls and (rec.state.done or not sweeping
                                                or idle < STALL_MS or rec.state.waits_long):
                        continue     # ours, waiting for the switch: nothing is stuck
                elif rec.owner in alive and (idle < STALL_MS or rec.state.waits_long):
                    continue         # its holder is alive and may be in the middle of a step
                self._resume(node, uuid, tenants[uuid], rec, link, counted=sweeping)
            except (EslError, RedisError) as exc:
                log.warning("taking over a call failed: %r", exc, extra=self._ctx(uuid))

    def _resume(self, node: str, uuid: str, tenant: str, rec: CallRecord, link: Link, *,
                counted: bool) -> None:
        if self.is_draining():
            return
        with self._running(uuid):
            if rec.owner != self.worker_id:
                taken = self.store.take_over(tenant, uuid, rec.owner)
                if taken is None:
                    return
                rec = taken
            elif not rec.data:
                fresh = self.store.records([(tenant, uuid)]).get(uuid)
                if fresh is None or fresh.owner != self.worker_id:
                    return      # ended, or taken meanwhile: nothing of ours to resume
                rec = fresh
            data = CallData.unpack(rec.data, tenant, "")
            call = Call(uuid, rec.state, data, link, node=node)
            self._calls[uuid] = call
            if self.credit is not None:
                # A billed call (one with a reservation) keeps its hard stop: re-armed by
                # this worker from now on.
                self.credit.adopt(uuid, tenant, link)
            log.info("resuming a call", extra={**self._ctx(uuid, tenant),
                                               "state": rec.state.value})
            repaired: list[bool] = []
            self._guarded(call, lambda: repaired.append(self._resume_step(call)))
            if counted and repaired and repaired[0]:
                # Only calls the switch was not already finishing: a warm hand-over leaves
                # every announcement in progress to its successor, and those are not lost.
                self._count(node, "stalled")

    def _resume_step(self, call: Call) -> bool:
        """Continue the call from its saved state, asking the channel what already ran.
        True when the call needed more than the hang-up its holder may already have queued
        (what the sweep counts as taken)."""
        state = call.state
        link = call.link
        app = self._current_application(call.uuid, link)
        if state in (CallState.ANNOUNCING, CallState.VOICEMAIL) and app == "park":
            # Saved, but its prompt never reached the switch (the holder stopped in between):
            # the caller has heard nothing yet, so the step runs again.
            self.goto(call, Destination.parse(call.data.dest))
            return True
        if state.done:
            if call.data.hangup_cause:
                # The hang-up may not have been queued before the holder stopped; a second
                # one queued behind the first is harmless, a missing one strands the caller.
                self._sendmsg(call, commands.hangup_headers(call.data.hangup_cause))
            return False
        if state is CallState.NEW:
            if app == "park":
                decision = self.decider.decide(call.data.dnis, call.data.caller, self.clock())
                self._take_from_switch(call, decision)
            return True
        tenant = self._tenant(call)
        if state in (CallState.MENU, CallState.COLLECTING):
            # play_and_get_digits clears read_result when it starts and sets it when it ends;
            # current_application keeps naming it after it ended.
            done = self._getvar(call, "read_result") != UNDEF
            if app == "play_and_get_digits" and not done:
                return False    # still running: its completion comes to this worker now
            value = self._finished_read(call)
            if state is CallState.MENU:
                self._menu_input(call, tenant, value, None)
            else:
                self._collect_input(call, tenant, value)
        elif state is CallState.BRIDGING:
            status = self._getvar(call, "DIALSTATUS")
            if app == "bridge" and status == UNDEF:
                return False    # ringing or talking: the completion comes to this worker now
            if status == UNDEF:
                self._bridge(call, tenant, Destination.parse(call.data.dest))
            else:
                self._bridge_done(call, tenant, status, "")
        elif state is CallState.GREETING:
            self.goto(call, Destination.parse(call.data.dest))
        elif state is CallState.INFO:
            self._back_to_menu(call, tenant)
        elif state.waits_long and self.queues is not None:
            return bool(self.queues.resume(call, app))
        return True

    def _getvar(self, call: Call, name: str) -> str:
        return call.link.api(commands.uuid_getvar(call.uuid, name)).strip()

    def _finished_read(self, call: Call) -> str | None:
        var = call.data.pending_var
        if not var:
            return None
        value = self._getvar(call, var)
        return None if value in (UNDEF, "") else value

    def _count(self, node: str, reason: str) -> None:
        if self.swept is not None:
            self.swept.labels(node, reason).inc()
