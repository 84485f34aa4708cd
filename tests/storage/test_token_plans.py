"""Every read of a person's token finds their installation rows by index, whatever the number of people connected
(revision 0014): before it, the reads by workspace and user scanned every installation of the app, once per DM.

On its own database (SQLite in a file; with TEST_DATABASE_URL, a PostgreSQL database of its own), with as many
installations as a large workspace. PostgreSQL's table is analysed, as autovacuum does after that many inserts:
without statistics its planner takes `client_id = ?` (every row of the app) for one row.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from bot.storage import schema
from bot.storage.dm_view import DmKey, read_dm_views
from bot.storage.engine import writing
from bot.storage.store import Store
from bot.storage.tokens import connected_among, still_connected
from tests.support.databases import own_store
from tests.support.statements import statements_run

PEOPLE = 3000
INSTALLED = datetime(2026, 3, 4, 9, 0)


@pytest.fixture(scope="module")
def crowded_store(tmp_path_factory) -> Iterator[Store]:
    # One database for the module: creating, migrating and filling one took about 3 s on PostgreSQL per test.
    # Its reads change nothing; the one test that adds a row adds one the others do not look at.
    with own_store(tmp_path_factory.mktemp("tokens"), "tokens") as store:
        # As wide as stored rows (encrypted tokens are about 290 characters): with narrow rows a sequential scan is
        # PostgreSQL's cheapest plan anyway, and a whole read of slack_sdk's index would go unseen.
        wide = {"user_refresh_token": "r" * 290, "bot_token": "b" * 290, "bot_scopes": "s" * 200,
                "user_scopes": "u" * 200}  # fmt: skip
        rows = [
            {"client_id": store.installation_store.client_id, "app_id": "A1", "team_id": "T1", "user_id": f"U{i:05d}",
             "user_token": f"stored-{i}", "installed_at": INSTALLED + timedelta(seconds=i), **wide}
            for i in range(PEOPLE)
        ]  # fmt: skip
        with store.engine.begin() as conn:
            conn.execute(schema.installations.insert(), rows)
            if store.is_postgres:
                conn.exec_driver_sql("ANALYZE slack_installations")
        yield store


def _in_a_transaction(store: Store, read: Callable[[sa.Connection], object]) -> Callable[[], object]:
    def run() -> object:
        with writing(store.engine) as conn:
            return read(conn)

    return run


BATCH_OF_KEYS = [DmKey("T1", "D1", "U00042", "U00007"), DmKey("T1", "D2", "U01234", "U00008")]
# Each token read, as its callers make it (the user ids are among those connected).
READS: dict[str, Callable[[Store], Callable[[], object]]] = {
    "dm_view": lambda s: lambda: s.dm_view("T1", "D1", recipient_id="U00042", sender_id="U00007"),
    "user_token": lambda s: lambda: s.user_token("T1", "U00042"),
    "user_tokens": lambda s: lambda: s.user_tokens("T1", {"U00042", "U01234", "U02999"}),
    "still_connected": lambda s: _in_a_transaction(s, lambda conn: still_connected(conn, "T1", "U00042")),
    "connected_among": lambda s: _in_a_transaction(s, lambda conn: connected_among(conn, "T1", {"U00042", "U01234"})),
    "dm_views (a batch)": lambda s: lambda: read_dm_views(s.engine, s.tokens, BATCH_OF_KEYS),
    "mention scopes": lambda s: lambda: s.mentions.granted_scopes("T1", "U00042"),
    "status scopes": lambda s: lambda: s.status.granted_scopes("T1", "U00042"),
    "status scopes (a batch)": lambda s: lambda: s.status.granted_scopes_many("T1", {"U00042", "U01234"}),
    # Under the cache (what a miss runs): the module's store is shared, and a second read would be a hit.
    "Bolt's find_installation": lambda s: (
        lambda: s.installation_store.underlying.find_installation(enterprise_id=None, team_id="T1", user_id="U00042")
    ),
}


def _installation_reads(engine: sa.Engine, read: Callable[[], object]) -> list[tuple[str, object]]:
    return statements_run(
        engine, read, lambda s: s.lstrip().upper().startswith(("SELECT", "WITH")) and "slack_installations" in s
    )


@pytest.mark.parametrize("bitmap", [False, True], ids=["", "bitmap"])
@pytest.mark.parametrize("read", list(READS))
def test_a_token_read_finds_the_persons_rows_by_index(crowded_store, read, bitmap):
    if bitmap and not crowded_store.is_postgres:
        pytest.skip("PostgreSQL's bitmap scans")
    statements = _installation_reads(crowded_store.engine, READS[read](crowded_store))
    assert statements, f"{read} read no installation"
    for statement, parameters in statements:
        with crowded_store.engine.connect() as conn:
            if crowded_store.is_postgres:
                if bitmap:  # the planner's other way through an index: still a search by user
                    conn.exec_driver_sql("SET LOCAL enable_indexscan = off")
                [tree] = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, parameters).scalar_one()  # type: ignore[arg-type]
                plan = [json.dumps(tree, indent=1)]
                found = _postgres_searches(tree["Plan"])
            else:
                plan = [r[-1] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)]  # type: ignore[arg-type]
                # Every access to the table a search by user through an index (a SCAN through one reads it all)
                reads = [line.strip() for line in plan if "slack_installations" in line]
                found = bool(reads) and all(line.startswith(SQLITE_SEARCH) and "user_id=" in line for line in reads)
            conn.rollback()
        assert found, "\n".join(plan)


# ix_installations_user, or slack_sdk's own where a read names the organisation and workspace (Bolt's)
SQLITE_SEARCH = "SEARCH slack_installations USING INDEX "


def _postgres_searches(plan: dict) -> bool:
    """Each read of slack_installations (an index scan, or a bitmap heap scan and its index scans) is a search by
    user: through ix_installations_user with the user in its Index Cond, or through slack_sdk's index with all of
    its leading columns bound (Bolt's reads). An Index Cond on slack_sdk's index that leaves `enterprise_id` open
    reads every row of the app, as a sequential scan does."""
    reads = [node for node in _nodes(plan) if node.get("Relation Name") == "slack_installations"]
    if not reads:
        return False
    for node in reads:
        if node["Node Type"] in ("Index Scan", "Index Only Scan"):
            searches = [node]
        elif node["Node Type"] == "Bitmap Heap Scan":
            searches = [n for n in _nodes(node) if n["Node Type"] == "Bitmap Index Scan"]
        else:
            return False
        if not searches or not all(_by_user(search) for search in searches):
            return False
    return True


def _nodes(node: dict) -> Iterator[dict]:
    yield node
    for child in node.get("Plans", []):
        yield from _nodes(child)


def _by_user(scan: dict) -> bool:
    condition = scan.get("Index Cond", "")
    if scan.get("Index Name") == "ix_installations_user":
        return "user_id" in condition
    if scan.get("Index Name") == "slack_installations_idx":
        return all(column in condition for column in ("client_id", "enterprise_id", "team_id", "user_id"))
    return False


def test_the_reads_still_find_the_latest_token_of_each(crowded_store):
    # A second, later installation of one person (a reconnect): its token is the one read, by every path.
    later = {"client_id": crowded_store.installation_store.client_id, "app_id": "A1", "team_id": "T1",
             "user_id": "U00500", "user_token": "stored-again",
             "installed_at": INSTALLED + timedelta(days=1)}  # fmt: skip
    with crowded_store.engine.begin() as conn:
        conn.execute(schema.installations.insert(), [later])
    assert crowded_store.user_token("T1", "U00500") == "stored-again"
    assert crowded_store.user_tokens("T1", {"U00500", "U00499"}) == {"U00500": "stored-again", "U00499": "stored-499"}
    view = crowded_store.dm_view("T1", "D1", recipient_id="U00500", sender_id="U00007")
    assert view.recipient_token == "stored-again"
