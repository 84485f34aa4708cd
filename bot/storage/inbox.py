"""The inbox: every after-hours DM (`after_hours_messages`), from its record before the ack to its recap.

This module is the one writer of that table (forget and purge aside, which delete whole people). `record` is one
transaction: the recipient is still connected (locked against a concurrent `/hours forget`, which then deletes
what was written), the message row (unique per recipient, channel and ts) and, for the first message from a sender in
an off-window, the pending auto-reply (queued through bot/storage/replies.py, in the same transaction). A
redelivered or concurrently delivered event hits the unique keys and changes nothing. The recap store moves due
messages into a recap, reads what it holds and gives them back through the connection-level helpers below, so
that those steps stay in its own transactions. It also keeps `dm_presence`: when a connected person last wrote in
a DM (`wrote`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from bot.domain.autoreply import ReplyWindow
from bot.domain.recap import WaitingMessage
from bot.storage import db, nudges
from bot.storage.batch_writer import BatchWriter
from bot.storage.engine import InsertNew
from bot.storage.replies import QueuedReply, Replies
from bot.storage.tokens import connected_among, still_connected

MESSAGE_KEY = ["team_id", "recipient_id", "channel_id", "ts"]  # a DM is recorded once
# What recording a DM writes (the rest are the defaults: pending, in no recap)
MESSAGE_COLUMNS = (*MESSAGE_KEY, "thread_ts", "sender_id", "received_at", "text", "due_at", "source")


@dataclass(frozen=True, slots=True)
class IncomingRecord:
    team_id: str
    recipient_id: str
    sender_id: str
    channel_id: str
    ts: str
    thread_ts: str
    received_at: datetime
    due_at: datetime
    text: str | None
    window_key: str
    reply: bool
    # The interval the reply answers (bot.domain.autoreply.ReplyWindow); None: from received_at to due_at.
    window_start: datetime | None = None
    window_end: datetime | None = None
    external: bool = False  # the sender is of another organisation
    source: str = "dm"  # "mention" (in a channel) or "mpim" (a group DM): answered ephemerally

    @property
    def window(self) -> ReplyWindow:
        return ReplyWindow(
            key=self.window_key, start=self.window_start or self.received_at, end=self.window_end or self.due_at
        )


_m = db.messages.c


def anything_waiting(
    recipient: sa.ColumnElement, *, team_id: sa.ColumnElement | None = None, channel_id: sa.ColumnElement | None = None
) -> sa.Select:
    """Does a DM in channel `channel_id` still wait for `recipient` (pending, or in a recap not yet ticked off)?

    Each id is a bound parameter (by default "team_id" and "channel_id") or a column of an enclosing statement's
    keys (bot/storage/dm_view.py reads a batch of DMs' views at once)."""
    team_id = sa.bindparam("team_id") if team_id is None else team_id
    channel_id = sa.bindparam("channel_id") if channel_id is None else channel_id
    return (
        sa.select(_m.id)
        .where(_m.team_id == team_id, _m.recipient_id == recipient, _m.channel_id == channel_id,
               sa.or_(_m.state == "pending", _m.state == "recapped"))  # not IN: an expanding IN is rendered per call
        .limit(1)
    )  # fmt: skip


ANYTHING_WAITING = anything_waiting(sa.bindparam("recipient_id"))

# A person's pending messages, for the statements below. On SQLite (no statistics) `state == "pending"` made the
# planner take ix_messages_due (state, due_at) and visit every pending message of every person, once per recap:
# 50,000 recaps visited 50,000 rows each. Compared as an expression it cannot use that index, and the person's
# own rows are found through ix_messages_channel (team, recipient, ...); PostgreSQL, with statistics, chose so.
_PERSONS_PENDING = sa.func.coalesce(_m.state, "") == "pending"
# The recap fan-out runs these once per recap: built once (building them cost about as much as running them).
_ATTACH_DUE = (
    db.messages.update()
    .where(_m.team_id == sa.bindparam("b_team_id"), _m.recipient_id == sa.bindparam("b_user_id"),
           _PERSONS_PENDING, _m.due_at <= sa.bindparam("b_now", type_=db.UTCDateTime()))
    .values(state="recapped", recap_id=sa.bindparam("b_recap_id"))
)  # fmt: skip
_HELD = (
    sa.select(_m.channel_id, _m.sender_id, _m.ts, _m.thread_ts, _m.received_at, _m.text, _m.state, _m.source)
    .where(_m.recap_id == sa.bindparam("recap_id"), sa.or_(_m.state == "recapped", _m.state == "done"))
    .order_by(_m.received_at)
)
_HELD_MANY = (
    sa.select(_m.recap_id, _m.channel_id, _m.sender_id, _m.ts, _m.thread_ts, _m.received_at, _m.text, _m.state,
              _m.source)
    .where(_m.recap_id.in_(sa.bindparam("recap_ids", expanding=True)),
           sa.or_(_m.state == "recapped", _m.state == "done"))
    .order_by(_m.received_at)
)  # fmt: skip


_ANY_DUE = (
    sa.select(_m.id)
    .where(_m.team_id == sa.bindparam("team_id"), _m.recipient_id == sa.bindparam("user_id"),
           _PERSONS_PENDING, _m.due_at <= sa.bindparam("now", type_=db.UTCDateTime()))
    .limit(1)
)  # fmt: skip


def any_due(conn: sa.Connection, *, team_id: str, user_id: str, now: datetime) -> bool:
    """Whether the person has waiting messages due by `now` (not yet in a recap)."""
    return conn.execute(_ANY_DUE, {"team_id": team_id, "user_id": user_id, "now": now}).first() is not None


def attach_due(conn: sa.Connection, *, team_id: str, user_id: str, recap_id: int, now: datetime) -> None:
    """Move the person's due waiting messages into recap `recap_id` (so a message is in exactly one recap)."""
    conn.execute(_ATTACH_DUE, {"b_team_id": team_id, "b_user_id": user_id, "b_now": now, "b_recap_id": recap_id})


def held(conn: sa.Connection, recap_id: int) -> list[WaitingMessage]:
    """What recap `recap_id` holds (ticked off or not), oldest first."""
    return [_waiting(row) for row in conn.execute(_HELD, {"recap_id": recap_id}).all()]


def attach_due_many(conn: sa.Connection, recaps: Collection[tuple[str, str, int]], *, now: datetime) -> None:
    """attach_due for many (team, person, recap id) at once (one statement, run for each)."""
    if recaps:
        conn.execute(_ATTACH_DUE, [{"b_team_id": team_id, "b_user_id": user_id, "b_now": now, "b_recap_id": recap_id}
                                   for team_id, user_id, recap_id in recaps])  # fmt: skip


def held_many(conn: sa.Connection, recap_ids: Collection[int]) -> dict[int, list[WaitingMessage]]:
    """What each recap holds (ticked off or not), oldest first, in one read; every id is in the answer."""
    found: dict[int, list[WaitingMessage]] = {recap_id: [] for recap_id in recap_ids}
    if found:
        for row in conn.execute(_HELD_MANY, {"recap_ids": list(found)}).all():
            found[row.recap_id].append(_waiting(row))
    return found


def release(conn: sa.Connection, recap_id: int, *, until: datetime) -> None:
    """The recap was given up: its unanswered messages wait again, due at `until` (they go in the next recap)."""
    conn.execute(
        db.messages.update()
        .where(_m.recap_id == recap_id, _m.state == "recapped")
        .values(state="pending", recap_id=None, due_at=until)
    )


def tick_off(conn: sa.Connection, recap_id: int, channel_id: str) -> None:
    """The person marked one conversation of a recap done."""
    conn.execute(
        db.messages.update()
        .where(_m.recap_id == recap_id, _m.channel_id == channel_id, _m.state == "recapped")
        .values(state="done")
    )


class Inbox:
    def __init__(self, engine: sa.Engine, replies: Replies) -> None:
        self.engine = engine
        self.replies = replies
        # Built once per engine: on the ack path, constructing statements cost more than running them.
        self._insert_message = db.insert_ignore(engine, db.messages, MESSAGE_KEY)
        self._insert_presence = db.insert_ignore(engine, db.dm_presence, ["team_id", "user_id", "channel_id"])
        self._insert_new_messages = InsertNew(engine, db.messages, MESSAGE_KEY, list(MESSAGE_COLUMNS), MESSAGE_KEY)
        self._records: BatchWriter[tuple[IncomingRecord, datetime], str] = BatchWriter(
            self._record_many, self._record_one
        )

    def record(self, rec: IncomingRecord, *, now: datetime) -> str:
        """Store an after-hours DM: "duplicate", "replied" (a reply is queued), "throttled", "recorded", or
        "not_connected" (the recipient was forgotten since the listener read their token: nothing is written).

        Concurrent calls are committed together (bot/storage/batch_writer.py); each returns once its own DM is."""
        return self._records.submit((rec, now))

    def _record_one(self, item: tuple[IncomingRecord, datetime]) -> str:
        [outcome] = self._record_many([item])
        return outcome

    def _record_many(self, items: list[tuple[IncomingRecord, datetime]]) -> list[str]:
        """Record DMs in one transaction, with one statement per step for all of them (who is still connected,
        the messages, the replies' earlier rows, the replies), each outcome as if it had been recorded alone."""
        # In one order across processes: PostgreSQL's row locks (connected_among) are then taken without deadlock.
        order = sorted(range(len(items)), key=lambda n: (items[n][0].team_id, items[n][0].recipient_id))
        outcomes = ["not_connected"] * len(items)
        with db.writing(self.engine) as conn:
            connected = _connected(conn, [rec for rec, _ in items])
            fresh = [n for n in order if (items[n][0].team_id, items[n][0].recipient_id) in connected]
            inserted = self._insert_messages(conn, [items[n][0] for n in fresh])
            wanted: list[int] = []
            for n in fresh:
                rec = items[n][0]
                key = (rec.team_id, rec.recipient_id, rec.channel_id, rec.ts)
                if key not in inserted:
                    outcomes[n] = "duplicate"
                    continue
                inserted.discard(key)  # a second copy of the same DM in this batch is a duplicate
                outcomes[n] = "recorded"
                if rec.reply:
                    wanted.append(n)
            queued = self.replies.queue_many(conn, [_reply_for(*items[n]) for n in wanted])
            for n, ok in zip(wanted, queued, strict=True):
                outcomes[n] = "replied" if ok else "throttled"
        return outcomes

    def _insert_messages(self, conn: sa.Connection, recs: list[IncomingRecord]) -> set[tuple]:
        """Insert what is not there yet; the keys of the rows this inserted."""
        if not recs:
            return set()
        rows = [{"team_id": rec.team_id, "recipient_id": rec.recipient_id, "channel_id": rec.channel_id, "ts": rec.ts,
                 "thread_ts": rec.thread_ts, "sender_id": rec.sender_id, "received_at": rec.received_at,
                 "text": rec.text, "due_at": rec.due_at, "source": rec.source} for rec in recs]  # fmt: skip
        # In key order: two processes inserting the same keys in opposite orders would wait for each other.
        rows.sort(key=lambda row: tuple(row[k] for k in MESSAGE_KEY))
        return {tuple(row) for row in self._insert_new_messages(conn, rows)}

    def wrote(self, team_id: str, user_id: str, channel_id: str, *, at: datetime) -> None:
        """The connected person wrote in this DM at `at`: for a while they count as present there. Nothing is
        written for someone forgotten meanwhile (another process's view may still list them)."""
        p = db.dm_presence.c
        where = (p.team_id == team_id, p.user_id == user_id, p.channel_id == channel_id)
        with db.writing(self.engine) as conn:
            if not still_connected(conn, team_id, user_id):
                return
            # Only forward: a redelivered older message must not shorten their presence.
            moved = conn.execute(db.dm_presence.update().where(*where, p.wrote_at < at).values(wrote_at=at)).rowcount
            if not moved:
                conn.execute(self._insert_presence, {"team_id": team_id, "user_id": user_id, "channel_id": channel_id,
                                                     "wrote_at": at})  # fmt: skip
            nudges.answered(conn, team_id=team_id, user_id=user_id, channel_id=channel_id, at=at)

    def mark_answered(self, team_id: str, recipient_id: str, channel_id: str) -> int:
        """The recipient wrote in this DM: what waited for them there no longer needs a recap.

        That includes messages already in a recap not sent yet (waiting for a retry), so the retry leaves them out.
        """
        r = db.recaps.c
        unsent = sa.select(r.id).where(r.state == "pending")
        with db.reading(self.engine) as conn:
            # Most messages are not answers to anything waiting: a read spares them a write transaction.
            where = {"team_id": team_id, "recipient_id": recipient_id, "channel_id": channel_id}
            if conn.execute(ANYTHING_WAITING, where).first() is None:
                return 0
        with db.writing(self.engine) as conn:
            return conn.execute(
                db.messages.update()
                .where(
                    _m.team_id == team_id, _m.recipient_id == recipient_id, _m.channel_id == channel_id,
                    sa.or_(_m.state == "pending", sa.and_(_m.state == "recapped", _m.recap_id.in_(unsent))),
                )
                .values(state="answered")
            ).rowcount  # fmt: skip

    def drop_deleted(self, team_id: str, channel_id: str, ts: str) -> int:
        """The sender deleted the message: out of the recap, and its reply is not sent if no one has claimed it yet.

        The unclaimed reply row goes away entirely, so the sender's next message in that window still gets one.
        """
        with db.writing(self.engine) as conn:
            self.replies.drop_unclaimed(conn, team_id=team_id, channel_id=channel_id, message_ts=ts)
            return conn.execute(
                db.messages.update()
                .where(_m.team_id == team_id, _m.channel_id == channel_id, _m.ts == ts, _m.state == "pending")
                .values(state="deleted", text=None)
            ).rowcount

    def due_people(
        self, *, now: datetime, limit: int = 1000, skip_teams: Collection[str] = ()
    ) -> list[tuple[str, str, datetime]]:
        """(team, person, earliest due) for everyone with waiting messages whose recap is due, except in
        `skip_teams` (workspaces the recap sender is holding back)."""
        where = [_m.state == "pending", _m.due_at <= now]
        if skip_teams:
            where.append(_m.team_id.not_in(list(skip_teams)))
        query = (
            sa.select(_m.team_id, _m.recipient_id, sa.func.min(_m.due_at))
            .where(*where)
            .group_by(_m.team_id, _m.recipient_id)
            .order_by(sa.func.min(_m.due_at))
            .limit(limit)
        )
        with db.reading(self.engine) as conn:
            return [(team, user, due) for team, user, due in conn.execute(query).all()]

    def in_recap(self, recap_id: int) -> list[WaitingMessage]:
        with db.reading(self.engine) as conn:
            return held(conn, recap_id)

    def reschedule(self, team_id: str, user_id: str, due_for: Callable[[datetime], datetime]) -> int:
        """Hours or days off changed: recompute `due_at` of the person's waiting messages with `due_for(received)`."""
        changed = 0
        with db.writing(self.engine) as conn:
            rows = conn.execute(
                sa.select(_m.id, _m.received_at, _m.due_at).where(
                    _m.team_id == team_id, _m.recipient_id == user_id, _m.state == "pending"
                )
            ).all()
            for row in rows:
                due = due_for(row.received_at)
                if due != row.due_at:
                    conn.execute(db.messages.update().where(_m.id == row.id).values(due_at=due))
                    changed += 1
        return changed


def _connected(conn: sa.Connection, recs: list[IncomingRecord]) -> set[tuple[str, str]]:
    """(team, recipient) of the recipients still connected, locked until the transaction ends (connected_among)."""
    found: set[tuple[str, str]] = set()
    for team_id in sorted({rec.team_id for rec in recs}):
        recipients = {rec.recipient_id for rec in recs if rec.team_id == team_id}
        found |= {(team_id, user_id) for user_id in connected_among(conn, team_id, recipients)}
    return found


def _reply_for(rec: IncomingRecord, now: datetime) -> QueuedReply:
    return QueuedReply(
        queued_at=now,
        team_id=rec.team_id, recipient_id=rec.recipient_id, sender_id=rec.sender_id, window=rec.window,
        channel_id=rec.channel_id, message_ts=rec.ts, thread_ts=rec.thread_ts, received_at=rec.received_at,
        external=rec.external, ephemeral=rec.source != "dm",
    )  # fmt: skip


def _waiting(row: sa.Row) -> WaitingMessage:
    return WaitingMessage(
        channel_id=row.channel_id,
        sender_id=row.sender_id,
        ts=row.ts,
        thread_ts=row.thread_ts,
        received_at=row.received_at,
        text=row.text,
        done=row.state == "done",
        source=row.source,
    )
