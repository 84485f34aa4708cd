"""Block Kit for "It's urgent": the auto-reply's button, the sender's modal, the notice the backup gets."""

from __future__ import annotations

from datetime import datetime

from bot.domain.templates import slack_date
from bot.domain.urgent import MAX_NOTE, ME
from bot.slack.blocks.common import clip, clip_mrkdwn, context, escape, section

URGENT_ACTION = "urgent_open"
URGENT_VIEW = "urgent_note"
NOTE_BLOCK = "urgent_note_block"
NOTE_INPUT = "urgent_note_input"
BUTTON_BLOCK = "urgent_button"
HOME_BLOCK = "home_urgent"
PICK_ACTION = "urgent_pick"
ME_ACTION = "urgent_me"
OFF_ACTION = "urgent_off"
DND_TEXT = (
    "Slack's Do Not Disturb pauses notifications for messages from apps too, and only people can choose "
    "\u201cnotify anyway\u201d: while your notifications are paused, an urgent note sent to *you* arrives silently "
    "and waits like any other DM. A backup who is working, or on call, is the safer choice."
)


def urgent_button(reply_id: int) -> dict:
    """The auto-reply's "It's urgent" button; its value is the auto-reply's id (checked again on every click)."""
    return {
        "type": "actions",
        "block_id": BUTTON_BLOCK,
        "elements": [
            {
                "type": "button",
                "action_id": URGENT_ACTION,
                "text": {"type": "plain_text", "text": "It's urgent"},
                "value": str(reply_id),
            }
        ],
    }


def passed_on(target_id: str) -> dict:
    return context(f":white_check_mark: Passed on to <@{target_id}>.")


def who(target_id: str, person_id: str, *, to_self: bool) -> str:
    """ "Dana, Alice's backup" or "Alice" (mentions render as names in a modal's mrkdwn)."""
    return f"<@{person_id}>" if to_self else f"<@{target_id}>, <@{person_id}>'s backup"


def note_modal(reply_id: int, *, target_id: str, person_id: str, to_self: bool) -> dict:
    return {
        "type": "modal",
        "callback_id": URGENT_VIEW,
        "private_metadata": str(reply_id),
        "title": {"type": "plain_text", "text": "It's urgent"},
        "submit": {"type": "plain_text", "text": "Send"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            section(f"What can't wait? Your note goes to {who(target_id, person_id, to_self=to_self)}."),
            {
                "type": "input",
                "block_id": NOTE_BLOCK,
                "label": {"type": "plain_text", "text": "Your note"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": NOTE_INPUT,
                    "multiline": True,
                    "max_length": MAX_NOTE,
                },
            },
        ],
    }


def done_modal(text: str) -> dict:
    """What the modal shows once submitted (or refused as a whole): one line, a Close button."""
    return {
        "type": "modal",
        "callback_id": URGENT_VIEW + "_done",
        "title": {"type": "plain_text", "text": "It's urgent"},
        "close": {"type": "plain_text", "text": "Close"},
        "blocks": [section(text)],
    }


def notice_blocks(
    *, team_id: str, sender_id: str, person_id: str, to_self: bool, note: str, back_at: datetime | None,
    thread_link: str | None,
) -> list[dict]:  # fmt: skip
    """The urgent notice: who wrote to whom, the note (plain text: nothing in it is read as markup), when the
    person is back, a button to DM the sender (and, for the person themselves, a link to the thread)."""
    to = "you" if to_self else f"<@{person_id}>"
    blocks = [
        section(
            f":rotating_light: *Urgent:* <@{sender_id}> wrote to {to} while {'you are' if to_self else 'they are'}"
            " off, and says it can't wait:"
        ),
        {"type": "section", "text": {"type": "plain_text", "text": clip(note, 3000), "emoji": False}},
    ]
    lines = []
    if back_at is not None:
        when = slack_date(back_at, "{date_short_pretty} {time}", fallback=back_at.strftime("%Y-%m-%d %H:%M UTC"))
        lines.append(f"{'You are' if to_self else f'<@{person_id}> is'} back {when}.")
    if thread_link:
        lines.append(f"<{thread_link}|Open the conversation>")
    if lines:
        blocks.append(context(" ".join(lines)))
    blocks.append({
        "type": "actions",
        "elements": [{
            "type": "button", "action_id": "urgent_dm_sender", "text": {"type": "plain_text", "text": "Message them"},
            "url": f"slack://user?team={team_id}&id={sender_id}",
        }],
    })  # fmt: skip
    return blocks


def notice_fallback(*, sender_id: str, person_id: str, to_self: bool, note: str) -> str:
    to = "you" if to_self else f"<@{person_id}>"
    return clip_mrkdwn(f"Urgent: <@{sender_id}> wrote to {to}: {escape(note)}", 3000)


def home_blocks(route: str | None, *, command: str, problem: str | None = None) -> list[dict]:
    """The Home tab's "It's urgent" part: where notes go now, a person picker, "Send to me", "Turn off"."""
    if route is None:
        now = 'off: your auto-reply has no "It\'s urgent" button'
    elif route == ME:
        now = "to you, as a DM from Offhours"
    else:
        now = f"to <@{route}>"
    text = f"*It's urgent* — let senders pass a note on while you are off. Now: {now}."
    if problem:
        text += f"\n:warning: {problem}"
    picker: dict = {"type": "users_select", "action_id": PICK_ACTION,
                    "placeholder": {"type": "plain_text", "text": "Pick a backup"}}  # fmt: skip
    if route is not None and route != ME:
        picker["initial_user"] = route
    elements = [picker, _home_button("Send to me", ME_ACTION)]
    if route is not None:
        elements.append(_home_button("Turn off", OFF_ACTION))
    return [
        section(text, block_id=HOME_BLOCK),
        {"type": "actions", "block_id": HOME_BLOCK + "_actions", "elements": elements},
        context(DND_TEXT + f" Also `{command} urgent @someone`, `{command} urgent me`, `{command} urgent off`."),
    ]


def _home_button(text: str, action_id: str) -> dict:
    return {"type": "button", "action_id": action_id, "text": {"type": "plain_text", "text": text}, "value": action_id}
