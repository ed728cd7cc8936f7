"""Every error the API answers, as ``{"error": <stable id>, "message": <what and how to fix>}``.

Domain errors (the ACD's, the tenant store's) are mapped to HTTP statuses here and nowhere
else; a handler raises, never writes an error body itself.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from acd.errors import AcdError
from cc_core.errors import CcCoreError, UnknownTenant


class ErrorBody(BaseModel):
    error: str = Field(description="stable id: unknown_agent, unknown_queue, "
                       "already_logged_in, validation_error, unauthorized, forbidden, ...")
    message: str = Field(description="what was wrong and how to fix it")
    details: list[dict[str, Any]] | None = Field(
        None, description="validation_error: pydantic's list of problems (loc, msg, type)")


class ApiError(CcCoreError):
    status = 400
    error_id = "bad_request"

    def __init__(self, message: str, *, error_id: str | None = None,
                 details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        if error_id is not None:
            self.error_id = error_id
        self.details = details


class Unauthorized(ApiError):
    status = 401
    error_id = "unauthorized"


class Forbidden(ApiError):
    status = 403
    error_id = "forbidden"


class NotFound(ApiError):
    status = 404
    error_id = "not_found"


class MethodNotAllowed(ApiError):
    status = 405
    error_id = "method_not_allowed"


class ValidationFailed(ApiError):
    status = 422
    error_id = "validation_error"


# The ACD's error ids (acd.errors) -> HTTP status; any other ACD error (already_queued, ...) is
# a request that does not fit the agent's or queue's current state: 409.
ACD_STATUS = {
    "unknown_agent": 404,
    "unknown_queue": 404,
    "unknown_member": 404,
    "already_logged_in": 409,
}
ACD_DEFAULT_STATUS = 409


def status_and_body(exc: Exception) -> tuple[int, ErrorBody]:
    """The one mapping of a raised error to what the client gets."""
    if isinstance(exc, ApiError):
        return exc.status, ErrorBody(error=exc.error_id, message=str(exc), details=exc.details)
    if isinstance(exc, UnknownTenant):
        return 404, ErrorBody(error="unknown_tenant", message=str(exc))
    if isinstance(exc, AcdError):
        return ACD_STATUS.get(exc.error_id, ACD_DEFAULT_STATUS), ErrorBody(error=exc.error_id,
                                                                           message=str(exc))
    return 500, ErrorBody(error="internal_error",
                          message="the server failed on this request; it is logged, "
                                  "try again or tell the operator")
