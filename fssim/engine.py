"""The channel engine: sessions, their state machines and their event sequences.

Every channel runs in its own greenlet, as a FreeSWITCH session runs in its own thread, and
fires its events in the order the 1.10.12 captures show (``scenarios/*/wire.raw``). Other
greenlets (api commands, sim controls, timers) only mark a channel (hang-up, bridge,
transfer, DTMF) and wake it; the few events FreeSWITCH fires from the caller's thread
(CHANNEL_HANGUP, CHANNEL_ANSWER, CALLSTATE, RECORD_START ...) are fired there too.
"""

from __future__ import annotations

import itertools
import logging
import uuid as uuidlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import gevent
import gevent.event

from fssim import dialplan, rtpstats
from fssim.channels import CallerProfile, Channel, new_uuid
from fssim.endpoints import Behaviour, Endpoints, parse_dial_string
from fssim.registrations import Registrar, Registration

if TYPE_CHECKING:
    from fssim.switch import Switch

log = logging.getLogger(__name__)

# Event-Calling-File/-Function/-Line-Number per event, as the captures report them.
CALLING: dict[str, tuple[str, str, int]] = {
    "CHANNEL_STATE": ("switch_channel.c", "switch_channel_perform_set_running_state", 2408),
    "CHANNEL_CALLSTATE": ("switch_channel.c", "switch_channel_perform_set_callstate", 301),
    "CHANNEL_CREATE": ("switch_core_state_machine.c", "switch_core_session_run", 626),
    "CHANNEL_ORIGINATE": ("switch_core_state_machine.c", "switch_core_session_run", 632),
    "CHANNEL_OUTGOING": ("switch_core_session.c", "switch_core_session_outgoing_channel", 768),
    "CHANNEL_DESTROY": ("switch_core_session.c", "switch_core_session_perform_destroy", 1584),
    "CHANNEL_EXECUTE": ("switch_core_session.c", "switch_core_session_exec", 2944),
    "CHANNEL_EXECUTE_COMPLETE": ("switch_core_session.c", "switch_core_session_exec", 2967),
    "CHANNEL_HANGUP": ("switch_channel.c", "switch_channel_perform_hangup", 3445),
    "CHANNEL_HANGUP_COMPLETE": ("switch_core_state_machine.c",
                                "switch_core_session_reporting_state", 943),
    "CHANNEL_ANSWER": ("switch_channel.c", "switch_channel_perform_mark_answered", 3846),
    "CHANNEL_PROGRESS": ("switch_channel.c", "switch_channel_perform_mark_ring_ready_value",
                         3505),
    "CHANNEL_PROGRESS_MEDIA": ("switch_channel.c", "switch_channel_perform_mark_pre_answered",
                               3560),
    "CHANNEL_PARK": ("switch_ivr.c", "switch_ivr_park", 1002),
    "CHANNEL_UNPARK": ("switch_ivr.c", "switch_ivr_park", 1213),
    "CHANNEL_BRIDGE": ("switch_ivr_bridge.c", "switch_ivr_multi_threaded_bridge", 1689),
    "CHANNEL_UNBRIDGE": ("switch_ivr_bridge.c", "switch_ivr_multi_threaded_bridge", 1879),
    "DTMF": ("switch_channel.c", "switch_channel_dequeue_dtmf", 677),
    "PLAYBACK_START": ("switch_ivr_play_say.c", "switch_ivr_play_file", 1646),
    "PLAYBACK_STOP": ("switch_ivr_play_say.c", "switch_ivr_play_file", 2020),
    "RECORD_START": ("switch_ivr_async.c", "record_callback", 1481),
    "RECORD_STOP": ("switch_ivr_async.c", "send_record_stop_event", 1240),
    "MEDIA_BUG_START": ("switch_core_media_bug.c", "switch_core_media_bug_add", 1014),
    "MEDIA_BUG_STOP": ("switch_core_media_bug.c", "switch_core_media_bug_destroy", 84),
    "PRIVATE_COMMAND": ("switch_ivr.c", "switch_ivr_parse_next_event", 804),
    "CALL_UPDATE": ("mod_sofia.c", "sofia_receive_message", 2100),
}
UUID_BRIDGE_EXEC = ("switch_ivr_bridge.c", "uuid_bridge_on_soft_execute", 1236)

# Events without variable_* (the captures' terse events).
TERSE = frozenset({"CHANNEL_STATE", "CHANNEL_CALLSTATE", "DTMF", "CHANNEL_OUTGOING", "CODEC"})
CODEC_READ = ("switch_core_codec.c", "switch_core_session_set_real_read_codec", 168)
CODEC_WRITE = ("switch_core_codec.c", "switch_core_session_set_write_codec", 450)

# switch_types.h: switch_channel_callstate_t, for Channel-Call-State-Number.
_CALLSTATE_NUMBERS = {"DOWN": 0, "DIALING": 1, "RINGING": 2, "EARLY": 3, "ACTIVE": 4, "HELD": 5,
                      "RING_WAIT": 6, "HANGUP": 7, "UNHELD": 8}

HOST = "127.0.0.1"
CALLER_PORT = 5080

# Events before which sofia's post-answer dialog variables are not yet visible (captures:
# sip_to_tag is absent from CHANNEL_ANSWER and the first CHANNEL_EXECUTE after it).
_BEFORE_DIALOG = TERSE | {"CHANNEL_ANSWER", "CHANNEL_EXECUTE"}
# Codec variables switch_core_media.c sets when a leg's codec is chosen (capture values).
_MEDIA_VARS = {"read_codec": "PCMU", "original_read_codec": "PCMU", "read_rate": "8000",
               "original_read_rate": "8000", "write_codec": "PCMU", "write_rate": "8000",
               "dtmf_type": "rfc2833"}


# mod_loopback's own codec (L16 at 8 kHz in loopback_selftest)
_LOOPBACK_CODEC = {"read_codec": "L16", "read_rate": "8000", "write_codec": "L16",
                   "write_rate": "8000"}


def _tag() -> str:
    """A SIP tag / branch suffix; per run, never compared."""
    return uuidlib.uuid4().hex[:13]


def switch_true(value: str | None) -> bool:
    """switch_utils.h:switch_true: yes/on/true/t/enabled/active/allow, or a non-zero number."""
    if not value:
        return False
    v = value.strip().lower()
    if v in ("yes", "on", "true", "t", "enabled", "active", "allow"):
        return True
    return v.lstrip("-").isdigit() and int(v) != 0


class SessionLimit(Exception):
    """Raised when --max-sessions would be exceeded."""


@dataclass
class SendMsg:
    app: str
    arg: str
    event_uuid: str | None
    loops: int = 1
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: str | None = None
    event_lock: bool = False


@dataclass
class Originate:
    """One originate attempt shared by the legs of a ring-all group."""

    timeout: float
    decided: gevent.event.Event = field(default_factory=gevent.event.Event)
    go: gevent.event.Event = field(default_factory=gevent.event.Event)
    winner: Channel | None = None
    legs: list[Channel] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    pending: int = 0

    def leg_answered(self, ch: Channel) -> None:
        if self.winner is None:
            self.winner = ch
            self.decided.set()

    def leg_failed(self, cause: str) -> None:
        self.failures.append(cause)
        self.pending -= 1
        if self.pending <= 0 and self.winner is None:
            self.decided.set()


# The channel headers after its basic block (Channel.extended_headers, Channel.headers) are
# all named with one of these prefixes: an ``extra`` header named otherwise is the first of
# its name in the event.
_PROFILE_PREFIXES = ("Channel-", "Caller-", "Other-", "variable_")


def _known_first(pre: list[tuple[str, str]] | None, basic: list[tuple[str, str]],
                 extra: list[tuple[str, str]] | None) -> dict[str, str]:
    """The headers of a channel event known before its profile and variables are built, each
    the first of its name in the event (``SimEvent.build_later``): ``pre`` and the basic block
    lead the event; an ``extra`` header counts unless a profile header could precede it."""
    known: dict[str, str] = {}
    for name, value in (*(pre or ()), *basic):
        known.setdefault(name, value)
    for name, value in extra or ():
        if not name.startswith(_PROFILE_PREFIXES):
            known.setdefault(name, value)
    return known


