"""`python -m bot status`: what an admin wants to know first, per workspace, read from the database only.

People connected, pending deliveries by kind and the oldest of them, recaps sent in the last 24 hours, and when a
scheduler last ticked. Nothing is written, nothing is migrated, Slack is not called; no token is read.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TextIO

import sqlalchemy as sa

from bot.domain.errors import ConfigError
from bot.storage import db, ops


def run_status(
    environ: Mapping[str, str] = os.environ, out: TextIO = sys.stdout, *, clock: Callable[[], datetime] | None = None
) -> int:
    """Print the status; exit status 1 when the database cannot be read or its schema is not the newest."""
    from bot.config import load_config

    try:
        config = load_config(environ.get("OFFHOURS_CONFIG"), environ=environ)
    except ConfigError as e:
        out.write(f"config: {e}\n")
        return 1
    url = (environ.get("DATABASE_URL") or "").strip() or config.storage.url
    now = (clock or (lambda: datetime.now(UTC)))()
    engine = db.make_engine(url)
    try:
        return _report(engine, out, now=now, client_id=(environ.get("SLACK_CLIENT_ID") or "").strip() or None)
    finally:
        engine.dispose()


def _report(engine: sa.Engine, out: TextIO, *, now: datetime, client_id: str | None) -> int:
    try:
        revision = ops.schema_revision(engine)
    except sa.exc.SQLAlchemyError as e:
        out.write(f"database unreachable ({type(e).__name__}): check DATABASE_URL and that the server runs\n")
        return 1
    head = ops.head_revision()
    if revision != head:
        out.write(f"database schema at revision {revision} (newest: {head}): run python -m bot migrate\n")
        return 1
    out.write(f"Offhours status at {_when(now)} ({engine.dialect.name}, schema {revision})\n")
    ticks = ops.last_ticks(engine)
    tick = ticks.get("scheduler")
    out.write(f"scheduler: last tick {_when(tick)} ({_ago(now, tick)})\n" if tick else "scheduler: never ticked\n")
    spaces = ops.workspaces(engine, now=now, client_id=client_id)
    if not spaces:
        out.write("\nno workspace installed yet: open /slack/install on this app's public URL\n")
    for space in spaces:
        name = f"{space.team_name} ({space.team_id})" if space.team_name else space.team_id
        waiting = ", ".join(f"{kind} {p.count}" for kind, p in space.pending.items())
        oldest = min((p.oldest for p in space.pending.values() if p.oldest is not None), default=None)
        out.write(f"\n{name}\n")
        out.write(f"  people connected:            {space.people_connected}\n")
        out.write(f"  pending deliveries:          {waiting}\n")
        out.write(f"  oldest pending:              {f'due {_when(oldest)} ({_ago(now, oldest)})' if oldest else '-'}\n")
        out.write(f"  recaps sent in the last 24h: {space.recaps_sent_24h}\n")
    return 0


def _when(at: datetime | None) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if at is not None else "-"


def _ago(now: datetime, at: datetime) -> str:
    seconds = int((now - at).total_seconds())
    if seconds < 0:
        return "in the future"
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min ago"
