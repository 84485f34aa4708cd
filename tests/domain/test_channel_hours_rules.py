"""Channel office hours, the pure part: parsing `/hours channel set`, which messages count, the reply's text."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.domain.channel_hours import (
    ChannelHours,
    WaitingPost,
    is_posting,
    is_thread_answer,
    off_window,
    parse_set,
    reply_text,
    summary_lines,
    validate_message,
)
from bot.domain.errors import HoursError

TUE_NIGHT = datetime(2026, 3, 4, 3, 0, tzinfo=UTC)  # Wed 03:00 in London
BACK = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)


def london(**changes) -> ChannelHours:
    return ChannelHours(team_id="T1", channel_id="C1", hours=parse_set("mon-fri 9-17:30 Europe/London")[0],
                        tz="Europe/London", **changes)  # fmt: skip


def test_set_takes_the_hours_language_then_a_zone():
    hours, tz = parse_set("mon-thu 9-17:30; fri 9am-1pm America/New_York")
    assert tz == "America/New_York" and "Fri" in hours and "13:00" in hours


@pytest.mark.parametrize("text", ["mon-fri 9-17:30", "Europe/London", "mon-fri 9-17:30 Mars/Base", "gibberish UTC"])
def test_set_refuses_what_it_cannot_read(text):
    with pytest.raises(HoursError):
        parse_set(text)


def test_the_off_window_ends_when_the_team_is_back_and_days_off_count():
    window = off_window(london(), TUE_NIGHT)
    assert window is not None and window.end == BACK and window.key == "back:2026-03-04T09:00Z"
    assert off_window(london(), BACK.replace(hour=10)) is None
    assert off_window(london(days_off="2026-03-04..2026-03-04"), TUE_NIGHT).end == BACK.replace(day=5)
    # A public holiday (Good Friday, 3 Apr 2026) is a day off too: back on Monday, not on Friday morning.
    good_friday_night = datetime(2026, 4, 3, 3, 0, tzinfo=UTC)
    assert off_window(london(), good_friday_night).end.date().isoformat() == "2026-04-03"
    assert off_window(london(holidays="GB"), good_friday_night).end.date().isoformat() >= "2026-04-06"


@pytest.mark.parametrize(
    ("fields", "posting", "answer"),
    [
        ({}, True, False),
        ({"subtype": "file_share"}, True, False),
        ({"thread_ts": "1.000100"}, False, True),
        ({"thread_ts": "2.000100"}, True, False),  # thread_ts == ts: the root itself
        ({"subtype": "thread_broadcast", "thread_ts": "1.000100"}, False, True),
        ({"is_bot": True}, False, False),
        ({"user": "USLACKBOT"}, False, False),
        ({"user": None}, False, False),
        ({"subtype": "message_changed"}, False, False),
        ({"subtype": "channel_join"}, False, False),
    ],
)
def test_which_messages_are_new_posts_and_which_answer_a_thread(fields, posting, answer):
    facts = {"user": "U2", "subtype": None, "is_bot": False, "ts": "2.000100", "thread_ts": None, **fields}
    assert is_posting(**facts) is posting
    assert is_thread_answer(**facts) is answer


def test_the_reply_says_the_channels_message_and_when_the_team_is_back_as_a_slack_date():
    text = reply_text(london(message="Support answers on weekdays."), back_at=BACK, now=TUE_NIGHT)
    assert text.startswith("Support answers on weekdays.\n")
    assert f"<!date^{int(BACK.timestamp())}^{{date_short_pretty}} at {{time}}|" in text
    assert "UTC+00:00" in text  # the fallback names the offset
    assert "The team is away" in reply_text(london(), back_at=BACK, now=TUE_NIGHT)  # the default message


def test_a_message_must_have_text_and_fit():
    with pytest.raises(HoursError):
        validate_message("  ")
    with pytest.raises(HoursError):
        validate_message("x" * 1001)


def test_summary_lines_name_the_sender_the_time_and_the_link():
    posts = [WaitingPost("U2", "1.5", TUE_NIGHT), WaitingPost("U3", "2.5", TUE_NIGHT)]
    lines = summary_lines(posts, {"1.5": "https://x/p15", "2.5": None})
    assert lines[0].startswith("• <@U2> · <!date^") and lines[0].endswith("<https://x/p15|Open>")
    assert "Open" not in lines[1]
    many = summary_lines([WaitingPost("U2", str(n), TUE_NIGHT) for n in range(45)], {})
    assert len(many) == 41 and many[-1] == "…and 5 more."
