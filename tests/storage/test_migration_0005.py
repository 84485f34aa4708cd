"""Revision 0005: replies queued before it get the interval their key names (so the once-per-window rule and
retention work on them), and it downgrades cleanly. On SQLite and, with TEST_DATABASE_URL, on PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic import command

from bot.domain.autoreply import ReplyWindow
from bot.storage import db
from bot.storage.migrate import alembic_config
from bot.storage.store import Store
from tests.support.databases import create_database, drop_database

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
T0 = datetime(2026, 3, 4, 3, 0)  # naive UTC, as the columns store it
KEYS = {"U10": "back:2026-03-04T14:00Z", "U11": "day:2026-03-03", "U12": "w"}


@pytest.fixture
def database(tmp_path) -> Iterator[str]:
    if not TEST_DATABASE_URL:
        yield f"sqlite:///{tmp_path / 'at-0003.db'}"
        return
    url = create_database(TEST_DATABASE_URL)
    try:
        yield url
    finally:
        drop_database(TEST_DATABASE_URL, url)


def migrate_to(engine: sa.Engine, revision: str, *, down: bool = False) -> None:
    cfg = alembic_config()
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, revision)
        conn.commit()


def test_0005_gives_old_replies_the_interval_of_their_key_and_downgrades(database):
    engine = sa.create_engine(database)
    try:
        migrate_to(engine, "0004")
        replies = sa.table("auto_replies", *(sa.column(c) for c in (
            "team_id", "recipient_id", "sender_id", "window_key", "channel_id", "message_ts", "thread_ts",
            "received_at", "state", "attempts", "next_attempt_at")))  # fmt: skip
        with engine.begin() as conn:
            conn.execute(replies.insert(), [
                {"team_id": "T1", "recipient_id": "U1", "sender_id": sender, "window_key": key, "channel_id": "D1",
                 "message_ts": "1.0", "thread_ts": "1.0", "received_at": T0, "state": "sent", "attempts": 1,
                 "next_attempt_at": T0}
                for sender, key in KEYS.items()
            ])  # fmt: skip
        migrate_to(engine, "0005")
        with engine.connect() as conn:
            got = {r[0]: (r[1], r[2]) for r in conn.execute(
                sa.text("SELECT sender_id, window_start, window_end FROM auto_replies")).all()}  # fmt: skip
        naive = {k: tuple(v if isinstance(v, datetime) else datetime.fromisoformat(v) for v in pair)
                 for k, pair in got.items()}  # fmt: skip
        assert naive["U10"] == (T0, datetime(2026, 3, 4, 14, 0))
        assert naive["U11"] == (datetime(2026, 3, 2, 10, 0), datetime(2026, 3, 4, 14, 0))  # every zone's 3 March
        assert naive["U12"] == (T0, T0)
        migrate_to(engine, "head")  # today's Store reads the columns later revisions added
    finally:
        engine.dispose()

    store = Store(database)
    try:
        # An old reply still holds its evening: a DM later that evening, under another key, is not answered again.
        window = ReplyWindow(key="back:2026-03-04T15:00Z", start=datetime(2026, 3, 3, 23, 0, tzinfo=UTC),
                             end=datetime(2026, 3, 4, 15, 0, tzinfo=UTC))  # fmt: skip
        with db.writing(store.engine) as conn:
            queued = store.replies.queue(
                conn, team_id="T1", recipient_id="U1", sender_id="U10", window=window, channel_id="D1",
                message_ts="2.0", thread_ts="2.0", received_at=datetime(2026, 3, 4, 4, 0, tzinfo=UTC),
                now=datetime(2026, 3, 4, 4, 0, tzinfo=UTC),
            )  # fmt: skip
        assert queued is False
    finally:
        store.close()

    engine = sa.create_engine(database)
    try:
        migrate_to(engine, "0004", down=True)
        with engine.connect() as conn:
            columns = {c["name"] for c in sa.inspect(conn).get_columns("auto_replies")}
            tables = set(sa.inspect(conn).get_table_names())
        assert not {"window_start", "window_end", "external"} & columns
        assert "dm_presence" not in tables
    finally:
        engine.dispose()
