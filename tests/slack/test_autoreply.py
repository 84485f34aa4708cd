"""The after-hours auto-reply, through signed HTTP events and the fake Slack: what reached Slack, what was stored.

The clock starts on Tue 3 Mar 2026 22:00 in New York. U1 is the connected recipient (New York, Mon–Fri 09:00–17:30),
U2 the sender (Rome). The reply sender is driven with `drain(now=clock())` except in the background-thread test.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from bot.config import Config
from bot.domain.autoreply import METADATA_EVENT_TYPE
from bot.slack.app import OffhoursApp, create_app
from bot.storage import db
from bot.storage.store import Store
from bot.workers.replies import ReplySender
from tests.support.helpers import connect, rows
from tests.support.slackhttp import dm_channel

CHANNEL = dm_channel("U1", "U2")
TOKEN_U1 = "xoxp-T1-U1"


# --- helpers ------------------------------------------------------------------------------------------------


def join(app: OffhoursApp, store: Store, fake, user_id: str, *, tz: str = "America/New_York") -> str:
    """Connect a person as the OAuth flow does: installation row, then their settings from the profile zone."""
    token = connect(store, fake, user_id, tz=tz)
    app.services.people.ensure("T1", user_id, profile_tz=tz)
    return token


def messages(store: Store) -> list[dict]:
    return rows(store, db.messages)


def replies(store: Store) -> list[dict]:
    return rows(store, db.replies)


def texts(call) -> str:
    """Everything a person reads in a posted message: the fallback text and every block's text."""
    parts = [call.params.get("text") or ""]
    for block in call.params.get("blocks") or []:
        if block.get("type") == "section":
            parts.append(block["text"]["text"])
        elif block.get("type") == "context":
            parts.extend(e.get("text", "") for e in block["elements"])
    return "\n".join(parts)


@pytest.fixture
def senders() -> Iterator[list[ReplySender]]:
    made: list[ReplySender] = []
    yield made
    for sender in made:
        sender.stop(timeout=5)


@pytest.fixture
def drain(offhours, clock, senders):
    """drain() sends what is due now through a ReplySender of the app under test; returns how many were posted."""

    def run(app: OffhoursApp | None = None) -> int:
        sender = ReplySender((app or offhours).services)
        senders.append(sender)
        return sender.drain(now=clock())

    return run


@pytest.fixture
def people(offhours, store, fake_slack):
    """U1 (recipient, New York) connected; U2 (sender, Rome) known to Slack but not connected."""
    join(offhours, store, fake_slack, "U1")
    fake_slack.add_user("U2", tz="Europe/Rome")
    fake_slack.add_user("U3", tz="Asia/Tokyo")
    fake_slack.dm_members[CHANNEL] = ("U1", "U2")
    return offhours


def now_ts(clock, seconds: float = 0) -> float:
    return clock().timestamp() + seconds


def posts(fake):
    return fake.calls_to("chat.postMessage")


def your_time(timestamp: int, fallback: str) -> str:
    """{back_at_sender} as posted: a Slack date that each reader's client shows in their own zone, then "your time"."""
    return f"<!date^{timestamp}^{{date_short_pretty}} at {{time}}|{fallback}> your time"


WED_9_EST = your_time(1772632800, "Wed 09:00 UTC-05:00")  # 2026-03-04T14:00Z
THU_9_EST = your_time(1772719200, "Thu 09:00 UTC-05:00")  # 2026-03-05T14:00Z
MON_9_EDT = your_time(1773061200, "Mon 09:00 UTC-04:00")  # 2026-03-09T13:00Z, after New York's spring-forward


# --- the reply ------------------------------------------------------------------------------------------------


def test_off_hours_dm_is_recorded_before_the_ack_and_answered_once(people, store, fake_slack, slack, clock, drain):
    ts = now_ts(clock)
    response = slack.dm(sender="U2", recipient="U1", ts=ts, text="are you there?")
    assert response.status == 200

    # Stored before Slack heard "ok"; no Web API call was made for the reply yet.
    [message] = messages(store)
    assert message["team_id"] == "T1"
    assert message["recipient_id"] == "U1"
    assert message["sender_id"] == "U2"
    assert message["channel_id"] == CHANNEL
    assert message["ts"] == f"{ts:.6f}"
    assert message["thread_ts"] == f"{ts:.6f}"
    assert message["received_at"] == clock()
    assert message["due_at"] == datetime(2026, 3, 4, 14, 0, tzinfo=UTC)  # Wed 09:00 EST
    assert message["text"] is None  # recap.include_text is off by default
    assert message["state"] == "pending"
    [reply] = replies(store)
    assert (reply["state"], reply["sender_id"], reply["window_key"]) == ("pending", "U2", "back:2026-03-04T14:00Z")
    assert posts(fake_slack) == []

    assert drain() == 1
    [post] = posts(fake_slack)
    assert post.token == TOKEN_U1
    assert post.params["channel"] == CHANNEL
    assert post.params["thread_ts"] == f"{ts:.6f}"
    assert post.params["metadata"]["event_type"] == METADATA_EVENT_TYPE
    blocks = post.params["blocks"]
    assert blocks[0]["text"]["text"].splitlines()[0] == ":crescent_moon: *Auto-reply*"
    assert "Offhours" in blocks[-1]["elements"][0]["text"]
    assert post.params["text"].startswith(":crescent_moon: Auto-reply")
    body = texts(post)
    assert "Hi <@U2>" in body
    # Slack renders the date token in each reader's own zone: the sender's zone is never asked for.
    token = "<!date^1772632800^{date_short_pretty} at {time}|Wed 09:00 UTC-05:00>"
    assert f"back Wed 09:00 my time ({token} your time)" in post.params["text"]
    assert f"back Wed 09:00 my time ({token} your time)" in blocks[0]["text"]["text"]
    assert "by Wed 13:00 at the latest" in body
    assert fake_slack.calls_to("users.info") == []

    [reply] = replies(store)
    assert reply["state"] == "sent"
    assert reply["reply_ts"]
    assert reply["attempts"] == 1
    assert drain() == 0
    assert len(posts(fake_slack)) == 1


