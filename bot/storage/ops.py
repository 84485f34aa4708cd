"""What operators read: pending deliveries, the admin status view, the scheduler's heartbeat, the schema revision.

Read-only but for `record_tick`, and cheap: the metrics scrape runs `pending` (one grouped query per table).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from bot.storage import db, migrate, schema

# One row per scheduler job that reports a heartbeat ("recaps"): the last time it finished a tick, any process.
scheduler_ticks = sa.Table(
    "scheduler_ticks",
    db.metadata,
    sa.Column("job", sa.String(32), primary_key=True),
    sa.Column("ticked_at", db.UTCDateTime, nullable=False),
)

KINDS = ("auto_reply", "recap", "urgent", "status", "nudge", "channel_reply", "channel_summary")


@dataclass(frozen=True, slots=True)
class Pending:
    """Deliveries due and not yet settled, and the due time of the oldest of them."""

    count: int = 0
    oldest: datetime | None = None

    def plus(self, other: Pending) -> Pending:
        oldest = min((d for d in (self.oldest, other.oldest) if d is not None), default=None)
        return Pending(self.count + other.count, oldest)


@dataclass(frozen=True, slots=True)
class WorkspaceStatus:
    team_id: str
    team_name: str | None
    people_connected: int
    pending: dict[str, Pending] = field(default_factory=dict)
    recaps_sent_24h: int = 0


def record_tick(engine: sa.Engine, job: str, *, now: datetime) -> None:
    """The scheduler finished a tick of `job` at `now`."""
    with db.writing(engine) as conn:
        conn.execute(db.upsert(engine, scheduler_ticks, ["job"], {"job": job, "ticked_at": now}))


def last_ticks(engine: sa.Engine) -> dict[str, datetime]:
    with db.reading(engine) as conn:
        return dict(conn.execute(sa.select(scheduler_ticks.c.job, scheduler_ticks.c.ticked_at)).all())


def schema_revision(engine: sa.Engine) -> str | None:
    """The revision the database's schema is at (None: never migrated)."""
    with db.reading(engine) as conn:
        return MigrationContext.configure(conn).get_current_revision()


@functools.cache
def head_revision() -> str | None:
    """The newest migration shipped with this code."""
    return ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()


def pending(engine: sa.Engine, *, now: datetime) -> dict[str, Pending]:
    """Every workspace's pending deliveries by kind, in small queries (one per table)."""
    by_team = _pending(engine, now=now, by_team=False)
    return {kind: by_team.get(None, {}).get(kind, Pending()) for kind in KINDS}


def _pending(engine: sa.Engine, *, now: datetime, by_team: bool) -> dict[str | None, dict[str, Pending]]:
    r, c, m = db.replies.c, db.recaps.c, db.messages.c
    su, n, cr, cs = schema.status_updates.c, schema.nudges.c, schema.channel_replies.c, schema.channel_summaries.c
    # A recap is pending from its due time: as a claimed row not yet sent (retrying, or in flight), or, before any
    # scheduler has claimed it, as a person's messages whose window has ended (the query due_people runs).
    unclaimed = (
        sa.select(m.team_id, sa.func.min(m.due_at).label("due"))
        .where(m.state == "pending", m.due_at <= now)
        .group_by(m.team_id, m.recipient_id)
        .subquery()
    )
    queries = [
        ("auto_reply", db.replies, r.team_id, r.state == "pending", r.received_at),
        ("recap", db.recaps, c.team_id, c.state == "pending", c.due_at),
        ("recap", unclaimed, unclaimed.c.team_id, sa.true(), unclaimed.c.due),
        ("urgent", db.urgent_notices, db.urgent_notices.c.team_id, db.urgent_notices.c.state == "pending",
         db.urgent_notices.c.created_at),
        # Recorded when due (the planner runs every status.poll_seconds).
        ("status", schema.status_updates, su.team_id, su.state == "pending", su.next_attempt_at),
        # Planned long before they are due: pending from their due time on.
        ("nudge", schema.nudges, n.team_id, sa.and_(n.state == "pending", n.next_attempt_at <= now),
         n.next_attempt_at),
        ("channel_reply", schema.channel_replies, cr.team_id, cr.state == "pending", cr.received_at),
        ("channel_summary", schema.channel_summaries, cs.team_id, sa.and_(cs.state == "pending", cs.due_at <= now),
         cs.due_at),
    ]  # fmt: skip
    out: dict[str | None, dict[str, Pending]] = {}
    with db.reading(engine) as conn:
        for kind, table, team, where, due in queries:
            columns = [team] if by_team else [sa.null()]
            query = sa.select(*columns, sa.func.count(), sa.func.min(due)).select_from(table).where(where)
            if by_team:
                query = query.group_by(team)
            for row in conn.execute(query).all():
                team_id, count, oldest = row[0], row[1], row[2]
                if not count:
                    continue
                kinds = out.setdefault(team_id, {})
                kinds[kind] = kinds.get(kind, Pending()).plus(Pending(count, oldest))
    return out


def installed_workspaces(engine: sa.Engine, *, client_id: str | None = None) -> int:
    """How many workspaces have Offhours installed (a bot token)."""
    b = db.bots.c
    query = sa.select(sa.func.count(sa.distinct(b.team_id))).where(b.bot_token.is_not(None))
    if client_id is not None:
        query = query.where(b.client_id == client_id)
    with db.reading(engine) as conn:
        return conn.execute(query).scalar_one()


def workspaces(engine: sa.Engine, *, now: datetime, client_id: str | None = None) -> list[WorkspaceStatus]:
    """Per installed workspace: people connected, pending deliveries by kind, recaps sent in the last 24 hours."""
    b, i, c = db.bots.c, db.installations.c, db.recaps.c
    bots = sa.select(b.team_id, b.team_name, b.installed_at).where(b.bot_token.is_not(None))
    people = sa.select(i.team_id, sa.func.count(sa.distinct(i.user_id))).where(i.user_token.is_not(None))
    if client_id is not None:
        bots, people = bots.where(b.client_id == client_id), people.where(i.client_id == client_id)
    sent = (
        sa.select(c.team_id, sa.func.count())
        .where(c.state == "sent", c.sent_at >= now - timedelta(hours=24))
        .group_by(c.team_id)
    )
    with db.reading(engine) as conn:
        names: dict[str, str | None] = {}
        for team_id, team_name, _installed in conn.execute(bots.order_by(b.installed_at)).all():
            names[team_id] = team_name  # the latest installation's name wins
        connected: dict[str, int] = {row[0]: row[1] for row in conn.execute(people.group_by(i.team_id)).all()}
        recaps_sent: dict[str, int] = {row[0]: row[1] for row in conn.execute(sent).all()}
    waiting = _pending(engine, now=now, by_team=True)
    teams: Iterable[str] = sorted(set(names) | set(connected) | {t for t in waiting if t is not None})
    return [
        WorkspaceStatus(
            team_id=team_id,
            team_name=names.get(team_id),
            people_connected=connected.get(team_id, 0),
            pending={kind: waiting.get(team_id, {}).get(kind, Pending()) for kind in KINDS},
            recaps_sent_24h=recaps_sent.get(team_id, 0),
        )
        for team_id in teams
    ]
