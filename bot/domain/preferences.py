"""A person's settings as one value: the stored row merged with the config's defaults.

Reading never fails: a stored value Offhours can no longer read (a row written before a limit existed, or by an
older version) is left out and the default applies, so a person's DMs and commands keep working and the next
change of that setting writes a good value over it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import Protocol

from bot.domain.errors import HoursError
from bot.domain.hours import (
    DayOff,
    Schedule,
    WeeklyHours,
    parse_days_off,
    parse_hours,
    render_hours,
    resolve_timezone,
    within_horizon,
)


@dataclass(frozen=True, slots=True)
class PersonRow:
    """What a person set; None means "the config's default"."""

    team_id: str
    user_id: str
    tz: str | None = None
    hours: str | None = None
    message: str | None = None
    reply_within_s: int | None = None
    days_off: str = ""
    paused: bool = False
    holidays: str | None = None  # a country/region code; "" means "none" (chosen); None: the config's default
    external_message: str | None = None  # the auto-reply for people of other organisations; None: the config's policy
    nudge_before_s: int | None = None  # how early before a reply-by time to nudge; 0: off; None: the config's


class PreferenceDefaults(Protocol):
    """What applies where a person chose nothing (config.yaml's `defaults`)."""

    @property
    def timezone(self) -> str | None: ...
    @property
    def fallback_timezone(self) -> str: ...
    @property
    def weekly(self) -> WeeklyHours: ...
    @property
    def message(self) -> str: ...
    @property
    def reply_within(self) -> timedelta: ...
    @property
    def holidays(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Preferences:
    """What applies to one person right now: their choices, or the defaults where they made none."""

    team_id: str
    user_id: str
    schedule: Schedule
    message: str
    reply_within: timedelta
    paused: bool
    custom_hours: bool
    custom_message: bool
    custom_holidays: bool = False  # the person chose their holidays (a code, or none), not the config's default
    # No zone stored and the config follows Slack profiles: the fallback applies until the profile zone is learnt.
    zone_pending: bool = False
    external_message: str | None = None  # what people of other organisations are told; None: the config's policy
    nudge_before_s: int | None = None  # as stored (bot.domain.nudge.effective_before applies the config's default)

    @property
    def tz(self) -> str:
        return self.schedule.tz

    @property
    def weekly(self) -> WeeklyHours:
        return self.schedule.weekly

    @property
    def days_off(self) -> tuple[DayOff, ...]:
        return self.schedule.days_off

    @property
    def holidays(self) -> str | None:
        return self.schedule.holidays

    @property
    def hours_text(self) -> str:
        return render_hours(self.schedule.weekly)


@lru_cache(maxsize=4096)
def _parsed_hours(text: str) -> WeeklyHours | None:
    """The stored hours, or None when they cannot be read (the default applies)."""
    try:
        return parse_hours(text)
    except HoursError:
        return None


@lru_cache(maxsize=4096)
def _parsed_days_off(text: str, weekly: WeeklyHours) -> tuple[DayOff, ...]:
    """The stored days off that can be read and that every schedule query can answer with (with these hours)."""
    parsed = []
    for part in text.split(";"):
        if part.strip():
            try:
                parsed.append(parse_days_off(part))
            except HoursError:
                continue
    return within_horizon(parsed, weekly)


def _schedule(tz: str, fallback_tz: str, weekly: WeeklyHours, days_off: tuple[DayOff, ...],
              holidays: str | None) -> Schedule:  # fmt: skip
    try:
        tz = resolve_timezone(tz)
    except HoursError:
        tz = fallback_tz  # a zone the zone database no longer knows: the fallback rather than no replies
    try:
        return Schedule(tz=tz, weekly=weekly, days_off=days_off, holidays=holidays)
    except HoursError:
        # A code the holidays package no longer knows (an upgrade dropped it): no holidays rather than no replies.
        return Schedule(tz=tz, weekly=weekly, days_off=days_off)


def valid_zone(name: str | None) -> str | None:
    """A profile's zone by its canonical name, or None when there is none or Offhours does not know it."""
    if not name:
        return None
    try:
        return resolve_timezone(name)
    except HoursError:
        return None


def serialize_days_off(days_off: tuple[DayOff, ...]) -> str:
    return ";".join(f"{d.start.isoformat()}..{d.end.isoformat()}" for d in days_off)


def preferences(row: PersonRow | None, defaults: PreferenceDefaults, *, team_id: str, user_id: str) -> Preferences:
    """Merge a stored row with the config's defaults."""
    tz = (row.tz if row else None) or defaults.timezone or defaults.fallback_timezone
    stored_weekly = _parsed_hours(row.hours) if row and row.hours else None
    weekly = stored_weekly or defaults.weekly
    days_off = _parsed_days_off(row.days_off, weekly) if row and row.days_off else ()
    chosen_holidays = row.holidays if row else None
    holidays = (chosen_holidays if chosen_holidays is not None else defaults.holidays) or None
    reply_within = (
        timedelta(seconds=row.reply_within_s) if row and row.reply_within_s is not None else defaults.reply_within
    )
    return Preferences(
        team_id=team_id,
        user_id=user_id,
        schedule=_schedule(tz, defaults.fallback_timezone, weekly, days_off, holidays),
        message=(row.message if row and row.message else defaults.message),
        reply_within=reply_within,
        paused=bool(row and row.paused),
        custom_hours=stored_weekly is not None,
        custom_message=bool(row and row.message),
        custom_holidays=chosen_holidays is not None,
        zone_pending=not (row and row.tz) and defaults.timezone is None,
        external_message=(row.external_message if row and row.external_message else None),
        nudge_before_s=row.nudge_before_s if row else None,
    )
