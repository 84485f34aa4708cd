"""Every read of a person's token finds their installation rows by index, whatever the number of people connected
(revision 0014): before it, the reads by workspace and user scanned every installation of the app, once per DM.

On its own database (SQLite in a file; with TEST_DATABASE_URL, a PostgreSQL database of its own), with as many
installations as a large workspace. PostgreSQL's table is analysed, as autovacuum does after that many inserts:
without statistics its planner takes `client_id = ?` (every row of the app) for one row.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from bot.storage import schema
from bot.storage.engine import writing
from bot.storage.store import Store
from bot.storage.tokens import connected_among, still_connected
from tests.support.databases import create_database, drop_database

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
PEOPLE = 3000
INSTALLED = datetime(2026, 3, 4, 9, 0)


@pytest.fixture
def crowded_store(tmp_path) -> Iterator[Store]:
    url = create_database(TEST_DATABASE_URL) if TEST_DATABASE_URL else f"sqlite:///{tmp_path / 'tokens.db'}"
    store = Store(url)
    try:
        store.migrate()
        rows = [
            {"client_id": store.installation_store.client_id, "app_id": "A1", "team_id": "T1", "user_id": f"U{i:05d}",
             "user_token": f"stored-{i}", "installed_at": INSTALLED + timedelta(seconds=i)}
            for i in range(PEOPLE)
        ]  # fmt: skip
        with store.engine.begin() as conn:
            conn.execute(schema.installations.insert(), rows)
            if store.is_postgres:
                conn.exec_driver_sql("ANALYZE slack_installations")
        yield store
    finally:
        store.close()
        if TEST_DATABASE_URL:
            drop_database(TEST_DATABASE_URL, url)


def _in_a_transaction(store: Store, read: Callable[[sa.Connection], object]) -> Callable[[], object]:
    def run() -> object:
        with writing(store.engine) as conn:
            return read(conn)

    return run


# Each token read, as its callers make it (the user ids are among those connected).
READS: dict[str, Callable[[Store], Callable[[], object]]] = {
    "dm_view": lambda s: lambda: s.dm_view("T1", "D1", recipient_id="U00042", sender_id="U00007"),
    "user_token": lambda s: lambda: s.user_token("T1", "U00042"),
    "user_tokens": lambda s: lambda: s.user_tokens("T1", {"U00042", "U01234", "U02999"}),
    "still_connected": lambda s: _in_a_transaction(s, lambda conn: still_connected(conn, "T1", "U00042")),
    "connected_among": lambda s: _in_a_transaction(s, lambda conn: connected_among(conn, "T1", {"U00042", "U01234"})),
}


def _installation_reads(engine: sa.Engine, read: Callable[[], object]) -> list[tuple[str, object]]:
    seen: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")) and "slack_installations" in statement:
            seen.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", capture)
    try:
        read()
    finally:
        sa.event.remove(engine, "before_cursor_execute", capture)
    return seen


@pytest.mark.parametrize("read", list(READS))
def test_a_token_read_finds_the_persons_rows_by_index(crowded_store, read):
    statements = _installation_reads(crowded_store.engine, READS[read](crowded_store))
    assert statements, f"{read} read no installation"
    for statement, parameters in statements:
        with crowded_store.engine.connect() as conn:
            if crowded_store.is_postgres:
                plan = [r[0] for r in conn.exec_driver_sql("EXPLAIN " + statement, parameters)]  # type: ignore[arg-type]
                scans = [line for line in plan if "Seq Scan on slack_installations" in line]
            else:
                plan = [r[-1] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)]  # type: ignore[arg-type]
                scans = [line for line in plan if "slack_installations" in line and "ix_installations_user" not in line]
            conn.rollback()
        assert scans == [], "\n".join(plan)
        assert "ix_installations_user" in "\n".join(plan), "\n".join(plan)


def test_the_reads_still_find_the_latest_token_of_each(crowded_store):
    # A second, later installation of one person (a reconnect): its token is the one read, by every path.
    later = {"client_id": crowded_store.installation_store.client_id, "app_id": "A1", "team_id": "T1",
             "user_id": "U00042", "user_token": "stored-again",
             "installed_at": INSTALLED + timedelta(days=1)}  # fmt: skip
    with crowded_store.engine.begin() as conn:
        conn.execute(schema.installations.insert(), [later])
    assert crowded_store.user_token("T1", "U00042") == "stored-again"
    assert crowded_store.user_tokens("T1", {"U00042", "U00041"}) == {"U00042": "stored-again", "U00041": "stored-41"}
    view = crowded_store.dm_view("T1", "D1", recipient_id="U00042", sender_id="U00007")
    assert view.recipient_token == "stored-again"
