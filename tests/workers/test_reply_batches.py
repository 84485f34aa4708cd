"""Replies are sent in batches but each outcome is written as its post returns: a reply posted early in a batch
never looks unsent — not to another process once the batch outlives its lease, not after a stop half-way, and a
retry after a lost outcome looks for its own post first. (From an independent review of the batching.)"""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta

import pytest
import sqlalchemy as sa

from bot.config import Config
from bot.domain.delivery import DeliveryState
from bot.storage import db
from bot.storage.inbox import IncomingRecord
from bot.workers.replies import ReplySender
from tests.support.helpers import connect, rows
from tests.support.recording import RecordingSlack
from tests.support.slackhttp import dm_channel


@pytest.fixture
def fake_slack():
    fake = RecordingSlack().start()
    yield fake
    fake.stop()


def queue_replies(store, fake_slack, t0, senders) -> None:
    connect(store, fake_slack, "U1")
    for n, sender in enumerate(senders):
        fake_slack.add_user(sender)
        ts = f"{t0.timestamp() + n:.6f}"
        store.inbox.record(IncomingRecord(
            team_id="T1", recipient_id="U1", sender_id=sender, channel_id=dm_channel("U1", sender), ts=ts,
            thread_ts=ts, received_at=t0, due_at=t0 + timedelta(hours=10), text=None, window_key="w", reply=True,
        ), now=t0)  # fmt: skip


def test_a_reply_posted_early_in_a_batch_is_not_posted_again_by_another_process(store, fake_slack, make_app, clock):
    t0 = clock()
    queue_replies(store, fake_slack, t0, ("U2", "U3"))
    app = make_app(reply=replace(Config().reply, mode="ephemeral"))
    a = ReplySender(app.services, workers=1)  # this process: posts its batch one by one
    b = ReplySender(app.services, workers=1)  # another process
    fake_slack.fail("chat.postEphemeral", times=1)  # the first post: answered at once
    fake_slack.fail("chat.postEphemeral", delay=1.5)  # the second: Slack is slow
    first = threading.Thread(target=a.drain, kwargs={"now": t0})
    first.start()
    fake_slack.wait_for("chat.postEphemeral", 2)  # U2's reply is posted; U3's is on its way
    b.drain(now=t0 + timedelta(seconds=61))  # the lease is over: the other process claims what is still pending
    first.join()
    a.stop()
    b.stop()
    to_u2 = [c for c in fake_slack.calls_to("chat.postEphemeral") if c.params.get("user") == "U2"]
    assert len(to_u2) == 1, f"U2 got the auto-reply {len(to_u2)} times"


def test_stop_during_a_batch_keeps_what_was_posted(store, fake_slack, make_app, clock):
    t0 = clock()
    queue_replies(store, fake_slack, t0, ("U2", "U3", "U4"))
    sender = ReplySender(make_app().services, workers=1)
    fake_slack.fail("chat.postMessage", times=1)  # the first post: answered at once
    fake_slack.fail("chat.postMessage", delay=1.0)  # the second: slow
    errors = []

    def run():
        try:
            sender.drain(now=t0)
        except Exception as e:
            errors.append(e)

    worker = threading.Thread(target=run)
    worker.start()
    fake_slack.wait_for("chat.postMessage", 2)
    sender.stop(timeout=0.1)  # what SIGTERM does, while the second post waits for Slack
    worker.join()
    replies = {r["sender_id"]: r for r in rows(store, db.replies)}
    assert replies["U2"]["state"] == "sent", (replies["U2"]["state"], errors)
    assert replies["U3"]["state"] == "sent"  # under way at the stop: finished, and its outcome written
    # Queued behind it, not posted: handed back at once, marked so that the next claim need not look for a post.
    assert (replies["U4"]["state"], replies["U4"]["delivery_state"]) == ("pending", DeliveryState.NOT_POSTED)
    assert replies["U4"]["attempts"] == 0  # a restart mid-batch does not use up one of its attempts
    assert len(fake_slack.calls_to("chat.postMessage")) == 2

    restarted = ReplySender(make_app().services, workers=1)
    assert restarted.drain(now=t0) == 1  # no lease to wait out
    restarted.stop()
    assert [c.params["channel"] for c in fake_slack.calls_to("chat.postMessage")][-1] == dm_channel("U1", "U4")
    assert fake_slack.calls_to("conversations.replies") == []