def test_a_dm_inside_a_thread_is_answered_in_that_thread(people, store, fake_slack, slack, clock, drain):
    root = now_ts(clock, -3600)
    ts = now_ts(clock)
    slack.dm(sender="U2", recipient="U1", ts=ts, thread_ts=f"{root:.6f}")
    assert messages(store)[0]["thread_ts"] == f"{root:.6f}"
    assert drain() == 1
    assert posts(fake_slack)[0].params["thread_ts"] == f"{root:.6f}"


def test_recap_text_is_stored_only_when_configured(make_app, store, fake_slack, clock):
    from tests.support.helpers import RunningServer
    from tests.support.slackhttp import SlackHTTP

    app = make_app(recap=replace(Config().recap, include_text=True))
    join(app, store, fake_slack, "U1")
    server = RunningServer(app)
    try:
        SlackHTTP(server.url).dm(sender="U2", recipient="U1", ts=now_ts(clock), text="the quarterly numbers")
    finally:
        server.close()
    assert messages(store)[0]["text"] == "the quarterly numbers"


def test_no_message_text_or_token_in_the_logs(people, store, fake_slack, slack, clock, drain, caplog):
    caplog.set_level(logging.DEBUG)
    slack.dm(sender="U2", recipient="U1", ts=now_ts(clock), text="confidential-words-4711")
    assert drain() == 1
    assert "confidential-words-4711" not in caplog.text
    assert TOKEN_U1 not in caplog.text
    assert "outcome=replied" in caplog.text


def test_new_senders_cost_no_users_info(people, store, fake_slack, slack, clock, drain):
    """A burst of first-time senders, known to Slack or not: each reply is the same date token, and Offhours asks
    Slack nothing about any of them (users.info is rate-limited; it was the largest cost per reply after the post)."""
    senders = ["U2", "U3", *(f"UNEW{n:02d}" for n in range(10))]  # U2 and U3 have profile zones, the others none
    for n, sender in enumerate(senders):
        slack.dm(sender=sender, recipient="U1", ts=now_ts(clock, n), channel=dm_channel("U1", sender))
    assert drain() == len(senders)
    assert len(posts(fake_slack)) == len(senders)
    for post in posts(fake_slack):
        assert f"back Wed 09:00 my time ({WED_9_EST})" in post.params["text"]
    assert fake_slack.calls_to("users.info") == []
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(db.profiles)).scalar_one() == 0


def test_a_custom_message_with_back_at_sender_is_posted_with_the_date_token(
    people, store, fake_slack, slack, clock, drain
):
    people.services.people.set_message("T1", "U1", "Off until {back_at} ({back_at_sender}), {sender}.")
    slack.dm(sender="U2", recipient="U1", ts=now_ts(clock))
    assert drain() == 1
    [post] = posts(fake_slack)
    assert post.params["text"] == f":crescent_moon: Auto-reply: Off until Wed 09:00 ({WED_9_EST}), <@U2>."
    assert post.params["blocks"][0]["text"]["text"] == (
        f":crescent_moon: *Auto-reply*\nOff until Wed 09:00 ({WED_9_EST}), <@U2>."
    )
    assert fake_slack.calls_to("users.info") == []


# --- when to reply -------------------------------------------------------------------------------------------


def test_no_reply_within_hours(people, store, fake_slack, slack, clock, drain):
    clock.set(datetime(2026, 3, 4, 15, 0, tzinfo=UTC))  # Wed 10:00 EST
    assert slack.dm(sender="U2", recipient="U1", ts=now_ts(clock)).status == 200
    assert messages(store) == []
    assert replies(store) == []
    assert drain() == 0
    assert posts(fake_slack) == []


def test_the_message_time_decides_not_the_arrival_time(people, store, fake_slack, slack, clock, drain):
    # Written at Wed 17:29 EST (working), delivered late at 17:31: no reply.
    clock.set(datetime(2026, 3, 4, 22, 31, tzinfo=UTC))
    slack.dm(sender="U2", recipient="U1", ts=now_ts(clock, -120))
    assert messages(store) == []
    assert drain() == 0


