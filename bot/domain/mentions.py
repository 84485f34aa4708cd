"""Channel mentions and group DMs, pure: which conversations count, and whom a message mentions where Slack
renders a mention (not in code, not @here/@channel/@everyone, not user groups)."""

from __future__ import annotations

import re
from collections.abc import Container, Mapping

# The user scopes a person grants for this (`/hours mentions on` asks them): the messages of their public and private
# channels and group DMs. Subscribed as the user events message.channels, message.groups, message.mpim.
MENTION_SCOPES = ("channels:history", "groups:history", "mpim:history")
MENTION_EVENTS = ("message.channels", "message.groups", "message.mpim")
# Asked with them, not required: a group DM's members (conversations.members). Slack sends a group-DM message once,
# through one member's token; the others it concerns are known only from its membership (bot/group_dms.py).
GROUP_DM_MEMBERS_SCOPE = "mpim:read"
# Public channels, private channels, group DMs: the conversations issue 20 answers (1:1 DMs are "im").
CHANNEL_TYPES = frozenset({"channel", "group", "mpim"})
# A message naming more people than this is answered for the first ones only (a pasted list is no one's question).
MAX_MENTIONED = 50
# Nodes of a message's rich text looked at, at most: bounded work for any input. A message with more is read from
# its text instead (linear in its length).
MAX_NODES = 5000

_USER_ID = re.compile(r"[UW][A-Z0-9]{1,31}")
_MENTION = re.compile(r"<@(" + _USER_ID.pattern + r")(?:\|[^<>]*)?>")
_CODE_BLOCK = re.compile(r"```.*?```", re.S)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
# A link, `<url|label>`: its label is shown as typed (a mention there would be escaped by Slack anyway). No `<` in
# it but whole `<…>` pairs, so that an unclosed `<http:` stops at the next `<`: linear, whatever the input.
_LINK = re.compile(r"<(?:https?|mailto|tel|slack):[^<>]*(?:<[^<>]*>[^<>]*)*>")


def may_mention(text: object) -> bool:
    """The cheap test every channel message gets: no "<@" in its text, no user mentioned."""
    return isinstance(text, str) and "<@" in text


def mentioned_users(event: Mapping, *, among: Container[str] | None = None) -> list[str]:
    """The people a message mentions (only those `among`, when given), in order, each once, at most MAX_MENTIONED.

    From the rich text blocks when the event has them (a `user` element is what Slack renders as a mention; code
    blocks skipped) and they have at most MAX_NODES elements; otherwise from the text, without its code spans and
    links. Special mentions (`<!here>`) and user groups (`<!subteam^…>`) are not `<@…>`, so they never count.
    """
    blocks = event.get("blocks")
    if isinstance(blocks, list) and any(isinstance(b, dict) and b.get("type") == "rich_text" for b in blocks):
        from_blocks = _from_blocks(blocks, among)
        if from_blocks is not None:
            return from_blocks
    text = event.get("text")
    if not isinstance(text, str):
        return []
    visible = _LINK.sub(" ", _INLINE_CODE.sub(" ", _CODE_BLOCK.sub(" ", text)))
    found: dict[str, None] = {}
    for match in _MENTION.finditer(visible):
        if among is not None and match.group(1) not in among:
            continue
        found.setdefault(match.group(1), None)
        if len(found) >= MAX_MENTIONED:
            break
    return list(found)


def _from_blocks(blocks: list, among: Container[str] | None) -> list[str] | None:
    """None: more than MAX_NODES elements to look at (the text says whom it mentions, as the blocks would)."""
    found: dict[str, None] = {}
    stack: list[object] = list(reversed(blocks))
    seen = 0
    while stack and seen < MAX_NODES and len(found) < MAX_MENTIONED:
        node = stack.pop()
        seen += 1
        if not isinstance(node, dict):
            continue
        kind = node.get("type")
        if kind == "rich_text_preformatted":
            continue  # a code block: Slack shows <@U…> there as typed
        if kind == "user":
            user_id = node.get("user_id")
            if isinstance(user_id, str) and (among is None or user_id in among) and _USER_ID.fullmatch(user_id):
                found.setdefault(user_id, None)
            continue
        elements = node.get("elements")
        if isinstance(elements, list):
            stack.extend(reversed(elements))
    if stack and len(found) < MAX_MENTIONED:
        return None  # the budget ran out first
    return list(found)
