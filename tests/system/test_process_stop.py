"""Process test: `python -m bot` (all in one) runs one reply sender, and SIGTERM hands back what it had claimed.

A real process against the fake Slack, whose chat.postMessage is slow: twenty after-hours DMs are acknowledged, the
reply sender claims them all and starts posting, and the process gets SIGTERM while the posts are under way. Every
reply is then either sent (a post under way finishes) or handed back as not posted and due at once; none is left
claimed. A restarted process sends each of the others exactly once, without first looking for an earlier post.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import sqlalchemy as sa

from bot.domain.delivery import DeliveryState
from bot.storage import db
from tests.support.processes import (
    BotProcess,
    after_hours_dms,
    clear_failures,
    free_port,
    process_env,
    processes,
    reply_states,
    wait_until,
    write_config,
)
from tests.support.slackhttp import SlackHTTP

RECIPIENTS = ("R1", "R2", "R3", "R4")
SENDERS_PER_RECIPIENT = 5  # 20 replies: more than the sender's 8 posting threads, so some wait in its queue
POST_DELAY = 2.0  # seconds each post takes at the fake Slack: SIGTERM comes while the first ones are under way
# The first batch's posts take this long: every other DM is recorded meanwhile (however loaded the machine), so the
# rest are claimed together, in one batch, once the first is settled.
FIRST_POST_DELAY = 8.0


def reply_rows(store) -> list[dict]:
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(db.replies).order_by(db.replies.c.id)).mappings()]


def in_flight(store) -> list[int]:
    """The replies claimed right now (pending, leased)."""
    return [
        r["id"] for r in reply_rows(store) if r["state"] == "pending" and r["delivery_state"] == DeliveryState.IN_FLIGHT
    ]


def test_process_run_has_one_reply_worker_and_sigterm_hands_its_claims_back(store, fake_slack, tmp_path):
    now = datetime.now(UTC)
    dms = after_hours_dms(store, fake_slack, RECIPIENTS, senders_per_recipient=SENDERS_PER_RECIPIENT, now=now)
    fake_slack.fail("chat.postMessage", times=1, delay=FIRST_POST_DELAY)  # slow, then carried out: 200 ok
    fake_slack.fail("chat.postMessage", times=1000, delay=POST_DELAY)
    port = free_port()
    env = process_env(
        database_url=store.url,
        slack_api_url=fake_slack.base_url,
        config_path=write_config(tmp_path / "config.yaml"),
        port=port,
    )
    with processes() as started:
        first = BotProcess("run", env=env, log_path=tmp_path / "run-1.log", port=port).start()
        started.append(first)
        first.wait_healthy()
        slack = SlackHTTP(first.url)
        statuses = [
            slack.dm(sender=sender, recipient=recipient, ts=ts, event_id=f"EvStop{i:03d}").status
            for i, (recipient, sender, _, ts) in enumerate(dms)
        ]
        assert statuses == [200] * len(dms), first.log_tail()

        # The first DM's reply is claimed alone (the sender wakes at once; a loaded machine may have recorded one
        # or two more by then) and takes FIRST_POST_DELAY; the rest are claimed together after it: 8 posting, the
        # others waiting in the sender's queue. Then SIGTERM.
        def second_batch() -> list[int] | None:
            rows = reply_rows(store)
            claimed_now = in_flight(store)
            unclaimed = [r for r in rows if r["delivery_state"] == DeliveryState.QUEUED]
            return claimed_now if claimed_now and not unclaimed and len(claimed_now) > 8 else None

        claimed = wait_until(second_batch, timeout=40, what="the second batch claimed")
        first_batch = len(dms) - len(claimed)
        fake_slack.wait_for("chat.postMessage", first_batch + 1, timeout=30)  # its posts are under way
        first.stop(timeout=30)  # SIGTERM
        assert first.proc is not None and first.proc.returncode == 0, first.log_tail()
        stopped_at = datetime.now(UTC)
        log = first.log_path.read_text()
        assert "Traceback" not in log, log

        # One reply sender in the process, counted from its live objects: the scheduler's job uses the same one.
        [line] = [line for line in log.splitlines() if "runtime started" in line]
        assert re.search(r"parts=home_refresh,http,replies,scheduler reply_workers=1$", line), line

        # Every claimed reply is sent (its post was under way) or handed back: pending, not posted, due at once.
        replies = reply_rows(store)
        assert len(replies) == len(dms)
        assert in_flight(store) == []  # nothing left claimed until a lease runs out
        sent = [r for r in replies if r["state"] == "sent"]
        handed_back = [r for r in replies if r["state"] == "pending"]
        assert len(sent) + len(handed_back) == len(dms)
        assert {r["id"] for r in handed_back} <= set(claimed)
        assert handed_back, "SIGTERM came after every post: the test proves nothing"
        for reply in handed_back:
            assert reply["delivery_state"] == DeliveryState.NOT_POSTED, reply
            assert reply["next_attempt_at"] <= stopped_at, reply
        for reply in sent:
            assert fake_slack.post_counts[reply["channel_id"]] == 1, reply
        assert sum(fake_slack.post_counts.values()) == len(sent)  # nothing handed back reached Slack

        # Restarted, it sends each handed-back reply once, and looks for no earlier post (it knows there is none).
        clear_failures(fake_slack, "chat.postMessage")
        fake_slack.reset_calls()
        restarted = BotProcess("run", env=env, log_path=tmp_path / "run-2.log", port=port).start()
        started.append(restarted)
        restarted.wait_healthy()
        fake_slack.wait_for("chat.postMessage", len(handed_back), timeout=30)
        wait_until(lambda: reply_states(store) == ["sent"] * len(dms), timeout=30, what="every reply marked sent")
        restarted.stop()
        assert restarted.proc is not None and restarted.proc.returncode == 0, restarted.log_tail()

    assert {channel: fake_slack.post_counts[channel] for _, _, channel, _ in dms} == {
        channel: 1 for _, _, channel, _ in dms
    }
    assert len(fake_slack.calls_to("chat.postMessage")) == len(handed_back)
    assert fake_slack.calls_to("conversations.replies") == []
