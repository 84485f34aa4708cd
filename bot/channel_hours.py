"""Channel office hours as a service: the settings (through the store) and the in-memory set of channels that have
them, so that a channel message elsewhere costs no database statement.

The set is read from the database at first use, again whenever it is older than `refresh_s` (another process may
have changed a channel), and at once after every change made in this process.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from datetime import datetime

from bot.domain.channel_hours import ChannelHours, parse_set, validate_message
from bot.domain.errors import HoursError
from bot.domain.hours import parse_days_off, resolve_holidays
from bot.storage.store import Store

REFRESH_S = 30.0


class ChannelHoursService:
    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], datetime],
        refresh_s: float = REFRESH_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.clock = clock
        self.refresh_s = refresh_s
        self.monotonic = monotonic
        self._channels: dict[tuple[str, str], ChannelHours] = {}
        self._loaded_at: float | None = None
        self._lock = threading.Lock()
        # Set when a channel reply is queued: the channel reply sender wakes at once instead of at its next poll.
        self.replies_queued = threading.Event()

    # --- the in-memory set ----------------------------------------------------------------------------------

    def lookup(self, team_id: str, channel_id: str) -> ChannelHours | None:
        """The channel's hours if it has any; from memory (the database only when the set is stale)."""
        loaded = self._loaded_at
        if loaded is None or self.monotonic() - loaded >= self.refresh_s:
            self.refresh()
        return self._channels.get((team_id, channel_id))

    def refresh(self) -> None:
        channels = {(h.team_id, h.channel_id): h for h in self.store.channel_hours.all()}
        with self._lock:
            self._channels = channels
            self._loaded_at = self.monotonic()

    # --- changes (each refreshes the set) -------------------------------------------------------------------

    def get(self, team_id: str, channel_id: str) -> ChannelHours | None:
        return self.store.channel_hours.get(team_id, channel_id)

    def set_hours(self, team_id: str, channel_id: str, text: str) -> ChannelHours:
        hours, tz = parse_set(text)
        current = self.get(team_id, channel_id)
        if current is None:
            changed = ChannelHours(team_id=team_id, channel_id=channel_id, hours=hours, tz=tz)
        else:
            changed = dataclasses.replace(current, hours=hours, tz=tz)
        _ = changed.schedule  # raises HoursError for hours with no reachable working time
        return self._save(changed)

    def _require(self, team_id: str, channel_id: str) -> ChannelHours:
        current = self.get(team_id, channel_id)
        if current is None:
            raise HoursError(
                "This channel has no office hours yet: set them first, like "
                "`/hours channel set mon-fri 9-17:30 Europe/London`."
            )
        return current

    def set_message(self, team_id: str, channel_id: str, text: str) -> ChannelHours:
        current = self._require(team_id, channel_id)
        message = None if text.strip().lower() == "reset" else validate_message(text)
        return self._save(dataclasses.replace(current, message=message))

    def set_summary_to(self, team_id: str, channel_id: str, user_id: str | None) -> ChannelHours:
        return self._save(dataclasses.replace(self._require(team_id, channel_id), summary_to=user_id))

    def set_holidays(self, team_id: str, channel_id: str, code: str) -> ChannelHours:
        holidays = None if code.strip().lower() in ("none", "off") else resolve_holidays(code.strip())
        return self._save(dataclasses.replace(self._require(team_id, channel_id), holidays=holidays))

    def add_days_off(self, team_id: str, channel_id: str, text: str) -> ChannelHours:
        current = self._require(team_id, channel_id)
        if text.strip().lower() == "clear":
            return self._save(dataclasses.replace(current, days_off=""))
        added = parse_days_off(text.strip())
        entry = f"{added.start.isoformat()}..{added.end.isoformat()}"
        days_off = ";".join(part for part in (current.days_off, entry) if part)
        changed = dataclasses.replace(current, days_off=days_off)
        _ = changed.schedule
        return self._save(changed)

    def turn_off(self, team_id: str, channel_id: str) -> bool:
        gone = self.store.channel_hours.delete(team_id, channel_id)
        self.refresh()
        return gone

    def _save(self, hours: ChannelHours) -> ChannelHours:
        self.store.channel_hours.save(hours, now=self.clock())
        self.refresh()
        return hours
