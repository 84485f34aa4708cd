"""Every Web API call Offhours makes, against every kind of Slack fault: 500, 429 with Retry-After, a timeout,
invalid_auth, token_revoked, channel_not_found and user_not_found.

What must hold whatever Slack answers: retryable faults (5xx, 429, timeouts) are retried later and end up sent
exactly once; definite refusals give up cleanly, with the outcome recorded; a person whose own token is refused
is disconnected; nothing is posted twice (counted at the fake, including posts Slack carried out after the
client had given up waiting); and Slack's own requests (events, commands, clicks) never get a 5xx for a Web API
fault, except where a 5xx is the point: an event that could not be recorded yet is redelivered by Slack.

The calls, and where they are made:
    chat.postMessage / chat.postEphemeral  the auto-reply (bot/workers/replies.py, the person's token)
    users.info                             the person's own zone while it is unknown (/hours, Home, OAuth);
                                           never for a sender: the auto-reply's {back_at_sender} is a Slack date
    conversations.info                     a DM seen through its sender's token (listeners/messages.py)
    chat.postMessage, chat.getPermalink    the recap (bot/workers/recaps.py: bot token, person's token for links)
    chat.update                            the recap after a Done click (listeners/recap_actions.py)
    views.publish, views.open              the Home tab (listeners/home.py)
    auth.revoke                            /hours forget (listeners/commands.py)
    oauth.v2.access                        the OAuth redirect (Bolt)
"""

from __future__ import annotations

import http.client
import ssl
import urllib.error
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from slack_sdk import WebClient

from bot.config import Config
from bot.domain.autoreply import METADATA_EVENT_TYPE
from bot.domain.delivery import IN_FLIGHT, LOOKUP_FAILED, DeliveryState, maybe_posted
from bot.slack.app import create_app
from bot.slack.blocks import home as home_ui
from bot.slack.blocks.recap import DONE_ACTION
from bot.slack.client import request_error, slack_error, slack_retryable
from bot.storage import db, schema
from bot.storage.store import Store
from bot.workers.deferred import DeferredDmResolver
from bot.workers.recaps import RecapSender
from bot.workers.replies import ReplySender
from tests.support.helpers import RunningServer, connect, rows
from tests.support.recording import RecordingSlack
from tests.support.slackhttp import SlackHTTP, dm_channel

CLIENT_TIMEOUT = 0.4  # seconds: the app's Web API timeout in these tests
SLOW = 1.0  # seconds: how long the fake takes to answer a "timeout" call (it still carries it out)

FAULTS = {
    "500": {"status": 500},
    "500_after_acting": {"status": 500, "after_acting": True},  # Slack did it, then answered internal_error
    "429": {"status": 429, "retry_after": 30},
    "timeout": {"delay": SLOW},
    "invalid_auth": {"error": "invalid_auth"},
    "token_revoked": {"error": "token_revoked"},
    "channel_not_found": {"error": "channel_not_found"},
    "user_not_found": {"error": "user_not_found"},
}
RETRYABLE = {"500", "500_after_acting", "429", "timeout"}
# Slack may have carried the call out: a post is looked for before it is tried again; an ephemeral one is not
# tried again (it cannot be looked up).
AMBIGUOUS = {"500", "500_after_acting", "timeout"}
REVOKED = {"invalid_auth", "token_revoked"}
FAULT_NAMES = list(FAULTS)

WITH_U2 = dm_channel("U1", "U2")
DUE = datetime(2026, 3, 4, 14, 0, tzinfo=UTC)  # U1's recap: Wed 09:00 EST


@pytest.fixture
def fake_slack() -> Iterator[RecordingSlack]:
    fake = RecordingSlack().start()
    yield fake
    fake.stop()


@pytest.fixture
def make_app(store, settings, fake_slack, clock):
    """As conftest's, with a short Web API timeout so that a slow Slack is a timeout within a test's time."""

    def build(config: Config | None = None, **changes):
        config = replace(config or Config(), **changes)
        client = WebClient(base_url=fake_slack.base_url, timeout=CLIENT_TIMEOUT)
        return create_app(config, store, settings=settings, client=client, clock=clock)

    return build


@pytest.fixture
def serve(make_app) -> Iterator:
    """serve(**config changes) -> (app, SlackHTTP) on a running server of its own."""
    servers: list[RunningServer] = []

    def start(**changes):
        app = make_app(**changes)
        servers.append(RunningServer(app))
        return app, SlackHTTP(servers[-1].url)

    yield start
    for running in servers:
        running.close()


@pytest.fixture
def workers() -> Iterator[list]:
    made: list = []
    yield made
    for sender in made:
        if isinstance(sender, ReplySender):
            sender.stop(timeout=5)


def forget_row(store: Store, user_id: str) -> None:
    """A connected person who has never used Offhours yet: no settings row (their first contact comes next)."""
    with store.engine.begin() as conn:
        conn.execute(db.people.delete().where(db.people.c.user_id == user_id))


def everyone(store, fake, *users: str) -> None:
    for user in users:
        connect(store, fake, user, tz="America/New_York")
    fake.add_user("U2", tz="Europe/Rome")
    fake.add_user("U3", tz="Asia/Tokyo")
    fake.dm_members[WITH_U2] = ("U1", "U2")


