"""The one hierarchy of domain errors.

Each error carries a stable ``error_id`` that the CLI maps to an exit code in one
place (``cc_core.cli``); messages say what was wrong and how to fix it.
"""

from __future__ import annotations


class CcCoreError(Exception):
    """Base of every error the product raises on purpose."""

    error_id = "cc_core.error"
    exit_code = 1


class ConfigError(CcCoreError):
    """Configuration that cannot be used; the message names the file, the path and the fix."""

    error_id = "config.invalid"
    exit_code = 2


class EnvironmentProblem(CcCoreError):
    """Something the machine lacks (a binary, a free port)."""

    error_id = "environment.missing"
    exit_code = 3


class EslError(CcCoreError):
    """Base of errors on the FreeSWITCH Event Socket."""

    error_id = "esl.error"


class FrameError(EslError):
    """Bytes that do not form an ESL frame; the connection must be reset."""

    error_id = "esl.frame"


class UnsupportedEventFormat(EslError):
    """An event in a format the project does not parse (event xml)."""

    error_id = "esl.unsupported_format"


class NotConnected(EslError):
    """A command was sent, or was pending, while the connection was down."""

    error_id = "esl.not_connected"


class CommandTimeout(EslError):
    """FreeSWITCH did not answer a command in time."""

    error_id = "esl.command_timeout"


class AuthFailed(EslError):
    """FreeSWITCH refused the ESL password (or the ACL refused us)."""

    error_id = "esl.auth_failed"
    exit_code = 4


class LeaseLost(CcCoreError):
    """This worker no longer owns a node lease it acted under (fencing)."""

    error_id = "lease.lost"


class UnknownTenant(CcCoreError):
    """A tenant id that the applied configuration does not hold."""

    error_id = "tenant.unknown"


class ConfigConflict(CcCoreError):
    """Other applies kept landing while this one was being prepared; run it again."""

    error_id = "config.conflict"
