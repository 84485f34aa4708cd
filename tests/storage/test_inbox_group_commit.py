"""Concurrent DMs recorded in one transaction (Inbox.record through bot/storage/batch_writer.py), on the real
database: each caller gets its own DM's outcome, as if it had been recorded alone, and only once it is stored."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from bot.storage import db
from bot.storage.batch_writer import BatchWriter
from bot.storage.inbox import IncomingRecord
from bot.storage.replies import QueuedReply
from bot.storage.store import Store
from tests.support.helpers import connected, rows

NOW = datetime(2026, 3, 4, 3, 0, tzinfo=UTC)
TIMEOUT = 10


def dm(recipient: str, sender: str, ts: str, *, channel: str | None = None) -> IncomingRecord:
    return IncomingRecord(
        team_id="T1", recipient_id=recipient, sender_id=sender, channel_id=channel or f"D{sender}{recipient}", ts=ts,
        thread_ts=ts, received_at=NOW, due_at=NOW + timedelta(hours=6), text=None, window_key="back:x", reply=True,
    )  # fmt: skip


def record_together(store, first: IncomingRecord, others: list[IncomingRecord]) -> list[str]:
    """Record `first`, hold its write until every one of `others` waits behind it, then let all go."""
    writer = store.inbox._records
    write_one = writer._write_one
    gate, writing = threading.Event(), threading.Event()

    def held(item):
        writing.set()
        assert gate.wait(TIMEOUT)
        return write_one(item)

    writer._write_one = held
    outcomes: dict[int, str] = {}

    def run(n: int, rec: IncomingRecord) -> None:
        outcomes[n] = store.inbox.record(rec, now=NOW)

    threads = [threading.Thread(target=run, args=(0, first))]
    threads[0].start()
    try:
        assert writing.wait(TIMEOUT)
        writer._write_one = write_one  # only the first write is held
        threads += [threading.Thread(target=run, args=(n + 1, rec)) for n, rec in enumerate(others)]
        for t in threads[1:]:
            t.start()
        assert writer.wait_queued(len(others), TIMEOUT)
    finally:
        writer._write_one = write_one
        gate.set()
    for t in threads:
        t.join(TIMEOUT)
    return [outcomes[n] for n in range(len(threads))]


def test_dms_that_arrive_together_are_recorded_in_one_transaction_each_with_its_own_outcome(store):
    for user in ("U1", "U2", "U3"):
        connected(store, user, now=NOW)
    commits = []

    def count(conn) -> None:
        commits.append(1)

    sa.event.listen(store.engine, "commit", count)
    try:
        outcomes = record_together(store, dm("U1", "S0", "0.0"), [
            dm("U1", "S1", "1.0"),
            dm("U2", "S1", "2.0"),
            dm("U1", "S1", "3.0", channel="DS1U1"),  # S1 again to U1, same window: recorded, no second reply
            dm("U2", "S1", "2.0"),  # a redelivered copy of U2's, in the same batch
            dm("U9", "S2", "4.0"),  # U9 never connected (or was forgotten): nothing written
            dm("U3", "S3", "5.0"),
        ])  # fmt: skip
    finally:
        sa.event.remove(store.engine, "commit", count)
    assert outcomes == ["replied", "replied", "replied", "throttled", "duplicate", "not_connected", "replied"]
    assert len(commits) == 2  # the first DM alone, then the six that gathered behind it: one transaction
    stored = {(m["recipient_id"], m["sender_id"], m["ts"]) for m in rows(store, db.messages)}
    assert stored == {("U1", "S0", "0.0"), ("U1", "S1", "1.0"), ("U2", "S1", "2.0"), ("U1", "S1", "3.0"),
                      ("U3", "S3", "5.0")}  # fmt: skip
    replies = sorted((r["recipient_id"], r["sender_id"], r["message_ts"]) for r in rows(store, db.replies))
    assert replies == [("U1", "S0", "0.0"), ("U1", "S1", "1.0"), ("U2", "S1", "2.0"), ("U3", "S3", "5.0")]


def test_a_batch_the_database_refuses_is_recorded_again_dm_by_dm(store):
    """One transaction for the batch failed (here: its first INSERT): each DM is then recorded alone, and only
    the one whose own write fails reports the error."""
    for user in ("U1", "U2"):
        connected(store, user, now=NOW)
    failed = []

    def cut_once(conn, cursor, statement, parameters, context, executemany):
        inserting = statement.lstrip().upper().startswith("INSERT") and db.messages.name in statement
        if not failed and inserting and parameters and "1.0" in str(parameters):
            failed.append(statement)
            raise conn.dialect.loaded_dbapi.OperationalError("server closed the connection unexpectedly (test)")

    sa.event.listen(store.engine, "before_cursor_execute", cut_once)
    try:
        outcomes = record_together(store, dm("U1", "S0", "0.0"), [dm("U1", "S1", "1.0"), dm("U2", "S2", "2.0")])
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", cut_once)
    assert len(failed) == 1
    assert outcomes == ["replied", "replied", "replied"]  # the batch's two, each written again alone
    assert {m["ts"] for m in rows(store, db.messages)} == {"0.0", "1.0", "2.0"}
    assert len(rows(store, db.replies)) == 3


def window(key: str, start: datetime, hours: float) -> dict:
    return {"window_key": key, "window_start": start, "window_end": start + timedelta(hours=hours)}


def test_in_a_batch_the_reply_rules_are_those_of_dms_recorded_one_by_one(store):
    """Overlapping windows from one sender get one reply; separate windows one each; a reply that was never shown
    (its DM deleted before it went out) is replaced by the batch's DM, as it would be alone."""
    for user in ("U1", "U2"):
        connected(store, user, now=NOW)
    base = dm("U1", "S0", "0.0")
    later = datetime(2026, 3, 5, 3, 0, tzinfo=UTC)
    deleted = replace(dm("U2", "S5", "9.0"), **window("back:deleted", NOW, 6))
    assert store.inbox.record(deleted, now=NOW) == "replied"
    assert store.inbox.drop_deleted("T1", deleted.channel_id, "9.0") == 1  # never claimed: its reply goes too
    # ...and one that was claimed, then expired unposted because its DM was deleted: replaceable
    again = replace(dm("U2", "S5", "9.5"), **window("back:deleted", NOW, 6))
    assert store.inbox.record(again, now=NOW) == "replied"
    with store.engine.begin() as conn:
        conn.execute(db.replies.update().where(db.replies.c.message_ts == "9.5")
                     .values(state="expired", last_error="message_deleted"))  # fmt: skip

    outcomes = record_together(store, base, [
        replace(dm("U1", "S1", "1.0"), **window("back:a", NOW, 6)),
        replace(dm("U1", "S1", "2.0", channel="DS1U1b"), **window("back:b", NOW + timedelta(hours=5), 6)),  # overlaps
        replace(dm("U1", "S1", "3.0", channel="DS1U1c"), **window("back:c", later, 6)),  # a later window of its own
        replace(dm("U2", "S5", "4.0"), **window("back:deleted", NOW, 6)),  # takes the expired reply's place
    ])  # fmt: skip
    assert outcomes == ["replied", "replied", "throttled", "replied", "replied"]
    by_ts = {r["message_ts"]: r for r in rows(store, db.replies)}
    assert set(by_ts) == {"0.0", "1.0", "3.0", "4.0"}
    assert (by_ts["4.0"]["state"], by_ts["4.0"]["attempts"]) == ("pending", 0)  # the expired row, re-armed


