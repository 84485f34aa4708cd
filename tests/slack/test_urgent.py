""" "It's urgent" (issue 19), over signed HTTP against the fake Slack: the route, the button, the modal, the notice.

The clock starts on Tue 3 Mar 2026 22:00 in New York. U1 is the connected person (Alice, Mon–Fri 09:00–17:30),
U2 the sender, U3 the backup (Dana). Senders are drained by hand with the clock's `now`; nothing sleeps.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from bot.slack.blocks import urgent as ui
from bot.storage import schema
from bot.workers.replies import ReplySender
from bot.workers.urgent import UrgentSender
from tests.support.helpers import block_text, connect, rows
from tests.support.recording import RecordingSlack
from tests.support.slackhttp import SlackHTTP, dm_channel

CHANNEL = dm_channel("U1", "U2")


@pytest.fixture
def fake_slack() -> Iterator[RecordingSlack]:
    fake = RecordingSlack().start()  # answers conversations.replies from what it carried out
    yield fake
    fake.stop()


@pytest.fixture
def people(offhours, store, fake_slack, clock):
    connect(store, fake_slack, "U1", now=clock())
    offhours.services.people.ensure("T1", "U1", profile_tz="America/New_York")
    fake_slack.add_user("U2")
    fake_slack.add_user("U3")
    return offhours


@pytest.fixture
def senders(people) -> Iterator[dict]:
    made = {"replies": ReplySender(people.services), "urgent": UrgentSender(people.services)}
    yield made
    for sender in made.values():
        sender.stop(timeout=5)


def urgent(slack: SlackHTTP, text: str, *, user: str = "U1") -> str:
    response = slack.command(f"urgent {text}".strip(), user=user)
    assert response.status == 200, response.text
    return block_text(response.json.get("blocks") or []) or response.json.get("text", "")


def route(store) -> list[dict]:
    return [{"user_id": r["user_id"], "route_to": r["route_to"]} for r in rows(store, schema.urgent_routes)]


def dm_and_reply(slack: SlackHTTP, senders, clock, *, sender: str = "U2", text: str = "are you there?") -> dict:
    """U2 writes to U1 after hours; the auto-reply is posted; returns its chat.postMessage call's params."""
    response = slack.dm(sender=sender, recipient="U1", ts=clock().timestamp(), text=text)
    assert response.status == 200
    assert senders["replies"].drain(now=clock()) == 1
    return slack.fake.calls_to("chat.postMessage")[-1].params


@pytest.fixture
def http(slack, fake_slack) -> SlackHTTP:
    slack.fake = fake_slack  # type: ignore[attr-defined]
    return slack


def button(params: dict) -> dict | None:
    for block in params.get("blocks") or []:
        if block.get("type") == "actions":
            for element in block["elements"]:
                if element.get("action_id") == ui.URGENT_ACTION:
                    return element
    return None


def click(http: SlackHTTP, fake, *, user: str, value: str, channel: str = CHANNEL):
    response = http.message_button(user=user, action_id=ui.URGENT_ACTION, value=value, channel=channel,
                                   response_url=fake.base_url + "response_url", block_id=ui.BUTTON_BLOCK)  # fmt: skip
    assert response.status == 200, response.text
    return response


def submit(http: SlackHTTP, *, user: str, reply_id: str, note: str | None) -> dict:
    values = {ui.NOTE_BLOCK: {ui.NOTE_INPUT: {"type": "plain_text_input", "value": note}}}
    response = http.view_submission(user=user, callback_id=ui.URGENT_VIEW, values=values, private_metadata=reply_id)
    assert response.status == 200, response.text
    return response.json if response.body else {}


def told(fake) -> list[str]:
    """What was said to the clicker through the response URL (ephemeral answers)."""
    return [c.params.get("text", "") for c in fake.calls_to("response_url")]


def notices_to(fake, user: str) -> list[dict]:
    """The urgent notices posted with the bot token (to the app's DM with `user`)."""
    channel = "D" + user
    return [c.params for c in fake.calls_to("chat.postMessage")
            if c.token == "xoxb-T1" and str(c.params.get("channel", "")).startswith(channel)]  # fmt: skip


# --- (1) the route -------------------------------------------------------------------------------------------


