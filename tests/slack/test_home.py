"""The App Home tab over signed HTTP: publish on open, every button, every modal (valid and invalid), the zone
search, and the refresh after `/hours`.

The clock is Tuesday 2026-03-03 22:00 in New York (03:00 UTC on the 4th): U1 is connected with the default
hours (Mon–Fri 09:00–17:30), so they are off until Wednesday 09:00. U2 is known to Slack but not connected.
"""

from __future__ import annotations

import json
import time
from itertools import count

import pytest
from slack_sdk.models.views import View

from bot.slack.blocks import home as ui
from bot.slack.profiles import RETRY_FAILED_AFTER
from bot.storage import db
from tests.support.blockkit import assert_valid
from tests.support.fakeslack import FakeSlack
from tests.support.helpers import block_text, connect, person_snapshot
from tests.support.slackhttp import SlackHTTP

_triggers = count(1)


@pytest.fixture
def u1(store, fake_slack):
    connect(store, fake_slack, "U1", tz="America/New_York")
    return "U1"


@pytest.fixture
def people(offhours):
    return offhours.services.people


def open_home(slack: SlackHTTP, user: str, *, tab: str = "home"):
    event = {"type": "app_home_opened", "user": user, "channel": "D" + user, "tab": tab, "event_ts": "1772593200.0"}
    response = slack.event(event, authorized=user)
    assert response.status == 200, response.text
    return response


def published(fake: FakeSlack, n: int = 1) -> dict:
    """The view of the n-th views.publish (waiting for it), checked against Slack's limits."""
    call = fake.wait_for("views.publish", n)[n - 1]
    view = call.params["view"]
    view = json.loads(view) if isinstance(view, str) else view
    assert_valid(view)
    return {"view": view, "text": block_text(view["blocks"]), "user_id": call.params["user_id"], "token": call.token}


def who(user: str) -> dict:
    return {"team": {"id": "T1", "domain": "example"}, "user": {"id": user, "team_id": "T1", "username": user.lower()},
            "api_app_id": "A1", "token": "legacy"}  # fmt: skip


def click(slack: SlackHTTP, user: str, action_id: str, *, view_metadata: str = ""):
    payload = {
        "type": "block_actions",
        **who(user),
        "trigger_id": f"trigger.{next(_triggers)}",
        "container": {"type": "view", "view_id": "VHOME"},
        "view": {"id": "VHOME", "type": "home", "callback_id": "", "private_metadata": view_metadata, "blocks": []},
        "actions": [
            {"type": "button", "action_id": action_id, "block_id": "b", "value": action_id, "action_ts": "1772593200.1"}
        ],
    }
    response = slack.interaction(payload)
    assert response.status == 200, response.text
    return response


def submit(slack: SlackHTTP, user: str, callback_id: str, values: dict, *, private_metadata: str = "") -> dict:
    """Submit a modal; returns the ack body ({} when accepted)."""
    payload = {
        "type": "view_submission",
        **who(user),
        "trigger_id": f"trigger.{next(_triggers)}",
        "view": {
            "id": "VMODAL",
            "type": "modal",
            "callback_id": callback_id,
            "private_metadata": private_metadata,
            "state": {"values": values},
            "blocks": [],
        },
    }
    response = slack.interaction(payload)
    assert response.status == 200, response.text
    return response.json if response.body else {}


def hours_values(days: list[str], *, tz: str | None = "America/New_York", reply: str = "4 h") -> dict:
    values = {block: {ui.VALUE_ACTION: {"type": "plain_text_input", "value": text or None}}
              for block, text in zip(ui.DAY_BLOCKS, days, strict=True)}  # fmt: skip
    option = {"value": tz, "text": {"type": "plain_text", "text": tz}} if tz else None
    values[ui.TZ_BLOCK] = {ui.TZ_ACTION: {"type": "external_select", "selected_option": option}}
    values[ui.REPLY_BLOCK] = {ui.VALUE_ACTION: {"type": "plain_text_input", "value": reply}}
    return values


