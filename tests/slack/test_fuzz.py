"""Hostile input, fuzzed with Hypothesis over signed HTTP: `/hours` with every subcommand, and the Home tab's modals.

Whatever is typed — control characters, emoji, right-to-left marks, 5,000 characters, braces of every kind — the
answer is a 200 with an ephemeral message that has text (or, for a modal, `response_action: errors` naming a
field), never a 5xx; when the input is refused, the person's row is exactly as before. Templates cannot reach
attributes, indexes, format specs or conversions, and oversized ones are refused with the limit.

Same clock as tests/test_commands.py: Tue 2026-03-03 22:00 in New York. One server per test, reused by every
example; `reset` puts U1 back (connected, the same row) before each one, since a valid input does change it.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from slack_sdk.models.blocks import Block

from bot.domain.errors import OffhoursError
from bot.domain.templates import validate_template
from bot.slack.blocks import home as ui
from bot.slack.listeners.commands import SUBCOMMANDS
from bot.storage import db
from bot.storage.store import Store
from tests.support.fakeslack import FakeSlack
from tests.support.helpers import block_text, connect, person_snapshot, rows
from tests.support.slackhttp import SlackHTTP

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# --- what is typed ----------------------------------------------------------------------------------------------

PIECES = [
    "{", "}", "{{", "}}", "{user}", "{sender}", "{back_at}", "{0}", "{}", "{ user }", "{user.__class__}",
    "{sender[0]}", "{back_at:>10}", "{user!r}", "{hours.__globals__}", "%s", "%(user)s", "${user}", "{{user}}",
    "🌙", "👩‍💻", "🇮🇹", ":crescent_moon:", "\u200d", "\ufeff", "\u202e", "\x00", "\x1b[31m", "\r\n", "\t",
    "<!channel>", "<@U2>", "&amp;", "*bold*", "`code`", "'; DROP TABLE people; --", "../../etc/passwd",
    "mon-fri 9-17", "9am-5pm", "22:00-06:00", "off", "Europe/Rome", "2h", "30m", "2026-12-24", "2026-03-10..2026-03-12",
    "9999-12-31", "1e308", "-1", "NaN", "∞", "reset", "list", "clear",
]  # fmt: skip
characters = st.characters(exclude_categories=("Cs",))  # any code point a JSON or form body can carry
chunk = st.one_of(st.text(characters, max_size=30), st.sampled_from(PIECES))
fuzz_text = st.one_of(
    st.lists(chunk, max_size=12).map("".join),
    st.text(characters, max_size=300),
    # Huge: up to 5,000 characters, with or without spaces (an oversized single word is a subcommand name too).
    st.builds(
        lambda piece, n: (piece * n)[:5000],
        st.sampled_from(["x", "{", "{user} ", "🌙", "9-17; ", "a b"]),
        st.integers(3000, 5000),
    ),
)
subcommand = st.one_of(st.sampled_from(SUBCOMMANDS), st.sampled_from(SUBCOMMANDS).map(str.upper))

FORBIDDEN = {
    "{user.__class__}": "attribute access",
    "{sender[0]}": "indexing",
    "{back_at:>10}": "a format spec",
    "{user!r}": "a conversion",
    "{reply_by.__init__.__globals__}": "attribute access",
    "{hours[0]}": "indexing",
    "{back_in:%Y}": "a format spec",
    "{sender!s:>{user}}": "never closed",  # a nested field: refused before its conversion is even looked at
}
no_braces = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="{}\x00"), max_size=80)


# --- the server, one person, and the checks -------------------------------------------------------------------


@pytest.fixture
def person(store: Store, fake_slack: FakeSlack) -> dict:
    """U1, connected, with every setting their own; returns the row as stored (what `reset` puts back)."""
    connect(store, fake_slack, "U1", tz="America/New_York")
    store.save_person(
        "T1", "U1", now=datetime(2026, 3, 1, tzinfo=UTC), tz="Europe/Berlin", hours="Mon–Fri 08:00–16:00",
        message="Away until {back_at}.", reply_within_s=3600, days_off="2026-04-01..2026-04-01",
    )  # fmt: skip
    return person_snapshot(store, "U1")


@pytest.fixture
def reset(store: Store, fake_slack: FakeSlack, person: dict):
    """Put U1 back as `person` left them: connected again after a `forget`, and the same row, every column."""

    def run() -> None:
        if store.user_token("T1", "U1") is not None and person_snapshot(store, "U1") == person:
            return  # most inputs are refused: nothing to put back
        if store.user_token("T1", "U1") is None:
            connect(store, fake_slack, "U1", tz="America/New_York")
        p = db.people.c
        with store.engine.begin() as conn:
            conn.execute(db.people.delete().where(p.team_id == "T1", p.user_id == "U1"))
            conn.execute(db.people.insert().values(**person))

    return run


def answer_of(slack: SlackHTTP, text: str) -> tuple[str, dict]:
    """Run `/hours <text>` as U1; check what any answer must be; return (what U1 reads, the body)."""
    response = slack.command(text, user="U1")
    assert response.status == 200, (text[:80], response.status, response.text[:300])
    body = response.json
    assert body.get("response_type") == "ephemeral", body
    assert isinstance(body.get("text"), str) and body["text"].strip(), body
    blocks = body.get("blocks") or []
    assert 0 < len(blocks) <= 50
    for block in blocks:  # each one valid Block Kit, within Slack's limits, or Slack would show an error instead
        Block.parse(block).validate_json()
    return block_text(blocks) + "\n" + body["text"], body


def refused(seen: str) -> bool:
    # A refusal's first block starts with the warning; a saved message may itself contain ":warning:" (found by
    # Hypothesis: `/hours message :warning:` was saved and echoed, and looked refused).
    return seen.startswith(":warning:")


def unchanged(store: Store, before: dict) -> bool:
    return person_snapshot(store, "U1") == before and store.user_token("T1", "U1") is not None


# --- /hours ---------------------------------------------------------------------------------------------------


@FUZZ
@given(sub=subcommand, arg=fuzz_text)
@example(sub="message", arg="hi\x00there")  # was a 500 on PostgreSQL (text cannot hold NUL)
def test_every_subcommand_with_any_argument_answers_and_a_refusal_stores_nothing(slack, store, reset, person, sub,
                                                                                 arg):  # fmt: skip
    reset()
    seen, _ = answer_of(slack, f"{sub} {arg}")
    if refused(seen):
        assert unchanged(store, person), (sub, arg[:80])
    if sub.lower() == "message" and arg.strip() and arg.strip().lower() != "reset":
        try:
            if "\x00" in validate_template(arg):
                raise OffhoursError("NUL")  # refused where it would be stored (PostgreSQL text cannot hold it)
        except OffhoursError:
            assert refused(seen), arg[:80]  # the command and the validator agree
            assert unchanged(store, person)
        else:
            assert not refused(seen), seen[:300]


@FUZZ
@given(text=fuzz_text)
def test_any_command_text_at_all_answers(slack, store, reset, person, text):
    reset()
    seen, _ = answer_of(slack, text)
    if refused(seen):
        assert unchanged(store, person), text[:80]


@FUZZ
@given(before=no_braces, forbidden=st.sampled_from(sorted(FORBIDDEN)), after=no_braces)
def test_templates_cannot_reach_attributes_indexes_format_specs_or_conversions(slack, store, reset, person, before,
                                                                               forbidden, after):  # fmt: skip
    reset()
    seen, _ = answer_of(slack, f"message {before} {forbidden} {after}")
    assert refused(seen), seen[:300]
    assert FORBIDDEN[forbidden] in seen, seen[:500]
    assert "Valid placeholders: {user}" in seen
    assert unchanged(store, person)


@FUZZ
@given(
    text=st.builds(
        lambda unit, n: (unit * n)[:n], st.text(characters, min_size=1, max_size=40), st.integers(3001, 5000)
    )
    .map(lambda t: t.strip())
    .filter(lambda t: len(t) > 3000)
)
def test_an_oversized_template_is_refused_with_the_limit(slack, store, reset, person, text):
    reset()
    seen, _ = answer_of(slack, "message " + text)
    assert refused(seen), seen[:300]
    assert f"The message is {len(text.strip()):,} characters; the limit is 3,000." in seen, seen[:300]
    assert unchanged(store, person)


# --- the Home tab's modals --------------------------------------------------------------------------------------

HOURS_EXAMPLES = ["09:00-17:30", "9-17", "9am-1pm", "off", "", "22:00-06:00", "9-12, 13-17:30", "closed"]
modal_text = st.one_of(st.none(), fuzz_text)
# What a forged-but-signed payload could hold where Slack sends a string: numbers, lists, objects.
odd_value = st.one_of(st.integers(), st.floats(allow_nan=True), st.lists(st.integers(), max_size=3), st.just({}))


def submit(slack: SlackHTTP, callback_id: str, values: dict) -> dict:
    """Submit a modal as U1; never a 5xx; returns the ack body ({} when accepted)."""
    payload = {
        "type": "view_submission",
        "team": {"id": "T1", "domain": "example"},
        "user": {"id": "U1", "team_id": "T1", "username": "u1"},
        "api_app_id": "A1",
        "token": "legacy",
        "trigger_id": "1.2",
        "view": {"id": "VMODAL", "type": "modal", "callback_id": callback_id, "private_metadata": "",
                 "state": {"values": values}, "blocks": []},
    }  # fmt: skip
    response = slack.interaction(payload)
    assert response.status == 200, (json.dumps(values)[:300], response.status, response.text[:300])
    return response.json if response.body else {}


def check_ack(ack: dict, *, blocks: set[str]) -> bool:
    """{} (saved) or field errors on the modal's own blocks, each a readable sentence. True when refused."""
    if not ack:
        return False
    assert ack.get("response_action") == "errors", ack
    errors = ack.get("errors")
    assert errors and set(errors) <= blocks, ack
    assert all(isinstance(m, str) and m.strip() and len(m) <= ui.ERROR_TEXT_LIMIT for m in errors.values()), ack
    return True


