"""The audit's working-day clock on China's 2026 calendar: National Day (1-7 October), the
Mid-Autumn Festival (25-27 September) and the make-up working days Sunday 20 September and
Saturday 10 October (State Council schedule for 2026)."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

import pytest

from provider.sla import due, is_working_day, working_days_between

TZ = ZoneInfo("Asia/Shanghai")


def _at(y: int, m: int, d: int, h: int = 15) -> datetime:
    return datetime(y, m, d, h, 0, tzinfo=TZ)


def _end(y: int, m: int, d: int) -> datetime:
    return datetime.combine(datetime(y, m, d).date(), time.max, TZ)


@pytest.mark.parametrize(("submitted", "days", "expected"), [
    (_at(2026, 11, 30), 3, _end(2026, 12, 3)),          # an ordinary week
    (_at(2026, 11, 27), 3, _end(2026, 12, 2)),          # Friday: the weekend does not count
    (_at(2026, 9, 30), 3, _end(2026, 10, 10)),          # across National Day to a make-up Sat
    (_at(2026, 9, 24), 1, _end(2026, 9, 28)),           # Mid-Autumn Festival Fri-Sun skipped
    (_at(2026, 9, 18), 1, _end(2026, 9, 20)),           # Sunday 20 Sep is worked
    (_at(2026, 10, 1), 1, _end(2026, 10, 8)),           # submitted on a holiday
])
def test_due_dates_follow_the_official_calendar(submitted: datetime, days: int,
                                                expected: datetime) -> None:
    assert due(submitted, days, TZ) == expected


def test_the_day_is_the_tenant_s_local_day() -> None:
    # 17:00 UTC on Friday is already Saturday 01:00 in Shanghai: Monday is the first day.
    utc_friday_evening = datetime(2026, 11, 27, 17, 0, tzinfo=ZoneInfo("UTC"))
    assert due(utc_friday_evening, 1, TZ) == _end(2026, 11, 30)


def test_working_days_between_counts_make_up_days_and_skips_holidays() -> None:
    assert working_days_between(_at(2026, 9, 30), _at(2026, 10, 11), TZ) == 3
    assert is_working_day(_at(2026, 10, 10).date()) and not is_working_day(_at(2026, 10, 5).date())


def test_a_naive_time_or_an_empty_sla_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        due(datetime(2026, 11, 30, 15, 0), 3, TZ)
    with pytest.raises(ValueError, match="at least 1"):
        due(_at(2026, 11, 30), 0, TZ)