def test_a_dm_throttled_in_a_batch_holds_back_nothing_after_it(store):
    """Only replies queued count: a DM that got none (its window overlaps an earlier reply) does not make a later
    DM of the batch, overlapping only it, look answered."""
    connected(store, "U1", now=NOW)
    assert store.inbox.record(replace(dm("U1", "S1", "0.0"), **window("back:a", NOW, 6)), now=NOW) == "replied"
    outcomes = record_together(store, dm("U1", "S0", "0.5"), [
        replace(dm("U1", "S1", "1.0", channel="Db"), **window("back:b", NOW + timedelta(hours=5), 6)),
        replace(dm("U1", "S1", "2.0", channel="Dc"), **window("back:c", NOW + timedelta(hours=10), 6)),
    ])  # fmt: skip
    assert outcomes == ["replied", "throttled", "replied"]
    assert {r["message_ts"] for r in rows(store, db.replies)} == {"0.0", "0.5", "2.0"}


# --- found in review: PostgreSQL's row locks across batches and forget, interrupted writes ----------------------


def lock_waiters(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        query = "select count(*) from pg_stat_activity where wait_event_type = 'Lock' and datname = current_database()"
        return conn.execute(sa.text(query)).scalar()


def _reply_row(rec: IncomingRecord) -> dict:
    return QueuedReply(
        queued_at=NOW, team_id=rec.team_id, recipient_id=rec.recipient_id, sender_id=rec.sender_id, window=rec.window,
        channel_id=rec.channel_id, message_ts=rec.ts, thread_ts=rec.thread_ts, received_at=rec.received_at,
    ).row()  # fmt: skip


def _message_row(rec: IncomingRecord) -> dict:
    return {"team_id": rec.team_id, "recipient_id": rec.recipient_id, "channel_id": rec.channel_id, "ts": rec.ts,
            "thread_ts": rec.thread_ts, "sender_id": rec.sender_id, "received_at": rec.received_at, "text": None,
            "due_at": rec.due_at, "source": "dm"}  # fmt: skip


@pytest.mark.parametrize("rows", ["replies", "messages"])
def test_two_processes_batches_with_the_same_keys_in_opposite_order_do_not_deadlock(store, migrated, rows):
    """Process 1 gets S1's DM then S2's for U1, process 2 S2's then S1's (each sender wrote twice; for
    `messages`: the same two DMs, one pair redelivered). A third transaction holds a row each batch inserts in the
    middle, so that both have inserted their first row before either reaches its last: then each waits for the
    other (a deadlock: PostgreSQL aborts one batch after deadlock_timeout)."""
    if not store.is_postgres:
        pytest.skip("PostgreSQL's row locks")
    connected(store, "U1", now=NOW)
    other = Store(migrated, client_id="111.222")  # the second process
    try:
        if rows == "replies":
            one = [dm("U1", "S1", "1.0"), dm("U1", "G1", "8.1"), dm("U1", "S2", "2.0")]
            two = [dm("U1", "S2", "3.0"), dm("U1", "G2", "8.2"), dm("U1", "S1", "4.0")]
        else:
            a, b = dm("U1", "S1", "1.0"), dm("U1", "S2", "2.0")
            one = [a, dm("U1", "G1", "8.1"), b]
            two = [b, dm("U1", "G2", "8.2"), a]
        errors: list[BaseException] = []

        def write(inbox, items) -> None:
            try:
                inbox._record_many([(rec, NOW) for rec in items])
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=write, args=(store.inbox, one)),
                   threading.Thread(target=write, args=(other.inbox, two))]  # fmt: skip
        with store.engine.connect() as gate:  # holds G1's and G2's rows (uncommitted) while both batches start
            for rec in (one[1], two[1]):
                if rows == "replies":
                    gate.execute(db.replies.insert().values(_reply_row(rec)))
                else:
                    gate.execute(db.messages.insert().values(_message_row(rec)))
            for t in threads:
                t.start()
            deadline = time.monotonic() + 10
            while lock_waiters(store.engine) < 2:  # both batches now wait for the gate, their first row inserted
                assert time.monotonic() < deadline, "the batches did not reach the gate"
            gate.rollback()
        for t in threads:
            t.join(20)
        assert [type(e.orig).__name__ if hasattr(e, "orig") else type(e).__name__ for e in errors] == []
    finally:
        other.close()


