"""Who is in a group DM (issue 20), kept in memory: Slack sends a group-DM message once, through ONE person's token
(`authorizations[0]`), so the other connected members it concerns are known only from its membership.

A group DM's members never change (adding someone makes a new one), so a membership once learnt is kept for the
life of the process; a lookup Slack refused is tried again after `RETRY_AFTER`, and until then only the member whose
token saw the message is known. The lookup itself (conversations.members, one page: a group DM has at most nine
members) is bot/slack/listeners/channel_messages.py's.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta

RETRY_AFTER = timedelta(minutes=15)
MAX_GROUPS = 50_000  # memberships kept per process: about 10 MB at most, then the oldest are forgotten


class GroupDMMembers:
    def __init__(self, *, clock: Callable[[], datetime]) -> None:
        self.clock = clock
        self._members: dict[tuple[str, str], frozenset[str]] = {}
        self._refused: dict[tuple[str, str], datetime] = {}
        self._lock = threading.Lock()

    def known(self, team_id: str, channel_id: str) -> frozenset[str] | None:
        """The members, when learnt; else None (a refused lookup counts as learnt until it may be tried again)."""
        members = self._members.get((team_id, channel_id))
        if members is not None:
            return members
        refused = self._refused.get((team_id, channel_id))
        if refused is not None and self.clock() - refused < RETRY_AFTER:
            return frozenset()
        return None

    def learn(self, team_id: str, channel_id: str, members: frozenset[str]) -> None:
        with self._lock:
            if len(self._members) >= MAX_GROUPS:
                self._members.pop(next(iter(self._members)))
            self._members[(team_id, channel_id)] = members
            self._refused.pop((team_id, channel_id), None)

    def refused(self, team_id: str, channel_id: str) -> None:
        with self._lock:
            if len(self._refused) >= MAX_GROUPS:
                self._refused.pop(next(iter(self._refused)))
            self._refused[(team_id, channel_id)] = self.clock()
