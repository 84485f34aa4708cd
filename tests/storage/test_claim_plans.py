"""The schema the migrations build is the one bot/storage/schema.py declares, and every outbox's claim reads its
LIMIT in the order of its index: under a backlog of due rows no claim sorts them all (revision 0013).

On its own database (SQLite in a file; with TEST_DATABASE_URL, a PostgreSQL database of its own), with no
ANALYZE after the backlog came, as after an outage: PostgreSQL's planner then misjudged how many rows were due
and, with an index ending at `next_attempt_at`, sorted every one of them before its LIMIT (bench/claims.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from bot.storage import schema
from bot.storage.store import Store
from tests.support.databases import own_store as own_database_store
from tests.support.statements import claim_select

DUE = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)
BACKLOG = 2000


@pytest.fixture
def own_store(tmp_path) -> Iterator[Store]:
    with own_database_store(tmp_path, "claims") as store:
        yield store


def test_the_migrations_build_the_declared_schema(own_store):
    with own_store.engine.connect() as conn:
        # Types apart (UTCDateTime is DateTime in the migrations): tables, columns, indexes, constraints.
        differences = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": False}), schema.metadata)
    assert differences == []


def _due(i: int) -> dict:
    return {"team_id": "T1", "next_attempt_at": DUE + timedelta(milliseconds=i)}


# The outbox, its claim's index, its n-th due row (the fields each table requires), and its claim.
OUTBOXES: dict[str, tuple[sa.Table, str, Callable[[int], dict], Callable[[Store, datetime], object]]] = {
    "auto_replies": (
        schema.replies,
        "ix_replies_due",
        lambda i: {
            **_due(i),
            "recipient_id": "UR",
            "sender_id": f"US{i}",
            "window_key": "w",
            "channel_id": f"D{i}",
            "message_ts": f"{i}.1",
            "thread_ts": f"{i}.1",
            "received_at": DUE,
        },
        lambda store, now: store.replies.claim_due(now=now, limit=32),
    ),
    "recaps": (
        schema.recaps,
        "ix_recaps_due",
        lambda i: {**_due(i), "user_id": f"U{i}", "due_at": DUE},
        lambda store, now: store.recaps.claim_retries(now=now, limit=32),
    ),
    "channel_replies": (
        schema.channel_replies,
        "ix_channel_replies_due",
        lambda i: {
            **_due(i),
            "channel_id": "C1",
            "sender_id": f"US{i}",
            "window_key": "w",
            "message_ts": f"{i}.1",
            "received_at": DUE,
            "back_at": DUE,
        },
        lambda store, now: store.channel_hours.claim_replies(now=now, limit=32),
    ),
    "channel_summaries": (
        schema.channel_summaries,
        "ix_channel_summaries_due",
        lambda i: {**_due(i), "channel_id": f"C{i}", "due_at": DUE},
        lambda store, now: store.channel_hours.claim_summaries(now=now, limit=32),
    ),
    "urgent_notices": (
        schema.urgent_notices,
        "ix_urgent_due",
        lambda i: {
            **_due(i),
            "recipient_id": "UR",
            "sender_id": f"US{i}",
            "target_id": "UB",
            "window_key": "w",
            "reply_id": i,
            "channel_id": f"D{i}",
            "message_ts": f"{i}.1",
            "note": "n",
            "created_at": DUE,
        },
        lambda store, now: store.urgent.claim_due(now=now, limit=32),
    ),
    "status_updates": (
        schema.status_updates,
        "ix_status_updates_due",
        lambda i: {**_due(i), "user_id": f"U{i}", "window_end": DUE, "action": "set", "updated_at": DUE},
        lambda store, now: store.status.claim_due(now=now, limit=32),
    ),
    "nudges": (
        schema.nudges,
        "ix_nudges_due",
        lambda i: {
            **_due(i),
            "user_id": "UR",
            "sender_id": f"US{i}",
            "channel_id": f"D{i}",
            "message_ts": f"{i}.1",
            "thread_ts": f"{i}.1",
            "received_at": DUE,
            "promised_at": DUE,
            "planned_at": DUE,
        },
        lambda store, now: store.nudges.claim_due(now=now, limit=32),
    ),
}


@pytest.mark.parametrize("outbox", list(OUTBOXES))
def test_a_claim_under_a_backlog_reads_in_index_order(own_store, outbox):
    table, index, row, claim = OUTBOXES[outbox]
    with own_store.engine.begin() as conn:
        conn.execute(table.insert(), [row(i) for i in range(BACKLOG)])
    now = DUE + timedelta(hours=1)
    statement, parameters = claim_select(own_store.engine, lambda: claim(own_store, now))

    with own_store.engine.connect() as conn:
        if own_store.is_postgres:
            plan = [r[0] for r in conn.exec_driver_sql("EXPLAIN " + statement, parameters)]  # type: ignore[arg-type]
            sorts = [line for line in plan if line.strip().removeprefix("->").strip().startswith(("Sort", "Incr"))]
        else:
            plan = [r[-1] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)]  # type: ignore[arg-type]
            sorts = [line for line in plan if "TEMP B-TREE" in line]
        conn.rollback()
    assert sorts == [], "\n".join(plan)
    assert index in "\n".join(plan), "\n".join(plan)