WEEK = ["09:00-17:30"] * 5 + ["off", "off"]


def text_values(block_id: str, text: str | None) -> dict:
    return {block_id: {ui.VALUE_ACTION: {"type": "plain_text_input", "value": text}}}


def date_values(first: str | None, last: str | None = None, typed: str | None = None) -> dict:
    return {
        ui.OFF_FROM_BLOCK: {ui.VALUE_ACTION: {"type": "datepicker", "selected_date": first}},
        ui.OFF_TO_BLOCK: {ui.VALUE_ACTION: {"type": "datepicker", "selected_date": last}},
        **text_values(ui.OFF_TEXT_BLOCK, typed),
    }


# --- publish on open ----------------------------------------------------------------------------------


def test_opening_the_home_tab_publishes_the_persons_status_and_settings(slack, u1, fake_slack):
    open_home(slack, "U1")
    home = published(fake_slack)
    assert home["user_id"] == "U1"
    assert home["token"] == "xoxb-T1"  # the bot token
    assert home["view"]["type"] == "home"
    expected = ("*Off* — back Wed 09:00", "*Mon*  09:00–17:30", "*Sat*  _off_", "America/New_York", "4 h",
                "Hi <@U1>, thanks for your message!", "*Days off:* none planned", "*Auto-replies:* on")  # fmt: skip
    for text in expected:
        assert text in home["text"]


def test_an_unconnected_person_sees_what_offhours_does_and_a_connect_link(slack, u1, fake_slack, store):
    open_home(slack, "U2")
    home = published(fake_slack)
    assert home["user_id"] == "U2"
    assert "connect your DMs" in home["text"]
    assert "/slack/install" in home["text"]
    assert ui.EDIT_HOURS_ACTION not in json.dumps(home["view"])
    assert person_snapshot(store, "U2") is None  # nothing stored for them


def test_a_connected_person_without_a_row_gets_one_with_their_profile_zone(slack, store, fake_slack):
    connect(store, fake_slack, "U3", tz="Europe/Rome")
    with store.engine.begin() as conn:  # the installation stays, the settings row goes
        conn.execute(db.people.delete())
    open_home(slack, "U3")
    assert "Europe/Rome" in published(fake_slack)["text"]
    assert person_snapshot(store, "U3")["tz"] == "Europe/Rome"
    assert len(fake_slack.calls_to("views.publish")) == 1  # creating the row did not publish a second time


def test_a_profile_zone_that_could_not_be_learnt_is_learnt_on_the_next_visit(slack, store, fake_slack, clock):
    connect(store, fake_slack, "U3", tz="Europe/Rome")
    with store.engine.begin() as conn:
        conn.execute(db.people.delete())
    fake_slack.fail("users.info", error="user_not_found")
    assert slack.command("show", user="U3").status == 200  # first contact: Slack cannot tell the zone
    assert person_snapshot(store, "U3")["tz"] is None
    fake_slack.wait_for("views.publish")  # the refresh for the new row
    clock.advance(seconds=RETRY_FAILED_AFTER.total_seconds())  # a failed lookup is not repeated before that
    fake_slack.reset_calls()
    open_home(slack, "U3")
    assert "Europe/Rome" in published(fake_slack)["text"]
    assert person_snapshot(store, "U3")["tz"] == "Europe/Rome"
    [info] = fake_slack.calls_to("users.info")
    assert (info.params["user"], info.token) == ("U3", "xoxb-T1")
    assert len(fake_slack.calls_to("views.publish")) == 1  # learning the zone did not publish a second time


