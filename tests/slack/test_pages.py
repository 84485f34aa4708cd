"""The install and connect pages over plain HTTP (the browser tests read them as a person does): Offhours' words,
no external assets, no internal error text, the state cookie set and spent."""

from __future__ import annotations

import re

import pytest

from tests.support.helpers import connect
from tests.support.oauth import BOT_TOKEN, STATE_COOKIE, oauth_answer, redirect, start_install

EXTERNAL = re.compile(
    r"""(?:src|href)\s*=\s*["'](?!https://slack\.com/oauth/|https://app\.slack\.com/client/|slack://|/slack/install|data:)"""
)


@pytest.fixture
def slack_oauth(fake_slack):
    fake_slack.oauth_codes["code-1"] = oauth_answer("U1", with_bot=True)
    fake_slack.tokens[BOT_TOKEN] = {"team_id": "T1", "user_id": "UBOT", "bot_id": "B1"}
    fake_slack.add_user("U1", tz="Europe/Rome")
    return fake_slack


def assert_small_accessible_page(html: str) -> None:
    assert html.startswith("<!DOCTYPE html>")
    assert '<html lang="en">' in html and "<title>" in html and html.count("<h1>") == 1
    assert "<script" not in html and "@import" not in html and "url(" not in html
    assert EXTERNAL.findall(html) == []
    assert len(html.encode()) < 8000


def test_the_first_install_page_and_the_connect_page(server, store, fake_slack):
    first = start_install(server.url)
    assert "Install Offhours in your Slack workspace" in first.response.text
    assert_small_accessible_page(first.response.text)
    connect(store, fake_slack, "U1")
    again = start_install(server.url)
    assert "Connect your DMs to Offhours" in again.response.text
    assert_small_accessible_page(again.response.text)
    assert again.state != first.state


def test_success_cancel_and_failure_pages(server, slack_oauth):
    install = start_install(server.url)
    success = redirect(server.url, cookie=install.cookie, code="code-1", state=install.state)
    assert success.status == 200
    assert "Offhours is installed in Example" in success.text and "/hours set" in success.text
    assert "slack://app?team=T1&amp;id=A1&amp;tab=home" in success.text
    assert success.headers["Set-Cookie"].startswith(f"{STATE_COOKIE}=deleted")
    assert_small_accessible_page(success.text)

    cancel = redirect(server.url, cookie=install.cookie, error="access_denied", state=install.state)
    assert cancel.status == 200
    assert "nothing was connected" in cancel.text and "access_denied" not in cancel.text
    assert_small_accessible_page(cancel.text)

    replay = redirect(server.url, cookie=install.cookie, code="code-1", state=install.state)
    assert replay.status == 401
    assert "This link has expired" in replay.text and "invalid_state" not in replay.text
    assert_small_accessible_page(replay.text)


def test_the_command_name_on_the_pages_follows_the_config(make_app, store, fake_slack):
    from tests.support.helpers import RunningServer

    running = RunningServer(make_app(command="/offhours"))
    try:
        page = start_install(running.url).response.text
    finally:
        running.close()
    assert "/offhours forget" in page and "/hours" not in page


def test_a_team_in_the_install_link_goes_to_slack_only_as_a_team_id(server, store, fake_slack):
    """?team= is copied into the authorize URL as it came (slack_sdk does not encode it): a link carrying
    "T1&scope=...&redirect_uri=..." would add parameters of its choosing to the request a person approves on Slack's
    page. Only a team id is passed on; the page echoes nothing of it unescaped."""
    from urllib.parse import parse_qs, quote, urlparse

    from tests.support.slackhttp import request

    hostile = 'T1&scope=admin&redirect_uri=https://evil.example/"><script>alert(1)</script>'
    page = request(f"{server.url}/slack/install?team={quote(hostile)}")
    assert page.status == 200
    assert "<script" not in page.text and "evil.example" not in page.text
    [link] = re.findall(r'href="(https://slack\.com/oauth/v2/authorize\?[^"]+)"', page.text)
    query = parse_qs(urlparse(link.replace("&amp;", "&")).query)
    assert "team" not in query and "redirect_uri" not in query and query["scope"] != ["admin"]

    plain = request(f"{server.url}/slack/install?team=T1")
    [link] = re.findall(r'href="(https://slack\.com/oauth/v2/authorize\?[^"]+)"', plain.text)
    assert parse_qs(urlparse(link.replace("&amp;", "&")).query)["team"] == ["T1"]  # still a deep install link


def test_the_failure_reason_from_the_redirect_is_logged_only_as_a_code(server, slack_oauth, caplog):
    """?error= is whatever the link says: in the log it is a code or "other", never a forged line or field."""
    install = start_install(server.url)
    with caplog.at_level("WARNING", logger="bot.slack.app"):
        forged = "x\ntime=0 level=ERROR user=U9 <b>"
        page = redirect(server.url, cookie=install.cookie, error=forged, state=install.state)
    assert page.status == 200 and "<b>" not in page.text
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("install: failed")]
    assert line == "install: failed reason=other status=200"