def plain(value) -> dict:
    return {ui.VALUE_ACTION: {"type": "plain_text_input", "value": value}}


@FUZZ
@given(
    days=st.lists(st.one_of(st.sampled_from(HOURS_EXAMPLES), modal_text), min_size=7, max_size=7),
    tz=st.one_of(st.none(), st.sampled_from(["Europe/Rome", "UTC", "America/New_York"]), fuzz_text, odd_value),
    reply=st.one_of(st.sampled_from(["4h", "30m", "1 d"]), modal_text, odd_value),
)
@example(days=["9-17"] * 5 + ["off"] * 2, tz=7, reply="4h")  # a zone that is not text was a 500
def test_the_hours_modal_with_any_values_saves_or_names_the_field(slack, store, reset, person, days, tz, reply):
    reset()
    values = {block: plain(text) for block, text in zip(ui.DAY_BLOCKS, days, strict=True)}
    option = None if tz is None else {"value": tz, "text": {"type": "plain_text", "text": str(tz)[:75]}}
    values[ui.TZ_BLOCK] = {ui.TZ_ACTION: {"type": "external_select", "selected_option": option}}
    values[ui.REPLY_BLOCK] = plain(reply)
    ack = submit(slack, ui.HOURS_VIEW, values)
    if check_ack(ack, blocks={*ui.DAY_BLOCKS, ui.TZ_BLOCK, ui.REPLY_BLOCK}):
        assert unchanged(store, person)


