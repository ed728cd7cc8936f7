"""One simulated FreeSWITCH channel (a session) and the headers it stamps on its events.

The header order, names and the split between "verbose" events (with ``variable_*``) and
terse ones (CHANNEL_STATE, CHANNEL_CALLSTATE, DTMF) are taken from the 1.10.12 captures
(``scenarios/*/wire.raw``); see ``switch_channel.c:switch_channel_event_set_basic_data`` and
``switch_channel_event_set_extended_data`` for where FreeSWITCH builds them.
"""

from __future__ import annotations

import time
import uuid as uuidlib
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import gevent.event
import gevent.queue

if TYPE_CHECKING:
    from fssim.engine import Engine
    from fssim.rtpstats import RtpQuality

# switch_types.h: switch_channel_state_t, in declaration order (Channel-State-Number).
STATE_NUMBERS = {
    "CS_NEW": 0, "CS_INIT": 1, "CS_ROUTING": 2, "CS_SOFT_EXECUTE": 3, "CS_EXECUTE": 4,
    "CS_EXCHANGE_MEDIA": 5, "CS_PARK": 6, "CS_CONSUME_MEDIA": 7, "CS_HIBERNATE": 8,
    "CS_RESET": 9, "CS_HANGUP": 10, "CS_REPORTING": 11, "CS_DESTROY": 12, "CS_NONE": 13,
}

# switch_types.h: switch_call_cause_t. Only the names matter on the wire; the number feeds
# variable_hangup_cause_q850 (switch_channel.c:switch_channel_cause_q850 reports 16 for every
# cause above 127, which is why LOSE_RACE and ALLOTTED_TIMEOUT both say 16).
CAUSES = {
    "NONE": 0, "UNALLOCATED_NUMBER": 1, "NO_ROUTE_TRANSIT_NET": 2, "NO_ROUTE_DESTINATION": 3,
    "CHANNEL_UNACCEPTABLE": 6, "CALL_AWARDED_DELIVERED": 7, "NORMAL_CLEARING": 16,
    "USER_BUSY": 17, "NO_USER_RESPONSE": 18, "NO_ANSWER": 19, "SUBSCRIBER_ABSENT": 20,
    "CALL_REJECTED": 21, "NUMBER_CHANGED": 22, "REDIRECTION_TO_NEW_DESTINATION": 23,
    "EXCHANGE_ROUTING_ERROR": 25, "DESTINATION_OUT_OF_ORDER": 27, "INVALID_NUMBER_FORMAT": 28,
    "FACILITY_REJECTED": 29, "RESPONSE_TO_STATUS_ENQUIRY": 30, "NORMAL_UNSPECIFIED": 31,
    "NORMAL_CIRCUIT_CONGESTION": 34, "NETWORK_OUT_OF_ORDER": 38,
    "NORMAL_TEMPORARY_FAILURE": 41, "SWITCH_CONGESTION": 42, "ACCESS_INFO_DISCARDED": 43,
    "REQUESTED_CHAN_UNAVAIL": 44, "PRE_EMPTED": 45, "FACILITY_NOT_SUBSCRIBED": 50,
    "OUTGOING_CALL_BARRED": 52, "INCOMING_CALL_BARRED": 54, "BEARERCAPABILITY_NOTAUTH": 57,
    "BEARERCAPABILITY_NOTAVAIL": 58, "SERVICE_UNAVAILABLE": 63, "BEARERCAPABILITY_NOTIMPL": 65,
    "CHAN_NOT_IMPLEMENTED": 66, "FACILITY_NOT_IMPLEMENTED": 69, "SERVICE_NOT_IMPLEMENTED": 79,
    "INVALID_CALL_REFERENCE": 81, "INCOMPATIBLE_DESTINATION": 88,
    "INVALID_MSG_UNSPECIFIED": 95, "MANDATORY_IE_MISSING": 96, "MESSAGE_TYPE_NONEXIST": 97,
    "WRONG_MESSAGE": 98, "IE_NONEXIST": 99, "INVALID_IE_CONTENTS": 100, "WRONG_CALL_STATE": 101,
    "RECOVERY_ON_TIMER_EXPIRE": 102, "MANDATORY_IE_LENGTH_ERROR": 103, "PROTOCOL_ERROR": 111,
    "INTERWORKING": 127, "SUCCESS": 142, "ORIGINATOR_CANCEL": 487, "CRASH": 500,
    "SYSTEM_SHUTDOWN": 501, "LOSE_RACE": 502, "MANAGER_REQUEST": 503, "BLIND_TRANSFER": 600,
    "ATTENDED_TRANSFER": 601, "ALLOTTED_TIMEOUT": 602, "USER_CHALLENGE": 603,
    "MEDIA_TIMEOUT": 604, "PICKED_OFF": 605, "USER_NOT_REGISTERED": 606,
    "PROGRESS_TIMEOUT": 607, "INVALID_GATEWAY": 608, "GATEWAY_DOWN": 609,
    "INVALID_URL": 610, "INVALID_PROFILE": 611, "NO_PICKUP": 612, "SRTP_READ_ERROR": 613,
    "BOWOUT": 614, "BUSY_EVERYWHERE": 615, "DECLINE": 616, "DOES_NOT_EXIST_ANYWHERE": 617,
    "NOT_ACCEPTABLE": 618, "UNWANTED": 619, "NO_IDENTITY": 620, "BAD_IDENTITY_INFO": 621,
    "UNSUPPORTED_CERTIFICATE": 622, "INVALID_IDENTITY": 623, "STALE_DATE": 624,
    "REJECT_ALL": 625,
}


