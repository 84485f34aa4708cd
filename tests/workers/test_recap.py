"""The start-of-day recap end to end: DMs and /hours over signed HTTP, the recap sender driven with the injected
clock (`tick(now)`), and assertions on what reached the fake Slack and what the database holds.

The clock starts on Tue 3 Mar 2026 22:00 in New York (03:00 UTC on the 4th). U1 is the connected person
(New York, the default hours Mon–Fri 09:00–17:30), so their off-window ends Wed 4 Mar 09:00 EST = 14:00 UTC.
U2 and U3 write to U1 and are known to Slack but not connected.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from slack_sdk import WebClient
from slack_sdk.models.blocks import Block

from bot.config import Config
from bot.services import build_services
from bot.slack.blocks.recap import DONE_ACTION
from bot.storage import db
from bot.storage.inbox import IncomingRecord
from bot.storage.store import Store
from bot.workers.recaps import RecapSender
from tests.support.helpers import RunningServer, connect, connected, rows
from tests.support.slackhttp import SlackHTTP, dm_channel

BOT_TOKEN = "xoxb-T1"
U1_TOKEN = "xoxp-T1-U1"
WITH_U2 = dm_channel("U1", "U2")
WITH_U3 = dm_channel("U1", "U3")
DUE = datetime(2026, 3, 4, 14, 0, tzinfo=UTC)  # Wed 09:00 EST
HEADER = "While you were off — Tue 17:30 → Wed 09:00"


# --- helpers ------------------------------------------------------------------------------------------------


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def recaps(store: Store, **where) -> list[dict]:
    return rows(store, db.recaps, **where)


def messages(store: Store, **where) -> list[dict]:
    return rows(store, db.messages, **where)


def posts(fake) -> list:
    return fake.calls_to("chat.postMessage")


def header(call) -> str:
    """The recap's header text, after checking every block against slack_sdk's Block Kit models."""
    blocks = call.params["blocks"]
    assert len(blocks) <= 50
    for raw in blocks:
        Block.parse(raw).validate_json()
    [block] = [b for b in call.params["blocks"] if b["type"] == "header"]
    return block["text"]["text"]


def items(call) -> list[str]:
    """Each item's first line (sender, count, when, link), in order."""
    return [b["text"]["text"].split("\n")[0] for b in call.params["blocks"] if b["type"] == "section"]


def buttons(call) -> list[str]:
    return [b["accessory"]["value"] for b in call.params["blocks"] if b["type"] == "section" and "accessory" in b]


def context_text(call) -> str:
    return "\n".join(e["text"] for b in call.params["blocks"] if b["type"] == "context" for e in b["elements"])


def permalink(channel: str, ts: float) -> str:
    return f"https://example.slack.com/archives/{channel}/p{f'{ts:.6f}'.replace('.', '')}"


@pytest.fixture
def people(offhours, store, fake_slack):
    """U1 connected (New York); U2 and U3 known to Slack; the DMs' members known for conversations.info."""
    connect(store, fake_slack, "U1", tz="America/New_York")
    fake_slack.add_user("U2", tz="Europe/Rome")
    fake_slack.add_user("U3", tz="Asia/Tokyo")
    fake_slack.dm_members[WITH_U2] = ("U1", "U2")
    fake_slack.dm_members[WITH_U3] = ("U1", "U3")
    return offhours


@pytest.fixture
def tick(people, clock):
    """tick(at) -> how many recaps one scheduler tick at `at` (default: the clock) posted."""
    sender = RecapSender(people.services)

    def run(at: datetime | None = None) -> int:
        if at is not None:
            clock.set(at)
        return sender.tick(clock())

    return run


@pytest.fixture
def dm(slack, clock):
    """dm("U2", at=...) -> the ts (epoch seconds) of a DM from a sender to U1, delivered now over signed HTTP."""

    def send(sender: str, *, at: datetime | None = None, text: str = "hello", to: str = "U1") -> float:
        ts = (at or clock()).timestamp()
        response = slack.dm(sender=sender, recipient=to, ts=ts, text=text)
        assert response.status == 200, response.text
        return ts

    return send


@pytest.fixture
def hours(slack):
    """hours("set mon-fri 10-18") -> U1 runs the /hours command over signed HTTP."""

    def run(text: str, *, user: str = "U1") -> dict:
        response = slack.command(text, user=user)
        assert response.status == 200, response.text
        return response.json

    return run


def reply_from_u1(slack, clock, *, to: str, at: datetime | None = None) -> None:
    """U1 writes in the DM with `to` (seen through U1's own token): what waited there is answered."""
    response = slack.dm(sender="U1", recipient=to, ts=(at or clock()).timestamp(), text="on it", authorized="U1")
    assert response.status == 200, response.text


