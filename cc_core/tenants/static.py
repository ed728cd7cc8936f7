"""Tenants held in memory: for a worker started with a config folder instead of Redis
(``CC_TENANTS``), and for tests."""

from __future__ import annotations

from collections.abc import Iterable

from cc_core.tenants.model import GlobalConfig, NumberConfig, Tenant


class StaticTenants:
    def __init__(self, tenants: Iterable[Tenant], global_config: GlobalConfig | None = None) -> None:
        self._tenants = {t.tenant: t for t in tenants}
        self._global = global_config or GlobalConfig()
        self._numbers = {num: (t, cfg) for t in self._tenants.values()
                         for num, cfg in t.numbers.items()}

    def lookup(self, dnis: str) -> tuple[Tenant, NumberConfig] | None:
        return self._numbers.get(dnis)

    def tenant(self, tenant_id: str) -> Tenant | None:
        return self._tenants.get(tenant_id)

    def global_config(self) -> GlobalConfig:
        return self._global

    def all_tenants(self) -> list[Tenant]:
        return list(self._tenants.values())
