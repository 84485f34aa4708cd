"""The urgent tables: one note per sender and off-window (the database's unique key), and retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.domain.delivery import DeliveryState, Outcome
from bot.storage import schema
from bot.storage.urgent import RepliedMessage
from tests.support.helpers import rows

NOW = datetime(2026, 3, 4, 3, 0, tzinfo=UTC)


def reply(window_key: str = "w1", sender: str = "U2") -> RepliedMessage:
    return RepliedMessage(id=1, team_id="T1", recipient_id="U1", sender_id=sender, window_key=window_key,
                          window_end=None, channel_id="D1", message_ts="1.0", thread_ts="1.0", reply_ts=None,
                          state="sent")  # fmt: skip


def test_one_note_per_sender_and_off_window(store):
    assert store.urgent.record(reply(), target_id="U3", note="a", now=NOW) is not None
    assert store.urgent.record(reply(), target_id="U3", note="b", now=NOW) is None
    assert store.urgent.record(reply(window_key="w2"), target_id="U3", note="c", now=NOW) is not None
    assert store.urgent.record(reply(sender="U4"), target_id="U3", note="d", now=NOW) is not None
    assert [r["note"] for r in rows(store, schema.urgent_notices)] == ["a", "c", "d"]


def test_a_stale_claims_outcome_is_not_written(store):
    store.urgent.record(reply(), target_id="U3", note="a", now=NOW)
    [first] = store.urgent.claim_due(now=NOW)
    [second] = store.urgent.claim_due(now=NOW + timedelta(minutes=2))  # the lease ran out: claimed again
    assert not store.urgent.settle(first.id, attempts=first.attempts, outcome=Outcome(DeliveryState.NOT_POSTED))
    assert store.urgent.settle(second.id, attempts=second.attempts, outcome=Outcome(DeliveryState.SENT, ts="1.2"))
    assert rows(store, schema.urgent_notices)[0]["state"] == "sent"


def test_retention_drops_settled_notes_and_keeps_pending_ones(store):
    store.urgent.record(reply(), target_id="U3", note="sent", now=NOW)
    store.urgent.record(reply(sender="U4"), target_id="U3", note="waiting", now=NOW)
    [a, _] = store.urgent.claim_due(now=NOW)
    store.urgent.settle(a.id, attempts=a.attempts, outcome=Outcome(DeliveryState.SENT, ts="1.2"))
    store.forget.purge_expired(now=NOW + timedelta(days=30), days=14)
    assert [r["note"] for r in rows(store, schema.urgent_notices)] == ["waiting"]


def test_a_note_that_failed_for_good_is_replaced_and_only_that_one(store):
    first = store.urgent.record(reply(), target_id="U3", note="a", now=NOW)
    [claim] = store.urgent.claim_due(now=NOW)
    assert store.urgent.settle(claim.id, attempts=claim.attempts, outcome=Outcome(DeliveryState.FAILED, error="x"))
    assert store.urgent.existing(reply()) is None
    later = NOW + timedelta(minutes=5)
    assert store.urgent.record(reply(), target_id="U5", note="b", now=later) == first
    [row] = rows(store, schema.urgent_notices)
    assert (row["state"], row["target_id"], row["note"], row["attempts"], row["next_attempt_at"]) == (
        "pending", "U5", "b", 0, later)  # fmt: skip
    assert store.urgent.record(reply(), target_id="U3", note="c", now=later) is None  # pending now: kept
    assert store.urgent.existing(reply()) is not None