def test_reply_on_a_day_off(people, store, fake_slack, slack, clock, drain):
    people.services.people.add_days_off("T1", "U1", "2026-03-04", today=date(2026, 3, 4))
    clock.set(datetime(2026, 3, 4, 16, 0, tzinfo=UTC))  # Wed 11:00 EST, a working hour but a day off
    slack.dm(sender="U2", recipient="U1", ts=now_ts(clock))
    [message] = messages(store)
    assert message["due_at"] == datetime(2026, 3, 5, 14, 0, tzinfo=UTC)  # Thu 09:00
    assert drain() == 1
    assert f"back Thu 09:00 my time ({THU_9_EST})" in texts(posts(fake_slack)[0])


def test_reply_on_a_weekend(people, fake_slack, slack, clock, drain):
    clock.set(datetime(2026, 3, 7, 17, 0, tzinfo=UTC))  # Sat 12:00 EST
    slack.dm(sender="U2", recipient="U1", ts=now_ts(clock))
    assert drain() == 1
    assert f"back Mon 09:00 my time ({MON_9_EDT})" in texts(posts(fake_slack)[0])


IGNORED = {
    "bot_id": {"bot_id": "B9"},
    "bot_profile": {"bot_profile": {"id": "B9", "name": "deploys"}},
    "bot_message": {"subtype": "bot_message", "bot_id": "B9"},
    "our_metadata": {"metadata": {"event_type": METADATA_EVENT_TYPE, "event_payload": {}}},
    "other_auto_reply_metadata": {"metadata": {"event_type": "ooo_auto_reply", "event_payload": {}}},
    "channel_join": {"subtype": "channel_join"},
    "me_message": {"subtype": "me_message"},
    "tombstone": {"subtype": "tombstone"},
}


@pytest.mark.parametrize("fields", IGNORED.values(), ids=IGNORED.keys())
def test_no_reply_to_bots_auto_replies_and_other_subtypes(people, store, fake_slack, slack, clock, drain, fields):
    assert slack.dm(sender="U2", recipient="U1", ts=now_ts(clock), **fields).status == 200
    assert messages(store) == []
    assert drain() == 0
    assert posts(fake_slack) == []


def test_no_reply_to_slackbot(people, store, fake_slack, slack, clock, drain):
    slack.dm(sender="USLACKBOT", recipient="U1", ts=now_ts(clock))
    assert messages(store) == []
    assert drain() == 0


def test_no_reply_to_an_edit(people, store, fake_slack, slack, clock, drain):
    ts = f"{now_ts(clock):.6f}"
    event = {
        "type": "message",
        "subtype": "message_changed",
        "channel": CHANNEL,
        "channel_type": "im",
        "hidden": True,
        "ts": f"{now_ts(clock, 5):.6f}",
        "message": {"type": "message", "user": "U2", "text": "edited", "ts": ts, "edited": {"user": "U2", "ts": ts}},
        "previous_message": {"type": "message", "user": "U2", "text": "hello", "ts": ts},
    }
    assert slack.event(event, authorized="U1").status == 200
    assert messages(store) == []
    assert drain() == 0


def test_no_reply_to_a_group_dm(people, store, fake_slack, slack, clock, drain):
    slack.dm(sender="U2", recipient="U1", ts=now_ts(clock), channel="GMPIM1", channel_type="mpim")
    assert messages(store) == []
    assert drain() == 0


def test_no_reply_to_yourself(people, store, fake_slack, slack, clock, drain):
    # U1 writes to U2 in the evening, seen through U1's token: U2 is not connected, U1 is not the recipient.
    slack.dm(sender="U1", recipient="U2", ts=now_ts(clock), authorized="U1")
    assert messages(store) == []
    assert drain() == 0


@pytest.mark.parametrize("subtype", ["file_share", "thread_broadcast"])
def test_files_and_thread_broadcasts_count(people, store, fake_slack, slack, clock, drain, subtype):
    ts = now_ts(clock)
    extra = {"thread_ts": f"{ts - 60:.6f}"} if subtype == "thread_broadcast" else {"files": [{"id": "F1"}]}
    slack.dm(sender="U2", recipient="U1", ts=ts, subtype=subtype, **extra)
    assert len(messages(store)) == 1
    assert drain() == 1


def test_not_connected_recipient(offhours, store, fake_slack, slack, clock, drain):
    # U2's token saw it (U2 is connected), U1 is not: nothing to record for U1, no reply.
    join(offhours, store, fake_slack, "U2", tz="Europe/Rome")
    fake_slack.add_user("U1")
    fake_slack.dm_members[CHANNEL] = ("U1", "U2")
    slack.dm(sender="U2", recipient="U1", ts=now_ts(clock), authorized="U2")
    assert messages(store) == []
    assert drain() == 0
    assert posts(fake_slack) == []


def test_paused_recipient_gets_a_recap_but_no_reply(people, store, fake_slack, slack, clock, drain):
    people.services.people.set_paused("T1", "U1", True)
    slack.dm(sender="U2", recipient="U1", ts=now_ts(clock))
    assert len(messages(store)) == 1
    assert replies(store) == []
    assert drain() == 0
    assert posts(fake_slack) == []