# --- when and what ------------------------------------------------------------------------------------------


def test_recap_is_sent_at_the_start_of_the_working_day_and_not_before(tick, dm, store, fake_slack, clock):
    first = dm("U2", text="can you look at the deck?")
    clock.advance(minutes=30)
    other = dm("U3")
    clock.advance(minutes=30)
    dm("U2", text="also the numbers")
    [message] = messages(store, sender_id="U3")
    assert message["due_at"] == DUE

    assert tick(clock()) == 0  # still the evening
    assert tick(DUE - timedelta(seconds=1)) == 0
    assert posts(fake_slack) == []
    assert recaps(store) == []

    assert tick(DUE) == 1
    [call] = posts(fake_slack)
    assert call.token == BOT_TOKEN  # from the app, not from the person
    assert call.params["channel"] == "U1"
    assert call.params["text"] == HEADER  # the notification's fallback text
    assert header(call) == HEADER
    assert "3 messages in 2 conversations" in context_text(call)
    assert "delivered late" not in context_text(call)
    [recap] = recaps(store)
    assert items(call) == [  # one per conversation, the oldest conversation first, times in New York
        f"<@U2> · 2 messages · Tue 22:00 – Tue 23:00 · <{permalink(WITH_U2, first)}|Open thread>",
        f"<@U3> · 1 message · Tue 22:30 · <{permalink(WITH_U3, other)}|Open thread>",
    ]
    assert buttons(call) == [f"{recap['id']}:{WITH_U2}", f"{recap['id']}:{WITH_U3}"]
    assert all(b["accessory"]["action_id"] == DONE_ACTION for b in call.params["blocks"] if "accessory" in b)
    # Permalinks with the person's token (the bot is not in their DMs), to each conversation's first message.
    links = fake_slack.calls_to("chat.getPermalink")
    assert [(c.token, c.params["channel"], c.params["message_ts"]) for c in links] == [
        (U1_TOKEN, WITH_U2, f"{first:.6f}"),
        (U1_TOKEN, WITH_U3, f"{other:.6f}"),
    ]
    assert "can you look" not in str(call.params)  # recap.include_text is off: no message text stored or shown

    assert (recap["state"], recap["user_id"], recap["due_at"], recap["seq"]) == ("sent", "U1", DUE, 0)
    assert (recap["sent_at"], recap["late"], recap["channel_id"]) == (DUE, False, "U1")
    assert recap["message_ts"]
    assert {(m["state"], m["recap_id"]) for m in messages(store)} == {("recapped", recap["id"])}

    # Later ticks, the same morning and the next, send nothing more.
    assert tick(DUE) == 0
    assert tick(DUE + timedelta(minutes=30)) == 0
    assert tick(DUE + timedelta(days=1)) == 0
    assert len(posts(fake_slack)) == 1


def test_text_is_quoted_when_include_text_is_on(make_app, store, fake_slack, clock):
    app = make_app(recap=replace(Config().recap, include_text=True))
    connect(store, fake_slack, "U1")
    server = RunningServer(app)
    try:
        slack = SlackHTTP(server.url)
        slack.dm(sender="U2", recipient="U1", ts=clock().timestamp(), text="the <deck> & numbers")
    finally:
        server.close()
    assert RecapSender(app.services).tick(DUE) == 1
    [call] = posts(fake_slack)
    [section] = [b for b in call.params["blocks"] if b["type"] == "section"]
    assert section["text"]["text"].endswith("\n> the &lt;deck&gt; &amp; numbers")


def test_more_conversations_than_max_items_are_summarised_in_one_line(tick, dm, store, fake_slack, clock):
    senders = [f"UX{i:02d}" for i in range(12)]
    for i, sender in enumerate(senders):
        dm(sender, at=clock() + timedelta(minutes=i))
    assert tick(DUE) == 1
    [call] = posts(fake_slack)
    assert [line.split(" · ")[0] for line in items(call)] == [f"<@{s}>" for s in senders[:10]]  # recap.max_items
    assert "12 messages in 12 conversations" in context_text(call)
    assert "…and 2 more conversations waiting in your DMs." in context_text(call)
    assert {m["state"] for m in messages(store)} == {"recapped"}  # all in this recap: none comes back tomorrow


def test_answered_conversations_are_left_out(tick, dm, slack, store, fake_slack, clock):
    dm("U2")
    clock.advance(minutes=10)
    dm("U3")
    clock.advance(minutes=10)
    reply_from_u1(slack, clock, to="U2")  # U1 answered U2 in the evening

    assert tick(DUE) == 1
    [call] = posts(fake_slack)
    assert [line.split(" · ")[0] for line in items(call)] == ["<@U3>"]
    assert "1 message in 1 conversation" in context_text(call)
    assert {m["sender_id"]: m["state"] for m in messages(store)} == {"U2": "answered", "U3": "recapped"}


