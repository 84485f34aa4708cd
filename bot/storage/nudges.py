"""Nudges (`nudges`): one reminder per promise an auto-reply made, planned, claimed with a lease, settled once.

A row is unique per the DM the auto-reply answered (the database keeps "one nudge per promise"). It is planned
from a sent auto-reply (`unplanned` + `add`); the delivery engine claims it when due, or earlier when the person's
settings changed since it was planned (people.updated_at > planned_at: its due time is recomputed), with SKIP
LOCKED on PostgreSQL. The claim carries what "answered" needs: the DM's state (answered, done, deleted), when the
person last wrote in that DM (dm_presence) and `answered_at`. A snooze puts a sent row back to pending, once.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

import sqlalchemy as sa

from bot.domain.delivery import DeliveryState, Outcome, maybe_posted
from bot.storage import schema
from bot.storage.engine import UTCDateTime, insert_ignore, reading, writing

NUDGE_LEASE = timedelta(minutes=2)
NUDGE_KEY = ["team_id", "user_id", "channel_id", "message_ts"]
MAX_NUDGE_ATTEMPTS = 8

K = TypeVar("K", bound=Hashable)
_n = schema.nudges.c
# The recap fan-out's read, per batch of recaps: built once.
_PROMISED = sa.select(_n.user_id, _n.channel_id, _n.promised_at).where(
    _n.team_id == sa.bindparam("team_id"), _n.user_id.in_(sa.bindparam("users", expanding=True)),
    _n.channel_id.in_(sa.bindparam("channels", expanding=True)), _n.state.in_(("pending", "sent")),
    _n.promised_at >= sa.bindparam("start", type_=UTCDateTime()),
    _n.promised_at < sa.bindparam("end", type_=UTCDateTime()),
)  # fmt: skip
_r = schema.replies.c
_m = schema.messages.c
_p = schema.people.c
_d = schema.dm_presence.c
_IN_FLIGHT = DeliveryState.IN_FLIGHT.value


@dataclass(frozen=True, slots=True)
class SentReply:
    """An auto-reply that went out, not planned yet: what a nudge needs of it."""

    team_id: str
    user_id: str
    sender_id: str
    channel_id: str
    message_ts: str
    thread_ts: str
    received_at: datetime
    external: bool


@dataclass(frozen=True, slots=True)
class ClaimedNudge:
    id: int
    team_id: str
    user_id: str
    sender_id: str
    channel_id: str
    message_ts: str
    thread_ts: str
    received_at: datetime
    external: bool
    promised_at: datetime
    due_at: datetime  # next_attempt_at as the claim found it
    snoozed: bool
    answered: bool  # the DM was answered, ticked done or deleted, or the person wrote there since
    attempts: int
    last_error: str | None = None
    previous: DeliveryState = DeliveryState.QUEUED
    leased_until: datetime | None = None

    @property
    def outcome_unknown(self) -> bool:
        return maybe_posted(self.previous)


_m_join = sa.and_(_m.team_id == _n.team_id, _m.recipient_id == _n.user_id, _m.channel_id == _n.channel_id,
                  _m.ts == _n.message_ts)  # fmt: skip
_d_join = sa.and_(_d.team_id == _n.team_id, _d.user_id == _n.user_id, _d.channel_id == _n.channel_id)
_p_join = sa.and_(_p.team_id == _n.team_id, _p.user_id == _n.user_id)
_NOW = sa.bindparam("now", type_=UTCDateTime())
_CLAIM = (
    sa.select(
        schema.nudges, _m.state.label("message_state"), _d.wrote_at.label("wrote_at"),
    )
    .select_from(schema.nudges.outerjoin(schema.messages, _m_join).outerjoin(schema.dm_presence, _d_join)
                 .outerjoin(schema.people, _p_join))
    .where(_n.state == "pending",
           sa.or_(_n.next_attempt_at <= _NOW,
                  sa.and_(_n.delivery_state != _IN_FLIGHT, _p.updated_at > _n.planned_at,
                          _p.updated_at <= _NOW)))  # re-planned at `now` or later: claimed once per change
    .order_by(_n.next_attempt_at, _n.id)
    .limit(sa.bindparam("limit"))
)  # fmt: skip
_CLAIM_PG = _CLAIM.with_for_update(of=schema.nudges, skip_locked=True)
_OURS = sa.and_(_n.id == sa.bindparam("b_id"), _n.state == "pending", _n.attempts == sa.bindparam("b_attempts"))
_SETTLE = (
    schema.nudges.update()
    .where(_OURS)
    .values(state=sa.bindparam("b_state"), delivery_state=sa.bindparam("b_delivery"),
            next_attempt_at=sa.func.coalesce(sa.bindparam("b_at", type_=UTCDateTime()), _n.next_attempt_at),
            promised_at=sa.func.coalesce(sa.bindparam("b_promise", type_=UTCDateTime()), _n.promised_at),
            planned_at=sa.bindparam("b_now", type_=UTCDateTime()),
            posted_channel=sa.bindparam("b_channel"), posted_ts=sa.bindparam("b_ts"),
            sent_at=sa.bindparam("b_sent_at", type_=UTCDateTime()), last_error=sa.bindparam("b_error"),
            attempts=_n.attempts - sa.bindparam("b_untried", type_=sa.Integer()))
)  # fmt: skip
_RENEW = (
    schema.nudges.update()
    .where(_OURS, _n.delivery_state == _IN_FLIGHT)
    .values(next_attempt_at=sa.bindparam("b_until", type_=UTCDateTime()))
    .execution_options(preserve_rowcount=True)
)
_ANSWERED_STATES = ("answered", "done", "deleted")


def answered(conn: sa.Connection, *, team_id: str, user_id: str, channel_id: str, at: datetime) -> None:
    """The person wrote in this DM at `at` (in the caller's transaction): the nudges of what came before go."""
    conn.execute(
        schema.nudges.update()
        .where(_n.team_id == team_id, _n.user_id == user_id, _n.channel_id == channel_id, _n.state == "pending",
               _n.received_at < at, _n.answered_at.is_(None))
        .values(answered_at=at)
    )  # fmt: skip


class Nudges:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._insert = insert_ignore(engine, schema.nudges, NUDGE_KEY)

    @property
    def _pg(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    # --- planning --------------------------------------------------------------------------------------------

    def unplanned(self, *, since: datetime, limit: int = 500) -> list[SentReply]:
        """Auto-replies sent (for DMs received after `since`) that have no nudge row yet."""
        planned = sa.exists().where(
            _n.team_id == _r.team_id, _n.user_id == _r.recipient_id, _n.channel_id == _r.channel_id,
            _n.message_ts == _r.message_ts,
        )  # fmt: skip
        query = (
            sa.select(_r.team_id, _r.recipient_id, _r.sender_id, _r.channel_id, _r.message_ts, _r.thread_ts,
                      _r.received_at, _r.external)
            .where(_r.state == "sent", _r.received_at >= since, ~planned)
            .order_by(_r.received_at)
            .limit(limit)
        )  # fmt: skip
        with reading(self.engine) as conn:
            return [SentReply(*row) for row in conn.execute(query).all()]

    def add(self, plans: Sequence[tuple[SentReply, datetime | None, datetime | None]], *, now: datetime) -> int:
        """Plan the nudges of sent replies, each (reply, promise, due time), in one transaction; without a promise,
        a settled row that says so (a reply is planned once). Returns how many rows were new."""
        added = 0
        with writing(self.engine) as conn:
            for reply, promised_at, due_at in plans:
                values = {
                    "team_id": reply.team_id, "user_id": reply.user_id, "sender_id": reply.sender_id,
                    "channel_id": reply.channel_id, "message_ts": reply.message_ts, "thread_ts": reply.thread_ts,
                    "received_at": reply.received_at, "external": reply.external, "planned_at": now,
                    "promised_at": promised_at or reply.received_at, "next_attempt_at": due_at or now,
                }  # fmt: skip
                if promised_at is None or due_at is None:
                    values |= {"state": "expired", "delivery_state": DeliveryState.EXPIRED.value,
                               "last_error": "no_promise"}  # fmt: skip
                added += conn.execute(self._insert, values).rowcount
        return added

    # --- the delivery engine's side --------------------------------------------------------------------------

    def claim_due(self, *, now: datetime, limit: int = 100) -> list[ClaimedNudge]:
        """Own the nudges due at `now`, and those whose person changed their settings since they were planned."""
        until = now + NUDGE_LEASE
        with writing(self.engine) as conn:
            rows = conn.execute(_CLAIM_PG if self._pg else _CLAIM, {"now": now, "limit": limit}).all()
            if not rows:
                return []
            conn.execute(
                schema.nudges.update()
                .where(_n.id.in_([row.id for row in rows]))
                .values(next_attempt_at=until, attempts=_n.attempts + 1, delivery_state=_IN_FLIGHT)
            )
        return [
            ClaimedNudge(
                id=row.id, team_id=row.team_id, user_id=row.user_id, sender_id=row.sender_id,
                channel_id=row.channel_id, message_ts=row.message_ts, thread_ts=row.thread_ts,
                received_at=row.received_at, external=row.external, promised_at=row.promised_at,
                due_at=row.next_attempt_at, snoozed=row.snoozed,
                answered=(row.message_state in _ANSWERED_STATES or row.answered_at is not None
                          or (row.wrote_at is not None and row.wrote_at > row.received_at)),
                attempts=row.attempts + 1, last_error=row.last_error, previous=DeliveryState(row.delivery_state),
                leased_until=until,
            )
            for row in rows
        ]  # fmt: skip

    def renew(self, nudge_id: int, *, attempts: int, until: datetime) -> bool:
        with writing(self.engine) as conn:
            return conn.execute(_RENEW, {"b_id": nudge_id, "b_attempts": attempts, "b_until": until}).rowcount == 1

    def settle(self, outcomes: Sequence[tuple[int, int, Outcome, datetime | None]], *, now: datetime) -> None:
        """Write outcomes (id, attempt, outcome, the promise if it moved), each only while its claim holds."""
        if not outcomes:
            return
        values = [
            {"b_id": nudge_id, "b_attempts": attempts, "b_state": outcome.state.state,
             "b_delivery": outcome.state.value, "b_at": outcome.retry_at, "b_promise": promise, "b_now": now,
             "b_channel": outcome.channel, "b_ts": outcome.ts,
             "b_sent_at": now if outcome.state is DeliveryState.SENT else None,
             "b_error": outcome.error[:200] if outcome.error else None, "b_untried": int(outcome.untried)}
            for nudge_id, attempts, outcome, promise in outcomes
        ]  # fmt: skip
        with writing(self.engine) as conn:
            conn.execute(_SETTLE, values)

    # --- the person's side -----------------------------------------------------------------------------------

    def get(self, nudge_id: int) -> sa.RowMapping | None:
        with reading(self.engine) as conn:
            return conn.execute(sa.select(schema.nudges).where(_n.id == nudge_id)).mappings().first()

    def snooze(self, nudge_id: int, *, team_id: str, user_id: str, until: datetime, now: datetime) -> bool:
        """Send the sent nudge again at `until`, once; only its owner can (checked here, not trusted)."""
        with writing(self.engine) as conn:
            return (
                conn.execute(
                    schema.nudges.update()
                    .where(_n.id == nudge_id, _n.team_id == team_id, _n.user_id == user_id, _n.state == "sent",
                           _n.snoozed.is_(False))
                    .values(state="pending", delivery_state=DeliveryState.QUEUED.value, snoozed=True, attempts=0,
                            next_attempt_at=until, planned_at=now, last_error=None)
                    .execution_options(preserve_rowcount=True)
                ).rowcount
                == 1
            )  # fmt: skip

    def done(self, nudge_id: int, *, team_id: str, user_id: str) -> tuple[str, list[int]] | None:
        """The person ticked the conversation off from the nudge: as the recap's Done, every DM waiting for them
        there is done, and the nudge is settled. Returns (channel, the recaps to re-render); None: not theirs."""
        with writing(self.engine) as conn:
            row = conn.execute(
                sa.select(_n.channel_id).where(_n.id == nudge_id, _n.team_id == team_id, _n.user_id == user_id)
            ).first()
            if row is None:
                return None
            waiting = sa.and_(_m.team_id == team_id, _m.recipient_id == user_id, _m.channel_id == row.channel_id,
                              sa.or_(_m.state == "pending", _m.state == "recapped"))  # fmt: skip
            recaps = sorted({r for (r,) in conn.execute(sa.select(_m.recap_id).where(waiting)).all() if r is not None})
            conn.execute(schema.messages.update().where(waiting).values(state="done"))
            conn.execute(
                schema.nudges.update()
                .where(_n.team_id == team_id, _n.user_id == user_id, _n.channel_id == row.channel_id,
                       sa.or_(_n.state == "pending", _n.state == "sent"))
                .values(state="done", last_error=None)
            )  # fmt: skip
        return row.channel_id, recaps

    def promised_today(
        self, team_id: str, user_id: str, channel_ids: Sequence[str], *, start: datetime, end: datetime
    ) -> dict[str, datetime]:
        """For the recap: the earliest promise in [start, end) per conversation, of nudges not settled otherwise."""
        return self.promised_today_many(team_id, {0: (user_id, channel_ids, start, end)}).get(0, {})

    def promised_today_many(
        self, team_id: str, wanted: Mapping[K, tuple[str, Sequence[str], datetime, datetime]]
    ) -> dict[K, dict[str, datetime]]:
        """promised_today for many recaps of one workspace in one read: key -> (person, channels, start, end) in,
        key -> channel -> earliest promise out (recaps without one are left out)."""
        asked = {key: (user_id, set(channels), start, end) for key, (user_id, channels, start, end) in wanted.items()}
        everyone = {channel for _user, channels, _start, _end in asked.values() for channel in channels}
        if not everyone:
            return {}
        by_user: dict[str, list[K]] = {}
        for key, (user_id, _channels, _start, _end) in asked.items():
            by_user.setdefault(user_id, []).append(key)
        params = {"team_id": team_id, "users": list(by_user), "channels": list(everyone),
                  "start": min(start for _user, _channels, start, _end in asked.values()),
                  "end": max(end for _user, _channels, _start, end in asked.values())}  # fmt: skip
        with reading(self.engine) as conn:
            rows = conn.execute(_PROMISED, params).all()
        found: dict[K, dict[str, datetime]] = {}
        for user_id, channel_id, at in rows:
            for key in by_user[user_id]:
                _user, channels, start, end = asked[key]
                if channel_id not in channels or not start <= at < end:
                    continue
                mine = found.setdefault(key, {})
                if channel_id not in mine or at < mine[channel_id]:
                    mine[channel_id] = at
        return found
