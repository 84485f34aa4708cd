"""People who never get an auto-reply, over signed HTTP: `/hours except`, the Home picker, the listener (no reply,
still recorded), the recap still listing their messages, the limit, bad input, and forget.

The clock starts on Tue 3 Mar 2026 22:00 in New York (03:00 UTC on the 4th); U1 is connected (New York, the
default hours Mon–Fri 09:00–17:30), so their recap is due Wed 09:00 EST = 14:00 UTC. U2 and U3 write to U1.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from itertools import count

import pytest
import sqlalchemy as sa

from bot.people import MAX_REPLY_EXCEPTIONS
from bot.slack.blocks import home as ui
from bot.storage import db, schema
from bot.workers.recaps import RecapSender
from bot.workers.replies import ReplySender
from tests.support.blockkit import assert_valid
from tests.support.helpers import block_text, connect, rows
from tests.support.slackhttp import SlackHTTP, dm_channel

DUE = datetime(2026, 3, 4, 14, 0, tzinfo=UTC)
_triggers = count(1)


@pytest.fixture
def u1(store, fake_slack):
    connect(store, fake_slack, "U1", tz="America/New_York")
    fake_slack.add_user("U2", tz="Europe/Rome")
    fake_slack.add_user("U3", tz="Asia/Tokyo")
    fake_slack.dm_members[dm_channel("U1", "U2")] = ("U1", "U2")
    fake_slack.dm_members[dm_channel("U1", "U3")] = ("U1", "U3")
    return "U1"


@pytest.fixture
def hours(slack: SlackHTTP, u1):
    def send(text: str, *, user: str = "U1") -> str:
        response = slack.command(text, user=user)
        assert response.status == 200, response.text
        body = response.json
        assert body.get("response_type") == "ephemeral", body
        return block_text(body.get("blocks") or []) + "\n" + body.get("text", "")

    return send


@pytest.fixture
def drain(offhours, clock):
    """drain() -> how many auto-replies a ReplySender posted now."""
    made: list[ReplySender] = []

    def run() -> int:
        sender = ReplySender(offhours.services)
        made.append(sender)
        return sender.drain(now=clock())

    yield run
    for sender in made:
        sender.stop(timeout=5)


def listed(store, user: str = "U1") -> list[str]:
    return sorted(r["except_user_id"] for r in rows(store, schema.reply_exceptions, user_id=user))


def dm(slack: SlackHTTP, clock, sender: str, *, seconds: int = 0) -> None:
    response = slack.dm(sender=sender, recipient="U1", ts=clock().timestamp() + seconds, text="hello")
    assert response.status == 200, response.text


# --- /hours except --------------------------------------------------------------------------------------


def test_excepted_people_get_no_auto_reply_but_their_messages_are_in_the_recap(
    hours, slack, offhours, store, fake_slack, clock, drain
):
    answer = hours("except <@U2|maria>")
    assert "<@U2> never get your auto-reply; their messages still go in your recap." in answer
    assert listed(store) == ["U2"]

    dm(slack, clock, "U2")
    dm(slack, clock, "U3", seconds=60)
    assert {m["sender_id"] for m in rows(store, db.messages)} == {"U2", "U3"}  # both recorded
    assert [r["sender_id"] for r in rows(store, db.replies)] == ["U3"]  # one reply queued, not to U2
    assert drain() == 1
    [post] = fake_slack.calls_to("chat.postMessage")
    assert post.params["channel"] == dm_channel("U1", "U3")

    assert RecapSender(offhours.services).tick(DUE) == 1
    [_, recap] = fake_slack.calls_to("chat.postMessage")
    items = [b["text"]["text"] for b in recap.params["blocks"] if b["type"] == "section"]
    assert any(item.startswith("<@U2> · 1 message") for item in items)
    assert any(item.startswith("<@U3> · 1 message") for item in items)


def test_the_list_is_added_to_listed_and_removed_from(hours, slack, store, clock, drain):
    assert "nobody is on your list" in hours("except")
    hours("except <@U2|maria> <@U3>, <@U4|sam>")
    assert listed(store) == ["U2", "U3", "U4"]
    assert "Never auto-replied (3): <@U2>, <@U3>, <@U4>." in hours("except")

    answer = hours("except remove <@U2|maria>")
    assert "Removed <@U2>: they get your auto-reply again." in answer
    assert listed(store) == ["U3", "U4"]
    dm(slack, clock, "U2")
    assert drain() == 1  # back on the list of people who get one


@pytest.mark.parametrize(
    ("text", "expected", "example"),
    [
        ("except maria", "`maria` is not a person", "/hours except @maria @sam"),
        ("except <@U2> and <@U3>", "`and` is not a person", "/hours except @maria @sam"),
        ("except <@U1|me>", "You never get an auto-reply from yourself", "/hours except @maria @sam"),
        ("except remove", "needs at least one person", "/hours except remove @maria"),
        ("except remove maria", "`maria` is not a person", "/hours except remove @maria"),
        ("except <#C123|general>", "is not a person", "/hours except @maria @sam"),
    ],
)
def test_bad_input_gets_a_message_and_an_example_and_changes_nothing(hours, store, text, expected, example):
    hours("except <@U3>")
    answer = hours(text)
    assert expected in answer
    assert f"For example: `{example}`" in answer
    assert listed(store) == ["U3"]


def test_the_list_is_limited_and_says_so(hours, store):
    many = [f"U{n:05d}" for n in range(MAX_REPLY_EXCEPTIONS)]
    hours("except " + " ".join(f"<@{u}>" for u in many[:60]))
    hours("except " + " ".join(f"<@{u}>" for u in many[60:]))
    assert len(listed(store)) == MAX_REPLY_EXCEPTIONS
    answer = hours("except <@U2>")
    assert f"At most {MAX_REPLY_EXCEPTIONS} people can be on your list (you have {MAX_REPLY_EXCEPTIONS})" in answer
    assert "U2" not in listed(store)
    hours("except remove <@U00000>")
    hours("except <@U2>")  # room again
    assert "U2" in listed(store)


def test_the_exception_is_read_in_the_listeners_one_statement(hours, slack, store, fake_slack, clock):
    hours("except <@U2>")
    fake_slack.wait_for("views.publish", 1)  # the Home refresh after /hours has read the list: not counted below
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        statements.append(statement)

    sa.event.listen(store.engine, "before_cursor_execute", record)
    try:
        dm(slack, clock, "U2")
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", record)
    reading = [s for s in statements if "reply_exceptions" in s]
    assert len(reading) == 1
    assert "slack_installations" in reading[0] and "people" in reading[0]  # the same dm_view statement as before


def test_forget_deletes_the_list_and_the_persons_place_on_other_lists(hours, store, fake_slack):
    connect(store, fake_slack, "U3", tz="Asia/Tokyo")
    hours("except <@U2>")
    hours("except <@U1>", user="U3")
    hours("forget")
    assert rows(store, schema.reply_exceptions) == []


# --- Home -------------------------------------------------------------------------------------------------


def pick(slack: SlackHTTP, user: str, selected: object) -> None:
    payload = {
        "type": "block_actions",
        "team": {"id": "T1", "domain": "example"},
        "user": {"id": user, "team_id": "T1", "username": user.lower()},
        "api_app_id": "A1",
        "token": "legacy",
        "trigger_id": f"trigger.{next(_triggers)}",
        "container": {"type": "view", "view_id": "VHOME"},
        "view": {"id": "VHOME", "type": "home", "callback_id": "", "private_metadata": "", "blocks": []},
        "actions": [{"type": "multi_users_select", "action_id": ui.EXCEPTIONS_ACTION,
                     "block_id": "home_exceptions_picker", "selected_users": selected, "action_ts": "1772593200.1"}],
    }  # fmt: skip
    response = slack.interaction(payload)
    assert response.status == 200, response.text


def picker(fake_slack, n: int) -> dict:
    """The people picker of the latest Home published, once at least `n` were (each reads the list as it is)."""
    call = fake_slack.wait_for("views.publish", n)[-1]
    view = call.params["view"]
    view = json.loads(view) if isinstance(view, str) else view
    assert_valid(view)
    [block] = [b for b in view["blocks"] if b.get("block_id") == "home_exceptions_picker"]
    return block["elements"][0]


def test_the_home_picker_sets_the_whole_list_and_shows_it(hours, slack, store, fake_slack, clock, drain):
    hours("except <@U3>")
    fake_slack.wait_for("views.publish", 1)  # the background refresh after /hours, before the picks
    pick(slack, "U1", ["U2", "U4"])
    assert listed(store) == ["U2", "U4"]  # the picker holds the whole list: U3 was unpicked
    element = picker(fake_slack, 2)
    assert element["initial_users"] == ["U2", "U4"]
    assert element["max_selected_items"] == MAX_REPLY_EXCEPTIONS

    dm(slack, clock, "U2")
    assert drain() == 0
    assert len(rows(store, db.messages, sender_id="U2")) == 1

    pick(slack, "U1", [])
    assert listed(store) == []
    assert "initial_users" not in picker(fake_slack, 3)


def test_the_home_picker_ignores_the_person_themselves_and_refuses_too_many(hours, slack, store, fake_slack):
    pick(slack, "U1", ["U1", "U2"])
    assert listed(store) == ["U2"]
    pick(slack, "U1", [f"U{n:05d}" for n in range(MAX_REPLY_EXCEPTIONS + 1)])
    assert listed(store) == ["U2"]  # nothing changed
    assert picker(fake_slack, 2)["initial_users"] == ["U2"]  # the Home shows the list as it is


@pytest.mark.parametrize("selected", ["U2U3", 5, [None], [{"id": "U2"}], ["U" + "X" * 40], ["U2", "<@U3>"]])
def test_a_malformed_picker_payload_changes_nothing_and_is_answered(hours, slack, store, fake_slack, selected):
    """Signed, but not what a multi_users_select sends: not a 500 (Slack would show the person an error and retry),
    and no id of another shape stored (a string read as its letters, None as "None", an id too long for the column)."""
    hours("except <@U3>")
    pick(slack, "U1", selected)
    assert listed(store) == ["U3"]


def test_an_unconnected_person_cannot_set_a_list_from_home(slack, store, fake_slack, u1):
    pick(slack, "U9", ["U2"])
    assert rows(store, schema.reply_exceptions) == []
