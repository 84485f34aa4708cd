"""The auto-reply outbox (`auto_replies`): queued with its DM, claimed with a lease, re-checked, settled once.

A reply row is unique per recipient, sender and off-window key (RFC 3834's once-per-sender rule, kept by the
database), and carries the interval it answered: a DM whose window overlaps a replied one from the same sender is
not answered again, even when a change of hours, zone or days off moved the key. A reply that was never posted
because its DM was deleted does not count: the sender's next DM takes its place; nor does a mention's ephemeral
reply Slack refused because the person is not in that channel (the event came through someone else's token): that
mention is dropped from their recap with the refusal (`settle`). It is queued by the inbox's
`record`, in the DM's own transaction; the delivery engine claims due rows
(SKIP LOCKED on PostgreSQL), re-checks a claim right before posting (`renew`), and settles outcomes in batches.
Its `delivery_state` is a DeliveryState; `last_error` holds only the last failure's code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from bot.domain.autoreply import ReplyWindow
from bot.domain.delivery import DeliveryState, Outcome, maybe_posted
from bot.storage import db
from bot.storage.engine import InsertNew

REPLY_KEY = ["team_id", "recipient_id", "sender_id", "window_key"]  # one reply per sender per off-window
# What queueing a reply writes (QueuedReply.row; the rest are the defaults: pending, queued, no attempt yet)
QUEUED_COLUMNS = (*REPLY_KEY, "window_start", "window_end", "channel_id", "message_ts", "thread_ts", "received_at",
                  "next_attempt_at", "external", "ephemeral")  # fmt: skip
REPLY_LEASE = timedelta(seconds=60)
# The error of a reply expired unposted because its DM was deleted (and no attempt may have posted it): it does not
# count for the once-per-window rule.
MESSAGE_DELETED = "message_deleted"  # a claimed reply not settled by then is claimed again
# Slack's refusals of an ephemeral reply when the person is not a member of the channel: the mention was not theirs
# to see (their recap leaves it out) and the reply does not count for the once-per-window rule.
NOT_A_MEMBER = ("not_in_channel", "channel_not_found")
MAX_REPLY_ATTEMPTS = 8


@dataclass(frozen=True, slots=True)
class PendingReply:
    id: int
    team_id: str
    recipient_id: str
    sender_id: str
    channel_id: str
    message_ts: str
    thread_ts: str
    received_at: datetime
    attempts: int  # this claim's attempt number
    last_error: str | None = None  # the code of the previous attempt's failure, if any
    message_state: str | None = None  # of the DM it answers, read with the claim: pending, answered, deleted...
    external: bool = False  # to someone of another organisation: the person's external message
    ephemeral: bool = False  # a channel mention's or group DM's: shown to the sender only, never looked up
    previous: DeliveryState = DeliveryState.QUEUED  # the row's state as this claim found it
    leased_until: datetime | None = None

    @property
    def outcome_unknown(self) -> bool:
        """An earlier attempt may have posted: it timed out, or its process died mid-send (a lost lease)."""
        return maybe_posted(self.previous)


_r = db.replies.c
_m = db.messages.c
_SETTLE_REPLY = (
    db.replies.update()
    .where(_r.id == sa.bindparam("b_id"), _r.state == "pending", _r.attempts == sa.bindparam("b_attempts"))
    .values(
        state=sa.bindparam("b_state"),
        delivery_state=sa.bindparam("b_delivery"),
        reply_ts=sa.bindparam("b_reply_ts"),
        last_error=sa.bindparam("b_error"),
        next_attempt_at=sa.func.coalesce(sa.bindparam("b_at", type_=db.UTCDateTime()), _r.next_attempt_at),
        attempts=_r.attempts - sa.bindparam("b_untried", type_=sa.Integer()),
    )
)

# The claim: due replies, each with the state of the DM it answers (so no read per reply).
_m_join = sa.and_(
    _m.team_id == _r.team_id, _m.recipient_id == _r.recipient_id, _m.channel_id == _r.channel_id,
    _m.ts == _r.message_ts,
)  # fmt: skip
_CLAIM_DUE_REPLIES = (
    sa.select(db.replies, _m.state.label("message_state"))
    .select_from(db.replies.outerjoin(db.messages, _m_join))
    .where(_r.state == "pending", _r.next_attempt_at <= sa.bindparam("now", type_=db.UTCDateTime()))
    .order_by(_r.next_attempt_at, _r.id)
    .limit(sa.bindparam("limit"))
)
_CLAIM_DUE_REPLIES_PG = _CLAIM_DUE_REPLIES.with_for_update(of=db.replies, skip_locked=True)
_LEASE_REPLIES = (
    db.replies.update()
    .where(_r.id.in_(sa.bindparam("ids", expanding=True)))
    .values(
        next_attempt_at=sa.bindparam("until", type_=db.UTCDateTime()),
        attempts=_r.attempts + 1,
        delivery_state=DeliveryState.IN_FLIGHT.value,
    )
)
# The claim re-check: still ours (same attempt, nobody claimed it since) and still in flight; extends the lease.
_RENEW_REPLY = (
    db.replies.update()
    .where(_r.id == sa.bindparam("b_id"), _r.state == "pending", _r.attempts == sa.bindparam("b_attempts"),
           _r.delivery_state == DeliveryState.IN_FLIGHT.value)
    .values(next_attempt_at=sa.bindparam("b_until", type_=db.UTCDateTime()))
    .execution_options(preserve_rowcount=True)
)  # fmt: skip


# The sender's replies for an overlapping window (or with the same key: rows from before intervals were stored).
_OVERLAPPING = (
    sa.select(_r.id, _r.state, _r.last_error, _r.window_key, _r.ephemeral)
    .where(_r.team_id == sa.bindparam("team_id"), _r.recipient_id == sa.bindparam("recipient_id"),
           _r.sender_id == sa.bindparam("sender_id"),
           sa.or_(_r.window_key == sa.bindparam("key"),
                  sa.and_(_r.window_start < sa.bindparam("end", type_=db.UTCDateTime()),
                          _r.window_end > sa.bindparam("start", type_=db.UTCDateTime()))))
    .order_by(_r.id)
)  # fmt: skip
# queue_many's read: the replies of these recipients to these senders (their overlap is decided in Python); the
# second for one recipient and one sender, the usual batch (an expanding IN is rendered again on every call).
_EARLIER_COLUMNS = (_r.recipient_id, _r.sender_id, _r.state, _r.last_error, _r.window_key, _r.ephemeral,
                    _r.window_start, _r.window_end)  # fmt: skip
_EARLIER_REPLIES = sa.select(*_EARLIER_COLUMNS).where(
    _r.team_id == sa.bindparam("team_id"), _r.recipient_id.in_(sa.bindparam("recipients", expanding=True)),
    _r.sender_id.in_(sa.bindparam("senders", expanding=True)),
)  # fmt: skip
_EARLIER_REPLIES_ONE = sa.select(*_EARLIER_COLUMNS).where(
    _r.team_id == sa.bindparam("team_id"), _r.recipient_id == sa.bindparam("recipient_id"),
    _r.sender_id == sa.bindparam("sender_id"),
)  # fmt: skip
# A reply to a mention of someone not in the channel: refused, never shown.
_NOT_A_MEMBER = sa.and_(_r.ephemeral.is_(sa.true()), _r.state == "failed",
                        sa.or_(*(_r.last_error == code for code in NOT_A_MEMBER)))  # fmt: skip
_REPLACEABLE = sa.or_(sa.and_(_r.state == "expired", _r.last_error == MESSAGE_DELETED), _NOT_A_MEMBER)
_REARM = (
    db.replies.update()
    .where(_r.id == sa.bindparam("b_id"), _REPLACEABLE)
    .values(
        window_key=sa.bindparam("b_key"), window_start=sa.bindparam("b_start", type_=db.UTCDateTime()),
        window_end=sa.bindparam("b_end", type_=db.UTCDateTime()), channel_id=sa.bindparam("b_channel_id"),
        message_ts=sa.bindparam("b_message_ts"), thread_ts=sa.bindparam("b_thread_ts"),
        received_at=sa.bindparam("b_received_at", type_=db.UTCDateTime()), external=sa.bindparam("b_external"),
        ephemeral=sa.bindparam("b_ephemeral"),
        next_attempt_at=sa.bindparam("b_next_attempt_at", type_=db.UTCDateTime()), state="pending",
        delivery_state=DeliveryState.QUEUED.value, last_error=None, reply_ts=None, attempts=0,
    )
)  # fmt: skip


def _replaceable(row: sa.Row) -> bool:
    """Never shown: its message deleted before it went out, or refused because the person is not in the channel."""
    deleted = row.state == "expired" and row.last_error == MESSAGE_DELETED
    return deleted or (bool(row.ephemeral) and row.state == "failed" and row.last_error in NOT_A_MEMBER)


@dataclass(frozen=True, slots=True)
class QueuedReply:
    """The reply a DM being recorded asks for (`Replies.queue_many`), due at `queued_at`."""

    queued_at: datetime
    team_id: str
    recipient_id: str
    sender_id: str
    window: ReplyWindow
    channel_id: str
    message_ts: str
    thread_ts: str
    received_at: datetime
    external: bool = False
    ephemeral: bool = False

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.team_id, self.recipient_id, self.sender_id, self.window.key)

    def fields(self) -> dict:
        return {"team_id": self.team_id, "recipient_id": self.recipient_id, "sender_id": self.sender_id,
                "window": self.window, "channel_id": self.channel_id, "message_ts": self.message_ts,
                "thread_ts": self.thread_ts, "received_at": self.received_at, "external": self.external,
                "ephemeral": self.ephemeral}  # fmt: skip

    def row(self) -> dict:
        return {"team_id": self.team_id, "recipient_id": self.recipient_id, "sender_id": self.sender_id,
                "window_key": self.window.key, "window_start": self.window.start, "window_end": self.window.end,
                "channel_id": self.channel_id, "message_ts": self.message_ts, "thread_ts": self.thread_ts,
                "received_at": self.received_at, "next_attempt_at": self.queued_at, "external": self.external,
                "ephemeral": self.ephemeral}  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Queued:
    """A reply queued earlier in the same batch: it counts like a committed one, and is never replaceable."""

    window: ReplyWindow
    state: str = "pending"
    last_error: str | None = None
    ephemeral: bool = False

    @property
    def window_key(self) -> str:
        return self.window.key

    @property
    def window_start(self) -> datetime:
        return self.window.start

    @property
    def window_end(self) -> datetime:
        return self.window.end


def _overlaps(row: sa.Row | _Queued, window: ReplyWindow) -> bool:
    """_OVERLAPPING's condition, in Python: the same key, or intervals that overlap (rows without one: the key)."""
    if row.window_key == window.key:
        return True
    start, end = row.window_start, row.window_end
    return start is not None and end is not None and start < window.end and end > window.start


