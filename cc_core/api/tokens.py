"""API tokens: one set per tenant, each with a role, stored only as a SHA-256.

A token reads ``cct.<tenant>.<secret>``: the tenant part says which tenant's hash to look in
(``keys.api_tokens``, in the tenant's slot), so a lookup is one HGET; tenant ids cannot hold a
``.``. The secret is 256 random bits, so the digest alone identifies a token; its first 12 hex
digits are the token's public id (``cc-core token list``/``revoke``). A token of tenant A is
only ever looked up in A's hash: it cannot authenticate as anything of tenant B.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgpack

from cc_core import keys
from cc_core.errors import CcCoreError

PREFIX = "cct"
ID_CHARS = 12


class Role(enum.Enum):
    AGENT = "agent"            # a desk: its agent's status, the queues it serves
    SUPERVISOR = "supervisor"  # everything of the tenant
    STAFF = "staff"            # the provider's staff: inventory, audit, every tenant

    def allows(self, needed: Role) -> bool:
        if self is Role.STAFF:
            return True
        if needed is Role.STAFF:
            return False
        return self is Role.SUPERVISOR or needed is Role.AGENT


# The provider's staff hold their tokens under this pseudo-tenant (no tenant id may start with
# "_": cc_core.tenants.model's id pattern), created with `cc-core token create --provider`.
PROVIDER = "_provider"


class UnknownToken(CcCoreError):
    error_id = "token.unknown"


@dataclass(frozen=True)
class TokenInfo:
    id: str
    tenant: str
    role: Role
    agent: str | None = None     # an agent token bound to one agent acts only for that agent
    label: str = ""
    created_ms: int = 0


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def tenant_of(token: str) -> str | None:
    prefix, sep, rest = token.partition(".")
    tenant, sep2, secret = rest.partition(".")
    if prefix != PREFIX or not (sep and sep2 and tenant and secret):
        return None
    return tenant


class TokenStore:
    def __init__(self, redis: Any, *, clock: Callable[[], float] = time.time) -> None:
        self.redis = redis
        self._clock = clock

    def create(self, tenant: str, role: Role, *, agent: str | None = None,
               label: str = "") -> tuple[str, TokenInfo]:
        """A new token (shown once: only its digest is kept) and what it grants."""
        token = f"{PREFIX}.{tenant}.{secrets.token_urlsafe(32)}"
        d = digest(token)
        info = TokenInfo(id=d[:ID_CHARS], tenant=tenant, role=role, agent=agent, label=label,
                         created_ms=int(self._clock() * 1000))
        self.redis.hset(keys.api_tokens(tenant), d, msgpack.packb({
            "id": info.id, "role": role.value, "agent": agent, "label": label,
            "created_ms": info.created_ms}, use_bin_type=True))
        return token, info

    def list(self, tenant: str) -> list[TokenInfo]:
        raw = self.redis.hgetall(keys.api_tokens(tenant))
        return sorted((self._info(tenant, v) for v in raw.values()),
                      key=lambda i: (i.created_ms, i.id))

    def revoke(self, tenant: str, token_id: str) -> TokenInfo:
        for field, value in self.redis.hgetall(keys.api_tokens(tenant)).items():
            info = self._info(tenant, value)
            if info.id == token_id:
                self.redis.hdel(keys.api_tokens(tenant), field)
                return info
        raise UnknownToken(f"tenant {tenant!r} has no token {token_id!r}; see its tokens with "
                           f"cc-core token list --tenant {tenant}")

    def authenticate(self, token: str) -> TokenInfo | None:
        tenant = tenant_of(token)
        if tenant is None:
            return None
        d = digest(token)
        raw = self.redis.hget(keys.api_tokens(tenant), d)
        if raw is None:
            return None
        info = self._info(tenant, raw)
        # The field matched by hash lookup; compare the id too, in constant time, so a
        # corrupted entry cannot stand in for another token.
        return info if hmac.compare_digest(info.id, d[:ID_CHARS]) else None

    @staticmethod
    def _info(tenant: str, raw: bytes) -> TokenInfo:
        v = msgpack.unpackb(raw, raw=False)
        return TokenInfo(id=v["id"], tenant=tenant, role=Role(v["role"]), agent=v.get("agent"),
                         label=v.get("label", ""), created_ms=int(v.get("created_ms", 0)))
