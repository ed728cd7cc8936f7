"""Callers notice when the line says "closed" on a working day, or rings an empty office
on National Day. Every expected value below is written by hand from the published
schedule and the wall clock; none is computed with the calendar under test."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

import pytest

from cc_core.routing.calendar import OpenStatus, Reason, WorkCalendar

CST = timezone(timedelta(hours=8))  # China Standard Time, no DST since 1991

OFFICE = [(time(9, 0), time(12, 0)), (time(13, 30), time(18, 0))]
WEEKDAYS = {d: OFFICE for d in range(5)}


@pytest.fixture(scope="module")
def shanghai() -> WorkCalendar:
    return WorkCalendar(hours=WEEKDAYS)


def cst(y: int, mo: int, d: int, h: int, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=CST)


CASES: list[tuple[str, datetime, bool, Reason]] = [
    ("Wednesday morning", cst(2025, 11, 26, 10), True, Reason.WORKING_HOURS),
    ("opening minute", cst(2025, 11, 26, 9), True, Reason.WORKING_HOURS),
    ("a second before opening", cst(2025, 11, 26, 8, 59, 59), False, Reason.OUTSIDE_HOURS),
    ("lunch starts (end exclusive)", cst(2025, 11, 26, 12), False, Reason.OUTSIDE_HOURS),
    ("lunch break", cst(2025, 11, 26, 12, 30), False, Reason.OUTSIDE_HOURS),
    ("after lunch", cst(2025, 11, 26, 13, 30), True, Reason.WORKING_HOURS),
    ("last second", cst(2025, 11, 26, 17, 59, 59), True, Reason.WORKING_HOURS),
    ("closing time", cst(2025, 11, 26, 18), False, Reason.OUTSIDE_HOURS),
    ("night", cst(2025, 11, 26, 23), False, Reason.OUTSIDE_HOURS),
    ("Saturday", cst(2025, 11, 29, 10), False, Reason.WEEKEND),
    ("Sunday", cst(2025, 11, 30, 10), False, Reason.WEEKEND),
    ("National Day, a Wednesday", cst(2025, 10, 1, 10), False, Reason.OFFICIAL_HOLIDAY),
    ("National Day week, Wednesday 8th", cst(2025, 10, 8, 10), False, Reason.OFFICIAL_HOLIDAY),
    ("make-up Sunday before National Day", cst(2025, 9, 28, 10), True, Reason.MAKEUP_WORKDAY),
    ("make-up Sunday, lunch", cst(2025, 9, 28, 12, 30), False, Reason.OUTSIDE_HOURS),
    ("make-up Saturday after National Day", cst(2025, 10, 11, 15), True, Reason.MAKEUP_WORKDAY),
    ("Spring Festival 2026, Tuesday", cst(2026, 2, 17, 10), False, Reason.OFFICIAL_HOLIDAY),
    ("Spring Festival 2026, last day", cst(2026, 2, 23, 10), False, Reason.OFFICIAL_HOLIDAY),
    ("make-up Saturday before Spring Festival", cst(2026, 2, 14, 10), True, Reason.MAKEUP_WORKDAY),
    ("make-up Saturday after Spring Festival", cst(2026, 2, 28, 10), True, Reason.MAKEUP_WORKDAY),
    ("back at work after Spring Festival", cst(2026, 2, 24, 10), True, Reason.WORKING_HOURS),
    # 01:30 UTC is 09:30 in Shanghai, 00:30 UTC is 08:30
    ("01:30 UTC", datetime(2025, 11, 26, 1, 30, tzinfo=UTC), True, Reason.WORKING_HOURS),
    ("00:30 UTC", datetime(2025, 11, 26, 0, 30, tzinfo=UTC), False, Reason.OUTSIDE_HOURS),
    # Still 30 September in UTC, already National Day in Shanghai
    ("23:00 UTC on 30 Sep", datetime(2025, 9, 30, 23, 0, tzinfo=UTC), False, Reason.OFFICIAL_HOLIDAY),
    # 10:00 UTC Friday is 18:00 Friday in Shanghai: closed; 16:00 UTC Sunday is Monday 00:00
    ("10:00 UTC", datetime(2025, 11, 28, 10, 0, tzinfo=UTC), False, Reason.OUTSIDE_HOURS),
    ("Sunday 16:00 UTC", datetime(2025, 11, 30, 16, 0, tzinfo=UTC), False, Reason.OUTSIDE_HOURS),
]


@pytest.mark.parametrize(("what", "at", "is_open", "reason"), CASES, ids=[c[0] for c in CASES])
def test_shanghai(shanghai: WorkCalendar, what: str, at: datetime, is_open: bool, reason: Reason) -> None:
    got = shanghai.status(at)
    assert (got.open, got.reason) == (is_open, reason)


def test_status_carries_the_local_time(shanghai: WorkCalendar) -> None:
    got = shanghai.status(datetime(2025, 11, 26, 1, 30, tzinfo=UTC))
    assert got == OpenStatus(True, Reason.WORKING_HOURS, cst(2025, 11, 26, 9, 30))
    assert (got.local_time.hour, got.local_time.minute) == (9, 30)


def test_reason_compares_equal_to_its_string(shanghai: WorkCalendar) -> None:
    # Call-flow config and log/metric labels use the plain strings.
    assert shanghai.status(cst(2025, 11, 29, 10)).reason == "weekend"
    assert f"{shanghai.status(cst(2025, 10, 1, 10)).reason}" == "official_holiday"


def test_reason_values_are_the_documented_strings() -> None:
    assert {r.value for r in Reason} == {
        "working_hours", "outside_hours", "weekend", "official_holiday",
        "tenant_holiday", "makeup_workday", "tenant_workday",
    }


def test_tenant_holiday_closes_a_working_day_and_a_makeup_day() -> None:
    cal = WorkCalendar(hours=WEEKDAYS, holidays={date(2025, 11, 26), date(2025, 9, 28)})
    assert cal.status(cst(2025, 11, 26, 10)) == OpenStatus(False, Reason.TENANT_HOLIDAY, cst(2025, 11, 26, 10))
    assert cal.status(cst(2025, 9, 28, 10)).reason is Reason.TENANT_HOLIDAY
    assert cal.status(cst(2025, 11, 27, 10)).open  # the next day is unaffected


def test_tenant_workday_opens_with_mondays_hours() -> None:
    hours = dict(WEEKDAYS)
    hours[0] = [(time(8, 0), time(20, 0))]  # Monday is longer than the other days
    cal = WorkCalendar(hours=hours, workdays={date(2025, 11, 29), date(2025, 10, 2)})
    saturday = cal.status(cst(2025, 11, 29, 19))
    assert (saturday.open, saturday.reason) == (True, Reason.TENANT_WORKDAY)
    assert cal.status(cst(2025, 11, 29, 20)).reason is Reason.OUTSIDE_HOURS
    # a tenant workday beats an official holiday
    assert cal.status(cst(2025, 10, 2, 10)).reason is Reason.TENANT_WORKDAY
    # an official make-up day also uses Monday's hours
    assert cal.status(cst(2025, 9, 28, 19)).reason is Reason.MAKEUP_WORKDAY
    assert cal.status(cst(2025, 11, 30, 10)).reason is Reason.WEEKEND  # Sunday: not listed


def test_official_false_ignores_the_official_calendar() -> None:
    cal = WorkCalendar(hours=WEEKDAYS, official=False)
    assert cal.status(cst(2025, 10, 1, 10)).reason is Reason.WORKING_HOURS
    assert cal.status(cst(2025, 9, 28, 10)).reason is Reason.WEEKEND
    assert cal.status(cst(2026, 2, 17, 10)).reason is Reason.WORKING_HOURS


def test_seven_day_line_with_weekend_hours() -> None:
    cal = WorkCalendar(hours={**WEEKDAYS, 5: [(time(10), time(16))], 6: []})
    assert cal.status(cst(2025, 11, 29, 10)).reason is Reason.WORKING_HOURS
    assert cal.status(cst(2025, 11, 29, 9)).reason is Reason.OUTSIDE_HOURS
    assert cal.status(cst(2025, 11, 30, 10)).reason is Reason.WEEKEND
    assert cal.status(cst(2025, 10, 4, 10)).reason is Reason.OFFICIAL_HOLIDAY  # a Saturday


def test_weekday_without_hours_is_outside_hours() -> None:
    cal = WorkCalendar(hours={0: OFFICE})
    assert cal.status(cst(2025, 11, 26, 10)).reason is Reason.OUTSIDE_HOURS


def test_night_shift_split_at_midnight() -> None:
    cal = WorkCalendar(hours={0: [(time(20), time.max)], 1: [(time(0), time(2))]}, official=False)
    assert cal.status(cst(2025, 11, 24, 23, 59, 59)).open
    assert cal.status(cst(2025, 11, 25, 0, 0)).open
    assert cal.status(cst(2025, 11, 25, 1, 59)).open
    assert not cal.status(cst(2025, 11, 25, 2, 0)).open


def test_years_outside_the_official_data_are_ordinary_days(shanghai: WorkCalendar) -> None:
    assert shanghai.covers(date(2025, 10, 1))
    assert shanghai.covers(date(2026, 12, 31))
    assert shanghai.covers(date(2004, 1, 1))
    assert not shanghai.covers(date(2027, 1, 1))
    assert not shanghai.covers(date(2003, 12, 31))
    # 2027-10-01 will be National Day, but the data does not know it yet: a Friday.
    assert shanghai.status(cst(2027, 10, 1, 10)).reason is Reason.WORKING_HOURS
    assert shanghai.status(cst(2027, 10, 2, 10)).reason is Reason.WEEKEND


# Europe/Berlin: CEST (UTC+2) until 03:00 on Sunday 26 October 2025, CET (UTC+1) after;
# CET again until 02:00 on Sunday 29 March 2026, CEST after. Office 09:00-17:00.
BERLIN: list[tuple[datetime, bool]] = [
    (datetime(2025, 10, 24, 7, 30, tzinfo=UTC), True),  # Fri 09:30 CEST
    (datetime(2025, 10, 24, 6, 30, tzinfo=UTC), False),  # Fri 08:30 CEST
    (datetime(2025, 10, 27, 7, 30, tzinfo=UTC), False),  # Mon 08:30 CET
    (datetime(2025, 10, 27, 8, 30, tzinfo=UTC), True),  # Mon 09:30 CET
    (datetime(2025, 10, 27, 15, 30, tzinfo=UTC), True),  # Mon 16:30 CET
    (datetime(2025, 10, 27, 16, 0, tzinfo=UTC), False),  # Mon 17:00 CET
    (datetime(2026, 3, 27, 8, 0, tzinfo=UTC), True),  # Fri 09:00 CET
    (datetime(2026, 3, 27, 7, 30, tzinfo=UTC), False),  # Fri 08:30 CET
    (datetime(2026, 3, 30, 7, 0, tzinfo=UTC), True),  # Mon 09:00 CEST
    (datetime(2026, 3, 30, 6, 30, tzinfo=UTC), False),  # Mon 08:30 CEST
    (datetime(2026, 3, 30, 14, 59, tzinfo=UTC), True),  # Mon 16:59 CEST
    (datetime(2026, 3, 30, 15, 0, tzinfo=UTC), False),  # Mon 17:00 CEST
]


@pytest.mark.parametrize(("at", "is_open"), BERLIN)
def test_berlin_across_dst(at: datetime, is_open: bool) -> None:
    cal = WorkCalendar("Europe/Berlin", {d: [(time(9), time(17))] for d in range(5)}, official=False)
    assert cal.status(at).open is is_open


def test_shanghai_has_no_dst(shanghai: WorkCalendar) -> None:
    # The same UTC time of day on the Mondays either side of Europe's clock changes.
    for day in (date(2025, 3, 24), date(2025, 3, 31), date(2025, 10, 20), date(2025, 10, 27)):
        at = datetime(day.year, day.month, day.day, 1, 0, tzinfo=UTC)
        assert shanghai.status(at).open, day  # 09:00 in Shanghai every time


def test_naive_datetime_is_refused(shanghai: WorkCalendar) -> None:
    with pytest.raises(ValueError, match="no timezone.*aware"):
        shanghai.status(datetime(2025, 11, 26, 10))


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"timezone": "Asia/Beijing", "hours": WEEKDAYS}, "'Asia/Beijing' is not an IANA zone"),
        ({"timezone": "", "hours": WEEKDAYS}, "is not an IANA zone"),
        ({"timezone": "../etc/passwd", "hours": WEEKDAYS}, "is not an IANA zone"),
        ({}, "hours is required"),
        ({"hours": {7: OFFICE}}, "0 (Monday) to 6 (Sunday)"),
        ({"hours": {"mon": OFFICE}}, "0 (Monday) to 6 (Sunday)"),
        ({"hours": {4: [(time(22), time(2))]}}, "may not cross midnight"),
        ({"hours": {4: [(time(9), time(9))]}}, "does not end after it starts"),
        ({"hours": {4: [("09:00", "18:00")]}}, "datetime.time"),
        ({"hours": {4: [time(9)]}}, "(start, end) pair"),
        ({"hours": {4: [(time(9, tzinfo=UTC), time(18, tzinfo=UTC))]}}, "wall-clock"),
        ({"hours": WEEKDAYS, "holidays": ["2025-10-01"]}, "YYYY-MM-DD"),
        ({"hours": WEEKDAYS, "holidays": [datetime(2025, 10, 1)]}, "not a date"),
        (
            {"hours": WEEKDAYS, "holidays": {date(2025, 10, 1)}, "workdays": {date(2025, 10, 1)}},
            "2025-10-01 listed as both",
        ),
    ],
)
def test_bad_config_says_what_and_how(kwargs: dict[str, object], says: str) -> None:
    with pytest.raises(ValueError) as err:
        WorkCalendar(**kwargs)  # type: ignore[arg-type]
    assert says in str(err.value)
