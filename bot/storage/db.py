"""Database schema and engine set-up: one SQLAlchemy metadata for Offhours' tables and Bolt's.

Every instant is stored as naive UTC (SQLite has no time zones) through `UTCDateTime`, and read back as
aware UTC, so code above this module only ever sees aware datetimes.
"""

from __future__ import annotations

import sqlite3
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import sqlalchemy as sa
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore


class UTCDateTime(sa.types.TypeDecorator):
    """Aware datetimes in, aware UTC datetimes out; stored as naive UTC."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; pass an aware one")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


metadata = sa.MetaData()

# Bolt's installation and OAuth-state tables live in the same database, declared from slack_sdk's own
# definitions so Alembic manages them with ours.
installations = SQLAlchemyInstallationStore.build_installations_table(metadata, "slack_installations")
bots = SQLAlchemyInstallationStore.build_bots_table(metadata, "slack_bots")
oauth_states = SQLAlchemyOAuthStateStore.build_oauth_states_table(metadata, "slack_oauth_states")
# Room for tokens encrypted at rest (a Fernet token of a 150-character Slack token is about 290 characters).
TOKEN_COLUMNS = ("bot_token", "bot_refresh_token", "user_token", "user_refresh_token")
for _table in (installations, bots):
    for _name in TOKEN_COLUMNS:
        if _name in _table.c:
            _table.c[_name].type = sa.String(500)

ID = sa.String(32)

people = sa.Table(
    "people",
    metadata,
    sa.Column("team_id", ID, primary_key=True),
    sa.Column("user_id", ID, primary_key=True),
    sa.Column("tz", sa.String(64)),  # None: not known yet; the config's policy decides
    sa.Column("hours", sa.String(1000)),  # canonical hours text; None: the config default
    sa.Column("message", sa.Text),  # boundary template; None: the config default
    sa.Column("reply_within_s", sa.Integer),  # None: the config default
    sa.Column("days_off", sa.Text, nullable=False, server_default=""),  # canonical, ";"-separated
    sa.Column("paused", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

profiles = sa.Table(  # users.info cache: a person's own profile zone, read while their people.tz is None
    "profiles",
    metadata,
    sa.Column("team_id", ID, primary_key=True),
    sa.Column("user_id", ID, primary_key=True),
    sa.Column("tz", sa.String(64)),
    sa.Column("is_bot", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("fetched_at", UTCDateTime, nullable=False),
)

dm_channels = sa.Table(  # conversations.info cache: the two members of a 1:1 DM
    "dm_channels",
    metadata,
    sa.Column("team_id", ID, primary_key=True),
    sa.Column("channel_id", ID, primary_key=True),
    sa.Column("user_a", ID, nullable=False),
    sa.Column("user_b", ID, nullable=False),
)

# Every after-hours DM, recorded before the ack: what the morning recap is made of.
messages = sa.Table(
    "after_hours_messages",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("team_id", ID, nullable=False),
    sa.Column("recipient_id", ID, nullable=False),
    sa.Column("channel_id", ID, nullable=False),
    sa.Column("ts", sa.String(32), nullable=False),
    sa.Column("thread_ts", sa.String(32), nullable=False),  # the thread root (= ts for a top-level message)
    sa.Column("sender_id", ID, nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("text", sa.Text),  # only with recap.include_text
    sa.Column("due_at", UTCDateTime, nullable=False),  # when the recap holding it is due; re-evaluated
    # pending; answered (the recipient wrote in that DM); deleted; recapped; done (ticked off in the recap)
    sa.Column("state", sa.String(16), nullable=False, server_default="pending"),
    sa.Column("recap_id", sa.Integer),
    sa.UniqueConstraint("team_id", "recipient_id", "channel_id", "ts", name="uq_message_once"),
    sa.Index("ix_messages_due", "state", "due_at"),
    sa.Index("ix_messages_channel", "team_id", "recipient_id", "channel_id", "state"),
)

# The auto-reply outbox. The unique key is RFC 3834's once-per-sender rule, enforced by the database.
replies = sa.Table(
    "auto_replies",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("team_id", ID, nullable=False),
    sa.Column("recipient_id", ID, nullable=False),
    sa.Column("sender_id", ID, nullable=False),
    sa.Column("window_key", sa.String(40), nullable=False),
    sa.Column("channel_id", ID, nullable=False),
    sa.Column("message_ts", sa.String(32), nullable=False),
    sa.Column("thread_ts", sa.String(32), nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("state", sa.String(16), nullable=False, server_default="pending"),  # pending|sent|failed|expired
    # A DeliveryState (bot/domain/delivery.py); `state` is its lifecycle (every open delivery state is "pending").
    sa.Column("delivery_state", sa.String(16), nullable=False, server_default="queued"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("reply_ts", sa.String(32)),
    sa.Column("last_error", sa.String(200)),  # the last failure's code, for people and logs
    sa.UniqueConstraint("team_id", "recipient_id", "sender_id", "window_key", name="uq_reply_once_per_window"),
    sa.Index("ix_replies_due", "state", "next_attempt_at"),
)

recaps = sa.Table(
    "recaps",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("team_id", ID, nullable=False),
    sa.Column("user_id", ID, nullable=False),
    sa.Column("due_at", UTCDateTime, nullable=False),
    # 0 for a window's recap; 1, 2... for follow-ups carrying messages recorded after it was sent.
    sa.Column("seq", sa.Integer, nullable=False, server_default="0"),
    sa.Column("window_start", UTCDateTime),
    sa.Column("state", sa.String(16), nullable=False, server_default="pending"),  # pending|sent|empty|failed
    sa.Column("delivery_state", sa.String(16), nullable=False, server_default="queued"),  # as for auto_replies
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("sent_at", UTCDateTime),
    sa.Column("late", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("channel_id", ID),
    sa.Column("message_ts", sa.String(32)),
    sa.Column("last_error", sa.String(200)),
    sa.UniqueConstraint("team_id", "user_id", "due_at", "seq", name="uq_recap_per_window"),
    sa.Index("ix_recaps_due", "state", "next_attempt_at"),
)


READ_ONLY = "offhours_read_only"
# SQLite has one writer at a time. Threads of one process queue for it on a Python lock, handed over the moment
# the holder has committed; left to SQLite, a waiting writer polls in sleeps of up to 100 ms
# (sqliteDefaultBusyCallback), which measured as most of the ack latency tail under concurrent DMs. Other
# processes (and the OAuth stores, which open their own transactions) still meet SQLite's busy_timeout.
_write_queues: weakref.WeakKeyDictionary[sa.Engine, threading.Lock] = weakref.WeakKeyDictionary()
WRITE_QUEUE_TIMEOUT_S = 30.0  # SQLite's own busy_timeout: past it, a writer goes ahead and lets SQLite decide


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


def make_engine(url: str, **kwargs) -> sa.Engine:
    """An engine tuned for several threads: SQLite in WAL mode with a busy timeout, PostgreSQL pooled."""
    # Errors would otherwise carry the statement's parameters into the logs: a recorded DM's text, a token.
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs)
        _tune_sqlite(engine, in_memory=":memory:" in url or url == "sqlite://")
        _write_queues[engine] = threading.Lock()
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return sa.create_engine(url, pool_pre_ping=True, **kwargs)


def _tune_sqlite(engine: sa.Engine, *, in_memory: bool) -> None:
    @sa.event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record) -> None:
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
        try:
            connection.connection.driver_connection.execute(statement)
        except sqlite3.Error as e:  # e.g. "database is locked" past busy_timeout: raised as SQLAlchemy would
            raise sa.exc.DBAPIError.instance(statement, None, e, sqlite3.Error, hide_parameters=True) from e


def _dialect_insert(engine: sa.Engine):
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def insert_ignore(engine: sa.Engine, table: sa.Table, conflict: list[str]):
    """INSERT ... ON CONFLICT DO NOTHING, on SQLite and PostgreSQL alike: rowcount 0 means "already there"."""
    # preserve_rowcount: with SQLAlchemy 2.1 and psycopg, rowcount is -1 here unless asked for, so on PostgreSQL a
    # duplicate looked inserted (Outbox.record answered "replied" to every redelivered copy, never "duplicate").
    stmt = _dialect_insert(engine)(table).on_conflict_do_nothing(index_elements=conflict)
    return stmt.execution_options(preserve_rowcount=True)


def upsert(engine: sa.Engine, table: sa.Table, keys: list[str], values: dict):
    """INSERT ... ON CONFLICT (keys) DO UPDATE the other columns."""
    stmt = _dialect_insert(engine)(table).values(**values)
    return stmt.on_conflict_do_update(index_elements=keys, set_={k: stmt.excluded[k] for k in values if k not in keys})
