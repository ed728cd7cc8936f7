"""Who may call what: ``Authorization: Bearer <token>`` on every route but the public ones.

Checked once, here, before any handler or body validation runs (falcon middleware):
1. a route is public only if its resource says so (``public = True``: the OpenAPI document);
2. the token exists (``TokenStore.authenticate``), else 401 ``unauthorized``;
3. the ``{tenant}`` of the path is the token's tenant, else 403 ``forbidden``; a route without
   ``{tenant}`` in its path is refused (deny by default);
4. the route's role for this method (``roles`` on the resource) is within the token's, else 403;
   a method the resource gives no role is refused;
5. an agent token bound to one agent acts only on that agent's ``{agent}``;
6. the provider's back office (``provider = True`` on the resource, no ``{tenant}``) takes only
   the provider's staff tokens, which may also act on every tenant's routes.
"""

from __future__ import annotations

from typing import Any

from cc_core.api.errors import Forbidden, Unauthorized
from cc_core.api.tokens import PROVIDER, Role, TokenStore


def roles_of(resource: Any) -> dict[str, Role]:
    return dict(getattr(resource, "roles", {}) or {})


def is_public(resource: Any) -> bool:
    return bool(getattr(resource, "public", False))


class AuthMiddleware:
    def __init__(self, tokens: TokenStore) -> None:
        self.tokens = tokens

    def process_resource(self, req: Any, resp: Any, resource: Any,
                         params: dict[str, Any]) -> None:
        if resource is None or is_public(resource):
            return
        header = req.get_header("Authorization") or ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("send your API token as 'Authorization: Bearer <token>'; "
                               "create one with: cc-core token create --tenant TENANT")
        info = self.tokens.authenticate(token.strip())
        if info is None:
            raise Unauthorized("this token is not valid (revoked, mistyped, or of another "
                               "installation); ask for a new one: cc-core token create")
        staff = info.role is Role.STAFF and info.tenant == PROVIDER
        tenant = params.get("tenant")
        if getattr(resource, "provider", False):
            # The provider's back office: its staff only.
            if not staff:
                raise Forbidden("this is the provider's back office: it needs a staff token "
                                "(cc-core token create --provider)")
        elif tenant is None:
            raise Forbidden("this route is not scoped to a tenant; no token may use it")
        elif tenant != info.tenant and not staff:
            raise Forbidden(f"this token belongs to tenant {info.tenant!r}, not {tenant!r}: "
                            f"use a token of {tenant!r}")
        needed = roles_of(resource).get(req.method)
        if needed is None and not hasattr(resource, f"on_{req.method.lower()}"):
            return  # falcon answers 405 (nothing runs)
        if needed is None:
            raise Forbidden(f"{req.method} is not granted to any role on this route")
        if not info.role.allows(needed):
            raise Forbidden(f"this needs a {needed.value} token; yours is an "
                            f"{info.role.value} token")
        agent = params.get("agent")
        if info.agent is not None and agent is not None and agent != info.agent:
            raise Forbidden(f"this token acts for agent {info.agent!r} only, not {agent!r}")
        req.context.token = info
