"""The hours language, days off, durations and zone names: what people type, what they read back, the errors."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from bot.domain.hours import (
    DayOff,
    HoursError,
    Interval,
    WeeklyHours,
    parse_days_off,
    parse_duration,
    parse_hours,
    render_days_off,
    render_duration,
    render_hours,
    resolve_timezone,
)

PARSE_RENDER = [
    ("mon-thu 9-17:30; fri 9am-1pm", "Mon–Thu 09:00–17:30 · Fri 09:00–13:00"),
    ("Mon–Thu 09:00–17:30 · Fri 09:00–13:00", "Mon–Thu 09:00–17:30 · Fri 09:00–13:00"),
    ("mon-fri 9-17; wed off", "Mon–Tue 09:00–17:00 · Thu–Fri 09:00–17:00"),
    ("weekdays 9:00-12:00, 13:00-17:30", "Mon–Fri 09:00–12:00, 13:00–17:30"),
    ("weekdays 9:00 - 12:00 13:00 - 17:30", "Mon–Fri 09:00–12:00, 13:00–17:30"),
    ("MONDAY,Wednesday,fri 9-12", "Mon 09:00–12:00 · Wed 09:00–12:00 · Fri 09:00–12:00"),
    ("daily 10-14", "Mon–Sun 10:00–14:00"),
    ("weekends 10am to 2pm", "Sat–Sun 10:00–14:00"),
    ("fri-mon 22-6", "Mon 22:00–06:00 · Fri–Sun 22:00–06:00"),  # wrap-around day range
    ("mon 12am-12pm", "Mon 00:00–12:00"),
    ("mon 12pm-5:30pm", "Mon 12:00–17:30"),
    ("mon 18-24:00", "Mon 18:00–24:00"),
    ("mon 18-12am", "Mon 18:00–24:00"),  # an end at midnight is the end of the day
    ("mon 9:30 a.m.-5 p.m.", "Mon 09:30–17:00"),
    ("mon 9.30-17.30", "Mon 09:30–17:30"),
    ("mon 09:00-05:00", "Mon 09:00–05:00"),  # explicit HH:MM may run overnight from a morning start
    ("mon-fri 9-17;", "Mon–Fri 09:00–17:00"),
    ("mon 9-17\ntue 10-16", "Mon 09:00–17:00 · Tue 10:00–16:00"),
    # Overlapping and touching intervals on one day merge.
    ("mon 9-13, 12-17", "Mon 09:00–17:00"),
    ("mon 9-12, 12-17", "Mon 09:00–17:00"),
    ("mon 20-23, 22-2", "Mon 20:00–02:00"),
    # A later group overrides earlier ones for the same days.
    ("daily 9-17; sat-sun off; fri 9-13", "Mon–Thu 09:00–17:00 · Fri 09:00–13:00"),
]


@pytest.mark.parametrize(("text", "rendered"), PARSE_RENDER)
def test_parse_then_render(text: str, rendered: str) -> None:
    weekly = parse_hours(text)
    assert render_hours(weekly) == rendered
    assert parse_hours(rendered) == weekly


def test_parse_gives_minutes_after_midnight() -> None:
    weekly = parse_hours("mon 9-17:30; sun 22-6")
    assert weekly.days[0] == (Interval(540, 1050),)
    assert weekly.days[6] == (Interval(1320, 360),)
    assert weekly.days[6][0].overnight
    assert weekly.days[1:6] == ((),) * 5


PARSE_ERRORS = [
    ("mon-fri 25:00-17", "25:00 is not a time — use 24-hour HH:MM like 17:30"),
    ("mon 9:5-17", "9:5 is not a time"),
    ("mon 9:60-17", "minutes are two digits 00-59"),
    ("mon 13pm-2pm", "with am/pm the hour is 1-12"),
    ("mon 24:30-2", "24:30 is not a time"),
    ("mon 24-2", "24:00 can only end an interval"),
    ("mon 9-9", "is empty"),
    ("mon 9am-9:00", "is empty"),
    ("mon-fri 9-5", "would run overnight from 09:00 to 05:00 — times are 24-hour: write 9-17 or 9am-5pm"),
    ("9-17", "does not start with days"),
    ("mnday 9-17", "“mnday” is not a day"),
    ("mon-fir 9-17", "“fir” is not a day"),
    ("mon-fri", "has days but no times"),
    ("mon-fri 9-17 lunch", "Could not read “lunch” as times"),
    ("mon 9-17-18", "Could not read"),
    ("", "No hours given"),
    (" ; ;", "No hours given"),
    ("mon off", "no working hours at all"),
    ("mon-fri 9-17; mon-fri off", "no working hours at all"),
    ("daily 0-24", "no time off at all"),
    ("daily 12-12am, 0-12", "no time off at all"),
    ("mon 0-24, 23-2", "24 hours or more"),
    ("mon 9-17; " * 200, "must fit in 1,000"),
]


@pytest.mark.parametrize(("text", "message"), PARSE_ERRORS)
def test_parse_errors_say_what_is_wrong_with_an_example(text: str, message: str) -> None:
    with pytest.raises(HoursError) as caught:
        parse_hours(text)
    assert message in str(caught.value)
    if "1,000" not in message:
        assert any(marker in str(caught.value) for marker in ("e.g.", "like", "write"))


def test_weekly_hours_validation() -> None:
    with pytest.raises(HoursError, match="exactly 7 days"):
        WeeklyHours(((),) * 6)
    with pytest.raises(HoursError, match="empty"):
        Interval(540, 540)
    with pytest.raises(HoursError, match="start between"):
        Interval(1440, 60)
    with pytest.raises(HoursError, match="end between"):
        Interval(60, 0)
    # Unsorted, overlapping input is normalised, so equal hours compare equal.
    messy = WeeklyHours(((Interval(780, 1020), Interval(540, 800)),) + ((),) * 6)
    assert messy == WeeklyHours(((Interval(540, 1020),),) + ((),) * 6)
    assert render_hours(WeeklyHours(((),) * 7)) == "No working hours"


DAYS_OFF = [
    ("2026-12-24", DayOff(date(2026, 12, 24), date(2026, 12, 24)), "2026-12-24"),
    ("2026-12-24..2027-01-02", DayOff(date(2026, 12, 24), date(2027, 1, 2)), "2026-12-24 → 2027-01-02"),
    (" 2026-12-24 → 2027-01-02 ", DayOff(date(2026, 12, 24), date(2027, 1, 2)), "2026-12-24 → 2027-01-02"),
    ("2026-12-24..2026-12-24", DayOff(date(2026, 12, 24), date(2026, 12, 24)), "2026-12-24"),
    ("2028-01-01..2028-12-31", DayOff(date(2028, 1, 1), date(2028, 12, 31)), "2028-01-01 → 2028-12-31"),  # 366 days
]


@pytest.mark.parametrize(("text", "expected", "rendered"), DAYS_OFF)
def test_days_off(text: str, expected: DayOff, rendered: str) -> None:
    assert parse_days_off(text) == expected
    assert render_days_off(expected) == rendered
    assert parse_days_off(rendered) == expected


DAYS_OFF_ERRORS = [
    ("2026-02-30", "“2026-02-30” is not a date — use YYYY-MM-DD"),
    ("24/12/2026", "is not a date"),
    ("", "is not a date"),
    ("2027-01-02..2026-12-24", "write the earlier date first"),
    ("2026-01-01..2027-01-02", "longer than 366 days"),  # 367 days
    ("2026-01-01..2026-01-02..2026-01-03", "is not a date or range"),
]


@pytest.mark.parametrize(("text", "message"), DAYS_OFF_ERRORS)
def test_days_off_errors(text: str, message: str) -> None:
    with pytest.raises(HoursError, match=message):
        parse_days_off(text)


DURATIONS = [
    ("30m", timedelta(minutes=30), "30 min"),
    ("2h", timedelta(hours=2), "2 h"),
    ("1d", timedelta(days=1), "1 d"),
    ("1h30m", timedelta(minutes=90), "1 h 30 min"),
    ("90 min", timedelta(minutes=90), "1 h 30 min"),
    ("2 hours", timedelta(hours=2), "2 h"),
    ("1 h 30 min", timedelta(minutes=90), "1 h 30 min"),
    ("1 Day 2 Hours", timedelta(hours=26), "1 d 2 h"),
    ("14d", timedelta(days=14), "14 d"),
    ("2 weeks", timedelta(days=14), "14 d"),
    ("45 seconds", timedelta(seconds=45), "45 s"),
]


@pytest.mark.parametrize(("text", "expected", "rendered"), DURATIONS)
def test_durations(text: str, expected: timedelta, rendered: str) -> None:
    assert parse_duration(text) == expected
    assert render_duration(expected) == rendered
    assert parse_duration(rendered) == expected


@pytest.mark.parametrize("text", ["", "30", "0m", "15d", "14d 1m", "5 parsecs", "-2h", "1.5h", "99999999999999999999h"])
def test_duration_errors_show_an_example(text: str) -> None:
    with pytest.raises(HoursError, match=r"e\.g\. 30m, 2h"):
        parse_duration(text)


TIMEZONES = [
    ("Europe/Rome", "Europe/Rome"),
    ("europe/rome", "Europe/Rome"),
    ("  America/New York ", "America/New_York"),
    ("UTC", "UTC"),
    ("asia/kolkata", "Asia/Kolkata"),
]


@pytest.mark.parametrize(("name", "canonical"), TIMEZONES)
def test_resolve_timezone(name: str, canonical: str) -> None:
    assert resolve_timezone(name) == canonical


TIMEZONE_ERRORS = [
    ("Europe/Romee", "Europe/Romee is not a time zone — did you mean Europe/Rome?"),
    ("rome", "did you mean Europe/Rome?"),
    ("Amerca/Chicgo", "did you mean America/Chicago?"),
    ("Mars/Olympus_Mons", "use an IANA name like Europe/Rome"),
    ("", "use an IANA name like Europe/Rome"),
]


@pytest.mark.parametrize(("name", "message"), TIMEZONE_ERRORS)
def test_resolve_timezone_suggests_real_zones(name: str, message: str) -> None:
    with pytest.raises(HoursError) as caught:
        resolve_timezone(name)
    assert message in str(caught.value)
