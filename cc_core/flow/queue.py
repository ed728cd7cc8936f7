"""A caller in an ACD queue, on the switch: music on hold, offers to agents, the bridge, leaving.

The choice of agent is the ACD's (``acd.store.Acd``: atomic scripts in Redis); this module is
what the worker holding the caller does with it over ESL:

* **join**: the caller is answered (IVR mode) or kept in early media (greeting mode), hears the
  queue's music on hold, and is enqueued; a dispatch runs at once, so a caller reaching a queue
  with a free agent rings that agent within one Redis round trip and one ``bgapi``.
* **offers**: whoever runs a dispatch (this worker, another worker when an agent became free
  there, the periodic tick) gets offers; an offer for a caller this worker holds is run in that
  caller's lane (``Dispatcher.post``), others are published on ``keys.ACD_CHANNEL`` for the
  worker that holds the caller. An offer nobody runs lapses in Redis (its reservation's
  deadline): the agent is free again and the caller keeps its place.
* **ringing**: each offered agent gets ``bgapi originate {origination_uuid=<leg>,cc_member=...}
  <contact> &park()``; the leg's events name the caller (``variable_cc_member``) and are
  handled in the caller's lane. The first agent to answer wins (``Acd.answered``); every other
  ringing or answered leg of the offer is hung up at once. The winner hears the whisper, if
  any, and is bridged with ``uuid_bridge``.
* **failover**: a worker that takes over a queued caller carries on the offer its dead holder
  started, under the same reservation (``resume``, ``_adopt_offer``): ringing legs are kept,
  an answered one is connected, gone ones are released at once, later ones rung in time.
  An agent leg's uuid is a function of the caller, the reservation's token and the agent
  (``leg_uuid``), so the offer a dead holder rang before saving the call (a join's own
  offer) is found from the ACD's reservation alone.
* **leaving**: the caller's hang-up frees every agent reserved or ringing for it at once (and
  hangs up their legs); a wait past ``max_wait_s`` (or ``max_wait_no_agent_s`` with nobody
  logged in) leads along the overflow chain. A bridged agent's hang-up starts its wrap-up.
"""

from __future__ import annotations

import functools
import logging
import math
import time
import uuid as uuidlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gevent
import msgpack

from acd.errors import AcdError
from acd.events import MissKind, miss_kind
from acd.store import CALLBACK_PREFIX, CB_GAVE_UP, CB_RETRY, Acd, Offer, OfferedAgent
from cc_core.errors import EslError
from cc_core.flow import spoken
from cc_core.flow.record import CallState, now_ms
from cc_core.redisconn import run_pipeline
from cc_core.tenants.model import (
    AgentState,
    AgentType,
    Announce,
    AnswerMode,
    Destination,
    DestinationKind,
    Queue,
    Tenant,
)
from esl_handlers import commands
from recordings.policy import plan as recording_plan

if TYPE_CHECKING:
    from cc_core.flow.machine import Call, CallMachine

log = logging.getLogger(__name__)

# Beyond the ring timeout, how long a bgapi originate may take to report (job timeout).
JOB_SLACK_S = 10.0
# At most this many queue-to-queue hops for one caller (an overflow chain naming queues whose
# own chains lead back would otherwise loop).
MAX_QUEUE_HOPS = 6
# Causes an agent leg ends with when it lost: not the agent's miss.
_LOST = ("LOSE_RACE", "ORIGINATOR_CANCEL", "MANAGER_REQUEST")
# Legs hung up before their channel existed, remembered this long (at most this many).
DOOMED_S = 120.0
DOOMED_MAX = 10_000
# uuid_getvar of an unset variable (command_replies.json).
_UNDEF = "_undef_"
# How often the wait clock looks at every waiting caller (max waits, announcements), and how
# long a queue's "any agent Available?" answer serves all its callers.
WAIT_TICK_S = 0.25
STAFFED_FOR_S = 1.0
# Members that are queued callbacks, not live callers: "cb-<call uuid>[~<retry>]".


# Agent legs' uuids: uuid5 in this namespace of "<caller uuid>/<token>/<agent>".
_LEG_NAMESPACE = uuidlib.UUID("6f1c2b7e-4d0a-5b8e-9c3f-2a1d4e5f6a7b")


def leg_uuid(call_uuid: str, token: str, agent: str) -> str:
    """The uuid of the leg that rings ``agent`` for the reservation ``token`` of a caller:
    whoever holds the caller can tell it from the reservation, saved or not."""
    return str(uuidlib.uuid5(_LEG_NAMESPACE, f"{call_uuid}/{token}/{agent}"))


def _leg_of(call_uuid: str, token: str, oa: OfferedAgent) -> str:
    """The leg an offered agent is reached on: its parked channel for a uuid-standby agent
    (bridged at once, never rung), else the one ``leg_uuid`` names."""
    if oa.type == AgentType.UUID_STANDBY.value:
        return oa.contact
    return leg_uuid(call_uuid, token, oa.agent)


def _offer_data(offer: Offer) -> dict[str, Any]:
    """An offer as the call keeps it while its agents ring (``CallData.offer``)."""
    return {"token": offer.token, "queue": offer.queue, "won": "",
            "deadline_ms": offer.deadline_ms, "agents": [a.agent for a in offer.agents],
            "left": len(offer.agents), "legs": {}}


def _offer_of(data: dict[str, Any], tenant: str, call_uuid: str, node: str) -> Offer:
    return Offer(tenant=tenant, queue=data.get("queue", ""), call_uuid=call_uuid, node=node,
                 token=str(data.get("token", "")), deadline_ms=int(data.get("deadline_ms", 0)),
                 agents=tuple(OfferedAgent(agent=a, contact="", type="callback", delay_ms=0)
                              for a in data.get("agents", [])))


def _newer(token: str, than: str) -> bool:
    """Whether reservation ``token`` came after ``than`` (tokens count up per tenant)."""
    try:
        return int(token) > int(than)
    except ValueError:
        return False


def pack_offer(offer: Offer) -> bytes:
    return msgpack.packb({
        "tenant": offer.tenant, "queue": offer.queue, "call_uuid": offer.call_uuid,
        "node": offer.node, "token": offer.token, "deadline_ms": offer.deadline_ms,
        "callback": offer.callback,
        "agents": [[a.agent, a.contact, a.type, a.delay_ms] for a in offer.agents]},
        use_bin_type=True)