def test_a_retry_after_a_lost_settle_does_not_post_twice(store, fake_slack, make_app, clock, monkeypatch):
    t0 = clock()
    queue_replies(store, fake_slack, t0, ("U2",))
    sender = ReplySender(make_app().services, workers=1)
    fake_slack.fail("chat.postMessage", status=429, retry_after=1)
    sender.drain(now=t0)  # rate limited: retried in 1 s, last_error="ratelimited"
    real = store.replies.settle

    def down(outcomes, **kwargs):
        raise sa.exc.OperationalError("UPDATE replies", {}, Exception("database is locked"))

    monkeypatch.setattr(store.replies, "settle", down)
    with pytest.raises(sa.exc.OperationalError):
        sender.drain(now=t0 + timedelta(seconds=2))  # posted; the outcome is lost
    monkeypatch.setattr(store.replies, "settle", real)
    sender.drain(now=t0 + timedelta(seconds=2 + 61))  # the lease is over
    sender.stop()
    assert len(fake_slack.posts()) == 1, f"posted {len(fake_slack.posts())} times"  # Slack carried out


def test_a_stop_keeps_an_unknown_outcome_unknown(store, fake_slack, make_app, clock):
    """A reply whose earlier attempt may have posted (its process died mid-send) is queued behind a slow post when
    the sender stops: it is handed back as still unknown, so the next claim looks for the post before posting."""
    t0 = clock()
    queue_replies(store, fake_slack, t0, ("U2", "U3", "U4"))
    with store.engine.begin() as conn:  # U4's reply: claimed once already, by a process that never came back
        conn.execute(
            db.replies.update()
            .where(db.replies.c.sender_id == "U4")
            .values(attempts=1, delivery_state=DeliveryState.IN_FLIGHT)
        )
    sender = ReplySender(make_app().services, workers=1)
    fake_slack.fail("chat.postMessage", delay=1.0)  # the first post is slow; the stop comes while it waits
    worker = threading.Thread(target=sender.drain, kwargs={"now": t0})
    worker.start()
    fake_slack.wait_for("chat.postMessage", 1)
    sender.stop(timeout=0.1)
    worker.join()
    replies = {r["sender_id"]: r for r in rows(store, db.replies)}
    assert (replies["U4"]["state"], replies["U4"]["delivery_state"]) == ("pending", DeliveryState.OUTCOME_UNKNOWN)
    assert replies["U3"]["delivery_state"] == DeliveryState.NOT_POSTED  # its only attempt never reached Slack

    restarted = ReplySender(make_app().services, workers=1)
    restarted.drain(now=t0)
    restarted.stop()
    lookups = [c.params["channel"] for c in fake_slack.calls_to("conversations.replies")]
    assert lookups == [dm_channel("U1", "U4")]  # looked for U4's post first; U3's went straight out


def test_a_batch_claimed_just_before_a_stop_is_handed_back_not_left_claimed(store, fake_slack, make_app, clock):
    """stop() can land between drain's check and its posting (SIGTERM at any instant): the batch it had claimed
    goes back as not posted, due at once, instead of waiting out the lease and a rate-limited lookup."""
    t0 = clock()
    queue_replies(store, fake_slack, t0, ("U2", "U3"))
    sender = ReplySender(make_app().services, workers=1)
    batch = store.replies.claim_due(now=t0)
    sender.stop()  # the pool is shut down now
    assert sender.send_batch(batch, now=t0) == 0
    assert fake_slack.calls_to("chat.postMessage") == []
    replies = {r["sender_id"]: r for r in rows(store, db.replies)}
    assert {(r["state"], r["delivery_state"], r["next_attempt_at"]) for r in replies.values()} == {
        ("pending", DeliveryState.NOT_POSTED, t0)
    }


