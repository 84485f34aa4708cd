"""The database unreachable while Slack talks to Offhours: nothing half-done, and Slack's redelivery repairs it.

The outage is made the way a real one looks to the app: the connections it holds are cut (PostgreSQL:
pg_terminate_backend on every backend of the test database; SQLite: the pool is emptied) and every new
connection is refused with the driver's own OperationalError (sqlite3's, psycopg's), until the database is back.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from bot.storage import db
from bot.storage.store import Store
from bot.workers.recaps import RecapSender
from bot.workers.replies import ReplySender
from tests.support.helpers import connect, rows
from tests.support.recording import RecordingSlack
from tests.support.slackhttp import request

DUE = datetime(2026, 3, 4, 14, 0, tzinfo=UTC)  # U1's recap: Wed 09:00 EST


class Outage:
    """Switches the store's database off and on."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.down = False
        self.refused = 0
        sa.event.listen(store.engine, "do_connect", self._connect)

    def _connect(self, dialect, conn_rec, cargs, cparams):
        if self.down:
            self.refused += 1
            raise dialect.loaded_dbapi.OperationalError("could not connect: the database is unreachable (test outage)")
        return None  # connect as usual

    def start(self) -> None:
        if self.store.is_postgres:
            admin = sa.create_engine(self.store.engine.url, poolclass=sa.pool.NullPool)
            with admin.connect() as conn:
                conn.execute(sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                ))  # fmt: skip
            admin.dispose()
        self.down = True
        self.store.engine.dispose()  # the pooled connections are gone; new ones are refused

    def end(self) -> None:
        self.down = False

    def remove(self) -> None:
        sa.event.remove(self.store.engine, "do_connect", self._connect)


@pytest.fixture
def fake_slack() -> Iterator[RecordingSlack]:
    fake = RecordingSlack().start()
    yield fake
    fake.stop()


@pytest.fixture
def outage(store) -> Iterator[Outage]:
    switch = Outage(store)
    yield switch
    switch.end()
    switch.remove()


@pytest.fixture
def u1(store, fake_slack):
    connect(store, fake_slack, "U1", tz="America/New_York")
    fake_slack.add_user("U2", tz="Europe/Rome")
    return "U1"


@pytest.fixture
def sender(offhours) -> Iterator[ReplySender]:
    made = ReplySender(offhours.services)
    yield made
    made.stop(timeout=5)


def healthz(server) -> int:
    return request(f"{server.url}/healthz").status


def test_an_event_during_an_outage_is_refused_then_its_redelivery_is_handled_once(
    u1, server, slack, store, fake_slack, clock, outage, sender
):
    ts = clock().timestamp()
    assert healthz(server) == 200
    outage.start()

    response = slack.dm(sender="U2", recipient="U1", ts=ts, event_id="EvDB1")
    assert response.status >= 500  # not 200: Slack will redeliver
    assert healthz(server) == 503
    assert outage.refused >= 2  # the event and /healthz really reached for the database

    outage.end()
    assert healthz(server) == 200
    assert rows(store, db.messages) == [] and rows(store, db.replies) == []  # nothing half-done
    again = slack.dm(sender="U2", recipient="U1", ts=ts, event_id="EvDB1", retry_num=1)
    assert again.status == 200, again.text
    third = slack.dm(sender="U2", recipient="U1", ts=ts, event_id="EvDB1", retry_num=2)
    assert third.status == 200

    [message] = rows(store, db.messages)
    assert (message["recipient_id"], message["sender_id"], message["state"]) == ("U1", "U2", "pending")
    [reply] = rows(store, db.replies)
    assert sender.drain(now=clock()) == 1
    assert len(fake_slack.posts()) == 1
    assert rows(store, db.replies)[0]["state"] == "sent" and reply["id"] == rows(store, db.replies)[0]["id"]