# --- the auto-reply: chat.postMessage (thread mode) and chat.postEphemeral (ephemeral mode) ---------------------


@pytest.mark.parametrize("fault", FAULT_NAMES)
@pytest.mark.parametrize("mode", ["thread", "ephemeral"])
def test_auto_reply_post(fault, mode, serve, store, fake_slack, clock, workers):
    app, slack = serve(reply=replace(Config().reply, mode=mode))
    everyone(store, fake_slack, "U1")
    method = "chat.postMessage" if mode == "thread" else "chat.postEphemeral"
    sender = ReplySender(app.services)
    workers.append(sender)
    fake_slack.fail(method, **FAULTS[fault])

    assert slack.dm(sender="U2", recipient="U1", ts=clock().timestamp()).status == 200
    assert sender.drain(now=clock()) == 0
    fake_slack.settle()
    # Later drains: past any backoff or Retry-After, still within U1's evening off.
    for minutes in (11, 22, 40):
        clock.set(datetime(2026, 3, 4, 3, 0, tzinfo=UTC) + timedelta(minutes=minutes))
        sender.drain(now=clock())

    posted = fake_slack.posts(method)
    assert fake_slack.calls_to("users.info") == []  # nothing is asked about the sender, whatever the post's fate
    if fault in REVOKED:
        assert posted == []
        assert store.user_token("T1", "U1") is None  # disconnected, and their data with it
        assert rows(store, db.replies) == [] and rows(store, db.messages) == []
        return
    [message] = rows(store, db.messages)
    assert message["state"] == "pending"  # whatever happened to the reply, the recap still has the message
    [reply] = rows(store, db.replies)
    if fault in RETRYABLE and not (fault in AMBIGUOUS and mode == "ephemeral"):
        assert len(posted) == 1, posted  # retried until sent, and sent once
        assert reply["state"] == "sent"
        assert reply["attempts"] >= 2
        assert len(fake_slack.calls_to("conversations.replies")) == (fault in AMBIGUOUS)  # looked first
    elif fault in AMBIGUOUS:
        # An ephemeral post cannot be looked up afterwards: one that may have been shown is not repeated.
        assert len(posted) == (fault != "500")  # the fake's plain 500 did not post; the others did
        assert (reply["state"], reply["last_error"]) == (
            "failed", "timeout" if fault == "timeout" else "internal_error"
        )  # fmt: skip
    else:
        assert posted == []
        assert (reply["state"], reply["last_error"]) == ("failed", fault)
    assert store.user_token("T1", "U1") is not None


@pytest.fixture
def answered_too_late(serve, store, fake_slack, clock, workers):
    """An auto-reply Slack posted but answered too late (a timeout): returns (its sender, the post Slack made)."""
    app, slack = serve()
    everyone(store, fake_slack, "U1")
    sender = ReplySender(app.services)
    workers.append(sender)
    fake_slack.fail("chat.postMessage", delay=SLOW)
    slack.dm(sender="U2", recipient="U1", ts=clock().timestamp())
    assert sender.drain(now=clock()) == 0
    [first] = fake_slack.posts()  # Slack did post it
    return sender, first


def test_a_reply_retried_after_a_timeout_is_not_posted_twice_even_when_slack_took_it(
    answered_too_late, store, fake_slack, clock
):
    """The ambiguous case in detail: Slack posted the reply, the answer came too late; the retry finds it."""
    sender, first = answered_too_late
    clock.advance(minutes=1)
    sender.drain(now=clock())

    [lookup] = fake_slack.calls_to("conversations.replies")
    assert lookup.token == "xoxp-T1-U1" and str(lookup.params["include_all_metadata"]).lower() in ("true", "1")
    assert fake_slack.posts() == [first]
    [reply] = rows(store, db.replies)
    assert (reply["state"], reply["reply_ts"]) == ("sent", first.params["_ts"])
    assert first.params["metadata"]["event_type"] == METADATA_EVENT_TYPE


@pytest.mark.parametrize("lookup_fault", sorted(RETRYABLE))
def test_a_failed_lookup_is_tried_again_before_any_new_post(lookup_fault, answered_too_late, store, fake_slack, clock):
    """Slack took the post but answered too late, and then the lookup for it failed too: the next attempt must
    look again (not post: the sender would get the auto-reply twice)."""
    sender, first = answered_too_late
    fake_slack.fail("conversations.replies", **FAULTS[lookup_fault])
    clock.advance(minutes=1)
    assert sender.drain(now=clock()) == 0
    fake_slack.settle()
    [reply] = rows(store, db.replies)
    assert (reply["state"], reply["last_error"]) == ("pending", LOOKUP_FAILED)

    clock.advance(minutes=5)
    sender.drain(now=clock())
    assert len(fake_slack.calls_to("conversations.replies")) == 2
    assert fake_slack.posts() == [first]
    [reply] = rows(store, db.replies)
    assert (reply["state"], reply["reply_ts"]) == ("sent", first.params["_ts"])


