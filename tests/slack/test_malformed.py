"""Signed but malformed payloads over real HTTP: every one gets an answer below 500 and changes nothing it should not.

Slack signs what it sends, but the JSON can hold anything where Slack sends a string or an object. Each case
here was a 500 (SQLite and PostgreSQL): wrong-typed message fields, view states that are not objects, a recap id
no integer column holds, `actions` an object, lone surrogates, ids longer than the id columns. The clock is
Tue 2026-03-03 22:00 in New York: U1 (connected, Mon–Fri 09:00–17:30) is off, so a well-formed DM is recorded.
"""

from __future__ import annotations

import json

import pytest

from bot.slack.blocks import home as ui
from bot.slack.blocks.recap import DONE_ACTION
from bot.storage import db, schema
from tests.support.fakeslack import FakeSlack
from tests.support.helpers import connect, person_snapshot, rows, table_count
from tests.support.slackhttp import SlackHTTP, dm_channel

TS = "1772593200.000100"  # 2026-03-04 03:00 UTC: 22:00 in New York
CHANNEL = dm_channel("U1", "U2")


@pytest.fixture
def u1(store, fake_slack: FakeSlack) -> dict:
    connect(store, fake_slack, "U1", tz="America/New_York")
    fake_slack.add_user("U2", tz="Europe/Rome")
    return person_snapshot(store, "U1")


def dm(**fields) -> dict:
    return {"type": "message", "channel": CHANNEL, "channel_type": "im", "user": "U2", "text": "hi", "ts": TS,
            "event_ts": TS, **fields}  # fmt: skip


def send(slack: SlackHTTP, event: dict, *, event_id: str = "Ev1", authorizations=None) -> int:
    """A signed event_callback as Slack sends one, whatever `event` holds; the answer's status."""
    payload = {"token": "t", "team_id": "T1", "api_app_id": "A1", "type": "event_callback", "event_id": event_id,
               "event_time": 1772593200, "event": event,
               "authorizations": authorizations or [{"team_id": "T1", "user_id": "U1", "is_bot": False}]}  # fmt: skip
    return slack.post(json.dumps(payload), content_type="application/json").status


MALFORMED_DMS = {
    "subtype a number": dm(subtype=7),
    "subtype an object": dm(subtype={"x": 1}),
    "ts a number": dm(ts=1772593200.0001),
    "ts a list": dm(ts=[TS]),
    "ts not a timestamp": dm(ts="x" * 40),
    "thread_ts an object": dm(thread_ts={"ts": TS}),
    "thread_ts a number": dm(thread_ts=17),
    "user a list": dm(user=["U2"]),
    "user over-long": dm(user="U" * 200),
    "channel over-long": dm(channel="D" * 200),
    "channel a number": dm(channel=5),
    "text a number": dm(text=12),
    "metadata a list": dm(metadata=["x"]),
    "deleted_ts a number": dm(subtype="message_deleted", deleted_ts=1772593200.1),
    "deleted_ts an object": dm(subtype="message_deleted", deleted_ts={"ts": TS}),
    "previous_message a string": dm(subtype="message_deleted", previous_message="x"),
    "previous_message a list": dm(subtype="message_deleted", previous_message=[TS]),
    "previous_message ts an object": dm(subtype="message_deleted", previous_message={"ts": {}}),
    "deleted message channel over-long": dm(subtype="message_deleted", channel="D" * 100, deleted_ts=TS),
}


@pytest.mark.parametrize("name", sorted(MALFORMED_DMS))
def test_a_malformed_dm_gets_an_answer_and_is_not_recorded(slack: SlackHTTP, store, u1, name):
    status = send(slack, MALFORMED_DMS[name])
    assert status < 500, (name, status)
    # Either ignored, or (a wrong-typed subtype/text) at most one well-formed row: never a row with a bad field.
    for row in rows(store, db.messages):
        assert row["ts"] == TS and row["channel_id"] == CHANNEL and row["sender_id"] == "U2", name
    assert person_snapshot(store, "U1") == u1


def test_a_wrong_typed_subtype_is_not_taken_for_a_plain_message(slack, store, u1):
    assert send(slack, dm(subtype=7)) == 200
    assert table_count(store, db.replies) == 0  # not a message a person wrote: no auto-reply


def test_a_lone_surrogate_in_a_dm_is_stored_replaced(slack, store, u1):
    assert slack.event(dm(text="hi \ud800 there"), authorized="U1").status == 200
    [row] = rows(store, db.messages)
    assert row["ts"] == TS
    if row["text"] is not None:
        assert row["text"] == "hi \ufffd there"


def test_a_dm_whose_ts_is_past_any_date_is_taken_as_received_now(slack, store, u1, clock):
    huge = "10000000000000000000.000000"  # a ts by its shape, but no datetime can hold it
    assert slack.event(dm(ts=huge, event_ts=huge), authorized="U1").status == 200
    [row] = rows(store, db.messages)
    assert row["ts"] == huge and row["received_at"] == clock()


def test_a_well_formed_dm_next_to_them_is_still_recorded(slack, store, u1):
    for i, name in enumerate(sorted(MALFORMED_DMS)):
        assert send(slack, MALFORMED_DMS[name], event_id=f"Ev{i}") < 500, name
    assert slack.event(dm(ts="1772593300.000100"), authorized="U1").status == 200
    assert "1772593300.000100" in {r["ts"] for r in rows(store, db.messages)}


def test_authorizations_of_the_wrong_shape_are_ignored(slack, store, u1):
    assert send(slack, dm(), authorizations={"user_id": "U1"}) < 500
    assert send(slack, dm(), event_id="Ev2", authorizations=["U1", 7]) < 500
    assert rows(store, db.messages) == []  # no one it could be for


