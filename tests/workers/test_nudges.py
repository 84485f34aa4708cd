"""Nudges end to end: DMs, replies in the DM and /hours over signed HTTP, the auto-reply and nudge senders driven
with the injected clock, and what reached the fake Slack.

The clock starts on Tue 3 Mar 2026 22:00 in New York. U1 (connected, Mon–Fri 09:00–17:30, reply within 4 h) is
back Wed 09:00 EST, so the auto-reply to U2 promises Wed 13:00 EST (18:00 UTC); the nudge is due 30 working
minutes before, Wed 12:30 EST (17:30 UTC).
"""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from slack_sdk import WebClient
from slack_sdk.models.blocks import Block

from bot.config import Config, NudgeConfig
from bot.services import build_services
from bot.slack.blocks.nudge import NUDGE_DONE_ACTION, NUDGE_SNOOZE_ACTION
from bot.slack.blocks.recap import DONE_ACTION
from bot.storage import schema
from bot.storage.store import Store
from bot.workers.nudges import NudgeSender
from bot.workers.recaps import RecapSender
from bot.workers.replies import ReplySender
from tests.support.helpers import block_text, connect, rows
from tests.support.slackhttp import dm_channel

BOT_TOKEN = "xoxb-T1"
WITH_U2 = dm_channel("U1", "U2")
BACK = datetime(2026, 3, 4, 14, 0, tzinfo=UTC)  # Wed 09:00 EST
PROMISE = datetime(2026, 3, 4, 18, 0, tzinfo=UTC)  # Wed 13:00 EST
DUE = datetime(2026, 3, 4, 17, 30, tzinfo=UTC)  # Wed 12:30 EST


def nudges(store: Store, **where) -> list[dict]:
    return rows(store, schema.nudges, **where)


def nudge_posts(fake) -> list:
    return [c for c in fake.calls_to("chat.postMessage") if "offhours_nudge" in str(c.params.get("metadata"))]


@pytest.fixture
def people(offhours, store, fake_slack):
    connect(store, fake_slack, "U1", tz="America/New_York")
    fake_slack.add_user("U2", tz="Europe/Rome")
    fake_slack.dm_members[WITH_U2] = ("U1", "U2")
    return offhours


@pytest.fixture
def replied(people, slack, clock):
    """A DM from U2 to U1 at the clock's time, and its auto-reply sent; returns the DM's ts."""

    def send(at: datetime | None = None, sender: str = "U2") -> float:
        if at is not None:
            clock.set(at)
        ts = clock().timestamp()
        assert slack.dm(sender=sender, recipient="U1", ts=ts, text="are the numbers ready?").status == 200
        assert ReplySender(people.services).drain(now=clock()) == 1
        return ts

    return send


@pytest.fixture
def tick(people, clock):
    """tick(at) -> how many nudges one scheduler tick at `at` posted."""
    sender = NudgeSender(people.services)

    def run(at: datetime) -> int:
        clock.set(at)
        return sender.tick(at)

    return run


def click(slack, action_id: str, value: str, *, user: str = "U1", message_ts: str = "1772645400.000100") -> None:
    payload = {
        "type": "block_actions", "team": {"id": "T1", "domain": "example"},
        "user": {"id": user, "username": user.lower(), "team_id": "T1"}, "api_app_id": "A1",
        "token": "legacy-verification-token", "trigger_id": "123.456.abc",
        "container": {"type": "message", "message_ts": message_ts, "channel_id": "DAPPU1", "is_ephemeral": False},
        "channel": {"id": "DAPPU1", "name": "directmessage"},
        "message": {"type": "message", "ts": message_ts, "text": "nudge"},
        "actions": [{"type": "button", "action_id": action_id, "block_id": "b1", "value": value,
                     "text": {"type": "plain_text", "text": "x"}, "action_ts": "1772645400.000200"}],
    }  # fmt: skip
    assert slack.interaction(payload).status == 200


def u1_writes(slack, clock, *, thread_ts: float | None = None) -> None:
    fields = {"thread_ts": f"{thread_ts:.6f}"} if thread_ts is not None else {}
    response = slack.dm(sender="U1", recipient="U2", ts=clock().timestamp(), text="on it", authorized="U1", **fields)
    assert response.status == 200


# --- (2) sent once, at the right instant -------------------------------------------------------------------------


