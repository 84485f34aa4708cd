"""DM views read per batch (bot/storage/dm_view.py): concurrent requests' views come from one statement, each the
view its caller would have read alone, and a key that fails fails only its own caller. Real database."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from slack_sdk.oauth.installation_store import Installation

from bot.domain.errors import ConfigError
from bot.storage import schema
from bot.storage.dm_view import DmKey, DmView, read_dm_view, read_dm_views
from bot.storage.inbox import IncomingRecord
from bot.storage.store import Store
from tests.support.fakeslack import FakeSlack
from tests.support.helpers import connect, counted_statements

NOW = datetime(2026, 3, 4, 3, 0, tzinfo=UTC)
TIMEOUT = 10  # seconds a step may take before the test fails (nothing waits this long when the code is right)

KEYS = [
    DmKey("T1", "D12", recipient_id="U1", sender_id="U2", excepted_sender="U2"),  # waiting, present, settings row
    DmKey("T1", "D15", recipient_id="U1", sender_id=None, excepted_sender="U5"),  # excepted, not present here
    DmKey("T1", "D19", recipient_id="U9", sender_id="U9", excepted_sender="U2"),  # connected, defaults
    DmKey("T1", "D13", recipient_id="U3", sender_id="U3", excepted_sender="U1"),  # not connected, nothing waits
    DmKey("T1", "D12", recipient_id=None, sender_id="U2", excepted_sender=None),  # only "does anything wait?"
    DmKey("T1", "D12", recipient_id=None, sender_id=None, excepted_sender=None),  # asks about nothing
    DmKey("T2", "D12", recipient_id="U1", sender_id="U2", excepted_sender="U5"),  # another workspace
    DmKey("T1", "D12", recipient_id="U1", sender_id="U2", excepted_sender="U2"),  # the first key again
    DmKey("T1", "D15", recipient_id="U5", sender_id="U1", excepted_sender="U1"),  # a person row, no token
]


def seed(store: Store) -> None:
    fake = FakeSlack()
    connect(store, fake, "U1", tz="Europe/Berlin", now=NOW)
    store.exceptions.change("T1", "U1", add=["U5"], limit=10)
    store.inbox.wrote("T1", "U1", "D12", at=NOW - timedelta(minutes=1))
    store.save_person("T1", "U5", now=NOW, tz="Asia/Tokyo")  # settings saved, never connected
    store.installation_store.save(  # connected, but no settings row: defaults
        Installation(app_id="A1", enterprise_id=None, team_id="T1", user_id="U9", user_token="xoxp-U9",
                     user_scopes="im:history,chat:write", installed_at=NOW.timestamp())
    )  # fmt: skip
    connect(store, fake, "U2", now=NOW)
    store.inbox.record(  # U1 wrote to U2 while U2 was off: it waits for U2 in D12
        IncomingRecord(
            team_id="T1", recipient_id="U2", sender_id="U1", channel_id="D12", ts="1.0", thread_ts="1.0",
            received_at=NOW, due_at=NOW + timedelta(hours=6), text=None, window_key="back:x", reply=False,
        ),
        now=NOW,
    )  # fmt: skip


def alone(store: Store, key: DmKey) -> DmView:
    return read_dm_view(
        store.engine, store.tokens, key.team_id, key.channel_id, recipient_id=key.recipient_id,
        sender_id=key.sender_id, excepted_sender=key.excepted_sender,
    )  # fmt: skip


def read_while_one_is_held(store: Store, keys: list[DmKey]) -> tuple[list[DmView | Exception], list[str]]:
    """Read `keys` from one thread each, all queued behind a first view whose statement is held until they are;
    returns each thread's view (or error) and the DM-view statements run meanwhile."""
    statements: list[str] = []
    held = [True]

    def on_execute(conn, cursor, statement, parameters, context, executemany) -> None:
        if "dm_keys" not in statement:
            return
        statements.append(statement)
        if held[0]:
            held[0] = False
            assert store.dm_views.batches.wait_queued(len(keys), TIMEOUT)

    results: list[DmView | Exception | None] = [None] * len(keys)

    def run(n: int, key: DmKey) -> None:
        try:
            results[n] = store.dm_view(
                key.team_id, key.channel_id, recipient_id=key.recipient_id, sender_id=key.sender_id,
                excepted_sender=key.excepted_sender,
            )  # fmt: skip
        except Exception as e:
            results[n] = e

    sa.event.listen(store.engine, "before_cursor_execute", on_execute)
    try:
        first = threading.Thread(target=store.dm_view, args=("T1", "D12"), kwargs={"recipient_id": "U1",
                                                                                  "sender_id": None})  # fmt: skip
        first.start()
        threads = [threading.Thread(target=run, args=(n, key)) for n, key in enumerate(keys)]
        for t in threads:
            t.start()
        for t in [first, *threads]:
            t.join(TIMEOUT)
            assert not t.is_alive()
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", on_execute)
    assert all(r is not None for r in results)
    return results, statements  # type: ignore[return-value]


