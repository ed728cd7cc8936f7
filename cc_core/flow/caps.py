"""A tenant's monthly caps on the call path: calls started and what they cost.

Each call a worker claims is counted once (``INCR`` of the tenant's month counter, in the same
round trip that reads the month's cost, which billing publishes as the committed
total after each rating, ``billing.service.publish``). Past a cap a
``refuse`` tenant's new call is refused; an ``alert`` tenant's goes on and the crossing is
reported once that month. Months are the tenant's (Asia/Shanghai unless configured).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from cc_core import keys
from cc_core.tenants.model import Tenant

log = logging.getLogger(__name__)
MONTH_TTL_S = 40 * 86400


class CallCaps:
    def __init__(self, redis: Any, reached: Any = None) -> None:
        self.redis = redis
        self.reached = reached        # a Counter labelled (tenant, cap), or None

    def admit(self, tenant: Tenant, at: datetime) -> str | None:
        """Count one started call; the cap it goes past (``monthly_calls`` /
        ``monthly_cost_fen``) when the tenant refuses calls past it, else None."""
        caps = tenant.caps
        if caps.monthly_calls is None and caps.monthly_cost_fen is None:
            return None
        month = at.astimezone(ZoneInfo(tenant.timezone)).strftime("%Y%m")
        pipe = self.redis.pipeline(transaction=False)
        pipe.incr(keys.tenant_month_calls(tenant.tenant, month))
        pipe.expire(keys.tenant_month_calls(tenant.tenant, month), MONTH_TTL_S)
        pipe.get(keys.tenant_month_cost(tenant.tenant, month))
        calls, _, cost = pipe.execute()
        over = None
        if caps.monthly_calls is not None and int(calls) > caps.monthly_calls:
            over = "monthly_calls"
        elif caps.monthly_cost_fen is not None and int(cost or 0) >= caps.monthly_cost_fen:
            over = "monthly_cost_fen"
        if over is None:
            return None
        if self.redis.hsetnx(keys.tenant_month_capped(tenant.tenant, month), over, "1"):
            self.redis.expire(keys.tenant_month_capped(tenant.tenant, month), MONTH_TTL_S)
            log.warning("tenant past its monthly cap", extra={
                "tenant": tenant.tenant, "cap": over, "month": month, "action": caps.action})
            if self.reached is not None:
                self.reached.labels(tenant.tenant, over).inc()
        return over if caps.action == "refuse" else None