@FUZZ
@given(text=st.one_of(modal_text, odd_value))
@example(text="\x00")  # was a 500 on PostgreSQL (text cannot hold NUL)
def test_the_message_modal_with_any_text_saves_or_names_the_field(slack, store, reset, person, text):
    reset()
    ack = submit(slack, ui.MESSAGE_VIEW, {ui.MESSAGE_BLOCK: plain(text)})
    if check_ack(ack, blocks={ui.MESSAGE_BLOCK}):
        assert unchanged(store, person)
    elif isinstance(text, str) and text.strip():
        assert person_snapshot(store, "U1")["message"] == validate_template(text)  # saved exactly as validated


dates = st.one_of(
    st.none(), st.dates().map(str), st.sampled_from(["2026-03-10", "2026-02-30", "2026-13-01", "tomorrow"]), fuzz_text
)


@FUZZ
@given(first=dates, last=dates, typed=modal_text)
def test_the_days_off_modal_with_any_values_saves_or_names_the_field(slack, store, reset, person, first, last, typed):
    reset()
    values = {
        ui.OFF_FROM_BLOCK: {ui.VALUE_ACTION: {"type": "datepicker", "selected_date": first}},
        ui.OFF_TO_BLOCK: {ui.VALUE_ACTION: {"type": "datepicker", "selected_date": last}},
        ui.OFF_TEXT_BLOCK: plain(typed),
    }
    ack = submit(slack, ui.DAYS_OFF_VIEW, values)
    if check_ack(ack, blocks={ui.OFF_FROM_BLOCK, ui.OFF_TO_BLOCK, ui.OFF_TEXT_BLOCK}):
        assert unchanged(store, person)
    else:
        assert re.fullmatch(r"[0-9.;-]+", person_snapshot(store, "U1")["days_off"])  # only canonical dates stored


