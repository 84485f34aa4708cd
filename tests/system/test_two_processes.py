"""Process test on PostgreSQL: two web processes and two schedulers on one database, under a storm of redeliveries.

Every DM reaches BOTH `python -m bot web` processes several times at once (the same event_id, the copies marked
with x-slack-retry-num), while two `python -m bot scheduler` processes run their reply safety net beside them.
Exactly one record and one auto-reply per message must come out (counted at the fake Slack), then, when the
recaps are due, exactly one recap per person and window, none lost. The recaps are ticked by two RecapSenders
in threads of this process, each on its own Store (its own connection pool), at an injected instant after the
due time: the scheduler processes read the real clock, and the recaps are days away by it.

One of the few process tests (`pytest -k process`); it needs PostgreSQL (TEST_DATABASE_URL), which is what
"several processes" means in production: SQLite is for one process.
"""

from __future__ import annotations

import os
import re
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from bot.storage import db
from bot.storage.store import Store
from tests.support.helpers import block_text
from tests.support.processes import (
    CLIENT_ID,
    BotProcess,
    after_hours_dms,
    free_port,
    process_env,
    processes,
    recap_sender,
    reply_states,
    wait_until,
    write_config,
)
from tests.support.slackhttp import SlackHTTP

pytestmark = pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql"),
    reason="two processes on one database need PostgreSQL: set TEST_DATABASE_URL=postgresql+psycopg://...",
)

RECIPIENTS = tuple(f"R{n:02d}" for n in range(10))
SENDERS_PER_RECIPIENT = 5  # 10 x 5 = 50 DMs, each from its own sender, so each deserves its own reply
COPIES = 4  # each DM delivered 4 times, alternating between the two web processes


def log_lines(started: list[BotProcess], needle: str) -> list[str]:
    return [line for p in started for line in p.log_path.read_text(errors="replace").splitlines() if needle in line]


def test_process_storm_on_two_web_processes_and_two_schedulers_replies_and_recaps_once(store, fake_slack, tmp_path):
    now = datetime.now(UTC)
    dms = after_hours_dms(store, fake_slack, RECIPIENTS, senders_per_recipient=SENDERS_PER_RECIPIENT, now=now)
    # A slow Slack for the first posts: replies stay claimed while the other senders look for work.
    fake_slack.fail("chat.postMessage", times=10, delay=0.3)

    config_path = write_config(tmp_path / "config.yaml", poll_seconds=1)
    with processes() as started:
        for n in (1, 2):
            env = process_env(
                database_url=store.url, slack_api_url=fake_slack.base_url, config_path=config_path, port=free_port()
            )
            started.append(BotProcess("scheduler", env=env, log_path=tmp_path / f"scheduler-{n}.log").start())
        webs = []
        for n in (1, 2):
            port = free_port()
            env = process_env(
                database_url=store.url, slack_api_url=fake_slack.base_url, config_path=config_path, port=port
            )
            web = BotProcess("web", env=env, log_path=tmp_path / f"web-{n}.log", port=port).start()
            started.append(web)
            webs.append(web)
        for web in webs:
            web.wait_healthy()
        clients = [SlackHTTP(web.url) for web in webs]

        def deliver(job: tuple[int, int]) -> int:
            i, copy = job
            recipient, sender, _, ts = dms[i]
            return (
                clients[copy % 2]
                .dm(sender=sender, recipient=recipient, ts=ts, event_id=f"EvStorm{i:03d}", retry_num=copy or None)
                .status
            )

        # The copies of one event are submitted one after the other, so they run at the same moment.
        jobs = [(i, copy) for i in range(len(dms)) for copy in range(COPIES)]
        with ThreadPoolExecutor(max_workers=32) as pool:
            statuses = list(pool.map(deliver, jobs))
        assert Counter(statuses) == {200: len(jobs)}, [w.log_tail() for w in webs]

        fake_slack.wait_for("chat.postMessage", len(dms), timeout=60)
        wait_until(lambda: reply_states(store) == ["sent"] * len(dms), timeout=60, what="every reply marked sent")
        for process in started:
            assert process.proc.poll() is None, f"{process.command} died:\n{process.log_tail()}"
    # All four stopped (SIGTERM): any reply still in a sender's hands would have been posted by now.

    with store.engine.connect() as conn:
        recorded = conn.execute(sa.select(db.messages.c.channel_id, db.messages.c.ts)).all()
    assert sorted(recorded) == sorted((channel, f"{ts:.6f}") for _, _, channel, ts in dms)  # one record each
    assert reply_states(store) == ["sent"] * len(dms)
    assert {channel: fake_slack.post_counts[channel] for _, _, channel, _ in dms} == {
        channel: 1 for _, _, channel, _ in dms
    }
    assert len(fake_slack.calls_to("chat.postMessage")) == len(dms)  # and no other post at all
    assert fake_slack.calls_to("users.info") == []  # nothing asked about the senders
    # What the web processes logged: each event recorded once, every other copy seen as the duplicate it is.
    events = [
        re.search(r"outcome=(\S+) .* retry=(\d+)", line).groups() for line in log_lines(webs, "event type=message")
    ]
    assert Counter(outcome for outcome, _ in events) == {"replied": len(dms), "duplicate": len(dms) * (COPIES - 1)}
    assert Counter(retry for _, retry in events) == {str(copy): len(dms) for copy in range(COPIES)}

    # The recaps are due: two schedulers, each with its own Store, tick at once, then again.
    with store.engine.connect() as conn:
        due = conn.execute(sa.select(sa.func.max(db.messages.c.due_at))).scalar_one()
    at = due + timedelta(minutes=1)
    fake_slack.reset_calls()
    stores = [Store(store.url, client_id=CLIENT_ID) for _ in range(2)]
    try:
        senders = [recap_sender(s, fake_slack, at=at) for s in stores]
        barrier = threading.Barrier(len(senders))
        sent: list[int] = []

        def tick(sender) -> None:
            barrier.wait()
            for _ in range(3):
                sent.append(sender.tick(at))

        threads = [threading.Thread(target=tick, args=(sender,)) for sender in senders]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        for s in stores:
            s.close()
    assert sum(sent) == len(RECIPIENTS)
    recaps = fake_slack.calls_to("chat.postMessage")
    assert Counter(p.params["channel"] for p in recaps) == dict.fromkeys(RECIPIENTS, 1)
    for post in recaps:
        text = block_text(post.params["blocks"])
        senders_of = [sender for recipient, sender, _, _ in dms if recipient == post.params["channel"]]
        assert all(f"<@{s}>" in text for s in senders_of), text
    with store.engine.connect() as conn:
        states = dict(conn.execute(sa.select(db.messages.c.state, sa.func.count()).group_by(db.messages.c.state)).all())
        recap_rows = conn.execute(sa.select(db.recaps.c.user_id, db.recaps.c.due_at, db.recaps.c.state)).all()
        per_recap = conn.execute(
            sa.select(db.messages.c.recipient_id, db.messages.c.recap_id, sa.func.count()).group_by(
                db.messages.c.recipient_id, db.messages.c.recap_id
            )
        ).all()
    assert states == {"recapped": len(dms)}  # none lost
    assert sorted((user, state) for user, _, state in recap_rows) == [(r, "sent") for r in RECIPIENTS]
    assert {due_at for _, due_at, _ in recap_rows} == {due}  # one window, one recap per person
    assert sorted((r, n) for r, _, n in per_recap) == [(r, SENDERS_PER_RECIPIENT) for r in RECIPIENTS]
