"""No setting can lock a person out: whatever `/hours` accepts is stored and read back, and a stored row Offhours
cannot use never makes a DM, `/hours` or the Home tab fail — the person can always `set` and `forget`.

Over signed HTTP, on SQLite and PostgreSQL. The clock is Tue 2026-03-03 22:00 in New York: U1 (connected) is off.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.domain.hours import MAX_DAYS_OFF_RUN
from bot.domain.hours.text import MAX_TEXT
from bot.slack.blocks import home as ui
from bot.storage import db
from tests.support.fakeslack import FakeSlack
from tests.support.helpers import block_text, connect, person_snapshot, rows
from tests.support.slackhttp import SlackHTTP

TS = 1772593200.0001  # 22:00 in New York


@pytest.fixture
def u1(store, fake_slack: FakeSlack) -> None:
    connect(store, fake_slack, "U1", tz="America/New_York")
    fake_slack.add_user("U2", tz="Europe/Rome")


def hours(slack: SlackHTTP, text: str) -> str:
    response = slack.command(text, user="U1")
    assert response.status == 200, (text[:60], response.status)
    body = response.json
    return block_text(body.get("blocks") or []) + "\n" + body.get("text", "")


def many_intervals() -> str:
    """Under 1,000 characters typed, every day with its own 14 short intervals: far longer written out."""
    return "; ".join(
        f"{day} " + " ".join(f"{h}-{h}:0{i + 1}" for h in range(14))
        for i, day in enumerate(["mon", "tue", "wed", "thu", "fri", "sat", "sun"])
    )


def test_hours_whose_written_out_form_is_too_long_are_refused_and_nothing_is_saved(slack, store, u1):
    spec = many_intervals()
    assert len(spec) <= MAX_TEXT  # accepted as typed before
    before = person_snapshot(store, "U1")
    seen = hours(slack, "set " + spec)
    assert seen.startswith(":warning:"), seen[:200]
    assert "characters written out" in seen and "fewer different intervals" in seen
    assert person_snapshot(store, "U1") == before


def test_the_longest_accepted_hours_are_stored_and_read_back(slack, store, u1):
    # Just under the limit written out: saved (PostgreSQL's varchar(1000) too) and shown back the same.
    spec = "; ".join(f"{d} " + " ".join(f"{h}-{h}:0{i + 1}" for h in range(10)) for i, d in enumerate(["mon", "tue"]))
    seen = hours(slack, "set " + spec)
    assert not seen.startswith(":warning:"), seen[:200]
    stored = person_snapshot(store, "U1")["hours"]
    assert stored.startswith("Mon 00:00–00:01, 01:00–01:01") and len(stored) <= MAX_TEXT
    assert "Tue 00:00–00:02, 01:00–01:02" in hours(slack, "show")


@pytest.fixture
def bad_row(store, u1):
    """U1's row holding values Offhours cannot read (written by an older version): hours, zone and days off."""

    def write(**fields) -> None:
        store.save_person("T1", "U1", now=datetime(2026, 3, 1, tzinfo=UTC), **fields)

    return write


UNREADABLE = {
    "hours": {"hours": "mon " + "x" * 900},
    "zone": {"tz": "Mars/Olympus_Mons"},
    "days off": {"days_off": "2026-13-45;garbage"},
    "days off beyond the horizon": {"days_off": "2026-03-01..2027-02-28;2027-03-01..2028-02-28;2028-02-29..2029-02-27"},
    "days off apart by weekends only": {
        "days_off": "2026-03-09..2027-03-05;2027-03-08..2028-03-03;2028-03-06..2029-03-02"
    },
}


@pytest.mark.parametrize("name", sorted(UNREADABLE))
def test_a_stored_row_offhours_cannot_use_never_fails_a_dm_a_command_or_the_home_tab(slack, store, bad_row,
                                                                                      fake_slack, name):  # fmt: skip
    bad_row(**UNREADABLE[name])
    response = slack.dm(sender="U2", recipient="U1", ts=TS)
    assert response.status == 200, (name, response.status)
    assert [r["ts"] for r in rows(store, db.messages)] == [f"{TS:.6f}"]  # the DM is not lost
    assert not hours(slack, "show").startswith(":warning:")
    opened = {"type": "app_home_opened", "user": "U1", "channel": "DU1", "tab": "home", "event_ts": "1772593200.0"}
    assert slack.event(opened, authorized="U1").status == 200
    fake_slack.wait_for("views.publish")
    # A corrective change works, and so does forgetting.
    assert not hours(slack, "set mon-fri 9-17").startswith(":warning:")
    assert person_snapshot(store, "U1")["hours"] == "Mon–Fri 09:00–17:00"
    assert "deleted your hours" in hours(slack, "forget")
    assert person_snapshot(store, "U1") is None


def test_days_off_beyond_the_horizon_are_refused_before_saving(slack, store, u1):
    assert not hours(slack, "off 2026-03-05..2027-03-04").startswith(":warning:")
    assert not hours(slack, "off 2027-03-05..2028-03-04").startswith(":warning:")
    before = person_snapshot(store, "U1")
    seen = hours(slack, "off 2028-03-05..2029-03-04")
    assert seen.startswith(":warning:"), seen[:200]
    assert f"more than the {MAX_DAYS_OFF_RUN} days in a row" in seen and "nothing was added" in seen
    assert person_snapshot(store, "U1") == before
    # The two saved ranges still answer everything: a DM gets recorded, show works.
    assert slack.dm(sender="U2", recipient="U1", ts=TS).status == 200
    assert "2027-03-05 → 2028-03-04" in hours(slack, "off list")


def test_days_off_separated_only_by_weekends_count_as_one_run(slack, store, u1):
    # Mon–Fri hours: three Monday-to-Friday years with only weekends between them leave no working day at all.
    assert not hours(slack, "off 2026-03-09..2027-03-05").startswith(":warning:")
    assert not hours(slack, "off 2027-03-08..2028-03-03").startswith(":warning:")
    before = person_snapshot(store, "U1")
    seen = hours(slack, "off 2028-03-06..2029-03-02")
    assert seen.startswith(":warning:") and "no working day from 2026-03-09 to 2029-03-02" in seen, seen[:300]
    assert person_snapshot(store, "U1") == before
    assert "*Off*" in hours(slack, "show")


def test_days_off_beyond_the_horizon_from_the_home_modal_name_the_field(slack, store, u1):
    hours(slack, "off 2026-03-05..2027-03-04")
    hours(slack, "off 2027-03-05..2028-03-04")
    before = person_snapshot(store, "U1")
    values = {ui.OFF_TEXT_BLOCK: {ui.VALUE_ACTION: {"type": "plain_text_input", "value": "2028-03-05..2029-03-04"}}}
    payload = {"type": "view_submission", "team": {"id": "T1"}, "user": {"id": "U1", "team_id": "T1"},
               "api_app_id": "A1", "view": {"id": "V", "type": "modal", "callback_id": ui.DAYS_OFF_VIEW,
                                            "state": {"values": values}}}  # fmt: skip
    response = slack.interaction(payload)
    assert response.status == 200
    assert response.json["response_action"] == "errors"
    assert "days in a row" in response.json["errors"][ui.OFF_TEXT_BLOCK]
    assert person_snapshot(store, "U1") == before
