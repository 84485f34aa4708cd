"""The App Home tab and its three modals (edit hours, edit message, add days off).

Pure builders: they take Preferences and already-composed text and return view dicts within Slack's limits
(100 blocks per view, 24 characters per title, 10 fields per section, 75 characters per option text).
The ids below are the contract with `bot.slack.listeners.home`: action ids for buttons, callback ids for modals,
block ids for the inputs (a validation error names the block it belongs to).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta

from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ConfirmObject,
    DatePickerElement,
    ExternalDataSelectElement,
    InputBlock,
    LinkButtonElement,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
    UserMultiSelectElement,
)

from bot.domain.hours import WeeklyHours, render_days_off, render_duration
from bot.domain.hours.model import DAY_NAMES, Interval, hhmm
from bot.domain.preferences import Preferences
from bot.domain.templates import MAX_LENGTH, PLACEHOLDERS
from bot.slack.blocks.common import SECTION_TEXT_LIMIT, VIEW_BLOCK_LIMIT, clip, context, divider, header, section
from bot.slack.blocks.status import holidays_summary, now_line, quote

TITLE_LIMIT = 24
FIELD_TEXT_LIMIT = 2000
OPTION_TEXT_LIMIT = 75
ERROR_TEXT_LIMIT = 300  # what we send back per field in response_action=errors

# Buttons on the Home tab.
EDIT_HOURS_ACTION = "home_edit_hours"
EDIT_MESSAGE_ACTION = "home_edit_message"
ADD_DAYS_OFF_ACTION = "home_add_days_off"
CLEAR_DAYS_OFF_ACTION = "home_clear_days_off"
PAUSE_ACTION = "home_pause"
RESUME_ACTION = "home_resume"
CONNECT_ACTION = "home_connect"
EDIT_HOLIDAYS_ACTION = "home_edit_holidays"
HOLIDAYS_OFF_ACTION = "home_holidays_off"
EXCEPTIONS_ACTION = "home_exceptions"  # the multi-user picker: the whole list, changed at each pick

# Modals (callback ids) and their inputs (block ids; every input's action id is VALUE_ACTION unless named).
HOURS_VIEW = "home_hours_modal"
MESSAGE_VIEW = "home_message_modal"
DAYS_OFF_VIEW = "home_days_off_modal"
VALUE_ACTION = "value"
DAY_BLOCKS = tuple(f"hours_{name.lower()}" for name in DAY_NAMES)
DAY_LABELS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
TZ_BLOCK = "tz"
TZ_ACTION = "tz_select"  # an external_select: options come from the listener's options handler
REPLY_BLOCK = "reply_within"
MESSAGE_BLOCK = "message"
OFF_FROM_BLOCK = "off_from"
OFF_TO_BLOCK = "off_to"
OFF_TEXT_BLOCK = "off_text"
HOLIDAYS_VIEW = "home_holidays_modal"
HOLIDAYS_BLOCK = "holidays"


# --- the Home tab --------------------------------------------------------------------------------------


def day_text(intervals: Sequence[Interval]) -> str:
    """One weekday in the hours language, as a modal field shows it: "09:00-17:30", "off"."""
    return ", ".join(f"{hhmm(i.start)}-{hhmm(i.end)}" for i in intervals) or "off"


def hours_fields(weekly: WeeklyHours) -> list[str]:
    """The weekly table: one mrkdwn field per weekday, Monday first."""
    fields = []
    for name, intervals in zip(DAY_NAMES, weekly.days, strict=True):
        shown = ", ".join(str(i) for i in intervals) if intervals else "_off_"
        fields.append(clip(f"*{name}*  {shown}", FIELD_TEXT_LIMIT))
    return fields


def home_view(
    prefs: Preferences,
    *,
    now: datetime,
    preview: str,
    command: str,
    today: date | None = None,
    exceptions: Sequence[str] = (),
    max_exceptions: int = 100,
    urgent: Sequence[dict] = (),
    nudge: Sequence[dict] = (),
    mentions: Sequence[dict] = (),
) -> dict:
    """The Home tab of a connected person: status, hours, zone, reply time, message, days off, public holidays,
    the people who never get an auto-reply, pause."""
    today = today or now.date()
    upcoming = [d for d in prefs.days_off if d.end >= today]
    days_off = ", ".join(render_days_off(d) for d in upcoming) or "none planned"
    paused = prefs.paused
    blocks: list[dict] = [
        header("Offhours"),
        section(now_line(prefs, now=now)),
        divider(),
        section(
            "*Working hours*" + ("" if prefs.custom_hours else " _(the workspace default)_"),
            accessory=_button("Edit hours", EDIT_HOURS_ACTION, style="primary"),
            block_id="home_hours",
        ),
        SectionBlock(
            fields=[MarkdownTextObject(text=t) for t in hours_fields(prefs.weekly)], block_id="home_week"
        ).to_dict(),
        SectionBlock(
            fields=[
                MarkdownTextObject(text=f"*Time zone*\n{prefs.tz}"),
                MarkdownTextObject(text=f"*Reply time once back*\n{render_duration(prefs.reply_within)}"),
            ],
            block_id="home_zone",
        ).to_dict(),
        divider(),
        section(
            "*What a sender gets when you are off*" + ("" if prefs.custom_message else " _(the default message)_"),
            accessory=_button("Edit message", EDIT_MESSAGE_ACTION),
            block_id="home_message",
        ),
        section(quote(preview), block_id="home_preview"),
        divider(),
        section(
            clip(f"*Days off:* {days_off}", SECTION_TEXT_LIMIT),
            accessory=_button("Add days off", ADD_DAYS_OFF_ACTION),
            block_id="home_days_off",
        ),
    ]
    if upcoming:
        blocks.append(
            ActionsBlock(
                block_id="home_days_off_actions",
                elements=[
                    ButtonElement(
                        text="Clear days off",
                        action_id=CLEAR_DAYS_OFF_ACTION,
                        style="danger",
                        confirm=ConfirmObject(
                            title="Clear days off?",
                            text="All your upcoming days off will be removed.",
                            confirm="Clear",
                            deny="Keep them",
                        ),
                    )
                ],
            ).to_dict()
        )
    holidays_accessory = (
        _button("Turn off", HOLIDAYS_OFF_ACTION) if prefs.holidays else _button("Set holidays", EDIT_HOLIDAYS_ACTION)
    )
    blocks.append(
        section(
            clip("*Public holidays:* " + holidays_summary(prefs, now=now), SECTION_TEXT_LIMIT),
            accessory=holidays_accessory,
            block_id="home_holidays",
        )
    )
    if prefs.holidays:
        blocks.append(
            ActionsBlock(
                block_id="home_holidays_actions", elements=[_button("Change country or region", EDIT_HOLIDAYS_ACTION)]
            ).to_dict()
        )
    blocks += [
        divider(),
        section(
            "*Never auto-replied* — people who know your hours (your team, your manager): their messages still go "
            f"in your recap. Up to {max_exceptions} people.",
            block_id="home_exceptions",
        ),
        ActionsBlock(
            block_id="home_exceptions_picker",
            elements=[
                UserMultiSelectElement(
                    action_id=EXCEPTIONS_ACTION,
                    placeholder="Pick people",
                    initial_users=list(exceptions) or None,
                    max_selected_items=max_exceptions,
                )
            ],
        ).to_dict(),
        divider(),
    ]
    if urgent:  # "It's urgent" (bot/slack/blocks/urgent.py)
        blocks += [*urgent, divider()]
    if nudge:  # the nudge section (bot/slack/blocks/nudge.py)
        blocks += [*nudge, divider()]
    blocks += [
        *mentions,  # channel mentions and group DMs (bot/slack/blocks/mentions.py)
        section(
            "*Auto-replies:* " + ("paused — nobody gets your message; your recap still comes" if paused else "on"),
            accessory=_button("Resume", RESUME_ACTION, style="primary") if paused else _button("Pause", PAUSE_ACTION),
            block_id="home_pause",
        ),
        context(f"Everything here can also be done with `{command}` — try `{command} help`."),
    ]
    return _home(blocks)


def connect_view(install_url: str, *, command: str) -> dict:
    """The Home tab of someone who has not connected their DMs: what Offhours does, and Connect."""
    blocks = [
        header("Offhours"),
        section(
            "Offhours keeps your working hours. When someone sends you a direct message outside them, it answers "
            "once with your boundary message and when you'll be back; when your next workday starts, you get a "
            "recap of what came in."
        ),
        section(
            "*To start, connect your DMs.* Offhours needs your permission to see the direct messages sent to you "
            "and to answer them on your behalf.",
            accessory=LinkButtonElement(text="Connect my DMs", url=install_url, action_id=CONNECT_ACTION),
            block_id="home_connect",
        ),
        context(f"You can disconnect at any time with `{command} forget` or from Slack's app settings."),
    ]
    return _home(blocks)


def _home(blocks: list[dict]) -> dict:
    if len(blocks) > VIEW_BLOCK_LIMIT:
        raise ValueError(f"a Home view has at most {VIEW_BLOCK_LIMIT} blocks, not {len(blocks)}")
    return {"type": "home", "blocks": blocks}


def _button(text: str, action_id: str, *, style: str | None = None) -> ButtonElement:
    return ButtonElement(text=text, action_id=action_id, value=action_id, style=style)


# --- modals --------------------------------------------------------------------------------------------


def hours_modal(prefs: Preferences, *, tz_label: str) -> dict:
    """Edit hours: one input per weekday in the hours language, a zone picker with search, the reply time."""
    blocks: list[dict] = [
        section(
            "One line per day, in the same words as `/hours set`: `9-17:30`, `9am-1pm`, `09:00-12:00, 13:00-17:00`, "
            "`22:00-06:00` (overnight), or `off`."
        )
    ]
    for block_id, label, intervals in zip(DAY_BLOCKS, DAY_LABELS, prefs.weekly.days, strict=True):
        blocks.append(
            InputBlock(
                block_id=block_id,
                label=label,
                optional=True,
                hint=None,
                element=PlainTextInputElement(
                    action_id=VALUE_ACTION,
                    initial_value=day_text(intervals),
                    placeholder="off",
                    max_length=200,
                ),
            ).to_dict()
        )
    blocks += [
        _zone_input(prefs, tz_label=tz_label),
        InputBlock(
            block_id=REPLY_BLOCK,
            label="Reply time once back",
            hint="How soon senders can expect an answer after you're back: 30m, 2h, 1d, 1h30m.",
            element=PlainTextInputElement(
                action_id=VALUE_ACTION, initial_value=render_duration(prefs.reply_within), max_length=50
            ),
        ).to_dict(),
    ]
    return _modal(HOURS_VIEW, "Edit hours", blocks, submit="Save")


def _zone_input(prefs: Preferences, *, tz_label: str) -> dict:
    """The zone picker. While the zone is still to be learnt from the Slack profile nothing is preselected (a
    preselected fallback, saved untouched, would look like a choice), and leaving it empty keeps it pending."""
    search = "Type a city or region to search, e.g. Rome or New York."
    pending = prefs.zone_pending
    return InputBlock(
        block_id=TZ_BLOCK,
        label="Time zone",
        optional=pending,
        hint=(f"Not known yet: {tz_label} until Offhours learns the zone of your Slack profile. " + search)
        if pending
        else search,
        element=ExternalDataSelectElement(
            action_id=TZ_ACTION,
            placeholder="Search time zones",
            initial_option=None if pending else Option(value=prefs.tz, text=clip(tz_label, OPTION_TEXT_LIMIT)),
            min_query_length=1,
        ),
    ).to_dict()


def message_modal(prefs: Preferences) -> dict:
    """Edit the boundary message: the template, with the placeholders it may use."""
    placeholders = ", ".join(f"`{{{name}}}`" for name in PLACEHOLDERS)
    blocks = [
        InputBlock(
            block_id=MESSAGE_BLOCK,
            label="Boundary message",
            optional=True,
            hint="Leave it empty to go back to the default message.",
            element=PlainTextInputElement(
                action_id=VALUE_ACTION, multiline=True, initial_value=prefs.message, max_length=MAX_LENGTH
            ),
        ).to_dict(),
        context(f"Placeholders: {placeholders}. Write `{{{{` and `}}}}` for literal braces."),
    ]
    return _modal(MESSAGE_VIEW, "Boundary message", blocks, submit="Save")


def days_off_modal(prefs: Preferences, *, today: date, command: str) -> dict:
    """Add days off: a first and last day from date pickers, or typed as in `/hours off`."""
    later = today + timedelta(days=2)
    upcoming = [render_days_off(d) for d in prefs.days_off if d.end >= today]
    blocks = [
        InputBlock(
            block_id=OFF_FROM_BLOCK,
            label="First day off",
            optional=True,
            element=DatePickerElement(action_id=VALUE_ACTION, placeholder="Pick a date"),
        ).to_dict(),
        InputBlock(
            block_id=OFF_TO_BLOCK,
            label="Last day off",
            optional=True,
            hint="Leave it empty for a single day.",
            element=DatePickerElement(action_id=VALUE_ACTION, placeholder="Pick a date"),
        ).to_dict(),
        InputBlock(
            block_id=OFF_TEXT_BLOCK,
            label="Or type them",
            optional=True,
            hint=f"As in {command} off: e.g. {today.isoformat()} or {today.isoformat()}..{later.isoformat()}",
            element=PlainTextInputElement(action_id=VALUE_ACTION, placeholder="YYYY-MM-DD..YYYY-MM-DD", max_length=50),
        ).to_dict(),
        context(clip("Already planned: " + (", ".join(upcoming) or "none"), SECTION_TEXT_LIMIT)),
    ]
    return _modal(DAYS_OFF_VIEW, "Add days off", blocks, submit="Add")


def holidays_modal(prefs: Preferences, *, command: str) -> dict:
    """Public holidays: a country code, optionally with a region, as in `/hours holidays`."""
    blocks = [
        InputBlock(
            block_id=HOLIDAYS_BLOCK,
            label="Country or region",
            optional=True,
            hint=f"An ISO 3166 code, as in {command} holidays: US, US-CA, DE-BY, GB-SCT, IT, IN-KA. Empty: none.",
            element=PlainTextInputElement(
                action_id=VALUE_ACTION, initial_value=prefs.holidays or "", placeholder="e.g. US", max_length=16
            ),
        ).to_dict(),
        context("Holidays count as days off, observed dates included (a holiday on a Saturday moved to Monday)."),
    ]
    return _modal(HOLIDAYS_VIEW, "Public holidays", blocks, submit="Save")


def _modal(callback_id: str, title: str, blocks: list[dict], *, submit: str) -> dict:
    if len(title) > TITLE_LIMIT:
        raise ValueError(f"a modal title has at most {TITLE_LIMIT} characters: {title!r}")
    if len(blocks) > VIEW_BLOCK_LIMIT:
        raise ValueError(f"a modal has at most {VIEW_BLOCK_LIMIT} blocks, not {len(blocks)}")
    return {
        "type": "modal",
        "callback_id": callback_id,
        "title": PlainTextObject(text=title).to_dict(),
        "submit": PlainTextObject(text=submit).to_dict(),
        "close": PlainTextObject(text="Cancel").to_dict(),
        "blocks": blocks,
    }


def tz_options(zones: Sequence[tuple[str, str]]) -> list[dict]:
    """Options for the zone picker: (value, label) pairs, at most 100 (Slack's limit)."""
    return [Option(value=value, text=clip(label, OPTION_TEXT_LIMIT)).to_dict() for value, label in zones[:100]]


def field_errors(errors: dict[str, str]) -> dict[str, str]:
    """Errors for response_action=errors, each clipped to a length Slack shows under a field."""
    return {block_id: clip(message, ERROR_TEXT_LIMIT) for block_id, message in errors.items()}
