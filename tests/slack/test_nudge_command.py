"""/hours nudge over signed HTTP: how early, off, refusals, and what /hours show and help say about nudges."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest

from bot.config import Config
from tests.support.helpers import block_text, connect, person_snapshot
from tests.support.slackhttp import SlackHTTP


@dataclass
class Answer:
    text: str
    body: dict


@pytest.fixture
def hours(slack: SlackHTTP, store, fake_slack):
    connect(store, fake_slack, "U1", tz="America/New_York")

    def send(text: str) -> Answer:
        response = slack.command(text, user="U1")
        assert response.status == 200, response.text
        body = response.json
        return Answer(text=block_text(body.get("blocks") or []) + "\n" + body.get("text", ""), body=body)

    return send


def test_show_says_nudges_are_on_30_minutes_before_by_default(hours):
    assert "Nudges: on, 30 min of working time before the reply-by time" in hours("show").text


def test_nudge_sets_how_early_and_show_says_so(hours, store):
    answer = hours("nudge 1h")
    assert "Nudges are on, 1 h of working time before" in answer.text
    assert person_snapshot(store, "U1")["nudge_before_s"] == 3600
    assert "Nudges: on, 1 h of working time" in hours("show").text


def test_nudge_off_turns_them_off(hours, store):
    assert "Nudges are off." in hours("nudge off").text
    assert person_snapshot(store, "U1")["nudge_before_s"] == 0
    assert "Nudges: off" in hours("show").text
    assert "Nudges are on, 2 h" in hours("nudge 2h").text


def test_nudge_without_a_value_says_how_it_stands(hours):
    assert "Nudges are on, 30 min" in hours("nudge").text


@pytest.mark.parametrize("text", ["nudge soon", "nudge 9h", "nudge -1h"])
def test_a_bad_value_is_refused_with_an_example_and_changes_nothing(hours, store, text):
    answer = hours(text)
    assert "/hours nudge 1h" in answer.text
    assert person_snapshot(store, "U1")["nudge_before_s"] is None


def test_help_lists_nudge(hours):
    assert "/hours nudge <time>" in hours("help").text


def test_the_config_default_shows_when_the_person_chose_nothing(make_app, store, fake_slack):
    from tests.support.helpers import RunningServer

    app = make_app(nudge=replace(Config().nudge, before=None))
    connect(store, fake_slack, "U1", tz="America/New_York")
    server = RunningServer(app)
    try:
        body = SlackHTTP(server.url).command("show", user="U1").json
    finally:
        server.close()
    assert "Nudges: off" in block_text(body["blocks"])
