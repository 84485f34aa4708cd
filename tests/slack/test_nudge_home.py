"""The Home tab's nudge section over signed HTTP: it says whether nudges are on and how early, and its picker
changes that (and the tab shows it at once)."""

from __future__ import annotations

import json

import pytest

from bot.slack.blocks.nudge import HOME_NUDGE_ACTION
from tests.support.blockkit import assert_valid
from tests.support.helpers import block_text, connect, person_snapshot
from tests.support.slackhttp import SlackHTTP


@pytest.fixture
def u1(store, fake_slack):
    connect(store, fake_slack, "U1", tz="America/New_York")
    return "U1"


def published(fake, n: int = 1) -> dict:
    call = fake.wait_for("views.publish", n)[n - 1]
    view = call.params["view"]
    view = json.loads(view) if isinstance(view, str) else view
    assert_valid(view)
    return view


def pick(slack: SlackHTTP, value: str) -> None:
    payload = {
        "type": "block_actions", "team": {"id": "T1", "domain": "example"},
        "user": {"id": "U1", "team_id": "T1", "username": "u1"}, "api_app_id": "A1", "token": "legacy",
        "trigger_id": "trigger.1", "container": {"type": "view", "view_id": "VHOME"},
        "view": {"id": "VHOME", "type": "home", "callback_id": "", "private_metadata": "", "blocks": []},
        "actions": [{"type": "static_select", "action_id": HOME_NUDGE_ACTION, "block_id": "home_nudge",
                     "selected_option": {"value": value, "text": {"type": "plain_text", "text": value}},
                     "action_ts": "1772593200.1"}],
    }  # fmt: skip
    assert slack.interaction(payload).status == 200


def test_home_says_nudges_are_on_and_how_early(slack, u1, fake_slack):
    event = {"type": "app_home_opened", "user": "U1", "channel": "DU1", "tab": "home", "event_ts": "1772593200.0"}
    assert slack.event(event, authorized="U1").status == 200
    view = published(fake_slack)
    assert "*Nudges:* on, 30 min of working time before the reply-by time" in block_text(view["blocks"])
    [section] = [b for b in view["blocks"] if b.get("block_id") == "home_nudge"]
    assert section["accessory"]["initial_option"]["value"] == "30m"


def test_the_picker_changes_how_early_and_the_home_shows_it(slack, u1, fake_slack, store):
    pick(slack, "1h")
    assert person_snapshot(store, "U1")["nudge_before_s"] == 3600
    view = published(fake_slack)
    assert "*Nudges:* on, 1 h of working time" in block_text(view["blocks"])
    pick(slack, "off")
    assert person_snapshot(store, "U1")["nudge_before_s"] == 0
    assert "*Nudges:* off" in block_text(published(fake_slack, 2)["blocks"])


def test_an_unknown_choice_changes_nothing(slack, u1, store):
    pick(slack, "7h")
    assert person_snapshot(store, "U1")["nudge_before_s"] is None
