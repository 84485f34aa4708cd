"""Process test: a real `python -m bot web`, killed with SIGKILL right after it acknowledged after-hours DMs.

One of the few tests that start Offhours as its own process (their names start with `test_process_`; run them
alone with `pytest -k process`). The server reads the real clock, so the connected people's hours are chosen
from the real current time: one hour on the weekday three days from now, which makes "now" off-hours for them.

What it proves: an acknowledged DM is in the database before Slack hears 200, and a reply pending at the moment
of the crash is sent by the restarted process exactly once, and the message is in the person's next recap.
The helpers here (`BotProcess`, `process_env`, `off_hours_spec`...) are shared with tests/test_two_processes.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from bot.storage import db
from tests.support.helpers import block_text
from tests.support.processes import (
    BotProcess,
    after_hours_dms,
    clear_failures,
    free_port,
    process_env,
    processes,
    recap_sender,
    reply_states,
    wait_until,
    write_config,
)
from tests.support.recording import RecordingSlack
from tests.support.slackhttp import SlackHTTP

RECIPIENTS = ("R1", "R2", "R3", "R4")
SENDERS_PER_RECIPIENT = 5  # 4 x 5 = 20 after-hours DMs, 20 distinct senders


@pytest.fixture
def fake_slack():
    # Slack keeps what it posted: a post whose answer was lost on a loaded machine is found by the lookup (as it
    # is in Slack), not posted twice because a fake that keeps nothing answered "no such post".
    fake = RecordingSlack().start()
    yield fake
    fake.stop()


# --- the crash ------------------------------------------------------------------------------------------------


def test_process_crash_after_the_acks_loses_nothing_and_replies_once(store, fake_slack, tmp_path):
    now = datetime.now(UTC)
    dms = after_hours_dms(store, fake_slack, RECIPIENTS, senders_per_recipient=SENDERS_PER_RECIPIENT, now=now)
    # Slack is rate-limiting every post at first (Retry-After 30 s): the replies are still pending when the process
    # dies, each tried once or twice at most, far from giving up (MAX_REPLY_ATTEMPTS) however slow the machine.
    fake_slack.fail("chat.postMessage", times=1000, status=429, retry_after=30)

    port = free_port()
    env = process_env(
        database_url=store.url,
        slack_api_url=fake_slack.base_url,
        config_path=write_config(tmp_path / "config.yaml"),
        port=port,
    )
    with processes() as started:
        first = BotProcess("web", env=env, log_path=tmp_path / "web-1.log", port=port).start()
        started.append(first)
        first.wait_healthy()
        slack = SlackHTTP(first.url)
        statuses = [
            slack.dm(sender=sender, recipient=recipient, ts=ts, event_id=f"EvCrash{i:03d}").status
            for i, (recipient, sender, _, ts) in enumerate(dms)
        ]
        first.kill()  # right after the last ack
        assert statuses == [200] * len(dms), first.log_tail()

        # Every acknowledged DM is recorded with its reply queued, and nothing reached Slack.
        with store.engine.connect() as conn:
            recorded = conn.execute(sa.select(db.messages.c.channel_id, db.messages.c.ts)).all()
        assert sorted(recorded) == sorted((channel, f"{ts:.6f}") for _, _, channel, ts in dms)
        assert reply_states(store) == ["pending"] * len(dms)
        assert sum(fake_slack.post_counts.values()) == 0

        # Replies the dead process had claimed keep their lease (REPLY_LEASE, 60 s) and the others their Retry-After.
        # Let that minute pass rather than wait it out: lease expiry itself is unit-tested in test_autoreply.py.
        with store.engine.begin() as conn:
            conn.execute(db.replies.update().values(next_attempt_at=datetime.now(UTC)))
        clear_failures(fake_slack, "chat.postMessage")
        fake_slack.reset_calls()
        restarted = BotProcess("web", env=env, log_path=tmp_path / "web-2.log", port=port).start()
        started.append(restarted)
        restarted.wait_healthy()
        fake_slack.wait_for("chat.postMessage", len(dms), timeout=30)
        wait_until(lambda: reply_states(store) == ["sent"] * len(dms), timeout=30, what="every reply marked sent")
        restarted.stop()  # graceful: its reply sender has nothing left to do

    # Exactly once, in the thread of the DM it answers, with the recipient's own token.
    assert {channel: fake_slack.post_counts[channel] for _, _, channel, _ in dms} == {
        channel: 1 for _, _, channel, _ in dms
    }
    posts = fake_slack.calls_to("chat.postMessage")
    assert len(posts) == len(dms)
    assert fake_slack.calls_to("users.info") == []  # the replies asked Slack nothing about their senders
    expected = {channel: (f"{ts:.6f}", f"xoxp-T1-{recipient}") for recipient, _, channel, ts in dms}
    assert {p.params["channel"]: (p.params["thread_ts"], p.token) for p in posts} == expected

    # The next recap: one per person at the start of their hours, holding every one of their DMs.
    with store.engine.connect() as conn:
        due = conn.execute(sa.select(sa.func.max(db.messages.c.due_at))).scalar_one()
    fake_slack.reset_calls()
    sender = recap_sender(store, fake_slack, at=due + timedelta(minutes=1))
    assert sender.tick(due - timedelta(minutes=1)) == 0  # not before the day starts
    assert sender.tick(due + timedelta(minutes=1)) == len(RECIPIENTS)
    assert sender.tick(due + timedelta(hours=1)) == 0
    recaps = fake_slack.calls_to("chat.postMessage")
    assert sorted(p.params["channel"] for p in recaps) == sorted(RECIPIENTS)
    for post in recaps:
        text = block_text(post.params["blocks"])
        senders = [sender for recipient, sender, _, _ in dms if recipient == post.params["channel"]]
        assert f"{len(senders)} messages in {len(senders)} conversations" in text
        assert all(f"<@{s}>" in text for s in senders), text
    with store.engine.connect() as conn:
        states = conn.execute(sa.select(db.messages.c.state, sa.func.count()).group_by(db.messages.c.state)).all()
        recap_rows = conn.execute(sa.select(db.recaps.c.user_id, db.recaps.c.state)).all()
    assert dict(states) == {"recapped": len(dms)}
    assert sorted(recap_rows) == [(r, "sent") for r in RECIPIENTS]
