"""Channel mentions and group DMs (issue 20), through signed HTTP events and the fake Slack.

The clock starts on Tue 3 Mar 2026 22:00 in New York. U1 is connected with the mention scopes and mentions on
(New York, Mon–Fri 09:00–17:30, so off now); U2 and U3 write in channel C1. Replies are sent with `drain()`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from datetime import UTC, datetime
from html import unescape
from urllib.parse import parse_qs, urlparse

import pytest
import sqlalchemy as sa

from bot.config import Config, MentionsConfig
from bot.slack.listeners.channel_messages import ChannelMessages, concerns_no_one
from bot.storage import db
from bot.workers.recaps import RecapSender
from bot.workers.replies import ReplySender
from tests.support.helpers import RunningServer, block_text, connect, counted_statements, rows
from tests.support.slackhttp import SlackHTTP, dm_channel, request

MENTION_SCOPES = "im:history,chat:write,channels:history,groups:history,mpim:history"
TOKEN_U1 = "xoxp-T1-U1"


@pytest.fixture
def watched(offhours, store, fake_slack, clock):
    """U1 connected with the mention scopes and mentions on; U2, U3 known to Slack, not connected."""
    connect(store, fake_slack, "U1", user_scopes=MENTION_SCOPES, now=clock())
    offhours.services.mentions.choose("T1", "U1", enabled=True)
    fake_slack.add_user("U2", tz="Europe/Rome")
    fake_slack.add_user("U3", tz="Asia/Tokyo")
    return offhours


@pytest.fixture
def drain(clock):
    made: list[ReplySender] = []

    def run(app) -> int:
        sender = ReplySender(app.services)
        made.append(sender)
        return sender.drain(now=clock())

    yield run
    for sender in made:
        sender.stop(timeout=5)


def ts(clock, seconds: float = 0) -> float:
    return clock().timestamp() + seconds


def ephemerals(fake):
    return fake.calls_to("chat.postEphemeral")


# --- (1) the fast path --------------------------------------------------------------------------------------------


NOBODY = [
    {"text": "lunch anyone?"},
    {"text": "ping <@U9> about the deploy"},  # not connected
    {"text": "<!here> the build is red"},
    {"text": "<!channel> and <!everyone>"},
    {"text": "<!subteam^S123|@oncall> please look"},
    {"text": "the syntax is `<@U1>`"},  # inline code
    {"text": "```\nassign(<@U1>)\n```"},  # a code block
    {"text": "&lt;@U1&gt; typed by hand"},  # what Slack sends for literal angle brackets
    {"text": "<https://example.com|a link>"},
    {
        "text": "x <@U1> in rich text code",
        "blocks": [
            {
                "type": "rich_text",
                "elements": [{"type": "rich_text_preformatted", "elements": [{"type": "user", "user_id": "U1"}]}],
            }
        ],
    },
    {"text": "many " + " ".join(f"<@U{n:04d}>" for n in range(400))},  # hundreds of mentions, none watched
    {"text": "no type", "channel_type": None},
    {"text": "odd type <@U1>", "channel_type": "app_home"},
    {"text": "odd type <@U1>", "channel_type": 7},
    {"text": "a group DM of others", "channel_type": "mpim"},
    {"text": "a private channel", "channel_type": "group"},
]


def test_a_message_that_concerns_no_one_costs_no_statement_no_call_and_no_log_line(
    watched, store, fake_slack, slack, clock, caplog
):
    watched.services.mentions.view()  # loaded once, as the first message of a process would
    slack.user_channel_message(sender="U2", channel="C1", ts=ts(clock, -5), text="warm-up", authorized="U1")
    fake_slack.reset_calls()
    with caplog.at_level(logging.INFO), counted_statements(store) as statements:
        for i, fields in enumerate(NOBODY):
            fields = dict(fields)
            channel_type = fields.pop("channel_type", "channel")
            event = {"type": "message", "channel": "C1", "user": "U2", "ts": f"{ts(clock, i):.6f}", **fields}
            if channel_type is not None:
                event["channel_type"] = channel_type
            response = slack.event(event, authorized="U5" if channel_type == "mpim" else "U1")
            assert response.status == 200, fields
    assert statements == []
    assert fake_slack.calls == []
    assert not [r for r in caplog.records if "event type=message" in r.getMessage()]
    assert rows(store, db.messages) == [] and rows(store, db.replies) == []


def test_a_mention_of_someone_at_work_costs_no_statement(watched, store, fake_slack, slack, clock):
    clock.set(clock().replace(hour=15))  # Wed 10:00 in New York: U1 is working
    watched.services.mentions.view()
    slack.user_channel_message(sender="U2", channel="C1", ts=ts(clock, -5), text="warm-up", authorized="U1")
    with counted_statements(store) as statements:
        assert (
            slack.user_channel_message(sender="U2", channel="C1", ts=ts(clock), text="<@U1> hi", authorized="U1").status
            == 200
        )
    assert statements == []
    assert rows(store, db.messages) == []


def test_a_watched_persons_own_message_at_work_costs_no_statement_and_no_log_line(
    watched, store, fake_slack, slack, clock, caplog
):
    clock.set(clock().replace(hour=15))  # Wed 10:00 in New York: U1 is working
    watched.services.mentions.view()
    slack.user_channel_message(sender="U2", channel="C1", ts=ts(clock, -5), text="warm-up", authorized="U1")
    with caplog.at_level(logging.DEBUG), counted_statements(store) as statements:
        for i, channel_type in enumerate(["channel", "group", "mpim"]):
            response = slack.user_channel_message(sender="U1", channel="C7", channel_type=channel_type,
                                                  ts=ts(clock, i), text="just chatting", authorized="U1")  # fmt: skip
            assert response.status == 200
    assert statements == []
    assert not [r for r in caplog.records if "event type=message" in r.getMessage()]
    assert rows(store, db.dm_presence) == []


def test_a_watched_persons_own_message_off_hours_answering_nothing_logs_at_debug_only(
    watched, store, fake_slack, slack, clock, caplog
):
    with caplog.at_level(logging.DEBUG):
        slack.user_channel_message(sender="U1", channel="C7", ts=ts(clock), text="late night", authorized="U1")
    [line] = [r for r in caplog.records if "event type=message" in r.getMessage()]
    assert line.levelno == logging.DEBUG and "outcome=ignored:own_message" in line.getMessage()


def test_an_answer_just_after_the_window_still_takes_the_mention_out_of_the_recap(
    watched, store, fake_slack, slack, clock
):
    root = ts(clock)
    slack.user_channel_message(sender="U2", channel="C1", ts=root, text="<@U1> in the morning?", authorized="U1")
    clock.set(DUE.replace(minute=20))  # Wed 09:20 in New York: back at work, the recap not sent yet
    slack.user_channel_message(sender="U1", channel="C1", ts=ts(clock), text="yes", authorized="U1",
                               thread_ts=f"{root:.6f}")  # fmt: skip
    assert [m["state"] for m in rows(store, db.messages)] == ["answered"]


def test_the_view_follows_a_change_in_this_process_and_the_database_after_refresh_seconds(
    watched, store, fake_slack, slack, clock
):
    view = watched.services.mentions
    assert set(view.view()["T1"]) == {"U1"}
    view.choose("T1", "U1", enabled=False)
    assert "U1" not in view.view().get("T1", {})
    # Another process turns it back on: seen here once refresh_seconds have passed.
    store.mentions.choose("T1", "U1", enabled=True, now=clock())
    assert "U1" not in view.view().get("T1", {})
    clock.advance(seconds=watched.services.config.mentions.refresh_seconds)
    assert "U1" in view.view()["T1"]


def forgotten_by_command(app, slack, store, fake_slack) -> None:
    slack.command("forget", user="U1")


def forgotten_by_tokens_revoked(app, slack, store, fake_slack) -> None:
    event = {"type": "tokens_revoked", "tokens": {"oauth": ["U1"], "bot": []}, "event_ts": "1700000000.000100"}
    assert slack.event(event, authorized="UBOT").status == 200


def forgotten_by_a_revoked_reply(app, slack, store, fake_slack) -> None:
    fake_slack.fail("chat.postEphemeral", error="token_revoked")
    slack.user_channel_message(sender="U3", channel="C2", ts=1772593100.0, text="<@U1> hi", authorized="U1")
    sender = ReplySender(app.services)
    sender.drain()
    sender.stop(timeout=5)


@pytest.mark.parametrize("forget", [forgotten_by_command, forgotten_by_tokens_revoked, forgotten_by_a_revoked_reply])
def test_someone_forgotten_leaves_the_view_at_once(watched, store, fake_slack, slack, clock, forget):
    watched.services.mentions.view()
    forget(watched, slack, store, fake_slack)
    assert store.user_token("T1", "U1") is None
    slack.user_channel_message(sender="U2", channel="C1", ts=ts(clock, -5), text="warm-up", authorized="U2")
    with counted_statements(store) as statements:
        slack.user_channel_message(sender="U1", channel="C7", ts=ts(clock), text="still here", authorized="U2")
        slack.user_channel_message(sender="U2", channel="C1", ts=ts(clock, 1), text="<@U1> hi", authorized="U2")
    assert statements == []
    assert rows(store, db.dm_presence) == [] and rows(store, db.messages) == []


def test_someone_forgotten_by_another_process_gets_no_presence_written(watched, store, fake_slack, slack, clock):
    watched.services.mentions.view()
    store.forget.forget_person("T1", "U1")  # as another process's /hours forget: this view still lists U1
    assert "U1" in watched.services.mentions.view()["T1"]
    assert slack.user_channel_message(sender="U1", channel="C7", ts=ts(clock), text="hi", authorized="U1").status == 200
    assert rows(store, db.dm_presence) == []


# --- (2) a channel mention ----------------------------------------------------------------------------------------


def test_a_channel_mention_gets_one_ephemeral_reply_to_its_sender_with_the_persons_token(
    watched, store, fake_slack, slack, clock, drain
):
    at = ts(clock)
    assert (
        slack.user_channel_message(sender="U2", channel="C1", ts=at, text="<@U1> can you look?", authorized="U1").status
        == 200
    )
    [message] = rows(store, db.messages)  # recorded before the ack
    assert (message["recipient_id"], message["sender_id"], message["channel_id"]) == ("U1", "U2", "C1")
    assert message["source"] == "mention"
    [reply] = rows(store, db.replies)
    assert reply["ephemeral"] is True
    assert fake_slack.calls_to("chat.postEphemeral") == []

    assert drain(watched) == 1
    [call] = ephemerals(fake_slack)
    assert call.token == TOKEN_U1
    assert call.params["channel"] == "C1" and call.params["user"] == "U2"
    assert not call.params.get("thread_ts")
    assert "offline" in (call.params.get("text") or "").lower() or "off" in call.params["text"].lower()
    assert fake_slack.calls_to("chat.postMessage") == []
    # A second mention from the same sender that evening: recorded, not answered again.
    slack.user_channel_message(sender="U2", channel="C1", ts=at + 60, text="<@U1> ping", authorized="U1")
    drain(watched)
    assert len(ephemerals(fake_slack)) == 1
    assert len(rows(store, db.messages)) == 2


def test_a_mention_in_a_thread_is_answered_in_that_thread(watched, store, fake_slack, slack, clock, drain):
    root = ts(clock, -600)
    slack.user_channel_message(sender="U3", channel="C1", ts=ts(clock), text="what do you think <@U1>?",
                          authorized="U3", thread_ts=f"{root:.6f}")  # fmt: skip
    assert drain(watched) == 1
    [call] = ephemerals(fake_slack)
    assert call.params["thread_ts"] == f"{root:.6f}" and call.params["user"] == "U3"


def test_a_mention_in_rich_text_blocks_counts_and_a_private_channel_too(
    watched, store, fake_slack, slack, clock, drain
):
    blocks = [{"type": "rich_text", "elements": [{"type": "rich_text_section", "elements": [
        {"type": "text", "text": "hey "}, {"type": "user", "user_id": "U1"}]}]}]  # fmt: skip
    slack.user_channel_message(sender="U2", channel="G1", channel_type="group", ts=ts(clock), text="hey <@U1>",
                          authorized="U2", blocks=blocks)  # fmt: skip
    assert drain(watched) == 1
    assert ephemerals(fake_slack)[0].params["channel"] == "G1"


def test_here_channel_and_usergroups_get_nothing(watched, store, fake_slack, slack, clock, drain):
    for i, text in enumerate(["<!here> anyone?", "<!channel> outage", "<!subteam^S1|@team> help"]):
        assert (
            slack.user_channel_message(sender="U2", channel="C1", ts=ts(clock, i), text=text, authorized="U1").status
            == 200
        )
    assert drain(watched) == 0
    assert rows(store, db.messages) == [] and ephemerals(fake_slack) == []


def test_bots_edits_own_messages_and_slackbot_get_nothing(watched, store, fake_slack, slack, clock, drain):
    cases = [
        {"bot_id": "B9"},
        {"subtype": "message_changed"},
        {"user": "U1"},  # U1 mentioning themselves
        {"user": "USLACKBOT"},
        {"subtype": "bot_message"},
    ]
    for i, fields in enumerate(cases):
        event = {"type": "message", "channel": "C1", "channel_type": "channel", "user": "U2",
                 "text": "<@U1> hello", "ts": f"{ts(clock, i):.6f}", **fields}  # fmt: skip
        assert slack.event(event, authorized="U1").status == 200
    assert drain(watched) == 0
    assert ephemerals(fake_slack) == []


def test_hundreds_of_mentions_including_the_person_get_one_reply(watched, store, fake_slack, slack, clock, drain):
    text = " ".join(f"<@U{n:04d}>" for n in range(300)) + " <@U1>"
    assert slack.user_channel_message(sender="U2", channel="C1", ts=ts(clock), text=text, authorized="U1").status == 200
    assert drain(watched) == 1


def test_a_mention_after_more_rich_text_than_the_node_budget_is_answered(
    watched, store, fake_slack, slack, clock, drain
):
    bold = [{"type": "text", "text": "a", "style": {"bold": True}}] * 6000
    blocks = [{"type": "rich_text", "elements": [{"type": "rich_text_section", "elements": [
        *bold, {"type": "user", "user_id": "U1"}]}]}]  # fmt: skip
    response = slack.user_channel_message(sender="U2", channel="C1", ts=ts(clock), text="a " * 6000 + "<@U1>",
                                          authorized="U1", blocks=blocks)  # fmt: skip
    assert response.status == 200
    assert [m["recipient_id"] for m in rows(store, db.messages)] == ["U1"]
    assert drain(watched) == 1


# --- (3) once per sender with DMs; off; the scopes ------------------------------------------------------------------


def test_one_reply_per_sender_per_window_across_a_dm_and_a_mention(watched, store, fake_slack, slack, clock, drain):
    fake_slack.dm_members[dm_channel("U1", "U2")] = ("U1", "U2")
    assert slack.dm(sender="U2", recipient="U1", ts=ts(clock), text="are you there?").status == 200
    assert drain(watched) == 1
    assert len(fake_slack.calls_to("chat.postMessage")) == 1
    slack.user_channel_message(sender="U2", channel="C1", ts=ts(clock, 60), text="<@U1> also here", authorized="U1")
    assert drain(watched) == 0
    assert ephemerals(fake_slack) == []
    assert len(rows(store, db.messages)) == 2  # both in the recap
    assert len(rows(store, db.replies)) == 1


def test_a_mention_first_then_a_dm_gets_no_second_reply(watched, store, fake_slack, slack, clock, drain):
    fake_slack.dm_members[dm_channel("U1", "U3")] = ("U1", "U3")
    slack.user_channel_message(sender="U3", channel="C1", ts=ts(clock), text="<@U1> quick one", authorized="U1")
    assert drain(watched) == 1
    slack.dm(sender="U3", recipient="U1", ts=ts(clock, 60), text="and in private")
    assert drain(watched) == 0
    assert fake_slack.calls_to("chat.postMessage") == [] and len(ephemerals(fake_slack)) == 1


def test_mentions_off_by_default_gets_nothing(offhours, store, fake_slack, slack, clock, drain):
    connect(store, fake_slack, "U1", user_scopes=MENTION_SCOPES, now=clock())  # the scopes, but never turned on
    with counted_statements(store) as statements:
        slack.user_channel_message(sender="U2", channel="C1", ts=ts(clock), text="<@U1> hi", authorized="U1")
    assert not [s for s in statements if "after_hours_messages" in s or "auto_replies" in s]
    assert drain(offhours) == 0 and rows(store, db.messages) == []


def test_mentions_turned_off_get_nothing(watched, store, fake_slack, slack, clock, drain):
    assert "*off*" in block_text(slack.command("mentions off", user="U1").json["blocks"])
    slack.user_channel_message(sender="U2", channel="C1", ts=ts(clock), text="<@U1> hi", authorized="U1")
    assert drain(watched) == 0 and rows(store, db.messages) == []


def test_the_config_default_turns_mentions_on_for_those_who_never_chose(make_app, store, fake_slack, clock, drain):
    app = make_app(mentions=MentionsConfig(enabled=True))
    connect(store, fake_slack, "U1", user_scopes=MENTION_SCOPES, now=clock())
    running = RunningServer(app)
    try:
        SlackHTTP(running.url).user_channel_message(
            sender="U2", channel="C1", ts=ts(clock), text="<@U1> hi", authorized="U1"
        )
        assert drain(app) == 1
    finally:
        running.close()


def test_without_the_scopes_mentions_on_says_how_to_grant_them_and_nothing_is_answered(
    offhours, store, fake_slack, slack, server, clock, drain
):
    connect(store, fake_slack, "U1", now=clock())  # DMs only: im:history, chat:write
    answer = slack.command("mentions on", user="U1").json
    text = block_text(answer["blocks"])
    assert "channels:history" in text and "groups:history" in text and "mpim:history" in text
    [link] = re.findall(r"<(http[^|>]+)\|Allow Offhours to see your channels>", text)
    assert "mentions=1" in link
    slack.user_channel_message(sender="U2", channel="C1", ts=ts(clock), text="<@U1> hi", authorized="U1")
    assert drain(offhours) == 0 and rows(store, db.messages) == []
    # The link asks this person for the channel scopes on top of the usual ones (and mpim:read: group DMs' members).
    page = request(f"{server.url}/slack/install?mentions=1&team=T1")
    [authorize] = re.findall(r'href="(https://slack\.com/oauth/v2/authorize\?[^"]+)"', page.text)
    user_scope = parse_qs(urlparse(unescape(authorize)).query)["user_scope"][0].split(",")
    assert user_scope == ["im:history", "chat:write", "channels:history", "groups:history", "mpim:history", "mpim:read"]
    # Granted (a new connection with the scopes): answered from then on, without turning it on again.
    connect(store, fake_slack, "U1", user_scopes=MENTION_SCOPES, now=clock())
    offhours.services.mentions.changed()  # as the OAuth success callback does
    slack.user_channel_message(sender="U2", channel="C1", ts=ts(clock, 1), text="<@U1> hi again", authorized="U1")
    assert drain(offhours) == 1


def test_mentions_with_the_scopes_says_on(watched, slack):
    text = block_text(slack.command("mentions", user="U1").json["blocks"])
    assert "*on*" in text and "Allow Offhours" not in text


def test_a_channel_the_person_left_settles_the_reply_without_retrying(watched, store, fake_slack, slack, clock, drain):
    fake_slack.fail("chat.postEphemeral", error="not_in_channel")
    slack.user_channel_message(sender="U2", channel="C1", ts=ts(clock), text="<@U1> hi", authorized="U1")
    assert drain(watched) == 0
    [reply] = rows(store, db.replies)
    assert (reply["state"], reply["last_error"]) == ("failed", "not_in_channel")
    clock.advance(minutes=30)
    drain(watched)
    assert len(ephemerals(fake_slack)) == 1  # tried once, never again


def test_paused_excepted_and_external_senders_are_recorded_without_a_reply(
    watched, store, fake_slack, slack, clock, drain
):
    watched.services.people.change_reply_exceptions("T1", "U1", add=["U3"])
    slack.user_channel_message(sender="U3", channel="C1", ts=ts(clock), text="<@U1> excepted", authorized="U1")
    slack.user_channel_message(sender="U7", channel="C1", ts=ts(clock, 1), text="<@U1> from elsewhere", authorized="U1",
                          user_team="T9")  # fmt: skip
    watched.services.people.set_paused("T1", "U1", True)
    slack.user_channel_message(sender="U2", channel="C1", ts=ts(clock, 2), text="<@U1> paused", authorized="U1")
    assert drain(watched) == 0
    assert ephemerals(fake_slack) == []
    assert sorted(m["sender_id"] for m in rows(store, db.messages)) == ["U2", "U3", "U7"]  # all in the recap


# --- (4) group DMs and the recap ---------------------------------------------------------------------------------

DUE = datetime(2026, 3, 4, 14, 0, tzinfo=UTC)  # Wed 09:00 in New York: U1's recap


def recap_sections(fake) -> list[str]:
    [recap] = [c for c in fake.calls_to("chat.postMessage") if c.token == "xoxb-T1"]
    return [b["text"]["text"] if b["type"] == "section" else block_text([b]) for b in recap.params["blocks"]]


def test_a_group_dm_message_counts_without_a_mention_and_goes_in_the_recap(
    watched, store, fake_slack, slack, clock, drain
):
    at = ts(clock)
    slack.user_channel_message(
        sender="U2", channel="G9", channel_type="mpim", ts=at, text="dinner plans?", authorized="U1"
    )
    slack.user_channel_message(sender="U2", channel="G9", channel_type="mpim", ts=at + 5, text="?", authorized="U1")
    assert drain(watched) == 1
    [call] = ephemerals(fake_slack)
    assert (call.token, call.params["channel"], call.params["user"]) == (TOKEN_U1, "G9", "U2")
    assert [m["source"] for m in rows(store, db.messages)] == ["mpim", "mpim"]

    assert RecapSender(watched.services).tick(DUE) == 1
    sections = recap_sections(fake_slack)
    assert "*Mentions and group DMs*" in sections
    [item] = [s for s in sections if "a group DM" in s]
    assert "<@U2> · 2 messages" in item
    assert "|Open message>" in item and f"/archives/G9/p{f'{at:.6f}'.replace('.', '')}" in item


def test_the_recap_lists_mentions_with_channel_sender_time_and_link_and_leaves_out_answered_ones(
    watched, store, fake_slack, slack, clock, drain
):
    root = ts(clock, -3600)
    thread = {"thread_ts": f"{root:.6f}"}
    slack.user_channel_message(
        sender="U2", channel="C1", ts=ts(clock), text="<@U1> in a thread", authorized="U1", **thread
    )
    slack.user_channel_message(sender="U3", channel="C2", ts=ts(clock, 1), text="<@U1> top level", authorized="U1")
    slack.user_channel_message(sender="U2", channel="C3", ts=ts(clock, 2), text="<@U1> top level too", authorized="U1")
    # U1 answers in the thread in C1, and in channel C3 after the mention (not in C2).
    with counted_statements(store) as statements:
        slack.user_channel_message(sender="U1", channel="C1", ts=ts(clock, 10), text="on it", authorized="U1", **thread)
    assert statements  # a watched person's own message is looked at
    slack.user_channel_message(sender="U1", channel="C3", ts=ts(clock, 20), text="done", authorized="U1")
    # Writing in another thread of C2 does not answer C2's top-level mention... but it is C2's channel: writing
    # in C2 at top level would. Here U1 writes in an unrelated thread.
    slack.user_channel_message(sender="U1", channel="C2", ts=ts(clock, 30), text="elsewhere", authorized="U1",
                          thread_ts=f"{ts(clock, -99):.6f}")  # fmt: skip
    states = {m["channel_id"]: m["state"] for m in rows(store, db.messages)}
    assert states == {"C1": "answered", "C2": "pending", "C3": "answered"}

    assert RecapSender(watched.services).tick(DUE) == 1
    sections = recap_sections(fake_slack)
    items = [s for s in sections if "<#C" in s]
    assert len(items) == 1
    assert items[0].startswith("<#C2> · <@U3> · 1 message · ")
    assert "Open message>" in items[0]


def test_a_deleted_mention_leaves_the_recap(watched, store, fake_slack, slack, clock):
    at = ts(clock)
    slack.user_channel_message(sender="U2", channel="C1", ts=at, text="<@U1> oops", authorized="U1")
    previous = {"type": "message", "user": "U2", "text": "<@U1> oops", "ts": f"{at:.6f}"}
    event = {"type": "message", "subtype": "message_deleted", "channel": "C1", "channel_type": "channel",
             "deleted_ts": f"{at:.6f}", "ts": f"{at + 9:.6f}", "previous_message": previous}  # fmt: skip
    assert slack.event(event, authorized="U1").status == 200
    [message] = rows(store, db.messages)
    assert message["state"] == "deleted"
    assert rows(store, db.replies) == []  # never claimed: gone, the sender's next mention takes its place


# --- bad input, and the listener's own fast path (Socket Mode reaches Bolt without the HTTP server's) -------------


ODD = [  # (fields, answered): answered, the one reply goes to the sender in C1, at top level
    ({"text": ["<@U1>"]}, False),
    ({"text": "<@U1>", "blocks": {"type": "rich_text"}}, True),  # no blocks to read: the text
    ({"text": "<@U1>", "blocks": [{"type": "rich_text", "elements": [{"type": "user", "user_id": ["U1"]}]}]}, False),
    ({"text": "<@U1>", "user": 7}, False),
    ({"text": "<@U1>", "user": None}, False),
    ({"text": "<@U1>", "thread_ts": ["x"]}, True),  # no thread: in the channel
    ({"text": "<@U1>", "subtype": {"x": 1}}, False),
    ({"text": "<@U1>", "channel": None}, False),
    ({"text": "<@U1>", "channel_type": ["channel"]}, False),
    ({"text": "<@U1>", "channel_type": {"a": 1}}, False),
    ({"text": "<@U1>", "subtype": "message_deleted", "previous_message": "x"}, False),
    ({"text": "<@U1>", "subtype": "message_deleted", "previous_message": {"text": "<@U1>"}}, False),
    ({"text": "<@U1>" * 5000}, True),
]


@pytest.mark.parametrize(("fields", "answered"), ODD)
def test_odd_channel_messages_never_answer_5xx_nor_post(
    watched, store, fake_slack, slack, clock, drain, fields, answered
):
    event = {"type": "message", "channel": "C1", "channel_type": "channel", "user": "U2", "ts": f"{ts(clock):.6f}",
             **fields}  # fmt: skip
    assert slack.event(event, authorized="U1").status < 500
    drain(watched)
    assert fake_slack.calls_to("chat.postMessage") == []
    if not answered:
        assert ephemerals(fake_slack) == []
        assert rows(store, db.messages) == [] and rows(store, db.replies) == []
        return
    [call] = ephemerals(fake_slack)
    assert (call.params["user"], call.params["channel"], call.params.get("thread_ts")) == ("U2", "C1", None)
    [message] = rows(store, db.messages)
    assert (message["recipient_id"], message["sender_id"], message["channel_id"]) == ("U1", "U2", "C1")
    assert [r["state"] for r in rows(store, db.replies)] == ["sent"]


def test_the_listener_drops_what_concerns_no_one_without_a_statement(watched, store, clock):
    channels = ChannelMessages(watched.services)
    watched.services.mentions.view()
    with counted_statements(store) as statements:
        for i, fields in enumerate(NOBODY):
            fields = dict(fields)
            event = {"type": "message", "channel": "C1", "channel_type": fields.pop("channel_type", "channel"),
                     "user": "U2", "ts": f"{ts(clock, i):.6f}", **fields}  # fmt: skip
            body = {"team_id": "T1", "api_app_id": "A1", "authorizations": [{"user_id": "U5"}], "event": event}
            assert channels.handle(event, body) is None, fields
    assert statements == []


@pytest.mark.parametrize("bad_ts", ["not-a-ts", "1e400", "-1e30", None, 5])
def test_a_mention_with_an_unreadable_ts_is_dropped(watched, store, clock, bad_ts):
    event = {"type": "message", "channel": "C1", "channel_type": "channel", "user": "U2", "text": "<@U1>",
             "ts": bad_ts}  # fmt: skip
    body = {"team_id": "T1", "api_app_id": "A1", "authorizations": [{"user_id": "U1"}], "event": event}
    assert ChannelMessages(watched.services).handle(event, body) is None
    assert rows(store, db.messages) == []


# --- deliveries: settled once, never twice, never lost past the ack ----------------------------------------------


def test_channel_not_found_settles_without_retrying(watched, store, fake_slack, slack, clock, drain):
    fake_slack.fail("chat.postEphemeral", error="channel_not_found")
    slack.user_channel_message(sender="U2", channel="C1", ts=ts(clock), text="<@U1> hi", authorized="U1")
    drain(watched)
    clock.advance(minutes=30)
    drain(watched)
    assert len(ephemerals(fake_slack)) == 1
    [reply] = rows(store, db.replies)
    assert (reply["state"], reply["last_error"]) == ("failed", "channel_not_found")


def test_a_reply_refused_as_not_in_channel_does_not_use_up_the_senders_one_reply(
    watched, store, fake_slack, slack, clock, drain
):
    # The event came through another member's token: U1 is not in C1, so U2 never saw the reply.
    fake_slack.dm_members[dm_channel("U1", "U2")] = ("U1", "U2")
    fake_slack.fail("chat.postEphemeral", error="not_in_channel")
    slack.user_channel_message(sender="U2", channel="C1", ts=ts(clock), text="<@U1> hi", authorized="U3")
    assert drain(watched) == 0
    assert slack.dm(sender="U2", recipient="U1", ts=ts(clock, 60), text="are you there?").status == 200
    assert drain(watched) == 1
    assert len(fake_slack.calls_to("chat.postMessage")) == 1  # the DM gets the sender's one reply
    [reply] = rows(store, db.replies)
    assert (reply["state"], reply["ephemeral"], reply["channel_id"]) == ("sent", False, dm_channel("U1", "U2"))
    states = {m["channel_id"]: m["state"] for m in rows(store, db.messages)}
    assert states == {"C1": "deleted", dm_channel("U1", "U2"): "pending"}  # the mention was never U1's to see


def test_a_private_channel_mention_of_a_non_member_stays_out_of_their_recap(make_app, store, fake_slack, clock, drain):
    app = make_app(recap=replace(Config().recap, include_text=True))
    connect(store, fake_slack, "U1", user_scopes=MENTION_SCOPES, now=clock())
    app.services.mentions.choose("T1", "U1", enabled=True)
    fake_slack.add_user("U2", tz="Europe/Rome")
    running = RunningServer(app)
    try:
        slack = SlackHTTP(running.url)
        fake_slack.fail("chat.postEphemeral", error="channel_not_found")  # U1 is not in private channel G5
        slack.user_channel_message(sender="U2", channel="G5", channel_type="group", ts=ts(clock),
                                   text="don't tell <@U1> yet", authorized="U2")  # fmt: skip
        assert drain(app) == 0
        slack.user_channel_message(sender="U3", channel="C1", ts=ts(clock, 5), text="<@U1> hi", authorized="U1")
        assert drain(app) == 1
    finally:
        running.close()
    [hidden] = [m for m in rows(store, db.messages) if m["channel_id"] == "G5"]
    assert (hidden["state"], hidden["text"]) == ("deleted", None)
    assert RecapSender(app.services).tick(DUE) == 1
    sections = recap_sections(fake_slack)
    assert [s for s in sections if "<#C1>" in s]
    assert not [s for s in sections if "G5" in s or "don't tell" in s]


def test_an_ephemeral_reply_that_may_have_been_shown_is_never_posted_again(
    watched, store, fake_slack, slack, clock, drain
):
    fake_slack.fail("chat.postEphemeral", status=500, after_acting=True)  # shown, then Slack answered 500
    slack.user_channel_message(sender="U2", channel="C1", ts=ts(clock), text="<@U1> hi", authorized="U1")
    drain(watched)
    clock.advance(minutes=30)
    drain(watched)
    assert len(ephemerals(fake_slack)) == 1  # no lookup exists for an ephemeral message: never a second one
    assert fake_slack.calls_to("conversations.replies") == []
    assert rows(store, db.replies)[0]["state"] == "failed"


def test_a_rate_limited_ephemeral_reply_is_retried_and_posted_once(watched, store, fake_slack, slack, clock, drain):
    fake_slack.fail("chat.postEphemeral", status=429, retry_after=5)
    slack.user_channel_message(sender="U2", channel="C1", ts=ts(clock), text="<@U1> hi", authorized="U1")
    assert drain(watched) == 0
    clock.advance(seconds=30)
    assert drain(watched) == 1
    assert len(ephemerals(fake_slack)) == 2 and rows(store, db.replies)[0]["state"] == "sent"


def test_a_mention_recorded_before_the_ack_is_answered_by_another_process(
    watched, make_app, store, fake_slack, slack, clock, drain
):
    slack.user_channel_message(sender="U2", channel="C1", ts=ts(clock), text="<@U1> hi", authorized="U1")
    # The process that acked stops before posting: a new one (its own services) finds the reply in the outbox.
    assert drain(make_app()) == 1
    assert len(ephemerals(fake_slack)) == 1
    assert drain(watched) == 0


def test_a_failed_refresh_keeps_the_last_view_until_the_next_try(watched, store, clock, monkeypatch, caplog):
    view = watched.services.mentions
    assert "U1" in view.view()["T1"]

    def broken(**_kwargs):
        raise sa.exc.OperationalError("SELECT", {}, Exception("database is locked"))

    monkeypatch.setattr(store.mentions, "watched", broken)
    clock.advance(seconds=watched.services.config.mentions.refresh_seconds)
    with caplog.at_level(logging.WARNING):
        assert "U1" in view.view()["T1"]  # the last view, not an error
    assert "view refresh failed error=OperationalError" in caplog.text
    monkeypatch.undo()
    store.mentions.choose("T1", "U1", enabled=False, now=clock())
    assert "U1" in view.view()["T1"]  # tried again only refresh_seconds later
    clock.advance(seconds=watched.services.config.mentions.refresh_seconds)
    assert "U1" not in view.view().get("T1", {})


def test_another_features_test_lets_its_channel_messages_through_the_fast_path(watched, clock):
    channels = ChannelMessages(watched.services)
    event = {"type": "message", "channel": "C7", "channel_type": "channel", "user": "U2", "text": "hi",
             "ts": f"{ts(clock):.6f}"}  # fmt: skip
    payload = {"type": "event_callback", "team_id": "T1", "event": event, "authorizations": [{"user_id": "U1"}]}
    assert concerns_no_one(channels, payload)
    channels.also_wanted.append(lambda e, b: e.get("channel") == "C7")
    assert not concerns_no_one(channels, payload)
    assert not concerns_no_one(channels, {**payload, "event": {**event, "channel_type": "im"}})  # DMs: always Bolt's