def test_the_views_of_a_batch_are_each_the_view_read_alone(store):
    seed(store)
    one_by_one = [alone(store, key) for key in KEYS]
    # The cases are all there (else the comparison below proves little).
    assert one_by_one[0].recipient_token == "xoxp-T1-U1" and one_by_one[0].recipient.tz == "Europe/Berlin"
    assert one_by_one[0].sender_has_waiting and one_by_one[0].recipient_wrote_at == NOW - timedelta(minutes=1)
    assert not one_by_one[0].sender_excepted and one_by_one[1].sender_excepted
    assert one_by_one[1].recipient_wrote_at is None
    assert (one_by_one[2].recipient_token, one_by_one[2].recipient) == ("xoxp-U9", None)
    assert one_by_one[3] == DmView(recipient_token=None, recipient=None, sender_has_waiting=False)
    assert one_by_one[4] == DmView(recipient_token=None, recipient=None, sender_has_waiting=True)
    assert one_by_one[5] == DmView(recipient_token=None, recipient=None, sender_has_waiting=False)
    assert one_by_one[6] == DmView(recipient_token=None, recipient=None, sender_has_waiting=False)
    assert one_by_one[8].recipient_token is None and one_by_one[8].recipient.tz == "Asia/Tokyo"

    views, statements = read_while_one_is_held(store, KEYS)
    assert views == one_by_one
    assert len(statements) == 2  # the held first view's, and one for the nine that queued behind it
    assert read_dm_views(store.engine, store.tokens, KEYS) == one_by_one  # in order, a key twice: twice


def test_a_batch_of_keys_is_one_statement_compiled_once(store):
    seed(store)
    with counted_statements(store) as seen:
        views = read_dm_views(store.engine, store.tokens, KEYS * 3)
    assert len(views) == len(KEYS) * 3
    assert len(seen) == 1
    assert read_dm_views(store.engine, store.tokens, []) == []

    compiled: list[object] = []

    def on_execute(conn, cursor, statement, parameters, context, executemany) -> None:
        compiled.append(context.compiled)

    sa.event.listen(store.engine, "before_cursor_execute", on_execute)
    try:
        read_dm_views(store.engine, store.tokens, KEYS * 3)
        read_dm_views(store.engine, store.tokens, list(reversed(KEYS * 3)))
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", on_execute)
    # From SQLAlchemy's cache, not compiled per call (a statement without a cache key is compiled every time).
    assert len(compiled) == 2 and compiled[0] is compiled[1]


def test_a_key_that_fails_fails_only_its_own_caller(store, migrated):
    seed(store)
    with store.engine.begin() as conn:  # a token this key cannot decrypt (the key changed since it was saved)
        conn.execute(
            schema.installations.insert().values(
                client_id="111.222", app_id="A1", team_id="T1", user_id="U7", user_token="enc:not-a-fernet-token",
                installed_at=datetime(2026, 3, 4, 3, 0), is_enterprise_install=False,
            )
        )  # fmt: skip
    keyed = Store(migrated, client_id="111.222", encryption_key=Fernet.generate_key().decode())
    try:
        bad = DmKey("T1", "D17", recipient_id="U7", sender_id=None, excepted_sender="U2")
        keys = [KEYS[0], bad, KEYS[2], KEYS[4]]
        expected = [alone(keyed, key) for key in (KEYS[0], KEYS[2], KEYS[4])]  # tokens saved before the key: plain
        with pytest.raises(ConfigError):
            alone(keyed, bad)
        views, statements = read_while_one_is_held(keyed, keys)
    finally:
        keyed.close()
    assert isinstance(views[1], ConfigError)
    assert [views[0], views[2], views[3]] == expected
    assert len(statements) == 2 + len(keys)  # the batch read, then each key read again alone
