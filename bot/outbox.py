"""After-hours messages and the auto-reply outbox: recorded once, claimed with a lease, sent once.

`record` is one transaction: the message row (unique per recipient, channel and ts) and, for the first
message from a sender in an off-window, the pending reply (unique per recipient, sender and window).
A redelivered or concurrently delivered event hits the unique keys and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from bot import db

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


UNKNOWN_OUTCOME_ERRORS = frozenset({"timeout", "TimeoutError", "URLError", "OSError"})


def outcome_unknown(attempts: int, last_error: str | None) -> bool:
    """An earlier attempt may have posted: it timed out, or its process died mid-send (a lost lease)."""
    return attempts > 1 and (last_error is None or last_error in UNKNOWN_OUTCOME_ERRORS)


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

    @property
    def outcome_unknown(self) -> bool:
        return outcome_unknown(self.attempts, self.last_error)


class Outbox:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def record(self, rec: IncomingRecord, *, now: datetime) -> str:
        """Store an after-hours DM: "duplicate", "replied" (a reply is queued), "throttled" or "recorded"."""
        with self.engine.begin() as conn:
            inserted = conn.execute(
                db.insert_ignore(self.engine, db.messages, ["team_id", "recipient_id", "channel_id", "ts"]).values(
                    team_id=rec.team_id,
                    recipient_id=rec.recipient_id,
                    channel_id=rec.channel_id,
                    ts=rec.ts,
                    thread_ts=rec.thread_ts,
                    sender_id=rec.sender_id,
                    received_at=rec.received_at,
                    text=rec.text,
                    due_at=rec.due_at,
                )
            ).rowcount
            if not inserted:
                return "duplicate"
            if not rec.reply:
                return "recorded"
            queued = conn.execute(
                db.insert_ignore(
                    self.engine, db.replies, ["team_id", "recipient_id", "sender_id", "window_key"]
                ).values(
                    team_id=rec.team_id,
                    recipient_id=rec.recipient_id,
                    sender_id=rec.sender_id,
                    window_key=rec.window_key,
                    channel_id=rec.channel_id,
                    message_ts=rec.ts,
                    thread_ts=rec.thread_ts,
                    received_at=rec.received_at,
                    next_attempt_at=now,
                )
            ).rowcount
        return "replied" if queued else "throttled"

    def mark_answered(self, team_id: str, recipient_id: str, channel_id: str) -> int:
        """The recipient wrote in this DM: what waited for them there no longer needs a recap.

        That includes messages already in a recap not sent yet (waiting for a retry), so the retry leaves them out.
        """
        m, r = db.messages.c, db.recaps.c
        unsent = sa.select(r.id).where(r.state == "pending")
        waiting = (m.team_id == team_id, m.recipient_id == recipient_id, m.channel_id == channel_id,
                   m.state.in_(("pending", "recapped")))  # fmt: skip
        with db.reading(self.engine) as conn:
            # Most messages are not answers to anything waiting: a read spares them a write transaction.
            if conn.execute(sa.select(m.id).where(*waiting).limit(1)).first() is None:
                return 0
        with self.engine.begin() as conn:
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
        with self.engine.begin() as conn:
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

    def message_state(self, team_id: str, recipient_id: str, channel_id: str, ts: str) -> str | None:
        """pending, answered, deleted, recapped...; None when not recorded (or forgotten)."""
        m = db.messages.c
        with db.reading(self.engine) as conn:
            return conn.execute(
                sa.select(m.state).where(
                    m.team_id == team_id, m.recipient_id == recipient_id, m.channel_id == channel_id, m.ts == ts
                )
            ).scalar_one_or_none()

    def dm_members(self, team_id: str, channel_id: str) -> tuple[str, str] | None:
        c = db.dm_channels.c
        with db.reading(self.engine) as conn:
            row = conn.execute(
                sa.select(c.user_a, c.user_b).where(c.team_id == team_id, c.channel_id == channel_id)
            ).first()
        return (row.user_a, row.user_b) if row else None

    def remember_dm(self, team_id: str, channel_id: str, user_a: str, user_b: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                db.insert_ignore(self.engine, db.dm_channels, ["team_id", "channel_id"]).values(
                    team_id=team_id, channel_id=channel_id, user_a=user_a, user_b=user_b
                )
            )

    # --- the reply sender's side ------------------------------------------------------------------------

    def claim_due_replies(self, *, now: datetime, limit: int = 50) -> list[PendingReply]:
        """Lease up to `limit` due replies to this process (SKIP LOCKED on PostgreSQL; SQLite serialises)."""
        r = db.replies.c
        query = (
            sa.select(db.replies)
            .where(r.state == "pending", r.next_attempt_at <= now)
            .order_by(r.next_attempt_at, r.id)
            .limit(limit)
        )
        if self.engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        with self.engine.begin() as conn:
            rows = conn.execute(query).mappings().all()
            if not rows:
                return []
            conn.execute(
                db.replies.update()
                .where(r.id.in_([row["id"] for row in rows]))
                .values(next_attempt_at=now + REPLY_LEASE, attempts=r.attempts + 1)
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
            )
            for row in rows
        ]

    def mark_reply_sent(self, reply_id: int, *, reply_ts: str | None) -> None:
        self._set_reply(reply_id, state="sent", reply_ts=reply_ts, last_error=None)

    def retry_reply(self, reply_id: int, *, at: datetime, error: str) -> None:
        self._set_reply(reply_id, next_attempt_at=at, last_error=error[:200])

    def give_up_reply(self, reply_id: int, *, state: str, error: str) -> None:
        """Final: `failed` (Slack said no for good) or `expired` (the person is back; the reply would be wrong)."""
        self._set_reply(reply_id, state=state, last_error=error[:200])

    def _set_reply(self, reply_id: int, **values) -> None:
        with self.engine.begin() as conn:
            conn.execute(db.replies.update().where(db.replies.c.id == reply_id).values(**values))

    def reply_states(self, team_id: str) -> dict[str, int]:
        """Counts by state, for `check` and the tests."""
        r = db.replies.c
        with db.reading(self.engine) as conn:
            rows = conn.execute(sa.select(r.state, sa.func.count()).where(r.team_id == team_id).group_by(r.state)).all()
        return {state: n for state, n in rows}
