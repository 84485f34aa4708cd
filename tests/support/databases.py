"""PostgreSQL databases the test run creates for itself: uniquely named, dropped at the end, never any other.

TEST_DATABASE_URL names a server and a database to connect to for CREATE/DROP DATABASE (its contents are never
touched); each pytest run makes `offhours_test_<random>` beside it. The benchmarks make theirs here too, with their
own prefix (bench/pg_stats.py: `offhours_bench_<random>`).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    from bot.storage.store import Store

PREFIX = "offhours_test_"


def create_database(server_url: str, *, prefix: str = PREFIX) -> str:
    """Create a new, uniquely named database on the server of `server_url`; returns its URL."""
    url = make_url(server_url)
    name = prefix + secrets.token_hex(6)
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def drop_database(server_url: str, database_url: str, *, prefix: str = PREFIX) -> None:
    """Drop a database this run created (refuses any name it could not have made)."""
    name = make_url(database_url).database or ""
    if not name.startswith(prefix):
        raise ValueError(f"refusing to drop {name!r}: only the databases this run created ({prefix}*)")
    admin = sa.create_engine(make_url(server_url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


@contextmanager
def own_store(tmp_path: Path, name: str) -> Iterator[Store]:
    """A migrated store on a database of its own: SQLite in `tmp_path/name.db`, or with TEST_DATABASE_URL a
    PostgreSQL database created for it and dropped after."""
    from bot.storage.store import Store

    server = os.environ.get("TEST_DATABASE_URL")
    url = create_database(server) if server else f"sqlite:///{tmp_path / (name + '.db')}"
    store: Store | None = None
    try:
        store = Store(url)
        store.migrate()
        yield store
    finally:
        if store is not None:
            store.close()
        if server:
            drop_database(server, url)