def test_a_backup_is_set_from_a_mention_as_slack_sends_it(people, http, store):
    assert "off" in urgent(http, "")
    assert "<@U3>" in urgent(http, "<@U3|dana>")
    assert route(store) == [{"user_id": "U1", "route_to": "U3"}]
    assert "<@U3>" in urgent(http, "")
    assert "<@U3>" in urgent(http, "<@U3>")
    assert "to you" in urgent(http, "me")
    assert route(store) == [{"user_id": "U1", "route_to": "me"}]
    assert "off" in urgent(http, "off")
    assert route(store) == []


@pytest.mark.parametrize(
    ("arg", "says"),
    [
        ("<@UBOTX|helper>", "bot"),
        ("<@U1|alice>", "own backup"),
        ("<@UGONE|gone>", "deactivated"),
        ("<@UNOBODY>", "not someone in this workspace"),
        ("dana", "not a person"),
        ("<@U3> <@U2>", "one person"),
    ],
)
def test_a_backup_that_cannot_be_one_is_refused_and_nothing_changes(people, http, store, fake_slack, arg, says):
    fake_slack.add_user("UBOTX", is_bot=True)
    fake_slack.add_user("UGONE")
    fake_slack.users["UGONE"].deleted = True
    urgent(http, "<@U3>")
    answer = urgent(http, arg)
    assert says in answer
    assert route(store) == [{"user_id": "U1", "route_to": "U3"}]


def test_slack_not_answering_users_info_changes_nothing(people, http, store, fake_slack):
    fake_slack.fail("users.info", status=500)
    assert "nothing was changed" in urgent(http, "<@U3>")
    assert route(store) == []


# --- (2) the button --------------------------------------------------------------------------------------------


def test_the_button_appears_only_while_a_route_is_set(people, http, senders, clock):
    first = dm_and_reply(http, senders, clock, sender="U2")
    assert button(first) is None
    urgent(http, "<@U3>")
    second = dm_and_reply(http, senders, clock, sender="U4")
    assert button(second) is not None
    assert "urgent" in button(second)["text"]["text"].lower()


# --- (3) click, modal, submit, notice ------------------------------------------------------------------------------


def test_click_modal_submit_sends_one_notice_to_the_backup(people, http, senders, clock, store, fake_slack):
    urgent(http, "<@U3>")
    reply = button(dm_and_reply(http, senders, clock))
    click(http, fake_slack, user="U2", value=reply["value"])
    opened = fake_slack.calls_to("views.open")
    assert len(opened) == 1 and told(fake_slack) == []
    view = opened[0].params["view"]
    assert "Your note goes to <@U3>, <@U1>'s backup" in json.dumps(view)
    answer = submit(http, user="U2", reply_id=view["private_metadata"], note="Prod is down <!channel> & <@U9>")
    assert answer["response_action"] == "update"
    assert "Passed on to <@U3>" in json.dumps(answer["view"])
    [recorded] = rows(store, schema.urgent_notices)  # recorded before the ack
    assert recorded["state"] == "pending" and recorded["target_id"] == "U3"

    assert senders["urgent"].drain(now=clock()) == 1
    [notice] = notices_to(fake_slack, "U3")
    blocks = notice["blocks"]
    assert "<@U2> wrote to <@U1>" in block_text(blocks)
    [note_block] = [b for b in blocks if b["type"] == "section" and b["text"]["type"] == "plain_text"]
    assert note_block["text"]["text"] == "Prod is down <!channel> & <@U9>"  # plain text: no mention, no @channel
    assert "&lt;!channel&gt; &amp; &lt;@U9&gt;" in notice["text"]
    assert "is back <!date^" in block_text(blocks)
    assert "slack://user?team=T1&id=U2" in json.dumps(blocks)
    assert senders["urgent"].drain(now=clock()) == 0
    assert rows(store, schema.urgent_notices)[0]["state"] == "sent"
    # The sender's auto-reply, updated with the person's token: no button any more, "Passed on to @Dana".
    [update] = fake_slack.calls_to("chat.update")
    assert update.token == "xoxp-T1-U1" and update.params["channel"] == CHANNEL
    assert button(update.params) is None
    assert "Auto-reply" in block_text(update.params["blocks"])
    assert "Passed on to <@U3>" in block_text(update.params["blocks"])

    # A second click, in the same off window: already passed on, no modal.
    click(http, fake_slack, user="U2", value=reply["value"])
    assert len(fake_slack.calls_to("views.open")) == 1
    assert "Already passed on to <@U3>" in told(fake_slack)[-1]
    # A second submission (a modal opened twice): refused by the database's unique key.
    again = submit(http, user="U2", reply_id=reply["value"], note="again")
    assert "Already passed on" in json.dumps(again["view"])
    assert len(rows(store, schema.urgent_notices)) == 1
    assert senders["urgent"].drain(now=clock()) == 0
    assert len(notices_to(fake_slack, "U3")) == 1