def test_a_visit_asks_for_the_profile_zone_with_the_short_client_of_an_ack(slack, store, fake_slack):
    """app_home_opened is answered after the lookup: it gets 2 s and no retries (Slack wants the 200 in 3 s)."""
    connect(store, fake_slack, "U3", tz="Europe/Rome")
    with store.engine.begin() as conn:
        conn.execute(db.people.delete())
    fake_slack.fail("users.info", delay=2.5)  # answers, but after the short client gave up
    open_home(slack, "U3")
    fake_slack.wait_for("views.publish")
    assert person_snapshot(store, "U3")["tz"] is None  # the fallback for now; asked again later
    assert len(fake_slack.calls_to("users.info")) == 1  # not retried


def test_a_visit_never_looks_up_nor_replaces_a_zone_the_person_chose(slack, store, fake_slack, clock):
    connect(store, fake_slack, "U3", tz="Europe/Rome")
    with store.engine.begin() as conn:
        conn.execute(db.people.delete())
    fake_slack.fail("users.info", error="user_not_found")
    open_home(slack, "U3")
    assert person_snapshot(store, "U3")["tz"] is None
    assert slack.command("tz Asia/Tokyo", user="U3").status == 200
    clock.advance(days=2)  # no fresh cached profile either: only the known zone keeps Slack from being asked
    fake_slack.reset_calls()
    open_home(slack, "U3")
    assert "Asia/Tokyo" in published(fake_slack)["text"]
    assert person_snapshot(store, "U3")["tz"] == "Asia/Tokyo"
    assert fake_slack.calls_to("users.info") == []


def test_the_messages_tab_publishes_nothing(slack, u1, fake_slack):
    open_home(slack, "U1", tab="messages")
    assert fake_slack.calls_to("views.publish") == []


def test_a_failing_publish_is_logged_not_an_error(slack, u1, fake_slack, caplog):
    fake_slack.fail("views.publish", error="not_enabled")
    open_home(slack, "U1")
    assert "views.publish failed" in caplog.text


# --- buttons ------------------------------------------------------------------------------------------


def opened(fake: FakeSlack) -> dict:
    [call] = fake.wait_for("views.open")
    view = call.params["view"]
    assert_valid(view)
    assert call.token == "xoxb-T1"
    assert call.params["trigger_id"].startswith("trigger.")
    return view


def test_edit_hours_opens_a_modal_prefilled_with_the_current_week_zone_and_reply_time(slack, u1, fake_slack, people):
    people.set_hours("T1", "U1", "mon-thu 9-17:30; fri 9am-1pm")
    click(slack, "U1", ui.EDIT_HOURS_ACTION)
    view = opened(fake_slack)
    assert view["callback_id"] == ui.HOURS_VIEW
    inputs = {b["block_id"]: b["element"] for b in view["blocks"] if b["type"] == "input"}
    week = [inputs[b].get("initial_value") for b in ui.DAY_BLOCKS]
    assert week == ["09:00-17:30"] * 4 + ["09:00-13:00", "off", "off"]
    assert inputs[ui.TZ_BLOCK]["initial_option"]["value"] == "America/New_York"
    assert inputs[ui.REPLY_BLOCK]["initial_value"] == "4 h"


def test_edit_message_opens_a_modal_with_the_current_message(slack, u1, fake_slack, people):
    people.set_message("T1", "U1", "Off now, back {back_at}.")
    click(slack, "U1", ui.EDIT_MESSAGE_ACTION)
    view = opened(fake_slack)
    assert view["callback_id"] == ui.MESSAGE_VIEW
    assert view["blocks"][0]["element"]["initial_value"] == "Off now, back {back_at}."


def test_add_days_off_opens_a_modal_with_date_pickers_and_a_text_field(slack, u1, fake_slack):
    click(slack, "U1", ui.ADD_DAYS_OFF_ACTION)
    view = opened(fake_slack)
    assert view["callback_id"] == ui.DAYS_OFF_VIEW
    kinds = [b["element"]["type"] for b in view["blocks"] if b["type"] == "input"]
    assert kinds == ["datepicker", "datepicker", "plain_text_input"]
    assert "2026-03-03" in block_text(view["blocks"])  # today in their zone, in the example


