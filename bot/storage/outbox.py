"""After-hours messages and the auto-reply outbox: recorded once, claimed with a lease, sent once.

`record` is one transaction: the message row (unique per recipient, channel and ts) and, for the first
message from a sender in an off-window, the pending reply (unique per recipient, sender and window).
A redelivered or concurrently delivered event hits the unique keys and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from bot.domain.delivery import IN_FLIGHT, outcome_unknown
from bot.storage import db

MESSAGE_KEY = ["team_id", "recipient_id", "channel_id", "ts"]  # a DM is recorded once
REPLY_KEY = ["team_id", "recipient_id", "sender_id", "window_key"]  # one reply per sender per off-window
REPLY_LEASE = timedelta(seconds=60)  # a claimed reply not marked sent by then is claimed again
MAX_REPLY_ATTEMPTS = 8


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


@dataclass(frozen=True, slots=True)
class ReplyOutcome:
    """What became of one claimed reply: sent, retried later (state "pending"), failed or expired."""

    reply_id: int
    state: str
    reply_ts: str | None = None
    error: str | None = None
    retry_at: datetime | None = None
    # The claim posted nothing (it waited for a lookup slot, or Slack refused the lookup with 429): it does not
    # count against MAX_REPLY_ATTEMPTS.
    untried: bool = False


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
    attempts: int
    last_error: str | None = None  # why the previous attempt failed; None after a lost lease (a crash)
    message_state: str | None = None  # of the DM it answers, read with the claim: pending, answered, deleted...

    @property
    def outcome_unknown(self) -> bool:
        return outcome_unknown(self.attempts, self.last_error)


_m = db.messages.c


def anything_waiting(recipient: sa.BindParameter) -> sa.Select:
    """Does a DM in channel `channel_id` still wait for `recipient` (pending, or in a recap not yet ticked off)?"""
    return (
        sa.select(_m.id)
        .where(_m.team_id == sa.bindparam("team_id"), _m.recipient_id == recipient,
               _m.channel_id == sa.bindparam("channel_id"),
               sa.or_(_m.state == "pending", _m.state == "recapped"))  # not IN: an expanding IN is rendered per call
        .limit(1)
    )  # fmt: skip


ANYTHING_WAITING = anything_waiting(sa.bindparam("recipient_id"))


_r = db.replies.c
_SETTLE_REPLY = (
    db.replies.update()
    .where(_r.id == sa.bindparam("b_id"), _r.state == "pending", _r.attempts == sa.bindparam("b_attempts"))
    .values(
        state=sa.bindparam("b_state"),
        reply_ts=sa.bindparam("b_reply_ts"),
        last_error=sa.bindparam("b_error"),
        next_attempt_at=sa.func.coalesce(sa.bindparam("b_at", type_=db.UTCDateTime()), _r.next_attempt_at),
        attempts=_r.attempts - sa.bindparam("b_untried", type_=sa.Integer()),
    )
)


# The reply sender's claim: due replies, each with the state of the DM it answers (so no read per reply).
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
        last_error=sa.bindparam("error"),
    )
)


class Outbox:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        # Built once per engine: on the ack path, constructing statements cost more than running them.
        self._insert_message = db.insert_ignore(engine, db.messages, MESSAGE_KEY)
        self._insert_reply = db.insert_ignore(engine, db.replies, REPLY_KEY)

    def record(self, rec: IncomingRecord, *, now: datetime) -> str:
        """Store an after-hours DM: "duplicate", "replied" (a reply is queued), "throttled" or "recorded"."""
        with db.writing(self.engine) as conn:
            inserted = conn.execute(
                self._insert_message,
                {
                    "team_id": rec.team_id,
                    "recipient_id": rec.recipient_id,
                    "channel_id": rec.channel_id,
                    "ts": rec.ts,
                    "thread_ts": rec.thread_ts,
                    "sender_id": rec.sender_id,
                    "received_at": rec.received_at,
                    "text": rec.text,
                    "due_at": rec.due_at,
                },
            ).rowcount
            if not inserted:
                return "duplicate"
            if not rec.reply:
                return "recorded"
            queued = conn.execute(
                self._insert_reply,
                {
                    "team_id": rec.team_id,
                    "recipient_id": rec.recipient_id,
                    "sender_id": rec.sender_id,
                    "window_key": rec.window_key,
                    "channel_id": rec.channel_id,
                    "message_ts": rec.ts,
                    "thread_ts": rec.thread_ts,
                    "received_at": rec.received_at,
                    "next_attempt_at": now,
                },
            ).rowcount
        return "replied" if queued else "throttled"

    def mark_answered(self, team_id: str, recipient_id: str, channel_id: str) -> int:
        """The recipient wrote in this DM: what waited for them there no longer needs a recap.

        That includes messages already in a recap not sent yet (waiting for a retry), so the retry leaves them out.
        """
        m, r = db.messages.c, db.recaps.c
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
                    m.team_id == team_id, m.recipient_id == recipient_id, m.channel_id == channel_id,
                    sa.or_(m.state == "pending", sa.and_(m.state == "recapped", m.recap_id.in_(unsent))),
                )
                .values(state="answered")
            ).rowcount  # fmt: skip

    def drop_deleted(self, team_id: str, channel_id: str, ts: str) -> int:
        """The sender deleted the message: out of the recap, and its reply is not sent if no one has claimed it yet.

        The unclaimed reply row goes away entirely, so the sender's next message in that window still gets one.
        """
        m, r = db.messages.c, db.replies.c
        with db.writing(self.engine) as conn:
            conn.execute(
                db.replies.delete().where(
                    r.team_id == team_id, r.channel_id == channel_id, r.message_ts == ts,
                    r.state == "pending", r.attempts == 0,
                )
            )  # fmt: skip
            return conn.execute(
                db.messages.update()
                .where(m.team_id == team_id, m.channel_id == channel_id, m.ts == ts, m.state == "pending")
                .values(state="deleted", text=None)
            ).rowcount

    # --- the reply sender's side ------------------------------------------------------------------------

    def claim_due_replies(self, *, now: datetime, limit: int = 50) -> list[PendingReply]:
        """Lease up to `limit` due replies to this process (SKIP LOCKED on PostgreSQL; SQLite serialises).

        Each comes with the state of the DM it answers, so the sender needs no read per reply.
        """
        query = _CLAIM_DUE_REPLIES_PG if self.engine.dialect.name == "postgresql" else _CLAIM_DUE_REPLIES
        with db.writing(self.engine) as conn:
            rows = conn.execute(query, {"now": now, "limit": limit}).mappings().all()
            if not rows:
                return []
            conn.execute(
                _LEASE_REPLIES, {"ids": [row["id"] for row in rows], "until": now + REPLY_LEASE, "error": IN_FLIGHT}
            )
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
            )
            for row in rows
        ]

    def settle_replies(self, outcomes: list[ReplyOutcome], *, attempts: dict[int, int]) -> None:
        """Record what became of claimed replies, in one transaction.

        `attempts`: each reply's attempt number as claimed. An outcome is written only while that claim still
        holds (pending, same attempt count): a sender whose lease ran out must not overwrite a newer claim's
        result. An untried claim gives its attempt back, so a late outcome of the claim before it may still land;
        untried claims posted nothing, so nothing posted is overwritten.
        """
        if not outcomes:
            return
        with db.writing(self.engine) as conn:
            conn.execute(
                _SETTLE_REPLY,
                [
                    {"b_id": o.reply_id, "b_attempts": attempts[o.reply_id], "b_state": o.state,
                     "b_reply_ts": o.reply_ts, "b_error": o.error[:200] if o.error else None, "b_at": o.retry_at,
                     "b_untried": int(o.untried)}
                    for o in outcomes
                ],
            )  # fmt: skip

    def reply_states(self, team_id: str) -> dict[str, int]:
        """Counts by state, for `check` and the tests."""
        r = db.replies.c
        with db.reading(self.engine) as conn:
            rows = conn.execute(sa.select(r.state, sa.func.count()).where(r.team_id == team_id).group_by(r.state)).all()
        return {state: n for state, n in rows}
