"""`/hours when @someone` over signed HTTP: asked by anyone (connected or not), answered ephemerally: working,
off (in the asker's zone as a Slack date, and in theirs), on vacation, on a public holiday, no hours ahead, not
connected, and bad ids.

The clock starts on Tue 3 Mar 2026 22:00 in New York (03:00 UTC on the 4th). U1 is connected (New York, the
default hours Mon–Fri 09:00–17:30); U2 asks and is not connected; U3 is known to Slack but not connected.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.storage import db
from tests.support.helpers import block_text, connect, rows
from tests.support.slackhttp import SlackHTTP

WED_9_EST = 1772632800  # 2026-03-04T14:00Z
MON_9_EDT = 1773061200  # 2026-03-09T13:00Z, after New York's spring-forward


@pytest.fixture
def ask(slack: SlackHTTP, store, fake_slack):
    connect(store, fake_slack, "U1", tz="America/New_York")
    fake_slack.add_user("U3", tz="Asia/Tokyo")

    def send(text: str, *, user: str = "U2") -> str:
        response = slack.command(text, user=user)
        assert response.status == 200, response.text
        body = response.json
        assert body.get("response_type") == "ephemeral", body
        return block_text(body.get("blocks") or []) + "\n" + body.get("text", "")

    return send


def test_off_says_when_they_are_back_in_the_askers_zone_and_theirs(ask, store, fake_slack):
    answer = ask("when <@U1|maria>")
    expected = (
        f":crescent_moon: <@U1> is off — back <!date^{WED_9_EST}^{{date_short_pretty}} at {{time}}|Wed 09:00 "
        "(America/New_York)> your time (Wed 09:00 their time, America/New_York)."
    )
    assert expected in answer
    assert rows(store, db.people, user_id="U2") == []  # asking stores nothing about the asker
    assert fake_slack.calls_to("chat.postMessage") == []  # only the asker sees the answer (the ack)


def test_working_says_so(ask, clock):
    clock.advance(hours=12)  # Wednesday 10:00 in New York
    assert ":large_green_circle: <@U1> is working now." in ask("when <@U1>")


def test_on_vacation_says_when_they_are_back_and_nothing_more(ask, clock):
    ask("off 2026-03-04..2026-03-06", user="U1")
    answer = ask("when <@U1>")
    assert f"back <!date^{MON_9_EDT}^" in answer
    assert "(Mon 09:00 their time, America/New_York)" in answer
    assert "vacation" not in answer.lower() and "2026-03-04" not in answer  # no more than the auto-reply tells


def test_a_public_holiday_counts(ask, clock):
    ask("holidays US", user="U1")
    clock.set(datetime(2026, 7, 2, 22, tzinfo=UTC))  # Thu 18:00 EDT; Friday is Independence Day (observed)
    answer = ask("when <@U1>")
    assert "(Mon 09:00 their time, America/New_York)" in answer


def test_days_off_with_no_working_hours_ahead_cannot_be_set_so_when_always_has_an_answer(ask):
    # These three adjoining years of days off used to be saved (then `when` said "no working hours ahead"); the
    # third is refused now (issue 17 item 2), so a person always has a back-at time to tell.
    for days in ("2026-03-04..2027-03-04", "2027-03-05..2028-03-04"):
        ask(f"off {days}", user="U1")
    assert "days in a row" in ask("off 2028-03-05..2029-03-04", user="U1")
    assert "<@U1> is off — back" in ask("when <@U1>")


def test_someone_not_connected_is_said_plainly(ask):
    assert "<@U3> hasn't connected Offhours, so it has no hours to tell for them." in ask("when <@U3|kenji>")


def test_a_connected_person_can_ask_about_themselves(ask):
    assert "<@U1> is off — back" in ask("when <@U1>", user="U1")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("when", "takes one person, as a mention"),
        ("when maria", "`maria` is not a person"),
        ("when @maria", "`@maria` is not a person"),
        ("when <@u1>", "is not a person"),
        ("when <@U1> <@U3>", "takes one person, as a mention"),
        ("when <#C1|general>", "is not a person"),
    ],
)
def test_bad_input_gets_a_message_and_an_example(ask, text, expected):
    answer = ask(text)
    assert expected in answer
    assert "For example: `/hours when @maria`" in answer
