"""The worker's side of recording: starting it on the switch, and learning what was written.

A call's recording is started on the caller's leg, so it covers both sides once bridged:
``uuid_record <uuid> start <path>`` (sync: its reply says at once whether the switch could open
the file) when an agent answers, or when an agent or supervisor asks (on demand); for voicemail
``record_session <path>`` is queued ahead of the prompt, so it starts at the answer. Stereo is
the channel variable ``RECORD_STEREO`` (switch_ivr_async.c: caller left, agent right).

The switch creates the folders (``switch_dir_make_recursive``) and reports the file with
RECORD_START (``Record-File-Path``) and RECORD_STOP (``record_ms``, ``record_file_size``,
``Record-Completion-Cause``); those events, not the command, fill the call's ``recording``,
which the hang-up summary carries to the index and the call record.

A recording that cannot start (the switch answers ``-ERR Cannot record session!``: a full disk,
an unwritable root) is counted and logged, and the call goes on unrecorded.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from cc_core.errors import EslError
from cc_core.tenants.model import Tenant
from esl_handlers import commands
from recordings.layout import Root, relative_name
from recordings.policy import plan
from recordings.wav import HEADER_BYTES, NotWav, WavInfo, read_info

log = logging.getLogger(__name__)

# switch_ivr_async.c: RECORD_STEREO puts the read (caller) and write (agent) sides on two
# channels of one file.
_STEREO = {"RECORD_STEREO": "true"}

# The index's completion of a recording whose RECORD_STOP was missed (read from the file).
RECOVERED = "recovered-from-file"


class Recorder:
    def __init__(self, root: Root, metrics: Any = None) -> None:
        self.root = root
        self.metrics = metrics

    # -- starting --------------------------------------------------------------------------------
    def name_for(self, tenant: Tenant, call_uuid: str, at_ms: int | None = None) -> str:
        at = at_ms if at_ms is not None else int(time.time() * 1000)
        return relative_name(tenant.tenant, call_uuid, at, tenant.timezone)

    def on_agent_answer(self, call: Any, tenant: Tenant, queue: str) -> bool:
        """An agent won the call: record it when the queue's policy says so; True when a
        recording started (the call's data changed)."""
        if plan(tenant, queue).records(call.uuid):
            return self.start(call, tenant, by="policy", queue=queue)
        return False

    def start(self, call: Any, tenant: Tenant, *, by: str, queue: str | None = None) -> bool:
        """``uuid_record start`` on the caller's leg; False when it did not start."""
        rec = call.data.recording
        if rec.get("name") and not rec.get("stopped_ms"):
            return True              # already recording
        if rec.get("stopped_ms"):
            log.info("recording already made for this call; not started again",
                     extra=_ctx(call))
            return False
        name = self.name_for(tenant, call.uuid)
        path = self.root.absolute(name)
        stereo = plan(tenant, queue or call.data.queue or None).stereo
        try:
            # The recording's own variable, not the channel's: a later recording of the call
            # does not inherit it.
            reply = call.link.api(commands.uuid_record(
                call.uuid, "start", path, variables=_STEREO if stereo else None))
        except (EslError, OSError) as exc:
            self._failed(call, "command_error", repr(exc), path)
            return False
        if not reply.startswith("+OK"):
            self._failed(call, "refused", reply.strip(), path)
            return False
        call.data.recording = {"name": name, "stereo": stereo, "by": by,
                               "asked_ms": int(time.time() * 1000)}
        log.info("recording", extra={**_ctx(call), "recording": name, "by": by})
        return True

    def voicemail_app(self, call: Any, tenant: Tenant) -> tuple[str, str] | None:
        """The ``record_session`` to queue first on a voicemail call, when the policy records
        it (the failure of a queued app is only seen as a missing RECORD_START)."""
        p = plan(tenant)
        if not p.records(call.uuid):
            return None
        name = self.name_for(tenant, call.uuid)
        call.data.recording = {"name": name, "stereo": p.stereo, "by": "policy",
                               "asked_ms": int(time.time() * 1000)}
        path = self.root.absolute(name)
        if p.stereo:
            return "record_session", f"{path} {commands.recording_variables(_STEREO)}"
        return "record_session", path

    def stop(self, call: Any) -> bool:
        rec = call.data.recording
        if not rec.get("name") or rec.get("stopped_ms"):
            return False
        try:
            reply = call.link.api(commands.uuid_record(call.uuid, "stop",
                                                       self.root.absolute(rec["name"])))
        except (EslError, OSError) as exc:
            log.warning("could not stop the recording: %r", exc, extra=_ctx(call))
            return False
        return reply.startswith("+OK")

    def on_hangup(self, call: Any, tenant: Tenant | None = None) -> None:
        """The call is over: what its recording events left unsaid is read from the file.

        RECORD_START and RECORD_STOP reach only the node's owner; when the owner died (or
        the node had none) while they were sent, the switch still wrote the file. A finished
        WAV at the call's own path is then taken as the recording, its length and size read
        from the file (completion ``recovered-from-file``). A recording asked for with no
        RECORD_START and no file never started (a queued ``record_session`` the switch could
        not open answers nothing): counted and logged as refused.

        With ``tenant``, a call an agent answered whose data names no recording (its holder
        died between ``uuid_record`` and saving the call) is looked up at the path the
        policy would have given it, on the day the agent answered."""
        rec = call.data.recording
        if not rec.get("name") and tenant is not None:
            rec = self._unsaved(call, tenant)
        if not rec.get("name") or rec.get("stopped_ms"):
            return
        path = self.root.absolute(rec["name"])
        found = _finished_file(path)
        if found is None:
            if not rec.get("started_ms"):
                self._failed(call, "refused", "no RECORD_START", path)
            return
        info, size, mtime_ms = found
        rec["stopped_ms"] = mtime_ms
        rec.setdefault("started_ms", max(0, mtime_ms - info.ms))
        rec["ms"], rec["size"], rec["cause"] = info.ms, size, RECOVERED
        log.info("recording events missed; taken from the file", extra={
            **_ctx(call), "recording": rec["name"], "ms": info.ms, "size": size})

    def _unsaved(self, call: Any, tenant: Tenant) -> dict[str, Any]:
        answered_ms = call.data.agent_answered_ms
        p = plan(tenant, call.data.queue or None)
        if not call.data.agent or not answered_ms or not p.records(call.uuid):
            return call.data.recording
        name = self.name_for(tenant, call.uuid, answered_ms)
        if _finished_file(self.root.absolute(name)) is None:
            return call.data.recording
        call.data.recording = {"name": name, "stereo": p.stereo, "by": "policy",
                               "asked_ms": answered_ms}
        return call.data.recording

    def _failed(self, call: Any, reason: str, detail: str, path: str) -> None:
        if self.metrics is not None:
            self.metrics.fail(reason)
        log.warning("recording did not start; the call goes on unrecorded",
                    extra={**_ctx(call), "reason": reason, "reply": detail, "path": path})

    # -- events ----------------------------------------------------------------------------------
    def on_event(self, call: Any, event: Any) -> bool:
        """RECORD_START / RECORD_STOP of the call's own recording (a voicemail ``record`` of
        another file is not it); True when the call's ``recording`` changed."""
        rec = call.data.recording
        name = rec.get("name")
        if not name or event.get("Record-File-Path") != self.root.absolute(name):
            return False
        at_ms = _event_ms(event)
        if event.get("Event-Name") == "RECORD_START":
            rec["started_ms"] = at_ms
            if self.metrics is not None:
                self.metrics.started.inc()
            return True
        rec["stopped_ms"] = at_ms or int(time.time() * 1000)
        rec["ms"] = _int(event.get("variable_record_ms"))
        rec["size"] = _int(event.get("variable_record_file_size"))
        rec["cause"] = event.get("Record-Completion-Cause") or ""
        return True


def _finished_file(path: str) -> tuple[WavInfo, int, int] | None:
    """The WAV at ``path`` with audio in it (its header, size and last write), or None."""
    try:
        st = os.stat(path)
        size, mtime_ms = st.st_size, int(st.st_mtime * 1000)
        info = read_info(path)
    except (OSError, NotWav):
        return None
    if size <= HEADER_BYTES or info.ms <= 0:
        return None
    return info, size, mtime_ms


def _ctx(call: Any) -> dict[str, str]:
    return {"call_uuid": call.uuid, "tenant": call.data.tenant}


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def _event_ms(event: Any) -> int:
    return _int(event.get("Event-Date-Timestamp")) // 1000
