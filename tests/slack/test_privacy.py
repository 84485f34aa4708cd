"""What Offhours keeps about people, for how long, how `/hours forget` erases it, and that nobody can touch
anybody else's data through a command, a Home action or a recap button.

The clock starts on Tue 3 Mar 2026 22:00 in New York. U1 and U3 are connected (New York, default hours);
U2 is a sender known to Slack.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from bot.config import Config
from bot.slack.blocks import home as home_ui
from bot.slack.blocks.recap import DONE_ACTION
from bot.storage import db
from bot.storage.inbox import IncomingRecord
from bot.storage.store import Store
from bot.workers.recaps import RecapSender
from bot.workers.replies import ReplySender
from bot.workers.scheduler import PURGE_JOB_ID, start_scheduler
from tests.support.helpers import RunningServer, connect, connected, person_snapshot, rows
from tests.support.slackhttp import SlackHTTP, dm_channel

DUE = datetime(2026, 3, 4, 14, 0, tzinfo=UTC)  # Wed 09:00 EST: U1's and U3's recaps
PERSON_COLUMNS = ("user_id", "recipient_id", "sender_id", "user_a", "user_b", "installer_user_id")


@pytest.fixture
def two(store, fake_slack):
    for user in ("U1", "U3"):
        connect(store, fake_slack, user, tz="America/New_York")
    fake_slack.add_user("U2", tz="Europe/Rome")
    fake_slack.dm_members[dm_channel("U1", "U3")] = ("U1", "U3")


@pytest.fixture
def senders(offhours) -> Iterator[ReplySender]:
    sender = ReplySender(offhours.services)
    yield sender
    sender.stop(timeout=5)


def mentions(store: Store, user_id: str) -> dict[str, int]:
    """Rows of any table, Bolt's included, that name `user_id` in a person column."""
    found = {}
    with store.engine.connect() as conn:
        for table in db.metadata.sorted_tables:
            columns = [table.c[name] for name in PERSON_COLUMNS if name in table.c]
            if not columns:
                continue
            n = conn.execute(
                sa.select(sa.func.count()).select_from(table).where(sa.or_(*(c == user_id for c in columns)))
            ).scalar_one()
            if n:
                found[table.name] = n
    return found


# --- message text ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("include_text", [False, True])
def test_message_text_is_stored_only_with_include_text(include_text, make_app, store, fake_slack, clock, two):
    app = make_app(recap=replace(Config().recap, include_text=include_text))
    server = RunningServer(app)
    try:
        slack = SlackHTTP(server.url)
        assert slack.dm(sender="U2", recipient="U1", ts=clock().timestamp(), text="salary figures").status == 200
    finally:
        server.close()
    [message] = rows(store, db.messages)
    assert message["text"] == ("salary figures" if include_text else None)
    with store.engine.connect() as conn:  # and nowhere else in the database either
        for table in db.metadata.sorted_tables:
            for column in table.c:
                if isinstance(column.type, sa.String | sa.Text) and not (
                    table is db.messages and column.name == "text"
                ):
                    hits = conn.execute(
                        sa.select(sa.func.count()).select_from(table).where(column.like("%salary figures%"))
                    ).scalar_one()
                    assert hits == 0, f"{table.name}.{column.name}"


# --- retention ------------------------------------------------------------------------------------------------


def seed(store: Store, *, recipient: str, sender: str, at: datetime, text: str | None = "kept text") -> int:
    ts = f"{at.timestamp():.6f}"
    connected(store, recipient, now=at)
    outcome = store.inbox.record(
        IncomingRecord(team_id="T1", recipient_id=recipient, sender_id=sender, channel_id=dm_channel(recipient, sender),
                       ts=ts, thread_ts=ts, received_at=at, due_at=at + timedelta(hours=8), text=text,
                       window_key=f"w{ts}", reply=True),
        now=at,
    )  # fmt: skip
    assert outcome == "replied"
    with store.engine.connect() as conn:
        return conn.execute(sa.select(db.messages.c.id).where(db.messages.c.ts == ts)).scalar_one()


def set_state(store: Store, table: sa.Table, row_id: int, **values) -> None:
    with store.engine.begin() as conn:
        conn.execute(table.update().where(table.c.id == row_id).values(**values))


