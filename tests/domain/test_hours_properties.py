"""Hypothesis properties of the hours engine: queries agree with each other, text round-trips, parsing is safe."""

from __future__ import annotations

import contextlib
from datetime import UTC, date, datetime, timedelta

import pytz
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bot.domain.autoreply import off_window_key
from bot.domain.hours import (
    DayOff,
    HoursError,
    Interval,
    Schedule,
    WeeklyHours,
    format_local,
    parse_days_off,
    parse_duration,
    parse_hours,
    render_days_off,
    render_duration,
    render_hours,
)
from bot.domain.hours.model import covers_whole_week

ZONES = [
    "America/New_York",
    "Europe/Rome",
    "Europe/London",
    "Australia/Sydney",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "America/Santiago",
    "Asia/Tokyo",
    "UTC",
]
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def weeklies(draw: st.DrawFn) -> WeeklyHours:
    # Mostly quarter hours (so DST gaps and folds are hit often), sometimes any minute.
    step = draw(st.sampled_from([15, 15, 1]))
    slots = 1440 // step
    spans = st.tuples(st.integers(0, slots - 1), st.integers(1, slots - 1))  # (start, length) in steps
    days = draw(st.lists(st.lists(spans, max_size=3), min_size=7, max_size=7))
    try:
        weekly = WeeklyHours(
            tuple(tuple(Interval(s * step, ((s + n) * step) % 1440 or 1440) for s, n in day) for day in days)
        )
    except HoursError:  # merged into 24 hours or more: refused by design
        assume(False)
    assume(not weekly.is_empty and not covers_whole_week(weekly))
    return weekly


instants = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC))
# Instants near transitions are where the bugs live: pick 2026's transition mornings often.
near_transitions = st.sampled_from(
    [
        datetime(2026, 3, 8, 6, tzinfo=UTC),
        datetime(2026, 3, 29, 0, tzinfo=UTC),
        datetime(2026, 4, 4, 12, tzinfo=UTC),
        datetime(2026, 9, 5, 22, tzinfo=UTC),
        datetime(2026, 9, 26, 12, tzinfo=UTC),
        datetime(2026, 10, 3, 12, tzinfo=UTC),
        datetime(2026, 10, 25, 0, tzinfo=UTC),
        datetime(2026, 11, 1, 4, tzinfo=UTC),
    ]
).flatmap(lambda base: st.integers(-36 * 3600, 36 * 3600).map(lambda s: base + timedelta(seconds=s)))
moments = st.one_of(instants, near_transitions)


@st.composite
def schedules(draw: st.DrawFn, *, near: datetime | None = None, max_off_days: int = 30) -> Schedule:
    weekly = draw(weeklies())
    days_off = []
    for _ in range(draw(st.integers(0, 2))):
        start = (near or datetime(2026, 6, 1, tzinfo=UTC)).date() + timedelta(days=draw(st.integers(-10, 20)))
        days_off.append(DayOff(start, start + timedelta(days=draw(st.integers(0, max_off_days)))))
    return Schedule(draw(st.sampled_from(ZONES)), weekly, tuple(days_off))


@st.composite
def cases(draw: st.DrawFn, *, max_off_days: int = 30) -> tuple[Schedule, datetime]:
    now = draw(moments)
    return draw(schedules(near=now, max_off_days=max_off_days)), now


@FAST
@given(cases())
def test_next_start_is_after_now_and_working(case: tuple[Schedule, datetime]) -> None:
    schedule, now = case
    start = schedule.next_start(now)
    assert start > now
    assert schedule.is_working(start)
    # The offset is the zone's real one at that instant (never a stale or LMT offset).
    assert start.utcoffset() == start.astimezone(pytz.timezone(schedule.tz)).utcoffset()


@FAST
@given(cases(), st.lists(st.floats(0, 1, exclude_max=True), min_size=8, max_size=8))
def test_nothing_works_while_off(case: tuple[Schedule, datetime], fractions: list[float]) -> None:
    schedule, now = case
    window = schedule.off_window(now)
    if window is None:
        assert schedule.is_working(now)
        assert schedule.next_end(now) > now
        return
    since, back = window
    assert not schedule.is_working(now)
    assert back == schedule.next_start(now)
    assert schedule.is_working(back)
    gap = back - now
    for fraction in [*fractions, 0.0]:
        assert not schedule.is_working(min(now + gap * fraction, back - timedelta(microseconds=1)))
    assert not schedule.is_working(back - timedelta(microseconds=1))
    if since is not None:
        assert since <= now
        assert not schedule.is_working(since)
        assert schedule.is_working(since - timedelta(seconds=1))
        for fraction in fractions:
            assert not schedule.is_working(since + (now - since) * fraction)


