"""Channel office hours (issue 25): owns `channel_hours`, `channel_posts`, `channel_replies`, `channel_summaries`.

A channel's settings are one row. A top-level message that came while the team was off is recorded before the ack
(unique per channel and ts) with its reply queued in the same transaction: one reply per sender, channel and off
window, kept by the unique key. The replies and the summaries are outboxes with the delivery engine's columns
(claimed with a lease, SKIP LOCKED on PostgreSQL, re-checked, settled only while the claim holds). A summary is
one row per channel and off window (unique key): opened once its due time has passed, posted once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from bot.domain.autoreply import ReplyWindow
from bot.domain.channel_hours import ChannelHours, WaitingPost
from bot.domain.delivery import DeliveryState, Outcome, maybe_posted
from bot.storage import schema
from bot.storage.engine import UTCDateTime, insert_ignore, reading, upsert, writing

CHANNEL_REPLY_LEASE = timedelta(seconds=60)
CHANNEL_SUMMARY_LEASE = timedelta(minutes=5)
MAX_CHANNEL_REPLY_ATTEMPTS = 8

_h = schema.channel_hours.c
_p = schema.channel_posts.c
_r = schema.channel_replies.c
_s = schema.channel_summaries.c
_IN_FLIGHT = DeliveryState.IN_FLIGHT.value


@dataclass(frozen=True, slots=True)
class ClaimedChannelReply:
    id: int
    team_id: str
    channel_id: str
    sender_id: str
    message_ts: str
    received_at: datetime
    back_at: datetime
    attempts: int
    last_error: str | None = None
    previous: DeliveryState = DeliveryState.QUEUED
    leased_until: datetime | None = None
    post_state: str | None = None  # of the message it answers: pending, answered...

    @property
    def outcome_unknown(self) -> bool:
        return maybe_posted(self.previous)


@dataclass(frozen=True, slots=True)
class ClaimedChannelSummary:
    id: int
    team_id: str
    channel_id: str
    due_at: datetime
    attempts: int
    last_error: str | None = None
    previous: DeliveryState = DeliveryState.QUEUED
    leased_until: datetime | None = None

    @property
    def outcome_unknown(self) -> bool:
        return maybe_posted(self.previous)


def _hours(row: Any) -> ChannelHours:
    return ChannelHours(
        team_id=row.team_id,
        channel_id=row.channel_id,
        hours=row.hours,
        tz=row.tz,
        days_off=row.days_off or "",
        holidays=row.holidays,
        message=row.message,
        summary_to=row.summary_to,
    )


class ChannelHoursStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._insert_post = insert_ignore(engine, schema.channel_posts, ["team_id", "channel_id", "ts"])
        self._insert_reply = insert_ignore(
            engine, schema.channel_replies, ["team_id", "channel_id", "sender_id", "window_key"]
        )
        self._insert_summary = insert_ignore(engine, schema.channel_summaries, ["team_id", "channel_id", "due_at"])

    @property
    def _pg(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    # --- settings ------------------------------------------------------------------------------------------

    def get(self, team_id: str, channel_id: str) -> ChannelHours | None:
        with reading(self.engine) as conn:
            row = conn.execute(
                sa.select(schema.channel_hours).where(_h.team_id == team_id, _h.channel_id == channel_id)
            ).first()
        return _hours(row) if row is not None else None

    def all(self) -> list[ChannelHours]:
        """Every channel with office hours (the listener's in-memory set is refreshed from this)."""
        with reading(self.engine) as conn:
            return [_hours(row) for row in conn.execute(sa.select(schema.channel_hours)).all()]

    def save(self, hours: ChannelHours, *, now: datetime) -> None:
        values = {
            "team_id": hours.team_id,
            "channel_id": hours.channel_id,
            "hours": hours.hours,
            "tz": hours.tz,
            "days_off": hours.days_off,
            "holidays": hours.holidays,
            "message": hours.message,
            "summary_to": hours.summary_to,
            "updated_at": now,
        }
        with writing(self.engine) as conn:
            conn.execute(upsert(self.engine, schema.channel_hours, ["team_id", "channel_id"], values))

    def delete(self, team_id: str, channel_id: str) -> bool:
        """`/hours channel off`: the settings go, and with them what waited for a summary or a reply."""
        with writing(self.engine) as conn:
            gone = conn.execute(
                schema.channel_hours.delete().where(_h.team_id == team_id, _h.channel_id == channel_id)
            ).rowcount
            conn.execute(
                schema.channel_posts.delete().where(
                    _p.team_id == team_id, _p.channel_id == channel_id, _p.state == "pending"
                )
            )
            conn.execute(
                schema.channel_replies.update()
                .where(
                    _r.team_id == team_id,
                    _r.channel_id == channel_id,
                    _r.state == "pending",
                    _r.delivery_state.in_([DeliveryState.QUEUED.value, DeliveryState.NOT_POSTED.value]),
                )
                .values(state="expired", delivery_state=DeliveryState.EXPIRED.value, last_error="channel_off")
            )
        return bool(gone)

    # --- what came while the team was off -----------------------------------------------------------------

    def record(
        self,
        *,
        team_id: str,
        channel_id: str,
        ts: str,
        sender_id: str,
        received_at: datetime,
        window: ReplyWindow,
        now: datetime,
    ) -> bool:
        """Record a top-level message that came off hours and queue its reply, in one transaction (before the
        ack); False: the sender already has a reply for this window (or this is a redelivery)."""
        with writing(self.engine) as conn:
            post = {
                "team_id": team_id,
                "channel_id": channel_id,
                "ts": ts,
                "sender_id": sender_id,
                "received_at": received_at,
                "due_at": window.end,
            }
            if not conn.execute(self._insert_post, post).rowcount:
                return False  # Slack's redelivery of an event already recorded
            reply = {
                "team_id": team_id,
                "channel_id": channel_id,
                "sender_id": sender_id,
                "window_key": window.key,
                "message_ts": ts,
                "received_at": received_at,
                "back_at": window.end,
                "next_attempt_at": now,
            }
            return bool(conn.execute(self._insert_reply, reply).rowcount)

    def mark_answered(self, team_id: str, channel_id: str, thread_ts: str, *, by: str) -> int:
        """Someone other than its sender replied in the thread of a recorded message: it is answered."""
        with writing(self.engine) as conn:
            return conn.execute(
                schema.channel_posts.update()
                .where(
                    _p.team_id == team_id,
                    _p.channel_id == channel_id,
                    _p.ts == thread_ts,
                    _p.sender_id != by,
                    _p.state == "pending",
                )
                .values(state="answered")
            ).rowcount

    def mark_deleted(self, team_id: str, channel_id: str, ts: str) -> int:
        """The sender deleted a recorded message: it leaves the summary, and its reply (if not yet out) expires."""
        with writing(self.engine) as conn:
            return conn.execute(
                schema.channel_posts.update()
                .where(_p.team_id == team_id, _p.channel_id == channel_id, _p.ts == ts,
                       _p.state.in_(["pending", "answered"]))
                .values(state="deleted")
            ).rowcount  # fmt: skip

    def bot_left(self, team_id: str, channel_id: str) -> None:
        """The bot was removed from the channel: nothing queued there can be posted. The settings stay."""
        with writing(self.engine) as conn:
            for table, c in ((schema.channel_replies, _r), (schema.channel_summaries, _s)):
                conn.execute(
                    table.update()
                    .where(
                        c.team_id == team_id,
                        c.channel_id == channel_id,
                        c.state == "pending",
                        c.delivery_state.in_([DeliveryState.QUEUED.value, DeliveryState.NOT_POSTED.value]),
                    )
                    .values(state="failed", delivery_state=DeliveryState.FAILED.value, last_error="not_in_channel")
                )
            conn.execute(
                schema.channel_posts.delete().where(
                    _p.team_id == team_id, _p.channel_id == channel_id, _p.state == "pending"
                )
            )

    # --- the reply outbox ---------------------------------------------------------------------------------

    def claim_replies(self, *, now: datetime, limit: int = 50) -> list[ClaimedChannelReply]:
        join = sa.and_(_p.team_id == _r.team_id, _p.channel_id == _r.channel_id, _p.ts == _r.message_ts)
        query = (
            sa.select(schema.channel_replies, _p.state.label("post_state"))
            .select_from(schema.channel_replies.outerjoin(schema.channel_posts, join))
            .where(_r.state == "pending", _r.next_attempt_at <= now)
            .order_by(_r.next_attempt_at, _r.id)
            .limit(limit)
        )
        if self._pg:
            query = query.with_for_update(of=schema.channel_replies, skip_locked=True)
        until = now + CHANNEL_REPLY_LEASE
        with writing(self.engine) as conn:
            rows = conn.execute(query).all()
            _lease(conn, schema.channel_replies, [row.id for row in rows], until)
        return [
            ClaimedChannelReply(
                id=row.id,
                team_id=row.team_id,
                channel_id=row.channel_id,
                sender_id=row.sender_id,
                message_ts=row.message_ts,
                received_at=row.received_at,
                back_at=row.back_at,
                attempts=row.attempts + 1,
                last_error=row.last_error,
                previous=DeliveryState(row.delivery_state),
                leased_until=until,
                post_state=row.post_state,
            )
            for row in rows
        ]

    def renew_reply(self, reply_id: int, *, attempts: int, until: datetime) -> bool:
        return _renew(self.engine, schema.channel_replies, reply_id, attempts=attempts, until=until)

    def settle_replies(self, outcomes: Sequence[tuple[int, int, Outcome]]) -> None:
        _settle(self.engine, schema.channel_replies, outcomes)

    # --- the summaries ------------------------------------------------------------------------------------

    def open_due_summaries(self, *, now: datetime, limit: int = 500) -> int:
        """One summary row per channel and off window whose messages are due (and whose channel still has hours);
        the unique key makes a second opening (another process, a later tick) a no-op."""
        due = (
            sa.select(_p.team_id, _p.channel_id, _p.due_at)
            .select_from(
                schema.channel_posts.join(
                    schema.channel_hours, sa.and_(_h.team_id == _p.team_id, _h.channel_id == _p.channel_id)
                )
            )
            .where(_p.state == "pending", _p.summary_id.is_(None), _p.due_at <= now)
            .group_by(_p.team_id, _p.channel_id, _p.due_at)
            .limit(limit)
        )
        opened = 0
        with writing(self.engine) as conn:
            for row in conn.execute(due).all():
                values = {
                    "team_id": row.team_id,
                    "channel_id": row.channel_id,
                    "due_at": row.due_at,
                    "next_attempt_at": row.due_at,
                }
                opened += conn.execute(self._insert_summary, values).rowcount
                summary_id = conn.execute(
                    sa.select(_s.id).where(
                        _s.team_id == row.team_id, _s.channel_id == row.channel_id, _s.due_at == row.due_at
                    )
                ).scalar_one()
                conn.execute(
                    schema.channel_posts.update()
                    .where(
                        _p.team_id == row.team_id,
                        _p.channel_id == row.channel_id,
                        _p.due_at == row.due_at,
                        _p.summary_id.is_(None),
                    )
                    .values(summary_id=summary_id)
                )
        return opened

    def claim_summaries(self, *, now: datetime, limit: int = 50) -> list[ClaimedChannelSummary]:
        query = (
            sa.select(schema.channel_summaries)
            .where(_s.state == "pending", _s.next_attempt_at <= now)
            .order_by(_s.next_attempt_at, _s.id)
            .limit(limit)
        )
        if self._pg:
            query = query.with_for_update(skip_locked=True)
        until = now + CHANNEL_SUMMARY_LEASE
        with writing(self.engine) as conn:
            rows = conn.execute(query).all()
            _lease(conn, schema.channel_summaries, [row.id for row in rows], until)
        return [
            ClaimedChannelSummary(
                id=row.id,
                team_id=row.team_id,
                channel_id=row.channel_id,
                due_at=row.due_at,
                attempts=row.attempts + 1,
                last_error=row.last_error,
                previous=DeliveryState(row.delivery_state),
                leased_until=until,
            )
            for row in rows
        ]

    def unanswered(self, summary_id: int) -> list[WaitingPost]:
        """The summary's messages that still have no answer, oldest first."""
        with reading(self.engine) as conn:
            rows = conn.execute(
                sa.select(_p.sender_id, _p.ts, _p.received_at)
                .where(_p.summary_id == summary_id, _p.state == "pending")
                .order_by(_p.received_at, _p.id)
            ).all()
        return [WaitingPost(sender_id=r.sender_id, ts=r.ts, received_at=r.received_at) for r in rows]

    def renew_summary(self, summary_id: int, *, attempts: int, until: datetime) -> bool:
        return _renew(self.engine, schema.channel_summaries, summary_id, attempts=attempts, until=until)

    def settle_summary(self, summary_id: int, attempts: int, outcome: Outcome) -> None:
        with writing(self.engine) as conn:
            settled = _settle_in(conn, schema.channel_summaries, [(summary_id, attempts, outcome)])
            if settled and not outcome.state.open:
                conn.execute(
                    schema.channel_posts.update()
                    .where(_p.summary_id == summary_id, _p.state == "pending")
                    .values(state="summarised")
                )


def _lease(conn: sa.Connection, table: sa.Table, ids: list[int], until: datetime) -> None:
    if ids:
        conn.execute(
            table.update()
            .where(table.c.id.in_(ids))
            .values(next_attempt_at=until, attempts=table.c.attempts + 1, delivery_state=_IN_FLIGHT)
        )


def _renew(engine: sa.Engine, table: sa.Table, row_id: int, *, attempts: int, until: datetime) -> bool:
    """Whether this claim (attempt `attempts`) still holds; if so its lease now runs to `until`."""
    c = table.c
    with writing(engine) as conn:
        return (
            conn.execute(
                table.update()
                .where(c.id == row_id, c.state == "pending", c.attempts == attempts, c.delivery_state == _IN_FLIGHT)
                .values(next_attempt_at=until)
                .execution_options(preserve_rowcount=True)
            ).rowcount
            == 1
        )


def _settle(engine: sa.Engine, table: sa.Table, outcomes: Sequence[tuple[int, int, Outcome]]) -> None:
    if outcomes:
        with writing(engine) as conn:
            _settle_in(conn, table, outcomes)


def _settle_in(conn: sa.Connection, table: sa.Table, outcomes: Sequence[tuple[int, int, Outcome]]) -> int:
    """Write outcomes only while their claim holds (pending, the same attempt); an untried one gives it back."""
    c = table.c
    statement = (
        table.update()
        .where(c.id == sa.bindparam("b_id"), c.state == "pending", c.attempts == sa.bindparam("b_attempts"))
        .values(
            state=sa.bindparam("b_state"),
            delivery_state=sa.bindparam("b_delivery"),
            posted_ts=sa.func.coalesce(sa.bindparam("b_ts"), c.posted_ts),
            last_error=sa.bindparam("b_error"),
            next_attempt_at=sa.func.coalesce(sa.bindparam("b_at", type_=UTCDateTime()), c.next_attempt_at),
            attempts=c.attempts - sa.bindparam("b_untried", type_=sa.Integer()),
        )
        .execution_options(preserve_rowcount=True)
    )
    params = [
        {
            "b_id": row_id,
            "b_attempts": attempts,
            "b_state": o.state.state,
            "b_delivery": o.state.value,
            "b_ts": o.ts,
            "b_error": o.error[:200] if o.error else None,
            "b_at": o.retry_at,
            "b_untried": int(o.untried),
        }
        for row_id, attempts, o in outcomes
    ]
    if len(params) == 1:
        return conn.execute(statement, params[0]).rowcount
    conn.execute(statement, params)
    return len(params)