class Engine:
    """All channels of one Switch, and the operations the api / sim controls call."""

    def __init__(self, switch: Switch) -> None:
        self.switch = switch
        self.clock = switch.clock
        self.channels: dict[str, Channel] = {}
        self.endpoints = Endpoints()
        self.registrar = Registrar(switch)
        # switch_scheduler.c: tasks by id, each in a group (sched_transfer's is the uuid)
        self.tasks: dict[int, tuple[str, gevent.Greenlet]] = {}
        self._task_ids = itertools.count(1)
        self.sessions_since_start = 0
        # how every far end's audio arrives unless sim_rtp says otherwise for a leg
        self.rtp_quality = rtpstats.RtpQuality()

    @property
    def time_scale(self) -> float:
        return self.clock.time_scale

    def spawn(self, fn: Callable[..., Any], *args: Any) -> gevent.Greenlet:
        return self.switch.spawn(fn, *args)

    def sleep(self, sim_seconds: float) -> None:
        self.clock.sleep(sim_seconds)

    def session_counts(self) -> tuple[int, int]:
        return len(self.channels), self.sessions_since_start

    def session_exists(self, uid: str) -> bool:
        ch = self.channels.get(uid)
        return ch is not None and not ch.reported.is_set()

    def getvar(self, uid: str, name: str) -> str | None:
        ch = self.channels.get(uid)
        return None if ch is None else ch.variables.get(name)

    # ---- event plumbing ----------------------------------------------------------------
    def fire(self, ch: Channel, name: str, *, extra: list[tuple[str, str]] | None = None,
             pre: list[tuple[str, str]] | None = None,
             calling: tuple[str, str, int] | None = None, body: str | None = None) -> None:
        if ch.dialog_pending is not None and name not in _BEFORE_DIALOG:
            self._apply_dialog(ch, name)
        ev = self.switch.new_event(name, calling=calling or CALLING.get(name, ("", "", 0)))
        verbose = name not in TERSE

        def build() -> list[tuple[str, str]]:
            # every value is already a str: one list, no SimEvent.add per header
            return [*(pre or ()), *ch.headers(verbose), *(extra or ())]

        ev.build_later(build, _known_first(pre, ch.basic_headers(), extra))
        if body is not None:
            ev.body = body
        self.switch.fire(ev)

    def set_state(self, ch: Channel, state: str) -> None:
        ch.state = state
        ch.next_state = None
        self.fire(ch, "CHANNEL_STATE")

    def set_callstate(self, ch: Channel, callstate: str) -> None:
        original = ch.callstate
        ch.callstate = callstate
        self.fire(ch, "CHANNEL_CALLSTATE",
                  pre=[("Original-Channel-Call-State", original),
                         ("Channel-Call-State-Number",
                          str(_CALLSTATE_NUMBERS.get(callstate, 0)))])

    # ---- creation ----------------------------------------------------------------------
    def _check_limit(self) -> None:
        if len(self.channels) >= self.switch.max_sessions:
            raise SessionLimit()

    def _new_channel(self, *, name: str, direction: str, profile: CallerProfile,
                     kind: str = "sofia", uid: str | None = None) -> Channel:
        self._check_limit()
        uid = uid or profile.uuid
        self.sessions_since_start += 1
        ch = Channel(engine=self, uuid=uid, name=name, direction=direction, profile=profile,
                     kind=kind)
        ch.session_id = self.sessions_since_start
        ch.created_sim = self.clock.now()
        ch.created_us = self.clock.wall_us()
        profile.profile_created_us = ch.created_us
        self.channels[uid] = ch
        return ch

    def _profile(self, uid: str, *, direction: str, number: str, name: str, dest: str,
                 channel_name: str, source: str, dialplan_name: str = "XML",
                 network: str = HOST, username: str = "") -> CallerProfile:
        return CallerProfile(direction=direction, username=username, dialplan=dialplan_name,
                             caller_id_name=name, caller_id_number=number,
                             network_addr=network, destination_number=dest, source=source,
                             context="default", channel_name=channel_name, uuid=uid)

    def inbound(self, caller: str, dnis: str, params: list[tuple[str, str]]) -> Channel:
        """A SIP INVITE from ``caller`` to ``dnis`` (sim_inbound)."""
        uid = new_uuid()
        values = dict(params)
        cid_name = values.get("caller_id_name", caller)
        name = f"sofia/internal/{caller}@{HOST}:{CALLER_PORT}"
        profile = self._profile(uid, direction="inbound", number=caller, name=cid_name,
                                dest=dnis, channel_name=name, source="mod_sofia",
                                username=caller)
        ch = self._new_channel(name=name, direction="inbound", profile=profile)
        v = ch.variables
        # sofia.c:sofia_handle_sip_i_invite sets these (capture order, trimmed)
        v.update({
            "direction": "inbound", "uuid": uid, "call_uuid": uid,
            "session_id": str(ch.session_id), "sip_from_user": caller,
            "sip_from_port": str(CALLER_PORT), "sip_from_uri": f"{caller}@{HOST}:{CALLER_PORT}",
            "sip_from_host": HOST, "channel_name": name, "sip_call_id": f"{uid}@{HOST}",
            "sip_local_network_addr": HOST, "sip_network_ip": HOST,
            "sip_network_port": str(CALLER_PORT), "sip_invite_stamp": str(ch.created_us),
            "sip_received_ip": HOST,
            "sip_received_port": str(CALLER_PORT), "sip_via_protocol": "udp",
            "sip_from_user_stripped": caller, "sofia_profile_name": "internal",
            "sofia_profile_url": f"sip:mod_sofia@{HOST}:5060",
            "recovery_profile_name": "internal", "sip_from_display": cid_name,
            "sip_full_from": f'"{cid_name}" <sip:{caller}@{HOST}:{CALLER_PORT}>',
            "sip_full_to": f"<sip:{dnis}@{HOST}:5060>", "sip_req_user": dnis,
            "sip_req_port": "5060", "sip_req_uri": f"{dnis}@{HOST}:5060", "sip_req_host": HOST,
            "sip_to_user": dnis, "sip_to_port": "5060", "sip_to_uri": f"{dnis}@{HOST}:5060",
            "sip_to_host": HOST, "sip_contact_user": caller,
            "sip_contact_port": str(CALLER_PORT),
            "sip_contact_uri": f"{caller}@{HOST}:{CALLER_PORT}", "sip_contact_host": HOST,
        })
        for key, value in params:
            if key.startswith("sip_h_"):
                # sofia.c: each unknown X- header becomes variable sip_h_<Header-Name>
                v[key] = value
        v.update({"sip_via_host": HOST, "sip_via_port": str(CALLER_PORT),
                  "max_forwards": "70", "read_codec": "PCMU", "original_read_codec": "PCMU",
                  "read_rate": "8000", "original_read_rate": "8000", "write_codec": "PCMU",
                  "write_rate": "8000", "dtmf_type": "rfc2833",
                  "endpoint_disposition": "RECEIVED"})
        # sofia.c:sofia_handle_sip_i_invite: the INVITE's dialog identity (tags, Via)
        from_tag = _tag()
        v.update({"sip_from_tag": from_tag,
                  "sip_full_via": f"SIP/2.0/UDP {HOST}:{CALLER_PORT};branch=z9hG4bK-{_tag()}",
                  "sip_full_from": f'"{cid_name}" <sip:{caller}@{HOST}:{CALLER_PORT}>;'
                                   f"tag={from_tag}"})
        apps = dialplan.route(dnis, params)
        self.spawn(self._run_inbound, ch, apps)
        return ch

    def _run_inbound(self, ch: Channel, apps: list[tuple[str, str]] | None) -> None:
        try:
            if ch.kind == "sofia":
                ch.profile_ready = False  # sofia attaches the caller profile after CS_NEW
                self.set_state(ch, "CS_NEW")
                ch.media = True
                self.codec_events(ch)
                ch.profile_ready = True
            else:  # loopback -b: codecs set while still CS_NONE (loopback_selftest)
                ch.state = "CS_NONE"
                ch.media = True
                self.codec_events(ch)
            ch.media = True
            self.set_state(ch, "CS_INIT")
            ch.next_state = "CS_ROUTING"
            self.fire(ch, "CHANNEL_CREATE")
            ch.state = "CS_ROUTING"
            ch.next_state = None
            self.set_callstate(ch, "RINGING")
            self.fire(ch, "CHANNEL_STATE")
            if not ch.hangup_pending:
                if apps is None:
                    self.hangup(ch, "NO_ROUTE_DESTINATION")
                else:
                    self.set_state(ch, "CS_EXECUTE")
                    self.run_extension(ch, apps)
            self.finish(ch)
        except gevent.GreenletExit:
            raise
        except Exception:
            log.exception("session failed", extra={"call_uuid": ch.uuid})
            self._force_end(ch)

    # ---- execution ---------------------------------------------------------------------
    def run_extension(self, ch: Channel, apps: list[tuple[str, str]]) -> None:
        """Run dialplan applications; when they run out the channel hangs up, as
        FreeSWITCH does when an extension ends (switch_core_standard_on_execute)."""
        from fssim import apps as applib

        queue = list(apps)
        while queue and not ch.hangup_pending:
            app, arg = queue.pop(0)
            self.execute(ch, app, arg)
            outcome = self.after_app(ch)
            while outcome == "again":  # re-bridged while bridged
                outcome = self.after_app(ch)
            if outcome == "park":
                queue = [("park", "")]
            elif isinstance(outcome, list):
                queue = outcome
        if not ch.hangup_pending and ch.alive:
            self.hangup(ch, "NORMAL_CLEARING")
        applib.flush_pending_hangup(self, ch)

    def after_app(self, ch: Channel) -> str | list[tuple[str, str]] | None:
        """After an app returns: a pending uuid_bridge or transfer takes the channel over."""
        request = ch.bridge_request
        if request is None or ch.hangup_pending:
            return None
        ch.bridge_request = None
        kind = request[0]
        if kind == "uuid_bridge":
            return self.uuid_bridged(ch, request[1], request[2])
        if kind == "transfer":
            return self._transferred(ch, request[1], request[2])
        return None

    def execute(self, ch: Channel, app: str, arg: str, app_uuid: str | None = None) -> None:
        from fssim import apps as applib

        ch.app_name, ch.app_data = app, arg
        # switch_core_session.c:switch_core_session_execute_application_get_flags; setting a
        # variable to "" deletes it (switch_channel_set_variable), as the captures show for
        # park / ring_ready / pre_answer
        if arg:
            ch.variables["current_application_data"] = arg
        else:
            ch.variables.pop("current_application_data", None)
        ch.variables["current_application"] = app
        ch.variables.pop("current_application_response", None)
        ch.app_response = None
        uid = app_uuid or new_uuid()
        head = [("Application", app)] + ([("Application-Data", arg)] if arg else [])
        self.fire(ch, "CHANNEL_EXECUTE", extra=head + [("Application-UUID", uid)])
        applib.run(self, ch, app, arg)
        ch.app_name, ch.app_data = app, arg
        if ch.app_response is not None:
            # mod_dptools.c:playback_function sets current_application_response
            ch.variables["current_application_response"] = ch.app_response
        self.fire(ch, "CHANNEL_EXECUTE_COMPLETE",
                  extra=head + [("Application-Response", ch.app_response or "_none_"),
                                ("Application-UUID", uid)])

    def schedule(self, group: str, sim_delay_s: float, fn: Callable[[], None]) -> int:
        """switch_scheduler_add_task: run ``fn`` after the delay; returns the task id."""
        task_id = next(self._task_ids)

        def run() -> None:
            self.clock.sleep(sim_delay_s)
            if self.tasks.pop(task_id, None) is not None:
                fn()

        self.tasks[task_id] = (group, self.spawn(run))
        return task_id

    def unschedule(self, key: str) -> int:
        """switch_scheduler_del_task_id / _group: how many tasks were deleted."""
        if key.isdigit():
            found = [int(key)] if int(key) in self.tasks else []
        else:
            found = [tid for tid, (group, _) in self.tasks.items() if group == key]
        for tid in found:
            _, greenlet = self.tasks.pop(tid)
            greenlet.kill(block=False)
        return len(found)

    def park(self, ch: Channel) -> None:
        """switch_ivr.c:switch_ivr_park: run queued sendmsg apps until hang-up, bridge or
        transfer."""
        ch.parked = True
        self.fire(ch, "CHANNEL_PARK")
        while not ch.hangup_pending and ch.bridge_request is None:
            item = ch.inbox.get()
            if item is None or ch.hangup_pending or ch.bridge_request is not None:
                if item is not None:
                    ch.inbox.queue.appendleft(item)
                continue
            self.run_sendmsg(ch, item)
        ch.parked = False
        self.fire(ch, "CHANNEL_UNPARK")

    def run_sendmsg(self, ch: Channel, msg: SendMsg) -> None:
        from fssim import apps as applib

        # switch_ivr.c:switch_ivr_parse_next_event fires PRIVATE_COMMAND after running a
        # queued command, but only from park's media loop: the captures show none for
        # commands taken while the leg had no media (ring_ready, pre_answer) nor for the
        # first one taken in the first park tick (20 ms) after the answer, one otherwise.
        since = ch.media_since
        media_loop = since is not None and (
            ch.sendmsgs_with_media > 0 or self.clock.now() - since >= 0.02)
        if since is not None:
            ch.sendmsgs_with_media += 1
        if msg.app == "__hangup__":
            self.hangup(ch, msg.arg or "NORMAL_CLEARING")
            if media_loop:
                self._private_command(ch, msg)
            return
        loops = max(1, msg.loops)
        v = ch.variables
        for loop in range(loops):
            if ch.hangup_pending:
                break
            if msg.app not in applib.APPS:
                log.warning("invalid application", extra={"call_uuid": ch.uuid,
                                                           "app": msg.app})
                # switch_core_session.c:switch_core_session_execute_application_get_flags
                self.hangup(ch, "DESTINATION_OUT_OF_ORDER")
                break
            # switch_ivr.c:switch_ivr_parse_event: current_loop / total_loops live while a
            # sendmsg app runs (captures: on its EXECUTE .. EXECUTE_COMPLETE only)
            v["current_loop"] = str(loop + 1)
            v["total_loops"] = str(loops)
            # switch_ivr.c:switch_ivr_parse_event sets CF_EVENT_LOCK around a locked app
            locked_before, ch.event_lock = ch.event_lock, ch.event_lock or msg.event_lock
            try:
                self.execute(ch, msg.app, msg.arg, msg.event_uuid)
            finally:
                ch.event_lock = locked_before
            v.pop("current_loop", None)
            v.pop("total_loops", None)
        if media_loop:
            self._private_command(ch, msg)

    def _private_command(self, ch: Channel, msg: SendMsg) -> None:
        command = "hangup" if msg.app == "__hangup__" else "execute"
        extra = [("call-command", command)]
        if command == "execute":
            extra += [("execute-app-name", msg.app), ("execute-app-arg", msg.arg)]
        self.fire(ch, "PRIVATE_COMMAND", extra=extra)

    def queue_sendmsg(self, uid: str, headers: list[tuple[str, str]], body: str | None) -> str:
        """sendmsg from a client (mod_event_socket: parse_command 'sendmsg')."""
        ch = self.channels.get(uid)
        if ch is None or not ch.alive and ch.reported.is_set():
            return f"-ERR invalid session id [{uid}]"
        lower = {k.lower(): v for k, v in headers}
        command = lower.get("call-command", "")
        if command == "hangup":
            cause = lower.get("hangup-cause", "NORMAL_CLEARING")
            msg = SendMsg("__hangup__", cause, None)
        elif command == "execute":
            app = lower.get("execute-app-name", "")
            arg = lower.get("execute-app-arg", "")
            if not arg and body and lower.get("content-type") == "text/plain":
                arg = body
            try:
                loops = int(lower.get("loops", "1"))
            except ValueError:
                loops = 1
            msg = SendMsg(app, arg, lower.get("event-uuid"), loops, headers, body,
                          event_lock=switch_true(lower.get("event-lock")))
        else:
            return "+OK"
        ch.inbox.put(msg)
        ch.signal.set()  # a media app parsing events picks it up now
        return "+OK"

    # ---- answer / progress -------------------------------------------------------------
    def mark_ring_ready(self, ch: Channel) -> None:
        if ch.progress_sim is None:
            ch.progress_sim = self.clock.now()
        if ch.direction == "inbound" and ch.kind == "sofia" and not ch.answered:
            self._dialog_after_answer(ch, final=False)  # the 180 carries the To tag
        originator = ch.other if ch.other_type == "originator" else None
        if originator is not None and originator.progress_sim is None:
            # switch_ivr_originate.c: the bridge app's caller notes the agent's ringing
            # (progress_stamp on A in record_session_bridge_app, with no event)
            originator.progress_sim = self.clock.now()
        self.fire(ch, "CHANNEL_PROGRESS")

    def mark_pre_answered(self, ch: Channel) -> None:
        if ch.answered or ch.answer_state == "early":
            return
        if ch.direction == "inbound" and ch.kind == "sofia":
            self._dialog_after_answer(ch, final=False)  # the 183 carries the To tag
        ch.progress_media_sim = self.clock.now()
        ch.media_since = ch.progress_media_sim
        ch.answer_state = "early"
        if ch.kind == "sofia":
            # mod_sofia.c (183 sent): greeting_mode_early_media from CHANNEL_PROGRESS_MEDIA on
            ch.variables["endpoint_disposition"] = "EARLY MEDIA"
        self.fire(ch, "CHANNEL_PROGRESS_MEDIA")
        self.set_callstate(ch, "EARLY")

    def codec_events(self, ch: Channel) -> None:
        """CODEC, read then write, as sofia reports the negotiated codec (captures)."""
        name, bits = ch.codec()
        self.fire(ch, "CODEC", calling=CODEC_READ,
                  extra=[("channel-read-codec-name", name),
                         ("channel-read-codec-rate", "8000"),
                         ("channel-read-codec-bit-rate", bits)])
        self.fire(ch, "CODEC", calling=CODEC_WRITE,
                  extra=[("Channel-Write-Codec-Name", name),
                         ("Channel-Write-Codec-Rate", "8000"),
                         ("Channel-Write-codec-bit-rate", bits)])

    def mark_answered(self, ch: Channel) -> bool:
        if ch.answered or not ch.alive:
            return False
        if ch.partner is not None and ch.direction == "inbound" and ch.partner.alive:
            # loopback: answering the -b leg answers the -a leg first (loopback_selftest)
            self.mark_answered(ch.partner)
        if not ch.media and ch.kind == "sofia":
            ch.media = True
            self.codec_events(ch)
        ch.answered_sim = self.clock.now()
        if ch.media_since is None:
            ch.media_since = ch.answered_sim
        ch.answer_state = "answered"
        ch.media = True
        if not ch.profile.network_addr and ch.kind == "sofia":
            ch.profile.network_addr = HOST
        if ch.direction == "outbound" and ch.kind == "sofia":
            # the 200 OK's SDP sets the leg's codec (captures: on the B leg's CHANNEL_ANSWER)
            ch.variables.update(_MEDIA_VARS)
        if ch.direction == "inbound" and ch.kind == "sofia":
            self._dialog_after_answer(ch)
        self.fire(ch, "CHANNEL_ANSWER")
        # captures: CHANNEL_ANSWER still says RECEIVED (inbound) / nothing (outbound); the
        # next verbose event says ANSWER (mod_sofia sets it once the answer is sent)
        ch.variables["endpoint_disposition"] = "ANSWER"
        self.set_callstate(ch, "ACTIVE")
        if ch.direction == "outbound":
            self._flip_cid(ch, swap=ch.other_type != "originator")
        ch.signal.set()
        return True

    def _dialog_after_answer(self, ch: Channel, *, final: bool = True) -> None:
        """sofia.c: our first 18x / 200 gives the dialog its To tag, the ACK of the 200
        its CSeq. Captures: sip_to_tag from the event after ring_ready's EXECUTE
        (greeting_mode_early_media), both from the answering tick's first event that is
        neither CHANNEL_EXECUTE nor (early media running) PLAYBACK_STOP."""
        pending = ch.dialog_pending or {}
        if "sip_to_tag" not in ch.variables and "sip_to_tag" not in pending:
            to_tag = _tag()
            dnis = ch.profile.destination_number
            pending["sip_to_tag"] = to_tag
            pending["sip_full_to"] = f"<sip:{dnis}@{HOST}:5060>;tag={to_tag}"
        if final:
            pending["sip_cseq"] = "1"
        ch.dialog_pending = pending

    def _apply_dialog(self, ch: Channel, name: str) -> None:
        pending = ch.dialog_pending or {}
        if "sip_cseq" in pending and name == "PLAYBACK_STOP" and ch.progress_media_sim:
            # the answer came during early media: the ACK is read after this stop
            rest = {k: v for k, v in pending.items() if k != "sip_cseq"}
            ch.variables.update(rest)
            ch.dialog_pending = {"sip_cseq": pending["sip_cseq"]}
            return
        ch.variables.update(pending)
        ch.dialog_pending = None

    def _flip_cid(self, ch: Channel, *, swap: bool = True) -> None:
        """switch_channel.c:switch_channel_flip_cid on an answered outbound leg: its caller id
        becomes the callee it dialled (``Outbound Call``/<dest>), the callee the original
        caller id; announced by CALL_UPDATE (Direction RECV), as captured."""
        if not swap:
            # the bridge app's B leg keeps its caller id (record_session_bridge_app)
            self.fire(ch, "CALL_UPDATE", pre=[("Direction", "RECV")],
                      calling=("switch_channel.c", "switch_channel_flip_cid", 3277))
            return
        p = ch.profile
        if p.orig_caller_id_name is None:
            p.orig_caller_id_name = p.caller_id_name
        if p.orig_caller_id_number is None:
            p.orig_caller_id_number = p.caller_id_number
        p.caller_id_name, p.callee_id_name = p.callee_id_name, p.caller_id_name
        p.caller_id_number, p.callee_id_number = p.callee_id_number, p.caller_id_number
        ch.hit_dialplan = True
        self.fire(ch, "CALL_UPDATE", pre=[("Direction", "RECV")],
                  calling=("switch_channel.c", "switch_channel_flip_cid", 3277))

    # ---- hang-up -----------------------------------------------------------------------
    def hangup(self, ch: Channel, cause: str, *, deferred: bool = False,
               origin: str = "local") -> bool:
        """switch_channel.c:switch_channel_perform_hangup: fires CHANNEL_HANGUP at once;
        the session greenlet tears the channel down. ``deferred`` only marks the channel
        (the loopback twin leaves park before it reports its hang-up)."""
        if not ch.alive or (ch.hangup_pending and ch.hangup_cause):
            return False
        if deferred:
            ch.hangup_pending = True
            ch.deferred_cause = ch.deferred_cause or cause
            ch.wake()
            return True
        ch.hangup_pending = True
        ch.hangup_cause = cause
        ch.hangup_sim = self.clock.now()
        ch.answer_state = "hangup"
        ch.next_state = "CS_HANGUP"
        ch.deferred_cause = None
        v = ch.variables
        other = ch.other
        bridged = ch.bridged_side != "" and other is not None and other.alive
        if bridged and other is not None:
            # captures: a leg hanging up while bridged carries bridge_to on its
            # CHANNEL_HANGUP only, and last_bridge_role from then on
            v["bridge_to"] = other.uuid
            v["last_bridge_role"] = "originator" if ch.bridged_side != "b" else "originatee"
        if cause == "LOSE_RACE":
            v["group_dial_status"] = "loser"  # switch_ivr_originate.c, ring-all losers
        if ch.kind == "sofia" and origin == "remote":
            _sip_remote_hangup(ch, cause)
            if ch.sip_disposition != "recv_bye":
                # captures: a CANCEL or a refusal is recorded before CHANNEL_HANGUP
                v["sip_hangup_disposition"] = ch.sip_disposition
            if bridged and other is not None and ch.answered:
                # sofia.c:sofia_handle_sip_i_bye tells the bridged partner why
                ov = other.variables
                ov["sip_hangup_phrase"] = "OK"
                ov["last_bridge_hangup_cause"] = cause
                ov["last_bridge_proto_specific_hangup_cause"] = "sip:200"
        ch.hangup_origin = origin
        self.fire(ch, "CHANNEL_HANGUP")
        v.pop("bridge_to", None)
        if ch.kind == "sofia" and ch.sip_disposition == "recv_bye":
            # captures: after CHANNEL_HANGUP, before UNBRIDGE (set by the BYE handler)
            v["sip_hangup_disposition"] = ch.sip_disposition
        ch.wake()
        twin = ch.partner
        if twin is not None and twin.alive and not twin.hangup_pending:
            if twin.answered or ch.answered:
                self.hangup(twin, "NORMAL_CLEARING", deferred=True)
            else:
                self.hangup(twin, cause)
        return True

    def finish(self, ch: Channel) -> None:
        """Teardown in the session greenlet: CS_HANGUP .. CS_DESTROY."""
        from fssim import apps as applib

        applib.flush_pending_hangup(self, ch)
        if ch.hangup_cause is None:
            self.hangup(ch, "NORMAL_CLEARING")
        self.set_state(ch, "CS_HANGUP")
        for path in list(ch.recording):
            applib.stop_record(self, ch, path)
        self.set_callstate(ch, "HANGUP")
        self.set_state(ch, "CS_REPORTING")
        if ch.kind == "sofia" and ch.hangup_origin != "remote":
            # mod_sofia.c:sofia_on_hangup (CS_HANGUP), seen from CHANNEL_HANGUP_COMPLETE on
            _sip_local_hangup(ch, ch.hangup_cause or "NORMAL_CLEARING")
        if ch.hangup_cause == "LOSE_RACE":
            ch.variables["call_completed_elsewhere"] = "true"
        if ch.kind == "loopback":
            ch.variables["is_loopback"] = "1"
        ch.set_hangup_variables()
        self._set_rtp_stats(ch)
        self.fire(ch, "CHANNEL_HANGUP_COMPLETE", pre=[("Hangup-Cause", ch.hangup_cause or "")])
        ch.reported.set()
        other = ch.other
        if other is not None and other.alive and ch.bridged_side == "b" \
                and other.other is ch:
            other.partner_gone = True
            other.wake()
        if ch.ended_by_partner:
            # captures: a B leg hung up by its bridge partner shows bridge_hangup_cause on
            # CHANNEL_DESTROY only (the partner's bridge thread sets it after reporting)
            ch.variables["bridge_hangup_cause"] = ch.hangup_cause or "NORMAL_CLEARING"
        ch.next_state = "CS_DESTROY"
        if ch.direction == "outbound" and ch.variables.get("call_uuid") != ch.uuid:
            # captures: the B leg's own uuid again on CHANNEL_DESTROY (call_uuid reset
            # when the session leaves its partner's call)
            ch.variables["call_uuid"] = ch.uuid
        self.fire(ch, "CHANNEL_DESTROY")
        self.set_state(ch, "CS_DESTROY")
        self.channels.pop(ch.uuid, None)
        ch.destroyed.set()
        # Bridged legs point at each other: a cycle only Python's collector frees, whose full
        # passes over thousands of such pairs stalled the simulator for 40-55 ms under load.
        # The partner's own end still reads this leg through its ``other``.
        ch.other = None

    def _set_rtp_stats(self, ch: Channel) -> None:
        """switch_core_media_set_stats after the CS_HANGUP handlers (fssim.rtpstats): only a
        sofia leg whose media came up has an RTP session (captures: none on loopback legs,
        none on a leg rejected or cancelled before media)."""
        if ch.kind != "sofia" or ch.media_since is None:
            return
        end = ch.hangup_sim if ch.hangup_sim is not None else self.clock.now()
        quality = ch.rtp_quality or self.rtp_quality
        ch.variables.update(rtpstats.audio_stats(
            max(0.0, end - ch.media_since), quality, dtmf_digits=len(ch.digits_dialed)))

    def _force_end(self, ch: Channel) -> None:
        ch.hangup_cause = ch.hangup_cause or "NORMAL_CLEARING"
        ch.reported.set()
        ch.destroyed.set()
        self.channels.pop(ch.uuid, None)

    def far_end_hangup(self, ch: Channel, cause: str | None) -> None:
        """The SIP peer of ``ch`` hung up (BYE / CANCEL)."""
        if cause is None:
            cause = "NORMAL_CLEARING" if ch.answered else "ORIGINATOR_CANCEL"
        self.hangup(ch, cause, origin="remote")

    # ---- DTMF --------------------------------------------------------------------------
    def deliver_dtmf(self, ch: Channel, digit: str, source: str, duration: int = 2000) -> None:
        if not ch.alive:
            return
        ch.digits_dialed += digit
        if source == "RTP" and duration == 2000:
            # the captures' RFC 2833 digits (SIPp) last 2240 samples; 2000 is
            # switch_core_session_send_dtmf's default, seen on uuid_send_dtmf digits
            duration = 2240
        self.fire(ch, "DTMF", extra=[("DTMF-Digit", digit), ("DTMF-Duration", str(duration)),
                                     ("DTMF-Source", source)])
        if ch.collecting:
            ch.dtmf.append(digit)
            ch.signal.set()

    def feed_dtmf(self, ch: Channel, digits: str, source: str, gap: float = 0.1) -> None:
        for index, digit in enumerate(digits):
            if index:
                self.sleep(gap)
            self.deliver_dtmf(ch, digit, source)

    # ---- bridge ------------------------------------------------------------------------
    def request_uuid_bridge(self, a: Channel, b: Channel) -> None:
        a.other, a.other_type = b, "originatee"
        b.other, b.other_type = a, "originator"
        # switch_ivr_bridge.c:switch_ivr_uuid_bridge records "<epoch>:<uuid>:uuid_br:<other>"
        epoch = self.clock.wall_us() // 1_000_000
        a.transfer_source = f"{epoch}:{new_uuid()}:uuid_br:{b.uuid}"
        b.transfer_source = f"{epoch}:{new_uuid()}:uuid_br:{a.uuid}"
        # switch_ivr_bridge.c:switch_ivr_uuid_bridge gives both legs a new caller profile
        # (Caller-Profile-Index 2) and stores copies of the partner's as Other-Leg-*
        # (captures: B's Other-Leg-* has no callee, A's shows B before the swap)
        now_us = self.clock.wall_us()
        a_before, b_before = replace(a.profile), replace(b.profile)
        # the originatee copy A keeps is logically inbound (captures: Other-Leg-Logical-
        # Direction inbound while Other-Leg-Direction is outbound)
        b.other_profile = a_before
        a.other_profile = replace(b_before, logical_direction="inbound")
        bp = b.profile
        a.profile = replace(a.profile, profile_index=a.profile.profile_index + 1,
                            profile_created_us=now_us,
                            callee_id_name=bp.caller_id_name if bp.orig_caller_id_name is None
                            else bp.orig_caller_id_name,
                            callee_id_number=bp.caller_id_number
                            if bp.orig_caller_id_number is None else bp.orig_caller_id_number)
        b.profile = replace(bp, profile_index=bp.profile_index + 1, profile_created_us=now_us,
                            orig_caller_id_name=bp.caller_id_name
                            if bp.orig_caller_id_name is None else bp.orig_caller_id_name,
                            orig_caller_id_number=bp.caller_id_number
                            if bp.orig_caller_id_number is None
                            else bp.orig_caller_id_number,
                            caller_id_name=a_before.caller_id_name,
                            caller_id_number=a_before.caller_id_number)
        b.hit_dialplan = False  # captures: the originatee reports false from here on
        for ch, other, source, before in ((a, b, a.transfer_source, a_before),
                                          (b, a, b.transfer_source, b_before)):
            # switch_ivr_bridge.c:switch_ivr_uuid_bridge: both legs know their partner and
            # are "transferred" (original_* and transfer_* variables) before they leave
            # park (captures: from CHANNEL_UNPARK on)
            v = ch.variables
            ch.next_state = "CS_HIBERNATE"
            v["bridge_channel"] = other.name
            v["bridge_uuid"] = other.uuid
            v["signal_bond"] = other.uuid
            v["original_destination_number"] = before.destination_number
            v["original_caller_id_name"] = before.caller_id_name
            v["original_caller_id_number"] = before.caller_id_number
            v["transfer_history"] = source
            v["transfer_source"] = source
        a.variables["uuid_bridge"] = b.uuid  # read back by uuid_bridge_on_soft_execute
        a.bridge_request = ("uuid_bridge", b, "a")
        b.bridge_request = ("uuid_bridge", a, "b")
        a.wake()
        b.wake()

    def uuid_bridged(self, ch: Channel, other: Channel, side: str) -> str | list[Any] | None:
        """switch_ivr_bridge.c: uuid_bridge_on_soft_execute, both legs via CS_HIBERNATE,
        CS_RESET, CS_SOFT_EXECUTE; CHANNEL_BRIDGE / UNBRIDGE on leg A only."""
        self.set_state(ch, "CS_HIBERNATE")
        self.set_state(ch, "CS_RESET")
        self.set_state(ch, "CS_SOFT_EXECUTE")
        ch.app_name, ch.app_data = "uuid_bridge", other.uuid
        ch.variables.pop("uuid_bridge", None)
        # the same function, two call sites (captures: line 1236 on A, 1243 on B)
        calling = UUID_BRIDGE_EXEC if side == "a" else UUID_BRIDGE_EXEC[:2] + (1243,)
        self.fire(ch, "CHANNEL_EXECUTE", calling=calling,
                  extra=[("Application", "uuid_bridge"), ("Application-Data", other.uuid)])
        ch.bridged_side = side
        if side == "a":
            ch.bridged_sim = self.clock.now()
            self.fire(ch, "CHANNEL_BRIDGE", pre=[("Bridge-A-Unique-ID", ch.uuid),
                                                 ("Bridge-B-Unique-ID", other.uuid)])
            self._mark_bridged(ch, other, stamp=False)
        else:
            self._mark_bridged(ch, other)
            self.set_state(ch, "CS_CONSUME_MEDIA")
            self.set_state(ch, "CS_EXCHANGE_MEDIA")
        return self._bridge_wait(ch, other, side)

    def _mark_bridged(self, ch: Channel, other: Channel, *, stamp: bool = True) -> None:
        """switch_ivr_bridge.c:audio_bridge_thread start; on leg A the captures show these
        only after CHANNEL_BRIDGE (callers stamp the time, fire it, then call this)."""
        if stamp:
            ch.bridged_sim = self.clock.now()
        v = ch.variables
        v["last_bridge_to"] = other.uuid
        v["bridge_channel"] = other.name
        v["bridge_uuid"] = other.uuid
        v["signal_bond"] = other.uuid
        if ch.bridged_side == "b":
            # switch_ivr_bridge.c: the B leg joins A's call (Channel-Call-UUID / call_uuid
            # say A from the bridge until the leg is destroyed; captures)
            v["call_uuid"] = other.uuid
        # mod_sofia.c: the display update sent to the peer names the partner: to A the B
        # leg's callee (what A dialled: "Outbound Call"/agent for the bridge app, the
        # originate's caller id for uuid_bridge), to B the caller (captures)
        p = other.profile
        if ch.bridged_side == "b":
            name, number = p.caller_id_name, p.caller_id_number
        else:
            name, number = p.callee_id_name, p.callee_id_number
        if ch.kind == "sofia" and (name or number):
            # an empty name is sent as the number (ring_all_two_agents: "0000000000")
            v["last_sent_callee_id_name"] = name or number
            if number:
                v["last_sent_callee_id_number"] = number

    def _bridge_wait(self, ch: Channel, other: Channel, side: str) -> str | list[Any] | None:
        """Hold a bridged leg until one side ends. ``side``: a (uuid_bridge owner), b (the
        other leg, ended by its owner), app (leg A inside the bridge application)."""
        while True:
            if ch.hangup_pending:
                if side != "b":
                    if other.alive:
                        other.ended_by_partner = True
                        self.hangup(other, "NORMAL_CLEARING")
                    other.reported.wait()
                    self._unbridge(ch, other)
                return None
            request = ch.bridge_request
            if request is not None and (request[0] == "transfer" or side != "app"):
                # uuid_transfer / uuid_bridge elsewhere: leave this bridge; the partner,
                # left alone, hangs up unless park_after_bridge (or it moves on itself)
                if ch.bridged_side != "b":
                    self._unbridge(ch, other)
                ch.bridged_side = ""
                if other.alive and other.other is ch and other.bridge_request is None \
                        and not (request[0] == "uuid_bridge" and other is request[1]):
                    other.partner_gone = True
                    other.wake()
                if side == "app":
                    return None  # the request is handled once the bridge app completes
                if request[0] == "transfer":
                    ch.bridge_request = None
                    return self._transferred(ch, request[1], request[2])
                return "again"
            if ch.partner_gone:
                ch.partner_gone = False
                if other.hangup_pending or not other.alive:
                    other.reported.wait()
                self._unbridge(ch, other)
                v = ch.variables
                if side == "app":
                    if v.get("hangup_after_bridge", "").lower() == "true":
                        self.hangup(ch, "NORMAL_CLEARING")
                    return None
                self.set_state(ch, "CS_EXECUTE")
                if v.get("park_after_bridge", "").lower() == "true":
                    return "park"
                # README: with no dialplan left, A is hung up when B leaves (agent_busy_then_next)
                self.hangup(ch, "NORMAL_CLEARING")
                return None
            ch.wait(None)

    def _unbridge(self, ch: Channel, other: Channel) -> None:
        ch.variables["bridge_hangup_cause"] = other.hangup_cause or "NORMAL_CLEARING"
        if ch.bridged_side != "b":
            self.fire(ch, "CHANNEL_UNBRIDGE", pre=[("Bridge-A-Unique-ID", ch.uuid),
                                                   ("Bridge-B-Unique-ID", other.uuid)])
        ch.bridged_side = ""

    # ---- transfer ----------------------------------------------------------------------
    def _transferred(self, ch: Channel, dest: str,
                     dialplan_name: str = "XML") -> list[tuple[str, str]] | None:
        """switch_ivr.c:switch_ivr_session_transfer: route again; the ``inline`` dialplan
        runs ``app:arg,app2:arg2`` (e.g. ``uuid_transfer <uuid> park inline``)."""
        ch.profile.destination_number = dest
        ch.profile.profile_index += 1
        ch.hit_dialplan = True
        self.set_state(ch, "CS_ROUTING")
        apps: list[tuple[str, str]] | None
        if dialplan_name.lower() == "inline":
            ch.profile.dialplan = "inline"
            apps = []
            for item in dest.split(","):
                app, _, arg = item.partition(":")
                if app.strip():
                    apps.append((app.strip(), arg))
        else:
            apps = dialplan.route(dest)
        if not apps:
            self.hangup(ch, "NO_ROUTE_DESTINATION")
            return None
        self.set_state(ch, "CS_EXECUTE")
        return apps

    # ---- originate ---------------------------------------------------------------------
    def originate(self, dial: str, *, on_answer: Callable[[Channel], None],
                  originator: Channel | None = None, timeout: float = 60.0,
                  cid_name: str | None = None, cid_num: str | None = None
                  ) -> tuple[Channel | None, str]:
        """switch_ivr_originate.c:switch_ivr_originate. Returns (winner, "") or (None,
        cause). ``on_answer`` runs in the winner's greenlet once the outcome is known."""
        global_vars, groups = parse_dial_string(dial)
        if "originate_timeout" in global_vars:
            try:
                timeout = float(global_vars["originate_timeout"])
            except ValueError:
                pass
        cause = "NORMAL_CLEARING"
        for group in groups:
            attempt = Originate(timeout=timeout)
            for leg_vars, contact in group:
                variables = dict(global_vars)
                variables.update(leg_vars)
                try:
                    leg_cause = self._start_leg(attempt, contact, variables, originator,
                                                on_answer, cid_name, cid_num)
                except SessionLimit:
                    # mod_sofia.c:sofia_outgoing_channel, session request refused
                    leg_cause = "DESTINATION_OUT_OF_ORDER"
                if leg_cause:
                    attempt.failures.append(leg_cause)
            if attempt.pending > 0:
                timed_out = not self._wait_decided(attempt, originator)
                if originator is not None and originator.hangup_pending \
                        and attempt.winner is None:
                    for leg in attempt.legs:
                        if leg.alive:
                            self.hangup(leg, "ORIGINATOR_CANCEL")
                    attempt.go.set()
                    return None, "ORIGINATOR_CANCEL"
                if attempt.winner is not None:
                    for leg in attempt.legs:
                        if leg is not attempt.winner and leg.alive:
                            self.hangup(leg, "LOSE_RACE")
                    attempt.go.set()
                    return attempt.winner, ""
                if timed_out:
                    for leg in attempt.legs:
                        if leg.alive:
                            self.hangup(leg, "NO_ANSWER")
                    attempt.go.set()
                    cause = "NO_ANSWER"
                    continue
            attempt.go.set()
            cause = attempt.failures[-1] if attempt.failures else "NORMAL_CLEARING"
        return None, cause

    def _wait_decided(self, attempt: Originate, originator: Channel | None) -> bool:
        """Wait for the first answer / all failures; False on originate_timeout. The
        originator hanging up (bridge app) also ends the wait."""
        deadline = self.clock.now() + attempt.timeout
        while True:
            remaining = deadline - self.clock.now()
            if remaining <= 0:
                return attempt.decided.is_set()
            step = remaining if originator is None else min(remaining, 0.05 * self.time_scale)
            if attempt.decided.wait(step / self.time_scale):
                return True
            if originator is not None and originator.hangup_pending:
                return False

    def _start_leg(self, attempt: Originate, contact: str, variables: dict[str, str],
                   originator: Channel | None, on_answer: Callable[[Channel], None],
                   cid_name: str | None, cid_num: str | None) -> str:
        """Create one outbound leg; returns a cause when it fails before a channel exists."""
        scheme, _, rest = contact.partition("/")
        if scheme == "error":
            return rest.upper() or "NORMAL_CLEARING"
        if scheme == "loopback":
            return self._start_loopback(attempt, rest, variables, on_answer, cid_name, cid_num)
        if scheme not in ("sofia", "user"):
            return "CHAN_NOT_IMPLEMENTED"
        behaviour = self.endpoints.get(contact)
        registered = self._registration_of(scheme, rest)
        if registered is not None:
            row = registered[0]
            if row is None:
                return "USER_NOT_REGISTERED"
            if behaviour is None:
                # INVITE to a contact that answers nothing (the captures' unreachable
                # sofia contact)
                behaviour = Behaviour("fail", cause="NORMAL_TEMPORARY_FAILURE")
        elif behaviour is None:
            if scheme == "user":
                return "SUBSCRIBER_ABSENT"
            if "%" in rest and "@" not in rest:
                return "USER_NOT_REGISTERED"
            behaviour = Behaviour("fail", cause="NORMAL_TEMPORARY_FAILURE")
        if behaviour.kind == "unregistered":
            return "USER_NOT_REGISTERED"
        if registered is not None and registered[0] is not None:
            # the leg goes to the registered contact (sofia_contact's answer)
            name = f"sofia/internal/{registered[0].dial_target}"
            dest = registered[0].user
        elif scheme == "user":
            user = rest
            name = f"sofia/internal/{user.split('@')[0]}@{HOST}:5070"
            dest = user.split("@")[0]
        else:
            name = contact
            dest = rest.split("/", 1)[-1].split("@")[0]
        ch = self._outbound_channel(name, dest, variables, originator, cid_name, cid_num)
        attempt.legs.append(ch)
        attempt.pending += 1
        self.spawn(self._run_outbound, ch, behaviour, attempt, on_answer)
        return ""

    def _registration_of(self, scheme: str, rest: str
                         ) -> tuple[Registration | None] | None:
        """For a contact that looks up a registration, ``(row or None,)``; None for one that
        does not, or whose user the simulated directory does not know (it never registered:
        then a sim_endpoint script for the contact decides, as before registrations existed;
        without one, the cause below).

        * ``user/<user>@<domain>`` (mod_dptools.c:user_outgoing_channel): a user missing from
          the directory fails SUBSCRIBER_ABSENT; the default dial-string asks sofia_contact,
          whose ``error/user_not_registered`` fails USER_NOT_REGISTERED;
        * ``sofia/<profile>/<user>%<domain>`` (mod_sofia.c:sofia_outgoing_channel): the
          registration or USER_NOT_REGISTERED, no directory involved."""
        if scheme == "user":
            user, _, domain = rest.partition("@")
        elif scheme == "sofia" and "%" in rest and "@" not in rest:
            user, _, domain = rest.split("/", 1)[-1].partition("%")
        else:
            return None
        domain = domain or HOST
        if not self.registrar.is_known(user, domain):
            return None
        return (self.registrar.lookup(user, domain),)

    def _outbound_channel(self, name: str, dest: str, variables: dict[str, str],
                          originator: Channel | None, cid_name: str | None,
                          cid_num: str | None, kind: str = "sofia") -> Channel:
        uid = variables.get("origination_uuid") or new_uuid()
        number = variables.get("origination_caller_id_number") or cid_num or (
            originator.profile.caller_id_number if originator else "0000000000")
        cname = variables.get("origination_caller_id_name") or cid_name or (
            originator.profile.caller_id_name if originator else "")
        loop = kind == "loopback"
        # mod_loopback names itself and the xml dialplan on the -a leg (loopback_selftest)
        profile = self._profile(uid, direction="outbound", number=number, name=cname,
                                dest=dest, channel_name=name,
                                source="mod_loopback" if loop else "src/switch_ivr_originate.c",
                                dialplan_name="xml" if loop else "")
        profile.callee_id_name, profile.callee_id_number = "Outbound Call", dest
        profile.network_addr = ""  # known once the far end answers (capture: B legs)
        if originator is not None:
            # switch_ivr_originate.c clones the caller's profile for the bridge app's B leg:
            # its Username, Dialplan and Network-Addr (record_session_bridge_app)
            op = originator.profile
            profile.username, profile.dialplan = op.username, op.dialplan
            profile.network_addr, profile.source = op.network_addr, op.source
        ch = self._new_channel(name=name, direction="outbound", profile=profile, kind=kind,
                               uid=uid)
        ch.hit_dialplan = False
        ch.state = "CS_NONE"
        v = ch.variables
        v.update({"direction": "outbound", "is_outbound": "true", "uuid": uid,
                  "call_uuid": uid, "session_id": str(ch.session_id), "channel_name": name})
        if originator is not None:
            # switch_ivr_originate.c: the bridge app's B leg knows its originator
            v.update({"max_forwards": "69", "originator_codec": "PCMU@8000h@20i",
                      "originator": originator.uuid, "signal_bond": originator.uuid})
        for key, value in variables.items():
            if key != "origination_uuid":
                v[key] = value
        # mod_loopback answers early media at once (loopback_selftest: "true")
        v["originate_early_media"] = "true" if kind == "loopback" else "false"
        if originator is not None:
            v["originating_leg_uuid"] = originator.uuid
        v["originate_endpoint"] = kind
        if kind == "loopback":
            v.update(_LOOPBACK_CODEC)
            v["loopback_leg"] = "A"
        if kind == "sofia":
            # mod_sofia.c:sofia_outgoing_channel / sofia_glue_do_invite (capture values)
            target = name.split("/", 2)[-1]
            v.update({"sip_profile_name": "internal",
                      "sip_destination_url": f"sip:{target}",
                      "sip_outgoing_contact_uri": f"<sip:mod_sofia@{HOST}:5060>",
                      "sip_req_uri": target, "sip_to_host": target.split("@")[-1],
                      "sip_from_host": HOST, "sofia_profile_name": "internal",
                      "recovery_profile_name": "internal",
                      "sofia_profile_url": f"sip:mod_sofia@{HOST}:5060",
                      "sip_local_network_addr": HOST})
        if originator is not None:
            ch.other, ch.other_type = originator, "originator"
        return ch

    def _far_end_replied(self, ch: Channel, *, dialog: bool) -> None:
        """sofia.c:sofia_handle_sip_r_invite: the agent's first reply. A provisional one
        (180) sets up the dialog variables; a final refusal only the network ones
        (captures: agent_busy_then_next B1 vs B2)."""
        if ch.kind != "sofia" or "sip_call_id" in ch.variables:
            return
        v = ch.variables
        target = ch.name.split("/", 2)[-1]
        user, _, hostport = target.partition("@")
        host, _, port = hostport.partition(":")
        port = port or "5060"
        v.update({"sip_reply_host": host, "sip_reply_port": port, "sip_network_ip": host,
                  "sip_network_port": port, "sip_call_id": new_uuid()})
        ch.profile.network_addr = host  # Caller-Network-Addr from the first reply on
        if not dialog:
            return
        p = ch.profile
        from_tag, to_tag = _tag(), _tag()
        via = f"SIP/2.0/UDP {HOST};rport;branch=z9hG4bK{_tag()}"
        v.update({"sip_recover_contact": f"<sip:{target};transport=UDP>",
                  "sip_full_via": via, "sip_recover_via": via})
        if p.caller_id_name:
            v["sip_from_display"] = p.caller_id_name
        display = f'"{p.caller_id_name}" ' if p.caller_id_name else ""
        v.update({
            "sip_full_from": f"{display}<sip:{p.caller_id_number}@{HOST}>;tag={from_tag}",
            "sip_full_to": f"<sip:{target}>;tag={to_tag}",
            "sip_from_user": p.caller_id_number, "sip_from_uri": f"{p.caller_id_number}@{HOST}",
            "sip_from_host": HOST, "sip_to_user": user, "sip_to_port": port,
            "sip_to_uri": target, "sip_to_host": host, "sip_contact_params": "transport=UDP",
            "sip_contact_user": user, "sip_contact_port": port, "sip_contact_uri": target,
            "sip_contact_host": host, "sip_to_tag": to_tag, "sip_from_tag": from_tag,
            "sip_cseq": str(100 + ch.session_id)})

    def _run_outbound(self, ch: Channel, behaviour: Behaviour, attempt: Originate,
                      on_answer: Callable[[Channel], None]) -> None:
        try:
            self._outbound_setup(ch)
            kind = behaviour.kind
            delay = behaviour.delay_ms / 1000.0
            failed: str | None = None
            if kind == "fail":
                failed = behaviour.cause
            elif kind in ("busy", "reject"):
                if not ch.wait(delay):
                    failed = "USER_BUSY" if kind == "busy" else "CALL_REJECTED"
                    self._far_end_replied(ch, dialog=False)
            else:
                self._far_end_replied(ch, dialog=True)
                self.mark_ring_ready(ch)
                self.set_callstate(ch, "RINGING")
                if kind == "answer":
                    if not ch.wait(delay):
                        self.mark_answered(ch)
                        attempt.leg_answered(ch)
                else:  # noanswer: ring until the originate gives up
                    ch.wait(None)
            if failed and ch.alive and not ch.hangup_pending:
                self.hangup(ch, failed, origin="remote")
            if not ch.answered or ch.hangup_pending:
                attempt.leg_failed(ch.hangup_cause or failed or "NORMAL_CLEARING")
                self.finish(ch)
                return
            attempt.go.wait()
            if attempt.winner is not ch or ch.hangup_pending:
                self.finish(ch)
                return
            if behaviour.talk_ms is not None:
                self.spawn(self._talk_timer, ch, behaviour.talk_ms / 1000.0)
            on_answer(ch)
            self.finish(ch)
        except gevent.GreenletExit:
            raise
        except Exception:
            log.exception("outbound session failed", extra={"call_uuid": ch.uuid})
            self._force_end(ch)

    def _outbound_setup(self, ch: Channel) -> None:
        # captures: OUTGOING says CS_NONE / 1, CREATE and ORIGINATE CS_INIT / 2
        ch.next_state = "CS_INIT"
        self.fire(ch, "CHANNEL_OUTGOING")
        if ch.other is not None and ch.other_type == "originator":
            # the bridge app's B leg joins the caller's call right after CHANNEL_OUTGOING
            # (record_session_bridge_app: Channel-Call-UUID is A's from the next event)
            ch.variables["call_uuid"] = ch.other.uuid
        self.set_state(ch, "CS_INIT")
        ch.next_state = "CS_ROUTING"
        self.fire(ch, "CHANNEL_CREATE")
        self.fire(ch, "CHANNEL_ORIGINATE")
        self.set_state(ch, "CS_ROUTING")
        self.set_state(ch, "CS_CONSUME_MEDIA")

    def _talk_timer(self, ch: Channel, seconds: float) -> None:
        self.sleep(seconds)
        if ch.alive and not ch.hangup_pending:
            self.far_end_hangup(ch, "NORMAL_CLEARING")

    def _start_loopback(self, attempt: Originate, target: str, variables: dict[str, str],
                        on_answer: Callable[[Channel], None], cid_name: str | None,
                        cid_num: str | None) -> str:
        number, _, context = target.partition("/")
        context = context.split("/")[0] or "default"
        a_name = f"loopback/{number}-a"
        b_name = f"loopback/{number}-b"
        leg_a = self._outbound_channel(a_name, number, variables, None, cid_name, cid_num,
                                       kind="loopback")
        # the -a leg's callee is "Outbound Call" / the context it dials into
        # (loopback_selftest: Caller-Callee-ID-Number default, its caller id once flipped)
        leg_a.profile.callee_id_number = context
        uid_b = new_uuid()
        profile = self._profile(uid_b, direction="inbound",
                                number=leg_a.profile.caller_id_number,
                                name=leg_a.profile.caller_id_name, dest=number,
                                channel_name=b_name, source="mod_loopback",
                                dialplan_name="xml", network="")
        # mod_loopback copies the -a leg's callee (loopback_selftest)
        profile.callee_id_name, profile.callee_id_number = "Outbound Call", context
        try:
            leg_b = self._new_channel(name=b_name, direction="inbound", profile=profile,
                                      kind="loopback")
        except SessionLimit:
            self._force_end(leg_a)
            return "DESTINATION_OUT_OF_ORDER"
        leg_b.variables.update({"direction": "inbound", "uuid": uid_b, "call_uuid": uid_b,
                                "session_id": str(leg_b.session_id), "channel_name": b_name})
        leg_b.variables.update(_LOOPBACK_CODEC)
        # mod_loopback.c:channel_outgoing_channel copies the originate's caller id vars
        for key in ("origination_caller_id_name", "origination_caller_id_number"):
            if key in leg_a.variables:
                leg_b.variables[key] = leg_a.variables[key]
        leg_b.variables["other_loopback_leg_uuid"] = leg_a.uuid
        leg_b.variables["loopback_leg"] = "B"
        leg_a.variables["other_loopback_leg_uuid"] = uid_b
        leg_a.partner, leg_b.partner = leg_b, leg_a
        attempt.legs.append(leg_a)
        attempt.pending += 1
        self.spawn(self._run_loopback_a, leg_a, leg_b, attempt, on_answer)
        return ""

    def _run_loopback_a(self, leg_a: Channel, leg_b: Channel, attempt: Originate,
                        on_answer: Callable[[Channel], None]) -> None:
        try:
            leg_a.media = True  # mod_loopback sets its codecs before CHANNEL_OUTGOING
            self.codec_events(leg_a)
            self._outbound_setup(leg_a)
            self.spawn(self._run_inbound, leg_b,
                       dialplan.route(leg_b.profile.destination_number))
            while not leg_a.answered and not leg_a.hangup_pending:
                leg_a.idle()
            if leg_a.answered and not leg_a.hangup_pending:
                attempt.leg_answered(leg_a)
                attempt.go.wait()
                if attempt.winner is leg_a and not leg_a.hangup_pending:
                    on_answer(leg_a)
            else:
                attempt.leg_failed(leg_a.hangup_cause or "NORMAL_CLEARING")
            self.finish(leg_a)
        except gevent.GreenletExit:
            raise
        except Exception:
            log.exception("loopback session failed", extra={"call_uuid": leg_a.uuid})
            self._force_end(leg_a)

    # ---- what a winning originated leg does next ----------------------------------------
    def _pre_transfer(self, ch: Channel) -> None:
        """switch_ivr_originate.c: a winning leg sent on to an app / extension keeps the
        caller id it was dialled with and notes the flip (captures: from its first
        CHANNEL_EXECUTE)."""
        p = ch.profile
        v = ch.variables
        name = p.caller_id_name if p.orig_caller_id_name is None else p.orig_caller_id_name
        number = p.caller_id_number if p.orig_caller_id_number is None \
            else p.orig_caller_id_number
        if name:
            v["pre_transfer_caller_id_name"] = name
        if number:
            v["pre_transfer_caller_id_number"] = number
        v["channel_cid_flipped"] = "yes"

    def continue_with_app(self, app: str, arg: str) -> Callable[[Channel], None]:
        def run(ch: Channel) -> None:
            self._pre_transfer(ch)
            self.set_state(ch, "CS_EXECUTE")
            self.run_extension(ch, [(app, arg)])
        return run

    def continue_with_extension(self, exten: str,
                                dialplan_name: str = "XML") -> Callable[[Channel], None]:
        def run(ch: Channel) -> None:
            self._pre_transfer(ch)
            apps = self._transferred(ch, exten, dialplan_name)
            if apps is not None:
                self.run_extension(ch, apps)
        return run


