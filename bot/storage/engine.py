"""Engine set-up and connections: the UTC column type, read and write connections, dialect-neutral inserts.

Every instant is stored as naive UTC (SQLite has no time zones) through `UTCDateTime`, and read back as
aware UTC, so code above the storage layer only ever sees aware datetimes.
"""

from __future__ import annotations

import json
import select
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite


def naive_utc(value: datetime) -> datetime:
    """An instant as it is stored: naive UTC (UTCDateTime, and InsertNew's JSON rows)."""
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the database; pass an aware one")
    return value.astimezone(UTC).replace(tzinfo=None)


class UTCDateTime(sa.types.TypeDecorator):
    """Aware datetimes in, aware UTC datetimes out; stored as naive UTC."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return None if value is None else naive_utc(value)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


READ_ONLY = "offhours_read_only"
# SQLite has one writer at a time. Threads of one process queue for it on a Python lock, handed over the moment
# the holder has committed; left to SQLite, a waiting writer polls in sleeps of up to 100 ms
# (sqliteDefaultBusyCallback), which measured as most of the ack latency tail under concurrent DMs. Other
# processes (and the OAuth stores, which open their own transactions) still meet SQLite's busy_timeout.
_write_queues: weakref.WeakKeyDictionary[sa.Engine, threading.Lock] = weakref.WeakKeyDictionary()
WRITE_QUEUE_TIMEOUT_S = 30.0  # SQLite's own busy_timeout: past it, a writer goes ahead and lets SQLite decide
SQLITE_POOL_SIZE = 32  # a kept SQLite connection costs a file handle and its page cache, no server process


def reading(engine: sa.Engine) -> sa.Connection:
    """A connection for reads only (on SQLite it does not queue for the write lock). Use as a context manager.

    On PostgreSQL it runs in autocommit: under READ COMMITTED each statement sees its own snapshot either way, so
    a BEGIN and a ROLLBACK would only add two round trips to every read (measured: 460 -> 300 µs for a one-row
    read). On SQLite the deferred BEGIN keeps one snapshot across a reader's statements (WAL).
    """
    if engine.dialect.name == "postgresql":
        return engine.connect().execution_options(isolation_level="AUTOCOMMIT", **{READ_ONLY: True})
    return engine.connect().execution_options(**{READ_ONLY: True})


@contextmanager
def writing(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A write transaction, committed on exit (rolled back on an exception), like `engine.begin()`."""
    queue = _write_queues.get(engine)
    if queue is None:
        with engine.begin() as conn:
            yield conn
        return
    queued = queue.acquire(timeout=WRITE_QUEUE_TIMEOUT_S)
    try:
        with engine.begin() as conn:
            yield conn
    finally:
        if queued:
            queue.release()


def make_engine(url: str, **kwargs: Any) -> sa.Engine:
    """An engine tuned for several threads: SQLite in WAL mode with a busy timeout, PostgreSQL pooled."""
    # Errors would otherwise carry the statement's parameters into the logs: a recorded DM's text, a token.
    kwargs.setdefault("hide_parameters", True)
    # Pools as large as the threads that use them at once (16 request threads, the posting threads, the workers):
    # past `pool_size` a returned connection is closed and the next checkout opens a new one. On SQLite that re-ran
    # the PRAGMAs and emptied the connection's statement cache on most DMs at 16 concurrent requests (2,064 opens
    # for 2,000 DMs, about 20 % of the request path's CPU). A PostgreSQL process still opens at most 30.
    if url.startswith("sqlite"):
        in_memory = _sqlite_in_memory(url)
        if not in_memory:  # (an in-memory database is one connection per thread: SingletonThreadPool)
            kwargs.setdefault("pool_size", SQLITE_POOL_SIZE)
            kwargs.setdefault("max_overflow", SQLITE_POOL_SIZE)
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs)
        _tune_sqlite(engine, in_memory=in_memory)
        _write_queues[engine] = threading.Lock()
        return engine
    kwargs.setdefault("pool_size", 24)
    kwargs.setdefault("max_overflow", 6)
    engine = sa.create_engine(url, **kwargs)
    _ping_idle_connections(engine)
    return engine


# A pooled connection unused for longer than this is pinged before use: the server (or a proxy, or a failover) may
# have closed it meanwhile. One used within it is not: SQLAlchemy's pool_pre_ping pinged at every checkout, a round
# trip before each of the ~5 transactions per DM. One used within it is pinged only if its socket has something to
# read (the server closed it: a restart, a failover), found by a poll with no round trip. A connection dropped while
# in use still fails its statement, and SQLAlchemy then invalidates the whole pool (is_disconnect).
PING_AFTER_IDLE_S = 5.0


