"""The install and connect flow end to end: /slack/install -> (Slack) -> /slack/oauth_redirect, with the state cookie.

The fake Slack serves oauth.v2.access, auth.test and users.info, so a passing test also proves that OAuth talks to
SLACK_API_URL rather than slack.com.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest

from bot.slack.profiles import RETRY_FAILED_AFTER
from bot.storage import db
from tests.support.fakeslack import FakeSlack
from tests.support.helpers import person_snapshot, table_count
from tests.support.oauth import BOT_TOKEN, STATE_COOKIE, oauth_answer, redirect, start_install
from tests.support.slackhttp import SlackHTTP


@pytest.fixture
def slack_oauth(fake_slack: FakeSlack) -> FakeSlack:
    """The fake Slack primed for U1 installing the workspace (code-1) and U2 connecting later (code-2)."""
    fake_slack.oauth_codes["code-1"] = oauth_answer("U1", with_bot=True)
    fake_slack.oauth_codes["code-2"] = oauth_answer("U2", with_bot=False)
    fake_slack.tokens[BOT_TOKEN] = {"team_id": "T1", "user_id": "UBOT", "bot_id": "B1"}
    fake_slack.add_user("U1", tz="Europe/Rome")
    fake_slack.add_user("U2", tz="Asia/Tokyo")
    return fake_slack


def test_install_sets_the_state_cookie_and_links_to_slack_with_bot_and_user_scopes(server, store):
    install = start_install(server.url)
    query = parse_qs(urlparse(install.authorize_url).query)
    assert query["client_id"] == ["111.222"]
    assert query["scope"][0].split(",") == ["commands", "chat:write", "im:write", "im:history", "users:read",
                                            "channels:history", "groups:history", "channels:read",
                                            "groups:read"]  # fmt: skip
    assert query["user_scope"][0].split(",") == ["im:history", "chat:write"]
    assert install.cookie == f"{STATE_COOKIE}={install.state}"
    assert "HttpOnly" in install.response.headers["Set-Cookie"]
    assert table_count(store, db.oauth_states) == 1  # the state is remembered server-side too


def test_first_install_stores_the_workspace_and_the_installer(server, store, slack_oauth, offhours):
    install = start_install(server.url)
    response = redirect(server.url, cookie=install.cookie, code="code-1", state=install.state)
    assert response.status == 200, response.text

    [access] = slack_oauth.calls_to("oauth.v2.access")  # reached the fake: OAuth uses SLACK_API_URL
    assert access.params["code"] == "code-1"
    assert (access.client_id, access.client_secret) == ("111.222", "client-secret")
    assert store.bot_token("T1") == BOT_TOKEN
    assert store.user_token("T1", "U1") == "xoxp-oauth-U1"
    # The person exists at once, in their Slack profile's zone (asked with the bot token).
    [info] = slack_oauth.calls_to("users.info")
    assert (info.params["user"], info.token) == ("U1", BOT_TOKEN)
    assert person_snapshot(store, "U1")["tz"] == "Europe/Rome"
    assert offhours.services.people.get("T1", "U1").tz == "Europe/Rome"


def test_a_second_person_connects_with_a_user_token_only(server, store, slack_oauth):
    first = start_install(server.url)
    assert redirect(server.url, cookie=first.cookie, code="code-1", state=first.state).status == 200
    second = start_install(server.url)
    assert second.state != first.state
    response = redirect(server.url, cookie=second.cookie, code="code-2", state=second.state)
    assert response.status == 200, response.text

    assert store.user_token("T1", "U2") == "xoxp-oauth-U2"
    assert store.user_token("T1", "U1") == "xoxp-oauth-U1"  # the first person stays connected
    assert store.bot_token("T1") == BOT_TOKEN  # the workspace's bot token is kept
    # U2's profile zone was asked with the workspace's bot token (their own token has no users:read).
    info = slack_oauth.calls_to("users.info")[-1]
    assert (info.params["user"], info.token) == ("U2", BOT_TOKEN)
    assert person_snapshot(store, "U2")["tz"] == "Asia/Tokyo"


def test_a_connected_person_can_use_hours_right_away(server, store, slack_oauth):
    install = start_install(server.url)
    redirect(server.url, cookie=install.cookie, code="code-1", state=install.state)
    answer = SlackHTTP(server.url).command("show", user="U1")
    assert "Europe/Rome" in answer.text
    assert "/slack/install" not in answer.text


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda i: {"cookie": i.cookie, "code": "code-1", "state": "forged"}, id="forged-state"),
        pytest.param(lambda i: {"cookie": i.cookie, "code": "code-1"}, id="missing-state"),
        pytest.param(lambda i: {"code": "code-1", "state": i.state}, id="missing-cookie"),
        pytest.param(
            lambda i: {"cookie": f"{STATE_COOKIE}=other", "code": "code-1", "state": i.state}, id="cookie-mismatch"
        ),
    ],
)
def test_bad_or_missing_state_fails_and_stores_nothing(server, store, slack_oauth, tamper):
    install = start_install(server.url)
    response = redirect(server.url, **tamper(install))
    assert response.status in (400, 401)
    assert "<html" in response.text.lower()  # a failure page for the person, not a stack trace
    assert slack_oauth.calls_to("oauth.v2.access") == []
    assert table_count(store, db.installations) == 0
    assert table_count(store, db.bots) == 0
    assert table_count(store, db.people) == 0


def test_a_state_works_once(server, store, slack_oauth):
    install = start_install(server.url)
    assert redirect(server.url, cookie=install.cookie, code="code-1", state=install.state).status == 200
    replay = redirect(server.url, cookie=install.cookie, code="code-2", state=install.state)
    assert replay.status == 401
    assert store.user_token("T1", "U2") is None


def test_a_code_slack_refuses_fails_and_stores_nothing(server, store, slack_oauth):
    install = start_install(server.url)
    response = redirect(server.url, cookie=install.cookie, code="not-a-code", state=install.state)
    assert response.status == 401
    assert len(slack_oauth.calls_to("oauth.v2.access")) == 1
    assert table_count(store, db.installations) == 0
    assert table_count(store, db.people) == 0


def test_cancelling_on_slack_shows_the_failure_page(server, store, slack_oauth):
    install = start_install(server.url)
    response = redirect(server.url, cookie=install.cookie, error="access_denied", state=install.state)
    assert response.status == 200
    assert slack_oauth.calls_to("oauth.v2.access") == []
    assert table_count(store, db.installations) == 0


def test_an_unreachable_profile_still_connects_with_the_fallback_zone(server, store, slack_oauth):
    slack_oauth.fail("users.info", error="ratelimited")
    install = start_install(server.url)
    assert redirect(server.url, cookie=install.cookie, code="code-1", state=install.state).status == 200
    assert store.user_token("T1", "U1") == "xoxp-oauth-U1"
    assert person_snapshot(store, "U1") is not None


def test_a_profile_zone_that_could_not_be_learnt_is_learnt_when_the_person_connects_again(
    server, store, slack_oauth, clock
):
    slack_oauth.fail("users.info", error="ratelimited")
    first = start_install(server.url)
    assert redirect(server.url, cookie=first.cookie, code="code-1", state=first.state).status == 200
    assert person_snapshot(store, "U1")["tz"] is None
    clock.advance(seconds=RETRY_FAILED_AFTER.total_seconds())  # a failed lookup is not repeated before that
    slack_oauth.oauth_codes["code-3"] = oauth_answer("U1", with_bot=False)
    again = start_install(server.url)
    assert redirect(server.url, cookie=again.cookie, code="code-3", state=again.state).status == 200
    assert person_snapshot(store, "U1")["tz"] == "Europe/Rome"
    info = slack_oauth.calls_to("users.info")[-1]
    assert (info.params["user"], info.token) == ("U1", BOT_TOKEN)
    assert "Europe/Rome" in SlackHTTP(server.url).command("show", user="U1").text


def test_connecting_again_never_looks_up_nor_replaces_a_zone_the_person_chose(server, store, slack_oauth, clock):
    first = start_install(server.url)
    assert redirect(server.url, cookie=first.cookie, code="code-1", state=first.state).status == 200
    assert SlackHTTP(server.url).command("tz Asia/Tokyo", user="U1").status == 200
    clock.advance(days=2)  # the cached profile is stale: only the known zone keeps Slack from being asked
    slack_oauth.reset_calls()
    slack_oauth.oauth_codes["code-3"] = oauth_answer("U1", with_bot=False)
    again = start_install(server.url)
    assert redirect(server.url, cookie=again.cookie, code="code-3", state=again.state).status == 200
    assert slack_oauth.calls_to("users.info") == []
    assert person_snapshot(store, "U1")["tz"] == "Asia/Tokyo"
