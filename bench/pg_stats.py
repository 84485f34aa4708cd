"""PostgreSQL for the benchmarks: databases of their own (created beside SERVER_URL's, dropped), and the server's
counters for one of them: transactions and rows (pg_stat_database), scans per table (pg_stat_user_tables), the CPU
of the backends serving it (/proc, sampled while they live).

SERVER_URL: BENCH_POSTGRES_SERVER, else TEST_DATABASE_URL, else postgresql+psycopg://postgres@127.0.0.1:5432/postgres;
only CREATE/DROP DATABASE and the statistics views are used there, its contents are never touched.
"""

from __future__ import annotations

import os
import threading
import time

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from bench.common import cpu_seconds
from tests.support import databases

PREFIX = "offhours_bench_"
SERVER_URL = (
    os.environ.get("BENCH_POSTGRES_SERVER")
    or os.environ.get("TEST_DATABASE_URL")
    or "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def create_database() -> str:
    """A new database of this benchmark's own beside SERVER_URL's; returns its URL."""
    return databases.create_database(SERVER_URL, prefix=PREFIX)


def drop_database(database_url: str) -> None:
    """Drop a database create_database made (refuses any other name)."""
    databases.drop_database(SERVER_URL, database_url, prefix=PREFIX)


def transactions(database_url: str) -> dict[str, int]:
    """pg_stat_database's counters for that database, read from the server's other database (not counted there)."""
    admin = sa.create_engine(make_url(SERVER_URL), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql("SELECT pg_stat_clear_snapshot()")
            row = conn.execute(
                sa.text(
                    "SELECT xact_commit, xact_rollback, tup_inserted, tup_updated, tup_deleted"
                    " FROM pg_stat_database WHERE datname = :name"
                ),
                {"name": make_url(database_url).database},
            ).one()
    finally:
        admin.dispose()
    return dict(
        zip(("commits", "rollbacks", "inserted", "updated", "deleted"), (int(v or 0) for v in row), strict=True)
    )


def table_activity(database_url: str) -> dict[str, dict[str, int]]:
    """pg_stat_user_tables per table: index and sequential scans, rows inserted and updated (HOT ones apart)."""
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT relname, coalesce(idx_scan, 0), seq_scan, n_tup_ins, n_tup_upd, n_tup_hot_upd"
                    " FROM pg_stat_user_tables"
                )
            ).all()
    finally:
        engine.dispose()
    names = ("idx_scan", "seq_scan", "inserted", "updated", "hot_updated")
    return {row[0]: dict(zip(names, (int(v) for v in row[1:]), strict=True)) for row in rows}


def per_dm(after: dict[str, dict[str, int]], before: dict[str, dict[str, int]], events: int) -> dict[str, dict]:
    """The tables the load touched, each counter's increase per DM."""
    out = {}
    for table, counts in after.items():
        delta = {k: (v - before.get(table, {}).get(k, 0)) / events for k, v in counts.items()}
        if any(delta.values()):
            out[table] = {k: round(v, 3) for k, v in delta.items() if v}
    return out


def backend_pids(database_url: str) -> list[int]:
    """The PostgreSQL server processes serving that database's connections now (read from the other database)."""
    admin = sa.create_engine(make_url(SERVER_URL), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            query = sa.text("SELECT pid FROM pg_stat_activity WHERE datname = :name")
            return [int(pid) for pid in conn.execute(query, {"name": make_url(database_url).database}).scalars()]
    finally:
        admin.dispose()


class BackendCpu:
    """CPU seconds of the backends serving a database from start() to stop(), sampled every `interval` s: a pooled
    connection's backend lives through the run, an overflow one is closed on return (its last interval is missed).
    Also the most backends seen at once."""

    def __init__(self, database_url: str, *, interval: float = 0.1) -> None:
        self.database_url = database_url
        self.interval = interval
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.most = 0
        self._running = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="backend-cpu", daemon=True)

    def sample(self) -> None:
        pids = backend_pids(self.database_url)
        self.most = max(self.most, len(pids))
        for pid in pids:
            cpu = cpu_seconds([pid])
            self.first.setdefault(pid, 0.0 if self._running else cpu)  # a backend opened during the run: from 0
            self.last[pid] = max(cpu, self.last.get(pid, 0.0))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def start(self) -> BackendCpu:
        self.sample()
        self._running = True
        self._thread.start()
        return self

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        self.sample()
        return sum(self.last[pid] - self.first.get(pid, 0.0) for pid in self.last)


def settle_stats(database_url: str, before: dict[str, int], *, timeout: float = 3.0) -> dict[str, int]:
    """The counters once they stop moving: exiting backends report theirs a moment after they are gone."""
    deadline = time.monotonic() + timeout
    last = transactions(database_url)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = transactions(database_url)
        if now == last:
            break
        last = now
    return {k: last[k] - before[k] for k in last}


def postgres_answers() -> str | None:
    """None when the server answers; else why not (the script then exits 2 with that reason)."""
    engine = sa.create_engine(make_url(SERVER_URL), connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as e:
        return f"PostgreSQL at {make_url(SERVER_URL).render_as_string(hide_password=True)}: {type(e).__name__}"
    finally:
        engine.dispose()
    return None
