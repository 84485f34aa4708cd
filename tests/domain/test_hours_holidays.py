"""Public holidays as days off, on fixed instants: several countries and regions, observed dates, a DST change,
a year boundary, reply-by across holidays, the codes people type, and the defaults they fall back on."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.domain.errors import HoursError
from bot.domain.hours import Schedule, parse_days_off, parse_hours, resolve_holidays
from bot.domain.hours.holidays import calendar
from bot.domain.preferences import PersonRow, preferences

WEEKDAYS = parse_hours("mon-fri 9-17:30")


def at(tz: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(tz))


def local(instant: datetime, tz: str) -> str:
    return instant.astimezone(ZoneInfo(tz)).strftime("%a %Y-%m-%d %H:%M %z")


# --- days off -----------------------------------------------------------------------------------------


def test_us_independence_day_on_a_saturday_is_observed_on_the_friday():
    tz = "America/New_York"
    schedule = Schedule(tz, WEEKDAYS, holidays="US")
    thursday_evening = at(tz, 2026, 7, 2, 18)
    assert local(schedule.next_start(thursday_evening), tz) == "Mon 2026-07-06 09:00 -0400"
    assert not schedule.is_working(at(tz, 2026, 7, 3, 10))  # Friday 3 July: Independence Day (observed)
    # Without holidays the Friday is a working day.
    assert local(Schedule(tz, WEEKDAYS).next_start(thursday_evening), tz) == "Fri 2026-07-03 09:00 -0400"


def test_de_by_easter_across_the_spring_dst_change():
    # Good Friday 26 March 2027, Europe springs forward on Sunday the 28th, Easter Monday the 29th.
    tz = "Europe/Berlin"
    schedule = Schedule(tz, WEEKDAYS, holidays="DE-BY")
    back = schedule.next_start(at(tz, 2027, 3, 25, 18))
    assert local(back, tz) == "Tue 2027-03-30 09:00 +0200"
    assert back == datetime(2027, 3, 30, 7, tzinfo=UTC)
    since, until = schedule.off_window(at(tz, 2027, 3, 29, 12))
    assert local(since, tz) == "Thu 2027-03-25 17:30 +0100"  # still winter time when they stopped
    assert until == back


def test_de_by_has_epiphany_and_berlin_does_not():
    tz = "Europe/Berlin"
    evening = at(tz, 2027, 1, 5, 18)  # Tuesday; Wednesday 6 January is Epiphany in Bavaria only
    assert local(Schedule(tz, WEEKDAYS, holidays="DE-BY").next_start(evening), tz) == "Thu 2027-01-07 09:00 +0100"
    assert local(Schedule(tz, WEEKDAYS, holidays="DE-BE").next_start(evening), tz) == "Wed 2027-01-06 09:00 +0100"


def test_gb_sct_across_the_year_boundary_with_substitute_days():
    # Boxing Day 2026 is a Saturday (substitute Monday 28 Dec); 2 January 2027, a Scottish holiday, is a Saturday
    # (substitute Monday 4 January).
    tz = "Europe/London"
    schedule = Schedule(tz, WEEKDAYS, holidays="GB-SCT")
    assert local(schedule.next_start(at(tz, 2026, 12, 24, 18)), tz) == "Tue 2026-12-29 09:00 +0000"
    assert local(schedule.next_start(at(tz, 2026, 12, 31, 18)), tz) == "Tue 2027-01-05 09:00 +0000"
    since, _ = schedule.off_window(at(tz, 2027, 1, 4, 12))
    assert local(since, tz) == "Thu 2026-12-31 17:30 +0000"
    # England has no 2 January holiday: back on Monday 4 January.
    england = Schedule(tz, WEEKDAYS, holidays="GB-ENG")
    assert local(england.next_start(at(tz, 2026, 12, 31, 18)), tz) == "Mon 2027-01-04 09:00 +0000"


def test_in_ka_republic_day_and_gandhi_jayanti():
    tz = "Asia/Kolkata"
    schedule = Schedule(tz, WEEKDAYS, holidays="IN-KA")
    assert local(schedule.next_start(at(tz, 2027, 1, 25, 18)), tz) == "Wed 2027-01-27 09:00 +0530"
    assert local(schedule.next_start(at(tz, 2026, 10, 1, 18)), tz) == "Mon 2026-10-05 09:00 +0530"


def test_us_ca_has_state_holidays_beyond_the_federal_ones():
    tz = "America/Los_Angeles"
    federal, california = calendar("US"), calendar("US-CA")
    first, last = date(2026, 1, 1), date(2026, 12, 31)
    federal_days = {d for d, _ in federal.between(first, last)}
    california_days = {d for d, _ in california.between(first, last)}
    assert date(2026, 11, 27) in california_days - federal_days  # the day after Thanksgiving
    assert date(2026, 3, 31) in california_days - federal_days  # César Chávez Day
    schedule = Schedule(tz, WEEKDAYS, holidays="US-CA")
    assert local(schedule.next_start(at(tz, 2026, 11, 25, 18)), tz) == "Mon 2026-11-30 09:00 -0800"  # Thanksgiving


def test_reply_by_counts_working_time_around_holidays():
    tz = "Europe/London"
    schedule = Schedule(tz, WEEKDAYS, holidays="GB-SCT")
    reply_by = schedule.add_working_time(at(tz, 2026, 12, 24, 16, 30), timedelta(hours=2))
    assert local(reply_by, tz) == "Tue 2026-12-29 10:00 +0000"


def test_holidays_join_the_persons_own_days_off():
    tz = "Europe/London"
    schedule = Schedule(tz, WEEKDAYS, (parse_days_off("2026-12-29..2026-12-31"),), holidays="GB-SCT")
    assert local(schedule.next_start(at(tz, 2026, 12, 24, 18)), tz) == "Tue 2027-01-05 09:00 +0000"


def test_an_overnight_shift_starting_the_evening_before_a_holiday_still_runs_into_it():
    tz = "America/New_York"
    nights = Schedule(tz, parse_hours("mon-fri 22-06"), holidays="US")
    assert nights.is_working(at(tz, 2026, 7, 3, 2))  # Thursday's night shift, into the observed holiday
    assert not nights.is_working(at(tz, 2026, 7, 3, 23))  # the holiday's own shift is off
    assert local(nights.next_start(at(tz, 2026, 7, 3, 12)), tz) == "Mon 2026-07-06 22:00 -0400"


def test_the_next_three_holidays_cross_into_the_next_year():
    schedule = Schedule("Europe/London", WEEKDAYS, holidays="GB-SCT")
    upcoming = schedule.upcoming_holidays(at("Europe/London", 2026, 12, 30, 12))
    assert [d for d, _ in upcoming] == [date(2027, 1, 1), date(2027, 1, 2), date(2027, 1, 4)]
    assert "observed" in upcoming[2][1]
    assert Schedule("Europe/London", WEEKDAYS).upcoming_holidays(at("Europe/London", 2026, 12, 30, 12)) == []


def test_the_local_date_decides_which_holiday_is_next():
    # 1 January 01:00 in Tokyo is still 31 December in UTC: the holiday of the day is the schedule zone's.
    schedule = Schedule("Asia/Tokyo", WEEKDAYS, holidays="JP")
    assert schedule.upcoming_holidays(datetime(2026, 12, 31, 16, tzinfo=UTC))[0][0] == date(2027, 1, 1)


def test_a_calendar_loads_each_year_once_and_far_years_on_their_own():
    cal = calendar("IT")
    assert cal.is_holiday(date(2026, 12, 25).toordinal())
    assert not cal.is_holiday(date(2026, 12, 23).toordinal())
    assert cal.is_holiday(date(2027, 1, 6).toordinal())  # Epiphany: the next year is added
    assert cal._loaded is not None and (cal._loaded.first_year, cal._loaded.last_year) == (2026, 2027)
    assert cal.is_holiday(date(2040, 12, 25).toordinal())  # far away: loaded alone, not every year between
    assert (cal._loaded.first_year, cal._loaded.last_year) == (2040, 2040)
    assert cal.is_holiday(date(2026, 8, 15).toordinal())


# --- codes --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "code"),
    [("us", "US"), ("US-CA", "US-CA"), (" de-by ", "DE-BY"), ("gb_sct", "GB-SCT"), ("IN-KA", "IN-KA"), ("USA", "US"),
     ("it", "IT")],
)  # fmt: skip
def test_codes_are_forgiving_about_case_separators_and_three_letter_codes(typed, code):
    assert resolve_holidays(typed) == code
    assert Schedule("UTC", WEEKDAYS, holidays=typed).holidays == code


@pytest.mark.parametrize(
    ("typed", "suggestion"),
    [("germany", "DE"), ("United Kingdom", "GB"), ("Frnace", "FR"), ("US-XX", "US-TX"), ("DE-Bayern", "DE-BY")],
)
def test_an_unknown_code_is_refused_with_a_suggestion_and_an_example(typed, suggestion):
    with pytest.raises(HoursError) as raised:
        resolve_holidays(typed)
    assert f"did you mean {suggestion}?" in str(raised.value)
    assert "e.g. US, US-CA, DE-BY" in str(raised.value)


@pytest.mark.parametrize("typed", ["", "XX", "zz-top", "12"])
def test_nonsense_is_refused_with_an_example(typed):
    with pytest.raises(HoursError, match=r"e\.g\. US, US-CA, DE-BY"):
        Schedule("UTC", WEEKDAYS, holidays=typed or " ")


# --- preferences --------------------------------------------------------------------------------------


class Defaults:
    timezone = None
    fallback_timezone = "Europe/London"
    weekly = WEEKDAYS
    message = "off"
    reply_within = timedelta(hours=4)

    def __init__(self, holidays: str | None) -> None:
        self.holidays = holidays


@pytest.mark.parametrize(
    ("stored", "default", "applies", "custom"),
    [(None, "GB-SCT", "GB-SCT", False), ("US", "GB-SCT", "US", True), ("", "GB-SCT", None, True),
     (None, None, None, False)],
)  # fmt: skip
def test_a_persons_choice_wins_over_the_default_and_empty_means_none(stored, default, applies, custom):
    row = PersonRow(team_id="T1", user_id="U1", holidays=stored)
    prefs = preferences(row, Defaults(default), team_id="T1", user_id="U1")
    assert (prefs.holidays, prefs.custom_holidays) == (applies, custom)
    assert prefs.schedule.holidays == applies