# --- users.info ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", FAULT_NAMES)
def test_users_info_on_first_hours_command(fault, serve, store, fake_slack):
    _app, slack = serve()
    everyone(store, fake_slack, "U1")
    forget_row(store, "U1")
    fake_slack.fail("users.info", **FAULTS[fault])

    response = slack.command("show", user="U1")

    assert response.status == 200, response.text
    assert "Mon–Fri" in response.text or "mon" in response.text.lower()  # their status, in the default zone
    assert rows(store, db.people, user_id="U1")[0]["tz"] is None  # profile unknown: the config's policy decides
    # The next command (which does not ask Slack again for 15 minutes) is as helpful.
    assert slack.command("show", user="U1").status == 200


def test_a_workspace_zone_in_the_config_means_no_profile_lookups_at_all(serve, store, fake_slack, clock):
    _app, slack = serve(defaults=replace(Config().defaults, timezone="Europe/Paris"))
    everyone(store, fake_slack, "U1")
    forget_row(store, "U1")
    assert "Europe/Paris" in slack.command("show", user="U1").text
    event = {"type": "app_home_opened", "user": "U1", "channel": "DU1", "tab": "home", "event_ts": "1772593200.0"}
    clock.advance(days=2)  # past any cached or remembered lookup
    assert slack.event(event, authorized="U1").status == 200
    fake_slack.wait_for("views.publish")
    assert slack.command("show", user="U1").status == 200
    assert fake_slack.calls_to("users.info") == []
    assert rows(store, db.people, user_id="U1")[0]["tz"] is None  # the workspace's zone applies


@pytest.mark.parametrize("fault", FAULT_NAMES)
def test_users_info_on_first_home_open(fault, serve, store, fake_slack):
    _app, slack = serve()
    everyone(store, fake_slack, "U1")
    forget_row(store, "U1")
    fake_slack.fail("users.info", **FAULTS[fault])

    event = {"type": "app_home_opened", "user": "U1", "channel": "DU1", "tab": "home", "event_ts": "1772593200.0"}
    response = slack.event(event, authorized="U1")

    assert response.status == 200, response.text
    [publish] = fake_slack.wait_for("views.publish")
    assert publish.params["user_id"] == "U1"
    assert rows(store, db.people, user_id="U1")  # the person exists; the zone is asked again next time


@pytest.mark.parametrize("fault", FAULT_NAMES)
def test_users_info_on_connect(fault, serve, store, fake_slack):
    from tests.support.oauth import BOT_TOKEN, oauth_answer, redirect, start_install

    _app, slack = serve()
    fake_slack.oauth_codes["code-1"] = oauth_answer("U1", with_bot=True)
    fake_slack.tokens[BOT_TOKEN] = {"team_id": "T1", "user_id": "UBOT", "bot_id": "B1"}
    fake_slack.add_user("U1", tz="Europe/Rome")
    fake_slack.fail("users.info", **FAULTS[fault])
    install = start_install(slack.base_url)

    response = redirect(slack.base_url, cookie=install.cookie, code="code-1", state=install.state)

    assert response.status == 200, response.text  # connected all the same
    assert store.user_token("T1", "U1") == "xoxp-oauth-U1"
    assert rows(store, db.people, user_id="U1")[0]["tz"] is None


@pytest.mark.parametrize("fault", FAULT_NAMES)
def test_oauth_access(fault, serve, store, fake_slack):
    """oauth.v2.access failing: the browser gets Bolt's failure page, nothing is half-installed."""
    from tests.support.oauth import BOT_TOKEN, oauth_answer, redirect, start_install

    _app, slack = serve()
    fake_slack.oauth_codes["code-1"] = oauth_answer("U1", with_bot=True)
    fake_slack.tokens[BOT_TOKEN] = {"team_id": "T1", "user_id": "UBOT", "bot_id": "B1"}
    fake_slack.fail("oauth.v2.access", **FAULTS[fault])
    install = start_install(slack.base_url)

    response = redirect(slack.base_url, cookie=install.cookie, code="code-1", state=install.state)

    assert response.status < 500 or fault in RETRYABLE, response.status
    assert "Slack" in response.text or response.status == 200
    assert store.user_token("T1", "U1") is None and store.bot_token("T1") is None
    assert rows(store, db.people) == []
    # Starting again works once Slack answers.
    install = start_install(slack.base_url)
    assert redirect(slack.base_url, cookie=install.cookie, code="code-1", state=install.state).status == 200
    assert store.user_token("T1", "U1") == "xoxp-oauth-U1"


# --- conversations.info: a DM seen only through its sender's token -------------------------------------------


