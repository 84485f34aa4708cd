"""Recaps (`recaps`): which person's recap is due, who sends it (a leased claim), and how each attempt ended.

A recap row is unique per person, window (`due_at`) and `seq`. Whoever inserts it, or takes over its expired
lease, owns it; in the same transaction the inbox (bot/storage/inbox.py) moves the person's due messages into it,
so a message is in exactly one recap. Messages recorded after a window's recap went out get a follow-up (`seq` +
1). Its `delivery_state` is a DeliveryState; `last_error` holds only the last failure's code.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from bot.domain.delivery import DeliveryState, Outcome, maybe_posted
from bot.domain.recap import WaitingMessage
from bot.storage import db, inbox
from bot.storage.inbox import Inbox

RECAP_LEASE = timedelta(minutes=5)  # longer than any send with its retries can take


@dataclass(frozen=True, slots=True)
class ClaimedRecap:
    id: int
    team_id: str
    user_id: str
    due_at: datetime
    attempts: int  # this claim's attempt number
    last_error: str | None = None  # the code of the previous attempt's failure, if any
    previous: DeliveryState = DeliveryState.QUEUED  # the row's state as this claim found it
    leased_until: datetime | None = None
    # Whether the claim already moved the person's due messages into it (claim_new); if not, the sender does.
    attached: bool = False

    @property
    def outcome_unknown(self) -> bool:
        """An earlier attempt may have posted: it timed out, or its process died mid-send (a lost lease)."""
        return maybe_posted(self.previous)


@dataclass(frozen=True, slots=True)
class SentRecap:
    """Attempt `attempts` of recap `recap_id` was posted: where, when (the tick's time) and whether late."""

    recap_id: int
    attempts: int
    channel_id: str
    message_ts: str | None
    sent_at: datetime
    late: bool


_r = db.recaps.c
_IN_FLIGHT = DeliveryState.IN_FLIGHT.value
# The fan-out runs these once per recap: built once (building them cost about as much as running them).
_LATEST_RECAPS = sa.select(_r.id, _r.user_id, _r.due_at, _r.seq, _r.state).where(
    _r.team_id == sa.bindparam("team_id"), _r.user_id.in_(sa.bindparam("user_ids", expanding=True)),
    _r.due_at.in_(sa.bindparam("dues", expanding=True, type_=db.UTCDateTime())),
)  # fmt: skip
# An attempt's outcome is written only while its claim holds (pending, the same attempt): a sender whose lease ran
# out must not overwrite what the claim that took the recap over wrote (a "sent" made pending again is posted twice).
_OURS = sa.and_(_r.id == sa.bindparam("b_id"), _r.state == "pending", _r.attempts == sa.bindparam("b_attempts"))
_SETTLE = (
    db.recaps.update()
    .where(_OURS)
    .values(state=sa.bindparam("b_state"), delivery_state=sa.bindparam("b_delivery"),
            next_attempt_at=sa.func.coalesce(sa.bindparam("b_at", type_=db.UTCDateTime()), _r.next_attempt_at),
            last_error=sa.bindparam("b_error"),
            # Handed back untried (a stop, a workspace held back): the attempt is given back, as for replies
            attempts=_r.attempts - sa.bindparam("b_untried", type_=sa.Integer()))
)  # fmt: skip
_MARK_SENT = (
    db.recaps.update()
    .where(_OURS)
    .values(state="sent", delivery_state=DeliveryState.SENT.value, channel_id=sa.bindparam("b_channel_id"),
            message_ts=sa.bindparam("b_message_ts"), sent_at=sa.bindparam("b_sent_at", type_=db.UTCDateTime()),
            late=sa.bindparam("b_late"), last_error=None)
)  # fmt: skip
_RENEW = (
    db.recaps.update()
    .where(_r.id == sa.bindparam("b_id"), _r.state == "pending", _r.attempts == sa.bindparam("b_attempts"),
           _r.delivery_state == _IN_FLIGHT)
    .values(next_attempt_at=sa.bindparam("b_until", type_=db.UTCDateTime()))
    .execution_options(preserve_rowcount=True)
)  # fmt: skip


class RecapStore:
    def __init__(self, engine: sa.Engine, inbox: Inbox) -> None:
        self.engine = engine
        self.inbox = inbox
        self._insert_recaps = db.insert_ignore(engine, db.recaps, ["team_id", "user_id", "due_at", "seq"]).returning(
            _r.id, _r.team_id, _r.user_id, _r.due_at
        )

    @property
    def _pg(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def due_people(
        self, *, now: datetime, limit: int = 1000, skip_teams: Collection[str] = ()
    ) -> list[tuple[str, str, datetime]]:
        """(team, person, earliest due) for everyone whose recap is due, except in `skip_teams` (held back)."""
        return self.inbox.due_people(now=now, limit=limit, skip_teams=skip_teams)

    def claim_new(self, team_id: str, user_id: str, *, due_at: datetime, now: datetime) -> ClaimedRecap | None:
        """Own the recap of this person's window, creating it (or a follow-up) if needed, and move their due
        messages into it — one transaction; None if another process has it."""
        claimed = self.claim_new_many([(team_id, user_id, due_at)], now=now)
        return claimed[0] if claimed else None

    def claim_new_many(self, people: Sequence[tuple[str, str, datetime]], *, now: datetime) -> list[ClaimedRecap]:
        """claim_new for each (team, person, due) in one transaction: the recaps this process now owns, each with
        its person's due messages moved into it (those another process has are left out).

        The window's latest recaps are read in one query and the new ones inserted in one statement. Take-overs
        come first (in recap id order, as mark_sent_many's), then the inserts (in person order), each in one order
        for every process: two processes' overlapping batches wait for each other's rows (PostgreSQL) in the same
        order, never in a cycle."""
        ordered = sorted(set(people))
        with db.writing(self.engine) as conn:
            latest = self._latest(conn, ordered)
            claimed: list[ClaimedRecap] = []
            new: list[tuple[str, str, datetime, int]] = []
            taking_over: list[int] = []
            for team_id, user_id, due_at in ordered:
                row = latest.get((team_id, user_id, due_at))
                if row is None:
                    new.append((team_id, user_id, due_at, 0))
                elif row.state == "pending":
                    taking_over.append(row.id)
                elif inbox.any_due(conn, team_id=team_id, user_id=user_id, now=now):
                    new.append((team_id, user_id, due_at, row.seq + 1))
                # else: the window's recap went out with everything that was due (another process sent it since
                # this one read who is due): nothing to follow up.
            # Existing rows are locked in id order, as every writer of several recaps locks them (mark_sent_many)
            for recap_id in sorted(taking_over):
                taken = self._take_over(conn, recap_id, now=now)
                if taken is not None:
                    claimed.append(taken)
            claimed += self._insert(conn, new, now=now)
            inbox.attach_due_many(conn, [(c.team_id, c.user_id, c.id) for c in claimed], now=now)
        return [replace(c, attached=True) for c in claimed]

    def _latest(self, conn: sa.Connection, people: Sequence[tuple[str, str, datetime]]) -> dict[tuple, sa.Row]:
        """(team, person, due) -> the latest recap of that window (highest seq), for those that have one."""
        latest: dict[tuple, sa.Row] = {}
        wanted = set(people)
        for team_id in {team for team, _user, _due in people}:
            params = {"team_id": team_id, "user_ids": sorted({u for t, u, _d in people if t == team_id}),
                      "dues": sorted({d for t, _u, d in people if t == team_id})}  # fmt: skip
            for row in conn.execute(_LATEST_RECAPS, params).all():
                key = (team_id, row.user_id, row.due_at)
                if key in wanted and (key not in latest or row.seq > latest[key].seq):
                    latest[key] = row
        return latest

    def _insert(
        self, conn: sa.Connection, new: Sequence[tuple[str, str, datetime, int]], *, now: datetime
    ) -> list[ClaimedRecap]:
        """Create these recaps, leased to this process; those another process created a moment ago are left out."""
        if not new:
            return []
        until = now + RECAP_LEASE
        rows = conn.execute(self._insert_recaps, [
            {"team_id": team_id, "user_id": user_id, "due_at": due_at, "seq": seq, "attempts": 1,
             "next_attempt_at": until, "delivery_state": _IN_FLIGHT}
            for team_id, user_id, due_at, seq in new
        ]).all()  # fmt: skip
        ids = {(row.team_id, row.user_id, row.due_at): row.id for row in rows}
        claimed = []
        for team_id, user_id, due_at, _seq in new:
            recap_id = ids.get((team_id, user_id, due_at))
            if recap_id is not None:
                claimed.append(ClaimedRecap(id=recap_id, team_id=team_id, user_id=user_id, due_at=due_at, attempts=1,
                                            leased_until=until))  # fmt: skip
        return claimed

    def claim_retries(self, *, now: datetime, limit: int = 100) -> list[ClaimedRecap]:
        """Own recaps whose send failed (or whose owner died) and whose next attempt is due."""
        query = (
            sa.select(_r.id, _r.team_id, _r.user_id, _r.due_at, _r.attempts, _r.last_error, _r.delivery_state)
            .where(_r.state == "pending", _r.next_attempt_at <= now)
            .order_by(_r.next_attempt_at, _r.id)  # ix_recaps_due's order: the scan stops at `limit`
            .limit(limit)
        )
        if self._pg:
            query = query.with_for_update(skip_locked=True)
        until = now + RECAP_LEASE
        with db.writing(self.engine) as conn:
            rows = conn.execute(query).all()
            if rows:
                conn.execute(
                    db.recaps.update()
                    .where(_r.id.in_([row.id for row in rows]))
                    .values(next_attempt_at=until, attempts=_r.attempts + 1, delivery_state=_IN_FLIGHT)
                )
        return [
            ClaimedRecap(
                row.id,
                row.team_id,
                row.user_id,
                row.due_at,
                row.attempts + 1,
                row.last_error,
                DeliveryState(row.delivery_state),
                until,
            )
            for row in rows
        ]

    def _take_over(self, conn: sa.Connection, recap_id: int, *, now: datetime) -> ClaimedRecap | None:
        # The previous attempt's state is read before the claim overwrites it (RETURNING gives the new value).
        previous = sa.select(_r.last_error, _r.delivery_state).where(_r.id == recap_id)
        if self._pg:
            previous = previous.with_for_update()
        before = conn.execute(previous).first()
        until = now + RECAP_LEASE
        row = conn.execute(
            db.recaps.update()
            .where(_r.id == recap_id, _r.state == "pending", _r.next_attempt_at <= now)
            .values(next_attempt_at=until, attempts=_r.attempts + 1, delivery_state=_IN_FLIGHT)
            .returning(_r.id, _r.team_id, _r.user_id, _r.due_at, _r.attempts)
        ).first()
        if row is None or before is None:
            return None
        return ClaimedRecap(row.id, row.team_id, row.user_id, row.due_at, row.attempts, before.last_error,
                            DeliveryState(before.delivery_state), until)  # fmt: skip

    def attach_and_read(self, recap: ClaimedRecap, *, now: datetime) -> list[WaitingMessage]:
        """Move the person's due waiting messages into this recap; return what it now holds."""
        return self.attach_and_read_many([recap], now=now)[recap.id]

    def attach_and_read_many(self, recaps: Sequence[ClaimedRecap], *, now: datetime) -> dict[int, list[WaitingMessage]]:
        """What each claimed recap holds now (answered or deleted messages have left it), read in one query; the
        due messages of those whose claim did not attach them (retries) are moved in first."""
        unattached = [(r.team_id, r.user_id, r.id) for r in recaps if not r.attached]
        if not unattached:
            with db.reading(self.engine) as conn:
                return inbox.held_many(conn, [r.id for r in recaps])
        with db.writing(self.engine) as conn:
            inbox.attach_due_many(conn, unattached, now=now)
            return inbox.held_many(conn, [r.id for r in recaps])

    def read(self, recap_id: int) -> list[WaitingMessage]:
        return self.inbox.in_recap(recap_id)

    def get(self, recap_id: int) -> sa.RowMapping | None:
        with db.reading(self.engine) as conn:
            return conn.execute(sa.select(db.recaps).where(_r.id == recap_id)).mappings().first()

    def renew(self, recap_id: int, *, attempts: int, until: datetime) -> bool:
        """Whether this claim (attempt `attempts`) still holds; if so its lease now runs to `until`."""
        with db.writing(self.engine) as conn:
            return conn.execute(_RENEW, {"b_id": recap_id, "b_attempts": attempts, "b_until": until}).rowcount == 1

    def mark_sent(
        self, recap_id: int, *, attempts: int, channel_id: str, message_ts: str | None, now: datetime, late: bool
    ) -> None:
        """Record the post of attempt `attempts` (only while that claim holds)."""
        self.mark_sent_many([SentRecap(recap_id, attempts, channel_id, message_ts, now, late)])

    def mark_sent_many(self, sent: Sequence[SentRecap]) -> None:
        """Record many posts in one transaction (each only while its claim holds)."""
        if not sent:
            return
        with db.writing(self.engine) as conn:
            # In id order, as claim_new takes recaps over: two transactions locking the same rows in opposite
            # orders deadlocked (PostgreSQL aborted the one recording the posts).
            conn.execute(_MARK_SENT, [
                {"b_id": s.recap_id, "b_attempts": s.attempts, "b_channel_id": s.channel_id,
                 "b_message_ts": s.message_ts, "b_sent_at": s.sent_at, "b_late": s.late}
                for s in sorted(sent, key=lambda s: s.recap_id)
            ])  # fmt: skip

    def settle(self, recap_id: int, outcome: Outcome, *, attempts: int) -> None:
        """Record an attempt that posted nothing: due again (an open state, at `retry_at`), empty or expired (only
        while the claim of attempt `attempts` holds)."""
        values: dict[str, Any] = {
            "b_id": recap_id,
            "b_attempts": attempts,
            "b_state": outcome.state.state,
            "b_delivery": outcome.state.value,
            "b_at": outcome.retry_at,
            "b_error": outcome.error[:200] if outcome.error else None,
            "b_untried": int(outcome.untried),
        }
        with db.writing(self.engine) as conn:
            conn.execute(_SETTLE, values)

    def give_up(self, recap_id: int, *, attempts: int, error: str, release_until: datetime) -> None:
        """Mark the recap failed and put its unanswered messages back to waiting, due at `release_until` (only
        while the claim of attempt `attempts` holds)."""
        with db.writing(self.engine) as conn:
            failed = conn.execute(
                db.recaps.update()
                .where(_r.id == recap_id, _r.state == "pending", _r.attempts == attempts)
                .values(state="failed", delivery_state=DeliveryState.FAILED.value, last_error=error[:200])
                .execution_options(preserve_rowcount=True)
            )
            if failed.rowcount == 1:
                inbox.release(conn, recap_id, until=release_until)

    def mark_done(self, recap_id: int, channel_id: str, *, team_id: str, user_id: str) -> bool:
        """The person ticked one conversation off. Only the recap's owner can (checked here, not trusted)."""
        with db.writing(self.engine) as conn:
            owner = conn.execute(
                sa.select(_r.id).where(_r.id == recap_id, _r.team_id == team_id, _r.user_id == user_id)
            ).first()
            if owner is None:
                return False
            inbox.tick_off(conn, recap_id, channel_id)
        return True