# mod_sofia.c / sofia_glue.c: the SIP status a refused INVITE carries for a cause
SIP_FOR_CAUSE = {"USER_BUSY": (486, "Busy Here"), "CALL_REJECTED": (603, "Decline"),
                 "NO_ANSWER": (480, "Temporarily Unavailable"),
                 "NORMAL_TEMPORARY_FAILURE": (503, "Service Unavailable"),
                 "UNALLOCATED_NUMBER": (404, "Not Found"),
                 "NO_USER_RESPONSE": (408, "Request Timeout")}


def _sip_remote_hangup(ch: Channel, cause: str) -> None:
    """The far end ended the call (BYE, CANCEL or a refusal): what sofia records before
    CHANNEL_HANGUP (values as in the captures' events)."""
    from fssim.channels import cause_q850

    v = ch.variables
    if ch.answered:
        disposition = "recv_bye"
        v["sip_term_status"] = "200"
        v["proto_specific_hangup_cause"] = "sip:200"
        v["sip_term_cause"] = "16"
    elif ch.direction == "inbound":
        disposition = "recv_cancel"
        v["sip_invite_failure_status"] = "487"
        v["sip_invite_failure_phrase"] = "CANCEL"
        v["sip_term_status"] = "487"
        v["proto_specific_hangup_cause"] = "sip:487"
        v["sip_term_cause"] = "487"
    else:
        code, phrase = SIP_FOR_CAUSE.get(cause, (500, "Server Internal Error"))
        disposition = "recv_refuse"
        v["sip_invite_failure_status"] = str(code)
        v["sip_invite_failure_phrase"] = phrase
        v["sip_term_status"] = str(code)
        v["proto_specific_hangup_cause"] = f"sip:{code}"
        v["sip_term_cause"] = str(cause_q850(cause))
    ch.sip_disposition = disposition


def _sip_local_hangup(ch: Channel, cause: str) -> None:
    """We ended the call: mod_sofia.c:sofia_on_hangup sends BYE / CANCEL / a refusal
    (send_bye / send_cancel / send_refuse in the captures)."""
    v = ch.variables
    if ch.answered:
        disposition = "send_bye"
    elif ch.direction == "inbound":
        disposition = "send_refuse"
    else:
        disposition = "send_cancel"
        v["sip_invite_failure_status"] = "487"
        v["sip_invite_failure_phrase"] = "CANCEL"
    v["sip_hangup_disposition"] = disposition


def install(switch: Switch) -> Engine:
    """Register the channel api commands and sim controls on ``switch``."""
    from fssim import callapi

    engine = Engine(switch)
    callapi.register(switch, engine)
    switch.sendmsg_handler = engine.queue_sendmsg
    switch.session_counter = engine.session_counts
    switch.session_exists = engine.session_exists
    switch.channel_getvar = engine.getvar
    switch.engine = engine  # type: ignore[attr-defined]  # for tests and the bench
    return engine
