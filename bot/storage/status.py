"""Status sync's tables: what people chose (`status_prefs`) and the status updates, a kind of delivery
(`status_updates`): recorded once (a unique key per person, window and seq), claimed with a lease, settled once.

Like the recaps' rows, an outcome is written only while its claim holds (pending, the same attempt).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from bot.domain.delivery import DeliveryState, Outcome, maybe_posted
from bot.domain.status import StatusChoice
from bot.storage import schema
from bot.storage.engine import insert_ignore, reading, writing
from bot.storage.tokens import in_team

STATUS_LEASE = timedelta(minutes=2)  # a users.profile.get and a set, each within the client's timeout
_s = schema.status_updates.c
_p = schema.status_prefs.c
_IN_FLIGHT = DeliveryState.IN_FLIGHT.value


@dataclass(frozen=True, slots=True)
class StatusRow:
    """One status update as stored."""

    id: int
    team_id: str
    user_id: str
    window_end: datetime
    seq: int
    action: str
    text: str | None
    emoji: str | None
    state: str
    what: str
    applied: bool
    result: str | None
    last_error: str | None
    saved_text: str | None
    saved_emoji: str | None
    saved_expiration: int | None


@dataclass(frozen=True, slots=True)
class ClaimedStatus:
    """A claimed status update (the engine's Claim)."""

    id: int
    team_id: str
    user_id: str
    window_end: datetime
    seq: int
    action: str
    text: str | None
    emoji: str | None
    attempts: int
    last_error: str | None
    previous: DeliveryState
    leased_until: datetime | None
    what: str = "status"

    @property
    def outcome_unknown(self) -> bool:
        return maybe_posted(self.previous)


def _claimed(r: Any, until: datetime) -> ClaimedStatus:
    return ClaimedStatus(r.id, r.team_id, r.user_id, r.window_end, r.seq, r.action, r.text, r.emoji, r.attempts + 1,
                         r.last_error, DeliveryState(r.delivery_state), until, r.what)  # fmt: skip


def _choice(m: Any) -> StatusChoice:
    return StatusChoice(enabled=m["enabled"], text=m["text"], emoji=m["emoji"], replace=bool(m["replace"]),
                        dnd=bool(m["dnd"]))  # fmt: skip


def _row(r: Any) -> StatusRow:
    return StatusRow(r.id, r.team_id, r.user_id, r.window_end, r.seq, r.action, r.text, r.emoji, r.state, r.what,
                     bool(r.applied), r.result, r.last_error, r.saved_text, r.saved_emoji,
                     r.saved_expiration)  # fmt: skip


class StatusStore:
    def __init__(self, engine: sa.Engine, *, client_id: str) -> None:
        self.engine = engine
        self.client_id = client_id
        self._insert = insert_ignore(engine, schema.status_updates, ["team_id", "user_id", "what", "window_end", "seq"])

    @property
    def _pg(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    # --- choices ----------------------------------------------------------------------------------------------

    def choice(self, team_id: str, user_id: str) -> StatusChoice | None:
        return self.choices(team_id, [user_id]).get(user_id)

    def choices(self, team_id: str, user_ids: Iterable[str]) -> dict[str, StatusChoice]:
        """The choices of those of `user_ids` who made any, in one read (the planner's)."""
        with reading(self.engine) as conn:
            rows = conn.execute(
                sa.select(schema.status_prefs).where(_p.team_id == team_id, _p.user_id.in_(list(set(user_ids))))
            ).all()
        return {r.user_id: _choice(r._mapping) for r in rows}

    def granted_scopes_many(self, team_id: str, user_ids: Iterable[str]) -> dict[str, set[str]]:
        """What granted_scopes answers, for those of `user_ids` who are connected, in one read."""
        i = schema.installations.c
        with reading(self.engine) as conn:
            rows = conn.execute(
                sa.select(i.user_id, i.user_scopes)
                .where(i.client_id == self.client_id, in_team(team_id), i.user_id.in_(list(set(user_ids))),
                       i.user_token.is_not(None))
                .order_by(i.installed_at)  # the latest installation of each person wins
            ).all()  # fmt: skip
        return {user_id: {s.strip() for s in (scopes or "").split(",") if s.strip()} for user_id, scopes in rows}

    def choose(self, team_id: str, user_id: str, **fields: Any) -> StatusChoice:
        """Change some of the person's choices (enabled, text, emoji, replace, dnd); the others are kept."""
        current = self.choice(team_id, user_id) or StatusChoice()
        values = {"enabled": current.enabled, "text": current.text, "emoji": current.emoji,
                  "replace": current.replace, "dnd": current.dnd, **fields}  # fmt: skip
        with writing(self.engine) as conn:
            updated = conn.execute(
                schema.status_prefs.update().where(_p.team_id == team_id, _p.user_id == user_id).values(**values)
            ).rowcount
            if not updated:
                conn.execute(schema.status_prefs.insert().values(team_id=team_id, user_id=user_id, **values))
        return StatusChoice(**values)

    def candidates(self, *, default_enabled: bool, since: datetime) -> list[tuple[str, str]]:
        """Whoever the planner looks at: people with sync on (by choice, or by default while connected and not
        chosen off), and people with an update of a window that ends after `since` (to clear or restore)."""
        found: set[tuple[str, str]] = set()
        with reading(self.engine) as conn:
            chosen = conn.execute(
                sa.select(_p.team_id, _p.user_id).where(sa.or_(_p.enabled.is_(True), _p.dnd.is_(True)))
            ).all()
            recent = conn.execute(sa.select(_s.team_id, _s.user_id).where(_s.window_end > since).distinct()).all()
            found.update((t, u) for t, u in [*chosen, *recent])
            if default_enabled:
                i = schema.installations.c
                off = sa.select(_p.user_id).where(_p.team_id == i.team_id, _p.enabled.is_(False))
                rows = conn.execute(
                    sa.select(i.team_id, i.user_id)
                    .where(i.client_id == self.client_id, i.user_token.is_not(None), i.team_id.is_not(None),
                           ~i.user_id.in_(off))
                    .distinct()
                ).all()  # fmt: skip
                found.update((t, u) for t, u in rows if t and u)
        return sorted(found)

    def granted_scopes(self, team_id: str, user_id: str) -> set[str] | None:
        """The user scopes Slack granted the person's latest installation (cumulative); None when not connected."""
        i = schema.installations.c
        with reading(self.engine) as conn:
            scopes = conn.execute(
                sa.select(i.user_scopes)
                .where(i.client_id == self.client_id, in_team(team_id), i.user_id == user_id,
                       i.user_token.is_not(None))
                .order_by(i.installed_at.desc())
                .limit(1)
            ).first()  # fmt: skip
        if scopes is None:
            return None
        return {s.strip() for s in (scopes[0] or "").split(",") if s.strip()}

    # --- updates ----------------------------------------------------------------------------------------------

    def history(self, team_id: str, user_id: str, *, limit: int = 20, what: str = "status") -> list[StatusRow]:
        """The person's latest updates of their status (or `what`: "dnd"), newest first."""
        with reading(self.engine) as conn:
            rows = conn.execute(
                sa.select(schema.status_updates)
                .where(_s.team_id == team_id, _s.user_id == user_id, _s.what == what)
                .order_by(_s.id.desc())
                .limit(limit)
            ).all()
        return [_row(r) for r in rows]

    def histories(
        self, people: Iterable[tuple[str, str]], *, since: datetime
    ) -> dict[tuple[str, str], list[StatusRow]]:
        """Each person's updates of windows ending after `since`, newest first (the planner's one read)."""
        wanted = set(people)
        out: dict[tuple[str, str], list[StatusRow]] = {key: [] for key in wanted}
        if not wanted:
            return out
        with reading(self.engine) as conn:
            rows = conn.execute(
                sa.select(schema.status_updates).where(_s.window_end > since).order_by(_s.id.desc())
            ).all()
        for r in rows:
            key = (r.team_id, r.user_id)
            if key in out:
                out[key].append(_row(r))
        return out

    def record(
        self, team_id: str, user_id: str, *, window_end: datetime, seq: int, action: str, due_at: datetime,
        now: datetime, text: str | None = None, emoji: str | None = None, what: str = "status",
    ) -> bool:  # fmt: skip
        """Record an update as due at `due_at`; False when it is recorded already (another process, say)."""
        with writing(self.engine) as conn:
            inserted = conn.execute(
                self._insert,
                {"team_id": team_id, "user_id": user_id, "what": what, "window_end": window_end, "seq": seq,
                 "action": action,
                 "text": text, "emoji": emoji, "next_attempt_at": due_at, "updated_at": now},
            ).rowcount  # fmt: skip
        return inserted == 1

    def claim_due(self, *, now: datetime, limit: int = 100) -> list[ClaimedStatus]:
        """Own the updates whose next attempt is due (new, retried, or left by a process that died)."""
        query = (
            sa.select(schema.status_updates)
            .where(_s.state == "pending", _s.next_attempt_at <= now)
            .order_by(_s.next_attempt_at, _s.id)
            .limit(limit)
        )
        if self._pg:
            query = query.with_for_update(skip_locked=True)
        until = now + STATUS_LEASE
        with writing(self.engine) as conn:
            rows = conn.execute(query).all()
            if rows:
                conn.execute(
                    schema.status_updates.update()
                    .where(_s.id.in_([r.id for r in rows]))
                    .values(next_attempt_at=until, attempts=_s.attempts + 1, delivery_state=_IN_FLIGHT)
                )
        return [_claimed(r, until) for r in rows]

    def _ours(self, claim: ClaimedStatus) -> sa.ColumnElement[bool]:
        return sa.and_(_s.id == claim.id, _s.state == "pending", _s.attempts == claim.attempts)

    def keep(self, claim: ClaimedStatus, saved: tuple[str, str, int]) -> bool:
        """Write down the person's own status a set is about to replace; False when the claim no longer holds
        (nothing written: the set must not go ahead)."""
        with writing(self.engine) as conn:
            return (
                conn.execute(
                    schema.status_updates.update()
                    .where(self._ours(claim))
                    .values(saved_text=saved[0], saved_emoji=saved[1], saved_expiration=saved[2])
                    .execution_options(preserve_rowcount=True)
                ).rowcount
                == 1
            )

    def renew(self, claim: ClaimedStatus, *, until: datetime) -> bool:
        with writing(self.engine) as conn:
            return (
                conn.execute(
                    schema.status_updates.update()
                    .where(self._ours(claim), _s.delivery_state == _IN_FLIGHT)
                    .values(next_attempt_at=until)
                    .execution_options(preserve_rowcount=True)
                ).rowcount
                == 1
            )

    def settle(
        self, claim: ClaimedStatus, outcome: Outcome, *, now: datetime, applied: bool = False,
        result: str | None = None, saved: tuple[str, str, int] | None = None,
    ) -> bool:  # fmt: skip
        """Write an attempt's outcome (only while its claim holds); whether it was written."""
        values: dict[str, Any] = {
            "state": outcome.state.state,
            "delivery_state": outcome.state.value,
            "last_error": outcome.error[:200] if outcome.error else None,
            "updated_at": now,
        }
        if outcome.retry_at is not None:
            values["next_attempt_at"] = outcome.retry_at
        if outcome.untried:  # handed back without an attempt (a stop): the attempt is given back
            values["attempts"] = _s.attempts - 1
        if outcome.state is DeliveryState.SENT:
            values.update(applied=applied, result=result)
            if saved is not None:
                values.update(saved_text=saved[0], saved_emoji=saved[1], saved_expiration=saved[2])
        with writing(self.engine) as conn:
            return (
                conn.execute(
                    schema.status_updates.update()
                    .where(self._ours(claim))
                    .values(**values)
                    .execution_options(preserve_rowcount=True)
                ).rowcount
                == 1
            )