def test_a_batch_whose_lease_ran_out_never_posts_a_reply_another_worker_has_claimed(store, fake_slack, make_app, clock):
    """The first post of a batch is slow; the rest of the batch waits in the pool while its 60 s lease runs out.
    Another worker claims them (the lease is over) and posts them. Right before each post the first worker
    re-checks its claim in the database, finds it lost, and posts nothing: each reply goes out once."""
    t0 = clock()
    queue_replies(store, fake_slack, t0, ("U2", "U3", "U4"))
    app = make_app()
    a = ReplySender(app.services, workers=1)  # this process: its batch posts one by one
    b = ReplySender(app.services, workers=1)  # another process
    slow = threading.Event()
    fake_slack.fail("chat.postMessage", delay=1.0)  # U2's post: Slack is slow
    first = threading.Thread(target=lambda: (a.drain(now=t0), slow.set()))
    first.start()
    fake_slack.wait_for("chat.postMessage", 1)  # U2's post is under way; U3's and U4's wait behind it
    clock.advance(seconds=61)  # the lease is over while it waits
    b.drain(now=clock())  # the other worker claims U3 and U4 (and U2, whose outcome it does not know yet)
    first.join()
    a.stop()
    b.stop()
    for recipient in ("U3", "U4"):
        channel = dm_channel("U1", recipient)
        posts = [c for c in fake_slack.calls_to("chat.postMessage") if c.params["channel"] == channel]
        assert len(posts) == 1, f"{recipient} got the auto-reply {len(posts)} times"
    replies = {r["sender_id"]: r for r in rows(store, db.replies)}
    assert {replies[s]["state"] for s in ("U3", "U4")} == {"sent"}
    assert {replies[s]["attempts"] for s in ("U3", "U4")} == {2}  # the other worker's claim


def test_a_claim_past_half_its_lease_is_extended_when_it_still_holds(store, fake_slack, make_app, clock):
    """Nobody re-claimed it: the re-check extends the lease in the database and the reply is posted."""
    t0 = clock()
    queue_replies(store, fake_slack, t0, ("U2",))
    sender = ReplySender(make_app().services, workers=1)
    [claim] = store.replies.claim_due(now=t0)
    clock.advance(seconds=45)  # past half the lease: the database decides
    assert sender.send_batch([claim], now=t0) == 1
    sender.stop()
    [reply] = rows(store, db.replies)
    assert (reply["state"], reply["delivery_state"], reply["attempts"]) == ("sent", DeliveryState.SENT, 1)
    assert len(fake_slack.calls_to("chat.postMessage")) == 1


def test_a_clock_stepped_back_does_not_hide_how_long_a_claim_has_been_held(store, fake_slack, make_app, clock):
    """This process's wall clock was stepped back (NTP) while its claim waited: by that clock the claim is fresh,
    with more than half its lease left, so the re-check would be skipped. Another process, whose clock is right,
    has claimed the reply since and posted it. The time held is also read from the monotonic clock: the re-check
    runs, finds the claim lost, and the reply goes out once."""
    t0 = clock()
    queue_replies(store, fake_slack, t0, ("U2",))
    app = make_app()
    a, b = ReplySender(app.services, workers=1), ReplySender(app.services, workers=1)
    [claim] = store.replies.claim_due(now=t0)
    assert b.drain(now=t0 + timedelta(seconds=61)) == 1  # the lease is over by B's clock: B takes it and posts
    held = [70.0, 0.0]  # monotonic: 0 at the batch's hand-over, 70 s later at the re-check
    a.engine.monotonic = lambda: held.pop() if len(held) > 1 else held[0]
    assert a.send_batch([claim], now=t0) == 0  # A's wall clock still reads t0
    a.stop()
    b.stop()
    assert len(fake_slack.calls_to("chat.postMessage")) == 1
    [reply] = rows(store, db.replies)
    assert (reply["state"], reply["attempts"]) == ("sent", 2)