@pytest.mark.parametrize("fault", FAULT_NAMES)
def test_conversations_info(fault, serve, store, fake_slack, clock, workers):
    """U2 (connected) writes to U1 (connected, off): the event carries U2's authorization, so the recipient is
    asked of conversations.info. A retryable fault keeps the event in deferred_dms and answers 200 (a redelivery
    may never come: the message would otherwise be lost). Whichever records it first, the redelivery or the
    deferred-DM job, it is recorded and answered once."""
    app, slack = serve()
    everyone(store, fake_slack, "U1", "U2")
    sender = ReplySender(app.services)
    workers.append(sender)
    fake_slack.fail("conversations.info", **FAULTS[fault])
    ts = clock().timestamp()

    first = slack.dm(sender="U2", recipient="U1", ts=ts, authorized="U2", event_id="EvCI")

    if fault in RETRYABLE:
        assert first.status == 200, first.text
        assert rows(store, db.messages) == [] and rows(store, db.replies) == []
        assert len(rows(store, schema.deferred_dms)) == 1
        again = slack.dm(sender="U2", recipient="U1", ts=ts, authorized="U2", event_id="EvCI", retry_num=1)
        assert again.status == 200, again.text
        again = slack.dm(sender="U2", recipient="U1", ts=ts, authorized="U2", event_id="EvCI", retry_num=2)
        assert again.status == 200
        [message] = rows(store, db.messages)
        assert (message["recipient_id"], message["sender_id"]) == ("U1", "U2")
        assert DeferredDmResolver(app.services).tick(now=clock.advance(minutes=5)) == 1  # a duplicate: settled
        assert rows(store, schema.deferred_dms) == []
        assert len(rows(store, db.messages)) == 1
        assert sender.drain(now=clock()) == 1
        assert len(fake_slack.posts(token="xoxp-T1-U1")) == 1
        return
    assert first.status == 200, first.text
    assert rows(store, db.messages) == []  # gave up: nothing half-done
    assert fake_slack.posts() == []
    if fault in REVOKED:
        assert store.user_token("T1", "U2") is None  # U2's token was refused: U2 is disconnected
        assert store.user_token("T1", "U1") is not None
    else:
        assert store.user_token("T1", "U2") is not None


# --- the recap: chat.postMessage (bot token), chat.getPermalink (the person's token) --------------------------


@pytest.fixture
def recap_ready(serve, store, fake_slack, clock):
    """U1 off with one DM from U2 waiting; returns (app, slack, sender)."""
    app, slack = serve()
    everyone(store, fake_slack, "U1")
    assert slack.dm(sender="U2", recipient="U1", ts=clock().timestamp()).status == 200
    return app, slack, RecapSender(app.services)


@pytest.mark.parametrize("fault", FAULT_NAMES)
def test_recap_post(fault, recap_ready, store, fake_slack, clock, request):
    _app, _slack, sender = recap_ready
    fake_slack.fail("chat.postMessage", **FAULTS[fault])
    assert sender.tick(DUE) == 0
    fake_slack.settle()
    for minutes in (1, 11, 30, 60):
        sender.tick(DUE + timedelta(minutes=minutes))

    posted = fake_slack.posts(token="xoxb-T1")
    [recap] = rows(store, db.recaps)
    [message] = rows(store, db.messages)
    if fault == "500_after_acting":
        # Chosen: after a 5xx a recap is posted again without looking (lookups: about one a minute per workspace,
        # see RecapKind.look_up_after_5xx), so this one came twice. Auto-replies do look.
        assert len(posted) == 2, posted
        assert recap["state"] == "sent" and message["state"] == "recapped"
    elif fault in RETRYABLE:
        assert len(posted) == 1, posted
        assert recap["state"] == "sent" and message["state"] == "recapped"
        if fault == "timeout":  # the retry looked in the app's DM with the person's token and found it
            [lookup] = fake_slack.calls_to("conversations.history")
            assert lookup.token == "xoxp-T1-U1"
            assert recap["message_ts"] == posted[0].params["_ts"]
    else:
        assert posted == []
        assert (recap["state"], recap["last_error"]) == ("failed", fault)
    assert store.user_token("T1", "U1") is not None  # the bot token was refused, not the person's


def test_a_recap_held_back_after_a_timeout_still_looks_before_posting(recap_ready, store, fake_slack):
    _app, _slack, sender = recap_ready
    fake_slack.fail("chat.postMessage", delay=SLOW)
    assert sender.tick(DUE) == 0  # Slack took it; the answer came too late
    [first] = fake_slack.posts(token="xoxb-T1")
    sender.hold("T1", DUE + timedelta(minutes=2))  # as a 429 on another recap of the workspace would
    assert sender.tick(DUE + timedelta(minutes=1)) == 0  # the retry is due, and held back
    [recap] = rows(store, db.recaps)
    assert recap["next_attempt_at"] == DUE + timedelta(minutes=2)
    assert maybe_posted(DeliveryState(recap["delivery_state"]))  # not tried: still unknown
    assert fake_slack.calls_to("conversations.history") == []

    assert sender.tick(DUE + timedelta(minutes=2)) == 1  # found in the DM, not posted again
    assert fake_slack.posts(token="xoxb-T1") == [first]
    assert len(fake_slack.calls_to("conversations.history")) == 1


def test_a_recap_whose_connection_dropped_is_looked_for_before_it_is_posted_again(recap_ready, store, fake_slack):
    """A dropped connection may come after Slack carried the post out: the retry looks first."""
    _app, _slack, sender = recap_ready
    fake_slack.fail("chat.postMessage", disconnect=True)
    assert sender.tick(DUE) == 0
    [recap] = rows(store, db.recaps)
    assert recap["delivery_state"] == DeliveryState.OUTCOME_UNKNOWN, recap["last_error"]
    assert sender.tick(DUE + timedelta(minutes=10)) == 1
    assert len(fake_slack.calls_to("conversations.history")) == 1
    assert len(fake_slack.posts(token="xoxb-T1")) == 1


