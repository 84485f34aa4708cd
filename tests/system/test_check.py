"""`python -m bot check`: the checklist for an environment pointing at a temporary SQLite database and the fake Slack.

Every test asserts that no token and no secret is ever printed.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.check import main as check_main
from bot.check import run_check
from bot.storage.migrate import head_revision
from bot.storage.store import Store
from tests.support.databases import create_database, drop_database
from tests.support.helpers import connect

SECRETS = ("test-signing-secret", "client-secret-value")
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")


@pytest.fixture(scope="module")
def migrated_file(tmp_path_factory) -> Path:
    """One migrated SQLite file per module, copied for each test (migrating every time would cost seconds)."""
    path = tmp_path_factory.mktemp("check") / "migrated.db"
    store = Store(f"sqlite:///{path}")
    store.migrate()
    store.close()
    return path


@pytest.fixture
def environ(tmp_path, fake_slack) -> dict[str, str]:
    config = tmp_path / "config.yaml"
    config.write_text("retention_days: 14\n", encoding="utf-8")
    return {
        "SLACK_SIGNING_SECRET": SECRETS[0],
        "SLACK_CLIENT_ID": "111.222",
        "SLACK_CLIENT_SECRET": SECRETS[1],
        "SLACK_API_URL": fake_slack.base_url,
        "OFFHOURS_CONFIG": str(config),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}",
    }


@pytest.fixture
def migrated_db(environ, tmp_path, migrated_file) -> Store:
    path = tmp_path / "offhours.db"
    shutil.copy(migrated_file, path)
    environ["DATABASE_URL"] = f"sqlite:///{path}"
    store = Store(environ["DATABASE_URL"], client_id="111.222")
    yield store
    store.close()


def check(environ: dict[str, str]) -> tuple[int, str]:
    out = io.StringIO()
    status = run_check(environ, out=out)
    text = out.getvalue()
    for secret in SECRETS:
        assert secret not in text
    assert "xoxb-" not in text and "xoxp-" not in text
    return status, text


def failed(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("✘")]


def test_missing_environment_says_what_to_set(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no config.yaml, no database: nothing but the environment is wrong
    status, text = check({})
    assert status == 1
    assert failed(text) == ["✘ environment", f"✘ database schema at revision None (newest: {head_revision()})"]
    assert "missing required environment variables: SLACK_SIGNING_SECRET, SLACK_CLIENT_ID, SLACK_CLIENT_SECRET" in text
    assert "README.md#environment" in text
    assert text.rstrip().endswith("2 passed, 2 failed, 1 not checked")


def test_one_missing_variable_is_named(environ):
    del environ["SLACK_CLIENT_SECRET"]
    status, text = check(environ)
    assert status == 1
    assert "missing required environment variables: SLACK_CLIENT_SECRET " in text


def test_an_invalid_config_file_names_the_key(environ, tmp_path):
    Path(environ["OFFHOURS_CONFIG"]).write_text("recap:\n  poll_seconds: abc\n", encoding="utf-8")
    status, text = check(environ)
    assert status == 1
    assert failed(text)[0] == "✘ config.yaml"
    assert "recap.poll_seconds" in text
    assert "✔ database reachable (sqlite)" in text  # DATABASE_URL names it: checked all the same


def test_an_unreachable_database_says_to_check_database_url(environ, tmp_path):
    environ["DATABASE_URL"] = f"sqlite:///{tmp_path / 'no-such-directory' / 'offhours.db'}"
    status, text = check(environ)
    assert status == 1
    assert failed(text) == ["✘ database reachable"]
    assert "check DATABASE_URL" in text


def test_an_unmigrated_database_says_run_migrate(environ):
    status, text = check(environ)
    assert status == 1
    assert "✔ database reachable (sqlite)" in text
    [line] = failed(text)
    assert line.startswith("✘ database schema at revision None")
    assert "→ run: python -m bot migrate" in text


def test_migrated_but_not_installed_says_where_to_install(environ, migrated_db):
    status, text = check(environ)
    assert status == 1
    assert failed(text) == ["✘ installed in a workspace"]
    assert "/slack/install" in text


def test_everything_passes_with_a_working_bot_token(environ, migrated_db, fake_slack):
    connect(migrated_db, fake_slack, "U1")
    fake_slack.tokens["xoxb-T1"] = {"team_id": "T1", "user_id": "UBOT", "bot_id": "B1"}

    status, text = check(environ)
    assert status == 0, text
    assert failed(text) == []
    assert "✔ workspace Example: bot token works (auth.test)" in text
    assert text.rstrip().splitlines()[-1].startswith("All ") and text.rstrip().endswith("checks passed")
    [call] = fake_slack.calls_to("auth.test")
    assert call.token == "xoxb-T1"


def test_a_revoked_token_fails_that_workspace_only_and_says_reinstall(environ, migrated_db, fake_slack):
    connect(migrated_db, fake_slack, "U1", team_id="T1")
    connect(migrated_db, fake_slack, "U2", team_id="T2")
    fake_slack.tokens["xoxb-T1"] = {"team_id": "T1", "user_id": "UBOT", "bot_id": "B1"}
    # T2's bot token is unknown to the fake: auth.test answers invalid_auth, as Slack does for a revoked token.

    status, text = check(environ)
    assert status == 1
    assert failed(text) == ["✘ workspace Example: auth.test failed (invalid_auth)"]
    assert "→ reinstall the app from /slack/install" in text
    assert sorted(call.token for call in fake_slack.calls_to("auth.test")) == ["xoxb-T1", "xoxb-T2"]


# --- every check it can make, changing nothing: each case in-process and as `python -m bot check` -------------------

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Result:
    status: int
    out: str
    err: str


@pytest.fixture(params=["in-process", "subprocess"])
def run(request, tmp_path, monkeypatch) -> Callable[[dict[str, str]], Result]:
    """`python -m bot check` in tmp_path with exactly `environ`: bot.check.main() in this process, or a real one."""

    def in_process(environ: dict[str, str]) -> Result:
        monkeypatch.chdir(tmp_path)
        out, err = io.StringIO(), io.StringIO()
        status = check_main(environ, out=out, err=err)
        return Result(status, out.getvalue(), err.getvalue())

    def subprocess_(environ: dict[str, str]) -> Result:
        env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), **environ}
        done = subprocess.run([sys.executable, "-m", "bot", "check"], env=env, cwd=tmp_path, capture_output=True,
                              text=True, timeout=60)  # fmt: skip
        return Result(done.returncode, done.stdout, done.stderr)

    runner = in_process if request.param == "in-process" else subprocess_

    def checked(environ: dict[str, str]) -> Result:
        result = runner(environ)
        assert "Traceback" not in result.err, result.err
        for secret in SECRETS:
            assert secret not in result.out + result.err
        assert "xoxb-" not in result.out + result.err and "xoxp-" not in result.out + result.err
        return result

    return checked


def files(directory: Path) -> dict[str, str]:
    """Every file under `directory` with a digest of its bytes: what `check` must leave exactly as it was."""
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}  # fmt: skip


def test_no_config_file_is_said_so_not_called_valid(run, environ, tmp_path, migrated_db):
    Path(environ.pop("OFFHOURS_CONFIG")).unlink()  # ./config.yaml in tmp_path: there is none
    before = files(tmp_path)
    result = run(environ)
    assert f"✔ config: there is no config.yaml in {tmp_path}: the built-in defaults apply" in result.out
    assert "is valid" not in result.out
    assert files(tmp_path) == before


def test_missing_environment_still_checks_config_and_database(run, tmp_path, migrated_file):
    shutil.copy(migrated_file, tmp_path / "offhours.db")  # the default storage.url, sqlite:///offhours.db
    (tmp_path / "config.yaml").write_text("recap:\n  poll_seconds: 60\n", encoding="utf-8")
    before = files(tmp_path)
    result = run({})
    assert result.status == 2
    assert failed(result.out) == ["✘ environment"]
    assert "✔ config: config.yaml is valid" in result.out
    assert "✔ database reachable (sqlite)" in result.out
    assert f"✔ database schema at revision {head_revision()} (newest: {head_revision()})" in result.out
    assert "– workspaces" in result.out and "not checked: needs the environment (SLACK_CLIENT_ID)" in result.out
    assert result.out.rstrip().endswith("3 passed, 1 failed, 1 not checked")
    assert result.err.startswith("offhours: ") and "SLACK_SIGNING_SECRET" in result.err
    assert files(tmp_path) == before


def test_a_missing_database_is_reported_not_created(run, environ, tmp_path):
    environ["DATABASE_URL"] = f"sqlite:///{tmp_path / 'offhours.db'}"
    before = files(tmp_path)
    result = run(environ)
    assert result.status == 1
    assert f"✔ database reachable (sqlite): {tmp_path / 'offhours.db'} does not exist yet, migrate creates it" in (
        result.out
    )
    assert failed(result.out) == [f"✘ database schema at revision None (newest: {head_revision()})"]
    assert "→ run: python -m bot migrate" in result.out
    assert "– workspaces" in result.out
    assert files(tmp_path) == before  # no offhours.db, no -wal, no -shm
    assert not (tmp_path / "offhours.db").exists()


def test_the_default_database_is_not_created_either(run, environ, tmp_path):
    del environ["DATABASE_URL"]
    Path(environ["OFFHOURS_CONFIG"]).write_text("", encoding="utf-8")  # storage.url: sqlite:///offhours.db
    result = run(environ)
    assert result.status == 1
    assert "offhours.db does not exist yet" in result.out
    assert not (tmp_path / "offhours.db").exists()


def test_an_unmigrated_database_is_not_migrated(run, environ, tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE unrelated (id INTEGER PRIMARY KEY)")
    db.close()
    environ["DATABASE_URL"] = f"sqlite:///{path}"
    before = files(tmp_path)
    result = run(environ)
    assert result.status == 1
    assert "✔ database reachable (sqlite)" in result.out
    assert failed(result.out) == [f"✘ database schema at revision None (newest: {head_revision()})"]
    assert files(tmp_path) == before  # the same bytes, and no alembic_version table, -wal or -shm beside it


def test_a_migrated_database_is_read_without_changing_a_byte(run, environ, tmp_path, migrated_db, fake_slack):
    connect(migrated_db, fake_slack, "U1")
    fake_slack.tokens["xoxb-T1"] = {"team_id": "T1", "user_id": "UBOT", "bot_id": "B1"}
    migrated_db.close()  # no process holds it open: nothing beside the file
    before = files(tmp_path)
    result = run(environ)
    assert result.status == 0, result.out + result.err
    assert "✔ workspace Example: bot token works (auth.test)" in result.out
    assert result.out.rstrip().endswith("checks passed")
    assert files(tmp_path) == before


def test_a_database_open_in_another_process_is_read_only_too(run, environ, tmp_path, migrated_db, fake_slack):
    connect(migrated_db, fake_slack, "U1")
    fake_slack.tokens["xoxb-T1"] = {"team_id": "T1", "user_id": "UBOT", "bot_id": "B1"}
    assert (tmp_path / "offhours.db-wal").exists()  # the store is open in WAL mode, as a running bot has it
    rows = migrated_db.tokens.workspaces()
    result = run(environ)
    assert result.status == 0, result.out + result.err
    assert migrated_db.tokens.workspaces() == rows


def test_a_bad_database_url_is_named_with_everything_else_checked(run, environ, tmp_path):
    environ["DATABASE_URL"] = "mysql://x@y/z"
    Path(environ["OFFHOURS_CONFIG"]).write_text("recap:\n  poll_seconds: abc\n", encoding="utf-8")
    result = run(environ)
    assert result.status == 2
    assert failed(result.out) == ["✘ config.yaml", "✘ database URL"]
    assert result.out.startswith("✔ environment")
    assert "recap.poll_seconds" in result.err and "'MySQLdb' is not installed" in result.err
    assert "recap.poll_seconds" in result.out and "'MySQLdb' is not installed" in result.out


def test_on_the_suites_database_every_check_passes_and_nothing_changes(run, environ, store, fake_slack):
    """SQLite, or PostgreSQL with TEST_DATABASE_URL: the database the suite migrated, with one workspace."""
    connect(store, fake_slack, "U1")
    fake_slack.tokens["xoxb-T1"] = {"team_id": "T1", "user_id": "UBOT", "bot_id": "B1"}
    environ["DATABASE_URL"] = store.url
    revision, rows = store.schema_revision(), store.tokens.workspaces()
    result = run(environ)
    assert result.status == 0, result.out + result.err
    assert f"✔ database reachable ({store.dialect})" in result.out
    assert (store.schema_revision(), store.tokens.workspaces()) == (revision, rows)


@pytest.mark.skipif(not TEST_DATABASE_URL, reason="PostgreSQL: TEST_DATABASE_URL")
def test_an_empty_postgresql_database_is_not_migrated(run, environ):
    url = create_database(TEST_DATABASE_URL)
    try:
        environ["DATABASE_URL"] = url
        result = run(environ)
        assert result.status == 1
        assert "✔ database reachable (postgresql)" in result.out
        assert failed(result.out) == [f"✘ database schema at revision None (newest: {head_revision()})"]
        probe = Store(url)
        try:
            assert probe.schema_revision() is None
            assert sa.inspect(probe.engine).get_table_names() == []
        finally:
            probe.close()
    finally:
        drop_database(TEST_DATABASE_URL, url)