def test_nothing_left_means_no_recap_at_all(tick, dm, slack, store, fake_slack, clock):
    dm("U2")
    dm("U3", at=clock() + timedelta(seconds=1))
    clock.advance(minutes=5)
    reply_from_u1(slack, clock, to="U2")
    reply_from_u1(slack, clock, to="U3", at=clock() + timedelta(seconds=1))

    assert tick(DUE) == 0
    assert tick(DUE + timedelta(hours=1)) == 0
    assert posts(fake_slack) == []
    assert fake_slack.calls_to("chat.getPermalink") == []
    assert {m["state"] for m in messages(store)} == {"answered"}
    assert [r for r in recaps(store) if r["state"] != "empty"] == []


# --- the due time follows the person's hours ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("hours_text", "dm_at", "due", "title"),
    [
        # Every day: the recap on the DST morning itself, Sun 8 Mar 09:00 EDT (13:00 UTC, not 14:00).
        ("daily 9-17:30", utc(2026, 3, 8, 3, 0), utc(2026, 3, 8, 13, 0), "While you were off — Sat 17:30 → Sun 09:00"),
        # Weekdays: Friday evening's DMs wait for Mon 9 Mar 09:00 EDT, after the change.
        (
            "mon-fri 9-17:30",
            utc(2026, 3, 7, 3, 0),
            utc(2026, 3, 9, 13, 0),
            "While you were off — Fri 17:30 → Mon 09:00",
        ),
    ],
)
def test_dst_change_morning(tick, dm, hours, store, fake_slack, clock, hours_text, dm_at, due, title):
    hours(f"set {hours_text}")
    clock.set(dm_at)  # 22:00 EST the evening before
    dm("U2")
    [message] = messages(store)
    assert message["due_at"] == due

    assert tick(due - timedelta(hours=1)) == 0  # 09:00 in the old offset (EST) is 08:00 EDT
    assert tick(due - timedelta(seconds=1)) == 0
    assert posts(fake_slack) == []
    assert tick(due) == 1
    [call] = posts(fake_slack)
    assert header(call) == title
    assert recaps(store)[0]["late"] is False


def test_vacation_ending_recap_comes_on_the_first_working_day_after(tick, dm, hours, store, fake_slack, clock):
    dm("U2")  # Tue 22:00, due Wed 09:00 ...
    assert messages(store)[0]["due_at"] == DUE
    hours("off 2026-03-04..2026-03-06")  # ... then U1 takes Wed to Fri off: re-evaluated
    back = utc(2026, 3, 9, 13, 0)  # Mon 9 Mar 09:00 EDT
    assert messages(store)[0]["due_at"] == back
    clock.set(utc(2026, 3, 5, 17, 0))  # Thu noon, on holiday
    dm("U3")
    assert messages(store, sender_id="U3")[0]["due_at"] == back

    for day in range(4, 9):  # 09:00 and 12:00 New York, Wed to Sun: nothing
        assert tick(utc(2026, 3, day, 14, 0)) == 0
        assert tick(utc(2026, 3, day, 17, 0)) == 0
    assert tick(back - timedelta(seconds=1)) == 0
    assert posts(fake_slack) == []

    assert tick(back) == 1
    [call] = posts(fake_slack)
    assert header(call) == "While you were off — Tue 17:30 → Mon 09:00"
    assert [line.split(" · ")[:3] for line in items(call)] == [
        ["<@U2>", "1 message", "Tue 22:00"],
        ["<@U3>", "1 message", "Thu 12:00"],
    ]
    assert [(r["due_at"], r["state"]) for r in recaps(store)] == [(back, "sent")]


@pytest.mark.parametrize(
    ("command", "due", "title"),
    [
        ("set mon-fri 10-18", utc(2026, 3, 4, 15, 0), "While you were off — Tue 18:00 → Wed 10:00"),  # later
        ("set mon-fri 7-15", utc(2026, 3, 4, 12, 0), "While you were off — Tue 15:00 → Wed 07:00"),  # earlier
        # Moved to London: the DM came at 03:00 there, and the day starts at 09:00 London (= UTC in March).
        ("tz Europe/London", utc(2026, 3, 4, 9, 0), "While you were off — Tue 17:30 → Wed 09:00"),
    ],
)
def test_hours_changed_in_between_move_the_recap(tick, dm, hours, store, fake_slack, clock, command, due, title):
    dm("U2")
    clock.advance(hours=1)
    hours(command)
    assert messages(store)[0]["due_at"] == due

    assert tick(min(due, DUE) - timedelta(seconds=1)) == 0
    if due > DUE:
        assert tick(DUE) == 0  # not at the old time
    assert tick(due) == 1
    [call] = posts(fake_slack)
    assert header(call) == title
    assert tick(max(due, DUE)) == 0
    assert len(posts(fake_slack)) == 1