class Replies:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        # Built once per engine: on the ack path, constructing statements cost more than running them.
        self._insert_reply = db.insert_ignore(engine, db.replies, REPLY_KEY)
        self._insert_replies = InsertNew(engine, db.replies, REPLY_KEY, list(QUEUED_COLUMNS), REPLY_KEY)

    def queue(
        self, conn: sa.Connection, *, team_id: str, recipient_id: str, sender_id: str, window: ReplyWindow,
        channel_id: str, message_ts: str, thread_ts: str, received_at: datetime, now: datetime,
        external: bool = False, ephemeral: bool = False,
    ) -> bool:  # fmt: skip
        """Queue the reply to a DM being recorded (in the caller's transaction); False: the sender already has one
        for an overlapping window."""
        fresh = {"channel_id": channel_id, "message_ts": message_ts, "thread_ts": thread_ts,
                 "received_at": received_at, "next_attempt_at": now, "external": external,
                 "ephemeral": ephemeral}  # fmt: skip
        earlier = conn.execute(
            _OVERLAPPING, {"team_id": team_id, "recipient_id": recipient_id, "sender_id": sender_id,
                           "start": window.start, "end": window.end, "key": window.key}
        ).all()  # fmt: skip
        if any(not _replaceable(row) for row in earlier):
            return False
        if earlier:
            # Never posted, its DM deleted: this DM takes its place (and its key, which the unique key holds).
            target = next((r.id for r in earlier if r.window_key == window.key), earlier[0].id)
            rearm = {"b_id": target, "b_key": window.key, "b_start": window.start, "b_end": window.end,
                     **{f"b_{k}": v for k, v in fresh.items()}}  # fmt: skip
            changed = conn.execute(_REARM, rearm).rowcount
            return bool(changed)
        values = {"team_id": team_id, "recipient_id": recipient_id, "sender_id": sender_id, "window_key": window.key,
                  "window_start": window.start, "window_end": window.end, **fresh}  # fmt: skip
        return bool(conn.execute(self._insert_reply, values).rowcount)

    def queue_many(self, conn: sa.Connection, wanted: Sequence[QueuedReply]) -> list[bool]:
        """`queue` for several DMs being recorded together (in the caller's transaction), in order: one read of the
        senders' earlier replies and one insert for all, instead of two statements per DM. A DM whose sender has
        only replaceable earlier replies goes through `queue` (rare: its DM was deleted, or Slack refused it)."""
        if not wanted:
            return []
        earlier = self._earlier_replies(conn, wanted)
        queued: list[bool | None] = [None] * len(wanted)
        fresh: list[int] = []
        for n, want in enumerate(wanted):
            found = [row for row in earlier.get((want.team_id, want.recipient_id, want.sender_id), ())
                     if _overlaps(row, want.window)]  # fmt: skip
            if any(not _replaceable(row) for row in found):
                queued[n] = False
                continue
            if found:
                queued[n] = self.queue(conn, **want.fields(), now=want.queued_at)
            else:
                fresh.append(n)  # inserted below; one another process inserted first holds the same key
            # What this batch queues counts for the DMs after it, as a committed row would.
            earlier.setdefault((want.team_id, want.recipient_id, want.sender_id), []).append(_Queued(want.window))
        if fresh:
            # In key order: two processes inserting the same keys in opposite orders would wait for each other.
            rows = sorted((wanted[n].row() for n in fresh), key=lambda row: tuple(row[k] for k in REPLY_KEY))
            inserted = set(self._insert_replies(conn, rows))
            for n in fresh:
                queued[n] = wanted[n].key in inserted
        return [bool(q) for q in queued]

    @staticmethod
    def _earlier_replies(conn: sa.Connection, wanted: Sequence[QueuedReply]) -> dict[tuple, list]:
        """The recipients' replies to these senders, by (team, recipient, sender): overlap is decided in Python."""
        found: dict[tuple, list] = {}
        for team_id in {w.team_id for w in wanted}:
            mine = [w for w in wanted if w.team_id == team_id]
            recipients, senders = sorted({w.recipient_id for w in mine}), sorted({w.sender_id for w in mine})
            if len(recipients) == len(senders) == 1:
                one = {"team_id": team_id, "recipient_id": recipients[0], "sender_id": senders[0]}
                rows = conn.execute(_EARLIER_REPLIES_ONE, one)
            else:
                where = {"team_id": team_id, "recipients": recipients, "senders": senders}
                rows = conn.execute(_EARLIER_REPLIES, where)
            for row in rows:
                found.setdefault((team_id, row.recipient_id, row.sender_id), []).append(row)
        return found

    @staticmethod
    def drop_unclaimed(conn: sa.Connection, *, team_id: str, channel_id: str, message_ts: str) -> None:
        """The DM was deleted: its reply goes away if it certainly was not posted and is not being posted now
        (never tried, or refused without acting, a 429 say), in the caller's transaction. One in flight or maybe
        posted stays: the claim's check expires it, or it was posted."""
        conn.execute(
            db.replies.delete().where(
                _r.team_id == team_id, _r.channel_id == channel_id, _r.message_ts == message_ts,
                _r.state == "pending",
                sa.or_(_r.delivery_state == DeliveryState.QUEUED.value,
                       _r.delivery_state == DeliveryState.NOT_POSTED.value),
            )
        )  # fmt: skip

    def claim_due(self, *, now: datetime, limit: int = 50) -> list[PendingReply]:
        """Lease up to `limit` due replies to this process (SKIP LOCKED on PostgreSQL; SQLite serialises).

        Each comes with the state of the DM it answers, so the sender needs no read per reply.
        """
        query = _CLAIM_DUE_REPLIES_PG if self.engine.dialect.name == "postgresql" else _CLAIM_DUE_REPLIES
        until = now + REPLY_LEASE
        with db.writing(self.engine) as conn:
            rows = conn.execute(query, {"now": now, "limit": limit}).mappings().all()
            if not rows:
                return []
            conn.execute(_LEASE_REPLIES, {"ids": [row["id"] for row in rows], "until": until})
        return [
            PendingReply(
                id=row["id"],
                team_id=row["team_id"],
                recipient_id=row["recipient_id"],
                sender_id=row["sender_id"],
                channel_id=row["channel_id"],
                message_ts=row["message_ts"],
                thread_ts=row["thread_ts"],
                received_at=row["received_at"],
                attempts=row["attempts"] + 1,
                last_error=row["last_error"],
                message_state=row["message_state"],
                previous=DeliveryState(row["delivery_state"]),
                leased_until=until,
                external=bool(row["external"]),
                ephemeral=bool(row["ephemeral"]),
            )
            for row in rows
        ]

    def renew(self, reply_id: int, *, attempts: int, until: datetime) -> bool:
        """Whether this claim (attempt `attempts`) still holds; if so its lease now runs to `until`."""
        with db.writing(self.engine) as conn:
            return (
                conn.execute(_RENEW_REPLY, {"b_id": reply_id, "b_attempts": attempts, "b_until": until}).rowcount == 1
            )

    def settle(self, outcomes: Sequence[tuple[int, int, Outcome]]) -> None:
        """Record what became of claimed replies, (id, attempt number as claimed, outcome), in one transaction.

        An outcome is written only while its claim still holds (pending, same attempt count): a sender whose lease
        ran out must not overwrite a newer claim's result. An untried claim gives its attempt back, so a late
        outcome of the claim before it may still land; untried claims posted nothing, so nothing posted is
        overwritten.

        A mention's ephemeral reply refused because the person is not in the channel (NOT_A_MEMBER) takes its
        mention out of their recap, in the same transaction: the event came through another member's token (or the
        bot's), and the message was never theirs to see.
        """
        if not outcomes:
            return
        with db.writing(self.engine) as conn:
            conn.execute(
                _SETTLE_REPLY,
                [
                    {"b_id": reply_id, "b_attempts": attempts, "b_state": o.state.state, "b_delivery": o.state.value,
                     "b_reply_ts": o.ts, "b_error": o.error[:200] if o.error else None, "b_at": o.retry_at,
                     "b_untried": int(o.untried)}
                    for reply_id, attempts, o in outcomes
                ],
            )  # fmt: skip
            refused = [reply_id for reply_id, _, o in outcomes if o.error in NOT_A_MEMBER]
            if refused:
                _drop_unseen(conn, refused)


def _drop_unseen(conn: sa.Connection, reply_ids: list[int]) -> None:
    """The mentions these replies answered, if Slack refused them as NOT_A_MEMBER: out of the recap, text gone."""
    unseen = conn.execute(
        sa.select(_r.team_id, _r.recipient_id, _r.channel_id, _r.message_ts).where(_r.id.in_(reply_ids), _NOT_A_MEMBER)
    ).all()
    for row in unseen:
        conn.execute(
            db.messages.update()
            .where(_m.team_id == row.team_id, _m.recipient_id == row.recipient_id, _m.channel_id == row.channel_id,
                   _m.ts == row.message_ts, _m.source != "dm", _m.state == "pending")
            .values(state="deleted", text=None)
        )  # fmt: skip
