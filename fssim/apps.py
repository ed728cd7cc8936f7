"""Dialplan applications a channel can run (dialplan, ``sendmsg`` execute, ``&app()``).

Event sequences and results follow the captures; texts such as ``FILE PLAYED`` /
``FILE NOT FOUND`` / ``PLAYBACK ERROR`` are mod_dptools.c:playback_function's
``current_application_response`` values, the play_and_get_digits variables come from
switch_ivr_play_say.c:switch_play_and_get_digits.

Simulated media (no audio exists): ``tone_stream://`` lasts what its tone spec says
(sum of on+off times of each ``%(on,off,freq..)`` segment, times ``loops=N``; ``loops=-1``
never ends), ``silence_stream://N`` lasts N ms (N <= 0: forever), ``local_stream://`` (music on
hold) never ends, and any other file plays for ``FILE_MS`` (3 s). A file is "missing" (the
playback ends with ``FILE NOT FOUND`` and fires no PLAYBACK_* event, as captured) when its
name contains ``no_such`` or ``missing``, or ends in ``.mp3`` (the capture switch had no mp3
module).
"""

from __future__ import annotations

import os
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from fssim import wavfile as wav
from fssim.channels import Channel, parse_cause

if TYPE_CHECKING:
    from fssim.engine import Engine

FILE_MS = 3000
_TONE_SEGMENT = re.compile(r"%\(([^)]*)\)")


def media_ms(path: str) -> int | None:
    """Length of a playable in simulated ms; None for never-ending streams."""
    if path.startswith("tone_stream://"):
        spec = path[len("tone_stream://"):]
        loops = 1
        match = re.search(r"(?:^|;)(?:loops|L)=(-?\d+)", spec)
        if match:
            loops = int(match.group(1))
        total = 0
        for segment in _TONE_SEGMENT.findall(spec):
            parts = [p.strip() for p in segment.split(",")]
            try:
                total += max(0, int(float(parts[0]))) + (max(0, int(float(parts[1])))
                                                         if len(parts) > 1 else 0)
            except ValueError:
                continue
        if loops < 0:
            return None
        return total * max(1, loops)
    if path.startswith("silence_stream://"):
        try:
            value = int(path[len("silence_stream://"):].split(",")[0])
        except ValueError:
            return None
        return value if value > 0 else None
    if path.startswith("local_stream://"):
        return None
    if path.startswith("file_string://"):
        # mod_dptools.c:file_string_file_open splits on '!' and plays each file in turn
        total = 0
        for part in path[len("file_string://"):].split("!"):
            ms = media_ms(part)
            if ms is None:
                return None
            total += ms
        return total
    return FILE_MS


def file_type(path: str) -> str:
    if "://" in path:
        return path.split("://", 1)[0]
    return path.rsplit(".", 1)[-1] if "." in path.rsplit("/", 1)[-1] else "wav"


def file_missing(path: str) -> bool:
    if "://" in path:
        return False
    lowered = path.lower()
    return "no_such" in lowered or "missing" in lowered or lowered.endswith(".mp3")