# --- exactly once, never lost -------------------------------------------------------------------------------


def test_failure_then_retry_posts_exactly_one_recap(tick, dm, store, fake_slack, clock):
    dm("U2")
    fake_slack.fail("chat.postMessage", status=500)
    assert tick(DUE) == 0
    [recap] = recaps(store)
    assert (recap["state"], recap["attempts"], recap["last_error"]) == ("pending", 1, "internal_error")
    assert recap["next_attempt_at"] == DUE + timedelta(seconds=10)  # backoff, not a sleep in the tick
    assert tick(DUE + timedelta(seconds=5)) == 0  # not yet
    assert len(posts(fake_slack)) == 1

    fake_slack.fail("chat.postMessage", status=429, retry_after=120)
    assert tick(DUE + timedelta(seconds=10)) == 0
    # Not looked for first (about one lookup a minute per workspace; see RecapKind.look_up_after_5xx).
    assert fake_slack.calls_to("conversations.history") == []
    [recap] = recaps(store)
    assert (recap["state"], recap["attempts"], recap["last_error"]) == ("pending", 2, "ratelimited")
    assert recap["next_attempt_at"] == DUE + timedelta(seconds=130)  # Slack's Retry-After
    assert tick(DUE + timedelta(seconds=129)) == 0
    assert len(posts(fake_slack)) == 2

    fake_slack.fail("chat.postMessage", disconnect=True)  # then the network drops the answer
    assert tick(DUE + timedelta(seconds=130)) == 0
    [recap] = recaps(store)
    assert (recap["state"], recap["attempts"]) == ("pending", 3)

    retry_at = recap["next_attempt_at"]
    assert tick(retry_at) == 1
    assert tick(retry_at + timedelta(minutes=10)) == 0
    assert len(posts(fake_slack)) == 4  # three failed attempts, one accepted
    assert fake_slack.post_counts["U1"] == 1
    [recap] = recaps(store)
    assert (recap["state"], recap["attempts"], recap["last_error"], recap["late"]) == ("sent", 4, None, False)
    assert header(posts(fake_slack)[-1]) == HEADER
    assert [m["state"] for m in messages(store)] == ["recapped"]


def test_a_conversation_answered_while_the_recap_waits_for_a_retry_is_left_out(tick, dm, slack, store, fake_slack,
                                                                                clock):  # fmt: skip
    dm("U2")
    dm("U3", at=clock() + timedelta(minutes=1))
    fake_slack.fail("chat.postMessage", status=503)
    assert tick(DUE) == 0
    assert {m["state"] for m in messages(store)} == {"recapped"}

    reply_from_u1(slack, clock, to="U2", at=DUE + timedelta(seconds=5))  # U1 starts the day by answering U2
    assert {m["sender_id"]: m["state"] for m in messages(store)} == {"U2": "answered", "U3": "recapped"}

    assert tick(DUE + timedelta(seconds=10)) == 1
    call = posts(fake_slack)[-1]
    assert [line.split(" · ")[0] for line in items(call)] == ["<@U3>"]


def test_a_recap_whose_conversations_were_all_answered_before_the_retry_is_not_sent(tick, dm, slack, store,
                                                                                     fake_slack, clock):  # fmt: skip
    dm("U2")
    fake_slack.fail("chat.postMessage", status=500)
    assert tick(DUE) == 0
    reply_from_u1(slack, clock, to="U2", at=DUE + timedelta(seconds=5))

    assert tick(DUE + timedelta(seconds=10)) == 0
    assert len(posts(fake_slack)) == 1  # only the failed attempt
    assert [r["state"] for r in recaps(store)] == ["empty"]


def test_a_permanent_error_gives_up_and_the_messages_wait_for_the_next_working_day(tick, dm, store, fake_slack):
    dm("U2")
    fake_slack.fail("chat.postMessage", error="channel_not_found")
    assert tick(DUE) == 0
    assert tick(DUE + timedelta(hours=1)) == 0
    assert len(posts(fake_slack)) == 1
    [recap] = recaps(store)
    assert (recap["state"], recap["last_error"]) == ("failed", "channel_not_found")
    # Not lost: the message waits again, due at the next working start (Thu 09:00 EST), and comes then.
    [message] = messages(store)
    assert (message["state"], message["recap_id"], message["due_at"]) == ("pending", None, DUE + timedelta(days=1))
    assert tick(DUE + timedelta(days=1)) == 1
    assert len(posts(fake_slack)) == 2
    assert [r["state"] for r in recaps(store)] == ["failed", "sent"]


