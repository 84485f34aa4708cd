"""What a start-of-day recap contains, pure: the conversations still waiting, grouped, ordered and capped."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class WaitingMessage:
    """One after-hours DM that the person has not answered yet."""

    channel_id: str
    sender_id: str
    ts: str
    thread_ts: str
    received_at: datetime
    text: str | None = None
    done: bool = False
    source: str = "dm"  # "mention" (a channel) or "mpim" (a group DM): the recap's own section


@dataclass(frozen=True, slots=True)
class RecapItem:
    """One conversation: who wrote, how often, when, and where to pick it up."""

    channel_id: str
    sender_id: str
    count: int
    first_at: datetime
    last_at: datetime
    thread_ts: str  # the thread to open: the earliest message's thread root
    texts: tuple[str, ...]
    done: bool
    urgent_to: str | None = None  # the sender passed an urgent note on, to this user id or "me", or NOT_PASSED_ON
    source: str = "dm"
    first_ts: str = ""  # the earliest message: a mention's permalink points at it


@dataclass(frozen=True, slots=True)
class Recap:
    window_start: datetime | None
    window_end: datetime
    items: tuple[RecapItem, ...]  # at most max_items, oldest conversation first
    more_conversations: int  # not listed because of max_items
    more_messages: int
    late: bool

    @property
    def is_empty(self) -> bool:
        return not self.items


LATE_AFTER_SECONDS = 15 * 60


def build_recap(
    messages: list[WaitingMessage],
    *,
    window_start: datetime | None,
    window_end: datetime,
    now: datetime,
    max_items: int,
    due_at: datetime | None = None,
    urgent: Mapping[str, str] | None = None,
) -> Recap:
    """Group waiting messages by conversation, oldest first; items all ticked "done" still show, as done.

    `due_at` (default `window_end`) is when the recap should have gone out: later than 15 minutes is "late".
    A recap that catches up on several windows ends at the last one but is late from the first.
    `urgent`: sender -> who their urgent note went to; those conversations come first.
    """
    urgent = urgent or {}
    by_channel: dict[str, list[WaitingMessage]] = {}
    for message in sorted(messages, key=lambda m: (m.received_at, m.ts)):
        by_channel.setdefault(message.channel_id, []).append(message)
    items = [
        RecapItem(
            channel_id=channel,
            sender_id=group[0].sender_id,
            count=len(group),
            first_at=group[0].received_at,
            last_at=group[-1].received_at,
            thread_ts=group[0].thread_ts,
            texts=tuple(m.text for m in group if m.text),
            done=all(m.done for m in group),
            urgent_to=urgent.get(group[0].sender_id),
            source=group[0].source,
            first_ts=group[0].ts,
        )
        for channel, group in by_channel.items()
    ]
    items.sort(key=lambda item: item.urgent_to is None)  # stable: urgent first, each part oldest first
    shown, rest = items[:max_items], items[max_items:]
    return Recap(
        window_start=window_start,
        window_end=window_end,
        items=tuple(shown),
        more_conversations=len(rest),
        more_messages=sum(item.count for item in rest),
        late=(now - (due_at or window_end)).total_seconds() > LATE_AFTER_SECONDS,
    )
