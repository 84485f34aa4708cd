"""/hours over signed HTTP: every subcommand, every class of bad input, and the not-connected answer.

The clock is Tuesday 2026-03-03 22:00 in New York (03:00 UTC on the 4th): U1 is connected, with the default
hours (Mon–Fri 09:00–17:30), so they are off until Wednesday 09:00.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from bot.slack.profiles import RETRY_FAILED_AFTER
from bot.storage import db
from tests.support.fakeslack import FakeSlack
from tests.support.helpers import block_text, connect, person_snapshot, rows, table_count
from tests.support.slackhttp import SlackHTTP


@dataclass
class Answer:
    text: str  # everything the person sees: the blocks' text (and the fallback text)
    body: dict


@pytest.fixture
def hours(slack: SlackHTTP, store, fake_slack: FakeSlack):
    """hours("set mon-fri 9-17") -> the ephemeral Answer U1 sees (U1 is connected)."""
    connect(store, fake_slack, "U1", tz="America/New_York")

    def send(text: str, *, user: str = "U1") -> Answer:
        response = slack.command(text, user=user)
        assert response.status == 200, response.text
        body = response.json
        assert body.get("response_type") == "ephemeral", body
        return Answer(text=block_text(body.get("blocks") or []) + "\n" + body.get("text", ""), body=body)

    return send


@pytest.fixture
def row(store):
    """row() -> U1's people row as stored, every column."""
    return lambda user="U1": person_snapshot(store, user)


# --- show ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "show", "  SHOW  "])
def test_show_tells_status_schedule_zone_reply_time_preview_days_off_and_connection(hours, text):
    answer = hours(text)
    assert "*Off*" in answer.text
    assert "back Wed 09:00" in answer.text
    assert "Mon–Fri 09:00–17:30" in answer.text
    assert "America/New_York" in answer.text  # the Slack profile zone, from users.info
    assert "4 h" in answer.text  # the default expected response time
    assert "*Days off:* none" in answer.text
    assert "*Auto-replies:* on" in answer.text
    assert "*DMs:* connected" in answer.text
    assert "Hi <@U1>, thanks for your message!" in answer.text  # the message preview


def test_a_connected_person_without_a_row_gets_one_with_their_profile_zone(hours, row, store, fake_slack):
    # e.g. the connect callback could not reach users.info: the first command creates the row instead.
    with store.engine.begin() as conn:
        conn.execute(db.people.delete())
    hours("show")
    assert row()["tz"] == "America/New_York"
    [call] = fake_slack.calls_to("users.info")
    assert call.params["user"] == "U1"
    assert call.token == "xoxb-T1"


def test_show_while_working_says_until_when(hours, clock):
    clock.advance(hours=12)  # Wednesday 10:00 in New York
    answer = hours("show")
    assert "*Working* until Wed 17:30" in answer.text


# --- set / tz / message / reply -----------------------------------------------------------------------


def test_set_hours_saves_them_in_canonical_form(hours, row):
    answer = hours("set mon-thu 9-17:30; fri 9am-1pm")
    assert "Mon–Thu 09:00–17:30 · Fri 09:00–13:00" in answer.text
    assert row()["hours"] == "Mon–Thu 09:00–17:30 · Fri 09:00–13:00"
    assert "Mon–Thu 09:00–17:30 · Fri 09:00–13:00" in hours("show").text


def test_tz_changes_the_zone(hours, row):
    answer = hours("tz Europe/Rome")
    assert "Europe/Rome" in answer.text
    assert row()["tz"] == "Europe/Rome"
    # 04:00 on Wednesday in Rome: still off, back at 09:00 Rome time.
    assert "back Wed 09:00 (in 5 h)" in hours("show").text


def test_message_sets_the_template_and_previews_it(hours, row):
    answer = hours("message Off now, back {back_at}. Ping {user} later.")
    assert row()["message"] == "Off now, back {back_at}. Ping {user} later."
    assert "Off now, back Wed 09:00. Ping <@U1> later." in answer.text


