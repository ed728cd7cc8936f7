"""The record store's domain errors (mapped to exit codes by ``cc_core.cli`` with the rest)."""

from __future__ import annotations

from cc_core.errors import CcCoreError


class StoreUnavailable(CcCoreError):
    """The SQL store cannot be opened or reached."""

    error_id = "records.unavailable"
    exit_code = 3


class MigrationError(CcCoreError):
    """The schema cannot be brought to this version of cc-core."""

    error_id = "records.migration"


class BadPeriod(CcCoreError):
    """A period to export or report on that cannot be read or makes no sense."""

    error_id = "records.period"
    exit_code = 2


class UnknownRecordsTenant(CcCoreError):
    """A tenant of which the store holds no call."""

    error_id = "records.unknown_tenant"
    exit_code = 2