@FAST
@given(cases())
def test_next_end_closes_the_stretch(case: tuple[Schedule, datetime]) -> None:
    schedule, now = case
    end = schedule.next_end(now)
    start = now if schedule.is_working(now) else schedule.next_start(now)
    assert end > start
    assert not schedule.is_working(end)
    assert schedule.is_working(end - timedelta(seconds=1))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases(max_off_days=4), st.integers(0, 36 * 60), st.integers(0, 59))
def test_add_working_time_uses_up_exactly_the_duration(
    case: tuple[Schedule, datetime], minutes: int, second: int
) -> None:
    schedule, now = case
    # Whole-minute starts (plus a second offset) make minute stepping exact: every boundary is on a minute.
    start = now.replace(second=second, microsecond=0)
    duration = timedelta(minutes=minutes)
    result = schedule.add_working_time(start, duration)
    assert result >= start
    if duration == timedelta(0):
        assert schedule.is_working(result)
        assert result == start or not schedule.is_working(start)
        return
    # Step through [start, result) a minute at a time, counting working minutes.
    worked, t, step = timedelta(0), start, timedelta(minutes=1)
    first = min(step, (start.replace(second=0) + step) - start)
    if schedule.is_working(t):
        worked += first
    t += first
    while t < result:
        if schedule.is_working(t):
            worked += min(step, result - t)
        t += step
    assert worked == duration


@FAST
@given(weeklies())
def test_render_then_parse_round_trips(weekly: WeeklyHours) -> None:
    assert parse_hours(render_hours(weekly)) == weekly


@FAST
@given(st.text(max_size=120))
def test_parse_hours_only_raises_hours_error(text: str) -> None:
    with contextlib.suppress(HoursError):
        parse_hours(text)


@FAST
@given(st.text(alphabet="montuewdhfrisa-–,;: 0123456789apm.·\n", max_size=60))
def test_parse_hours_only_raises_hours_error_on_near_misses(text: str) -> None:
    try:
        weekly = parse_hours(text)
    except HoursError:
        return
    assert parse_hours(render_hours(weekly)) == weekly


@FAST
@given(st.text(max_size=60))
def test_days_off_and_durations_only_raise_hours_error(text: str) -> None:
    for parse in (parse_days_off, parse_duration):
        with contextlib.suppress(HoursError):
            parse(text)


@FAST
@given(st.dates(min_value=date(1900, 1, 1), max_value=date(9000, 1, 1)), st.integers(0, 365))
def test_days_off_round_trip(start: date, length: int) -> None:
    day_off = DayOff(start, start + timedelta(days=length))
    assert parse_days_off(render_days_off(day_off)) == day_off


@FAST
@given(st.integers(1, 14 * 24 * 60))
def test_durations_round_trip(minutes: int) -> None:
    duration = timedelta(minutes=minutes)
    assert parse_duration(render_duration(duration)) == duration


def _strftime_local(instant: datetime, tz: str, now: datetime | None) -> str:
    """format_local as strftime wrote it (C locale), the reference the table-driven version must match."""
    local = instant.astimezone(pytz.timezone(tz))
    text = local.strftime("%a %H:%M")
    if now is None or abs(instant - now) > timedelta(days=6):
        text = local.strftime("%a ") + str(local.day) + local.strftime(" %b")
        if now is not None and now.astimezone(local.tzinfo).year != local.year:
            text += f" {local.year}"
        text += local.strftime(" %H:%M")
    return text


INSTANTS = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))


@FAST
@given(instant=INSTANTS, tz=st.sampled_from(ZONES), now=st.none() | INSTANTS, near=st.booleans())
def test_format_local_writes_what_strftime_wrote(instant: datetime, tz: str, now: datetime | None, near: bool) -> None:
    if near and now is not None:  # half the time within a few days of now, where the short form applies
        now = instant + (now - datetime(2050, 1, 1, tzinfo=UTC)) / 2000
    assert format_local(instant, tz, now=now) == _strftime_local(instant, tz, now)


@FAST
@given(back=INSTANTS, tz=st.sampled_from(ZONES))
def test_window_keys_are_what_strftime_wrote(back: datetime, tz: str) -> None:
    # Stored keys (the once-per-window rule) must not change with how they are written.
    key = off_window_key((None, back.astimezone(pytz.timezone(tz))), at=back, tz=tz, once_per="off_window")
    assert key == "back:" + back.strftime("%Y-%m-%dT%H:%MZ")
