"""One workspace's "did an earlier attempt post this?" lookups, spaced out once Slack has rate-limited them.

Apps outside the Marketplace may call conversations.replies about once a minute per workspace. After an incident
that left many auto-replies of unknown outcome, every one of them would come back at the same Retry-After, and all
but one be refused again: N replies, some N² refusals, each costing an attempt. Instead, after a 429 each reply
that needs a lookup gets a slot of its own, one Retry-After apart, and keeps it until it comes back.

Kept in memory, per process: another process has its own slots and at worst meets a 429, which queues its replies
the same way. Time is a parameter.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

MIN_SPACING = timedelta(seconds=1)
FORGET_AFTER = timedelta(hours=1)  # a slot nobody came back for (the reply expired, another process took it)


@dataclass
class _Queue:
    next_free: datetime
    spacing: timedelta
    last_lookup: datetime  # the latest lookup let through (or refused): the next is one spacing after it
    slots: dict[int, datetime] = field(default_factory=dict)  # reply id -> the moment it may look

    def looked(self, now: datetime) -> None:
        self.last_lookup = max(self.last_lookup, now)
        self.next_free = max(self.next_free, now + self.spacing)


class LookupSlots:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: dict[str, _Queue] = {}

    def reserve(self, team_id: str, reply_id: int, *, now: datetime) -> datetime | None:
        """None: look now. Else the moment this reply's lookup is queued for (its own slot)."""
        with self._lock:
            queue = self._queues.get(team_id)
            if queue is None:
                return None
            mine = queue.slots.get(reply_id)
            if mine is not None:
                if now < mine:
                    return mine  # came back early (another claim path): keep the slot
                del queue.slots[reply_id]
                queue.looked(now)  # late, maybe: the next one still waits a whole spacing after this lookup
                return None
            if self._forget_old(team_id, queue, now):
                return None
            if now >= queue.next_free:
                queue.looked(now)
                return None
            at = queue.slots[reply_id] = queue.next_free
            queue.next_free = at + queue.spacing
            return at

    def limited(self, team_id: str, reply_id: int, *, now: datetime, retry_after: timedelta) -> datetime:
        """Slack answered this reply's lookup with 429: its slot, and none of the workspace's before Retry-After."""
        spacing = max(retry_after, MIN_SPACING)
        with self._lock:
            queue = self._queues.setdefault(team_id, _Queue(next_free=now, spacing=spacing, last_lookup=now))
            # The largest seen: a Retry-After may be what is left of Slack's window, not the window itself.
            queue.spacing = max(queue.spacing, spacing)
            queue.last_lookup = max(queue.last_lookup, now)
            at = queue.slots[reply_id] = max(queue.next_free, now + retry_after)
            queue.next_free = at + queue.spacing
            return at

    def release(self, team_id: str, reply_id: int) -> None:
        """The reply was settled without its lookup (the person is back, the DM answered...): its slot is freed,
        and the queue shortened to the slots still held, never to less than a spacing after the last lookup."""
        with self._lock:
            queue = self._queues.get(team_id)
            if queue is None or queue.slots.pop(reply_id, None) is None:
                return
            queue.next_free = max([*queue.slots.values(), queue.last_lookup]) + queue.spacing

    def _forget_old(self, team_id: str, queue: _Queue, now: datetime) -> bool:
        """Drop slots nobody came back for; True when the whole queue is gone (lookups go straight to Slack again,
        until the next 429), after a quiet spacing with no slot held."""
        for reply_id, at in list(queue.slots.items()):
            if now - at > FORGET_AFTER:
                del queue.slots[reply_id]
        if not queue.slots and now >= queue.next_free + queue.spacing:
            del self._queues[team_id]
            return True
        return False
