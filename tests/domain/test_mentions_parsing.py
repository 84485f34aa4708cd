"""Whom a channel message mentions (bot/domain/mentions.py): only where Slack renders a mention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.domain import mentions
from bot.domain.recap import WaitingMessage, build_recap
from bot.slack.blocks.common import MESSAGE_BLOCK_LIMIT
from bot.slack.blocks.recap import MENTIONS_HEADING, recap_blocks


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<@U1> hi", ["U1"]),
        ("hi <@U1|ana> and <@W22>, <@U1> again", ["U1", "W22"]),
        ("<!here> <!channel> <!everyone> <!subteam^S1|@ops>", []),
        ("`<@U1>` inline code", []),
        ("```\n<@U1>\n``` then <@U2>", ["U2"]),
        ("&lt;@U1&gt; typed", []),
        ("<@u1> lowercase is no id", []),
        ("<https://example.com/?q=&lt;@U1&gt;|search <@U1>?>", []),  # a link's label, not a mention
        ("<https://example.com|docs> <@U1>", ["U1"]),
        ("", []),
    ],
)
def test_mentions_in_text(text, expected):
    assert mentions.mentioned_users({"text": text}) == expected


def test_blocks_win_over_the_text_and_code_blocks_are_skipped():
    event = {
        "text": "<@U9> <@U1>",
        "blocks": [{"type": "rich_text", "elements": [
            {"type": "rich_text_preformatted", "elements": [{"type": "user", "user_id": "U9"}]},
            {"type": "rich_text_quote", "elements": [{"type": "user", "user_id": "U1"}]},
            {"type": "rich_text_list", "elements": [{"type": "rich_text_section", "elements": [
                {"type": "user", "user_id": "U2"}, {"type": "usergroup", "usergroup_id": "S1"},
                {"type": "broadcast", "range": "here"}]}]},
        ]}],
    }  # fmt: skip
    assert mentions.mentioned_users(event) == ["U1", "U2"]


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"text": None}, []),
        ({"text": 5}, []),
        ({"blocks": "x", "text": "<@U1>"}, ["U1"]),  # no blocks to read: the text
        ({"blocks": [{"type": "rich_text", "elements": "nope"}]}, []),
        ({"blocks": [{"type": "rich_text", "elements": [{"type": "user", "user_id": 7}]}]}, []),
        ({"blocks": [{"type": "rich_text", "elements": [{"type": "user", "user_id": "U1|x"}]}]}, []),
        ({"blocks": [{"type": "rich_text", "elements": [[{"type": "user", "user_id": "U1"}]]}]}, []),  # not a node
        ({"blocks": [{"type": "rich_text", "elements": [{"type": "user", "user_id": "U1"}]}], "text": 5}, ["U1"]),
    ],
)
def test_odd_input_mentions_no_one_or_what_is_readable(event, expected):
    assert mentions.mentioned_users(event) == expected


def _section(elements: list) -> list:
    return [{"type": "rich_text", "elements": [{"type": "rich_text_section", "elements": elements}]}]


def test_blocks_past_the_node_budget_are_read_from_the_text():
    bold = [{"type": "text", "text": "a", "style": {"bold": True}}] * (mentions.MAX_NODES + 1000)
    event = {"text": "a " * len(bold) + "<@U1>", "blocks": _section([*bold, {"type": "user", "user_id": "U1"}])}
    assert mentions.mentioned_users(event) == ["U1"]
    # The text's code is left out as the blocks' would be.
    event = {"text": "a " * len(bold) + "`<@U1>`", "blocks": _section([*bold, {"type": "text", "text": "<@U1>"}])}
    assert mentions.mentioned_users(event) == []
    # Within the budget, the blocks decide.
    assert mentions.mentioned_users({"text": "<@U2>", "blocks": _section([*bold[:100], {"type": "user",
                                                                          "user_id": "U1"}])}) == ["U1"]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<http:" * 40_000 + " <@U1>", ["U1"]),  # 240,000 characters of links that never close
        ("<https://example.com|" + "x" * 200_000 + " <@U1>", ["U1"]),  # a label that never closes
        ("<http:" * 40_000 + "<https://example.com|docs <@U1>> <@U2>", ["U2"]),  # then a link that does
    ],
)
def test_huge_unclosed_links_are_read_in_linear_time(text, expected):
    assert mentions.mentioned_users({"text": text}) == expected


def test_only_the_watched_are_collected_and_at_most_max_mentioned():
    text = " ".join(f"<@U{n:04d}>" for n in range(500)) + " <@U1>"
    assert mentions.mentioned_users({"text": text}, among={"U1"}) == ["U1"]
    assert len(mentions.mentioned_users({"text": text})) == mentions.MAX_MENTIONED


def test_the_recap_with_many_mentions_stays_within_the_block_limit_with_its_heading():
    start = datetime(2026, 3, 4, 3, 0, tzinfo=UTC)
    held = [WaitingMessage(channel_id=f"C{i:03d}", sender_id="U2", ts=f"{1772593200 + i}.000100",
                           thread_ts=f"{1772593200 + i}.000100", received_at=start + timedelta(minutes=i),
                           source="mention" if i % 2 else "dm") for i in range(80)]  # fmt: skip
    recap = build_recap(held, window_start=start, window_end=start + timedelta(hours=11), now=start, max_items=40)
    blocks = recap_blocks(recap, recap_id=1, tz="America/New_York", permalinks={})
    assert len(blocks) <= MESSAGE_BLOCK_LIMIT
    headings = [b for b in blocks if b["type"] == "context" and MENTIONS_HEADING in str(b)]
    assert len(headings) == 1
