"""The Home tab and modal builders: valid Block Kit (slack_sdk's models), within limits, showing the settings."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from slack_sdk.models.blocks import Block, MarkdownTextObject, SectionBlock

from bot.config import Config
from bot.domain.hours import DayOff, parse_hours
from bot.domain.preferences import preferences
from bot.people import MAX_DAYS_OFF
from bot.slack.blocks import home as ui
from bot.slack.blocks.common import SECTION_TEXT_LIMIT, clip_mrkdwn, section
from bot.slack.listeners.home import day_errors, hours_spec, preview_text, search_zones, zone_label
from tests.support.blockkit import assert_valid

NOW = datetime(2026, 3, 4, 3, 0, tzinfo=UTC)  # Tue 2026-03-03 22:00 in New York
TODAY = date(2026, 3, 3)


def prefs(**changes):
    base = preferences(None, Config().defaults, team_id="T1", user_id="U1")
    schedule = dataclasses.replace(base.schedule, tz="America/New_York")
    for key in ("weekly", "days_off"):
        if key in changes:
            schedule = dataclasses.replace(schedule, **{key: changes.pop(key)})
    return dataclasses.replace(base, schedule=schedule, **{"zone_pending": False, **changes})


def text_of(view: dict) -> str:
    from tests.support.helpers import block_text

    return block_text(view["blocks"])


def home(p=None, **kwargs) -> dict:
    p = p or prefs()
    return ui.home_view(p, now=NOW, preview=preview_text(p, now=NOW), command="/hours", today=TODAY, **kwargs)


def test_home_view_shows_status_hours_zone_reply_time_message_days_off_and_pause():
    p = prefs(days_off=(DayOff(date(2026, 3, 10), date(2026, 3, 12)),))
    view = home(p)
    assert_valid(view)
    text = text_of(view)
    assert "*Off* — back Wed 09:00" in text
    for day in ("Mon", "Tue", "Wed", "Thu", "Fri"):
        assert f"*{day}*  09:00–17:30" in text
    assert "*Sat*  _off_" in text and "*Sun*  _off_" in text
    assert "America/New_York" in text
    assert "4 h" in text
    assert "> Hi <@U1>, thanks for your message!" in text
    assert "2026-03-10 → 2026-03-12" in text
    assert "*Auto-replies:* on" in text
    actions = action_ids(view)
    assert {ui.EDIT_HOURS_ACTION, ui.EDIT_MESSAGE_ACTION, ui.ADD_DAYS_OFF_ACTION, ui.PAUSE_ACTION} <= actions
    assert ui.CLEAR_DAYS_OFF_ACTION in actions
    assert ui.RESUME_ACTION not in actions and ui.CONNECT_ACTION not in actions


def test_home_preview_shows_back_at_sender_as_a_slack_date_in_the_readers_zone():
    # The person reading their own preview sees the token in their own zone, as a sender sees it in theirs.
    token = "<!date^1772632800^{date_short_pretty} at {time}|Wed 09:00 UTC-05:00>"  # Wed 09:00 EST = 14:00 UTC
    expected = (
        f"> Hi <@U1>, thanks for your message! I'm offline right now and back Wed 09:00 my time ({token} your time)."
    )
    assert expected in text_of(home())


def test_home_view_when_paused_offers_resume_and_hides_past_days_off():
    view = home(prefs(paused=True, days_off=(DayOff(date(2026, 2, 1), date(2026, 2, 2)),)))
    assert_valid(view)
    assert ui.RESUME_ACTION in action_ids(view) and ui.PAUSE_ACTION not in action_ids(view)
    assert ui.CLEAR_DAYS_OFF_ACTION not in action_ids(view)  # nothing upcoming to clear
    assert "Auto-replies paused" in text_of(view)
    assert "none planned" in text_of(view)


def test_home_view_while_working_says_until_when():
    p = prefs()
    at = NOW + timedelta(hours=12)  # Wednesday 10:00 in New York
    view = ui.home_view(p, now=at, preview=preview_text(p, now=at), command="/hours", today=TODAY)
    assert "*Working* until Wed 17:30" in text_of(view)


def test_home_view_stays_within_limits_with_the_most_days_off_and_a_long_message():
    days_off = tuple(DayOff(date(2026, 4, 1) + timedelta(days=2 * i), date(2026, 4, 1) + timedelta(days=2 * i))
                     for i in range(MAX_DAYS_OFF))  # fmt: skip
    p = prefs(days_off=days_off, message="x" * 3000, weekly=parse_hours("daily 0-1, 2-3, 4-5, 6-7, 8-9, 10-11"))
    view = home(p)
    assert_valid(view)


def test_connect_view_explains_and_links_to_install():
    view = ui.connect_view("https://offhours.example/slack/install", command="/hours")
    assert_valid(view)
    assert view["type"] == "home"
    text = text_of(view)
    assert "connect your dms" in text.lower()
    assert "https://offhours.example/slack/install" in text
    assert action_ids(view) == {ui.CONNECT_ACTION}


def test_hours_modal_has_one_prefilled_field_per_weekday_a_zone_picker_and_the_reply_time():
    p = prefs(weekly=parse_hours("mon-thu 9-17:30; fri 9am-1pm; sat 22:00-02:00"))
    view = ui.hours_modal(p, tz_label=zone_label(p.tz, now=NOW))
    assert_valid(view)
    inputs = {b["block_id"]: b["element"] for b in view["blocks"] if b["type"] == "input"}
    assert [inputs[b]["initial_value"] for b in ui.DAY_BLOCKS] == [
        "09:00-17:30", "09:00-17:30", "09:00-17:30", "09:00-17:30", "09:00-13:00", "22:00-02:00", "off",
    ]  # fmt: skip
    assert inputs[ui.TZ_BLOCK]["type"] == "external_select"
    assert inputs[ui.TZ_BLOCK]["action_id"] == ui.TZ_ACTION
    assert inputs[ui.TZ_BLOCK]["initial_option"]["value"] == "America/New_York"
    assert inputs[ui.REPLY_BLOCK]["initial_value"] == "4 h"
    # The prefilled fields read back as the same week.
    assert parse_hours(hours_spec([inputs[b]["initial_value"] for b in ui.DAY_BLOCKS])) == p.weekly


def test_while_the_zone_is_still_to_be_learnt_the_picker_preselects_nothing_and_may_be_left_empty():
    p = prefs(zone_pending=True)
    view = ui.hours_modal(p, tz_label="UTC")
    assert_valid(view)
    [zone] = [b for b in view["blocks"] if b.get("block_id") == ui.TZ_BLOCK]
    assert "initial_option" not in zone["element"]
    assert zone["optional"] is True
    assert zone["hint"]["text"].startswith("Not known yet: UTC until Offhours learns the zone of your Slack profile.")


def test_a_zone_is_pending_only_while_unknown_and_the_config_follows_slack_profiles():
    follows_profiles = Config()
    workspace_zone = Config(defaults=dataclasses.replace(Config().defaults, timezone="Europe/Paris"))
    assert preferences(None, follows_profiles.defaults, team_id="T1", user_id="U1").zone_pending is True
    assert preferences(None, workspace_zone.defaults, team_id="T1", user_id="U1").zone_pending is False
    assert preferences(None, workspace_zone.defaults, team_id="T1", user_id="U1").tz == "Europe/Paris"


def test_message_and_days_off_modals_are_valid():
    p = prefs()
    message = ui.message_modal(p)
    assert_valid(message)
    assert message["blocks"][0]["element"]["initial_value"] == p.message
    days_off = ui.days_off_modal(prefs(days_off=(DayOff(date(2026, 3, 10), date(2026, 3, 10)),)), today=TODAY,
                                 command="/hours")  # fmt: skip
    assert_valid(days_off)
    assert [b["element"]["type"] for b in days_off["blocks"] if b["type"] == "input"] == [
        "datepicker", "datepicker", "plain_text_input",
    ]  # fmt: skip
    assert "Already planned: 2026-03-10" in text_of(days_off)


def test_titles_over_24_characters_are_refused():
    with pytest.raises(ValueError):
        ui._modal("x", "A title that is far too long", [], submit="Save")


def test_day_errors_name_only_the_wrong_days():
    days = ["9-17", "9-5", "", "off", "banana", "9-17; sat 9-17", "CLOSED"]
    errors = day_errors(days)
    assert set(errors) == {"hours_tue", "hours_fri", "hours_sat"}
    assert "overnight" in errors["hours_tue"]
    assert "One day per field" in errors["hours_sat"]


def test_hours_spec_treats_empty_fields_as_off():
    assert hours_spec(["9-17", "", "", "", "", "", " off "]) == (
        "mon 9-17; tue off; wed off; thu off; fri off; sat off; sun off"
    )


def test_search_zones_finds_cities_with_spaces_and_stays_within_100_options():
    found = search_zones("new york", now=NOW)
    assert found[0] == ("America/New_York", "America/New York (UTC-05:00)")
    assert search_zones("rome", now=NOW)[0][0] == "Europe/Rome"
    assert len(search_zones("a", now=NOW)) == 100
    assert search_zones("nowhere-at-all", now=NOW) == []
    options = ui.tz_options(search_zones("e", now=NOW))
    assert len(options) <= 100 and all(len(o["text"]["text"]) <= 75 for o in options)


def test_field_errors_are_clipped():
    assert len(ui.field_errors({"x": "y" * 1000})["x"]) == ui.ERROR_TEXT_LIMIT


def action_ids(view: dict) -> set[str]:
    found = set()

    def walk(node):
        if isinstance(node, dict):
            if "action_id" in node and node.get("type") in ("button",):
                found.add(node["action_id"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(view["blocks"])
    return found


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=3100) | st.sampled_from(["", "x" * 3000, "x" * 3001, "<@U1> *bold* &amp;"]))
def test_the_plain_section_is_exactly_what_slack_sdks_model_builds(text):
    # section() builds the plain case by hand (it is on every auto-reply's path); the model stays the reference.
    model = SectionBlock(text=MarkdownTextObject(text=clip_mrkdwn(text, SECTION_TEXT_LIMIT))).to_dict()
    assert section(text) == model
    if text:  # the model's own output for "" (no text at all) does not parse back
        assert Block.parse(section(text)).to_dict() == model


_DATE_TOKEN = "<!date^1772629200^{date_short_pretty} at {time}|Wed 09:00 UTC-05:00>"  # the longest
_TOKENS = st.sampled_from([_DATE_TOKEN, "<@U0123ABCD>", "<https://x.y|link>", "&amp;", "&lt;", "&gt;", " "])
# A person's own template is not escaped: a bare "<", ">" or "&" ("I <3 quiet evenings", "R&D") is plain text.
_PLAIN = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
_TOKEN_START = re.compile(r"<(?:[@#!]|https?:|mailto:)")


@settings(max_examples=400, deadline=None)
@given(st.lists(_TOKENS | _PLAIN, max_size=30), st.integers(min_value=2, max_value=400))
def test_clipping_mrkdwn_never_cuts_a_token_or_an_escape(parts, limit):
    text = "".join(parts)
    clipped = clip_mrkdwn(text, limit)
    assert len(clipped) <= limit
    if len(text) <= limit:
        assert clipped == text
        return
    kept = clipped.removesuffix("…")
    assert clipped.endswith("…") and text.startswith(kept)
    for start in _TOKEN_START.finditer(kept):  # every token whole
        assert ">" in kept[start.start() :], kept[start.start() :]
    # never half an escape of the text ("&am"), which Slack would show as typed
    cut = len(kept)
    assert not any(text.startswith(e, i) and i + len(e) > cut for e in ("&amp;", "&lt;", "&gt;") for i in range(cut))
    assert len(kept) >= limit - 1 - 200  # no more than one token's length is ever given up


def test_a_bare_less_than_sign_in_a_persons_message_is_plain_text_when_clipping():
    # "I <3 ..." starts no token: the old rule cut the whole auto-reply back to it (32 characters of 3,000).
    message = "I <3 quiet evenings. " + "Lorem ipsum dolor sit amet. " * 105 + "Back {back_at}."
    body = section(":crescent_moon: *Auto-reply*\n" + message)["text"]["text"]
    assert len(body) == SECTION_TEXT_LIMIT and body.startswith(":crescent_moon: *Auto-reply*\nI <3 quiet evenings.")


def test_an_auto_reply_cut_at_slacks_limit_drops_the_whole_date_token():
    from bot.slack.blocks.status import auto_reply_blocks

    text = "x" * 2950 + _DATE_TOKEN + " tail"
    body = auto_reply_blocks(text)[0]["text"]["text"]
    assert len(body) <= SECTION_TEXT_LIMIT and body.endswith("x…") and "<!date" not in body