def test_message_reset_restores_the_default(hours, row):
    hours("message Gone fishing until {back_at}.")
    answer = hours("message reset")
    assert "default" in answer.text
    assert row()["message"] is None
    assert "thanks for your message" in hours("preview").text


def test_reply_sets_the_expected_response_time(hours, row):
    answer = hours("reply 2h")
    assert "2 h" in answer.text
    assert row()["reply_within_s"] == 7200
    assert "*Reply time once back:* 2 h" in hours("show").text


# --- days off -----------------------------------------------------------------------------------------


def test_off_one_date(hours, row):
    answer = hours("off 2026-03-10")
    assert "2026-03-10" in answer.text
    assert row()["days_off"] == "2026-03-10..2026-03-10"


def test_off_a_range(hours, row):
    answer = hours("off 2026-12-24..2027-01-02")
    assert "2026-12-24 → 2027-01-02" in answer.text
    assert row()["days_off"] == "2026-12-24..2027-01-02"


def test_off_today_in_the_persons_zone_is_accepted_and_shown(hours, row):
    # 22:00 on the 3rd in New York is already the 4th in UTC: "today" is the person's local date.
    hours("off 2026-03-03")
    assert row()["days_off"] == "2026-03-03..2026-03-03"
    assert "*Days off:* 2026-03-03" in hours("show").text


def test_off_list_shows_upcoming_days_off(hours, row):
    hours("off 2026-12-24..2027-01-02")
    hours("off 2026-03-10")
    before = row()
    answer = hours("off list")
    assert "Your days off: 2026-03-10, 2026-12-24 → 2027-01-02" in answer.text
    assert row() == before  # listing changes nothing


def test_off_list_when_none(hours):
    assert "none planned" in hours("off list").text


def test_off_clear_removes_all_days_off(hours, row):
    hours("off 2026-03-10")
    answer = hours("off clear")
    assert "cleared" in answer.text
    assert row()["days_off"] == ""


def test_a_day_off_today_makes_show_say_off_until_after_it(hours, clock):
    clock.advance(hours=12)  # Wednesday 10:00: working
    hours("off 2026-03-04")
    answer = hours("show")
    assert "*Off*" in answer.text
    assert "back Thu 09:00" in answer.text


# --- pause / resume / preview / help ------------------------------------------------------------------


def test_pause_and_resume(hours, row):
    answer = hours("pause")
    assert "paused" in answer.text
    assert row()["paused"] is True
    assert "*Auto-replies:* paused" in hours("show").text
    answer = hours("resume")
    assert "back on" in answer.text
    assert row()["paused"] is False


def test_preview_while_off_is_what_a_sender_would_get_now(hours):
    hours("message Back {back_at}, in {back_in}; I answer by {reply_by}.")
    answer = hours("preview")
    assert "right now" in answer.text
    assert "Back Wed 09:00, in 11 h; I answer by Wed 13:00." in answer.text


def test_preview_shows_back_at_sender_as_a_slack_date(hours, fake_slack):
    hours("message Back {back_at} my time, {back_at_sender}.")
    answer = hours("preview")
    token = "<!date^1772632800^{date_short_pretty} at {time}|Wed 09:00 UTC-05:00>"  # Wed 09:00 EST = 14:00 UTC
    assert f"Back Wed 09:00 my time, {token} your time." in answer.text
    assert fake_slack.calls_to("users.info") == []


def test_preview_while_working_is_what_a_sender_gets_at_the_next_off_time(hours, clock):
    clock.advance(hours=12)  # Wednesday 10:00 New York, working until 17:30
    hours("message Back {back_at}.")
    answer = hours("preview")
    assert "next off time" in answer.text
    assert "Back Thu 09:00." in answer.text


def test_help_lists_every_subcommand(hours):
    answer = hours("help")
    for usage in (
        "/hours set",
        "/hours tz",
        "/hours message",
        "/hours reply",
        "/hours off",
        "pause",
        "resume",
        "/hours preview",
        "/hours forget",
    ):
        assert usage in answer.text
    assert "{back_at}" in answer.text


