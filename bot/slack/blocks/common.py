"""Small builders shared by the Block Kit payloads, each keeping within Slack's limits."""

from __future__ import annotations

import re

from slack_sdk.models.blocks import (
    BlockElement,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

SECTION_TEXT_LIMIT = 3000
HEADER_TEXT_LIMIT = 150
BUTTON_TEXT_LIMIT = 75
CONTEXT_ELEMENT_LIMIT = 10
MESSAGE_BLOCK_LIMIT = 50
VIEW_BLOCK_LIMIT = 100


def clip(text: str, limit: int) -> str:
    """Cut text to `limit` characters, marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


# What Slack reads as markup: mentions, channels, specials and dates (<!date^…>), links; and the three escapes.
_TOKEN_START = re.compile(r"<(?:[@#!]|https?:|mailto:)")
_LONGEST_TOKEN = 200  # a date token with its fallback is ~85 characters; a link with its label a little more
_ESCAPES = ("&amp;", "&lt;", "&gt;")


def clip_mrkdwn(text: str, limit: int) -> str:
    """clip() for mrkdwn: never cuts inside a `<...>` token (a mention, link or date, e.g. {back_at_sender}) or an
    `&amp;`-style escape, which Slack would show as broken markup; the whole token goes instead. A `<` that starts
    no token (a person's "I <3 …") is plain text and cut like any other."""
    if len(text) <= limit:
        return text
    kept = text[: limit - 1]
    tail_from = max(kept.rfind(">") + 1, len(kept) - _LONGEST_TOKEN)
    # Every token opened after the last ">" is unclosed: cut at the first of them ("<#<@U1" loses both).
    opened = _TOKEN_START.search(kept, tail_from)
    if opened is not None:
        kept = kept[: opened.start()]
    cut = len(kept)
    amp = text.rfind("&", max(0, cut - len("&amp;") + 1), cut)
    if amp != -1 and any(text.startswith(escape, amp) and amp + len(escape) > cut for escape in _ESCAPES):
        kept = kept[:amp]  # an escape the cut went through; a bare "&" (a person's "R&D") is plain text
    return kept + "…"


def escape(text: str) -> str:
    """Escape user text for mrkdwn (Slack's three control characters)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# The plain cases below are on every auto-reply's and every recap's path, where the models' construction and
# validation cost more than the rest of composing the message; they build the models' output exactly
# (tests/slack/test_home_blocks.py compares), and anything else still goes through the models.


def section(text: str, *, accessory: BlockElement | dict | None = None, block_id: str | None = None) -> dict:
    if text and (accessory is None or _plain_button(accessory)) and block_id is None:
        block: dict = {"type": "section", "text": {"type": "mrkdwn", "text": clip_mrkdwn(text, SECTION_TEXT_LIMIT)}}
        if accessory is not None:
            block["accessory"] = accessory
        return block
    return SectionBlock(
        text=MarkdownTextObject(text=clip_mrkdwn(text, SECTION_TEXT_LIMIT)), accessory=accessory, block_id=block_id
    ).to_dict()


def _plain_button(accessory: BlockElement | dict) -> bool:
    """Whether `accessory` is what button() builds (nothing for the model to check or drop)."""
    return isinstance(accessory, dict) and accessory.get("type") == "button" and accessory.keys() == _BUTTON_KEYS


_BUTTON_KEYS = {"type", "text", "action_id", "value"}


def button(text: str, *, action_id: str, value: str) -> dict:
    """A plain button (a section's accessory)."""
    if text and len(text) <= BUTTON_TEXT_LIMIT and action_id and len(action_id) <= 255 and len(value) <= 2000:
        return {"type": "button", "text": {"type": "plain_text", "text": text, "emoji": True}, "action_id": action_id,
                "value": value}  # fmt: skip
    return ButtonElement(text=text, action_id=action_id, value=value).to_dict()


def header(text: str) -> dict:
    if text:
        return {"type": "header", "text": {"type": "plain_text", "text": clip(text, HEADER_TEXT_LIMIT), "emoji": True}}
    return HeaderBlock(text=PlainTextObject(text=clip(text, HEADER_TEXT_LIMIT), emoji=True)).to_dict()


def context(*texts: str) -> dict:
    if 0 < len(texts) <= CONTEXT_ELEMENT_LIMIT and all(texts):
        return {"type": "context", "elements": [{"type": "mrkdwn", "text": clip_mrkdwn(t, SECTION_TEXT_LIMIT)}
                                                for t in texts]}  # fmt: skip
    return ContextBlock(elements=[MarkdownTextObject(text=clip_mrkdwn(t, SECTION_TEXT_LIMIT)) for t in texts]).to_dict()


def divider() -> dict:
    return {"type": "divider"}