def test_a_batch_that_fails_with_a_base_exception_does_not_answer_its_other_callers_with_none():
    """The leader's write is interrupted by a BaseException (not Exception): the batch's other callers must not
    wake with neither a result nor an error (they returned None, as if written): each writes its own again."""
    gate, started = threading.Event(), threading.Event()
    calls: list[list[int]] = []

    def write_many(items: list[int]) -> list[str]:
        calls.append(items)
        raise KeyboardInterrupt  # e.g. a signal, gevent's Timeout, SystemExit at shutdown

    def write_one(item: int) -> str:
        if item == 0:
            started.set()
            assert gate.wait(10)
        return f"ok{item}"

    writer: BatchWriter[int, str] = BatchWriter(write_many, write_one)
    results: dict[int, object] = {}

    def run(n: int) -> None:
        try:
            results[n] = writer.submit(n)
        except BaseException as e:
            results[n] = type(e).__name__

    first = threading.Thread(target=run, args=(0,))
    first.start()
    assert started.wait(10)
    others = [threading.Thread(target=run, args=(n,)) for n in (1, 2)]
    for t in others:
        t.start()
    assert writer.wait_queued(2, 10)
    gate.set()
    for t in [first, *others]:
        t.join(10)
    assert calls == [[1, 2]]
    # One of 1 and 2 led the failed batch and saw KeyboardInterrupt; the other must not return None (its DM was
    # never written, and the caller answers Slack 200 on it).
    assert None not in (results[1], results[2]), results