def test_pause_then_resume_saves_and_republishes(slack, u1, fake_slack, people):
    click(slack, "U1", ui.PAUSE_ACTION)
    assert people.get("T1", "U1").paused is True
    home = published(fake_slack)
    assert "Auto-replies paused" in home["text"] and ui.RESUME_ACTION in json.dumps(home["view"])
    click(slack, "U1", ui.RESUME_ACTION)
    assert people.get("T1", "U1").paused is False
    home = published(fake_slack, 2)
    assert "*Auto-replies:* on" in home["text"] and ui.PAUSE_ACTION in json.dumps(home["view"])
    assert len(fake_slack.calls_to("views.publish")) == 2  # one per click: the change did not also queue one


def test_clear_days_off(slack, u1, fake_slack, people, clock):
    from datetime import date

    people.add_days_off("T1", "U1", "2026-03-10..2026-03-12", today=date(2026, 3, 3))
    fake_slack.wait_for("views.publish")  # the refresh any change queues; the click's own publish comes next
    fake_slack.reset_calls()
    click(slack, "U1", ui.CLEAR_DAYS_OFF_ACTION)
    assert people.get("T1", "U1").days_off == ()
    assert "none planned" in published(fake_slack)["text"]


def test_the_connect_link_button_is_acknowledged(slack, fake_slack, u1):
    click(slack, "U2", ui.CONNECT_ACTION)
    assert fake_slack.calls_to("views.publish") == []


def test_an_unconnected_person_clicking_an_old_button_changes_nothing_and_sees_connect(slack, u1, fake_slack, store):
    click(slack, "U2", ui.PAUSE_ACTION)
    click(slack, "U2", ui.EDIT_HOURS_ACTION)
    assert person_snapshot(store, "U2") is None
    assert fake_slack.calls_to("views.open") == []
    assert "connect your DMs" in published(fake_slack)["text"]


# --- the hours modal ----------------------------------------------------------------------------------


def test_saving_the_hours_modal_changes_hours_zone_and_reply_time_and_republishes(slack, u1, fake_slack, people):
    days = ["9-17:30", "9-17:30", "9:00-12:00, 13:00-17:00", "9-17:30", "9am-1pm", "", "off"]
    assert submit(slack, "U1", ui.HOURS_VIEW, hours_values(days, tz="Europe/Rome", reply="2h")) == {}
    prefs = people.get("T1", "U1")
    assert prefs.hours_text == "Mon–Tue 09:00–17:30 · Wed 09:00–12:00, 13:00–17:00 · Thu 09:00–17:30 · Fri 09:00–13:00"
    assert prefs.tz == "Europe/Rome"
    assert prefs.reply_within.total_seconds() == 7200
    home = published(fake_slack)
    assert "*Wed*  09:00–12:00, 13:00–17:00" in home["text"] and "Europe/Rome" in home["text"] and "2 h" in home["text"]
    assert len(fake_slack.calls_to("views.publish")) == 1  # three changes, one publish
    # The same data /hours shows.
    assert prefs.hours_text in block_text(slack.command("show", user="U1").json["blocks"])


@pytest.mark.parametrize("callback_id", [ui.HOURS_VIEW, ui.MESSAGE_VIEW])
def test_a_submission_is_answered_before_a_slow_views_publish_returns(slack, u1, fake_slack, people, callback_id):
    fake_slack.fail("views.publish", delay=3)  # Slack answers the publish, but only after 3 s
    if callback_id == ui.HOURS_VIEW:
        values = hours_values(["9-17"] * 5 + ["off"] * 2, tz="Europe/Rome")
    else:
        values = {ui.MESSAGE_BLOCK: {ui.VALUE_ACTION: {"type": "plain_text_input", "value": "Off until {back_at}."}}}
    started = time.monotonic()
    assert submit(slack, "U1", callback_id, values) == {}
    assert time.monotonic() - started < 1.5  # answered first: Slack shows no error on a saved change
    assert published(fake_slack)["user_id"] == "U1"  # and the Home follows, from the refresher
    prefs = people.get("T1", "U1")
    assert prefs.tz == "Europe/Rome" if callback_id == ui.HOURS_VIEW else prefs.message == "Off until {back_at}."


