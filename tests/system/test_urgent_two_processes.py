"""Process test on PostgreSQL: two `python -m bot web` processes send urgent notes, each exactly once.

Ten senders submit their note, alternately to either process (each wakes its own urgent sender), while thirty
more notes are put straight in the database (found by both processes' polls); Slack is slow for the first posts,
so the claims overlap. Every note must reach Slack exactly once. (Run alone with `pytest -k process`.)
"""

from __future__ import annotations

import os
from collections import Counter
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from bot.slack.blocks import urgent as ui
from bot.storage import schema
from bot.storage.urgent import RepliedMessage
from tests.support.processes import (
    BotProcess,
    connect_off_now,
    free_port,
    process_env,
    processes,
    wait_until,
    write_config,
)
from tests.support.slackhttp import SlackHTTP, dm_channel

pytestmark = pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql"),
    reason="two processes on one database need PostgreSQL: set TEST_DATABASE_URL=postgresql+psycopg://...",
)

PEOPLE = tuple(f"R{n}" for n in range(10))


def states(store) -> list[str]:
    with store.engine.connect() as conn:
        return list(conn.execute(sa.select(schema.urgent_notices.c.state)).scalars())


def test_process_two_web_processes_send_each_urgent_note_once(store, fake_slack, tmp_path):
    now = datetime.now(UTC)
    fake_slack.add_user("B1")
    for person in PEOPLE:
        connect_off_now(store, fake_slack, person, now=now)
        store.urgent.set_route("T1", person, "B1", now=now)
    config_path = write_config(tmp_path / "config.yaml")
    with processes() as started:
        webs = []
        for n in (1, 2):
            port = free_port()
            env = process_env(database_url=store.url, slack_api_url=fake_slack.base_url, config_path=config_path,
                              port=port)  # fmt: skip
            webs.append(BotProcess("web", env=env, log_path=tmp_path / f"web-{n}.log", port=port).start())
            started.append(webs[-1])
        for web in webs:
            web.wait_healthy()
        clients = [SlackHTTP(web.url) for web in webs]
        for i, person in enumerate(PEOPLE):
            sender = f"S{i}"
            ts = now.timestamp() + i / 1000
            assert (
                clients[i % 2].dm(sender=sender, recipient=person, ts=ts, channel=dm_channel(sender, person)).status
                == 200
            )
        fake_slack.wait_for("chat.postMessage", len(PEOPLE), timeout=60)
        with store.engine.connect() as conn:
            replies = conn.execute(sa.select(schema.replies.c.id, schema.replies.c.sender_id)).all()
        assert len(replies) == len(PEOPLE)

        fake_slack.fail("chat.postMessage", times=10, delay=0.3)  # slow first posts: the claims overlap
        for n in range(30):  # recorded elsewhere (another process that died, say): found by the polls
            reply = RepliedMessage(id=1000 + n, team_id="T1", recipient_id=PEOPLE[n % 10], sender_id=f"X{n:02d}",
                                   window_key="w", window_end=None, channel_id=f"DX{n:02d}", message_ts="1.0",
                                   thread_ts="1.0", reply_ts=None, state="sent")  # fmt: skip
            assert store.urgent.record(reply, target_id="B1", note=f"note {n}", now=now) is not None
        for i, (reply_id, sender) in enumerate(replies):
            values = {ui.NOTE_BLOCK: {ui.NOTE_INPUT: {"type": "plain_text_input", "value": f"urgent {sender}"}}}
            answer = clients[i % 2].view_submission(user=sender, callback_id=ui.URGENT_VIEW, values=values,
                                                    private_metadata=str(reply_id))  # fmt: skip
            assert answer.status == 200 and answer.json.get("response_action") == "update", answer.text
        wait_until(lambda: states(store) == ["sent"] * 40, timeout=60, what="every urgent note marked sent")
        for web in webs:
            assert web.proc.poll() is None, web.log_tail()

    notices = [c for c in fake_slack.calls_to("chat.postMessage") if c.token == "xoxb-T1"]
    posted = Counter(c.params["metadata"]["event_payload"]["notice_id"] for c in notices)
    with store.engine.connect() as conn:
        ids = [str(i) for i in conn.execute(sa.select(schema.urgent_notices.c.id)).scalars()]
    assert posted == dict.fromkeys(ids, 1)
