"""Is the tenant open right now? Working hours, tenant and official holidays.

Order of precedence for a local date, most specific first:

1. a tenant holiday closes the day;
2. a tenant workday opens it with Monday's hours (the hours of a normal working day;
   Monday because it is the one weekday every Chinese working week has);
3. an official China holiday (chinese-calendar) closes it;
4. an official make-up working day (调休, a Saturday or Sunday worked in exchange for a
   longer holiday) opens it with Monday's hours;
5. otherwise the hours configured for that weekday.

``official=False`` skips 3 and 4 (tenants abroad, or lines open every day).

chinese-calendar 1.11.0 covers 2004 to 2026: the State Council publishes each year's
schedule in the November before. Outside that range days are ordinary days and
``covers`` returns False, so config validation can warn before a year starts.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import chinese_calendar

__all__ = ["OpenStatus", "Reason", "WorkCalendar", "DEFAULT_TIMEZONE"]

DEFAULT_TIMEZONE = "Asia/Shanghai"
_MONDAY = 0


class Reason(enum.StrEnum):
    WORKING_HOURS = "working_hours"
    OUTSIDE_HOURS = "outside_hours"
    WEEKEND = "weekend"
    OFFICIAL_HOLIDAY = "official_holiday"
    TENANT_HOLIDAY = "tenant_holiday"
    MAKEUP_WORKDAY = "makeup_workday"
    TENANT_WORKDAY = "tenant_workday"


@dataclass(frozen=True, slots=True)
class OpenStatus:
    open: bool
    reason: Reason
    local_time: datetime  # the instant in the calendar's zone, for logs and prompts


Interval = tuple[time, time]


class WorkCalendar:
    def __init__(
        self,
        timezone: str = DEFAULT_TIMEZONE,
        hours: Mapping[int, Iterable[Interval]] | None = None,
        holidays: Iterable[date] = (),
        workdays: Iterable[date] = (),
        official: bool = True,
    ) -> None:
        try:
            self._zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"timezone {timezone!r} is not an IANA zone name; write e.g. 'Asia/Shanghai' "
                "or 'Europe/Berlin'"
            ) from exc
        if hours is None:
            raise ValueError(
                "hours is required: give each open weekday its intervals, e.g. "
                "{0: [(time(9), time(18))], ...}; a weekday left out is closed"
            )
        self.timezone = timezone
        self._hours = _check_hours(hours)
        self._holidays = frozenset(_check_dates("holidays", holidays))
        self._workdays = frozenset(_check_dates("workdays", workdays))
        both = sorted(self._holidays & self._workdays)
        if both:
            raise ValueError(
                f"{', '.join(d.isoformat() for d in both)} listed as both a tenant holiday and "
                "a tenant workday; keep each date in one list"
            )
        self.official = official
        # Copied once: the package exposes its tables as module dicts.
        self._official_holidays = frozenset(chinese_calendar.holidays)
        self._official_workdays = frozenset(chinese_calendar.workdays)
        years = [d.year for d in chinese_calendar.holidays]
        self._first_year, self._last_year = min(years), max(years)

    def covers(self, d: date) -> bool:
        """Whether the official calendar knows the holidays of ``d``'s year."""
        return self._first_year <= d.year <= self._last_year

    def status(self, at: datetime) -> OpenStatus:
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError(
                f"{at.isoformat()} has no timezone; pass an aware datetime, e.g. "
                "datetime.now(timezone.utc)"
            )
        local = at.astimezone(self._zone)
        day, now = local.date(), local.time()
        if day in self._holidays:
            return OpenStatus(False, Reason.TENANT_HOLIDAY, local)
        if day in self._workdays:
            return self._within(_MONDAY, now, Reason.TENANT_WORKDAY, local)
        if self.official:
            if day in self._official_holidays:
                return OpenStatus(False, Reason.OFFICIAL_HOLIDAY, local)
            if day in self._official_workdays:
                return self._within(_MONDAY, now, Reason.MAKEUP_WORKDAY, local)
        weekday = day.weekday()
        if not self._hours.get(weekday) and weekday >= 5:
            return OpenStatus(False, Reason.WEEKEND, local)
        return self._within(weekday, now, Reason.WORKING_HOURS, local)

    def _within(self, weekday: int, now: time, reason: Reason, local: datetime) -> OpenStatus:
        for start, end in self._hours.get(weekday, ()):
            if start <= now < end:
                return OpenStatus(True, reason, local)
        return OpenStatus(False, Reason.OUTSIDE_HOURS, local)


def _check_hours(hours: Mapping[int, Iterable[Interval]]) -> dict[int, tuple[Interval, ...]]:
    checked: dict[int, tuple[Interval, ...]] = {}
    for weekday, intervals in hours.items():
        if not isinstance(weekday, int) or isinstance(weekday, bool) or not 0 <= weekday <= 6:
            raise ValueError(
                f"hours key {weekday!r} is not a weekday; use 0 (Monday) to 6 (Sunday)"
            )
        day: list[Interval] = []
        for interval in intervals:
            try:
                start, end = interval
            except (TypeError, ValueError):
                raise ValueError(
                    f"hours[{weekday}] entry {interval!r} is not a (start, end) pair of times"
                ) from None
            if not isinstance(start, time) or not isinstance(end, time):
                raise ValueError(
                    f"hours[{weekday}] entry {interval!r} is not a (start, end) pair of "
                    "datetime.time values"
                )
            if start.tzinfo is not None or end.tzinfo is not None:
                raise ValueError(
                    f"hours[{weekday}] entry {start}-{end} carries a timezone; give wall-clock "
                    "times and set the calendar's timezone instead"
                )
            if not start < end:
                raise ValueError(
                    f"hours[{weekday}] interval {start}-{end} does not end after it starts; "
                    "an interval may not cross midnight: split a night shift into one interval "
                    "ending at 23:59:59.999999 (time.max) and one starting at 00:00 the next day"
                )
            day.append((start, end))
        checked[weekday] = tuple(sorted(day))
    return checked


def _check_dates(name: str, values: Iterable[date]) -> list[date]:
    out = []
    for d in values:
        # datetime is a date subclass; a datetime here means a config slip.
        if not isinstance(d, date) or isinstance(d, datetime):
            raise ValueError(f"{name} entry {d!r} is not a date; write it as YYYY-MM-DD")
        out.append(d)
    return out
