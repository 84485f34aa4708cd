"""Apply the Alembic migrations in bot/storage/migrations (at start-up and by `python -m bot migrate`), and say
which revision a database is at (`python -m bot check`)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

MIGRATIONS = Path(__file__).with_name("migrations")
# Any constant works: it only has to be the same in every Offhours process sharing a PostgreSQL database.
_PG_LOCK_KEY = 0x0FF40025


def alembic_config(url: str | None = None) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url:
        cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def upgrade(engine: sa.Engine) -> None:
    """Bring the schema to the newest revision; safe when several processes start at once."""
    cfg = alembic_config()
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            # Two processes starting together would otherwise both try to create the tables.
            conn.exec_driver_sql(f"SELECT pg_advisory_lock({_PG_LOCK_KEY})")
        try:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            conn.commit()
        finally:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_unlock({_PG_LOCK_KEY})")
                conn.commit()


class DatabaseUnreachable(Exception):
    """The database did not answer; `kind` names the driver's error (never its parameters)."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


def current_revision(engine: sa.Engine) -> str | None:
    """The revision the database is at; None before the first migration."""
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except sa.exc.SQLAlchemyError as e:
        raise DatabaseUnreachable(type(e).__name__) from e


def head_revision() -> str | None:
    """The newest revision in bot/storage/migrations."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()
