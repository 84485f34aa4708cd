"""Opening the database a URL names: the URL checked, the schema migrated, every problem a ConfigError naming it.

Start-up (`python -m bot`, `web`, `scheduler`, `migrate`, `check`) ends with one message and exit 2 for a URL that
is not a database URL, a driver that is not installed, a server that refuses, or a SQLite file in a missing folder.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import sqlalchemy as sa

from bot.domain.errors import ConfigError
from bot.storage.store import Store

_URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def check_database_url(url: str, *, source: str) -> None:
    """Raise a ConfigError naming the problem when `url` is not a database URL Offhours can open."""
    example = "'sqlite:///offhours.db' or 'postgresql+psycopg://user:password@host/db'"
    if not _URL_SCHEME.match(url):
        raise ConfigError(f"{source}: expected a database URL like {example}, got {_masked(url)!r}")
    try:
        parsed = sa.engine.make_url(url)
        dialect = parsed.get_dialect()
        dialect.import_dbapi()
    except sa.exc.ArgumentError:
        raise ConfigError(f"{source}: expected a database URL like {example}, got {_masked(url)!r}") from None
    except (sa.exc.NoSuchModuleError, ImportError) as e:
        missing = getattr(e, "name", None)
        driver = f" (the Python module {missing!r} is not installed)" if missing else ""
        raise ConfigError(
            f"{source}: Offhours cannot open {_masked(url).split('://', 1)[0]}:// databases{driver}; "
            f"use SQLite or PostgreSQL, e.g. {example}"
        ) from None


def open_store(
    url: str, *, source: str = "DATABASE_URL", client_id: str = "offhours", encryption_key: str | None = None
) -> Store:
    """Open the database and bring its schema up to date; a ConfigError names what is wrong, never a traceback."""
    check_database_url(url, source=source)
    store = Store(url, client_id=client_id, encryption_key=encryption_key)
    try:
        store.migrate()
    except sa.exc.DBAPIError as e:  # OperationalError, InterfaceError...: the database did not open or answer
        store.close()
        raise ConfigError(f"{source}: cannot open the database {_masked(url)!r}: {_reason(url, e)}") from None
    return store


def _reason(url: str, error: Exception) -> str:
    """The driver's own words (its first line), and for a SQLite file in a missing directory, which one."""
    original = getattr(error, "orig", None) or error
    reason = (str(original).strip().splitlines() or [type(original).__name__])[0]
    if url.startswith("sqlite"):
        database = sa.engine.make_url(url).database
        if database and database != ":memory:" and not Path(database).parent.is_dir():
            reason += f" (the directory {Path(database).parent} does not exist)"
    elif "refused" in reason.lower() or "timeout" in reason.lower():
        reason += " (is the server running and reachable from here?)"
    return reason


def _masked(url: str) -> str:
    try:
        password = urlsplit(url).password
    except ValueError:
        return url
    return url.replace(f":{password}@", ":***@", 1) if password else url