def test_an_outage_in_the_middle_of_recording_leaves_nothing_half_done(
    u1, slack, store, fake_slack, clock, outage, sender
):
    """The message row is written, then the database goes away before the reply row: neither is kept."""
    ts = clock().timestamp()

    def cut_before_reply(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("INSERT") and db.replies.name in statement:
            outage.down = True  # and this statement never reaches the database
            raise conn.dialect.loaded_dbapi.OperationalError("server closed the connection unexpectedly (test)")

    sa.event.listen(store.engine, "before_cursor_execute", cut_before_reply)
    try:
        response = slack.dm(sender="U2", recipient="U1", ts=ts, event_id="EvDB2")
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", cut_before_reply)
    assert response.status >= 500
    outage.end()
    assert rows(store, db.messages) == [] and rows(store, db.replies) == []  # rolled back as one

    assert slack.dm(sender="U2", recipient="U1", ts=ts, event_id="EvDB2", retry_num=1).status == 200
    assert len(rows(store, db.messages)) == 1 and len(rows(store, db.replies)) == 1
    assert sender.drain(now=clock()) == 1
    assert len(fake_slack.posts()) == 1


def test_a_command_during_an_outage_saves_nothing_and_works_once_the_database_is_back(
    u1, slack, store, outage
):  # fmt: skip
    outage.start()
    response = slack.command("set mon-fri 10-18", user="U1")
    assert response.status != 200  # Slack tells the person the command failed; nothing was half-saved
    outage.end()
    with store.engine.connect() as conn:
        hours = conn.execute(sa.select(db.people.c.hours).where(db.people.c.user_id == "U1")).scalar_one()
    assert hours is None
    response = slack.command("set mon-fri 10-18", user="U1")
    assert response.status == 200 and "10:00" in response.text


def test_the_reply_sender_waits_out_an_outage_and_sends_once(u1, slack, store, fake_slack, clock, outage, sender):
    slack.dm(sender="U2", recipient="U1", ts=clock().timestamp())
    outage.start()
    with pytest.raises(sa.exc.OperationalError):
        sender.drain(now=clock())  # the background loop logs this and tries again at its next wake-up
    assert fake_slack.posts() == []
    outage.end()
    assert sender.drain(now=clock()) == 1
    assert sender.drain(now=clock() + timedelta(minutes=5)) == 0
    assert len(fake_slack.posts()) == 1


def test_the_database_lost_right_after_a_post_does_not_make_it_a_double(
    u1, slack, store, fake_slack, clock, outage, sender
):
    """Posted, then the database is gone before "sent" is written: the lease expires, the reply is claimed
    again, and the retry finds its own post in the thread instead of posting a second one."""
    slack.dm(sender="U2", recipient="U1", ts=clock().timestamp())
    original = sender.store.replies.settle

    def lost(outcomes, **kwargs):
        outage.start()
        original(outcomes, **kwargs)

    sender.store.replies.settle = lost
    with pytest.raises(sa.exc.OperationalError):
        sender.drain(now=clock())
    sender.store.replies.settle = original
    outage.end()
    assert len(fake_slack.posts()) == 1

    clock.advance(minutes=2)  # past the claim's lease
    sender.drain(now=clock())
    assert len(fake_slack.posts()) == 1
    [reply] = rows(store, db.replies)
    assert reply["state"] == "sent" and reply["reply_ts"] == fake_slack.posts()[0].params["_ts"]


def test_a_recap_due_during_an_outage_is_sent_once_when_the_database_is_back(
    u1, offhours, slack, store, fake_slack, clock, outage
):
    slack.dm(sender="U2", recipient="U1", ts=clock().timestamp())
    recaps = RecapSender(offhours.services)
    outage.start()
    with pytest.raises(sa.exc.OperationalError):
        recaps.tick(DUE)  # the scheduler's job wrapper logs this; the next interval tries again
    outage.end()
    assert recaps.tick(DUE + timedelta(seconds=30)) == 1
    assert recaps.tick(DUE + timedelta(minutes=10)) == 0
    assert len(fake_slack.posts(token="xoxb-T1")) == 1
    [message] = rows(store, db.messages)
    assert message["state"] == "recapped"
