"""The ACD's domain errors: one hierarchy under ``cc_core.errors.CcCoreError``, each with a
stable ``error_id`` (the HTTP and CLI layers map them in one place) and a message that says
what was wrong and how to fix it."""

from __future__ import annotations

from cc_core.errors import CcCoreError


class AcdError(CcCoreError):
    """Base of the ACD's errors."""

    error_id = "acd_error"


class UnknownAgent(AcdError):
    error_id = "unknown_agent"

    def __init__(self, tenant: str, agent: str) -> None:
        super().__init__(f"tenant {tenant!r} has no agent {agent!r}: add it under agents: in "
                         "the tenant's config and apply it (Acd.sync), or check the id")


class UnknownQueue(AcdError):
    error_id = "unknown_queue"

    def __init__(self, tenant: str, queue: str) -> None:
        super().__init__(f"tenant {tenant!r} has no queue {queue!r}: add it under queues: in "
                         "the tenant's config and apply it (Acd.sync), or check the name")


class UnknownMember(AcdError):
    error_id = "unknown_member"

    def __init__(self, tenant: str, call_uuid: str) -> None:
        super().__init__(f"call {call_uuid} is in no queue of tenant {tenant!r}: enqueue it "
                         "first (Acd.enqueue), or it already left")


class AlreadyLoggedIn(AcdError):
    error_id = "already_logged_in"

    def __init__(self, tenant: str, agent: str, status: str) -> None:
        super().__init__(f"agent {agent!r} of tenant {tenant!r} is already logged in "
                         f"(status {status}): use set_available / set_break to change status, "
                         "or log out first")


class AlreadyQueued(AcdError):
    error_id = "already_queued"

    def __init__(self, tenant: str, call_uuid: str, queue: str) -> None:
        super().__init__(f"call {call_uuid} of tenant {tenant!r} is still in queue {queue!r}: "
                         "leave that queue first (Acd.leave, e.g. reason 'overflow')")


class BadLeaveReason(AcdError):
    error_id = "bad_leave_reason"

    def __init__(self, reason: str, known: list[str]) -> None:
        super().__init__(f"leave reason {reason!r} is not one of {', '.join(known)}")