@pytest.mark.parametrize(
    ("first_tick", "late"),
    [
        (DUE + timedelta(minutes=15), False),
        (DUE + timedelta(minutes=15, seconds=1), True),
        (DUE + timedelta(hours=3), True),
    ],
)
def test_catch_up_after_downtime_sends_once_and_says_late(tick, dm, store, fake_slack, first_tick, late):
    dm("U2")
    # Nothing ticked at 09:00: the scheduler was down. Its first tick after start-up catches up.
    assert tick(first_tick) == 1
    assert tick(first_tick) == 0
    assert tick(first_tick + timedelta(minutes=1)) == 0
    [call] = posts(fake_slack)
    assert header(call) == HEADER  # the window it belongs to, not the time it went out
    assert ("delivered late" in context_text(call)) is late
    [recap] = recaps(store)
    assert (recap["state"], recap["late"], recap["sent_at"]) == ("sent", late, first_tick)


def test_downtime_across_two_windows_sends_one_recap_with_both(tick, dm, store, fake_slack, clock):
    dm("U2")  # Tue evening, due Wed 09:00
    clock.set(utc(2026, 3, 5, 0, 0))  # Wed 19:00 EST, due Thu 09:00
    dm("U3")
    assert tick(utc(2026, 3, 5, 16, 0)) == 1  # down from Wed morning to Thu 11:00
    assert tick(utc(2026, 3, 5, 16, 1)) == 0
    [call] = posts(fake_slack)
    assert header(call) == "While you were off — Tue 17:30 → Thu 09:00"  # the listed messages all fit in it
    assert [line.split(" · ")[:3] for line in items(call)] == [["<@U2>", "1 message", "Tue 22:00"],
                                                                ["<@U3>", "1 message", "Wed 19:00"]]  # fmt: skip
    assert "delivered late" in context_text(call)
    assert recaps(store)[0]["late"] is True
    assert {m["state"] for m in messages(store)} == {"recapped"}


def test_a_dm_recorded_after_the_recap_went_out_gets_a_follow_up(tick, dm, store, fake_slack, clock):
    dm("U2")
    assert tick(DUE) == 1

    # Slack redelivers a DM sent at 08:59:59 only after the recap went out: same window, not lost.
    clock.set(DUE + timedelta(seconds=20))
    late_ts = dm("U3", at=DUE - timedelta(seconds=1))
    [message] = messages(store, sender_id="U3")
    assert (message["state"], message["due_at"]) == ("pending", DUE)

    assert tick(DUE + timedelta(seconds=30)) == 1
    first, follow_up = posts(fake_slack)
    assert [line.split(" · ")[0] for line in items(first)] == ["<@U2>"]
    assert items(follow_up) == [f"<@U3> · 1 message · Wed 08:59 · <{permalink(WITH_U3, late_ts)}|Open thread>"]
    assert [(r["seq"], r["state"], r["due_at"]) for r in recaps(store)] == [(0, "sent", DUE), (1, "sent", DUE)]
    assert tick(DUE + timedelta(minutes=1)) == 0
    assert len(posts(fake_slack)) == 2


def test_the_next_evening_gets_its_own_recap(tick, dm, store, fake_slack, clock):
    dm("U2")
    assert tick(DUE) == 1
    clock.set(utc(2026, 3, 5, 0, 0))  # Wed 19:00 EST
    dm("U2")
    assert tick(utc(2026, 3, 5, 13, 59)) == 0
    assert tick(utc(2026, 3, 5, 14, 0)) == 1
    assert header(posts(fake_slack)[-1]) == "While you were off — Wed 17:30 → Thu 09:00"
    assert [(r["due_at"], r["seq"]) for r in recaps(store)] == [(DUE, 0), (utc(2026, 3, 5, 14, 0), 0)]


# --- the Done button ----------------------------------------------------------------------------------------


def click(slack, *, user: str, value: str, message_ts: str, channel: str = "U1"):
    payload = {
        "type": "block_actions",
        "team": {"id": "T1", "domain": "example"},
        "user": {"id": user, "username": user.lower(), "team_id": "T1"},
        "api_app_id": "A1",
        "token": "legacy-verification-token",
        "trigger_id": "123.456.abc",
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel, "is_ephemeral": False},
        "channel": {"id": channel, "name": "directmessage"},
        "message": {"type": "message", "ts": message_ts, "text": HEADER},
        "actions": [
            {
                "type": "button",
                "action_id": DONE_ACTION,
                "block_id": "b1",
                "value": value,
                "text": {"type": "plain_text", "text": "Done"},
                "action_ts": "1772632800.000001",
            }
        ],
    }
    response = slack.interaction(payload)
    assert response.status == 200, response.text
    return response