def test_an_unchanged_hours_modal_keeps_following_the_workspace_default(slack, u1, people, store):
    before = person_snapshot(store, "U1")
    assert submit(slack, "U1", ui.HOURS_VIEW, hours_values(WEEK)) == {}
    assert person_snapshot(store, "U1") == before
    assert people.get("T1", "U1").custom_hours is False


def zone_pending(store, user: str) -> None:
    with store.engine.begin() as conn:
        conn.execute(db.people.update().where(db.people.c.user_id == user).values(tz=None))


def test_a_zone_left_empty_while_still_to_be_learnt_stays_to_be_learnt(slack, u1, people, store):
    zone_pending(store, "U1")
    assert submit(slack, "U1", ui.HOURS_VIEW, hours_values(WEEK, tz=None, reply="2h")) == {}
    assert person_snapshot(store, "U1")["tz"] is None  # the profile zone can still be learnt
    assert people.get("T1", "U1").reply_within.total_seconds() == 7200  # the rest was saved


def test_picking_the_fallback_zone_while_still_to_be_learnt_is_a_choice_kept_for_good(slack, u1, people, store):
    zone_pending(store, "U1")
    assert people.get("T1", "U1").tz == "UTC"  # the fallback shown meanwhile
    assert submit(slack, "U1", ui.HOURS_VIEW, hours_values(WEEK, tz="UTC")) == {}
    assert person_snapshot(store, "U1")["tz"] == "UTC"
    assert people.get("T1", "U1").zone_pending is False


def test_a_zone_left_empty_once_known_is_refused(slack, u1, store):
    """The modal was opened while the zone was still to be learnt (no zone preselected), and it was learnt before
    the submission: the person is asked to pick one, and nothing is saved."""
    before = person_snapshot(store, "U1")
    answer = submit(slack, "U1", ui.HOURS_VIEW, hours_values(WEEK, tz=None, reply="2h"))
    assert answer["errors"] == {
        ui.TZ_BLOCK: "Pick a time zone: type a city or region to search, e.g. Rome or New York."
    }
    assert person_snapshot(store, "U1") == before


@pytest.mark.parametrize(
    ("days", "block", "says"),
    [
        (["9-17", "9-5", *WEEK[2:]], "hours_tue", "overnight"),
        ([*WEEK[:4], "banana", "off", "off"], "hours_fri", "Could not read"),
        ([*WEEK[:5], "9-17; sun 9-17", "off"], "hours_sat", "One day per field"),
        (["off"] * 7, "hours_mon", "no working hours"),
        (["0-24"] * 7, "hours_mon", "no time off"),
    ],
)
def test_invalid_hours_are_shown_on_that_days_field_and_nothing_is_saved(slack, u1, fake_slack, store, days, block,
                                                                         says):  # fmt: skip
    before = person_snapshot(store, "U1")
    body = submit(slack, "U1", ui.HOURS_VIEW, hours_values(days, tz="Europe/Rome"))
    assert body["response_action"] == "errors"
    assert list(body["errors"]) == [block]
    assert says in body["errors"][block]
    assert person_snapshot(store, "U1") == before
    assert fake_slack.calls_to("views.publish") == []


def test_every_invalid_field_is_named_at_once(slack, u1, store):
    before = person_snapshot(store, "U1")
    body = submit(slack, "U1", ui.HOURS_VIEW, hours_values(["9-5", *WEEK[1:]], tz="Mars/Olympus", reply="soon"))
    assert set(body["errors"]) == {"hours_mon", ui.TZ_BLOCK, ui.REPLY_BLOCK}
    assert "not a time zone" in body["errors"][ui.TZ_BLOCK]
    assert "not a duration" in body["errors"][ui.REPLY_BLOCK]
    assert person_snapshot(store, "U1") == before


