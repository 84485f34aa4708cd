"""`python -m bot check`: the checklist for an environment pointing at a temporary SQLite database and the fake Slack.

Every test asserts that no token and no secret is ever printed.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest

from bot.check import run_check
from bot.storage.store import Store
from tests.support.helpers import connect

SECRETS = ("test-signing-secret", "client-secret-value")


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


def test_missing_environment_says_what_to_set():
    status, text = check({})
    assert status == 1
    assert failed(text) == ["✘ environment"]
    assert "missing required environment variables: SLACK_SIGNING_SECRET, SLACK_CLIENT_ID, SLACK_CLIENT_SECRET" in text
    assert "README.md#environment" in text
    assert text.rstrip().endswith("0 passed, 1 failed")


def test_one_missing_variable_is_named(environ):
    del environ["SLACK_CLIENT_SECRET"]
    status, text = check(environ)
    assert status == 1
    assert "missing required environment variables: SLACK_CLIENT_SECRET " in text


def test_an_invalid_config_file_names_the_key(environ, tmp_path):
    Path(environ["OFFHOURS_CONFIG"]).write_text("recap:\n  poll_seconds: abc\n", encoding="utf-8")
    status, text = check(environ)
    assert status == 1
    assert failed(text) == ["✘ config.yaml"]
    assert "recap.poll_seconds" in text


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
