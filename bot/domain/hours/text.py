"""The hours language shared by `/hours set`, config.yaml and the App Home, plus days off and durations.

Hours: groups separated by `;` (or `·`, or new lines), each `<days> <intervals>` or `<days> off`.

- Days: mon..sun or full names (any case), ranges `mon-fri`, lists `mon,wed,fri`, and the words `daily`,
  `weekdays`, `weekends`. Wrap-around ranges are accepted: `fri-mon` is Fri, Sat, Sun, Mon.
- Times: `9`, `9:30`, `09:30`, `17:30`, `9am`, `5:30pm`, `12pm` (noon), `12am` (midnight), `24:00`. Without
  am/pm, times are 24-hour. An end of 00:00/12am means midnight at the end of the day (24:00).
- Intervals: `9:00-17:30` (an en dash or `to` works too), several per group separated by `,` or spaces. An end
  at or before the start runs overnight (`22-6`), belonging to the day it starts. Bare hours that would run
  overnight from a morning start (`9-5`) are refused as a likely 12-hour slip; write `9-17`, `9am-5pm`, or
  `09:00-05:00` if overnight is really meant.
- Days not mentioned are off; a later group overrides earlier ones for the same days (`mon-fri 9-17; wed off`).
- Overlapping or touching intervals on one day are merged (see `bot.domain.hours.model`).
- Refused: no working hours at all, no time off at all, more than 1,000 characters.

Days off: `2026-12-24` or an inclusive range `2026-12-24..2027-01-02`; `→` is accepted as the separator too,
because `render_days_off` writes `2026-12-24 → 2027-01-02` for people.

Durations: `30m`, `2h`, `1d`, `1h30m`, `90 min`, `2 hours`, `1 h 30 min` (also seconds and weeks); more than
zero and at most 14 days.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

from bot.domain.errors import HoursError
from bot.domain.hours.model import DAY_NAMES, DayOff, Interval, WeeklyHours, covers_whole_week, hhmm

__all__ = [
    "parse_days_off",
    "parse_duration",
    "parse_hours",
    "render_days_off",
    "render_duration",
    "render_hours",
]

MAX_TEXT = 1000
HOURS_EXAMPLE = "e.g. mon-thu 9-17:30; fri 9am-1pm"
MAX_DURATION = timedelta(days=14)

_DAY_WORDS: dict[str, int] = {}
for _index, _names in enumerate(
    (
        ("mon", "monday", "mo"),
        ("tue", "tues", "tuesday", "tu"),
        ("wed", "weds", "wednesday", "we"),
        ("thu", "thur", "thurs", "thursday", "th"),
        ("fri", "friday", "fr"),
        ("sat", "saturday", "sa"),
        ("sun", "sunday", "su"),
    )
):
    for _name in _names:
        _DAY_WORDS[_name] = _index
_DAY_SETS = {
    "daily": range(7),
    "everyday": range(7),
    "weekdays": range(5),
    "weekday": range(5),
    "weekends": range(5, 7),
    "weekend": range(5, 7),
}
_OFF_WORDS = {"off", "closed", "none"}

_DAYS_PREFIX = re.compile(r"[a-z]+(?:\s*-\s*[a-z]+)?(?:\s*,\s*[a-z]+(?:\s*-\s*[a-z]+)?)*")
_TIME = r"[0-9]+(?:[:.][0-9]+)?(?:\s*(?:am|pm|a\.m\.|p\.m\.))?"
_INTERVAL = re.compile(rf"(?P<a>{_TIME})\s*(?:-|to|until)\s*(?P<b>{_TIME})")
_TIME_PARTS = re.compile(r"(?P<h>[0-9]+)(?:[:.](?P<m>[0-9]+))?\s*(?P<ap>[ap])?")
_SEPARATORS = re.compile(r"[\s,]*")


def _check_length(text: str, what: str) -> None:
    if not isinstance(text, str):
        raise HoursError(f"{what} must be text, {HOURS_EXAMPLE}")
    if len(text) > MAX_TEXT:
        raise HoursError(f"That is {len(text):,} characters — {what} must fit in {MAX_TEXT:,}, {HOURS_EXAMPLE}")


def parse_hours(text: str) -> WeeklyHours:
    """Parse the hours language into WeeklyHours; HoursError says what is wrong and shows an example."""
    _check_length(text, "hours")
    normalized = text.lower().replace("–", "-").replace("—", "-")
    groups = [g.strip() for g in re.split(r"[;·\n]", normalized)]
    groups = [g for g in groups if g]
    if not groups:
        raise HoursError(f"No hours given — write days then times, {HOURS_EXAMPLE}")
    days: list[tuple[Interval, ...]] = [()] * 7
    for group in groups:
        chosen, intervals = _parse_group(group)
        for day in chosen:
            days[day] = intervals  # later groups override earlier ones
    weekly = WeeklyHours(tuple(days))
    if weekly.is_empty:
        raise HoursError(f"That leaves no working hours at all — give at least one day with times, {HOURS_EXAMPLE}")
    if covers_whole_week(weekly):
        raise HoursError(f"That leaves no time off at all — Offhours needs some off hours, {HOURS_EXAMPLE}")
    # What is kept is the canonical form, which can be longer than what was typed (`mon 9-9:05 ...` -> "Mon
    # 09:00–09:05, ..."): it must fit the same limit, so whatever is accepted can be stored and read back.
    canonical = len(render_hours(weekly))
    if canonical > MAX_TEXT:
        raise HoursError(
            f"Those hours take {canonical:,} characters written out, more than the {MAX_TEXT:,} Offhours keeps — "
            f"use fewer different intervals, {HOURS_EXAMPLE}"
        )
    return weekly


def _parse_group(group: str) -> tuple[list[int], tuple[Interval, ...]]:
    match = _DAYS_PREFIX.match(group)
    if match is None:
        raise HoursError(f"“{_clip(group)}” does not start with days — start each group with days, {HOURS_EXAMPLE}")
    chosen = _parse_days(match.group(), group)
    rest = group[match.end() :].strip()
    if rest in _OFF_WORDS:
        return chosen, ()
    if not rest:
        raise HoursError(f"“{_clip(group)}” has days but no times — add times or `off`, {HOURS_EXAMPLE}")
    intervals: list[Interval] = []
    pos = 0
    while pos < len(rest):
        pos = _SEPARATORS.match(rest, pos).end()  # type: ignore[union-attr]
        if pos >= len(rest):
            break
        found = _INTERVAL.match(rest, pos)
        if found is None:
            raise HoursError(
                f"Could not read “{_clip(rest[pos:])}” as times — write intervals like 9:00-17:30, "
                f"several separated by commas, {HOURS_EXAMPLE}"
            )
        intervals.append(_parse_interval(found.group("a"), found.group("b")))
        pos = found.end()
    return chosen, tuple(intervals)


def _parse_days(text: str, group: str) -> list[int]:
    chosen: list[int] = []
    for item in text.split(","):
        ends = [part.strip() for part in item.split("-")]
        if len(ends) == 1 and ends[0] in _DAY_SETS:
            chosen.extend(_DAY_SETS[ends[0]])
            continue
        for word in ends:
            if word not in _DAY_WORDS:
                raise HoursError(
                    f"“{_clip(word)}” is not a day — use mon..sun, weekdays, weekends or daily, {HOURS_EXAMPLE}"
                )
        first, last = _DAY_WORDS[ends[0]], _DAY_WORDS[ends[-1]]
        chosen.extend((first + offset) % 7 for offset in range((last - first) % 7 + 1))
    return chosen


def _parse_interval(start_text: str, end_text: str) -> Interval:
    start, start_bare = _parse_time(start_text)
    end, end_bare = _parse_time(end_text)
    shown = f"{start_text.strip()}-{end_text.strip()}"
    if start == 1440:
        raise HoursError(f"{shown} starts at 24:00 — 24:00 can only end an interval, e.g. 18:00-24:00")
    if end == 0:
        end = 1440  # midnight at the end of the day
    if start == end:
        raise HoursError(f"{shown} is empty — the end must differ from the start, e.g. 9-17:30")
    if end < start and start_bare and end_bare and start < 720:
        raise HoursError(
            f"{shown} would run overnight from {hhmm(start)} to {hhmm(end)} — times are 24-hour: write "
            f"{start // 60}-{end // 60 + 12} or {start // 60}am-{end // 60}pm "
            f"(or {hhmm(start)}-{hhmm(end)} for overnight)"
        )
    return Interval(start, end)


def _parse_time(text: str) -> tuple[int, bool]:
    """Minutes after midnight (1440 for 24:00) and whether it was a bare hour like `9`."""
    compact = text.replace(".m.", "m").replace(" ", "")
    parts = _TIME_PARTS.fullmatch(compact.removesuffix("m"))
    shown = text.strip()
    if parts is None:
        raise HoursError(f"{shown} is not a time — use 24-hour HH:MM like 17:30, or 5:30pm")
    hour, minute_text, half = int(parts.group("h")), parts.group("m"), parts.group("ap")
    minute = int(minute_text) if minute_text is not None else 0
    if (minute_text is not None and len(minute_text) != 2) or minute > 59:
        raise HoursError(f"{shown} is not a time — minutes are two digits 00-59, like 17:30")
    if half is not None:
        if not 1 <= hour <= 12:
            raise HoursError(f"{shown} is not a time — with am/pm the hour is 1-12, like 5:30pm")
        hour = hour % 12 + (12 if half == "p" else 0)
    elif hour > 24 or (hour == 24 and minute):
        raise HoursError(f"{shown} is not a time — use 24-hour HH:MM like 17:30")
    return hour * 60 + minute, half is None and minute_text is None


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_hours(weekly: WeeklyHours) -> str:
    """Canonical human form, e.g. "Mon–Thu 09:00–17:30 · Fri 09:00–13:00"; parse_hours reads it back."""
    groups: list[str] = []
    day = 0
    while day < 7:
        intervals = weekly.days[day]
        last = day
        while last + 1 < 7 and weekly.days[last + 1] == intervals:
            last += 1
        if intervals:
            days = DAY_NAMES[day] if last == day else f"{DAY_NAMES[day]}–{DAY_NAMES[last]}"
            groups.append(f"{days} {', '.join(str(i) for i in intervals)}")
        day = last + 1
    return " · ".join(groups) if groups else "No working hours"


_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
DAYS_OFF_EXAMPLE = "e.g. 2026-12-24 or 2026-12-24..2027-01-02"


def parse_days_off(text: str) -> DayOff:
    """Parse `2026-12-24`, `2026-12-24..2027-01-02` or `2026-12-24 → 2027-01-02` (inclusive)."""
    _check_length(text, "days off")
    parts = [p.strip() for p in re.split(r"\.\.|→", text.strip())]
    if len(parts) > 2 or not parts[0]:
        raise HoursError(f"“{_clip(text.strip())}” is not a date or range — {DAYS_OFF_EXAMPLE}")
    first = _parse_date(parts[0])
    last = _parse_date(parts[1]) if len(parts) == 2 else first
    return DayOff(first, last)


def _parse_date(text: str) -> date:
    if _DATE.fullmatch(text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    raise HoursError(f"“{_clip(text)}” is not a date — use YYYY-MM-DD, {DAYS_OFF_EXAMPLE}")


def render_days_off(day_off: DayOff) -> str:
    """`2026-12-24`, or `2026-12-24 → 2027-01-02` for a range; parse_days_off reads both."""
    if day_off.start == day_off.end:
        return day_off.start.isoformat()
    return f"{day_off.start.isoformat()} → {day_off.end.isoformat()}"


_UNITS = {
    "w": 604800,
    "wk": 604800,
    "week": 604800,
    "d": 86400,
    "day": 86400,
    "h": 3600,
    "hr": 3600,
    "hour": 3600,
    "m": 60,
    "min": 60,
    "minute": 60,
    "s": 1,
    "sec": 1,
    "second": 1,
}
_DURATION_PART = re.compile(r"\s*([0-9]+)\s*([a-z]+)\s*")
DURATION_EXAMPLE = "e.g. 30m, 2h, 1d or 1h30m"


def parse_duration(text: str) -> timedelta:
    """Parse `30m`, `2h`, `1d`, `1h30m`, `90 min`, `2 hours`; more than zero, at most 14 days."""
    _check_length(text, "a duration")
    compact = text.strip().lower()
    if not compact:
        raise HoursError(f"No duration given — {DURATION_EXAMPLE}")
    seconds, pos = 0, 0
    while pos < len(compact):
        part = _DURATION_PART.match(compact, pos)
        unit = part.group(2) if part else ""
        factor = _UNITS.get(unit) or (_UNITS.get(unit.removesuffix("s")) if len(unit) > 2 else None)
        if part is None or factor is None:
            raise HoursError(f"“{_clip(text.strip())}” is not a duration — use a number and a unit, {DURATION_EXAMPLE}")
        digits = part.group(1).lstrip("0") or "0"
        seconds += (int(digits) if len(digits) <= 9 else 10**9) * factor
        pos = part.end()
    duration = timedelta(seconds=min(seconds, 10**9))
    if duration <= timedelta(0) or duration > MAX_DURATION:
        raise HoursError(
            f"“{_clip(text.strip())}” is out of range — durations are above zero and at most 14 days, "
            f"{DURATION_EXAMPLE}"
        )
    return duration


def render_duration(duration: timedelta) -> str:
    """`30 min`, `2 h`, `1 d`, `1 h 30 min` (seconds shown only when present)."""
    total = int(duration.total_seconds())
    sign, total = ("-" if total < 0 else ""), abs(total)
    parts = []
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min"), (1, "s")):
        if total >= size:
            parts.append(f"{total // size} {unit}")
            total %= size
    return sign + " ".join(parts) if parts else "0 min"
