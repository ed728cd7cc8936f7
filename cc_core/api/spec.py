"""The API's one SpecTree: it validates request bodies and builds the OpenAPI document.

SpecTree's decorators run when the resource classes are defined, so this object exists at
import time (the only module-level object of the API besides constants); the app factory binds
it to the app it builds (``spec.register``)."""

from __future__ import annotations

from typing import Any

from spectree import SecurityScheme, SecuritySchemeData, SpecTree
from spectree.models import SecureType

from cc_core import __version__
from cc_core.api.errors import ErrorBody, ValidationFailed

VALIDATION_STATUS = 422


def _before(req: Any, resp: Any, error: Exception | None, instance: Any,
            model_adapter: Any = None) -> None:
    """A body that does not validate: answered in the API's error shape, nothing done."""
    if error is None:
        return
    errors = getattr(error, "errors", None)
    details = []
    if callable(errors):
        for e in errors(include_url=False, include_context=False):
            details.append({"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg", ""),
                            "type": e.get("type", "")})
    where = "; ".join(f"{'.'.join(d['loc']) or 'body'}: {d['msg']}" for d in details)
    exc = ValidationFailed(f"the request body is not valid: {where or error}; fix these "
                           "fields (see the OpenAPI document at /v1/openapi.json)",
                           details=details)
    resp.status = VALIDATION_STATUS
    resp.media = ErrorBody(error=exc.error_id, message=str(exc),
                           details=details).model_dump(mode="json")


spec = SpecTree(
    "falcon",
    title="cc-core API",
    version=__version__,
    description="Agents' desks and supervisors: agent status, live queues, callbacks. "
                "Every route is scoped to one tenant and needs a Bearer token of that tenant.",
    path="v1",
    filename="openapi.json",
    page_templates={},
    mode="strict",
    annotations=False,
    validation_error_status=VALIDATION_STATUS,
    validation_error_model=ErrorBody,
    before=_before,
    naming_strategy=lambda model: model.__name__,   # the API's model names are unique
    security_schemes=[SecurityScheme(name="bearer", data=SecuritySchemeData(type=SecureType.HTTP,
                                                          scheme="bearer"))],
    security={"bearer": []},
)
