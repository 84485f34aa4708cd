"""The forget cascade over every table of the schema: a person's rows go, everyone else's stay; a workspace's rows go,
other workspaces' stay. The rows are made from the schema itself, so a table added later is covered (or this fails).
Real database (SQLite, or PostgreSQL in CI)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import sqlalchemy as sa

from bot.storage import forget, schema
from bot.storage.engine import UTCDateTime, writing

NOW = datetime(2026, 3, 4, 3, 0, tzinfo=UTC)
_unique = itertools.count(1)


def team_tables() -> list[sa.Table]:
    return [table for table in schema.metadata.sorted_tables if "team_id" in table.c]


# The column names that hold a person's id, wherever they appear (slack_bots' bot_user_id is the app's own).
# A channel's office hours and its summaries belong to the team, not to a person (channel_hours.summary_to, the
# person a summary is DMed to, is cleared when they are forgotten: tests/slack/test_channel_hours.py); so does the
# workspace's web address (workspace_urls).
TEAM_OWNED = ("channel_hours", "channel_summaries", "workspace_urls")
NAMES_A_PERSON = (
    "user_id",
    "recipient_id",
    "sender_id",
    "user_a",
    "user_b",
    "except_user_id",
    "writer_id",
    "route_to",
    "target_id",
)


def person_columns() -> dict[str, tuple[str, ...]]:
    """Read from the schema, not from bot/storage/forget.py: the test decides what names a person."""
    found = {t.name: tuple(c for c in NAMES_A_PERSON if c in t.c) for t in team_tables()}
    return {name: columns for name, columns in found.items() if columns}


def a_row(table: sa.Table, *, team_id: str, person: str | None, column: str | None) -> dict:
    """A row of `table` in `team_id`, naming `person` in `column` and no one in particular elsewhere."""
    row: dict = {}
    for c in table.c:
        if c.primary_key and isinstance(c.type, sa.Integer):
            continue  # autoincrement
        n = next(_unique)
        if c.name == "team_id":
            row[c.name] = team_id
        elif c.name == column:
            row[c.name] = person
        elif isinstance(c.type, UTCDateTime):
            row[c.name] = NOW
        elif isinstance(c.type, sa.DateTime):
            row[c.name] = NOW.replace(tzinfo=None)
        elif isinstance(c.type, sa.Boolean):
            row[c.name] = False
        elif isinstance(c.type, sa.Integer):
            row[c.name] = 0
        else:  # strings: unique, so that no unique key is hit and no one is named by accident
            row[c.name] = f"x{n}"
    if table.name == schema.installations.name and column != "user_token":
        row["user_token"] = f"xoxp-{n}"
    return row


def fill(store) -> None:
    """In T1 and T2: for U1 a row per column that can name them, the same for U2; and T1's bot."""
    with writing(store.engine) as conn:
        for table in team_tables():
            columns = person_columns().get(table.name, ())
            for team_id in ("T1", "T2"):
                if not columns:  # a workspace's own row (its bot)
                    conn.execute(table.insert().values(a_row(table, team_id=team_id, person=None, column=None)))
                for person, column in itertools.product(("U1", "U2"), columns):
                    conn.execute(table.insert().values(a_row(table, team_id=team_id, person=person, column=column)))


def names(table: sa.Table, team_id: str, user_id: str) -> sa.ColumnElement[bool]:
    columns = person_columns().get(table.name, ())
    return sa.and_(table.c.team_id == team_id, sa.or_(sa.false(), *(table.c[c] == user_id for c in columns)))


def count(store, table: sa.Table, where: sa.ColumnElement[bool]) -> int:
    with store.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table).where(where)).scalar_one()


def test_every_table_of_a_workspace_is_in_the_cascade():
    assert {t.name for t in team_tables()} == {t.name for t in forget.TEAM_TABLES}
    # Every workspace table but the bots' holds something about a person; forget knows each column naming them.
    assert set(person_columns()) == {t.name for t in team_tables()} - {schema.bots.name, *TEAM_OWNED}
    assert {table.name: set(columns) for table, columns in forget.PERSON_COLUMNS} == {
        name: set(columns) for name, columns in person_columns().items()
    }


def test_forget_person_deletes_every_row_naming_them_and_nothing_else(store):
    fill(store)
    before = {t.name: count(store, t, sa.true()) for t in team_tables()}
    store.forget_person("T1", "U1")
    for table in team_tables():
        assert count(store, table, names(table, "T1", "U1")) == 0, table.name
        gone = len(person_columns().get(table.name, ()))  # one row per column that named U1 in T1
        assert count(store, table, sa.true()) == before[table.name] - gone, table.name
    assert count(store, schema.bots, schema.bots.c.team_id == "T1") == 1  # the workspace's bot stays


def test_forget_team_deletes_every_row_of_the_workspace_and_nothing_else(store):
    fill(store)
    before = {t.name: count(store, t, t.c.team_id == "T2") for t in team_tables()}
    store.forget_team("T1")
    for table in team_tables():
        assert count(store, table, table.c.team_id == "T1") == 0, table.name
        assert count(store, table, table.c.team_id == "T2") == before[table.name] > 0, table.name


def test_revoking_a_persons_tokens_forgets_them(store):
    fill(store)
    store.revoke_user_tokens("T1", ["U1", "U2"])
    for table in team_tables():
        for user_id in ("U1", "U2"):
            assert count(store, table, names(table, "T1", user_id)) == 0, table.name
        assert count(store, table, table.c.team_id == "T2") > 0, table.name