def unpack_offer(blob: bytes) -> Offer:
    raw = msgpack.unpackb(blob, raw=False)
    return Offer(tenant=raw["tenant"], queue=raw["queue"], call_uuid=raw["call_uuid"],
                 node=raw["node"], token=raw["token"], deadline_ms=raw["deadline_ms"],
                 callback=raw.get("callback", ""),
                 agents=tuple(OfferedAgent(agent=a, contact=c, type=t, delay_ms=d)
                              for a, c, t, d in raw["agents"]))


@dataclass
class _Waiting:
    """A caller waiting in a queue on this worker, as the wait clock keeps it."""

    tenant: str
    name: str
    queue: Queue
    start: float                        # monotonic, when this wait began
    next_announce: float
    no_agent_since: float | None = None


class QueueFlow:
    """The queue steps of one worker's call machine (``CallMachine.queues``)."""

    def __init__(self, machine: CallMachine, acd: Acd, *, post: Callable[[str, Callable[[], None]], None],
                 publish: Callable[[bytes], Any] | None = None,
                 observe_dispatch: Callable[[float], None] | None = None,
                 observe_offer: Callable[[float], None] | None = None,
                 observe_originate: Callable[[float], None] | None = None,
                 observe_answer: Callable[[float], None] | None = None,
                 count_overflow: Callable[[str, str, str], None] | None = None,
                 link_for: Callable[[str], Any] | None = None,
                 on_not_registered: Callable[[str, str, str], None] | None = None) -> None:
        self.m = machine
        self.acd = acd
        self.post = post
        self.publish = publish
        self.observe_dispatch = observe_dispatch   # dispatch script round trip (seconds)
        self.observe_offer = observe_offer         # queue join -> originate's reply read
        self.observe_originate = observe_originate  # queue join -> originate handed to socket
        self.observe_answer = observe_answer       # queue join -> an agent's answer won
        self.count_overflow = count_overflow       # (tenant, queue, destination kind)
        self.link_for = link_for                   # node name -> its link (callbacks)
        # (node, tenant, agent): ringing the agent on that node failed USER_NOT_REGISTERED
        self.on_not_registered = on_not_registered
        self._waiting: dict[str, _Waiting] = {}    # caller uuid -> its wait (the wait clock's)
        self._wait_clock: Any = None               # the greenlet ticking while anyone waits
        self._staffed: dict[tuple[str, str], tuple[float, bool]] = {}
        self._won: set[str] = set()                # agent legs bridged by this worker
        self._joined_at: dict[str, float] = {}     # caller uuid -> monotonic join time
        self._doomed: dict[str, tuple[str, float]] = {}  # leg -> (cause, when): kill on create

    def register(self, dispatcher: Any) -> None:
        dispatcher.on("CHANNEL_CREATE", self.on_leg_create)
        dispatcher.on("CHANNEL_ANSWER", self.on_leg_answer)
        dispatcher.on("CHANNEL_HANGUP_COMPLETE", self.on_leg_hangup)
        dispatcher.on("CHANNEL_EXECUTE_COMPLETE", self.on_leg_execute_complete)

    # ==== joining =================================================================================
    def join(self, call: Call, tenant: Tenant, name: str) -> None:
        queue = tenant.queues[name]
        hops = sum(1 for p in call.data.path if p.startswith("queue:"))
        if hops > MAX_QUEUE_HOPS:
            log.warning("overflow chain loops between queues; ending the call",
                        extra=self.m._ctx(call.uuid, call.data.tenant))
            call.data.outcome = "not_answered"
            self.m._then_hang_up(call, CallState.ENDING, [])
            return
        call.data.queue = name
        call.data.outcome = "queued"
        call.data.offer = {}
        call.data.joined_ms = now_ms()
        call.data.left_queue_ms = 0
        self._joined_at[call.uuid] = time.monotonic()
        call.data.pending = self.m._app_uuid(call, CallState.QUEUED)
        skills = {**queue.skills, **call.data.skills}
        # The call's save, its enqueue and the dispatch that may find it a free agent share
        # one round trip where the call's record and the ACD share a client. This caller's
        # own offer comes back with its agents Receiving already (``ring_now``) and rings at
        # once, in this step: the agent's phone starts ringing one round trip to Redis after
        # the join, before the switch has even answered the hold music's commands.
        pipe = self.acd.pipeline() if self._same_redis() else None
        if pipe is None:
            self.m._save(call, CallState.QUEUED)
        else:
            self.m.store.save(tenant.tenant, call.uuid, CallState.QUEUED, call.data, pipe=pipe)
        t0 = time.perf_counter()
        _, offers, saved = self.acd.enqueue_dispatch(
            tenant.tenant, name, call.uuid, node=call.node, priority=call.data.priority,
            skills=skills, caller=call.data.caller, pipe=pipe, ring_now=True)
        if self.observe_dispatch is not None:
            self.observe_dispatch(time.perf_counter() - t0)
        mine = [o for o in offers if o.call_uuid == call.uuid and not o.callback]
        if saved:
            # A save refused (the call taken over, or ended, meanwhile) stops this step as
            # it did before the join; the other callers' offers still ring. This caller's
            # own agents are let go at once: whoever holds the caller now may have looked
            # for its offer before this dispatch made it.
            try:
                self.m._saved(call, CallState.QUEUED, int(saved[0]))
            except Exception:
                self.deliver([o for o in offers if o not in mine])
                for offer in mine:
                    for oa in offer.agents:
                        self.acd.agent_failed(offer, oa.agent, "ORIGINATOR_CANCEL")
                raise
        for offer in mine:
            self._start_offer(call, offer)
        if call.state is CallState.QUEUED and not call.data.offer.get("won"):
            # (A parked standby agent is bridged at once: no music then.)
            self.m._media(call, answer=False)
            self._recording_notice(call, tenant, name)
            self._moh(call, queue)
            self._arm(call, queue)
        self.deliver([o for o in offers if o not in mine])

    def _recording_notice(self, call: Call, tenant: Tenant, name: str) -> None:
        """"This call may be recorded", once per call, ahead of the hold music, when the
        queue may record it (an agent's answer or an on-demand start come later)."""
        notice = recording_plan(tenant, name)
        if not notice.may_record or not notice.announce or call.data.vars.get("recording_notice"):
            return
        call.data.vars["recording_notice"] = "1"
        self.m._sendmsg(call, commands.execute_headers("playback", notice.announce,
                                                       event_lock=True))

    def _moh(self, call: Call, queue: Queue) -> None:
        self.m._sendmsg(call, commands.execute_headers("playback", queue.moh,
                                                       event_uuid=call.data.pending))

    def moh_ended(self, call: Call) -> None:
        """The hold music stopped (a file ran out, or a break let an announcement through):
        play it again while the caller waits."""
        tenant = self.m._tenant(call)
        queue = tenant.queues.get(call.data.queue)
        if queue is None:
            return
        call.data.pending = self.m._app_uuid(call, CallState.QUEUED)
        self.m._save(call, CallState.QUEUED)
        self._moh(call, queue)

    # ==== dispatching ==================================================================================
    def dispatch(self, tenant: str, queue: str) -> None:
        t0 = time.perf_counter()
        offers = self.acd.dispatch(tenant, queue)
        if self.observe_dispatch is not None:
            self.observe_dispatch(time.perf_counter() - t0)
        self.deliver(offers)

    def deliver(self, offers: list[Offer]) -> None:
        for offer in offers:
            if offer.callback and self._callback_link(offer) is not None:
                gevent.spawn(self._guard_callback, offer)
            elif offer.callback:
                if self.publish is not None:
                    self.publish(pack_offer(offer))    # for a worker that owns a node
            elif offer.call_uuid in self.m._calls:
                self.post(offer.call_uuid, lambda o=offer: self._offer(o))  # type: ignore[misc]
            elif self.publish is not None:
                self.publish(pack_offer(offer))

    def on_published(self, blob: bytes) -> None:
        """An offer another worker found: ours to run when we hold its caller."""
        try:
            offer = unpack_offer(blob)
        except (ValueError, KeyError, TypeError, msgpack.UnpackException):
            log.warning("unreadable offer on the ACD channel; ignored")
            return
        if offer.callback:
            if self._callback_link(offer) is not None:
                gevent.spawn(self._guard_callback, offer)
        elif offer.call_uuid in self.m._calls:
            self.post(offer.call_uuid, lambda: self._offer(offer))

    def _offer(self, offer: Offer) -> None:
        call = self.m._calls.get(offer.call_uuid)
        if call is None or call.state is not CallState.QUEUED:
            return      # gone: the reservation lapses in Redis
        current = call.data.offer
        if current:
            if current.get("won") or not _newer(offer.token, str(current.get("token", ""))):
                return  # ringing someone already: this reservation lapses in Redis
            # The ACD reserved agents for this caller again, so the reservation of the offer
            # still run here lapsed (its agents were released with it): left in place, it
            # would turn every new offer away and the caller would never be offered again.
            log.info("the offer in progress lapsed; taking the new one",
                     extra=self.m._ctx(call.uuid, call.data.tenant))
            for leg in current.get("legs", {}):
                self._kill(call.link, leg, "LOSE_RACE")
            call.data.offer = {}
        self.m._guarded(call, lambda: self._start_offer(call, offer))

    def _start_offer(self, call: Call, offer: Offer) -> None:
        call.data.offer = _offer_data(offer)
        later = {oa.agent: [oa.contact, oa.type, oa.delay_ms]
                 for oa in offer.agents if oa.delay_ms > 0}
        if later:
            # Saved now for the legs rung later (and for whoever resumes the call before
            # they are rung); a leg rung at once saves before its originate.
            call.data.offer.update(later=later, at_ms=now_ms())
            self.m._save(call, CallState.QUEUED)
        for oa in offer.agents:
            if oa.delay_ms > 0:
                gevent.spawn_later(oa.delay_ms / 1000, self.post, call.uuid,
                                   lambda o=oa: self._ring_later(call.uuid, offer, o))
            else:
                self._ring(call, offer, oa)

    def _ring_later(self, call_uuid: str, offer: Offer, oa: OfferedAgent) -> None:
        call = self.m._calls.get(call_uuid)
        if call is not None and call.data.offer.get("token") == offer.token:
            self.m._guarded(call, lambda: self._ring(call, offer, oa))

    def _ring(self, call: Call, offer: Offer, oa: OfferedAgent) -> None:
        data = call.data.offer
        if data.get("won") or call.state is not CallState.QUEUED:
            return
        tenant = self.m._tenant(call)
        queue = tenant.queues[offer.queue]
        leg = _leg_of(call.uuid, offer.token, oa)
        data["legs"][leg] = oa.agent
        # A rung offer's agents are Receiving already, and the leg needs no save first: a
        # new holder finds it from the reservation (resume).
        if not offer.rung and not self._offering_saved(call, offer, oa.agent):
            del data["legs"][leg]
            self._agent_done(call, oa.agent)
            return
        if oa.type == AgentType.UUID_STANDBY.value:
            self._answered(call, leg)
            return
        shown = call.data.dnis if queue.caller_id == "number" else (
            "".join(c for c in call.data.caller if c.isdigit() or c == "+")[:32]
            or call.data.dnis)
        variables = {
            "origination_uuid": leg, "cc_member": call.uuid, "cc_tenant": tenant.tenant,
            "cc_queue": offer.queue, "cc_agent": oa.agent, "cc_offer": offer.token,
            "origination_caller_id_number": shown, "origination_caller_id_name": shown,
            "originate_timeout": str(queue.ring_timeout_s), "ignore_early_media": "true",
            "cc_400_number": call.data.dnis,
            # What the caller keyed in the IVR, for the agent's desk (screen pop).
            **{f"cc_var_{name}": value for name, value in call.data.vars.items()}}
        self.m._act(call)
        # The bytes go out at once unless another greenlet is mid-write (send lock): the
        # originate is "sent" here; the switch's reply then takes a round trip of its own.
        sending = time.monotonic()
        job = call.link.bgapi(commands.originate(oa.contact, variables=variables))
        joined = self._joined_at.pop(call.uuid, None)
        if joined is not None:
            if self.observe_originate is not None:
                self.observe_originate(sending - joined)
            if self.observe_offer is not None:
                self.observe_offer(time.monotonic() - joined)
        gevent.spawn(self._await_job, call.uuid, leg, oa.agent, job,
                     queue.ring_timeout_s + JOB_SLACK_S)

    def _same_redis(self) -> bool:
        """Whether the call's record and the ACD share one client (one pipeline for both)."""
        return getattr(self.m.store, "redis", None) is getattr(self.acd, "redis", False)

    def _offering_saved(self, call: Call, offer: Offer, agent: str) -> bool:
        """``acd.offering`` then the call saved with the leg about to ring, in one round trip
        to Redis where the call's record and the ACD share a client (two otherwise): one wait
        less between a caller's join and the agent's phone ringing. False: the reservation is
        gone, do not ring (the leg was saved all the same: the caller removes it and saves
        again)."""
        pipe = self.acd.pipeline() if self._same_redis() else None
        if pipe is None:
            if not self.acd.offering(offer, agent):
                return False
            self.m._save(call, CallState.QUEUED)
            return True
        self.acd.offering(offer, agent, pipe=pipe)
        self.m.store.save(call.data.tenant, call.uuid, CallState.QUEUED, call.data, pipe=pipe)
        offered, saved = run_pipeline(pipe)
        self.m._saved(call, CallState.QUEUED, int(saved))
        return self.acd.offered(offered)

    def _await_job(self, call_uuid: str, leg: str, agent: str, job: Any, timeout: float) -> None:
        try:
            body = job.get(timeout)
        except (EslError, gevent.Timeout) as exc:
            body = f"-ERR {type(exc).__name__}"
        text = str(body or "").strip()
        if text.startswith("-ERR"):
            cause = text[4:].strip() or "NORMAL_TEMPORARY_FAILURE"
            self.post(call_uuid, lambda: self._leg_failed(call_uuid, leg, agent, cause))

    # ==== agent legs' events (in the agent leg's lane: each hops to the caller's lane) ============
    def on_leg_answer(self, event: Any, link: Any) -> None:
        member = event.get("variable_cc_member")
        leg = event.unique_id
        # A callback's agent leg is run by the greenlet that rang it (_call_back).
        if member and leg and member != leg and not member.startswith(CALLBACK_PREFIX):
            tenant = event.get("variable_cc_tenant") or ""
            agent = event.get("variable_cc_agent") or ""
            self.post(member, lambda: self._leg_answered(member, leg, link, tenant, agent))

    def on_leg_hangup(self, event: Any, link: Any) -> None:
        member = event.get("variable_cc_member")
        leg = event.unique_id
        if not member or not leg or member == leg:
            return
        cause = event.get("Hangup-Cause") or ""
        agent = event.get("variable_cc_agent") or ""
        if member.startswith(CALLBACK_PREFIX):
            self._callback_leg_ended(member, leg, event)
        billsec = int(event.get("variable_billsec") or 0)
        answered = bool(event.get("variable_answer_epoch") not in (None, "", "0"))
        fallback = {"tenant": event.get("variable_cc_tenant") or "",
                    "queue": event.get("variable_cc_queue") or "",
                    "token": event.get("variable_cc_offer") or "", "node": link.node.name}
        self.post(member, lambda: self._leg_ended(member, leg, agent, cause, answered,
                                                  billsec, fallback))

    def on_leg_execute_complete(self, event: Any, link: Any) -> None:
        app_uuid = event.get("Application-UUID") or ""
        if not app_uuid.startswith("whisper."):
            return
        member = app_uuid.rsplit(".", 1)[-1]
        leg = event.unique_id or ""
        self.post(member, lambda: self._whispered(member, leg))

    def _leg_answered(self, member: str, leg: str, link: Any, tenant: str = "",
                      agent: str = "") -> None:
        call = self.m._calls.get(member)
        if call is None and self._held_elsewhere(member, link, tenant, agent):
            # This worker took the switch over from a dead one and has not taken this caller
            # yet (its holder's heartbeat expires first): whoever does connects the agent
            # (``_adopt_offer``), who waits on the line until then rather than being cut off.
            log.info("agent answered for a caller not taken over yet; left for its new holder",
                     extra={"call_uuid": member, "tenant": tenant, "agent": agent, "leg": leg})
            return
        if call is None or leg not in call.data.offer.get("legs", {}):
            # The caller left (or this leg is not of its live offer): nobody to talk to.
            self._kill(link, leg, "ORIGINATOR_CANCEL")
            return
        self.m._guarded(call, lambda: self._answered(call, leg))

    def _held_elsewhere(self, member: str, link: Any, tenant: str, agent: str) -> bool:
        """Whether the caller is still on the switch with ``agent`` still ringing for it: a
        live offer this worker does not run (yet)."""
        if not tenant or not agent:
            return False
        try:
            if link.api(commands.uuid_exists(member)).strip() != "true":
                return False
            view = self.acd.agent(tenant, agent)
        except (EslError, AcdError, ValueError):
            return False
        return view.call_uuid == member and view.state == AgentState.RECEIVING.value

    def _answered(self, call: Call, leg: str) -> None:
        data = call.data.offer
        agent = data["legs"][leg]
        if data.get("won"):
            self._kill(call.link, leg, "LOSE_RACE")
            return
        offer = _offer_of(data, call.data.tenant, call.uuid, call.node)
        if not self.acd.answered(offer, agent):
            self._kill(call.link, leg, "LOSE_RACE")
            return
        data["won"] = leg
        call.data.agent = agent
        call.data.agent_answered_ms = now_ms()
        if call.data.answer_mode == AnswerMode.GREETING.value:
            self.m.billable(call)      # greeting mode bills from the agent's answer
        self._won.add(leg)
        if self.observe_answer is not None and call.data.joined_ms:
            self.observe_answer(max(0, now_ms() - call.data.joined_ms) / 1000)
        for other in list(data["legs"]):
            if other != leg:
                self._kill(call.link, other, "LOSE_RACE")
        self._disarm(call.uuid)
        tenant = self.m._tenant(call)
        queue = tenant.queues[data["queue"]]
        if queue.whisper and not self._standby(tenant, agent):
            self.m._save(call, CallState.QUEUED)     # the winner, before its whisper starts
            self.m._act(call)
            call.link.sendmsg(leg, commands.execute_headers(
                "playback", tenant.prompts[queue.whisper],
                event_uuid=f"whisper.{call.data.seq}.{call.uuid}"))
            return
        self._bridge(call, leg)

    @staticmethod
    def _standby(tenant: Tenant, agent: str) -> bool:
        cfg = tenant.agents.get(agent)
        return cfg is not None and cfg.type is AgentType.UUID_STANDBY

    def _whispered(self, member: str, leg: str) -> None:
        call = self.m._calls.get(member)
        if call is not None and call.data.offer.get("won") == leg:
            self.m._guarded(call, lambda: self._bridge(call, leg))

    def _bridge(self, call: Call, leg: str) -> None:
        self.m._media(call, answer=True)     # greeting mode: answered when the agent is
        call.data.outcome = "answered_by_agent"
        call.data.pending = ""
        self.m._save(call, CallState.CONNECTED)
        self.m._act(call)
        if self.m.recorder is not None and call.data.queue:
            # From the agent's answer, on the caller's leg: both sides once bridged.
            if self.m.recorder.on_agent_answer(call, self.m._tenant(call), call.data.queue):
                self.m._save(call, CallState.CONNECTED)
        reply = call.link.api(commands.uuid_bridge(call.uuid, leg))
        if not reply.startswith("+OK"):
            log.warning("bridge to the agent refused: %s", reply.strip(),
                        extra=self.m._ctx(call.uuid, call.data.tenant))
            self._kill(call.link, leg, "NORMAL_TEMPORARY_FAILURE")
            self._unbridged(call, leg)

    def _unbridged(self, call: Call, leg: str) -> None:
        """The agent who won is not there to talk to (their phone answered and hung up at
        once): the caller waits again, in its place, with music; the agent wraps up."""
        data = call.data.offer
        agent = data["legs"][leg]
        self._won.discard(leg)      # its hang-up is no longer a bridged call's end
        offer = _offer_of(data, call.data.tenant, call.uuid, call.node)
        if not self.acd.bridge_failed(offer, agent):
            return      # the caller left meanwhile: its hang-up ends the call
        call.data.offer = {}
        call.data.agent = ""
        call.data.outcome = "queued"
        call.data.path.append(f"unbridged:{agent}")
        self.moh_ended(call)
        tenant = self.m._tenant(call)
        queue = tenant.queues.get(call.data.queue)
        if queue is not None:
            self._arm(call, queue)
        self.dispatch(call.data.tenant, call.data.queue)

    def _leg_failed(self, member: str, leg: str, agent: str, cause: str) -> None:
        """The originate to an agent failed before any channel (or with one: busy, no answer,
        rejected, not registered)."""
        call = self.m._calls.get(member)
        if call is None:
            return     # the caller left: leave() released the agent already
        data = call.data.offer
        if leg not in data.get("legs", {}):
            return     # already counted from the leg's own hang-up
        del data["legs"][leg]
        if data.get("won"):
            return     # a loser of a ring-all: released by answered()
        self._absent_if(cause, call.node, call.data.tenant, agent)
        self.acd.agent_failed(_offer_of(data, call.data.tenant, call.uuid, call.node),
                              agent, cause)
        self.m._guarded(call, lambda: self._agent_done(call, agent))

    def _absent_if(self, cause: str, node: str, tenant: str, agent: str) -> None:
        # Before agent_failed: with a not-registered delay of 0 the agent would otherwise be
        # Waiting, and rung again, at once.
        if miss_kind(cause) is MissKind.NOT_REGISTERED and self.on_not_registered is not None:
            self.on_not_registered(node, tenant, agent)

    def _agent_done(self, call: Call, agent: str) -> None:
        data = call.data.offer
        data["left"] = int(data.get("left", 1)) - 1
        data.setdefault("done", []).append(agent)
        if data["left"] > 0 or data.get("won") or call.state is not CallState.QUEUED:
            self.m._save(call, call.state)
            return
        call.data.offer = {}
        self.m._save(call, CallState.QUEUED)
        # Nobody of this offer took the call: the caller is Waiting again, in its place.
        self.dispatch(call.data.tenant, call.data.queue)

    def _leg_ended(self, member: str, leg: str, agent: str, cause: str, answered: bool,
                   billsec: int, fallback: dict[str, str]) -> None:
        call = self.m._calls.get(member)
        if (leg in self._won and call is not None and call.state is CallState.QUEUED
                and call.data.offer.get("won") == leg):
            # Hung up during the whisper, before any bridge: no call took place.
            self.m._guarded(call, lambda: self._unbridged(call, leg))
            return
        if leg in self._won:
            self._won.discard(leg)
            if fallback["tenant"] and agent:
                self.deliver(self.acd.call_ended_dispatch(fallback["tenant"], agent, member,
                                                          billsec * 1000))
            return
        if call is not None and leg in call.data.offer.get("legs", {}):
            if answered and call.data.offer.get("won") != leg:
                del call.data.offer["legs"][leg]   # answered too late: released already
                return
            self._leg_failed(member, leg, agent, cause)
            return
        if call is None and fallback["tenant"] and agent:
            # Not known here (the caller's holder changed, or the caller is gone): the ACD
            # refuses what no longer applies (a dead token, an agent not in this call).
            if answered and billsec > 0:
                self.acd.call_ended(fallback["tenant"], agent, member, billsec * 1000)
            elif cause not in _LOST:
                self._absent_if(cause, fallback["node"], fallback["tenant"], agent)
                self.acd.agent_failed(Offer(
                    tenant=fallback["tenant"], queue=fallback["queue"], call_uuid=member,
                    node="", token=fallback["token"], deadline_ms=0,
                    agents=(OfferedAgent(agent=agent, contact="", type="callback",
                                         delay_ms=0),)), agent, cause)
            self._after_free(fallback["tenant"], agent)

    def _after_free(self, tenant: str, agent: str) -> None:
        """An agent may be free again (no wrap-up or delay): offer them a waiting caller."""
        if tenant and agent:
            self.deliver(self.acd.dispatch_agent(tenant, agent))

    # ==== leaving ===================================================================================
    def caller_gone(self, call: Call, cause: str) -> None:
        """The caller's channel ended (hang-up, or the bridge to the agent ended)."""
        self._disarm(call.uuid)
        self._joined_at.pop(call.uuid, None)
        if call.state is CallState.QUEUED and call.data.outcome == "queued":
            call.data.outcome = "abandoned_in_queue"
        self.acd.leave(call.data.tenant, call.uuid, "hangup")
        for leg in list(call.data.offer.get("legs", {})):
            if leg != call.data.offer.get("won"):
                self._kill(call.link, leg, "ORIGINATOR_CANCEL")

    def call_lost(self, call: Call, end_ms: int | None = None) -> None:
        """The switch no longer has this caller nor, if bridged, its agent's leg (it restarted):
        no hang-up event will free the agent, so the call's end is counted here."""
        agent = call.data.agent     # set once an agent's answer won (whisper, then bridge)
        if agent:
            since = call.data.agent_answered_ms or call.data.joined_ms or now_ms()
            end = end_ms or now_ms()
            self.acd.call_ended(call.data.tenant, agent, call.uuid, max(0, end - since))
            self._won.difference_update(
                leg for leg, a in call.data.offer.get("legs", {}).items() if a == agent)
            self._after_free(call.data.tenant, agent)

    def orphaned(self, call: Call, end_ms: int) -> None:
        """The caller hung up while no worker owned the node: the hang-up of the agent's leg
        went unheard as well (a bridge ends both), so nothing else would ever free the agent
        from "In a queue call". Its leg is hung up in case it is still there (``uuid_kill``
        of a gone leg only answers -ERR), then the call's end is counted (talk time up to the
        caller's hang-up)."""
        won = call.data.offer.get("won")
        if won:
            self._kill(call.link, won, "NORMAL_CLEARING")
        self.call_lost(call, end_ms)

    def leave_for(self, call: Call, reason: str) -> None:
        """The caller stops waiting (timeout, no agent, exit key) but stays on the line."""
        call.data.left_queue_ms = left = now_ms()
        if call.data.joined_ms:
            call.data.waited_ms += max(0, left - call.data.joined_ms)
        self._disarm(call.uuid)
        self._joined_at.pop(call.uuid, None)
        self.acd.leave(call.data.tenant, call.uuid, reason)
        for leg in list(call.data.offer.get("legs", {})):
            self._kill(call.link, leg, "ORIGINATOR_CANCEL")
        call.data.offer = {}

    def _kill(self, link: Any, leg: str, cause: str) -> None:
        try:
            reply = link.api(commands.uuid_kill(leg, cause))
        except (EslError, ValueError) as exc:
            log.info("could not hang up an agent leg: %r", exc, extra={"call_uuid": leg})
            return
        if not reply.startswith("+OK"):
            # `-ERR No such channel!`: the originate sent a moment ago has not made its
            # channel yet; it is hung up as soon as it does (on_leg_create), or the agent's
            # phone would ring for nobody until the ring timeout.
            now = time.monotonic()
            if len(self._doomed) >= DOOMED_MAX:
                for old in [k for k, (_, t) in self._doomed.items() if now - t > DOOMED_S]:
                    del self._doomed[old]
            self._doomed[leg] = (cause, now)

    def on_leg_create(self, event: Any, link: Any) -> None:
        leg = event.unique_id or ""
        doomed = self._doomed.pop(leg, None)
        if doomed is not None:
            self._kill(link, leg, doomed[0])
            self._doomed.pop(leg, None)     # created now: never wait for it again

    # ==== waiting: max wait, no agent, announcements ====================================================
    def _arm(self, call: Call, queue: Queue) -> None:
        now = time.monotonic()
        self._waiting[call.uuid] = _Waiting(call.data.tenant, call.data.queue, queue, now,
                                            now + queue.announce.every_s)
        if self._wait_clock is None or self._wait_clock.dead:
            self._wait_clock = gevent.spawn(self._wait_loop)

    def _disarm(self, call_uuid: str) -> None:
        self._waiting.pop(call_uuid, None)

    def _wait_loop(self) -> None:
        # One greenlet for every caller waiting on this worker, not one each (each of which
        # asked Redis about its queue every second): it stops when nobody waits, and the
        # next caller to wait starts it again.
        while self._waiting:
            gevent.sleep(WAIT_TICK_S)
            try:
                self._wait_tick(time.monotonic())
            except Exception:  # noqa: BLE001 - one bad wait must not stop the others' clock
                log.exception("the queue wait clock failed a tick")

    def _wait_tick(self, now: float) -> None:
        for call_uuid, w in list(self._waiting.items()):
            queue = w.queue
            if queue.max_wait_s and now - w.start >= queue.max_wait_s:
                self._wait_over(call_uuid, "timeout")
                continue
            if queue.max_wait_no_agent_s:
                if self._is_staffed(w.tenant, w.name, now):
                    w.no_agent_since = None
                else:
                    w.no_agent_since = w.no_agent_since or now
                    limit = queue.max_wait_no_agent_s if now - w.start < queue.max_wait_no_agent_s \
                        else queue.max_wait_no_agent_reached_s
                    if now - w.no_agent_since >= limit:
                        self._wait_over(call_uuid, "no_agent_timeout")
                        continue
            ann = queue.announce
            if (ann.prompt or ann.position or ann.wait) and now >= w.next_announce:
                w.next_announce = now + ann.every_s
                self.post(call_uuid, functools.partial(self._announce, call_uuid))

    def _wait_over(self, call_uuid: str, reason: str) -> None:
        """The caller's wait is over (``reason``): its lane leaves the queue."""
        self._waiting.pop(call_uuid, None)
        self.post(call_uuid, lambda: self._timed_out(call_uuid, reason))

    def _is_staffed(self, tenant: str, name: str, now: float) -> bool:
        """Whether the queue has an agent Available, asked at most once per ``STAFFED_FOR_S``
        for all its waiting callers; a Redis blip reads as staffed (never a false timeout)."""
        seen = self._staffed.get((tenant, name))
        if seen is not None and now - seen[0] < STAFFED_FOR_S:
            return seen[1]
        try:
            staffed = self.acd.queue_view(tenant, name).agents_available > 0
        except Exception:  # noqa: BLE001 - a Redis blip must not end anyone's wait
            staffed = True
        if len(self._staffed) > 10_000:
            self._staffed.clear()
        self._staffed[(tenant, name)] = (now, staffed)
        return staffed

    def _timed_out(self, call_uuid: str, reason: str) -> None:
        call = self.m._calls.get(call_uuid)
        if call is None or call.state is not CallState.QUEUED or call.data.offer.get("won"):
            return
        self.m._guarded(call, lambda: self._overflow(call, reason))

    def _overflow(self, call: Call, reason: str) -> None:
        tenant = self.m._tenant(call)
        queue = tenant.queues[call.data.queue]
        self.leave_for(call, reason)
        call.data.path.append(f"left_queue:{reason}")
        if not call.data.chain:
            call.data.chain = [str(d) for d in queue.overflow]
        if not call.data.chain:
            self._overflowed(call, DestinationKind.HANGUP)
            call.data.outcome = "not_answered"
            self.m._then_hang_up(call, CallState.ENDING, [])
            return
        call.data.outcome = "overflowed"
        dest = Destination.parse(call.data.chain.pop(0))
        self._overflowed(call, dest.kind)
        self.m.goto(call, dest)

    def _overflowed(self, call: Call, kind: DestinationKind) -> None:
        # The kind, never the target: a transfer's target is a phone number.
        if self.count_overflow is not None:
            self.count_overflow(call.data.tenant, call.data.queue, kind.value)

    def exit_key(self, call: Call, digit: str) -> bool:
        """A key pressed while waiting; True when the queue has it as an exit key."""
        tenant = self.m._tenant(call)
        queue = tenant.queues.get(call.data.queue)
        if queue is None or digit not in queue.exit_keys or call.data.offer.get("won"):
            return False
        self.leave_for(call, "exit_key")
        call.data.path.append(f"exit_key:{digit}")
        call.data.outcome = "overflowed"
        self._overflowed(call, queue.exit_keys[digit].kind)
        self.m.goto(call, queue.exit_keys[digit])
        return True

    def _announce(self, call_uuid: str) -> None:
        call = self.m._calls.get(call_uuid)
        if call is None or call.state is not CallState.QUEUED or call.data.offer:
            return
        self.m._guarded(call, lambda: self._play_announcement(call))

    def _play_announcement(self, call: Call) -> None:
        tenant = self.m._tenant(call)
        queue = tenant.queues[call.data.queue]
        ann = queue.announce
        files = []
        if ann.prompt:
            files.append(tenant.prompts[ann.prompt])
        if ann.position or ann.wait:
            files.extend(self._numbers_said(call, tenant, ann))
        if not files:
            return
        path = files[0] if len(files) == 1 else "file_string://" + "!".join(files)
        # Queued behind the music, which the break then stops: the music's completion plays
        # it again after the announcement (moh_ended).
        self.m._sendmsg(call, commands.execute_headers("playback", path, event_lock=True))
        self.m._act(call)
        call.link.api(commands.uuid_break(call.uuid))

    def _numbers_said(self, call: Call, tenant: Tenant, ann: Announce) -> list[str]:
        """Callers ahead and the expected wait, as recordings (``cc_core.flow.spoken``)."""
        assert ann.digits is not None      # the config refuses position/wait without it
        pos, _ = self.acd.position(call.data.tenant, call.uuid)
        if pos <= 0:
            return []       # being offered right now
        out: list[str] = []

        def said(intro: str | None, n: int, outro: str | None) -> None:
            out.extend([tenant.prompts[intro]] if intro else [])
            out.extend(spoken.files(min(n, spoken.MAX_SPOKEN), ann.digits or ""))
            out.extend([tenant.prompts[outro]] if outro else [])

        if ann.position and pos > 1:
            said(ann.position_intro, pos - 1, ann.position_outro)
        if ann.wait:
            view = self.acd.queue_view(call.data.tenant, call.data.queue)
            if view.avg_handle_ms is not None and view.agents_available > 0:
                # This caller is served once the pos calls up to theirs are handled by the
                # agents logged in, at the queue's recent handle time.
                wait_s = pos * view.avg_handle_ms / 1000 / view.agents_available
                said(ann.wait_intro, max(1, math.ceil(wait_s / 60)), ann.wait_outro)
        return out

    # ==== callbacks ======================================================================================
    def callback(self, call: Call, tenant: Tenant, name: str) -> None:
        """The caller leaves their number: they hang up and keep their place in the queue."""
        queue = tenant.queues[name]
        number = "".join(c for c in call.data.caller if c.isdigit())[:20]
        if not number:
            call.data.outcome = "not_answered"
            self.m._then_hang_up(call, CallState.ENDING, [])
            return
        # The callback takes the caller's place in that queue if they were waiting in it.
        self.acd.enqueue(tenant.tenant, name, f"{CALLBACK_PREFIX}{call.uuid}", node=call.node,
                         priority=call.data.priority, caller=number, callback=number,
                         skills={**queue.skills, **call.data.skills}, place_of=call.uuid)
        call.data.outcome = "callback_requested"
        call.data.path.append(f"callback:{name}")
        apps = []
        if queue.callback.confirm_prompt:
            apps.append(("playback", tenant.prompts[queue.callback.confirm_prompt]))
        self.m._media(call, answer=True)
        self.m._then_hang_up(call, CallState.ANNOUNCING, apps)

    def _callback_link(self, offer: Offer) -> Any:
        return self.link_for(offer.node) if self.link_for is not None else None

    def _guard_callback(self, offer: Offer) -> None:
        try:
            self._call_back(offer)
        except Exception:  # noqa: BLE001 - logged; the reservation lapses, the callback stays
            log.exception("callback failed", extra={"call_uuid": offer.call_uuid,
                                                    "tenant": offer.tenant})

    def _call_back(self, offer: Offer) -> None:
        """A queued callback reached an agent: ring the agent first; when they answer, dial the
        caller from the agent's leg (the agent hears the ringing). Runs in its own greenlet:
        nothing else acts on this pseudo-member."""
        oa = offer.agents[0]
        tenant = self.m.decider.tenants.tenant(offer.tenant)
        link = self._callback_link(offer)
        if tenant is None or link is None or offer.queue not in tenant.queues:
            log.warning("callback offer for a node or tenant this worker does not know",
                        extra={"call_uuid": offer.call_uuid, "tenant": offer.tenant,
                               "node": offer.node})
            return      # the reservation lapses and another worker tries
        # Several workers may have heard a published callback offer: one rings the agent.
        if not self.acd.claim_offer(offer, self.m.worker_id) \
                or not self.acd.offering(offer, oa.agent):
            return
        queue = tenant.queues[offer.queue]
        leg = str(uuidlib.uuid4())
        variables = {
            "origination_uuid": leg, "cc_member": offer.call_uuid, "cc_tenant": tenant.tenant,
            "cc_queue": offer.queue, "cc_agent": oa.agent, "cc_offer": offer.token,
            "cc_node": offer.node, "cc_callback": "true",
            "origination_caller_id_number": offer.callback,
            "origination_caller_id_name": "callback", "originate_timeout":
            str(queue.ring_timeout_s)}
        try:
            reply = link.api(commands.originate(oa.contact, variables=variables),
                             timeout=queue.ring_timeout_s + JOB_SLACK_S)
        except EslError as exc:
            reply = f"-ERR {type(exc).__name__}"
        if not reply.startswith("+OK"):
            log.info("callback: the agent did not take it", extra={
                "call_uuid": offer.call_uuid, "tenant": offer.tenant, "agent": oa.agent,
                "reply": reply.strip()})
            cause = reply[4:].strip() or "NORMAL_TEMPORARY_FAILURE"
            self._absent_if(cause, offer.node, offer.tenant, oa.agent)
            self.acd.agent_failed(offer, oa.agent, cause)
            self._after_free(offer.tenant, oa.agent)
            return
        if not self.acd.answered(offer, oa.agent):
            self._kill(link, leg, "LOSE_RACE")
            return
        self._won.add(leg)
        number = "".join(c for c in offer.callback if c.isdigit())
        # The caller sees the 400 number they called (the first of the tenant's, if unknown).
        shown = next(iter(tenant.numbers), "")
        dial_vars = f"{{origination_caller_id_number={shown}}}" if shown else ""
        link.sendmsg(leg, commands.execute_headers(
            "bridge", f"{dial_vars}{tenant.gateway}/{number}", event_lock=True))
        link.sendmsg(leg, commands.hangup_headers())

    def _callback_leg_ended(self, member: str, leg: str, event: Any) -> None:
        """Retry a callback whose caller did not answer, up to the queue's retries."""
        if leg not in self._won and event.get("variable_answer_epoch") in (None, "", "0"):
            return      # the agent did not answer: the ACD put the callback back in place
        if event.get("variable_DIALSTATUS") == "SUCCESS":
            return
        tenant_id = event.get("variable_cc_tenant") or ""
        # Kept in Redis (a timer of the ACD), so a retry survives this worker's restart.
        code, tries, due_ms = self.acd.callback_failed(tenant_id, member, leg)
        ctx = {"call_uuid": member, "tenant": tenant_id, "tries": tries}
        if code == CB_RETRY:
            log.info("callback: the caller did not answer; trying again later",
                     extra={**ctx, "retry_in_s": max(0, due_ms - now_ms()) // 1000})
        elif code == CB_GAVE_UP:
            log.info("callback given up: the caller did not answer", extra=ctx)

    # ==== resuming after a failover ==========================================================================
    def resume(self, call: Call, app: str) -> bool:
        """A queued or connected call this worker now holds. True when it needed more than
        waiting for its next event."""
        if call.state is CallState.CONNECTED:
            # Bridged: the agent leg's hang-up comes to this worker now, and ends the agent's
            # call (wrap-up, counters) only for a leg it knows it bridged.
            won = call.data.offer.get("won")
            if won:
                self._won.add(won)
            return False
        tenant = self.m._tenant(call)
        queue = tenant.queues.get(call.data.queue)
        if queue is None:
            return False
        self._arm(call, queue)
        repaired = app != "playback"
        if repaired:
            self.moh_ended(call)        # its music stopped while nobody held the call
        if not call.data.offer:
            # The old holder may have rung the join's own offer without saving it: the
            # reservation tells the agents, and their legs' uuids follow from it.
            live = self.acd.live_offer(call.data.tenant, call.uuid)
            if live is not None and not live.callback:
                call.data.offer = _offer_data(live)
                call.data.offer["legs"] = {_leg_of(call.uuid, live.token, a): a.agent
                                           for a in live.agents}
        if call.data.offer:
            # An offer was in flight with the old holder: its agents' phones may be ringing,
            # or an agent may have picked up and be waiting on the line.
            self._adopt_offer(call)
            return True
        self.dispatch(call.data.tenant, call.data.queue)
        return repaired

    def _leg_app(self, call: Call, leg: str) -> str | None:
        """What an agent leg runs: None when it is gone, "" while it rings (the originate's
        ``&park()`` starts only once it is answered), else the application."""
        reply = call.link.api(commands.uuid_getvar(leg, "current_application")).strip()
        if reply.startswith("-ERR"):
            return None
        return "" if reply == _UNDEF else reply

    def _adopt_offer(self, call: Call) -> None:
        """Carry on the offer a dead holder started, under the same reservation: a ringing
        agent leg is kept (its answer or hang-up now comes to this worker, and answering
        connects the agent to the caller), an answered one is connected now; agents whose leg
        is gone are released at once rather than when the reservation lapses, and those the
        holder was to ring later (ring-progressively) are rung when it would have. With nobody
        of the offer left the caller is offered again in its place."""
        data = call.data.offer
        won = data.get("won")
        if won:
            self._won.add(won)      # its hang-up now ends the agent's call here
            app = self._leg_app(call, won)
            if app == "playback":
                return          # the whisper plays: its completion comes here and bridges
            if app is not None:
                self._bridge(call, won)
                return
            # The winner's leg ended before the bridge, while nobody held the call.
            self._unbridged(call, won)
            return
        offer = _offer_of(data, call.data.tenant, call.uuid, call.node)
        done = set(data.get("done", []))
        rung = set(data["legs"].values())
        answered: list[str] = []
        for leg, agent in list(data["legs"].items()):
            app = self._leg_app(call, leg)
            if app is None:
                del data["legs"][leg]
                self.acd.agent_failed(offer, agent, "ORIGINATOR_CANCEL")
                self._agent_done(call, agent)
            elif app:
                answered.append(leg)
        later = data.get("later", {})
        for agent in data.get("agents", []):
            if agent in rung or agent in done or not call.data.offer:
                continue
            if agent in later:
                # Ring-progressively: rung when the dead holder would have rung them.
                contact, kind, delay_ms = later[agent]
                oa = OfferedAgent(agent=agent, contact=contact, type=kind, delay_ms=delay_ms)
                wait_ms = max(0, int(data.get("at_ms", 0)) + delay_ms - now_ms())
                gevent.spawn_later(wait_ms / 1000, self.post, call.uuid,
                                   lambda o=oa: self._ring_later(call.uuid, offer, o))
            else:
                self.acd.agent_failed(offer, agent, "ORIGINATOR_CANCEL")
                self._agent_done(call, agent)
        for leg in answered:
            if call.data.offer and leg in call.data.offer.get("legs", {}):
                self._answered(call, leg)
