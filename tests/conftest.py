"""Fixtures that build on each other: clock -> fake Slack -> store -> app -> a running server -> signed HTTP.

The database is SQLite in a temporary file, or, when TEST_DATABASE_URL is set (CI runs both), a PostgreSQL
database this run creates beside the one it names and drops at the end (tests/support/databases.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from slack_sdk import WebClient

from bot.config import Config
from bot.settings import Settings
from bot.slack.app import OffhoursApp, create_app
from bot.storage.store import Store
from tests.support.databases import create_database, drop_database
from tests.support.fakeslack import FakeSlack
from tests.support.helpers import FakeClock, RunningServer, wipe
from tests.support.slackhttp import SIGNING_SECRET, SlackHTTP

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
# Every log line of the suite is checked for tokens, secrets, OAuth codes and message text (tests/support/logscan.py).
pytest_plugins = ["tests.support.logscan"]


@pytest.fixture
def clock() -> FakeClock:
    # A Tuesday evening in New York: 2026-03-03 22:00 EST.
    return FakeClock(datetime(2026, 3, 4, 3, 0, tzinfo=UTC))


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    fake = FakeSlack().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> Iterator[str]:
    if not TEST_DATABASE_URL:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'offhours-test.db'}"
        return
    url = create_database(TEST_DATABASE_URL)  # this run's own database: nothing else is ever touched
    try:
        yield url
    finally:
        drop_database(TEST_DATABASE_URL, url)


@pytest.fixture(scope="session")
def migrated(database_url) -> str:
    store = Store(database_url)
    store.migrate()
    store.close()
    return database_url


@pytest.fixture
def store(migrated) -> Iterator[Store]:
    store = Store(migrated, client_id="111.222")
    wipe(store)
    yield store
    store.close()


@pytest.fixture
def config() -> Config:
    return Config()


@pytest.fixture
def settings(fake_slack) -> Settings:
    return Settings(
        signing_secret=SIGNING_SECRET,
        client_id="111.222",
        client_secret="client-secret",
        slack_api_url=fake_slack.base_url,
    )


@pytest.fixture
def make_app(store, settings, fake_slack, clock):
    """Build an app, optionally with config changes: make_app(reply=replace(config.reply, mode="ephemeral"))."""

    built: list[OffhoursApp] = []

    def build(config: Config | None = None, **changes) -> OffhoursApp:
        config = replace(config or Config(), **changes)
        client = WebClient(base_url=fake_slack.base_url, timeout=5)
        app = create_app(config, store, settings=settings, client=client, clock=clock)
        app.services.home_refresh.start()  # as the runtime does in a serving process
        built.append(app)
        return app

    yield build
    for app in built:
        app.services.home_refresh.stop()


@pytest.fixture
def offhours(make_app) -> OffhoursApp:
    return make_app()


@pytest.fixture
def server(offhours) -> Iterator[RunningServer]:
    running = RunningServer(offhours)
    yield running
    running.close()


@pytest.fixture
def slack(server) -> SlackHTTP:
    return SlackHTTP(server.url)
