"""Channel office hours (issue 25) over signed HTTP against the fake Slack: the command and its permission checks,
the threaded reply off hours, the summary at the start of the hours, the bot removed from the channel.

The clock starts on Wed 4 Mar 2026 03:00 UTC: in London (the team's zone, Mon–Fri 09:00–17:30) the team is off,
back at 09:00 UTC. C1 is a public channel Offhours is in, created by UCREATOR; UADMIN is a workspace admin.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from bot.domain.channel_hours import REPLY_EVENT_TYPE
from bot.storage import schema
from tests.support.helpers import block_text, connect, rows

BACK = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)
SET = "channel set mon-fri 9-17:30 Europe/London"


@pytest.fixture
def workspace(offhours, store, fake_slack, clock):
    """The app installed (a bot token), C1 with Offhours in it, and the people the tests name."""
    connect(store, fake_slack, "UINSTALLER", now=clock())
    fake_slack.add_channel("C1", creator="UCREATOR")
    fake_slack.add_user("UCREATOR", tz="Europe/London")
    fake_slack.add_user("UADMIN", tz="Europe/London", is_admin=True)
    fake_slack.add_user("UOWNER", tz="Europe/London", is_owner=True)
    fake_slack.add_user("UMEMBER", tz="Europe/London")
    fake_slack.add_user("U2", tz="Europe/Rome")
    return offhours


def answer(response) -> str:
    assert response.status == 200
    return block_text(response.json.get("blocks") or []) or response.json.get("text", "")


def channel_row(store, channel: str = "C1") -> dict | None:
    found = rows(store, schema.channel_hours, channel_id=channel)
    return found[0] if found else None


# --- /hours channel: set, show, message, off, who may --------------------------------------------------------


def test_the_channels_creator_sets_shows_and_turns_off_its_hours(workspace, slack, store):
    said = answer(slack.command(SET, user="UCREATOR"))
    assert said.startswith("Saved.") and "Europe/London" in said
    row = channel_row(store)
    assert row is not None and row["tz"] == "Europe/London" and row["team_id"] == "T1"
    shown = answer(slack.command("channel show", user="UMEMBER"))  # anyone may look
    assert "Europe/London" in shown and "off now" in shown
    said = answer(slack.command("channel message We answer on weekdays, 9 to 5:30 London time.", user="UCREATOR"))
    assert "We answer on weekdays" in said
    assert channel_row(store)["message"] == "We answer on weekdays, 9 to 5:30 London time."
    said = answer(slack.command("channel off", user="UCREATOR"))
    assert "off for this channel" in said
    assert channel_row(store) is None


@pytest.mark.parametrize("who", ["UADMIN", "UOWNER"])
def test_workspace_admins_and_owners_may_change_any_channel(workspace, slack, store, who):
    answer(slack.command(SET, user=who))
    assert channel_row(store) is not None


def test_anyone_else_is_told_who_may_and_nothing_changes(workspace, slack, store, fake_slack):
    said = answer(slack.command(SET, user="UMEMBER"))
    assert "Only workspace admins and owners" in said and "<@UCREATOR>" in said
    assert channel_row(store) is None
    answer(slack.command(SET, user="UCREATOR"))
    before = channel_row(store)
    for text in ("channel message hi", "channel off", "channel set daily 8-20 Europe/Paris"):
        assert "Only workspace admins" in answer(slack.command(text, user="UMEMBER"))
    assert channel_row(store) == before
    # The permission check asked Slack, through the no-sleep client, before the ack.
    assert fake_slack.calls_to("users.info")


def test_managers_members_lets_any_member_change_the_hours(make_app, store, fake_slack, clock):
    from dataclasses import replace

    from bot.config import ChannelsConfig, Config
    from tests.support.helpers import RunningServer
    from tests.support.slackhttp import SlackHTTP

    app = make_app(replace(Config(), channels=ChannelsConfig(managers="members")))
    connect(store, fake_slack, "UINSTALLER", now=clock())
    fake_slack.add_channel("C1", creator="UCREATOR")
    fake_slack.add_user("UMEMBER")
    running = RunningServer(app)
    try:
        answer(SlackHTTP(running.url).command(SET, user="UMEMBER"))
    finally:
        running.close()
    assert channel_row(store) is not None
    assert not fake_slack.calls_to("users.info")


def test_outside_a_channel_it_says_how_to_use_it(workspace, slack, store):
    said = answer(slack.command(SET, user="UADMIN", channel="DUADMIN", channel_name="directmessage"))
    assert "the channel you type it in" in said
    said = answer(slack.command(SET, user="UADMIN", channel="G123", channel_name="mpdm-a--b-1"))
    assert "the channel you type it in" in said
    assert channel_row(store, "DUADMIN") is None


def test_where_the_bot_is_not_a_member_it_says_to_invite_it(workspace, slack, store, fake_slack):
    fake_slack.add_channel("C2", is_member=False)
    fake_slack.add_channel("G2", is_member=False)  # private: Slack answers channel_not_found
    for channel in ("C2", "G2"):
        said = answer(slack.command(SET, user="UADMIN", channel=channel, channel_name="team"))
        assert "/invite @Offhours" in said
        assert channel_row(store, channel) is None


def test_wrong_hours_or_zone_are_explained(workspace, slack, store):
    said = answer(slack.command("channel set mon-fri 9-17:30 Mars/Olympus", user="UADMIN"))
    assert "Mars/Olympus" in said or "zone" in said.lower()
    said = answer(slack.command("channel set blah Europe/London", user="UADMIN"))
    assert "/hours channel set mon-fri 9-17:30 Europe/London" in said
    assert channel_row(store) is None


def test_a_channel_message_with_a_nul_character_is_refused_and_nothing_changes(workspace, slack, store):
    answer(slack.command(SET, user="UCREATOR"))
    before = channel_row(store)["message"]
    said = answer(slack.command("channel message hello\x00there", user="UCREATOR"))  # PostgreSQL text holds no NUL
    assert "NUL character" in said
    assert channel_row(store)["message"] == before


def test_without_connecting_their_dms_an_admin_can_still_set_a_channel(workspace, slack, store):
    assert store.user_token("T1", "UADMIN") is None
    answer(slack.command(SET, user="UADMIN"))
    assert channel_row(store) is not None


# --- off hours: one threaded reply per sender and window -----------------------------------------------------


@pytest.fixture
def with_hours(workspace, slack, store):
    answer(slack.command(SET, user="UCREATOR"))
    answer(slack.command("channel message Thanks! Support answers on weekdays.", user="UCREATOR"))
    return workspace


@pytest.fixture
def channel_senders():
    made = []
    yield made
    for sender in made:
        sender.stop(timeout=5)


@pytest.fixture
def drain_channel(offhours, clock, channel_senders):
    from bot.workers.channel_hours import ChannelReplySender

    def run(app=None) -> int:
        sender = ChannelReplySender((app or offhours).services)
        channel_senders.append(sender)
        return sender.drain(now=clock())

    return run


def channel_posts(fake, channel: str = "C1"):
    return [c for c in fake.calls_to("chat.postMessage") if c.params.get("channel") == channel]


def test_an_off_hours_top_level_post_is_recorded_before_the_ack_and_answered_once_in_its_thread(
    with_hours, slack, store, fake_slack, clock, drain_channel
):
    ts = clock().timestamp()
    assert slack.channel_message(channel="C1", user="U2", ts=ts, text="is anyone there?").status == 200
    # In the database before Slack heard "ok"; nothing posted yet.
    [post] = rows(store, schema.channel_posts)
    assert (post["channel_id"], post["sender_id"], post["state"], post["due_at"]) == ("C1", "U2", "pending", BACK)
    [reply] = rows(store, schema.channel_replies)
    assert reply["state"] == "pending" and reply["back_at"] == BACK
    assert channel_posts(fake_slack) == []

    assert drain_channel() == 1
    [call] = channel_posts(fake_slack)
    assert call.token == "xoxb-T1"
    assert call.params["thread_ts"] == f"{ts:.6f}"
    assert "Thanks! Support answers on weekdays." in call.params["text"]
    # When the team is back, as a Slack date: each reader sees it in their own zone.
    assert f"<!date^{int(BACK.timestamp())}^" in call.params["text"]
    assert call.params["metadata"]["event_type"] == REPLY_EVENT_TYPE
    assert rows(store, schema.channel_replies)[0]["state"] == "sent"
    assert drain_channel() == 0  # once


def test_a_post_whose_ts_is_past_any_date_is_taken_as_received_now(with_hours, slack, store, clock):
    assert slack.channel_message(channel="C1", user="U2", ts=1e19).status == 200  # no datetime can hold it
    [post] = rows(store, schema.channel_posts)
    assert post["received_at"] == clock() and post["due_at"] == BACK


def test_a_second_post_by_the_same_sender_gets_no_second_reply_but_a_new_sender_does(
    with_hours, slack, store, fake_slack, clock, drain_channel
):
    ts = clock().timestamp()
    slack.channel_message(channel="C1", user="U2", ts=ts)
    assert drain_channel() == 1
    slack.channel_message(channel="C1", user="U2", ts=ts + 60)
    slack.channel_message(channel="C1", user="U2", ts=ts + 60)  # Slack's redelivery: recorded once
    assert drain_channel() == 0
    assert len(rows(store, schema.channel_posts)) == 2  # both go in the summary
    slack.channel_message(channel="C1", user="UMEMBER", ts=ts + 120)
    assert drain_channel() == 1
    assert len(channel_posts(fake_slack)) == 2


@pytest.mark.parametrize(
    "fields",
    [
        {"thread_ts": "1772590000.000100"},  # a reply in a thread
        {"subtype": "thread_broadcast", "thread_ts": "1772590000.000100"},
        {"bot_id": "B9"},  # a bot
        {"subtype": "message_changed"},  # an edit
        {"subtype": "channel_join"},  # a join
        {"subtype": "bot_message"},
    ],
)
def test_thread_replies_bots_edits_and_joins_get_nothing(with_hours, slack, store, fake_slack, clock, drain_channel,
                                                         fields):  # fmt: skip
    assert slack.channel_message(channel="C1", user="U2", ts=clock().timestamp(), **fields).status == 200
    assert drain_channel() == 0
    assert rows(store, schema.channel_replies) == []
    assert channel_posts(fake_slack) == []


def test_during_the_channels_hours_nothing_is_recorded(with_hours, slack, store, clock, drain_channel):
    clock.set(BACK + timedelta(hours=1))
    slack.channel_message(channel="C1", user="U2", ts=clock().timestamp())
    assert rows(store, schema.channel_posts) == [] and drain_channel() == 0


def test_a_reply_queued_when_the_team_is_back_is_not_sent(with_hours, slack, store, fake_slack, clock, drain_channel):
    slack.channel_message(channel="C1", user="U2", ts=clock().timestamp())
    clock.set(BACK + timedelta(minutes=1))  # the process was down all night: caught up, but no longer true
    assert drain_channel() == 0
    assert rows(store, schema.channel_replies)[0]["last_error"] == "team_back"


def test_a_channel_without_office_hours_costs_no_database_statement(with_hours, slack, store, clock, offhours):
    statements: list[str] = []

    def count(conn, cursor, statement, *args) -> None:
        statements.append(statement)

    ts = clock().timestamp()
    slack.channel_message(channel="C9", user="U2", ts=ts)  # warms the bot token's cache (the authorize step)
    sa.event.listen(store.engine, "before_cursor_execute", count)
    try:
        for n in range(5):
            assert slack.channel_message(channel="C9", user="U2", ts=ts + n + 1).status == 200
            assert slack.channel_message(channel="C9", user="U2", ts=ts + n + 1,
                                         channel_type="group").status == 200  # fmt: skip
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", count)
    assert statements == []
    assert rows(store, schema.channel_posts) == []


# --- the summary at the start of the hours -------------------------------------------------------------------


@pytest.fixture
def tick(offhours, clock, channel_senders):
    from bot.workers.channel_hours import ChannelSummarySender

    def run(app=None) -> int:
        sender = ChannelSummarySender((app or offhours).services)
        channel_senders.append(sender)
        return sender.tick(clock())

    return run


def summary_calls(fake, channel: str = "C1"):
    return [c for c in channel_posts(fake, channel) if not c.params.get("thread_ts")]


def test_the_summary_at_the_start_of_the_hours_leaves_out_what_was_answered(
    with_hours, slack, store, fake_slack, clock, tick, drain_channel
):
    ts = clock().timestamp()
    slack.channel_message(channel="C1", user="U2", ts=ts)
    slack.channel_message(channel="C1", user="UMEMBER", ts=ts + 60)
    slack.channel_message(channel="C1", user="U3", ts=ts + 120)
    drain_channel()
    # UCREATOR answers UMEMBER in the thread; U2 only adds to their own thread (still unanswered).
    slack.channel_message(channel="C1", user="UCREATOR", ts=ts + 300, thread_ts=f"{ts + 60:.6f}")
    slack.channel_message(channel="C1", user="U2", ts=ts + 310, thread_ts=f"{ts:.6f}")
    assert tick() == 0  # still off hours
    assert summary_calls(fake_slack) == []

    clock.set(BACK)
    assert tick() == 1
    [summary] = summary_calls(fake_slack)
    assert summary.token == "xoxb-T1"
    text = block_text(summary.params["blocks"])
    assert "2 messages" in text
    assert "<@U2>" in text and "<@U3>" in text and "<@UMEMBER>" not in text
    assert f"https://example.slack.com/archives/C1/p{f'{ts:.6f}'.replace('.', '')}" in text  # the permalink
    assert f"<!date^{int(ts)}^" in text  # the time, as a Slack date
    assert tick() == 0  # exactly once
    clock.advance(days=1)
    assert tick() == 0
    assert len(summary_calls(fake_slack)) == 1


def test_when_everything_was_answered_there_is_no_summary(with_hours, slack, store, fake_slack, clock, tick):
    ts = clock().timestamp()
    slack.channel_message(channel="C1", user="U2", ts=ts)
    slack.channel_message(channel="C1", user="UMEMBER", ts=ts + 10, thread_ts=f"{ts:.6f}")
    clock.set(BACK)
    assert tick() == 0
    assert summary_calls(fake_slack) == []
    assert rows(store, schema.channel_summaries) == []  # nothing left to summarise: not even opened


def test_a_message_answered_before_its_reply_went_out_gets_no_reply(with_hours, slack, store, fake_slack, clock,
                                                                   drain_channel):  # fmt: skip
    ts = clock().timestamp()
    slack.channel_message(channel="C1", user="U2", ts=ts)
    slack.channel_message(channel="C1", user="UMEMBER", ts=ts + 10, thread_ts=f"{ts:.6f}")
    assert drain_channel() == 0
    assert rows(store, schema.channel_replies)[0]["last_error"] == "message_answered"


def test_the_summary_can_be_dmed_to_a_named_person(with_hours, slack, store, fake_slack, clock, tick):
    answer(slack.command("channel summary <@UCREATOR|creator>", user="UCREATOR"))
    slack.channel_message(channel="C1", user="U2", ts=clock().timestamp())
    clock.set(BACK)
    assert tick() == 1
    assert summary_calls(fake_slack) == []
    [dm] = [c for c in fake_slack.calls_to("chat.postMessage") if c.params.get("channel") == "UCREATOR"]
    assert "<@U2>" in block_text(dm.params["blocks"])


@pytest.mark.parametrize(
    ("who", "says"),
    [("UBOT", "is a bot"), ("UGONE", "is deactivated"), ("UNOBODY", "not someone in this workspace")],
)
def test_a_summary_recipient_who_is_no_person_here_is_refused_and_nothing_changes(with_hours, slack, store,
                                                                                   fake_slack, who, says):  # fmt: skip
    fake_slack.add_user("UBOT", is_bot=True)
    fake_slack.add_user("UGONE")
    fake_slack.users["UGONE"].deleted = True
    said = answer(slack.command(f"channel summary <@{who}>", user="UCREATOR"))
    assert says in said and "nothing was changed" in said.lower()
    assert channel_row(store)["summary_to"] is None


def test_slack_not_answering_about_the_summary_recipient_changes_nothing(with_hours, slack, store, fake_slack):
    fake_slack.fail("users.info", status=500)
    said = answer(slack.command("channel summary <@UMEMBER>", user="UCREATOR"))
    assert "try again" in said.lower() and channel_row(store)["summary_to"] is None


def test_after_downtime_the_summary_is_caught_up_once(with_hours, slack, store, fake_slack, clock, tick):
    slack.channel_message(channel="C1", user="U2", ts=clock().timestamp())
    clock.set(BACK + timedelta(hours=5))  # no scheduler ran at 09:00
    assert tick() == 1 and tick() == 0
    assert len(summary_calls(fake_slack)) == 1


def test_a_summary_of_unknown_outcome_is_looked_up_before_posting_again(with_hours, slack, store, fake_slack, clock,
                                                                       tick):  # fmt: skip
    slack.channel_message(channel="C1", user="U2", ts=clock().timestamp())
    clock.set(BACK)
    fake_slack.fail("chat.postMessage", status=500, after_acting=True)  # posted, but Slack answered 500
    assert tick() == 0
    clock.advance(minutes=5)
    assert tick() == 1  # found in the channel's history, not posted again
    assert len(summary_calls(fake_slack)) == 1
    assert fake_slack.calls_to("conversations.history")
    assert rows(store, schema.channel_summaries)[0]["state"] == "sent"


# --- the bot removed from the channel ------------------------------------------------------------------------


def test_a_reply_refused_with_not_in_channel_is_settled_and_not_retried(with_hours, slack, store, fake_slack, clock,
                                                                       drain_channel):  # fmt: skip
    slack.channel_message(channel="C1", user="U2", ts=clock().timestamp())
    fake_slack.channels["C1"]["is_member"] = False  # removed before the reply went out
    assert drain_channel() == 0
    [reply] = rows(store, schema.channel_replies)
    assert (reply["state"], reply["last_error"]) == ("failed", "not_in_channel")
    clock.advance(minutes=30)
    assert drain_channel() == 0
    assert len(fake_slack.calls_to("chat.postMessage")) == 1  # tried once, never again
    assert channel_row(store) is not None  # the settings stay until `off`


def test_a_summary_refused_with_not_in_channel_is_settled_and_not_retried(with_hours, slack, store, fake_slack, clock,
                                                                         tick):  # fmt: skip
    slack.channel_message(channel="C1", user="U2", ts=clock().timestamp())
    fake_slack.channels["C1"]["is_member"] = False
    clock.set(BACK)
    assert tick() == 0
    clock.advance(hours=1)
    assert tick() == 0
    [summary] = rows(store, schema.channel_summaries)
    assert (summary["state"], summary["last_error"]) == ("failed", "not_in_channel")
    assert len(summary_calls(fake_slack)) == 1


def test_the_channel_left_event_settles_what_waited_there_and_keeps_the_settings(
    with_hours, slack, store, fake_slack, clock, drain_channel, tick
):
    slack.channel_message(channel="C1", user="U2", ts=clock().timestamp())
    fake_slack.channels["C1"]["is_member"] = False
    response = slack.event({"type": "channel_left", "channel": "C1", "actor_id": "UCREATOR"}, authorized="UBOT")
    assert response.status == 200
    assert [r["state"] for r in rows(store, schema.channel_replies)] == ["failed"]
    clock.set(BACK)
    assert drain_channel() == 0 and tick() == 0
    assert fake_slack.calls_to("chat.postMessage") == []
    assert channel_row(store) is not None
    # Asked again, the command says to invite the bot back.
    assert "/invite @Offhours" in answer(slack.command("channel show", user="UCREATOR"))
    assert "off for this channel" in answer(slack.command("channel off", user="UCREATOR"))


# --- two processes -------------------------------------------------------------------------------------------


def test_two_processes_post_each_reply_and_the_summary_exactly_once(
    with_hours, slack, store, fake_slack, clock, settings, channel_senders
):
    import threading

    from slack_sdk import WebClient

    from bot.config import Config
    from bot.services import build_services
    from bot.storage.store import Store
    from bot.workers.channel_hours import ChannelReplySender, ChannelSummarySender

    ts = clock().timestamp()
    senders = [f"US{n:02d}" for n in range(20)]
    for n, sender in enumerate(senders):
        slack.channel_message(channel="C1", user=sender, ts=ts + n)
    stores = [Store(store.url, client_id="111.222") for _ in range(2)]
    try:
        services = [
            build_services(
                Config(), s, settings=settings, client=WebClient(base_url=fake_slack.base_url, timeout=5), clock=clock
            )
            for s in stores
        ]
        replies = [ChannelReplySender(s) for s in services]
        channel_senders.extend(replies)
        barrier = threading.Barrier(2)
        posted: list[int] = []

        def run(sender: ChannelReplySender) -> None:
            barrier.wait()
            posted.append(sender.drain(now=clock()))

        threads = [threading.Thread(target=run, args=(r,)) for r in replies]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sum(posted) == 20
        threads_posted = [c.params["thread_ts"] for c in channel_posts(fake_slack)]
        assert sorted(threads_posted) == sorted(f"{ts + n:.6f}" for n in range(20))  # each once

        clock.set(BACK)
        summaries = [ChannelSummarySender(s) for s in services]
        channel_senders.extend(summaries)
        results: list[int] = []

        def tick(sender: ChannelSummarySender) -> None:
            barrier.wait()
            results.append(sender.tick(clock()))

        threads = [threading.Thread(target=tick, args=(s,)) for s in summaries]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(results) == [0, 1]
        assert len(summary_calls(fake_slack)) == 1
    finally:
        for s in stores:
            s.close()


# --- more of the same guarantees -----------------------------------------------------------------------------


def test_a_deleted_post_leaves_the_summary_and_its_queued_reply_expires(with_hours, slack, store, fake_slack, clock,
                                                                       drain_channel, tick):  # fmt: skip
    ts = clock().timestamp()
    slack.channel_message(channel="C1", user="U2", ts=ts)
    slack.channel_message(channel="C1", user=None, ts=ts + 5, subtype="message_deleted", deleted_ts=f"{ts:.6f}")
    assert drain_channel() == 0
    assert rows(store, schema.channel_replies)[0]["last_error"] == "message_deleted"
    clock.set(BACK)
    assert tick() == 0 and summary_calls(fake_slack) == []


def test_a_summary_answered_between_its_opening_and_its_post_is_not_sent(with_hours, slack, store, fake_slack, clock,
                                                                        tick):  # fmt: skip
    ts = clock().timestamp()
    slack.channel_message(channel="C1", user="U2", ts=ts)
    clock.set(BACK)
    fake_slack.fail("chat.postMessage", status=429, retry_after=30)
    assert tick() == 0  # opened, refused for now
    slack.channel_message(channel="C1", user="UCREATOR", ts=BACK.timestamp(), thread_ts=f"{ts:.6f}")
    clock.advance(minutes=1)
    assert tick() == 0
    assert [r["state"] for r in rows(store, schema.channel_summaries)] == ["empty"]
    assert len(summary_calls(fake_slack)) == 1  # the refused attempt only


def test_the_reply_sender_thread_wakes_when_a_reply_is_queued(with_hours, slack, fake_slack, clock, offhours,
                                                             channel_senders):  # fmt: skip
    from bot.workers.channel_hours import ChannelReplySender

    sender = ChannelReplySender(offhours.services, poll_seconds=600)  # its poll would never come in this test
    channel_senders.append(sender)
    sender.start()
    slack.channel_message(channel="C1", user="U2", ts=clock().timestamp())
    [call] = fake_slack.wait_for("chat.postMessage", 1, timeout=10)
    assert call.params["channel"] == "C1"


def test_holidays_days_off_and_the_summarys_target_are_set_by_the_command(with_hours, slack, store):
    answer(slack.command("channel holidays GB", user="UCREATOR"))
    answer(slack.command("channel daysoff 2026-12-24..2027-01-02", user="UCREATOR"))
    said = answer(slack.command("channel summary <@UADMIN|admin>", user="UCREATOR"))
    assert "DMed to <@UADMIN>" in said
    row = channel_row(store)
    assert (row["holidays"], row["days_off"], row["summary_to"]) == ("GB", "2026-12-24..2027-01-02", "UADMIN")
    answer(slack.command("channel summary here", user="UCREATOR"))
    assert channel_row(store)["summary_to"] is None
    assert "Name one person" in answer(slack.command("channel summary maria", user="UCREATOR"))


def test_forgetting_the_summarys_recipient_sends_it_back_to_the_channel_and_keeps_the_hours(with_hours, slack, store):
    answer(slack.command("channel summary <@UADMIN|admin>", user="UCREATOR"))
    slack.channel_message(channel="C1", user="UADMIN", ts=1772593200.0)
    store.forget_person("T1", "UADMIN")
    row = channel_row(store)
    assert row is not None and row["summary_to"] is None
    assert rows(store, schema.channel_posts) == [] and rows(store, schema.channel_replies) == []


def test_off_drops_what_waited_and_a_queued_reply_is_not_sent(with_hours, slack, store, fake_slack, clock,
                                                             drain_channel, tick):  # fmt: skip
    slack.channel_message(channel="C1", user="U2", ts=clock().timestamp())
    answer(slack.command("channel off", user="UCREATOR"))
    assert drain_channel() == 0
    clock.set(BACK)
    assert tick() == 0
    assert fake_slack.calls_to("chat.postMessage") == []
    # And the channel's messages cost nothing again.
    slack.channel_message(channel="C1", user="U2", ts=clock().timestamp() + 3600 * 10)
    assert len(rows(store, schema.channel_posts)) == 0


@pytest.mark.parametrize("posted_before_the_crash", [False, True])
def test_a_reply_claimed_by_a_process_that_died_is_looked_up_then_sent_once(
    with_hours, slack, store, fake_slack, clock, drain_channel, posted_before_the_crash
):
    ts = clock().timestamp()
    slack.channel_message(channel="C1", user="U2", ts=ts)
    [claimed] = store.channel_hours.claim_replies(now=clock())  # the dead process's claim, never settled
    if posted_before_the_crash:
        fake_slack.channel_messages["C1"].append({"ts": "1772593300.000100", "thread_ts": f"{ts:.6f}", "metadata": {
            "event_type": REPLY_EVENT_TYPE, "event_payload": {"reply_id": str(claimed.id)}}})  # fmt: skip
    assert drain_channel() == 0  # its lease still holds
    clock.advance(seconds=61)
    assert drain_channel() == 1
    assert fake_slack.calls_to("conversations.replies")  # looked for first
    assert len(channel_posts(fake_slack)) == (0 if posted_before_the_crash else 1)
    [reply] = rows(store, schema.channel_replies)
    assert reply["state"] == "sent"


def test_the_subcommand_alone_or_misspelt_says_how_to_use_it(workspace, slack):
    assert "channel set mon-fri 9-17:30 Europe/London" in answer(slack.command("channel", user="UMEMBER"))
    said = answer(slack.command("channel sett mon-fri 9-17 UTC", user="UMEMBER"))
    assert "`sett` is not a `/hours channel` subcommand" in said


@pytest.mark.parametrize("failure", [{"status": 429, "retry_after": 30}, {"status": 503}, {"disconnect": True}])
def test_slack_refusing_the_lookup_before_the_ack_is_answered_at_once(workspace, slack, store, fake_slack, failure):
    import time

    fake_slack.fail("conversations.info", **failure)
    started = time.monotonic()
    said = answer(slack.command(SET, user="UADMIN"))
    assert time.monotonic() - started < 2.5  # within Slack's 3 seconds: nothing slept on Retry-After
    assert "try again" in said
    assert channel_row(store) is None
    assert len(fake_slack.calls_to("conversations.info")) == 1  # not retried before the ack


def test_the_in_memory_set_learns_another_processs_change_within_its_refresh_interval(store, clock):
    from bot.channel_hours import ChannelHoursService

    elapsed = [0.0]
    here = ChannelHoursService(store, clock=clock, refresh_s=30, monotonic=lambda: elapsed[0])
    there = ChannelHoursService(store, clock=clock)  # another process
    assert here.lookup("T1", "C1") is None
    there.set_hours("T1", "C1", "mon-fri 9-17:30 Europe/London")
    elapsed[0] = 29.0
    assert here.lookup("T1", "C1") is None  # from memory: no statement
    elapsed[0] = 30.0
    assert here.lookup("T1", "C1") is not None  # reread
    here.turn_off("T1", "C1")
    assert here.lookup("T1", "C1") is None  # a change here is seen here at once


def test_retention_drops_finished_channel_rows_and_keeps_what_still_waits(with_hours, slack, store, clock, tick,
                                                                         drain_channel):  # fmt: skip
    ts = clock().timestamp()
    slack.channel_message(channel="C1", user="U2", ts=ts)
    drain_channel()
    clock.set(BACK)
    tick()
    slack.channel_message(channel="C1", user="U3", ts=(BACK + timedelta(hours=9)).timestamp())  # Wed 18:00: off
    clock.set(BACK + timedelta(days=20))
    store.purge_expired(now=clock(), days=14)
    assert [r["sender_id"] for r in rows(store, schema.channel_posts)] == ["U3"]  # still waiting for its summary
    assert [r["sender_id"] for r in rows(store, schema.channel_replies)] == ["U3"]
    assert rows(store, schema.channel_summaries) == []