def test_a_message_that_itself_contains_the_warning_emoji_is_saved_not_taken_for_a_refusal(slack, store, reset):
    reset()
    seen, _ = answer_of(slack, "message :warning: I'm off, {sender}.")
    assert not refused(seen), seen[:300]
    assert person_snapshot(store, "U1")["message"] == ":warning: I'm off, {sender}."


# --- payload shapes: any JSON where Slack sends a string or an object ------------------------------------------

# Any JSON value, lone surrogates included (JSON can carry them; UTF-8 and the databases cannot).
json_text = st.one_of(st.text(max_size=40), st.just("\ud800"), st.just("x" * 200), st.just("1772593200.000100"))
json_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), json_text),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8,
)
DM_FIELDS = ["subtype", "ts", "thread_ts", "user", "channel", "text", "deleted_ts", "previous_message", "metadata",
             "bot_id", "app_id", "channel_type"]  # fmt: skip


def signed_event(slack: SlackHTTP, event: dict, *, authorizations=None) -> int:
    payload = {"token": "t", "team_id": "T1", "api_app_id": "A1", "type": "event_callback", "event_id": "EvFuzz",
               "event_time": 1772593200, "event": event,
               "authorizations": authorizations if authorizations is not None else [{"team_id": "T1",
                                                                                       "user_id": "U1"}]}  # fmt: skip
    return slack.post(json.dumps(payload), content_type="application/json").status


@FUZZ
@given(changes=st.dictionaries(st.sampled_from(DM_FIELDS), json_value, min_size=1, max_size=4),
       deleted=st.booleans())  # fmt: skip
def test_a_dm_with_any_json_in_its_fields_answers_below_500_and_stores_only_well_formed(slack, store, reset, person,
                                                                                       changes, deleted):  # fmt: skip
    reset()
    event = {"type": "message", "channel": "DU1U2", "channel_type": "im", "user": "U2", "text": "hi",
             "ts": "1772593200.000100", **({"subtype": "message_deleted"} if deleted else {}), **changes}  # fmt: skip
    status = signed_event(slack, event)
    assert status < 500, (changes, status)
    for row in rows(store, db.messages):
        assert re.fullmatch(r"[0-9]+\.[0-9]+", row["ts"]) and len(row["channel_id"]) <= 32, row
        assert "\ud800" not in (row["text"] or "")
    assert unchanged(store, person)


@FUZZ
@given(state=json_value, callback_id=st.sampled_from([ui.HOURS_VIEW, ui.MESSAGE_VIEW, ui.DAYS_OFF_VIEW,
                                                       ui.HOLIDAYS_VIEW]))  # fmt: skip
def test_a_modal_state_of_any_shape_answers_below_500(slack, store, reset, person, state, callback_id):
    reset()
    for candidate in (state, {"values": state}, {"values": {block: state for block in ui.DAY_BLOCKS}}):
        payload = {
            "type": "view_submission", "team": {"id": "T1"}, "user": {"id": "U1", "team_id": "T1"}, "api_app_id": "A1",
            "view": {"id": "V", "type": "modal", "callback_id": callback_id, "state": candidate},
        }  # fmt: skip
        response = slack.interaction(payload)
        assert response.status < 500, (callback_id, json.dumps(candidate)[:200])


@FUZZ
@given(actions=json_value, value=json_value)
def test_actions_of_any_shape_answer_below_500(slack, store, reset, person, actions, value):
    reset()
    for candidate in (actions, [{"action_id": "recap_done", "value": value}],
                      [{"action_id": ui.EXCEPTIONS_ACTION, "selected_users": value}]):  # fmt: skip
        payload = {"type": "block_actions", "team": {"id": "T1"}, "user": {"id": "U1", "team_id": "T1"},
                   "api_app_id": "A1", "container": {"type": "message"}, "trigger_id": "1.2",
                   "actions": candidate}  # fmt: skip
        assert slack.interaction(payload).status < 500, json.dumps(candidate)[:200]
