"""The pending-deliveries figures (`offhours_pending`, `python -m bot status`) count every kind of delivery: the
kinds added with status sync, nudges and channel office hours too, each from its due time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from bot.storage import ops, schema

NOW = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
EARLIER, LATER = NOW - timedelta(minutes=5), NOW + timedelta(hours=2)


def test_each_new_kind_counts_what_is_due_and_not_yet_settled(store):
    with store.engine.begin() as conn:
        conn.execute(sa.insert(schema.status_updates), [
            {"team_id": "T1", "user_id": u, "window_end": LATER, "action": "set", "next_attempt_at": EARLIER,
             "updated_at": EARLIER, "state": state, "seq": 0}
            for u, state in (("U1", "pending"), ("U2", "sent"))
        ])  # fmt: skip
        conn.execute(sa.insert(schema.nudges), [
            {"team_id": "T1", "user_id": "U1", "sender_id": "U2", "channel_id": "D1", "message_ts": ts,
             "thread_ts": ts, "received_at": EARLIER, "promised_at": LATER, "planned_at": EARLIER,
             "next_attempt_at": due, "state": "pending"}
            for ts, due in (("1.0", EARLIER), ("2.0", LATER))  # the second is not due yet
        ])  # fmt: skip
        conn.execute(sa.insert(schema.channel_replies), [
            {"team_id": "T1", "channel_id": "C1", "sender_id": "U2", "window_key": "k", "message_ts": "1.0",
             "received_at": EARLIER, "back_at": LATER, "next_attempt_at": EARLIER, "state": "pending"}
        ])  # fmt: skip
        conn.execute(sa.insert(schema.channel_summaries), [
            {"team_id": "T1", "channel_id": c, "due_at": due, "next_attempt_at": due, "state": "pending"}
            for c, due in (("C1", EARLIER), ("C2", LATER))
        ])  # fmt: skip
    pending = ops.pending(store.engine, now=NOW)
    assert {kind: p.count for kind, p in pending.items()} == {
        "auto_reply": 0, "recap": 0, "urgent": 0, "status": 1, "nudge": 1, "channel_reply": 1, "channel_summary": 1
    }  # fmt: skip
    assert pending["nudge"].oldest is not None and pending["nudge"].oldest.replace(tzinfo=UTC) == EARLIER
