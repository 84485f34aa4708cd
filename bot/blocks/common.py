"""Small builders shared by the Block Kit payloads, each keeping within Slack's limits."""

from __future__ import annotations

from slack_sdk.models.blocks import (
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


def clip_mrkdwn(text: str, limit: int) -> str:
    """clip() for mrkdwn: never cuts inside a `<...>` token (a mention, link or date, e.g. {back_at_sender}) or an
    `&amp;`-style escape, which Slack would show as broken markup; the whole token goes instead."""
    if len(text) <= limit:
        return text
    kept = text[: limit - 1]
    opened = kept.rfind("<")
    if opened > kept.rfind(">"):
        kept = kept[:opened]
    amp = kept.rfind("&")
    if amp != -1 and len(kept) - amp < len("&amp;") and ";" not in kept[amp:]:
        kept = kept[:amp]
    return kept + "…"


def escape(text: str) -> str:
    """Escape user text for mrkdwn (Slack's three control characters)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def section(text: str, *, accessory=None, block_id: str | None = None) -> dict:
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