def play_file(engine: Engine, ch: Channel, path: str, *, stop_on_dtmf: bool = False) -> str:
    """switch_ivr_play_say.c:switch_ivr_play_file. Returns done, break, notfound or error
    (cut by hang-up, bridge or transfer)."""
    if file_missing(path):
        return "notfound"
    head = [("Playback-File-Type", file_type(path)), ("Playback-File-Path", path)]
    engine.fire(ch, "PLAYBACK_START", extra=head)
    length = media_ms(path)
    started = engine.clock.now()
    ch.break_pending = False
    cut = ch.wait(None if length is None else length / 1000.0, digits=stop_on_dtmf,
                 parse_events=True)
    played_ms = int(round((engine.clock.now() - started) * 1000))
    if length is not None:
        played_ms = min(played_ms, length) if cut else length
    status = "done"
    result = "done"
    if cut:
        if ch.break_pending or (stop_on_dtmf and ch.dtmf):
            status = result = "break"
            ch.break_pending = False
        else:
            result = "error"
    samples = played_ms * 8
    v = ch.variables
    v["playback_last_offset_pos"] = str(samples)
    v["playback_seconds"] = str(played_ms // 1000)
    v["playback_ms"] = str(played_ms)
    v["playback_samples"] = str(samples)
    engine.fire(ch, "PLAYBACK_STOP", extra=head + [("Playback-Status", status)])
    return result


# ---- applications ----------------------------------------------------------------------
def app_answer(engine: Engine, ch: Channel, arg: str) -> None:
    engine.mark_answered(ch)


def app_pre_answer(engine: Engine, ch: Channel, arg: str) -> None:
    engine.mark_pre_answered(ch)


def app_ring_ready(engine: Engine, ch: Channel, arg: str) -> None:
    if not ch.answered:
        engine.mark_ring_ready(ch)


def app_set(engine: Engine, ch: Channel, arg: str) -> None:
    name, sep, value = arg.partition("=")
    name = name.strip()
    if not name:
        return
    if sep and value:
        ch.variables[name] = value
    else:
        ch.variables.pop(name, None)


def app_export(engine: Engine, ch: Channel, arg: str) -> None:
    name, _, value = arg.partition("=")
    nolocal = name.startswith("nolocal:")
    name = name.removeprefix("nolocal:").strip()
    if not nolocal:
        app_set(engine, ch, f"{name}={value}")
    exported = [n for n in ch.variables.get("export_vars", "").split(",") if n]
    if name and name not in exported:
        exported.append(name)
        ch.variables["export_vars"] = ",".join(exported)


def app_unset(engine: Engine, ch: Channel, arg: str) -> None:
    ch.variables.pop(arg.strip(), None)


def app_sleep(engine: Engine, ch: Channel, arg: str) -> None:
    try:
        ms = int(arg.strip() or "0")
    except ValueError:
        ms = 0
    ch.wait(ms / 1000.0, parse_events=True)


def app_hangup(engine: Engine, ch: Channel, arg: str) -> None:
    engine.hangup(ch, parse_cause(arg) or "NORMAL_CLEARING")


def app_park(engine: Engine, ch: Channel, arg: str) -> None:
    engine.park(ch)


def app_playback(engine: Engine, ch: Channel, arg: str) -> None:
    status = play_file(engine, ch, arg.strip())
    ch.app_response = {"notfound": "FILE NOT FOUND", "error": "PLAYBACK ERROR"}.get(
        status, "FILE PLAYED")


def app_play_and_get_digits(engine: Engine, ch: Channel, arg: str) -> None:
    """<min> <max> <tries> <timeout ms> <terminators> <file> <invalid file> <var> <regex>
    [<digit timeout ms>] [<transfer on failure>]."""
    parts = arg.split()
    if len(parts) < 7:
        return
    try:
        min_digits, max_digits, tries, timeout = (int(p) for p in parts[:4])
    except ValueError:
        return
    terminators, prompt, invalid = parts[4], parts[5], parts[6]
    var = parts[7] if len(parts) > 7 else "pagd_input"
    regex = parts[8] if len(parts) > 8 else ""
    try:
        digit_timeout = int(parts[9]) if len(parts) > 9 else timeout
    except ValueError:
        digit_timeout = timeout
    terminators = "" if terminators == "none" else terminators
    v = ch.variables
    v.pop(var, None)
    ch.dtmf.clear()
    ch.collecting = True
    try:
        for _ in range(max(1, tries)):
            if ch.interrupted():
                break
            v.pop(f"{var}_invalid", None)
            v.pop("read_terminator_used", None)
            v.pop("read_result", None)  # captures: gone from each new try's prompt
            if play_file(engine, ch, prompt, stop_on_dtmf=True) == "error":
                break
            digits, terminator = _collect(ch, max_digits, terminators, timeout, digit_timeout)
            if ch.interrupted():
                break
            if terminator:
                v["read_terminator_used"] = terminator
            v["read_result"] = "success" if digits or terminator else "failure"
            valid = bool(digits) and len(digits) >= min_digits and (
                not regex or re.search(regex, digits) is not None)
            if valid:
                v[var] = digits
                break
            if digits:
                v[f"{var}_invalid"] = digits
            if invalid and invalid != "none":
                ch.dtmf.clear()
                if play_file(engine, ch, invalid) == "error":
                    break
    finally:
        ch.collecting = False
        ch.dtmf.clear()


def _collect(ch: Channel, max_digits: int, terminators: str, first_ms: int,
             next_ms: int) -> tuple[str, str]:
    digits = ""
    timeout = first_ms
    while len(digits) < max_digits:
        if not ch.dtmf:
            ch.wait(timeout / 1000.0, digits=True, parse_events=True)
            if ch.interrupted() or not ch.dtmf:
                return digits, ""
        digit = ch.dtmf.popleft()
        if digit in terminators:
            return digits, digit
        digits += digit
        timeout = next_ms
    return digits, ""


def _truthy(value: str | None) -> bool:
    # switch_true(): "true", "yes", "on", "enabled", "active", "allow" or a non-zero number
    v = (value or "").strip().lower()
    return v in ("true", "yes", "on", "enabled", "active", "allow") or (v.isdigit() and int(v) != 0)


def recording_vars(text: str | None) -> list[tuple[str, str]]:
    """``{a=b,c=d}`` as switch_event_create_brackets reads it (after switch_url_decode): the
    recording's own variables, consulted before the channel's (get_recording_var)."""
    if not text:
        return []
    text = urllib.parse.unquote(text)
    if not text.startswith("{") or "}" not in text:
        return []
    out: list[tuple[str, str]] = []
    for item in text[1:text.rindex("}")].split(","):
        name, sep, value = item.partition("=")
        if sep and name:
            out.append((name, value))
    return out


def start_record(engine: Engine, ch: Channel, path: str,
                 variables: list[tuple[str, str]] | None = None) -> bool:
    """switch_ivr_record_session_event: the folder is made (switch_dir_make_recursive) and the
    file opened (a WAV header written) before the media bug is added; either failing sets
    record_completion_cause=uri-failure and starts nothing (no RECORD_START). Stereo when
    RECORD_STEREO is true in the recording's variables, else the channel's. The file is really
    written: a silent WAV, 8 kHz 16-bit, filled in when the recording stops."""
    variables = list(variables or [])
    given = dict(variables)
    stereo = given["RECORD_STEREO"] if "RECORD_STEREO" in given \
        else ch.variables.get("RECORD_STEREO")
    channels = 2 if _truthy(stereo) else 1
    if os.path.isabs(path):
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(wav.header(channels, 8000, 0))
        except OSError:
            ch.variables["record_completion_cause"] = "uri-failure"
            return False
    ch.recording.append(path)
    ch.record_started[path] = engine.clock.now()
    ch.record_channels[path] = channels
    ch.record_vars[path] = variables
    # merge_recording_variables: each as Recording-Variable-<name>, after Record-File-Path
    engine.fire(ch, "RECORD_START", extra=[("Record-File-Path", path), *(
        (f"Recording-Variable-{k}", v) for k, v in variables)])
    engine.fire(ch, "MEDIA_BUG_START", extra=[("Media-Bug-Function", "session_record"),
                                              ("Media-Bug-Target", path)])
    return True


def _write_silence(path: str, channels: int, frames: int) -> int:
    """The file's size once written; a full disk leaves what fit (as a real write would)."""
    try:
        with open(path, "r+b") as f:
            wav.write_silence(f, channels, 8000, frames)
    except OSError:
        pass
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def stop_record(engine: Engine, ch: Channel, path: str) -> None:
    if path not in ch.recording:
        return
    ch.recording.remove(path)
    started = ch.record_started.pop(path, engine.clock.now())
    channels = ch.record_channels.pop(path, 1)
    variables = ch.record_vars.pop(path, [])
    ms = int(round((engine.clock.now() - started) * 1000))
    # 8 kHz: record_samples counts samples per channel (fh->samples_out)
    frames = ms * 8
    size = 44 + frames * 2 * channels
    if os.path.isabs(path):
        size = _write_silence(path, channels, frames)
    v = ch.variables
    v["record_samples"] = str(frames)
    v["record_seconds"] = str(ms // 1000)
    v["record_ms"] = str(ms)
    v["record_file_size"] = str(size)
    v["record_completion_cause"] = "success-silence"
    engine.fire(ch, "RECORD_STOP", extra=[
        ("Record-File-Path", path), *((f"Recording-Variable-{k}", v) for k, v in variables),
        ("Record-Completion-Cause", "success-silence")])
    engine.fire(ch, "MEDIA_BUG_STOP", extra=[("Media-Bug-Function", "session_record"),
                                             ("Media-Bug-Target", path)])


def app_record_session(engine: Engine, ch: Channel, arg: str) -> None:
    """mod_dptools.c:record_session_function, ``<path> [+<timeout>] [{var=value,...}]``
    (the time limit is not modelled: the recording runs to its stop or the hang-up)."""
    parts = arg.split(" ")
    path = parts[0] if parts else ""
    if not path:
        return
    rest = parts[1:]
    if rest and rest[0].startswith("+"):
        rest = rest[1:]
    start_record(engine, ch, path, recording_vars(rest[0] if rest else None))


def app_record(engine: Engine, ch: Channel, arg: str) -> None:
    """mod_dptools.c:record_function, ``<path> [<time limit s>] [<silence thresh>]
    [<silence hits>]``: switch_ivr_record_file fires RECORD_START, records until the limit, a
    terminator key or hang-up, sets record_seconds/record_ms/record_samples and fires
    RECORD_STOP (switch_ivr_play_say.c). Here the caller is silent, so the limit ends it."""
    args = arg.split()
    if not args:
        return
    path = args[0]
    try:
        limit = int(args[1]) if len(args) > 1 else 0
    except ValueError:
        limit = 0
    # No media bug here (unlike record_session): only the two RECORD_* events.
    engine.fire(ch, "RECORD_START", extra=[("Record-File-Path", path)])
    started = engine.clock.now()
    ch.wait(float(limit) if limit > 0 else None, digits=True, parse_events=True)
    ms = int(round((engine.clock.now() - started) * 1000))
    v = ch.variables
    v["record_seconds"] = str(ms // 1000)
    v["record_ms"] = str(ms)
    v["record_samples"] = str(ms * 8)
    engine.fire(ch, "RECORD_STOP", extra=[("Record-File-Path", path)])


def app_stop_record_session(engine: Engine, ch: Channel, arg: str) -> None:
    for path in list(ch.recording) if arg.strip() == "all" else [arg.strip()]:
        stop_record(engine, ch, path)


def app_bridge(engine: Engine, ch: Channel, arg: str) -> None:
    """mod_dptools.c:audio_bridge_function: originate with ``ch`` as originator, then a
    multi-threaded bridge; EXECUTE_COMPLETE only after the bridge ends."""
    if ch.answered:
        engine.set_callstate(ch, "RING_WAIT")
    v = ch.variables
    started: dict[str, Channel] = {}

    def b_side(b: Channel) -> None:
        started["b"] = b
        b.bridged_side = "b"
        engine._mark_bridged(b, ch)
        engine.set_state(b, "CS_EXCHANGE_MEDIA")
        engine._bridge_wait(b, ch, "b")

    try:
        timeout = float(v.get("call_timeout") or v.get("originate_timeout") or 60)
    except ValueError:
        timeout = 60.0
    winner, cause = engine.originate(arg, on_answer=b_side, originator=ch, timeout=timeout)
    if winner is None:
        v["originate_disposition"] = cause
        v["originate_failed_cause"] = cause
        v["DIALSTATUS"] = {"USER_BUSY": "BUSY", "NO_ANSWER": "NOANSWER",
                           "NO_USER_RESPONSE": "NOANSWER"}.get(cause, cause)
        if ch.answered and ch.callstate == "RING_WAIT" and ch.alive:
            engine.set_callstate(ch, "ACTIVE")
        if ch.alive and not _continues_on_fail(v, cause):
            engine.hangup(ch, cause)
        return
    v["originate_disposition"] = "SUCCESS"
    v["DIALSTATUS"] = "SUCCESS"
    ch.other, ch.other_type = winner, "originatee"
    # the caller's callee becomes the answered leg's callee (record_session_bridge_app:
    # Caller-Callee-ID-* from the CALLSTATE that ends RING_WAIT)
    winner.other_profile = replace(ch.profile)  # B keeps the caller as it was dialled
    # A keeps a copy of B's profile, logically inbound (Other-Leg-Logical-Direction)
    ch.other_profile = replace(winner.profile, logical_direction="inbound")
    ch.profile.callee_id_name = winner.profile.callee_id_name
    ch.profile.callee_id_number = winner.profile.callee_id_number
    if not ch.answered:
        engine.mark_answered(ch)
    else:
        engine.set_callstate(ch, "ACTIVE")
    ch.bridged_side = "app"
    # switch_ivr_originate.c records what was dialled before the bridge starts; the bridge
    # thread names the partner after CHANNEL_BRIDGE (record_session_bridge_app capture)
    ch.bridged_sim = engine.clock.now()
    v["signal_bond"] = winner.uuid
    wp = winner.profile
    v["originate_causes"] = f"{winner.uuid};NONE"
    v["originated_legs"] = f"{winner.uuid};{wp.callee_id_name};{wp.callee_id_number}"
    engine.fire(ch, "CHANNEL_BRIDGE", pre=[("Bridge-A-Unique-ID", ch.uuid),
                                           ("Bridge-B-Unique-ID", winner.uuid)])
    engine._mark_bridged(ch, winner, stamp=False)
    engine._bridge_wait(ch, winner, "app")


def _continues_on_fail(v: dict[str, str], cause: str) -> bool:
    """switch_channel.c:switch_channel_handle_cause, which audio_bridge_function calls when the
    originate fails: the caller is hung up with the cause unless ``continue_on_fail`` is true
    or lists it (by name or Q.850 number), ``failure_causes`` does not list it, or, with
    neither set, the cause is NO_ANSWER, NO_USER_RESPONSE or ORIGINATOR_CANCEL."""
    from fssim.channels import cause_q850

    names = {cause.lower(), str(cause_q850(cause))}
    failure = v.get("failure_causes")
    cont = v.get("continue_on_fail")
    if failure is not None and not names & {c.strip().lower() for c in failure.split(",")}:
        return True
    if cont is not None:
        if cont.strip().lower() in ("true", "yes", "on", "enabled", "active", "allow", "1"):
            return True
        return bool(names & {c.strip().lower() for c in cont.split(",")})
    if failure is None:
        return cause in ("NO_ANSWER", "NO_USER_RESPONSE", "ORIGINATOR_CANCEL")
    return False


def app_sched_transfer(engine: Engine, ch: Channel, arg: str) -> None:
    """mod_dptools.c:sched_transfer_function, ``[+]<time> <extension> [<dialplan>]
    [<context>]``: switch_ivr_schedule_transfer adds a task in the channel's uuid group
    (switch_ivr_async.c) that transfers it when due; the id goes to ``last_sched_id``."""
    parts = arg.split()
    if len(parts) < 2:
        return
    when = parts[0]
    try:
        delay = float(when[1:]) if when.startswith("+") else float(when) - engine.clock.now()
    except ValueError:
        return
    dest, dialplan_name = parts[1], (parts[2] if len(parts) > 2 else "XML")

    def transfer() -> None:
        if ch.alive:
            ch.bridge_request = ("transfer", dest, dialplan_name)
            ch.wake()

    task_id = engine.schedule(ch.uuid, max(0.0, delay), transfer)
    ch.variables["last_sched_id"] = str(task_id)


def app_noop(engine: Engine, ch: Channel, arg: str) -> None:
    """Applications cc-core may send that have no effect worth simulating."""


APPS: dict[str, Callable[[Engine, Channel, str], None]] = {
    "answer": app_answer, "pre_answer": app_pre_answer, "ring_ready": app_ring_ready,
    "set": app_set, "export": app_export, "unset": app_unset, "sleep": app_sleep,
    "hangup": app_hangup, "park": app_park, "playback": app_playback,
    "play_and_get_digits": app_play_and_get_digits, "record_session": app_record_session,
    "record": app_record, "sched_transfer": app_sched_transfer,
    "stop_record_session": app_stop_record_session, "bridge": app_bridge,
    "log": app_noop, "info": app_noop, "echo": app_noop, "set_zombie_exec": app_noop,
}


def run(engine: Engine, ch: Channel, app: str, arg: str) -> None:
    handler = APPS.get(app)
    if handler is not None:
        handler(engine, ch, arg)


def flush_pending_hangup(engine: Engine, ch: Channel) -> None:
    """A loopback twin marked for hang-up reports CHANNEL_HANGUP once out of park."""
    if ch.hangup_pending and ch.hangup_cause is None and ch.deferred_cause:
        engine.hangup(ch, ch.deferred_cause)
