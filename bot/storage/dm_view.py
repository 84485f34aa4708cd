"""The message listener's one read before the ack: one statement composed from the owners' statements.

It asks four tables at once (each statement costs more in SQLAlchemy than in the database, and it runs before
every ack): does anything wait for `waiting_for` in this channel (the inbox's statement), what is `user_id`'s token
(tokens' statement, decrypted by the token store), whether `excepted` is on `user_id`'s list of people who never
get an auto-reply, when `user_id` last wrote in this channel (dm_presence), and their settings row (a left join
from one row: always one row).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from bot.domain.preferences import PersonRow
from bot.storage import schema
from bot.storage.engine import reading
from bot.storage.inbox import anything_waiting
from bot.storage.people import person_row
from bot.storage.tokens import TokenStore, user_token_query


@dataclass(frozen=True, slots=True)
class DmView:
    """What the message listener needs to know about one DM, read in one statement."""

    recipient_token: str | None  # None: the recipient has not connected (or was not asked about)
    recipient: PersonRow | None  # their settings row; None for defaults
    sender_has_waiting: bool  # DMs wait for the sender (as a recipient) in this channel: this one answers them
    sender_excepted: bool = False  # the recipient listed the sender as someone who never gets an auto-reply
    recipient_wrote_at: datetime | None = None  # when the recipient last wrote in this DM (dm_presence)


def _dm_view_query() -> sa.Select:
    waiting = anything_waiting(sa.bindparam("waiting_for")).scalar_subquery()
    token = user_token_query(True).scalar_subquery()
    e = schema.reply_exceptions.c
    excepted = (
        sa.select(e.except_user_id)
        .where(e.team_id == sa.bindparam("team_id"), e.user_id == sa.bindparam("user_id"),
               e.except_user_id == sa.bindparam("excepted"))
        .scalar_subquery()
    )  # fmt: skip
    d = schema.dm_presence.c
    wrote = (
        sa.select(d.wrote_at)
        .where(d.team_id == sa.bindparam("team_id"), d.user_id == sa.bindparam("user_id"),
               d.channel_id == sa.bindparam("channel_id"))
        .scalar_subquery()
    )  # fmt: skip
    p = schema.people.c
    one = sa.select(sa.literal(1).label("one")).subquery("one")
    return sa.select(
        waiting.label("dm_view_waiting"),
        token.label("dm_view_token"),
        excepted.label("dm_view_excepted"),
        wrote.label("dm_view_wrote_at"),
        schema.people,
    ).select_from(
        one.outerjoin(
            schema.people, sa.and_(p.team_id == sa.bindparam("team_id"), p.user_id == sa.bindparam("user_id"))
        )
    )


_DM_VIEW_QUERY = _dm_view_query()


def read_dm_view(
    engine: sa.Engine, tokens: TokenStore, team_id: str, channel_id: str, *, recipient_id: str | None,
    sender_id: str | None, excepted_sender: str | None = None,
) -> DmView:  # fmt: skip
    where = {"team_id": team_id, "channel_id": channel_id, "client_id": tokens.client_id,
             "waiting_for": sender_id, "user_id": recipient_id, "excepted": excepted_sender}  # fmt: skip
    with reading(engine) as conn:
        row = conn.execute(_DM_VIEW_QUERY, where).mappings().one()
    # A None id binds as NULL, and `= NULL` matches nothing: what was not asked about reads as absent.
    token, waiting = row["dm_view_token"], row["dm_view_waiting"] is not None
    person = person_row(row) if row["user_id"] is not None else None
    return DmView(
        recipient_token=tokens.decrypt(token), recipient=person, sender_has_waiting=waiting,
        sender_excepted=row["dm_view_excepted"] is not None,
        recipient_wrote_at=_utc(row["dm_view_wrote_at"]),
    )  # fmt: skip


def _utc(value: datetime | str | None) -> datetime | None:
    """A UTCDateTime read through a labelled scalar subquery (SQLite hands back its text form there)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)