def cause_q850(cause: str) -> int:
    """switch_channel.c:switch_channel_cause_q850: causes above 127 report NORMAL_CLEARING."""
    number = CAUSES.get(cause, 16)
    return number if 0 < number <= 127 else 16


def parse_cause(text: str) -> str | None:
    """switch_channel.c:switch_channel_str2cause: a name (any case) or a number."""
    upper = text.strip().upper()
    if upper in CAUSES and upper != "NONE":
        return upper
    if upper.isdigit():
        number = int(upper)
        for name, value in CAUSES.items():
            if value == number and name != "NONE":
                return name
    return None


def new_uuid() -> str:
    return str(uuidlib.uuid4())


def _stamp(us: int) -> str:
    """``start_stamp``-style local time text for a µs epoch."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(us / 1e6)) if us else ""


# Header names built once: the same str objects keep their cached hash, which the encoder's
# (name, value) line cache hashes on every event (bench profile).
_HEADER_KEYS: dict[tuple[str, str], str] = {}
_VARIABLE_KEYS: dict[str, str] = {}
_KEYS_MAX = 100_000


def _header_key(prefix: str, name: str) -> str:
    key = _HEADER_KEYS.get((prefix, name))
    if key is None:
        key = _HEADER_KEYS[(prefix, name)] = f"{prefix}-{name}"
    return key


def _variable_key(name: str) -> str:
    if len(_VARIABLE_KEYS) >= _KEYS_MAX:  # bounded: variable names come from callers too
        _VARIABLE_KEYS.clear()
    key = _VARIABLE_KEYS[name] = f"variable_{name}"
    return key


# Caller-profile fields in the order FreeSWITCH serialises them
# (switch_caller.c:switch_caller_profile_event_set_data, seen in every capture).
_PROFILE_TIMES = ("Profile-Created-Time", "Channel-Created-Time", "Channel-Answered-Time",
                  "Channel-Progress-Time", "Channel-Progress-Media-Time",
                  "Channel-Hangup-Time", "Channel-Transfer-Time", "Channel-Resurrect-Time",
                  "Channel-Bridged-Time", "Channel-Last-Hold", "Channel-Hold-Accum")


@dataclass
class CallerProfile:
    direction: str
    username: str
    dialplan: str
    caller_id_name: str
    caller_id_number: str
    network_addr: str
    destination_number: str
    source: str
    context: str
    channel_name: str
    uuid: str
    orig_caller_id_name: str | None = None  # None: same as the caller id
    orig_caller_id_number: str | None = None
    callee_id_name: str = ""
    callee_id_number: str = ""
    logical_direction: str = ""
    profile_index: int = 1
    profile_created_us: int = 0

    def pairs(self, prefix: str, ch: Channel) -> list[tuple[str, str]]:
        """switch_caller.c:switch_caller_profile_event_set_data: empty text fields are left
        out (a loopback leg has no Caller-Network-Addr, an originate without
        origination_caller_id_name no Caller-Caller-ID-Name), times and flags always there."""
        text = [("Direction", self.direction),
                ("Logical-Direction", self.logical_direction or self.direction),
                ("Username", self.username), ("Dialplan", self.dialplan),
                ("Caller-ID-Name", self.caller_id_name),
                ("Caller-ID-Number", self.caller_id_number),
                ("Orig-Caller-ID-Name", self.caller_id_name if self.orig_caller_id_name is None
                 else self.orig_caller_id_name),
                ("Orig-Caller-ID-Number", self.caller_id_number
                 if self.orig_caller_id_number is None else self.orig_caller_id_number),
                ("Callee-ID-Name", self.callee_id_name),
                ("Callee-ID-Number", self.callee_id_number),
                ("Network-Addr", self.network_addr),
                # the ANI stays the number the leg was created with (captures: an answered
                # outbound leg's ANI is not its flipped caller id)
                ("ANI", self.caller_id_number if self.orig_caller_id_number is None
                 else self.orig_caller_id_number),
                ("Destination-Number", self.destination_number), ("Unique-ID", self.uuid),
                ("Source", self.source)]
        key = _header_key
        out = [(key(prefix, name), value) for name, value in text if value]
        if prefix == "Caller" and ch.transfer_source:
            out.append(("Caller-Transfer-Source", ch.transfer_source))
        out += [(key(prefix, "Context"), self.context),
                (key(prefix, "Channel-Name"), self.channel_name)]
        if prefix == "Caller":
            out.append(("Caller-Profile-Index", str(self.profile_index)))
        times = ch.profile_times(self.profile_created_us)
        out += [(key(prefix, name), str(value))
                for name, value in zip(_PROFILE_TIMES, times, strict=True)]
        out += [(key(prefix, "Screen-Bit"), "true"),
                (key(prefix, "Privacy-Hide-Name"), "false"),
                (key(prefix, "Privacy-Hide-Number"), "false")]
        return out


@dataclass
class Channel:
    """State of one leg. Mutated only from greenlets of one Switch (no locks needed)."""

    engine: Engine
    uuid: str
    name: str
    direction: str  # inbound | outbound
    profile: CallerProfile
    kind: str = "sofia"  # sofia | loopback
    state: str = "CS_NEW"
    # The state asked for but not yet run (switch_channel.c:
    # switch_channel_event_set_basic_data prints channel->running_state as Channel-State but
    # channel->state as Channel-State-Number): captures show CHANNEL_CREATE as CS_INIT / 2,
    # CHANNEL_HANGUP as CS_EXECUTE / 10, CHANNEL_DESTROY as CS_REPORTING / 12.
    next_state: str | None = None
    callstate: str = "DOWN"
    answer_state: str = "ringing"
    hangup_cause: str | None = None
    hit_dialplan: bool = True
    media: bool = False  # codec headers appear once media is negotiated
    variables: dict[str, str] = field(default_factory=dict)
    other: Channel | None = None  # Other-Leg-* (bridge partner or originator)
    other_type: str = ""  # originator | originatee
    # Other-Leg-* as FreeSWITCH stored it: switch_channel_event_set_basic_data prints the
    # caller profile's originator/originatee_caller_profile, copies made when the legs were
    # joined, not the partner's live profile. None: the partner's current profile
    other_profile: CallerProfile | None = None
    partner: Channel | None = None  # loopback twin
    # simulated-time marks (seconds, engine clock) and their wall-clock µs projections
    created_sim: float = 0.0
    created_us: int = 0
    answered_sim: float | None = None
    progress_sim: float | None = None
    progress_media_sim: float | None = None
    bridged_sim: float | None = None
    hangup_sim: float | None = None
    # control
    inbox: gevent.queue.Queue[Any] = field(default_factory=gevent.queue.Queue)
    signal: gevent.event.Event = field(default_factory=gevent.event.Event)
    reported: gevent.event.Event = field(default_factory=gevent.event.Event)
    destroyed: gevent.event.Event = field(default_factory=gevent.event.Event)
    dtmf: deque[str] = field(default_factory=deque)
    hangup_pending: bool = False
    break_pending: bool = False
    event_lock: bool = False  # CF_EVENT_LOCK: a sendmsg with event-lock: true is running
    bridge_request: Any = None
    partner_gone: bool = False
    parked: bool = False
    app_name: str = ""
    app_data: str = ""
    app_response: str | None = None
    recording: list[str] = field(default_factory=list)
    record_started: dict[str, float] = field(default_factory=dict)
    media_since: float | None = None  # simulated time media came up (early or answered)
    sendmsgs_with_media: int = 0
    session_id: int = 0
    deferred_cause: str | None = None  # loopback twin: hang-up reported after leaving park
    bridged_side: str = ""  # a (uuid_bridge owner) | b (the other leg) | app (bridge app)
    collecting: bool = False  # an app (play_and_get_digits) is reading DTMF
    profile_ready: bool = True  # False until the caller profile is attached (CS_NEW)
    transfer_source: str = ""  # Caller-Transfer-Source after a uuid_bridge
    digits_dialed: str = ""  # every DTMF digit received (variable_digits_dialed)
    dialog_pending: dict[str, str] | None = None  # sofia dialog vars set after the 200 OK
    ended_by_partner: bool = False  # hung up by the other leg of its bridge
    hangup_origin: str = "local"  # remote: the SIP peer hung up
    sip_disposition: str = ""  # sip_hangup_disposition once sofia records it
    rtp_quality: RtpQuality | None = None  # sim_rtp for this leg (None: the engine's default)

    # ---- time -------------------------------------------------------------------------
    def us_at(self, sim: float | None) -> int:
        if sim is None:
            return 0
        return self.created_us + int(round((sim - self.created_sim) * 1_000_000))

    def profile_times(self, profile_created_us: int) -> list[int]:
        return [profile_created_us or self.created_us, self.created_us,
                self.us_at(self.answered_sim), self.us_at(self.progress_sim),
                self.us_at(self.progress_media_sim), self.us_at(self.hangup_sim), 0, 0,
                self.us_at(self.bridged_sim), 0, 0]

    # ---- control helpers ---------------------------------------------------------------
    @property
    def answered(self) -> bool:
        return self.answered_sim is not None

    @property
    def alive(self) -> bool:
        return self.hangup_cause is None

    def interrupted(self) -> bool:
        return self.hangup_pending or self.bridge_request is not None or self.partner_gone

    def wake(self) -> None:
        self.signal.set()
        self.inbox.put(None)

    def idle(self) -> None:
        """Block until the next wake-up of any kind (answer, hang-up, DTMF ...)."""
        self.signal.clear()
        self.signal.wait()

    def wait(self, sim_seconds: float | None, *, digits: bool = False,
             parse_events: bool = False) -> bool:
        """Sleep in simulated time; True when cut short by hang-up, bridge, break (or a
        DTMF digit when ``digits``). ``None`` waits until interrupted.

        ``parse_events``: the media loops of playback, play_and_get_digits and sleep call
        switch_ivr_parse_all_events on every frame (switch_ivr_play_say.c:
        switch_ivr_play_file, switch_ivr.c:switch_ivr_sleep), so a sendmsg queued meanwhile
        runs at once, nested inside the app (a queued hang-up cuts it short), unless the app
        itself came from a sendmsg with ``event-lock: true``: CF_EVENT_LOCK makes
        switch_core_session_dequeue_private_event hold the queue until it returns."""
        deadline = None if sim_seconds is None else (
            time.monotonic() + self.engine.clock.real_seconds(sim_seconds))
        while True:
            if self.interrupted() or self.break_pending or (digits and self.dtmf):
                return True
            if parse_events and not self.event_lock and self.inbox.qsize() \
                    and self.inbox.queue[0] is not None:
                left = None if deadline is None else deadline - time.monotonic()
                self.engine.run_sendmsg(self, self.inbox.get_nowait())
                # the app's own clock stood still while the nested one ran
                if left is not None:
                    deadline = time.monotonic() + max(0.0, left)
                continue
            self.signal.clear()
            if deadline is None:
                self.signal.wait()
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self.signal.wait(remaining):
                return self.interrupted() or self.break_pending or (digits and bool(self.dtmf))

    # ---- headers -----------------------------------------------------------------------
    def basic_headers(self) -> list[tuple[str, str]]:
        """switch_channel.c:switch_channel_event_set_basic_data, capture order."""
        out = [("Channel-State", self.state), ("Channel-Call-State", self.callstate),
               ("Channel-State-Number", str(STATE_NUMBERS[self.next_state or self.state])),
               ("Channel-Name", self.name), ("Unique-ID", self.uuid),
               ("Call-Direction", self.direction), ("Presence-Call-Direction", self.direction),
               ("Channel-HIT-Dialplan", "true" if self.hit_dialplan else "false"),
               ("Channel-Call-UUID", self.variables.get("call_uuid", self.uuid)),
               ("Answer-State", self.answer_state)]
        if self.hangup_cause:
            out.append(("Hangup-Cause", self.hangup_cause))
        return out

    def codec(self) -> tuple[str, str]:
        """Codec name and bit rate: sofia legs PCMU, mod_loopback its own L16 at 8 kHz
        (loopback_selftest CODEC events: L16, 128000)."""
        return ("L16", "128000") if self.kind == "loopback" else ("PCMU", "64000")

    def extended_headers(self) -> list[tuple[str, str]]:
        out = self.basic_headers()
        if self.media:
            name, bits = self.codec()
            out += [("Channel-Read-Codec-Name", name), ("Channel-Read-Codec-Rate", "8000"),
                    ("Channel-Read-Codec-Bit-Rate", bits),
                    ("Channel-Write-Codec-Name", name), ("Channel-Write-Codec-Rate", "8000"),
                    ("Channel-Write-Codec-Bit-Rate", bits)]
        out += self.profile.pairs("Caller", self)
        other = self.other
        if other is not None:
            out.append(("Other-Type", self.other_type or "originatee"))
            out += (self.other_profile or other.profile).pairs("Other-Leg", other)
        return out

    def headers(self, verbose: bool) -> list[tuple[str, str]]:
        """Capture rule: every channel event carries the profile (Caller-*, Other-Leg-*)
        once it exists; only verbose events add variable_*."""
        if not self.profile_ready:
            return self.basic_headers()
        out = self.extended_headers()
        if not verbose:
            return out
        names = _VARIABLE_KEYS
        out += [(names.get(k) or _variable_key(k), v) for k, v in self.variables.items()]
        return out

    # ---- variables filled at the end of a call ------------------------------------------
    def set_hangup_variables(self) -> None:
        """The CDR-style variables of CHANNEL_HANGUP_COMPLETE (switch_channel.c:
        switch_channel_set_timestamps), from simulated time so --time-scale holds."""
        v = self.variables
        cause = self.hangup_cause or "NORMAL_CLEARING"
        v["hangup_cause"] = cause
        v["hangup_cause_q850"] = str(cause_q850(cause))
        end = self.hangup_sim if self.hangup_sim is not None else self.engine.clock.now()
        start_us, end_us = self.created_us, self.us_at(end)
        answer_us = self.us_at(self.answered_sim)
        # switch_channel.c:switch_channel_set_timestamps, in its order; a *_stamp only for
        # a time that happened (captures: progress_stamp only on legs that rang)
        v["digits_dialed"] = self.digits_dialed or "none"
        profile_us = self.profile.profile_created_us or start_us
        progress_us = self.us_at(self.progress_sim)
        pm_us = self.us_at(self.progress_media_sim)
        bridge_us = self.us_at(self.bridged_sim)
        v["start_stamp"] = _stamp(start_us)
        v["profile_start_stamp"] = _stamp(profile_us)
        if answer_us:
            v["answer_stamp"] = _stamp(answer_us)
        if bridge_us:
            v["bridge_stamp"] = _stamp(bridge_us)
        if progress_us:
            v["progress_stamp"] = _stamp(progress_us)
        if pm_us:
            v["progress_media_stamp"] = _stamp(pm_us)
        v["end_stamp"] = _stamp(end_us)
        v["start_epoch"] = str(start_us // 1_000_000)
        v["start_uepoch"] = str(start_us)
        v["profile_start_epoch"] = str(profile_us // 1_000_000)
        v["profile_start_uepoch"] = str(profile_us)
        v["answer_epoch"] = str(answer_us // 1_000_000)
        v["answer_uepoch"] = str(answer_us)
        v["bridge_epoch"] = str(bridge_us // 1_000_000)
        v["bridge_uepoch"] = str(bridge_us)
        # no hold and no resurrection in the simulator: FreeSWITCH still reports them as 0
        v["last_hold_epoch"] = "0"
        v["last_hold_uepoch"] = "0"
        v["hold_accum_seconds"] = "0"
        v["hold_accum_usec"] = "0"
        v["hold_accum_ms"] = "0"
        v["resurrect_epoch"] = "0"
        v["resurrect_uepoch"] = "0"
        v["progress_epoch"] = str(progress_us // 1_000_000)
        v["progress_uepoch"] = str(progress_us)
        v["progress_media_epoch"] = str(pm_us // 1_000_000)
        v["progress_media_uepoch"] = str(pm_us)
        v["end_epoch"] = str(end_us // 1_000_000)
        v["end_uepoch"] = str(end_us)
        # switch_channel.c:switch_channel_set_timestamps: last_app / last_arg are the
        # current_application(_data) variables (absent for a leg that ran no app; a park
        # without data leaves no last_arg)
        if "current_application" in v:
            v["last_app"] = v["current_application"]
        if "current_application_data" in v:
            v["last_arg"] = v["current_application_data"]
        # captures: '"name" <number>', or the bare number when there is no name
        p = self.profile
        v["caller_id"] = f'"{p.caller_id_name}" <{p.caller_id_number}>' \
            if p.caller_id_name else p.caller_id_number
        total_us = max(0, end_us - start_us)
        bill_us = max(0, end_us - answer_us) if answer_us else 0
        answer_delay_us = max(0, answer_us - start_us) if answer_us else 0
        progress_delay_us = max(0, progress_us - start_us) if progress_us else 0
        pm_delay_us = max(0, pm_us - start_us) if pm_us else 0
        wait_us = max(0, (bridge_us or end_us) - start_us) if bridge_us else answer_delay_us
        v["duration"] = str(total_us // 1_000_000)
        v["billsec"] = str(bill_us // 1_000_000)
        v["progresssec"] = str(progress_delay_us // 1_000_000)
        v["answersec"] = str(answer_delay_us // 1_000_000)
        v["waitsec"] = str(wait_us // 1_000_000)
        v["progress_mediasec"] = str(pm_delay_us // 1_000_000)
        v["flow_billsec"] = str(total_us // 1_000_000)
        v["mduration"] = str(total_us // 1000)
        v["billmsec"] = str(bill_us // 1000)
        v["progressmsec"] = str(progress_delay_us // 1000)
        v["answermsec"] = str(answer_delay_us // 1000)
        v["waitmsec"] = str(wait_us // 1000)
        v["progress_mediamsec"] = str(pm_delay_us // 1000)
        v["flow_billmsec"] = str(total_us // 1000)
        v["uduration"] = str(total_us)
        v["billusec"] = str(bill_us)
        v["progressusec"] = str(progress_delay_us)
        v["answerusec"] = str(answer_delay_us)
        v["waitusec"] = str(wait_us)
        v["progress_mediausec"] = str(pm_delay_us)
        v["flow_billusec"] = str(total_us)