def test_purge_removes_finished_records_and_strips_old_text_but_keeps_waiting_messages(store, clock):
    now = clock()
    old, recent = now - timedelta(days=15), now - timedelta(days=13)
    waiting_old = seed(store, recipient="U1", sender="U2", at=old)
    answered_old = seed(store, recipient="U1", sender="U3", at=old + timedelta(minutes=1))
    done_old = seed(store, recipient="U1", sender="U4", at=old + timedelta(minutes=2))
    answered_recent = seed(store, recipient="U1", sender="U5", at=recent)
    waiting_recent = seed(store, recipient="U1", sender="U6", at=recent + timedelta(minutes=1))
    set_state(store, db.messages, answered_old, state="answered")
    set_state(store, db.messages, answered_recent, state="answered")
    replies = {r["sender_id"]: r["id"] for r in rows(store, db.replies)}
    set_state(store, db.replies, replies["U3"], state="sent")
    set_state(store, db.replies, replies["U4"], state="failed")
    set_state(store, db.replies, replies["U5"], state="sent")
    # U4's old message went out in a recap long ago and was ticked off; a recap still pending is kept.
    with store.engine.begin() as conn:
        sent = conn.execute(
            db.recaps.insert().values(
                team_id="T1", user_id="U1", due_at=old + timedelta(hours=8), seq=0, state="sent", next_attempt_at=old
            )
        ).inserted_primary_key[0]
        conn.execute(
            db.recaps.insert().values(
                team_id="T1", user_id="U7", due_at=old, seq=0, state="pending", next_attempt_at=now
            )
        )
        conn.execute(db.profiles.insert().values(team_id="T1", user_id="U2", tz="Europe/Rome", fetched_at=old))
        conn.execute(db.profiles.insert().values(team_id="T1", user_id="U3", tz="Asia/Tokyo", fetched_at=recent))
    set_state(store, db.messages, done_old, state="done", recap_id=sent)

    removed = store.purge_expired(now=now, days=14)

    kept = {m["id"]: m for m in rows(store, db.messages)}
    assert set(kept) == {waiting_old, answered_recent, waiting_recent}
    assert kept[waiting_old]["state"] == "pending" and kept[waiting_old]["text"] is None  # waits, without its text
    assert kept[answered_recent]["text"] == "kept text" and kept[waiting_recent]["text"] == "kept text"
    assert {r["sender_id"]: r["state"] for r in rows(store, db.replies)} == {"U2": "pending", "U5": "sent",
                                                                              "U6": "pending"}  # fmt: skip
    assert [(r["user_id"], r["state"]) for r in rows(store, db.recaps)] == [("U7", "pending")]
    assert [p["user_id"] for p in rows(store, db.profiles)] == ["U3"]
    assert removed == 2 + 2 + 1 + 1
    assert store.purge_expired(now=now, days=14) == 0  # idempotent


def test_the_scheduler_runs_the_retention_job_with_the_configured_days(make_app, store, clock):
    app = make_app(retention_days=3)
    finished = seed(store, recipient="U1", sender="U2", at=clock() - timedelta(days=4))
    waiting = seed(store, recipient="U1", sender="U3", at=clock() - timedelta(days=4, minutes=1))
    set_state(store, db.messages, finished, state="answered")
    scheduler = start_scheduler(app.services, replies=ReplySender(app.services), start=False)
    job = scheduler.get_job(PURGE_JOB_ID)
    assert job is not None and job.trigger.interval == timedelta(hours=1)

    job.func()

    [message] = rows(store, db.messages)
    assert (message["id"], message["text"]) == (waiting, None)


# --- /hours forget -------------------------------------------------------------------------------------------


def test_forget_erases_every_row_that_names_the_caller_and_revokes_their_token(
    two, slack, store, fake_slack, clock, offhours, senders
):
    # U1 receives (U2 -> U1), sends (U1 -> U3, seen through U1's token: the DM's members get cached), gets a recap,
    # and has their profile zone cached, as the OAuth callback does when they connect.
    assert offhours.services.profiles.timezone("T1", "U1", token=store.bot_token("T1")) == "America/New_York"
    assert slack.dm(sender="U2", recipient="U1", ts=clock().timestamp()).status == 200
    assert slack.dm(sender="U1", recipient="U3", ts=clock().timestamp() + 1, authorized="U1").status == 200
    assert senders.drain(now=clock()) == 2
    assert RecapSender(offhours.services).tick(DUE) == 2
    clock.set(DUE + timedelta(hours=1))
    assert slack.command("tz Europe/Rome", user="U1").status == 200
    before = mentions(store, "U1")
    assert {"people", "after_hours_messages", "auto_replies", "recaps", "profiles", "dm_channels",
            "slack_installations"} <= set(before), before  # fmt: skip
    others = mentions(store, "U3")

    response = slack.command("forget", user="U1")

    assert response.status == 200 and "deleted" in response.text
    [revoke] = fake_slack.calls_to("auth.revoke")
    assert revoke.token == "xoxp-T1-U1"
    assert mentions(store, "U1") == {}
    assert store.user_token("T1", "U1") is None
    # U3 keeps their own connection, settings and recap; only rows naming U1 went.
    assert store.user_token("T1", "U3") == "xoxp-T1-U3"
    assert person_snapshot(store, "U3") is not None
    assert [r["user_id"] for r in rows(store, db.recaps)] == ["U3"]
    assert set(mentions(store, "U3")) >= {"people", "recaps", "slack_installations"}
    assert others  # (for the record: what U3 had before)


