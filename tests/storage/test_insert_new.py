"""InsertNew, the many-row INSERT ... ON CONFLICT DO NOTHING RETURNING of the DM path (the rows as one JSON
parameter on PostgreSQL, multi-row VALUES on SQLite): the same rows and the same answer on both, whatever the batch
holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import sqlalchemy as sa

from bot.storage import schema
from bot.storage.engine import InsertNew, writing
from bot.storage.inbox import MESSAGE_COLUMNS, MESSAGE_KEY
from tests.support.helpers import rows

NOW = datetime(2026, 3, 4, 3, 0, tzinfo=UTC)


def message(ts: str, **changes) -> dict:
    row = {"team_id": "T1", "recipient_id": "U1", "channel_id": "D1", "ts": ts, "thread_ts": ts, "sender_id": "U2",
           "received_at": NOW, "text": None, "due_at": NOW + timedelta(hours=6), "source": "dm"}  # fmt: skip
    return {**row, **changes}


def insert(store, batch: list[dict]) -> list[tuple]:
    insert_new = InsertNew(store.engine, schema.messages, MESSAGE_KEY, list(MESSAGE_COLUMNS), MESSAGE_KEY)
    with writing(store.engine) as conn:
        return [tuple(row) for row in insert_new(conn, batch)]


def test_returns_the_keys_it_inserted_in_order_and_skips_what_is_there_or_repeated(store):
    assert insert(store, [message("1.0")]) == [("T1", "U1", "D1", "1.0")]
    inserted = insert(store, [message("2.0"), message("1.0"), message("3.0"), message("2.0")])
    assert inserted == [("T1", "U1", "D1", "2.0"), ("T1", "U1", "D1", "3.0")]  # 1.0 was there; 2.0's copy skipped
    assert sorted(r["ts"] for r in rows(store, schema.messages)) == ["1.0", "2.0", "3.0"]
    assert insert(store, []) == []


def test_values_are_stored_as_a_single_row_insert_stores_them(store):
    """Times in any zone are stored as UTC, None stays NULL, text is kept as given, quotes, braces, percent signs
    and all (on PostgreSQL the rows travel as JSON, typed by the table's columns)."""
    berlin = timezone(timedelta(hours=1))
    insert(store, [
        message("1.0", text="héllo, 'quoted' {braces} %s", received_at=NOW.astimezone(berlin), source="mention"),
        message("2.0", text=None, thread_ts="1.0"),
    ])  # fmt: skip
    stored = {r["ts"]: r for r in rows(store, schema.messages)}
    assert stored["1.0"]["text"] == "héllo, 'quoted' {braces} %s"
    assert stored["1.0"]["received_at"] == NOW
    assert stored["1.0"]["source"] == "mention"
    assert (stored["2.0"]["text"], stored["2.0"]["thread_ts"]) == (None, "1.0")
    assert {r["state"] for r in stored.values()} == {"pending"}


def test_a_batch_of_many_rows_is_one_statement(store):
    statements: list[str] = []

    def count(_conn, _cursor, statement, _parameters, _context, _executemany):
        if statement.lstrip().upper().startswith("INSERT"):
            statements.append(statement)

    sa.event.listen(store.engine, "before_cursor_execute", count)
    try:
        inserted = insert(store, [message(f"{n}.0") for n in range(100)])
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", count)
    assert len(inserted) == 100
    assert len(statements) == 1
    # On PostgreSQL one short text at any number of rows (psycopg converts it once); SQLite keeps multi-row VALUES
    assert ("json_to_recordset(" in statements[0]) == (store.engine.dialect.name == "postgresql")
