"""The nudge: a reminder before the reply-by time an auto-reply promised, with Done and Snooze 1 h buttons."""

from __future__ import annotations

from datetime import datetime, timedelta

from slack_sdk.models.blocks import ActionsBlock, ButtonElement, Option, StaticSelectElement

from bot.domain import nudge
from bot.domain.hours import format_local
from bot.domain.templates import render_back_in
from bot.slack.blocks.common import context, section

NUDGE_DONE_ACTION = "nudge_done"
NUDGE_SNOOZE_ACTION = "nudge_snooze"
HOME_NUDGE_ACTION = "home_nudge"  # the Home tab's "how early" picker
HOME_NUDGE_CHOICES = (("off", "Off"), ("15m", "15 min before"), ("30m", "30 min before"), ("1h", "1 h before"),
                      ("2h", "2 h before"))  # fmt: skip


def nudge_text(*, sender_id: str, received_at: datetime, promised_at: datetime, tz: str, now: datetime) -> str:
    since = format_local(received_at, tz, now=now)
    by = format_local(promised_at, tz, now=now)
    return (
        f":hourglass_flowing_sand: <@{sender_id}> is still waiting for your answer (since {since}). "
        f"Your auto-reply promised one by *{by}* — in {render_back_in(promised_at - now)}."
    )


def nudge_blocks(
    *, nudge_id: int, sender_id: str, received_at: datetime, promised_at: datetime, tz: str, now: datetime,
    permalink: str | None, snoozable: bool,
) -> list[dict]:  # fmt: skip
    """The reminder, a link to the conversation, Done (as in the recap) and Snooze 1 h (once)."""
    line = nudge_text(sender_id=sender_id, received_at=received_at, promised_at=promised_at, tz=tz, now=now)
    if permalink:
        line += f"\n<{permalink}|Open the conversation>"
    buttons = [ButtonElement(text="Done", action_id=NUDGE_DONE_ACTION, value=str(nudge_id), style="primary")]
    if snoozable:
        buttons.append(ButtonElement(text="Snooze 1 h", action_id=NUDGE_SNOOZE_ACTION, value=str(nudge_id)))
    return [section(line), ActionsBlock(elements=buttons).to_dict()]


def nudge_status_block(before: timedelta | None, *, command: str) -> dict:
    """The nudge line of `/hours show` and Home: on or off, and how early."""
    return context(f":hourglass_flowing_sand: Nudges: {nudge.describe(before)} (`{command} nudge 1h`, "
                   f"`{command} nudge off`)")  # fmt: skip


def nudge_settled_blocks(text: str, note: str) -> list[dict]:
    """The nudge after a click: its text, and what the click did instead of the buttons."""
    return [section(text), context(note)]


def home_nudge_blocks(before: timedelta | None, *, command: str) -> list[dict]:
    """The Home tab's nudge section: on or off, how early, and a picker to change it."""
    options = [Option(value=value, label=label) for value, label in HOME_NUDGE_CHOICES]
    current = "off" if before is None else next(
        (value for value, _ in HOME_NUDGE_CHOICES[1:] if _seconds(value) == int(before.total_seconds())), None
    )  # fmt: skip
    picker = StaticSelectElement(
        action_id=HOME_NUDGE_ACTION, placeholder="How early", options=options,
        initial_option=next((o for o in options if o.value == current), None),
    )  # fmt: skip
    text = (f"*Nudges:* {nudge.describe(before)}. Offhours reminds you of a conversation still unanswered "
            f"(or `{command} nudge 45m`).")  # fmt: skip
    return [section(text, accessory=picker.to_dict(), block_id="home_nudge")]


def _seconds(value: str) -> int:
    return {"15m": 900, "30m": 1800, "1h": 3600, "2h": 7200}[value]