def test_commands_answer_in_the_ack_without_posting(hours, fake_slack):
    hours("show")
    hours("set mon-fri 9-17")
    posted = [c.method for c in fake_slack.calls if c.method.startswith("chat.")]
    assert posted == []


# --- forget -------------------------------------------------------------------------------------------


def test_forget_revokes_the_token_and_deletes_everything(hours, row, store, fake_slack):
    hours("set mon-fri 9-17")
    answer = hours("forget")
    assert "deleted" in answer.text
    [revoke] = fake_slack.calls_to("auth.revoke")
    assert revoke.token == "xoxp-T1-U1"
    assert row() is None
    assert store.user_token("T1", "U1") is None
    assert table_count(store, db.installations, user_id="U1") == 0
    # Afterwards they are a stranger again: every command answers with the connect link.
    assert "/slack/install" in hours("show").text


def test_forget_with_words_after_it_forgets_nothing(hours, row, store, fake_slack):
    hours("set mon-fri 9-17")
    before = row()
    answer = hours("forget my vacation")  # meant `/hours off`, say: deleting everything would be a bad guess
    assert "takes nothing after it" in answer.text
    assert fake_slack.calls_to("auth.revoke") == []
    assert row() == before
    assert store.user_token("T1", "U1") == "xoxp-T1-U1"


@pytest.mark.parametrize("failure", [{"error": "invalid_auth"}, {"status": 500}, {"disconnect": True, "times": 2}])
def test_forget_deletes_everything_even_when_slack_fails_to_revoke(hours, row, store, fake_slack, failure):
    fake_slack.fail("auth.revoke", **failure)
    answer = hours("forget")
    assert "deleted" in answer.text
    assert row() is None
    assert store.user_token("T1", "U1") is None


@pytest.mark.parametrize("failure", [{"status": 500}, {"disconnect": True, "times": 2}, {"error": "ratelimited"}])
def test_forget_says_so_when_slack_did_not_confirm_the_disconnection(hours, fake_slack, failure):
    fake_slack.fail("auth.revoke", **failure)
    answer = hours("forget")
    assert "disconnected your DMs" not in answer.text  # not claimed: the token may still be valid at Slack
    assert "Slack did not confirm" in answer.text and "Revoke" in answer.text


def test_forget_with_a_token_slack_already_refuses_says_disconnected(hours, fake_slack):
    fake_slack.fail("auth.revoke", error="invalid_auth")  # nothing left to revoke at Slack
    assert "disconnected your DMs" in hours("forget").text


def test_clicking_connect_in_a_command_answer_is_acknowledged(hours, slack, store):
    answer = slack.command("show", user="U7")  # not connected: the answer holds the connect button
    [button] = [b["accessory"] for b in answer.json["blocks"] if b.get("accessory", {}).get("url")]
    payload = {"type": "block_actions", "team": {"id": "T1"}, "user": {"id": "U7", "team_id": "T1"},
               "api_app_id": "A1", "container": {"type": "message"}, "trigger_id": "1.2",
               "actions": [{"type": "button", "action_id": button["action_id"], "block_id": "b",
                            "action_ts": "1772593200.1"}]}  # fmt: skip
    assert slack.interaction(payload).status == 200  # was a 404: no listener for the button's action id


@pytest.mark.parametrize("failure", [{"error": "user_not_found"}, {"disconnect": True, "times": 2}])
def test_an_unreachable_profile_gives_the_fallback_zone_not_an_error(hours, row, store, fake_slack, failure):
    with store.engine.begin() as conn:
        conn.execute(db.people.delete())
    fake_slack.fail("users.info", **failure)
    answer = hours("show")
    assert "*Time zone:* UTC" in answer.text
    assert row()["tz"] is None  # nothing guessed is stored: the profile zone can still be learnt later