def test_a_batch_uses_each_dms_own_now_for_its_reply(store):
    """Each reply of a batch is due at its own DM's `now`, not the first's."""
    for user in ("U1", "U2"):
        connected(store, user, now=NOW)
    later = NOW + timedelta(minutes=5)
    store.inbox._record_many([(dm("U1", "S1", "1.0"), NOW), (replace(dm("U2", "S2", "2.0")), later)])
    with store.engine.connect() as conn:
        due = dict(conn.execute(sa.select(db.replies.c.message_ts, db.replies.c.next_attempt_at)).all())
    assert due["2.0"].replace(tzinfo=UTC) == later, due


def test_a_batch_of_several_recipients_and_a_forget_do_not_deadlock(store):
    """A batch once locked every installation row of its recipients, in id order (found in review); now one row
    per person, as one DM at a time did. forget_person deletes the person's rows in scan order, which is not
    id order once a row was updated (its new version lies after the later rows). U1 has two rows (a and c, two
    connections), U2 one (b) in between: the batch holds a and waits for b (held here by a third transaction),
    forget deletes c and waits for a; once b is free the batch waits for c: a deadlock."""
    if not store.is_postgres:
        pytest.skip("PostgreSQL's row locks")
    from tests.support.fakeslack import FakeSlack
    from tests.support.helpers import connect

    fake = FakeSlack()
    connect(store, fake, "U1", now=NOW)
    connect(store, fake, "U2", now=NOW)
    connect(store, fake, "U1", now=NOW)  # a second row of U1's, after U2's
    i = db.installations.c
    with store.engine.begin() as conn:
        ids = conn.execute(sa.select(i.id, i.user_id).order_by(i.id)).all()
        assert [u for _, u in ids] == ["U1", "U2", "U1"]
        a, b = ids[0][0], ids[1][0]
        conn.execute(db.installations.update().where(i.id == a).values(user_scopes=i.user_scopes))  # moves it
    errors: list[BaseException] = []

    def run(f, name: str = "forget") -> None:
        try:
            f()
        except BaseException as e:
            errors.append((name, e))

    batch = threading.Thread(target=run, args=(lambda: store.inbox._record_many(
        [(dm("U1", "S1", "1.0"), NOW), (dm("U2", "S2", "2.0"), NOW)]), "batch"))  # fmt: skip
    forget = threading.Thread(target=run, args=(lambda: store.forget_person("T1", "U1"),))
    with store.engine.connect() as gate:
        gate.execute(sa.select(i.id).where(i.id == b).with_for_update())
        batch.start()
        deadline = time.monotonic() + 10
        while lock_waiters(store.engine) < 1:
            assert time.monotonic() < deadline
        forget.start()
        while lock_waiters(store.engine) < 2:
            assert time.monotonic() < deadline
        gate.rollback()
    batch.join(20)
    forget.join(20)
    assert [(who, type(getattr(e, "orig", e)).__name__) for who, e in errors] == []
