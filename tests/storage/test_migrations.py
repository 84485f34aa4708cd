"""Revision 0002: a database at 0001 holding deliveries in each of the old `last_error` markers is upgraded to
head, and each row's new `delivery_state` (and what is left of `last_error`) says what its marker meant; the
claim then reads "maybe posted" from the state. On SQLite and, with TEST_DATABASE_URL, on PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic import command

from bot.storage import schema
from bot.storage.migrate import alembic_config
from bot.storage.store import Store
from tests.support.databases import create_database, drop_database

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
T0 = datetime(2026, 3, 4, 3, 0)  # naive UTC, as the columns store it

# (state, attempts, last_error) as 0001 wrote them -> (delivery_state, last_error) after 0002
REPLIES = {
    "U10": (("pending", 0, None), ("queued", None)),
    "U11": (("pending", 1, "in_flight"), ("in_flight", None)),  # claimed; its process may have died
    "U12": (("pending", 1, None), ("in_flight", None)),  # claimed before claims wrote a marker
    "U13": (("pending", 2, "unknown:internal_error"), ("outcome_unknown", "internal_error")),
    "U14": (("pending", 1, "timeout"), ("outcome_unknown", "timeout")),
    "U15": (("pending", 1, "lookup_failed"), ("outcome_unknown", "lookup_failed")),
    "U16": (("pending", 1, "unknown:RemoteDisconnected"), ("outcome_unknown", "RemoteDisconnected")),
    "U17": (("pending", 1, "not_posted"), ("not_posted", None)),  # handed back at stop
    "U18": (("pending", 1, "ratelimited"), ("not_posted", "ratelimited")),
    "U19": (("pending", 1, "URLError"), ("not_posted", "URLError")),
    "U20": (("pending", 0, "not_posted"), ("queued", None)),  # handed back with its attempt given back
    "U21": (("sent", 1, None), ("sent", None)),
    "U22": (("failed", 1, "unknown:internal_error"), ("failed", "internal_error")),
    "U23": (("failed", 2, "channel_not_found"), ("failed", "channel_not_found")),
    "U24": (("expired", 0, "recipient_back"), ("expired", "recipient_back")),
}
RECAPS = {
    "U30": (("pending", 1, None), ("in_flight", None)),  # inserted by a claim whose process died
    "U31": (("pending", 2, "in_flight"), ("in_flight", None)),
    "U32": (("pending", 2, "internal_error"), ("not_posted", "internal_error")),  # a 5xx: not looked up
    "U33": (("pending", 2, "unknown:TimeoutError"), ("outcome_unknown", "TimeoutError")),
    "U34": (("pending", 2, "lookup_failed"), ("outcome_unknown", "lookup_failed")),
    "U35": (("pending", 2, "ratelimited"), ("not_posted", "ratelimited")),
    "U36": (("sent", 1, None), ("sent", None)),
    "U37": (("empty", 1, None), ("empty", None)),
    "U38": (("failed", 1, "channel_not_found"), ("failed", "channel_not_found")),
    "U39": (("pending", 0, None), ("queued", None)),
}


@pytest.fixture
def database(tmp_path) -> Iterator[str]:
    if not TEST_DATABASE_URL:
        yield f"sqlite:///{tmp_path / 'at-0001.db'}"
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


def old_rows(conn: sa.Connection) -> None:
    replies = sa.table("auto_replies", *(sa.column(c) for c in (
        "team_id", "recipient_id", "sender_id", "window_key", "channel_id", "message_ts", "thread_ts", "received_at",
        "state", "attempts", "next_attempt_at", "last_error")))  # fmt: skip
    conn.execute(replies.insert(), [
        {"team_id": "T1", "recipient_id": "U1", "sender_id": sender, "window_key": "w", "channel_id": "D" + sender,
         "message_ts": "1.0", "thread_ts": "1.0", "received_at": T0, "state": state, "attempts": attempts,
         "next_attempt_at": T0, "last_error": error}
        for sender, ((state, attempts, error), _) in REPLIES.items()
    ])  # fmt: skip
    recaps = sa.table("recaps", *(sa.column(c) for c in (
        "team_id", "user_id", "due_at", "seq", "state", "attempts", "next_attempt_at", "last_error")))  # fmt: skip
    conn.execute(recaps.insert(), [
        {"team_id": "T1", "user_id": user, "due_at": T0, "seq": 0, "state": state, "attempts": attempts,
         "next_attempt_at": T0, "last_error": error}
        for user, ((state, attempts, error), _) in RECAPS.items()
    ])  # fmt: skip


def states(conn: sa.Connection, table: str, key: str) -> dict[str, tuple[str, str | None]]:
    rows = conn.execute(sa.text(f"SELECT {key}, delivery_state, last_error FROM {table}")).all()
    return {row[0]: (row[1], row[2]) for row in rows}


def test_0002_turns_the_old_markers_into_delivery_states(database):
    engine = sa.create_engine(database)
    try:
        migrate_to(engine, "0001")
        with engine.begin() as conn:
            old_rows(conn)
        migrate_to(engine, "0002")
        with engine.connect() as conn:
            assert states(conn, "auto_replies", "sender_id") == {sender: new for sender, (_, new) in REPLIES.items()}
            assert states(conn, "recaps", "user_id") == {user: new for user, (_, new) in RECAPS.items()}
            assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == "0002"
        migrate_to(engine, "head")  # the later revisions keep what 0002 made
        with engine.connect() as conn:
            assert states(conn, "auto_replies", "sender_id") == {sender: new for sender, (_, new) in REPLIES.items()}
    finally:
        engine.dispose()

    # What the claims make of them: "maybe posted" is read from the state, so the sender looks before posting.
    store = Store(database)
    try:
        later = datetime(2026, 3, 5, tzinfo=UTC)
        claimed = {reply.sender_id: reply.outcome_unknown for reply in store.replies.claim_due(now=later, limit=100)}
        assert claimed == {
            "U10": False, "U11": True, "U12": True, "U13": True, "U14": True, "U15": True, "U16": True,
            "U17": False, "U18": False, "U19": False, "U20": False,
        }  # fmt: skip
        recaps = {recap.user_id: recap.outcome_unknown for recap in store.recaps.claim_retries(now=later)}
        assert recaps == {"U30": True, "U31": True, "U32": False, "U33": True, "U34": True, "U35": False,
                          "U39": False}  # fmt: skip
    finally:
        store.close()


def test_0002_downgrades_to_the_old_markers(database):
    engine = sa.create_engine(database)
    try:
        migrate_to(engine, "0001")
        with engine.begin() as conn:
            old_rows(conn)
        migrate_to(engine, "head")
        migrate_to(engine, "0001", down=True)
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT sender_id, state, last_error FROM auto_replies")).all()
            columns = [c["name"] for c in sa.inspect(conn).get_columns("auto_replies")]
        assert "delivery_state" not in columns
        back = {sender: (state, error) for sender, state, error in rows}
        assert back["U11"] == back["U12"] == ("pending", "in_flight")
        assert back["U13"] == ("pending", "unknown:internal_error")
        assert back["U14"] == ("pending", "timeout")
        assert back["U17"] == ("pending", "not_posted")
        assert back["U18"] == ("pending", "ratelimited")
        assert back["U21"] == ("sent", None)
    finally:
        engine.dispose()


@pytest.mark.skipif(not TEST_DATABASE_URL, reason="PostgreSQL's statistics")
def test_0014_leaves_the_planner_statistics_of_the_installations(database):
    """0014 analyses slack_installations: until autovacuum's first ANALYZE (off here, as on a table it has not
    reached yet), the planner would take `client_id = ?` for a few rows and read the app's every row per batch."""
    engine = sa.create_engine(database)
    try:
        migrate_to(engine, "0013")
        with engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE slack_installations SET (autovacuum_enabled = false)")
            conn.execute(  # the declared table: its Python-side defaults fill the columns 0001 made NOT NULL
                schema.installations.insert(),
                [{"client_id": "C1", "app_id": "A1", "team_id": "T1", "user_id": f"U{i:04d}", "user_token": f"t{i}",
                  "installed_at": datetime(2026, 3, 4, tzinfo=UTC).replace(tzinfo=None)} for i in range(500)],
            )  # fmt: skip
        migrate_to(engine, "head")
        with engine.connect() as conn:
            columns = {r[0] for r in conn.exec_driver_sql(
                "SELECT attname FROM pg_stats WHERE schemaname = 'public' AND tablename = 'slack_installations'"
            )}  # fmt: skip
        assert {"user_id", "client_id"} <= columns
    finally:
        engine.dispose()