def test_someone_else_clicking_is_told_why_and_nothing_opens(people, http, senders, clock, store, fake_slack):
    urgent(http, "<@U3>")
    reply = button(dm_and_reply(http, senders, clock))
    click(http, fake_slack, user="U5", value=reply["value"])
    assert fake_slack.calls_to("views.open") == []
    assert "Only <@U2>" in told(fake_slack)[-1]
    # A forged submission for someone else's message: refused, nothing recorded.
    answer = submit(http, user="U5", reply_id=reply["value"], note="let me in")
    assert "Only <@U2>" in json.dumps(answer["view"])
    assert rows(store, schema.urgent_notices) == []


def test_a_click_without_a_response_url_is_acknowledged_and_opens_nothing(people, http, fake_slack):
    response = http.message_button(user="U2", action_id=ui.URGENT_ACTION, value="1", channel=CHANNEL,
                                   response_url=None, block_id=ui.BUTTON_BLOCK)  # fmt: skip
    assert response.status == 200, response.text  # signed, but nowhere to answer: acked, nothing else
    assert fake_slack.calls_to("views.open") == [] and told(fake_slack) == []


@pytest.mark.parametrize("value", ["", "abc", "99999", "1" * 40, "-1", "2147483648", "99999999999", "１２"])
def test_a_forged_button_value_is_answered_and_opens_nothing(people, http, fake_slack, value):
    click(http, fake_slack, user="U2", value=value)
    assert fake_slack.calls_to("views.open") == []
    assert "doesn't work" in told(fake_slack)[-1]


@pytest.mark.parametrize(
    ("note", "says"),
    [("", "few words"), ("   ", "few words"), ("x" * 3000, "3,000"), ("server\x00down", "NUL character")],
)
def test_an_empty_too_long_or_nul_note_is_a_field_error(people, http, senders, clock, store, fake_slack, note, says):
    urgent(http, "<@U3>")
    reply = button(dm_and_reply(http, senders, clock))
    answer = submit(http, user="U2", reply_id=reply["value"], note=note)
    assert answer["response_action"] == "errors"
    assert says in answer["errors"][ui.NOTE_BLOCK]
    assert rows(store, schema.urgent_notices) == []


def test_a_note_just_under_the_limit_is_sent(people, http, senders, clock, store, fake_slack):
    urgent(http, "<@U3>")
    reply = button(dm_and_reply(http, senders, clock))
    assert submit(http, user="U2", reply_id=reply["value"], note="y" * 2999)["response_action"] == "update"
    assert senders["urgent"].drain(now=clock()) == 1


def test_the_person_disconnecting_before_the_click_sends_nothing(people, http, senders, clock, store, fake_slack):
    urgent(http, "<@U3>")
    reply = button(dm_and_reply(http, senders, clock))
    store.forget_person("T1", "U1")
    click(http, fake_slack, user="U2", value=reply["value"])
    assert fake_slack.calls_to("views.open") == []
    assert "doesn't work" in told(fake_slack)[-1]  # the reply went with the rest of their data
    assert submit(http, user="U2", reply_id=reply["value"], note="hello")["response_action"] == "update"
    assert rows(store, schema.urgent_notices) == []


def test_disconnecting_after_the_submission_sends_nothing(people, http, senders, clock, store, fake_slack):
    urgent(http, "<@U3>")
    reply = button(dm_and_reply(http, senders, clock))
    submit(http, user="U2", reply_id=reply["value"], note="hello")
    store.revoke_user_tokens("T1", ["U1"])
    assert senders["urgent"].drain(now=clock()) == 0
    assert notices_to(fake_slack, "U3") == []


def test_a_backup_who_left_is_named_and_nothing_is_sent(people, http, senders, clock, store, fake_slack):
    urgent(http, "<@U3>")
    reply = button(dm_and_reply(http, senders, clock))
    click(http, fake_slack, user="U2", value=reply["value"])
    assert len(fake_slack.calls_to("views.open")) == 1  # only the database is read before views.open
    fake_slack.users["U3"].deleted = True
    answer = submit(http, user="U2", reply_id=reply["value"], note="hello")
    assert "no longer in the workspace" in json.dumps(answer["view"])
    assert rows(store, schema.urgent_notices) == []
    del fake_slack.users["U3"]  # removed altogether: users.info says user_not_found
    answer = submit(http, user="U2", reply_id=reply["value"], note="hello")
    assert "no longer in the workspace" in json.dumps(answer["view"])
    assert rows(store, schema.urgent_notices) == []


