"""Urgent notices on the delivery engine: recorded notes survive a crash, a maybe-posted notice is looked up before
it is posted again, and two senders on their own connection pools post each notice exactly once.

The notes are recorded as the modal's submission records them (bot/storage/urgent.py `record`); U1 is the person
who is off (connected), U2.. the senders, U3 the backup. The fake Slack keeps what it carried out and answers
conversations.history from it (tests/support/recording.py). Nothing sleeps: the clock is moved by hand.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest

from bot.services import build_services
from bot.storage import schema
from bot.storage.store import Store
from bot.storage.urgent import URGENT_LEASE, RepliedMessage
from bot.workers.urgent import UrgentSender
from tests.support.helpers import connect, rows
from tests.support.recording import RecordingSlack


@pytest.fixture
def fake_slack() -> Iterator[RecordingSlack]:
    fake = RecordingSlack().start()
    yield fake
    fake.stop()


@pytest.fixture
def people(offhours, store, fake_slack, clock):
    connect(store, fake_slack, "U1", now=clock())
    offhours.services.people.ensure("T1", "U1", profile_tz="America/New_York")
    return offhours


@pytest.fixture
def senders() -> Iterator[list[UrgentSender]]:
    made: list[UrgentSender] = []
    yield made
    for sender in made:
        sender.stop(timeout=5)


def sender_for(services, senders: list[UrgentSender]) -> UrgentSender:
    sender = UrgentSender(services)
    senders.append(sender)
    return sender


def note(store: Store, clock, *, sender: str = "U2", reply_id: int = 1, target: str = "U3") -> int:
    reply = RepliedMessage(
        id=reply_id, team_id="T1", recipient_id="U1", sender_id=sender, window_key="w1", window_end=None,
        channel_id="D" + sender, message_ts="1772593200.000100", thread_ts="1772593200.000100", reply_ts=None,
        state="sent",
    )  # fmt: skip
    notice_id = store.urgent.record(reply, target_id=target, note="it can't wait", now=clock())
    assert notice_id is not None
    return notice_id


def posted_ids(fake: RecordingSlack) -> Counter[str]:
    return Counter(
        c.params["metadata"]["event_payload"]["notice_id"]
        for c in fake.posts(token="xoxb-T1")
        if (c.params.get("metadata") or {}).get("event_type") == "offhours_urgent"
    )


def test_a_note_recorded_before_a_crash_is_sent_by_the_next_process(people, store, fake_slack, clock, senders):
    notice_id = note(store, clock)
    # The process that acked the submission died before its sender woke: the next one finds the note due.
    assert sender_for(people.services, senders).drain(now=clock()) == 1
    assert posted_ids(fake_slack) == {str(notice_id): 1}


def test_a_sender_that_died_holding_the_claim_is_taken_over_after_the_lease(people, store, fake_slack, clock, senders):
    notice_id = note(store, clock)
    assert len(store.urgent.claim_due(now=clock())) == 1  # claimed by a process that then died
    assert sender_for(people.services, senders).drain(now=clock()) == 0  # still leased
    clock.advance(seconds=URGENT_LEASE.total_seconds() + 1)
    assert sender_for(people.services, senders).drain(now=clock()) == 1
    assert posted_ids(fake_slack) == {str(notice_id): 1}
    assert rows(store, schema.urgent_notices)[0]["state"] == "sent"


def test_a_post_slack_carried_out_but_failed_is_found_not_repeated(people, store, fake_slack, clock, senders):
    notice_id = note(store, clock)  # the backup does not use Offhours: the bot reads its own DM with them
    fake_slack.fail("chat.postMessage", status=500, after_acting=True)
    sender = sender_for(people.services, senders)
    assert sender.drain(now=clock()) == 0
    [row] = rows(store, schema.urgent_notices)
    assert row["delivery_state"] == "outcome_unknown"
    assert sender.drain(now=clock() + timedelta(minutes=5)) == 1  # found by its metadata
    assert posted_ids(fake_slack) == {str(notice_id): 1}
    [history] = fake_slack.calls_to("conversations.history")
    assert history.token == "xoxb-T1" and history.params["channel"] == "DU3"


@pytest.mark.parametrize("backup_connected", [True, False])
def test_an_installation_without_the_bots_im_history_looks_with_the_backups_token(
    people, store, fake_slack, clock, senders, backup_connected
):
    # Installed before the bot asked for im:history: the backup's own token reads the app's DM, when Offhours has
    # one; without it the note cannot be looked up and is posted again (for a note that cannot wait).
    if backup_connected:
        connect(store, fake_slack, "U3", now=clock())
    notice_id = note(store, clock)
    fake_slack.fail("chat.postMessage", status=500, after_acting=True)
    fake_slack.fail("conversations.history", error="missing_scope")
    sender = sender_for(people.services, senders)
    sender.drain(now=clock())
    assert sender.drain(now=clock() + timedelta(minutes=5)) == 1
    assert posted_ids(fake_slack) == {str(notice_id): 1 if backup_connected else 2}
    tokens = [c.token for c in fake_slack.calls_to("conversations.history")]
    assert tokens == (["xoxb-T1", "xoxp-T1-U3"] if backup_connected else ["xoxb-T1"])


def test_a_refused_post_is_retried_then_sent_once(people, store, fake_slack, clock, senders):
    notice_id = note(store, clock)
    fake_slack.fail("chat.postMessage", status=429, retry_after=30)
    sender = sender_for(people.services, senders)
    assert sender.drain(now=clock()) == 0
    assert sender.drain(now=clock() + timedelta(seconds=10)) == 0  # Retry-After honoured
    assert sender.drain(now=clock() + timedelta(seconds=31)) == 1
    assert posted_ids(fake_slack) == {str(notice_id): 1}


def test_two_senders_on_their_own_pools_post_each_note_exactly_once(people, migrated, settings, store, fake_slack,
                                                                    clock, senders):  # fmt: skip
    ids = [note(store, clock, sender=f"US{n:02d}", reply_id=n) for n in range(30)]
    fake_slack.fail("chat.postMessage", times=10, delay=0.02)  # slow first posts: the claims overlap
    others = [Store(migrated, client_id="111.222") for _ in range(2)]
    try:
        workers = [sender_for(build_services(people.services.config, s, settings=settings,
                                             client=people.services.client, clock=clock), senders)
                   for s in others]  # fmt: skip
        threads = [threading.Thread(target=w.drain, kwargs={"now": clock()}) for w in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    finally:
        for s in others:
            s.close()
    assert posted_ids(fake_slack) == {str(i): 1 for i in ids}
    assert {r["state"] for r in rows(store, schema.urgent_notices)} == {"sent"}
