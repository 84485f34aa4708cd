"""Public holidays over signed HTTP: `/hours holidays`, the Home tab's holidays section and modal, the config's
`defaults.holidays`, and holidays in the auto-reply's "back at" and the recap's due time.

The clock starts on Tue 3 Mar 2026 22:00 in New York (03:00 UTC on the 4th); U1 is connected (New York, the
default hours Mon–Fri 09:00–17:30).
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from itertools import count

import pytest

from bot.config import Config
from bot.slack.blocks import home as ui
from bot.storage import db
from bot.workers.replies import ReplySender
from tests.support.blockkit import assert_valid
from tests.support.helpers import RunningServer, block_text, connect, person_snapshot, rows
from tests.support.slackhttp import SlackHTTP

_triggers = count(1)
JULY_2_EVENING = datetime(2026, 7, 2, 22, tzinfo=UTC)  # Thu 18:00 EDT; Fri 3 July is Independence Day (observed)
JULY_6_9_EDT = datetime(2026, 7, 6, 13, tzinfo=UTC)


@pytest.fixture
def hours(slack: SlackHTTP, store, fake_slack):
    connect(store, fake_slack, "U1", tz="America/New_York")

    def send(text: str, *, user: str = "U1") -> str:
        response = slack.command(text, user=user)
        assert response.status == 200, response.text
        body = response.json
        assert body.get("response_type") == "ephemeral", body
        return block_text(body.get("blocks") or []) + "\n" + body.get("text", "")

    return send


def who(user: str) -> dict:
    return {"team": {"id": "T1", "domain": "example"}, "user": {"id": user, "team_id": "T1", "username": user.lower()},
            "api_app_id": "A1", "token": "legacy"}  # fmt: skip


def click(slack: SlackHTTP, user: str, action_id: str) -> None:
    payload = {
        "type": "block_actions",
        **who(user),
        "trigger_id": f"trigger.{next(_triggers)}",
        "container": {"type": "view", "view_id": "VHOME"},
        "view": {"id": "VHOME", "type": "home", "callback_id": "", "private_metadata": "", "blocks": []},
        "actions": [{"type": "button", "action_id": action_id, "block_id": "b", "value": action_id,
                     "action_ts": "1772593200.1"}],
    }  # fmt: skip
    response = slack.interaction(payload)
    assert response.status == 200, response.text


def submit_holidays(slack: SlackHTTP, user: str, typed: str | None) -> dict:
    values = {ui.HOLIDAYS_BLOCK: {ui.VALUE_ACTION: {"type": "plain_text_input", "value": typed}}}
    payload = {
        "type": "view_submission",
        **who(user),
        "trigger_id": f"trigger.{next(_triggers)}",
        "view": {"id": "VMODAL", "type": "modal", "callback_id": ui.HOLIDAYS_VIEW, "private_metadata": "",
                 "state": {"values": values}, "blocks": []},
    }  # fmt: skip
    response = slack.interaction(payload)
    assert response.status == 200, response.text
    return response.json if response.body else {}


def last_home(fake_slack) -> tuple[dict, str]:
    call = fake_slack.calls_to("views.publish")[-1]
    view = call.params["view"]
    view = json.loads(view) if isinstance(view, str) else view
    assert_valid(view)
    return view, block_text(view["blocks"])


# --- /hours holidays ------------------------------------------------------------------------------------


def test_holidays_are_set_shown_with_the_next_three_and_turned_off(hours, store):
    answer = hours("holidays us")
    assert "Public holidays now count as your days off: *US* (United States)" in answer
    assert (
        "Mon 25 May Memorial Day, Fri 19 Jun Juneteenth National Independence Day, Fri 3 Jul Independence Day "
        "(observed)." in answer
    )
    assert person_snapshot(store, "U1")["holidays"] == "US"

    shown = hours("show")
    assert "*Public holidays:* US (United States) — next: Mon 25 May Memorial Day" in shown
    assert "Your public holidays: *US*" in hours("holidays")

    assert "Public holidays are off" in hours("holidays off")
    assert person_snapshot(store, "U1")["holidays"] == ""  # chosen: none, not the config's default
    assert "*Public holidays:* none" in hours("show")


@pytest.mark.parametrize(
    ("typed", "expected"),
    [("germany", "did you mean DE?"), ("US-XX", "did you mean US-TX?"), ("Frnace", "did you mean FR?"),
     ("XX", "is not a country code")],
)  # fmt: skip
def test_an_unknown_code_gets_a_suggestion_an_example_and_changes_nothing(hours, store, typed, expected):
    hours("holidays GB-SCT")
    before = person_snapshot(store, "U1")
    answer = hours(f"holidays {typed}")
    assert expected in answer
    assert "For example: `/hours holidays DE-BY`" in answer
    assert person_snapshot(store, "U1") == before


def test_help_lists_the_new_subcommands(hours):
    answer = hours("help")
    for usage in ("/hours holidays <code>", "/hours except @someone", "/hours when @someone"):
        assert usage in answer


def test_a_holiday_moves_the_auto_replys_back_at_and_the_recap(hours, slack, offhours, store, fake_slack, clock):
    hours("holidays US")
    fake_slack.add_user("U2", tz="Europe/Rome")
    clock.set(JULY_2_EVENING)
    response = slack.dm(sender="U2", recipient="U1", ts=clock().timestamp(), text="are you there?")
    assert response.status == 200
    [message] = rows(store, db.messages)
    assert message["due_at"] == JULY_6_9_EDT  # the recap waits for Monday, past the observed holiday
    sender = ReplySender(offhours.services)
    try:
        assert sender.drain(now=clock()) == 1
    finally:
        sender.stop(timeout=5)
    [post] = fake_slack.calls_to("chat.postMessage")
    assert "back Mon 09:00 my time" in post.params["text"]
    assert f"<!date^{int(JULY_6_9_EDT.timestamp())}^" in post.params["text"]


def test_the_config_default_applies_until_a_person_chooses(make_app, store, fake_slack, clock):
    app = make_app(defaults=replace(Config().defaults, holidays="US"))
    connect(store, fake_slack, "U5", tz="America/New_York")
    server = RunningServer(app)
    try:
        http = SlackHTTP(server.url)
        shown = block_text(http.command("show", user="U5").json["blocks"])
        assert "*Public holidays:* US (United States) _(default)_ — next: Mon 25 May Memorial Day" in shown
        http.command("holidays off", user="U5")
        assert "*Public holidays:* none\n" in block_text(http.command("show", user="U5").json["blocks"]) + "\n"
    finally:
        server.close()


# --- Home -----------------------------------------------------------------------------------------------


def test_home_shows_holidays_and_saves_them_from_the_modal(slack, store, fake_slack, hours):
    hours("show")
    click(slack, "U1", ui.EDIT_HOLIDAYS_ACTION)
    [opened] = fake_slack.wait_for("views.open")
    modal = opened.params["view"]
    modal = json.loads(modal) if isinstance(modal, str) else modal
    assert_valid(modal)
    assert modal["callback_id"] == ui.HOLIDAYS_VIEW

    errors = submit_holidays(slack, "U1", "Bavaria")
    assert errors["response_action"] == "errors"
    assert "e.g. US, US-CA, DE-BY" in errors["errors"][ui.HOLIDAYS_BLOCK]
    assert person_snapshot(store, "U1")["holidays"] is None  # nothing saved

    assert submit_holidays(slack, "U1", "de-by") == {}
    assert person_snapshot(store, "U1")["holidays"] == "DE-BY"
    fake_slack.wait_for("views.publish")
    view, text = last_home(fake_slack)
    assert "*Public holidays:* DE-BY (Germany (BY)) — next: Fri 3 Apr Good Friday, Mon 6 Apr Easter Monday" in text
    assert ui.HOLIDAYS_OFF_ACTION in json.dumps(view)

    n = len(fake_slack.calls_to("views.publish"))
    click(slack, "U1", ui.HOLIDAYS_OFF_ACTION)
    fake_slack.wait_for("views.publish", n + 1)
    assert person_snapshot(store, "U1")["holidays"] == ""
    assert "*Public holidays:* none" in last_home(fake_slack)[1]