def test_a_recap_posted_by_a_retry_that_lost_its_outcome_is_not_posted_again(recap_ready, store, fake_slack):
    """The first attempt failed for a known reason (a 429); the retry posted, and then its process lost the
    database before writing "sent". The claim after the lease must look first, whatever the error before it."""
    _app, _slack, sender = recap_ready
    fake_slack.fail("chat.postMessage", status=429, retry_after=30)
    assert sender.tick(DUE) == 0
    real = store.recaps.mark_sent_many  # posted recaps are recorded a group at a time

    def database_gone(*args, **kwargs):
        raise sa.exc.OperationalError("UPDATE recaps", {}, Exception("database is locked"))

    store.recaps.mark_sent_many = database_gone
    with pytest.raises(sa.exc.OperationalError):
        sender.tick(DUE + timedelta(minutes=1))
    store.recaps.mark_sent_many = real
    [first] = fake_slack.posts(token="xoxb-T1")
    assert sender.tick(DUE + timedelta(minutes=2)) == 0  # leased to the attempt that died

    assert sender.tick(DUE + timedelta(minutes=7)) == 1  # the lease is over
    assert fake_slack.posts(token="xoxb-T1") == [first]
    assert len(fake_slack.calls_to("conversations.history")) == 1
    [recap] = rows(store, db.recaps)
    assert (recap["state"], recap["message_ts"]) == ("sent", first.params["_ts"])


def test_an_ephemeral_reply_of_unknown_outcome_is_never_repeated(serve, store, fake_slack, clock, workers):
    """Its process died mid-send (the claim's in_flight mark is all that is left): an ephemeral post cannot be
    looked up, so rather than maybe showing it twice, it is not sent again."""
    app, slack = serve(reply=replace(Config().reply, mode="ephemeral"))
    everyone(store, fake_slack, "U1")
    slack.dm(sender="U2", recipient="U1", ts=clock().timestamp())
    [_claimed] = store.replies.claim_due(now=clock())  # ... and then that process died
    sender = ReplySender(app.services)
    workers.append(sender)
    assert sender.drain(now=clock() + timedelta(minutes=2)) == 0  # past the lease
    assert fake_slack.posts("chat.postEphemeral") == []
    [reply] = rows(store, db.replies)
    assert (reply["state"], reply["last_error"]) == ("failed", IN_FLIGHT)


@pytest.mark.parametrize(
    ("error", "may_have_posted"),
    [
        (urllib.error.URLError(ConnectionRefusedError()), False),  # urllib: failed connecting or sending
        (urllib.error.URLError(BrokenPipeError()), False),
        (http.client.RemoteDisconnected("Remote end closed connection without response"), True),
        (ConnectionResetError(), True),  # while the answer was awaited
        (BrokenPipeError(), True),
        (ssl.SSLEOFError(), True),
    ],
)
def test_network_errors_after_sending_leave_the_outcome_unknown(error, may_have_posted):
    recorded = request_error(error)
    assert recorded.maybe_posted is may_have_posted, recorded


@pytest.mark.parametrize(
    ("status", "code", "retryable", "may_have_posted"),
    [
        (500, "internal_error", True, True),  # Slack: "some aspect of the operation [may have] succeeded"
        (200, "internal_error", True, True),  # the same error, answered with HTTP 200
        (200, "fatal_error", False, True),  # "catastrophic": not retried, but it may have posted
        (502, "502", True, True),  # an edge proxy's answer says nothing about what happened behind it
        (503, "service_unavailable", True, True),
        (200, "service_unavailable", True, False),
        (200, "request_timeout", True, False),  # the request body never arrived whole
        (429, "ratelimited", True, False),
        (200, "channel_not_found", False, False),
        (200, "invalid_blocks", False, False),
    ],
)
def test_which_slack_refusals_are_retried_and_which_may_have_posted(status, code, retryable, may_have_posted):
    assert slack_retryable(status, code) is retryable
    assert slack_error(status, code).maybe_posted is may_have_posted


def test_a_5xx_page_that_is_not_slack_json_is_recorded_by_its_status(serve, store, fake_slack, clock, workers):
    """A proxy's HTML error page: slack_sdk puts the start of it where Slack's error code goes. What is recorded
    and logged is the status, and the post still counts as maybe made."""
    app, slack = serve()
    everyone(store, fake_slack, "U1")
    sender = ReplySender(app.services)
    workers.append(sender)
    fake_slack.fail("chat.postMessage", status=502, body=b"<html><body>502 Bad Gateway</body></html>")
    slack.dm(sender="U2", recipient="U1", ts=clock().timestamp())
    assert sender.drain(now=clock()) == 0
    [reply] = rows(store, db.replies)
    assert (reply["state"], reply["delivery_state"], reply["last_error"]) == ("pending", "outcome_unknown", "502")