def forget_zone(store, fake_slack: FakeSlack, hours, failure: dict, clock) -> None:
    """U1's first /hours meets a users.info failure: their row is created with no zone (the fallback applies).
    Then the clock moves past the time a failed lookup is remembered, so the next contact asks Slack again."""
    with store.engine.begin() as conn:
        conn.execute(db.people.delete())
    fake_slack.fail("users.info", **failure)
    assert "*Time zone:* UTC" in hours("show").text
    assert person_snapshot(store, "U1")["tz"] is None
    clock.advance(seconds=RETRY_FAILED_AFTER.total_seconds())


def test_a_failed_profile_lookup_is_not_repeated_inside_every_ack_while_slack_is_in_trouble(
    hours, row, store, fake_slack, clock
):
    with store.engine.begin() as conn:
        conn.execute(db.people.delete())
    fake_slack.fail("users.info", disconnect=True)
    hours("show")
    for _ in range(3):
        clock.advance(minutes=4)
        assert "*Time zone:* UTC" in hours("show").text
    assert len(fake_slack.calls_to("users.info")) == 1  # not asked again for 15 minutes
    clock.advance(minutes=4)  # 16 minutes after the failure
    assert "*Time zone:* America/New_York" in hours("show").text
    assert len(fake_slack.calls_to("users.info")) == 2


@pytest.mark.parametrize("text", ["tz Europe/Rome", "forget", "help"])
def test_no_profile_lookup_for_a_zone_about_to_be_chosen_data_about_to_go_or_help(hours, store, fake_slack, text):
    with store.engine.begin() as conn:
        conn.execute(db.people.delete())
    hours(text)
    assert fake_slack.calls_to("users.info") == []


# One disconnect is one failed command: the client inside the ack does not retry.
@pytest.mark.parametrize("failure", [{"error": "user_not_found"}, {"disconnect": True}])
def test_a_profile_zone_that_could_not_be_learnt_is_learnt_on_the_next_command(
    hours, row, store, fake_slack, failure, clock
):
    forget_zone(store, fake_slack, hours, failure, clock)
    fake_slack.wait_for("views.publish")  # the Home refresh for the new row
    fake_slack.reset_calls()
    answer = hours("show")  # Slack answers this time
    assert "*Time zone:* America/New_York" in answer.text
    assert row()["tz"] == "America/New_York"
    [call] = fake_slack.calls_to("users.info")
    assert (call.params["user"], call.token) == ("U1", "xoxb-T1")
    # Learning the zone is a change like any other: the Home tab follows it.
    [publish] = fake_slack.wait_for("views.publish")
    assert "America/New_York" in block_text(publish.params["view"]["blocks"])


def test_a_zone_the_person_chose_is_never_replaced_nor_looked_up(hours, row, store, fake_slack, clock):
    forget_zone(store, fake_slack, hours, {"error": "user_not_found"}, clock)
    hours("tz Europe/Rome")
    clock.advance(days=2)  # no fresh cached profile either: only the known zone keeps Slack from being asked
    fake_slack.reset_calls()
    for text in ("show", "set mon-fri 8-16", "preview"):
        hours(text)
    assert fake_slack.calls_to("users.info") == []
    assert row()["tz"] == "Europe/Rome"
    assert "*Time zone:* Europe/Rome" in hours("show").text


def test_a_zone_chosen_while_the_profile_is_being_looked_up_is_kept(hours, row, store, fake_slack, clock):
    forget_zone(store, fake_slack, hours, {"error": "user_not_found"}, clock)
    fake_slack.fail("users.info", delay=1.0)  # a slow (but successful) answer: America/New_York
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(hours, "show")
        fake_slack.wait_for("users.info", 2)  # the lookup has started...
        hours("tz Europe/Rome")  # ...and the person sets their zone before it ends
        first.result()
    assert row()["tz"] == "Europe/Rome"  # the profile zone filled nothing: a zone was set meanwhile
    assert "*Time zone:* Europe/Rome" in hours("show").text


