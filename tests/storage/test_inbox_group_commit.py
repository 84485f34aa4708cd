"""Concurrent DMs recorded in one transaction (Inbox.record through bot/storage/batch_writer.py), on the real
database: each caller gets its own DM's outcome, as if it had been recorded alone, and only once it is stored."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from bot.storage import db
from bot.storage.inbox import IncomingRecord
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
