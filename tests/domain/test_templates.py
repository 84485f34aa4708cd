"""Boundary-message templates: validation messages, format-free rendering, and the values of a boundary message."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import pytz
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.errors import TemplateError
from bot.domain.hours import Schedule, format_local, parse_days_off, parse_hours, render_hours
from bot.domain.hours.timezones import format_utc_offset
from bot.domain.templates import (
    DEFAULT_MESSAGE,
    MAX_LENGTH,
    PLACEHOLDERS,
    boundary_context,
    boundary_values,
    render_back_in,
    render_template,
    slack_date,
    validate_template,
)

VALUES = {name: f"<{name}>" for name in PLACEHOLDERS}


# --- validate_template -------------------------------------------------------------------------------------------


def test_placeholders_are_the_documented_set_with_descriptions():
    assert list(PLACEHOLDERS) == ["user", "sender", "back_at", "back_at_sender", "back_in", "reply_by", "hours"]
    assert all(description and "\n" not in description for description in PLACEHOLDERS.values())


def test_default_message_validates_and_uses_only_known_placeholders():
    assert validate_template(DEFAULT_MESSAGE) == DEFAULT_MESSAGE
    assert "{sender}" in DEFAULT_MESSAGE and "{back_at}" in DEFAULT_MESSAGE


def test_valid_template_is_returned_stripped():
    assert validate_template("  Off until {back_at}, {user}.\n") == "Off until {back_at}, {user}."


def test_every_placeholder_is_valid():
    text = " ".join("{" + name + "}" for name in PLACEHOLDERS)
    assert validate_template(text) == text


def test_literal_braces_are_valid():
    assert validate_template("Use {{braces}} like {{this}} and }} {{ {{{user}}}") == (
        "Use {{braces}} like {{this}} and }} {{ {{{user}}}"
    )


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_is_refused(text):
    with pytest.raises(TemplateError, match="The message is empty"):
        validate_template(text)


def test_non_text_is_refused():
    with pytest.raises(TemplateError, match="must be text"):
        validate_template(None)  # type: ignore[arg-type]


def test_too_long_is_refused_with_both_numbers():
    with pytest.raises(TemplateError) as caught:
        validate_template("x" * 3412)
    assert str(caught.value) == "The message is 3,412 characters; the limit is 3,000."


def test_length_limit_counts_after_stripping():
    assert validate_template("  " + "x" * MAX_LENGTH + "  ") == "x" * MAX_LENGTH


def test_unknown_placeholder_is_named_with_did_you_mean_and_the_valid_list():
    with pytest.raises(TemplateError) as caught:
        validate_template("Back {bak_at}!")
    message = str(caught.value)
    assert "{bak_at} is not a known placeholder — did you mean {back_at}?" in message
    assert "Valid placeholders: {user}, {sender}, {back_at}, {back_at_sender}, {back_in}, {reply_by}, {hours}." in (
        message
    )


def test_wrong_case_placeholder_suggests_the_right_one():
    with pytest.raises(TemplateError, match=re.escape("{User} is not a known placeholder — did you mean {user}?")):
        validate_template("Hi {User}")


def test_unknown_placeholder_far_from_any_has_no_suggestion():
    with pytest.raises(TemplateError) as caught:
        validate_template("{zzzzqqq}")
    assert "{zzzzqqq} is not a known placeholder\n" in str(caught.value)
    assert "did you mean" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{user.__class__}", "{user.__class__} uses attribute access; only plain placeholders like {user}"),
        ("{user[0]}", "{user[0]} uses indexing; only plain placeholders like {user}"),
        ("{back_at:>10}", "{back_at:>10} uses a format spec; only plain placeholders like {back_at}"),
        ("{user!r}", "{user!r} uses a conversion; only plain placeholders like {user}"),
        ("{sender.__init__.__globals__}", "{sender.__init__.__globals__} uses attribute access"),
    ],
)
def test_anything_but_a_plain_name_is_refused(text, expected):
    with pytest.raises(TemplateError) as caught:
        validate_template(f"Hello {text} there")
    assert expected in str(caught.value)
    assert "Valid placeholders:" in str(caught.value)


def test_positional_and_empty_fields_are_refused():
    with pytest.raises(TemplateError, match=re.escape("{} is empty")):
        validate_template("a {} b")
    with pytest.raises(TemplateError, match=re.escape("{0} is not a placeholder")):
        validate_template("a {0} b")


def test_spaces_inside_braces_are_refused_with_the_fix():
    with pytest.raises(TemplateError, match=re.escape("{ user } has spaces inside the braces; write {user}")):
        validate_template("hi { user }")


def test_unclosed_brace_is_refused():
    with pytest.raises(TemplateError, match="opens a brace that is never closed"):
        validate_template("back {back_at")
    with pytest.raises(TemplateError, match="opens a brace that is never closed"):
        validate_template("back {back {user}")


def test_lone_closing_brace_is_refused_with_its_position():
    with pytest.raises(TemplateError, match=re.escape("a lone '}' at character 5; write }} for a literal brace")):
        validate_template("back} soon")


def test_all_problems_are_listed_at_once():
    with pytest.raises(TemplateError) as caught:
        validate_template("{nope} and {user!r} and }")
    message = str(caught.value)
    assert message.startswith("The message has 3 problems:")
    assert "{nope}" in message and "{user!r}" in message and "lone '}'" in message


def test_long_lists_of_problems_are_capped():
    with pytest.raises(TemplateError) as caught:
        validate_template("{x} " * 15)
    assert "… and 5 more" in str(caught.value)


@given(st.text(max_size=200))
def test_validate_raises_only_template_error(text):
    try:
        result = validate_template(text)
    except TemplateError as error:
        assert str(error)
    else:
        assert result == text.strip()


@given(st.text(alphabet="{}user!.:[]0 _ab", max_size=40))
def test_validate_on_brace_heavy_text_raises_only_template_error(text):
    try:
        result = validate_template(text)
    except TemplateError as error:
        assert str(error)
    else:
        assert result == text.strip()


# --- render_template ---------------------------------------------------------------------------------------------


def test_render_substitutes_placeholders():
    assert render_template("Hi {sender}, back {back_at}.", VALUES) == "Hi <sender>, back <back_at>."


def test_render_literal_braces():
    assert render_template("{{user}} is {user}; {{{user}}} }}", VALUES) == "{user} is <user>; {<user>} }"


def test_render_leaves_unknown_names_and_stray_braces_as_written():
    assert render_template("{nope} {user.x} { } }", VALUES) == "{nope} {user.x} { } }"


def test_render_never_reinterprets_values():
    values = {"user": "{sender}", "sender": "{{x}}"}
    assert render_template("{user} {sender}", values) == "{sender} {{x}}"


def test_render_does_not_use_str_format():
    class Exploding(dict):
        def __getitem__(self, key):  # str.format_map would call this
            raise AssertionError("format_map used")

        def get(self, key, default=None):
            return "ok" if key == "user" else default

    assert render_template("{user} {user.__class__}", Exploding()) == "ok {user.__class__}"


# Templates built only from the validated grammar: literal text, "{{", "}}" and known placeholders.
_valid_pieces = st.one_of(
    st.text(alphabet=st.characters(blacklist_characters="{}"), max_size=20),
    st.sampled_from(["{{", "}}"]),
    st.sampled_from([f"{{{name}}}" for name in PLACEHOLDERS]),
)
valid_templates = st.lists(_valid_pieces, min_size=1, max_size=20).map("".join).filter(lambda t: t.strip())


@given(valid_templates, st.dictionaries(st.sampled_from(list(PLACEHOLDERS)), st.text(max_size=30)))
def test_render_of_validated_text_never_raises_and_only_substitutes(text, values):
    validated = validate_template(text)
    rendered = render_template(validated, values)
    # Reference rendering: the same grammar, read piece by piece.
    expected = re.sub(
        r"\{\{|\}\}|\{([a-z_]+)\}",
        lambda m: {"{{": "{", "}}": "}"}.get(m.group(0)) or values.get(m.group(1), m.group(0)),
        validated,
    )
    assert rendered == expected


@given(st.text(max_size=200), st.dictionaries(st.text(max_size=10), st.text(max_size=10)))
def test_render_never_raises_on_any_text(text, values):
    assert isinstance(render_template(text, values), str)


@given(valid_templates)
def test_render_with_attack_values_only_inserts_them_verbatim(text):
    validated = validate_template(text)
    values = {name: "{user.__class__.__mro__}" for name in PLACEHOLDERS}
    rendered = render_template(validated, values)
    assert "<class" not in rendered


# --- render_back_in ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        (timedelta(seconds=-5), "0 min"),
        (timedelta(0), "0 min"),
        (timedelta(seconds=20), "1 min"),
        (timedelta(minutes=35), "35 min"),
        (timedelta(minutes=59, seconds=30), "1 h"),
        (timedelta(hours=1), "1 h"),
        (timedelta(hours=1, minutes=32), "1 h 30 min"),
        (timedelta(hours=2, minutes=58), "3 h"),
        (timedelta(hours=10, minutes=40), "11 h"),
        (timedelta(hours=23, minutes=40), "1 d"),
        (timedelta(days=2, hours=3, minutes=10), "2 d 3 h"),
        (timedelta(days=3), "3 d"),
    ],
)
def test_back_in_is_humane(delta, expected):
    assert render_back_in(delta) == expected


# --- boundary values ---------------------------------------------------------------------------------------------

# 2024-03-15 is a Friday. Berlin is UTC+1 until 2024-03-31; New York is UTC-4 from 2024-03-10.
BERLIN = "Europe/Berlin"
FRIDAY_EVENING = datetime(2024, 3, 15, 20, 0, tzinfo=UTC)  # Fri 21:00 Berlin
MONDAY_MORNING = datetime(2024, 3, 18, 8, 0, tzinfo=UTC)  # Mon 09:00 Berlin
MONDAY_NOON = datetime(2024, 3, 18, 11, 0, tzinfo=UTC)  # Mon 12:00 Berlin


def make_schedule(hours: str = "mon-fri 09:00-17:30", tz: str = BERLIN) -> Schedule:
    return Schedule(tz=tz, weekly=parse_hours(hours))


def test_boundary_context_while_off_uses_the_off_window():
    context = boundary_context(make_schedule(), now=FRIDAY_EVENING, reply_within=timedelta(hours=4))
    assert context.back_at == MONDAY_MORNING
    assert context.reply_by == MONDAY_MORNING + timedelta(hours=4)
    assert context.recipient_tz == BERLIN


def test_reply_by_counts_working_time_only():
    context = boundary_context(make_schedule(), now=FRIDAY_EVENING, reply_within=timedelta(hours=10))
    # Monday 09:00-17:30 gives 8.5 h; the remaining 1.5 h run Tuesday 09:00-10:30 Berlin.
    assert context.reply_by == datetime(2024, 3, 19, 9, 30, tzinfo=UTC)


def test_boundary_context_while_working_previews_the_next_off_window():
    context = boundary_context(make_schedule(), now=MONDAY_NOON, reply_within=timedelta(hours=1))
    assert context.back_at == datetime(2024, 3, 19, 8, 0, tzinfo=UTC)  # Tue 09:00 Berlin


def test_while_working_before_a_lunch_break_back_at_is_after_lunch():
    schedule = make_schedule("mon-fri 09:00-12:00, 13:00-17:00")
    context = boundary_context(schedule, now=datetime(2024, 3, 18, 9, 0, tzinfo=UTC), reply_within=timedelta(0))
    assert context.back_at == datetime(2024, 3, 18, 12, 0, tzinfo=UTC)  # Mon 13:00 Berlin


def test_while_working_through_midnight_back_at_follows_the_whole_stretch():
    # Mon 20:00-24:00 and Tue 00:00-04:00 touch: one stretch, so the back-at is Tuesday 20:00, not Tuesday 00:00.
    schedule = make_schedule("mon 20:00-24:00; tue 00:00-04:00, 20:00-22:00")
    now = datetime(2024, 3, 18, 21, 0, tzinfo=UTC)  # Mon 22:00 Berlin
    context = boundary_context(schedule, now=now, reply_within=timedelta(0))
    assert context.back_at == datetime(2024, 3, 19, 19, 0, tzinfo=UTC)


def test_boundary_values_fill_every_placeholder():
    schedule = make_schedule()
    values = boundary_values(
        schedule, now=FRIDAY_EVENING, user="<@U1>", sender="<@U2>", reply_within=timedelta(hours=4)
    )
    assert values == {
        "user": "<@U1>",
        "sender": "<@U2>",
        "back_at": "Mon 09:00",
        # Mon 18 Mar 2024 08:00 UTC; Slack shows it in each reader's zone, the fallback is Berlin's time and offset.
        "back_at_sender": "<!date^1710748800^{date_short_pretty} at {time}|Mon 09:00 UTC+01:00> your time",
        "back_in": "2 d 12 h",
        "reply_by": "Mon 13:00",
        "hours": render_hours(schedule.weekly),
    }
    assert render_template(DEFAULT_MESSAGE, values) == (
        "Hi <@U2>, thanks for your message! I'm offline right now and back Mon 09:00 my time "
        "(<!date^1710748800^{date_short_pretty} at {time}|Mon 09:00 UTC+01:00> your time). "
        "I'll get back to you by Mon 13:00 at the latest."
    )


def test_back_at_sender_across_a_dst_change_has_the_offset_of_the_back_at_instant():
    # Fri 29 Mar 2024 21:00 CET (UTC+1); Berlin springs forward on Sunday 31 Mar; back Mon 1 Apr 09:00 CEST (UTC+2).
    now = datetime(2024, 3, 29, 20, 0, tzinfo=UTC)
    values = boundary_values(make_schedule(), now=now, user="<@U1>", sender="<@U2>", reply_within=timedelta(0))
    assert values["back_at"] == "Mon 09:00"
    assert values["back_at_sender"] == (
        "<!date^1711954800^{date_short_pretty} at {time}|Mon 09:00 UTC+02:00> your time"  # 2024-04-01T07:00Z
    )


def test_back_at_sender_far_ahead_has_the_date_in_its_fallback():
    # Off 18–29 Mar: back Mon 1 Apr 09:00 CEST, 16 days on (and past the change to summer time).
    schedule = make_schedule().with_days_off([parse_days_off("2024-03-18..2024-03-29")])
    values = boundary_values(
        schedule, now=FRIDAY_EVENING, user="<@U1>", sender="<@U2>", reply_within=timedelta(hours=1)
    )
    assert values["back_at"] == format_local(datetime(2024, 4, 1, 7, 0, tzinfo=UTC), BERLIN, now=FRIDAY_EVENING)
    assert values["back_at"] == "Mon 1 Apr 09:00"
    assert values["back_in"] == "16 d 11 h"
    assert values["back_at_sender"] == (
        "<!date^1711954800^{date_short_pretty} at {time}|Mon 1 Apr 09:00 UTC+02:00> your time"
    )


def test_back_at_sender_in_another_year_has_the_year_in_its_fallback():
    schedule = make_schedule().with_days_off([parse_days_off("2024-12-23..2025-01-03")])
    now = datetime(2024, 12, 20, 17, 0, tzinfo=UTC)  # Fri 18:00 CET
    values = boundary_values(schedule, now=now, user="<@U1>", sender="<@U2>", reply_within=timedelta(0))
    assert values["back_at_sender"] == (
        "<!date^1736150400^{date_short_pretty} at {time}|Mon 6 Jan 2025 09:00 UTC+01:00> your time"
    )


def test_back_at_sender_west_of_utc_has_a_negative_offset():
    # New York: Sat 7 Mar 2026 23:00 EST; clocks spring forward Sunday; back Mon 9 Mar 09:00 EDT = 13:00 UTC.
    schedule = make_schedule(tz="America/New_York")
    now = datetime(2026, 3, 8, 4, 0, tzinfo=UTC)
    values = boundary_values(schedule, now=now, user="<@U1>", sender="<@U2>", reply_within=timedelta(0))
    assert values["back_at_sender"] == (
        "<!date^1773061200^{date_short_pretty} at {time}|Mon 09:00 UTC-04:00> your time"
    )


def test_slack_date_is_an_integer_unix_time_whatever_the_instants_zone():
    instant = datetime(2024, 3, 18, 8, 0, tzinfo=UTC)
    berlin = instant.astimezone(pytz.timezone(BERLIN))
    assert slack_date(instant, "{time}", fallback="Mon 08:00 UTC") == "<!date^1710748800^{time}|Mon 08:00 UTC>"
    assert slack_date(berlin, "{time}", fallback="x") == "<!date^1710748800^{time}|x>"
    assert slack_date(datetime(1970, 1, 1, tzinfo=UTC), "{date_num}", fallback="x") == "<!date^0^{date_num}|x>"


@pytest.mark.parametrize(
    ("instant", "tz", "expected"),
    [
        ("2024-01-15T12:00:00+00:00", "UTC", "UTC+00:00"),
        ("2024-01-15T12:00:00+00:00", BERLIN, "UTC+01:00"),
        ("2024-07-15T12:00:00+00:00", BERLIN, "UTC+02:00"),
        ("2024-01-15T12:00:00+00:00", "America/New_York", "UTC-05:00"),
        ("2024-07-15T12:00:00+00:00", "America/New_York", "UTC-04:00"),
        ("2024-01-15T12:00:00+00:00", "Asia/Kathmandu", "UTC+05:45"),
        ("2024-01-15T12:00:00+00:00", "America/St_Johns", "UTC-03:30"),
        # The offset at the instant: on Berlin's fall-back night, 00:59 UTC (02:59 CEST) is summer time, 01:00 not.
        ("2024-10-27T00:59:00+00:00", BERLIN, "UTC+02:00"),
        ("2024-10-27T01:00:00+00:00", BERLIN, "UTC+01:00"),
    ],
)
def test_format_utc_offset(instant, tz, expected):
    assert format_utc_offset(datetime.fromisoformat(instant), tz) == expected


_ZONES = ["UTC", BERLIN, "America/New_York", "Asia/Kathmandu", "America/St_Johns", "Australia/Lord_Howe", "Asia/Tokyo"]
_TOKEN = re.compile(
    r"<!date\^(?P<ts>\d+)\^\{date_short_pretty\} at \{time\}"
    r"\|(?P<day>\w{3}) [^|>]*?(?P<h>\d\d):(?P<m>\d\d) UTC(?P<sign>[+-])(?P<oh>\d\d):(?P<om>\d\d)> your time"
)


@given(
    st.sampled_from(_ZONES),
    st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)),
)
def test_back_at_sender_token_and_fallback_name_the_same_instant(tz, now):
    """Whatever the zone and the season: the timestamp is the back-at, and its fallback is that instant too."""
    schedule = make_schedule(tz=tz)
    values = boundary_values(schedule, now=now, user="<@U1>", sender="<@U2>", reply_within=timedelta(0))
    match = _TOKEN.fullmatch(values["back_at_sender"])
    assert match, values["back_at_sender"]
    back_at = boundary_context(schedule, now=now, reply_within=timedelta(0)).back_at
    assert int(match["ts"]) == back_at.timestamp()
    offset = timedelta(hours=int(match["oh"]), minutes=int(match["om"])) * (-1 if match["sign"] == "-" else 1)
    shown = datetime.fromtimestamp(int(match["ts"]), UTC) + offset
    assert (f"{shown:%a}", f"{shown:%H}", f"{shown:%M}") == (match["day"], match["h"], match["m"])