def test_pausing_before_the_reply_is_sent_cancels_it(people, store, fake_slack, slack, clock, drain):
    slack.dm(sender="U2", recipient="U1", ts=now_ts(clock))
    people.services.people.set_paused("T1", "U1", True)
    assert drain() == 0
    assert posts(fake_slack) == []
    assert replies(store)[0]["state"] == "expired"


# --- once per sender per off-window ------------------------------------------------------------------------------


def test_throttle_one_reply_per_sender_per_evening(people, store, fake_slack, slack, clock, drain):
    slack.dm(sender="U2", recipient="U1", ts=now_ts(clock), text="one")
    assert drain() == 1
    clock.advance(minutes=30)
    slack.dm(sender="U2", recipient="U1", ts=now_ts(clock), text="two")
    clock.advance(hours=4)  # 02:30, still the same night
    slack.dm(sender="U2", recipient="U1", ts=now_ts(clock), text="three")
    assert drain() == 0
    assert len(messages(store)) == 3  # all three for the recap
    assert len(replies(store)) == 1
    assert len(posts(fake_slack)) == 1

    # Another sender the same night gets their own reply.
    slack.dm(sender="U3", recipient="U1", ts=now_ts(clock), channel=dm_channel("U1", "U3"))
    assert drain() == 1
    # The next evening is a new window.
    clock.set(datetime(2026, 3, 5, 3, 0, tzinfo=UTC))
    slack.dm(sender="U2", recipient="U1", ts=now_ts(clock))
    assert drain() == 1
    assert [p.params["channel"] for p in posts(fake_slack)] == [CHANNEL, dm_channel("U1", "U3"), CHANNEL]


def test_once_per_day(make_app, store, fake_slack, clock, senders):
    from tests.support.helpers import RunningServer
    from tests.support.slackhttp import SlackHTTP

    app = make_app(reply=replace(Config().reply, once_per="day"))
    join(app, store, fake_slack, "U1")
    fake_slack.add_user("U2", tz="Europe/Rome")
    server = RunningServer(app)
    try:
        slack = SlackHTTP(server.url)
        sender = ReplySender(app.services)
        senders.append(sender)
        slack.dm(sender="U2", recipient="U1", ts=now_ts(clock))  # Tue 22:00
        clock.advance(hours=1)  # Tue 23:00: the same day
        slack.dm(sender="U2", recipient="U1", ts=now_ts(clock))
        assert sender.drain(now=clock()) == 1
        clock.advance(hours=2)  # Wed 01:00: the same off-window, but a new day
        slack.dm(sender="U2", recipient="U1", ts=now_ts(clock))
        assert sender.drain(now=clock()) == 1
    finally:
        server.close()
    assert [r["window_key"] for r in replies(store)] == ["day:2026-03-03", "day:2026-03-04"]
    assert len(messages(store)) == 3
    assert len(posts(fake_slack)) == 2


# --- answered and deleted -------------------------------------------------------------------------------------


def echo_of(post, *, sender: str = "U1", **fields) -> dict:
    """The `message` event Slack sends back for a reply posted with the recipient's token."""
    event = {
        "type": "message",
        "channel": post.params["channel"],
        "channel_type": "im",
        "user": sender,
        "text": post.params["text"],
        "ts": "1772593300.000200",
        "thread_ts": post.params["thread_ts"],
        "parent_user_id": "U2",
    }
    event.update(fields)
    return event


ECHOES = {
    "metadata_and_app_id": {"metadata": {"event_type": METADATA_EVENT_TYPE, "event_payload": {}}, "app_id": "A1"},
    "metadata_only": {"metadata": {"event_type": METADATA_EVENT_TYPE, "event_payload": {"reply_id": "1"}}},
    "app_id_only": {"app_id": "A1"},
}


@pytest.mark.parametrize("fields", ECHOES.values(), ids=ECHOES.keys())
def test_the_echo_of_our_reply_is_not_the_recipient_answering(people, store, fake_slack, slack, clock, drain, fields):
    slack.dm(sender="U2", recipient="U1", ts=now_ts(clock))
    assert drain() == 1
    [post] = posts(fake_slack)
    fake_slack.reset_calls()
    assert slack.event(echo_of(post, **fields), authorized="U1").status == 200
    assert [m["state"] for m in messages(store)] == ["pending"]
    assert len(messages(store)) == 1
    assert drain() == 0
    assert fake_slack.calls == []  # not even a conversations.info lookup


def test_the_recipient_answering_marks_the_dm_answered(people, store, fake_slack, slack, clock, drain):
    slack.dm(sender="U2", recipient="U1", ts=now_ts(clock), text="one")
    slack.dm(sender="U2", recipient="U1", ts=now_ts(clock, 60), text="two")
    slack.dm(sender="U3", recipient="U1", ts=now_ts(clock, 90), channel=dm_channel("U1", "U3"))
    assert drain() == 2
    clock.advance(minutes=5)
    # U1 writes in the DM with U2 (seen through U1's own token).
    assert slack.dm(sender="U1", recipient="U2", ts=now_ts(clock), authorized="U1").status == 200
    states = {(m["channel_id"], m["ts"]): m["state"] for m in messages(store)}
    assert sorted(states.values()) == ["answered", "answered", "pending"]
    assert states[(dm_channel("U1", "U3"), f"{now_ts(clock, -300 + 90):.6f}")] == "pending"
    # U1's own message was not recorded, and U2 (not connected) gets no auto-reply.
    assert len(messages(store)) == 3
    assert drain() == 0


