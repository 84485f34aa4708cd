"""What a recap contains and how it renders, pure: fixed instants, no database, no Slack.

The person is in New York on the default hours (Mon–Fri 09:00–17:30); the off-window runs from
Tue 3 Mar 2026 17:30 EST to Wed 4 Mar 09:00 EST (14:00 UTC).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from slack_sdk.models.blocks import Block

from bot.domain.recap import LATE_AFTER_SECONDS, WaitingMessage, build_recap
from bot.slack.blocks.common import MESSAGE_BLOCK_LIMIT, SECTION_TEXT_LIMIT
from bot.slack.blocks.recap import DONE_ACTION, recap_blocks, recap_fallback_text, recap_title

TZ = "America/New_York"
WINDOW_START = datetime(2026, 3, 3, 22, 30, tzinfo=UTC)  # Tue 17:30 EST
DUE = datetime(2026, 3, 4, 14, 0, tzinfo=UTC)  # Wed 09:00 EST
EVENING = datetime(2026, 3, 4, 1, 0, tzinfo=UTC)  # Tue 20:00 EST


def msg(channel: str, sender: str, minutes: int, *, text: str | None = None, done: bool = False) -> WaitingMessage:
    at = EVENING + timedelta(minutes=minutes)
    ts = f"{at.timestamp():.6f}"
    return WaitingMessage(channel_id=channel, sender_id=sender, ts=ts, thread_ts=ts, received_at=at, text=text,
                          done=done)  # fmt: skip


def build(messages, *, now: datetime = DUE, max_items: int = 10, window_start=WINDOW_START):
    return build_recap(messages, window_start=window_start, window_end=DUE, now=now, max_items=max_items)


def validated(blocks: list[dict]) -> list[Block]:
    """Every block parsed by slack_sdk's models and validated against Block Kit's limits."""
    assert 0 < len(blocks) <= MESSAGE_BLOCK_LIMIT
    parsed = []
    for raw in blocks:
        block = Block.parse(raw)
        assert block is not None, raw
        block.validate_json()
        assert block.to_dict() == raw  # nothing was silently dropped by the model
        parsed.append(block)
    return parsed


def sections(blocks: list[dict]) -> list[dict]:
    return [b for b in blocks if b["type"] == "section"]


def contexts(blocks: list[dict]) -> list[str]:
    return [e["text"] for b in blocks if b["type"] == "context" for e in b["elements"]]


# --- build_recap ----------------------------------------------------------------------------------------------


def test_messages_are_grouped_per_conversation_oldest_conversation_first():
    recap = build([
        msg("DB", "UB", 30), msg("DA", "UA", 10), msg("DB", "UB", 5), msg("DA", "UA", 50), msg("DC", "UC", 20),
    ])  # fmt: skip

    assert [item.channel_id for item in recap.items] == ["DB", "DA", "DC"]  # by each conversation's first message
    db_item, da_item, dc_item = recap.items
    assert (db_item.sender_id, db_item.count) == ("UB", 2)
    assert (db_item.first_at, db_item.last_at) == (EVENING + timedelta(minutes=5), EVENING + timedelta(minutes=30))
    assert db_item.thread_ts == f"{(EVENING + timedelta(minutes=5)).timestamp():.6f}"  # the earliest message
    assert (da_item.count, dc_item.count) == (2, 1)
    assert recap.more_conversations == 0 and recap.more_messages == 0
    assert not recap.is_empty
    assert recap.window_start == WINDOW_START and recap.window_end == DUE


def test_no_messages_is_an_empty_recap():
    recap = build([])
    assert recap.is_empty
    assert recap.items == ()


def test_max_items_keeps_the_oldest_and_counts_the_rest():
    messages = [msg(f"D{i:02d}", f"U{i:02d}", i) for i in range(12)] + [msg("D11", "U11", 100)]
    recap = build(messages, max_items=10)

    assert [item.channel_id for item in recap.items] == [f"D{i:02d}" for i in range(10)]
    assert recap.more_conversations == 2
    assert recap.more_messages == 3  # D10 once, D11 twice


def test_texts_are_kept_in_order_and_missing_texts_skipped():
    recap = build([msg("DA", "UA", 2, text="second"), msg("DA", "UA", 1, text="first"), msg("DA", "UA", 3)])
    assert recap.items[0].texts == ("first", "second")
    assert recap.items[0].count == 3


def test_a_conversation_is_done_only_when_all_its_messages_are():
    recap = build([msg("DA", "UA", 1, done=True), msg("DA", "UA", 2), msg("DB", "UB", 3, done=True)])
    assert [(item.channel_id, item.done) for item in recap.items] == [("DA", False), ("DB", True)]


@pytest.mark.parametrize(
    ("late_by", "late"),
    [
        (timedelta(0), False),
        (timedelta(seconds=LATE_AFTER_SECONDS), False),  # exactly 15 minutes is still on time
        (timedelta(seconds=LATE_AFTER_SECONDS + 1), True),
        (timedelta(hours=30), True),
    ],
)
def test_late_when_sent_more_than_15_minutes_after_the_window_ended(late_by, late):
    assert build([msg("DA", "UA", 1)], now=DUE + late_by).late is late


def test_a_catch_up_over_two_windows_is_late_from_the_first():
    thursday = DUE + timedelta(days=1)
    recap = build_recap([msg("DA", "UA", 1)], window_start=WINDOW_START, window_end=thursday, due_at=DUE,
                        now=thursday + timedelta(minutes=5), max_items=10)  # fmt: skip
    assert recap.late is True
    assert recap.window_end == thursday


# --- Block Kit --------------------------------------------------------------------------------------------------


def test_blocks_header_summary_items_and_done_buttons():
    recap = build([msg("DA", "UA", 0), msg("DA", "UA", 90), msg("DB", "UB", 30)])
    permalinks = {"DA": "https://example.slack.com/archives/DA/p1", "DB": "https://example.slack.com/archives/DB/p2"}
    blocks = recap_blocks(recap, recap_id=7, tz=TZ, permalinks=permalinks)
    validated(blocks)

    title = {"type": "plain_text", "text": "While you were off — Tue 17:30 → Wed 09:00", "emoji": True}
    assert blocks[0] == {"type": "header", "text": title}
    assert contexts(blocks)[0] == "3 messages in 2 conversations"
    items = sections(blocks)
    assert [s["text"]["text"] for s in items] == [
        "<@UA> · 2 messages · Tue 20:00 – Tue 21:30 · <https://example.slack.com/archives/DA/p1|Open thread>",
        "<@UB> · 1 message · Tue 20:30 · <https://example.slack.com/archives/DB/p2|Open thread>",
    ]
    buttons = [s["accessory"] for s in items]
    assert [(b["type"], b["action_id"], b["value"], b["text"]["text"]) for b in buttons] == [
        ("button", DONE_ACTION, "7:DA", "Done"),
        ("button", DONE_ACTION, "7:DB", "Done"),
    ]
    assert "delivered late" not in " ".join(contexts(blocks))
    assert recap_fallback_text(recap, TZ) == "While you were off — Tue 17:30 → Wed 09:00"


def test_an_item_without_a_permalink_still_names_sender_and_time():
    blocks = recap_blocks(build([msg("DA", "UA", 0)]), recap_id=1, tz=TZ, permalinks={})
    validated(blocks)
    assert sections(blocks)[0]["text"]["text"] == "<@UA> · 1 message · Tue 20:00"


def test_a_done_item_is_struck_through_and_has_no_button():
    recap = build([msg("DA", "UA", 0, done=True, text="secret"), msg("DB", "UB", 1)])
    blocks = recap_blocks(recap, recap_id=1, tz=TZ, permalinks={})
    validated(blocks)
    done, open_ = sections(blocks)
    assert done["text"]["text"] == ":white_check_mark: ~<@UA> · 1 message · Tue 20:00~ Done"
    assert "accessory" not in done
    assert open_["accessory"]["value"] == "1:DB"


def test_text_is_shown_only_when_stored_and_is_escaped():
    # recap.include_text off: the listener stores no text, so none reaches the recap.
    without = recap_blocks(build([msg("DA", "UA", 0)]), recap_id=1, tz=TZ, permalinks={})
    assert "\n" not in sections(without)[0]["text"]["text"]

    # include_text on: quoted, one line per message, mrkdwn control characters escaped.
    recap = build([msg("DA", "UA", 0, text="call me <@U9> & see\nline two"), msg("DA", "UA", 1, text="again")])
    blocks = recap_blocks(recap, recap_id=1, tz=TZ, permalinks={})
    validated(blocks)
    assert sections(blocks)[0]["text"]["text"].split("\n")[1:] == [
        "> call me &lt;@U9&gt; &amp; see line two",
        "> again",
    ]


def test_overflow_line_counts_the_conversations_left_out():
    messages = [msg(f"D{i:02d}", f"U{i:02d}", i) for i in range(13)]
    blocks = recap_blocks(build(messages, max_items=10), recap_id=1, tz=TZ, permalinks={})
    validated(blocks)
    assert len(sections(blocks)) == 10
    assert contexts(blocks)[0] == "13 messages in 13 conversations"
    assert "…and 3 more conversations waiting in your DMs." in contexts(blocks)

    one_more = recap_blocks(build(messages[:11], max_items=10), recap_id=1, tz=TZ, permalinks={})
    assert "…and 1 more conversation waiting in your DMs." in contexts(one_more)


def test_late_recap_says_so():
    blocks = recap_blocks(build([msg("DA", "UA", 0)], now=DUE + timedelta(hours=2)), recap_id=1, tz=TZ, permalinks={})
    validated(blocks)
    assert contexts(blocks)[0] == (
        "1 message in 1 conversation · delivered late: Offhours was not running when your day started"
    )


def test_a_long_window_shows_dates_and_an_unknown_start_says_until():
    within_a_week = datetime(2026, 2, 27, 22, 30, tzinfo=UTC)  # Fri 27 Feb 17:30 EST: the weekday is enough
    recap = build([msg("DA", "UA", 0)], window_start=within_a_week)
    assert recap_title(recap, TZ) == "While you were off — Fri 17:30 → Wed 09:00"
    holiday = datetime(2026, 2, 20, 22, 30, tzinfo=UTC)  # back from 12 days off: the start needs its date
    recap = build([msg("DA", "UA", 0)], window_start=holiday)
    assert recap_title(recap, TZ) == "While you were off — Fri 20 Feb 17:30 → Wed 09:00"
    assert recap_title(build([msg("DA", "UA", 0)], window_start=None), TZ) == "While you were off — until Wed 09:00"


@pytest.mark.parametrize("max_items", [10, 40, 200])
def test_block_kit_limits_hold_with_40_conversations_and_long_texts(max_items):
    long_text = "x" * 5000 + " <&> " + "y" * 5000
    messages = [
        msg(f"D{i:02d}", f"U{i:08d}", i + k, text=long_text) for i in range(40) for k in range(5)
    ]  # 40 conversations of 5 very long messages each
    recap = build(messages, max_items=max_items, now=DUE + timedelta(days=1))
    permalinks = {f"D{i:02d}": "https://example.slack.com/archives/D" + "9" * 60 + f"/p{i:016d}" for i in range(40)}

    blocks = recap_blocks(recap, recap_id=123456789, tz=TZ, permalinks=permalinks)
    validated(blocks)

    assert len(blocks) <= MESSAGE_BLOCK_LIMIT
    for block in sections(blocks):
        assert len(block["text"]["text"]) <= SECTION_TEXT_LIMIT
    shown = min(max_items, 40)
    assert len(sections(blocks)) == shown  # 40 items fit in 50 blocks with the header, summary and footer
    assert contexts(blocks)[0].startswith("200 messages in 40 conversations")
    if shown < 40:
        assert f"…and {40 - shown} more conversations waiting in your DMs." in contexts(blocks)
    else:
        assert not any(c.startswith("…and") for c in contexts(blocks))


def test_more_items_than_blocks_fold_into_the_overflow_line():
    # max_items is configurable: even a large one never makes a message over 50 blocks.
    messages = [msg(f"D{i:03d}", f"U{i:03d}", i) for i in range(120)]
    blocks = recap_blocks(build(messages, max_items=500), recap_id=1, tz=TZ, permalinks={})
    validated(blocks)
    assert len(blocks) == MESSAGE_BLOCK_LIMIT
    shown = len(sections(blocks))
    assert f"…and {120 - shown} more conversations waiting in your DMs." in contexts(blocks)
