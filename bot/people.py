"""A person's settings: what they chose, merged with the config's defaults, changed through one code path.

`/hours` and the App Home both call `PeopleService`, so a change made in one shows in the other and is
validated the same way. Every setter validates first and writes nothing on bad input.

A person's zone is None until known. When the config follows Slack profiles, `ensure` (every /hours, Home visit
and connect) learns the profile zone while it is None, so one failed users.info does not leave the person on the
fallback zone; it fills the zone only where it is still None, never over one the person chose.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from typing import Any

from bot.config import Config
from bot.domain.errors import HoursError, OffhoursError, TemplateError
from bot.domain.hours import (
    MAX_DAYS_OFF_RUN,
    DayOff,
    days_off_runs,
    parse_days_off,
    parse_duration,
    parse_hours,
    render_days_off,
    render_hours,
    resolve_holidays,
    resolve_timezone,
)
from bot.domain.preferences import Preferences, preferences, serialize_days_off, valid_zone
from bot.domain.templates import validate_template
from bot.storage.store import Store

MAX_DAYS_OFF = 50
MAX_REPLY_EXCEPTIONS = 100  # people on one person's "never auto-reply to" list (also the Home picker's limit)


class PeopleService:
    """Reads and changes people's settings; the only writer of the `people` table."""

    def __init__(self, store: Store, config: Config, *, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        # Called after any change, with (team_id, user_id): the recap due times and the Home tab follow.
        self.on_change: list[Callable[[str, str], None]] = []

    def get(self, team_id: str, user_id: str) -> Preferences:
        return preferences(
            self.store.get_person(team_id, user_id), self.config.defaults, team_id=team_id, user_id=user_id
        )

    def get_many(self, team_id: str, user_ids: Iterable[str]) -> dict[str, Preferences]:
        """Everyone's preferences in one read (defaults for those without a row)."""
        wanted = set(user_ids)
        rows = self.store.people_with_ids(team_id, wanted)
        return {
            user_id: preferences(rows.get(user_id), self.config.defaults, team_id=team_id, user_id=user_id)
            for user_id in wanted
        }

    def _save(self, team_id: str, user_id: str, **fields: Any) -> Preferences:
        row = self.store.save_person(team_id, user_id, now=self.clock(), **fields)
        self._changed(team_id, user_id)
        return preferences(row, self.config.defaults, team_id=team_id, user_id=user_id)

    def _changed(self, team_id: str, user_id: str) -> None:
        for callback in self.on_change:
            callback(team_id, user_id)

    def ensure(self, team_id: str, user_id: str, *, profile_tz: Callable[[], str | None]) -> Preferences:
        """The person's settings, their row created on first contact; their Slack profile zone learnt when needed.

        While the config follows profiles (no `defaults.timezone`) and the person's zone is not known yet,
        `profile_tz()` is asked for it (None when Slack could not tell) and a valid zone is stored: a lookup that
        failed once is tried again on the next contact instead of leaving them on the fallback zone for good.
        A zone already known, chosen or learnt, costs no lookup and is never replaced.
        """
        row = self.store.get_person(team_id, user_id)
        follows_profile = self.config.defaults.timezone is None
        if row is not None and (row.tz is not None or not follows_profile):
            return preferences(row, self.config.defaults, team_id=team_id, user_id=user_id)
        tz = valid_zone(profile_tz()) if follows_profile else None
        if row is not None and tz is None:
            # Nothing learnt: the fallback zone applies for now, and the next contact asks again.
            return preferences(row, self.config.defaults, team_id=team_id, user_id=user_id)
        row, changed = self.store.fill_person_tz(team_id, user_id, tz, now=self.clock(), create=row is None)
        if changed:
            self._changed(team_id, user_id)
        return preferences(row, self.config.defaults, team_id=team_id, user_id=user_id)

    def set_hours(self, team_id: str, user_id: str, text: str) -> Preferences:
        weekly = parse_hours(text)
        return self._save(team_id, user_id, hours=render_hours(weekly))

    def set_timezone(self, team_id: str, user_id: str, text: str) -> Preferences:
        return self._save(team_id, user_id, tz=resolve_timezone(text.strip()))

    def set_message(self, team_id: str, user_id: str, text: str) -> Preferences:
        message = validate_template(text)
        if "\x00" in message:
            # PostgreSQL text cannot hold NUL: refused here rather than failing the write.
            raise TemplateError("The message contains a NUL character (\\0); remove it and try again.")
        return self._save(team_id, user_id, message=message)

    def set_external_message(self, team_id: str, user_id: str, text: str | None) -> Preferences:
        """The auto-reply for people of another organisation; None: the config's policy (reply.external)."""
        if text is None:
            return self._save(team_id, user_id, external_message=None)
        message = validate_template(text)
        if "\x00" in message:
            raise TemplateError("The message contains a NUL character (\\0); remove it and try again.")
        return self._save(team_id, user_id, external_message=message)

    def reset_message(self, team_id: str, user_id: str) -> Preferences:
        return self._save(team_id, user_id, message=None)

    def set_reply_within(self, team_id: str, user_id: str, text: str) -> Preferences:
        duration = parse_duration(text)
        return self._save(team_id, user_id, reply_within_s=int(duration.total_seconds()))

    def add_days_off(self, team_id: str, user_id: str, text: str, *, today: date) -> tuple[Preferences, DayOff]:
        day_off = parse_days_off(text)
        if day_off.end < today:
            raise HoursError(
                f"{render_days_off(day_off)} is already over — give a date from today on, like "
                f"{today.isoformat()} or {today.isoformat()}..{(today + timedelta(days=2)).isoformat()}"
            )
        current = self.get(team_id, user_id).days_off
        if day_off in current:
            raise HoursError(f"{render_days_off(day_off)} is already in your days off — see /hours off list")
        # Ended ranges are dropped on every change so the list stays short.
        kept = tuple(d for d in current if d.end >= today)
        if len(kept) >= MAX_DAYS_OFF:
            raise HoursError(f"you already have {MAX_DAYS_OFF} upcoming days off — clear some with /hours off clear")
        updated = tuple(sorted((*kept, day_off), key=lambda d: (d.start, d.end)))
        weekly = self.get(team_id, user_id).weekly
        first, last = next((a, b) for a, b in days_off_runs(updated, weekly) if a <= day_off.start <= b)
        if (last - first).days + 1 > MAX_DAYS_OFF_RUN:
            # Every answer (the auto-reply's "back at", /hours show, the Home tab) looks for the next working day
            # within a bounded horizon: a longer run of days off would leave it with no answer.
            raise HoursError(
                f"With {render_days_off(day_off)} you would have no working day from {first} to {last}, "
                f"more than the {MAX_DAYS_OFF_RUN} days in a row Offhours can plan around — nothing was added. "
                "Add a shorter range, or clear some with /hours off clear"
            )
        return self._save(team_id, user_id, days_off=serialize_days_off(updated)), day_off

    def clear_days_off(self, team_id: str, user_id: str) -> Preferences:
        return self._save(team_id, user_id, days_off="")

    def set_nudge_before(self, team_id: str, user_id: str, text: str) -> Preferences:
        """How early before an auto-reply's reply-by time to be nudged (`1h`), or `off` (bot.domain.nudge)."""
        from bot.domain.nudge import parse_before

        return self._save(team_id, user_id, nudge_before_s=parse_before(text))

    def set_paused(self, team_id: str, user_id: str, paused: bool) -> Preferences:
        return self._save(team_id, user_id, paused=paused)

    def set_holidays(self, team_id: str, user_id: str, text: str) -> Preferences:
        """A country/region code ("US", "de-by"), or "off" for none; refused with a suggestion when unknown."""
        code = "" if text.strip().lower() in ("off", "none") else resolve_holidays(text)
        return self._save(team_id, user_id, holidays=code)

    def reply_exceptions(self, team_id: str, user_id: str) -> list[str]:
        return self.store.exceptions.listed(team_id, user_id)

    def change_reply_exceptions(
        self,
        team_id: str,
        user_id: str,
        *,
        add: Iterable[str] = (),
        remove: Iterable[str] = (),
        replace: Iterable[str] | None = None,
    ) -> list[str]:
        """Add, remove or replace the people who never get an auto-reply; the new list. Yourself is refused (your
        own messages never get one), and so is a list longer than MAX_REPLY_EXCEPTIONS: nothing changes then."""
        named = {*add, *(replace or ())}
        if user_id in named:
            raise OffhoursError("You never get an auto-reply from yourself — name someone else, e.g. a teammate")
        updated, current = self.store.exceptions.change(
            team_id, user_id, add=add, remove=remove, replace=replace, limit=MAX_REPLY_EXCEPTIONS
        )
        if updated is None:
            raise OffhoursError(
                f"At most {MAX_REPLY_EXCEPTIONS} people can be on your list (you have {len(current)}), so nothing "
                "was changed — remove some first"
            )
        if updated != current:
            self._changed(team_id, user_id)
        return updated