@pytest.mark.parametrize("failure", [{"status": 500}, {"error": "internal_error"}])
def test_a_reply_slack_posted_before_answering_an_error_is_found_not_posted_again(
    failure, serve, store, fake_slack, clock, workers
):
    """chat.postMessage's docs, of internal_error and fatal_error: "It's possible some aspect of the operation
    succeeded before the error was raised." The retry finds the post by its metadata instead of posting again."""
    app, slack = serve()
    everyone(store, fake_slack, "U1")
    sender = ReplySender(app.services)
    workers.append(sender)
    fake_slack.fail("chat.postMessage", after_acting=True, **failure)
    slack.dm(sender="U2", recipient="U1", ts=clock().timestamp())
    assert sender.drain(now=clock()) == 0
    [first] = fake_slack.posts()  # Slack did post it

    clock.advance(minutes=1)
    assert sender.drain(now=clock()) == 1
    assert fake_slack.posts() == [first]
    assert len(fake_slack.calls_to("conversations.replies")) == 1
    [reply] = rows(store, db.replies)
    assert (reply["state"], reply["reply_ts"], reply["attempts"]) == ("sent", first.params["_ts"], 2)


def test_a_reply_answered_fatal_error_is_not_retried(serve, store, fake_slack, clock, workers):
    """Slack calls fatal_error "catastrophic": not retried (it may even have posted: never posted twice)."""
    app, slack = serve()
    everyone(store, fake_slack, "U1")
    sender = ReplySender(app.services)
    workers.append(sender)
    fake_slack.fail("chat.postMessage", error="fatal_error", after_acting=True)
    slack.dm(sender="U2", recipient="U1", ts=clock().timestamp())
    assert sender.drain(now=clock()) == 0
    clock.advance(minutes=5)
    assert sender.drain(now=clock()) == 0
    assert len(fake_slack.posts()) == 1
    [reply] = rows(store, db.replies)
    assert (reply["state"], reply["last_error"]) == ("failed", "fatal_error")


def test_a_burst_of_5xx_replies_is_looked_up_one_a_minute_and_each_reply_is_sent_once(
    serve, store, fake_slack, clock, workers
):
    """An incident: Slack answers 500 to ten auto-replies of one workspace. Each is looked for before it is posted
    again, and Slack allows one lookup a minute: the replies take turns (a slot each after the first 429) instead of
    all retrying together, none is lost to the attempt limit, none is posted twice."""
    app, _slack = serve()
    recipients = [f"UR{i}" for i in range(10)]
    for recipient in recipients:
        connect(store, fake_slack, recipient)
    fake_slack.lookup_clock = clock
    fake_slack.fail("chat.postMessage", status=500, times=len(recipients))
    for i, recipient in enumerate(recipients):
        assert _slack.dm(sender="U2", recipient=recipient, ts=clock().timestamp() + i / 1000).status == 200
    sender = ReplySender(app.services)
    workers.append(sender)
    assert sender.drain(now=clock()) == 0
    for _ in range(30):  # a drain every 30 s for 15 minutes, within the recipients' evening off
        clock.advance(seconds=30)
        sender.drain(now=clock())
    fake_slack.settle()

    assert [r["state"] for r in rows(store, db.replies)] == ["sent"] * len(recipients)
    assert sorted(c.params["channel"] for c in fake_slack.posts()) == sorted(dm_channel("U2", r) for r in recipients)
    # One lookup each, plus at most one refusal for each of those that tried in the first one's minute (they run
    # side by side; those that come after the first 429 queue without asking). Retrying together: ~N²/2.
    lookups = len(fake_slack.calls_to("conversations.replies"))
    assert len(recipients) < lookups <= 2 * len(recipients) - 1


def test_refused_lookups_do_not_use_up_the_attempts_of_a_reply(serve, store, fake_slack, clock, workers):
    """The post got a 500; then Slack refused the lookup for it ten times (other processes used the minute). When
    the lookup goes through and the post meets one more ordinary failure, the reply is still retried, not dropped."""
    app, slack = serve()
    everyone(store, fake_slack, "U1")
    sender = ReplySender(app.services)
    workers.append(sender)
    fake_slack.fail("chat.postMessage", status=500)
    slack.dm(sender="U2", recipient="U1", ts=clock().timestamp())
    assert sender.drain(now=clock()) == 0
    fake_slack.fail("conversations.replies", status=429, retry_after=60, times=10)
    for _ in range(10):
        clock.advance(minutes=1)
        assert sender.drain(now=clock()) == 0
    assert len(fake_slack.calls_to("conversations.replies")) == 10
    [reply] = rows(store, db.replies)
    assert (reply["state"], reply["attempts"], reply["last_error"]) == ("pending", 1, LOOKUP_FAILED)

    fake_slack.fail("chat.postMessage", status=503)  # the lookup finds nothing; the post fails once more
    clock.advance(minutes=1)
    assert sender.drain(now=clock()) == 0
    clock.advance(minutes=1)
    assert sender.drain(now=clock()) == 1
    [reply] = rows(store, db.replies)
    assert (reply["state"], reply["attempts"]) == ("sent", 3)
    assert fake_slack.posts() != []


