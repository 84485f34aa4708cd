"""Urgent routes and the urgent-notice outbox (`urgent_routes`, `urgent_notices`), issue 19.

A route says where a person's "It's urgent" notes go: a backup's user id or "me". A notice is a sender's note,
recorded before the modal's ack; its unique key (recipient, sender, off-window key of the auto-reply) keeps it to
one per sender per off-window. The delivery engine claims due notices with a lease (SKIP LOCKED on PostgreSQL),
re-checks the claim before posting (`renew`) and settles each once, while its claim holds.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

import sqlalchemy as sa

from bot.domain.delivery import DeliveryState, Outcome, maybe_posted
from bot.domain.urgent import ME, NOT_PASSED_ON
from bot.storage import schema
from bot.storage.engine import UTCDateTime, dialect_insert, reading, upsert, writing

K = TypeVar("K", bound=Hashable)
URGENT_LEASE = timedelta(seconds=60)
MAX_URGENT_ATTEMPTS = 10
NOTICE_KEY = ["team_id", "recipient_id", "sender_id", "window_key"]

_u = schema.urgent_notices.c
# The recap fan-out's read, per batch of recaps: built once.
_FOR_RECAPS = sa.select(_u.recipient_id, _u.sender_id, _u.target_id, _u.state, _u.created_at).where(
    _u.team_id == sa.bindparam("team_id"), _u.recipient_id.in_(sa.bindparam("recipients", expanding=True)),
    _u.sender_id.in_(sa.bindparam("senders", expanding=True)),
    _u.created_at >= sa.bindparam("since", type_=UTCDateTime()),
)  # fmt: skip
_rt = schema.urgent_routes.c
# Built once: read for every batch of auto-replies.
_ROUTES = sa.select(_rt.user_id, _rt.route_to).where(
    _rt.team_id == sa.bindparam("team_id"), _rt.user_id.in_(sa.bindparam("user_ids", expanding=True))
)
_r = schema.replies.c


@dataclass(frozen=True, slots=True)
class RepliedMessage:
    """The auto-reply an "It's urgent" button belongs to: whose DM it answered, where, for which off-window."""

    id: int
    team_id: str
    recipient_id: str
    sender_id: str
    window_key: str
    window_end: datetime | None
    channel_id: str
    message_ts: str
    thread_ts: str
    reply_ts: str | None
    state: str


@dataclass(frozen=True, slots=True)
class Notice:
    """A recorded urgent notice (as the listener reads it back)."""

    id: int
    target_id: str
    state: str


@dataclass(frozen=True, slots=True)
class PendingNotice:
    id: int
    team_id: str
    recipient_id: str
    sender_id: str
    target_id: str
    reply_id: int
    channel_id: str
    message_ts: str
    note: str
    created_at: datetime
    attempts: int  # this claim's attempt number
    last_error: str | None = None
    previous: DeliveryState = DeliveryState.QUEUED
    leased_until: datetime | None = None
    notice_channel: str | None = None

    @property
    def outcome_unknown(self) -> bool:
        return maybe_posted(self.previous)


_RECORDED = ["team_id", "recipient_id", "sender_id", "target_id", "window_key", "reply_id", "channel_id", "message_ts",
             "note", "created_at", "next_attempt_at"]  # fmt: skip
_OURS = sa.and_(_u.id == sa.bindparam("b_id"), _u.state == "pending", _u.attempts == sa.bindparam("b_attempts"))
_SETTLE = (
    schema.urgent_notices.update()
    .where(_OURS)
    .values(
        state=sa.bindparam("b_state"), delivery_state=sa.bindparam("b_delivery"),
        notice_ts=sa.func.coalesce(sa.bindparam("b_ts"), _u.notice_ts),
        notice_channel=sa.func.coalesce(sa.bindparam("b_channel"), _u.notice_channel),
        last_error=sa.bindparam("b_error"),
        next_attempt_at=sa.func.coalesce(sa.bindparam("b_at", type_=UTCDateTime()), _u.next_attempt_at),
        attempts=_u.attempts - sa.bindparam("b_untried", type_=sa.Integer()),
    )
    .execution_options(preserve_rowcount=True)
)  # fmt: skip
_RENEW = (
    schema.urgent_notices.update()
    .where(_OURS, _u.delivery_state == DeliveryState.IN_FLIGHT.value)
    .values(next_attempt_at=sa.bindparam("b_until", type_=UTCDateTime()))
    .execution_options(preserve_rowcount=True)
)
_CLAIM = (
    sa.select(schema.urgent_notices)
    .where(_u.state == "pending", _u.next_attempt_at <= sa.bindparam("now", type_=UTCDateTime()))
    .order_by(_u.next_attempt_at, _u.id)
    .limit(sa.bindparam("limit"))
)
_CLAIM_PG = _CLAIM.with_for_update(skip_locked=True)


class UrgentStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        # A note that failed for good gives its sender's once-per-window place back: the same statement inserts, or
        # re-queues the failed row (and only a failed one), so two submissions racing still record one note.
        insert = dialect_insert(engine)(schema.urgent_notices)
        fresh = {"state": "pending", "delivery_state": DeliveryState.QUEUED.value, "attempts": 0,
                 "notice_channel": None, "notice_ts": None, "last_error": None}  # fmt: skip
        again = [c for c in _RECORDED if c not in NOTICE_KEY]
        self._insert_notice = insert.on_conflict_do_update(
            index_elements=NOTICE_KEY,
            set_={**{k: insert.excluded[k] for k in again}, **fresh},
            where=_u.state == "failed",
        ).execution_options(preserve_rowcount=True)

    # --- routes ----------------------------------------------------------------------------------------------

    def route(self, team_id: str, user_id: str) -> str | None:
        """Where `user_id`'s urgent notes go: a user id, ME, or None (off)."""
        with reading(self.engine) as conn:
            return conn.execute(
                sa.select(_rt.route_to).where(_rt.team_id == team_id, _rt.user_id == user_id)
            ).scalar_one_or_none()

    def routes(self, team_id: str, user_ids: Iterable[str]) -> dict[str, str]:
        ids = list(set(user_ids))
        if not ids:
            return {}
        with reading(self.engine) as conn:
            rows = conn.execute(_ROUTES, {"team_id": team_id, "user_ids": ids}).all()
        return {row.user_id: row.route_to for row in rows}

    def set_route(self, team_id: str, user_id: str, route_to: str | None, *, now: datetime) -> None:
        with writing(self.engine) as conn:
            if route_to is None:
                conn.execute(schema.urgent_routes.delete().where(_rt.team_id == team_id, _rt.user_id == user_id))
                return
            values = {"team_id": team_id, "user_id": user_id, "route_to": route_to, "updated_at": now}
            conn.execute(upsert(self.engine, schema.urgent_routes, ["team_id", "user_id"], values))

    # --- the button's reply ----------------------------------------------------------------------------------

    def replied_message(self, team_id: str, reply_id: int) -> RepliedMessage | None:
        """The auto-reply `reply_id` of workspace `team_id` (None: no such reply there)."""
        with reading(self.engine) as conn:
            row = conn.execute(
                sa.select(schema.replies).where(_r.id == reply_id, _r.team_id == team_id)
            ).mappings().first()  # fmt: skip
        if row is None:
            return None
        return RepliedMessage(
            id=row["id"], team_id=row["team_id"], recipient_id=row["recipient_id"], sender_id=row["sender_id"],
            window_key=row["window_key"], window_end=row["window_end"], channel_id=row["channel_id"],
            message_ts=row["message_ts"], thread_ts=row["thread_ts"], reply_ts=row["reply_ts"], state=row["state"],
        )  # fmt: skip

    # --- notices ---------------------------------------------------------------------------------------------

    def existing(self, reply: RepliedMessage) -> Notice | None:
        """The notice this sender already sent in the reply's off-window, if any (one that failed for good is none:
        the sender may try again)."""
        with reading(self.engine) as conn:
            row = conn.execute(
                sa.select(_u.id, _u.target_id, _u.state).where(
                    _u.team_id == reply.team_id, _u.recipient_id == reply.recipient_id,
                    _u.sender_id == reply.sender_id, _u.window_key == reply.window_key, _u.state != "failed",
                )
            ).first()  # fmt: skip
        return Notice(id=row.id, target_id=row.target_id, state=row.state) if row is not None else None

    def record(self, reply: RepliedMessage, *, target_id: str, note: str, now: datetime) -> int | None:
        """Record the sender's note, due now; None: this sender already sent one in this off-window (a note that
        failed for good is replaced)."""
        values = {
            "team_id": reply.team_id, "recipient_id": reply.recipient_id, "sender_id": reply.sender_id,
            "target_id": target_id, "window_key": reply.window_key, "reply_id": reply.id,
            "channel_id": reply.channel_id, "message_ts": reply.message_ts, "note": note, "created_at": now,
            "next_attempt_at": now,
        }  # fmt: skip
        with writing(self.engine) as conn:
            if not conn.execute(self._insert_notice, values).rowcount:
                return None
            return conn.execute(sa.select(_u.id).where(*(_u[k] == values[k] for k in NOTICE_KEY))).scalar_one()

    def claim_due(self, *, now: datetime, limit: int = 20) -> list[PendingNotice]:
        query = _CLAIM_PG if self.engine.dialect.name == "postgresql" else _CLAIM
        until = now + URGENT_LEASE
        with writing(self.engine) as conn:
            rows = conn.execute(query, {"now": now, "limit": limit}).mappings().all()
            if not rows:
                return []
            conn.execute(
                schema.urgent_notices.update()
                .where(_u.id.in_([row["id"] for row in rows]))
                .values(next_attempt_at=until, attempts=_u.attempts + 1, delivery_state=DeliveryState.IN_FLIGHT.value)
            )
        return [
            PendingNotice(
                id=row["id"],
                team_id=row["team_id"],
                recipient_id=row["recipient_id"],
                sender_id=row["sender_id"],
                target_id=row["target_id"],
                reply_id=row["reply_id"],
                channel_id=row["channel_id"],
                message_ts=row["message_ts"],
                note=row["note"],
                created_at=row["created_at"],
                attempts=row["attempts"] + 1,
                last_error=row["last_error"],
                previous=DeliveryState(row["delivery_state"]),
                leased_until=until,
                notice_channel=row["notice_channel"],
            )
            for row in rows
        ]

    def renew(self, notice_id: int, *, attempts: int, until: datetime) -> bool:
        with writing(self.engine) as conn:
            params = {"b_id": notice_id, "b_attempts": attempts, "b_until": until}
            return conn.execute(_RENEW, params).rowcount == 1

    def settle(self, notice_id: int, *, attempts: int, outcome: Outcome) -> bool:
        """Write an attempt's outcome while its claim holds; False: another claim owns the notice now."""
        params = {
            "b_id": notice_id, "b_attempts": attempts, "b_state": outcome.state.state,
            "b_delivery": outcome.state.value, "b_ts": outcome.ts, "b_channel": outcome.channel,
            "b_error": outcome.error[:200] if outcome.error else None, "b_at": outcome.retry_at,
            "b_untried": int(outcome.untried),
        }  # fmt: skip
        with writing(self.engine) as conn:
            return conn.execute(_SETTLE, params).rowcount == 1

    def for_recap(
        self, team_id: str, recipient_id: str, sender_ids: Iterable[str], *, since: datetime
    ) -> dict[str, str]:
        """Sender -> who their urgent note went to ("me": the person; NOT_PASSED_ON: it failed for good), for notices
        since `since` (the recap's earliest message)."""
        return self.for_recaps(team_id, {0: (recipient_id, sender_ids, since)}).get(0, {})

    def for_recaps(
        self, team_id: str, wanted: Mapping[K, tuple[str, Iterable[str], datetime]]
    ) -> dict[K, dict[str, str]]:
        """for_recap for many recaps of one workspace in one read: key -> (recipient, senders, since) in, key ->
        sender -> target out (recaps without a note are left out)."""
        asked = {key: (recipient, set(senders), since) for key, (recipient, senders, since) in wanted.items()}
        everyone = {sender for _recipient, senders, _since in asked.values() for sender in senders}
        if not everyone:
            return {}
        by_recipient: dict[str, list[K]] = {}
        for key, (recipient, _senders, _since) in asked.items():
            by_recipient.setdefault(recipient, []).append(key)
        params = {"team_id": team_id, "recipients": list(by_recipient), "senders": list(everyone),
                  "since": min(since for _recipient, _senders, since in asked.values())}  # fmt: skip
        with reading(self.engine) as conn:
            rows = conn.execute(_FOR_RECAPS, params).all()
        found: dict[K, dict[str, str]] = {}
        for row in sorted(rows, key=lambda r: r.state != "failed"):  # a note passed on outranks one that failed
            passed_to = ME if row.target_id == row.recipient_id else row.target_id
            target = NOT_PASSED_ON if row.state == "failed" else passed_to
            for key in by_recipient[row.recipient_id]:
                _recipient, senders, since = asked[key]
                if row.sender_id in senders and row.created_at >= since:
                    found.setdefault(key, {})[row.sender_id] = target
        return found
