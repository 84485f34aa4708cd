"""Process test: a real `python -m bot web` killed with SIGKILL right after it acknowledged an urgent note.

The note is recorded before the modal's ack; Slack is rate-limiting every post when the process dies, so the
note is still pending. The restarted process sends it, exactly once. (Run alone with `pytest -k process`.)
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import sqlalchemy as sa

from bot.slack.blocks import urgent as ui
from bot.storage import schema
from tests.support.processes import (
    BotProcess,
    clear_failures,
    connect_off_now,
    free_port,
    process_env,
    processes,
    wait_until,
    write_config,
)
from tests.support.slackhttp import SlackHTTP, dm_channel


def notice_states(store) -> list[str]:
    with store.engine.connect() as conn:
        return list(conn.execute(sa.select(schema.urgent_notices.c.state)).scalars())


def test_process_crash_after_the_urgent_notes_ack_loses_nothing_and_sends_once(store, fake_slack, tmp_path):
    now = datetime.now(UTC)
    connect_off_now(store, fake_slack, "R1", now=now)
    fake_slack.add_user("S1")
    fake_slack.add_user("B1")
    store.urgent.set_route("T1", "R1", "B1", now=now)
    port = free_port()
    env = process_env(database_url=store.url, slack_api_url=fake_slack.base_url,
                      config_path=write_config(tmp_path / "config.yaml"), port=port)  # fmt: skip
    with processes() as started:
        first = BotProcess("web", env=env, log_path=tmp_path / "web-1.log", port=port).start()
        started.append(first)
        first.wait_healthy()
        slack = SlackHTTP(first.url)
        channel = dm_channel("S1", "R1")
        assert slack.dm(sender="S1", recipient="R1", ts=now.timestamp(), channel=channel).status == 200
        [reply] = fake_slack.wait_for("chat.postMessage", 1, timeout=30)
        [actions] = [b for b in reply.params["blocks"] if b.get("type") == "actions"]
        value = actions["elements"][0]["value"]

        fake_slack.fail("chat.postMessage", times=1000, status=429, retry_after=30)
        click = slack.message_button(user="S1", action_id=ui.URGENT_ACTION, value=value, channel=channel,
                                     response_url=fake_slack.base_url + "response_url")  # fmt: skip
        assert click.status == 200
        fake_slack.wait_for("views.open", 1, timeout=10)
        values = {ui.NOTE_BLOCK: {ui.NOTE_INPUT: {"type": "plain_text_input", "value": "the release is blocked"}}}
        answer = slack.view_submission(user="S1", callback_id=ui.URGENT_VIEW, values=values, private_metadata=value)
        first.kill()  # right after the ack
        assert answer.status == 200 and "Passed on to <@B1>" in json.dumps(answer.json), first.log_tail()
        assert notice_states(store) == ["pending"]

        with store.engine.begin() as conn:  # the lease or Retry-After the dead process left: let it pass
            conn.execute(schema.urgent_notices.update().values(next_attempt_at=datetime.now(UTC)))
        clear_failures(fake_slack, "chat.postMessage")
        fake_slack.reset_calls()
        restarted = BotProcess("web", env=env, log_path=tmp_path / "web-2.log", port=port).start()
        started.append(restarted)
        restarted.wait_healthy()
        wait_until(lambda: notice_states(store) == ["sent"], timeout=30, what="the urgent note marked sent")
        restarted.stop()

    notices = [c for c in fake_slack.calls_to("chat.postMessage") if c.token == "xoxb-T1"]
    assert len(notices) == 1
    assert "the release is blocked" in json.dumps(notices[0].params["blocks"])
