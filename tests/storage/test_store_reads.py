"""The storage paths the event path leans on: batched reads, the bot cache and its invalidation, the one-read view
of a DM, batched reply outcomes, and SQLite's in-process write queue. Real database (SQLite, or PostgreSQL in CI)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from slack_sdk.oauth.installation_store import Installation

from bot.config import Config
from bot.domain.delivery import DeliveryState, Outcome
from bot.people import PeopleService
from bot.storage import db
from bot.storage import engine as engine_module
from bot.storage.inbox import IncomingRecord
from bot.storage.tokens import BOT_CACHE_SECONDS
from tests.support.fakeslack import FakeSlack
from tests.support.helpers import connect, connected

NOW = datetime(2026, 3, 4, 3, 0, tzinfo=UTC)


def install(store, *, team_id: str = "T1", bot_token: str = "xoxb-T1", installed_at: float = 1.0) -> None:
    store.installation_store.save(
        Installation(
            app_id="A1", enterprise_id=None, team_id=team_id, bot_token=bot_token, bot_id="B1", bot_user_id="UBOT",
            bot_scopes="commands,chat:write", user_id="UADMIN", installed_at=NOW.timestamp() + installed_at,
        )
    )  # fmt: skip


def record(store, *, recipient: str, sender: str, channel: str, ts: str, reply: bool = True) -> str:
    connected(store, recipient, now=NOW)
    return store.inbox.record(
        IncomingRecord(
            team_id="T1", recipient_id=recipient, sender_id=sender, channel_id=channel, ts=ts, thread_ts=ts,
            received_at=NOW, due_at=NOW + timedelta(hours=6), text=None, window_key="back:x", reply=reply,
        ),
        now=NOW,
    )  # fmt: skip


# --- tokens -------------------------------------------------------------------------------------------------


def test_user_tokens_answers_like_user_token_for_each_person(store):
    fake = FakeSlack()
    connect(store, fake, "U1", now=NOW)
    connect(store, fake, "U2", now=NOW)
    store.installation_store.save(  # U2 connects again: the latest token wins
        Installation(app_id="A1", enterprise_id=None, team_id="T1", user_id="U2", user_token="xoxp-new",
                     user_scopes="im:history,chat:write", installed_at=NOW.timestamp() + 100)
    )  # fmt: skip
    tokens = store.user_tokens("T1", ["U1", "U2", "U3"])
    assert tokens == {"U1": "xoxp-T1-U1", "U2": "xoxp-new"}
    assert {u: store.user_token("T1", u) for u in ("U1", "U2", "U3")} == {**tokens, "U3": None}
    assert store.user_tokens("T2", ["U1"]) == {}


def test_a_person_whose_latest_installation_has_no_token_is_not_connected(store):
    fake = FakeSlack()
    connect(store, fake, "U1", now=NOW)
    store.installation_store.save(  # the latest row of U1 carries only the bot (e.g. a re-install by U1)
        Installation(app_id="A1", enterprise_id=None, team_id="T1", user_id="U1", bot_token="xoxb-T1", bot_id="B1",
                     bot_user_id="UBOT", installed_at=NOW.timestamp() + 100)
    )  # fmt: skip
    assert store.user_token("T1", "U1") is None
    assert store.user_tokens("T1", ["U1"]) == {}


def test_anyone_else_connected_answers_like_the_workspaces_connected_people(store):
    fake = FakeSlack()
    assert not store.anyone_else_connected("T1", "U1")  # no one at all
    connect(store, fake, "U1", now=NOW)
    assert not store.anyone_else_connected("T1", "U1")  # only the asker
    assert store.anyone_else_connected("T1", "U9")
    assert not store.anyone_else_connected("T2", "U9")  # another workspace's people do not count
    connect(store, fake, "U2", now=NOW)
    store.revoke_user_tokens("T1", ["U2"])
    assert not store.anyone_else_connected("T1", "U1")  # U2's token is gone
    connect(store, fake, "U3", now=NOW)
    for asker in ("U1", "U3", "U7"):
        expected = store.connected_user_ids("T1") - {asker} != set()
        assert store.anyone_else_connected("T1", asker) is expected


# --- the bot cache ----------------------------------------------------------------------------------------


def test_the_bot_is_read_once_and_a_new_install_replaces_it_at_once(store):
    install(store, bot_token="xoxb-old")
    assert store.bot_token("T1") == "xoxb-old"
    with store.engine.begin() as conn:  # behind the Store's back: the cached answer stands
        conn.execute(db.bots.update().values(bot_token="xoxb-changed-behind"))
    assert store.bot_token("T1") == "xoxb-old"
    install(store, bot_token="xoxb-new", installed_at=2.0)  # through the installation store (Bolt's OAuth flow)
    assert store.bot_token("T1") == "xoxb-new"


def test_a_workspace_not_installed_is_not_remembered_as_such(store):
    assert store.bot("T1") is None
    install(store)
    assert store.bot("T1").bot_user_id == "UBOT"


@pytest.mark.parametrize("removal", ["forget_team", "revoke_bot_tokens"])
def test_uninstalling_forgets_the_cached_bot(store, removal):
    install(store)
    assert store.bot_token("T1") == "xoxb-T1"
    getattr(store, removal)("T1")
    assert store.bot("T1") is None


def test_a_cached_bot_expires(store, monkeypatch):
    install(store, bot_token="xoxb-old")
    assert store.bot_token("T1") == "xoxb-old"
    with store.engine.begin() as conn:  # another process re-installed
        conn.execute(db.bots.update().values(bot_token="xoxb-other-process"))
    later = time.monotonic() + BOT_CACHE_SECONDS + 0.001
    monkeypatch.setattr(store.installation_store, "monotonic", lambda: later)
    assert store.bot_token("T1") == "xoxb-other-process"


# --- one read per DM ------------------------------------------------------------------------------------------


def test_dm_view_reads_the_recipient_and_whether_the_sender_has_dms_waiting(store):
    fake = FakeSlack()
    connect(store, fake, "U1", tz="Europe/Berlin", now=NOW)
    view = store.dm_view("T1", "D12", recipient_id="U1", sender_id="U2")
    assert view.recipient_token == "xoxp-T1-U1"
    assert view.recipient.tz == "Europe/Berlin"
    assert view.sender_has_waiting is False

    record(store, recipient="U2", sender="U1", channel="D12", ts="1.0")  # U1 wrote to U2 while U2 was off
    assert store.dm_view("T1", "D12", recipient_id="U1", sender_id="U2").sender_has_waiting is True
    assert store.dm_view("T1", "D99", recipient_id=None, sender_id="U2").sender_has_waiting is False  # other DM

    unknown = store.dm_view("T1", "D13", recipient_id="U3", sender_id=None)
    assert (unknown.recipient_token, unknown.recipient, unknown.sender_has_waiting) == (None, None, False)


def test_dm_view_answers_only_what_it_was_asked_and_takes_the_latest_token(store):
    fake = FakeSlack()
    connect(store, fake, "U1", now=NOW)
    record(store, recipient="U2", sender="U1", channel="D12", ts="1.0")
    asked_nothing = store.dm_view("T1", "D12", recipient_id=None, sender_id=None)
    assert (asked_nothing.recipient_token, asked_nothing.recipient, asked_nothing.sender_has_waiting) == (
        None, None, False,
    )  # fmt: skip
    assert (
        store.dm_view("T1", "D12", recipient_id=None, sender_id="U1").sender_has_waiting is False
    )  # U1 waits for none
    store.installation_store.save(  # U1 connects again: the latest token wins, as in user_token
        Installation(app_id="A1", enterprise_id=None, team_id="T1", user_id="U1", user_token="xoxp-again",
                     user_scopes="im:history,chat:write", installed_at=NOW.timestamp() + 100)
    )  # fmt: skip
    store.installation_store.save(  # connected, but no settings row: defaults
        Installation(app_id="A1", enterprise_id=None, team_id="T1", user_id="U9", user_token="xoxp-U9",
                     user_scopes="im:history,chat:write", installed_at=NOW.timestamp())
    )  # fmt: skip
    assert store.dm_view("T1", "D12", recipient_id="U1", sender_id=None).recipient_token == "xoxp-again"
    fresh = store.dm_view("T1", "D19", recipient_id="U9", sender_id=None)
    assert (fresh.recipient_token, fresh.recipient) == ("xoxp-U9", None)
    assert store.dm_view("T2", "D12", recipient_id="U1", sender_id="U2").recipient_token is None  # other workspace
    with store.engine.begin() as conn:  # in a recap not yet sent: still waiting; answered: no longer
        conn.execute(db.messages.update().values(state="recapped"))
    assert store.dm_view("T1", "D12", recipient_id=None, sender_id="U2").sender_has_waiting is True
    with store.engine.begin() as conn:
        conn.execute(db.messages.update().values(state="answered"))
    assert store.dm_view("T1", "D12", recipient_id=None, sender_id="U2").sender_has_waiting is False


def test_a_read_leaves_no_transaction_open_on_postgresql(store):
    if not store.is_postgres:
        pytest.skip("SQLite readers keep one snapshot across their statements (a deferred BEGIN)")
    import psycopg

    with db.reading(store.engine) as conn:
        assert conn.execute(sa.text("select 1")).scalar() == 1
        # Autocommit: no BEGIN/ROLLBACK round trips, and never "idle in transaction" between statements.
        assert conn.connection.driver_connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    with store.engine.connect() as conn:  # the pool gave the connection back in its usual mode
        conn.execute(sa.text("select 1"))
        assert conn.connection.driver_connection.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS


def test_get_many_gives_defaults_to_people_without_a_row(store):
    fake = FakeSlack()
    connect(store, fake, "U1", tz="Asia/Tokyo", now=NOW)
    people = PeopleService(store, Config(), clock=lambda: NOW)
    many = people.get_many("T1", ["U1", "U2"])
    assert many["U1"] == people.get("T1", "U1")
    assert many["U2"] == people.get("T1", "U2")
    assert many["U1"].tz == "Asia/Tokyo" and many["U2"].tz == "UTC"


# --- replies claimed and settled in batches -----------------------------------------------------------------


def test_a_claim_carries_the_state_of_the_dm_and_settling_writes_each_outcome(store):
    for n in range(3):
        assert record(store, recipient="U1", sender=f"U{n + 2}", channel=f"D{n}", ts=f"{n}.0") == "replied"
    with store.engine.begin() as conn:
        conn.execute(db.messages.update().where(db.messages.c.channel_id == "D1").values(state="answered"))
    claimed = {reply.channel_id: reply for reply in store.replies.claim_due(now=NOW)}
    assert {c: r.message_state for c, r in claimed.items()} == {"D0": "pending", "D1": "answered", "D2": "pending"}
    assert store.replies.claim_due(now=NOW) == []  # leased

    retry_at = NOW + timedelta(seconds=30)
    store.replies.settle([
        (claimed["D0"].id, 1, Outcome(DeliveryState.SENT, ts="9.1")),
        (claimed["D1"].id, 1, Outcome(DeliveryState.EXPIRED, error="message_answered")),
        (claimed["D2"].id, 1, Outcome(DeliveryState.NOT_POSTED, error="x" * 500, retry_at=retry_at)),
    ])  # fmt: skip
    with store.engine.connect() as conn:
        rows = {r.channel_id: r for r in conn.execute(sa.select(db.replies))}
    assert (rows["D0"].state, rows["D0"].reply_ts, rows["D0"].last_error) == ("sent", "9.1", None)
    assert (rows["D1"].state, rows["D1"].last_error) == ("expired", "message_answered")
    assert (rows["D2"].state, rows["D2"].last_error, rows["D2"].attempts) == ("pending", "x" * 200, 1)
    assert [rows[c].delivery_state for c in ("D0", "D1", "D2")] == ["sent", "expired", "not_posted"]
    assert db.UTCDateTime().process_result_value(rows["D2"].next_attempt_at, None) == retry_at
    [again] = store.replies.claim_due(now=retry_at)
    assert (again.channel_id, again.attempts, again.last_error) == ("D2", 2, "x" * 200)


def test_an_outcome_is_written_only_while_its_claim_holds(store):
    """A sender whose lease ran out (another process claimed the reply again) cannot overwrite the newer result."""
    record(store, recipient="U1", sender="U2", channel="D0", ts="0.0")
    [first] = store.replies.claim_due(now=NOW)
    [second] = store.replies.claim_due(now=NOW + timedelta(minutes=2))  # the lease is over
    store.replies.settle([(second.id, 2, Outcome(DeliveryState.SENT, ts="9.2"))])
    store.replies.settle([(first.id, 1, Outcome(DeliveryState.OUTCOME_UNKNOWN, error="timeout"))])
    with store.engine.connect() as conn:
        [row] = conn.execute(sa.select(db.replies)).all()
    assert (row.state, row.reply_ts, row.attempts) == ("sent", "9.2", 2)


def test_a_claim_left_without_an_outcome_is_an_unknown_outcome_for_the_next(store):
    record(store, recipient="U1", sender="U2", channel="D0", ts="0.0")
    record(store, recipient="U1", sender="U3", channel="D1", ts="1.0")
    claimed = store.replies.claim_due(now=NOW)
    assert not any(reply.outcome_unknown for reply in claimed)
    rate_limited = next(reply for reply in claimed if reply.channel_id == "D1")
    store.replies.settle(  # Slack said 429: certainly not posted
        [(rate_limited.id, 1, Outcome(DeliveryState.NOT_POSTED, error="ratelimited", retry_at=NOW))]
    )
    # D0's process died mid-post and its lease ran out; D1 is simply due again.
    again = {reply.channel_id: reply for reply in store.replies.claim_due(now=NOW + timedelta(minutes=2))}
    assert again["D0"].outcome_unknown  # so the sender looks for its own post before posting again
    assert not again["D1"].outcome_unknown


def test_settling_nothing_writes_nothing(store):
    store.replies.settle([])
    assert store.replies.claim_due(now=NOW) == []


# --- SQLite's write queue -----------------------------------------------------------------------------------


def test_a_failed_write_rolls_back_and_lets_the_next_writer_in(store):
    with pytest.raises(RuntimeError), db.writing(store.engine) as conn:
        conn.execute(db.people.insert().values(team_id="T1", user_id="U1", updated_at=NOW, days_off=""))
        raise RuntimeError("boom")
    with db.writing(store.engine) as conn:  # would wait forever if the queue had not been released
        conn.execute(db.people.insert().values(team_id="T1", user_id="U2", updated_at=NOW, days_off=""))
    assert store.get_person("T1", "U1") is None
    assert store.get_person("T1", "U2") is not None


def test_writers_of_one_process_take_turns_and_readers_do_not_wait(store):
    if store.is_postgres:
        pytest.skip("the write queue is SQLite's: PostgreSQL has row locks")
    first_in = threading.Event()
    let_first_commit = threading.Event()
    order: list[str] = []
    queue = db._write_queues[store.engine]
    second_queued = threading.Event()

    class WatchedQueue:  # the real lock, telling the test when the second writer has asked for it
        def acquire(self, timeout: float) -> bool:
            if first_in.is_set():
                second_queued.set()
            return queue.acquire(timeout=timeout)

        def release(self) -> None:
            queue.release()

    db._write_queues[store.engine] = WatchedQueue()

    def first() -> None:
        with db.writing(store.engine) as conn:
            conn.execute(db.people.insert().values(team_id="T1", user_id="U1", updated_at=NOW, days_off=""))
            first_in.set()
            let_first_commit.wait(10)
            order.append("first commits")

    def second() -> None:
        with db.writing(store.engine) as conn:
            order.append("second begins")
            conn.execute(db.people.insert().values(team_id="T1", user_id="U2", updated_at=NOW, days_off=""))

    one = threading.Thread(target=first)
    one.start()
    assert first_in.wait(10)
    two = threading.Thread(target=second)
    two.start()
    assert second_queued.wait(10)
    assert order == []  # queued behind the open write transaction
    assert store.get_person("T1", "U1") is None  # a reader is not queued, and sees only what was committed
    let_first_commit.set()
    one.join(10)
    two.join(10)
    db._write_queues[store.engine] = queue
    assert order == ["first commits", "second begins"]
    assert store.get_person("T1", "U2") is not None


def test_a_database_error_does_not_carry_the_message_text(store):
    """The error is logged with its traceback (bot/app.py's error handler): its text must not hold the DM."""

    def cut(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("INSERT") and db.messages.name in statement:
            raise conn.dialect.loaded_dbapi.OperationalError("server closed the connection unexpectedly (test)")

    connected(store, "U1", now=NOW)
    sa.event.listen(store.engine, "before_cursor_execute", cut)
    try:
        with pytest.raises(sa.exc.OperationalError) as raised:
            store.inbox.record(
                IncomingRecord(
                    team_id="T1", recipient_id="U1", sender_id="U2", channel_id="D1", ts="1.0", thread_ts="1.0",
                    received_at=NOW, due_at=NOW, text="my bank PIN is 4711", window_key="k", reply=True,
                ),
                now=NOW,
            )  # fmt: skip
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", cut)
    assert "server closed the connection" in str(raised.value)
    assert "4711" not in str(raised.value)


# --- the connection pool ------------------------------------------------------------------------------------


def test_sixteen_concurrent_readers_keep_their_connections(store):
    """As many threads as the HTTP server has read at once, round after round: their connections go back to the
    pool instead of being closed and opened again (each open re-ran the PRAGMAs and lost the statement cache)."""
    opened: list[object] = []
    sa.event.listen(store.engine, "connect", lambda *_: opened.append(1))
    barrier = threading.Barrier(16)
    errors: list[BaseException] = []

    def read() -> None:
        try:
            with db.reading(store.engine) as conn:
                barrier.wait(timeout=10)  # all sixteen hold a connection at once
                conn.execute(sa.text("SELECT 1")).one()
        except BaseException as e:  # a pool too small to give sixteen at once breaks the barrier
            errors.append(e)

    for _round in range(3):
        threads = [threading.Thread(target=read) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if _round == 0:
            after_first = len(opened)
    assert errors == []
    assert after_first <= 16
    assert len(opened) == after_first, "connections were closed on return and opened again"


def _pinged(store, monkeypatch) -> list[object]:
    pings: list[object] = []
    ping = store.engine.dialect.do_ping
    monkeypatch.setattr(store.engine.dialect, "do_ping", lambda conn: pings.append(conn) or ping(conn))
    return pings


def _backend_pid(store) -> int:
    with db.reading(store.engine) as conn:
        return conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()


def test_a_connection_used_within_the_idle_limit_is_not_pinged_again(store, monkeypatch):
    if not store.is_postgres:
        pytest.skip("SQLite's connections are files: nothing to ping")
    pings = _pinged(store, monkeypatch)
    pids = {_backend_pid(store) for _ in range(10)}
    assert pings == [] and len(pids) == 1  # one connection, reused ten times, never pinged
    monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_S", 0.0)
    _backend_pid(store)
    assert len(pings) == 1  # idle past the limit: pinged before use


def test_a_pooled_connection_the_server_closed_while_idle_is_replaced_before_use(store, monkeypatch):
    """The server (a restart, a proxy's idle timeout) ended the backend of a pooled connection: past the idle limit
    the ping finds it, the pool drops it, and the read runs on a new connection instead of failing."""
    if not store.is_postgres:
        pytest.skip("SQLite's connections are files: nothing to ping")
    pid = _backend_pid(store)
    admin = sa.create_engine(store.engine.url, poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        assert conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one() is True
    admin.dispose()
    monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_S", 0.0)
    pings = _pinged(store, monkeypatch)
    assert _backend_pid(store) != pid
    assert len(pings) == 1


def test_a_pooled_connection_the_server_closed_moments_ago_is_replaced_before_use(store, monkeypatch):
    """A restart (or a proxy, or pg_terminate_backend) ends the backends of connections used a moment ago, within
    the idle limit: the server's goodbye is already on the socket, so the checkout sees it without a round trip and
    the read runs on a new connection instead of failing its request (a 5xx to Slack, a failed worker pass)."""
    if not store.is_postgres:
        pytest.skip("SQLite's connections are files: nothing to ping")
    pid = _backend_pid(store)
    admin = sa.create_engine(store.engine.url, poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        assert conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one() is True
        # pg_terminate_backend only signals: wait until the backend is gone, so its goodbye has been sent
        for _ in range(1000):
            gone = conn.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid})
            if gone.scalar_one() == 0:
                break
            time.sleep(0.01)
    admin.dispose()
    monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_S", 3600.0)  # well within the idle limit
    assert _backend_pid(store) != pid


@pytest.mark.parametrize(
    "url", ["sqlite://", "sqlite:///:memory:", "sqlite:///file:m?mode=memory&cache=shared&uri=true"]
)
def test_an_in_memory_sqlite_database_keeps_its_one_connection_per_thread(url):
    """In-memory SQLite is one connection per thread (SingletonThreadPool, no overflow to size): a URI filename
    with mode=memory too, which the pool sizes of file databases made create_engine refuse."""
    engine = engine_module.make_engine(url)
    try:
        assert isinstance(engine.pool, sa.pool.SingletonThreadPool)
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
    finally:
        engine.dispose()