def test_slack_not_answering_about_the_backup_still_records_the_note(people, http, senders, clock, store,
                                                                     fake_slack):  # fmt: skip
    urgent(http, "<@U3>")
    reply = button(dm_and_reply(http, senders, clock))
    fake_slack.fail("users.info", status=500)
    assert submit(http, user="U2", reply_id=reply["value"], note="hello")["response_action"] == "update"
    assert len(rows(store, schema.urgent_notices)) == 1


def test_pending_urgent_notes_are_counted_for_the_metrics(people, http, senders, clock, store):
    from bot.storage import ops

    urgent(http, "<@U3>")
    reply = button(dm_and_reply(http, senders, clock))
    submit(http, user="U2", reply_id=reply["value"], note="hello")
    assert ops.pending(store.engine, now=clock())["urgent"].count == 1
    senders["urgent"].drain(now=clock())
    assert ops.pending(store.engine, now=clock())["urgent"].count == 0


def test_route_turned_off_before_the_click(people, http, senders, clock, store, fake_slack):
    urgent(http, "<@U3>")
    reply = button(dm_and_reply(http, senders, clock))
    urgent(http, "off")
    click(http, fake_slack, user="U2", value=reply["value"])
    assert "no longer takes urgent notes" in told(fake_slack)[-1]


def test_after_the_person_is_back_the_button_says_so(people, http, senders, clock, store, fake_slack):
    urgent(http, "<@U3>")
    reply = button(dm_and_reply(http, senders, clock))
    clock.advance(hours=12)  # Wed 10:00 in New York
    click(http, fake_slack, user="U2", value=reply["value"])
    assert "is back now" in told(fake_slack)[-1]


# --- (4) route me ----------------------------------------------------------------------------------------------


def test_route_me_sends_the_person_the_note_with_a_link_to_the_thread(people, http, senders, clock, fake_slack):
    urgent(http, "me")
    reply = button(dm_and_reply(http, senders, clock))
    click(http, fake_slack, user="U2", value=reply["value"])
    view = fake_slack.calls_to("views.open")[-1].params["view"]
    assert "Your note goes to <@U1>." in json.dumps(view)
    submit(http, user="U2", reply_id=reply["value"], note="call me")
    assert senders["urgent"].drain(now=clock()) == 1
    [notice] = notices_to(fake_slack, "U1")
    text = block_text(notice["blocks"])
    assert "<@U2> wrote to you" in text
    assert f"https://example.slack.com/archives/{CHANNEL}/p" in text


# --- (5) the recap ---------------------------------------------------------------------------------------------


def test_the_recap_lists_urgent_conversations_first_marked_with_who_got_them(people, http, senders, clock, store,
                                                                             fake_slack):  # fmt: skip
    from datetime import UTC, datetime

    from bot.workers.recaps import RecapSender

    urgent(http, "<@U3>")
    dm_and_reply(http, senders, clock, sender="U4")  # the earlier conversation, not urgent
    clock.advance(minutes=10)
    reply = button(dm_and_reply(http, senders, clock, sender="U2"))
    submit(http, user="U2", reply_id=reply["value"], note="the build is on fire")
    assert senders["urgent"].drain(now=clock()) == 1
    clock.set(datetime(2026, 3, 4, 14, 0, tzinfo=UTC))  # Wed 09:00 in New York
    assert RecapSender(people.services).tick(clock()) == 1
    [recap] = [c.params for c in fake_slack.calls_to("chat.postMessage") if c.params.get("channel") == "U1"]
    lines = [b["text"]["text"] for b in recap["blocks"] if b["type"] == "section" and "accessory" in b]
    assert len(lines) == 2
    assert lines[0].startswith(":rotating_light: *Urgent* (passed on to <@U3>) · <@U2>")
    assert lines[1].startswith("<@U4>")


# --- (7) the Home tab ------------------------------------------------------------------------------------------


def home_action(http: SlackHTTP, *, user: str, action: dict):
    payload = {
        "type": "block_actions",
        "team": {"id": "T1", "domain": "example"},
        "user": {"id": user, "username": user.lower(), "team_id": "T1"},
        "api_app_id": "A1",
        "token": "legacy-verification-token",
        "trigger_id": "trigger.home",
        "container": {"type": "view", "view_id": "VHOME"},
        "view": {"id": "VHOME", "type": "home", "callback_id": "", "private_metadata": "", "blocks": []},
        "actions": [{"block_id": ui.HOME_BLOCK + "_actions", "action_ts": "1772593200.1", **action}],
    }
    response = http.interaction(payload)
    assert response.status == 200, response.text
    return response


