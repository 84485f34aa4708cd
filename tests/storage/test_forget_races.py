"""Forgetting a person or a workspace while a writer that found them connected holds still_connected()'s lock.

PostgreSQL only (SQLite's writers take turns, so the two never overlap). The writer is what fill_person_tz and the
profile cache do after a slow users.info: check the person is still connected, then write. Forgetting must wait for
it and then delete what it wrote; with the tokens deleted last, the two waited for each other (a deadlock).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from bot.storage import db
from tests.support.fakeslack import FakeSlack
from tests.support.helpers import connect, rows

NOW = datetime(2026, 3, 4, 3, 0, tzinfo=UTC)


def someone_waits_for_a_lock(engine: sa.Engine) -> bool:
    with engine.connect() as conn:
        query = "select count(*) from pg_stat_activity where wait_event_type = 'Lock' and datname = current_database()"
        return conn.execute(sa.text(query)).scalar() > 0


@pytest.mark.parametrize("write", ["first-contact", "zone-learnt"])
@pytest.mark.parametrize("forget", ["person", "team"])
def test_forgetting_waits_for_a_writer_that_found_the_person_connected_then_deletes_what_it_wrote(store, forget, write):
    if not store.is_postgres:
        pytest.skip("SQLite's writers take turns: a forget and a writer never overlap")
    connect(store, FakeSlack(), "U1")
    p = db.people.c
    with store.engine.begin() as conn:
        if write == "first-contact":
            conn.execute(db.people.delete())
        else:
            conn.execute(db.people.update().values(tz=None))
    outcome: list[BaseException | None] = []

    def forget_them() -> None:
        try:
            store.forget_person("T1", "U1") if forget == "person" else store.forget_team("T1")
            outcome.append(None)
        except BaseException as e:  # a deadlock, say: reported below
            outcome.append(e)

    forgetting = threading.Thread(target=forget_them)
    with db.writing(store.engine) as conn:  # the writer, after its slow Slack call
        assert store.still_connected(conn, "T1", "U1")
        forgetting.start()
        deadline = time.monotonic() + 10
        while not someone_waits_for_a_lock(store.engine):  # polls the server, no sleep: forget is now blocked
            assert time.monotonic() < deadline, "forget did not wait for the writer"
        if write == "first-contact":
            conn.execute(db.people.insert().values(team_id="T1", user_id="U1", tz="Europe/Rome", updated_at=NOW))
        else:
            conn.execute(db.people.update().where(p.user_id == "U1", p.tz.is_(None)).values(tz="Europe/Rome"))
    forgetting.join(30)

    assert outcome == [None]
    assert rows(store, db.people) == []
    assert store.user_token("T1", "U1") is None


def test_forgetting_a_person_while_their_recap_is_taken_over_does_not_deadlock(store, monkeypatch):
    """A take-over locks the recap row, then moves the person's due messages into it; forget deleted the messages
    first, then the recaps: opposite orders, and PostgreSQL aborted the forget (found in review). Forget now takes
    the recaps first, as every recap writer does, so it waits for the take-over and then deletes what it left."""
    from datetime import timedelta

    from bot.storage import recaps as recaps_module
    from bot.storage.inbox import IncomingRecord
    from tests.support.helpers import connected

    if not store.is_postgres:
        pytest.skip("PostgreSQL's row locks (SQLite's writers take turns)")
    connected(store, "U1", now=NOW)
    due = NOW + timedelta(hours=1)

    def record(ts: str) -> None:
        assert store.inbox.record(IncomingRecord(
            team_id="T1", recipient_id="U1", sender_id="U2", channel_id="D1", ts=ts, thread_ts=ts, received_at=NOW,
            due_at=due, text=None, window_key="w", reply=False,
        ), now=NOW) == "recorded"  # fmt: skip

    record("1.0")
    assert store.recaps.claim_new_many([("T1", "U1", due)], now=due)  # claimed; then its owner died
    record("2.0")  # recorded after the claim: due, waiting for the take-over to move it in
    paused, resume = threading.Event(), threading.Event()
    attach = recaps_module.inbox.attach_due_many

    def held_attach(conn, recaps, *, now):
        paused.set()
        assert resume.wait(10)
        return attach(conn, recaps, now=now)

    monkeypatch.setattr(recaps_module.inbox, "attach_due_many", held_attach)
    errors: list[BaseException] = []

    def run(f) -> None:
        try:
            f()
        except BaseException as e:
            errors.append(e)

    later = due + timedelta(minutes=10)  # the lease is over: the next scheduler takes the recap over
    take_over = threading.Thread(
        target=run, args=(lambda: store.recaps.claim_new_many([("T1", "U1", due)], now=later),)
    )
    take_over.start()
    assert paused.wait(10)  # the take-over holds the recap row
    forget = threading.Thread(target=run, args=(lambda: store.forget_person("T1", "U1"),))
    forget.start()
    deadline = time.monotonic() + 10
    while not someone_waits_for_a_lock(store.engine):
        assert time.monotonic() < deadline
    resume.set()
    take_over.join(30)
    forget.join(30)
    assert [type(e).__name__ for e in errors] == []
    assert rows(store, db.recaps) == [] and rows(store, db.messages) == []