def test_done_ticks_a_conversation_off_and_updates_the_recap(tick, dm, slack, store, fake_slack, clock):
    dm("U2")
    dm("U3", at=clock() + timedelta(minutes=1))
    assert tick(DUE) == 1
    [recap] = recaps(store)
    clock.set(DUE + timedelta(minutes=5))

    click(slack, user="U1", value=f"{recap['id']}:{WITH_U2}", message_ts=recap["message_ts"])

    [update] = fake_slack.calls_to("chat.update")
    assert update.token == BOT_TOKEN
    assert (update.params["channel"], update.params["ts"]) == (recap["channel_id"], recap["message_ts"])
    assert header(update) == HEADER
    done, still_open = items(update)
    assert done == ":white_check_mark: ~<@U2> · 1 message · Tue 22:00~ Done"
    assert still_open.startswith("<@U3> · 1 message · Tue 22:01 · <https://example.slack.com/")
    assert buttons(update) == [f"{recap['id']}:{WITH_U3}"]  # no button on the done item
    assert "delivered late" not in context_text(update)  # still the original delivery time
    assert {m["sender_id"]: m["state"] for m in messages(store)} == {"U2": "done", "U3": "recapped"}
    assert len(posts(fake_slack)) == 1  # updated in place, nothing new posted


def test_someone_elses_click_changes_nothing(tick, dm, slack, store, fake_slack):
    dm("U2")
    assert tick(DUE) == 1
    [recap] = recaps(store)
    before = messages(store)

    click(slack, user="U3", value=f"{recap['id']}:{WITH_U2}", message_ts=recap["message_ts"])
    click(slack, user="U1", value="not-a-recap", message_ts=recap["message_ts"])
    click(slack, user="U1", value=f"{recap['id'] + 1000}:{WITH_U2}", message_ts=recap["message_ts"])

    assert fake_slack.calls_to("chat.update") == []
    assert messages(store) == before
    assert recaps(store) == [recap]


# --- several schedulers at once -----------------------------------------------------------------------------


PEOPLE = [f"UP{i:02d}" for i in range(12)]


def record(store: Store, person: str, sender: str, *, at: datetime, due: datetime) -> None:
    channel = dm_channel(person, sender)
    connected(store, person, now=at)
    outcome = store.inbox.record(
        IncomingRecord(
            team_id="T1", recipient_id=person, sender_id=sender, channel_id=channel, ts=f"{at.timestamp():.6f}",
            thread_ts=f"{at.timestamp():.6f}", received_at=at, due_at=due, text=None, window_key="k", reply=False,
        ),
        now=at,
    )  # fmt: skip
    assert outcome == "recorded"


def race(senders: list[RecapSender], now: datetime) -> list[int]:
    """Every sender ticks at the same `now`, released together; returns what each posted."""
    barrier = threading.Barrier(len(senders))
    results: list[int | BaseException] = [0] * len(senders)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = senders[i].tick(now)
        except BaseException as e:  # surfaced below: a thread's exception would otherwise vanish
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(senders))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors
    return results  # type: ignore[return-value]


def test_racing_schedulers_send_exactly_one_recap_per_person_and_lose_none(migrated, store, settings, fake_slack,
                                                                           clock):  # fmt: skip
    """Four processes' worth of schedulers (each its own Store and engine) on one database, ticking together."""
    for person in PEOPLE:
        connect(store, fake_slack, person, tz="America/New_York")
    evening = utc(2026, 3, 4, 1, 0)  # Tue 20:00 EST
    for i, person in enumerate(PEOPLE):
        for k, sender in enumerate(("US1", "US2", "US3")[: 1 + i % 3]):
            record(store, person, sender, at=evening + timedelta(minutes=k), due=DUE)

    stores = [Store(migrated, client_id="111.222") for _ in range(4)]
    try:
        senders = [
            RecapSender(build_services(Config(), s, settings=settings, clock=clock,
                                       client=WebClient(base_url=fake_slack.base_url, timeout=10)))
            for s in stores
        ]  # fmt: skip

        # Round 1, Wed 09:00: every recap due at once.
        for _ in range(3):
            fake_slack.fail("chat.postMessage", delay=0.05)  # a few slow posts widen the race window
        assert race(senders, DUE - timedelta(seconds=1)) == [0, 0, 0, 0]
        assert sum(race(senders, DUE)) == len(PEOPLE)
        assert sum(race(senders, DUE + timedelta(seconds=30))) == 0
        assert {p: fake_slack.post_counts[p] for p in PEOPLE} == dict.fromkeys(PEOPLE, 1)
        sent = [r for r in recaps(store) if r["state"] == "sent"]
        assert sorted(r["user_id"] for r in sent) == PEOPLE
        assert {r["state"] for r in recaps(store)} <= {"sent", "empty"}
        for r in sent:  # each recap holds exactly its person's messages
            held = messages(store, recap_id=r["id"])
            assert {m["recipient_id"] for m in held} == {r["user_id"]}
            assert len(held) == 1 + PEOPLE.index(r["user_id"]) % 3
        assert {m["state"] for m in messages(store)} == {"recapped"}
        posted_items = sum(len(items(c)) for c in posts(fake_slack))
        assert posted_items == len(messages(store))  # one sender per DM, so one item per message: none lost

        # Round 2, Thu 09:00, with Slack failing some posts: the retries race too.
        thursday = utc(2026, 3, 5, 14, 0)
        for person in PEOPLE:
            record(store, person, "US9", at=utc(2026, 3, 5, 1, 0), due=thursday)
        fake_slack.fail("chat.postMessage", times=5, status=500)
        assert sum(race(senders, thursday)) == len(PEOPLE) - 5
        assert sum(race(senders, thursday + timedelta(seconds=5))) == 0  # the backoff has not passed
        assert sum(race(senders, thursday + timedelta(seconds=10))) == 5
        assert sum(race(senders, thursday + timedelta(minutes=10))) == 0
        assert {p: fake_slack.post_counts[p] for p in PEOPLE} == dict.fromkeys(PEOPLE, 2)
        assert {m["state"] for m in messages(store)} == {"recapped"}
        assert len([r for r in recaps(store) if r["state"] == "sent"]) == 2 * len(PEOPLE)
        assert {r["state"] for r in recaps(store)} <= {"sent", "empty"}
    finally:
        for s in stores:
            s.close()


