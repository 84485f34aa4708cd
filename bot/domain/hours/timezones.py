"""Time zones for the hours engine: name resolution, the DST policy for wall-clock times, display.

DST policy (the one place it is implemented; `bot.domain.hours` builds on it):

- Working hours are wall-clock: 09:00 stays 09:00 local across offset changes.
- A wall-clock time that does not exist (it falls in a spring-forward gap) moves to the first valid
  instant after the gap: 02:30 on New York's spring-forward night means 03:00 EDT.
- A wall-clock time that happens twice (fall-back) means its first occurrence.

Everything goes through `tz.localize(...)` / `datetime.astimezone(...)`; never `datetime.replace(tzinfo=<pytz
zone>)`, which silently picks the zone's first historical offset (LMT, e.g. +00:18 for Europe/Amsterdam).
"""

from __future__ import annotations

import difflib
from bisect import bisect_right
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache

import pytz

from bot.domain.errors import HoursError

__all__ = ["format_local", "format_utc_offset", "localize_wall", "resolve_timezone", "wall_timestamp", "zone"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_SECOND = timedelta(seconds=1)
_BY_LOWER = {name.lower(): name for name in pytz.all_timezones}
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_NEAR = timedelta(days=6)  # format_local names the date of an instant further than this from now


@lru_cache(maxsize=1024)
def resolve_timezone(name: str) -> str:
    """Return the canonical IANA name for `name` (case and spaces forgiven); HoursError with suggestions if unknown."""
    cleaned = "_".join(name.strip().split())
    if cleaned in pytz.all_timezones_set:
        return cleaned
    found = _BY_LOWER.get(cleaned.lower())
    if found is not None:
        return found
    shown = name.strip()[:60] or "An empty name"
    suggestions = _suggest(cleaned)
    if suggestions:
        hint = "did you mean " + " or ".join(suggestions) + "?"
    else:
        hint = "use an IANA name like Europe/Rome or America/New_York"
    raise HoursError(f"{shown} is not a time zone — {hint}")


def _suggest(cleaned: str) -> list[str]:
    if not cleaned:
        return []
    lowered = cleaned.lower()[:60]
    if "/" not in lowered:
        # A bare city ("rome", "new_york") is matched against the last part of each zone name.
        by_city = {key.rsplit("/", 1)[-1]: key for key in _BY_LOWER if "/" in key}
        cities = difflib.get_close_matches(lowered, list(by_city), n=1, cutoff=0.9)
        cities = cities or difflib.get_close_matches(lowered, list(by_city), n=3, cutoff=0.75)
        if cities:
            return [_BY_LOWER[by_city[c]] for c in cities]
    # A near-certain match is shown alone ("Europe/Romee" -> Europe/Rome); otherwise up to three guesses.
    matches = difflib.get_close_matches(lowered, list(_BY_LOWER), n=1, cutoff=0.9)
    matches = matches or difflib.get_close_matches(lowered, list(_BY_LOWER), n=3, cutoff=0.6)
    return [_BY_LOWER[m] for m in matches]


@lru_cache(maxsize=1024)
def zone(name: str) -> tzinfo:
    """The pytz zone for a name that `resolve_timezone` accepts."""
    return pytz.timezone(resolve_timezone(name))


def localize_wall(tz: tzinfo, wall: datetime) -> datetime:
    """Attach `tz` to a naive wall-clock datetime following the module's DST policy (gap -> after, fold -> first)."""
    try:
        return tz.localize(wall, is_dst=None)  # type: ignore[attr-defined]
    except pytz.AmbiguousTimeError:
        first, second = tz.localize(wall, is_dst=True), tz.localize(wall, is_dst=False)  # type: ignore[attr-defined]
        return min(first, second)
    except pytz.NonExistentTimeError:
        return _after_gap(tz, wall)


def _after_gap(tz: tzinfo, wall: datetime) -> datetime:
    """The first valid instant after the gap that swallows `wall`: the transition instant itself."""
    # The wall time read with the later (post-gap) offset is the earliest UTC reading; the transition is the
    # first one after it.
    readings = (tz.localize(wall, is_dst=True), tz.localize(wall, is_dst=False))  # type: ignore[attr-defined]
    earliest = min(r.astimezone(UTC).replace(tzinfo=None) for r in readings)
    transitions = getattr(tz, "_utc_transition_times", None)
    if transitions:
        index = bisect_right(transitions, earliest)
        if index < len(transitions):
            candidate = transitions[index].replace(tzinfo=UTC).astimezone(tz)
            if candidate.replace(tzinfo=None) >= wall and candidate.replace(tzinfo=None) - wall < timedelta(days=2):
                return candidate
    # Fallback (never needed for tzdata zones): step forward a minute at a time until the wall time exists.
    probe = wall.replace(second=0, microsecond=0)
    for _ in range(3 * 1440):
        probe += timedelta(minutes=1)
        try:
            return tz.localize(probe, is_dst=None)  # type: ignore[attr-defined]
        except pytz.AmbiguousTimeError:
            return tz.localize(probe, is_dst=True)  # type: ignore[attr-defined]
        except pytz.NonExistentTimeError:
            continue
    raise HoursError(f"{wall:%Y-%m-%d %H:%M} does not exist in {tz} and no valid time follows it")


@lru_cache(maxsize=1 << 16)
def wall_timestamp(tz_name: str, ordinal: int, minute: int) -> int:
    """POSIX seconds of local `minute` after midnight on the day `ordinal` (date.toordinal) in `tz_name`.

    Cached: schedules in the same zone share the work, and every query asks for the same few days.
    """
    wall = datetime.fromordinal(ordinal) + timedelta(minutes=minute)
    return (localize_wall(zone(tz_name), wall) - _EPOCH) // _ONE_SECOND


def format_local(instant: datetime, tz: str, *, now: datetime | None = None) -> str:
    """`instant` in `tz` for people: "Mon 09:00", or "Mon 9 Mar 09:00" when not within 6 days of `now`.

    The date is added when `now` is None or the instant is more than 6 days away from `now` (either side);
    the year is added too when it differs from `now`'s local year.
    """
    # Names from tables, not strftime: strftime asks a pytz zone for dst() in Python on every call, and this runs
    # for every auto-reply (twice); the names are English whatever the process's locale, as the rest of the text.
    local = instant.astimezone(zone(tz))
    clock = f"{local.hour:02d}:{local.minute:02d}"
    day = _WEEKDAYS[local.weekday()]
    if now is not None and abs(instant - now) <= _NEAR:
        return f"{day} {clock}"
    text = f"{day} {local.day} {_MONTHS[local.month - 1]}"
    if now is not None and now.astimezone(local.tzinfo).year != local.year:
        text += f" {local.year}"
    return f"{text} {clock}"


def format_utc_offset(instant: datetime, tz: str) -> str:
    """The offset of `tz` at `instant`, readable without knowing the zone: "UTC+01:00", "UTC-04:00", "UTC+05:45".

    Not the abbreviation: "CST" and "IST" each name several zones, and many zones have none (tzdata writes "+03").
    """
    offset = instant.astimezone(zone(tz)).utcoffset() or timedelta(0)
    minutes = offset // timedelta(minutes=1)
    sign = "-" if minutes < 0 else "+"
    hours, minutes = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}:{minutes:02d}"


def local_date(instant: datetime, tz_name: str) -> date:
    """The calendar date of `instant` in `tz_name`."""
    return instant.astimezone(zone(tz_name)).date()
