"""The message listener's one read before the ack: one statement composed from the owners' statements.

It asks four tables at once (each statement costs more in SQLAlchemy than in the database, and it runs before
every ack): does anything wait for `waiting_for` in this channel (the inbox's statement), what is `user_id`'s token
(tokens' statement, decrypted by the token store), whether `excepted` is on `user_id`'s list of people who never
get an auto-reply, when `user_id` last wrote in this channel (dm_presence), and their settings row (a left join
from the key's row: always one row per key).

Concurrent requests' views are read together (`DmViews`): one statement over a row per key (`dm_keys`), each
row as the statement over that one key would read it.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from bot.domain.preferences import PersonRow
from bot.storage import schema
from bot.storage.batch_writer import BatchWriter
from bot.storage.engine import reading
from bot.storage.inbox import anything_waiting
from bot.storage.people import person_row
from bot.storage.tokens import TokenStore, latest_user_token

MAX_BATCH = 64  # keys per statement: a statement is built (and compiled) once per batch size up to this


@dataclass(frozen=True, slots=True)
class DmView:
    """What the message listener needs to know about one DM, read in one statement."""

    recipient_token: str | None  # None: the recipient has not connected (or was not asked about)
    recipient: PersonRow | None  # their settings row; None for defaults
    sender_has_waiting: bool  # DMs wait for the sender (as a recipient) in this channel: this one answers them
    sender_excepted: bool = False  # the recipient listed the sender as someone who never gets an auto-reply
    recipient_wrote_at: datetime | None = None  # when the recipient last wrote in this DM (dm_presence)


@dataclass(frozen=True, slots=True)
class DmKey:
    """What one DM asks about (Store.dm_view's arguments). An id of None asks about nothing: it reads as absent."""

    team_id: str
    channel_id: str
    recipient_id: str | None
    sender_id: str | None  # asks whether DMs wait for them in this channel
    excepted_sender: str | None = None  # asks whether the recipient listed them as never getting an auto-reply


# The keys' columns, as named in the statement (a row per DM, `n` its place in the batch).
_KEY_COLUMNS = ("team_id", "channel_id", "waiting_for", "user_id", "excepted")


@functools.lru_cache(maxsize=MAX_BATCH)
def _dm_views_query(n: int) -> sa.Select:
    """The views of `n` DMs in one statement: one row per key, in key order. Built once per `n` (SQLAlchemy then
    finds its compiled form by the statement's memoized cache key instead of traversing it on every call)."""
    # A UNION ALL of one-row SELECTs, not sa.values(): SQLAlchemy gives a VALUES construct no cache key, and then
    # compiled the statement again on every call (1.8 ms for one key, against 0.26 ms for the cached statement).
    # Typed parameters: on PostgreSQL psycopg then casts them (`::VARCHAR`), so each column has a type.
    rows = [
        sa.select(sa.literal_column(str(i), sa.Integer).label("n"),
                  *(sa.bindparam(f"{c}_{i}", type_=sa.String).label(c) for c in _KEY_COLUMNS))
        for i in range(n)
    ]  # fmt: skip
    keys = (rows[0] if n == 1 else sa.union_all(*rows)).cte("dm_keys")
    k = keys.c
    # Scalar subqueries over the keys' columns, correlated with the one row of each key.
    waiting = anything_waiting(k.waiting_for, team_id=k.team_id, channel_id=k.channel_id).scalar_subquery()
    token = latest_user_token(k.team_id, k.user_id).scalar_subquery()
    e = schema.reply_exceptions.c
    excepted = (
        sa.select(e.except_user_id)
        .where(e.team_id == k.team_id, e.user_id == k.user_id, e.except_user_id == k.excepted)
        .scalar_subquery()
    )
    d = schema.dm_presence.c
    wrote = (
        sa.select(d.wrote_at)
        .where(d.team_id == k.team_id, d.user_id == k.user_id, d.channel_id == k.channel_id)
        .scalar_subquery()
    )
    p = schema.people.c
    return (
        sa.select(
            k.n.label("dm_view_n"),
            waiting.label("dm_view_waiting"),
            token.label("dm_view_token"),
            excepted.label("dm_view_excepted"),
            wrote.label("dm_view_wrote_at"),
            schema.people,
        )
        .select_from(keys.outerjoin(schema.people, sa.and_(p.team_id == k.team_id, p.user_id == k.user_id)))
        .order_by(k.n)
    )


def read_dm_views(engine: sa.Engine, tokens: TokenStore, keys: Sequence[DmKey]) -> list[DmView]:
    """The view of each of `keys`, in order, in one statement: each as `read_dm_view` would read it alone."""
    if not keys:
        return []
    where: dict[str, str | None] = {"client_id": tokens.client_id}
    for i, key in enumerate(keys):
        where[f"team_id_{i}"] = key.team_id
        where[f"channel_id_{i}"] = key.channel_id
        where[f"waiting_for_{i}"] = key.sender_id
        where[f"user_id_{i}"] = key.recipient_id
        where[f"excepted_{i}"] = key.excepted_sender
    with reading(engine) as conn:
        rows = conn.execute(_dm_views_query(len(keys)), where).mappings().all()
    assert [row["dm_view_n"] for row in rows] == list(range(len(keys)))  # one row per key: the left join
    # A None id binds as NULL, and `= NULL` matches nothing: what was not asked about reads as absent.
    return [
        DmView(
            recipient_token=tokens.decrypt(row["dm_view_token"]),
            recipient=person_row(row) if row["user_id"] is not None else None,
            sender_has_waiting=row["dm_view_waiting"] is not None,
            sender_excepted=row["dm_view_excepted"] is not None,
            recipient_wrote_at=_utc(row["dm_view_wrote_at"]),
        )
        for row in rows
    ]


def read_dm_view(
    engine: sa.Engine, tokens: TokenStore, team_id: str, channel_id: str, *, recipient_id: str | None,
    sender_id: str | None, excepted_sender: str | None = None,
) -> DmView:  # fmt: skip
    """One DM's view, read alone."""
    [view] = read_dm_views(engine, tokens, [DmKey(team_id, channel_id, recipient_id, sender_id, excepted_sender)])
    return view


class DmViews:
    """The views of concurrent requests' DMs, read together: one statement (and one connection) per batch.

    Before every ack each DM reads its view; read alone, SQLAlchemy's per-statement work and the connection's
    checkout (on PostgreSQL a pre-ping round trip too) were most of the read's cost. Concurrent callers queue while
    a batch is read, and one of them reads theirs next (bot/storage/batch_writer.py): each caller gets its own
    view, as if read alone, from a read that began after it asked (what was committed before is seen); a batch
    that fails is read again key by key, so one bad key fails only its caller.
    """

    def __init__(self, engine: sa.Engine, tokens: TokenStore) -> None:
        self._batches: BatchWriter[DmKey, DmView] = BatchWriter(
            functools.partial(read_dm_views, engine, tokens),
            lambda key: read_dm_views(engine, tokens, [key])[0],
            max_batch=MAX_BATCH,
        )

    @property
    def batches(self) -> BatchWriter[DmKey, DmView]:
        """The batcher (tests use its `wait_queued` to make a batch)."""
        return self._batches

    def read(self, key: DmKey) -> DmView:
        return self._batches.submit(key)


def _utc(value: datetime | str | None) -> datetime | None:
    """A UTCDateTime read through a labelled scalar subquery (SQLite hands back its text form there)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)