# --- interactions -----------------------------------------------------------------------------------------------


def who() -> dict:
    return {"team": {"id": "T1", "domain": "example"}, "user": {"id": "U1", "team_id": "T1", "username": "u1"},
            "api_app_id": "A1", "token": "legacy", "trigger_id": "1.2"}  # fmt: skip


def submit(slack: SlackHTTP, callback_id: str, state) -> tuple[int, dict]:
    view = {"id": "VMODAL", "type": "modal", "callback_id": callback_id, "private_metadata": "", "state": state,
            "blocks": []}  # fmt: skip
    response = slack.interaction({"type": "view_submission", **who(), "view": view})
    return response.status, (response.json if response.body else {})


VIEWS = [ui.HOURS_VIEW, ui.MESSAGE_VIEW, ui.DAYS_OFF_VIEW, ui.HOLIDAYS_VIEW]
BAD_STATES = {
    "state a string": "x",
    "values a list": {"values": [1, 2]},
    "values of a block a string": {"values": {block: "x" for block in [*ui.DAY_BLOCKS, ui.MESSAGE_BLOCK]}},
    "value of an action a list": {"values": {ui.MESSAGE_BLOCK: {ui.VALUE_ACTION: [1]}}},
    "selected_option a string": {"values": {ui.TZ_BLOCK: {ui.TZ_ACTION: {"selected_option": "Europe/Rome"}}}},
    "selected_date a number": {
        "values": {
            ui.OFF_FROM_BLOCK: {ui.VALUE_ACTION: {"selected_date": 20261224}},
            ui.OFF_TO_BLOCK: {ui.VALUE_ACTION: {"selected_date": ["2026-12-25"]}},
        }
    },
    "selected_date a string and a number": {
        "values": {
            ui.OFF_FROM_BLOCK: {ui.VALUE_ACTION: {"selected_date": "2026-12-24"}},
            ui.OFF_TO_BLOCK: {ui.VALUE_ACTION: {"selected_date": 5}},
        }
    },
}


@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize("state", sorted(BAD_STATES))
def test_a_modal_state_of_the_wrong_shape_answers_and_changes_nothing(slack, store, u1, view, state):
    status, ack = submit(slack, view, BAD_STATES[state])
    assert status == 200, (view, state, status)
    if view != ui.HOLIDAYS_VIEW and view != ui.MESSAGE_VIEW:  # an empty message/holidays field means "reset"/"off"
        assert ack.get("response_action") == "errors", ack
        assert person_snapshot(store, "U1") == u1


def test_a_lone_surrogate_in_the_message_modal_is_saved_replaced(slack, store, u1):
    values = {ui.MESSAGE_BLOCK: {ui.VALUE_ACTION: {"type": "plain_text_input", "value": "Off \udc00 now"}}}
    status, ack = submit(slack, ui.MESSAGE_VIEW, {"values": values})
    assert status == 200 and ack == {}, ack
    assert person_snapshot(store, "U1")["message"] == "Off \ufffd now"


def action(slack: SlackHTTP, actions) -> int:
    payload = {"type": "block_actions", **who(), "container": {"type": "message"}, "actions": actions}
    return slack.interaction(payload).status


@pytest.mark.parametrize(
    "actions",
    [
        {"action_id": DONE_ACTION, "value": "1:D1"},  # an object, not a list
        [{"action_id": DONE_ACTION, "value": "9" * 30 + ":D1"}],  # no integer column holds it
        [{"action_id": DONE_ACTION, "value": "1:" + "D" * 200}],
        [{"action_id": DONE_ACTION, "value": ["1:D1"]}],
        [{"action_id": ui.EXCEPTIONS_ACTION, "selected_users": "U2"}],
        [{"action_id": ui.EXCEPTIONS_ACTION, "selected_users": [{"id": "U2"}, "U" * 200]}],
    ],
)
def test_actions_of_the_wrong_shape_answer_below_500(slack, store, u1, actions):
    before = rows(store, schema.reply_exceptions)
    assert action(slack, actions) < 500
    assert rows(store, schema.reply_exceptions) == before


def test_a_user_id_too_long_for_the_id_columns_is_answered(slack, store, u1):
    view = {"id": "V", "type": "modal", "callback_id": ui.MESSAGE_VIEW, "state": {"values": {}}}
    payload = {"type": "view_submission", "team": {"id": "T1"}, "user": {"id": "U" * 300}, "api_app_id": "A1",
               "view": view}  # fmt: skip
    assert slack.interaction(payload).status < 500
    assert slack.command("show", user="U" * 300).status < 500
    assert slack.command("set mon-fri 9-17", user="U" * 300).status < 500
    assert table_count(store, db.people) == 1  # only U1's row


def test_the_home_opened_event_with_odd_fields_answers(slack, store, u1):
    for event in (
        {"type": "app_home_opened", "user": ["U1"], "tab": "home", "channel": "D1", "event_ts": TS},
        {"type": "app_home_opened", "user": "U1", "tab": {"x": 1}, "channel": "D1", "event_ts": TS},
        {"type": "app_home_opened", "user": "U" * 300, "tab": "home", "channel": "D1", "event_ts": TS},
    ):
        assert slack.event(event, authorized="U1").status < 500, event


@pytest.mark.parametrize("tokens", ["U1", {"oauth": "U1"}, {"oauth": [7, {"id": "U1"}, "U" * 100]}, ["U1"]])
def test_tokens_revoked_of_the_wrong_shape_revokes_no_one(slack, store, u1, tokens):
    event = {"type": "tokens_revoked", "tokens": tokens, "event_ts": TS}
    assert send(slack, event) < 500
    assert store.user_token("T1", "U1") is not None