def test_a_claim_re_check_the_database_cannot_answer_posts_nothing_and_hands_the_reply_back(
    store, fake_slack, make_app, clock, monkeypatch
):
    """The re-check before the post fails (the database is gone for a moment): the reply is not posted, and it is
    handed back as certainly not posted, untried, due at once, so the next claim sends it without a lookup (an
    ephemeral reply left "maybe posted" would never be sent)."""
    t0 = clock()
    queue_replies(store, fake_slack, t0, ("U2",))
    sender = ReplySender(make_app().services, workers=1)
    [claim] = store.replies.claim_due(now=t0)
    clock.advance(seconds=45)  # past half the lease: the database is asked

    def unreachable(*_args, **_kwargs):
        raise sa.exc.OperationalError("UPDATE auto_replies ...", {}, ConnectionRefusedError("refused"))

    monkeypatch.setattr(store.replies, "renew", unreachable)
    assert sender.send_batch([claim], now=t0) == 0
    assert fake_slack.calls_to("chat.postMessage") == []
    [reply] = rows(store, db.replies)
    assert (reply["state"], reply["delivery_state"], reply["attempts"]) == ("pending", DeliveryState.NOT_POSTED, 0)
    monkeypatch.undo()
    assert sender.drain(now=clock()) == 1  # sent at once, without looking for an earlier post
    sender.stop()
    assert fake_slack.calls_to("conversations.replies") == []
    assert len(fake_slack.calls_to("chat.postMessage")) == 1


def _unreachable(*_args, **_kwargs):
    raise sa.exc.OperationalError("SELECT ...", {}, ConnectionRefusedError("refused"))


def test_a_batch_whose_reads_fail_goes_back_with_a_backoff_not_held_until_its_lease_ends(
    store, fake_slack, make_app, clock, monkeypatch
):
    """The batch's reads (settings, tokens, lists) fail: nothing is posted, and every claim goes back as certainly
    not posted, due after the usual backoff (10 s), not after the 60 s lease; the next pass then sends them without
    looking for an earlier post."""
    t0 = clock()
    queue_replies(store, fake_slack, t0, ("U2", "U3"))
    sender = ReplySender(make_app().services, workers=1)
    batch = store.replies.claim_due(now=t0)
    monkeypatch.setattr(store.exceptions, "pairs", _unreachable)
    assert sender.send_batch(batch, now=t0) == 0
    assert fake_slack.calls_to("chat.postMessage") == []
    handed_back = {(r["state"], r["delivery_state"], r["attempts"], r["next_attempt_at"], r["last_error"])
                   for r in rows(store, db.replies)}  # fmt: skip
    assert handed_back == {("pending", DeliveryState.NOT_POSTED, 1, t0 + timedelta(seconds=10), "prepare_failed")}
    monkeypatch.undo()
    assert sender.drain(now=t0 + timedelta(seconds=9)) == 0  # not yet due
    assert sender.drain(now=t0 + timedelta(seconds=10)) == 2
    sender.stop()
    assert fake_slack.calls_to("conversations.replies") == []
    assert sorted(c.params["channel"] for c in fake_slack.calls_to("chat.postMessage")) == sorted(
        dm_channel("U1", u) for u in ("U2", "U3")
    )


