"""Billing's domain errors (mapped to exit codes by ``cc_core.cli`` with every other)."""

from __future__ import annotations

from cc_core.errors import CcCoreError


class BillingError(CcCoreError):
    error_id = "billing.error"
    exit_code = 2


class UnknownAccount(BillingError):
    """A tenant without a billing account."""

    error_id = "billing.unknown_account"


class BadAmount(BillingError):
    """A top-up or adjustment that cannot be booked (negative, zero, no reason)."""

    error_id = "billing.amount"


class BadRateTable(BillingError):
    """Rate periods with a gap, an overlap, or a rate out of range."""

    error_id = "billing.rate_table"


class BadBillPeriod(BillingError):
    """A bill period that cannot be read or is in the future."""

    error_id = "billing.period"


class BadTerms(BillingError):
    """An account setting out of range (unknown package, increment, threshold)."""

    error_id = "billing.terms"
