"""The Home tab's mentions toggle (issue 20): its state, Turn on / Turn off, and the grant link without the scopes."""

from __future__ import annotations

import json

from bot.slack.blocks.mentions import MENTIONS_GRANT_ACTION, MENTIONS_OFF_ACTION, MENTIONS_ON_ACTION
from tests.support.blockkit import assert_valid
from tests.support.helpers import block_text, connect

MENTION_SCOPES = "im:history,chat:write,channels:history,groups:history,mpim:history"


def open_home(slack, user: str) -> None:
    event = {"type": "app_home_opened", "user": user, "channel": "D" + user, "tab": "home", "event_ts": "1772593200.0"}
    assert slack.event(event, authorized=user).status == 200


def click(slack, user: str, action_id: str) -> None:
    payload = {
        "type": "block_actions", "team": {"id": "T1", "domain": "example"},
        "user": {"id": user, "team_id": "T1", "username": user.lower()}, "api_app_id": "A1", "token": "legacy",
        "trigger_id": "trigger.1", "container": {"type": "view", "view_id": "VHOME"},
        "view": {"id": "VHOME", "type": "home", "callback_id": "", "private_metadata": "", "blocks": []},
        "actions": [{"type": "button", "action_id": action_id, "block_id": "b", "value": "x", "action_ts": "1.1"}],
    }  # fmt: skip
    assert slack.interaction(payload).status == 200


def published(fake, n: int) -> dict:
    view = fake.wait_for("views.publish", n)[n - 1].params["view"]
    view = json.loads(view) if isinstance(view, str) else view
    assert_valid(view)
    return view


def actions(view: dict) -> set[str]:
    found = set()
    for block in view["blocks"]:
        for element in [block.get("accessory") or {}, *(block.get("elements") or [])]:
            if isinstance(element, dict) and element.get("action_id"):
                found.add(element["action_id"])
    return found


def test_the_home_tab_turns_mentions_on_and_off(offhours, store, fake_slack, slack, clock):
    connect(store, fake_slack, "U1", user_scopes=MENTION_SCOPES, now=clock())
    open_home(slack, "U1")
    view = published(fake_slack, 1)
    assert "*Mentions and group DMs:* off" in block_text(view["blocks"])
    assert MENTIONS_ON_ACTION in actions(view)

    click(slack, "U1", MENTIONS_ON_ACTION)
    view = published(fake_slack, 2)
    assert "*Mentions and group DMs:* on" in block_text(view["blocks"])
    assert MENTIONS_OFF_ACTION in actions(view) and MENTIONS_GRANT_ACTION not in actions(view)
    assert offhours.services.mentions.enabled("T1", "U1")
    assert "U1" in offhours.services.mentions.view()["T1"]

    click(slack, "U1", MENTIONS_OFF_ACTION)
    published(fake_slack, 3)
    assert not offhours.services.mentions.enabled("T1", "U1")
    assert "U1" not in offhours.services.mentions.view().get("T1", {})


def test_without_the_scopes_the_home_tab_links_to_granting_them(offhours, store, fake_slack, slack, clock):
    connect(store, fake_slack, "U1", now=clock())
    click(slack, "U1", MENTIONS_ON_ACTION)
    view = published(fake_slack, 1)
    assert "waiting for access to your channels" in block_text(view["blocks"])
    assert MENTIONS_GRANT_ACTION in actions(view)
    assert "mentions=1" in block_text(view["blocks"])
    click(slack, "U1", MENTIONS_GRANT_ACTION)  # the link button's click is acknowledged
    assert "U1" not in offhours.services.mentions.view().get("T1", {})
