"""The delivery claims under a backlog: N due rows in an outbox, the cost of one claim, at revision 0012 and 0013.

    python bench/claims.py [--quick] [--due N] [--history H] [--tied] [--claims K] [--database sqlite|postgres|both]

For each outbox (auto-replies, recaps, channel replies and summaries, urgent notices, status updates, nudges), on
an empty database at 0012: H rows settled long ago (the steady state; ANALYZE on PostgreSQL), then a backlog of N
pending rows due over one minute (one per millisecond; `--tied`: all at one instant), bulk-inserted in the
outbox's shape (each auto-reply with the DM it answers, which its claim joins). The store's own claim method then
runs K times (`--limit` rows each, `now` after all are due) at 0012, and again after upgrading the same database
to 0013 (claim indexes ending with `id`, the claims' tie-break): median and worst ms per claim, leases undone in
between. On PostgreSQL twice: with the statistics from before the backlog ("stale": what the planner knows when
an outage's backlog arrives, before autovacuum analyzes) and after ANALYZE ("analyzed"). The plan of each
claim's SELECT is recorded (EXPLAIN ANALYZE; SQLite: EXPLAIN QUERY PLAN), and whether it sorts every due row.

PostgreSQL: a database of its own (created beside BENCH_POSTGRES_SERVER's, else TEST_DATABASE_URL's, else
127.0.0.1:5432/postgres; dropped at the end). Prints a JSON summary on the last line.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa
from alembic import command

from bench.common import TEAM, emit
from bench.pg_stats import create_database, drop_database, postgres_answers
from bot.storage import schema
from bot.storage.migrate import alembic_config
from bot.storage.store import Store
from tests.support.statements import claim_select

DUE = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)
NOW = DUE + timedelta(hours=1)  # everything seeded is due; the leases taken run to NOW + lease, past every row
CHUNK = 2000


def _naive(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class Kind:
    table: sa.Table
    rows: Callable[[int], list[dict]]  # N due rows (the table's own), in bulk
    claim: Callable[[Store, datetime, int], list]
    extra: Callable[[int], list[tuple[sa.Table, list[dict]]]] = lambda n: []  # rows of other tables it reads


def _common(i: int) -> dict:
    # Due over the minute before DUE + 1 min, in a different millisecond each (queued one by one); `tied` below
    # moves them all to one instant (a batch's lease or Retry-After: rows settled together share a time).
    return {"team_id": TEAM, "next_attempt_at": DUE + timedelta(milliseconds=i % 60_000)}


def _replies(n: int) -> list[dict]:
    return [{**_common(i), "recipient_id": f"UR{i % 500:05d}", "sender_id": f"US{i:06d}", "window_key": "w",
             "channel_id": f"D{i:06d}", "message_ts": f"{1000 + i}.000100", "thread_ts": f"{1000 + i}.000100",
             "received_at": DUE, "window_start": DUE - timedelta(hours=8), "window_end": DUE}
            for i in range(n)]  # fmt: skip


def _reply_messages(n: int) -> list[tuple[sa.Table, list[dict]]]:
    rows = [{"team_id": TEAM, "recipient_id": f"UR{i % 500:05d}", "channel_id": f"D{i:06d}",
             "ts": f"{1000 + i}.000100", "thread_ts": f"{1000 + i}.000100", "sender_id": f"US{i:06d}",
             "received_at": DUE, "due_at": DUE + timedelta(hours=8)}
            for i in range(n)]  # fmt: skip
    return [(schema.messages, rows)]


KINDS: dict[str, Kind] = {
    "auto_replies": Kind(
        schema.replies, _replies, lambda s, now, limit: s.replies.claim_due(now=now, limit=limit), _reply_messages
    ),
    "recaps": Kind(
        schema.recaps,
        lambda n: [{**_common(i), "user_id": f"U{i:06d}", "due_at": DUE, "attempts": 1} for i in range(n)],
        lambda s, now, limit: s.recaps.claim_retries(now=now, limit=limit),
    ),
    "channel_replies": Kind(
        schema.channel_replies,
        lambda n: [
            {
                **_common(i),
                "channel_id": f"C{i % 500:05d}",
                "sender_id": f"US{i:06d}",
                "window_key": "w",
                "message_ts": f"{1000 + i}.000100",
                "received_at": DUE,
                "back_at": DUE,
            }
            for i in range(n)
        ],
        lambda s, now, limit: s.channel_hours.claim_replies(now=now, limit=limit),
    ),
    "channel_summaries": Kind(
        schema.channel_summaries,
        lambda n: [{**_common(i), "channel_id": f"C{i:06d}", "due_at": DUE} for i in range(n)],
        lambda s, now, limit: s.channel_hours.claim_summaries(now=now, limit=limit),
    ),
    "urgent_notices": Kind(
        schema.urgent_notices,
        lambda n: [
            {
                **_common(i),
                "recipient_id": f"UR{i % 500:05d}",
                "sender_id": f"US{i:06d}",
                "target_id": "UB",
                "window_key": "w",
                "reply_id": i,
                "channel_id": f"D{i:06d}",
                "message_ts": f"{1000 + i}.1",
                "note": "urgent",
                "created_at": DUE,
            }
            for i in range(n)
        ],
        lambda s, now, limit: s.urgent.claim_due(now=now, limit=limit),
    ),
    "status_updates": Kind(
        schema.status_updates,
        lambda n: [
            {
                **_common(i),
                "user_id": f"U{i:06d}",
                "window_end": DUE + timedelta(hours=8),
                "action": "set",
                "text": "off",
                "updated_at": DUE,
            }
            for i in range(n)
        ],
        lambda s, now, limit: s.status.claim_due(now=now, limit=limit),
    ),
    "nudges": Kind(
        schema.nudges,
        lambda n: [
            {
                **_common(i),
                "user_id": f"UR{i % 500:05d}",
                "sender_id": f"US{i:06d}",
                "channel_id": f"D{i:06d}",
                "message_ts": f"{1000 + i}.000100",
                "thread_ts": f"{1000 + i}.000100",
                "received_at": DUE,
                "promised_at": DUE + timedelta(hours=9),
                "planned_at": DUE,
            }
            for i in range(n)
        ],
        lambda s, now, limit: s.nudges.claim_due(now=now, limit=limit),
    ),
}


def _migrate(engine: sa.Engine, revision: str, *, down: bool = False) -> None:
    cfg = alembic_config()
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, revision)
        conn.commit()


def _insert(engine: sa.Engine, table: sa.Table, rows: list[dict]) -> None:
    with engine.begin() as conn:
        for start in range(0, len(rows), CHUNK):
            conn.execute(table.insert(), rows[start : start + CHUNK])


def _due_times(engine: sa.Engine, table: sa.Table) -> dict[int, datetime]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(table.c.id, table.c.next_attempt_at).where(table.c.state == "pending"))
        return {row.id: row.next_attempt_at for row in rows}


def _reset(engine: sa.Engine, table: sa.Table, due_times: dict[int, datetime]) -> None:
    """Undo the leases the claims took: those rows due again at their own times (not tied at one instant)."""
    with engine.begin() as conn:
        leased = conn.execute(sa.select(table.c.id).where(table.c.next_attempt_at > DUE + timedelta(minutes=1)))
        rows = [{"b_id": i, "b_at": due_times[i]} for i in leased.scalars()]
        if rows:
            conn.execute(
                table.update()
                .where(table.c.id == sa.bindparam("b_id"))
                .values(next_attempt_at=sa.bindparam("b_at", type_=table.c.next_attempt_at.type),
                        delivery_state="queued"),
                rows,
            )  # fmt: skip


def _plan(store: Store, statement: str, parameters: object) -> list[str]:
    prefix = "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " if store.is_postgres else "EXPLAIN QUERY PLAN "
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql(prefix + statement, parameters).all()  # type: ignore[arg-type]
        conn.rollback()  # EXPLAIN ANALYZE of a FOR UPDATE took the locks: give them back
    return [str(row[0]) if store.is_postgres else str(row[-1]) for row in rows]


def _sorts_all(plan: list[str], *, postgres: bool) -> bool:
    if postgres:  # a Sort node (an Incremental Sort sorts only ties of a presorted prefix)
        return any(line.strip().removeprefix("->").strip().startswith("Sort (") for line in plan)
    return any("USE TEMP B-TREE FOR" in line for line in plan)


def _seed(store: Store, kind: Kind, *, due: int, history: int, tied: bool) -> None:
    """`history` rows settled long ago (the table's steady state, which the statistics describe: ANALYZE on
    PostgreSQL), then the backlog of `due` pending rows on top, after the statistics were taken."""
    rows = kind.rows(history + due)
    for row in rows[:history]:
        row.update(state="sent", delivery_state="sent", next_attempt_at=DUE - timedelta(days=1))
    if tied:
        for row in rows[history:]:
            row["next_attempt_at"] = DUE
    extra = kind.extra(history + due)
    for table, other in extra:
        _insert(store.engine, table, other)
    _insert(store.engine, kind.table, rows[:history])
    _analyze(store, kind.table, *(table for table, _ in extra))
    _insert(store.engine, kind.table, rows[history:])


def _analyze(store: Store, *tables: sa.Table) -> None:
    if store.is_postgres:
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in tables:
                conn.exec_driver_sql(f"ANALYZE {table.name}")


def _time_claims(store: Store, kind: Kind, *, claims: int, limit: int, due_times: dict[int, datetime]) -> dict:
    statement, parameters = claim_select(store.engine, lambda: kind.claim(store, NOW, limit))
    _reset(store.engine, kind.table, due_times)
    plan = _plan(store, statement, parameters)
    times, claimed = [], 0
    for k in range(claims):
        began = time.perf_counter()
        claimed += len(kind.claim(store, NOW + timedelta(microseconds=k), limit))
        times.append((time.perf_counter() - began) * 1000)
    _reset(store.engine, kind.table, due_times)
    return {"median_ms": round(statistics.median(times), 2), "max_ms": round(max(times), 2), "claimed": claimed,
            "sorts_all": _sorts_all(plan, postgres=store.is_postgres), "plan": plan}  # fmt: skip


def measure_kind(
    store: Store, name: str, kind: Kind, *, due: int, history: int, tied: bool, claims: int, limit: int
) -> dict:
    """At 0012 and at 0013, on the same rows. On PostgreSQL twice: with the statistics from before the backlog
    ("stale": 0012, upgrade, 0013), then after ANALYZE ("analyzed": 0013, downgrade, 0012). SQLite keeps no
    statistics (the app never runs ANALYZE): once per revision."""
    _migrate(store.engine, "0012")
    _seed(store, kind, due=due, history=history, tied=tied)
    due_times = _due_times(store.engine, kind.table)
    result: dict = {"kind": name, "due": due, "history": history, "tied": tied, "limit": limit, "0012": {},
                    "0013": {}}  # fmt: skip
    for revision in ("0012", "0013"):
        _migrate(store.engine, revision)
        if store.is_postgres:
            # CREATE INDEX sets the table's row count (pg_class) the planner reads; REINDEX sets it at 0012 too,
            # so that the two revisions differ in their indexes only.
            with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql(f"REINDEX TABLE {kind.table.name}")
        phase = "stale" if store.is_postgres else "sqlite"
        result[revision][phase] = _time_claims(store, kind, claims=claims, limit=limit, due_times=due_times)
    if store.is_postgres:
        _analyze(store, kind.table)
        for revision in ("0013", "0012"):
            _migrate(store.engine, revision, down=revision == "0012")
            result[revision]["analyzed"] = _time_claims(store, kind, claims=claims, limit=limit, due_times=due_times)
    return result


def run(
    database: str, *, due: int, history: int, tied: bool, claims: int, limit: int, kinds: list[str], workdir: Path
) -> dict:
    url = create_database() if database == "postgres" else f"sqlite:///{workdir / 'claims.db'}"
    try:
        results = []
        for name in kinds:
            # An empty database per kind, so that each claim meets only its own backlog.
            if database == "postgres":
                with sa.create_engine(url).begin() as conn:
                    conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
            else:
                (workdir / "claims.db").unlink(missing_ok=True)
            store = Store(url)
            try:
                results.append(measure_kind(store, name, KINDS[name], due=due, history=history, tied=tied,
                                            claims=claims, limit=limit))  # fmt: skip
            finally:
                store.close()
        return {"database": database, "results": results}
    finally:
        if database == "postgres":
            drop_database(url)


def _line(database: str, r: dict) -> str:
    cells = []
    for phase in ("sqlite", "stale", "analyzed"):
        if phase in r["0012"]:
            before, after = r["0012"][phase], r["0013"][phase]
            cells.append(f"{phase}: {before['median_ms']:7.2f}{'*' if before['sorts_all'] else ' '} ->"
                         f" {after['median_ms']:6.2f}{'*' if after['sorts_all'] else ' '} ms")  # fmt: skip
    return f"{database:<8} {r['kind']:<18} " + "   ".join(cells)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="500 due rows, 3 claims, replies and recaps (CI)")
    parser.add_argument("--due", type=int, help="the backlog: due rows (default 50,000)")
    parser.add_argument("--history", type=int, help="settled rows before the backlog (default: as many as due)")
    parser.add_argument("--tied", action="store_true", help="all due at one instant (else one per millisecond)")
    parser.add_argument("--claims", type=int, help="claims timed per revision (default 20)")
    parser.add_argument("--limit", type=int, default=32)
    parser.add_argument("--database", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--kinds", help=f"comma-separated, of {','.join(KINDS)} (default: all)")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    due = args.due or (500 if args.quick else 50_000)
    history = due if args.history is None else args.history
    claims = args.claims or (3 if args.quick else 20)
    kinds = args.kinds.split(",") if args.kinds else (["auto_replies", "recaps"] if args.quick else list(KINDS))
    databases = ["sqlite", "postgres"] if args.database == "both" else [args.database]
    runs, skipped = [], {}
    print(f"ms per claim of {args.limit}, median of {claims}, {due} due over {history} settled"
          f"{' (tied)' if args.tied else ''}: 0012 -> 0013 (* = sorts every due row)", flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="offhours-claims-") as tmp:
        for database in databases:
            why = postgres_answers() if database == "postgres" else None
            if why:
                if args.database == "postgres":
                    print(why, file=sys.stderr)
                    return 2
                skipped[database] = why
                continue
            done = run(database, due=due, history=history, tied=args.tied, claims=claims, limit=args.limit,
                       kinds=kinds, workdir=Path(tmp))  # fmt: skip
            runs.append(done)
            for r in done["results"]:
                print(_line(database, r), flush=True)
    emit({"benchmark": "claims", "at": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC", "claims": claims, "runs": runs,
          "skipped": skipped}, args.json)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
