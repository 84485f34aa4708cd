"""The workspace_urls table: each workspace's web address (auth.test's `url`), which message permalinks start with."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa

from bot.storage import schema
from bot.storage.engine import reading, upsert, writing

_w = schema.workspace_urls.c


class WorkspaceUrls:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def get_many(self, team_ids: Iterable[str]) -> dict[str, str]:
        """team id -> its URL ("https://example.slack.com/"), for those whose URL is known."""
        wanted = list(set(team_ids))
        if not wanted:
            return {}
        with reading(self.engine) as conn:
            return dict(conn.execute(sa.select(_w.team_id, _w.url).where(_w.team_id.in_(wanted))).all())

    def remember(self, team_id: str, url: str, *, now: datetime) -> None:
        """The workspace's URL as Slack gave it (a renamed workspace changes it: the latest wins)."""
        with writing(self.engine) as conn:
            conn.execute(upsert(self.engine, schema.workspace_urls, ["team_id"],
                                {"team_id": team_id, "url": url, "learned_at": now}))  # fmt: skip
