"""Whether a call is recorded, and how: the tenant's policy, refined by the queue's."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cc_core.tenants.model import RecordingMode, Tenant


@dataclass(frozen=True)
class Plan:
    mode: RecordingMode
    percent: int
    stereo: bool
    announce: str | None      # a prompt *path*, resolved from the tenant's prompts

    def records(self, call_uuid: str) -> bool:
        """Whether the call is recorded from its answer (on demand: only when asked)."""
        if self.mode is RecordingMode.ALL:
            return True
        if self.mode is RecordingMode.PERCENT:
            return in_sample(call_uuid, self.percent)
        return False

    @property
    def may_record(self) -> bool:
        return self.mode is not RecordingMode.NONE


def in_sample(call_uuid: str, percent: int) -> bool:
    """A call's place in the percentage, from its UUID: the same answer on every worker and
    after a takeover, and uniform over calls."""
    digest = hashlib.sha256(call_uuid.lower().encode()).digest()
    return int.from_bytes(digest[:4], "big") % 100 < percent


def plan(tenant: Tenant, queue: str | None = None) -> Plan:
    t = tenant.recording
    mode, percent, channels, announce = t.mode, t.percent or 0, t.channels, t.announce
    q = tenant.queues[queue].recording if queue and queue in tenant.queues else None
    if q is not None:
        if q.mode is not None:
            mode, percent = q.mode, q.percent or 0
        channels = q.channels or channels
        announce = q.announce or announce
    return Plan(mode=mode, percent=percent, stereo=channels == "stereo",
                announce=tenant.prompts.get(announce) if announce else None)