def test_a_rate_limited_workspace_is_held_back_until_slack_says_so(store, offhours, fake_slack, clock):
    """Slack answers 429 to one recap: the workspace's other recaps are not built, linked and refused one by one,
    they wait (claimed or not) for the Retry-After, and then each goes out once."""
    people = PEOPLE[:5]
    for person in people:
        connect(store, fake_slack, person, tz="America/New_York")
        record(store, person, "US1", at=utc(2026, 3, 4, 1, 0), due=DUE)
    sender = RecapSender(offhours.services, workers=1)
    fake_slack.fail("chat.postMessage", status=429, retry_after=30)

    assert sender.tick(DUE) == 0
    assert len(fake_slack.calls_to("chat.postMessage")) == 1  # not one refusal per person
    assert len(fake_slack.calls_to("chat.getPermalink")) == 1
    assert sender.held_until("T1", now=DUE) == DUE + timedelta(seconds=30)
    claimed = [r for r in recaps(store) if r["attempts"]]
    assert claimed and all(r["next_attempt_at"] == DUE + timedelta(seconds=30) for r in claimed)
    assert sender.tick(DUE + timedelta(seconds=29)) == 0
    assert len(fake_slack.calls_to("chat.postMessage")) == 1

    assert sender.tick(DUE + timedelta(seconds=30)) == len(people)
    assert [fake_slack.post_counts[p] for p in people] == [1] * len(people)
    assert {r["state"] for r in recaps(store)} == {"sent"}
    assert sender.held_until("T1", now=DUE + timedelta(seconds=30)) is None


def test_due_people_can_leave_held_workspaces_out(store):
    """A held workspace's people stay waiting; left out of the query, they cannot fill its page and keep
    another workspace's recaps from being claimed."""
    evening = utc(2026, 3, 4, 1, 0)
    record(store, "UP00", "US1", at=evening, due=DUE - timedelta(minutes=1))  # T1: due first
    connected(store, "UQ00", team_id="T2", now=evening)
    store.inbox.record(IncomingRecord(
        team_id="T2", recipient_id="UQ00", sender_id="US1", channel_id="DQ", ts=f"{evening.timestamp():.6f}",
        thread_ts=f"{evening.timestamp():.6f}", received_at=evening, due_at=DUE, text=None, window_key="k",
        reply=False,
    ), now=evening)  # fmt: skip
    assert [p[:2] for p in store.recaps.due_people(now=DUE, limit=1)] == [("T1", "UP00")]
    assert [p[:2] for p in store.recaps.due_people(now=DUE, limit=1, skip_teams=["T1"])] == [("T2", "UQ00")]


