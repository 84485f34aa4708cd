"""The pure auto-reply rules: who gets an answer, once per what, and what it says. Fixed instants, no Slack."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.config import Config
from bot.domain.autoreply import (
    METADATA_EVENT_TYPE,
    DirectMessage,
    compose,
    ignore_reason,
    is_person_writing,
    window_key,
)
from bot.domain.hours import parse_days_off, parse_hours
from bot.domain.preferences import Preferences, preferences

# Tue 3 Mar 2026 22:00 in New York (EST, UTC-5); the recipient is back Wed 09:00 EST = 14:00 UTC.
TUE_EVENING = datetime(2026, 3, 4, 3, 0, tzinfo=UTC)


def dm(**changes) -> DirectMessage:
    message = DirectMessage(
        team_id="T1",
        channel_id="DU1U2",
        channel_type="im",
        ts="1772593200.000100",
        thread_ts=None,
        sender_id="U2",
        subtype=None,
        is_bot=False,
        metadata_event_type=None,
        text="hello",
    )
    return replace(message, **changes)


def prefs(tz: str = "America/New_York", hours: str = "mon-fri 9-17:30", **changes) -> Preferences:
    base = preferences(None, Config().defaults, team_id="T1", user_id="U1")
    schedule = replace(base.schedule, tz=tz, weekly=parse_hours(hours))
    return replace(base, schedule=schedule, **changes)


# --- ignore_reason ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("subtype", [None, "file_share", "thread_broadcast"])
def test_a_person_writing_gets_a_reply(subtype):
    assert ignore_reason(dm(subtype=subtype), recipient_id="U1") is None
    assert is_person_writing(dm(subtype=subtype))


@pytest.mark.parametrize(
    ("message", "recipient", "reason"),
    [
        (dm(channel_type="mpim"), "U1", "not_dm"),
        (dm(channel_type="channel"), "U1", "not_dm"),
        (dm(metadata_event_type=METADATA_EVENT_TYPE), "U1", "auto_reply"),
        (dm(from_this_app=True), "U1", "auto_reply"),
        (dm(metadata_event_type="vacation_auto_reply"), "U1", "auto_reply"),
        (dm(metadata_event_type="ooo_autoresponder"), "U1", "auto_reply"),
        (dm(subtype="auto_response"), "U1", "auto_reply"),
        (dm(is_bot=True), "U1", "bot"),
        (dm(subtype="bot_message", sender_id=None), "U1", "bot"),
        (dm(sender_id="USLACKBOT"), "U1", "slackbot"),
        (dm(subtype="message_changed", sender_id=None), "U1", "subtype:message_changed"),
        (dm(subtype="message_deleted", sender_id=None), "U1", "subtype:message_deleted"),
        (dm(subtype="channel_join"), "U1", "subtype:channel_join"),
        (dm(subtype="me_message"), "U1", "subtype:me_message"),
        (dm(subtype="message_replied"), "U1", "subtype:message_replied"),
        (dm(sender_id=None), "U1", "no_sender"),
        (dm(), None, "unknown_recipient"),
        (dm(sender_id="U1"), "U1", "self"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_messages_that_get_no_reply(message, recipient, reason):
    assert ignore_reason(message, recipient_id=recipient) == reason


@pytest.mark.parametrize(
    "message",
    [
        dm(is_bot=True),
        dm(sender_id="USLACKBOT"),
        dm(metadata_event_type=METADATA_EVENT_TYPE),
        dm(from_this_app=True),
        dm(subtype="message_changed"),
        dm(sender_id=None),
    ],
)
def test_only_a_person_writing_answers_a_dm(message):
    assert not is_person_writing(message)


def test_thread_root_is_the_thread_or_the_message_itself():
    assert dm().thread_root == "1772593200.000100"
    assert dm(thread_ts="1772590000.000100").thread_root == "1772590000.000100"


# --- window_key ---------------------------------------------------------------------------------------------


def test_one_off_window_key_per_evening():
    p = prefs()
    first = window_key(p, at=TUE_EVENING, once_per="off_window")
    assert first == "back:2026-03-04T14:00Z"
    # Later the same night, and after midnight: the same off-window.
    assert window_key(p, at=TUE_EVENING + timedelta(hours=1, minutes=30), once_per="off_window") == first
    assert window_key(p, at=TUE_EVENING + timedelta(hours=8), once_per="off_window") == first
    # The next evening is a new window.
    assert window_key(p, at=TUE_EVENING + timedelta(days=1), once_per="off_window") == "back:2026-03-05T14:00Z"


def test_a_weekend_is_one_off_window():
    p = prefs()
    friday_evening = datetime(2026, 3, 6, 23, 0, tzinfo=UTC)  # Fri 18:00 EST
    sunday = datetime(2026, 3, 8, 18, 0, tzinfo=UTC)  # Sun 14:00 EDT
    # Back Mon 9 Mar 09:00 EDT (the clocks sprang forward on Sunday) = 13:00 UTC.
    assert window_key(p, at=friday_evening, once_per="off_window") == "back:2026-03-09T13:00Z"
    assert window_key(p, at=sunday, once_per="off_window") == "back:2026-03-09T13:00Z"


def test_day_keys_follow_the_recipients_calendar():
    p = prefs()
    assert window_key(p, at=TUE_EVENING, once_per="day") == "day:2026-03-03"
    # 01:00 Wednesday in New York: the same off-window, a new day.
    assert window_key(p, at=TUE_EVENING + timedelta(hours=3), once_per="day") == "day:2026-03-04"
    # A zone east of UTC: the same instant is already Wednesday in Tokyo (12:00, but that person is off too).
    tokyo = prefs(tz="Asia/Tokyo", hours="mon-fri 13-17")
    assert window_key(tokyo, at=TUE_EVENING, once_per="day") == "day:2026-03-04"


def test_no_window_while_working():
    p = prefs()
    wednesday_10 = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
    assert window_key(p, at=wednesday_10, once_per="off_window") is None
    assert window_key(p, at=wednesday_10, once_per="day") is None


def test_a_day_off_is_an_off_window_until_the_next_working_day():
    p = prefs()
    p = replace(p, schedule=p.schedule.with_days_off([parse_days_off("2026-03-04")]))
    wednesday_10 = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
    assert window_key(p, at=wednesday_10, once_per="off_window") == "back:2026-03-05T14:00Z"
    assert window_key(p, at=TUE_EVENING, once_per="off_window") == "back:2026-03-05T14:00Z"


# --- compose ------------------------------------------------------------------------------------------------


def test_compose_shows_back_at_in_the_recipients_zone_and_as_a_slack_date_for_the_reader():
    text = compose(prefs(), now=TUE_EVENING, sender_id="U2")
    # Wed 4 Mar 2026 09:00 EST = 14:00 UTC: each reader's Slack shows the date token in their own zone.
    assert text == (
        "Hi <@U2>, thanks for your message! I'm offline right now and back Wed 09:00 my time "
        "(<!date^1772632800^{date_short_pretty} at {time}|Wed 09:00 UTC-05:00> your time). "
        "I'll get back to you by Wed 13:00 at the latest."
    )


def test_compose_renders_back_at_sender_in_a_custom_message():
    p = prefs(message="Away. Back {back_at_sender}, that is {back_at} for me.")
    text = compose(p, now=TUE_EVENING, sender_id="U2")
    assert text == (
        "Away. Back <!date^1772632800^{date_short_pretty} at {time}|Wed 09:00 UTC-05:00> your time, "
        "that is Wed 09:00 for me."
    )


def test_compose_renders_a_custom_message_and_reply_time():
    p = prefs(message="{user} is off ({hours}). Back in {back_in}; answer by {reply_by}.", reply_within=timedelta(0))
    text = compose(p, now=TUE_EVENING, sender_id="U2")
    assert text == "<@U1> is off (Mon–Fri 09:00–17:30). Back in 11 h; answer by Wed 09:00."


def test_compose_across_spring_forward():
    # Sat 7 Mar 23:00 EST; back Mon 9 Mar 09:00 EDT = 13:00 UTC: the fallback has the offset of that Monday.
    text = compose(prefs(), now=datetime(2026, 3, 8, 4, 0, tzinfo=UTC), sender_id="U2")
    token = "<!date^1773061200^{date_short_pretty} at {time}|Mon 09:00 UTC-04:00>"
    assert f"back Mon 09:00 my time ({token} your time)" in text


def test_compose_more_than_six_days_ahead():
    # Days off until Friday 13th: back Mon 16 Mar 2026 09:00 EDT = 13:00 UTC, twelve days on; the fallback has the date.
    p = prefs()
    p = replace(p, schedule=p.schedule.with_days_off([parse_days_off("2026-03-04..2026-03-13")]))
    text = compose(p, now=TUE_EVENING, sender_id="U2")
    token = "<!date^1773666000^{date_short_pretty} at {time}|Mon 16 Mar 09:00 UTC-04:00>"
    assert f"back Mon 16 Mar 09:00 my time ({token} your time)" in text
