"""Working-day clocks for the audit's service level: "3 working days" on China's calendar.

A working day is a Monday to Friday that is not an official holiday, or a Saturday or Sunday
that the State Council made a working day (调休); the official schedule comes from
chinese-calendar (cc_core.routing.calendar says which years it covers). An application
submitted on day D is due at the end of the n-th working day after D (23:59:59.999999 local
time). Submitted on Wednesday 30 September 2026 with a 3-day SLA: 1-7 October are the National
Day holiday, Thursday 8 and Friday 9 are days 1 and 2, and Saturday 10 October is a make-up
working day, so it is due at the end of Saturday 10 October.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar

__all__ = ["is_working_day", "due", "working_days_between", "covered"]


def covered(day: date) -> bool:
    """Whether the official schedule of ``day``'s year is known (else weekends only)."""
    try:
        chinese_calendar.is_workday(day)
    except NotImplementedError:
        return False
    return True


def is_working_day(day: date) -> bool:
    if not covered(day):
        return day.weekday() < 5
    return bool(chinese_calendar.is_workday(day))


def due(submitted: datetime, working_days: int, tz: ZoneInfo) -> datetime:
    """The end of the ``working_days``-th working day after ``submitted``'s local day."""
    if submitted.tzinfo is None:
        raise ValueError("submitted must be timezone-aware (e.g. Asia/Shanghai)")
    if working_days < 1:
        raise ValueError(f"an SLA of {working_days} working days: give at least 1")
    day = submitted.astimezone(tz).date()
    left = working_days
    while left:
        day += timedelta(days=1)
        if is_working_day(day):
            left -= 1
    return datetime.combine(day, time.max, tz)


def working_days_between(start: datetime, end: datetime, tz: ZoneInfo) -> int:
    """Working days after ``start``'s local day up to and including ``end``'s."""
    a, b = start.astimezone(tz).date(), end.astimezone(tz).date()
    n = 0
    while a < b:
        a += timedelta(days=1)
        n += is_working_day(a)
    return n