def test_slots_of_replies_settled_without_a_lookup_do_not_hold_the_workspace_back(
    serve, store, fake_slack, clock, workers
):
    app, slack = serve()
    for recipient in ("UR0", "UR1", "UR2", "UR3"):
        connect(store, fake_slack, recipient)
    fake_slack.lookup_clock = clock
    sender = ReplySender(app.services)
    workers.append(sender)
    fake_slack.fail("chat.postMessage", status=500, times=3)
    t0 = clock()
    for i, recipient in enumerate(("UR0", "UR1", "UR2")):
        slack.dm(sender="U2", recipient=recipient, ts=t0.timestamp() + i / 1000)
    assert sender.drain(now=clock()) == 0
    clock.set(t0 + timedelta(seconds=30))
    assert sender.drain(now=clock()) == 1  # one lookup went through; two were refused and queued
    answered = [r for r in rows(store, db.replies) if r["state"] == "pending"]
    assert len(answered) == 2
    for reply in answered:  # ...and their recipients answer the DMs themselves meanwhile
        at = (t0 + timedelta(seconds=40)).timestamp()
        slack.dm(sender=reply["recipient_id"], recipient="U2", ts=at, authorized=reply["recipient_id"])
    for seconds in (90, 150):  # each queued reply comes back and expires: its slot is freed
        clock.set(t0 + timedelta(seconds=seconds))
        sender.drain(now=clock())
    assert sorted(r["state"] for r in rows(store, db.replies)) == ["expired", "expired", "sent"]

    fake_slack.fail("chat.postMessage", status=500)
    slack.dm(sender="U2", recipient="UR3", ts=(t0 + timedelta(seconds=160)).timestamp())
    clock.set(t0 + timedelta(seconds=160))
    assert sender.drain(now=clock()) == 0
    clock.set(t0 + timedelta(seconds=170))
    assert sender.drain(now=clock()) == 1  # looked up at once, not queued behind the freed slots


def test_an_ephemeral_reply_answered_500_is_given_up_at_once_not_retried(serve, store, fake_slack, clock, workers):
    app, slack = serve(reply=replace(Config().reply, mode="ephemeral"))
    everyone(store, fake_slack, "U1")
    sender = ReplySender(app.services)
    workers.append(sender)
    fake_slack.fail("chat.postEphemeral", status=500, after_acting=True)
    slack.dm(sender="U2", recipient="U1", ts=clock().timestamp())
    assert sender.drain(now=clock()) == 0
    [reply] = rows(store, db.replies)
    assert (reply["state"], reply["attempts"], reply["last_error"]) == ("failed", 1, "internal_error")
    assert len(fake_slack.posts("chat.postEphemeral")) == 1


@pytest.mark.parametrize("lookup_fault", sorted(RETRYABLE))
def test_a_failed_recap_lookup_is_tried_again_and_holds_nothing(lookup_fault, recap_ready, store, fake_slack):
    _app, _slack, sender = recap_ready
    fake_slack.fail("chat.postMessage", delay=SLOW)
    assert sender.tick(DUE) == 0
    [first] = fake_slack.posts(token="xoxb-T1")
    fake_slack.fail("conversations.history", **FAULTS[lookup_fault])
    assert sender.tick(DUE + timedelta(minutes=1)) == 0
    fake_slack.settle()
    # conversations.history's limit says nothing about posting: the workspace's other recaps go on.
    assert sender.held_until("T1", now=DUE + timedelta(minutes=1)) is None
    [recap] = rows(store, db.recaps)
    assert (recap["state"], recap["last_error"]) == ("pending", LOOKUP_FAILED)

    assert sender.tick(DUE + timedelta(minutes=10)) == 1
    assert fake_slack.posts(token="xoxb-T1") == [first]
    assert len(fake_slack.calls_to("conversations.history")) == 2


@pytest.mark.parametrize("fault", FAULT_NAMES)
def test_recap_permalink(fault, recap_ready, store, fake_slack):
    """The thread link is a nicety: without it the recap goes out once, naming the sender and the time."""
    _app, _slack, sender = recap_ready
    fake_slack.fail("chat.getPermalink", **FAULTS[fault])
    assert sender.tick(DUE) == 1
    [post] = fake_slack.posts(token="xoxb-T1")
    assert "<@U2>" in str(post.params["blocks"])
    [recap] = rows(store, db.recaps)
    assert recap["state"] == "sent"


# --- chat.update after a Done click -------------------------------------------------------------------------


def done_click(slack: SlackHTTP, *, user: str, value: str, message_ts: str):
    payload = {
        "type": "block_actions",
        "team": {"id": "T1", "domain": "example"},
        "user": {"id": user, "username": user.lower(), "team_id": "T1"},
        "api_app_id": "A1",
        "token": "legacy-verification-token",
        "trigger_id": "123.456.abc",
        "container": {"type": "message", "message_ts": message_ts, "channel_id": "U1", "is_ephemeral": False},
        "channel": {"id": "U1", "name": "directmessage"},
        "message": {"type": "message", "ts": message_ts, "text": "recap"},
        "actions": [{"type": "button", "action_id": DONE_ACTION, "block_id": "b1", "value": value,
                     "action_ts": "1772630000.1"}],
    }  # fmt: skip
    return slack.interaction(payload)


