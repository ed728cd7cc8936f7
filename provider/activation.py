"""Activation of a contracted number, and the moves that change its routing (suspend, resume,
cancel): each changes the inventory (``provider.inventory``) and the tenant's applied routing
configuration (``TenantStore.set_number``) together, so calls follow at once.

Activation binds the number to its tenant's configuration as active, so that it routes, then
places the test call (拨测, ``cc_core.selftest``) and keeps its report. A passing test makes the
number active; a failing one sets the binding back to reserved (callers hear the reserved
announcement, never a broken flow), leaves the number contracted, and says why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cc_core.errors import CcCoreError
from cc_core.tenants.model import NumberStatus
from provider.inventory import get, move
from provider.lifecycle import NumberState
from records.db import Database


class NotReadyForActivation(CcCoreError):
    error_id = "numbers.not_ready"
    exit_code = 2


@dataclass(frozen=True)
class DialTest:
    passed: bool
    report: str


@dataclass(frozen=True)
class Activation:
    number: str
    tenant: str
    active: bool
    report: str

    def summary(self) -> str:
        if self.active:
            return f"{self.number} is active for {self.tenant}: the test call passed"
        last = self.report.strip().splitlines()[-1:] or ["no report"]
        return (f"{self.number} stays contracted for {self.tenant}: the test call failed "
                f"({last[0]}); fix the routing or the node and activate again")


# Routing status of the tenant's number in each life-cycle state the move leads to.
_ROUTING = {NumberState.ACTIVE: NumberStatus.ACTIVE,
            NumberState.SUSPENDED: NumberStatus.SUSPENDED,
            NumberState.CANCELLED: NumberStatus.CANCELLED}


def activate(db: Database, tenants: Any, number: str, *, actor: str, now_ms: int,
             dial_test: Callable[[str], DialTest]) -> Activation:
    row = get(db, number)
    if row.state is not NumberState.CONTRACTED or not row.tenant:
        raise NotReadyForActivation(
            f"number {number} is {row.state}: activation needs an accepted audit and a "
            "signed contract first (contracted, with its tenant)")
    tenants.set_number(row.tenant, row.number, NumberStatus.ACTIVE)
    try:
        result = dial_test(row.number)
    except Exception as exc:  # noqa: BLE001 - a test that cannot run is a failed test
        result = DialTest(False, f"the test call could not run: {exc!r}")
    with db.transaction() as tx:
        tx.execute("INSERT INTO number_tests (number, at_ms, tenant, actor, passed, report) "
                   "VALUES (?, ?, ?, ?, ?, ?)",
                   (row.number, now_ms, row.tenant, actor, int(result.passed), result.report))
    if result.passed:
        move(db, row.number, NumberState.ACTIVE, actor=actor, now_ms=now_ms,
             reason="activated: the test call (拨测) passed")
    else:
        tenants.set_number(row.tenant, row.number, NumberStatus.RESERVED)
    return Activation(row.number, row.tenant, result.passed, result.report)


def change(db: Database, tenants: Any, number: str, target: NumberState, *, actor: str,
           reason: str, now_ms: int) -> None:
    """Suspend, resume or cancel a number: the inventory and the routing move together."""
    row = move(db, number, target, actor=actor, reason=reason, now_ms=now_ms)
    status = _ROUTING.get(target)
    if status is not None and row.tenant:
        tenants.set_number(row.tenant, row.number, status)


def reports(db: Database, number: str) -> list[tuple[int, bool, str]]:
    with db.transaction(write=False) as tx:
        rows = tx.execute("SELECT at_ms, passed, report FROM number_tests WHERE number = ? "
                          "ORDER BY at_ms", (number,)).fetchall()
    return [(int(a), bool(p), str(r)) for a, p, r in rows]
