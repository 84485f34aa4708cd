"""`/hours dnd on|off`: notifications snoozed for the off window (dnd.setSnooze), moved or ended early when the
window changes (dnd.endSnooze), scopes asked only from people who turn it on — over signed HTTP against the fake
Slack, the worker on the injected clock (Tue 3 Mar 2026 22:00 in New York: off for 660 minutes, until Wed 09:00)."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pytest

from bot.workers.status import StatusSync
from tests.support.helpers import block_text, connect
from tests.support.oauth import start_install

SCOPES = "im:history,chat:write,dnd:write"


@pytest.fixture
def hours(slack):
    def send(text: str) -> str:
        response = slack.command(text, user="U1")
        assert response.status == 200, response.text
        return block_text(response.json.get("blocks") or []) + "\n" + response.json.get("text", "")

    return send


@pytest.fixture
def sync(offhours, server) -> StatusSync:
    return StatusSync(offhours.services, workers=1)


@pytest.fixture
def granted(store, fake_slack, clock) -> str:
    return connect(store, fake_slack, "U1", user_scopes=SCOPES, now=clock())


def snoozes(fake) -> list[int]:
    return [int(c.params["num_minutes"]) for c in fake.calls_to("dnd.setSnooze")]


def test_dnd_snoozes_notifications_until_the_window_ends_once(hours, granted, sync, fake_slack, clock):
    assert "Notifications: not snoozed" in hours("show").replace("*", "")
    assert "snoozed until you are back" in hours("dnd on")
    sync.tick(clock())
    assert snoozes(fake_slack) == [660]
    sync.tick(clock() + timedelta(minutes=5))
    assert snoozes(fake_slack) == [660]
    # Status sync stays off: no profile is read or written for DND alone.
    assert fake_slack.calls_to("users.profile.get") == []


def test_the_snooze_follows_a_longer_window_and_ends_early_with_a_shorter_one(hours, granted, sync, fake_slack, clock):
    hours("dnd on")
    sync.tick(clock())
    hours("off 2026-03-04")  # Wednesday off: back Thu 09:00, 24 h later
    sync.tick(clock() + timedelta(minutes=1))
    assert snoozes(fake_slack) == [660, 660 + 24 * 60 - 1]
    hours("off clear")
    hours("set mon-fri 9-23")  # working now: the snooze ends
    sync.tick(clock() + timedelta(minutes=2))
    assert len(fake_slack.calls_to("dnd.endSnooze")) == 1
    assert fake_slack.snoozes == {}


def test_dnd_off_ends_the_snooze_and_a_snooze_already_ended_is_fine(hours, granted, sync, fake_slack, clock):
    hours("dnd on")
    sync.tick(clock())
    fake_slack.snoozes.clear()  # the person ended it themselves
    hours("dnd off")
    sync.tick(clock() + timedelta(minutes=1))
    assert len(fake_slack.calls_to("dnd.endSnooze")) == 1
    sync.tick(clock() + timedelta(minutes=2))
    assert len(fake_slack.calls_to("dnd.endSnooze")) == 1


def test_forget_ends_the_snooze_offhours_started(hours, granted, sync, fake_slack, clock):
    hours("dnd on")
    sync.tick(clock())
    assert "deleted" in hours("forget")
    assert len(fake_slack.calls_to("dnd.endSnooze")) == 1
    assert fake_slack.snoozes == {}


def test_the_end_of_a_snooze_still_queued_when_dnd_is_turned_back_on_is_not_sent(
    hours, granted, sync, fake_slack, clock
):
    hours("dnd on")
    sync.tick(clock())
    hours("dnd off")
    sync.plan(clock() + timedelta(minutes=1))  # the end of the snooze is recorded, not yet delivered...
    hours("dnd on")  # ...when the person turns DND back on
    sync.tick(clock() + timedelta(minutes=1))
    assert fake_slack.calls_to("dnd.endSnooze") == []
    assert fake_slack.snoozes != {}
    sync.tick(clock() + timedelta(minutes=2))
    assert snoozes(fake_slack) == [660]


def test_a_restart_snoozes_only_what_is_left_of_the_window(hours, granted, sync, fake_slack, clock):
    hours("dnd on")
    sync.plan(clock())  # recorded, then down for two hours
    sync.tick(clock() + timedelta(hours=2))
    assert snoozes(fake_slack) == [540]


def test_without_dnd_write_nothing_is_asked_and_the_person_is_told_how_to_grant_it(
    hours, store, fake_slack, sync, clock, server
):
    connect(store, fake_slack, "U1", now=clock())
    answer = hours("dnd on")
    assert "snooze your notifications yet: it needs `dnd:write`" in answer
    assert "/slack/install?scopes=status,dnd&team=T1|Grant access" in answer
    sync.tick(clock())
    assert fake_slack.calls_to("dnd.setSnooze") == []
    user_scope = parse_qs(urlparse(start_install(server.url, "?scopes=status,dnd&team=T1").authorize_url).query)
    assert "dnd:write" in user_scope["user_scope"][0].split(",")
