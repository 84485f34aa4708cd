"""A cache of people's Slack profile zones (users.info), kept in the database so every process shares it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import sqlalchemy as sa
from slack_sdk import WebClient

from bot import db
from bot.store import Store

MAX_AGE = timedelta(days=1)


class ProfileCache:
    def __init__(self, store: Store, client: WebClient, *, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.client = client
        self.clock = clock

    def timezone(self, team_id: str, user_id: str, *, token: str | None, client: WebClient | None = None) -> str | None:
        """The person's profile zone, from the cache while fresh, else from users.info (raises SlackApiError).

        `client`: another client for this call, e.g. one with a short timeout inside a 3-second ack.
        """
        now = self.clock()
        c = db.profiles.c
        with db.reading(self.store.engine) as conn:
            row = conn.execute(sa.select(c.tz, c.fetched_at).where(c.team_id == team_id, c.user_id == user_id)).first()
        if row is not None and now - row.fetched_at < MAX_AGE:
            return row.tz
        user = (client or self.client).users_info(token=token, user=user_id)["user"]
        tz = user.get("tz")
        with db.writing(self.store.engine) as conn:
            conn.execute(
                db.upsert(
                    self.store.engine,
                    db.profiles,
                    ["team_id", "user_id"],
                    {
                        "team_id": team_id,
                        "user_id": user_id,
                        "tz": tz,
                        "is_bot": bool(user.get("is_bot")),
                        "fetched_at": now,
                    },
                )
            )
        return tz
