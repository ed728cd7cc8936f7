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


# The ESL library's own errors (esl_handlers imports nothing from cc_core); the CLI maps them
# with the product's.
from esl_handlers.errors import (  # noqa: E402 - after the product's own hierarchy
    AuthFailed,
    CommandTimeout,
    EslError,
    FrameError,
    LeaseLost,
    NotConnected,
    UnsupportedEventFormat,
)

#: Everything the CLI reports as a domain error (message, error id, exit code).
DOMAIN_ERRORS = (CcCoreError, EslError, LeaseLost)


class UnknownTenant(CcCoreError):
    """A tenant id that the applied configuration does not hold."""

    error_id = "tenant.unknown"


class ConfigConflict(CcCoreError):
    """Other applies kept landing while this one was being prepared; run it again."""

    error_id = "config.conflict"


__all__ = ["AuthFailed", "CcCoreError", "CommandTimeout", "ConfigConflict", "ConfigError",
           "DOMAIN_ERRORS", "EnvironmentProblem", "EslError", "FrameError", "LeaseLost",
           "NotConnected", "UnknownTenant", "UnsupportedEventFormat"]
