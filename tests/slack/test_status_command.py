"""`/hours status …`, `/hours show` and `/hours forget` for status sync, over signed HTTP, with the status worker
driven on the injected clock against the fake Slack's users.profile.get/set.

The clock starts on Tue 3 Mar 2026 22:00 in New York (off; back Wed 09:00 EST = 14:00 UTC).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlparse

import pytest

from bot.domain.status import StatusChoice
from bot.storage import schema
from bot.workers.status import StatusSync
from tests.support.fakeslack import FakeSlack
from tests.support.helpers import block_text, connect, rows
from tests.support.oauth import BOT_TOKEN, oauth_answer, redirect, start_install
from tests.support.slackhttp import SlackHTTP

SCOPES = "im:history,chat:write,users.profile:read,users.profile:write"
BACK = datetime(2026, 3, 4, 14, 0, tzinfo=UTC)  # Wed 09:00 EST


@dataclass
class Answer:
    text: str
    body: dict


@pytest.fixture
def hours(slack: SlackHTTP):
    def send(text: str, *, user: str = "U1") -> Answer:
        response = slack.command(text, user=user)
        assert response.status == 200, response.text
        body = response.json
        return Answer(text=block_text(body.get("blocks") or []) + "\n" + body.get("text", ""), body=body)

    return send


@pytest.fixture
def sync(offhours, server) -> StatusSync:
    return StatusSync(offhours.services, workers=2)


@pytest.fixture
def granted(store, fake_slack, clock) -> str:
    return connect(store, fake_slack, "U1", user_scopes=SCOPES, now=clock())


def sets(fake: FakeSlack) -> list:
    return fake.calls_to("users.profile.set")


def test_status_is_off_by_default_and_show_says_how_to_turn_it_on(hours, granted, sync, fake_slack, clock):
    answer = hours("show")
    assert "Slack status: off" in answer.text.replace("*", "")
    assert "/hours status on" in answer.text
    sync.tick(clock())
    assert fake_slack.calls_to("users.profile.get") == []


def test_turning_it_on_without_the_scopes_tells_how_to_grant_them(hours, store, fake_slack, sync, clock, server):
    connect(store, fake_slack, "U1", now=clock())  # connected with the usual scopes only
    answer = hours("status on")
    assert "Status sync is on" in answer.text
    assert "users.profile:read" in answer.text and "users.profile:write" in answer.text
    assert "/slack/install?scopes=status&team=T1|Grant access" in answer.text
    # Nothing is asked of Slack for someone whose token lacks the scopes, and nothing is recorded as failed.
    sync.tick(clock())
    assert fake_slack.calls_to("users.profile.get") == []
    assert "Grant access" in hours("show").text


def test_the_grant_link_asks_slack_for_the_status_scopes_and_what_slack_granted_is_stored(
    server, store, fake_slack, hours
):
    fake_slack.add_user("U1", tz="America/New_York")
    fake_slack.tokens[BOT_TOKEN] = {"team_id": "T1", "user_id": "UBOT", "bot_id": "B1"}
    install = start_install(server.url, "?scopes=status&team=T1")
    user_scope = parse_qs(urlparse(install.authorize_url).query)["user_scope"][0].split(",")
    assert set(user_scope) == {"im:history", "chat:write", "users.profile:read", "users.profile:write"}
    # The usual link asks for no more than before.
    plain = parse_qs(urlparse(start_install(server.url).authorize_url).query)["user_scope"][0].split(",")
    assert set(plain) == {"im:history", "chat:write"}
    answer = oauth_answer("U1", with_bot=True)
    answer["authed_user"]["scope"] = SCOPES  # Slack answers with everything granted so far
    fake_slack.oauth_codes["code-s"] = answer
    assert redirect(server.url, cookie=install.cookie, code="code-s", state=install.state).status == 200
    assert store.status.granted_scopes("T1", "U1") == set(SCOPES.split(","))
    fake_slack.tokens["xoxp-oauth-U1"] = {"team_id": "T1", "user_id": "U1"}
    assert "Grant access" not in hours("status on").text


def test_on_shows_the_next_status_and_the_tick_sets_it(hours, granted, sync, fake_slack, clock):
    answer = hours("status on")
    assert "next: :crescent_moon: Off the clock — back Wed 09:00" in answer.text
    assert "Grant access" not in answer.text
    assert "next: :crescent_moon: Off the clock — back Wed 09:00" in hours("show").text
    assert sync.tick(clock()) == 1
    assert fake_slack.status_of("U1") == {
        "status_text": "Off the clock — back Wed 09:00",
        "status_emoji": ":crescent_moon:",
        "status_expiration": int(BACK.timestamp()),
    }


def test_text_and_emoji_are_validated_and_followed_within_the_window(hours, granted, sync, fake_slack, clock):
    hours("status on")
    sync.tick(clock())
    refused = hours("status text " + "x" * 101)
    assert "at most 100 characters" in refused.text
    assert "not an emoji" in hours("status emoji palm").text
    assert (
        "unknown" in hours("status text back {bak_at}").text.lower()
        or "bak_at" in hours("status text back {bak_at}").text
    )
    assert "next: :palm_tree: Gone fishing until {back_at}".replace("{back_at}", "Wed 09:00") in (
        hours("status text Gone fishing until {back_at}").text + hours("status emoji :palm_tree:").text
    )
    assert sync.tick(clock() + timedelta(minutes=1)) == 1
    assert fake_slack.status_of("U1")["status_text"] == "Gone fishing until Wed 09:00"
    assert fake_slack.status_of("U1")["status_emoji"] == ":palm_tree:"
    assert len(sets(fake_slack)) == 2


def test_a_template_longer_than_what_is_stored_or_with_a_nul_is_refused(hours, granted, store):
    hours("status on")
    # `{sender}` renders empty in a status: short once rendered, but the template is stored as typed.
    long = hours("status text Off " + "{sender}" * 60)
    assert "at most 400 characters" in long.text
    assert "NUL" in hours("status text Off\x00 duty").text
    assert (store.status.choice("T1", "U1") or StatusChoice()).text is None
    assert "Off duty" in hours("status text Off duty").text


def test_status_off_clears_offhours_status_within_one_tick(hours, granted, sync, fake_slack, clock):
    hours("status on")
    sync.tick(clock())
    hours("status off")
    assert sync.tick(clock() + timedelta(seconds=30)) == 1
    assert fake_slack.status_of("U1")["status_text"] == ""
    assert sync.tick(clock() + timedelta(minutes=1)) == 0
    assert len(sets(fake_slack)) == 2


def test_pause_clears_it_and_resume_sets_it_again(hours, granted, sync, fake_slack, clock):
    hours("status on")
    sync.tick(clock())
    hours("pause")
    sync.tick(clock() + timedelta(seconds=30))
    assert fake_slack.status_of("U1")["status_text"] == ""
    hours("resume")
    sync.tick(clock() + timedelta(seconds=60))
    assert fake_slack.status_of("U1")["status_text"] == "Off the clock — back Wed 09:00"


def test_a_change_of_hours_updates_or_clears_it(hours, granted, sync, fake_slack, clock):
    hours("status on")
    sync.tick(clock())
    hours("set mon-fri 7-17:30")  # back Wed 07:00 now: the status and its expiration follow
    sync.tick(clock() + timedelta(seconds=30))
    status = fake_slack.status_of("U1")
    assert status["status_text"] == "Off the clock — back Wed 07:00"
    assert status["status_expiration"] == int((BACK - timedelta(hours=2)).timestamp())
    hours("set mon-fri 9-23")  # working now: cleared
    sync.tick(clock() + timedelta(seconds=60))
    assert fake_slack.status_of("U1")["status_text"] == ""


def test_a_change_of_hours_leaves_a_status_the_person_set_meanwhile(hours, granted, sync, fake_slack, clock):
    hours("status on")
    sync.tick(clock())
    fake_slack.set_status("U1", "Sick", ":face_with_thermometer:")
    hours("set mon-fri 9-23")
    sync.tick(clock() + timedelta(seconds=30))
    assert fake_slack.status_of("U1")["status_text"] == "Sick"


def test_with_replace_a_status_set_before_the_window_moved_is_left_alone(hours, granted, sync, fake_slack, clock):
    hours("status on")
    hours("status replace on")
    sync.tick(clock())
    fake_slack.set_status("U1", "Dentist", ":tooth:")  # set during the window
    hours("off 2026-03-04")  # Wednesday off: the window now ends Thu 09:00
    assert sync.tick(clock() + timedelta(minutes=1)) == 1
    assert fake_slack.status_of("U1")["status_text"] == "Dentist"
    assert len(sets(fake_slack)) == 1


def test_forget_clears_offhours_status_before_the_token_goes(hours, granted, sync, fake_slack, clock, store):
    hours("status on")
    sync.tick(clock())
    assert "deleted" in hours("forget").text
    assert fake_slack.status_of("U1")["status_text"] == ""
    assert rows(store, schema.status_updates) == [] and rows(store, schema.status_prefs) == []


def test_forget_leaves_the_persons_own_status(hours, granted, sync, fake_slack, clock):
    hours("status on")
    fake_slack.set_status("U1", "Vacation", ":palm_tree:")
    sync.tick(clock())
    hours("forget")
    assert fake_slack.status_of("U1")["status_text"] == "Vacation"
    assert sets(fake_slack) == []


def test_forget_does_not_put_back_an_own_status_that_expired_meanwhile(hours, granted, sync, fake_slack, clock):
    hours("status on")
    hours("status replace on")
    fake_slack.set_status("U1", "Lunch", ":sandwich:", int((clock() + timedelta(hours=1)).timestamp()))
    sync.tick(clock())
    clock.set(clock() + timedelta(hours=2))  # the lunch status would have expired by now
    hours("forget")
    assert fake_slack.status_of("U1")["status_text"] == ""


def test_forget_answers_within_slacks_3_s_even_when_the_status_calls_are_slow(hours, granted, sync, fake_slack, clock):
    hours("status on")
    sync.tick(clock())
    fake_slack.fail("users.profile.get", delay=1.5)  # slow, but within the 2 s of a call before an ack
    fake_slack.fail("users.profile.set", delay=1.5)
    started = time.monotonic()
    assert "deleted" in hours("forget").text
    assert time.monotonic() - started < 3
    assert len(fake_slack.calls_to("auth.revoke")) == 1


def test_a_change_of_zone_or_days_off_moves_the_status_and_its_expiration(hours, granted, sync, fake_slack, clock):
    hours("status on")
    sync.tick(clock())
    hours("off 2026-03-04")  # Wednesday off: back Thu 09:00 EST
    sync.tick(clock() + timedelta(seconds=30))
    status = fake_slack.status_of("U1")
    assert status["status_text"] == "Off the clock — back Thu 09:00"
    assert status["status_expiration"] == int((BACK + timedelta(days=1)).timestamp())
    hours("off clear")
    hours("tz Europe/Rome")  # Wed 04:00 in Rome: back Wed 09:00 CET = 08:00 UTC
    sync.tick(clock() + timedelta(seconds=60))
    status = fake_slack.status_of("U1")
    assert status["status_text"] == "Off the clock — back Wed 09:00"
    assert status["status_expiration"] == int(datetime(2026, 3, 4, 8, 0, tzinfo=UTC).timestamp())


def test_show_tells_a_revoked_token(hours, granted, sync, fake_slack, clock):
    hours("status on")
    fake_slack.fail("users.profile.get", error="token_revoked")
    sync.tick(clock())
    assert "Slack refused your token when Offhours set your status (`token_revoked`)" in hours("show").text
