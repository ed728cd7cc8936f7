"""Every move of a number's life cycle, legal and illegal, against the map the issue draws."""

from __future__ import annotations

import itertools

import pytest

from provider.lifecycle import IllegalTransition, NumberState, check

S = NumberState
# Written out from issue 12 (available -> reserved -> applied -> under audit -> contracted ->
# active -> suspended -> cancelled -> quarantine -> available) and the side roads the module
# docstring names: release or expiry, withdrawal, materials sent back, rejection, resumption,
# cancellation of a suspended or never-activated contract.
LEGAL = {
    (S.AVAILABLE, S.RESERVED),
    (S.RESERVED, S.APPLIED), (S.RESERVED, S.AVAILABLE),
    (S.APPLIED, S.UNDER_AUDIT), (S.APPLIED, S.AVAILABLE),
    (S.UNDER_AUDIT, S.CONTRACTED), (S.UNDER_AUDIT, S.APPLIED), (S.UNDER_AUDIT, S.AVAILABLE),
    (S.CONTRACTED, S.ACTIVE), (S.CONTRACTED, S.CANCELLED),
    (S.ACTIVE, S.SUSPENDED), (S.ACTIVE, S.CANCELLED),
    (S.SUSPENDED, S.ACTIVE), (S.SUSPENDED, S.CANCELLED),
    (S.CANCELLED, S.QUARANTINE),
    (S.QUARANTINE, S.AVAILABLE),
}


@pytest.mark.parametrize(("current", "target"), sorted(LEGAL))
def test_each_legal_move_is_allowed(current: NumberState, target: NumberState) -> None:
    check("4008123456", current, target)


@pytest.mark.parametrize(("current", "target"),
                         sorted(set(itertools.product(S, S)) - LEGAL))
def test_each_illegal_move_is_refused_naming_the_state_and_the_moves_allowed(
        current: NumberState, target: NumberState) -> None:
    with pytest.raises(IllegalTransition) as err:
        check("4008123456", current, target)
    allowed = sorted(t for c, t in LEGAL if c is current)
    assert str(err.value) == (f"number 4008123456 is {current}: it cannot become {target} "
                              f"(from {current} it can become: {', '.join(allowed)})")