def test_a_missing_zone_is_an_error_on_the_zone_field(slack, u1, store):
    body = submit(slack, "U1", ui.HOURS_VIEW, hours_values(WEEK, tz=None))
    assert list(body["errors"]) == [ui.TZ_BLOCK]


def test_the_zone_picker_searches_zones(slack, u1):
    payload = {"type": "block_suggestion", **who("U1"), "action_id": ui.TZ_ACTION, "block_id": ui.TZ_BLOCK,
               "value": "new yo", "view": {"id": "VMODAL", "type": "modal", "callback_id": ui.HOURS_VIEW}}  # fmt: skip
    response = slack.interaction(payload)
    assert response.status == 200, response.text
    options = response.json["options"]
    assert (options[0]["value"], options[0]["text"]["text"]) == ("America/New_York", "America/New York (UTC-05:00)")
    wide = slack.interaction({**payload, "value": "a"}).json["options"]
    assert len(wide) == 100  # Slack's limit


# --- the message modal --------------------------------------------------------------------------------


def test_saving_a_message_shows_it_as_a_sender_would_see_it(slack, u1, fake_slack, people):
    assert submit(slack, "U1", ui.MESSAGE_VIEW, text_values(ui.MESSAGE_BLOCK, "Hi {sender}, back {back_at}.")) == {}
    assert people.get("T1", "U1").message == "Hi {sender}, back {back_at}."
    assert "> Hi <@U1>, back Wed 09:00" in published(fake_slack)["text"]


def test_an_invalid_message_is_shown_on_the_field_and_nothing_is_saved(slack, u1, fake_slack, store):
    before = person_snapshot(store, "U1")
    body = submit(slack, "U1", ui.MESSAGE_VIEW, text_values(ui.MESSAGE_BLOCK, "Back {bak_at}"))
    assert body["response_action"] == "errors"
    assert "{bak_at}" in body["errors"][ui.MESSAGE_BLOCK]
    assert person_snapshot(store, "U1") == before
    assert fake_slack.calls_to("views.publish") == []


def test_an_empty_message_goes_back_to_the_default(slack, u1, people):
    people.set_message("T1", "U1", "Custom.")
    assert submit(slack, "U1", ui.MESSAGE_VIEW, text_values(ui.MESSAGE_BLOCK, None)) == {}
    assert people.get("T1", "U1").custom_message is False


# --- the days-off modal -------------------------------------------------------------------------------


def test_adding_days_off_with_the_date_pickers(slack, u1, fake_slack, people):
    assert submit(slack, "U1", ui.DAYS_OFF_VIEW, date_values("2026-03-10", "2026-03-12")) == {}
    assert [str(d.start) + ".." + str(d.end) for d in people.get("T1", "U1").days_off] == ["2026-03-10..2026-03-12"]
    assert "2026-03-10 → 2026-03-12" in published(fake_slack)["text"]


