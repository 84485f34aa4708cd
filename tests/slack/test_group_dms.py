"""Group DMs seen through another member's token (issue 20 item 3): Slack sends a group-DM message once, with one
authorization, so the other connected members it concerns are found from its membership, learnt once per group DM
and process (bot/group_dms.py) — and a group DM that concerns no one costs nothing once its members are known.

The clock starts on Tue 3 Mar 2026 22:00 in New York: U1 and U4 are off, connected with the mention scopes and
mentions on; U2 and U3 are not connected.
"""

from __future__ import annotations

import pytest

from bot.storage import db
from bot.workers.replies import ReplySender
from tests.support.helpers import connect, counted_statements, rows

SCOPES = "im:history,chat:write,channels:history,groups:history,mpim:history,mpim:read"


@pytest.fixture
def app(offhours, store, fake_slack, clock):
    for user in ("U1", "U4"):
        connect(store, fake_slack, user, user_scopes=SCOPES, now=clock())
        offhours.services.mentions.choose("T1", user, enabled=True)
    fake_slack.add_user("U2", tz="Europe/Rome")
    fake_slack.add_user("U3", tz="Asia/Tokyo")
    return offhours


def say(slack, clock, *, channel="G9", sender="U2", authorized="U4", seconds=0.0, text="dinner plans?"):
    at = clock().timestamp() + seconds
    response = slack.user_channel_message(
        sender=sender, channel=channel, channel_type="mpim", ts=at, text=text, authorized=authorized
    )
    assert response.status == 200
    return response


def recipients(store, channel="G9") -> list[str]:
    return sorted(m["recipient_id"] for m in rows(store, db.messages, channel_id=channel))


def test_a_member_off_hours_is_answered_though_slack_sent_the_message_through_another_members_token(
    app, store, fake_slack, slack, clock
):
    fake_slack.group_dms["G9"] = ["U1", "U2", "U4"]
    say(slack, clock)  # seen through U4's token only
    assert recipients(store) == ["U1", "U4"]  # both members who are off, not just the one whose token saw it
    [lookup] = fake_slack.calls_to("conversations.members")
    assert (lookup.token, lookup.params["channel"]) == ("xoxp-T1-U4", "G9")

    sender = ReplySender(app.services)
    try:
        assert sender.drain(now=clock()) == 2
    finally:
        sender.stop(timeout=5)
    posted = sorted((c.token, c.params["channel"], c.params["user"]) for c in fake_slack.calls_to("chat.postEphemeral"))
    assert posted == [("xoxp-T1-U1", "G9", "U2"), ("xoxp-T1-U4", "G9", "U2")]

    say(slack, clock, sender="U3", seconds=5)
    assert len(fake_slack.calls_to("conversations.members")) == 1  # a group DM's members never change: kept


def test_a_group_dm_of_no_one_watched_costs_nothing_once_its_members_are_known(app, store, fake_slack, slack, clock):
    connect(store, fake_slack, "U5", user_scopes=SCOPES, now=clock())  # connected, mentions off: not watched
    fake_slack.group_dms["G8"] = ["U2", "U3", "U5"]
    say(slack, clock, channel="G8", authorized="U5")
    assert len(fake_slack.calls_to("conversations.members")) == 1
    slack.user_channel_message(sender="U2", channel="C0", ts=clock().timestamp() + 1, authorized="U5")  # views loaded
    with counted_statements(store) as statements:
        say(slack, clock, channel="G8", authorized="U5", seconds=5)
        say(slack, clock, channel="G8", sender="U3", authorized="U5", seconds=6)
    assert statements == []
    assert len(fake_slack.calls_to("conversations.members")) == 1
    assert rows(store, db.messages) == [] and fake_slack.calls_to("chat.postEphemeral") == []


def test_a_refused_lookup_still_answers_the_member_whose_token_saw_it_and_is_tried_again_later(
    app, store, fake_slack, slack, clock
):
    fake_slack.group_dms["G9"] = ["U1", "U2", "U4"]
    fake_slack.fail("conversations.members", error="missing_scope")  # granted before mpim:read was asked
    say(slack, clock)
    assert recipients(store) == ["U4"]

    say(slack, clock, sender="U3", seconds=5)  # within 15 minutes: not asked again
    assert len(fake_slack.calls_to("conversations.members")) == 1
    assert recipients(store) == ["U4", "U4"]

    clock.advance(minutes=16)
    say(slack, clock, sender="U3", seconds=10)
    assert len(fake_slack.calls_to("conversations.members")) == 2
    assert recipients(store) == ["U1", "U4", "U4", "U4"]


@pytest.mark.parametrize("failure", [{"status": 500}, {"disconnect": True}, {"status": 429, "retry_after": 30}])
def test_slack_failing_the_lookup_before_the_ack_is_answered_200_without_waiting(
    failure, app, store, fake_slack, slack, clock
):
    fake_slack.group_dms["G9"] = ["U1", "U2", "U4"]
    fake_slack.fail("conversations.members", **failure)
    say(slack, clock)
    assert recipients(store) == ["U4"]
    assert len(fake_slack.calls_to("conversations.members")) == 1  # no retry inside the ack


def test_a_disconnected_authorization_is_not_looked_up(app, store, fake_slack, slack, clock):
    fake_slack.group_dms["G7"] = ["U1", "U2", "U6"]
    say(slack, clock, channel="G7", authorized="U6")  # U6 has no token here (left, or never connected)
    assert fake_slack.calls_to("conversations.members") == []
    assert recipients(store, "G7") == []


def test_a_token_without_mpim_read_is_not_asked_and_answers_its_own_member(app, store, fake_slack, slack, clock):
    # Granted the mention scopes before mpim:read was asked: known from the in-memory view, no lookup, no statement.
    connect(store, fake_slack, "U7", user_scopes="im:history,chat:write,channels:history,groups:history,mpim:history",
            now=clock())  # fmt: skip
    app.services.mentions.choose("T1", "U7", enabled=True)
    fake_slack.group_dms["G6"] = ["U1", "U2", "U7"]
    say(slack, clock, channel="G6", authorized="U7")
    assert fake_slack.calls_to("conversations.members") == []
    assert recipients(store, "G6") == ["U7"]
