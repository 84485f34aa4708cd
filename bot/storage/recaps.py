"""Recap bookkeeping: which person's recap is due, who sends it (a leased claim), and what it holds.

A recap row is unique per person, window (`due_at`) and `seq`. Whoever inserts it, or takes over its
expired lease, owns it; the owner moves the person's due messages into it in one UPDATE, so a message is
in exactly one recap. Messages recorded after a window's recap went out get a follow-up (`seq` + 1).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from bot.domain.delivery import IN_FLIGHT, outcome_unknown
from bot.domain.recap import WaitingMessage
from bot.storage import db

RECAP_LEASE = timedelta(minutes=5)  # longer than any send with its retries can take


@dataclass(frozen=True, slots=True)
class ClaimedRecap:
    id: int
    team_id: str
    user_id: str
    due_at: datetime
    attempts: int
    # Why the previous attempt failed, as it stood before this claim: IN_FLIGHT (written by every claim) when that
    # attempt never recorded an outcome — its process died, or lost the database, maybe after posting.
    last_error: str | None = None

    @property
    def outcome_unknown(self) -> bool:
        return outcome_unknown(self.attempts, self.last_error)


_r, _m = db.recaps.c, db.messages.c
# The fan-out runs these once per recap: built once (building them cost about as much as running them).
_LATEST_RECAP = (
    sa.select(_r.id, _r.seq, _r.state, _r.next_attempt_at, _r.attempts)
    .where(_r.team_id == sa.bindparam("team_id"), _r.user_id == sa.bindparam("user_id"),
           _r.due_at == sa.bindparam("due_at", type_=db.UTCDateTime()))
    .order_by(_r.seq.desc())
    .limit(1)
)  # fmt: skip
_ATTACH_DUE = (
    db.messages.update()
    .where(_m.team_id == sa.bindparam("b_team_id"), _m.recipient_id == sa.bindparam("b_user_id"),
           _m.state == "pending", _m.due_at <= sa.bindparam("b_now", type_=db.UTCDateTime()))
    .values(state="recapped", recap_id=sa.bindparam("b_recap_id"))
)  # fmt: skip
_HELD = (
    sa.select(_m.channel_id, _m.sender_id, _m.ts, _m.thread_ts, _m.received_at, _m.text, _m.state)
    .where(_m.recap_id == sa.bindparam("recap_id"), sa.or_(_m.state == "recapped", _m.state == "done"))
    .order_by(_m.received_at)
)
_MARK_SENT = (
    db.recaps.update()
    .where(_r.id == sa.bindparam("b_id"))
    .values(state="sent", channel_id=sa.bindparam("b_channel_id"), message_ts=sa.bindparam("b_message_ts"),
            sent_at=sa.bindparam("b_sent_at", type_=db.UTCDateTime()), late=sa.bindparam("b_late"), last_error=None)
)  # fmt: skip


class RecapStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._insert_recap = db.insert_ignore(engine, db.recaps, ["team_id", "user_id", "due_at", "seq"]).returning(
            _r.id
        )

    @property
    def _pg(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def due_people(
        self, *, now: datetime, limit: int = 1000, skip_teams: Collection[str] = ()
    ) -> list[tuple[str, str, datetime]]:
        """(team, person, earliest due) for everyone with waiting messages whose recap is due, except in
        `skip_teams` (workspaces the sender is holding back)."""
        m = db.messages.c
        where = [m.state == "pending", m.due_at <= now]
        if skip_teams:
            where.append(m.team_id.not_in(list(skip_teams)))
        query = (
            sa.select(m.team_id, m.recipient_id, sa.func.min(m.due_at))
            .where(*where)
            .group_by(m.team_id, m.recipient_id)
            .order_by(sa.func.min(m.due_at))
            .limit(limit)
        )
        with db.reading(self.engine) as conn:
            return [(team, user, due) for team, user, due in conn.execute(query).all()]

    def claim_new(
        self, team_id: str, user_id: str, *, due_at: datetime, now: datetime
    ) -> tuple[ClaimedRecap, list[WaitingMessage]] | None:
        """Own the recap of this person's window, creating it (or a follow-up) if needed, and move their due
        messages into it — one transaction; None if another process has it."""
        with db.writing(self.engine) as conn:
            recap = self._claim(conn, team_id, user_id, due_at=due_at, now=now)
            return None if recap is None else (recap, self._attach(conn, recap, now=now))

    def _claim(
        self, conn: sa.Connection, team_id: str, user_id: str, *, due_at: datetime, now: datetime
    ) -> ClaimedRecap | None:
        latest = conn.execute(_LATEST_RECAP, {"team_id": team_id, "user_id": user_id, "due_at": due_at}).first()
        if latest is not None and latest.state == "pending":
            return self._take_over(conn, latest.id, now=now)
        seq = 0 if latest is None else latest.seq + 1
        inserted = conn.execute(
            self._insert_recap,
            {"team_id": team_id, "user_id": user_id, "due_at": due_at, "seq": seq, "attempts": 1,
             "next_attempt_at": now + RECAP_LEASE},
        ).first()  # fmt: skip
        if inserted is None:
            return None  # another process created it a moment ago
        return ClaimedRecap(id=inserted.id, team_id=team_id, user_id=user_id, due_at=due_at, attempts=1)

    def claim_retries(self, *, now: datetime, limit: int = 100) -> list[ClaimedRecap]:
        """Own recaps whose send failed (or whose owner died) and whose next attempt is due."""
        r = db.recaps.c
        query = (
            sa.select(r.id, r.team_id, r.user_id, r.due_at, r.attempts, r.last_error)
            .where(r.state == "pending", r.next_attempt_at <= now)
            .order_by(r.next_attempt_at)
            .limit(limit)
        )
        if self._pg:
            query = query.with_for_update(skip_locked=True)
        with db.writing(self.engine) as conn:
            rows = conn.execute(query).all()
            if rows:
                conn.execute(
                    db.recaps.update()
                    .where(r.id.in_([row.id for row in rows]))
                    .values(next_attempt_at=now + RECAP_LEASE, attempts=r.attempts + 1, last_error=IN_FLIGHT)
                )
        return [
            ClaimedRecap(row.id, row.team_id, row.user_id, row.due_at, row.attempts + 1, row.last_error) for row in rows
        ]

    def _take_over(self, conn: sa.Connection, recap_id: int, *, now: datetime) -> ClaimedRecap | None:
        r = db.recaps.c
        # The previous attempt's error is read before the claim overwrites it (RETURNING gives the new value).
        previous = sa.select(r.last_error).where(r.id == recap_id)
        if self._pg:
            previous = previous.with_for_update()
        last_error = conn.execute(previous).scalar()
        row = conn.execute(
            db.recaps.update()
            .where(r.id == recap_id, r.state == "pending", r.next_attempt_at <= now)
            .values(next_attempt_at=now + RECAP_LEASE, attempts=r.attempts + 1, last_error=IN_FLIGHT)
            .returning(r.id, r.team_id, r.user_id, r.due_at, r.attempts)
        ).first()
        return ClaimedRecap(row.id, row.team_id, row.user_id, row.due_at, row.attempts, last_error) if row else None

    def attach_and_read(self, recap: ClaimedRecap, *, now: datetime) -> list[WaitingMessage]:
        """Move the person's due waiting messages into this recap; return what it now holds (unanswered)."""
        with db.writing(self.engine) as conn:
            return self._attach(conn, recap, now=now)

    @staticmethod
    def _attach(conn: sa.Connection, recap: ClaimedRecap, *, now: datetime) -> list[WaitingMessage]:
        conn.execute(
            _ATTACH_DUE, {"b_team_id": recap.team_id, "b_user_id": recap.user_id, "b_now": now, "b_recap_id": recap.id}
        )
        return [_waiting(row) for row in conn.execute(_HELD, {"recap_id": recap.id}).all()]

    def read(self, recap_id: int) -> list[WaitingMessage]:
        with db.reading(self.engine) as conn:
            rows = conn.execute(_HELD, {"recap_id": recap_id}).all()
        return [_waiting(row) for row in rows]

    def get(self, recap_id: int):
        with db.reading(self.engine) as conn:
            return conn.execute(sa.select(db.recaps).where(db.recaps.c.id == recap_id)).mappings().first()

    def mark_sent(self, recap_id: int, *, channel_id: str, message_ts: str | None, now: datetime, late: bool) -> None:
        with db.writing(self.engine) as conn:
            conn.execute(
                _MARK_SENT,
                {"b_id": recap_id, "b_channel_id": channel_id, "b_message_ts": message_ts, "b_sent_at": now,
                 "b_late": late},
            )  # fmt: skip

    def mark_empty(self, recap_id: int) -> None:
        self._set(recap_id, state="empty", last_error=None)

    def retry(self, recap_id: int, *, at: datetime, error: str) -> None:
        self._set(recap_id, next_attempt_at=at, last_error=error[:200])

    def give_up(self, recap_id: int, *, error: str, release_until: datetime) -> None:
        """Mark the recap failed and put its unanswered messages back to waiting, due at `release_until`."""
        m = db.messages.c
        with db.writing(self.engine) as conn:
            conn.execute(
                db.recaps.update().where(db.recaps.c.id == recap_id).values(state="failed", last_error=error[:200])
            )
            conn.execute(
                db.messages.update()
                .where(m.recap_id == recap_id, m.state == "recapped")
                .values(state="pending", recap_id=None, due_at=release_until)
            )

    def _set(self, recap_id: int, **values) -> None:
        with db.writing(self.engine) as conn:
            conn.execute(db.recaps.update().where(db.recaps.c.id == recap_id).values(**values))

    def mark_done(self, recap_id: int, channel_id: str, *, team_id: str, user_id: str) -> bool:
        """The person ticked one conversation off. Only the recap's owner can (checked here, not trusted)."""
        m, r = db.messages.c, db.recaps.c
        with db.writing(self.engine) as conn:
            owner = conn.execute(
                sa.select(r.id).where(r.id == recap_id, r.team_id == team_id, r.user_id == user_id)
            ).first()
            if owner is None:
                return False
            conn.execute(
                db.messages.update()
                .where(m.recap_id == recap_id, m.channel_id == channel_id, m.state == "recapped")
                .values(state="done")
            )
        return True

    def reschedule(self, team_id: str, user_id: str, due_for) -> int:
        """Hours or days off changed: recompute `due_at` of the person's waiting messages with `due_for(received)`."""
        m = db.messages.c
        changed = 0
        with db.writing(self.engine) as conn:
            rows = conn.execute(
                sa.select(m.id, m.received_at, m.due_at).where(
                    m.team_id == team_id, m.recipient_id == user_id, m.state == "pending"
                )
            ).all()
            for row in rows:
                due = due_for(row.received_at)
                if due != row.due_at:
                    conn.execute(db.messages.update().where(m.id == row.id).values(due_at=due))
                    changed += 1
        return changed


def _waiting(row) -> WaitingMessage:
    return WaitingMessage(
        channel_id=row.channel_id,
        sender_id=row.sender_id,
        ts=row.ts,
        thread_ts=row.thread_ts,
        received_at=row.received_at,
        text=row.text,
        done=row.state == "done",
    )
