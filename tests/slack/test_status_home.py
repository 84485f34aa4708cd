"""Status sync in the Home tab: on or off, the next status, the toggle, and what stands in the way — over signed
HTTP, the published view checked against Slack's limits."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from bot.slack.blocks.status_sync import STATUS_OFF_ACTION, STATUS_ON_ACTION
from bot.workers.status import StatusSync
from tests.support.blockkit import assert_valid
from tests.support.fakeslack import FakeSlack
from tests.support.helpers import block_text, connect
from tests.support.slackhttp import SlackHTTP

SCOPES = "im:history,chat:write,users.profile:read,users.profile:write"


def open_home(slack: SlackHTTP, user: str) -> None:
    event = {"type": "app_home_opened", "user": user, "channel": "D" + user, "tab": "home", "event_ts": "1772593200.0"}
    assert slack.event(event, authorized=user).status == 200


def published(fake: FakeSlack, n: int) -> str:
    view = fake.wait_for("views.publish", n)[n - 1].params["view"]
    view = json.loads(view) if isinstance(view, str) else view
    assert_valid(view)
    return block_text(view["blocks"])


def click(slack: SlackHTTP, user: str, action_id: str) -> None:
    payload = {
        "type": "block_actions",
        "team": {"id": "T1", "domain": "example"},
        "user": {"id": user, "team_id": "T1", "username": user.lower()},
        "api_app_id": "A1",
        "token": "legacy",
        "trigger_id": "trigger.1",
        "container": {"type": "view", "view_id": "VHOME"},
        "view": {"id": "VHOME", "type": "home", "callback_id": "", "private_metadata": "", "blocks": []},
        "actions": [{"type": "button", "action_id": action_id, "block_id": "b", "value": "x",
                     "action_ts": "1772593200.1"}],
    }  # fmt: skip
    assert slack.interaction(payload).status == 200


@pytest.fixture
def u1(store, fake_slack, clock):
    return connect(store, fake_slack, "U1", user_scopes=SCOPES, now=clock())


def test_the_home_toggle_turns_status_sync_on_and_off_and_the_status_follows(
    slack, u1, fake_slack, store, offhours, clock
):
    open_home(slack, "U1")
    assert "Slack status: off" in published(fake_slack, 1).replace("*", "")
    click(slack, "U1", STATUS_ON_ACTION)
    home = published(fake_slack, 2)
    assert "Slack status: on — next: :crescent_moon: Off the clock — back Wed 09:00" in home.replace("*", "")
    assert store.status.choice("T1", "U1").enabled is True
    sync = StatusSync(offhours.services, workers=1)
    sync.tick(clock())
    assert fake_slack.status_of("U1")["status_text"] == "Off the clock — back Wed 09:00"
    click(slack, "U1", STATUS_OFF_ACTION)
    assert "Slack status: off" in published(fake_slack, 3).replace("*", "")
    sync.tick(clock() + timedelta(seconds=30))
    assert fake_slack.status_of("U1")["status_text"] == ""


def test_home_tells_a_person_without_the_scopes_how_to_grant_them(slack, store, fake_slack, clock):
    connect(store, fake_slack, "U1", now=clock())
    store.status.choose("T1", "U1", enabled=True)
    open_home(slack, "U1")
    home = published(fake_slack, 1)
    assert "users.profile:write" in home and "Grant access" in home
    assert "/slack/install?scopes=status&team=T1" in home


def test_home_shows_a_revoked_token(slack, u1, fake_slack, store, offhours, clock):
    store.status.choose("T1", "U1", enabled=True)
    fake_slack.fail("users.profile.get", error="token_revoked")
    StatusSync(offhours.services, workers=1).tick(clock())
    open_home(slack, "U1")
    assert "Slack refused your token" in published(fake_slack, 1)
