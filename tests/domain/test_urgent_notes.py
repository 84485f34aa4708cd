""" "It's urgent" in the domain: what a note may be, and the recap's urgent items first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.domain.recap import WaitingMessage, build_recap
from bot.domain.urgent import MAX_NOTE, ME, UrgentRoute, note_problem

T0 = datetime(2026, 3, 4, 3, 0, tzinfo=UTC)


def test_a_note_is_neither_empty_nor_3000_characters_or_more():
    assert note_problem("") is not None
    assert note_problem(" \n ") is not None
    assert note_problem("x" * 3000) is not None
    assert note_problem("x" * MAX_NOTE) is None
    assert note_problem("Prod is down") is None


def test_a_route_to_me_is_posted_to_the_person():
    assert UrgentRoute(person="U1", target=ME).recipient == "U1"
    assert UrgentRoute(person="U1", target="U3").recipient == "U3"


def test_urgent_conversations_come_first_each_part_oldest_first():
    messages = [
        WaitingMessage(
            channel_id=f"D{i}",
            sender_id=f"U{i}",
            ts=f"{i}.0",
            thread_ts=f"{i}.0",
            received_at=T0 + timedelta(minutes=i),
        )
        for i in range(1, 5)
    ]
    recap = build_recap(messages, window_start=None, window_end=T0 + timedelta(hours=11), now=T0 + timedelta(hours=11),
                        max_items=10, urgent={"U3": "U9", "U4": "U1"})  # fmt: skip
    assert [item.sender_id for item in recap.items] == ["U3", "U4", "U1", "U2"]
    assert [item.urgent_to for item in recap.items] == ["U9", "U1", None, None]
