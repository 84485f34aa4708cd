"""Pure working-hours engine: a user's schedule and the questions asked of it. No Slack, no clock reads.

Every query takes the instant it is about (`now`, an aware datetime) and answers with aware datetimes in the
schedule's own zone. The pieces live in small modules, all re-exported here:

- `bot.domain.hours.model`: Interval, WeeklyHours, DayOff (normalisation: overlapping intervals of one day merge).
- `bot.domain.hours.text`: the hours language, days off, durations (parse + canonical render).
- `bot.domain.hours.timezones`: zone names and the DST policy.
- `bot.domain.hours.holidays`: public holidays of a country or region (observed dates included) as days off.

Decisions:

- DST: intervals are wall-clock. A start or end inside a spring-forward gap moves to the first valid instant
  after the gap (02:30 on New York's spring-forward night -> 03:00 EDT); an ambiguous fall-back time means its
  first occurrence. An interval that collapses to nothing that way (02:00–02:30 on that night) does not happen.
- Overnight intervals (22:00–06:00) belong to the day they start. A day off removes the intervals that *start*
  on it: an overnight interval starting the evening before a day off still runs into the day off; one starting
  on the last day off is removed. A vacation over a weekend ends at the first interval after it.
- Public holidays (`Schedule.holidays`, a code like "DE-BY") are days off exactly like the person's own, on the
  schedule's local calendar, observed dates included.
- Working time is the union of all intervals. Intervals that touch or overlap (also across midnight, also at a
  DST gap) form one stretch: `next_end` and `off_window` talk about stretches, so "working until" is the instant
  `is_working` turns false.
- Every search is bounded (`HORIZON_DAYS`); a schedule with no reachable working time raises HoursError.
"""

from __future__ import annotations

import dataclasses
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo

from bot.domain.errors import HoursError
from bot.domain.hours.holidays import HolidayCalendar
from bot.domain.hours.holidays import calendar as holiday_calendar
from bot.domain.hours.holidays import resolve_code as resolve_holidays
from bot.domain.hours.model import DayOff, Interval, WeeklyHours
from bot.domain.hours.text import (
    parse_days_off,
    parse_duration,
    parse_hours,
    render_days_off,
    render_duration,
    render_hours,
)
from bot.domain.hours.timezones import format_local, resolve_timezone, wall_timestamp, zone

__all__ = [
    "HORIZON_DAYS",
    "MAX_DAYS_OFF_RUN",
    "SUPPORTED_YEARS",
    "DayOff",
    "HoursError",
    "Interval",
    "Schedule",
    "WeeklyHours",
    "days_off_runs",
    "format_local",
    "parse_days_off",
    "parse_duration",
    "parse_hours",
    "render_days_off",
    "render_duration",
    "render_hours",
    "resolve_holidays",
    "resolve_timezone",
    "within_horizon",
]

HORIZON_DAYS = 800  # how far (in local days) any search looks: more than two years of days off
# The longest run of consecutive days off a schedule may hold: with it, a search from anywhere in the run still
# finds the working day after it (a week of weekly hours and a few adjoining public holidays fit in what is left).
MAX_DAYS_OFF_RUN = 2 * 366
_MAX_STRETCHES = 100_000  # add_working_time: at most this many working stretches are walked
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FIRST_YEAR, _LAST_YEAR = 1900, 9000  # keeps every search (+- HORIZON_DAYS) inside datetime's range
SUPPORTED_YEARS = (_FIRST_YEAR, _LAST_YEAR)  # the years an instant asked about may fall in (inclusive)

_Span = tuple[int, int]  # (start minute, end minute after the start day's midnight, up to 2879)


def _timestamp(instant: datetime, what: str) -> float:
    if not isinstance(instant, datetime) or instant.utcoffset() is None:
        raise HoursError(f"{what} must be an aware datetime, e.g. datetime(2026, 3, 9, 9, 0, tzinfo=UTC)")
    if not _FIRST_YEAR <= instant.year <= _LAST_YEAR:
        raise HoursError(f"{what} must fall between the years {_FIRST_YEAR} and {_LAST_YEAR}, not {instant.year}")
    return instant.timestamp()


def days_off_runs(days_off: Iterable[DayOff], weekly: WeeklyHours | None = None) -> list[tuple[date, date]]:
    """The days off as runs of consecutive days (first, last): overlapping and touching ranges joined, in order.

    With `weekly`, runs separated only by days without working hours in it (a weekend, say) are joined too: what
    the engine's searches have to cross is the whole stretch without work.
    """
    firsts, lasts = _merge_days_off(days_off)
    runs = [(date.fromordinal(a), date.fromordinal(b)) for a, b in zip(firsts, lasts, strict=True)]
    if weekly is None:
        return runs
    joined: list[tuple[date, date]] = []
    for first, last in runs:
        if joined and _no_work_between(joined[-1][1], first, weekly):
            joined[-1] = (joined[-1][0], last)
        else:
            joined.append((first, last))
    return joined


