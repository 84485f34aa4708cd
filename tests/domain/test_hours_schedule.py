"""Schedule queries at fixed instants, across zones and their transition days; offsets are checked exactly."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from bot.domain.hours import (
    DayOff,
    HoursError,
    Interval,
    Schedule,
    WeeklyHours,
    format_local,
    parse_days_off,
    parse_hours,
)


def schedule(tz: str, spec: str, *days_off: str) -> Schedule:
    return Schedule(tz, parse_hours(spec), tuple(parse_days_off(d) for d in days_off))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


NEXT_START = [
    # (zone, spec, now, expected next_start) — the expected string fixes the UTC offset too.
    # New York: spring forward Sun 2026-03-08 02:00 EST -> 03:00 EDT; fall back Sun 2026-11-01 02:00 -> 01:00.
    ("America/New_York", "mon-fri 9-17", "2026-03-06T18:00:00-05:00", "2026-03-09T09:00:00-04:00"),
    ("America/New_York", "sun 2:30-4", "2026-03-08T01:00:00-05:00", "2026-03-08T03:00:00-04:00"),
    ("America/New_York", "sun 1:30-3", "2026-11-01T00:00:00-04:00", "2026-11-01T01:30:00-04:00"),
    ("America/New_York", "mon-fri 9-17", "2026-10-30T18:00:00-04:00", "2026-11-02T09:00:00-05:00"),
    # Rome: 2026-03-29 02:00 CET -> 03:00 CEST; 2026-10-25 03:00 CEST -> 02:00 CET.
    ("Europe/Rome", "mon-fri 9-17:30", "2026-03-28T20:00:00+00:00", "2026-03-30T09:00:00+02:00"),
    ("Europe/Rome", "sun 2:30-3:30", "2026-03-29T00:00:00+01:00", "2026-03-29T03:00:00+02:00"),
    ("Europe/Rome", "sun 2:30-3:30", "2026-10-25T00:00:00+02:00", "2026-10-25T02:30:00+02:00"),
    ("Europe/Rome", "daily 9-17", "2026-10-25T08:00:00+00:00", "2026-10-26T09:00:00+01:00"),
    # London: 2026-03-29 01:00 GMT -> 02:00 BST; 2026-10-25 02:00 BST -> 01:00 GMT.
    ("Europe/London", "sun 1:15-3", "2026-03-28T23:00:00+00:00", "2026-03-29T02:00:00+01:00"),
    ("Europe/London", "sun 1:30-2", "2026-10-24T23:00:00+00:00", "2026-10-25T01:30:00+01:00"),
    # Sydney (southern DST): ends 2026-04-05 03:00 AEDT -> 02:00 AEST; starts 2026-10-04 02:00 -> 03:00.
    ("Australia/Sydney", "mon-fri 9-17", "2026-04-03T07:00:00+00:00", "2026-04-06T09:00:00+10:00"),
    ("Australia/Sydney", "mon-fri 9-17", "2026-10-02T08:00:00+00:00", "2026-10-05T09:00:00+11:00"),
    ("Australia/Sydney", "sun 2:30-4", "2026-10-04T01:00:00+10:00", "2026-10-04T03:00:00+11:00"),
    ("Australia/Sydney", "sun 2:30-4", "2026-04-05T00:00:00+11:00", "2026-04-05T02:30:00+11:00"),
    # Kolkata: +05:30 all year.
    ("Asia/Kolkata", "mon-fri 9:30-18", "2026-03-09T03:00:00+00:00", "2026-03-09T09:30:00+05:30"),
    ("Asia/Kolkata", "mon-fri 9:30-18", "2026-03-09T04:00:00+00:00", "2026-03-10T09:30:00+05:30"),
    # Lord Howe (30-minute DST): 2026-04-05 02:00 (+11) -> 01:30 (+10:30); 2026-10-04 02:00 (+10:30) -> 02:30 (+11).
    ("Australia/Lord_Howe", "sun 1:45-2:15", "2026-04-04T14:00:00+00:00", "2026-04-05T01:45:00+11:00"),
    ("Australia/Lord_Howe", "sun 2:10-3", "2026-10-03T14:00:00+00:00", "2026-10-04T02:30:00+11:00"),
    ("Australia/Lord_Howe", "mon-fri 9-17", "2026-04-03T12:00:00+00:00", "2026-04-06T09:00:00+10:30"),
    # Chatham (+12:45 / +13:45): ends 2026-04-05 03:45 -> 02:45; starts 2026-09-27 02:45 -> 03:45.
    ("Pacific/Chatham", "mon-fri 9-17", "2026-04-03T12:00:00+00:00", "2026-04-06T09:00:00+12:45"),
    ("Pacific/Chatham", "sun 3-4", "2026-09-26T12:00:00+00:00", "2026-09-27T03:45:00+13:45"),
    # Santiago: transitions at midnight — 2026-04-05 00:00 (-03) -> 04-04 23:00 (-04); 2026-09-06 00:00 -> 01:00.
    ("America/Santiago", "sun 0-6", "2026-09-05T23:00:00-04:00", "2026-09-06T01:00:00-03:00"),
    ("America/Santiago", "sat 23-24", "2026-04-04T22:00:00-03:00", "2026-04-04T23:00:00-03:00"),
    ("America/Santiago", "mon-fri 9-18", "2026-04-03T22:00:00+00:00", "2026-04-06T09:00:00-04:00"),
    # Tokyo: no DST.
    ("Asia/Tokyo", "mon-fri 9-18", "2026-03-13T10:00:00+00:00", "2026-03-16T09:00:00+09:00"),
    # Exactly at a start: strictly after, so the next one.
    ("Asia/Tokyo", "mon-fri 9-18", "2026-03-16T09:00:00+09:00", "2026-03-17T09:00:00+09:00"),
]


@pytest.mark.parametrize(("tz", "spec", "now", "expected"), NEXT_START)
def test_next_start(tz: str, spec: str, now: str, expected: str) -> None:
    result = schedule(tz, spec).next_start(at(now))
    assert result.isoformat() == expected
    assert str(result.tzinfo.zone) == tz  # type: ignore[union-attr]


IS_WORKING = [
    ("America/New_York", "sun 2:30-4", "2026-03-08T03:30:00-04:00", True),
    ("America/New_York", "sun 2:30-4", "2026-03-08T01:59:00-05:00", False),
    # Fall back: 01:30-03:00 starts at the first 01:30 (EDT) and ends at 03:00 EST.
    ("America/New_York", "sun 1:30-3", "2026-11-01T01:15:00-05:00", True),
    ("America/New_York", "sun 1:30-3", "2026-11-01T01:15:00-04:00", False),
    # 01:00-01:30 is the first occurrence only; at the second 01:15 (EST) it is over.
    ("America/New_York", "sun 1-1:30", "2026-11-01T01:15:00-04:00", True),
    ("America/New_York", "sun 1-1:30", "2026-11-01T01:15:00-05:00", False),
    # 02:00-02:30 lies in the spring-forward gap: empty that night.
    ("America/New_York", "sun 2-2:30", "2026-03-08T03:00:00-04:00", False),
    ("Europe/Rome", "mon-fri 9-17:30", "2026-03-30T07:00:00+00:00", True),
    ("Europe/Rome", "mon-fri 9-17:30", "2026-03-30T06:59:59+00:00", False),
    ("Europe/Rome", "mon-fri 9-17:30", "2026-03-30T15:30:00+00:00", False),  # 17:30 end is exclusive
    ("Europe/London", "sun 1:30-2", "2026-10-25T01:45:00+00:00", True),  # second 01:45, before 02:00 GMT
    ("Australia/Sydney", "mon-fri 9-17", "2026-10-05T22:30:00+00:00", True),
    ("Asia/Kolkata", "mon-fri 9:30-18", "2026-03-09T04:00:00+00:00", True),
    ("Asia/Kolkata", "mon-fri 9:30-18", "2026-03-09T03:59:00+00:00", False),
    ("Australia/Lord_Howe", "sun 1:45-2:15", "2026-04-05T01:50:00+10:30", True),
    ("Pacific/Chatham", "mon-fri 9-17", "2026-04-06T04:15:00+00:00", False),  # 17:00 +12:45 is 04:15Z, exclusive
    ("Pacific/Chatham", "mon-fri 9-17", "2026-04-06T04:14:59+00:00", True),
    ("Pacific/Chatham", "mon-fri 9-17", "2026-04-05T20:15:00+00:00", True),  # 09:00 +12:45
    ("America/Santiago", "sat 23-24", "2026-04-04T23:30:00-04:00", True),  # the repeated hour counts
    ("Asia/Tokyo", "sun 22-6", "2026-03-16T05:59:00+09:00", True),  # Sunday's overnight runs into Monday
    ("Asia/Tokyo", "sun 22-6", "2026-03-16T06:00:00+09:00", False),
]


@pytest.mark.parametrize(("tz", "spec", "now", "expected"), IS_WORKING)
def test_is_working(tz: str, spec: str, now: str, expected: bool) -> None:
    assert schedule(tz, spec).is_working(at(now)) is expected


NEXT_END = [
    ("Europe/Rome", "mon-fri 9-17:30", "2026-03-28T20:00:00+00:00", "2026-03-30T17:30:00+02:00"),
    ("Europe/Rome", "mon-fri 9-12, 13-17:30", "2026-03-30T10:00:00+02:00", "2026-03-30T12:00:00+02:00"),
    ("Europe/Rome", "mon-fri 9-12, 13-17:30", "2026-03-30T12:30:00+02:00", "2026-03-30T17:30:00+02:00"),
    ("America/New_York", "sun 2:30-4", "2026-03-08T01:00:00-05:00", "2026-03-08T04:00:00-04:00"),
    ("America/New_York", "sun 1:30-3", "2026-11-01T01:40:00-04:00", "2026-11-01T03:00:00-05:00"),
    ("Europe/London", "sun 1:30-2", "2026-10-25T00:40:00+00:00", "2026-10-25T02:00:00+00:00"),
    ("Australia/Lord_Howe", "sun 1:45-2:15", "2026-04-04T14:00:00+00:00", "2026-04-05T02:15:00+10:30"),
    ("Pacific/Chatham", "sun 3-4", "2026-09-26T12:00:00+00:00", "2026-09-27T04:00:00+13:45"),
    # An end at 24:00 in Santiago's midnight gap moves to 01:00 -03.
    ("America/Santiago", "sat 22-24", "2026-09-05T22:30:00-04:00", "2026-09-06T01:00:00-03:00"),
    # Touching intervals across midnight (and across the gap) form one stretch.
    ("America/Santiago", "sat 22-24; sun 0-6", "2026-09-05T23:00:00-04:00", "2026-09-06T06:00:00-03:00"),
    ("Asia/Tokyo", "mon 22-24; tue 0-6", "2026-03-16T23:00:00+09:00", "2026-03-17T06:00:00+09:00"),
    ("Asia/Tokyo", "mon 22-6; tue 5-9", "2026-03-16T23:00:00+09:00", "2026-03-17T09:00:00+09:00"),
    ("Asia/Kolkata", "daily 22-6", "2026-03-09T12:00:00+05:30", "2026-03-10T06:00:00+05:30"),
]


@pytest.mark.parametrize(("tz", "spec", "now", "expected"), NEXT_END)
def test_next_end(tz: str, spec: str, now: str, expected: str) -> None:
    assert schedule(tz, spec).next_end(at(now)).isoformat() == expected


def test_off_window_over_a_weekend_with_the_new_offset() -> None:
    since, back = schedule("Europe/Rome", "mon-fri 9-17:30").off_window(at("2026-03-28T20:00:00+00:00"))
    assert (since.isoformat(), back.isoformat()) == ("2026-03-27T17:30:00+01:00", "2026-03-30T09:00:00+02:00")


def test_off_window_is_none_when_working() -> None:
    assert schedule("Europe/Rome", "mon-fri 9-17:30").off_window(at("2026-03-30T10:00:00+02:00")) is None


def test_off_window_between_split_shifts() -> None:
    since, back = schedule("Asia/Tokyo", "mon-fri 9-12, 13-18").off_window(at("2026-03-16T12:30:00+09:00"))
    assert (since.isoformat(), back.isoformat()) == ("2026-03-16T12:00:00+09:00", "2026-03-16T13:00:00+09:00")


def test_off_window_after_an_overnight_interval_from_yesterday() -> None:
    since, back = schedule("Asia/Tokyo", "mon 22-6; tue 1-2").off_window(at("2026-03-17T07:00:00+09:00"))
    assert (since.isoformat(), back.isoformat()) == ("2026-03-17T06:00:00+09:00", "2026-03-23T22:00:00+09:00")


def test_vacation_over_a_weekend_ends_at_the_first_interval_after_it() -> None:
    s = schedule("Asia/Tokyo", "mon-fri 9-18", "2026-12-28..2027-01-04")
    since, back = s.off_window(at("2026-12-25T20:00:00+09:00"))
    assert (since.isoformat(), back.isoformat()) == ("2026-12-25T18:00:00+09:00", "2027-01-05T09:00:00+09:00")
    assert s.next_end(at("2026-12-25T20:00:00+09:00")).isoformat() == "2027-01-05T18:00:00+09:00"
    since, _ = s.off_window(at("2027-01-05T07:00:00+09:00"))
    assert since.isoformat() == "2026-12-25T18:00:00+09:00"  # looks back over the vacation


def test_days_off_remove_intervals_that_start_on_them() -> None:
    s = schedule("Asia/Tokyo", "mon-fri 22-6", "2026-03-10")  # Tuesday off
    assert s.is_working(at("2026-03-10T03:00:00+09:00"))  # Monday's night shift runs into Tuesday
    assert not s.is_working(at("2026-03-10T23:00:00+09:00"))  # Tuesday's own shift is gone
    assert not s.is_working(at("2026-03-11T03:00:00+09:00"))
    assert s.next_start(at("2026-03-10T12:00:00+09:00")).isoformat() == "2026-03-11T22:00:00+09:00"


def test_days_off_are_in_the_local_calendar() -> None:
    s = schedule("Pacific/Chatham", "mon-fri 9-17", "2026-03-09")
    # Monday 2026-03-09 09:00 in Chatham (+13:45) is still Sunday in UTC.
    assert s.next_start(at("2026-03-08T12:00:00+00:00")).isoformat() == "2026-03-10T09:00:00+13:45"


def test_several_days_off_ranges_touching_each_other() -> None:
    s = schedule("Europe/Rome", "mon-fri 9-17", "2026-08-03..2026-08-09", "2026-08-10..2026-08-14", "2026-08-12")
    assert s.next_start(at("2026-07-31T18:00:00+02:00")).isoformat() == "2026-08-17T09:00:00+02:00"


ADD_WORKING_TIME = [
    ("Europe/Rome", "mon-fri 9-17:30", "2026-03-27T16:30:00+01:00", timedelta(hours=2), "2026-03-30T10:00:00+02:00"),
    ("Europe/Rome", "mon-fri 9-17:30", "2026-03-28T12:00:00+01:00", timedelta(0), "2026-03-30T09:00:00+02:00"),
    ("Europe/Rome", "mon-fri 9-17:30", "2026-03-30T10:15:00+02:00", timedelta(0), "2026-03-30T10:15:00+02:00"),
    (
        "Europe/Rome",
        "mon-fri 9-17:30",
        "2026-03-30T10:00:00+02:00",
        timedelta(hours=7, minutes=30),
        "2026-03-30T17:30:00+02:00",
    ),
    ("Europe/Rome", "mon-fri 9-17:30", "2026-03-30T10:00:00+02:00", timedelta(hours=8), "2026-03-31T09:30:00+02:00"),
    (
        "Europe/Rome",
        "mon-fri 9-12, 13-17",
        "2026-03-30T11:00:00+02:00",
        timedelta(hours=2),
        "2026-03-30T14:00:00+02:00",
    ),
    # The spring-forward night has one hour less of a 01:00-05:00 shift.
    ("America/New_York", "sun 1-5", "2026-03-08T00:00:00-05:00", timedelta(hours=3), "2026-03-08T05:00:00-04:00"),
    ("America/New_York", "sun 1-5", "2026-11-01T00:00:00-04:00", timedelta(hours=4), "2026-11-01T04:00:00-05:00"),
    (
        "Asia/Kolkata",
        "mon-fri 9:30-18",
        "2026-03-13T17:00:00+05:30",
        timedelta(hours=1, minutes=30),
        "2026-03-16T10:00:00+05:30",
    ),
]


@pytest.mark.parametrize(("tz", "spec", "start", "duration", "expected"), ADD_WORKING_TIME)
def test_add_working_time(tz: str, spec: str, start: str, duration: timedelta, expected: str) -> None:
    assert schedule(tz, spec).add_working_time(at(start), duration).isoformat() == expected


def test_add_working_time_skips_days_off() -> None:
    s = schedule("Europe/Rome", "mon-fri 9-17", "2026-12-24..2027-01-06")
    result = s.add_working_time(at("2026-12-23T16:00:00+01:00"), timedelta(hours=2))
    assert result.isoformat() == "2027-01-07T10:00:00+01:00"


def test_add_working_time_refuses_negative_durations() -> None:
    with pytest.raises(HoursError, match="negative"):
        schedule("Europe/Rome", "mon-fri 9-17").add_working_time(at("2026-03-30T10:00:00+02:00"), timedelta(-1))


def test_naive_instants_are_refused() -> None:
    with pytest.raises(HoursError, match="aware"):
        schedule("Europe/Rome", "mon-fri 9-17").is_working(datetime(2026, 3, 30, 10))


def test_searches_are_bounded() -> None:
    empty = Schedule("Europe/Rome", WeeklyHours(((),) * 7))
    with pytest.raises(HoursError, match="No working hours"):
        empty.next_start(at("2026-03-30T10:00:00+02:00"))
    years_off = schedule("Europe/Rome", "mon-fri 9-17", "2026-01-01..2026-12-31", "2027-01-01..2027-12-31",
                         "2028-01-01..2028-12-31")  # fmt: skip
    with pytest.raises(HoursError, match="No working hours"):
        years_off.next_start(at("2026-01-01T10:00:00+01:00"))
    since, back = years_off.off_window(at("2028-12-31T12:00:00+01:00"))
    assert since is None  # nothing in the 800 days looked back
    assert back.isoformat() == "2029-01-01T09:00:00+01:00"


def test_hours_with_no_time_off_never_end() -> None:
    always = Schedule("Asia/Tokyo", WeeklyHours(((Interval(0, 1440),),) * 7))
    assert always.is_working(at("2026-03-16T12:00:00+09:00"))
    with pytest.raises(HoursError, match="never stop"):
        always.next_end(at("2026-03-16T12:00:00+09:00"))
    # ... unless days off interrupt them.
    assert (
        always.with_days_off([parse_days_off("2026-03-20")]).next_end(at("2026-03-16T12:00:00+09:00")).isoformat()
        == "2026-03-20T00:00:00+09:00"
    )


def test_schedule_is_immutable_hashable_and_canonical() -> None:
    a = schedule("europe/rome", "mon-fri 9-17", "2026-12-24", "2026-08-10..2026-08-14")
    days_off = (DayOff(date(2026, 8, 10), date(2026, 8, 14)), DayOff(date(2026, 12, 24), date(2026, 12, 24)))
    b = Schedule("Europe/Rome", parse_hours("weekdays 9:00-17:00"), days_off)
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a.tz == "Europe/Rome"
    with pytest.raises(AttributeError):
        a.tz = "Asia/Tokyo"  # type: ignore[misc]
    assert a.with_days_off([]).days_off == ()


def test_schedule_refuses_an_unknown_zone() -> None:
    with pytest.raises(HoursError, match="did you mean Europe/Rome"):
        Schedule("Europe/Romee", parse_hours("mon-fri 9-17"))


def test_results_never_carry_lmt_offsets() -> None:
    result = schedule("Europe/Amsterdam", "mon-fri 9-17").next_start(datetime(2026, 3, 30, tzinfo=UTC))
    assert result.isoformat() == "2026-03-30T09:00:00+02:00"


FORMAT_LOCAL = [
    ("2026-03-30T07:00:00+00:00", "Europe/Rome", "2026-03-28T20:00:00+00:00", "Mon 09:00"),
    ("2026-04-06T07:00:00+00:00", "Europe/Rome", "2026-03-28T20:00:00+00:00", "Mon 6 Apr 09:00"),
    ("2026-03-27T16:30:00+00:00", "Europe/Rome", "2026-03-28T20:00:00+00:00", "Fri 17:30"),
    ("2027-01-04T08:00:00+00:00", "Europe/Rome", "2026-12-20T08:00:00+00:00", "Mon 4 Jan 2027 09:00"),
    ("2026-03-09T03:00:00+00:00", "Asia/Kolkata", None, "Mon 9 Mar 08:30"),
    # Exactly six days either side is near; a microsecond more is not.
    ("2026-03-10T09:00:00+00:00", "UTC", "2026-03-04T09:00:00+00:00", "Tue 09:00"),
    ("2026-02-26T09:00:00+00:00", "UTC", "2026-03-04T09:00:00+00:00", "Thu 09:00"),
    ("2026-03-10T09:00:00.000001+00:00", "UTC", "2026-03-04T09:00:00+00:00", "Tue 10 Mar 09:00"),
    # The year is compared in the person's zone: at noon UTC on 31 December it is already 2027 in Auckland.
    ("2027-02-15T00:00:00+00:00", "Pacific/Auckland", "2026-12-31T12:00:00+00:00", "Mon 15 Feb 13:00"),
]


@pytest.mark.parametrize(("instant", "tz", "now", "expected"), FORMAT_LOCAL)
def test_format_local(instant: str, tz: str, now: str | None, expected: str) -> None:
    assert format_local(at(instant), tz, now=None if now is None else at(now)) == expected