def test_adding_days_off_typed_in_the_hours_language(slack, u1, people):
    assert submit(slack, "U1", ui.DAYS_OFF_VIEW, date_values(None, typed="2026-12-24..2027-01-02")) == {}
    assert submit(slack, "U1", ui.DAYS_OFF_VIEW, date_values("2026-04-01")) == {}
    assert [(str(d.start), str(d.end)) for d in people.get("T1", "U1").days_off] == [
        ("2026-04-01", "2026-04-01"), ("2026-12-24", "2027-01-02"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("values", "block", "says"),
    [
        (date_values(None), ui.OFF_FROM_BLOCK, "Pick a day"),
        (date_values(None, "2026-03-10"), ui.OFF_FROM_BLOCK, "first day off"),
        (date_values("2026-03-12", "2026-03-10"), ui.OFF_TO_BLOCK, "before the first day off"),
        (date_values("2026-03-01"), ui.OFF_FROM_BLOCK, "already over"),
        (date_values(None, typed="christmas"), ui.OFF_TEXT_BLOCK, "not a date"),
        (date_values(None, typed="2026-03-10..2027-06-01"), ui.OFF_TEXT_BLOCK, "longer than 366 days"),
    ],
)
def test_invalid_days_off_are_shown_on_the_field_and_nothing_is_saved(slack, u1, fake_slack, store, values, block,
                                                                       says):  # fmt: skip
    before = person_snapshot(store, "U1")
    body = submit(slack, "U1", ui.DAYS_OFF_VIEW, values)
    assert body["response_action"] == "errors"
    assert list(body["errors"]) == [block]
    assert says in body["errors"][block]
    assert person_snapshot(store, "U1") == before


def test_the_same_day_off_twice_is_refused(slack, u1, people):
    assert submit(slack, "U1", ui.DAYS_OFF_VIEW, date_values("2026-03-10")) == {}
    body = submit(slack, "U1", ui.DAYS_OFF_VIEW, date_values(None, typed="2026-03-10"))
    assert "already in your days off" in body["errors"][ui.OFF_TEXT_BLOCK]


# --- whose data ----------------------------------------------------------------------------------------


def test_home_actions_change_only_the_person_who_acted(slack, u1, store, fake_slack, people):
    connect(store, fake_slack, "U4")
    before = person_snapshot(store, "U1")
    # U4 acts from a view that (wrongly) carries U1's id: the payload's user.id decides, nothing in the view.
    click(slack, "U4", ui.PAUSE_ACTION, view_metadata="U1")
    submit(slack, "U4", ui.HOURS_VIEW, hours_values(["10-16"] * 5 + ["off", "off"]), private_metadata="U1")
    submit(slack, "U4", ui.MESSAGE_VIEW, text_values(ui.MESSAGE_BLOCK, "U4 here."), private_metadata="U1")
    assert person_snapshot(store, "U1") == before
    u4 = people.get("T1", "U4")
    assert u4.paused and u4.message == "U4 here." and u4.hours_text == "Mon–Fri 10:00–16:00"
    assert {c.params["user_id"] for c in fake_slack.calls_to("views.publish")} == {"U4"}


def test_an_unconnected_person_cannot_submit_a_modal(slack, u1, store, fake_slack):
    assert submit(slack, "U2", ui.HOURS_VIEW, hours_values(WEEK, tz="Europe/Rome")) == {}
    assert person_snapshot(store, "U2") is None
    assert "connect your DMs" in published(fake_slack)["text"]


# --- refresh after /hours -----------------------------------------------------------------------------


def test_the_home_tab_refreshes_after_an_hours_change_made_with_the_command(slack, u1, fake_slack):
    response = slack.command("set mon-thu 10-16", user="U1")
    assert response.status == 200
    home = published(fake_slack)
    assert home["user_id"] == "U1" and home["token"] == "xoxb-T1"
    assert "*Mon*  10:00–16:00" in home["text"] and "*Fri*  _off_" in home["text"]


def test_the_last_refresh_shows_the_last_of_several_quick_changes(slack, u1, fake_slack):
    for text in ("set mon-fri 8-16", "tz Europe/Rome", "pause"):
        assert slack.command(text, user="U1").status == 200
    # Queued refreshes of one person coalesce, and each reads the settings when it publishes: some publish
    # shows all three changes (wait_for fails if none comes).
    n = 1
    while True:
        text = block_text(fake_slack.wait_for("views.publish", n)[n - 1].params["view"]["blocks"])
        if "Europe/Rome" in text and "Auto-replies paused" in text and "08:00–16:00" in text:
            break
        n += 1
    assert n <= 3


def test_a_view_published_by_the_refresh_is_valid(slack, u1, fake_slack):
    slack.command("off 2026-03-10", user="U1")
    view = published(fake_slack)["view"]
    View(**view).validate_json()
