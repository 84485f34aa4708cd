"""The reply_exceptions table: the people one person never auto-replies to (their DMs still go in the recap).

The listener reads it inside Store.dm_view's one statement (before the ack); this module owns the writes and the
list as people see it. bot/storage/forget.py deletes its rows with the rest of a person's data.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from bot.storage import schema
from bot.storage.engine import insert_ignore, reading, writing


class ReplyExceptions:
    """Read and change exception lists; one short transaction per change."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def listed(self, team_id: str, user_id: str) -> list[str]:
        """The people `user_id` never auto-replies to, sorted."""
        e = schema.reply_exceptions.c
        with reading(self.engine) as conn:
            rows = conn.execute(
                sa.select(e.except_user_id).where(e.team_id == team_id, e.user_id == user_id).order_by(e.except_user_id)
            )
            return [r[0] for r in rows]

    def pairs(self, team_id: str, user_ids: Iterable[str], senders: Iterable[str]) -> set[tuple[str, str]]:
        """(person, excepted sender) among `user_ids` x `senders`, in one read (the reply sender's batch check)."""
        values = {"team_id": team_id, "user_ids": list(set(user_ids)), "senders": list(set(senders))}
        with reading(self.engine) as conn:
            return {(r[0], r[1]) for r in conn.execute(_PAIRS, values)}

    def change(
        self,
        team_id: str,
        user_id: str,
        *,
        add: Iterable[str] = (),
        remove: Iterable[str] = (),
        replace: Iterable[str] | None = None,
        limit: int,
    ) -> tuple[list[str] | None, list[str]]:
        """Change the list in one transaction: everything in `replace` (if given), else the current list plus `add`
        minus `remove`. Nothing is written when the result would hold more than `limit`: then (None, current)."""
        e = schema.reply_exceptions.c
        where = (e.team_id == team_id, e.user_id == user_id)
        with writing(self.engine) as conn:
            current = {r[0] for r in conn.execute(sa.select(e.except_user_id).where(*where))}
            wanted = set(replace) if replace is not None else (current | set(add)) - set(remove)
            if len(wanted) > limit and len(wanted) > len(current):
                return None, sorted(current)
            if current - wanted:
                conn.execute(schema.reply_exceptions.delete().where(*where, e.except_user_id.in_(current - wanted)))
            if wanted - current:
                # ON CONFLICT DO NOTHING: a concurrent change adding the same person (a double click) is no error.
                conn.execute(
                    insert_ignore(self.engine, schema.reply_exceptions, ["team_id", "user_id", "except_user_id"]),
                    [{"team_id": team_id, "user_id": user_id, "except_user_id": u} for u in sorted(wanted - current)],
                )
        return sorted(wanted), sorted(current)


_e = schema.reply_exceptions.c
# Built once: it runs for every batch of auto-replies (building a select costs about as much as running it).
_PAIRS = sa.select(_e.user_id, _e.except_user_id).where(
    _e.team_id == sa.bindparam("team_id"),
    _e.user_id.in_(sa.bindparam("user_ids", expanding=True)),
    _e.except_user_id.in_(sa.bindparam("senders", expanding=True)),
)
