"""Helpers the fixtures and tests share: a hand-moved clock, a real server in a thread, database reads."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
import waitress
from slack_sdk.oauth.installation_store.models.installation import Installation

from bot.slack.app import OffhoursApp
from bot.slack.web import create_wsgi
from bot.storage import db
from bot.storage.store import Store
from tests.support.fakeslack import FakeSlack

_installs = itertools.count(1)


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def set(self, now: datetime) -> None:
        self.now = now

    def advance(self, **kwargs) -> datetime:
        self.now += timedelta(**kwargs)
        return self.now


def wipe(store: Store) -> None:
    with store.engine.begin() as conn:
        for table in reversed(db.metadata.sorted_tables):
            conn.execute(table.delete())


class RunningServer:
    """The production WSGI server (waitress) on an ephemeral 127.0.0.1 port, in a thread."""

    def __init__(self, app: OffhoursApp) -> None:
        self.app = app
        self.server = waitress.create_server(
            create_wsgi(app), host="127.0.0.1", port=0, threads=4, asyncore_loop_timeout=0.05
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.effective_port}"

    def close(self) -> None:
        # Closing sockets under the running select() makes it fail with EBADF: empty the loop's map instead,
        # wake it so it sees the empty map and returns, and only then close the sockets and the worker threads.
        channels = list(self.server._map.values())
        self.server._map.clear()
        self.server.pull_trigger()
        self.thread.join(5)
        for channel in channels:
            channel.close()
        self.server.task_dispatcher.shutdown()


def connect(store: Store, fake: FakeSlack, user_id: str, *, team_id: str = "T1", tz: str = "America/New_York",
            now: datetime | None = None, user_scopes: str = "im:history,chat:write") -> str:  # fmt: skip
    """Save an installation for `user_id` as the OAuth flow would, and make the fake Slack know them."""
    token = f"xoxp-{team_id}-{user_id}"
    # The installation store tells rows apart by installed_at: give every connection its own instant.
    store.installation_store.save(
        Installation(
            app_id="A1",
            enterprise_id=None,
            team_id=team_id,
            team_name="Example",
            bot_token=f"xoxb-{team_id}",
            bot_id="B1",
            bot_user_id="UBOT",
            bot_scopes="commands,chat:write,im:write,users:read",
            user_id=user_id,
            user_token=token,
            user_scopes=user_scopes,
            installed_at=(now or datetime.now(UTC)).timestamp() + next(_installs) / 1000,
        )
    )
    fake.add_user(user_id, tz=tz)
    fake.tokens[token] = {"team_id": team_id, "user_id": user_id}
    if store.get_person(team_id, user_id) is None:  # as the OAuth success callback does: the profile zone
        store.save_person(team_id, user_id, now=now or datetime.now(UTC), tz=tz)
    return token


def connected(store: Store, user_id: str, *, team_id: str = "T1", now: datetime | None = None) -> None:
    """Make sure `user_id` has a user token (the inbox records DMs only for people still connected)."""
    if store.user_token(team_id, user_id) is None:
        connect(store, FakeSlack(), user_id, team_id=team_id, now=now)


def rows(store: Store, table: sa.Table, **where) -> list[dict]:
    """Every row of `table` (optionally filtered by column values), in insertion order."""
    with store.engine.connect() as conn:
        query = sa.select(table).order_by(table.c.id if "id" in table.c else table.c[0])
        for key, value in where.items():
            query = query.where(table.c[key] == value)
        return [dict(r) for r in conn.execute(query).mappings()]


def table_count(store: Store, table: sa.Table, **where) -> int:
    with store.engine.connect() as conn:
        query = sa.select(sa.func.count()).select_from(table)
        for key, value in where.items():
            query = query.where(table.c[key] == value)
        return conn.execute(query).scalar_one()


def person_snapshot(store: Store, user_id: str, *, team_id: str = "T1") -> dict | None:
    """Every column of a person's row (updated_at included), to prove that a rejected change wrote nothing."""
    with store.engine.connect() as conn:
        row = (
            conn.execute(sa.select(db.people).where(db.people.c.team_id == team_id, db.people.c.user_id == user_id))
            .mappings()
            .first()
        )
    return dict(row) if row is not None else None


def block_text(blocks: list[dict]) -> str:
    """All the text a person sees in Block Kit blocks (sections, fields, contexts, headers, button URLs)."""
    parts: list[str] = []

    def walk(node) -> None:
        if isinstance(node, dict):
            for key in ("text", "url"):
                value = node.get(key)
                if isinstance(value, str):
                    parts.append(value)
            for value in node.values():
                if isinstance(value, dict | list):
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(blocks)
    return "\n".join(parts)


@contextmanager
def counted_statements(store: Store) -> Iterator[list[str]]:
    """Every SQL statement the app runs meanwhile, from any thread (SQLAlchemy's cursor event)."""
    seen: list[str] = []

    def on_execute(conn, cursor, statement, parameters, context, executemany) -> None:
        seen.append(statement)

    sa.event.listen(store.engine, "before_cursor_execute", on_execute)
    try:
        yield seen
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", on_execute)
