"""Channel mentions and group DMs (issue 20): a person's choice, and the in-memory view the message listener
decides every channel message from.

With the mention scopes Slack sends every message of every channel a connected person is in; almost none concern
anyone. The view — who is connected, has the scopes and mentions on, with their parsed settings — lets the listener
drop those with no database statement and no Web API call. It is read again from the database every
`mentions.refresh_seconds` (other processes' changes) and at the next message after any change in this process
(settings through PeopleService, a person or workspace forgotten through the Store).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from bot.config import Config
from bot.domain.preferences import Preferences
from bot.group_dms import GroupDMMembers
from bot.people import PeopleService
from bot.storage.mentions import MENTION_SCOPES, ReadFailed, has_mention_scopes
from bot.storage.store import Store

log = logging.getLogger(__name__)

Watched = Mapping[str, Mapping[str, Preferences]]  # team -> person -> settings


@dataclass(frozen=True, slots=True)
class MentionsChoice:
    """What `/hours mentions on|off` (or the Home toggle) did."""

    enabled: bool
    scopes_missing: tuple[str, ...]  # on, but the person has not granted these yet: nothing is answered until then


class MentionsService:
    """The one place that knows whose channel mentions are answered; thread-safe."""

    def __init__(self, store: Store, config: Config, people: PeopleService, *, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.config = config
        self.people = people
        self.clock = clock
        self.refresh_seconds = config.mentions.refresh_seconds
        self._watched: Watched = {}
        self._loaded_at: datetime | None = None
        self._generation = 0  # bumped by every change in this process
        self._loaded_generation = -1
        self._lock = threading.Lock()
        self.group_dms = GroupDMMembers(clock=clock)  # who is in which group DM, learnt once per process
        self._readers: Mapping[str, set[str]] = {}  # team -> who may list a group DM's members (mpim:read)
        people.on_change.append(self.changed)
        store.on_forget.append(self.changed)  # /hours forget, revoked tokens, uninstalls: whatever path they take

    # --- the view ------------------------------------------------------------------------------------------------

    def view(self) -> Watched:
        """Who is watched now. Usually no statement at all: only when stale (a change here, or refresh_seconds
        passed) is it read again, by one thread while the others go on with the current view."""
        loaded = self._loaded_at
        if loaded is not None and self._loaded_generation == self._generation:
            age = (self.clock() - loaded).total_seconds()
            if 0 <= age < self.refresh_seconds:
                return self._watched
        if self._lock.acquire(blocking=loaded is None):
            try:
                self._refresh()
            finally:
                self._lock.release()
        return self._watched

    def _refresh(self) -> None:
        generation = self._generation
        now = self.clock()
        try:
            watched = self.store.mentions.watched(default_enabled=self.config.mentions.enabled)
            self._watched = {team: self.people.get_many(team, users) for team, users in watched.items()}
            self._readers = self.store.mentions.group_dm_readers()
        except ReadFailed as e:
            if self._loaded_at is None:
                raise  # nothing to go on: the event fails (500) and Slack sends it again
            # The database did not answer: the last view serves until the next try, refresh_seconds from now.
            log.warning("mentions: view refresh failed error=%s", type(e).__name__)
        self._loaded_at = now
        self._loaded_generation = generation

    def can_list_members(self, team_id: str, user_id: str | None) -> bool:
        """Whether `user_id`'s token may list a group DM's members (in memory: read with the view)."""
        return user_id is not None and user_id in self._readers.get(team_id, ())

    def changed(self, team_id: str = "", user_id: str = "") -> None:
        """Something that decides the view changed in this process: the next message reads it again."""
        self._generation += 1

    # --- a person's choice ---------------------------------------------------------------------------------------

    def enabled(self, team_id: str, user_id: str) -> bool:
        choice = self.store.mentions.choice(team_id, user_id)
        return self.config.mentions.enabled if choice is None else choice

    def missing_scopes(self, team_id: str, user_id: str) -> tuple[str, ...]:
        granted = self.store.mentions.granted_scopes(team_id, user_id)
        if has_mention_scopes(granted):
            return ()
        return tuple(scope for scope in MENTION_SCOPES if scope not in granted)

    def choose(self, team_id: str, user_id: str, *, enabled: bool) -> MentionsChoice:
        """Turn mentions on or off. On is kept even without the scopes: it takes effect once they are granted."""
        self.store.mentions.choose(team_id, user_id, enabled=enabled, now=self.clock())
        self.changed(team_id, user_id)
        return MentionsChoice(enabled=enabled, scopes_missing=self.missing_scopes(team_id, user_id) if enabled else ())
