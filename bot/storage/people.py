"""The people table: each person's settings row (zone, hours, message, days off, pause), read and written here."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from bot.domain.preferences import PersonRow
from bot.storage import schema
from bot.storage.engine import insert_ignore, reading, writing
from bot.storage.tokens import still_connected

PERSON_FIELDS = ("tz", "hours", "message", "reply_within_s", "days_off", "paused", "holidays", "external_message",
                 "nudge_before_s")  # fmt: skip

_p = schema.people.c
_PERSON_QUERY = sa.select(schema.people).where(
    _p.team_id == sa.bindparam("team_id"), _p.user_id == sa.bindparam("user_id")
)
_PEOPLE_WITH_IDS = sa.select(schema.people).where(
    _p.team_id == sa.bindparam("team_id"), _p.user_id.in_(sa.bindparam("user_ids", expanding=True))
)


class People:
    """People's settings rows. Thread-safe (a connection per call)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def get(self, team_id: str, user_id: str) -> PersonRow | None:
        with reading(self.engine) as conn:
            row = conn.execute(_PERSON_QUERY, {"team_id": team_id, "user_id": user_id}).mappings().first()
        return person_row(row) if row else None

    def with_ids(self, team_id: str, user_ids: Iterable[str]) -> dict[str, PersonRow]:
        with reading(self.engine) as conn:
            rows = conn.execute(_PEOPLE_WITH_IDS, {"team_id": team_id, "user_ids": list(user_ids)})
            return {r["user_id"]: person_row(r) for r in rows.mappings()}

    def save(self, team_id: str, user_id: str, *, now: datetime, **fields: Any) -> PersonRow:
        """Create or update a person's settings; only the given fields change."""
        unknown = set(fields) - set(PERSON_FIELDS)
        if unknown:
            raise TypeError(f"unknown person fields: {sorted(unknown)}")
        where = (_p.team_id == team_id, _p.user_id == user_id)
        with writing(self.engine) as conn:
            exists = conn.execute(sa.select(_p.user_id).where(*where)).first()
            if exists:
                conn.execute(schema.people.update().where(*where).values(updated_at=now, **fields))
            else:
                conn.execute(
                    insert_ignore(self.engine, schema.people, ["team_id", "user_id"]).values(
                        team_id=team_id, user_id=user_id, updated_at=now, **fields
                    )
                )
                if fields:  # lost a creation race: apply the change on the row the other writer made
                    conn.execute(schema.people.update().where(*where).values(updated_at=now, **fields))
            row = conn.execute(sa.select(schema.people).where(*where)).mappings().one()
        return person_row(row)

    def fill_tz(
        self, team_id: str, user_id: str, tz: str | None, *, now: datetime, create: bool
    ) -> tuple[PersonRow | None, bool]:
        """Create the person's row with `tz` (`create`), or give their existing row `tz` only while it has none.

        A conditional write, not save's plain update: a zone set between the caller's read and this write
        (a concurrent `/hours tz`, another process learning the profile zone) is never replaced, and a row deleted
        meanwhile (`/hours forget`) is not brought back unless the caller is creating it. Returns the row as it now
        is (None: gone) and whether this call changed it.
        """
        where = (_p.team_id == team_id, _p.user_id == user_id)
        changed = False
        with writing(self.engine) as conn:
            if not still_connected(conn, team_id, user_id):
                return None, False  # `/hours forget` (or a revoke) won while Slack was being asked
            if create:
                insert = insert_ignore(self.engine, schema.people, ["team_id", "user_id"])
                changed = (
                    conn.execute(insert.values(team_id=team_id, user_id=user_id, tz=tz, updated_at=now)).rowcount == 1
                )
            if not changed and tz is not None:
                fill = schema.people.update().where(*where, _p.tz.is_(None)).values(tz=tz, updated_at=now)
                changed = conn.execute(fill).rowcount == 1
            row = conn.execute(sa.select(schema.people).where(*where)).mappings().first()
        return (person_row(row) if row is not None else None), changed


def person_row(row: sa.RowMapping | Mapping[str, Any]) -> PersonRow:
    """A people row (or a row of a statement selecting every people column) as the domain's value."""
    return PersonRow(
        team_id=row["team_id"],
        user_id=row["user_id"],
        tz=row["tz"],
        hours=row["hours"],
        message=row["message"],
        reply_within_s=row["reply_within_s"],
        days_off=row["days_off"] or "",
        paused=bool(row["paused"]),
        holidays=row["holidays"],
        external_message=row["external_message"],
        nudge_before_s=row.get("nudge_before_s"),
    )
