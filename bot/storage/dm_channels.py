"""The dm_channels table: the conversations.info cache, the two members of a 1:1 DM (a DM's members never change)."""

from __future__ import annotations

import sqlalchemy as sa

from bot.storage import schema
from bot.storage.engine import insert_ignore, reading, writing

_c = schema.dm_channels.c


class DmChannels:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._insert = insert_ignore(engine, schema.dm_channels, ["team_id", "channel_id"])

    def members(self, team_id: str, channel_id: str) -> tuple[str, str] | None:
        with reading(self.engine) as conn:
            row = conn.execute(
                sa.select(_c.user_a, _c.user_b).where(_c.team_id == team_id, _c.channel_id == channel_id)
            ).first()
        return (row.user_a, row.user_b) if row else None

    def remember(self, team_id: str, channel_id: str, user_a: str, user_b: str) -> None:
        with writing(self.engine) as conn:
            conn.execute(self._insert.values(team_id=team_id, channel_id=channel_id, user_a=user_a, user_b=user_b))
