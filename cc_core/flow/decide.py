"""The decisions taken when a call parks, in the order the product defines (issue 7, section 3).

1. number → tenant (unknown or cancelled: UNALLOCATED_NUMBER, never answered); a reserved or
   suspended number: an announcement in early media, never answered;
2. blacklist, the tenant's and the platform's: rejected unanswered, never queued;
3. whitelist: VIP callers carry a priority the ACD honours;
4. caller region: a rule may send the call elsewhere, or the region may be blocked;
5. time: outside working hours (holidays, make-up working days) → the after-hours destination;
6. answer mode: IVR (answered before the first prompt) or greeting (early media, answered when
   an agent answers);
7. credit (billing, issue 9): a routed call of a tenant whose prepaid credit is exhausted is
   refused with an announcement in early media, never answered (``no_credit``; the worker
   asks the Redis credit view, ``billing.live``, and this module stays pure).

Pure: no Redis, no switch. ``Decider`` holds what is loaded once (the region data) and caches
each tenant's compiled rules by the tenant object (tenants are frozen and replaced whole on a
new config version).
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from cc_core.routing.calendar import WorkCalendar
from cc_core.routing.lists import NumberRules
from cc_core.routing.numbers import CallerNumber, normalise
from cc_core.routing.region import Region, RegionDirectory
from cc_core.tenants.model import (
    AnswerMode,
    Destination,
    DestinationKind,
    GlobalConfig,
    ListConfig,
    NumberConfig,
    NumberStatus,
    RegionMatch,
    Tenant,
)

log = logging.getLogger(__name__)


class TenantSource(Protocol):
    """Where tenants come from: the Redis directory on workers, a loaded folder in tests."""

    def lookup(self, dnis: str) -> tuple[Tenant, NumberConfig] | None: ...
    def tenant(self, tenant_id: str) -> Tenant | None: ...
    def all_tenants(self) -> list[Tenant]: ...
    def global_config(self) -> GlobalConfig: ...


class Verdict(enum.Enum):
    ROUTE = "route"                  # go to ``destination``
    UNALLOCATED = "unallocated"      # unknown / cancelled number
    NOT_IN_SERVICE = "not_in_service"  # reserved or suspended number
    BLACKLISTED = "blacklisted"
    REGION_BLOCKED = "region_blocked"
    OVER_CAP = "over_cap"            # the tenant's monthly cap is reached (cc_core.flow.caps)
    NO_CREDIT = "no_credit"          # billing: the tenant's prepaid credit is exhausted


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    tenant: Tenant | None = None
    destination: Destination | None = None
    answer_mode: AnswerMode = AnswerMode.IVR
    caller: CallerNumber | None = None
    region: Region | None = None
    priority: int = 0
    after_hours: bool = False
    announce: str | None = None      # prompt name to play in early media before a rejection
    cause: str = ""                  # hang-up cause of a rejection
    reason: str = ""                 # what matched (a list rule, the region, the calendar)


#: The tenant's prompt played to a caller refused for want of credit (early media).
NO_CREDIT_PROMPT = "no_credit"


def no_credit(d: Decision) -> Decision:
    """The routed decision ``d`` turned into a refusal: the tenant's credit is exhausted.
    The caller hears the tenant's ``no_credit`` prompt unanswered (nothing billed), then
    CALL_REJECTED."""
    return Decision(Verdict.NO_CREDIT, d.tenant, caller=d.caller, region=d.region,
                    cause="CALL_REJECTED", announce=NO_CREDIT_PROMPT, reason="credit exhausted")


@dataclass(frozen=True)
class _Compiled:
    blacklist: NumberRules
    whitelist: NumberRules
    calendar: WorkCalendar


def _rules(cfg: ListConfig) -> NumberRules:
    return NumberRules.build(cfg.numbers, cfg.prefixes, cfg.area_codes,
                             anonymous=cfg.anonymous, invalid=cfg.invalid)


def _region_matches(rule: RegionMatch, region: Region | None, caller: CallerNumber) -> bool:
    if rule.area_code is not None:
        code = caller.area_code or (region.area_code if region else None)
        if code != rule.area_code:
            return False
    if region is None:
        return rule.province is None and rule.city is None and rule.area_code is not None
    if rule.province is not None and region.province != rule.province:
        return False
    return rule.city is None or region.city == rule.city


class Decider:
    def __init__(self, tenants: TenantSource, regions: RegionDirectory) -> None:
        self.tenants = tenants
        self.regions = regions
        self._compiled: dict[int, tuple[Tenant, _Compiled]] = {}
        self._global: tuple[GlobalConfig, NumberRules] | None = None

    def _for(self, tenant: Tenant) -> _Compiled:
        hit = self._compiled.get(id(tenant))
        if hit is not None and hit[0] is tenant:
            return hit[1]
        h = tenant.hours
        compiled = _Compiled(
            blacklist=_rules(tenant.lists.blacklist), whitelist=_rules(tenant.lists.whitelist),
            calendar=WorkCalendar(timezone=tenant.timezone, hours=h.intervals(),
                                  holidays=set(h.holidays), workdays=set(h.workdays),
                                  official=h.official))
        if len(self._compiled) > 1000:
            self._compiled.clear()
        self._compiled[id(tenant)] = (tenant, compiled)
        return compiled

    def _global_rules(self) -> NumberRules:
        cfg = self.tenants.global_config()
        if self._global is None or self._global[0] is not cfg:
            self._global = (cfg, _rules(cfg.blacklist))
        return self._global[1]

    def decide(self, dnis: str, caller_raw: str | None, at: datetime) -> Decision:
        found = self.tenants.lookup(dnis)
        if found is None or found[1].status is NumberStatus.CANCELLED:
            return Decision(Verdict.UNALLOCATED, cause="UNALLOCATED_NUMBER",
                            reason="unknown number" if found is None else "cancelled")
        tenant, number = found
        caller = normalise(caller_raw)
        if number.status is not NumberStatus.ACTIVE:
            # Never answered, so the caller pays nothing; 480 Temporarily Unavailable on SIP.
            return Decision(Verdict.NOT_IN_SERVICE, tenant, caller=caller,
                            cause="NO_USER_RESPONSE" if number.status is NumberStatus.SUSPENDED
                            else "UNALLOCATED_NUMBER", reason=number.status.value,
                            announce=number.announce)
        rules = self._for(tenant)
        hit = rules.blacklist.match(caller)
        if hit is None and tenant.lists.use_global_blacklist:
            hit = self._global_rules().match(caller)
        if hit is not None:
            return Decision(Verdict.BLACKLISTED, tenant, caller=caller, cause="CALL_REJECTED",
                            announce=tenant.lists.blacklist.announce, reason=str(hit))
        vip = rules.whitelist.match(caller)
        priority = tenant.lists.whitelist.priority if vip is not None else 0
        region = self.regions.lookup(caller)
        for blocked in tenant.regions.blocked:
            if _region_matches(blocked, region, caller):
                return Decision(Verdict.REGION_BLOCKED, tenant, caller=caller, region=region,
                                cause="CALL_REJECTED", announce=tenant.regions.blocked_announce,
                                reason=f"{region.province if region else ''} blocked")
        dest = number.entry or tenant.entry
        reason = "entry"
        for rule in tenant.regions.rules:
            if _region_matches(rule.match, region, caller):
                dest, reason = rule.to, "region"
                break
        after = False
        if tenant.hours.after_hours is not None:
            status = rules.calendar.status(at.astimezone(ZoneInfo(tenant.timezone)))
            if not status.open:
                dest, after, reason = tenant.hours.after_hours, True, str(status.reason)
        mode = number.answer_mode or tenant.answer_mode
        if dest.kind in (DestinationKind.HANGUP,):
            mode = AnswerMode.IVR
        return Decision(Verdict.ROUTE, tenant, dest, mode, caller, region, priority, after,
                        reason=reason)
