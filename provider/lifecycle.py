"""The life cycle of a 400 number, as a state machine: every move is checked here and recorded
by the store (who, when, why); a move the machine does not allow is refused with the current
state and the moves it allows.

    available -> reserved -> applied -> under_audit -> contracted -> active
    active <-> suspended; active | suspended -> cancelled -> quarantine -> available

Side roads: a reservation is released or expires (reserved -> available); an application is
withdrawn (applied -> available); an audit sends the materials back (under_audit -> applied) or
rejects the application (under_audit -> available).
"""

from __future__ import annotations

import enum

from cc_core.errors import CcCoreError

__all__ = ["NumberState", "IllegalTransition", "ALLOWED", "check", "ROUTES"]


class NumberState(enum.StrEnum):
    AVAILABLE = "available"
    RESERVED = "reserved"
    APPLIED = "applied"
    UNDER_AUDIT = "under_audit"
    CONTRACTED = "contracted"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    CANCELLED = "cancelled"
    QUARANTINE = "quarantine"


S = NumberState
ALLOWED: dict[NumberState, frozenset[NumberState]] = {
    S.AVAILABLE: frozenset({S.RESERVED}),
    S.RESERVED: frozenset({S.APPLIED, S.AVAILABLE}),
    S.APPLIED: frozenset({S.UNDER_AUDIT, S.AVAILABLE}),
    S.UNDER_AUDIT: frozenset({S.CONTRACTED, S.APPLIED, S.AVAILABLE}),
    S.CONTRACTED: frozenset({S.ACTIVE, S.CANCELLED}),
    S.ACTIVE: frozenset({S.SUSPENDED, S.CANCELLED}),
    S.SUSPENDED: frozenset({S.ACTIVE, S.CANCELLED}),
    S.CANCELLED: frozenset({S.QUARANTINE}),
    S.QUARANTINE: frozenset({S.AVAILABLE}),
}
# States in which calls to the number reach the tenant's routing.
ROUTES = frozenset({S.ACTIVE})


class IllegalTransition(CcCoreError):
    error_id = "illegal_transition"

    def __init__(self, number: str, current: NumberState, target: NumberState) -> None:
        allowed = ", ".join(sorted(ALLOWED[current])) or "none"
        super().__init__(f"number {number} is {current}: it cannot become {target} "
                         f"(from {current} it can become: {allowed})")
        self.current = current
        self.target = target


def check(number: str, current: NumberState, target: NumberState) -> None:
    if target not in ALLOWED[current]:
        raise IllegalTransition(number, current, target)
