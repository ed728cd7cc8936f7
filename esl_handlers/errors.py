"""The ESL library's errors, each with a stable ``error_id`` (the product's CLI maps ids to exit
codes in one place). The library raises nothing else on purpose."""

from __future__ import annotations


class EslError(Exception):
    """Base of errors on the FreeSWITCH Event Socket."""

    error_id = "esl.error"
    exit_code = 1


class FrameError(EslError):
    """Bytes that do not form an ESL frame; the connection must be reset."""

    error_id = "esl.frame"


class UnsupportedEventFormat(EslError):
    """An event in a format the library does not parse (event xml)."""

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


class LeaseLost(Exception):
    """This worker no longer owns a node lease it acted under (fencing)."""

    error_id = "lease.lost"
    exit_code = 1