def _no_work_between(last: date, first: date, weekly: WeeklyHours) -> bool:
    gap = (first - last).days - 1
    return gap < 7 and all(not weekly.days[(last + timedelta(days=i)).weekday()] for i in range(1, gap + 1))


def within_horizon(days_off: Iterable[DayOff], weekly: WeeklyHours | None = None) -> tuple[DayOff, ...]:
    """The days off without those in a run longer than MAX_DAYS_OFF_RUN: what a schedule can always answer with."""
    days_off = tuple(days_off)
    too_long = [(a, b) for a, b in days_off_runs(days_off, weekly) if (b - a).days + 1 > MAX_DAYS_OFF_RUN]
    return tuple(d for d in days_off if not any(a <= d.start <= b for a, b in too_long))


def _merge_days_off(days_off: Iterable[DayOff]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Sorted, merged (touching ranges joined) first and last ordinals of the days off."""
    merged: list[list[int]] = []
    for day_off in sorted(days_off, key=lambda d: d.start):
        first, last = day_off.start.toordinal(), day_off.end.toordinal()
        if merged and first <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], last)
        else:
            merged.append([first, last])
    return tuple(m[0] for m in merged), tuple(m[1] for m in merged)


@dataclass(frozen=True)
class Schedule:
    """A user's time zone, weekly hours, days off and public holidays; immutable, hashable and cheap to build."""

    tz: str
    weekly: WeeklyHours
    days_off: tuple[DayOff, ...] = ()
    holidays: str | None = None  # a country/region code ("US", "DE-BY"); None: no public holidays

    # Derived in __post_init__ from the fields above: not compared, hashed, shown or passed to replace().
    _zone: tzinfo = field(init=False, repr=False, compare=False)
    _table: tuple[tuple[tuple[int, int], ...], ...] = field(init=False, repr=False, compare=False)
    _off_firsts: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _off_lasts: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _holidays: HolidayCalendar | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.weekly, WeeklyHours):
            raise HoursError("Schedule.weekly must be WeeklyHours, e.g. parse_hours('mon-fri 9-17:30')")
        days_off = tuple(sorted(self.days_off, key=lambda d: (d.start, d.end)))
        if not all(isinstance(d, DayOff) for d in days_off):
            raise HoursError("Schedule.days_off holds DayOff values, e.g. parse_days_off('2026-12-24')")
        set_ = object.__setattr__  # frozen dataclass: derived data is attached once, here
        set_(self, "tz", resolve_timezone(self.tz))
        set_(self, "days_off", days_off)
        set_(self, "_zone", zone(self.tz))
        set_(self, "_table", tuple(tuple((i.start, i.linear_end) for i in day) for day in self.weekly.days))
        off_firsts, off_lasts = _merge_days_off(days_off)
        set_(self, "_off_firsts", off_firsts)
        set_(self, "_off_lasts", off_lasts)
        code = resolve_holidays(self.holidays) if self.holidays else None
        set_(self, "holidays", code)
        set_(self, "_holidays", holiday_calendar(code) if code else None)

    def with_days_off(self, days_off: Iterable[DayOff]) -> Schedule:
        """The same schedule with `days_off` instead of the current ones."""
        return dataclasses.replace(self, days_off=tuple(days_off))

    def upcoming_holidays(self, now: datetime, count: int = 3) -> list[tuple[date, str]]:
        """The next `count` public holidays (date, name) from the local date of `now` on; [] without holidays."""
        holidays = self._holidays
        if holidays is None:
            return []
        _timestamp(now, "now")
        return holidays.upcoming(now.astimezone(self._zone).date(), count)

    # --- queries -----------------------------------------------------------------------------------------

    def is_working(self, now: datetime) -> bool:
        """True when `now` lies inside a working interval."""
        t = _timestamp(now, "now")
        return self._containing_end(t, self._ordinal(now)) is not None

    def next_start(self, now: datetime) -> datetime:
        """The earliest interval start strictly after `now`, skipping days off."""
        t = _timestamp(now, "now")
        return self._local(self._first_after(t, self._ordinal(now))[0])

    def next_end(self, now: datetime) -> datetime:
        """When the current working stretch ends; if off, when the stretch starting at next_start ends."""
        t = _timestamp(now, "now")
        ordinal = self._ordinal(now)
        if self._containing_end(t, ordinal) is None:
            t = self._first_after(t, ordinal)[0]
        return self._local(self._stretch_end(t))

    def off_window(self, now: datetime) -> tuple[datetime | None, datetime] | None:
        """None when working; else (end of the last working stretch or None beyond the horizon, next_start)."""
        t = _timestamp(now, "now")
        ordinal = self._ordinal(now)
        if self._containing_end(t, ordinal) is not None:
            return None
        back_at = self._local(self._first_after(t, ordinal)[0])
        since = self._last_end_at_or_before(t, ordinal)
        return (None if since is None else self._local(since)), back_at

    def add_working_time(self, start: datetime, duration: timedelta) -> datetime:
        """The instant `duration` of working time after `start` is used up; 0 -> first working instant >= start."""
        _timestamp(start, "start")
        if duration < timedelta(0):
            raise HoursError(f"A duration can't be negative ({duration}) — e.g. timedelta(hours=2)")
        at, remaining = start.astimezone(UTC), duration
        for _ in range(_MAX_STRETCHES):
            t = at.timestamp()
            if self._containing_end(t, self._ordinal(at)) is None:
                first = self._first_after(t, self._ordinal(at))[0]
                at, t = _EPOCH + timedelta(seconds=first), first
            end = _EPOCH + timedelta(seconds=self._stretch_end(t))
            if remaining <= end - at:
                return (at + remaining).astimezone(self._zone)
            remaining -= end - at
            at = end
        raise HoursError(f"{render_duration(duration)} of working time is too far ahead to compute")

    # --- internals -----------------------------------------------------------------------------------------

    def _ordinal(self, instant: datetime) -> int:
        return instant.astimezone(self._zone).toordinal()

    def _local(self, timestamp: int) -> datetime:
        return datetime.fromtimestamp(timestamp, self._zone)

    def _off_range(self, ordinal: int) -> tuple[int, int] | None:
        """(first, last) ordinals of the days-off range containing `ordinal`, if any; a holiday is a range of one
        day (the searches step over it and look again, so a holiday next to days off joins them)."""
        firsts = self._off_firsts
        if firsts:
            index = bisect_right(firsts, ordinal) - 1
            if index >= 0 and ordinal <= self._off_lasts[index]:
                return firsts[index], self._off_lasts[index]
        holidays = self._holidays
        if holidays is not None and holidays.is_holiday(ordinal):
            return ordinal, ordinal
        return None

    def _spans(self, ordinal: int) -> tuple[_Span, ...]:
        return self._table[(ordinal - 1) % 7]  # ordinal 1 (0001-01-01) is a Monday

    def _containing_end(self, t: float, ordinal: int) -> int | None:
        """The latest end among intervals containing instant `t` (local day `ordinal`), or None when off."""
        best = None
        for day in (ordinal - 1, ordinal):  # an overnight interval from yesterday may still run
            if self._off_range(day) is not None:
                continue
            for start, end in self._spans(day):
                start_ts = wall_timestamp(self.tz, day, start)
                if start_ts > t:
                    break  # spans are sorted and wall time maps monotonically onto instants
                end_ts = wall_timestamp(self.tz, day + end // 1440, end % 1440)
                if t < end_ts and (best is None or end_ts > best):
                    best = end_ts
        return best

    def _first_after(self, t: float, ordinal: int) -> tuple[int, int]:
        """(start, end) of the first non-empty interval starting strictly after `t`."""
        day, last_day = ordinal, ordinal + HORIZON_DAYS
        while day <= last_day:
            off = self._off_range(day)
            if off is not None:
                day = off[1] + 1
                continue
            for start, end in self._spans(day):
                start_ts = wall_timestamp(self.tz, day, start)
                if start_ts > t:
                    end_ts = wall_timestamp(self.tz, day + end // 1440, end % 1440)
                    if end_ts > start_ts:
                        return start_ts, end_ts
            day += 1
        raise HoursError(
            f"No working hours in the {HORIZON_DAYS} days after {self._local(int(t)):%Y-%m-%d} — "
            "check the hours and days off, e.g. mon-fri 9-17:30"
        )

    def _stretch_end(self, t: float) -> int:
        """End of the working stretch containing `t`: follows intervals that touch or overlap."""
        end = self._containing_end(t, self._ordinal(self._local(int(t))))
        if end is None:
            raise HoursError("internal: _stretch_end called at an off instant")
        for _ in range(HORIZON_DAYS * 2):
            later = self._containing_end(end, self._local(end).toordinal())
            if later is None:
                return end
            end = later
        raise HoursError("These hours never stop — leave some time off, e.g. mon-fri 9-17:30")

    def _last_end_at_or_before(self, t: float, ordinal: int) -> int | None:
        """The latest interval end at or before `t`, looking back at most HORIZON_DAYS local days."""
        best, found_on = None, None
        day, first_day = ordinal, ordinal - HORIZON_DAYS
        while day >= first_day:
            if found_on is not None and day < found_on - 1:
                break  # only yesterday's overnight intervals can end later than today's
            off = self._off_range(day)
            if off is not None:
                day = off[0] - 1
                continue
            for start, end in self._spans(day):
                start_ts = wall_timestamp(self.tz, day, start)
                end_ts = wall_timestamp(self.tz, day + end // 1440, end % 1440)
                if start_ts < end_ts <= t and (best is None or end_ts > best):
                    best = end_ts
            if best is not None and found_on is None:
                found_on = day
            day -= 1
        return best
