"""The deferred_dms table: DMs the connected person wrote whose other member Slack would not name before the ack.

Kept (once per team, channel and ts) until a worker learns that member and records the DM, then deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from bot.storage import schema
from bot.storage.engine import insert_ignore, reading, writing

_c = schema.deferred_dms.c


@dataclass(frozen=True)
class DeferredDm:
    team_id: str
    channel_id: str
    ts: str
    thread_ts: str | None
    writer_id: str
    text: str | None
    received_at: datetime
    attempts: int


class DeferredDms:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._insert = insert_ignore(engine, schema.deferred_dms, ["team_id", "channel_id", "ts"])

    def defer(
        self, team_id: str, channel_id: str, ts: str, *, thread_ts: str | None, writer_id: str, text: str | None,
        received_at: datetime, next_attempt_at: datetime,
    ) -> None:  # fmt: skip
        """Keep the DM for later; a redelivery of the same event keeps the row it already has."""
        with writing(self.engine) as conn:
            row = dict(
                team_id=team_id, channel_id=channel_id, ts=ts, thread_ts=thread_ts, writer_id=writer_id,
                text=text, received_at=received_at, attempts=0, next_attempt_at=next_attempt_at,
            )  # fmt: skip
            conn.execute(self._insert.values(**row))

    def due(self, *, now: datetime, limit: int = 50) -> list[DeferredDm]:
        with reading(self.engine) as conn:
            rows = conn.execute(
                sa.select(_c.team_id, _c.channel_id, _c.ts, _c.thread_ts, _c.writer_id, _c.text, _c.received_at,
                          _c.attempts)
                .where(_c.next_attempt_at <= now)
                .order_by(_c.next_attempt_at)
                .limit(limit)
            ).all()  # fmt: skip
        return [DeferredDm(**row._mapping) for row in rows]

    def reschedule(self, dm: DeferredDm, *, at: datetime) -> None:
        with writing(self.engine) as conn:
            conn.execute(
                schema.deferred_dms.update()
                .where(_c.team_id == dm.team_id, _c.channel_id == dm.channel_id, _c.ts == dm.ts)
                .values(attempts=_c.attempts + 1, next_attempt_at=at)
            )

    def resolved(self, dm: DeferredDm) -> None:
        with writing(self.engine) as conn:
            conn.execute(
                schema.deferred_dms.delete().where(
                    _c.team_id == dm.team_id, _c.channel_id == dm.channel_id, _c.ts == dm.ts
                )
            )
