"""Issue 17's reply rules, through signed HTTP events and the fake Slack: once per window across changes of
hours, zone and days off (and retention), a deleted DM's unposted reply giving way, presence in a DM, people of
other organisations, no sleeping before the ack, Enterprise Grid installs.

The clock starts on Tue 3 Mar 2026 22:00 in New York. U1 is the connected recipient (New York, Mon–Fri
09:00–17:30), U2 the sender.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from slack_sdk.oauth.installation_store.models.installation import Installation

from bot.config import Config
from bot.domain.delivery import DeliveryState, Outcome
from bot.slack.app import create_app
from bot.slack.client import make_client
from bot.storage import db, schema
from bot.workers.deferred import DeferredDmResolver
from bot.workers.replies import ReplySender
from tests.support.helpers import RunningServer, connect, rows
from tests.support.slackhttp import SlackHTTP, dm_channel

CHANNEL = dm_channel("U1", "U2")


@pytest.fixture
def senders() -> Iterator[list[ReplySender]]:
    made: list[ReplySender] = []
    yield made
    for sender in made:
        sender.stop(timeout=5)


@pytest.fixture
def drain(offhours, clock, senders):
    def run(app=None) -> int:
        sender = ReplySender((app or offhours).services)
        senders.append(sender)
        return sender.drain(now=clock())

    return run


@pytest.fixture
def people(offhours, store, fake_slack):
    connect(store, fake_slack, "U1")
    offhours.services.people.ensure("T1", "U1", profile_tz="America/New_York")
    fake_slack.add_user("U2", tz="Europe/Rome")
    fake_slack.dm_members[CHANNEL] = ("U1", "U2")
    return offhours


def ts_now(clock, seconds: float = 0) -> float:
    return clock().timestamp() + seconds


def posts(fake):
    return fake.calls_to("chat.postMessage")


def hours(slack: SlackHTTP, text: str) -> None:
    response = slack.command(text, user="U1")
    assert response.status == 200, response.text


def deletion(ts: float, *, channel: str = CHANNEL) -> dict:
    return {
        "type": "message", "subtype": "message_deleted", "channel": channel, "channel_type": "im", "hidden": True,
        "deleted_ts": f"{ts:.6f}", "ts": f"{ts + 100:.6f}",
        "previous_message": {"type": "message", "user": "U2", "text": "oops", "ts": f"{ts:.6f}"},
    }  # fmt: skip


# --- item 6: once per evening, whatever changes mid-evening -----------------------------------------------------


@pytest.mark.parametrize("change", ["set mon-fri 10-18", "tz Europe/London", "off 2026-03-04", "set mon-fri 8-16"])
def test_no_second_reply_the_same_evening_after_a_change_of_hours_zone_or_days_off(
    change, people, store, fake_slack, slack, clock, drain
):
    assert slack.dm(sender="U2", recipient="U1", ts=ts_now(clock)).status == 200
    assert drain() == 1
    clock.advance(minutes=5)
    hours(slack, change)  # moves the "back at" time, the old once-per-window key
    clock.advance(minutes=5)
    assert slack.dm(sender="U2", recipient="U1", ts=ts_now(clock), text="still there?").status == 200
    assert drain() == 0
    assert len(posts(fake_slack)) == 1
    assert len(rows(store, db.replies)) == 1
    assert len(rows(store, db.messages)) == 2  # both are in the recap


def test_the_next_evening_is_answered_again_after_a_change_of_hours(people, store, fake_slack, slack, clock, drain):
    slack.dm(sender="U2", recipient="U1", ts=ts_now(clock))
    assert drain() == 1
    hours(slack, "set mon-fri 10-18")
    clock.set(datetime(2026, 3, 5, 0, 0, tzinfo=UTC))  # Wed 19:00 in New York: the next evening
    slack.dm(sender="U2", recipient="U1", ts=ts_now(clock))
    assert drain() == 1
    assert len(posts(fake_slack)) == 2


def test_once_per_day_is_kept_across_a_change_of_hours(make_app, store, fake_slack, clock, senders):
    app = make_app(reply=replace(Config().reply, once_per="day"))
    running = RunningServer(app)
    try:
        slack = SlackHTTP(running.url)
        connect(store, fake_slack, "U1")
        fake_slack.dm_members[CHANNEL] = ("U1", "U2")
        sender = ReplySender(app.services)
        senders.append(sender)
        slack.dm(sender="U2", recipient="U1", ts=ts_now(clock))
        assert sender.drain(now=clock()) == 1
        [reply] = rows(store, db.replies)
        # The recipient's local day, Tue 3 Mar in New York, as the interval it covers.
        assert (reply["window_start"], reply["window_end"]) == (
            datetime(2026, 3, 3, 5, 0, tzinfo=UTC),
            datetime(2026, 3, 4, 5, 0, tzinfo=UTC),
        )
        hours(slack, "set mon-fri 10-18")
        clock.advance(minutes=10)
        slack.dm(sender="U2", recipient="U1", ts=ts_now(clock))
        assert sender.drain(now=clock()) == 0
    finally:
        running.close()


# --- item 3: retention keeps what the rule needs --------------------------------------------------------------


def test_retention_does_not_give_a_second_reply_during_a_long_vacation(people, store, fake_slack, slack, clock, drain):
    hours(slack, "off 2026-03-04..2026-03-31")
    slack.dm(sender="U2", recipient="U1", ts=ts_now(clock))
    assert drain() == 1
    clock.advance(days=15)  # past retention_days (14), the vacation still on
    store.purge_expired(now=clock(), days=people.services.config.retention_days)
    assert len(rows(store, db.replies)) == 1  # its window is still open
    slack.dm(sender="U2", recipient="U1", ts=ts_now(clock), text="back yet?")
    assert drain() == 0
    assert len(posts(fake_slack)) == 1
    clock.set(datetime(2026, 4, 2, 0, 0, tzinfo=UTC))  # the window has ended (back Wed 1 Apr 09:00)
    store.purge_expired(now=clock(), days=people.services.config.retention_days)
    assert rows(store, db.replies) == []  # now it goes


# --- item 4: a deleted DM whose reply never went out ------------------------------------------------------------


def test_a_deleted_dm_whose_first_attempt_was_rate_limited_does_not_hold_the_window(
    people, store, fake_slack, slack, clock, drain
):
    fake_slack.fail("chat.postMessage", status=429, retry_after=30)
    first = ts_now(clock)
    slack.dm(sender="U2", recipient="U1", ts=first)
    assert drain() == 0  # rate-limited: not posted, due again later
    assert slack.event(deletion(first), authorized="U1").status == 200
    clock.advance(minutes=1)
    second = ts_now(clock)
    slack.dm(sender="U2", recipient="U1", ts=second)
    clock.advance(minutes=1)
    assert drain() == 1
    [post] = [p for p in posts(fake_slack) if p.params.get("thread_ts") == f"{second:.6f}"]
    assert post is not None
    clock.advance(minutes=1)
    slack.dm(sender="U2", recipient="U1", ts=ts_now(clock))  # a third: the window is answered now
    clock.advance(minutes=1)
    assert drain() == 0
    assert [r["state"] for r in rows(store, db.replies)] == ["sent"]


def test_a_reply_expired_because_its_dm_was_deleted_gives_way_to_the_next_dm(
    people, store, fake_slack, slack, clock, drain
):
    first = ts_now(clock)
    slack.dm(sender="U2", recipient="U1", ts=first)
    [claim] = store.replies.claim_due(now=clock())  # a sender has it in flight when the deletion comes
    assert slack.event(deletion(first), authorized="U1").status == 200
    # That sender stops before posting and hands the claim back (not posted); the next claim finds the DM gone.
    store.replies.settle([(claim.id, claim.attempts, Outcome(DeliveryState.NOT_POSTED, untried=True))])
    clock.advance(seconds=61)  # its lease has run out
    assert drain() == 0
    [expired] = rows(store, db.replies)
    assert (expired["state"], expired["last_error"]) == ("expired", "message_deleted")
    clock.advance(minutes=2)
    second = ts_now(clock)
    assert slack.dm(sender="U2", recipient="U1", ts=second).status == 200
    assert drain() == 1
    assert posts(fake_slack)[-1].params["thread_ts"] == f"{second:.6f}"
    clock.advance(minutes=2)
    slack.dm(sender="U2", recipient="U1", ts=ts_now(clock))
    assert drain() == 0
    assert len(posts(fake_slack)) == 1


# --- item 7: the person is present in a DM they just wrote in ---------------------------------------------------


def test_no_reply_to_someone_the_person_just_wrote_to(people, store, fake_slack, slack, clock, drain):
    fake_slack.add_user("U3", tz="Asia/Tokyo")
    assert slack.dm(sender="U1", recipient="U2", ts=ts_now(clock), authorized="U1").status == 200
    clock.advance(minutes=1)
    assert slack.dm(sender="U2", recipient="U1", ts=ts_now(clock), text="sure, one sec").status == 200
    # Another DM is not the one U1 is in: U3 is answered.
    assert slack.dm(sender="U3", recipient="U1", ts=ts_now(clock, 1), channel=dm_channel("U1", "U3")).status == 200
    assert drain() == 1
    assert posts(fake_slack)[0].params["channel"] == dm_channel("U1", "U3")
    assert len(rows(store, db.messages)) == 2  # U2's answer is still in the recap
    clock.advance(minutes=31)  # U1 went quiet: PRESENT_FOR (30 minutes) has passed
    slack.dm(sender="U2", recipient="U1", ts=ts_now(clock), text="hello?")
    assert drain() == 1
    assert posts(fake_slack)[-1].params["channel"] == CHANNEL


def test_presence_is_forgotten_with_the_person(people, store, slack, clock):
    slack.dm(sender="U1", recipient="U2", ts=ts_now(clock), authorized="U1")
    assert len(rows(store, db.dm_presence)) == 1
    store.forget_person("T1", "U1")
    assert rows(store, db.dm_presence) == []


# --- Slack Connect: people of another organisation ------------------------------------------------------------


def external_dm(slack: SlackHTTP, *, ts: float, channel: str = CHANNEL):
    return slack.dm(sender="U2", recipient="U1", ts=ts, channel=channel, user_team="TOTHER", source_team="TOTHER")


def test_people_of_another_organisation_get_no_auto_reply_by_default(people, store, fake_slack, slack, clock, drain):
    assert external_dm(slack, ts=ts_now(clock)).status == 200
    assert drain() == 0
    assert posts(fake_slack) == []
    [message] = rows(store, db.messages)  # still in the recap
    assert message["sender_id"] == "U2"
    assert rows(store, db.replies) == []


def test_a_person_can_choose_what_other_organisations_are_told(people, store, fake_slack, slack, clock, drain):
    hours(slack, "message external Thanks! I'm out of office; I'll answer when I'm back.")
    assert external_dm(slack, ts=ts_now(clock)).status == 200
    assert drain() == 1
    [post] = posts(fake_slack)
    text = post.params["text"]
    assert "I'm out of office" in text
    assert "UTC" not in text and "my time" not in text
    # Colleagues still get the usual message.
    fake_slack.add_user("U3")
    slack.dm(sender="U3", recipient="U1", ts=ts_now(clock, 1), channel=dm_channel("U1", "U3"))
    assert drain() == 1
    assert "I'm out of office" not in posts(fake_slack)[-1].params["text"]


def test_the_config_can_answer_other_organisations_as_everyone(make_app, store, fake_slack, clock, senders):
    app = make_app(reply=replace(Config().reply, external="same"))
    running = RunningServer(app)
    try:
        connect(store, fake_slack, "U1")
        fake_slack.dm_members[CHANNEL] = ("U1", "U2")
        external_dm(SlackHTTP(running.url), ts=ts_now(clock))
        sender = ReplySender(app.services)
        senders.append(sender)
        assert sender.drain(now=clock()) == 1
    finally:
        running.close()


def test_an_ext_shared_dm_counts_as_external_and_grid_workspaces_do_not(people, store, fake_slack, slack, clock, drain):
    def envelope(ts: float, **extra) -> str:
        event = {"type": "message", "channel": CHANNEL, "channel_type": "im", "user": "U2", "text": "hi",
                 "ts": f"{ts:.6f}", "user_team": "T9"}  # fmt: skip
        return json.dumps({"team_id": "T1", "api_app_id": "A1", "type": "event_callback", "event_id": f"Ev{ts}",
                           "event": event, "authorizations": [{"team_id": "T1", "user_id": "U1", "is_bot": False}],
                           **extra})  # fmt: skip

    def send(body: str) -> int:
        return slack.post(body, content_type="application/json").status

    # On Grid another workspace of the same organisation is a colleague: answered.
    assert send(envelope(ts_now(clock), enterprise_id="E1", is_ext_shared_channel=False)) == 200
    assert drain() == 1
    clock.set(datetime(2026, 3, 5, 3, 0, tzinfo=UTC))  # the next evening
    assert send(envelope(ts_now(clock), enterprise_id="E1", is_ext_shared_channel=True)) == 200
    assert drain() == 0  # Slack Connect: withheld


# --- item 8: nothing before the ack sleeps on Retry-After -------------------------------------------------------


def test_a_rate_limited_lookup_before_the_ack_answers_at_once_and_the_dm_is_recorded_later_once(
    store, settings, fake_slack, clock, senders
):
    # The production client: retry handlers that sleep on Retry-After. The listener must not use them.
    app = create_app(Config(), store, settings=settings, client=make_client(settings), clock=clock)
    running = RunningServer(app)
    try:
        slack = SlackHTTP(running.url)
        connect(store, fake_slack, "U1")
        connect(store, fake_slack, "U2")
        fake_slack.dm_members[CHANNEL] = ("U1", "U2")
        fake_slack.fail("conversations.info", status=429, retry_after=30, times=2)
        ts = ts_now(clock)
        started = time.monotonic()
        first = slack.dm(sender="U2", recipient="U1", ts=ts, authorized="U2", event_id="EvRL")
        elapsed = time.monotonic() - started
        assert elapsed < 2.0, elapsed
        assert first.status == 200  # kept before the ack: nothing for Slack to redeliver
        assert len(fake_slack.calls_to("conversations.info")) == 1  # not retried in the request thread
        assert rows(store, schema.messages) == []
        [deferred] = rows(store, schema.deferred_dms)
        assert (deferred["channel_id"], deferred["writer_id"], deferred["attempts"]) == (CHANNEL, "U2", 0)
        # Slack redelivers all the same (say the 200 was lost), refused again: still the one row, nothing recorded.
        again = slack.dm(sender="U2", recipient="U1", ts=ts, authorized="U2", event_id="EvRL", retry_num=1)
        assert again.status == 200
        assert len(rows(store, schema.deferred_dms)) == 1
        assert rows(store, schema.messages) == []

        resolver = DeferredDmResolver(app.services)
        assert resolver.tick(now=clock.advance(seconds=29)) == 0  # Retry-After not over: Slack is not asked
        assert len(fake_slack.calls_to("conversations.info")) == 2
        assert resolver.tick(now=clock.advance(seconds=2)) == 1
        [message] = rows(store, schema.messages)
        assert (message["recipient_id"], message["sender_id"], message["ts"]) == ("U1", "U2", f"{ts:.6f}")
        assert len(rows(store, schema.replies)) == 1  # its one auto-reply, queued
        assert rows(store, schema.deferred_dms) == []
        assert store.dm_channels.members("T1", CHANNEL) is not None  # remembered: no lookup next time

        late = slack.dm(sender="U2", recipient="U1", ts=ts, authorized="U2", event_id="EvRL", retry_num=2)
        assert late.status == 200
        assert len(rows(store, schema.messages)) == 1
        assert len(rows(store, schema.replies)) == 1
        assert resolver.tick(now=clock.advance(seconds=60)) == 0
        assert len(fake_slack.calls_to("conversations.info")) == 3
    finally:
        running.close()


def test_a_server_error_on_the_lookup_defers_the_dm_and_forget_deletes_it(store, settings, fake_slack, clock):
    app = create_app(Config(), store, settings=settings, client=make_client(settings), clock=clock)
    running = RunningServer(app)
    try:
        slack = SlackHTTP(running.url)
        connect(store, fake_slack, "U1")
        connect(store, fake_slack, "U2")
        fake_slack.dm_members[CHANNEL] = ("U1", "U2")
        fake_slack.fail("conversations.info", status=503)
        response = slack.dm(sender="U2", recipient="U1", ts=ts_now(clock), authorized="U2", event_id="Ev5")
        assert response.status == 200
        assert len(rows(store, schema.deferred_dms)) == 1
        assert slack.command("forget", user="U2").status == 200
        assert rows(store, schema.deferred_dms) == []
        assert DeferredDmResolver(app.services).tick(now=clock.advance(minutes=5)) == 0
        assert rows(store, schema.messages) == []
    finally:
        running.close()


def test_forget_does_not_wait_out_a_rate_limited_auth_revoke(store, settings, fake_slack, clock):
    app = create_app(Config(), store, settings=settings, client=make_client(settings), clock=clock)
    running = RunningServer(app)
    try:
        connect(store, fake_slack, "U1")
        fake_slack.fail("auth.revoke", status=429, retry_after=30)
        started = time.monotonic()
        response = SlackHTTP(running.url).command("forget", user="U1")
        assert time.monotonic() - started < 2.0
        assert response.status == 200, response.text
        assert len(fake_slack.calls_to("auth.revoke")) == 1
        assert store.user_token("T1", "U1") is None  # forgotten all the same
    finally:
        running.close()


def test_no_lookup_at_all_when_no_one_else_is_connected(people, store, fake_slack, slack, clock):
    fake_slack.fail("conversations.info", status=429, retry_after=30)
    response = slack.dm(sender="U1", recipient="U5", ts=ts_now(clock), authorized="U1", channel="DNEW")
    assert response.status == 200
    assert fake_slack.calls_to("conversations.info") == []


# --- item 10: Enterprise Grid ---------------------------------------------------------------------------------


def grid_install(store, fake, user_id: str, *, org_wide: bool) -> None:
    token = f"xoxp-grid-{user_id}"
    store.installation_store.save(
        Installation(
            app_id="A1", enterprise_id="E1", team_id=None if org_wide else "T1", is_enterprise_install=org_wide,
            bot_token="xoxb-grid", bot_id="B1", bot_user_id="UBOT", bot_scopes="commands,chat:write",
            user_id=user_id, user_token=token, user_scopes="im:history,chat:write",
            installed_at=datetime.now(UTC).timestamp(),
        )
    )  # fmt: skip
    fake.add_user(user_id, tz="America/New_York")
    fake.tokens[token] = {"team_id": "T1", "user_id": user_id}


@pytest.mark.parametrize("org_wide", [False, True], ids=["workspace-install", "org-wide-install"])
def test_a_person_connected_on_enterprise_grid_reads_as_connected(org_wide, offhours, store, fake_slack, clock, drain):
    grid_install(store, fake_slack, "U1", org_wide=org_wide)
    store.save_person("T1", "U1", now=clock(), tz="America/New_York")
    assert store.user_token("T1", "U1") == "xoxp-grid-U1"
    assert store.user_tokens("T1", ["U1"]) == {"U1": "xoxp-grid-U1"}
    assert store.dm_view("T1", CHANNEL, recipient_id="U1", sender_id=None).recipient_token == "xoxp-grid-U1"
    running = RunningServer(offhours)
    try:
        event = {"type": "message", "channel": CHANNEL, "channel_type": "im", "user": "U2", "text": "hi",
                 "ts": f"{ts_now(clock):.6f}"}  # fmt: skip
        body = {"team_id": "T1", "enterprise_id": "E1", "api_app_id": "A1", "type": "event_callback",
                "event_id": "EvGRID", "event": event, "is_ext_shared_channel": False,
                "authorizations": [{"enterprise_id": "E1", "team_id": None if org_wide else "T1", "user_id": "U1",
                                    "is_bot": False, "is_enterprise_install": org_wide}]}  # fmt: skip
        response = SlackHTTP(running.url).post(json.dumps(body), content_type="application/json")
        assert response.status == 200, response.text
    finally:
        running.close()
    [reply] = rows(store, db.replies)
    assert reply["recipient_id"] == "U1"
    assert drain() == 1
    assert posts(fake_slack)[0].token == "xoxp-grid-U1"
    store.forget_person("T1", "U1")  # forgetting them removes the org-wide token too
    assert store.user_token("T1", "U1") is None


# --- the reply sender re-checks the exception list --------------------------------------------------------------


def test_a_sender_put_on_the_exception_list_after_their_dm_gets_no_reply(
    people, store, fake_slack, slack, clock, drain
):
    slack.dm(sender="U2", recipient="U1", ts=ts_now(clock))
    fake_slack.add_user("U3")
    slack.dm(sender="U3", recipient="U1", ts=ts_now(clock, 1), channel=dm_channel("U1", "U3"))
    store.exceptions.change("T1", "U1", add=["U2"], limit=50)  # before the reply sender got to it
    assert drain() == 1
    assert [p.params["channel"] for p in posts(fake_slack)] == [dm_channel("U1", "U3")]
    states = {r["sender_id"]: (r["state"], r["last_error"]) for r in rows(store, db.replies)}
    assert states == {"U2": ("expired", "excepted"), "U3": ("sent", None)}