def test_an_answer_before_the_reply_goes_out_cancels_it(people, store, fake_slack, slack, clock, drain):
    slack.dm(sender="U2", recipient="U1", ts=now_ts(clock))
    slack.dm(sender="U1", recipient="U2", ts=now_ts(clock, 30), authorized="U1")
    assert drain() == 0
    assert posts(fake_slack) == []
    assert replies(store)[0]["state"] == "expired"


def deletion(ts: float, *, channel: str = CHANNEL, sender: str = "U2") -> dict:
    return {
        "type": "message",
        "subtype": "message_deleted",
        "channel": channel,
        "channel_type": "im",
        "hidden": True,
        "deleted_ts": f"{ts:.6f}",
        "ts": f"{ts + 100:.6f}",
        "previous_message": {"type": "message", "user": sender, "text": "oops", "ts": f"{ts:.6f}"},
    }


def test_a_deleted_message_is_dropped(people, store, fake_slack, slack, clock, drain):
    ts = now_ts(clock)
    slack.dm(sender="U2", recipient="U1", ts=ts)
    assert drain() == 1
    assert slack.event(deletion(ts), authorized="U1").status == 200
    [message] = messages(store)
    assert message["state"] == "deleted"
    assert message["text"] is None


def test_a_message_deleted_before_its_reply_gets_none(people, store, fake_slack, slack, clock, drain):
    ts = now_ts(clock)
    slack.dm(sender="U2", recipient="U1", ts=ts)
    slack.event(deletion(ts), authorized="U1")
    assert drain() == 0
    assert posts(fake_slack) == []
    assert replies(store) == []
    # The sender's next message that night still gets its one reply.
    slack.dm(sender="U2", recipient="U1", ts=ts + 120)
    assert drain() == 1
    assert posts(fake_slack)[0].params["thread_ts"] == f"{ts + 120:.6f}"


# --- durable, exactly once --------------------------------------------------------------------------------------


def test_a_redelivered_event_is_recorded_and_answered_once(people, store, fake_slack, slack, clock, drain):
    ts = now_ts(clock)
    assert slack.dm(sender="U2", recipient="U1", ts=ts, event_id="EvSAME").status == 200
    assert slack.dm(sender="U2", recipient="U1", ts=ts, event_id="EvSAME", retry_num=1).status == 200
    assert slack.dm(sender="U2", recipient="U1", ts=ts, event_id="EvSAME", retry_num=2).status == 200
    assert len(messages(store)) == 1
    assert len(replies(store)) == 1
    assert drain() == 1
    assert drain() == 0
    assert len(posts(fake_slack)) == 1


