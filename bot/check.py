"""`python -m bot check`: is this deployment ready? A checklist of every check it can make, with what to fix.

Checks the environment, config.yaml, the database (its URL, reachable, migrated), and each installed workspace's
bot token with auth.test. A failed check does not hide the others: each one runs unless it needs what failed (the
workspaces need the environment; the database needs config.yaml when DATABASE_URL is unset), and is then listed as
not checked. It changes nothing: no file is created (a SQLite database is opened read-only, a missing one is
reported, not made), no migration runs. Never prints a token.

Exit status: 0 when everything passed; 1 when something failed; 2 (the command line only) when the environment,
config.yaml or the database URL is wrong — the same mistakes every other command stops on with exit status 2.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO
from urllib.parse import quote

from slack_sdk.errors import SlackApiError

from bot.domain.errors import ConfigError

if TYPE_CHECKING:
    from bot.config import Config
    from bot.settings import Settings
    from bot.storage.store import Store


@dataclass(frozen=True)
class Check:
    ok: bool
    label: str
    fix: str = ""
    checked: bool = True  # False: not made, because a check it needs failed above
    setup: bool = False  # a configuration mistake every command stops on (exit status 2 on the command line)


def run_check(environ: Mapping[str, str] = os.environ, out: TextIO = sys.stdout) -> int:
    """Print the checklist to `out`; 0 when every check passed, else 1."""
    return report(collect(environ), out)


def main(environ: Mapping[str, str] = os.environ, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """The command line: the checklist on `out`; configuration mistakes named again on `err`, with exit status 2."""
    checks = collect(environ)
    status = report(checks, out)
    setup = [check for check in checks if check.setup and not check.ok]
    if setup:
        problems = "\n".join(f"  {check.fix}".replace("\n", "\n  ") for check in setup)
        err.write(f"offhours: the configuration has problems every command stops on:\n{problems}\n")
        return 2
    return status


def report(checks: list[Check], out: TextIO) -> int:
    for check in checks:
        mark = "✔" if check.ok else ("✘" if check.checked else "–")
        out.write(f"{mark} {check.label}\n")
        if not check.ok and check.fix:
            out.write(f"    → {check.fix}\n")
    passed = sum(check.ok for check in checks)
    failed = sum(not check.ok and check.checked for check in checks)
    skipped = sum(not check.checked for check in checks)
    if passed == len(checks):
        out.write(f"\nAll {len(checks)} checks passed\n")
        return 0
    out.write(f"\n{passed} passed, {failed} failed" + (f", {skipped} not checked\n" if skipped else "\n"))
    return 1


def collect(environ: Mapping[str, str]) -> list[Check]:
    return list(_checks(environ))


def _checks(environ: Mapping[str, str]) -> Iterator[Check]:
    from bot.config import Config, config_file, load_config
    from bot.settings import database_url_and_source, load_settings
    from bot.storage.opening import check_database_url

    settings: Settings | None = None
    try:
        settings = load_settings(environ)
        yield Check(True, "environment: SLACK_SIGNING_SECRET, SLACK_CLIENT_ID, SLACK_CLIENT_SECRET are set")
    except ConfigError as e:
        yield Check(False, "environment", str(e), setup=True)

    config: Config | None = None
    file = config_file(environ=environ)
    try:
        config = load_config(None, environ=environ)
        if file.is_file():
            yield Check(True, f"config: {file} is valid")
        else:
            yield Check(True, f"config: there is no {file} in {Path.cwd()}: the built-in defaults apply")
    except ConfigError as e:
        yield Check(False, "config.yaml", str(e), setup=True)

    store: Store | None = None
    if config is None and not environ.get("DATABASE_URL", "").strip():
        yield Check(
            False, "database", "not checked: config.yaml (its storage.url) names it, or set DATABASE_URL", checked=False
        )
    else:
        try:
            url, source = database_url_and_source(config or Config(), environ)
            check_database_url(url, source=source)
        except ConfigError as e:
            yield Check(False, "database URL", str(e), setup=True)
        else:
            store = yield from _database(url, source=source, settings=settings)

    if store is None:
        yield Check(False, "workspaces", "not checked: needs the database", checked=False)
        return
    try:
        if settings is None:
            yield Check(False, "workspaces", "not checked: needs the environment (SLACK_CLIENT_ID)", checked=False)
            return
        yield from _workspaces(store, settings)
    finally:
        store.close()


def _database(url: str, *, source: str, settings: Settings | None) -> Generator[Check, None, Store | None]:
    """Reachable, and migrated; the opened store when both hold (None otherwise, and then it is closed)."""
    from bot.storage.migrate import DatabaseUnreachable, head_revision
    from bot.storage.store import Store

    head = head_revision()
    sqlite_file = _sqlite_file(url)
    if sqlite_file is not None:
        if not sqlite_file.parent.is_dir():
            yield Check(
                False, "database reachable", f"the directory {sqlite_file.parent} does not exist: check {source}"
            )
            return None
        if not sqlite_file.exists():
            yield Check(True, f"database reachable (sqlite): {sqlite_file} does not exist yet, migrate creates it")
            yield Check(False, f"database schema at revision None (newest: {head})", "run: python -m bot migrate")
            return None
        url = _read_only(sqlite_file)
    try:
        store = Store(
            url,
            client_id=settings.client_id if settings else "offhours",
            encryption_key=settings.encryption_key if settings else None,
        )
    except ConfigError as e:
        yield Check(False, "OFFHOURS_ENCRYPTION_KEY", str(e), setup=True)
        return None
    try:
        current = store.schema_revision()
    except DatabaseUnreachable as e:
        store.close()
        yield Check(False, "database reachable", f"{e.kind}: check {source} and that the server runs")
        return None
    yield Check(True, f"database reachable ({store.dialect})")
    yield Check(current == head, f"database schema at revision {current} (newest: {head})",
                "run: python -m bot migrate")  # fmt: skip
    if current != head:
        store.close()
        return None
    return store


def _workspaces(store: Store, settings: Settings) -> Iterator[Check]:
    from bot.slack.client import make_client

    latest = {}
    for team_id, team_name in store.tokens.workspaces():
        try:
            latest[team_id] = (team_name, store.bot_token(team_id))
        except ConfigError as e:
            yield Check(False, f"workspace {team_name or team_id}: tokens readable", str(e))
            return
    if not latest:
        yield Check(False, "installed in a workspace", "open /slack/install on this app's public URL to install it")
        return
    client = make_client(settings)
    for team_id, (team_name, token) in latest.items():
        try:
            client.auth_test(token=token)
            yield Check(True, f"workspace {team_name or team_id}: bot token works (auth.test)")
        except SlackApiError as e:
            code = e.response.get("error")
            yield Check(False, f"workspace {team_name or team_id}: auth.test failed ({code})",
                        "reinstall the app from /slack/install")  # fmt: skip
        except OSError as e:
            yield Check(False, f"workspace {team_name or team_id}: Slack unreachable ({type(e).__name__})",
                        f"check network access to {settings.slack_api_url}")  # fmt: skip


def _sqlite_file(url: str) -> Path | None:
    """The file a SQLite URL names (None: not SQLite, in memory, or already a `file:` URI)."""
    scheme, _, rest = url.partition("://")
    if not scheme.startswith("sqlite"):
        return None
    path = (rest[1:] if rest.startswith("/") else rest).split("?", 1)[0]  # sqlite:///rel, sqlite:////abs
    if path in ("", ":memory:") or path.startswith("file:"):
        return None
    return Path(path)


def _read_only(file: Path) -> str:
    """A URL opening `file` read-only. `mode=ro` alone would still create the -wal and -shm files beside a database
    in WAL mode; with none there (no process has it open), `immutable=1` reads it without creating any."""
    path = quote(str(file.resolve()))
    live = file.with_name(file.name + "-wal").exists()
    return f"sqlite:///file:{path}?{'mode=ro' if live else 'immutable=1'}&uri=true"