def _ping_idle_connections(engine: sa.Engine) -> None:
    @sa.event.listens_for(engine, "checkin")
    def _idle_from(dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info["idle_since"] = time.monotonic()

    @sa.event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")  # None: opened for this checkout
        if idle_since is None:
            return
        if time.monotonic() - idle_since < PING_AFTER_IDLE_S and not _server_spoke(dbapi_connection):
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as e:
            # As pool_pre_ping does: every connection pooled before now is stale; this checkout gets a new one.
            raise sa.exc.InvalidatePoolError(type(e).__name__) from e


def _sqlite_in_memory(url: str) -> bool:
    """SQLAlchemy's own test (pysqlite's SingletonThreadPool, which takes no max_overflow): no file, or a URI
    filename with mode=memory ("sqlite:///file:name?mode=memory&cache=shared&uri=true")."""
    parsed = sa.engine.make_url(url)
    return parsed.database in (None, "", ":memory:") or parsed.query.get("mode") == "memory"


def _server_spoke(dbapi_connection: Any) -> bool:
    """Whether an idle connection's socket has something to read, without a round trip (one poll): between
    statements the server only speaks to say goodbye (a restart, pg_terminate_backend, a proxy closing it), and
    the goodbye is there before the next statement would fail on it. A silent drop still needs the idle ping."""
    if getattr(dbapi_connection, "closed", False):
        return True
    try:
        poller = select.poll()  # not select(): a descriptor past 1,024 is fine
        poller.register(dbapi_connection.fileno(), select.POLLIN)
        return bool(poller.poll(0))
    except Exception:  # no socket to ask (psycopg's fileno() raises once the connection is closed): ping it
        return True


def _tune_sqlite(engine: sa.Engine, *, in_memory: bool) -> None:
    @sa.event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        # Let SQLAlchemy, not pysqlite, open transactions (see _sqlite_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _sqlite_begin(connection: sa.Connection) -> None:
        # IMMEDIATE takes the write lock up front, so concurrent writers wait instead of failing with "database
        # is locked" when a read transaction tries to upgrade. Connections opened with `reading()` only read: a
        # deferred BEGIN lets them run beside the writer (WAL). Sent on the DBAPI connection: through
        # exec_driver_sql it cost as much as the query it opens.
        statement = "BEGIN" if connection.get_execution_options().get(READ_ONLY, False) else "BEGIN IMMEDIATE"
        driver = connection.connection.driver_connection
        assert driver is not None  # a pooled connection always has one while it is checked out
        try:
            driver.execute(statement)
        except sqlite3.Error as e:  # e.g. "database is locked" past busy_timeout: raised as SQLAlchemy would
            raise sa.exc.DBAPIError.instance(statement, None, e, sqlite3.Error, hide_parameters=True) from e


def dialect_insert(engine: sa.Engine) -> Callable[[sa.Table], postgresql.Insert | sqlite.Insert]:
    return postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert


def insert_ignore(engine: sa.Engine, table: sa.Table, conflict: list[str]) -> postgresql.Insert | sqlite.Insert:
    """INSERT ... ON CONFLICT DO NOTHING, on SQLite and PostgreSQL alike: rowcount 0 means "already there"."""
    # preserve_rowcount: with SQLAlchemy 2.1 and psycopg, rowcount is -1 here unless asked for, so on PostgreSQL a
    # duplicate looked inserted (Outbox.record answered "replied" to every redelivered copy, never "duplicate").
    stmt = dialect_insert(engine)(table).on_conflict_do_nothing(index_elements=conflict)
    return stmt.execution_options(preserve_rowcount=True)


def upsert(engine: sa.Engine, table: sa.Table, keys: list[str], values: dict) -> postgresql.Insert | sqlite.Insert:
    """INSERT ... ON CONFLICT (keys) DO UPDATE the other columns."""
    stmt = dialect_insert(engine)(table).values(**values)
    return stmt.on_conflict_do_update(index_elements=keys, set_={k: stmt.excluded[k] for k in values if k not in keys})


class InsertNew:
    """INSERT of many rows at once, ON CONFLICT DO NOTHING, RETURNING the `returning` columns of those it inserted
    (callers sort the rows into key order, so that two writers lock keys in one order).

    On PostgreSQL the rows go as one JSON parameter, unpacked by the server (json_to_recordset): one short statement
    text at any number of rows, which psycopg converts once and prepares, and one string to send. SQLAlchemy's
    multi-row VALUES is a new text for each number of rows with a parameter per value, which psycopg converts anew
    on every call; one array per column (unnest) left the cost in psycopg's list dumping (bench/RESULTS.md, twelfth
    session). SQLite keeps multi-row VALUES.
    """

    def __init__(self, engine: sa.Engine, table: sa.Table, conflict: list[str], columns: list[str],
                 returning: list[str]) -> None:  # fmt: skip
        self.columns = columns
        self._values = insert_ignore(engine, table, conflict).returning(*(table.c[k] for k in returning))
        self._json: sa.TextClause | None = None
        self._instants = [k for k in columns if isinstance(table.c[k].type, UTCDateTime)]
        if engine.dialect.name == "postgresql":
            preparer = engine.dialect.identifier_preparer
            names = ", ".join(preparer.quote(k) for k in columns)
            typed = ", ".join(f"{preparer.quote(k)} {table.c[k].type.compile(dialect=engine.dialect)}" for k in columns)
            self._json = sa.text(
                f"INSERT INTO {preparer.format_table(table)} ({names}) "
                f"SELECT {names} FROM ROWS FROM (json_to_recordset(CAST(:rows AS json)) AS ({typed})) "
                f"WITH ORDINALITY AS new_rows ({names}, new_row_n) ORDER BY new_row_n "
                f"ON CONFLICT ({', '.join(preparer.quote(k) for k in conflict)}) DO NOTHING "
                f"RETURNING {', '.join(preparer.quote(k) for k in returning)}"
            )

    def __call__(self, conn: sa.Connection, rows: list[dict[str, Any]]) -> list[sa.Row]:
        if not rows:
            return []
        if self._json is None:
            return list(conn.execute(self._values, rows).all())
        return list(conn.execute(self._json, {"rows": json.dumps([self._jsonable(row) for row in rows])}).all())

    def _jsonable(self, row: dict[str, Any]) -> dict[str, Any]:
        out = {k: row[k] for k in self.columns}
        for k in self._instants:
            if out[k] is not None:
                out[k] = naive_utc(out[k]).isoformat()
        return out
