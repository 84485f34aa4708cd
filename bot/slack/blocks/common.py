"""Small builders shared by the Block Kit payloads, each keeping within Slack's limits."""

from __future__ import annotations

import re

from slack_sdk.models.blocks import (
    BlockElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

SECTION_TEXT_LIMIT = 3000
HEADER_TEXT_LIMIT = 150
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


def section(text: str, *, accessory: BlockElement | dict | None = None, block_id: str | None = None) -> dict:
    if text and accessory is None and block_id is None:
        # The plain case is on every auto-reply's path, where the models' construction and validation cost more
        # than the rest of composing it; this is their output exactly (tests/test_home_blocks.py compares).
        return {"type": "section", "text": {"type": "mrkdwn", "text": clip_mrkdwn(text, SECTION_TEXT_LIMIT)}}
    return SectionBlock(
        text=MarkdownTextObject(text=clip_mrkdwn(text, SECTION_TEXT_LIMIT)), accessory=accessory, block_id=block_id
    ).to_dict()


def header(text: str) -> dict:
    return HeaderBlock(text=PlainTextObject(text=clip(text, HEADER_TEXT_LIMIT), emoji=True)).to_dict()


def context(*texts: str) -> dict:
    return ContextBlock(elements=[MarkdownTextObject(text=clip_mrkdwn(t, SECTION_TEXT_LIMIT)) for t in texts]).to_dict()


def divider() -> dict:
    return DividerBlock().to_dict()
