"""Tokens encrypted at rest with OFFHOURS_ENCRYPTION_KEY: unreadable in the database, usable by the app."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from bot.domain.errors import ConfigError
from bot.storage import db
from bot.storage.store import Store
from tests.support.helpers import connect, wipe


@pytest.fixture
def encrypted_store(migrated):
    store = Store(migrated, client_id="111.222", encryption_key=Fernet.generate_key().decode())
    wipe(store)
    yield store
    store.close()


def raw_tokens(store: Store) -> list[str]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(db.installations.c.user_token, db.installations.c.bot_token)).all()
        rows += conn.execute(sa.select(db.bots.c.bot_token, db.bots.c.bot_refresh_token)).all()
    return [value for row in rows for value in row if value]


def test_tokens_are_encrypted_in_the_database_and_readable_through_the_store(encrypted_store, fake_slack):
    token = connect(encrypted_store, fake_slack, "U1")
    stored = raw_tokens(encrypted_store)
    assert stored, "the installation was saved"
    assert all(value.startswith("enc:") for value in stored)
    assert not any("xox" in value for value in stored)
    assert encrypted_store.user_token("T1", "U1") == token
    assert encrypted_store.bot_token("T1") == "xoxb-T1"


def test_without_a_key_tokens_are_stored_as_issued(store, fake_slack):
    token = connect(store, fake_slack, "U1")
    assert token in raw_tokens(store)


def test_a_wrong_key_is_a_clear_error_not_garbage(encrypted_store, fake_slack, migrated):
    connect(encrypted_store, fake_slack, "U1")
    other = Store(migrated, client_id="111.222", encryption_key=Fernet.generate_key().decode())
    with pytest.raises(ConfigError, match="does not decrypt"):
        other.user_token("T1", "U1")
    other.close()


def test_a_malformed_key_is_refused_at_start_up(migrated):
    with pytest.raises(ConfigError, match="OFFHOURS_ENCRYPTION_KEY: expected a Fernet key"):
        Store(migrated, encryption_key="not-a-key")
