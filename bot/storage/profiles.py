"""The profiles table: the users.info cache (a person's profile zone), shared by every process.

bot/slack/profiles.py asks Slack and decides when; this module reads and writes the rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from bot.storage import schema
from bot.storage.engine import reading, upsert, writing
from bot.storage.tokens import still_connected

_c = schema.profiles.c
_CACHED = sa.select(_c.tz, _c.fetched_at).where(
    _c.team_id == sa.bindparam("team_id"), _c.user_id == sa.bindparam("user_id")
)


@dataclass(frozen=True, slots=True)
class CachedProfile:
    tz: str | None
    fetched_at: datetime


class Profiles:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def cached(self, team_id: str, user_id: str) -> CachedProfile | None:
        with reading(self.engine) as conn:
            row = conn.execute(_CACHED, {"team_id": team_id, "user_id": user_id}).first()
        return CachedProfile(tz=row.tz, fetched_at=row.fetched_at) if row is not None else None

    def remember(self, team_id: str, user_id: str, *, tz: str | None, is_bot: bool, now: datetime) -> bool:
        """Keep what users.info said; False (nothing kept) when the person was forgotten while Slack was asked."""
        with writing(self.engine) as conn:
            if not still_connected(conn, team_id, user_id):
                return False
            conn.execute(
                upsert(
                    self.engine,
                    schema.profiles,
                    ["team_id", "user_id"],
                    {"team_id": team_id, "user_id": user_id, "tz": tz, "is_bot": is_bot, "fetched_at": now},
                )
            )
        return True