def test_the_nudge_comes_30_working_minutes_before_the_promise_once(replied, tick, store, fake_slack):
    ts = replied()
    assert tick(BACK) == 0  # each tick first plans the auto-replies sent since the last one
    [row] = nudges(store)
    assert (row["state"], row["promised_at"], row["next_attempt_at"]) == ("pending", PROMISE, DUE)
    assert tick(DUE - timedelta(seconds=1)) == 0
    assert tick(DUE) == 1
    [call] = nudge_posts(fake_slack)
    assert call.token == BOT_TOKEN and call.params["channel"] == "U1"  # from the app, to the person
    for raw in call.params["blocks"]:
        Block.parse(raw).validate_json()
    text = block_text(call.params["blocks"])
    assert "<@U2> is still waiting for your answer (since Tue 22:00)" in text
    assert "promised one by *Wed 13:00* — in 30 min" in text
    link = f"https://example.slack.com/archives/{WITH_U2}/p{f'{ts:.6f}'.replace('.', '')}"
    assert f"<{link}|Open the conversation>" in text
    actions = [e for b in call.params["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [(e["action_id"], e["value"]) for e in actions] == [
        (NUDGE_DONE_ACTION, str(row["id"])), (NUDGE_SNOOZE_ACTION, str(row["id"]))
    ]  # fmt: skip
    [row] = nudges(store)
    assert (row["state"], row["delivery_state"], row["sent_at"]) == ("sent", "sent", DUE)

    assert tick(DUE + timedelta(minutes=1)) == 0
    assert tick(PROMISE) == 0
    assert len(nudge_posts(fake_slack)) == 1


def test_a_friday_evening_promise_is_nudged_on_monday(replied, tick, store, fake_slack):
    replied(at=datetime(2026, 3, 7, 1, 0, tzinfo=UTC))  # Fri 20:00 EST
    monday_due = datetime(2026, 3, 9, 16, 30, tzinfo=UTC)  # Mon 12:30 EDT: DST began on Sunday
    assert tick(datetime(2026, 3, 7, 17, 30, tzinfo=UTC)) == 0  # Saturday
    [row] = nudges(store)
    assert row["next_attempt_at"] == monday_due
    assert tick(monday_due) == 1
    assert "by *Mon 13:00*" in block_text(nudge_posts(fake_slack)[0].params["blocks"])


def test_no_promise_no_nudge(make_app, store, fake_slack, clock, slack):
    connect(store, fake_slack, "U1", tz="America/New_York")
    assert slack.command("message I'm off until {back_at}.", user="U1").status == 200
    assert slack.dm(sender="U2", recipient="U1", ts=clock().timestamp()).status == 200
    app = make_app()
    assert ReplySender(app.services).drain(now=clock()) == 1
    assert NudgeSender(app.services).tick(DUE) == 0
    assert [(r["state"], r["last_error"]) for r in nudges(store)] == [("expired", "no_promise")]


# --- none when answered ------------------------------------------------------------------------------------------


def test_none_when_answered_in_the_dm_after_the_recap(replied, tick, slack, store, fake_slack, clock, people):
    replied()
    assert RecapSender(people.services).tick(BACK) == 1  # the recap went out: its messages are "recapped"
    clock.set(BACK + timedelta(minutes=20))
    u1_writes(slack, clock)
    assert tick(DUE) == 0
    assert nudge_posts(fake_slack) == []
    assert [(r["state"], r["last_error"]) for r in nudges(store)] == [("expired", "answered")]


def test_none_when_the_answer_arrives_under_the_other_members_authorization(
    replied, tick, slack, store, fake_slack, clock, people
):
    connect(store, fake_slack, "U2", tz="Europe/Rome")  # the sender uses Offhours too
    replied()
    assert RecapSender(people.services).tick(BACK) == 1
    clock.set(BACK + timedelta(minutes=20))
    # U1 answers; Slack delivers the event once, under one authorization: here U2's.
    assert slack.dm(sender="U1", recipient="U2", ts=clock().timestamp(), text="on it", authorized="U2").status == 200
    assert tick(DUE) == 0
    assert nudge_posts(fake_slack) == []
    assert [(r["state"], r["last_error"]) for r in nudges(store)] == [("expired", "answered")]


def test_none_when_answered_in_the_thread(replied, tick, slack, store, fake_slack, clock):
    ts = replied()
    clock.set(BACK + timedelta(hours=1))
    u1_writes(slack, clock, thread_ts=ts)
    assert tick(DUE) == 0
    assert [(r["state"], r["last_error"]) for r in nudges(store)] == [("expired", "answered")]


def test_none_when_answered_even_after_presence_is_forgotten(replied, tick, slack, store, fake_slack, clock):
    replied()
    clock.set(BACK + timedelta(minutes=5))
    u1_writes(slack, clock)
    store.purge_expired(now=BACK + timedelta(days=3), days=14)  # dm_presence is kept for a day only
    assert rows(store, schema.dm_presence) == []
    assert tick(DUE) == 0


def test_none_after_done_in_the_recap(replied, tick, slack, store, fake_slack, clock, people):
    replied()
    assert RecapSender(people.services).tick(BACK) == 1
    [recap] = rows(store, schema.recaps)
    clock.set(BACK + timedelta(minutes=5))
    click(slack, DONE_ACTION, f"{recap['id']}:{WITH_U2}", message_ts=recap["message_ts"])
    assert tick(DUE) == 0
    assert [(r["state"], r["last_error"]) for r in nudges(store)] == [("expired", "answered")]


def test_a_message_from_someone_else_in_another_dm_does_not_count(replied, tick, slack, store, fake_slack, clock):
    replied()
    fake_slack.dm_members[dm_channel("U1", "U3")] = ("U1", "U3")
    clock.set(BACK + timedelta(minutes=5))
    assert slack.dm(sender="U1", recipient="U3", ts=clock().timestamp(), text="hi", authorized="U1").status == 200
    assert tick(DUE) == 1


# --- paused, off, disconnected -----------------------------------------------------------------------------------


def test_none_while_paused(replied, tick, slack, store, clock):
    replied()
    clock.set(BACK + timedelta(minutes=1))
    assert slack.command("pause", user="U1").status == 200
    assert tick(DUE) == 0
    assert [(r["state"], r["last_error"]) for r in nudges(store)] == [("expired", "paused")]


def test_paused_and_resumed_before_the_nudge_still_nudges(replied, tick, slack, store, clock):
    replied()
    assert tick(clock() + timedelta(minutes=1)) == 0
    clock.set(BACK - timedelta(hours=3))
    assert slack.command("pause", user="U1").status == 200
    assert tick(BACK - timedelta(hours=2)) == 0  # re-decided: kept for its due time
    clock.set(BACK - timedelta(hours=1))
    assert slack.command("resume", user="U1").status == 200
    assert tick(DUE) == 1


def test_a_new_lead_time_moves_a_planned_nudge(replied, tick, slack, store, clock):
    replied()
    assert tick(clock() + timedelta(minutes=1)) == 0
    clock.set(BACK - timedelta(hours=1))
    assert slack.command("nudge 1h", user="U1").status == 200
    assert tick(DUE - timedelta(minutes=31)) == 0
    assert tick(DUE - timedelta(minutes=30)) == 1  # 12:00 EST


def test_none_when_disconnected(replied, tick, store, clock):
    replied()
    store.revoke_user_tokens("T1", ["U1"])
    assert tick(DUE) == 0


def test_none_when_the_config_turns_nudges_off(make_app, store, fake_slack, clock, slack):
    connect(store, fake_slack, "U1", tz="America/New_York")
    assert slack.dm(sender="U2", recipient="U1", ts=clock().timestamp()).status == 200
    app = make_app(nudge=NudgeConfig(before=None))
    assert ReplySender(app.services).drain(now=clock()) == 1
    assert NudgeSender(app.services).tick(DUE) == 0
    assert [(r["state"], r["last_error"]) for r in nudges(store)] == [("expired", "off")]


# --- a change of hours between the promise and the nudge ---------------------------------------------------------


def test_a_promise_that_moved_is_nudged_by_its_new_time_once(replied, tick, slack, store, fake_slack, clock):
    replied()
    assert tick(clock() + timedelta(minutes=1)) == 0  # planned by the first promise
    clock.set(BACK - timedelta(hours=2))
    assert slack.command("set mon-fri 10-18", user="U1").status == 200
    clock.set(BACK - timedelta(hours=1))
    assert tick(BACK - timedelta(hours=1)) == 0  # re-planned at once, not at the old due time
    [row] = nudges(store)
    assert (row["promised_at"], row["next_attempt_at"]) == (PROMISE + timedelta(hours=1), DUE + timedelta(hours=1))
    assert tick(DUE) == 0
    assert tick(DUE + timedelta(hours=1)) == 1
    assert "by *Wed 14:00*" in block_text(nudge_posts(fake_slack)[0].params["blocks"])
    assert tick(DUE + timedelta(hours=2)) == 0


def test_a_promise_now_outside_working_time_is_dropped(replied, tick, slack, store, fake_slack, clock):
    replied()
    assert tick(clock() + timedelta(minutes=1)) == 0
    clock.set(BACK - timedelta(hours=2))
    assert slack.command("set mon-fri 9-12", user="U1").status == 200
    clock.set(BACK - timedelta(hours=1))
    assert tick(DUE) == 0
    assert [(r["state"], r["last_error"]) for r in nudges(store)] == [("expired", "promise_off_hours")]


# --- downtime ----------------------------------------------------------------------------------------------------


def test_after_downtime_a_nudge_still_before_the_promise_goes_out(replied, tick, fake_slack):
    replied()
    assert tick(PROMISE - timedelta(minutes=10)) == 1


def test_after_downtime_past_the_promise_it_is_dropped_and_counted(replied, tick, store, fake_slack, people):
    replied()
    assert tick(PROMISE + timedelta(minutes=1)) == 0
    assert nudge_posts(fake_slack) == []
    assert [(r["state"], r["last_error"]) for r in nudges(store)] == [("expired", "promise_passed")]
    metrics = people.services.metrics.render()[0].decode()
    assert 'offhours_nudges_dropped_total{reason="promise_passed"} 1.0' in metrics


# --- two processes, one nudge ------------------------------------------------------------------------------------


def test_two_processes_post_one_nudge_per_promise(people, slack, store, fake_slack, clock, settings):
    """Two senders, each on its own Store (its own connection pool, as two processes have), tick at once."""
    senders_ids = [f"UW{i:02d}" for i in range(20)]
    for i, sender in enumerate(senders_ids):
        assert slack.dm(sender=sender, recipient="U1", ts=clock().timestamp() + i).status == 200
    assert ReplySender(people.services).drain(now=clock()) == 20
    stores = [Store(store.url, client_id="111.222") for _ in range(2)]
    try:
        senders = [
            NudgeSender(build_services(Config(), s, settings=settings,
                                       client=WebClient(base_url=fake_slack.base_url, timeout=5), clock=clock))
            for s in stores
        ]  # fmt: skip
        start = threading.Barrier(2)
        posted: list[int] = []

        def run(sender: NudgeSender) -> None:
            start.wait()
            posted.append(sender.tick(DUE))

        clock.set(DUE)
        threads = [threading.Thread(target=run, args=(s,)) for s in senders]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    finally:
        for s in stores:
            s.close()
    assert sum(posted) == 20
    ids = [c.params["metadata"]["event_payload"]["nudge_id"] for c in nudge_posts(fake_slack)]
    assert len(ids) == len(set(ids)) == 20
    assert {r["state"] for r in nudges(store)} == {"sent"}


def test_a_nudge_of_unknown_outcome_is_looked_up_before_it_is_posted_again(replied, tick, store, fake_slack):
    replied()
    fake_slack.fail("chat.postMessage", status=500, after_acting=True, times=1)
    assert tick(DUE) == 0
    [row] = nudges(store)
    assert (row["state"], row["delivery_state"]) == ("pending", "outcome_unknown")
    assert fake_slack.calls_to("conversations.history") == []
    tick(DUE + timedelta(minutes=2))
    [lookup] = fake_slack.calls_to("conversations.history")  # the fake's history is empty: posted again
    assert lookup.token == "xoxp-T1-U1" and lookup.params["include_all_metadata"] in (True, "true", "1")
    assert nudges(store)[0]["state"] == "sent"


def test_config_before_is_read(make_app, store, fake_slack, clock, slack):
    connect(store, fake_slack, "U1", tz="America/New_York")
    assert slack.dm(sender="U2", recipient="U1", ts=clock().timestamp()).status == 200
    app = make_app(nudge=replace(Config().nudge, before=timedelta(hours=1)))
    assert ReplySender(app.services).drain(now=clock()) == 1
    assert NudgeSender(app.services).tick(DUE - timedelta(minutes=30)) == 1


# --- (4) Snooze 1 h and Done --------------------------------------------------------------------------------------


def test_snooze_sends_it_again_an_hour_later_at_most_until_shortly_before_the_promise(
    replied, tick, slack, store, fake_slack, clock
):
    replied()
    assert tick(DUE - timedelta(minutes=20)) == 0  # planned with a 30-minute lead: due 12:30 EST
    assert tick(DUE) == 1
    [row] = nudges(store)
    clock.set(DUE + timedelta(minutes=1))
    click(slack, NUDGE_SNOOZE_ACTION, str(row["id"]))
    [update] = fake_slack.calls_to("chat.update")
    assert ":zzz: Snoozed until Wed 12:55" in block_text(update.params["blocks"])  # not 13:31: the promise is 13:00
    [row] = nudges(store)
    assert (row["state"], row["snoozed"], row["next_attempt_at"]) == ("pending", True, PROMISE - timedelta(minutes=5))

    assert tick(PROMISE - timedelta(minutes=6)) == 0
    assert tick(PROMISE - timedelta(minutes=5)) == 1
    second = nudge_posts(fake_slack)[-1]
    actions = [e["action_id"] for b in second.params["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert actions == [NUDGE_DONE_ACTION]  # snoozed once: no second snooze
    click(slack, NUDGE_SNOOZE_ACTION, str(row["id"]))
    assert nudges(store)[0]["state"] == "sent"
    assert tick(PROMISE) == 0
    assert len(nudge_posts(fake_slack)) == 2


def test_a_snoozed_nudge_answered_meanwhile_is_not_sent(replied, tick, slack, store, fake_slack, clock):
    ts = replied()
    assert tick(DUE) == 1
    clock.set(DUE + timedelta(minutes=1))
    click(slack, NUDGE_SNOOZE_ACTION, str(nudges(store)[0]["id"]))
    clock.set(DUE + timedelta(minutes=2))
    u1_writes(slack, clock, thread_ts=ts)
    assert tick(PROMISE - timedelta(minutes=5)) == 0
    assert len(nudge_posts(fake_slack)) == 1


def test_done_ticks_the_conversation_off_as_in_the_recap(replied, tick, slack, store, fake_slack, clock, people):
    replied()
    assert RecapSender(people.services).tick(BACK) == 1
    [recap] = rows(store, schema.recaps)
    assert tick(DUE) == 1
    clock.set(DUE + timedelta(minutes=1))
    click(slack, NUDGE_DONE_ACTION, str(nudges(store)[0]["id"]))
    assert nudges(store)[0]["state"] == "done"
    assert {m["state"] for m in rows(store, schema.messages)} == {"done"}
    updates = fake_slack.calls_to("chat.update")
    assert {u.params["ts"] for u in updates} == {recap["message_ts"], "1772645400.000100"}  # the recap and the nudge
    [recap_update] = [u for u in updates if u.params["ts"] == recap["message_ts"]]
    assert "~ Done" in block_text(recap_update.params["blocks"])
    assert tick(PROMISE) == 0


def test_someone_elses_buttons_do_nothing(replied, tick, slack, store, fake_slack, clock):
    replied()
    assert tick(DUE) == 1
    nudge_id = str(nudges(store)[0]["id"])
    click(slack, NUDGE_DONE_ACTION, nudge_id, user="U2")
    click(slack, NUDGE_SNOOZE_ACTION, nudge_id, user="U2")
    click(slack, NUDGE_DONE_ACTION, "not-a-number")
    assert nudges(store)[0]["state"] == "sent"
    assert fake_slack.calls_to("chat.update") == []


# --- (6) the morning recap marks promises due today --------------------------------------------------------------


def test_the_recap_marks_a_thread_whose_promise_falls_today_with_the_time(replied, tick, store, fake_slack, people,
                                                                          clock, slack):  # fmt: skip
    replied()
    fake_slack.dm_members[dm_channel("U1", "U3")] = ("U1", "U3")
    clock.advance(minutes=5)
    # U3's auto-reply is not sent (no drain): it promised nothing yet.
    assert slack.dm(sender="U3", recipient="U1", ts=clock().timestamp()).status == 200
    assert tick(clock() + timedelta(minutes=1)) == 0  # the nudges are planned
    assert RecapSender(people.services).tick(BACK) == 1
    [recap] = [c for c in fake_slack.calls_to("chat.postMessage") if c.params.get("channel") == "U1"
               and "offhours_recap" in str(c.params.get("metadata"))]  # fmt: skip
    lines = [b["text"]["text"] for b in recap.params["blocks"] if b["type"] == "section"]
    [u2] = [line for line in lines if line.startswith("<@U2>")]
    assert u2.endswith(" · :hourglass_flowing_sand: reply by 13:00 today")
    assert all("reply by" not in line for line in lines if not line.startswith("<@U2>"))