def test_one_reply_whose_reads_always_fail_holds_back_no_other(store, fake_slack, make_app, clock, monkeypatch):
    """One row's reads keep failing (a token the key cannot decrypt, a bug on one person's data): the others of its
    batch, and every DM queued after it, are sent all the same; it is retried with a growing backoff."""
    t0 = clock()
    queue_replies(store, fake_slack, t0, ("U2", "U3"))
    real = store.exceptions.pairs

    def pairs(team_id, recipients, senders):
        if "U2" in senders:
            raise ValueError("a bug in U2's row")
        return real(team_id, recipients, senders)

    monkeypatch.setattr(store.exceptions, "pairs", pairs)
    sender = ReplySender(make_app().services, workers=1)
    assert sender.drain(now=t0) == 1  # U3's, in the same pass
    fake_slack.add_user("U4")
    ts = f"{t0.timestamp() + 20:.6f}"
    store.inbox.record(IncomingRecord(
        team_id="T1", recipient_id="U1", sender_id="U4", channel_id=dm_channel("U1", "U4"), ts=ts, thread_ts=ts,
        received_at=t0, due_at=t0 + timedelta(hours=10), text=None, window_key="w", reply=True,
    ), now=t0 + timedelta(seconds=10))  # fmt: skip
    assert sender.drain(now=t0 + timedelta(seconds=10)) == 1  # U4's, claimed with U2's retry
    sender.stop()
    assert sorted(c.params["channel"] for c in fake_slack.calls_to("chat.postMessage")) == sorted(
        dm_channel("U1", u) for u in ("U3", "U4")
    )
    [u2] = [r for r in rows(store, db.replies) if r["sender_id"] == "U2"]
    assert (u2["state"], u2["attempts"], u2["next_attempt_at"]) == ("pending", 2, t0 + timedelta(seconds=30))


def test_a_batch_whose_reads_and_hand_back_both_fail_is_sent_once_its_lease_ends(
    store, fake_slack, make_app, clock, monkeypatch
):
    """The database is gone for the hand-back too: the claims stay held, and the lease frees them (never lost)."""
    t0 = clock()
    queue_replies(store, fake_slack, t0, ("U2",))
    sender = ReplySender(make_app().services, workers=1)
    batch = store.replies.claim_due(now=t0)
    monkeypatch.setattr(store.exceptions, "pairs", _unreachable)

    def settle_unreachable(*_args, **_kwargs):
        raise sa.exc.OperationalError("UPDATE ...", {}, TimeoutError("timed out"))

    monkeypatch.setattr(sender.engine.kind, "settle_all", settle_unreachable)
    with pytest.raises(sa.exc.OperationalError, match="timed out"):
        sender.send_batch(batch, now=t0)
    monkeypatch.undo()
    assert sender.drain(now=t0 + timedelta(seconds=11)) == 0  # still claimed
    assert sender.drain(now=t0 + timedelta(seconds=61)) == 1  # the lease is over
    sender.stop()
    assert len(fake_slack.calls_to("chat.postMessage")) == 1


def test_the_next_batch_is_claimed_while_the_previous_one_posts_and_never_a_third(store, fake_slack, make_app, clock):
    """Two batches in flight: the claim and compose of the next do not wait for the posts of the one before (the
    posting threads would idle through them), but a third claim waits until the first batch is settled."""
    t0 = clock()
    senders = [f"U{n}" for n in range(10, 22)]  # 12 replies: three batches of 4 (one posting thread)
    queue_replies(store, fake_slack, t0, senders)
    sender = ReplySender(make_app().services, workers=1)
    assert sender.kind.batch_size == 4
    posted: list[str] = []
    claims_at: list[int] = []  # how many posts had returned at each claim
    second_claim, release = threading.Event(), threading.Event()
    claim_due, post = sender.store.replies.claim_due, sender.kind.client.chat_postMessage

    def claiming(**kwargs):
        claims_at.append(len(posted))
        if len(claims_at) == 2:
            second_claim.set()
        return claim_due(**kwargs)

    def posting(**kwargs):
        release.wait(timeout=10)  # the first post is held until the second claim is seen
        response = post(**kwargs)
        posted.append(kwargs["channel"])
        return response

    sender.store.replies.claim_due = claiming
    sender.kind.client.chat_postMessage = posting
    worker = threading.Thread(target=sender.drain, kwargs={"now": t0})
    worker.start()
    try:
        assert second_claim.wait(timeout=10), "the second batch waited for the first one's posts"
    finally:
        release.set()
        worker.join()
    sender.stop()
    assert claims_at[:2] == [0, 0]
    assert claims_at[2] >= 4  # the third claim came after the first batch's four posts
    assert sorted(posted) == sorted(dm_channel("U1", s) for s in senders)  # each reply once
    assert {r["state"] for r in rows(store, db.replies)} == {"sent"}