def test_a_held_workspace_does_not_keep_another_workspaces_recaps_waiting(store, offhours, fake_slack):
    evening = utc(2026, 3, 4, 1, 0)
    for person in PEOPLE[:3]:  # T1: due first, and more of them than one due query returns
        connect(store, fake_slack, person, tz="America/New_York")
        record(store, person, "US1", at=evening, due=DUE - timedelta(minutes=1))
    connect(store, fake_slack, "UQ00", team_id="T2", tz="America/New_York")
    store.inbox.record(IncomingRecord(
        team_id="T2", recipient_id="UQ00", sender_id="US1", channel_id=dm_channel("UQ00", "US1"),
        ts=f"{evening.timestamp():.6f}", thread_ts=f"{evening.timestamp():.6f}", received_at=evening, due_at=DUE,
        text=None, window_key="k", reply=False,
    ), now=evening)  # fmt: skip
    sender = RecapSender(offhours.services)
    sender.due_page = 2
    sender.hold("T1", DUE + timedelta(minutes=5))  # as a 429 on a T1 post would
    assert sender.tick(DUE) == 1
    assert [c.params["channel"] for c in fake_slack.calls_to("chat.postMessage")] == ["UQ00"]
    assert all(fake_slack.post_counts.get(p, 0) == 0 for p in PEOPLE[:3])


def test_a_hold_counts_from_the_429_not_from_the_start_of_a_long_tick(dm, store, fake_slack, clock, people):
    dm("U2")
    sender = RecapSender(people.services)
    fake_slack.fail("chat.postMessage", status=429, retry_after=30)
    clock.set(DUE + timedelta(minutes=3))  # the tick started at DUE and has been running for three minutes
    assert sender.tick(DUE) == 0
    assert sender.held_until("T1", now=DUE) == DUE + timedelta(minutes=3, seconds=30)
    [recap] = recaps(store)
    assert recap["next_attempt_at"] == DUE + timedelta(minutes=3, seconds=30)


def test_a_recap_whose_claim_was_taken_over_is_not_posted_again_by_its_first_owner(people, store, fake_slack, dm,
                                                                                   clock):  # fmt: skip
    """A's claim outlived its lease (a slow build, say) and B took the recap over and sent it: right before posting,
    A re-checks its claim in the database, finds it lost, and posts nothing."""
    dm("U2")
    a, b = RecapSender(people.services), RecapSender(people.services)
    [(team_id, user_id, due_at)] = store.recaps.due_people(now=DUE)
    claim = store.recaps.claim_new(team_id, user_id, due_at=due_at, now=DUE)
    assert claim is not None
    clock.set(DUE + timedelta(minutes=6))  # past the 5-minute lease
    assert b.tick(clock()) == 1  # took it over, looked for an earlier post (none), posted
    assert a.deliver(claim, now=DUE) is False
    assert len(posts(fake_slack)) == 1
    [recap] = recaps(store)
    assert (recap["state"], recap["delivery_state"], recap["attempts"]) == ("sent", "sent", 2)


@pytest.mark.parametrize("how", ["held", "stopped"])
def test_a_stale_owners_outcome_does_not_overwrite_the_recap_another_claim_sent(people, store, fake_slack, dm, clock,
                                                                                how):  # fmt: skip
    """A's claim outlived its lease and B took the recap over and sent it. A's late outcome that posted nothing
    (its workspace held back after a 429, or A stopping and handing the claim back) must not make the sent recap
    pending again: the next tick would post it a second time."""
    dm("U2")
    a, b = RecapSender(people.services), RecapSender(people.services)
    [(team_id, user_id, due_at)] = store.recaps.due_people(now=DUE)
    claim = store.recaps.claim_new(team_id, user_id, due_at=due_at, now=DUE)
    assert claim is not None
    clock.set(DUE + timedelta(minutes=6))  # past the 5-minute lease
    assert b.tick(clock()) == 1
    if how == "held":
        a.hold("T1", DUE + timedelta(minutes=1))
    else:
        a.stop()
    assert a.deliver(claim, now=DUE) is False
    [recap] = recaps(store)
    assert (recap["state"], recap["delivery_state"], recap["attempts"]) == ("sent", "sent", 2)
    clock.set(DUE + timedelta(minutes=20))
    assert b.tick(clock()) == 0
    assert len(posts(fake_slack)) == 1


def test_a_recap_handed_back_at_a_stop_keeps_its_attempt_and_goes_out_once(people, store, fake_slack, dm):
    """A stop lands after the claim: the recap goes back as not posted, due at once, and without using up an
    attempt (its backoff, should it fail later, starts where it was)."""
    dm("U2")
    sender = RecapSender(people.services)
    [(team_id, user_id, due_at)] = store.recaps.due_people(now=DUE)
    claim = store.recaps.claim_new(team_id, user_id, due_at=due_at, now=DUE)
    assert claim is not None
    sender.stop()
    assert sender.deliver(claim, now=DUE) is False
    [recap] = recaps(store)
    assert (recap["state"], recap["delivery_state"], recap["attempts"]) == ("pending", "not_posted", 0)
    assert RecapSender(people.services).tick(DUE) == 1
    assert len(posts(fake_slack)) == 1