# --- authorization ---------------------------------------------------------------------------------------------


def test_a_persons_commands_change_only_their_own_data(two, slack, store, clock):
    assert slack.dm(sender="U2", recipient="U1", ts=clock().timestamp()).status == 200
    u1_before, u1_messages = person_snapshot(store, "U1"), rows(store, db.messages)
    for text in ("set mon-fri 10-16", "tz Asia/Tokyo", "message Away, back {back_at}", "reply 1h",
                 "off 2026-12-24", "pause", "forget"):  # fmt: skip
        assert slack.command(text, user="U3").status == 200
    assert person_snapshot(store, "U1") == u1_before
    assert rows(store, db.messages) == u1_messages
    assert store.user_token("T1", "U1") == "xoxp-T1-U1"


def interaction(user: str, **rest) -> dict:
    return {"team": {"id": "T1", "domain": "example"}, "user": {"id": user, "team_id": "T1"}, "api_app_id": "A1",
            "token": "legacy", "trigger_id": "t.1", **rest}  # fmt: skip


def test_home_actions_change_only_the_clicker_whatever_the_payload_says(two, slack, store, fake_slack):
    u1_before = person_snapshot(store, "U1")
    home_view = {"id": "VHOME", "type": "home", "callback_id": "", "private_metadata": json.dumps({"user": "U1"}),
                 "blocks": []}  # fmt: skip
    pause = interaction("U3", type="block_actions", container={"type": "view", "view_id": "VHOME"}, view=home_view,
                        actions=[{"type": "button", "action_id": home_ui.PAUSE_ACTION, "block_id": "b",
                                  "value": "U1", "action_ts": "1.1"}])  # fmt: skip
    assert slack.interaction(pause).status == 200
    values = {
        home_ui.MESSAGE_BLOCK: {home_ui.VALUE_ACTION: {"type": "plain_text_input", "value": "Hijacked {back_at}"}}
    }
    submit = interaction("U3", type="view_submission",
                         view={"id": "VM", "type": "modal", "callback_id": home_ui.MESSAGE_VIEW,
                               "private_metadata": json.dumps({"user": "U1", "team": "T1"}),
                               "state": {"values": values}, "blocks": []})  # fmt: skip
    assert slack.interaction(submit).status == 200
    # An unconnected person forging the same gets nothing saved at all.
    stranger = dict(submit, user={"id": "U9", "team_id": "T1"})
    assert slack.interaction(stranger).status == 200

    assert person_snapshot(store, "U1") == u1_before
    u3 = person_snapshot(store, "U3")
    assert u3["paused"] and u3["message"] == "Hijacked {back_at}"
    assert person_snapshot(store, "U9") is None
    assert {c.params["user_id"] for c in fake_slack.calls_to("views.publish")} <= {"U3", "U9"}


def done(slack: SlackHTTP, *, user: str, value: str) -> None:
    payload = interaction(user, type="block_actions",
                          container={"type": "message", "message_ts": "1.2", "channel_id": user},
                          channel={"id": user}, message={"type": "message", "ts": "1.2", "text": "recap"},
                          actions=[{"type": "button", "action_id": DONE_ACTION, "block_id": "b1", "value": value,
                                    "action_ts": "1.3"}])  # fmt: skip
    assert slack.interaction(payload).status == 200


def test_a_forged_done_click_changes_nobody_elses_recap(two, slack, store, fake_slack, clock, offhours):
    with_u2_for_u1, with_u2_for_u3 = dm_channel("U1", "U2"), dm_channel("U3", "U2")
    slack.dm(sender="U2", recipient="U1", ts=clock().timestamp())
    slack.dm(sender="U2", recipient="U3", ts=clock().timestamp() + 1)
    assert RecapSender(offhours.services).tick(DUE) == 2
    recap = {r["user_id"]: r["id"] for r in rows(store, db.recaps)}
    before = rows(store, db.messages)

    done(slack, user="U3", value=f"{recap['U1']}:{with_u2_for_u1}")  # U1's recap, U1's conversation
    done(slack, user="U3", value=f"{recap['U3']}:{with_u2_for_u1}")  # U3's recap, a conversation not in it
    done(slack, user="U3", value=f"{recap['U1']}:{with_u2_for_u3}")
    done(slack, user="U3", value=f"-{recap['U1']}:{with_u2_for_u1}")
    done(slack, user="U3", value=f"{recap['U1']} OR 1=1:{with_u2_for_u1}")

    assert rows(store, db.messages) == before
    # At most U3's own recap was re-rendered (unchanged); U1's recap message was never touched.
    assert {c.params["channel"] for c in fake_slack.calls_to("chat.update")} <= {"U3"}
    # The owner's own click still works.
    done(slack, user="U1", value=f"{recap['U1']}:{with_u2_for_u1}")
    assert {m["recipient_id"]: m["state"] for m in rows(store, db.messages)} == {"U1": "done", "U3": "recapped"}