@pytest.mark.parametrize("fault", FAULT_NAMES)
def test_recap_update_after_done(fault, recap_ready, store, fake_slack):
    """The tick is saved whatever chat.update says; the click is answered 200 (the next click re-renders)."""
    _app, slack, sender = recap_ready
    assert sender.tick(DUE) == 1
    [recap] = rows(store, db.recaps)
    fake_slack.fail("chat.update", **FAULTS[fault])

    response = done_click(slack, user="U1", value=f"{recap['id']}:{WITH_U2}", message_ts=recap["message_ts"])

    assert response.status == 200, response.text
    [message] = rows(store, db.messages)
    assert message["state"] == "done"
    assert len(fake_slack.posts()) == 1  # no new recap posted in place of the update


# --- the Home tab: views.publish and views.open --------------------------------------------------------------


@pytest.mark.parametrize("fault", FAULT_NAMES)
def test_views_publish(fault, serve, store, fake_slack):
    app, slack = serve()
    everyone(store, fake_slack, "U1")
    fake_slack.fail("views.publish", **FAULTS[fault])
    event = {"type": "app_home_opened", "user": "U1", "channel": "DU1", "tab": "home", "event_ts": "1772593200.0"}

    assert slack.event(event, authorized="U1").status == 200
    # A change from the Home tab is saved even when its publish fails.
    fake_slack.fail("views.publish", **FAULTS[fault])
    payload = {
        "type": "block_actions", "team": {"id": "T1"}, "user": {"id": "U1", "team_id": "T1"}, "api_app_id": "A1",
        "trigger_id": "t.1", "container": {"type": "view", "view_id": "VHOME"},
        "view": {"id": "VHOME", "type": "home", "callback_id": "", "private_metadata": "", "blocks": []},
        "actions": [{"type": "button", "action_id": home_ui.PAUSE_ACTION, "block_id": "b", "value": "x",
                     "action_ts": "1772593200.1"}],
    }  # fmt: skip
    assert slack.interaction(payload).status == 200
    assert app.services.people.get("T1", "U1").paused is True
    assert store.user_token("T1", "U1") is not None  # the bot token was refused, not the person's


@pytest.mark.parametrize("fault", FAULT_NAMES)
def test_views_open(fault, serve, store, fake_slack):
    _app, slack = serve()
    everyone(store, fake_slack, "U1")
    fake_slack.fail("views.open", **FAULTS[fault])
    payload = {
        "type": "block_actions", "team": {"id": "T1"}, "user": {"id": "U1", "team_id": "T1"}, "api_app_id": "A1",
        "trigger_id": "t.2", "container": {"type": "view", "view_id": "VHOME"},
        "view": {"id": "VHOME", "type": "home", "callback_id": "", "private_metadata": "", "blocks": []},
        "actions": [{"type": "button", "action_id": home_ui.EDIT_HOURS_ACTION, "block_id": "b", "value": "x",
                     "action_ts": "1772593200.1"}],
    }  # fmt: skip
    assert slack.interaction(payload).status == 200
    fake_slack.settle()
    assert len(fake_slack.calls_to("views.open")) == 1  # a trigger_id is single-use: not retried


# --- auth.revoke on /hours forget -------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", FAULT_NAMES)
def test_auth_revoke_on_forget(fault, serve, store, fake_slack, clock):
    """Forgetting never depends on Slack: the data and the token are deleted here whatever auth.revoke says."""
    _app, slack = serve()
    everyone(store, fake_slack, "U1")
    slack.dm(sender="U2", recipient="U1", ts=clock().timestamp())
    fake_slack.fail("auth.revoke", **FAULTS[fault])

    response = slack.command("forget", user="U1")

    assert response.status == 200, response.text
    assert "deleted" in response.text
    [revoke] = fake_slack.calls_to("auth.revoke")
    assert revoke.token == "xoxp-T1-U1"
    assert store.user_token("T1", "U1") is None
    assert rows(store, db.people) == [] and rows(store, db.messages) == [] and rows(store, db.replies) == []


def test_answering_marks_the_dm_answered_even_when_the_recipient_lookup_fails(serve, store, fake_slack, clock):
    """The person answers a waiting DM while conversations.info (who is the other member?) keeps failing: the
    answer still counts, on the first delivery already (found by an independent review)."""
    _app, slack = serve()
    everyone(store, fake_slack, "U1")  # U1 connected and off; U2 is not connected
    assert slack.dm(sender="U2", recipient="U1", ts=clock().timestamp(), authorized="U1").status == 200
    [waiting] = rows(store, db.messages)
    assert waiting["state"] == "pending"
    fake_slack.fail("conversations.info", status=500, times=4)  # Slack's first delivery and its 3 retries
    for retry in (None, 1, 2, 3):
        slack.dm(sender="U1", recipient="U2", ts=clock().timestamp() + 60, authorized="U1", event_id="EvAns",
                 retry_num=retry)  # fmt: skip
    [message] = rows(store, db.messages)
    assert message["state"] == "answered"
