"""The inbox's record and `/hours forget` racing: the record checks, inside its own transaction, that the recipient
is still connected (bot/storage/tokens.py's still_connected), so a forgotten person keeps no message row (and so
gets no recap). On SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from bot.storage import db
from bot.storage.inbox import IncomingRecord
from tests.support.fakeslack import FakeSlack
from tests.support.helpers import connect, rows

NOW = datetime(2026, 3, 4, 3, 0, tzinfo=UTC)


def dm(ts: str = "1.0") -> IncomingRecord:
    return IncomingRecord(
        team_id="T1", recipient_id="U1", sender_id="U2", channel_id="D12", ts=ts, thread_ts=ts, received_at=NOW,
        due_at=NOW + timedelta(hours=6), text=None, window_key="back:x", reply=True,
    )  # fmt: skip


def test_a_dm_recorded_after_the_person_was_forgotten_writes_nothing(store):
    connect(store, FakeSlack(), "U1", now=NOW)
    store.forget_person("T1", "U1")  # between the listener's read (token found) and its record
    assert store.inbox.record(dm(), now=NOW) == "not_connected"
    assert rows(store, db.messages) == [] and rows(store, db.replies) == []


def someone_waits_for_a_lock(engine: sa.Engine) -> bool:
    with engine.connect() as conn:
        query = "select count(*) from pg_stat_activity where wait_event_type = 'Lock' and datname = current_database()"
        return conn.execute(sa.text(query)).scalar() > 0


def test_forget_during_the_record_waits_for_it_then_deletes_what_it_wrote(store):
    connect(store, FakeSlack(), "U1", now=NOW)
    forgetting = threading.Thread(target=lambda: store.forget_person("T1", "U1"))

    def mid_record(conn, cursor, statement, parameters, context, executemany):
        if forgetting.ident is None and statement.lstrip().upper().startswith("INSERT") and "after_hours" in statement:
            forgetting.start()  # `/hours forget` arrives while the record's transaction is open
            if store.is_postgres:  # SQLite's writers take turns: forget simply waits for this transaction
                deadline = time.monotonic() + 10
                while not someone_waits_for_a_lock(store.engine):
                    assert time.monotonic() < deadline, "forget did not wait for the record"

    sa.event.listen(store.engine, "before_cursor_execute", mid_record)
    try:
        outcome = store.inbox.record(dm(), now=NOW)
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", mid_record)
    forgetting.join(30)
    assert outcome == "replied"  # it was connected when it recorded
    assert rows(store, db.messages) == [] and rows(store, db.replies) == []
    assert store.user_token("T1", "U1") is None