def test_concurrent_copies_of_one_event_are_recorded_and_answered_once(people, store, fake_slack, clock, drain):
    from tests.support.helpers import RunningServer
    from tests.support.slackhttp import SlackHTTP

    # Two "processes" (two apps, two servers) over one database, each receiving copies at the same moment.
    other = create_app(
        people.services.config, Store(store.url, client_id="111.222"),
        settings=people.services.settings, client=people.services.client, clock=clock,
    )  # fmt: skip
    servers = [RunningServer(people), RunningServer(other)]
    ts = now_ts(clock)
    copies = 8
    barrier = threading.Barrier(copies)
    statuses: list[int] = []

    def deliver(i: int) -> None:
        barrier.wait()
        response = SlackHTTP(servers[i % 2].url).dm(
            sender="U2", recipient="U1", ts=ts, event_id="EvSAME", retry_num=i or None
        )
        statuses.append(response.status)

    threads = [threading.Thread(target=deliver, args=(i,)) for i in range(copies)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    finally:
        for s in servers:
            s.close()
        other.services.store.close()
    assert statuses == [200] * copies
    assert len(messages(store)) == 1
    assert len(replies(store)) == 1
    # Two reply senders draining at once still post it once.
    results: list[int] = []
    both = [threading.Thread(target=lambda: results.append(drain())) for _ in range(2)]
    for t in both:
        t.start()
    for t in both:
        t.join(30)
    assert sorted(results) == [0, 1]
    assert len(posts(fake_slack)) == 1


def test_reply_failures_are_retried_with_backoff_and_sent_once(people, store, fake_slack, slack, clock, drain):
    fake_slack.fail("chat.postMessage", status=500)
    fake_slack.fail("chat.postMessage", status=429, retry_after=7)
    fake_slack.fail("chat.postMessage", disconnect=True)
    slack.dm(sender="U2", recipient="U1", ts=now_ts(clock))

    assert drain() == 0  # 500: Slack may have posted all the same
    [reply] = replies(store)
    assert (reply["state"], reply["attempts"], reply["last_error"]) == ("pending", 1, "internal_error")
    assert reply["delivery_state"] == "outcome_unknown"  # Slack may have posted it: the retry looks first
    assert reply["next_attempt_at"] == clock() + timedelta(seconds=10)
    clock.advance(seconds=9)
    assert drain() == 0  # not due yet: nothing posted
    assert len(posts(fake_slack)) == 1

    clock.advance(seconds=1)
    assert drain() == 0  # looks for the post first (not there), then 429, Retry-After: 7
    assert len(fake_slack.calls_to("conversations.replies")) == 1
    [reply] = replies(store)
    assert (reply["attempts"], reply["last_error"]) == (2, "ratelimited")
    assert reply["next_attempt_at"] == clock() + timedelta(seconds=7)

    clock.advance(seconds=7)
    assert drain() == 0  # the connection drops
    [reply] = replies(store)
    assert (reply["state"], reply["attempts"]) == ("pending", 3)
    assert (reply["delivery_state"], reply["last_error"]) in (
        ("outcome_unknown", "RemoteDisconnected"),
        ("outcome_unknown", "ConnectionResetError"),
        ("not_posted", "URLError"),
    )
    assert reply["next_attempt_at"] == clock() + timedelta(seconds=40)

    clock.advance(seconds=40)
    assert drain() == 1
    assert drain() == 0
    assert len(fake_slack.calls_to("conversations.replies")) == 2  # after the 500 and the drop, not the 429
    calls = posts(fake_slack)
    assert len(calls) == 4  # three failures, one success
    assert {c.params["thread_ts"] for c in calls} == {calls[0].params["thread_ts"]}
    [reply] = replies(store)
    assert (reply["state"], reply["attempts"], reply["last_error"]) == ("sent", 4, None)


def test_a_definite_refusal_is_not_retried(people, store, fake_slack, slack, clock, drain):
    fake_slack.fail("chat.postMessage", error="channel_not_found")
    slack.dm(sender="U2", recipient="U1", ts=now_ts(clock))
    assert drain() == 0
    clock.advance(minutes=10)
    assert drain() == 0
    assert len(posts(fake_slack)) == 1
    assert replies(store)[0]["state"] == "failed"


@pytest.mark.parametrize("error", ["invalid_auth", "token_revoked"])
def test_a_revoked_token_disconnects_the_person(people, store, fake_slack, slack, clock, drain, error):
    fake_slack.fail("chat.postMessage", error=error)
    slack.dm(sender="U2", recipient="U1", ts=now_ts(clock))
    assert drain() == 0
    assert store.user_token("T1", "U1") is None
    assert replies(store) == []
    assert messages(store) == []
    clock.advance(minutes=5)
    slack.dm(sender="U2", recipient="U1", ts=now_ts(clock))
    assert drain() == 0
    assert len(posts(fake_slack)) == 1


def test_a_crash_between_ack_and_reply_loses_nothing(people, store, settings, fake_slack, slack, clock, senders):
    slack.dm(sender="U2", recipient="U1", ts=now_ts(clock))
    # The process dies here: the reply was never sent. A new process starts on the same database.
    store.close()
    restarted_store = Store(store.url, client_id="111.222")
    try:
        restarted = create_app(Config(), restarted_store, settings=settings, client=people.services.client, clock=clock)
        clock.advance(seconds=30)
        sender = ReplySender(restarted.services)
        senders.append(sender)
        assert sender.drain(now=clock()) == 1
        assert sender.drain(now=clock()) == 0
        [post] = posts(fake_slack)
        assert post.token == TOKEN_U1
        assert post.params["metadata"]["event_type"] == METADATA_EVENT_TYPE
        assert [r["state"] for r in replies(restarted_store)] == ["sent"]
        assert len(messages(restarted_store)) == 1
    finally:
        restarted_store.close()


def test_a_reply_claimed_by_a_process_that_died_is_sent_after_its_lease(people, store, fake_slack, slack, clock, drain):
    slack.dm(sender="U2", recipient="U1", ts=now_ts(clock))
    [claimed] = store.replies.claim_due(now=clock())  # ... and then that process crashed
    assert drain() == 0
    clock.advance(seconds=61)
    assert drain() == 1
    assert len(posts(fake_slack)) == 1
    assert replies(store)[0]["id"] == claimed.id


def test_no_reply_once_the_recipient_is_back(people, store, fake_slack, slack, clock, drain):
    slack.dm(sender="U2", recipient="U1", ts=now_ts(clock))
    clock.set(datetime(2026, 3, 4, 14, 30, tzinfo=UTC))  # Wed 09:30: the reply would say "I'm offline"
    assert drain() == 0
    assert posts(fake_slack) == []
    [reply] = replies(store)
    assert (reply["state"], reply["last_error"]) == ("expired", "recipient_back")
    assert messages(store)[0]["state"] == "pending"  # still in the recap


def test_ephemeral_mode(make_app, store, fake_slack, clock, senders):
    from tests.support.helpers import RunningServer
    from tests.support.slackhttp import SlackHTTP

    app = make_app(reply=replace(Config().reply, mode="ephemeral"))
    join(app, store, fake_slack, "U1")
    fake_slack.add_user("U2", tz="Europe/Rome")
    server = RunningServer(app)
    try:
        SlackHTTP(server.url).dm(sender="U2", recipient="U1", ts=now_ts(clock))
    finally:
        server.close()
    sender = ReplySender(app.services)
    senders.append(sender)
    assert sender.drain(now=clock()) == 1
    assert posts(fake_slack) == []
    [post] = fake_slack.calls_to("chat.postEphemeral")
    assert post.token == TOKEN_U1
    assert (post.params["channel"], post.params["user"]) == (CHANNEL, "U2")
    assert f"back Wed 09:00 my time ({WED_9_EST})" in texts(post)
    assert post.params["blocks"][0]["text"]["text"].startswith(":crescent_moon: *Auto-reply*")
    assert "thread_ts" not in post.params  # a top-level DM: shown in the conversation, not in a new thread
    assert replies(store)[0]["state"] == "sent"


def test_ephemeral_mode_answers_a_thread_reply_in_its_thread(make_app, store, fake_slack, clock, senders):
    from tests.support.helpers import RunningServer
    from tests.support.slackhttp import SlackHTTP

    app = make_app(reply=replace(Config().reply, mode="ephemeral"))
    join(app, store, fake_slack, "U1")
    server = RunningServer(app)
    root = f"{now_ts(clock) - 60:.6f}"
    try:
        SlackHTTP(server.url).dm(sender="U2", recipient="U1", ts=now_ts(clock), thread_ts=root)
    finally:
        server.close()
    sender = ReplySender(app.services)
    senders.append(sender)
    assert sender.drain(now=clock()) == 1
    [post] = fake_slack.calls_to("chat.postEphemeral")
    assert (post.params["user"], post.params["thread_ts"]) == ("U2", root)


def test_dst_night_back_at_has_the_new_offset(people, store, fake_slack, slack, clock, drain):
    # Sun 8 Mar 2026, 01:30 EST: at 02:00 New York springs forward to 03:00 EDT.
    clock.set(datetime(2026, 3, 8, 6, 30, tzinfo=UTC))
    slack.dm(sender="U2", recipient="U1", ts=now_ts(clock))
    clock.advance(hours=1)  # 03:30 EDT: the same off-window
    slack.dm(sender="U2", recipient="U1", ts=now_ts(clock))
    monday_9_edt = datetime(2026, 3, 9, 13, 0, tzinfo=UTC)  # 09:00 at UTC-4, not 14:00 UTC
    assert [m["due_at"] for m in messages(store)] == [monday_9_edt, monday_9_edt]
    [reply] = replies(store)
    assert reply["window_key"] == "back:2026-03-09T13:00Z"
    assert drain() == 1
    body = texts(posts(fake_slack)[0])
    # The date token is 13:00 UTC, which Slack shows each reader in their zone (14:00 in Rome, still on CET); the
    # fallback is New York's new offset.
    assert f"back Mon 09:00 my time ({MON_9_EDT})" in body
    assert len(posts(fake_slack)) == 1


def test_a_dm_seen_only_through_its_senders_token_asks_nothing_when_no_one_else_is_connected(
    people, store, fake_slack, slack, clock, drain
):
    # U1 (connected) writes to U2 (not connected) in a DM Offhours has not seen: no one else is connected, so the
    # other member cannot be anyone Offhours answers for, and Slack is not asked who it is.
    slack.dm(sender="U1", recipient="U2", ts=now_ts(clock), authorized="U1")
    assert fake_slack.calls_to("conversations.info") == []
    assert messages(store) == []
    join(people, store, fake_slack, "U3", tz="Europe/Rome")  # now someone else is: the lookup is worth making
    slack.dm(sender="U1", recipient="U2", ts=now_ts(clock) + 1, authorized="U1")
    assert len(fake_slack.calls_to("conversations.info")) == 1
    assert drain() == 0


def test_the_authorized_user_is_the_sender(people, store, fake_slack, slack, clock, drain):
    # Both are connected; Slack lists only U2's authorization on a DM U2 wrote to U1.
    join(people, store, fake_slack, "U2", tz="Europe/Rome")
    ts = now_ts(clock)
    slack.dm(sender="U2", recipient="U1", ts=ts, authorized="U2")
    [info] = fake_slack.calls_to("conversations.info")
    assert (info.token, info.params["channel"]) == ("xoxp-T1-U2", CHANNEL)
    [message] = messages(store)
    assert (message["recipient_id"], message["sender_id"]) == ("U1", "U2")
    assert drain() == 1
    [post] = posts(fake_slack)
    assert post.token == TOKEN_U1
    assert post.params["thread_ts"] == f"{ts:.6f}"
    # The DM's members are cached: no second lookup.
    clock.advance(days=1)
    slack.dm(sender="U2", recipient="U1", ts=now_ts(clock), authorized="U2")
    assert len(fake_slack.calls_to("conversations.info")) == 1
    assert len(messages(store)) == 2


def test_the_background_thread_sends_without_drain(people, store, fake_slack, slack, clock, senders):
    sender = ReplySender(people.services, poll_seconds=60)
    senders.append(sender)
    sender.start()
    slack.dm(sender="U2", recipient="U1", ts=now_ts(clock))
    [post] = fake_slack.wait_for("chat.postMessage")  # woken by replies_queued, not by the 60 s poll
    assert post.token == TOKEN_U1
    sender.stop()  # joins the thread, so its drain has recorded the outcome
    assert replies(store)[0]["state"] == "sent"
    assert len(posts(fake_slack)) == 1


def test_an_unexpected_error_on_one_reply_does_not_cost_the_batch_its_outcomes(
    people, store, fake_slack, slack, clock, offhours, senders
):
    """One post blows up with a bug (not a Slack or network error): the others of the batch are recorded as sent,
    and the broken one waits for a retry that first looks for its own post (it may have gone out)."""
    for n, sender in enumerate(["U2", "U3", "U4"]):
        slack.dm(sender=sender, recipient="U1", ts=now_ts(clock, n), channel=dm_channel("U1", sender))
    sender = ReplySender(offhours.services)
    senders.append(sender)
    post = sender.kind.post

    def broken_for_u3(reply, ready):
        if reply.sender_id == "U3":
            raise ValueError("a bug")
        return post(reply, ready)

    sender.kind.post = broken_for_u3
    assert sender.drain(now=clock()) == 2
    by_sender = {r["sender_id"]: r for r in replies(store)}
    assert {s: r["state"] for s, r in by_sender.items()} == {"U2": "sent", "U3": "pending", "U4": "sent"}
    assert by_sender["U3"]["last_error"] == "unexpected"

    sender.kind.post = post  # fixed; the retry asks the thread first, finds nothing, and posts once
    clock.advance(minutes=1)
    assert sender.drain(now=clock()) == 1
    assert len(fake_slack.calls_to("conversations.replies")) == 1
    assert sorted(p.params["channel"] for p in posts(fake_slack)) == sorted(
        dm_channel("U1", s) for s in ("U2", "U3", "U4")
    )


# --- the HTTP server hands DMs to the listener's handler itself (bot/slack/web.py) ------------------------------


def test_a_dm_over_http_does_not_go_through_bolts_dispatch_a_command_does(people, store, slack, clock, monkeypatch):
    dispatched: list[str] = []
    dispatch = people.bolt.dispatch

    def spy(request):
        dispatched.append(request.body.get("type") or request.body.get("command") or "?")
        return dispatch(request)

    monkeypatch.setattr(people.bolt, "dispatch", spy)
    assert slack.dm(sender="U2", recipient="U1", ts=now_ts(clock)).status == 200
    assert len(messages(store)) == 1 and len(replies(store)) == 1
    assert dispatched == []
    assert slack.command("show", user="U1").status == 200
    assert dispatched == ["/hours"]


def test_a_dm_to_a_workspace_offhours_is_not_installed_in_is_bolts_and_records_nothing(people, store, slack, clock):
    other = type(slack)(slack.base_url, team_id="T9")
    response = other.dm(sender="U2", recipient="U1", ts=now_ts(clock))
    assert response.status == 200  # Bolt's answer when it finds no installation: Slack must not retry
    assert messages(store) == [] and replies(store) == []


def test_an_unexpected_failure_on_the_dm_path_is_a_500_without_the_text_in_the_logs(
    people, store, slack, clock, monkeypatch, caplog
):
    """Slack redelivers on a 500; nothing was recorded, and the log line names the error, never the message."""

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(store, "dm_view", broken)
    caplog.set_level(logging.DEBUG)
    response = slack.dm(sender="U2", recipient="U1", ts=now_ts(clock), text="confidential-words-4711")
    assert response.status == 500
    assert messages(store) == []
    assert "unhandled error type=event_callback error=RuntimeError" in caplog.text
    assert "confidential-words-4711" not in caplog.text
    monkeypatch.undo()
    retried = slack.dm(sender="U2", recipient="U1", ts=now_ts(clock), text="confidential-words-4711")
    assert retried.status == 200 and len(messages(store)) == 1


# The app's own messages in a connected person's DM with it (message.im is a user event: their token sees it too),
# their edits and deletions: acked without the handler, as Bolt's IgnoringSelfEvents did.
SELF_EVENTS = {
    "post": {"user": "UBOT", "bot_id": "B1"},
    "edit": {"subtype": "message_changed", "message": {"user": "UBOT", "bot_id": "B1", "ts": "1.0", "text": "x"}},
    "delete": {"subtype": "message_deleted", "deleted_ts": "1772593200.000100",
               "previous_message": {"user": "UBOT", "bot_id": "B1", "ts": "1772593200.000100"}},
}  # fmt: skip


@pytest.mark.parametrize("fields", SELF_EVENTS.values(), ids=SELF_EVENTS.keys())
def test_the_apps_own_messages_in_its_dm_are_acked_without_the_listener_as_bolt_did(
    people, store, slack, clock, caplog, fields
):
    caplog.set_level(logging.DEBUG)
    event = {"type": "message", "channel": "DAPPU1", "channel_type": "im", "text": "your recap",
             "ts": f"{now_ts(clock):.6f}", **fields}  # fmt: skip
    assert slack.event(event, authorized="U1").status == 200
    assert "event type=message" not in caplog.text  # Bolt: "Skipped self event", no listener, no log line
    assert messages(store) == [] and replies(store) == []
