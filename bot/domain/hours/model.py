"""The value types of a working-hours schedule: intervals, a week of them, and days off.

Normalisation (so equal schedules compare equal, and parse/render round-trips):

- Each day's intervals are sorted by start; overlapping or touching intervals that start on the same day are
  merged (09:00–13:00 + 12:00–17:00 -> 09:00–17:00; 09:00–12:00 + 12:00–17:00 -> 09:00–17:00). A merge that
  would reach 24 hours or more from a start other than 00:00 is refused (it cannot be written as one interval).
- Intervals that start on different days may overlap (Mon 22:00–06:00 with Tue 05:00–09:00): the working time
  is their union.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from bot.domain.errors import HoursError

__all__ = ["DAY_NAMES", "MAX_DAY_OFF_SPAN", "DayOff", "Interval", "WeeklyHours", "covers_whole_week"]

DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MINUTES_PER_DAY = 1440
MAX_DAY_OFF_SPAN = 366  # days in one DayOff range, inclusive


def hhmm(minute: int) -> str:
    """09:00 style; 1440 is 24:00."""
    return f"{minute // 60:02d}:{minute % 60:02d}"


@dataclass(frozen=True)
class Interval:
    """Local [start, end) in minutes after midnight; end <= start means it ends the next day; 1440 is 24:00."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if not (isinstance(self.start, int) and isinstance(self.end, int)):
            raise HoursError("An interval's start and end are whole minutes after midnight, e.g. 540 for 09:00")
        if not 0 <= self.start < MINUTES_PER_DAY:
            raise HoursError(f"An interval must start between 00:00 and 23:59, not {self.start} minutes — e.g. 9:00")
        if not 0 < self.end <= MINUTES_PER_DAY:
            raise HoursError(f"An interval must end between 00:01 and 24:00, not {self.end} minutes — e.g. 17:30")
        if self.start == self.end:
            raise HoursError(f"{hhmm(self.start)}–{hhmm(self.end)} is empty — give an end after the start, e.g. 9-17")

    @property
    def overnight(self) -> bool:
        """True when the interval ends on the next day."""
        return self.end <= self.start

    @property
    def linear_end(self) -> int:
        """End in minutes after the start day's midnight (up to 2879 for overnight intervals)."""
        return self.end + MINUTES_PER_DAY if self.end <= self.start else self.end

    def __str__(self) -> str:
        return f"{hhmm(self.start)}–{hhmm(self.end)}"


def _normalize_day(intervals: Iterable[Interval], day: int) -> tuple[Interval, ...]:
    spans: list[list[int]] = []
    for interval in sorted(intervals, key=lambda i: (i.start, i.linear_end)):
        if not isinstance(interval, Interval):
            raise HoursError("WeeklyHours.days holds Interval values, e.g. Interval(540, 1050)")
        if spans and interval.start <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], interval.linear_end)
        else:
            spans.append([interval.start, interval.linear_end])
    merged = []
    for start, end in spans:
        if end - start >= MINUTES_PER_DAY and not (start == 0 and end == MINUTES_PER_DAY):
            raise HoursError(
                f"{DAY_NAMES[day]}'s hours overlap into 24 hours or more from {hhmm(start)} — "
                "split them across days, e.g. mon 0-24; tue 0-6"
            )
        merged.append(Interval(start, end if end <= MINUTES_PER_DAY else end - MINUTES_PER_DAY))
    return tuple(merged)


@dataclass(frozen=True)
class WeeklyHours:
    """Working intervals for each weekday, Monday first; normalised on construction (sorted, merged)."""

    days: tuple[tuple[Interval, ...], ...]

    def __post_init__(self) -> None:
        days = tuple(self.days)
        if len(days) != 7:
            raise HoursError(f"WeeklyHours needs exactly 7 days (Monday first), got {len(days)}")
        object.__setattr__(self, "days", tuple(_normalize_day(day, i) for i, day in enumerate(days)))

    @property
    def is_empty(self) -> bool:
        """True when no day has any working interval."""
        return not any(self.days)


def covers_whole_week(weekly: WeeklyHours) -> bool:
    """True when the intervals leave no off time at all in the week (e.g. `daily 0-24`)."""
    week = 7 * MINUTES_PER_DAY
    spans: list[tuple[int, int]] = []
    for day, intervals in enumerate(weekly.days):
        for interval in intervals:
            start, end = day * MINUTES_PER_DAY + interval.start, day * MINUTES_PER_DAY + interval.linear_end
            if end > week:  # Sunday night running into Monday
                spans += [(start, week), (0, end - week)]
            else:
                spans.append((start, end))
    reached = 0
    for start, end in sorted(spans):
        if start > reached:
            return False
        reached = max(reached, end)
    return reached >= week


@dataclass(frozen=True)
class DayOff:
    """An inclusive range of local calendar dates with no working hours (start == end for a single day)."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if not (isinstance(self.start, date) and isinstance(self.end, date)):
            raise HoursError("A day off is a pair of dates, e.g. DayOff(date(2026, 12, 24), date(2026, 12, 26))")
        if self.end < self.start:
            raise HoursError(
                f"{self.start}..{self.end} ends before it starts — write the earlier date first: "
                f"{self.end}..{self.start}"
            )
        if (self.end - self.start).days + 1 > MAX_DAY_OFF_SPAN:
            raise HoursError(
                f"{self.start}..{self.end} is longer than {MAX_DAY_OFF_SPAN} days — split it or shorten it, "
                "e.g. 2026-12-24..2027-01-02"
            )