def published(fake) -> str:
    return json.dumps(fake.calls_to("views.publish")[-1].params["view"])


def test_the_home_tab_picks_a_backup_sends_to_me_and_turns_off(people, http, store, fake_slack):
    fake_slack.add_user("UBOTX", is_bot=True)
    response = http.event({"type": "app_home_opened", "user": "U1", "tab": "home"}, authorized="UBOT")
    assert response.status == 200
    view = published(fake_slack)
    assert "It's urgent" in view and "Do Not Disturb" in view and ui.PICK_ACTION in view
    home_action(http, user="U1", action={"type": "users_select", "action_id": ui.PICK_ACTION, "selected_user": "U3"})
    assert route(store) == [{"user_id": "U1", "route_to": "U3"}]
    assert "Now: to <@U3>" in published(fake_slack)
    home_action(http, user="U1", action={"type": "users_select", "action_id": ui.PICK_ACTION,
                                         "selected_user": "UBOTX"})  # fmt: skip
    assert route(store) == [{"user_id": "U1", "route_to": "U3"}]
    assert "is a bot" in published(fake_slack)
    home_action(http, user="U1", action={"type": "users_select", "action_id": ui.PICK_ACTION, "selected_user": "U1"})
    assert "own backup" in published(fake_slack)
    home_action(http, user="U1", action={"type": "button", "action_id": ui.ME_ACTION, "value": ui.ME_ACTION})
    assert route(store) == [{"user_id": "U1", "route_to": "me"}]
    home_action(http, user="U1", action={"type": "button", "action_id": ui.OFF_ACTION, "value": ui.OFF_ACTION})
    assert route(store) == []


def test_a_malformed_home_pick_changes_nothing(people, http, store, fake_slack):
    for selected in (None, 42, ["U3"], "not an id!"):
        home_action(http, user="U1", action={"type": "users_select", "action_id": ui.PICK_ACTION,
                                             "selected_user": selected})  # fmt: skip
    assert route(store) == []


def test_the_link_button_in_a_notice_is_acknowledged(people, http, fake_slack):
    response = http.message_button(user="U3", action_id="urgent_dm_sender", value="", channel="DU3",
                                   response_url=fake_slack.base_url + "response_url")  # fmt: skip
    assert response.status == 200


def test_the_auto_reply_is_updated_only_once_the_notice_is_settled(people, http, senders, clock, store, fake_slack,
                                                                    monkeypatch):  # fmt: skip
    # The update takes two more Web API calls: made after settling, they cannot outlast the notice's lease.
    urgent(http, "<@U3>")
    reply = button(dm_and_reply(http, senders, clock))
    submit(http, user="U2", reply_id=reply["value"], note="prod is down")
    seen: list[str] = []
    read_thread = fake_slack._conversations_replies

    def watched(token, params):
        seen.extend(r["state"] for r in rows(store, schema.urgent_notices))
        return read_thread(token, params)

    monkeypatch.setattr(fake_slack, "_conversations_replies", watched)
    assert senders["urgent"].drain(now=clock()) == 1
    assert seen == ["sent"] and len(fake_slack.calls_to("chat.update")) == 1


def test_a_failed_update_of_the_auto_reply_does_not_touch_the_notice(people, http, senders, clock, store, fake_slack):
    urgent(http, "<@U3>")
    reply = button(dm_and_reply(http, senders, clock))
    submit(http, user="U2", reply_id=reply["value"], note="hello")
    fake_slack.fail("chat.update", error="cant_update_message")
    assert senders["urgent"].drain(now=clock()) == 1
    assert len(notices_to(fake_slack, "U3")) == 1
    assert rows(store, schema.urgent_notices)[0]["state"] == "sent"


def test_an_ephemeral_auto_reply_carries_the_button_too(make_app, store, fake_slack, clock):
    from dataclasses import replace

    from bot.config import Config
    from tests.support.helpers import RunningServer

    app = make_app(reply=replace(Config().reply, mode="ephemeral"))
    connect(store, fake_slack, "U1", now=clock())
    app.services.people.ensure("T1", "U1", profile_tz="America/New_York")
    store.urgent.set_route("T1", "U1", "U3", now=clock())
    server = RunningServer(app)
    sender = ReplySender(app.services)
    try:
        assert SlackHTTP(server.url).dm(sender="U2", recipient="U1", ts=clock().timestamp()).status == 200
        assert sender.drain(now=clock()) == 1
    finally:
        sender.stop(timeout=5)
        server.close()
    [posted] = fake_slack.calls_to("chat.postEphemeral")
    assert button(posted.params) is not None