@pytest.mark.parametrize("first_contact", [True, False], ids=["first-contact", "zone-unknown"])
def test_forget_during_a_slow_profile_lookup_leaves_nothing_behind(hours, store, fake_slack, clock, first_contact):
    """`/hours forget` completes while an earlier command still waits for users.info: whatever that command learns
    afterwards is not written for a person who asked to be forgotten (no settings row, no cached profile)."""
    if first_contact:
        with store.engine.begin() as conn:
            conn.execute(db.people.delete())
    else:
        forget_zone(store, fake_slack, hours, {"error": "user_not_found"}, clock)
    fake_slack.fail("users.info", delay=1.0)  # a slow (but successful) answer
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(hours, "show")
        fake_slack.wait_for("users.info", 1 if first_contact else 2)  # the lookup has started...
        assert "deleted" in hours("forget").text  # ...and the person is forgotten before it ends
        first.result()
    assert person_snapshot(store, "U1") is None
    assert rows(store, db.profiles) == []
    assert store.user_token("T1", "U1") is None


@pytest.mark.parametrize("profile_tz", ["Mars/Olympus", None], ids=["unknown-zone", "no-zone"])
def test_a_profile_zone_offhours_cannot_use_stays_unknown_without_an_error(
    hours, row, store, fake_slack, profile_tz, clock
):
    forget_zone(store, fake_slack, hours, {"error": "user_not_found"}, clock)
    fake_slack.add_user("U1", tz=profile_tz)
    answer = hours("show")
    assert len(fake_slack.calls_to("users.info")) == 2  # asked again, as the zone is still unknown
    assert ":warning:" not in answer.text
    assert "*Time zone:* UTC" in answer.text
    assert row()["tz"] is None
    hours("show")
    assert len(fake_slack.calls_to("users.info")) == 2  # that answer is cached: Slack is not asked every time


def test_forget_keeps_the_workspace_install_for_everyone_else(hours, store, fake_slack):
    connect(store, fake_slack, "U2")
    hours("forget")
    assert store.user_token("T1", "U2") == "xoxp-T1-U2"
    assert store.bot_token("T1") == "xoxb-T1"
    assert "Mon–Fri" in hours("show", user="U2").text


# --- unknown and missing ------------------------------------------------------------------------------


def test_unknown_subcommand_suggests_the_closest(hours, row):
    hours("show")
    before = row()
    answer = hours("stet mon-fri 9-17")
    assert "`stet` is not something /hours knows" in answer.text
    assert "did you mean `/hours set`" in answer.text
    assert row() == before


def test_unknown_subcommand_without_a_close_match_points_to_help(hours):
    answer = hours("xyzzy")
    assert "/hours help" in answer.text


# --- bad input: an explanation with an example, and nothing changes -----------------------------------

BAD_INPUT = [
    # (command text, something the explanation must say, an example it must show)
    ("set", "needs a value", "/hours set mon-thu 9-17:30; fri 9am-1pm"),
    ("set mon-fri 25-26", "25 is not a time", "/hours set "),
    ("set whenever", "not a day", "mon-thu 9-17:30"),
    ("set mon-fri", "no times", "mon-thu 9-17:30"),
    ("tz", "needs a value", "/hours tz Europe/Rome"),
    ("tz Europe/Rom", "did you mean Europe/Rome", "/hours tz "),
    ("tz Mars/Olympus", "not a time zone", "Europe/Rome"),
    ("message", "needs a value", "/hours message Hi {sender}"),
    ("message Hi {nme}!", "{nme} is not a known placeholder", "/hours message "),
    ("message Hi {user.__class__}", "attribute access", "/hours message "),
    ("message Hi {sender[0]}", "indexing", "/hours message "),
    ("message Hi {sender", "never closed", "/hours message "),
    ("message " + "x" * 3001, "the limit is 3,000", "/hours message "),
    ("reply", "needs a value", "/hours reply 2h"),
    ("reply soon", "not a duration", "2h"),
    ("reply 0m", "out of range", "2h"),
    ("reply 30d", "out of range", "2h"),
    ("off", "needs a value", "/hours off 2026-12-24..2027-01-02"),
    ("off 2026-02-30", "not a date", "2026-12-24"),
    ("off tomorrow", "not a date", "2026-12-24"),
    ("off 2026-03-10..2026-03-05", "write the earlier date first", "2026-12-24..2027-01-02"),
    ("off 2026-03-10..2030-03-05", "longer than 366 days", "2026-12-24..2027-01-02"),
    ("off 2026-03-02", "already over", "2026-03-04"),
    ("off 2026-02-20..2026-03-02", "already over", "2026-03-04"),
    ("pause until monday", "takes nothing after it", "`/hours pause`"),
    ("resume now", "takes nothing after it", "`/hours resume`"),
    ("preview tomorrow", "takes nothing after it", "`/hours preview`"),
    ("show all", "takes nothing after it", "`/hours show`"),
    ("forget tz", "takes nothing after it", "`/hours forget`"),
]