def test_the_backup_writing_to_the_person_is_not_sent_their_own_note(people, http, senders, clock, fake_slack):
    urgent(http, "<@U2>")
    reply = button(dm_and_reply(http, senders, clock, sender="U2"))
    click(http, fake_slack, user="U2", value=reply["value"])
    assert fake_slack.calls_to("views.open") == []
    assert "You are <@U1>'s backup" in told(fake_slack)[-1]


def test_people_of_another_organisation_get_no_button(make_app, store, fake_slack, clock):
    from dataclasses import replace

    from bot.config import Config
    from tests.support.helpers import RunningServer

    app = make_app(reply=replace(Config().reply, external="same"))
    connect(store, fake_slack, "U1", now=clock())
    app.services.people.ensure("T1", "U1", profile_tz="America/New_York")
    store.urgent.set_route("T1", "U1", "U3", now=clock())
    server = RunningServer(app)
    sender = ReplySender(app.services)
    try:
        response = SlackHTTP(server.url).dm(sender="U2", recipient="U1", ts=clock().timestamp(), user_team="TOTHER")
        assert response.status == 200
        assert sender.drain(now=clock()) == 1
    finally:
        sender.stop(timeout=5)
        server.close()
    [posted] = fake_slack.calls_to("chat.postMessage")
    assert button(posted.params) is None


def test_the_recap_says_a_note_sent_to_the_person_was_sent_to_them(people, http, senders, clock, fake_slack):
    from datetime import UTC, datetime

    from bot.workers.recaps import RecapSender

    urgent(http, "me")
    reply = button(dm_and_reply(http, senders, clock, sender="U2"))
    submit(http, user="U2", reply_id=reply["value"], note="call me")
    senders["urgent"].drain(now=clock())
    clock.set(datetime(2026, 3, 4, 14, 0, tzinfo=UTC))
    assert RecapSender(people.services).tick(clock()) == 1
    [recap] = [c.params for c in fake_slack.calls_to("chat.postMessage") if c.params.get("channel") == "U1"]
    assert ":rotating_light: *Urgent* (sent to you) · <@U2>" in block_text(recap["blocks"])


def test_a_note_that_failed_for_good_can_be_sent_again_and_the_recap_says_so(people, http, senders, clock, store,
                                                                            fake_slack):  # fmt: skip
    from datetime import UTC, datetime

    from bot.workers.recaps import RecapSender

    urgent(http, "<@U3>")
    reply = button(dm_and_reply(http, senders, clock, sender="U2"))
    assert "Passed on" in json.dumps(submit(http, user="U2", reply_id=reply["value"], note="prod is down"))
    fake_slack.fail("chat.postMessage", error="cannot_dm_bot")  # Slack refuses the notice for good
    assert senders["urgent"].drain(now=clock()) == 0
    assert [r["state"] for r in rows(store, schema.urgent_notices)] == ["failed"]

    # The sender is not told it was passed on: the button opens the form again, and a new note is queued.
    click(http, fake_slack, user="U2", value=reply["value"])
    assert len(fake_slack.calls_to("views.open")) == 1 and told(fake_slack) == []
    again = submit(http, user="U2", reply_id=reply["value"], note="prod is still down")
    assert "Passed on to <@U3>" in json.dumps(again["view"])
    [notice] = rows(store, schema.urgent_notices)
    assert (notice["state"], notice["note"], notice["last_error"]) == ("pending", "prod is still down", None)
    fake_slack.fail("chat.postMessage", error="cannot_dm_bot")
    assert senders["urgent"].drain(now=clock()) == 0

    # Nothing is lost: the person's recap lists the conversation as urgent, and says the note did not get through.
    clock.set(datetime(2026, 3, 4, 14, 0, tzinfo=UTC))
    assert RecapSender(people.services).tick(clock()) == 1
    [recap] = [c.params for c in fake_slack.calls_to("chat.postMessage") if c.params.get("channel") == "U1"]
    assert ":rotating_light: *Urgent* (could not be passed on) · <@U2>" in block_text(recap["blocks"])