@pytest.mark.parametrize(("text", "explains", "example"), BAD_INPUT, ids=[case[0][:40] for case in BAD_INPUT])
def test_bad_input_is_explained_with_an_example_and_changes_nothing(hours, row, store, clock, text, explains, example):
    # Every setting already has a value of the person's own, so that any change at all would show.
    store.save_person(
        "T1",
        "U1",
        now=clock(),
        tz="Europe/Berlin",
        hours="Mon–Fri 08:00–16:00",
        message="Away until {back_at}.",
        reply_within_s=3600,
        days_off="2026-04-01..2026-04-01",
    )
    before = row()
    answer = hours(text)
    assert ":warning:" in answer.text
    assert explains in answer.text
    assert example in answer.text
    assert row() == before


def test_bad_input_before_the_person_has_a_row_creates_nothing_but_the_row(hours, row, store):
    with store.engine.begin() as conn:
        conn.execute(db.people.delete())
    hours("set nonsense")
    created = row()
    assert created is not None  # first contact: the row with the profile zone, nothing else
    assert (created["hours"], created["message"], created["reply_within_s"], created["days_off"]) == (
        None,
        None,
        None,
        "",
    )


def test_the_same_day_off_twice_is_refused(hours, row):
    hours("off 2026-03-10")
    before = row()
    answer = hours("off 2026-03-10")
    assert "already in your days off" in answer.text
    assert row() == before


def test_bad_input_is_never_a_server_error(slack, store, fake_slack):
    connect(store, fake_slack, "U1")
    for text in [
        "set \x00",
        "tz ../../etc/passwd",
        "message {" * 50,
        "off 9999-12-31..9999-12-31",
        "reply 1e308h",
        "off " + "9" * 500,
        "set " + "mon-fri 9-17; " * 500,
    ]:
        response = slack.command(text, user="U1")
        assert response.status == 200, (text[:40], response.text)
        assert response.json["response_type"] == "ephemeral"


# --- not connected ------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "show", "help", "set mon-fri 9-17", "tz Europe/Rome", "forget", "xyzzy"])
def test_a_person_who_has_not_connected_gets_the_connect_link_whatever_they_type(hours, row, fake_slack, text):
    answer = hours(text, user="U2")
    assert "can't see your direct messages yet" in answer.text
    assert "/slack/install" in answer.text
    assert row("U2") is None  # nothing stored for them
    assert fake_slack.calls_to("auth.revoke") == []


def test_the_connect_link_uses_the_configured_public_url(make_app, store, fake_slack, settings):
    from dataclasses import replace

    from tests.support.helpers import RunningServer

    app = make_app()
    app.services.settings = replace(settings, base_url="https://offhours.example.com")
    running = RunningServer(app)
    try:
        connect(store, fake_slack, "U1")
        response = SlackHTTP(running.url).command("show", user="U2")
    finally:
        running.close()
    assert "https://offhours.example.com/slack/install" in block_text(response.json["blocks"])
